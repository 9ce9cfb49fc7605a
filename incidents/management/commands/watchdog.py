"""One pass of Quench's self-check (the scheduler runs it every minute; cron can too, when the cluster is down)."""

from django.core.management.base import BaseCommand

from incidents.watchdog import run_watchdog


class Command(BaseCommand):
    help = (
        "Check Quench's own pipeline once; raise (or resolve) a `quench` incident per failing (or cleared) condition."
    )

    def handle(self, *args, **options):
        outcomes = run_watchdog()
        for name, outcome in sorted(outcomes.items()):
            self.stdout.write(f"{name}: {outcome}")
