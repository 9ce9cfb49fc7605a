"""Make the example shop (`examples/shop`) a git repository Quench can fix, and register it as a Service."""

import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from remediation.models import Playbook, Service
from remediation.services import link_service_incidents

DEMO_SERVICE = "shop"
GIT_IDENTITY = ["-c", "user.name=Quench demo", "-c", "user.email=demo@quench.invalid", "-c", "commit.gpgsign=false"]

# The database-timeout scenario is an operations problem, not a code bug: a playbook fixes it.
DEMO_PLAYBOOKS = [
    {
        "name": "Cancel runaway queries on the shop database",
        "description": "Cancel statements running longer than 30 s, then check the shop is healthy again.",
        "match_service": DEMO_SERVICE,
        "match_exception_type": "TimeoutError|.*QueryCanceled|.*OperationalError",
        "risk_level": "low",
        "cooldown_minutes": 15,
        "variables": {"max_runtime": "30s"},
        "steps": [
            {
                "type": "http",
                "name": "Cancel long queries",
                "method": "POST",
                "url": "{{ service_url }}/ops/{{ service }}/db/cancel-long-queries?older_than={{ max_runtime }}",
                "expect_status": 200,
            },
            {"type": "wait", "name": "Let the pool recover", "seconds": 10},
            {"type": "check", "name": "Health check", "url": "{{ health_check_url }}", "expect_status": 200},
            {
                "type": "task",
                "name": "Note it",
                "task": "timeline_note",
                "kwargs": {"message": "Long queries cancelled"},
            },
        ],
    },
]


class Command(BaseCommand):
    help = (
        "Copy examples/shop into var/demo/shop-repo as a git repository with a bare remote var/demo/shop.git "
        "(once), and register the `shop` Service on that remote."
    )

    def add_arguments(self, parser):
        parser.add_argument("--target", default=str(settings.BASE_DIR / "var" / "demo" / "shop-repo"))
        parser.add_argument("--reset", action="store_true", help="Recreate the repository from examples/shop.")

    def handle(self, *args, target, reset, **options):
        source = settings.BASE_DIR / "examples" / "shop"
        target = Path(target)
        remote = target.with_name(target.name.removesuffix("-repo") + ".git")
        if reset:
            for path in (target, remote):
                if path.exists():
                    shutil.rmtree(path)
        if not (target / ".git").exists():
            create_repository(source, target)
            self.stdout.write(f"Created the demo service repository at {target}.")
        if not (remote / "HEAD").exists():
            # The shop's "origin": approved fixes are pushed here as branches, and merged here.
            create_remote(target, remote)
            self.stdout.write(f"Created its bare remote at {remote}.")
        service, _ = Service.objects.update_or_create(
            name=DEMO_SERVICE,
            defaults={
                "description": "The example shop from examples/shop, with real bugs.",
                "repository": str(remote),
                "default_branch": "main",
                "test_command": "python -m pytest -q -p no:cacheprovider",
                # The shop is not served in the demo: Quench's own health stands in for it.
                "health_check_url": f"{settings.SITE_URL}/healthz",
                "owners": ["shop-team@example.com"],
            },
        )
        link_service_incidents(service.pk)
        for spec in DEMO_PLAYBOOKS:
            playbook = Playbook(**spec)
            playbook.full_clean(exclude=["name"])
            Playbook.objects.update_or_create(name=spec["name"], defaults=spec)
        self.stdout.write(f"Service {service.name!r} → {service.repository} ({service.test_command}).")


def create_repository(source: Path, target: Path) -> None:
    """A fresh git repository at `target` with `source`'s files as its first commit on `main`."""
    if not source.is_dir():
        raise CommandError(f"{source} is missing.")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*GIT_IDENTITY, "commit", "-q", "-m", "The shop"]):
        subprocess.run(["git", "-C", str(target), *args], check=True, capture_output=True, timeout=60)


def create_remote(repository: Path, remote: Path) -> None:
    """A bare clone of `repository` at `remote`, set as its `origin`."""
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(repository), str(remote)], check=True, capture_output=True, timeout=60
    )
    subprocess.run(
        ["git", "-C", str(repository), "remote", "add", "origin", str(remote)],
        check=True,
        capture_output=True,
        timeout=60,
    )
