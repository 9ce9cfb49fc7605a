"""The data a fingerprint is made of: components, the fingerprint itself, and rule specs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# Bump when any change to this package would give an existing signal another hash. Stored
# beside every hash, so old incidents keep grouping by the algorithm that made them.
# 2: message templates with host:port, paths, serial numbers, numbered suffixes, user names
#    with digits and HTTP methods in quotes; log messages grouped by learned templates.
FINGERPRINT_VERSION = 2


@dataclass(frozen=True)
class Component:
    """One part of a signal that can go into its fingerprint, and whether it did and why."""

    name: str
    values: tuple[str, ...]
    contributes: bool
    hint: str

    def as_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values), "contributes": self.contributes, "hint": self.hint}


@dataclass(frozen=True)
class Fingerprint:
    """The grouping decision for one signal: the hash, and the components that explain it."""

    hash: str
    version: int
    strategy: str
    components: tuple[Component, ...]

    def as_dict(self) -> dict:
        return {
            "hash": self.hash,
            "version": self.version,
            "strategy": self.strategy,
            "components": [component.as_dict() for component in self.components],
        }

    def contributing(self) -> tuple[Component, ...]:
        return tuple(component for component in self.components if component.contributes)


@dataclass(frozen=True)
class FingerprintRuleSpec:
    """An admin fingerprint rule as plain data. Every non-empty matcher must match; empty ones match anything.

    `label_matchers` are (label name, regular expression) pairs, each a full match against
    the label's value, a missing label counting as "" (Prometheus' convention).
    `group_by` names components (`service`, `alertname`, `exception_type`, `message`,
    `title`, `frames`, `route`, `method`, `environment`, `severity`, `source`, `logger`, `labels`,
    `label:<name>`) to group by instead of the default strategy. `static_key`, when set,
    gives every matching signal one fingerprint (one per service when `group_by` holds
    `service`). A rule with neither groups every match under its name.
    """

    name: str
    service: str = ""
    alertname: str = ""
    exception_type: str = ""
    message_pattern: str = ""
    label_matchers: tuple[tuple[str, str], ...] = ()
    group_by: tuple[str, ...] = ()
    static_key: str = ""


def fingerprint_hash(version: int, strategy: str, components: tuple[Component, ...]) -> str:
    """sha256 hex over a canonical JSON of the version, the strategy and the contributing components."""
    canonical = json.dumps(
        [version, strategy, [[c.name, list(c.values)] for c in components if c.contributes]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def make_fingerprint(strategy: str, components: list[Component] | tuple[Component, ...]) -> Fingerprint:
    components = tuple(components)
    return Fingerprint(
        hash=fingerprint_hash(FINGERPRINT_VERSION, strategy, components),
        version=FINGERPRINT_VERSION,
        strategy=strategy,
        components=components,
    )
