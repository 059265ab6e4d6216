"""``python -m grader batch SUBMISSIONS_DIR``: grade a whole class into one CSV gradebook.

Every entry of SUBMISSIONS_DIR is one submission: a ``.py`` file, an ``.ipynb``
notebook, or a folder holding an ``exercises/`` tree (or a single .py/.ipynb file).
One parent process prepares the shared inputs once; every (submission, exercise)
pair is graded in its own forked child (sandbox.run_isolated), ``--jobs`` of them
at once, all submissions in one queue, so a hang or crash costs one exercise of one
submission and no slot waits for a slow exercise of another submission. A
submission the grader cannot take at all (not UTF-8, an import that is not
installed, an unsupported file) gets a gradebook row with its ``error`` filled in.

The gradebook has one row per submission: ``submission`` (the entry's name), one
column of points per exercise, ``total``, ``error`` (why the submission could not
be graded at all; its points are then empty) and ``notes`` (exercises that were not
graded normally: not implemented, could not be loaded, time or memory limit,
crashed). A summary of the most common failing checks is printed to stdout; a
progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from .options import add_cell_timeout, cell_timeout, device_argument, selected_exercises
from .errors import SourceError, UsageError

SKIPPED_PREFIXES = (".", "__")  # .DS_Store, .git, __MACOSX, __pycache__
TOP_FAILING = 10
SLOWEST = "train_model_simple"  # ~2.4 s of CPU a submission; the other seven ~0.8 s together


@dataclass
class Submission:
    name: str  # the entry's name in SUBMISSIONS_DIR: the gradebook's row label
    path: Path
    source: object = None  # sources.ExercisesDir, SubmissionFile or NotebookFile, once opened
    error: str = ""  # why it cannot be graded at all (one line)
    report: object = None  # grading.Report, once graded


def find_submissions(folder: Path) -> list[Submission]:
    """The submissions in ``folder``, sorted by name; hidden entries (``.x``, ``__x``) are skipped."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith(SKIPPED_PREFIXES))
    return [Submission(p.name, p) for p in entries]


def open_file(path: Path, label: str):
    """sources.SubmissionFile for a .py file, sources.NotebookFile for an .ipynb one. Raises SourceError."""
    from .sources import open_submission

    if path.suffix in (".py", ".ipynb"):
        source = open_submission(path)
    else:
        raise SourceError(f"unsupported submission {path.name!r}: expected a .py or .ipynb file, "
                          "or a folder holding exercises/")
    source.label = label
    return source


def open_entry(path: Path, label: str):
    """The grading source of one entry of SUBMISSIONS_DIR. Raises sources.SourceError (one line)."""
    from .sources import ExercisesDir

    if not path.is_dir():
        return open_file(path, label)
    trees = [path / "exercises"] if (path / "exercises").is_dir() else sorted(path.glob("*/exercises"))
    trees = [t for t in trees if t.is_dir()]
    if len(trees) == 1:
        return ExercisesDir(trees[0], label)
    if len(trees) > 1:
        raise SourceError(f"{len(trees)} exercises/ folders in {path.name}: keep one")
    files = [p for p in path.iterdir() if p.suffix in (".py", ".ipynb") and not p.name.startswith(SKIPPED_PREFIXES)]
    if len(files) == 1:
        return open_file(files[0], label)
    if not files:
        raise SourceError(f"folder {path.name} holds no exercises/ folder and no .py or .ipynb file")
    raise SourceError(f"folder {path.name} holds {len(files)} .py/.ipynb files and no exercises/ folder: "
                      "which one is the submission?")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class Progress:
    """A dependency-free progress bar on stderr, plus one line per graded submission.

    On a terminal the bar is redrawn in place; elsewhere (CI logs, a file) only the
    per-submission lines are written.
    """

    def __init__(self, total_exercises: int, total_submissions: int, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done = max(1, total_exercises), 0
        self.total_subs, self.subs = total_submissions, 0
        self.start = time.perf_counter()
        self._drawn = 0.0

    def _bar(self) -> str:
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = int(time.perf_counter() - self.start)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} exercises, "
                f"{self.subs}/{self.total_subs} submissions, {elapsed // 60}:{elapsed % 60:02d}")

    def _draw(self, force=False):
        now = time.perf_counter()
        if self.tty and (force or now - self._drawn > 0.1):
            self.stream.write("\r\033[K" + self._bar())
            self.stream.flush()
            self._drawn = now

    def exercise_done(self):
        self.done += 1
        self._draw()

    def submission_done(self, sub: Submission):
        self.subs += 1
        if sub.report is not None:
            what = f"{sub.report.score:g}/{sub.report.max_score:g}"
        else:
            what = f"not graded: {sub.error}"
        line = f"[{self.subs}/{self.total_subs}] {sub.name}: {what}"
        self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self._draw(force=True)
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def grade_all(submissions, exercises, device: str, limits, jobs: int, ctx, progress: Progress | None = None):
    """Grade every opened submission, filling in ``.report`` (or ``.error``).

    All (submission, exercise) children share one queue of ``jobs`` slots; each
    submission is scored (its checks run, in this process) as soon as its last
    exercise has ended.
    """
    from . import runner
    from .sandbox import run_isolated

    children: dict[int, dict] = {}
    waiting: dict[int, set] = {}
    tasks = {}

    def finish(i: int):
        sub = submissions[i]
        results = children.pop(i)
        try:
            seconds = sum(r.seconds for r in results.values())
            sub.report = runner.score(sub.name, exercises, results, device, seconds,
                                      notes=runner.source_notes(sub.source))
        except Exception as exc:  # a grader bug must not stop the class's batch
            sub.error = f"the grader failed while scoring this submission ({one_line(exc)})"
        if progress:
            progress.submission_done(sub)

    for i, sub in enumerate(submissions):
        if sub.source is None:
            continue
        try:
            runner.prepare_source(sub.source, limits, device)
            known, own_tasks = runner.plan(sub.source, exercises, ctx)
        except Exception as exc:
            sub.error = f"the grader could not read this submission ({one_line(exc)})"
            if progress:
                progress.submission_done(sub)
            continue
        children[i] = known
        waiting[i] = set(own_tasks)
        # the slowest exercise first, so that the other slot is not left idle at the end
        for exercise in sorted(own_tasks, key=lambda e: e != SLOWEST):
            tasks[(i, exercise)] = own_tasks[exercise]
        if progress:
            for _ in known:
                progress.exercise_done()
        if not own_tasks:
            finish(i)

    def on_done(key, result):
        i, exercise = key
        children[i][exercise] = result
        waiting[i].discard(exercise)
        if progress:
            progress.exercise_done()
        if not waiting[i]:
            finish(i)

    run_isolated(tasks, limits, parallel=jobs, limit_address_space=runner.limit_address_space(device),
                 on_done=on_done)


