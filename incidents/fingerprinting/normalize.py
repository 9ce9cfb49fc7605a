"""Message templates and route templates: the variable parts of a text replaced by placeholders.

`normalize_message` turns one log line, alert summary or exception value into its
template, so that two occurrences of one problem that differ only in ids, numbers,
addresses, names of users or times get the same text, and two different problems do not.
The rules are general (nothing in them is specific to one program's logs) and are applied
in this order, each to what the previous ones left:

1. Whitespace runs become one space; leading and trailing whitespace goes.
2. Query values: ``?page=2&q=x`` -> ``?page=<str>&q=<str>`` (keys stay), in URLs or not.
3. Timestamps that start with a name -> ``<ts>``: ``Sun Dec 04 04:47:44 2005``,
   ``Dec  4 04:47:44``, ``Dec 4, 2005 4:47 PM``.
4. UUIDs -> ``<uuid>``, also with a suffix glued by ``_`` (``<uuid>_old``); e-mail
   addresses -> ``<email>``.
5. File system paths -> ``<path>``: two slashes or more from the start of a word
   (``/var/lib/app/x.db``, ``~/run/a.sh``) or a drive and a backslash (``C:\\Windows\\x``):
   which file is data. A path right after an HTTP method is a route and stays
   (``GET /api/orders/<num>``); a path inside a URL never starts a word, so URLs stay.
6. Host names -> ``<ip>`` (the same placeholder as addresses: whether a log shows a name or
   an address is up to DNS), with their port (``cdn.example.cn:443`` -> ``<ip>``): dotted
   names ending in a common top-level domain; or in a two-letter country domain with three
   labels or more, or with a port; a country domain that is also a file extension
   (``.pl``, ``.sh``) only after a generic second level (``uni.edu.pl``) or with four labels
   or more. Labels may hold capitals and digits (``WORKER-07.prod.corp``). File names
   (``views.py``, ``backup.tar.gz``) and dotted code paths are not host names; a host
   inside a URL stays, because there it names the upstream.
7. A user name -> ``<str>``: the word right after ``user`` / ``username`` (or ``user=``,
   ``user:``), letters or digits, quoted or not, unless it is an ordinary word
   (``user not found``); so is the word after ``password`` / ``publickey`` / ``login`` /
   ``authentication`` (+ ``failed``, ``accepted``...) ``for``: who authenticates
   (``Failed password for root``); ``for invalid user x`` is the user rule's.
8. MAC-like addresses -> ``<hex>``; IPv6 addresses -> ``<ip>``; base64-like runs of 32+
   characters that mix digits, lower and upper case (secrets, session ids) -> ``<token>``.
9. In one pass over what starts with a digit: timestamps that start with a digit ->
   ``<ts>`` (ISO 8601 / RFC 3339 with or without zone, ``2024/01/02``,
   ``04/Dec/2005:04:47:44 +0000``, ``4 Dec 2005``, a clock time ``04:47:44.123``); IPv4
   addresses with an optional port -> ``<ip>``; numbers -> ``<num>``: integers, decimals,
   dotted versions, with a sign, a unit glued or after a space (``10ms``, ``1.5GB``,
   ``5.4 KB``, ``15 ms``, ``99%``) or a comparison sign in front (``<1``, ``>=500``). A
   number glued to the letters before or after it stays (``utf8``, ``sha256``,
   ``jk2_init``, ``http2``, ``2nd``): those are names. A number after ``_``, ``-``, ``/``
   or ``:`` is replaced (``part-00590`` -> ``part-<num>``, ``/users/42``).
10. Hexadecimal: ``0x…`` numbers and runs of 7+ hex digits holding a digit and a letter
    a-f (hashes, object addresses, commit shas) -> ``<hex>``. Serial numbers: letters
    glued to five digits or more (``KB3021674``, ``INC0012345``) -> ``<id>``. The numbered
    member of a series, the last part of a compound name that is one or two letters and a
    number (``rack_B4``, ``node-d1``) -> ``<id>``; a version (``api-v2``) stays.
11. In a route, a name that ends in digits is numbered data (``/data/subdir5/x`` ->
    ``/data/subdir<num>/x``). A snake_case name with a number in it is one id (``rdd_2_0``,
    ``broadcast_15_piece0``, ``blk_-42`` -> ``<id>``); so is a word in which letters and
    digits alternate twice or more (``a1b2c3``, ``x2x4z``, pod name suffixes).
12. Quoted values -> ``<str>``, unless the value looks like an identifier (a letter, ``_``
    or a placeholder first, then ``[\\w.:<>-]``, at most 40 characters). The exception is on
    purpose: in ``KeyError: 'user_id'`` or ``No module named 'redis'`` the quoted word *is*
    the problem, and two missing keys are two bugs; free text inside quotes is data, and so
    is the value of a key (``tag="sync_worker"`` -> ``tag=<str>``). A quoted HTTP request
    keeps its method (``"GET <str>"``): the method tells two requests
    apart. An apostrophe inside a word (``can't``) is never taken for a quote.
13. Placeholders repeated with only separators between them, or restated in parentheses
    (or empty parentheses after one), become one: ``<num>.<num>``, ``<num>, <num>, <num>``,
    ``<num> (<num>)``, ``<ip> ()`` -> one placeholder, so lists, compound ids and
    ``2126 bytes (2.07 KB)`` have one template.

Words that vary but have the form of plain words (a user in ``Failed password for root``, a
program name) are left to the learned second stage, `learning.TemplateBook`.

The result is deterministic and idempotent (a template normalizes to itself). The
patterns are compiled once and mostly start with a literal or a character class, and rare
rules run only when a cheap test says they may match: ~95k log lines per second on one
core (see bench/GROUPING.md).
"""

