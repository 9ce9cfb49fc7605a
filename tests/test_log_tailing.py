"""Tailing JSON-lines log files: every counting line becomes exactly one event, whatever the file does."""

import json
import os
import random
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from incidents import logtail
from incidents.logtail import MAX_LINE_BYTES, tail_log_source
from incidents.models import Event, LogSource
from tests.factories import LogSourceFactory

pytestmark = pytest.mark.django_db


# -- helpers ---------------------------------------------------------------------------------------------------------


def error_record(n: int, **extra) -> dict:
    return {"level": "ERROR", "message": f"Payment provider timed out (order {n})", "logger": "shop.payments", **extra}


def info_record(n: int, **extra) -> dict:
    return {"level": "INFO", "message": f"GET /api/catalog 200 in {n}ms", "logger": "shop.request", **extra}


def line(record: dict) -> bytes:
    return (json.dumps(record) + "\n").encode()


def append(path, *chunks: bytes | dict) -> None:
    with open(path, "ab") as handle:
        for chunk in chunks:
            handle.write(line(chunk) if isinstance(chunk, dict) else chunk)


def make_source(tmp_path, filename: str = "app.jsonl", **fields) -> LogSource:
    return LogSourceFactory(path=str(tmp_path / filename), **fields)


def events(source: LogSource) -> int:
    return Event.objects.filter(log_source=source).count()


def titles(source: LogSource) -> list[str]:
    return sorted(Event.objects.filter(log_source=source).values_list("message", flat=True))


# -- reading forward -------------------------------------------------------------------------------------------------


def test_appended_lines_are_read_once_across_passes(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1), info_record(1), error_record(2))

    first = tail_log_source(source.pk)

    assert (first.lines, first.signals, first.skipped, first.error) == (3, 2, 0, "")
    assert events(source) == 2
    source.refresh_from_db()
    assert source.offset == os.path.getsize(source.path)
    assert (source.lines_read, source.signals_sent, source.last_error) == (3, 2, "")
    assert source.last_tailed_at is not None
    assert source.inode == os.stat(source.path).st_ino

    nothing = tail_log_source(source.pk)
    assert (nothing.lines, nothing.signals) == (0, 0)

    append(source.path, error_record(3))
    second = tail_log_source(source.pk)
    assert (second.lines, second.signals) == (1, 1)
    assert events(source) == 3
    event = Event.objects.filter(log_source=source).latest("pk")
    assert event.source == "log"
    assert event.service == "shop"
    assert len(event.source_id) == 64


def test_partial_last_line_is_left_for_the_next_pass(tmp_path):
    source = make_source(tmp_path)
    whole = line(error_record(1))
    half = line(error_record(2))
    append(source.path, whole, half[:20])

    result = tail_log_source(source.pk)

    assert (result.lines, result.signals, result.skipped) == (1, 1, 0)
    source.refresh_from_db()
    assert source.offset == len(whole)

    append(source.path, half[20:])
    result = tail_log_source(source.pk)
    assert (result.lines, result.signals, result.skipped) == (1, 1, 0)
    assert events(source) == 2
    assert any("order 2" in message for message in titles(source))


def test_file_with_only_a_partial_first_line_reads_nothing_yet(tmp_path):
    source = make_source(tmp_path)
    append(source.path, line(error_record(1))[:-1])

    assert tail_log_source(source.pk).lines == 0
    source.refresh_from_db()
    assert (source.offset, source.head_hash) == (0, "")

    append(source.path, b"\n")
    assert tail_log_source(source.pk).signals == 1
    source.refresh_from_db()
    assert source.head_hash != ""


def test_utf8_is_decoded_and_invalid_bytes_are_replaced(tmp_path):
    source = make_source(tmp_path)
    append(
        source.path,
        line(error_record(1, message="Zahlung fehlgeschlagen: Größe ✗")),
        b'{"level": "ERROR", "message": "bad \xff byte"}\n',
    )

    result = tail_log_source(source.pk)

    assert (result.signals, result.skipped) == (2, 0)
    messages = titles(source)
    assert "Zahlung fehlgeschlagen: Größe ✗" in messages
    assert "bad \ufffd byte" in messages


# -- bad input -------------------------------------------------------------------------------------------------------


