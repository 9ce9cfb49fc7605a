"""Demo channels for `make run`: a signed webhook to the local demo receiver, and email to the console."""

import secrets

from django.core.management.base import BaseCommand

from notifications import vault
from notifications.models import Channel

WEBHOOK = "demo-webhook"
EMAIL = "demo-email"
EMAILED_EVENTS = ["approval_requested", "incident_escalated", "incident_resolved", "daily_summary"]


class Command(BaseCommand):
    help = "Create (or update) the demo notification channels (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--receiver-url", default="http://127.0.0.1:8025/quench", help="The demo receiver's URL.")
        parser.add_argument("--email", default="oncall@example.com", help="Where the demo email channel sends.")

    def handle(self, *args, **options):
        webhook = Channel.objects.filter(name=WEBHOOK).first() or Channel(name=WEBHOOK, kind="webhook")
        secret = webhook.config.get("secret") or vault.encrypt(secrets.token_urlsafe(24))
        webhook.config = {"url": options["receiver_url"], "secret": secret}
        webhook.full_clean()
        webhook.save()
        email, _ = Channel.objects.get_or_create(
            name=EMAIL,
            # The console backend prints every message whole: the demo mails only what a person acts on.
            defaults={"kind": "email", "config": {"recipients": [options["email"]]}, "events": EMAILED_EVENTS},
        )
        email.full_clean()
        self.stdout.write(
            f"Demo notification channels ready: {WEBHOOK} → {options['receiver_url']} (signed), "
            f"{EMAIL} → {', '.join(email.config['recipients'])} (the email backend; console by default) for "
            f"{', '.join(email.events) or 'every event'}."
        )
