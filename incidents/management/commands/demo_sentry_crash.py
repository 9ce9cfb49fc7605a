"""Crash a small job and report it with the real Sentry SDK to a running Quench, as a team's service would."""

import sentry_sdk
from django.core.management.base import BaseCommand, CommandError

from incidents.choices import IntegrationKind
from incidents.demo.sentry_crash import SUBSCRIBER_WITHOUT_PROFILE, DeliveryError, send_newsletter
from incidents.models import Integration


class Command(BaseCommand):
    help = "Report a real crash through sentry_sdk to the demo Sentry integration's DSN (run seed_demo first)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where Quench listens.")
        parser.add_argument("--integration", default="demo-sentry")

    def handle(self, *args, url, integration, **options):
        found = Integration.objects.filter(name=integration, kind=IntegrationKind.SENTRY).first()
        if found is None:
            raise CommandError(f"No Sentry integration named {integration!r}: run `manage.py seed_demo` first.")
        if not found.public_key:
            found.save()  # an integration saved before DSNs existed gets its key now
        dsn = found.dsn_for(url)
        client = sentry_sdk.Client(
            dsn=dsn,
            release="newsletter@1.0.3",
            environment="production",
            default_integrations=False,
            auto_enabling_integrations=False,
        )
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            scope.set_tag("service", "newsletter")
            try:
                send_newsletter(SUBSCRIBER_WITHOUT_PROFILE)
            except DeliveryError as exc:
                event_id = scope.capture_exception(exc)
        client.flush(timeout=10)
        client.close()
        self.stdout.write(f"sentry_sdk reported DeliveryError to {url} (event {event_id}) through the DSN {dsn}")
