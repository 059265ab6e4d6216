"""The result formats of one grading Report: Gradescope's results.json (``--format json``),
Exercism's test runner results.json v3 with points (``--format exercism``, GitHub Classroom)
and JUnit XML from pytest's own reporter (``--format junit``), each checked against the
field names its publisher documents.

One in-process grading (~3-6 s on 2 busy cores) of a folder with a correct exercise, a
wrong one that prints, a syntax error and a stub covers pass, fail and error; one CLI run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import EXERCISES
from grader.generate import generated_files
from grader.report import (EXERCISM_OUTPUT_LIMIT, EXERCISM_TRUNCATED, RENDERERS, _exercism_output,
                           exercism_results)
from grader.runner import grade
from grader.sources import ExercisesDir

ROOT = Path(__file__).resolve().parent.parent

# https://gradescope-autograders.readthedocs.io/en/latest/specs/ (gradescope/autograder_samples docs/specs.md)
GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
                  "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
                   "tags", "visibility", "extra_data"}
# https://exercism.org/docs/building/tooling/test-runners/interface (exercism/docs, interface.md)
EXERCISM_TOP = {"version", "status", "message", "tests"}
EXERCISM_TEST = {"name", "test_code", "status", "message", "output", "task_id"}
EXERCISM_STATUSES = {"pass", "fail", "error"}
# GitHub Classroom's grading reporter (classroom-resources/autograding-grading-reporter) adds
# up tests[].score and the top-level max_score.
CLASSROOM = {"score", "max_score"}

WRONG_DECODE = '''
def token_ids_to_text(token_ids, tokenizer):
    print("decoding", token_ids.shape)
    return "?" + tokenizer.decode(token_ids.squeeze(0).tolist())
'''


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    solutions = ROOT / "solutions"
    (folder / "text_to_token_ids.py").write_text((solutions / "text_to_token_ids.py").read_text(encoding="utf-8"))
    (folder / "token_ids_to_text.py").write_text(WRONG_DECODE)
    (folder / "manual_cross_entropy.py").write_text("def manual_cross_entropy(logits, targets)\n    pass\n")
    (folder / "calc_loss_batch.py").write_text(generated_files()["calc_loss_batch.py"], encoding="utf-8")  # the stub
    return folder


GRADED = ["text_to_token_ids", "token_ids_to_text", "manual_cross_entropy", "calc_loss_batch"]


@pytest.fixture(scope="module")
def mixed_report(mixed_folder, grading_ctx):
    report = grade(ExercisesDir(mixed_folder, "mixed/"), GRADED, ctx=grading_ctx)
    assert [e.status for e in report.exercises] == ["graded", "graded", "load_error", "not_implemented"]
    return report


def test_every_format_is_a_renderer():
    assert {"text", "json", "exercism", "junit"} <= set(RENDERERS)


def test_gradescope_results_use_published_fields(mixed_report):
    results = json.loads(RENDERERS["json"](mixed_report))
    assert set(results) <= GRADESCOPE_TOP  # no undocumented field (the total is the sum of the tests' max_score)
    assert (results["visibility"], results["stdout_visibility"]) == ("visible", "hidden")  # set explicitly
    checks = [c for e in mixed_report.exercises for c in e.checks]
    assert len(results["tests"]) == len(checks)
    for test, check in zip(results["tests"], checks):
        assert set(test) <= GRADESCOPE_TEST
        assert test["status"] == ("passed" if check.passed else "failed")
        assert (test["score"], test["max_score"]) == (check.points, check.max_points)
    assert results["score"] == sum(t["score"] for t in results["tests"]) == mixed_report.score


def test_exercism_results_use_published_fields(mixed_report):
    results = json.loads(RENDERERS["exercism"](mixed_report))
    assert set(results) <= EXERCISM_TOP | CLASSROOM
    assert results["version"] == 3 and results["status"] == "fail" and results["message"] is None
    checks = [c for e in mixed_report.exercises for c in e.checks]
    assert len(results["tests"]) == len(checks)
    for test, check in zip(results["tests"], checks):
        assert set(test) <= EXERCISM_TEST | CLASSROOM
        assert {"name", "status"} <= set(test) and test["status"] in EXERCISM_STATUSES
        assert isinstance(test["task_id"], int) and test["task_id"] == EXERCISES.index(check.exercise) + 1
        assert (test["score"], test["max_score"]) == (check.points, check.max_points)
        assert test["name"] == f"{check.exercise}: {check.what}"
        # test_code: MUST for tests linked to tasks; the scenario's code and the comparison
        assert test["test_code"].startswith(f"# fn is your {check.exercise}")
        assert f"# check {check.id}: the output" in test["test_code"] and "fn(" in test["test_code"]
        assert len(test.get("output") or "") <= EXERCISM_OUTPUT_LIMIT
        if check.passed:
            assert test["message"] is None
        else:
            assert check.hint in test["message"]
    by_exercise = {}
    for test, check in zip(results["tests"], checks):
        by_exercise.setdefault(check.exercise, set()).add(test["status"])
    # a correct exercise passes, a wrong one or a stub fails, one that cannot be loaded errors
    assert by_exercise == {"text_to_token_ids": {"pass"}, "token_ids_to_text": {"fail"},
                           "manual_cross_entropy": {"error"}, "calc_loss_batch": {"fail"}}
    decode = [t for t in results["tests"] if t["task_id"] == 2]
    # what the exercise's code printed, for every one of its checks
    assert decode and all(t["output"].startswith("decoding torch.Size([1, ") for t in decode)
    assert results["score"] == sum(t["score"] for t in results["tests"]) == mixed_report.score
    assert results["max_score"] == mixed_report.max_score


def test_exercism_status_pass_and_error(mixed_folder, grading_ctx):
    passed = exercism_results(grade(ExercisesDir(mixed_folder), ["text_to_token_ids"], ctx=grading_ctx))
    assert passed["status"] == "pass" and passed["message"] is None
    # nothing could run: the syntax error stops the only exercise graded, before any child starts
    broken = exercism_results(grade(ExercisesDir(mixed_folder), ["manual_cross_entropy"], ctx=grading_ctx))
    assert broken["status"] == "error"
    assert broken["message"].startswith("manual_cross_entropy: syntax error in manual_cross_entropy.py line 1")
    assert {t["status"] for t in broken["tests"]} == {"error"} and broken["score"] == 0


def test_exercism_output_is_truncated_to_500_characters():
    long = "x" * 600
    out = _exercism_output(long)
    assert len(out) == EXERCISM_OUTPUT_LIMIT and out.endswith(EXERCISM_TRUNCATED)
    assert _exercism_output("  short\n") == "short" and _exercism_output("\n") is None


def test_junit_xml_from_pytest_reporter(mixed_report):
    """One testcase per check: classname the exercise, name the check id, the points as
    properties (pytest's xunit1 family allows testcase properties); a failed check is a
    failure, a check of an exercise that could not run (syntax error, stub) an error."""
    root = ET.fromstring(RENDERERS["junit"](mixed_report))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    checks = [c for e in mixed_report.exercises for c in e.checks]
    ran = {e.name for e in mixed_report.exercises if e.status == "graded"}
    failed = [c for c in checks if not c.passed and c.exercise in ran]
    errors = [c for c in checks if c.exercise not in ran]
    assert {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"} <= set(suite.attrib)
    assert suite.get("name") == "chapter5-grader"
    assert int(suite.get("tests")) == len(checks)
    assert (int(suite.get("failures")), int(suite.get("errors"))) == (len(failed), len(errors)) != (0, 0)
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [(c.exercise, c.id) for c in checks]
    for case, check in zip(cases, checks):
        assert {"classname", "name", "time"} <= set(case.attrib)
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties == {"points": f"{check.points:g}", "max_points": f"{check.max_points:g}"}
        failure, error = case.find("failure"), case.find("error")
        if check.passed:
            assert failure is None and error is None
        elif check in errors:
            assert failure is None and error is not None and check.message in error.text
        else:
            assert error is None and failure is not None and failure.get("message").startswith("Failed: ")
            assert (check.message or "failed") in failure.text and f"hint: {check.hint}" in failure.text


def test_cli_writes_exercism_and_junit(mixed_folder, tmp_path):
    """One real CLI run per format (two exercises, ~4-6 s each on 2 busy cores)."""
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "grader", "--exercises-dir", str(mixed_folder),
                           "text_to_token_ids", "token_ids_to_text", "--format", "exercism", "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # not full marks
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["version"] == 3 and results["status"] == "fail"
    assert [t["task_id"] for t in results["tests"]] == sorted(t["task_id"] for t in results["tests"])
    done = subprocess.run([sys.executable, "-m", "grader", "--exercises-dir", str(mixed_folder),
                           "text_to_token_ids", "--format", "junit"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    suite = ET.fromstring(done.stdout).find("testsuite")
    assert int(suite.get("failures")) == 0 and int(suite.get("tests")) == len(suite.findall("testcase")) > 0


def test_classroom_results_make_the_reporters_three_numbers_the_points(mixed_report):
    """GitHub Classroom's reporter (classroom-resources/autograding-grading-reporter, src/):
    notify-classroom.js records sum(tests[].score) / max_score; aggregate-results.js shows
    passed / len(tests) * max_score; console-results.js prints passed / len(tests) * 100.
    With one test per point all three are the points (the exercism format's per-check tests
    would make the last two a pass count: 91.89/100 for 34 of 37 checks)."""
    from grader.report import classroom_results

    results = classroom_results(mixed_report)
    points, possible = mixed_report.score, mixed_report.max_score
    tests = results["tests"]
    passed = sum(t["status"] == "pass" for t in tests)
    assert (sum(t["score"] for t in tests), results["max_score"]) == (points, possible)  # notify-classroom
    assert passed / len(tests) * results["max_score"] == pytest.approx(points)  # aggregate-results
    assert passed / len(tests) * 100 == pytest.approx(100 * points / possible)  # console-results
    assert results["version"] == 3 and {t["status"] for t in tests} <= EXERCISM_STATUSES
    three = [t for t in tests if t["name"].startswith("manual_cross_entropy: ") and t["name"].endswith("/3]")]
    assert [t["name"][-5:] for t in three[:3]] == ["[1/3]", "[2/3]", "[3/3]"]  # its first 3-point check
