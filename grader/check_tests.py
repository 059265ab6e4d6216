"""The grader's checks as pytest tests: one test per check of grader/checks/*/checks.toml.

They run in the grader's own process over the outputs that the sandboxed
children sent back; ``grader/pytest_plugin.py`` supplies those and collects the
outcomes. Not collected by the project's own test run (see pyproject testpaths).

For pytest's JUnit XML (``--format junit``) each test case is named after its check:
``classname`` the exercise, ``name`` the check id, properties ``points`` and
``max_points``. A check whose exercise could not run at all (not implemented, not
loadable, stopped, crashed) fails in its setup, so JUnit reports it as an error, not a failure.
"""

import pytest


@pytest.fixture
def check_result(grading, exercise, check_id, record_property, record_xml_attribute):
    result = grading.evaluate(exercise, check_id)
    record_xml_attribute("classname", exercise)
    record_xml_attribute("name", check_id)
    record_property("points", f"{result.points:g}")
    record_property("max_points", f"{result.max_points:g}")
    if not grading.ran(exercise):  # nothing of the exercise ran: an error, not a failed check
        pytest.fail(result.message or "the exercise could not run", pytrace=False)
    return result


def test_check(check_result):
    if not check_result.passed:
        # pytrace=False: the JUnit XML failure says what the student reads, not this frame
        lines = [check_result.message or "failed"]
        if check_result.diagnosis:
            lines.append(f"likely cause: {check_result.diagnosis}")
        if check_result.hint:
            lines.append(f"hint: {check_result.hint}")
        pytest.fail("\n".join(lines), pytrace=False)
