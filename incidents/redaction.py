"""Redaction of secrets in text and in JSON-like structures.

Called on every stored payload and, through a logging filter, on every log line, so
it is built for the common case of nothing to redact: one scan for trigger words
decides whether the full set of patterns runs at all.

What is redacted, and how:
- the secret part becomes `[REDACTED]`; what names it stays (the key in `password=…`,
  the user in `postgres://user:…@host`, the scheme in `Authorization: Bearer …`), and
  so do public, well-known prefixes of token formats (`ghp_`, `sk-ant-`, `xoxb-`), so
  a reader still knows which credential leaked;
- dictionaries: the whole value of a key whose name says secret (password, token,
  api_key, authorization, cookie, private_key, routing_key, dsn, ...), case-insensitive;
  lists of `[name, value]` pairs (HTTP headers as Sentry sends them) likewise;
- text: private key PEM blocks, credentials in URLs, Authorization headers and
  bearer tokens, `key=value` / `"key": "value"` / `KEY: value` pairs whose key says
  secret, and the shapes of AWS, GitHub, Slack, Anthropic, OpenAI, Stripe, Google,
  Telegram, JWT and Quench tokens, and Slack/Discord/Feishu/Teams webhook URLs.

What is deliberately left alone, so stack traces stay readable: `password=password`
or `token=None` in source lines, values that are dotted names (`password=form.data`,
`token=settings.API_TOKEN`) or mention the key word (`password=raw_password`),
`token: str` in signatures, UUIDs and git SHAs.
"""

from __future__ import annotations

import functools
import re

REDACTED = "[REDACTED]"

# One cheap scan: if none of these occur, no pattern below can match.
_TRIGGER = re.compile(
    r"passw|passphrase|secret|token|key|auth|bearer|credential|cookie|session|signature|sig=|://|-----BEGIN"
    r"|A(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA)|gh[pousr]_|github_pat_|xox|xapp-|sk-|sk_|rk_|whsec_"
    r"|AIza|eyJ|:AA|qk_|telegram|[?&]code=",
    re.IGNORECASE,
)

_SECRET_WORDS = (
    r"(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key"
    r"|auth[_-]?key|client[_-]?secret|credentials?|session[_-]?key|sessionid|signing[_-]?key|encryption[_-]?key)"
)
# A key that names a secret: the secret word ends it ("db_password", "X-Api-Key"),
# so "token_type", "max_tokens" and "password_reset_url" do not count.
# The prefix is bounded: an unbounded one makes a long "a_a_a_…" line quadratic.
_SECRET_KEY_TEXT = rf"(?<![A-Za-z0-9])(?:[A-Za-z0-9]{{1,40}}[_.-]){{0,6}}{_SECRET_WORDS}(?![A-Za-z0-9_])"
# A value ending in ":" is the next key ("password: X-Api-Key: …"), not a value: no match
# here, so the scan moves on and finds that key's own value.
_VALUE = r"[^\s\"'&,;()\[\]{}<>`]++(?![(\[])(?<!:)"
_QUOTED = r"\"[^\"\n]*\"|'[^'\n]*'|\$\{[^}\s]*\}"  # quoted, or a ${PLACEHOLDER}

# (pattern, replacement) in order: the more specific shapes first.
_RULES: list[tuple[re.Pattern, object]] = []


def _rule(pattern: str, replacement, flags: int = 0) -> None:
    _RULES.append((re.compile(pattern, flags), replacement))


