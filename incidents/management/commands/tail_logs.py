"""`manage.py tail_logs`: read new lines from the JSON-lines log sources now, once or continuously."""

from time import sleep

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection

from incidents.logtail import TailResult, tail_log_source
from incidents.models import LogSource


class Command(BaseCommand):
    help = (
        "Read what the enabled log sources have appended since their last pass and ingest the lines that "
        "count. Safe to run beside the scheduled job: a source is read by one tailer at a time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", metavar="NAME", help="Tail only this log source (even if disabled).")
        parser.add_argument("--follow", action="store_true", help="Keep tailing until interrupted (Ctrl-C).")
        parser.add_argument(
            "--interval", type=float, default=2.0, help="Seconds between passes with --follow (default 2)."
        )
        parser.add_argument("--max-bytes", type=int, help="Read at most this many bytes per source and pass.")

    def handle(self, *args, source=None, follow=False, interval=2.0, max_bytes=None, **options):
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        if max_bytes is not None and max_bytes <= 0:
            raise CommandError("--max-bytes must be a positive number of bytes.")
        if source is not None and not LogSource.objects.filter(name=source).exists():
            known = ", ".join(LogSource.objects.values_list("name", flat=True)[:20]) or "none configured"
            raise CommandError(f'No log source named "{source}" (known: {known}).')
        verbose = options["verbosity"] >= 2
        try:
            first = True
            while True:
                # In --follow mode only passes that read or found something are worth a line.
                self._tail_once(source, max_bytes, quiet_when_idle=follow and not first and not verbose)
                if not follow:
                    return
                first = False
                sleep(interval)
                # A long-running loop must not keep a connection the database has dropped
                # (never inside a transaction: call_command in a test runs in one).
                if not connection.in_atomic_block:
                    close_old_connections()
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _tail_once(self, name: str | None, max_bytes: int | None, *, quiet_when_idle: bool) -> None:
        sources = LogSource.objects.filter(name=name) if name is not None else LogSource.objects.filter(enabled=True)
        rows = list(sources.order_by("name").values_list("pk", "name"))
        if not rows and not quiet_when_idle:
            self.stdout.write("No enabled log sources.")
        for pk, source_name in rows:
            try:
                result = tail_log_source(pk, max_bytes=max_bytes)
            except LogSource.DoesNotExist:
                continue  # deleted since the list was read
            except Exception as exc:
                self.stderr.write(f"{source_name}: tailing failed: {exc!r}")
                continue
            idle = not (result.lines or result.error or result.rotated or result.truncated)
            if quiet_when_idle and idle:
                continue
            self._report(source_name, result)

    def _report(self, name: str, result: TailResult) -> None:
        parts = [f"{result.lines} lines", f"{result.signals} signals", f"{result.skipped} skipped"]
        if result.rotated:
            parts.append("rotated")
        if result.truncated:
            parts.append("truncated")
        line = f"{name}: {', '.join(parts)}"
        if result.error:
            self.stdout.write(self.style.WARNING(f"{line}, error: {result.error}"))
        else:
            self.stdout.write(line)
