"""Render a grading Report: plain text for students, results.json for Gradescope, Exercism v3
results.json (GitHub Classroom), JUnit XML (pytest's own reporter)."""

from __future__ import annotations

import json
import math

from .grading import Report
from .table import header_lines, points as _points, table_row, table_width, total_row


def cause_groups(failed) -> list[tuple[str, list]]:
    """Failed checks grouped by cause, in order of first appearance: ``(likely cause, checks)``.

    One group per known mistake (a diagnosis); checks that one error failed join the group of
    that error's diagnosis, if one of them has it, else form one group; any other failed check
    is a group of its own message.
    """
    error_cause: dict[str, str] = {}
    for check in failed:
        if check.error and check.diagnosis:
            error_cause.setdefault(check.error, check.diagnosis)
    groups: dict[tuple, tuple[str, list]] = {}
    for check in failed:
        cause = check.diagnosis or error_cause.get(check.error, "")
        key = ("cause", cause) if cause else ("error", check.error) if check.error else ("message", check.message)
        groups.setdefault(key, (cause, []))[1].append(check)
    return list(groups.values())


def group_lines(ex, cause: str, group, verbose: bool) -> list[str]:
    """One cause: each check it fails (with its own message where they differ), then the
    likely cause and a hint once, under all of them."""
    first = group[0]
    same_message = len({c.error or c.message for c in group}) == 1  # one error: its first message says it
    lines = []
    for check in group:
        lines.append(f"{ex.name} [{check.id}]: {check.what}")
        if not same_message:
            lines.append(f"  {check.message}")
    if same_message:
        lines.append(f"  {first.message}")
    if cause:
        lines.append(f"  likely cause: {cause}")
    hints = list(dict.fromkeys(c.hint for c in group if c.hint)) if verbose else [first.hint]
    lines.extend(f"  hint: {hint}" for hint in hints)
    if verbose and first.traceback:
        lines.extend("  | " + line for line in first.traceback.rstrip().splitlines())
    return lines + [""]


MAX_LOG_LINES = 40  # of what an exercise printed, shown with -v ...
MAX_LOG_LINE = 300  # ... and of each line, in characters


def _size(count: int) -> str:
    if count >= 10**6:
        return f"{count / 10**6:.1f} MB"
    if count >= 10**3:
        return f"{count / 10**3:.1f} kB"
    return f"{count} bytes"


def printed_lines(ex) -> list[str]:
    """What the exercise's code printed (-v): its first lines, and how much more was cut."""
    sent = ex.log.rstrip()  # the child sent the first sandbox_child.MAX_LOG_BYTES of ex.log_bytes
    shown = [line[:MAX_LOG_LINE] for line in sent.splitlines()[:MAX_LOG_LINES]]
    unsent = max(0, ex.log_bytes - len(ex.log.encode("utf-8")))
    more = unsent + len(sent.encode("utf-8")) - len("\n".join(shown).encode("utf-8"))
    out = [f"{ex.name}: what your code printed:"] + ["  " + line for line in shown]
    if more > 0:
        out.append(f"  ... {_size(more)} more not shown")
    return out + [""]


def exercise_details(ex, verbose: bool = False, report: Report | None = None, said=None) -> list[str]:
    """What the report says below the table about one exercise. ``said``: the messages said
    already (one cause that stopped several exercises, a syntax error or an import that hangs,
    is said once, for all it stopped); ``report`` gives the release's dependency notes."""
    lines = []
    if ex.status != "graded":
        if ex.says_more:  # an untouched stub: the table's "not implemented yet" says it all
            message = ex.message or ex.status_line
            stopped = _stopped_by(report).get(message, [ex.name]) if report is not None else [ex.name]
            if said is None or message not in said:
                who = "all exercises" if report is not None and len(stopped) == len(report.exercises) > 1 \
                    else ", ".join(stopped)
                lines += [f"{who}: {message}", ""]
                if said is not None:
                    said.add(message)
    else:
        note = report.dependency_note(ex) if report is not None else ""
        if note:  # said first: the failures below may all come from there
            lines += [f"{ex.name}: note: {note}", ""]
        for cause, group in cause_groups([c for c in ex.checks if not c.passed]):
            lines += group_lines(ex, cause, group, verbose)
    if verbose and ex.log.strip():
        lines += printed_lines(ex)
    return lines


