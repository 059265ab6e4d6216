"""Render a grading Report: plain text for students, results.json for Gradescope."""

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
    lines = [f"Grading {report.source} on {report.device}", ""]
    for ex in report.exercises:
        score = f"{_points(ex.score)}/{_points(ex.max_score)}"
        lines.append(f"  {ex.name:<{width}}  {score:>6}  {ex.status_line}")
    total = f"{_points(report.score)}/{_points(report.max_score)}"
    lines += [f"  {'Total':<{width}}  {total:>6}", ""]

    for ex in report.exercises:
        if ex.status == "not_implemented":
            continue  # the table already says "not implemented yet"
        if ex.status != "graded":
            lines.append(f"{ex.name}: {ex.message or ex.status_line}")
            lines.append(f"  hint: {ex.checks[0].hint}" if ex.checks else "")
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
        "output": f"{_points(report.score)}/{_points(report.max_score)} points",
        "tests": tests,
    }


def render_json(report: Report) -> str:
    return json.dumps(gradescope_results(report), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "json": lambda report, verbose=False: render_json(report)}
