"""Run the checks with pytest, in process, over the children's outputs.

``run_checks`` hands pytest the test module ``check_tests.py`` and this plugin,
which parametrizes it over the selected (exercise, check) pairs, serves the
scoring state as the ``grading`` fixture and keeps every CheckResult. pytest's
own reporters (``--junitxml``) then see one test case per check.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from .checks import check_definitions
from .grading import CheckResult, evaluate_check, is_value_check, withhold

TEST_MODULE = Path(__file__).resolve().parent / "check_tests.py"


class Grading:
    """Scoring state: per exercise, the child's outcome and the frozen expected outputs."""

    def __init__(self, children: dict, expected: dict):
        self.children = children  # exercise -> ChildResult
        self.expected = expected  # exercise -> frozen outputs
        self.results: dict[tuple[str, str], CheckResult] = {}

    def evaluate(self, exercise: str, check_id: str) -> CheckResult:
        if (exercise, check_id) in self.results:
            return self.results[(exercise, check_id)]
        check = next(c for c in check_definitions()[exercise]["checks"] if c["id"] == check_id)
        result = evaluate_check(exercise, check, self.children[exercise], self.expected[exercise])
        if check.get("with_values") and result.passed and not self.some_value_right(exercise):
            withhold(result)
        self.results[(exercise, check_id)] = result
        return result

    def ran(self, exercise: str) -> bool:
        """Whether the exercise's code ran at all (else its checks are errors in JUnit XML)."""
        return self.children[exercise].status == "ran"

    def some_value_right(self, exercise: str) -> bool:
        """Whether any check of the exercise's values passes (see ``with_values``, checks/__init__.py)."""
        return any(self.evaluate(exercise, c["id"]).passed
                   for c in check_definitions()[exercise]["checks"] if is_value_check(c))


class CheckPlugin:
    def __init__(self, grading: Grading):
        self._grading = grading

    @pytest.fixture
    def grading(self):
        return self._grading

    def pytest_generate_tests(self, metafunc):
        if {"exercise", "check_id"} <= set(metafunc.fixturenames):
            pairs = [(ex, c["id"]) for ex in self._grading.children for c in check_definitions()[ex]["checks"]]
            metafunc.parametrize("exercise,check_id", pairs, ids=[f"{ex}.{cid}" for ex, cid in pairs])


def run_checks(children: dict, expected: dict, junitxml: Path | None = None) -> dict:
    """Score ``children`` (exercise -> ChildResult) with pytest; returns (exercise, id) -> CheckResult."""
    return run_grading(Grading(children, expected), junitxml)


def run_grading(grading: Grading, junitxml: Path | None = None) -> dict:
    """Run check_tests.py with pytest over the checks of ``grading.children``; returns ``grading.results``.

    ``junitxml``: a path for pytest's own JUnit XML reporter (report.render_junit replays
    a finished Report through here with a Grading whose evaluate() returns its results).
    """
    # no:unraisableexception: its gc.collect() passes over the big heap (torch, the 124M model)
    # cost ~0.9 s per grading; the checks create no objects that could raise at collection.
    args = [str(TEST_MODULE), "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:unraisableexception",
            "-o", "addopts=",
            # xunit1: its test cases may carry properties (the points); xunit2's may not
            "-o", "junit_family=xunit1", "-o", "junit_suite_name=chapter5-grader",
            "-W", "ignore::pytest.PytestExperimentalApiWarning",  # record_xml_attribute (check_tests.py)
            "--rootdir", str(TEST_MODULE.parent), "-o", "python_files=check_tests.py",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if junitxml is not None:
        args.append(f"--junitxml={junitxml}")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            _no_plugin_autoload():
        pytest.main(args, plugins=[CheckPlugin(grading)])
    return grading.results


@contextlib.contextmanager
def _no_plugin_autoload():
    """Only pytest's own plugins: installed ones may write files (pytest-benchmark makes a
    .benchmarks folder in the working directory) or change how the checks run."""
    old = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"]
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = old