def closing_lines(report: Report, verbose: bool = False) -> list[str]:
    """What follows the table: what is said once about the source (a notebook's failed cells),
    each exercise's failures and, last, one line of advice."""
    lines = [f"note: {note}" for note in report.notes] + ([""] if report.notes else [])
    said: set[str] = set()
    lines += [line for ex in report.exercises for line in exercise_details(ex, verbose, report, said)]
    lines.append("All checks passed." if report.full_marks else "Hints for one exercise: python -m grader --hint EXERCISE")
    return lines


def _stopped_by(report: Report) -> dict[str, list[str]]:
    """Message -> the exercises it stopped from being graded (all but "not implemented yet")."""
    stopped: dict[str, list[str]] = {}
    for ex in report.exercises:
        if ex.status != "graded" and not (ex.status == "not_implemented" and "imported" not in ex.message):
            stopped.setdefault(ex.message or ex.status_line, []).append(ex.name)
    return stopped


def render_text(report: Report, verbose: bool = False) -> str:
    width = table_width(e.name for e in report.exercises)
    lines = header_lines(report.source, report.device)
    lines += [table_row(ex, width) for ex in report.exercises]
    lines += [total_row(report.score, report.max_score, width), ""]
    lines += closing_lines(report, verbose)
    return "\n".join(lines).rstrip() + "\n"


GRADESCOPE_VISIBILITY = "visible"  # students see their tests as soon as they submit (practice feedback)
GRADESCOPE_STDOUT_VISIBILITY = "hidden"  # run_autograder's log is for the instructor


def gradescope_results(report: Report, visibility: str = GRADESCOPE_VISIBILITY,
                       stdout_visibility: str = GRADESCOPE_STDOUT_VISIBILITY) -> dict:
    """Gradescope's results.json: one test per check, tagged with its exercise's function name.

    Only the fields Gradescope documents: ``score``, ``execution_time``, ``output``,
    ``visibility``, ``stdout_visibility`` and ``tests`` (``name``, ``score``,
    ``max_score``, ``status``, ``output``, ``tags``); the total possible is the sum of the
    tests' ``max_score``. Both visibilities are set explicitly.
    """
    tests = []
    for ex in report.exercises:
        for check in ex.checks:
            if check.passed:
                output = "passed"
            else:
                output = _failure_text(ex, check, report.dependency_note(ex))
            tests.append({
                "name": f"{ex.name}: {check.what}",
                "score": check.points,
                "max_score": check.max_points,
                "status": "passed" if check.passed else "failed",
                "output": output,
                "tags": [ex.name],
            })
    return {
        "score": report.score,
        "execution_time": round(report.seconds, 2),
        "output": "\n".join([f"{_points(report.score)}/{_points(report.max_score)} points",
                             *(f"note: {note}" for note in report.notes)]),
        "visibility": visibility,
        "stdout_visibility": stdout_visibility,
        "tests": tests,
    }


def render_json(report: Report) -> str:
    return json.dumps(gradescope_results(report), indent=2, ensure_ascii=False) + "\n"


# Exercise statuses in which none of its checks could run (Exercism's "error").
ERROR_STATUSES = ("load_error", "timeout", "memory", "crashed")
EXERCISM_OUTPUT_LIMIT = 500  # characters, per the Exercism test runner interface
EXERCISM_TRUNCATED = "Output was truncated. Please limit to 500 chars"


def _failure_text(ex, check, note: str = "") -> str:
    parts = [ex.message or check.message]
    if check.diagnosis:
        parts.append(f"likely cause: {check.diagnosis}")
    if note:
        parts.append(f"note: {note}")
    parts.append(f"hint: {check.hint}")
    return "\n".join(p for p in parts if p)


def _test_code(exercise: str, check_id: str) -> str:
    from .checks import check_code

    try:
        return check_code(exercise, check_id)
    except (OSError, KeyError, StopIteration, TypeError):  # no source to show (a frozen install)
        return f"# {exercise}: check {check_id} (grader/checks/{exercise}/)"


def _exercism_output(log: str) -> str | None:
    log = log.strip()
    if not log:
        return None
    if len(log) <= EXERCISM_OUTPUT_LIMIT:
        return log
    return log[: EXERCISM_OUTPUT_LIMIT - len(EXERCISM_TRUNCATED) - 1] + "\n" + EXERCISM_TRUNCATED


