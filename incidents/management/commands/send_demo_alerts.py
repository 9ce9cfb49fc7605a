"""Send the demo alerts to a running Quench over HTTP, exactly as the monitoring tools would."""

import os
import subprocess
import sys
import uuid

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from incidents.choices import IntegrationKind
from incidents.demo import payloads
from incidents.models import Integration


class Command(BaseCommand):
    help = "POST the demo payloads (Alertmanager, Grafana, Sentry, Events v2, generic) to a running Quench."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, url, **options):
        tokens = {}
        for kind in IntegrationKind.values:
            integration = Integration.objects.filter(name=f"demo-{kind}").first()
            if integration is None:
                raise CommandError("Demo integrations are missing: run `manage.py seed_demo` first.")
            # The demo holds no token (only hashes are stored), so it takes fresh ones.
            tokens[kind] = integration.set_new_token()
            integration.save(update_fields=["token_hash", "token_hint"])
        base = url.rstrip("/") + "/api/v1/ingest/"
        sentry_event_id = uuid.uuid4().hex
        requests = [
            # History first: a refund crash that was fixed last week, for "similar incidents".
            ("events", IntegrationKind.GENERIC, payloads.past_refund_crash("firing")),
            ("events", IntegrationKind.GENERIC, payloads.past_refund_crash("resolved")),
            ("alertmanager", IntegrationKind.ALERTMANAGER, payloads.alertmanager_batch("firing")),
            ("alertmanager", IntegrationKind.ALERTMANAGER, payloads.alertmanager_batch("firing")),  # a retry
            ("grafana", IntegrationKind.GRAFANA, payloads.grafana_alert()),
            ("sentry", IntegrationKind.SENTRY, payloads.sentry_event(sentry_event_id)),
            ("sentry", IntegrationKind.SENTRY, payloads.sentry_event(uuid.uuid4().hex)),
            ("events-v2", IntegrationKind.EVENTS_V2, payloads.events_v2_trigger(tokens[IntegrationKind.EVENTS_V2])),
            ("events", IntegrationKind.GENERIC, payloads.generic_events()),
            ("events", IntegrationKind.GENERIC, payloads.generic_events()),
            ("events", IntegrationKind.GENERIC, payloads.generic_events()[:1]),
            ("alertmanager", IntegrationKind.ALERTMANAGER, payloads.alertmanager_batch("resolved")),
        ]
        with httpx.Client(timeout=10) as client:
            for endpoint, kind, body in requests:
                headers = {} if kind == IntegrationKind.EVENTS_V2 else {"Authorization": f"Bearer {tokens[kind]}"}
                try:
                    response = client.post(base + endpoint, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    raise CommandError(f"Could not reach Quench at {url}: {exc}") from None
                self.stdout.write(f"POST /api/v1/ingest/{endpoint:<13} → {response.status_code} {_summary(response)}")
        self.stdout.write(self.style.SUCCESS("Demo alerts sent: open the admin to see the incidents."))
        self._crash_the_shop(url, tokens[IntegrationKind.GENERIC])

    def _crash_the_shop(self, url: str, token: str) -> None:
        """Run the example shop's failing requests for real (examples/trigger.py) in its demo working copy."""
        shop = settings.BASE_DIR / "var" / "demo" / "shop-repo"
        if not (shop / "shop" / "__init__.py").is_file():
            self.stdout.write(f"No demo shop at {shop}: run `manage.py setup_demo_service` for the crashes.")
            return
        trigger = settings.BASE_DIR / "examples" / "trigger.py"
        command = [sys.executable, str(trigger), "--url", url, "--service-root", str(shop)]
        completed = subprocess.run(
            command, env={**os.environ, "QUENCH_TOKEN": token}, capture_output=True, text=True, timeout=120
        )
        self.stdout.write(completed.stdout.rstrip())
        if completed.returncode != 0:
            raise CommandError(f"examples/trigger.py failed: {completed.stderr.strip()[-500:]}")
        self.stdout.write(self.style.SUCCESS("The example shop crashed for real; Quench is diagnosing it."))


def _summary(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    if "results" in body:
        outcomes = [result["outcome"] for result in body["results"]]
        return ", ".join(f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes))
    return str(body.get("message") or body.get("error") or body)[:120]
