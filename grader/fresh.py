"""Fresh seeds: under instructor grading the seeded scenarios run on inputs drawn at grade time,
and their expected outputs are computed then.

The frozen expected values ship with the kit (and with the student release): student code can
read them, and the seeded inputs they belong to are the same on every run. So under instructor
grading (``python -m grader --fresh-seeds``, ``grader batch``, the Gradescope bundle) the
grader's process draws a salt (``draw_salt``), every seed a scenario takes from ``ctx.seed`` is
derived from it (context.py), and ``expected_values`` computes the outputs those scenarios
should give: the reference's and every known mistake's (the diagnosis compares the student's
output with them), on the same context, in trusted processes forked from the grader's before
any student code runs. A scenario that draws no seed (the book's own inputs: its 2x3 batch on
the 124M model, 'Every effort moves you', the toy vocabulary) keeps its frozen values: its
inputs are the frozen ones.

The values computed stay in the grader's process, which compares; every student grading process
drops them (``forget``, before the student's code is loaded) and cannot read them from disk.
"""

from __future__ import annotations

import secrets

from .errors import UsageError

REFERENCE = "reference"  # the key of the reference's outputs in a task's report (mistake ids are others)
TIMEOUT_S = 600.0  # per trusted process: the reference and up to all mistakes of one exercise


class FreshSeedsError(UsageError):
    """The expected values of this run's seeds could not be computed (a grader problem); one line, exit 2."""


def draw_salt() -> str:
    """A salt for one grading run (128 random bits): the seeds derived from it cannot be guessed."""
    return secrets.token_hex(16)


class ExpectedWork:
    """A trusted process's work (sandbox.run_isolated): ``functions`` of one exercise, the reference
    (REFERENCE) and known mistakes by id, each on every scenario, with this run's seeds. Reports
    ``{"functions": {function: {scenario: outputs}}, "drawn": [scenarios that drew a seed]}``."""

    def __init__(self, exercise: str, functions: list[str], ctx):
        self.exercise, self.functions, self.ctx = exercise, functions, ctx

    def __call__(self) -> dict:
        import reference

        from .checks import mistakes, scenarios
        from .child import frozen, run_scenarios

        wrong = mistakes(self.exercise)
        drawn, outputs = set(), {}
        for function in self.functions:
            fn = getattr(reference, self.exercise) if function == REFERENCE else wrong[function]
            per_scenario = {}
            for name in scenarios(self.exercise):
                before = self.ctx.seeds_drawn
                per_scenario.update(run_scenarios(self.exercise, fn, self.ctx, names=(name,)))
                if self.ctx.seeds_drawn != before:
                    drawn.add(name)
            outputs[function] = frozen(per_scenario)
        return {"status": "ran", "outputs": {"functions": outputs, "drawn": sorted(drawn)}}


def expected_values(exercises, ctx, limits, parallel: int = 1, limit_address_space: bool = True,
                    before_fork=None, mistakes: bool = True) -> dict:
    """Exercise -> ``{"reference": {scenario: outputs}, "mistakes": {id: {scenario: outputs}}}`` for
    ``ctx``'s seeds: computed for the scenarios that draw a seed, frozen for the others.

    ``mistakes=False``: the reference's only, and no mistakes (``{}``: no diagnosis) until
    ``add_mistakes``: a run that grades one source needs them only where a check failed, and
    train_model_simple's cost ~8 s of CPU each. Runs ``parallel`` trusted processes at once (each
    exercise's functions split over up to ``parallel`` of them), ``train_model_simple`` first: it
    costs the most. ``before_fork`` (exercise -> function): what to prepare in this process before
    that exercise's first fork.

    Raises:
        FreshSeedsError: a trusted process did not report (time limit, crash).
    """
    from .context import load_expected

    frozen_values = {e: load_expected(e) for e in exercises}
    functions = {e: [REFERENCE, *(frozen_values[e]["mistakes"] if mistakes else [])] for e in exercises}
    parts = _compute(functions, ctx, limits, parallel, limit_address_space, before_fork)
    return {e: merged(frozen_values[e], parts[e]) for e in exercises}


def add_mistakes(expected: dict, exercises, ctx, limits, parallel: int = 1, limit_address_space: bool = True,
                 before_fork=None) -> None:
    """Fill in the known mistakes' outputs of ``exercises`` in ``expected`` (from
    ``expected_values(..., mistakes=False)``), on the same seeds. Raises FreshSeedsError."""
    from .context import load_expected

    frozen_values = {e: load_expected(e) for e in exercises}
    functions = {e: list(frozen_values[e]["mistakes"]) for e in exercises if frozen_values[e]["mistakes"]}
    parts = _compute(functions, ctx, limits, parallel, limit_address_space, before_fork)
    for exercise in functions:
        expected[exercise]["mistakes"] = merged(frozen_values[exercise], parts[exercise])["mistakes"]


def _compute(functions: dict, ctx, limits, parallel, limit_address_space, before_fork) -> dict:
    """Exercise -> its ExpectedWork reports, ``functions[exercise]`` run in trusted processes."""
    from .sandbox import Limits, run_isolated

    tasks, prepare = {}, {}
    for exercise in sorted(functions, key=lambda e: e != "train_model_simple"):
        names = functions[exercise]
        for part in range(min(max(1, parallel), len(names))):
            tasks[exercise, part] = ExpectedWork(exercise, names[part::max(1, parallel)], ctx)
        if before_fork and exercise in before_fork:
            prepare[exercise, 0] = before_fork[exercise]
    trusted = Limits(timeout_s=max(TIMEOUT_S, limits.timeout_s), memory_mb=limits.memory_mb, threads=limits.threads)
    results = run_isolated(tasks, trusted, parallel=parallel, limit_address_space=limit_address_space,
                           before_fork=prepare)
    failed = [f"{exercise}: {result.message}" for (exercise, _), result in results.items() if result.status != "ran"]
    if failed:
        raise FreshSeedsError("the expected values of this run's fresh seeds could not be computed ("
                              + "; ".join(failed) + "): a grader problem, please report it")
    parts: dict = {}
    for (exercise, _), result in results.items():
        parts.setdefault(exercise, []).append(result.outputs)
    return parts


def merged(frozen_values: dict, parts: list[dict]) -> dict:
    """The frozen values of one exercise with the scenarios that drew a seed replaced by ``parts``'
    (ExpectedWork reports); of the functions ``parts`` ran only (``reference`` None if not run)."""
    drawn = {name for part in parts for name in part["drawn"]}
    computed = {function: outputs for part in parts for function, outputs in part["functions"].items()}

    def one(function: str, frozen_outputs: dict) -> dict:
        return {name: computed[function][name] if name in drawn else outputs
                for name, outputs in frozen_outputs.items()}

    return {"reference": one(REFERENCE, frozen_values["reference"]) if REFERENCE in computed else None,
            "mistakes": {m: one(m, outputs) for m, outputs in frozen_values["mistakes"].items() if m in computed}}


def forget(expected: dict | None):
    """``forget_in_child`` for a student's grading process: the expected values leave it.

    Every dict and list of ``expected`` is emptied, not only the outer one: the grader's earlier
    scoring (a pytest run's Grading, cyclic garbage not yet collected) may still point at the
    inner ones, and student code can reach anything alive with the garbage collector."""
    def drop(key=None) -> None:
        if expected is not None:
            _empty(expected)

    return drop


def _empty(value) -> None:
    if isinstance(value, dict):
        for inner in value.values():
            _empty(inner)
        value.clear()
    elif isinstance(value, list):
        for inner in value:
            _empty(inner)
        value.clear()
