"""Tail JSON-lines log files into Quench, resuming from a read position kept in the database.

One pass over one `LogSource`:

1. Lock the source row (`select_for_update()` inside `transaction.atomic()`), so the
   scheduled job and `manage.py tail_logs` never read the same bytes at once.
2. Notice rotation and truncation:
   - the file at `path` has another (device, inode) than the stored one: it was rotated
     away. If `path + ".1"` (logrotate's default name) is still that old file, finish it
     from the stored offset first; then start the new file at 0.
   - same (device, inode) but shorter than the stored offset, or its head (first line,
     at most 1 KiB) hashes differently: it was truncated in place (copytruncate), or the
     inode was reused for a new file; start at 0.
3. Read complete lines (binary, decoded as UTF-8 with replacement), at most `max_bytes`
   per pass and never a partial last line, which is left for the next pass.
4. Turn each line that counts into a `Signal` (`incidents.sources.jsonlog.parse_record`)
   and ingest them, then save the new position, in the same transaction: a pass that
   fails commits nothing and the next pass reads the same bytes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents.choices import LogLevel
from incidents.models import LogSource
from incidents.services.ingest import ingest_signals
from incidents.sources.base import Signal
from incidents.sources.jsonlog import (
    ERROR_LEVEL,
    parse_record,
    record_level,  # one reading of levels for both modules
)

logger = logging.getLogger(__name__)

# A longer line is skipped: one runaway record must not hold a pass's memory hostage.
MAX_LINE_BYTES = 1024 * 1024
HEAD_BYTES = 1024
ROTATED_SUFFIX = ".1"
_BLOCK_BYTES = 64 * 1024
# PositiveBigIntegerField holds 63 bits; some filesystems hand out 64-bit inode numbers.
_ID_MASK = (1 << 63) - 1

# LogSource.min_level → the lowest Python log level number (jsonlog's scale) that counts.
_MIN_LEVELS = {LogLevel.WARNING: 30, LogLevel.ERROR: ERROR_LEVEL, LogLevel.CRITICAL: 50}


@dataclass
class TailResult:
    """What one pass over one log source did."""

    name: str = ""
    lines: int = 0  # complete lines consumed, whether they counted or not
    signals: int = 0  # lines that became signals and were ingested
    skipped: int = 0  # invalid JSON, not an object, or longer than MAX_LINE_BYTES
    rotated: bool = False
    truncated: bool = False
    error: str = ""


@dataclass
class _Chunk:
    """Complete lines read from one file, and where the next pass resumes in it."""

    device: int
    inode: int
    lines: list[tuple[int, bytes | None]] = field(default_factory=list)  # (offset, bytes); None: over-long
    end_offset: int = 0
    at_eof: bool = False


class _IngestionFailed(Exception):
    pass


def tail_log_source(log_source_id: int, *, max_bytes: int | None = None) -> TailResult:
    """Read what a log source has appended since its last pass and ingest the lines that count.

    Problems with the file (missing, unreadable) are stored in `last_error` and returned
    in the result; a failed ingestion commits nothing (the next pass reads the same
    bytes again) and is returned as an error too, so that callers need only look at
    `result.error`.
    """
    budget = max(1, max_bytes if max_bytes is not None else settings.QUENCH_LOG_TAIL_MAX_BYTES)
    try:
        with transaction.atomic():
            return _tail_locked(log_source_id, budget)
    except _IngestionFailed as failure:
        cause = failure.__cause__
        error = f"ingestion failed, will retry: {cause!r}"[:2000]
        logger.error(
            "ingesting log lines failed",
            exc_info=cause,
            extra={"log_source_id": log_source_id},
        )
        LogSource.objects.filter(pk=log_source_id).update(last_error=error, last_tailed_at=timezone.now())
        name = LogSource.objects.filter(pk=log_source_id).values_list("name", flat=True).first() or ""
        return TailResult(name=name, error=error)


def _tail_locked(log_source_id: int, budget: int) -> TailResult:
    source = LogSource.objects.select_for_update().get(pk=log_source_id)
    result = TailResult(name=source.name)
    try:
        if not stat.S_ISREG(os.stat(source.path).st_mode):
            return _finish(source, result, error="not a regular file")
        handle = open(source.path, "rb")  # noqa: SIM115 - the with block below closes it
    except FileNotFoundError:
        return _finish(source, result, error="file not found")
    except OSError as exc:
        return _finish(source, result, error=f"cannot open: {exc.strerror or exc}")
    with handle:
        try:
            return _tail_file(source, result, handle, budget)
        except OSError as exc:
            return _finish(source, result, error=f"cannot read: {exc.strerror or exc}")


def _tail_file(source: LogSource, result: TailResult, handle: BinaryIO, budget: int) -> TailResult:
    """Settle where to read from (rotation, truncation), read, and commit."""
    current = os.fstat(handle.fileno())
    identity = (current.st_dev & _ID_MASK, current.st_ino & _ID_MASK)
    stored = (source.device, source.inode) if source.inode is not None else None
    head_hash = _head_hash(handle)
    chunks: list[_Chunk] = []
    offset = source.offset

    if stored is not None and stored != identity:
        result.rotated = True
        rotated_chunk = _finish_rotated(source, budget)
        if rotated_chunk is not None:
            chunks.append(rotated_chunk)
            budget -= rotated_chunk.end_offset - source.offset
            if not rotated_chunk.at_eof:
                # Out of budget inside the old file: stay on it, the next pass finds it again.
                return _commit(source, result, chunks, rotated_chunk, source.head_hash)
        else:
            logger.warning(
                "log file rotated; the unread rest of the old file was not found",
                extra={"log_source_id": source.pk, "path": source.path},
            )
        offset = 0
    elif stored is not None and offset > 0:
        if current.st_size < offset or (source.head_hash and head_hash != source.head_hash):
            result.truncated = True
            offset = 0
    elif stored is None:
        offset = 0

    chunk = _Chunk(device=identity[0], inode=identity[1], end_offset=offset)
    if budget > 0:
        chunk = _read_lines(handle, identity, offset, budget, final=False)
    chunks.append(chunk)
    # The head is known once the first line is complete (or 1 KiB long); until then it is "".
    return _commit(source, result, chunks, chunk, head_hash or _head_hash(handle))


def _finish_rotated(source: LogSource, budget: int) -> _Chunk | None:
    """The rest of the rotated-away file, if it is still at `path.1` and is the file we were reading."""
    try:
        with open(source.path + ROTATED_SUFFIX, "rb") as rotated:
            info = os.fstat(rotated.fileno())
            identity = (info.st_dev & _ID_MASK, info.st_ino & _ID_MASK)
            if identity != (source.device, source.inode) or info.st_size < source.offset:
                return None
            # Nothing more is appended to a rotated file, so its unterminated last line is final.
            return _read_lines(rotated, identity, source.offset, budget, final=True)
    except OSError:
        return None


def _read_lines(handle: BinaryIO, identity: tuple[int, int], start: int, budget: int, *, final: bool) -> _Chunk:
    """Complete lines from `start`, reading at most `budget` bytes.

    A single line longer than the budget is still read whole (up to MAX_LINE_BYTES) so a
    small budget never stalls the source; a line longer than MAX_LINE_BYTES is returned
    as `None` (skipped). When such a line has no end yet, the position moves past what
    was read of it and the rest is skipped as invalid JSON next time.
    """
    chunk = _Chunk(device=identity[0], inode=identity[1], end_offset=start)
    handle.seek(start)
    position = start
    hard_limit = start + budget + MAX_LINE_BYTES + 1
    pending = bytearray()
    overlong = False
    while True:
        progressed = chunk.end_offset > start
        limit = start + budget if position < start + budget else hard_limit
        if (position >= start + budget and progressed) or position >= limit:
            break
        block = handle.read(min(_BLOCK_BYTES, limit - position))
        if not block:
            chunk.at_eof = True
            break
        block_start = position
        position += len(block)
        index = 0
        while index <= len(block):
            newline = block.find(b"\n", index)
            piece_end = newline if newline != -1 else len(block)
            if not overlong:
                pending += block[index:piece_end]
                if len(pending) > MAX_LINE_BYTES:
                    overlong = True
                    pending = bytearray()
            if newline == -1:
                break
            chunk.lines.append((chunk.end_offset, None if overlong else bytes(pending)))
            chunk.end_offset = block_start + newline + 1
            pending = bytearray()
            overlong = False
            index = newline + 1
            if chunk.end_offset >= start + budget:
                break  # a line that crossed the budget is the last one of this pass
        if chunk.end_offset >= start + budget:
            break
    if overlong:
        chunk.lines.append((chunk.end_offset, None))
        chunk.end_offset = position
    elif final and chunk.at_eof and pending:
        chunk.lines.append((chunk.end_offset, bytes(pending)))
        chunk.end_offset = position
    chunk.at_eof = chunk.at_eof and chunk.end_offset == position
    return chunk


def _commit(source: LogSource, result: TailResult, chunks: list[_Chunk], last: _Chunk, head_hash: str) -> TailResult:
    """Ingest the signals of the lines read, and save the position after them, in the caller's transaction."""
    signals: list[Signal] = []
    ordinal = source.lines_read
    for chunk in chunks:
        for line_offset, raw in chunk.lines:
            result.lines += 1
            # The ordinal (lines read from this source so far) tells apart lines that share
            # an offset in one inode across a copytruncate; it is stable when a failed pass
            # is read again, since that pass committed nothing.
            source_id = hashlib.sha256(
                f"{source.pk}:{chunk.device}:{chunk.inode}:{line_offset}:{ordinal}".encode()
            ).hexdigest()
            ordinal += 1
            if raw is None:
                result.skipped += 1
                continue
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            record = _load_record(text)
            if record is None:
                result.skipped += 1
                continue
            signal = _signal_for(record, source)
            if signal is None:
                continue
            signal.source = signal.source or "log"
            signal.source_id = source_id
            signals.append(signal)
    if signals:
        try:
            ingest_signals(signals, log_source=source)
        except Exception as exc:
            raise _IngestionFailed() from exc
    result.signals = len(signals)
    source.device, source.inode, source.offset = last.device, last.inode, last.end_offset
    source.head_hash = head_hash
    source.lines_read += result.lines
    source.signals_sent += result.signals
    return _finish(source, result, error="")