from __future__ import annotations

import re

PLACEHOLDERS = ("<uuid>", "<hex>", "<ip>", "<email>", "<ts>", "<num>", "<str>", "<token>", "<id>", "<path>")

# Most patterns start with a character (a literal or a class) rather than a lookbehind, so
# that the regex engine can skip ahead to where a match can begin; a lookbehind that guards
# the start comes right after that first character, two characters wide. Rules that are
# rare in practice run only when a cheap test on the text says they may match.

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_MONTH = rf"(?:{_MONTHS}|{_MONTHS.upper()})[a-z]*\.?"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|MON|TUE|WED|THU|FRI|SAT|SUN)[a-z]*,?"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?(?: ?[AaPp][Mm](?![A-Za-z]))?"
_ZONE = r"(?: ?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})(?!\w))?"
_UNIT = r"(?:[nuµm]?s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?|[kKmMgGtTpP]i?[bB]|b|B|bytes?|[kKmMgG]|%|x)"
# Units written after a space (`5.4 KB`, `15 ms`): sizes and durations only, never a letter
# that could start an ordinary word.
_SPACED_UNIT = r"(?:[kKMGTP]i?B|B|bytes?|[nuµm]s|s|secs?|seconds?|mins?|minutes?|hours?|days?)"

_QUERY_VALUE = re.compile(r"([?&][\w.\[\]%-]+)=(?:<str>|[^&#\s\"'<>]+)?")

_NAMED_TIMESTAMP = re.compile(
    rf"(?<![\w:.])(?:{_WEEKDAY} )?{_MONTH} \d{{1,2}}(?:,? \d{{4}})?,? {_CLOCK}{_ZONE}(?: \d{{4}})?(?![\w:])"
)
_MONTH_HINT = re.compile(f"{_MONTHS}|{_MONTHS.upper()}")

_UUID = re.compile(
    r"[0-9a-fA-F](?<![\w-].)[0-9a-fA-F]{7}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![A-Za-z0-9-])"
)