def test_invalid_json_and_non_object_lines_are_skipped(tmp_path):
    source = make_source(tmp_path)
    append(
        source.path,
        error_record(1),
        b"not json at all\n",
        b'{"level": "ERROR", "message": "cut off\n',
        b"[1, 2, 3]\n",
        b'"just a string"\n',
        b"42\n",
        b"null\n",
        b'{"level": "ERROR", "message": "not a number", "latency": NaN}\n',
        b"[" * 100_000 + b"\n",
        b"\n",
        b"   \r\n",
        error_record(2),
    )

    result = tail_log_source(source.pk)

    assert result.error == ""
    assert (result.lines, result.signals, result.skipped) == (12, 2, 8)
    assert events(source) == 2


def test_values_postgresql_cannot_store_do_not_block_the_source(tmp_path):
    source = make_source(tmp_path)
    append(
        source.path,
        b'{"level": "ERROR", "message": "nul \\u0000 inside", "extra": {"k\\u0000": "v"}}\n',
        b'{"level": "ERROR", "message": "lone surrogate \\ud800 here"}\n',
    )

    result = tail_log_source(source.pk)

    assert (result.signals, result.skipped, result.error) == (2, 0, "")
    assert events(source) == 2


def test_over_long_line_is_skipped(tmp_path):
    source = make_source(tmp_path)
    huge = json.dumps({"level": "ERROR", "message": "x" * (MAX_LINE_BYTES + 10)}).encode() + b"\n"
    append(source.path, error_record(1), huge, error_record(2))

    result = tail_log_source(source.pk)

    assert (result.lines, result.signals, result.skipped) == (3, 2, 1)
    source.refresh_from_db()
    assert source.offset == os.path.getsize(source.path)


def test_over_long_line_still_being_written_does_not_stall_the_source(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1), b'{"level": "ERROR", "message": "' + b"y" * (MAX_LINE_BYTES + 10))

    first = tail_log_source(source.pk)
    assert (first.lines, first.signals, first.skipped) == (2, 1, 1)

    append(source.path, b'y"}\n', error_record(2))
    second = tail_log_source(source.pk)
    # The rest of the runaway line is skipped as a fragment; the next record is read.
    assert (second.lines, second.signals, second.skipped) == (2, 1, 1)
    assert events(source) == 2


# -- what counts -----------------------------------------------------------------------------------------------------


LEVEL_RECORDS = [
    {"level": "DEBUG", "message": "cache miss"},
    {"level": "INFO", "message": "request done"},
    {"level": "WARNING", "message": "slow query 812ms"},
    {"level": "warn", "message": "retrying upstream"},
    {"level": "ERROR", "message": "inventory timeout"},
    {"level": "CRITICAL", "message": "database unreachable"},
]


@pytest.mark.parametrize(
    ("min_level", "expected"),
    [
        ("warning", {"slow query 812ms", "retrying upstream", "inventory timeout", "database unreachable"}),
        ("error", {"inventory timeout", "database unreachable"}),
        ("critical", {"database unreachable"}),
    ],
)
def test_min_level_decides_which_levels_count(tmp_path, min_level, expected):
    source = make_source(tmp_path, min_level=min_level, count_http_5xx=False)
    append(source.path, *LEVEL_RECORDS)

    result = tail_log_source(source.pk)

    assert result.lines == len(LEVEL_RECORDS)
    assert set(titles(source)) == expected


def test_a_warning_that_counts_is_stored_as_a_warning(tmp_path):
    source = make_source(tmp_path, min_level="warning")
    append(source.path, {"level": "WARNING", "message": "disk 91% full", "logger": "shop.disk"})

    assert tail_log_source(source.pk).signals == 1
    event = Event.objects.get(log_source=source)
    assert event.severity == "warning"
    assert event.payload["level"] == "WARNING"


def test_levels_do_not_count_when_switched_off(tmp_path):
    source = make_source(tmp_path, count_error_levels=False, count_http_5xx=False)
    append(source.path, *LEVEL_RECORDS)

    assert tail_log_source(source.pk).signals == 0


HTTP_RECORDS = [
    {"level": "INFO", "message": "GET /api/catalog 200", "status": 200, "path": "/api/catalog", "method": "GET"},
    {"level": "INFO", "message": "GET /api/cart 404", "status": 404, "path": "/api/cart", "method": "GET"},
    {"level": "INFO", "message": "POST /api/cart 503", "status": 503, "path": "/api/cart", "method": "POST"},
    {"level": "INFO", "message": "POST /api/pay 500", "status": 500, "path": "/api/pay", "method": "POST"},
]


