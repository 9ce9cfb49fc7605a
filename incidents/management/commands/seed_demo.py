"""Demo records for `make run`: one integration per source kind, a tailed JSON log file, and two weeks of
past incidents (incidents/demo/history.py) for the dashboard, one of them with its postmortem."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand

from incidents.choices import IntegrationKind
from incidents.demo.history import seed_history
from incidents.demo.payloads import log_lines
from incidents.models import Integration, LogSource

DEMO_PREFIX = "demo-"


class Command(BaseCommand):
    help = "Create the demo integrations and the demo log source (idempotent)."

    def handle(self, *args, **options):
        for kind in IntegrationKind.values:
            integration, created = Integration.objects.get_or_create(
                name=f"{DEMO_PREFIX}{kind}",
                defaults={"kind": kind, "default_environment": "production"},
            )
            if created:
                integration.set_new_token()  # send_demo_alerts rotates it again before use
                integration.save()
        log_dir = settings.BASE_DIR / "var" / "demo"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "shop.jsonl"
        source, created = LogSource.objects.get_or_create(
            name="demo-shop-log", defaults={"path": str(log_path), "service": "shop", "environment": "production"}
        )
        if created or not log_path.exists():
            with log_path.open("a", encoding="utf-8") as log_file:
                for record in log_lines():
                    log_file.write(json.dumps(record) + "\n")
        self.stdout.write(f"Demo integrations and log source {source.name!r} ({source.path}) ready.")
        if written := seed_history():
            self.stdout.write(
                f"{written} past demo incident(s) written for the dashboard (/admin/incidents/incident/dashboard/); "
                "the checkout timeout has a postmortem (/admin/incidents/postmortem/)."
            )