# A file system path: two slashes or more from the start of a word (`/var/lib/app/x.db`,
# `~/run/a.sh`, `/home/ann//job.rts`), or a drive and a backslash (`C:\\Windows\\x.dll`). Which
# file is data. A path right after an HTTP method is a route and stays (`GET /api/orders/<num>`);
# a path inside a URL (`https://host/a/b`) never starts a word.
_PATH = re.compile(
    r"(?:(?<![\w.:/~<>\\-])(?:~/|/)(?<!GET /)(?<!PUT /)(?<!POST /)(?<!HEAD /)(?<!PATCH /)"
    r"(?<!DELETE /)(?<!OPTIONS /)[\w.\-<>*@+%=$~#,]*(?:/[\w.\-<>*@+%=$~#,]*)+"
    r"|[A-Za-z]:\\(?<![\w.]..\\)[^\s\\\"']*(?:\\[^\s\\\"']*)*"
    r"|(?<![\w.:/~<>\\-])\.\.?/[\w.\-<>*@+%=$~#,]+(?:/[\w.\-<>*@+%=$~#,]*)*)"
    r"(?<![.,])"
)

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![\w-])")

# Host names: lower-case dotted labels ending in a common top-level domain, or in a
# two-letter country domain when there are three labels or more. File names (`views.py`,
# `app.min.js`, `backup.tar.gz`) and dotted code paths (mixed case, no known top-level
# domain) are not host names. A host inside a URL stays: there it names the upstream.
_GENERIC_TLDS = (
    "com|net|org|edu|gov|mil|int|io|ai|info|biz|dev|cloud|xyz|local|localdomain|internal|intranet|lan|corp|arpa"
)
_FILE_EXTENSIONS = "py|js|ts|gz|xz|bz|so|sh|md|rs|db|go|rb|pl|pm|cc|hh|mo|po|ps|el|ex|rc"
# Two-letter words that end code paths far more often than host names: the file extensions,
# then attribute and English words (`user.id`, `obj.pk`, `x.is`, `lang.no`).
_NOT_COUNTRY_TLDS = f"{_FILE_EXTENSIONS}|id|pk|in|am|is|it|me|to|no|do|my|be|as|at|on|or|us|tv|ok|hr|ms|ns"
# Labels may hold capitals and digits (`MSRA-SA-41.fareast.corp.example.com`, `tva1.cdn.cn`);
# the top-level domain is lower case. A country domain needs three labels (two are too
# often `module.attr`), or a port after it (`img.example.cn:80`), and a country domain that
# is also a file extension (`.pl`, `.sh`) counts only after a generic second level
# (`wsi.edu.pl`) or with four labels or more (`a-b.dsl.isp.at`; never a code or archive
# extension: `jquery.ui.min.js`). A port belongs to the host: `<ip>` for the whole `host:port`.
_HOST = re.compile(
    r"[A-Za-z0-9](?<![\w.@/:\\-].)[A-Za-z0-9-]*(?:"
    rf"(?:\.[A-Za-z0-9-]+)*\.(?:{_GENERIC_TLDS})(?::\d{{1,5}})?"
    rf"|(?:\.[A-Za-z0-9-]+)+\.(?:{_GENERIC_TLDS})\.[a-z]{{2}}(?::\d{{1,5}})?"
    rf"|(?:\.[A-Za-z0-9-]+)+\.(?!(?:{_NOT_COUNTRY_TLDS})(?![a-z]))[a-z]{{2}}(?::\d{{1,5}})?"
    rf"|\.(?!(?:{_NOT_COUNTRY_TLDS})(?![a-z]))[a-z]{{2}}:\d{{1,5}}"
    rf"|(?:\.[A-Za-z0-9-]+){{2,}}\.(?!(?:{_FILE_EXTENSIONS})(?![a-z]))[a-z]{{2}}(?::\d{{1,5}})?"
    r")(?![\w-]|\.\w|:\d)"
)
_HOST_HINT = re.compile(rf"\.(?:{_GENERIC_TLDS}|[a-z]{{2}})(?![\w-]|\.\w)")

