"""The confirmation page behind a signed action link (acknowledge an incident, approve a proposal).

An admin view: login required (the admin's login page, then back here), then the
permission of the action. GET only shows what would happen; the POST (with its CSRF token)
uses up the link and calls the owning app's service, which checks the state and refuses
with a reason when the action no longer applies.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from incidents.models import Incident
from incidents.services import TransitionRefused, acknowledge_incident
from notifications import links
from notifications.models import UsedActionLink
from remediation.approvals import approve as approve_proposal
from remediation.approvals import can_approve
from remediation.models import ApprovalRequest

logger = logging.getLogger(__name__)

PERMISSION_NEEDED = {
    links.ACKNOWLEDGE: "the “change incident” permission",
    links.APPROVE: "the “approve remediation” permission (the Approvers group)",
}


def _allowed(user, action: str) -> bool:
    if action == links.APPROVE:
        return can_approve(user)
    return user.is_active and user.is_staff and user.has_perm("incidents.change_incident")


def _page(request, context: dict, status: int = 200) -> TemplateResponse:
    base = {"title": "Confirm action", "site_header": "Quench", "has_permission": True}
    return TemplateResponse(request, "admin/notifications/action_confirm.html", {**base, **context}, status=status)


@require_http_methods(["GET", "POST"])
def action_view(request: HttpRequest, token: str) -> HttpResponse:
    """Show (GET) or carry out (POST) the action a signed link grants."""
    try:
        link = links.read_token(token)
    except links.LinkInvalid as exc:
        return _page(request, {"error": str(exc)}, status=410 if "expired" in str(exc) else 400)
    used = UsedActionLink.objects.filter(token_digest=link.digest).first()
    if used is not None:
        return _page(
            request,
            {"error": f"This link was already used by {used.used_by} at {used.used_at:%Y-%m-%d %H:%M} UTC."},
            status=409,
        )
    if not _allowed(request.user, link.action):
        return _page(request, {"error": f"You need {PERMISSION_NEEDED[link.action]} to do this."}, status=403)
    target = _target(link)
    if target is None:
        return _page(request, {"error": "What this link points at no longer exists."}, status=404)
    if request.method == "GET":
        return _page(request, {"link": link, "target": target, "action_label": _label(link.action)})
    try:
        with transaction.atomic():
            UsedActionLink.objects.create(
                token_digest=link.digest,
                action=link.action,
                object_id=link.object_id,
                used_by=request.user.get_username(),
            )
    except IntegrityError:
        return _page(request, {"error": "This link was just used by someone else."}, status=409)
    actor = request.user.get_username()
    try:
        if link.action == links.ACKNOWLEDGE:
            acknowledge_incident(link.object_id, actor=actor, note=f"Acknowledged by {actor} from a notification")
            messages.success(request, f"Incident #{link.object_id} acknowledged.")
            return redirect(reverse("admin:incidents_incident_change", args=[link.object_id]))
        approve_proposal(link.object_id, user=request.user, note="Approved from a notification link")
        messages.success(request, f"Proposal #{link.object_id} approved.")
        return redirect(reverse("admin:remediation_approvalrequest_change", args=[link.object_id]))
    except TransitionRefused as exc:  # ApprovalRefused is one too
        return _page(request, {"error": exc.message, "target": target}, status=409)


def _label(action: str) -> str:
    return {"acknowledge": "Acknowledge the incident", "approve": "Approve the proposal"}[action]


def _target(link: links.ActionLink):
    if link.action == links.ACKNOWLEDGE:
        return Incident.objects.filter(pk=link.object_id).first()
    return ApprovalRequest.objects.select_related("incident").filter(pk=link.object_id).first()
