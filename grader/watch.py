"""``python -m grader --watch [EXERCISE ...]``: re-grade each time an exercise file is saved.

The shared inputs (torch, the tokenizer, the 124M model) are prepared once; the
files are polled every half second (their modification time, size and inode: no
new dependency, and editors that save by renaming are seen too). When one changes,
the exercises it holds are graded again in forked children, a second or a few,
and the whole table is printed again. With one exercise per file
(``exercises/``), only the changed exercise is re-graded, since the grader binds
the other exercises to the reference; with a single .py file or notebook, or in
the student release (where exercises run on the student's own earlier ones), every
watched exercise is. Ctrl-C stops watching (exit status 0).

``CH5_GRADER_WATCH_ROUNDS=N`` in the environment stops after N gradings (the first
one included); the tests use it.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from datetime import datetime
from pathlib import Path

POLL_S = 0.5
SETTLE_S = 0.2  # after a change, wait this long for the editor to finish writing
ROUNDS_ENV = "CH5_GRADER_WATCH_ROUNDS"


def watched_files(source, exercises) -> dict[str, Path]:
    """Exercise -> the file whose changes re-grade it."""
    if hasattr(source, "file_for"):  # sources.ExercisesDir
        return {e: Path(source.file_for(e)) for e in exercises}
    return {e: Path(source.path) for e in exercises}


def file_state(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None  # missing: being replaced, or deleted
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def to_regrade(changed_files, files: dict[str, Path], exercises, source) -> list[str]:
    """The exercises to grade again after ``changed_files`` changed."""
    from .release_mode import is_release

    if is_release() or not hasattr(source, "file_for"):
        return list(exercises)  # one module, or exercises that run on the student's other ones
    return [e for e in exercises if files[e] in changed_files]


def watch(reopen, exercises, device: str, limits, parallel: int, verbose: bool = False, out=None) -> int:
    """Grade, then re-grade on every change until Ctrl-C. ``reopen()`` returns the source
    (sources.ExercisesDir, SubmissionFile or NotebookFile), read afresh, or raises
    cli.UsageError with a one-line reason (a notebook saved half-way, say)."""
    from .errors import UsageError

    out = out or sys.stdout
    rounds_left = int(os.environ.get(ROUNDS_ENV, "0") or 0) or None
    source = reopen()
    ctx = prepare(exercises, device, out)
    files = watched_files(source, exercises)
    states = {path: file_state(path) for path in set(files.values())}
    latest = {}
    pending, why = list(exercises), "first grading"
    try:
        while True:
            if pending:
                grade_round(source, exercises, pending, why, latest, device, limits, parallel, ctx, verbose, out)
                out.write(f"Watching {len(states)} file(s) of {source.label}; save to re-grade, Ctrl-C to stop.\n\n")
                out.flush()
                pending = []
                if rounds_left is not None:
                    rounds_left -= 1
                    if rounds_left <= 0:
                        return 0
            time.sleep(POLL_S)
            changed = {path for path, state in states.items() if file_state(path) != state}
            if not changed:
                continue
            time.sleep(SETTLE_S)
            states = {path: file_state(path) for path in states}
            try:
                source = reopen()
            except UsageError as exc:
                out.write(f"--- {datetime.now():%H:%M:%S} not graded: {exc} ---\n\n")
                out.flush()
                continue
            pending = to_regrade(changed, files, exercises, source)
            why = ", ".join(sorted(path.name for path in changed)) + " changed"
    except KeyboardInterrupt:
        out.write("\nStopped watching.\n")
        out.flush()
        return 0


def prepare(exercises, device: str, out):
    """The shared inputs, made once, saying what is being prepared and when it is ready."""
    from .runner import prepare_parent

    out.write("Preparing the grader once: torch, the tokenizer, The Verdict and the 124M model "
              "(a few seconds) ...\n")
    out.flush()
    start = time.perf_counter()
    ctx = prepare_parent(exercises, device)
    gc.collect()
    gc.freeze()  # the shared inputs live as long as the watch: keep them out of every collection
    out.write(f"Ready in {time.perf_counter() - start:.1f} s.\n\n")
    out.flush()
    return ctx


def grade_round(source, exercises, pending, why, latest, device, limits, parallel, ctx, verbose, out) -> None:
    """Grade ``pending`` with the table of every watched exercise printed as results come
    (grader/live.py): the others keep their latest result."""
    from .grading import Report
    from .live import LiveTable
    from .report import closing_lines
    from .runner import grade

    out.write(f"--- {datetime.now():%H:%M:%S} {why}: grading {', '.join(pending)} ---\n")
    table = LiveTable(out, source.label, device, exercises, limits.timeout_s,
                      known={e: latest[e] for e in exercises if e in latest and e not in pending})
    table.start()
    start = time.perf_counter()
    report = grade(source, pending, device=device, limits=limits, parallel=parallel, ctx=ctx, progress=table)
    seconds = time.perf_counter() - start
    latest.update({ex.name: ex for ex in report.exercises})
    shown = Report([latest[e] for e in exercises if e in latest], source.label, device, seconds,
                   notes=report.notes)
    table.close(shown, closing_lines(shown, verbose=verbose))
    out.write(f"Graded {', '.join(pending)} in {seconds:.1f} s.\n")