# IPv6: eight groups, or a `::` abbreviation; must hold a digit so that words like `dead::beef`
# (C++ scopes) are left alone. An optional `[…]:port` or `%zone`.
_IPV6_ADDRESS = (
    r"(?=[0-9a-fA-F:]*\d)(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
    r"|(?:[0-9a-fA-F]{1,4}:){0,6}[0-9a-fA-F]{0,4}::(?:[0-9a-fA-F]{1,4}:){0,6}[0-9a-fA-F]{0,4})"
)
_IPV6 = re.compile(rf"(?<![\w.:])(?:\[{_IPV6_ADDRESS}\](?::\d{{1,5}})?|{_IPV6_ADDRESS}(?:%\w+)?)(?!\w|[.:]\d)")

# MAC-like addresses: six or more hex pairs separated by `:` or `-`.
_MAC = re.compile(r"[0-9a-fA-F](?<![\w:-].)[0-9a-fA-F](?:[:-][0-9a-fA-F]{2}){5,}(?![\w:-])")

# A user name: the bare word right after `user` or `username` (or `user=`, `user:`), unless
# that word is an ordinary word of the sentence (`user not found`, `user has no profile`).
_USER_WORDS = (
    "not|is|was|has|had|have|does|did|do|with|without|in|on|at|by|from|for|to|and|or|of|the|a|an|id|name|"
    "already|must|cannot|can|could|should|will|would|may|session|account|exists?|unknown|logged|login|logout|"
    "matching|data|object|model|profile|agent|input|request|error|info|is_\\w+"
)
# A user name may be quoted (`user 'admin'`, `for "deploy"`).
_QUOTED_NAME = r"'[\w.@-]+'(?!\w)|\"[\w.@-]+\"(?!\w)"
_USER_NAME = re.compile(
    r"((?:user|User|USER)(?<![\w.-]....)(?:name|NAME)?(?:=|:? ))"
    rf"(?:(?!(?:{_USER_WORDS})(?![\w.@-]))[\w.@-]*[A-Za-z0-9][\w.@-]*(?![\w.@-])|{_QUOTED_NAME})"
)

# Who authenticates: the word after "password for", "login failed for", "publickey for"...
# (`Failed password for root`, `Accepted publickey for deploy`) is a user name like the word
# after `user`, whatever it is; `for invalid user x` is left to the user-name rule.
_AUTH_SUBJECT = re.compile(
    r"((?i:password|passphrase|publickey|login|logon|authentication|credentials)"
    r"(?: (?i:failed|failure|succeeded|accepted|attempts?|error|denied))? for )"
    rf"(?:(?!(?:(?i:invalid|illegal|user|username)|{_USER_WORDS})(?![\w.@-]))[\w.@-]*[A-Za-z0-9][\w.@-]*(?![\w.@-])"
    rf"|{_QUOTED_NAME})"
)

# Base64-like runs; `_base64_token` keeps only those that mix digits, lower and upper case.
_BASE64_CANDIDATE = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")

