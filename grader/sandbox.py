"""Run each exercise's student code in its own forked child, with a time and memory limit.

The parent imports torch and prepares the shared inputs once; each child is a
``fork`` of it (no fresh torch import), runs only the student's code and sends
back plain outputs, which the parent reads with ``torch.load(weights_only=True)``.
A hang, crash, ``sys.exit``, ``os._exit`` or runaway allocation ends that child
only. The parent keeps ``torch.set_num_threads(1)`` so that it never starts an
OpenMP pool, which does not survive ``fork``.
"""

from __future__ import annotations

import io
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

import torch

MAX_RESULT_BYTES = 64 * 2**20
MAX_LOG_BYTES = 20_000  # of what a child printed, sent back (the report says how much more there was)
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Limits:
    timeout_s: float = 60.0
    memory_mb: int = 2048  # above what the parent process already uses
    threads: int = 1


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


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * PAGE


def _child_main(work, write_fd: int, limits: Limits, limit_address_space: bool, workdir: str) -> None:
    """Body of a forked child. Never returns."""
    code = 0
    try:
        os.setpgid(0, 0)  # its own process group: killing it kills its DataLoader workers too
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = tempfile.TemporaryFile()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log.fileno(), 1)  # student prints (and C-level output) never reach the report
        os.dup2(log.fileno(), 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
        sys.stderr = sys.stdout
        os.chdir(workdir)  # files a student writes land here, not in the kit or their folder
        if limit_address_space:
            limit = _vm_bytes() + limits.memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        torch.set_num_threads(max(1, limits.threads))
        result = work()
        result["log_bytes"] = log.seek(0, os.SEEK_END)
        log.seek(0)
        result["log"] = log.read(MAX_LOG_BYTES).decode("utf-8", "replace")
        buffer = io.BytesIO()
        torch.save(result, buffer)
        payload = buffer.getvalue()
        view = memoryview(payload)
        while view:
            written = os.write(write_fd, view[:1 << 20])
            view = view[written:]
    except BaseException:
        code = 70
    finally:
        os._exit(code)


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


def _kill(job: _Job) -> None:
    for target in (lambda: os.killpg(job.pid, signal.SIGKILL), lambda: os.kill(job.pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def _start(key: str, work, limits: Limits, limit_address_space: bool) -> _Job:
    workdir = tempfile.mkdtemp(prefix="grader-")
    read_fd, write_fd = os.pipe()
    base_rss = _rss_bytes(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child_main(work, write_fd, limits, limit_address_space, workdir)
    os.close(write_fd)
    return _Job(key, pid, read_fd, time.perf_counter(), base_rss, workdir=workdir)


def _finish(job: _Job, limits: Limits) -> ChildResult:
    os.close(job.fd)
    _, status = os.waitpid(job.pid, 0)
    try:  # what the child left running in its process group (DataLoader workers, a stray fork) ends too
        os.killpg(job.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    shutil.rmtree(job.workdir, ignore_errors=True)
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
    payload = b"".join(job.chunks)
    if not payload:
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)} before reporting (os._exit or a crash?)"
        return ChildResult("crashed", message=f"the grading process {how}", seconds=seconds, peak_rss_mb=peak)
    try:
        data = torch.load(io.BytesIO(payload), weights_only=True)
        if not isinstance(data, dict) or data.get("status") not in ("ran", "not_implemented", "load_error"):
            raise ValueError("unexpected result")
    except Exception:
        return ChildResult("crashed", message="its results could not be read", seconds=seconds, peak_rss_mb=peak)
    return ChildResult(
        data["status"], outputs=data.get("outputs", {}) if isinstance(data.get("outputs"), dict) else {},
        message=str(data.get("message", "")), seconds=seconds, peak_rss_mb=peak, log=str(data.get("log", "")),
        log_bytes=data["log_bytes"] if isinstance(data.get("log_bytes"), int) else 0,
        summary=str(data.get("summary", "")),
    )


def run_isolated(tasks: dict, limits: Limits, parallel: int = 1, limit_address_space: bool = True,
                 on_done=None, before_fork=None, on_start=None, on_tick=None) -> dict:
    """Run ``tasks`` (key -> zero-argument function returning a dict) each in a forked child.

    At most ``parallel`` children run at once, started in the order of ``tasks``.
    ``before_fork`` (key -> function) prepares in the parent what that child shares, while
    earlier children run. ``on_start(key)`` is called as each child starts,
    ``on_done(key, ChildResult)`` as each ends, and ``on_tick()`` every 50 ms or so while
    any runs (progress displays; never from a thread, since this process forks).
    Returns key -> ChildResult.
    """
    pending = list(tasks.items())
    running: dict[int, _Job] = {}
    results = {}
    try:
        while pending or running:
            while pending and len(running) < max(1, parallel):
                key, work = pending.pop(0)
                if before_fork and key in before_fork:
                    before_fork[key]()
                job = _start(key, work, limits, limit_address_space)
                running[job.fd] = job
                if on_start:
                    on_start(key)
            ready, _, _ = select.select(list(running), [], [], 0.05)
            if on_tick:
                on_tick()
            for fd in ready:
                job = running[fd]
                chunk = os.read(fd, 1 << 20)
                if chunk:
                    job.chunks.append(chunk)
                    job.size += len(chunk)
                    if job.size > MAX_RESULT_BYTES:
                        job.ended = "too_large"
                        _kill(job)
                        chunk = b""
                if not chunk:
                    del running[fd]
                    results[job.key] = _finish(job, limits)
                    if on_done:
                        on_done(job.key, results[job.key])
            now = time.perf_counter()
            for fd, job in list(running.items()):
                rss = _rss_bytes(job.pid)
                job.peak_rss = max(job.peak_rss, rss)
                if now - job.started > limits.timeout_s:
                    job.ended = "timeout"
                elif rss - job.base_rss > limits.memory_mb * 2**20:
                    job.ended = "memory"
                if job.ended:
                    _kill(job)
                    del running[fd]
                    results[job.key] = _finish(job, limits)
                    if on_done:
                        on_done(job.key, results[job.key])
    finally:
        for job in running.values():  # interrupted: leave no child behind
            _kill(job)
            try:
                os.close(job.fd)
                os.waitpid(job.pid, 0)
            except OSError:
                pass
            shutil.rmtree(job.workdir, ignore_errors=True)
    return results
