"""Run a submitted notebook's cells once, each with a time limit, before any exercise is graded.

Every exercise's grading child runs the notebook's cells again (notebook.py), so a
cell that hangs or ends the process would cost every exercise its whole time limit,
or its grading. The probe pays for such a cell once: one child (forked and limited
like the grading children: sandbox.py) runs the cells in order and tells the parent,
over a pipe of its own, when each starts and how it ended:

- a cell still running after the per-cell limit (``Limits.cell_timeout_s``; default
  and at most the exercise limit ``--timeout``) is interrupted by a signal (SIGALRM);
  one that does not stop within GRACE_S more is killed with its process group;
- a cell that ends the process (``os._exit``, a crash) is seen when the pipes close;
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
import select
import signal
import time
from pathlib import Path

GRACE_S = 2.0  # after the per-cell limit, how long an interrupted cell may take to stop
MAX_STOPPED = 3  # cells that hang or end the process before the probe stops
MAX_LINE = 1 << 16  # a longer line on the progress pipe is not the probe's: dropped


class CellTimeout(BaseException):
    """Raised inside a cell by the probe's alarm (BaseException: ``except Exception`` lets it pass)."""


def probe_cells(path: Path, cells: list, limits, limit_address_space: bool = True) -> list:
    """The problems of a notebook's cells (notebook.CellProblem), in cell order. See the module's docstring."""
    from .notebook import CellProblem

    cell_limit = min(limits.cell_timeout_s or limits.timeout_s, limits.timeout_s)
    runnable = [c for c in cells if not c.skipped]
    problems: dict[int, CellProblem] = {}
    while True:
        skip = {n for n, p in problems.items() if p.skips_cell}
        progress = _run_probe_child(path, [c for c in runnable if c.number not in skip], cell_limit,
                                    limits, limit_address_space)
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
    """What a probing child has told the parent so far (one JSON object a line)."""

    def __init__(self, cells: list, cell_limit: float, total_limit: float):
        self.cells = {c.number: c for c in cells}
        self.cell_limit, self.total_limit = cell_limit, total_limit
        self.buffer, self.open = b"", True
        self.current, self.started = None, 0.0  # the cell running now
        self.reached = 0  # the number of the last cell that finished
        self.ended_at = None  # when the child said it had finished
        self.raised = {}  # cell number -> CellProblem, for the cells that raised
        self.stopped = None  # the CellProblem that ended the child early, if one did
        self.out_of_time = ""  # why the cells after ``reached`` did not run, if the time ran out

    def feed(self, chunk: bytes) -> None:
        from .notebook import CellProblem

        self.open = bool(chunk)  # closed: the child has ended; its result pipe says how
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        if len(self.buffer) > MAX_LINE:
            self.buffer = b""
        for event in filter(None, map(_event, lines)):
            kind, cell = event["event"], self.cells.get(event.get("cell"))
            if kind == "end":
                self.ended_at = time.perf_counter()
                if event.get("spent"):
                    self.out_of_time = (f"the cells before it took {float(event['spent']):.0f} s, the time limit "
                                        f"of {self.total_limit:g} s per exercise: raise it with --timeout")
            elif cell is None:
                continue
            elif kind == "start":
                self.current, self.started = cell, time.perf_counter()
            elif kind in ("ok", "raised", "timeout"):
                if kind == "raised":
                    self.raised[cell.number] = CellProblem(cell, "raised", str(event.get("error", "")))
                elif kind == "timeout":
                    self.stopped = CellProblem(cell, "timeout", f"{self.cell_limit:g} s{event.get('where', '')}")
                self.current, self.reached = None, cell.number

    def stop_current(self, kind: str, detail: str) -> None:
        from .notebook import CellProblem

        if self.current is not None and self.stopped is None:
            self.stopped = CellProblem(self.current, kind, detail)


def _run_probe_child(path: Path, cells: list, cell_limit: float, limits, limit_address_space: bool) -> _Progress:
    """One probing child: runs ``cells``; its _Progress says which raised and which stopped it."""
    from . import sandbox

    progress = _Progress(cells, cell_limit, limits.timeout_s)
    read_fd, write_fd = os.pipe()
    job = sandbox._start("probe", lambda: _child_work(path, cells, cell_limit, limits.timeout_s, read_fd, write_fd),
                         limits, limit_address_space)
    os.close(write_fd)
    try:
        while True:
            ready, _, _ = select.select([job.fd] + [read_fd] * progress.open, [], [], 0.05)
            if read_fd in ready:
                progress.feed(os.read(read_fd, 1 << 16))
            if job.fd in ready:
                chunk = os.read(job.fd, 1 << 20)
                job.size += len(chunk)
                if chunk and job.size <= sandbox.MAX_RESULT_BYTES:
                    job.chunks.append(chunk)
                    continue
                result, job = sandbox._finish(job, limits), None
                while progress.open and select.select([read_fd], [], [], 0)[0]:
                    progress.feed(os.read(read_fd, 1 << 16))  # what the child said before it ended
                progress.stop_current("exited", _how_it_ended(result.message))
                return progress
            now = time.perf_counter()
            late = progress.current is not None and now > progress.started + cell_limit + GRACE_S
            lingering = progress.ended_at is not None and now > progress.ended_at + GRACE_S  # a process holds a pipe
            too_big = sandbox._rss_bytes(job.pid) - job.base_rss > limits.memory_mb * 2**20
            if late or lingering or too_big:
                job.ended = "memory" if too_big else "timeout"
                sandbox._kill(job)
                sandbox._finish(job, limits)
                job = None
                if too_big:
                    progress.stop_current("memory", f"{limits.memory_mb} MiB")
                else:
                    progress.stop_current("timeout", f"{cell_limit:g} s (and it did not stop when interrupted)")
                return progress
    finally:
        if job is not None:  # interrupted: leave no child behind
            sandbox._kill(job)
            sandbox._finish(job, limits)
        os.close(read_fd)


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


def _child_work(path: Path, cells: list, cell_limit: float, total_limit: float, read_fd: int, write_fd: int):
    """In the probing child: run the cells, one alarm each, telling the parent over ``write_fd``."""
    from .notebook import cell_filename, cell_line, fresh_module, run_cell

    os.close(read_fd)

    def tell(**event):
        try:
            os.write(write_fd, (json.dumps(event) + "\n").encode())
        except OSError:
            pass

    def alarm(signum, frame):
        raise CellTimeout()

    signal.signal(signal.SIGALRM, alarm)
    namespace = fresh_module().__dict__
    began = time.perf_counter()
    for cell in cells:
        spent = time.perf_counter() - began
        if spent >= total_limit:
            tell(event="end", spent=spent)
            break
        tell(event="start", cell=cell.number)
        try:
            signal.setitimer(signal.ITIMER_REAL, cell_limit)
            try:
                error = run_cell(path, cell, namespace, passthrough=(CellTimeout,))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CellTimeout as exc:
            where = cell_line(exc, cell_filename(path, cell)).replace("(line", "(stopped at line")
            tell(event="timeout", cell=cell.number, where=where)
            break
        if error:
            tell(event="raised", cell=cell.number, error=error[:2000])
        else:
            tell(event="ok", cell=cell.number)
    else:
        tell(event="end")
    return {"status": "ran", "outputs": {}}