# What starts with a digit (or the minus sign of a number), in one pass: timestamps, IPv4
# addresses, numbers. The named group says which placeholder (see `_digits_placeholder`).
_DIGITS = re.compile(
    r"[-<>~\d](?:"
    # 2024-01-02T03:04:05.123+00:00, 2024-01-02 03:04:05,123, 2024/01/02, 20240102T030405Z,
    # 04/Dec/2005:04:47:44 +0000, 4 Dec 2005 04:47:44, 04:47:44.123
    r"(?<=\d)(?<![\w:.]\d)(?P<ts>"
    rf"\d{{3}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}(?:[T _]{_CLOCK}{_ZONE})?"
    r"|\d{7}T\d{6}(?:\.\d+)?Z?"
    rf"|\d?/{_MONTH}/\d{{4}}(?::\d{{2}}:\d{{2}}:\d{{2}})?(?: [+-]\d{{4}})?"
    rf"|\d? {_MONTH} \d{{4}}(?: {_CLOCK}{_ZONE})?"
    rf"|\d?:\d{{2}}:\d{{2}}(?:[.,]\d{{1,9}})?{_ZONE}"
    r")(?![\w:])"
    # 10.0.0.1, 10.0.0.1:5432
    r"|(?<=\d)(?<![\w.:]\d)(?P<ip>\d{0,2}(?:\.\d{1,3}){3}(?::\d{1,5})?)(?!\w|[.:]\d)"
    # -12, 3.14, 1,000, 1.2.3, 1e-5, 10ms, 1.5GB, 99%, <1, >=500: not glued to letters before
    # or after; a comparison sign that starts a word belongs to the number
    r"|(?:(?<=-)(?<![A-Za-z0-9.]-)\d|(?<=\d)(?<![A-Za-z0-9]\d)|(?<=[<>~])(?<![^\s(\[=:,][<>~])=?\d)"
    rf"(?P<num>\d*(?:[.,]\d+)*(?:[eE][+-]?\d+)?(?: {_SPACED_UNIT}(?![\w%])|{_UNIT}(?![A-Za-z0-9])|(?![A-Za-z0-9])))"
    r")"
)
_DIGITS_PLACEHOLDER = {"ts": "<ts>", "ip": "<ip>", "num": "<num>"}

# 0x… numbers, and runs of 7+ hex digits with at least one digit and one letter a-f.
_HEX = re.compile(
    r"[0-9a-fA-F](?<![A-Za-z0-9].)(?:"
    r"(?<=0)[xX][0-9a-fA-F]+"
    r"|(?<=[a-fA-F])(?=[a-fA-F]*\d)[0-9a-fA-F]{6,}"
    r"|(?<=\d)(?=\d*[a-fA-F])[0-9a-fA-F]{6,}"
    r")(?![\w-])"
)

# Letters and digits alternating twice or more inside one word: generated ids (`a1b2c3`,
# `x2x4z`), not names (`utf8`, `jk2_init`, `sha256`, `k8s` have one digit run).
_MIXED_HINT = re.compile(r"\d[_-]?[A-Za-z]+[_-]?\d")
_MIXED_ID = re.compile(r"(?<![\w<])(?=[\w-]*?\d[_-]*[A-Za-z][\w-]*?\d)\w[\w-]*(?<!-)(?![\w>])")

# An identifier that ends in a long number (`KB3021674`, `p15105218`, `INC0012345`): a serial
# number, whatever its prefix; four digits or fewer stay names (`sha256`, `rfc3339`, `iso8859`).
_SERIAL_NUMBER = re.compile(r"[A-Za-z](?<![A-Za-z0-9<].)[A-Za-z]*\d{5,}(?![A-Za-z0-9>])")
_SERIAL_HINT = re.compile(r"\d{5}")

# The last part of a compound name that is one or two letters and a number (`rack_B4`,
# `node-D1`, `cluster_n03`): the instance of a numbered series (`node-<id>`). A version
# (`api-v2`) stays a name.
_NUMBERED_SUFFIX = re.compile(r"[A-Za-z](?<=[A-Za-z0-9][_-].)(?<![_-][vV])[A-Za-z]?\d+(?![\w>])")
_NUMBERED_SUFFIX_HINT = re.compile(r"[_-][A-Za-z]{1,2}\d")

# A snake_case name with a number in it (`rdd_2_0`, `broadcast_15_piece0`, `blk_-42`),
# seen after the numbers are replaced: the whole word is one id, whatever its prefix.
# Hyphenated names keep their prefix (`worker-<num>`, `utf-<num>`).
_NUMBERED_NAME = re.compile(r"(?<![\w<>.-])(?:[\w-]|<num>)*?_<num>(?:[\w-]|<num>)*(?<!-)")

