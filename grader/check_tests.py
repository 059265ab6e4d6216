"""The grader's checks as pytest tests: one test per check of grader/checks/*/checks.toml.

They run in the grader's own process over the outputs that the sandboxed
children sent back; ``grader/pytest_plugin.py`` supplies those and collects the
outcomes. Not collected by the project's own test run (see pyproject testpaths).
"""


import pytest


def test_check(exercise, check_id, grading):
    result = grading.evaluate(exercise, check_id)
    if not result.passed:
        # pytrace=False: the JUnit XML failure says what the student reads, not this frame
        lines = [result.message or "failed"]
        if result.diagnosis:
            lines.append(f"likely cause: {result.diagnosis}")
        if result.hint:
            lines.append(f"hint: {result.hint}")
        pytest.fail("\n".join(lines), pytrace=False)
