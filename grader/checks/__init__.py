"""Everything the grader knows about each exercise, one folder per exercise.

    grader/checks/<exercise>/
        checks.toml   the checks: points, what each means, tolerance, hint; the message
                      of each known mistake
        scenarios.py  the seeded inputs the function runs on: ``scenario_<name>(fn, ctx)``
        mistakes.py   the error model: typical wrong versions, ``mistake_<id>(...)``
    grader/checks/common.py   helpers the scenarios share (the book's inputs, small models)

checks.toml holds ``section``, ``summary``, a list ``[[checks]]`` and a table
``[mistakes]`` (mistake id -> the message a student reads when their output matches
that mistake's). A check compares the student's output ``key`` of ``scenario`` with the
reference output frozen by ``python -m grader regen``, using ``compare``:

    tensor  same shape, values within atol + rtol * |expected| (a list of numbers counts)
    number  a Python number or one-element tensor within atol + rtol * |expected| (nan == nan)
    floats  a tuple/list of numbers, each within the tolerance (``index`` picks one item first)
    exact   equal as Python values (strings, ints, bools, lists of them)
    log     printed training log lines: same lines, numbers within the tolerance
    type    the type alone: ``type = "float"`` a Python float; ``type = "tensor"`` a tensor,
            with ``dim`` and ``dtype`` if given
    devices the inputs reached the computation on the device (common.MoveRecorder)
    plot_*  a property of the figure the function drew (see grader/compare.py)

Points in proportion to the mistake: the value checks (tensor, number, floats) look at
values only; the type is one ``type`` check of its own, so a right value of the wrong type
costs that check alone (tests/test_kit.py holds every exercise to this). A check with
``with_values = true`` (the type and device checks) counts only while some value check of
the exercise passes: a constant of the right type is no answer. ``failure`` is the sentence a
student reads when the check fails on a wrong value, where the comparator's "expected True,
got False" would say nothing (``{expected}`` and ``{got}`` are filled in).

Tolerances: float32 results of the same computation differ by ~1e-6 relative between
correct variants (log_softmax + gather vs softmax then log, CPU vs CUDA); training runs
of a few steps by up to ~1e-4. Mistakes change results by far more (see tests/).

The scenarios and mistakes of an exercise are imported only when that exercise is
graded (or regenerated), so grading one exercise never imports the others' code.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import textwrap
import tomllib
from pathlib import Path

from .. import EXERCISES

CHECKS_DIR = Path(__file__).resolve().parent
PARTS = ("checks.toml", "scenarios.py", "mistakes.py")


def exercise_dir(exercise: str) -> Path:
    return CHECKS_DIR / exercise


@functools.lru_cache(maxsize=None)
def definition(exercise: str) -> dict:
    """``grader/checks/<exercise>/checks.toml``: {section, summary, checks: [...], mistakes: {...}}."""
    with open(exercise_dir(exercise) / "checks.toml", "rb") as f:
        spec = tomllib.load(f)
    spec.setdefault("mistakes", {})
    return spec


def check_definitions() -> dict:
    """Exercise -> its definition (see ``definition``), for every exercise, in the book's order."""
    return {exercise: definition(exercise) for exercise in EXERCISES}


def _named(module, prefix: str) -> dict:
    """``{name: function}`` of the module's callables named ``<prefix><name>``, in definition order."""
    return {name[len(prefix):]: value for name, value in vars(module).items()
            if name.startswith(prefix) and callable(value)}


def scenarios(exercise: str) -> dict:
    """Scenario name -> ``scenario(fn, ctx)`` of one exercise, in the order they run."""
    return _named(importlib.import_module(f"{__name__}.{exercise}.scenarios"), "scenario_")


def mistakes(exercise: str) -> dict:
    """Mistake id -> the wrong version of one exercise (empty when it has none)."""
    return _named(importlib.import_module(f"{__name__}.{exercise}.mistakes"), "mistake_")


COMPARISONS = {  # compare -> how the check compares the student's output with the reference's
    "tensor": "is a tensor of the reference's shape with its values",
    "number": "is the reference's number",
    "floats": "are the reference's numbers",
    "exact": "equals the reference's",
    "log": "has the reference's log lines (numbers within the tolerance)",
}


@functools.lru_cache(maxsize=None)
def check_code(exercise: str, check_id: str) -> str:
    """The code of one check, as a student may read it (Exercism's ``test_code``): the body of
    its scenario (``fn`` is the student's function) and the comparison it makes."""
    check = next(c for c in definition(exercise)["checks"] if c["id"] == check_id)
    scenario = scenarios(exercise)[check["scenario"]]
    lines = inspect.getsource(scenario).splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith(":")) + 1  # after the def line
    body = textwrap.dedent("\n".join(lines[start:])).strip("\n")
    how = COMPARISONS.get(check["compare"], f"passes the {check['compare'].replace('_', ' ')} check")
    tolerance = (f" within atol={check.get('atol', 0):g} + rtol={check.get('rtol', 0):g} * |expected|"
                 if "atol" in check or "rtol" in check else "")
    return (f"# fn is your {exercise}; ctx holds the grader's shared inputs (tokenizer, text, models)\n"
            f"{body}\n# check {check_id}: the output {check.get('key', '')!r} {how}{tolerance}")
