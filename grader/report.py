"""Render a grading Report: plain text for students, results.json for Gradescope, Exercism v3
results.json (GitHub Classroom), JUnit XML (pytest's own reporter)."""

from __future__ import annotations

import json
import math

from .grading import Report


def _points(value: float) -> str:
    return f"{value:g}"


def _same_problem_groups(failed):
    """Consecutive failed checks with the same message and diagnosis, reported once."""
    groups = []
    for check in failed:
        if groups and (groups[-1][0].message, groups[-1][0].diagnosis) == (check.message, check.diagnosis):
            groups[-1].append(check)
        else:
            groups.append([check])
    return groups


def _stopped_by(report: Report) -> dict[str, list[str]]:
    """Message -> the exercises it stopped from being graded (all but "not implemented yet")."""
    stopped: dict[str, list[str]] = {}
    for ex in report.exercises:
        if ex.status != "graded" and not (ex.status == "not_implemented" and "imported" not in ex.message):
            stopped.setdefault(ex.message or ex.status_line, []).append(ex.name)
    return stopped


def render_text(report: Report, verbose: bool = False) -> str:
    width = max(len(e.name) for e in report.exercises) if report.exercises else 10
    lines = [f"Grading {report.source} on {report.device}", *(f"note: {note}" for note in report.notes), ""]
    for ex in report.exercises:
        score = f"{_points(ex.score)}/{_points(ex.max_score)}"
        lines.append(f"  {ex.name:<{width}}  {score:>6}  {ex.status_line}")
    total = f"{_points(report.score)}/{_points(report.max_score)}"
    lines += [f"  {'Total':<{width}}  {total:>6}", ""]

    stopped = _stopped_by(report)
    for ex in report.exercises:
        if ex.status == "not_implemented" and "imported" not in ex.message:
            continue  # the table already says "not implemented yet"
        if ex.status != "graded":  # the message says what stopped it; a check's hint would not help
            message = ex.message or ex.status_line
            names = stopped.pop(message, None)
            if names:  # one cause (a syntax error, an import that hangs) is said once for all it stopped
                who = "all exercises" if len(names) == len(report.exercises) > 1 else ", ".join(names)
                lines += [f"{who}: {message}", ""]
            continue
        failed = [c for c in ex.checks if not c.passed]
        note = report.dependency_note(ex)
        if note:  # said first: the failures below may all come from there
            lines += [f"{ex.name}: note: {note}", ""]
        for i, group in enumerate(_same_problem_groups(failed)):
            for check in group:
                lines.append(f"{ex.name} [{check.id}]: {check.what}")
            first = group[0]
            lines.append(f"  {first.message}")
            if first.diagnosis:
                lines.append(f"  likely cause: {first.diagnosis}")
            if i == 0 or verbose:
                lines.append(f"  hint: {first.hint}")
            if verbose and first.traceback:
                lines.extend("  | " + line for line in first.traceback.rstrip().splitlines())
            lines.append("")
        if verbose and failed and ex.log.strip():
            lines.append(f"{ex.name}: what your code printed:")
            lines.extend("  " + line for line in ex.log.strip().splitlines()[-40:])
            lines.append("")
    if report.full_marks:
        lines.append("All checks passed.")
    else:
        lines.append("Hints for one exercise: python -m grader --hint EXERCISE")
    return "\n".join(line for line in lines if line is not None).rstrip() + "\n"


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
