"""The grader's checks as pytest tests: one test per check of checks.toml.

They run in the grader's own process over the outputs that the sandboxed
children sent back; ``grader/pytest_plugin.py`` supplies those and collects the
outcomes. Not collected by the project's own test run (see pyproject testpaths).
"""


def test_check(exercise, check_id, grading):
    result = grading.evaluate(exercise, check_id)
    assert result.passed, result.message
