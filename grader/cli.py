"""``python -m grader``: grade the chapter-5 exercises.

Exit status: 0 when every graded exercise gets full marks, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from . import EXERCISES
from .errors import SourceError, UsageError
from .cpus import available_cpus
from .options import (FORMATS, add_cell_timeout, cell_timeout, check_exercise_name, device_argument,
                      instructor_lockdown, jobs_help, selected_exercises, verify_data_files, verify_kit_data)

KIT_ROOT = Path(__file__).resolve().parent.parent
# Subcommands: name -> "module:function" taking argv (list of str) and returning an exit
# status; imported only when used. Raise cli.UsageError for a one-line error (exit 2).
COMMANDS = {
    "regen": "grader.cli:regen_command",
    "make-exercises": "grader.cli:make_exercises_command",
    "batch": "grader.batch:batch_command",
    "notebook": "grader.make_notebook:notebook_command",
    "gradescope": "grader.gradescope:gradescope_command",
    "release": "grader.release:release_command",
}


CODE_SUFFIXES = {".py", ".ipynb"}  # --output never replaces a student's code
KIT_SOURCE_FOLDERS = ("exercises", "solutions", "grader", "reference", "data")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m grader",
        description="Grade the chapter-5 exercises against the reference. "
                    f"Other commands: {', '.join(COMMANDS)} (python -m grader COMMAND --help).",
    )
    p.add_argument("exercises", nargs="*", metavar="EXERCISE",
                   help="exercises to grade (default: all); see --list")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--solutions", action="store_true", help="grade solutions/ (the instructor's check)")
    what.add_argument("--submission", type=Path, metavar="FILE",
                      help="grade one .py file that defines any of the exercise functions, "
                           "a Jupyter notebook (.ipynb; its code cells run in order), or a folder or "
                           ".zip of them")
    what.add_argument("--exercises-dir", type=Path, metavar="DIR",
                      help="grade another folder laid out like exercises/")
    p.add_argument("--list", action="store_true", help="list the exercises and their points")
    p.add_argument("--hint", metavar="EXERCISE", help="print the hints for one exercise")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where the scenarios run (default cpu; auto picks cuda when available)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text for people; json is Gradescope's results.json; exercism is Exercism's "
                        "results.json v3 with points; classroom is that with one test per point (GitHub "
                        "Classroom's reporter); junit is JUnit XML")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="time limit per exercise in seconds (default 60)")
    add_cell_timeout(p)
    p.add_argument("--memory-limit", type=int, default=2048, metavar="MB",
                   help="memory limit per exercise in MiB, above the grader's own (default 2048)")
    p.add_argument("--jobs", type=int, metavar="N", help=jobs_help("exercises graded"))
    p.add_argument("-v", "--verbose", action="store_true",
                   help="all hints, what your code printed, and tracebacks")
    p.add_argument("--watch", action="store_true",
                   help="keep running: grade again each time an exercise file is saved (Ctrl-C stops)")
    p.add_argument("--fresh-seeds", action="store_true",
                   help="instructor grading, for grades that count: the student's code cannot reach the kit's "
                        "own answers and, when the grader runs as root, runs as an unprivileged user of its own "
                        "(see README, \"Instructor grading\"); it will also draw fresh scenario seeds at "
                        "grade time")
    return p




def list_exercises() -> str:
    from .checks import check_definitions

    defs = check_definitions()
    width = max(map(len, EXERCISES))
    lines = []
    for i, name in enumerate(EXERCISES, 1):
        spec = defs[name]
        points = sum(c["points"] for c in spec["checks"])
        lines.append(f"{i}. {name:<{width}}  {points:>2} points  section {spec['section']:<6} {spec['summary']}")
    return "\n".join(lines) + "\n"


def hints(name: str) -> str:
    from .checks import check_definitions

    spec = check_definitions()[check_exercise_name(name)]
    lines = [f"{name} (section {spec['section']}): {spec['summary']}"]
    for check in spec["checks"]:
        lines.append(f"- {check['what']}\n  hint: {check['hint']}")
    return "\n".join(lines) + "\n"


def open_source(args):
    from .sources import ExercisesDir

    try:
        if args.solutions:
            if not (KIT_ROOT / "solutions").is_dir():
                raise UsageError("--solutions: there is no solutions/ here (the student release has none)")
            return ExercisesDir(KIT_ROOT / "solutions", f"{KIT_ROOT / 'solutions'}/")
        if args.submission:
            from .folders import open_any

            return open_any(args.submission)
        if args.exercises_dir:
            if not args.exercises_dir.is_dir():
                raise UsageError(f"{args.exercises_dir} is not a folder")
            return ExercisesDir(args.exercises_dir, str(args.exercises_dir))
        return ExercisesDir(KIT_ROOT / "exercises", f"{KIT_ROOT / 'exercises'}/")  # which copy, said in full
    except SourceError as exc:
        raise UsageError(str(exc)) from None


def check_output_path(path: Path | None, source) -> None:
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder: name a file")
    source_path = getattr(source, "path", None)
    if source_path is not None and path.resolve() == Path(source_path).resolve():
        raise UsageError(f"--output {path} is the submission itself: name another file")
    if not path.parent.exists():
        raise UsageError(f"--output {path}: folder {path.parent} does not exist")
    if path.exists() and path.suffix in CODE_SUFFIXES:
        raise UsageError(f"--output {path} is existing code, not a report: name another file")
    resolved = path.resolve()
    for folder in KIT_SOURCE_FOLDERS:
        if (KIT_ROOT / folder).resolve() in resolved.parents:
            raise UsageError(f"--output {path} is inside the kit's {folder}/: write the report elsewhere")








def write_report(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)


def grade_command(argv) -> int:
    if os.environ.get("CH5_GRADER_IN_NOTEBOOK"):  # set by grader/notebook.py in a grading child
        raise UsageError("started from a notebook cell that is being graded: grading does not nest")
    args = build_parser().parse_args(argv)
    if args.list:
        sys.stdout.write(list_exercises())
        return 0
    if args.hint:
        sys.stdout.write(hints(args.hint))
        return 0
    exercises = selected_exercises(args.exercises)
    if args.jobs is None:
        args.jobs = available_cpus()
    if args.timeout <= 0 or args.memory_limit <= 0 or args.jobs < 1:
        raise UsageError("--timeout, --memory-limit and --jobs must be positive")
    cell_limit = cell_timeout(args)
    if args.watch and (args.output is not None or args.format != "text"):
        raise UsageError("--watch prints text reports to the terminal: drop --output and --format")
    if args.watch and args.fresh_seeds:
        raise UsageError("--watch is for practice; --fresh-seeds grades once, for grades that count: drop one")
    if not hasattr(os, "fork"):
        raise UsageError("the grader runs each exercise in a forked process, which needs Linux or macOS "
                         "(on Windows, use WSL)")
    source = open_source(args)
    check_output_path(args.output, source)
    device = device_argument(args.device)
    if args.watch:
        verify_kit_data()
        from .sandbox import Limits
        from .watch import watch

        limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_limit, cell_timeout_s=cell_limit)
        return watch(lambda: open_source(args), exercises, device, limits, args.jobs, verbose=args.verbose)
    live = None
    if args.format == "text" and args.output is None:  # the report as it happens (grader/live.py)
        from .live import LiveTable

        live = LiveTable(sys.stdout, source.label, device, exercises, args.timeout)
        live.start()  # before torch is imported
    verify_kit_data()

    from .report import RENDERERS, closing_lines
    from .runner import grade
    from .sandbox import Limits

    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_limit, cell_timeout_s=cell_limit)
    report = grade(source, exercises, device=device, limits=limits, parallel=args.jobs, progress=live,
                   lockdown=instructor_lockdown(args.jobs) if args.fresh_seeds else None)
    if live is not None:
        live.close(report, closing_lines(report, verbose=args.verbose))
    else:
        write_report(RENDERERS[args.format](report, verbose=args.verbose), args.output)
    if args.output is not None:
        print(f"{report.score:g}/{report.max_score:g} points; report written to {args.output}", file=sys.stderr)
    return 0 if report.full_marks else 1


def regen_command(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m grader regen",
                                description="Recompute grader/expected/ from the reference (about a minute). "
                                            "A file whose values are unchanged (within the stated tolerance) "
                                            "is kept byte for byte.")
    p.add_argument("--check", action="store_true",
                   help="only report which files would change; exit 1 if any")
    args = p.parse_args(argv)
    verify_data_files()
    from .expected import regenerate

    changed = regenerate(check=args.check)
    if args.check:
        print("grader/expected/ is current" if not changed else
              f"{len(changed)} file(s) would change: run `python -m grader regen`")
        return 1 if changed else 0
    return 0




def make_exercises_command(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m grader make-exercises",
                                description="Write exercises/ from solutions/ (solution regions become stubs).")
    p.add_argument("--check", action="store_true", help="only report files that differ; exit 1 if any")
    p.add_argument("--force", action="store_true", help="replace exercises/ files that differ (loses edits)")
    args = p.parse_args(argv)
    from .generate import GenerateError, drift, write_exercises

    try:
        if args.check:
            stale = drift()
            for name in stale:
                print(f"exercises/{name} differs from what solutions/ generates")
            return 1 if stale else 0
        kept = write_exercises(force=args.force)
    except GenerateError as exc:
        raise UsageError(str(exc)) from None
    return 1 if kept else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            from .release_mode import KIT_ONLY_COMMANDS, is_release

            if is_release() and argv[0] in KIT_ONLY_COMMANDS:
                raise UsageError(f"'{argv[0]}' is not part of the student release: {KIT_ONLY_COMMANDS[argv[0]]}")
            module_name, function = COMMANDS[argv[0]].split(":")
            return getattr(importlib.import_module(module_name), function)(argv[1:])
        return grade_command(argv)
    except UsageError as exc:
        print(f"python -m grader: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m grader: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`python -m grader | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1  # the report was not delivered: never claim full marks
