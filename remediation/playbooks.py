"""Playbooks: which one fits an incident, whether its steps are well formed, and what they would do.

Steps are plain JSON objects so engineers can write them in the admin:

    {"type": "http", "name": "Restart workers", "method": "POST", "url": "https://ops/{{ service }}/restart"}
    {"type": "command", "command": ["kubectl", "rollout", "restart", "deployment/{{ service }}"]}
    {"type": "task", "task": "timeline_note", "kwargs": {"message": "..."}}
    {"type": "wait", "seconds": 30}
    {"type": "check", "url": "{{ health_check_url }}", "expect_status": 200, "contains": "ok"}

Values may use `{{ variable }}`: the playbook's own variables, and the incident's
(service, environment, alertname, exception_type, category, incident_id, severity,
health_check_url, service_url — the scheme, host and port of the service's health check
URL —, quench_url — QUENCH_PUBLIC_URL —, and `labels.NAME`). A command's executable must be on the
`QUENCH_PLAYBOOK_COMMANDS` allow-list; a command is an argument list, never a shell line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from incidents.models import Incident

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
BUILTIN_VARIABLES = frozenset(
    {
        "service",
        "environment",
        "alertname",
        "exception_type",
        "category",
        "incident_id",
        "severity",
        "health_check_url",
        "service_url",
        "quench_url",
    }
)
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
MAX_WAIT_SECONDS = 3600

# Fields each step type requires and allows (besides "type" and "name").
STEP_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "http": (frozenset({"method", "url"}), frozenset({"headers", "body", "expect_status", "timeout"})),
    "command": (frozenset({"command"}), frozenset({"timeout"})),
    "task": (frozenset({"task"}), frozenset({"kwargs"})),
    "wait": (frozenset({"seconds"}), frozenset()),
    "check": (frozenset({"url"}), frozenset({"expect_status", "contains", "timeout"})),
}

# Named tasks a "task" step may call: name → dotted path of a function taking
# (incident_id, **kwargs). Kept explicit so a playbook cannot call arbitrary code.
NAMED_TASKS: dict[str, str] = {
    "timeline_note": "remediation.playbook_tasks.timeline_note",
    "reanalyze": "remediation.playbook_tasks.reanalyze",
}


def step_problems(steps: object, variables: object = None) -> list[str]:
    """Everything wrong with a playbook's steps and variables, as sentences (empty when fine)."""
    problems: list[str] = []
    if not isinstance(variables, dict | type(None)) or (
        isinstance(variables, dict) and not all(isinstance(key, str) for key in variables)
    ):
        problems.append('Variables must be an object of name → value, e.g. {"deployment": "web"}.')
        variables = {}
    known = BUILTIN_VARIABLES | set(variables or {})
    if not isinstance(steps, list) or not steps:
        return [*problems, "Give at least one step, as a list of objects."]
    for position, step in enumerate(steps, start=1):
        where = f"Step {position}"
        if not isinstance(step, dict):
            problems.append(f"{where} must be an object.")
            continue
        kind = step.get("type")
        if kind not in STEP_FIELDS:
            problems.append(f"{where}: type must be one of {', '.join(STEP_FIELDS)}.")
            continue
        required, optional = STEP_FIELDS[kind]
        if missing := sorted(required - set(step)):
            problems.append(f"{where} ({kind}) needs {', '.join(missing)}.")
            continue
        if unknown := sorted(set(step) - required - optional - {"type", "name"}):
            problems.append(f"{where} ({kind}) has unknown fields: {', '.join(unknown)}.")
        problems.extend(f"{where}: {problem}" for problem in _type_problems(kind, step))
        for name in sorted(_variables_in(step)):
            if name not in known and not name.startswith("labels."):
                problems.append(f"{where} uses {{{{ {name} }}}}, which is not a known variable.")
    return problems


def _type_problems(kind: str, step: dict) -> list[str]:
    problems = []
    if kind in {"http", "check"}:
        url = step["url"]
        if not isinstance(url, str) or not (url.startswith("{{") or urlsplit(url).scheme in {"http", "https"}):
            problems.append("url must be an http(s) URL (or a {{ variable }}).")
        if "expect_status" in step and not (
            isinstance(step["expect_status"], int) and 100 <= step["expect_status"] <= 599
        ):
            problems.append("expect_status must be an HTTP status code.")
    if kind == "http" and str(step["method"]).upper() not in HTTP_METHODS:
        problems.append(f"method must be one of {', '.join(sorted(HTTP_METHODS))}.")
    if kind == "command":
        argv = step["command"]
        if not isinstance(argv, list) or not argv or not all(isinstance(part, str) for part in argv):
            problems.append('command must be a list of arguments, e.g. ["systemctl", "restart", "web"].')
        elif argv[0] not in settings.QUENCH_PLAYBOOK_COMMANDS:
            allowed = ", ".join(settings.QUENCH_PLAYBOOK_COMMANDS) or "nothing"
            problems.append(f"{argv[0]!r} is not an allowed command (QUENCH_PLAYBOOK_COMMANDS allows {allowed}).")
    if kind == "task":
        if step["task"] not in NAMED_TASKS:
            problems.append(f"task must be one of {', '.join(sorted(NAMED_TASKS))}.")
        if not isinstance(step.get("kwargs", {}), dict):
            problems.append("kwargs must be an object.")
    if kind == "wait" and not (isinstance(step["seconds"], int | float) and 0 < step["seconds"] <= MAX_WAIT_SECONDS):
        problems.append(f"seconds must be a number between 0 and {MAX_WAIT_SECONDS}.")
    if "timeout" in step and not (isinstance(step["timeout"], int | float) and 0 < step["timeout"] <= 600):
        problems.append("timeout must be a number of seconds between 0 and 600.")
    return problems