def test_http_5xx_count_when_switched_on(tmp_path):
    source = make_source(tmp_path, count_error_levels=True, count_http_5xx=True)
    append(source.path, *HTTP_RECORDS)

    assert tail_log_source(source.pk).signals == 2
    assert set(titles(source)) == {"POST /api/cart 503", "POST /api/pay 500"}


def test_http_5xx_do_not_count_when_switched_off(tmp_path):
    source = make_source(tmp_path, count_error_levels=True, count_http_5xx=False)
    append(source.path, *HTTP_RECORDS)

    assert tail_log_source(source.pk).signals == 0


def test_a_5xx_below_the_min_level_still_counts_as_5xx(tmp_path):
    source = make_source(tmp_path, min_level="critical", count_http_5xx=True)
    append(source.path, {"level": "ERROR", "message": "upstream failed", "status": 502, "path": "/x", "method": "GET"})

    assert tail_log_source(source.pk).signals == 1


# -- rotation and truncation -----------------------------------------------------------------------------------------


def test_rotation_finishes_the_rotated_file_then_starts_the_new_one(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1))
    tail_log_source(source.pk)
    # Written after our last pass, just before logrotate moved the file away.
    append(source.path, error_record(2), line(error_record(3))[:-1])
    os.rename(source.path, source.path + ".1")
    append(source.path, error_record(4), error_record(5))

    result = tail_log_source(source.pk)

    assert result.rotated and not result.truncated
    # The rotated file's unterminated last line is final: nothing more is written to it.
    assert (result.lines, result.signals, result.skipped) == (4, 4, 0)
    assert events(source) == 5
    source.refresh_from_db()
    assert source.inode == os.stat(source.path).st_ino
    assert source.offset == os.path.getsize(source.path)

    append(source.path, error_record(6))
    again = tail_log_source(source.pk)
    assert not again.rotated
    assert (again.lines, again.signals) == (1, 1)
    assert events(source) == 6


def test_rotation_without_the_old_file_starts_the_new_file_at_zero(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1))
    tail_log_source(source.pk)
    append(source.path, error_record(2))  # lost: the rotated file is compressed away
    os.rename(source.path, str(tmp_path / "app.jsonl.1.gz"))
    append(source.path, error_record(3))

    result = tail_log_source(source.pk)

    assert result.rotated
    assert (result.lines, result.signals) == (1, 1)
    assert events(source) == 2


def test_rotation_ignores_a_dot_one_file_that_is_not_the_old_file(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1))
    tail_log_source(source.pk)
    # Kept elsewhere, so that its inode is not handed to one of the files below.
    os.rename(source.path, str(tmp_path / "archive.jsonl"))
    append(source.path + ".1", error_record(99), error_record(98))  # some other file
    append(source.path, error_record(2))

    result = tail_log_source(source.pk)

    assert result.rotated
    assert (result.lines, result.signals) == (1, 1)
    assert not any("order 99" in message for message in titles(source))


def test_rotation_with_a_small_budget_finishes_the_old_file_over_several_passes(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(0))
    tail_log_source(source.pk)
    append(source.path, *[error_record(n) for n in range(1, 21)])
    os.rename(source.path, source.path + ".1")
    append(source.path, *[error_record(n) for n in range(21, 31)])
    budget = len(line(error_record(10))) * 3

    passes = 0
    while True:
        result = tail_log_source(source.pk, max_bytes=budget)
        passes += 1
        assert result.error == ""
        if result.lines == 0:
            break
    assert passes > 10
    assert events(source) == 31
    assert set(titles(source)) == {error_record(n)["message"] for n in range(31)}


def test_copytruncate_is_noticed_when_the_file_is_shorter_than_the_offset(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1), error_record(2), error_record(3))
    tail_log_source(source.pk)
    inode = os.stat(source.path).st_ino
    os.truncate(source.path, 0)
    append(source.path, error_record(4))
    assert os.stat(source.path).st_ino == inode

    result = tail_log_source(source.pk)

    assert result.truncated and not result.rotated
    assert (result.lines, result.signals) == (1, 1)
    assert events(source) == 4


def test_truncation_is_noticed_by_the_head_hash_when_the_file_grew_past_the_offset(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1))
    tail_log_source(source.pk)
    # Truncated and rewritten between two passes: longer than before, same inode.
    with open(source.path, "r+b") as handle:
        handle.truncate(0)
        handle.write(line(error_record(2, logger="shop.other")) + line(error_record(3)) + line(error_record(4)))

    result = tail_log_source(source.pk)

    assert result.truncated
    assert (result.lines, result.signals) == (3, 3)
    assert events(source) == 4


