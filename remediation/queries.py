"""Read-side queries shared by the admin and the API."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from incidents.choices import Severity
from remediation.models import ApprovalRequest

# P0 first; the queue is worked most urgent, then oldest, first.
_SEVERITY_RANK = Case(
    *(When(incident__severity=severity, then=Value(rank)) for rank, severity in enumerate(Severity.values)),
    default=Value(len(Severity.values)),
    output_field=IntegerField(),
)


def approval_queue(*, status: str | None = None) -> QuerySet[ApprovalRequest]:
    """Approvals with their incident, most urgent first: severity, then oldest (pending), else newest."""
    queryset = ApprovalRequest.objects.select_related("incident").annotate(severity_rank=_SEVERITY_RANK)
    if status is not None:
        queryset = queryset.filter(status=status)
    if status == "pending":
        return queryset.order_by("severity_rank", "created_at", "id")
    return queryset.order_by("-created_at", "-id")
