"""Create an Integration from scripts; the token is printed alone on the last line.

A Sentry integration also prints `DSN: <dsn>` on the line before: what `sentry_sdk.init(dsn=...)` takes.
"""

from django.core.management.base import BaseCommand, CommandError

from incidents.choices import IntegrationKind
from incidents.models import Integration


class Command(BaseCommand):
    help = "Create an integration and print its token (shown once) alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=IntegrationKind.values)
        parser.add_argument("--service", default="", help="Default service for alerts that name none.")
        parser.add_argument("--environment", default="")
        parser.add_argument(
            "--rotate-if-exists",
            action="store_true",
            help="If an integration of that name exists, give it a new token instead of failing.",
        )

    def handle(self, *args, name, kind, service, environment, rotate_if_exists, **options):
        name = name.strip()
        if not name:
            raise CommandError("The integration name must not be empty.")
        integration = Integration.objects.filter(name=name).first()
        if integration is not None and not rotate_if_exists:
            raise CommandError(
                f"An integration named {name!r} already exists (use --rotate-if-exists for a new token)."
            )
        if integration is not None and integration.kind != kind:
            raise CommandError(f"Integration {name!r} exists with kind {integration.kind}, not {kind}.")
        if integration is None:
            integration = Integration(name=name, kind=kind, default_service=service, default_environment=environment)
        raw = integration.set_new_token()
        integration.save()
        self.stderr.write(f"Integration {integration.name!r} ({integration.get_kind_display()}) ready; token follows.")
        if integration.dsn:
            self.stdout.write(f"DSN: {integration.dsn}")
        self.stdout.write(raw)
