"""Sentry: its webhooks (`parser.parse`) and its SDKs reporting straight to Quench through a DSN.

- `parser` — webhook payloads and SDK events → Signals (pure);
- `envelope` — the SDK wire protocol: compressed bodies, envelopes, `X-Sentry-Auth`,
  Sentry's rate-limit header (pure);
- `auth` — which integration a DSN public key belongs to.
"""

from incidents.sources.sentry.parser import LEVELS, SOURCE, parse, parse_sdk_event

__all__ = ["LEVELS", "SOURCE", "parse", "parse_sdk_event"]