def _finish(source: LogSource, result: TailResult, *, error: str) -> TailResult:
    result.error = error
    source.last_error = error
    source.last_tailed_at = timezone.now()
    source.save(
        update_fields=[
            "device",
            "inode",
            "offset",
            "head_hash",
            "lines_read",
            "signals_sent",
            "last_error",
            "last_tailed_at",
        ]
    )
    if result.lines or result.error or result.rotated or result.truncated:
        logger.info(
            "log source tailed",
            extra={
                "log_source_id": source.pk,
                "lines": result.lines,
                "signals": result.signals,
                "skipped": result.skipped,
                "rotated": result.rotated,
                "truncated": result.truncated,
                "error": error,
            },
        )
    return result


def _head_hash(handle: BinaryIO) -> str:
    """sha256 of the file's first line (or first KiB); "" while the first line is shorter and unfinished."""
    handle.seek(0)
    head = handle.read(HEAD_BYTES)
    newline = head.find(b"\n")
    if newline != -1:
        head = head[: newline + 1]
    elif len(head) < HEAD_BYTES:
        return ""
    return hashlib.sha256(head).hexdigest()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _load_record(text: str) -> dict | None:
    """The line as a JSON object, or None. NaN/Infinity are refused: PostgreSQL's jsonb cannot store them."""
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    return _storable(record)


def _storable(value):
    """NUL characters and lone surrogates (legal JSON escapes) would make PostgreSQL refuse the whole pass."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", errors="replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _signal_for(record: dict, source: LogSource) -> Signal | None:
    """A signal when the record counts for this source.

    `parse_record` counts levels from ERROR up; the source's `min_level` moves that line:
    below it a record counts only as an HTTP 5xx, and with `min_level` warning a warning
    record is read as an error and labelled a warning again.
    """
    _level_name, level = record_level(record)
    level_counts = source.count_error_levels and level >= _MIN_LEVELS.get(source.min_level, ERROR_LEVEL)
    if level_counts and level < ERROR_LEVEL:
        signal = parse_record(
            {**record, "level": "error"},
            service=source.service,
            environment=source.environment,
            count_error_levels=True,
            count_http_5xx=False,
        )
        if signal is not None:
            is_5xx = source.count_http_5xx and signal.labels.get("status_code", "").startswith("5")
            signal.severity = "error" if is_5xx else "warning"
            signal.payload = record
        return signal
    return parse_record(
        record,
        service=source.service,
        environment=source.environment,
        count_error_levels=level_counts,
        count_http_5xx=source.count_http_5xx,
    )