def _variables_in(value: object) -> set[str]:
    if isinstance(value, str):
        return set(_VARIABLE.findall(value))
    if isinstance(value, dict):
        return set().union(*(_variables_in(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_variables_in(item) for item in value)) if value else set()
    return set()


# --- matching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaybookMatch:
    """A playbook that fits an incident, how specifically, and why."""

    playbook: object  # remediation.models.Playbook
    specificity: int
    why: str


def match_playbook(playbook, incident: Incident) -> PlaybookMatch | None:
    """Whether `playbook` applies to `incident`; its specificity is the number of conditions it set."""
    if not playbook.matches_basic(service=incident.service, alertname=incident.alertname, labels=incident.labels):
        return None
    if playbook.match_category and playbook.match_category != incident.category:
        return None
    if playbook.match_exception_type and not re.fullmatch(playbook.match_exception_type, incident.exception_type or ""):
        return None
    reasons = []
    if playbook.match_service:
        reasons.append(f"service {incident.service}")
    if playbook.match_alertname:
        reasons.append(f"alert {incident.alertname}")
    if playbook.match_category:
        reasons.append(f"category {incident.category}")
    if playbook.match_exception_type:
        reasons.append(f"exception {incident.exception_type}")
    if playbook.match_labels:
        reasons.append(
            "labels " + ", ".join(f"{name}={incident.labels.get(name, '')}" for name in playbook.match_labels)
        )
    return PlaybookMatch(playbook, len(reasons), "matches " + "; ".join(reasons) if reasons else "matches anything")


def candidate_playbooks(incident: Incident, *, limit: int = 5, now=None) -> list[PlaybookMatch]:
    """Enabled playbooks that fit the incident, most specific first, leaving out ones cooling down."""
    from remediation.models import Playbook

    now = now or timezone.now()
    matches = []
    for playbook in Playbook.objects.filter(enabled=True):
        if playbook.last_run_at and playbook.last_run_at > now - timedelta(minutes=playbook.cooldown_minutes):
            continue
        if match := match_playbook(playbook, incident):
            matches.append(match)
    matches.sort(key=lambda match: (-match.specificity, match.playbook.position, match.playbook.name))
    return matches[:limit]


# --- dry run -------------------------------------------------------------------------------


def incident_variables(playbook, incident: Incident) -> dict[str, str]:
    """The values `{{ variables }}` take for this incident: the incident's, then the playbook's defaults."""
    service = incident.service_record
    values = {
        "service": incident.service,
        "environment": incident.environment,
        "alertname": incident.alertname,
        "exception_type": incident.exception_type,
        "category": incident.category,
        "incident_id": str(incident.pk),
        "severity": incident.severity,
        "health_check_url": service.health_check_url if service else "",
        "service_url": _origin(service.health_check_url) if service else "",
        "quench_url": settings.SITE_URL,
    }
    values.update({f"labels.{name}": str(value) for name, value in (incident.labels or {}).items()})
    values.update({name: str(value) for name, value in (playbook.variables or {}).items()})
    return values


def _origin(url: str) -> str:
    """scheme://host[:port] of `url` ("" when it is not an absolute URL)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def render_value(value: object, variables: dict[str, str]) -> object:
    """`value` with every `{{ name }}` replaced (unknown names render empty and are reported by validation)."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: variables.get(match.group(1), ""), value)
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    return value


def dry_run(playbook, incident: Incident) -> list[dict]:
    """The playbook's steps as they would run for `incident`: rendered, with a one-line description each."""
    variables = incident_variables(playbook, incident)
    rendered_steps = []
    for position, step in enumerate(playbook.steps, start=1):
        rendered = render_value(step, variables)
        rendered_steps.append(
            {
                "position": position,
                "type": step.get("type"),
                "name": step.get("name", ""),
                "description": _describe(rendered),
                "step": rendered,
            }
        )
    return rendered_steps


def _describe(step: dict) -> str:
    kind = step.get("type")
    if kind == "http":
        return f"{str(step['method']).upper()} {step['url']}" + (
            f" (expect {step['expect_status']})" if "expect_status" in step else ""
        )
    if kind == "command":
        return "run " + " ".join(step["command"])
    if kind == "task":
        arguments = ", ".join(f"{key}={value!r}" for key, value in (step.get("kwargs") or {}).items())
        return f"task {step['task']}({arguments})"
    if kind == "wait":
        return f"wait {step['seconds']} s"
    if kind == "check":
        expectation = f"status {step.get('expect_status', 200)}"
        if step.get("contains"):
            expectation += f" and body containing {step['contains']!r}"
        return f"check {step['url']} answers {expectation}"
    return str(step)
