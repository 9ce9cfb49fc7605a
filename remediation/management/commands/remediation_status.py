"""Print what Quench is doing about each open incident: diagnosis, fix attempts, proposal."""

import textwrap
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Prefetch
from django.urls import reverse

from incidents.choices import IncidentStatus
from incidents.models import Incident
from remediation.choices import DIAGNOSIS_IN_FLIGHT, ApprovalStatus
from remediation.models import Diagnosis

# Lines are wrapped (between words) at this width to stay readable in a terminal.
WIDTH = 110


class Command(BaseCommand):
    help = "Show each open incident's latest diagnosis, fix attempts and proposal (optionally wait for them)."

    def add_arguments(self, parser):
        parser.add_argument("--service", default="", help="Only this service's incidents.")
        parser.add_argument(
            "--wait", type=float, default=0, help="Wait up to this many seconds for diagnoses in flight to finish."
        )

    def handle(self, *args, service, wait, **options):
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline and self._in_flight(service):
            time.sleep(1)
        incidents = Incident.objects.exclude(status=IncidentStatus.RESOLVED).order_by("id")
        if service:
            incidents = incidents.filter(service=service)
        incidents = incidents.prefetch_related(
            Prefetch("diagnoses", queryset=Diagnosis.objects.prefetch_related("attempts", "approvals")), "executions"
        )
        for incident in incidents:
            self._write(f"#{incident.pk} [{incident.status}] {incident.title}", indent="    ")
            diagnosis = next(iter(incident.diagnoses.all()), None)
            if diagnosis is None:
                self.stdout.write("    not diagnosed")
                continue
            self._write(
                f"    diagnosis #{diagnosis.pk} {diagnosis.status} by {diagnosis.provider or '?'}: "
                f"{diagnosis.hypothesis or diagnosis.error}",
                indent="        ",
            )
            for attempt in diagnosis.attempts.all():
                test = " with a regression test" if attempt.adds_regression_test else ""
                self.stdout.write(
                    f"    fix attempt {attempt.number}: {attempt.status}{test} ({attempt.duration_ms or 0} ms)"
                )
            self.stdout.write(f"    → {diagnosis.outcome or diagnosis.status}")
            for approval in diagnosis.approvals.all():
                if approval.status == ApprovalStatus.PENDING:
                    url = settings.SITE_URL + reverse("admin:remediation_approvalrequest_change", args=[approval.pk])
                    self.stdout.write(f"    decide it: {url}")
            for execution in incident.executions.all():
                where = execution.pull_request_url or execution.branch or execution.get_kind_display()
                self.stdout.write(
                    f"    execution #{execution.pk} {execution.status} ({where}): {execution.get_verification_display()}"
                )
        if self._in_flight(service):
            self.stdout.write("Some diagnoses are still running.")

    def _write(self, line: str, *, indent: str) -> None:
        """One logical line, wrapped between words: a path or URL is never cut (copy it whole)."""
        lead = line[: len(line) - len(line.lstrip())]
        text = " ".join(line.split())  # a multi-line hypothesis or title reads as one paragraph
        for part in textwrap.wrap(
            text,
            width=WIDTH,
            initial_indent=lead,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        ):
            self.stdout.write(part)

    @staticmethod
    def _in_flight(service: str) -> bool:
        diagnoses = Diagnosis.objects.filter(status__in=DIAGNOSIS_IN_FLIGHT)
        if service:
            diagnoses = diagnoses.filter(incident__service=service)
        return diagnoses.exists()
