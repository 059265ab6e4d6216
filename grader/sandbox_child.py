"""What a forked grading child does before and after its task (sandbox.py forks it): its own
process group, output to a log, the memory limit, instructor grading's sandbox, and the
length-prefixed report sent back through the pipe. Never imported by anything but sandbox.py
and the grading child's own code (report_loaded).
"""

from __future__ import annotations

import io
import os
import resource
import signal
import struct
import sys
import tempfile

import torch

HEADER = struct.Struct(">Q")  # the report's length in bytes, before the report
MAX_LOG_BYTES = 20_000  # of what a child printed, sent back (the report says how much more there was)
PAGE = os.sysconf("SC_PAGE_SIZE")
# Sent by a child that has loaded the student's code (report_loaded), before its report.
# A report starts with its 8-byte length, whose first byte is 0 (reports are < 64 MiB): never this.
LOADED = b"\x01"
_loaded_fd = None  # in a child: where report_loaded writes


def report_loaded() -> None:
    """Tell the parent, from a child, that the student's code is imported: a time limit,
    crash or memory limit from now on is this child's own, not the import's (see groups)."""
    global _loaded_fd
    if _loaded_fd is not None:
        os.write(_loaded_fd, LOADED)
        _loaded_fd = None


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * PAGE


def child_main(work, write_fd: int, limits, limit_address_space: bool, workdir: str,
                lockdown=None, slot: int = 0, forget=None) -> None:
    """Body of a forked child. Never returns."""
    global _loaded_fd
    code = 0
    _loaded_fd = write_fd
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
        if lockdown is not None:
            problem = _enter_lockdown(work, lockdown, slot, workdir, forget)
            if problem:
                _report(write_fd, {"status": "crashed", "message": problem})
                return
        os.chdir(workdir)  # files a student writes land here, not in the kit or their folder
        if limit_address_space:
            limit = _vm_bytes() + limits.memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        torch.set_num_threads(max(1, limits.threads))
        result = work()
        _loaded_fd = None
        result["log_bytes"] = log.seek(0, os.SEEK_END)
        log.seek(0)
        result["log"] = log.read(MAX_LOG_BYTES).decode("utf-8", "replace")
        _report(write_fd, result)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _enter_lockdown(work, lockdown, slot: int, workdir: str, forget) -> str:
    """Instructor grading, in the child: forget the other children's data, hide the kit's answers,
    enter the sandbox. Returns "" or why the child must not run student code (one line)."""
    from .answers import AnswerStillReachable
    from .lockdown import LockdownError, enter

    try:
        if forget is not None:
            forget()
        prepare = getattr(work, "before_lockdown", None)
        if prepare is not None:
            prepare()
        enter(lockdown, slot, workdir)
    except (LockdownError, AnswerStillReachable, OSError) as exc:
        return f"the grading sandbox could not be set up ({exc}); a grader problem: please report it"
    return ""


def _report(write_fd: int, result: dict) -> None:
    buffer = io.BytesIO()
    torch.save(result, buffer)
    payload = buffer.getvalue()
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        written = os.write(write_fd, view[:1 << 20])
        view = view[written:]
