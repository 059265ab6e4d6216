"""The processes a grading child leaves behind, found in /proc and ended (Linux).

A child's process group is killed when it ends, but student code can leave it:
``os.setsid()`` (a new session), a double fork, a daemon. Two nets catch those:

- the grader is a *child subreaper* while it grades (``prctl(PR_SET_CHILD_SUBREAPER)``):
  a process whose parent dies is re-parented to the grader instead of init, so it
  shows up as a child the grader never started (an *orphan*), and is ended;
- under instructor grading as root every child runs as a user id of its own
  (lockdown.py), so every process of that user id is ended with it, wherever it is.

Processes are signalled through a pidfd, so a process id reused in between is never hit.
Elsewhere (macOS) only the process group is ended.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import time
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
CLEANUP_ROUNDS = 200  # each round waits 5 ms: a fork bomb is given up on after ~1 s (RLIMIT_NPROC caps it)


@functools.lru_cache(maxsize=1)
def libc():
    """The C library, for prctl/unshare/mount (Linux); None where it cannot be loaded."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    uid: int  # real user id
    zombie: bool


def set_subreaper(on: bool) -> bool:
    """Make this process (un)adopt orphaned descendants; returns the previous setting (False off Linux)."""
    lib = libc() if sys.platform.startswith("linux") else None
    if lib is None:
        return False
    previous = ctypes.c_int(0)
    lib.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0)
    lib.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    return bool(previous.value)


def _read_status(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
        return Proc(pid, int(fields[b"PPid"]), int(fields[b"Uid"].split()[0]), fields[b"State"].strip().startswith(b"Z"))
    except (OSError, KeyError, ValueError, IndexError):
        return None  # gone in between, or not readable


def processes() -> list[Proc]:
    """Every process in /proc (empty where there is no /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    found = (_read_status(int(name)) for name in names if name.isdigit())
    return [p for p in found if p is not None]


def own_children() -> set[int]:
    """This process's children, from /proc/self/task/*/children (cheap); a scan of /proc where that is missing."""
    try:
        tasks = os.listdir("/proc/self/task")
        found = set()
        for task in tasks:
            with open(f"/proc/self/task/{task}/children") as f:
                found |= {int(pid) for pid in f.read().split()}
        return found
    except OSError:
        return {p.pid for p in processes() if p.ppid == os.getpid()}


def _end(proc: Proc) -> None:
    """SIGKILL ``proc`` through a pidfd, checking first that the pid is still that process."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): plain kill, re-checked just before
        again = _read_status(proc.pid)
        if again and (again.uid, again.ppid) == (proc.uid, proc.ppid):
            _signal(lambda: os.kill(proc.pid, signal.SIGKILL))
        return
    try:
        again = _read_status(proc.pid)  # the pidfd pins the process: this reads the same one
        if again and again.uid == proc.uid:
            _signal(lambda: signal.pidfd_send_signal(fd, signal.SIGKILL))
    finally:
        os.close(fd)


def _signal(send) -> None:
    try:
        send()
    except (ProcessLookupError, PermissionError):
        pass


def end_leftovers(known_children: set[int], uids: set[int] = frozenset()) -> int:
    """End the processes grading children left behind; returns how many were ended.

    Those are this process's children that are not in ``known_children`` (orphans
    re-parented here, see set_subreaper), and every process whose real user id is
    in ``uids``. Zombies among this process's own such children are reaped.
    """
    me, ended = os.getpid(), 0
    for _ in range(CLEANUP_ROUNDS):
        if uids:  # every process of those users, wherever it is (~15 ms: a scan of /proc)
            found = [p for p in processes() if p.pid != me and (not p.zombie or p.ppid == me)  # a zombie
                     and ((p.ppid == me and p.pid not in known_children) or p.uid in uids)]  # waits for its parent
        else:
            found = [p for p in map(_read_status, own_children() - set(known_children)) if p is not None]
        if not found:
            break
        for proc in found:
            if not proc.zombie:
                _end(proc)
                ended += 1
        time.sleep(0.005)  # let the kernel re-parent their children to us before the next look
        for proc in found:
            if proc.ppid == me:
                _reap(proc)
    return ended


def _reap(proc: Proc) -> None:
    try:
        os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        pass
