"""``python -m grader batch SUBMISSIONS``: grade a whole class into one CSV gradebook.

SUBMISSIONS is a folder, or the .zip an LMS exports. Its entries are grouped into
submissions by lms.find_submissions: one per entry (a ``.py`` file, an ``.ipynb``
notebook, a ``.zip``, a folder), or one per student attempt when an LMS export (Canvas,
Moodle, Blackboard) splits a student's files into several entries. What is graded in a
folder follows folders.what_to_grade, as Gradescope's run_autograder does. One parent
process prepares the shared inputs once; every (submission, exercise) pair is graded in
its own forked child (sandbox.run_isolated), ``--jobs`` of them at once, all submissions
in one queue, so a hang or crash costs one exercise of one submission; a file that hangs
or crashes while it is imported costs one time limit for all its exercises. A
submission the grader cannot take at all gets a gradebook row with ``error`` set.

The gradebook (gradebook.py): ``submission``, ``student_id``, points per exercise,
``total``, ``error``, ``notes``, with a ``Points Possible`` row first. A summary of the
most common failing checks is printed to stdout; progress goes to stderr (a tqdm bar on a
terminal, one plain line per graded submission everywhere).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from . import gradebook
from .cpus import available_cpus
from .errors import SourceError, UsageError
from .lms import Submission, apply_roster, find_submissions, flag_duplicates, read_roster
from .options import add_cell_timeout, cell_timeout, device_argument, instructor_lockdown, jobs_help, selected_exercises

TOP_FAILING = 10
SLOWEST = "train_model_simple"  # ~2.4 s of CPU a submission; the other seven ~0.8 s together


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class Progress:
    """Progress on stderr: a tqdm bar of graded exercises on a terminal, and one plain line
    per graded submission everywhere (a CI log or a file gets the lines only)."""

    def __init__(self, total_exercises: int, total_submissions: int, stream=None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total_subs, self.subs = total_submissions, 0
        self.bar = tqdm(total=total_exercises, unit="exercise", desc="Grading", file=self.stream,
                        disable=not self.tty, leave=False, dynamic_ncols=True)

    def exercise_done(self):
        self.bar.update(1)

    def submission_done(self, sub: Submission):
        self.subs += 1
        if sub.report is not None:
            what = f"{sub.report.score:g}/{sub.report.max_score:g}"
            error = gradebook.whole_submission_error(sub.report)
            what += f" ({error})" if error else ""
        else:
            what = f"not graded: {sub.error}"
        line = f"[{self.subs}/{self.total_subs}] {sub.name}: {what}"
        if self.tty:
            self.bar.write(line, file=self.stream)  # above the bar, which is redrawn below it
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self):
        self.bar.close()


def grade_all(submissions, exercises, device: str, limits, jobs: int, ctx, progress=None, lockdown=None,
              expected=None):
    """Grade every opened submission, filling in ``.report`` (or ``.error``).

    All (submission, exercise) children share one queue of ``jobs`` slots; each
    submission is scored (its checks run, in this process) as soon as its last
    exercise has ended. ``lockdown``: instructor grading's sandbox (lockdown.prepare).
    ``expected``: the expected values of ``ctx``'s fresh seeds (runner.expected_values), one
    draw for the whole class; None: the frozen ones.
    """
    from . import runner
    from .fresh import forget
    from .sandbox import run_isolated

    children: dict[int, dict] = {}
    waiting: dict[int, set] = {}
    tasks, groups = {}, {}  # groups: children that import the same file (a hang there is shared)

    drop_expected = forget(expected)

    def forget_in_child(key=None):  # a grading or probing child: no classmate's report, no expected value
        drop_expected()
        for sub in submissions:
            sub.report = None
        # and no classmate's scoring left as cyclic garbage (its messages quote this draw's expected
        # values); cheap: the shared inputs are frozen out of collections (gc.freeze in grade_class)
        gc.collect()

    def finish(i: int):
        sub = submissions[i]
        results = children.pop(i)
        runner.explain_import_failures(sub.source, results)
        try:
            seconds = sum(r.seconds for r in results.values())
            sub.report = runner.score(sub.name, exercises, results, device, seconds,
                                      notes=runner.source_notes(sub.source), expected=expected)
        except Exception as exc:  # a grader bug must not stop the class's batch
            sub.error = f"the grader failed while scoring this submission ({one_line(exc)})"
        if progress:
            progress.submission_done(sub)

    for i, sub in enumerate(submissions):
        if sub.source is None:
            continue
        try:
            runner.prepare_source(sub.source, limits, device, lockdown, forget_in_child=forget_in_child)
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
            groups[(i, exercise)] = (i, runner.import_key(sub.source, exercise))
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
                 on_done=on_done, groups=groups, lockdown=lockdown, forget_in_child=forget_in_child)


def class_summary(submissions, exercises, top: int = TOP_FAILING, unmatched=()) -> str:
    """Totals, the submissions that could not be graded, duplicates, and the most common failing
    checks. ``unmatched``: roster names that matched no submission."""
    from .checks import check_definitions

    graded = [s for s in submissions if s.report is not None]
    lines = []
    if graded:
        totals = [s.report.score for s in graded]
        max_score = graded[0].report.max_score
        full = sum(s.report.full_marks for s in graded)
        lines.append(f"Total points: mean {statistics.mean(totals):.1f}/{max_score:g}, "
                     f"median {statistics.median(totals):g}/{max_score:g}; full marks: {full} of {len(graded)}")
    # one line per submission whose every exercise was stopped by one cause (an import that
    # hangs is listed once here, not once per exercise below)
    failed = [(s, s.error or gradebook.whole_submission_error(s.report)) for s in submissions]
    failed = [(s, why) for s, why in failed if s.report is None or why]
    if failed:
        lines.append(f"Could not be graded ({len(failed)}; see the error column):")
        lines.extend(f"  {s.name}: {why}" for s, why in failed)
    duplicates = [s for s in submissions if s.duplicates]
    if duplicates:
        lines.append(f"Duplicates ({len(duplicates)} submissions share a student id; see the notes column):")
        lines.extend(f"  {s.name}: student {s.student_id}, also {', '.join(s.duplicates)}" for s in duplicates)
    if unmatched:
        lines.append(f"Roster names with no submission ({len(unmatched)}): {', '.join(unmatched)}")

    failing = Counter()
    diagnoses = defaultdict(Counter)
    not_graded = Counter()
    stopped_whole = {s.name for s, _ in failed}
    for sub in graded:
        if sub.name in stopped_whole:
            continue
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
        counted = sum(s.name not in stopped_whole for s in graded)  # not those that could not be graded
        lines.append(f"Most common failing checks (of {counted} graded submissions):")
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
        description="Grade every submission in a folder or an LMS export's .zip (.py files, .ipynb "
                    "notebooks, .zip files, folders) into a CSV gradebook, in parallel sandboxed processes.",
    )
    p.add_argument("folder", type=Path, metavar="SUBMISSIONS", help="a folder of submissions, or its .zip")
    p.add_argument("exercises", nargs="*", metavar="EXERCISE", help="exercises to grade (default: all)")
    p.add_argument("--jobs", type=int, metavar="N", help=jobs_help("grading processes"))
    p.add_argument("--output", type=Path, default=Path("gradebook.csv"), metavar="FILE",
                   help="the CSV gradebook (default ./gradebook.csv)")
    p.add_argument("--reports", type=Path, metavar="DIR",
                   help="also write each submission's text report to DIR/<submission>.txt (feedback to hand back)")
    p.add_argument("--roster", type=Path, metavar="CSV",
                   help="a CSV with columns submission,student_id: sets the student_id of those submissions")
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
    if args.jobs is None:
        args.jobs = available_cpus()
    if args.jobs < 1 or args.timeout <= 0 or args.memory_limit <= 0:
        raise UsageError("--jobs, --timeout and --memory-limit must be positive")
    if not (args.folder.is_dir() or (args.folder.is_file() and args.folder.suffix.lower() == ".zip")):
        raise UsageError(f"{args.folder} is not a folder of submissions (nor the .zip of one)")
    if args.roster is not None and not args.roster.is_file():
        raise UsageError(f"--roster {args.roster}: no such file")
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
    # intermixed: EXERCISE names may follow options, as in `python -m grader --submission F EXERCISE`
    args = build_parser().parse_intermixed_args(argv)
    from .deps import BATCH, missing, missing_message

    if missing(BATCH):
        raise UsageError(f"batch: {missing_message(missing(BATCH))}")
    exercises = selected_exercises(args.exercises)
    check_args(args)
    roster = read_roster(args.roster) if args.roster is not None else {}
    from .options import verify_kit_data

    verify_kit_data()
    with tempfile.TemporaryDirectory(prefix="grader-batch-") as workdir:  # unpacked zips, grouped files
        return grade_class(args, exercises, roster, Path(workdir))


def open_submissions(folder: Path, workdir: Path) -> list[Submission]:
    """The submissions of ``folder`` (or of the export .zip it is), each opened for grading."""
    from .folders import open_any, unpack_zip

    if folder.is_file():  # the LMS's export .zip
        try:
            folder = unpack_zip(folder, workdir / "export")
        except SourceError as exc:
            raise UsageError(str(exc)) from None
    submissions = find_submissions(folder, workdir)
    for sub in submissions:
        if sub.error:
            continue
        try:
            sub.source = open_any(sub.path, sub.name)
        except SourceError as exc:
            sub.error = str(exc)
        except Exception as exc:  # whatever else the grader trips on: this row only
            sub.error = f"the grader could not open this submission ({one_line(exc)})"
    return submissions


def grade_class(args, exercises, roster: dict, workdir: Path) -> int:
    from .runner import expected_values, prepare_parent
    from .sandbox import Limits

    device = device_argument(args.device)
    limits = Limits(args.timeout, args.memory_limit, cell_timeout_s=cell_timeout(args))
    lockdown = instructor_lockdown(args.jobs, hide=[args.folder])  # batch grading is instructor grading
    start = time.perf_counter()
    submissions = open_submissions(args.folder, workdir)
    if not submissions:
        raise UsageError(f"no submissions in {args.folder} (expected .py, .ipynb or .zip files, or folders)")
    unmatched = apply_roster(submissions, roster)
    flag_duplicates(submissions)
    ctx = prepare_parent(exercises, device, instructor=True)  # fresh seeds: one draw for the class
    expected = expected_values(exercises, ctx, limits, args.jobs, device)  # before any student code runs
    gc.collect()
    gc.freeze()  # the shared inputs never die: keep them out of later collections (and copy-on-write pages)
    openable = [s for s in submissions if s.source is not None]
    progress = Progress(len(openable) * len(exercises), len(submissions))
    for sub in submissions:
        if sub.source is None:
            progress.submission_done(sub)
    try:
        grade_all(submissions, exercises, device, limits, args.jobs, ctx, progress, lockdown=lockdown, expected=expected)
    finally:
        progress.close()
    gradebook.write(args.output, submissions, exercises)
    if args.reports is not None:
        write_reports(args.reports, submissions)
    seconds = time.perf_counter() - start
    print(f"Graded {len(submissions)} submissions ({len(exercises)} exercises each) in {seconds:.0f} s "
          f"with --jobs {args.jobs}; gradebook written to {args.output}"
          + (f", reports to {args.reports}/" if args.reports else ""))
    sys.stdout.write(class_summary(submissions, exercises, unmatched=unmatched))
    return 0