# In a path (a word with two slashes or more), a directory or file name that ends in digits
# (`subdir5`, `shard12`, `rand6`) is numbered data: its digits go (`subdir<num>`).
_PATH_SEGMENT_NUMBER = re.compile(r"(?<=/)([A-Za-z][A-Za-z_-]*?)\d+(?=[/.]|$)")

# A quoted value; left as it is when it is an identifier (see the module docstring), unless it
# is the value of a key (`tag="sync_worker"`): what a key is set to is data.
_QUOTED = re.compile(
    r"'(?<==')[^'\n]*'(?!\w)"
    r'|"(?<==")(?:[^"\\\n]|\\.)*"(?!\w)'
    r"|'(?<![\w']')(?![A-Za-z_<][\w.:<>-]{0,39}'(?!\w))[^'\n]*'(?!\w)"
    r'|"(?<![\w"]")(?![A-Za-z_<][\w.:<>-]{0,39}"(?!\w))(?:[^"\\\n]|\\.)*"(?!\w)'
)

# <num>.<num>, <num>-<num>, <num>, <num> ..., and a number restated in parentheses
# (`2126 bytes (2.07 KB)`): one placeholder.
_REPEATED = re.compile(r"(<(?:num|hex|id|token|str|ip|path)>)(?:(?:[.,:;_\-/x] ?| )\1| \(\1?\))+")

_DIGIT = re.compile(r"\d")


def normalize_message(text: str) -> str:
    """Return the template of `text`: ids, numbers, addresses, times and data replaced by placeholders."""
    if not text:
        return ""
    text = " ".join(text.split())
    has_digit = _DIGIT.search(text) is not None
    if "=" in text and ("?" in text or "&" in text):
        text = _QUERY_VALUE.sub(r"\1=<str>", text)
    if has_digit and ":" in text and _MONTH_HINT.search(text):
        text = _NAMED_TIMESTAMP.sub("<ts>", text)
    if has_digit and text.count("-") >= 4:
        text = _UUID.sub("<uuid>", text)
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    if text.count("/") >= 2 or ":\\" in text or "./" in text:
        text = _PATH.sub("<path>", text)
    if "." in text and _HOST_HINT.search(text):
        text = _in_words(text, _has_dot, _HOST, "<ip>")
    if "ser" in text or "SER" in text:
        text = _USER_NAME.sub(r"\1<str>", text)
    if " for " in text:
        text = _AUTH_SUBJECT.sub(r"\1<str>", text)
    if has_digit:
        if text.count(":") >= 5 or text.count("-") >= 5:
            text = _MAC.sub("<hex>", text)
        if "::" in text or text.count(":") >= 7:
            text = _IPV6.sub("<ip>", text)
        if len(text) >= 32:
            text = _BASE64_CANDIDATE.sub(_base64_token, text)
        text = _DIGITS.sub(_digits_placeholder, text)
        # Most lines have no digit left once the numbers are placeholders.
        digits_left = _DIGIT.search(text) is not None
        if digits_left:
            text = _HEX.sub("<hex>", text)
            if _SERIAL_HINT.search(text):
                text = _SERIAL_NUMBER.sub("<id>", text)
            if _NUMBERED_SUFFIX_HINT.search(text):
                text = _NUMBERED_SUFFIX.sub("<id>", text)
        if digits_left and text.count("/") >= 2:
            text = _in_words(text, _is_path, _PATH_SEGMENT_NUMBER, r"\1<num>")
        if "_<num>" in text:
            text = _in_words(text, _has_numbered_part, _NUMBERED_NAME, _numbered_name)
        if digits_left and _MIXED_HINT.search(text):
            text = _in_words(text, _MIXED_HINT.search, _MIXED_ID, "<id>")
    if "'" in text or '"' in text:
        text = _QUOTED.sub(_quoted_value, text)
    if ">" in text:
        text = _REPEATED.sub(r"\1", text)
    return text


