"""One pass of the verification watcher (the scheduler runs it every minute)."""

from django.core.management.base import BaseCommand

from remediation.verification import watch_executions


class Command(BaseCommand):
    help = "Verify carried-out remediations once: merged? healthy? quiet? (the scheduler runs this every minute)."

    def handle(self, *args, **options):
        counts = watch_executions()
        if not counts:
            self.stdout.write("Nothing is being verified.")
            return
        self.stdout.write(", ".join(f"{outcome}: {count}" for outcome, count in sorted(counts.items())))
