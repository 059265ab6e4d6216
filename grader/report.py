"""Render a grading Report: plain text for students, results.json for Gradescope, Exercism v3
results.json (GitHub Classroom), JUnit XML (pytest's own reporter)."""

from __future__ import annotations

import json

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


def render_text(report: Report, verbose: bool = False) -> str:
    width = max(len(e.name) for e in report.exercises) if report.exercises else 10
    lines = [f"Grading {report.source} on {report.device}", *(f"note: {note}" for note in report.notes), ""]
    for ex in report.exercises:
        score = f"{_points(ex.score)}/{_points(ex.max_score)}"
        lines.append(f"  {ex.name:<{width}}  {score:>6}  {ex.status_line}")
    total = f"{_points(report.score)}/{_points(report.max_score)}"
    lines += [f"  {'Total':<{width}}  {total:>6}", ""]

    for ex in report.exercises:
        if ex.status == "not_implemented" and "imported" not in ex.message:
            continue  # the table already says "not implemented yet"
        if ex.status != "graded":  # the message says what stopped it; a check's hint would not help
            lines.append(f"{ex.name}: {ex.message or ex.status_line}")
            lines.append("")
            continue
        failed = [c for c in ex.checks if not c.passed]
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


def gradescope_results(report: Report) -> dict:
    """Gradescope's results.json: one test per check, tagged with its exercise's function name."""
    tests = []
    for ex in report.exercises:
        for check in ex.checks:
            if check.passed:
                output = "passed"
            else:
                parts = [ex.message or check.message]
                if check.diagnosis:
                    parts.append(f"likely cause: {check.diagnosis}")
                parts.append(f"hint: {check.hint}")
                output = "\n".join(p for p in parts if p)
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
        "max_score": report.max_score,
        "execution_time": round(report.seconds, 2),
        "output": "\n".join([f"{_points(report.score)}/{_points(report.max_score)} points",
                             *(f"note: {note}" for note in report.notes)]),
        "tests": tests,
    }


def render_json(report: Report) -> str:
    return json.dumps(gradescope_results(report), indent=2, ensure_ascii=False) + "\n"


# Exercise statuses in which none of its checks could run (Exercism's "error").
ERROR_STATUSES = ("load_error", "timeout", "memory", "crashed")
EXERCISM_OUTPUT_LIMIT = 500  # characters, per the Exercism test runner interface
EXERCISM_TRUNCATED = "Output was truncated. Please limit to 500 chars"


def _failure_text(ex, check) -> str:
    parts = [ex.message or check.message]
    if check.diagnosis:
        parts.append(f"likely cause: {check.diagnosis}")
    parts.append(f"hint: {check.hint}")
    return "\n".join(p for p in parts if p)


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
            test = {"name": f"{ex.name}: {check.what}", "status": status,
                    "message": None if check.passed else _failure_text(ex, check)}
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
        status = "error"
        message = "\n".join(f"{ex.name}: {ex.message or ex.status_line}" for ex in report.exercises)
    else:
        status, message = "fail", None
    return {"version": 3, "status": status, "message": message, "tests": tests,
            "score": report.score, "max_score": report.max_score}


def render_exercism(report: Report, verbose: bool = False) -> str:
    return json.dumps(exercism_results(report), indent=2, ensure_ascii=False) + "\n"


def render_junit(report: Report, verbose: bool = False) -> str:
    """JUnit XML written by pytest's own reporter (``--junitxml``, family xunit2).

    The report's check results are replayed through the same pytest run that scores
    them (grader/check_tests.py): one ``testcase`` per check, named
    ``test_check[EXERCISE.CHECK_ID]``, a ``failure`` with the check's message when it
    failed; the ``testsuite`` is named chapter5-grader.
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

    with tempfile.TemporaryDirectory(prefix="grader-junit-") as tmp:
        path = Path(tmp) / "junit.xml"
        run_grading(Replay(), junitxml=path)
        return path.read_text(encoding="utf-8")


RENDERERS = {
    "text": render_text,
    "json": lambda report, verbose=False: render_json(report),
    "exercism": render_exercism,
    "junit": render_junit,
}
