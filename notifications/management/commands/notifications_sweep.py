"""One notifications sweep by hand (the scheduler runs it every minute): retries, lost enqueues, escalations."""

from django.core.management.base import BaseCommand

from notifications import services
from notifications.choices import CLAIMABLE
from notifications.models import Notification


class Command(BaseCommand):
    help = "Run one notifications sweep; with --deliver, also send what is due in this process (no cluster needed)."

    def add_arguments(self, parser):
        parser.add_argument("--deliver", action="store_true", help="Send due notifications here and now.")

    def handle(self, *args, **options):
        counts = services.sweep()
        self.stdout.write(f"Sweep: {counts or 'nothing to do'}")
        if options["deliver"]:
            outcomes: dict[str, int] = {}
            due = Notification.objects.filter(status__in=CLAIMABLE).order_by("next_attempt_at")
            for notification_id in due.values_list("pk", flat=True)[:500]:
                outcome = services.deliver(notification_id)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            self.stdout.write(f"Delivered: {outcomes or 'nothing due'}")
