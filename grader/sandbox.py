"""Run each exercise's student code in its own forked child, with a time and memory limit.

The parent imports torch and prepares the shared inputs once; each child is a
``fork`` of it (no fresh torch import), runs only the student's code and sends
back plain outputs, which the parent reads with ``torch.load(weights_only=True)``.
A hang, crash, ``sys.exit``, ``os._exit`` or runaway allocation ends that child
only. The parent keeps ``torch.set_num_threads(1)`` so that it never starts an
OpenMP pool, which does not survive ``fork``.

The report is length-prefixed: the parent knows when it is complete, and the parent
also watches the child's exit, so a process the student's code started and left
holding the pipe never makes the run wait for the time limit. When a child has
reported, exited or been stopped, its process group is killed, and so is every
process it left behind: the parent is a child subreaper while it grades, so those
are re-parented to it (processes.py). Under instructor grading (a ``lockdown.Lockdown``)
each child first hides the kit's answers and, as root, gives up root (lockdown.py).
"""

from __future__ import annotations

import dataclasses
import io
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

import torch

from . import processes
from .sandbox_child import HEADER, LOADED, child_main

MAX_RESULT_BYTES = 64 * 2**20
PAGE = os.sysconf("SC_PAGE_SIZE")
ABNORMAL = ("timeout", "memory", "crashed")  # ended by the parent or by a crash, not by its own report


@dataclass
class Limits:
    timeout_s: float = 60.0
    memory_mb: int = 2048  # above what the parent process already uses
    threads: int = 1
    cell_timeout_s: float = 0.0  # per notebook cell, when a notebook's cells are probed (probe.py); 0: timeout_s


@dataclass
class ChildResult:
    """``status``: ran, not_implemented, load_error, timeout, memory, crashed."""

    status: str
    outputs: dict = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    log: str = ""  # what the child printed (stdout and stderr): its first MAX_LOG_BYTES
    log_bytes: int = 0  # how many bytes it printed in all
    summary: str = ""  # not_implemented: the table's few words (errors.NotImplementedYet.summary)
    loaded: bool = True  # False: it ended before it reported that the student's code was loaded
    shared: bool = False  # not run: the same import failed in another child (run_isolated's groups)
    uses: tuple = ()  # the student's other exercises it called (student release, release_mode.USED)


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class _Job:
    key: str
    pid: int
    fd: int
    started: float
    base_rss: int
    chunks: list = field(default_factory=list)
    size: int = 0
    peak_rss: int = 0
    ended: str = ""  # why the parent ended it, if it did
    workdir: str = ""  # the child's cwd, removed when it has ended
    slot: int = 0  # which of the run's parallel slots (under lockdown: which sandbox user id)
    status: int | None = None  # its wait status, once reaped
    expected: int = -1  # the report's length, once its header has arrived
    loaded: bool = False  # it sent LOADED

    def add(self, chunk: bytes) -> None:
        if not self.size and not self.loaded and chunk.startswith(LOADED):
            self.loaded, chunk = True, chunk[len(LOADED):]
            if not chunk:
                return
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.expected < 0 and self.size >= HEADER.size:
            self.expected = HEADER.unpack(b"".join(self.chunks)[:HEADER.size])[0]

    def complete(self) -> bool:
        """The whole report has arrived (its length first, then that many bytes)."""
        return 0 <= self.expected <= self.size - HEADER.size


