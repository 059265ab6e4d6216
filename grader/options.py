"""Options and checks the grader's commands share (grade, batch, gradescope, watch):
exercise names, --device, the kit's data and frozen expected values, instructor grading's sandbox."""

from __future__ import annotations

import difflib
import sys

from . import EXERCISES
from .cpus import available_cpus
from .errors import UsageError


def check_exercise_name(name: str) -> str:
    if name in EXERCISES:
        return name
    close = difflib.get_close_matches(name, EXERCISES, n=1)
    suggestion = f": did you mean {close[0]}?" if close else f" (one of: {', '.join(EXERCISES)})"
    raise UsageError(f"unknown exercise {name!r}{suggestion}")


def verify_kit_data() -> None:
    """The shipped data files and the frozen expected values are all there (else UsageError)."""
    from .context import EXPECTED_DIR, missing_expected_files

    verify_data_files()
    if missing_expected_files():
        raise UsageError(f"expected values missing in {EXPECTED_DIR}: run `python -m grader regen`")


def selected_exercises(names) -> list[str]:
    """The exercises named on the command line (checked, duplicates dropped), or all of them."""
    return [check_exercise_name(n) for n in dict.fromkeys(names)] or list(EXERCISES)


# --format values (report.RENDERERS renders them; named here so that parsing the command
# line imports no torch)
FORMATS = ("text", "json", "exercism", "junit", "classroom")


def device_argument(name: str) -> str:
    """``--device`` resolved (auto -> cuda or cpu); UsageError for cuda without a GPU."""
    if name == "cpu":
        return name  # without importing torch, so that the report's header comes at once
    from .runner import resolve_device

    try:
        return resolve_device(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def verify_data_files() -> None:
    from reference import DataFileError, verify_all_data

    try:
        verify_all_data()
    except DataFileError as exc:
        raise UsageError(str(exc)) from None


def jobs_help(what: str) -> str:
    """``--jobs`` help: its default is the CPUs this process may use (cpus.available_cpus)."""
    return f"{what} at once (default: the CPUs this process may use, {available_cpus()} here)"


def instructor_lockdown(parallel: int, hide=()):
    """The sandbox of instructor grading (lockdown.py), with a one-line warning on stderr where it is
    not complete (the grader is not root, no mount namespaces, ...)."""
    from .lockdown import prepare

    lockdown = prepare(parallel, hide)
    if lockdown.warning():
        print(f"python -m grader: {lockdown.warning()}", file=sys.stderr)
    return lockdown


def add_cell_timeout(parser) -> None:
    """``--cell-timeout S``: a notebook's per-cell limit when its cells are probed (probe.py)."""
    parser.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                        help="a notebook's cells: time limit per cell, paid once per notebook; a cell that "
                             "takes longer is stopped, reported and skipped (default: --timeout)")


def cell_timeout(args) -> float:
    """``Limits.cell_timeout_s`` from ``--cell-timeout`` (0: the exercise limit). UsageError unless positive."""
    if args.cell_timeout is not None and args.cell_timeout <= 0:
        raise UsageError("--cell-timeout must be positive")
    return args.cell_timeout or 0.0
