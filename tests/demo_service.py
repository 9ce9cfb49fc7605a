"""The example shop (examples/shop) as the tests use it: real crashes, driven through the pipeline."""

import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from remediation import services

TRIGGER = Path(settings.BASE_DIR) / "examples" / "trigger.py"


def scenario_payload(scenario: str, repo: Path) -> dict:
    """The generic-event payload examples/trigger.py builds from a real crash of the shop copy at `repo`."""
    completed = subprocess.run(
        [sys.executable, str(TRIGGER), "--dry-run", "--scenario", scenario, "--service-root", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)[0]


def drive(diagnosis_id: int, provider=None) -> str:
    """Run the diagnosis and each fix attempt it asks for, as the queue would, in order."""
    outcome = services.run_diagnosis(diagnosis_id, provider=provider)
    number = 1
    while outcome in ("fixing", "retrying"):
        outcome = services.run_fix_attempt(diagnosis_id, number, provider=provider)
        number += 1
    return outcome