def gradebook_fields(exercises) -> list[str]:
    return ["submission", *exercises, "total", "error", "notes"]


def gradebook_row(sub: Submission, exercises) -> dict:
    row = {"submission": sub.name, "error": sub.error, "notes": ""}
    if sub.report is None:
        return row  # points left empty: nothing was graded
    notes = defaultdict(list)  # what happened -> exercises it happened to
    for ex in sub.report.exercises:
        row[ex.name] = f"{ex.score:g}"
        if ex.status != "graded":
            detail = ex.status_line if ex.status == "not_implemented" else (ex.message or ex.status_line)
            notes[detail].append(ex.name)
    row["total"] = f"{sub.report.score:g}"
    row["notes"] = "; ".join([*sub.report.notes, *(f"{', '.join(names)}: {detail}" for detail, names in notes.items())])
    return row


def write_gradebook(path: Path, submissions, exercises) -> None:
    """Write the CSV (UTF-8) atomically: a crash never leaves half a gradebook."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=gradebook_fields(exercises))
        writer.writeheader()
        for sub in submissions:
            writer.writerow(gradebook_row(sub, exercises))
    os.replace(tmp, path)


def class_summary(submissions, exercises, top: int = TOP_FAILING) -> str:
    """Totals, the submissions that could not be graded, and the most common failing checks."""
    from .checks import check_definitions

    graded = [s for s in submissions if s.report is not None]
    lines = []
    if graded:
        totals = [s.report.score for s in graded]
        max_score = graded[0].report.max_score
        full = sum(s.report.full_marks for s in graded)
        lines.append(f"Total points: mean {statistics.mean(totals):.1f}/{max_score:g}, "
                     f"median {statistics.median(totals):g}/{max_score:g}; full marks: {full} of {len(graded)}")
    failed = [s for s in submissions if s.report is None]
    if failed:
        lines.append(f"Could not be graded ({len(failed)}; see the error column):")
        lines.extend(f"  {s.name}: {s.error}" for s in failed)

    failing = Counter()
    diagnoses = defaultdict(Counter)
    not_graded = Counter()
    for sub in graded:
        for ex in sub.report.exercises:
            if ex.status != "graded":
                not_graded[(ex.name, ex.status_line)] += 1
                continue
            for check in ex.checks:
                if not check.passed:
                    failing[(ex.name, check.id)] += 1
                    if check.diagnosis:
                        diagnoses[(ex.name, check.id)][check.diagnosis] += 1
    if failing:
        lines.append(f"Most common failing checks (of {len(graded)} graded submissions):")
        order = {e: i for i, e in enumerate(exercises)}
        whats = {(e, c["id"]): c["what"] for e in exercises for c in check_definitions()[e]["checks"]}
        previous = None
        for (exercise, check_id), count in sorted(failing.items(), key=lambda kv: (-kv[1], order[kv[0][0]]))[:top]:
            lines.append(f"  {count:>4}  {exercise} [{check_id}]: {whats.get((exercise, check_id), '')}")
            if diagnoses[(exercise, check_id)]:
                cause, n = diagnoses[(exercise, check_id)].most_common(1)[0]
                if (cause, n) != previous:  # one mistake often fails several checks: say it once
                    lines.append(f"        likely cause ({n} of {count}): {cause}")
                previous = (cause, n)
            else:
                previous = None
    elif graded:
        lines.append("No check failed in any graded exercise.")
    if not_graded:
        lines.append("Exercises not graded normally:")
        for (exercise, status), count in sorted(not_graded.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {count:>4}  {exercise}: {status}")
    return "\n".join(lines) + "\n"


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m grader batch",
        description="Grade every submission in a folder (.py files, .ipynb notebooks, folders holding "
                    "exercises/) into a CSV gradebook, in parallel sandboxed processes.",
    )
    p.add_argument("folder", type=Path, metavar="SUBMISSIONS_DIR")
    p.add_argument("exercises", nargs="*", metavar="EXERCISE", help="exercises to grade (default: all)")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="grading processes at once (default 2; up to the number of free CPU cores)")
    p.add_argument("--output", type=Path, default=Path("gradebook.csv"), metavar="FILE",
                   help="the CSV gradebook (default ./gradebook.csv)")
    p.add_argument("--reports", type=Path, metavar="DIR",
                   help="also write each submission's text report to DIR/<submission>.txt (feedback to hand back)")
    p.add_argument("--force", action="store_true", help="replace an existing gradebook (and reports)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="time limit per exercise of a submission, in seconds (default 60)")
    add_cell_timeout(p)
    p.add_argument("--memory-limit", type=int, default=2048, metavar="MB",
                   help="memory limit per exercise in MiB, above the grader's own (default 2048)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where the scenarios run (default cpu; auto picks cuda when available)")
    return p


def inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_args(args) -> None:
    """One-line UsageErrors for what cannot work, before anything is graded."""
    if args.jobs < 1 or args.timeout <= 0 or args.memory_limit <= 0:
        raise UsageError("--jobs, --timeout and --memory-limit must be positive")
    if not args.folder.is_dir():
        raise UsageError(f"{args.folder} is not a folder of submissions")
    out = args.output
    if inside(out, args.folder):
        raise UsageError(f"--output {out} is inside the submissions folder: write the gradebook elsewhere")
    if out.is_dir():
        raise UsageError(f"--output {out} is a folder: name a .csv file")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists (an earlier gradebook, perhaps edited by hand): "
                         "pass --force to replace it, or name another --output")
    if args.reports is not None:
        if inside(args.reports, args.folder):
            raise UsageError(f"--reports {args.reports} is inside the submissions folder: name another folder")
        if args.reports.exists() and not args.reports.is_dir():
            raise UsageError(f"--reports {args.reports} is a file: name a folder")
        if args.reports.is_dir() and any(args.reports.iterdir()) and not args.force:
            raise UsageError(f"--reports {args.reports} is not empty: pass --force to replace reports in it, "
                             "or name an empty folder")


def write_reports(folder: Path, submissions) -> None:
    from .report import RENDERERS

    folder.mkdir(parents=True, exist_ok=True)
    for sub in submissions:
        text = (RENDERERS["text"](sub.report) if sub.report is not None
                else f"{sub.name} could not be graded: {sub.error}\n")
        (folder / f"{sub.name}.txt").write_text(text, encoding="utf-8")


def batch_command(argv) -> int:

    args = build_parser().parse_args(argv)
    exercises = selected_exercises(args.exercises)
    check_args(args)
    submissions = find_submissions(args.folder)
    if not submissions:
        raise UsageError(f"no submissions in {args.folder} (expected .py or .ipynb files, or folders)")
    from .options import verify_kit_data

    verify_kit_data()

    from .runner import prepare_parent
    from .sandbox import Limits

    limits = Limits(args.timeout, args.memory_limit, cell_timeout_s=cell_timeout(args))
    device = device_argument(args.device)
    start = time.perf_counter()
    for sub in submissions:
        try:
            sub.source = open_entry(sub.path, sub.name)
        except SourceError as exc:
            sub.error = str(exc)
        except Exception as exc:  # whatever else the grader trips on: this row only
            sub.error = f"the grader could not open this submission ({one_line(exc)})"
    ctx = prepare_parent(exercises, device)
    gc.collect()
    gc.freeze()  # the shared inputs never die: keep them out of later collections (and copy-on-write pages)
    openable = [s for s in submissions if s.source is not None]
    progress = Progress(len(openable) * len(exercises), len(submissions))
    for sub in submissions:
        if sub.source is None:
            progress.submission_done(sub)
    try:
        grade_all(submissions, exercises, device, limits, args.jobs, ctx, progress)
    finally:
        progress.close()
    write_gradebook(args.output, submissions, exercises)
    if args.reports is not None:
        write_reports(args.reports, submissions)
    seconds = time.perf_counter() - start
    print(f"Graded {len(submissions)} submissions ({len(exercises)} exercises each) in {seconds:.0f} s "
          f"with --jobs {args.jobs}; gradebook written to {args.output}"
          + (f", reports to {args.reports}/" if args.reports else ""))
    sys.stdout.write(class_summary(submissions, exercises))
    return 0
