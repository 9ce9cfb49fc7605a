"""`manage.py fingerprint`: message templates from stdin, or the fingerprint of one signal from JSON.

    manage.py fingerprint --stdin < app.log          # one template per input line, in order
    manage.py fingerprint --stdin --learn < app.log  # one group key per line, learning as ingestion
                                                     # does for one service (a fresh book)
    manage.py fingerprint --json signal.json         # the Fingerprint of a Signal-like JSON object
    manage.py fingerprint --json - < signal.json

Touches no database: it is the fingerprinting package (plain Python) behind a command line,
to try rules and see what groups with what.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import fields
from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from incidents.fingerprinting import TemplateBook, compute_fingerprint, normalize_message
from incidents.sources.base import Frame, Signal

_SIGNAL_FIELDS = {field.name for field in fields(Signal)}
_FRAME_FIELDS = {field.name for field in fields(Frame)}


class Command(BaseCommand):
    help = (
        "Print the message template of every line read from stdin (--stdin), or the fingerprint of one "
        "Signal-like JSON object (--json FILE, '-' for stdin)."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument(
            "--stdin",
            action="store_true",
            help="Read one message per line (UTF-8, invalid bytes replaced); print its template, one per line.",
        )
        mode.add_argument(
            "--json", dest="json_path", metavar="FILE", help="Read a Signal as a JSON object; print its fingerprint."
        )
        parser.add_argument(
            "--learn",
            action="store_true",
            help=(
                "With --stdin: print each line's group key as a service's learned templates would give it, "
                "learning from the lines in order (a fresh book; nothing is stored)."
            ),
        )

    def handle(self, *args, stdin=False, json_path=None, learn=False, **options):
        if learn and not stdin:
            raise CommandError("--learn goes with --stdin.")
        if stdin:
            self._templates(learn)
        else:
            self._fingerprint(json_path)

    def _templates(self, learn: bool = False) -> None:
        """Stream stdin to stdout line by line: memory stays flat whatever the input's size."""
        if self.stdout._out is sys.__stdout__ and hasattr(sys.__stdout__, "reconfigure"):
            sys.__stdout__.reconfigure(errors="replace")
        source = sys.stdin
        buffer = getattr(source, "buffer", None)
        # Only "\n" ends a line: a stray "\r" or form feed inside a line must not add output lines.
        lines = io.TextIOWrapper(buffer, encoding="utf-8", errors="replace", newline="\n") if buffer else source
        write = self.stdout.write
        group = str
        if learn:
            group = TemplateBook(min_values=settings.QUENCH_LEARNED_GROUPING_MIN_VALUES).group
        try:
            for line in lines:
                write(group(normalize_message(line[:-1] if line.endswith("\n") else line)))
        finally:
            if buffer is not None:
                lines.detach()  # closing the wrapper would close the process's stdin
        self.stdout.flush()

    def _fingerprint(self, path: str) -> None:
        try:
            if path == "-":
                document = json.load(sys.stdin)
            else:
                with open(path, encoding="utf-8") as handle:
                    document = json.load(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        except ValueError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}.") from exc
        fingerprint = compute_fingerprint(signal_from_json(document))
        self.stdout.write(json.dumps(fingerprint.as_dict(), indent=2, ensure_ascii=False))


def signal_from_json(document: object) -> Signal:
    """Build a Signal from a JSON object whose keys are Signal's field names (frames: Frame field names)."""
    if not isinstance(document, dict):
        raise CommandError("The JSON document must be an object with Signal's field names as keys.")
    unknown = sorted(set(document) - _SIGNAL_FIELDS)
    if unknown:
        raise CommandError(f"Unknown Signal field(s): {', '.join(unknown)}.")
    values = dict(document)
    values.setdefault("source", "cli")
    frames = values.get("frames") or []
    if not isinstance(frames, list) or not all(isinstance(frame, dict) for frame in frames):
        raise CommandError("frames must be a list of objects.")
    for index, frame in enumerate(frames):
        unknown = sorted(set(frame) - _FRAME_FIELDS)
        if unknown:
            raise CommandError(f"frames[{index}]: unknown Frame field(s): {', '.join(unknown)}.")
    values["frames"] = [Frame(**frame) for frame in frames]
    if isinstance(values.get("occurred_at"), str):
        try:
            values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        except ValueError as exc:
            raise CommandError(f"occurred_at is not an ISO 8601 date-time: {exc}.") from exc
    try:
        return Signal(**values)
    except TypeError as exc:
        raise CommandError(str(exc)) from exc
