"""Turn a child's outputs into scored checks (parent process only).

The result model here is the one every output format renders.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .compare import DIAGNOSABLE, is_error, pick, run_comparator

CHECKS_FILE = Path(__file__).resolve().parent / "checks.toml"

STATUS_LINES = {
    "not_implemented": "not implemented yet",
    "load_error": "could not be loaded",
    "timeout": "stopped: time limit",
    "memory": "stopped: memory limit",
    "crashed": "crashed",
}


@dataclass
class CheckResult:
    exercise: str
    id: str
    what: str
    points: float
    max_points: float
    message: str = ""  # what was expected and what came, when it failed
    diagnosis: str = ""  # the likely mistake, when the error model recognises it
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.points == self.max_points


@dataclass
class ExerciseResult:
    name: str
    section: str
    status: str  # graded, not_implemented, load_error, timeout, memory, crashed
    checks: list[CheckResult] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    log: str = ""

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_points for c in self.checks)

    @property
    def status_line(self) -> str:
        if self.status == "graded":
            failed = sum(not c.passed for c in self.checks)
            return "passed" if not failed else f"{failed} of {len(self.checks)} checks failed"
        return STATUS_LINES.get(self.status, self.status)


@dataclass
class Report:
    exercises: list[ExerciseResult]
    source: str
    device: str
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_score for e in self.exercises)

    @property
    def full_marks(self) -> bool:
        return all(e.score == e.max_score for e in self.exercises)


@functools.lru_cache(maxsize=1)
def check_definitions() -> dict:
    """checks.toml as a dict: exercise -> {section, summary, checks: [...], mistakes: {...}}."""
    with open(CHECKS_FILE, "rb") as f:
        return tomllib.load(f)


def scenario_output(outputs: dict, check: dict):
    scenario = outputs.get(check["scenario"])
    if scenario is None:
        return {"__error__": "Missing", "message": "this scenario did not run"}
    if is_error(scenario):
        return scenario
    if not isinstance(scenario, dict) or check["key"] not in scenario:
        return {"__error__": "Missing", "message": f"no output {check['key']!r}"}
    return pick(scenario, check)


def diagnose(check: dict, actual, mistakes_spec: dict, mistake_outputs: dict) -> str:
    """The message of the first known mistake whose output matches the student's."""
    if check["compare"] not in DIAGNOSABLE:
        return ""
    loose = {k: v for k, v in check.items() if k != "type"}  # a mistake may differ in type only
    for mistake_id, outputs in mistake_outputs.items():
        mistaken = scenario_output(outputs, check)
        if is_error(actual) or is_error(mistaken):
            same = is_error(actual) and is_error(mistaken) and actual["__error__"] == mistaken["__error__"]
        else:
            same = run_comparator(loose, actual, mistaken) is None
        if same:
            return mistakes_spec.get(mistake_id, "")
    return ""


def evaluate_check(exercise: str, check: dict, child, expected: dict) -> CheckResult:
    """Score one check from an exercise's ChildResult (sandbox.py) and its frozen expected outputs."""
    result = CheckResult(exercise, check["id"], check["what"], check["points"], check["points"],
                         hint=check.get("hint", ""))
    if child.status != "ran":
        result.points = 0
        result.message = child.message or STATUS_LINES.get(child.status, child.status)
        return result
    actual = scenario_output(child.outputs, check)
    message = run_comparator(check, actual, scenario_output(expected["reference"], check))
    if message:
        result.points = 0
        result.message = message
        spec = check_definitions()[exercise]
        result.diagnosis = diagnose(check, actual, spec.get("mistakes", {}), expected.get("mistakes", {}))
    return result


def exercise_result(exercise: str, child, checks: list[CheckResult]) -> ExerciseResult:
    spec = check_definitions()[exercise]
    status = "graded" if child.status == "ran" else child.status
    message = "" if child.status == "ran" else child.message
    return ExerciseResult(exercise, spec["section"], status, checks, message, child.seconds, child.log)
