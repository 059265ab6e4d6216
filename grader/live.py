"""The text report as it happens (``python -m grader`` with the text format on stdout).

The header is printed at once, before torch is imported. Each exercise's row follows as
soon as its checks are scored:

- on a terminal, every row is there from the start ("waiting", "grading, 3 s") and is
  redrawn in its place (ANSI cursor movement) when its result comes;
- elsewhere (a CI log, a pipe, a notebook's grade cell), rows are printed in the order the
  exercises finish, with a note while one runs on alone ("... still grading
  train_model_simple, 5 s so far (time limit 60 s)").

The total and the details follow the table, as in the report written at the end.
Nothing here imports torch; progress comes from runner.grade (``progress=``), which calls
``started``, ``finished`` and ``tick`` from its own loop (no thread: the process forks).
"""

from __future__ import annotations

import os
import shutil
import time

from .table import header_lines, pending_row, table_row, table_width, total_row

NOTE_AFTER_S = 3.0  # a log gets a note when nothing was printed for this long ...
NOTE_EVERY_S = 10.0  # ... and another this often while the same exercises still run
REDRAW_EVERY_S = 0.5  # a terminal's running rows count seconds


def is_terminal(out) -> bool:
    return bool(getattr(out, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def fits_on_screen(rows: int) -> bool:
    """Whether the table's rows fit in the terminal: the cursor cannot go back above its top."""
    return shutil.get_terminal_size().lines > rows + 2


class LiveTable:
    """Prints one grading's header and table rows to ``out`` as results come (see the module)."""

    def __init__(self, out, source: str, device: str, exercises, timeout_s: float, terminal: bool | None = None,
                 clock=time.monotonic, known: dict | None = None):
        self.out = out
        self.source, self.device = source, device
        self.names = list(exercises)
        self.width = table_width(self.names)
        self.timeout_s = timeout_s
        self.terminal = is_terminal(out) and fits_on_screen(len(self.names)) if terminal is None else terminal
        self.clock = clock
        self.results: dict[str, object] = dict(known or {})  # exercise -> grading.ExerciseResult
        self.known = list(self.results)  # results from before (--watch): shown at once
        self.running: dict[str, float] = {}  # exercise -> when its child started
        self.drawn = 0  # terminal: rows on screen below the header
        self.last_output = self.last_redraw = clock()

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.last_output = self.clock()

    def start(self) -> None:
        self._write("\n".join(header_lines(self.source, self.device)) + "\n")
        if self.terminal:
            self._redraw()
        else:
            self._write("".join(table_row(self.results[name], self.width) + "\n" for name in self.known))

    def _row(self, name: str) -> str:
        if name in self.results:
            return table_row(self.results[name], self.width)
        if name in self.running:
            return pending_row(name, self.width, f"grading, {self.clock() - self.running[name]:.0f} s")
        return pending_row(name, self.width, "waiting")

    def _redraw(self) -> None:
        up = f"\x1b[{self.drawn}F" if self.drawn else ""  # to the first row, column 1
        self._write(up + "".join(f"\x1b[2K{self._row(name)}\n" for name in self.names))
        self.drawn = len(self.names)
        self.last_redraw = self.clock()

    def started(self, exercise: str) -> None:
        self.running[exercise] = self.clock()
        if self.terminal:
            self._redraw()

    def finished(self, result) -> None:
        self.results[result.name] = result
        self.running.pop(result.name, None)
        self._noted = False
        if self.terminal:
            self._redraw()
        else:
            self._write(table_row(result, self.width) + "\n")

    def tick(self) -> None:
        now = self.clock()
        if not self.running:
            return
        if self.terminal:
            if now - self.last_redraw >= REDRAW_EVERY_S:
                self._redraw()
            return
        quiet = now - max(self.last_output, min(self.running.values()))
        if quiet >= (NOTE_EVERY_S if self._noted else NOTE_AFTER_S):
            self._write(self.note() + "\n")

    _noted = False

    def note(self) -> str:
        self._noted = True
        names = sorted(self.running, key=self.running.get)
        oldest = self.clock() - self.running[names[0]]
        return (f"  ... still grading {', '.join(names)}, {oldest:.0f} s so far "
                f"(time limit {self.timeout_s:g} s)")

    def close(self, report, closing: list[str]) -> None:
        """The total row and what follows the table (report.closing_lines)."""
        if self.terminal:
            self._redraw()
        lines = [total_row(report.score, report.max_score, self.width), "", *closing]
        self._write("\n".join(lines).rstrip() + "\n")