def exercism_results(report: Report) -> dict:
    """Exercism's test runner results.json, version 3, with GitHub Classroom's points.

    One test per check, in the chapter's order; ``task_id`` is the exercise's number
    (1 = text_to_token_ids ... 8 = plot_losses). A test's status is ``pass``, ``fail``,
    or ``error`` when its exercise could not run at all (load error, time or memory limit,
    crash). The top-level status is ``error`` only when no exercise could run, with a
    ``message`` saying why. ``output`` is what the exercise's code printed (at most 500
    characters). ``score``/``max_score`` per test and overall are the points that GitHub
    Classroom's grading reporter adds up.
    """
    from . import EXERCISES

    tests = []
    for ex in report.exercises:
        task_id = EXERCISES.index(ex.name) + 1 if ex.name in EXERCISES else None
        output = _exercism_output(ex.log)
        for check in ex.checks:
            status = "pass" if check.passed else ("error" if ex.status in ERROR_STATUSES else "fail")
            test = {"name": f"{ex.name}: {check.what}", "test_code": _test_code(ex.name, check.id),
                    "status": status, "message": None if check.passed else _failure_text(ex, check, report.dependency_note(ex))}
            if output is not None:
                test["output"] = output
            if task_id is not None:
                test["task_id"] = task_id
            test["score"] = check.points
            test["max_score"] = check.max_points
            tests.append(test)
    if report.full_marks and tests:
        status, message = "pass", None
    elif report.exercises and all(ex.status in ERROR_STATUSES for ex in report.exercises):
        status = "error"  # one cause (a syntax error, an import that hangs) is said once for all it stopped
        stopped = _stopped_by(report)
        message = "\n".join(f"{'all exercises' if len(names) == len(report.exercises) > 1 else ', '.join(names)}: "
                            f"{why}" for why, names in stopped.items())
    else:
        status, message = "fail", None
    return {"version": 3, "status": status, "message": message, "tests": tests,
            "score": report.score, "max_score": report.max_score}


def render_exercism(report: Report, verbose: bool = False) -> str:
    return json.dumps(exercism_results(report), indent=2, ensure_ascii=False) + "\n"


def render_junit(report: Report, verbose: bool = False) -> str:
    """JUnit XML written by pytest's own reporter (``--junitxml``, family xunit1).

    The report's check results are replayed through the same pytest run that scores
    them (grader/check_tests.py): one ``testcase`` per check, ``classname`` the exercise,
    ``name`` the check id, properties ``points`` and ``max_points``; a ``failure`` with
    the check's message and hint when it failed, an ``error`` when its exercise could not
    run at all (not implemented, not loadable, stopped, crashed). The ``testsuite`` is
    named chapter5-grader.
    """
    import tempfile
    from pathlib import Path

    from .pytest_plugin import Grading, run_grading

    class Replay(Grading):
        def __init__(self):
            super().__init__({ex.name: None for ex in report.exercises}, {})
            self._done = {(c.exercise, c.id): c for ex in report.exercises for c in ex.checks}

        def evaluate(self, exercise, check_id):
            self.results[(exercise, check_id)] = self._done[(exercise, check_id)]
            return self.results[(exercise, check_id)]

        def ran(self, exercise):
            return statuses[exercise] == "graded"

    statuses = {ex.name: ex.status for ex in report.exercises}

    with tempfile.TemporaryDirectory(prefix="grader-junit-") as tmp:
        path = Path(tmp) / "junit.xml"
        run_grading(Replay(), junitxml=path)
        return path.read_text(encoding="utf-8")


def classroom_results(report: Report) -> dict:
    """results.json for GitHub Classroom's grading reporter: Exercism v3 (exercism_results) with
    one test per point, each worth 1.

    The reporter (classroom-resources/autograding-grading-reporter) records the sum of the
    tests' ``score`` as the points, but its log and summary table count passed tests:
    ``passed / len(tests) * 100`` and ``passed / len(tests) * max_score``. With a test per
    point both show the points (a 3-point check is "[1/3]", "[2/3]", "[3/3]"; only the first
    carries the failure message), and the three numbers agree.
    """
    results = exercism_results(report)
    units = []
    for test, check in zip(results["tests"], (c for ex in report.exercises for c in ex.checks)):
        count = max(1, math.ceil(check.max_points))
        for i in range(count):
            unit = {**test, "score": 1 if test["status"] == "pass" else 0, "max_score": 1}
            if count > 1:
                unit["name"] = f"{test['name']} [{i + 1}/{count}]"
                if i and unit["message"]:
                    unit["message"] = f"(the same check as [1/{count}] above)"
            units.append(unit)
    return {**results, "tests": units, "score": sum(u["score"] for u in units), "max_score": len(units)}


def render_classroom(report: Report, verbose: bool = False) -> str:
    return json.dumps(classroom_results(report), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {
    "text": render_text,
    "json": lambda report, verbose=False: render_json(report),
    "exercism": render_exercism,
    "junit": render_junit,
    "classroom": render_classroom,
}
