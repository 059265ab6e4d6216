"""Instructor grading's sandbox around each grading child, when the grader runs as root.

Gradescope and most containers run the grader as root. Under instructor grading
(``python -m grader --fresh-seeds``, ``python -m grader batch``, the Gradescope
bundle) each grading child then, after the grader's own imports and before the
student's code is loaded (sandbox.py calls ``enter``):

1. **covers the kit** (where the kernel allows a private mount namespace): every
   copy of the kit this interpreter can import (its folder: solutions/, reference/,
   grader/checks/ with the known mistakes, grader/expected/, tests/, .git) and the
   folders in ``Lockdown.hide`` (``batch``: the other submissions) lie under an
   empty read-only tmpfs, and only what the child needs is put back by bind mounts:
   the kit's data/, the Python installation and its sys.path, the temporary folder.
   A folder on the way there that other users cannot pass (a Python under /root) is
   covered and put back the same way. Without mount namespaces (Docker without
   CAP_SYS_ADMIN) the kit's answers must be unreadable to other users: the
   Gradescope bundle's setup.sh makes them so (``chmod -R go-rwx``);
2. **gives up root for good**: a user id of its own for each grading slot (no
   /etc/passwd entry, no process running as it), no groups, ``no_new_privs`` (a
   setuid program cannot give root back), at most 256 processes, HOME and TMPDIR
   in its own temporary folder, which it owns.

So student code cannot read the kit's answers, write the results file, the kit or
the gradebook, or signal the grader or the other grading children (they run as
other user ids), and every process it starts ends with it (processes.py).
``prepare`` probes once, in a throwaway child, what holds on this machine;
``Lockdown.warning()`` says what does not (and why: not root, no mounts, ...).
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import random
import resource
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .processes import libc, processes

KIT_ROOT = Path(__file__).resolve().parent.parent
KIT_PACKAGES = ("reference", "grader", "solutions", "exercises")
# What answers a kit holds, relative to its folder; covered one by one where the folder itself
# must stay visible (the kit pip-installed, its folder among the installed packages).
ANSWER_PARTS = ("solutions", "reference", "grader", "tests", ".git")
UID_BASE = 2_100_000_000  # far above any login or container range; lower where the user namespace maps less
MAX_PROCESSES = 256  # per sandbox user id: threads count too (torch's, DataLoader workers)
SANDBOX_USER = "grader-sandbox"
USE_MOUNTS = True  # the tests turn mount namespaces off to see the fallback

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38


class LockdownError(RuntimeError):
    """The sandbox could not be set up in a grading child; the message is one line."""


@dataclass(frozen=True)
class Lockdown:
    """What instructor grading does around each grading child (``prepare`` decides)."""

    hide: tuple[str, ...] = ()  # folders besides the kit the children must not see
    drop: bool = False  # children give up root, each slot as its own user id (uids)
    mounts: bool = False  # children cover the kit in a private mount namespace
    uids: tuple[int, ...] = ()
    roots: tuple[str, ...] = ()  # the kit's copies (kit_roots)
    needed: tuple[str, ...] = ()  # what a child reads after entering (needed_paths)
    covers: tuple[str, ...] = ()  # folders covered by an empty tmpfs...
    exposed: tuple[str, ...] = ()  # ...under which these are put back
    parts: tuple[str, ...] = ()  # answer folders inside exposed ones, covered last
    problems: tuple[str, ...] = field(default=())  # what does not hold, for the warning

    def warning(self) -> str:
        """One line for stderr when the sandbox is not complete, else ""."""
        if not self.problems:
            return ""
        return ("warning: instructor grading without the full sandbox: " + "; ".join(self.problems)
                + " (README: \"Instructor grading\")")


def prepare(parallel: int, hide=()) -> Lockdown:
    """Decide, in the grader's process, what each grading child does (probing this machine once).

    Also imports, here, every module of the kit a grading child may need: the child may
    not be able to read them any more (answers.import_kit_modules).
    """
    from .answers import import_kit_modules

    import_kit_modules()
    hide = tuple(os.path.realpath(h) for h in hide)
    if not sys.platform.startswith("linux"):
        return Lockdown(hide, problems=("not Linux: student code runs as you and can read the kit's answers",))
    if os.geteuid() != 0:
        return Lockdown(hide, problems=("the grader is not root, so student code runs as you: it can read "
                                        "the kit's files and signal the grader",))
    plan = Lockdown(hide, drop=True, mounts=USE_MOUNTS, uids=pick_uids(max(1, parallel)), **cover_plan(hide))
    found = probe(plan)
    mounts = plan.mounts and found.get("mounted", False)
    problems = list(found.get("problems", ["the sandbox probe did not answer"]))
    if not found.get("dropped", False):
        return Lockdown(hide, problems=tuple(problems + ["student code runs as root"]))
    return replace(plan, mounts=mounts, problems=tuple(problems))


# --------------------------------------------------------------------------- what to cover


def kit_roots() -> list[str]:
    """Every folder holding a copy of the kit that this interpreter can import (real paths)."""
    roots = {str(KIT_ROOT)}
    for entry in sys.path:
        folder = os.path.realpath(entry or os.getcwd())
        if all(os.path.isdir(os.path.join(folder, p)) for p in ("reference", "grader")):
            roots.add(folder)
    for finder in sys.meta_path:  # an editable install's finder maps the packages to a checkout
        for name in KIT_PACKAGES:
            try:
                spec = finder.find_spec(name, None)
            except Exception:  # a finder of someone else's that does not take this
                continue
            for location in (getattr(spec, "submodule_search_locations", None) or []):
                roots.add(os.path.dirname(os.path.realpath(location)))
    return sorted(roots)


def needed_paths(roots) -> list[str]:
    """What a grading child reads after the lockdown: Python, its sys.path, the kit's data, the temp folder."""
    from reference.data import DATA_DIR

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, str(DATA_DIR), tempfile.gettempdir()}
    paths |= {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {entry for entry in sys.path if entry and os.path.isdir(entry)}
    real = {os.path.realpath(p) for p in paths if p and os.path.exists(p)} - set(roots) - {"/"}
    answers = [os.path.join(root, part) for root in roots for part in ANSWER_PARTS]
    return _outermost(p for p in real if not any(_within(p, a) for a in answers))  # not the tests/ on sys.path


def cover_plan(hide=()) -> dict:
    """``covers``, ``exposed`` and ``parts`` for a Lockdown: see the module docstring."""
    from .release_mode import is_release

    # the student release holds no answers, and its exercises/ is the student's work: it stays in sight
    roots = [root for root in kit_roots() if not (root == str(KIT_ROOT) and is_release())]
    needed = needed_paths(roots)
    covers, parts = set(hide), set()
    for root in roots:
        if any(_within(root, path) for path in needed):  # e.g. the kit pip-installed with the other packages
            parts |= {os.path.join(root, p) for p in ANSWER_PARTS if os.path.isdir(os.path.join(root, p))}
        else:
            covers.add(root)
        covers |= _git_dirs(root)
    covers |= {b for b in (_blocker(path) for path in needed) if b}
    covers = _outermost(covers)
    exposed = [path for path in needed if any(_within(path, c) for c in covers)]
    return {"roots": tuple(roots), "needed": tuple(needed), "covers": tuple(covers), "exposed": tuple(exposed),
            "parts": tuple(sorted(parts))}


def _git_dirs(root: str) -> set[str]:
    """The repository of a git worktree whose .git file points elsewhere (its history holds the answers)."""
    dot_git = os.path.join(root, ".git")
    try:
        with open(dot_git, encoding="utf-8") as f:
            gitdir = f.read().strip().removeprefix("gitdir:").strip()
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as f:
            return {os.path.realpath(os.path.join(gitdir, f.read().strip()))}
    except OSError:  # a .git folder (covered with the kit) or none
        return set()


def _blocker(path: str) -> str | None:
    """The first folder on the way to ``path`` that other users cannot pass through, if any."""
    current = "/"
    for part in Path(path).parts[1:-1]:
        current = os.path.join(current, part)
        try:
            if not os.stat(current).st_mode & 0o001:
                return current
        except OSError:
            return None
    return None


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(paths) -> list[str]:
    paths = sorted(set(paths))
    return [p for p in paths if not any(q != p and _within(p, q) for q in paths)]


def pick_uids(count: int) -> tuple[int, ...]:
    """``count`` user ids that no account has and no process runs as, in this user namespace's range."""
    top = UID_BASE + 10_000
    try:
        with open("/proc/self/uid_map") as f:
            ranges = [tuple(map(int, line.split())) for line in f if line.strip()]
        mapped_top = max(inside + size for inside, _, size in ranges)
    except (OSError, ValueError):
        mapped_top = 65536
    start = UID_BASE if mapped_top > top else max(1000, mapped_top - 2 - 1000)  # below nobody/overflow
    busy = {p.uid for p in processes()}
    chosen = []
    # from a random place in the range: two graders started at once (before either has a child
    # running as its ids) rarely choose the same ids, whose leftovers each would end
    offset = random.SystemRandom().randrange(1000)  # not the global generator a scenario may have seeded
    for uid in (start + (offset + i) % 1000 for i in range(1000)):
        if uid in busy:
            continue
        try:
            pwd.getpwuid(uid)
        except KeyError:
            chosen.append(uid)
            if len(chosen) == count:
                return tuple(chosen)
    raise LockdownError("no free user id for the grading sandbox")


# --------------------------------------------------------------------------- in the child


def enter(lockdown: Lockdown, slot: int, workdir: str) -> None:
    """Put the calling grading child into the sandbox ``lockdown`` describes (no way back).

    Raises:
        LockdownError: a step failed; the child must not run student code then.
    """
    uid = lockdown.uids[slot] if lockdown.drop else None
    if uid is not None:
        os.chown(workdir, uid, uid)
    if lockdown.mounts:
        cover(lockdown)
    if uid is not None:
        drop_root(uid)
    for name in ("HOME", "TMPDIR", "MPLCONFIGDIR"):
        os.environ[name] = workdir
    os.environ["USER"] = os.environ["LOGNAME"] = SANDBOX_USER
    tempfile.tempdir = workdir  # cached by the grader's own earlier use: the student's temp files go here


def _call(name: str, *args) -> None:
    if getattr(libc(), name)(*args) != 0:
        errno = ctypes.get_errno()
        raise LockdownError(f"{name}{tuple(a.decode() if isinstance(a, bytes) else a for a in args[:2])}: "
                            f"{os.strerror(errno)}")


def cover(lockdown: Lockdown) -> None:
    """A private mount namespace with ``covers`` covered, ``exposed`` put back and ``parts`` covered."""
    _call("unshare", CLONE_NEWNS)
    _call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)  # nothing done here reaches the host
    keep = {path: os.open(path, os.O_PATH) for path in lockdown.exposed}  # before they are covered
    try:
        for folder in lockdown.covers:
            _call("mount", b"tmpfs", folder.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k")
        for path, fd in keep.items():
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                open(path, "ab").close()
            _call("mount", f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None)
        for folder in lockdown.covers:
            _call("mount", None, folder.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
        for folder in lockdown.parts:
            _call("mount", b"tmpfs", folder.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"mode=0555,size=4k")
    finally:
        for fd in keep.values():
            os.close(fd)


def drop_root(uid: int) -> None:
    """Become ``uid`` (user and group) for good, without groups, unable to regain privileges."""
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    lib = libc()
    lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    lib.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # its own /proc/self stays its own (the uid change reset it)
    if 0 in os.getresuid() or 0 in os.getresgid():
        raise LockdownError("the grading child is still root")


# --------------------------------------------------------------------------- the probe


def leaks(roots) -> list[str]:
    """The kit's answer folders and files (in the kit copies ``roots``) the calling process can still read."""
    found = []
    for root in roots:
        for part in ANSWER_PARTS + (os.path.join("reference", "pretraining.py"),):
            path = os.path.join(root, part)
            if os.path.exists(path) and os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
                found.append(path)
    return found


def unreachable(paths) -> list[str]:
    """The ``paths`` the calling process cannot list or read."""
    missing = []
    for path in paths:
        try:
            os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
        except OSError:
            missing.append(path)
    return missing


def probe(plan: Lockdown) -> dict:
    """Enter ``plan`` in a throwaway child (slot 0) and report what holds there:
    ``{"mounted": bool, "dropped": bool, "problems": [one line each]}``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the throwaway child
        os.close(read_fd)
        report = {"mounted": False, "dropped": False, "problems": []}
        try:
            report.update(_probe_here(plan))
        except BaseException as exc:
            report["problems"].append(f"the sandbox could not be entered ({exc.__class__.__name__}: {exc})")
        finally:
            os.write(write_fd, json.dumps(report).encode()[:60_000])
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {}


def _probe_here(plan: Lockdown) -> dict:
    report = {"mounted": False, "dropped": False, "problems": []}
    problems = report["problems"]
    if plan.mounts:
        try:
            cover(plan)
            report["mounted"] = True
        except LockdownError as exc:
            problems.append(f"no private mount namespace here ({exc})")
    drop_root(plan.uids[0])
    missing = unreachable(plan.needed)
    if missing:
        problems.append("the sandbox user cannot read what grading needs (" + ", ".join(missing[:3]) + ")")
        return report
    report["dropped"] = True
    try:
        os.kill(os.getppid(), 0)
        problems.append("the sandbox user can signal the grader")
    except PermissionError:
        pass
    readable = leaks(plan.roots)
    if readable:
        problems.append("the kit's answers are readable by the sandbox user (" + ", ".join(readable[:3])
                        + "): make them unreadable to other users (chmod -R go-rwx)")
    return report