def test_identical_line_at_the_same_offset_after_copytruncate_is_not_taken_for_a_duplicate(tmp_path):
    source = make_source(tmp_path)
    record = error_record(1)
    append(source.path, record, error_record(2))
    tail_log_source(source.pk)
    os.truncate(source.path, 0)
    append(source.path, record)  # same bytes, same inode, same offset as the first line before

    result = tail_log_source(source.pk)

    assert result.truncated
    assert result.signals == 1
    assert events(source) == 3


# -- missing and unreadable files ------------------------------------------------------------------------------------


def test_missing_file_is_recorded_and_the_next_pass_continues(tmp_path):
    source = make_source(tmp_path)

    result = tail_log_source(source.pk)

    assert result.error == "file not found"
    source.refresh_from_db()
    assert source.last_error == "file not found"
    assert source.last_tailed_at is not None

    append(source.path, error_record(1))
    result = tail_log_source(source.pk)
    assert (result.error, result.signals) == ("", 1)
    source.refresh_from_db()
    assert source.last_error == ""


def test_file_missing_mid_rotation_keeps_the_position(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1))
    tail_log_source(source.pk)
    append(source.path, error_record(2))
    os.rename(source.path, source.path + ".1")

    assert tail_log_source(source.pk).error == "file not found"

    append(source.path, error_record(3))
    result = tail_log_source(source.pk)
    assert result.rotated
    assert result.signals == 2
    assert events(source) == 3


def test_a_directory_is_an_error_not_a_crash(tmp_path):
    source = LogSourceFactory(path=str(tmp_path))

    assert tail_log_source(source.pk).error == "not a regular file"


# -- bounded passes and exactly-once ---------------------------------------------------------------------------------


def test_bounded_passes_cover_a_backlog_exactly_once(tmp_path):
    source = make_source(tmp_path)
    records = [error_record(n) if n % 3 else info_record(n) for n in range(300)]
    append(source.path, *records)
    size = os.path.getsize(source.path)
    budget = 1000

    passes, lines = 0, 0
    while True:
        result = tail_log_source(source.pk, max_bytes=budget)
        if result.lines == 0:
            break
        passes += 1
        lines += result.lines
        source.refresh_from_db()
        assert source.offset <= size
    assert lines == 300
    assert passes >= size // budget
    assert events(source) == 200
    assert set(titles(source)) == {r["message"] for r in records if r["level"] == "ERROR"}


def test_default_budget_comes_from_settings(tmp_path, settings):
    settings.QUENCH_LOG_TAIL_MAX_BYTES = len(line(error_record(1))) * 2
    source = make_source(tmp_path)
    append(source.path, *[error_record(n) for n in range(5)])

    assert tail_log_source(source.pk).lines == 2


def test_a_line_longer_than_the_budget_is_still_read(tmp_path):
    source = make_source(tmp_path)
    append(source.path, error_record(1, detail="z" * 5000), error_record(2))

    first = tail_log_source(source.pk, max_bytes=100)
    second = tail_log_source(source.pk, max_bytes=100)

    assert (first.lines, second.lines) == (1, 1)
    assert events(source) == 2


def test_no_line_is_read_twice_or_skipped_while_a_writer_appends(tmp_path):
    source = make_source(tmp_path)
    rng = random.Random(7)
    stream = b"".join(line(error_record(n) if n % 4 else info_record(n)) for n in range(400))
    counting = sum(1 for n in range(400) if n % 4)
    written = 0
    while written < len(stream):
        # Cut the stream anywhere, mid-line and mid-character included.
        step = rng.randint(1, 900)
        append(source.path, stream[written : written + step])
        written += step
        tail_log_source(source.pk, max_bytes=rng.randint(50, 2000))
    while tail_log_source(source.pk, max_bytes=500).lines:
        pass

    source.refresh_from_db()
    assert source.lines_read == 400
    assert source.signals_sent == counting
    assert events(source) == counting
    assert len(set(Event.objects.filter(log_source=source).values_list("source_id", flat=True))) == counting


