"""Options and checks the grader's commands share (grade, batch, gradescope, watch):
exercise names, --device, the kit's data and frozen expected values."""

from __future__ import annotations

import difflib

from . import EXERCISES
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
FORMATS = ("text", "json", "exercism", "junit")


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