_rule(
    r"(-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----)[\s\S]*?(?:-----END (?P=kind)-----|\Z)",
    lambda m: f"{m.group(1)}{REDACTED}-----END {m.group('kind')}-----",
)
# Webhook URLs are credentials in themselves.
_rule(r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+", rf"\1{REDACTED}")
_rule(r"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/)[0-9]+/[A-Za-z0-9_-]+", rf"\1{REDACTED}")
_rule(r"(https://open\.(?:feishu\.cn|larksuite\.com)/open-apis/bot/v2/hook/)[A-Za-z0-9-]+", rf"\1{REDACTED}")
_rule(r"(https://[A-Za-z0-9-]+\.webhook\.office\.com/webhook(?:b2)?/)[^\s\"'<>]+", rf"\1{REDACTED}")
_rule(r"(api\.telegram\.org/(?:file/)?bot)[0-9]{5,}:[A-Za-z0-9_-]{20,}", rf"\1{REDACTED}")
# scheme://user:password@host — keep the user, hide the password.
_rule(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/?#@\"'<>]*+:)[^\s@/?#\"'<>]++@", rf"\g<head>{REDACTED}@")
# Signed query parameters (Azure/Teams workflow URLs, presigned links).
_rule(r"([?&](?:sig|signature|X-Amz-Signature|X-Goog-Signature|key|code)=)[^&#\s\"'<>]+", rf"\1{REDACTED}", re.I)
# HTTP Authorization headers, in any of the shapes logs and payloads write them.
_rule(
    r"(?P<head>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|apikey|sso-key"
    r"|negotiate|ntlm|aws4-hmac-sha256|dsn)\s+)?)[^\s\"',;]++",
    rf"\g<head>{REDACTED}",
    re.IGNORECASE,
)
# A bare bearer token: long and with a digit, so "bearer of bad news" and "bearer password_reset" survive.
_rule(r"(?P<head>\bbearer\s+)(?=[A-Za-z0-9._~+/-]{0,512}[0-9])[A-Za-z0-9._~+/-]{16,}=*", rf"\g<head>{REDACTED}", re.I)
# JSON-ish: "password": "value" (value quoted, key quoted).
_rule(
    rf"(?P<head>[\"']{_SECRET_KEY_TEXT}[\"']\s*:\s*)(?P<q>[\"'])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)",
    lambda m: m.group(0) if _keep(m.group("value")) else f"{m.group('head')}{m.group('q')}{REDACTED}{m.group('q')}",
    re.IGNORECASE,
)
# key=value anywhere (query strings, env dumps, DSNs, kwargs in messages); "==" is a comparison.
_rule(
    rf"(?P<head>{_SECRET_KEY_TEXT}\s*=(?!=)\s*)(?P<value>{_QUOTED}|{_VALUE})",
    lambda m: _replace_value(m),
    re.IGNORECASE,
)
# KEY: value (YAML, HTTP headers, env files, log lines); "token: str" in signatures is kept by _keep.
_rule(
    rf"(?P<head>(?<![\w.-])[\"']?{_SECRET_KEY_TEXT}[\"']?[ \t]*:(?![:=])[ \t]*)(?P<value>{_QUOTED}|{_VALUE})",
    lambda m: _replace_value(m),
    re.IGNORECASE,
)
# Token shapes, wherever they appear.
_rule(r"\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA))[A-Z0-9]{16}\b", rf"\1{REDACTED}")
_rule(r"\b(gh[pousr]_)[A-Za-z0-9]{30,255}\b", rf"\1{REDACTED}")
_rule(r"\b(github_pat_)[A-Za-z0-9_]{22,255}\b", rf"\1{REDACTED}")
_rule(r"\b(xox[abposre]-)[A-Za-z0-9-]{10,}", rf"\1{REDACTED}")
_rule(r"\b(xapp-)[A-Za-z0-9-]{10,}", rf"\1{REDACTED}")
_rule(r"\b(sk-ant-)[A-Za-z0-9_-]{20,}", rf"\1{REDACTED}")
_rule(r"\b(sk-(?:proj-|svcacct-|admin-)?)(?=[A-Za-z0-9_-]{0,256}[0-9])[A-Za-z0-9_-]{20,}", rf"\1{REDACTED}")
_rule(r"\b((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{10,}", rf"\1{REDACTED}")
_rule(r"\b(whsec_)[A-Za-z0-9+/=]{20,}", rf"\1{REDACTED}")
_rule(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", REDACTED)
_rule(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}", REDACTED)
_rule(r"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{30,40}(?![A-Za-z0-9_-])", REDACTED)
_rule(r"\b(qk_)[A-Za-z0-9_-]{40,}", rf"\1{REDACTED}")

# Values that are code (type hints, literals) or words describing a problem, not a secret.
_NOT_SECRET_VALUES = frozenset(
    {
        *("", "none", "null", "nil", "true", "false", "undefined", "self", "cls", REDACTED.lower()),
        *("str", "string", "bytes", "int", "float", "bool", "dict", "list", "any", "optional", "union", "object"),
        *("required", "missing", "invalid", "expired", "empty", "unset", "revoked", "wrong", "incorrect"),
    }
)
# Attribute access in code (form.cleaned_data, request.POST); real tokens carry digits.
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z_]*)+$")
_MASKED = re.compile(r"^(?:\*+|x{3,}|\.{3,}|<[^>]*>|\$\{?[A-Za-z_]\w*\}?|%\(?[A-Za-z_]*\)?s|\{[A-Za-z_]*\})$", re.I)
_MENTIONS_KEY = re.compile(r"passw|secret|token|api_?key|credential", re.IGNORECASE)


def _replace_value(match: re.Match) -> str:
    """head + [REDACTED], keeping the quotes of a quoted value; code and placeholders stay."""
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    inner = value[1:-1] if quote else value
    if _keep(inner):
        return match.group(0)
    return f"{match.group('head')}{quote}{REDACTED}{quote}"


def _keep(value: str) -> bool:
    """True for values that are code or placeholders, not secrets (see the module docstring)."""
    if value.lower() in _NOT_SECRET_VALUES or _MASKED.match(value):
        return True
    return bool(_DOTTED_NAME.match(value) or _MENTIONS_KEY.search(value))


def redact_text(text: str) -> str:
    """The text with every known secret shape replaced by [REDACTED]."""
    if not isinstance(text, str) or len(text) < 8 or not _TRIGGER.search(text):
        return text
    if len(text) <= _CACHED_TEXT_LENGTH:
        return _redact_short(text)
    return _apply_rules(text)


def _apply_rules(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


# Alerts repeat the same short strings (label values, URLs, summaries) over and over;
# remembering their redacted form keeps redaction off the ingestion hot path.
_CACHED_TEXT_LENGTH = 256
_redact_short = functools.lru_cache(maxsize=16384)(_apply_rules)


# Dictionary keys whose whole value is a secret, compared after lower-casing and
# turning "-" into "_" ("X-Api-Key" → "x_api_key").
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "cookies",
        "set_cookie",
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "x_api_key",
        "private_key",
        "client_secret",
        "routing_key",
        "integration_key",
        "service_key",
        "access_token",
        "refresh_token",
        "id_token",
        "dsn",
        "webhook_url",
        "bot_token",
        "signing_secret",
        "session",
        "sessionid",
        "csrftoken",
    }
)
_SECRET_KEY_SUFFIX = re.compile(
    r"(?:^|_)(?:password|passwd|passphrase|secret|token|api_?key|access_?key|private_?key|secret_?key|auth_?key"
    r"|client_?secret|credentials?|signing_?key|encryption_?key|webhook_?url)$"
)


def is_secret_key(name: object) -> bool:
    """Whether a mapping key names a secret (so its whole value is hidden)."""
    if not isinstance(name, str) or not name:
        return False
    return _is_secret_key_name(name)


@functools.lru_cache(maxsize=4096)
def _is_secret_key_name(name: str) -> bool:
    normalized = name.strip().lower().replace("-", "_").replace(".", "_").replace(" ", "_")
    return normalized in SECRET_KEYS or bool(_SECRET_KEY_SUFFIX.search(normalized))


def redact(value: object) -> object:
    """A deep copy of a JSON-like value with secrets redacted (dicts, lists, tuples, strings)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redact_named(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 2 and is_secret_key(value[0]):
            # ["Authorization", "Bearer …"]: a header or tag written as a pair.
            return type(value)([value[0], _hidden(value[1])])
        return type(value)(redact(item) for item in value)
    return value


def _redact_named(key: object, value: object) -> object:
    if is_secret_key(key):
        return _hidden(value)
    return redact(value)


def _hidden(value: object) -> object:
    # Empty values and flags stay visible: they hide nothing and say that the field was unset.
    if value is None or isinstance(value, bool) or value == "" or value == [] or value == {}:
        return value
    return REDACTED