def _kill(job: _Job) -> None:
    for target in (lambda: os.killpg(job.pid, signal.SIGKILL), lambda: os.kill(job.pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def _start(key: str, work, limits: Limits, limit_address_space: bool, slot: int, lockdown, forget) -> _Job:
    workdir = tempfile.mkdtemp(prefix="grader-")
    read_fd, write_fd = os.pipe()
    base_rss = _rss_bytes(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        child_main(work, write_fd, limits, limit_address_space, workdir, lockdown, slot, forget)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return _Job(key, pid, read_fd, time.perf_counter(), base_rss, workdir=workdir, slot=slot)


def _read(job: _Job) -> bool:
    """Read what the child has sent; True when nothing more will come (EOF, complete or too large)."""
    while True:
        try:
            chunk = os.read(job.fd, 1 << 20)
        except BlockingIOError:
            return job.complete()
        if not chunk:
            return True
        job.add(chunk)
        if job.expected > MAX_RESULT_BYTES or job.size > MAX_RESULT_BYTES + HEADER.size:
            job.ended = "too_large"
            return True
        if job.complete():
            return True


def _exited(job: _Job) -> bool:
    """Whether the child has exited (reaped here, its status kept)."""
    if job.status is None:
        pid, status = os.waitpid(job.pid, os.WNOHANG)
        if pid:
            job.status = status
    return job.status is not None


def _end(job: _Job, lockdown, known_children) -> None:
    """End the child, its process group and whatever it left behind; remove its folder."""
    os.close(job.fd)
    if job.status is None:  # reported, or stopped by a limit: it need not finish
        _kill(job)
        job.status = os.waitpid(job.pid, 0)[1]
    try:  # what the child left running in its process group (DataLoader workers, a stray fork) ends too
        os.killpg(job.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    uids = {lockdown.uids[job.slot]} if lockdown is not None and lockdown.drop else set()
    processes.end_leftovers(known_children, uids)
    shutil.rmtree(job.workdir, ignore_errors=True)


def _result(job: _Job, limits: Limits) -> ChildResult:
    result = _outcome(job, limits)
    result.loaded = job.loaded or result.status not in ABNORMAL  # results sent: its import had ended
    return result


def _outcome(job: _Job, limits: Limits) -> ChildResult:
    seconds = time.perf_counter() - job.started
    peak = max(job.peak_rss, job.base_rss) / 2**20
    if job.ended == "timeout":
        return ChildResult("timeout", message=f"stopped after the time limit of {limits.timeout_s:g} s "
                           "(an endless loop? raise it with --timeout)", seconds=seconds, peak_rss_mb=peak)
    if job.ended == "memory":
        return ChildResult("memory", message=f"stopped: used more than the memory limit of {limits.memory_mb} MiB "
                           "(raise it with --memory-limit)", seconds=seconds, peak_rss_mb=peak)
    if job.ended == "too_large":
        return ChildResult("crashed", message="its results were too large to read back", seconds=seconds, peak_rss_mb=peak)
    if not job.complete():
        status = job.status or 0
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)} before reporting (os._exit or a crash?)"
        return ChildResult("crashed", message=f"the grading process {how}", seconds=seconds, peak_rss_mb=peak)
    payload = b"".join(job.chunks)[HEADER.size:HEADER.size + job.expected]
    try:
        data = torch.load(io.BytesIO(payload), weights_only=True)
        if not isinstance(data, dict) or data.get("status") not in ("ran", "not_implemented", "load_error", "crashed"):
            raise ValueError("unexpected result")
    except Exception:
        return ChildResult("crashed", message="its results could not be read", seconds=seconds, peak_rss_mb=peak)
    return ChildResult(
        data["status"], outputs=data.get("outputs", {}) if isinstance(data.get("outputs"), dict) else {},
        message=str(data.get("message", "")), seconds=seconds, peak_rss_mb=peak, log=str(data.get("log", "")),
        uses=tuple(str(u) for u in data.get("uses", ()) if isinstance(u, str))[:50],
        log_bytes=data["log_bytes"] if isinstance(data.get("log_bytes"), int) else 0,
        summary=str(data.get("summary", "")),
    )


def run_isolated(tasks: dict, limits: Limits, parallel: int = 1, limit_address_space: bool = True,
                 on_done=None, before_fork=None, lockdown=None, forget_in_child=None, groups=None,
                 on_start=None, on_tick=None, while_waiting=None) -> dict:
    """Run ``tasks`` (key -> zero-argument function returning a dict) each in a forked child.

    At most ``parallel`` children run at once, started in the order of ``tasks``.
    ``before_fork`` (key -> function) prepares in the parent what that child shares, while
    earlier children run. ``on_start(key)`` is called as each child starts,
    ``on_done(key, ChildResult)`` as each ends, and ``on_tick()`` every 50 ms or so while
    any runs (progress displays; never from a thread, since this process forks).
    ``while_waiting()`` is called once, when every child has started and some still run: work
    of the parent's that the last children's run then hides (importing what scoring needs).
    ``lockdown`` (lockdown.prepare): instructor grading; each child then calls its task's
    ``before_lockdown()`` (if it has one) and enters the sandbox before the task runs, and
    ``forget_in_child(key)`` (if given) drops there what it must not see of the others.
    ``groups`` (key -> group) names tasks that import the same student code first: when
    one of them hits the time or memory limit or crashes before it reported the code
    loaded (report_loaded), that import is what failed, so the group's other tasks get the
    same result (``shared=True``) without running it again: an endless loop at the top of
    a file costs one time limit, not one per exercise.
    Returns key -> ChildResult.
    """
    pending = list(tasks.items())
    running: dict[int, _Job] = {}
    results = {}
    slots = list(range(min(max(1, parallel), len(lockdown.uids)) if lockdown is not None and lockdown.drop
                       else max(1, parallel)))
    preexisting = processes.own_children()
    subreaper_before = processes.set_subreaper(True)

    def known():
        return preexisting | {job.pid for job in running.values()}

    groups = groups or {}
    failed_imports: dict = {}  # group -> the ChildResult of its failed import

    def finish(job: _Job, shared: ChildResult | None = None):
        del running[job.fd]
        _end(job, lockdown, known())
        slots.append(job.slot)
        result = _result(job, limits) if shared is None else dataclasses.replace(
            shared, seconds=time.perf_counter() - job.started, shared=True)
        done(job.key, result)

    def done(key, result: ChildResult):
        results[key] = result
        as_ended = dataclasses.replace(result)  # what the group shares: not what on_done makes of it
        if on_done:
            on_done(key, result)
        group = groups.get(key)
        if group is not None and not result.loaded and result.status in ABNORMAL and group not in failed_imports:
            failed_imports[group] = as_ended
            for other in [j for j in running.values() if groups.get(j.key) == group and not j.loaded]:
                finish(other, shared=as_ended)
            for other_key, _ in [t for t in pending if groups.get(t[0]) == group]:
                pending.remove((other_key, tasks[other_key]))
                done(other_key, dataclasses.replace(as_ended, seconds=0.0, log="", shared=True))

    def forget(key):  # in a child under lockdown: nothing of the other children's results or sources
        for other_key, other in tasks.items():
            if other_key != key and hasattr(other, "forget_source"):
                other.forget_source(keep=tasks[key])
        pending.clear()
        for job in running.values():
            job.chunks.clear()
        for result in results.values():
            result.outputs, result.log, result.message = {}, "", ""
        if forget_in_child is not None:
            forget_in_child(key)

    try:
        while pending or running:
            while pending and slots:
                key, work = pending.pop(0)
                if before_fork and key in before_fork:
                    before_fork[key]()
                job = _start(key, work, limits, limit_address_space, slots.pop(0), lockdown,
                             (lambda k: lambda: forget(k))(key) if lockdown is not None else None)
                running[job.fd] = job
                if on_start:
                    on_start(key)
            if while_waiting is not None and not pending and running:
                while_waiting()
                while_waiting = None
            ready, _, _ = select.select(list(running), [], [], 0.05)
            if on_tick:
                on_tick()
            for fd in ready:
                if fd in running and _read(running[fd]):  # (not ended above, with a failed import)
                    finish(running[fd])
            now = time.perf_counter()
            for fd, job in list(running.items()):
                if fd not in running:
                    continue
                if _exited(job):  # gone: what it sent is all there will be, whoever holds the pipe
                    _read(job)
                    finish(job)
                    continue
                rss = _rss_bytes(job.pid)
                job.peak_rss = max(job.peak_rss, rss)
                if now - job.started > limits.timeout_s:
                    job.ended = "timeout"
                elif rss - job.base_rss > limits.memory_mb * 2**20:
                    job.ended = "memory"
                if job.ended:
                    finish(job)
    finally:
        for job in list(running.values()):  # interrupted: leave no child behind
            _kill(job)
            del running[job.fd]
            try:
                _end(job, lockdown, known())
            except OSError:
                pass
        processes.set_subreaper(subreaper_before)
    return results
