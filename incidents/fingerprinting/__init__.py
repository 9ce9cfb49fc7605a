"""Fingerprinting: which incident a `Signal` belongs to. Plain Python; knows `Signal`s and nothing else.

A fingerprint is a sha256 over the algorithm's version, the strategy that decided, and the
*contributing* components. Every component is kept on the fingerprint, contributing or
not, with a hint that says why, so the admin can show how an incident was grouped.

Order of precedence (the first that applies decides):

1. **Explicit dedup key** (`signal.dedup_key`, the source's own grouping key, within
   `signal.dedup_scope` — the integration that sent it — when set): strategy
   ``dedup_key``; every other component is listed as "overridden by dedup key".
2. **First matching rule** (`FingerprintRuleSpec`, admin records in order): strategy
   ``rule:<name>``. Its `static_key` (plus the service when `group_by` holds
   ``service``), else its `group_by` components, else its name.
3. **Default strategy for the signal's kind**:

   - ``default:error`` — service, exception type, in-app stack frames as
     ``module:function`` (no line numbers; library frames left out; with no in-app frame
     all frames; repeated frames of a recursion counted once), the route template of the
     request path, the HTTP method. With no frames, the template of the exception value
     (or message) stands in for them.
   - ``default:alert`` — service, alertname, labels: the source's grouping labels when it
     names them, else every label except the volatile ones (`VOLATILE_LABELS`: instance,
     pod, node, host, ...: an alert firing on two replicas is one incident). The title
     template counts only when there is no alertname.
   - ``default:log`` — service, message template, logger name (label ``logger`` or
     ``logger_name``), exception type, route template, method. With the service's learned
     templates (`TemplateBook`, see `learning`), the message is its group's key: the
     template of the group's first message, which a learned variable never changes.

   Environment never contributes: the same bug in staging and production is one problem.
4. **Fallback** (the default found nothing that identifies the problem, e.g. an error with
   no exception, frames or message, or an unknown kind): service and title template.

`FINGERPRINT_VERSION` is stored beside every hash: a change to anything here that would
give an existing signal another hash must bump it, so old incidents are never silently
regrouped.
"""

from incidents.fingerprinting.components import (
    FINGERPRINT_VERSION,
    Component,
    Fingerprint,
    FingerprintRuleSpec,
)
from incidents.fingerprinting.learning import TemplateBook
from incidents.fingerprinting.normalize import PLACEHOLDERS, normalize_message, normalize_route
from incidents.fingerprinting.strategies import (
    GROUPABLE_COMPONENTS,
    VOLATILE_LABELS,
    compute_fingerprint,
    rule_matches,
    rule_problems,
)

__all__ = [
    "FINGERPRINT_VERSION",
    "GROUPABLE_COMPONENTS",
    "PLACEHOLDERS",
    "VOLATILE_LABELS",
    "Component",
    "Fingerprint",
    "FingerprintRuleSpec",
    "TemplateBook",
    "compute_fingerprint",
    "normalize_message",
    "normalize_route",
    "rule_matches",
    "rule_problems",
]
