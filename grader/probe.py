"""Run a submitted notebook's cells once, each with a time limit, before any exercise is graded.

Every exercise's grading child runs the notebook's cells again (notebook.py), so a
cell that hangs or ends the process would cost every exercise its whole time limit,
or its grading. The probe pays for such a cell once: one child (forked and limited
like the grading children: ``sandbox.run_isolated``) runs the cells in order and writes,
to a file the parent reads when it has ended, when each starts and how it ended:

- a cell still running after the per-cell limit (``Limits.cell_timeout_s``; default
  and at most the exercise limit ``--timeout``) is interrupted by a signal (SIGALRM,
  raising CellTimeout in it); one still running GRACE_S later ends the process (the
  second alarm), and one that holds the interpreter in C code meets the probing
  child's own time limit;
- a cell that ends the process (``os._exit``, a crash) is seen when the child ends;
- either way the cell is marked to be skipped, and a fresh child runs the other cells
  again, from the first, and goes on after it. After MAX_STOPPED such cells the cells
  after the last one are not run at all;
- a cell that raises is recorded and the next cell runs, as in the grading children;
- once the cells that ran have taken the exercise limit in all, the later cells are
  not run (every exercise would stop at its limit anyway; the report says why).

The probe returns notebook.CellProblems; the parent reports each once, and the
grading children skip the cells marked to be skipped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path

from . import notebook  # imported here, in the parent: the child runs what is already loaded

GRACE_S = 2.0  # after the per-cell limit, how long an interrupted cell may take to stop
MAX_STOPPED = 3  # cells that hang or end the process before the probe stops
MAX_EVENTS_BYTES = 8 << 20  # what the parent reads of a child's events (a few hundred bytes a cell)


class CellTimeout(BaseException):
    """Raised inside a cell by the probe's alarm (BaseException: ``except Exception`` lets it pass)."""


def probe_cells(path: Path, cells: list, limits, isolate=None) -> list:
    """The problems of a notebook's cells (notebook.CellProblem), in cell order. See the module's docstring.

    ``isolate(tasks, limits) -> {key: ChildResult}`` runs the probing child (default:
    ``sandbox.run_isolated``, one at a time): the grading children's own sandbox.
    """
    from .notebook import CellProblem
    from .sandbox import run_isolated

    isolate = isolate or (lambda tasks, child_limits: run_isolated(tasks, child_limits))
    cell_limit = min(limits.cell_timeout_s or limits.timeout_s, limits.timeout_s)
    runnable = [c for c in cells if not c.skipped]
    problems: dict[int, CellProblem] = {}
    while True:
        skip = {n for n, p in problems.items() if p.skips_cell}
        progress = _run_probe_child(path, [c for c in runnable if c.number not in skip], cell_limit,
                                    limits, isolate)
        problems.update(progress.raised)
        if progress.stopped is None:
            why = progress.out_of_time
            break
        problems[progress.stopped.cell.number] = progress.stopped
        if sum(p.skips_cell for p in problems.values()) >= MAX_STOPPED:
            why = f"the grader stops a notebook after {MAX_STOPPED} cells that hang or end the process"
            break
    if why:  # the cells after the last one that ran are not run
        last = progress.stopped.cell.number if progress.stopped else progress.reached
        for cell in runnable:
            if cell.number > last and cell.number not in problems:
                problems[cell.number] = CellProblem(cell, "not_run", why)
    return [problems[n] for n in sorted(problems)]


