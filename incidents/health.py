"""Checks that /healthz runs besides its own (database, queue, scheduler).

`incidents` is the bottom layer and imports no other app, so apps above it add their
checks here from `AppConfig.ready()` (remediation adds "sandbox": is test isolation
available?). A check is a function returning a dict with "ok" (and "problem" when not
ok); it must be quick and must not raise (if it does, it counts as failing). A failing
critical check makes Quench "failing" (503); a failing non-critical one makes it "degraded":
still 200, with the reason in the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: Callable[[], dict]
    critical: bool


_registry: dict[str, HealthCheck] = {}


def register_health_check(name: str, check: Callable[[], dict], *, critical: bool = True) -> None:
    """Add (or replace, so that a second `ready()` is harmless) the check called `name`."""
    _registry[name] = HealthCheck(name, check, critical)


def registered_health_checks() -> list[HealthCheck]:
    return list(_registry.values())
