"""Merge an approved fix's branch in a local git repository (the demo's remote, or a plain git server)."""

from django.core.management.base import BaseCommand, CommandError

from remediation.codehosts import CodeHostError
from remediation.execution import merge_execution
from remediation.models import Execution
from remediation.verification import watch_executions


class Command(BaseCommand):
    help = (
        "Merge the branch Quench pushed for an incident into the service's default branch "
        "(local git repositories only; merge GitHub pull requests on GitHub), then run one verification pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("incident_id", type=int, help="The incident whose latest published fix to merge.")

    def handle(self, *args, incident_id, **options):
        execution = (
            Execution.objects.filter(incident_id=incident_id)
            .exclude(branch="")
            .select_related("incident__service_record")
            .first()
        )
        if execution is None:
            raise CommandError(f"Incident #{incident_id} has no published fix (approve one first).")
        try:
            head = merge_execution(execution)
        except CodeHostError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Merged {execution.branch} into {execution.incident.service_record.default_branch} ({head[:12]})."
        )
        watch_executions()
        execution.refresh_from_db()
        self.stdout.write(f"Verification: {execution.get_verification_display()}. {execution.verification_note}")