def _in_words(text: str, test, pattern: re.Pattern, replacement) -> str:
    """Apply `pattern` only to the words that pass `test`: cheaper than a pass over the whole line."""
    words = text.split(" ")
    for index, word in enumerate(words):
        if test(word):
            words[index] = pattern.sub(replacement, word)
    return " ".join(words)


def _has_dot(word: str) -> bool:
    return "." in word


def _is_path(word: str) -> bool:
    return word.count("/") >= 2


def _has_numbered_part(word: str) -> bool:
    return "_<num>" in word


def _digits_placeholder(match: re.Match) -> str:
    return _DIGITS_PLACEHOLDER[match.lastgroup]


def _numbered_name(match: re.Match) -> str:
    name = match.group()
    if any(c.isalpha() for c in name.replace("<num>", "")):
        return "<id>"
    return name


_HTTP_REQUEST = re.compile(r"[\"'](?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE) ")


def _quoted_value(match: re.Match) -> str:
    """`<str>` for quoted data; a quoted HTTP request line keeps its method (`"GET <str>"`): the method is the event."""
    value = match.group()
    request = _HTTP_REQUEST.match(value)
    if request:
        return f"{request.group()}<str>{value[0]}"
    return "<str>"


def _base64_token(match: re.Match) -> str:
    token = match.group()
    if token.isdigit() or token.islower() or token.isupper() or not any(c.isdigit() for c in token):
        return token
    return "<token>"


_ROUTE_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_ROUTE_NUMBER = re.compile(r"^[-+]?\d+(?:[.,]\d+)*$")
_ROUTE_HEX = re.compile(r"^(?:0x[0-9a-f]+|(?=[0-9a-f]*\d)[0-9a-f]{7,})$", re.I)
_ROUTE_DIGIT = re.compile(r"\d")
_ROUTE_PLACEHOLDER = re.compile(r"^\{[\w:]*\}$|^<[\w:]*>$|^:\w+$")


def normalize_route(path: str) -> str:
    """Return the route template of a URL path: ``/users/123/orders/<uuid>`` -> ``/users/{id}/orders/{uuid}``.

    The query string and fragment go; a full URL keeps only its path. Segments become
    ``{id}`` (numbers), ``{uuid}``, ``{hex}`` (hashes, 7+ hex digits with a digit) or
    ``{token}`` (anything else with a digit in it that is 16+ characters long, or has more
    digits than letters: slugs with ids, base64 tokens). Static words and short names with
    a digit (``v2``, ``oauth2``) stay. Templates that are already templates stay as they are.
    """
    if not path:
        return ""
    path = path.strip()
    if "://" in path:
        path = path.split("://", 1)[1]
        slash = path.find("/")
        path = path[slash:] if slash >= 0 else "/"
    for mark in ("?", "#"):
        cut = path.find(mark)
        if cut >= 0:
            path = path[:cut]
    segments = []
    for segment in path.split("/"):
        segments.append(_route_segment(segment))
    route = "/".join(segments)
    return route or "/"


def _route_segment(segment: str) -> str:
    if not segment or not _ROUTE_DIGIT.search(segment) or _ROUTE_PLACEHOLDER.match(segment):
        return segment
    if _ROUTE_NUMBER.match(segment):
        return "{id}"
    if _ROUTE_UUID.match(segment):
        return "{uuid}"
    if _ROUTE_HEX.match(segment):
        return "{hex}"
    digits = sum(ch.isdigit() for ch in segment)
    letters = sum(ch.isalpha() for ch in segment)
    if len(segment) >= 16 or digits > letters or _MIXED_ID.fullmatch(segment):
        return "{token}"
    return segment