class _Progress:
    """What a probing child wrote about its cells (one JSON object a line)."""

    def __init__(self, cells: list, cell_limit: float, total_limit: float):
        self.cells = {c.number: c for c in cells}
        self.cell_limit, self.total_limit = cell_limit, total_limit
        self.current = None  # the cell that started and did not end
        self.reached = 0  # the number of the last cell that ended
        self.stuck = False  # the current cell went on after its interrupt
        self.raised = {}  # cell number -> CellProblem, for the cells that raised
        self.stopped = None  # the CellProblem that ended the child early, if one did
        self.out_of_time = ""  # why the cells after ``reached`` did not run, if the time ran out

    def read(self, data: bytes) -> None:
        from .notebook import CellProblem

        for event in filter(None, map(_event, data.split(b"\n"))):
            kind, cell = event["event"], self.cells.get(event.get("cell"))
            if kind == "end" and event.get("spent"):
                self.out_of_time = (f"the cells before it took {float(event['spent']):.0f} s, the time limit "
                                    f"of {self.total_limit:g} s per exercise: raise it with --timeout")
            elif cell is None:
                continue
            elif kind == "start":
                self.current = cell
            elif kind == "stuck":
                self.stuck = True
            elif kind in ("ok", "raised", "timeout"):
                if kind == "raised":
                    self.raised[cell.number] = CellProblem(cell, "raised", str(event.get("error", "")))
                elif kind == "timeout":
                    self.stopped = CellProblem(cell, "timeout", f"{self.cell_limit:g} s{event.get('where', '')}")
                self.current, self.reached = None, cell.number

    def ended(self, result) -> None:
        """The child has ended (``result``: its sandbox.ChildResult): the cell it was in stopped it."""
        from .notebook import CellProblem

        if self.current is None or self.stopped is not None:
            return
        if self.stuck or result.status == "timeout":
            self.stopped = CellProblem(self.current, "timeout", f"{self.cell_limit:g} s "
                                       "(and it did not stop when interrupted)")
        elif result.status == "memory":
            self.stopped = CellProblem(self.current, "memory", result.message.split("limit of ")[-1].split(" (")[0])
        else:
            self.stopped = CellProblem(self.current, "exited", _how_it_ended(result.message))


def _run_probe_child(path: Path, cells: list, cell_limit: float, limits, isolate) -> _Progress:
    """One probing child: runs ``cells``; its _Progress says which raised and which stopped it.

    It writes its events to a file the parent opened (inherited, never named), which the
    parent reads once the child has ended: however it ended, what it wrote is there.
    """
    from dataclasses import replace

    progress = _Progress(cells, cell_limit, limits.timeout_s)
    with tempfile.TemporaryFile() as events:
        work = (lambda: _child_work(path, cells, cell_limit, limits.timeout_s, events.fileno()))
        # the last resort, for a cell that holds the interpreter in C code: the whole probe's time
        child_limits = replace(limits, timeout_s=limits.timeout_s + cell_limit + 2 * GRACE_S)
        result = isolate({"probe": work}, child_limits)["probe"]
        events.seek(0)
        progress.read(events.read(MAX_EVENTS_BYTES))
    progress.ended(result)
    return progress


def _event(line: bytes):
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


def _how_it_ended(message: str) -> str:
    """"exit code 3" or "killed by signal SIGSEGV", from a sandbox.ChildResult message."""
    code = re.search(r"exited with code (-?\d+)", message)
    if code:
        return f"exit code {code.group(1)}"
    signal_name = re.search(r"killed by signal (\w+)", message)
    return f"killed by signal {signal_name.group(1)}" if signal_name else message


def _child_work(path: Path, cells: list, cell_limit: float, total_limit: float, events_fd: int):
    """In the probing child: run the cells, one alarm each, writing what happens to ``events_fd``."""
    def tell(**event):
        try:
            os.write(events_fd, (json.dumps(event) + "\n").encode())
        except OSError:
            pass

    running = {"cell": None, "interrupted": False}

    def alarm(signum, frame):
        if not running["interrupted"]:  # first: interrupt the cell, as Jupyter's interrupt would
            running["interrupted"] = True
            signal.setitimer(signal.ITIMER_REAL, GRACE_S)
            raise CellTimeout()
        tell(event="stuck", cell=running["cell"])  # then: it caught that and went on; end the process
        os._exit(0)

    signal.signal(signal.SIGALRM, alarm)
    namespace = notebook.fresh_module().__dict__
    began = time.perf_counter()
    for cell in cells:
        spent = time.perf_counter() - began
        if spent >= total_limit:
            tell(event="end", spent=spent)
            break
        running.update(cell=cell.number, interrupted=False)
        tell(event="start", cell=cell.number)
        try:
            signal.setitimer(signal.ITIMER_REAL, cell_limit)
            try:
                error = notebook.run_cell(path, cell, namespace, passthrough=(CellTimeout,))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CellTimeout as exc:
            where = notebook.cell_line(exc, notebook.cell_filename(path, cell)).replace("(line", "(stopped at line")
            tell(event="timeout", cell=cell.number, where=where)
            break
        if running["interrupted"]:  # it caught the interrupt and ended: it still took too long
            tell(event="timeout", cell=cell.number)
            break
        if error:
            tell(event="raised", cell=cell.number, error=error[:2000])
        else:
            tell(event="ok", cell=cell.number)
    else:
        tell(event="end")
    return {"status": "ran", "outputs": {}}
