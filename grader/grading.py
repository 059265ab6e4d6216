"""Turn a child's outputs into scored checks (parent process only).

The result model here is the one every output format renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .checks import check_definitions
from .compare import DIAGNOSABLE, describe, error_key, is_error, pick, run_comparator, same_output

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
    traceback: str = ""  # when the student's code raised: shown with -v
    error: str = ""  # when it raised: compare.error_key, the same for every check one error failed

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
    log: str = ""  # what the code printed: the first sandbox_child.MAX_LOG_BYTES of it
    log_bytes: int = 0  # how much it printed in all
    summary: str = ""  # the table's words for a status other than graded, when more precise
    uses: tuple = ()  # the student's own other exercises it ran on (student release)

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
        return self.summary or STATUS_LINES.get(self.status, self.status)

    @property
    def says_more(self) -> bool:
        """Whether ``message`` tells more than the table's status line (not for an untouched stub)."""
        return self.status != "graded" and self.status_line != STATUS_LINES["not_implemented"]


@dataclass
class Report:
    exercises: list[ExerciseResult]
    source: str
    device: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # said once about the source (a notebook's failed cells)

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_score for e in self.exercises)

    @property
    def full_marks(self) -> bool:
        return all(e.score == e.max_score for e in self.exercises)

    def dependency_note(self, ex: ExerciseResult) -> str:
        """For a failing exercise that ran on the student's own other exercises (student
        release): which of those fail their own checks, or were not graded in this run."""
        if ex.score == ex.max_score or not ex.uses:
            return ""
        by_name = {e.name: e for e in self.exercises}
        failing = [u for u in ex.uses if u in by_name and by_name[u].score < by_name[u].max_score]
        if failing:
            names = " and ".join(failing)
            which = "fails its" if len(failing) == 1 else "fail their"
            return f"{ex.name} ran on your {names}, which {which} own checks: the cause may be there, fix {names} first"
        unchecked = [u for u in ex.uses if u not in by_name]
        if unchecked:
            names = " and ".join(unchecked)
            return f"{ex.name} ran on your {names}: grade {'it' if len(unchecked) == 1 else 'them'} too (python -m grader {' '.join(unchecked)})"
        return ""


def scenario_output(outputs: dict, check: dict):
    scenario = outputs.get(check["scenario"])
    if scenario is None:
        return {"__error__": "Missing", "message": "this scenario did not run"}
    if is_error(scenario):
        return scenario
    if not isinstance(scenario, dict) or check["key"] not in scenario:
        return {"__error__": "Missing", "message": f"no output {check['key']!r}"}
    return pick(scenario, check)


def diagnose(exercise: str, check: dict, actual, outputs: dict, expected: dict) -> str:
    """The message of the known mistake (mistakes.py) that explains a failed check, or "".

    A mistake is a candidate when its frozen output for ``check`` matches the student's
    ``actual`` (compare.same_output). It is ruled out when, on any diagnosable check of the
    exercise where the mistake's output differs from the reference, the student's output
    differs from the mistake's: then the student made some other mistake. Of the candidates
    left, the one that shows on the most checks wins, then the one whose error messages are
    the student's word for word (errors match by type and message with numbers left out: two
    "Shape mismatch" errors of different shapes come from different mistakes); remaining ties
    go to the order of mistakes.py.
    """
    if check["compare"] not in DIAGNOSABLE:
        return ""
    spec = check_definitions()[exercise]
    checks = [c for c in spec["checks"] if c["compare"] in DIAGNOSABLE]
    best, best_rank = "", (-1, -1)
    for mistake_id, mistake_outputs in expected.get("mistakes", {}).items():
        if not same_output(check, actual, scenario_output(mistake_outputs, check)):
            continue
        shown = verbatim = 0
        for other in checks:
            mistaken = scenario_output(mistake_outputs, other)
            if run_comparator(other, mistaken, scenario_output(expected["reference"], other)) is None:
                continue  # this mistake does not change this check's output
            student = scenario_output(outputs, other)
            if not same_output(other, student, mistaken):
                break  # the student's output is not this mistake's
            shown += 1
            verbatim += is_error(student) and _message(student) == _message(mistaken)
        else:
            if (shown, verbatim) > best_rank:
                best, best_rank = spec.get("mistakes", {}).get(mistake_id, ""), (shown, verbatim)
    return best


def _message(error: dict) -> str:
    """An error's message without where it happened (the student's line differs from the mistake's)."""
    return str(error.get("message", "")).split(" (at line ")[0]


def evaluate_check(exercise: str, check: dict, child, expected: dict) -> CheckResult:
    """Score one check from an exercise's ChildResult (sandbox.py) and its frozen expected outputs."""
    result = CheckResult(exercise, check["id"], check["what"], check["points"], check["points"],
                         hint=check.get("hint", ""))
    if child.status != "ran":
        result.points = 0
        result.message = child.message or STATUS_LINES.get(child.status, child.status)
        return result
    actual = scenario_output(child.outputs, check)
    wanted = scenario_output(expected["reference"], check)
    message = run_comparator(check, actual, wanted)
    if message:
        result.points = 0
        result.message = failure_message(check, actual, wanted) if "failure" in check and not is_error(actual) \
            else message
        result.diagnosis = diagnose(exercise, check, actual, child.outputs, expected)
        if is_error(actual):
            result.traceback = str(actual.get("traceback", ""))
            result.error = error_key(actual)
    return result


VALUE_CHECKS = ("tensor", "number", "floats", "exact", "log")  # they compare what the function computed
WITHHELD = ("not counted while no check of the values passes: the right type or device "
            "handling alone is no answer")


def is_value_check(check: dict) -> bool:
    return check["compare"] in VALUE_CHECKS and not check.get("with_values")


def withhold(result: CheckResult) -> None:
    """A ``with_values`` check (a type, the device) passed while every value is wrong: no points."""
    result.points = 0
    result.message = WITHHELD
    result.hint = "Get the values right first: this check's points come with them."


def failure_message(check: dict, actual, expected) -> str:
    """A check's own sentence for a wrong value (``failure`` in checks.toml), where the
    comparator's "expected True, got False" would not say what went wrong."""
    return check["failure"].format(expected=describe(expected), got=describe(actual))


def exercise_result(exercise: str, child, checks: list[CheckResult]) -> ExerciseResult:
    spec = check_definitions()[exercise]
    status = "graded" if child.status == "ran" else child.status
    message = "" if child.status == "ran" else child.message
    return ExerciseResult(exercise, spec["section"], status, checks, message, child.seconds, child.log,
                          log_bytes=child.log_bytes, summary=getattr(child, "summary", ""),
                          uses=tuple(getattr(child, "uses", ())))