def test_failing_ingestion_commits_nothing_and_the_next_pass_reads_the_same_bytes(tmp_path, monkeypatch):
    source = make_source(tmp_path)
    append(source.path, error_record(1))
    tail_log_source(source.pk)
    source.refresh_from_db()
    before = (source.offset, source.lines_read, source.signals_sent)
    append(source.path, error_record(2), error_record(3))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(logtail, "ingest_signals", broken)
    result = tail_log_source(source.pk)

    assert "ingestion failed" in result.error
    assert "database went away" in result.error
    source.refresh_from_db()
    assert (source.offset, source.lines_read, source.signals_sent) == before
    assert "database went away" in source.last_error
    assert events(source) == 1

    monkeypatch.undo()
    result = tail_log_source(source.pk)
    assert (result.lines, result.signals, result.error) == (2, 2, "")
    assert events(source) == 3
    source.refresh_from_db()
    assert source.last_error == ""


@pytest.mark.django_db(transaction=True)
def test_concurrent_tailers_never_read_the_same_bytes(tmp_path):
    source = make_source(tmp_path)
    append(source.path, *[error_record(n) for n in range(200)])
    budget = len(line(error_record(100))) * 7
    barrier = threading.Barrier(4)
    failures, results = [], []

    def tailer():
        try:
            barrier.wait()
            while True:
                result = tail_log_source(source.pk, max_bytes=budget)
                results.append(result)
                if not result.lines:
                    break
        except Exception as exc:  # surfaced by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tailer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert [r.error for r in results if r.error] == []
    # Each line was read by exactly one of the tailers.
    assert sum(r.lines for r in results) == 200
    assert sum(r.signals for r in results) == 200
    source.refresh_from_db()
    assert source.lines_read == 200
    assert events(source) == 200


# -- the management command ------------------------------------------------------------------------------------------


def test_command_tails_every_enabled_source_once(tmp_path, capsys):
    busy = make_source(tmp_path, "busy.jsonl", name="busy")
    make_source(tmp_path, "gone.jsonl", name="gone")
    off = make_source(tmp_path, "off.jsonl", name="off", enabled=False)
    append(busy.path, error_record(1), b"garbage\n", info_record(1))
    append(off.path, error_record(2))

    call_command("tail_logs")

    out = capsys.readouterr().out
    assert "busy: 3 lines, 1 signals, 1 skipped" in out
    assert "gone: 0 lines, 0 signals, 0 skipped, error: file not found" in out
    assert "off" not in out
    assert events(busy) == 1
    assert events(off) == 0


def test_command_tails_one_named_source(tmp_path, capsys):
    first = make_source(tmp_path, "a.jsonl", name="first")
    second = make_source(tmp_path, "b.jsonl", name="second", enabled=False)
    append(first.path, error_record(1))
    append(second.path, error_record(2))

    call_command("tail_logs", "--source", "second")

    out = capsys.readouterr().out
    assert "second: 1 lines, 1 signals, 0 skipped" in out
    assert "first" not in out
    assert events(first) == 0


def test_command_reports_rotation(tmp_path, capsys):
    source = make_source(tmp_path, name="rotating")
    append(source.path, error_record(1))
    call_command("tail_logs")
    os.rename(source.path, source.path + ".1")
    append(source.path, error_record(2))
    capsys.readouterr()

    call_command("tail_logs")

    assert "rotating: 1 lines, 1 signals, 0 skipped, rotated" in capsys.readouterr().out


def test_command_refuses_an_unknown_source(tmp_path):
    make_source(tmp_path, name="known")

    with pytest.raises(CommandError, match='No log source named "nope".*known'):
        call_command("tail_logs", "--source", "nope")


def test_command_refuses_a_bad_interval():
    with pytest.raises(CommandError, match="--interval"):
        call_command("tail_logs", "--follow", "--interval", "0")


def test_command_follow_keeps_tailing_until_interrupted(tmp_path, capsys, monkeypatch):
    from incidents.management.commands import tail_logs

    source = make_source(tmp_path, name="followed")
    append(source.path, error_record(1))
    sleeps = []

    def sleep(seconds):
        # Stands in for the time between passes: the service writes, then the operator presses Ctrl-C.
        sleeps.append(seconds)
        if len(sleeps) == 1:
            append(source.path, error_record(2))
        elif len(sleeps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(tail_logs, "sleep", sleep)
    call_command("tail_logs", "--follow", "--interval", "0.5")

    out = capsys.readouterr().out
    assert sleeps == [0.5, 0.5, 0.5]
    assert out.count("followed: 1 lines, 1 signals") == 2  # the idle third pass prints nothing
    assert out.rstrip().endswith("Stopped.")
    assert events(source) == 2
