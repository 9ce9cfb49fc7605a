"""A text progress bar for management commands, written to stderr so stdout stays parseable."""

from __future__ import annotations


class ProgressBar:
    """`[#####.....] 120/500 label`, redrawn in place on a terminal, one line per step elsewhere.

    On a pipe or a log file carriage returns would pile up into one enormous line, so
    there it prints a plain line at most every tenth of the way.
    """

    WIDTH = 30

    def __init__(self, stream, total: int, label: str):
        self.stream = stream
        self.total = total
        self.label = label
        self.done = 0
        self._interactive = bool(getattr(stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        if self._interactive:
            self.stream.write("\r" + self._line(), ending="")
            self.stream.flush()
            return
        tenth = self.done * 10 // self.total if self.total else 10
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self._line())

    def finish(self) -> None:
        if self._interactive:
            self.stream.write("")  # end the line the bar was redrawing

    def _line(self) -> str:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        return f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} {self.label}"
