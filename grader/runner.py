"""Grade a source: prepare shared inputs once, fork a child per exercise, score the results."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import EXERCISES
from .checks import check_definitions
from .grading import CheckResult, Report, exercise_result
from .sandbox import ABNORMAL, ChildResult, Limits, run_isolated

NEEDS_124M = {"calc_loss_batch", "calc_loss_loader", "generate"}
# Exercises whose scenarios step a torch.optim optimizer: it imports torch._dynamo on first use
# (~2.5 s of CPU), paid once in the parent rather than in each of these children. train_model_simple's
# loop gets common.PlainSGD, which imports nothing (tests/test_plain_sgd.py).
USES_OPTIMIZER = {"save_checkpoint", "load_checkpoint"}


def unrun_check(exercise: str, check: dict) -> CheckResult:
    """A check pytest did not report (it should not happen): no points, said plainly."""
    return CheckResult(exercise, check["id"], check["what"], 0, check["points"],
                       message="this check did not run (a grader problem: run with -v and report it)",
                       hint=check.get("hint", ""))


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``. Raises ValueError for cuda without one.

    The check uses NVML, which does not initialise CUDA in this process: the children
    are forked from it, and a forked child cannot use CUDA initialised by its parent.
    """
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available here; use --device cpu")
    return name


def prepare_parent(exercises, device: str, eager: bool = True, instructor: bool = False):
    """Everything the children share, made once: threads, plotting backend, inputs, the 124M model.

    ``eager=False`` (one grading run) leaves the 124M model (where it is real) and torch's
    optimizer imports to just before the first child that needs them, while other children
    run, and pyplot to plot_losses' child; ``eager=True`` (many sources) pays them once here.
    ``instructor``: instructor grading: fresh seeds (a salt drawn here, fresh.py) and the 124M
    model replayed from its recorded outputs (replay.py), except in the student release, which
    has no reference to compute expected values with (frozen seeds; practice's replay).
    """
    os.environ["MPLBACKEND"] = "Agg"  # children never open a window, plt.show() never blocks
    import torch

    torch.set_num_threads(1)  # never start an OpenMP pool in a process that forks
    if eager and "plot_losses" in exercises:
        import_pyplot()
    if eager and USES_OPTIMIZER & set(exercises):
        import_optimizer_support()
    from .context import EXPECTED_DIR, Context

    if instructor and fresh_seeds_possible():
        from .fresh import draw_salt
        from .replay import load_replay

        ctx = Context(device, salt=draw_salt(), model_124m=load_replay(EXPECTED_DIR))
    else:
        ctx = Context(device)
        use_practice_replay(ctx, EXPECTED_DIR)
    if eager and NEEDS_124M & set(exercises):
        ctx.prepare_model_124m()  # the real one: ~2.5 s once, shared copy-on-write by the children
    return ctx


def use_practice_replay(ctx, expected_dir) -> None:
    """The 124M model replayed where regen recorded the input, the real one built in the child for
    anything else (replay.PracticeReplay124M): no 650 MB model to build for the book's code. Without
    the recordings (a kit whose regen has not run) the real model is built as before."""
    from .context import REPLAY_FILE
    from .replay import load_replay

    if (expected_dir / REPLAY_FILE).is_file():
        ctx.replace_model_124m(load_replay(expected_dir, build=lambda: ctx.build_model_124m().to(ctx.device)))


def fresh_seeds_possible() -> bool:
    """Whether this kit can compute expected values at grade time (not the student release)."""
    from .release_mode import is_release

    return not is_release()


def import_optimizer_support():
    """What torch.optim imports on first use (torch._dynamo), once, in the parent."""
    import torch._dynamo  # noqa: F401


def import_pyplot():
    """Import pyplot (Agg) in the parent, once, so that children share it (~0.35 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def grade(source, exercises=EXERCISES, device="cpu", limits: Limits | None = None,
          parallel: int | None = None, on_done=None, ctx=None, junitxml=None, lockdown=None,
          progress=None) -> Report:
    """Grade ``exercises`` of ``source`` (sources.ExercisesDir or SubmissionFile).

    ``ctx`` from ``prepare_parent(EXERCISES, device)`` may be passed to grade many
    sources in one process without preparing the shared inputs again. The checks
    run as pytest tests (pytest_plugin.py); ``junitxml`` names a JUnit XML file for
    pytest's own reporter to write. ``on_done(exercise, ChildResult)`` reports progress.
    ``parallel``: children at once (default: the CPUs this process may use, options.available_cpus).
    ``lockdown`` (``lockdown.prepare(parallel)``): instructor grading (see sandbox.run_isolated).
    ``progress`` (live.LiveTable, say) gets ``started(exercise)``, ``finished(ExerciseResult)``
    as each exercise is scored (its checks run as soon as its child has ended) and ``tick()``.
    """
    from .cpus import available_cpus

    from .fresh import forget

    start = time.perf_counter()
    parallel = parallel or available_cpus()
    limits = limits or Limits()
    ctx = ctx or prepare_parent(exercises, device, eager=False, instructor=lockdown is not None)
    expected = expected_values(exercises, ctx, limits, parallel, device, mistakes=False)  # see add_mistakes below
    forget_expected = forget(expected)
    before_fork = shared_before_fork(ctx)
    prepare_source(source, limits, device, lockdown, forget_in_child=forget_expected,
                   while_waiting=lambda: prepare_shared(before_fork, exercises))
    children, tasks = plan(source, exercises, ctx)
    scored = {}

    def done(exercise, child):
        explain_import_failures(source, {exercise: child})  # once per child, as it ends
        if progress is not None:
            scored[exercise] = score(source.label, [exercise], {exercise: child}, device, 0.0,
                                     expected=expected).exercises[0]
            progress.finished(scored[exercise])
        if on_done:
            on_done(exercise, child)

    for exercise, child in children.items():  # known without running: reported at once
        done(exercise, child)
    order = sorted(tasks, key=lambda e: start_rank(e, ctx))
    children.update(run_isolated({e: tasks[e] for e in order}, limits, parallel=parallel,
                                 limit_address_space=limit_address_space(device), on_done=done, lockdown=lockdown,
                                 before_fork=before_fork, forget_in_child=forget_expected,
                                 groups={e: import_key(source, e) for e in tasks},
                                 on_start=getattr(progress, "started", None), on_tick=getattr(progress, "tick", None),
                                 while_waiting=import_scoring))
    if expected is not None:  # fresh seeds: the known mistakes' outputs, where a check failed
        wrong = failed_exercises(source.label, children, device, expected, scored)
        add_mistakes(expected, wrong, ctx, limits, parallel, device)
        if wrong and scored:
            scored.update(zip(wrong, score(source.label, wrong, children, device, 0.0, expected=expected).exercises))
    seconds = time.perf_counter() - start
    if progress is not None and junitxml is None:
        return Report([scored[e] for e in exercises], source.label, device, seconds, notes=source_notes(source))
    return score(source.label, exercises, children, device, seconds, junitxml=junitxml, notes=source_notes(source),
                 expected=expected)


def failed_exercises(label: str, children: dict, device: str, expected: dict, scored: dict) -> list[str]:
    """The exercises whose code ran and failed a check (``scored``: those already scored)."""
    ran = [e for e, child in children.items() if child.status == "ran"]
    unscored = [e for e in ran if e not in scored]
    results = {**scored, **(dict(zip(unscored, score(label, unscored, children, device, 0.0,
                                                     expected=expected).exercises)) if unscored else {})}
    return [e for e in ran if any(not c.passed for c in results[e].checks)]


# The children that start first, while the parent imports the optimizer's support for the next
# ones (~2.5 s, when it can start no child): the longest children that need neither, longest first.
# plot_losses imports pyplot itself (~0.8 s), in parallel: no other child of a grade uses it.
STARTS_FIRST = ("plot_losses", "train_model_simple", "load_weights_into_gpt")


def start_rank(exercise: str, ctx) -> tuple:
    """Sort key of the children of one grade: STARTS_FIRST, then those that step a torch.optim
    optimizer (USES_OPTIMIZER), then the rest; where the 124M model is real (no recordings) the
    children sharing it last, so that the parent builds it while others run."""
    builds_124m = exercise in NEEDS_124M and not ctx.replays_124m
    first = STARTS_FIRST.index(exercise) if exercise in STARTS_FIRST else len(STARTS_FIRST)
    return (builds_124m, first, exercise not in USES_OPTIMIZER)


def shared_before_fork(ctx) -> dict:
    """Exercise -> what the parent prepares, before forking its first child, for it and the later ones
    to share: torch.optim's imports for the optimizer's users, the 124M model where it is real."""
    return {**{e: import_optimizer_support for e in USES_OPTIMIZER}, **{e: ctx.prepare_model_124m for e in NEEDS_124M}}


def expected_values(exercises, ctx, limits: Limits, parallel: int, device: str, mistakes: bool = True) -> dict | None:
    """With fresh seeds (``ctx.salt``), the expected values of this run's seeds (fresh.py), computed
    in trusted children before any student code runs; else None: the frozen ones (score loads them).
    ``mistakes=False``: the known mistakes' outputs are left to ``add_mistakes``."""
    if ctx.salt is None:
        return None
    from .fresh import expected_values as compute

    return compute(exercises, ctx, limits, parallel, limit_address_space(device), before_fork=_trusted_before_fork(ctx),
                   mistakes=mistakes)


def add_mistakes(expected: dict, exercises, ctx, limits: Limits, parallel: int, device: str) -> None:
    """The known mistakes' outputs of ``exercises`` on this run's fresh seeds, into ``expected``: the
    diagnosis needs them where a check failed (fresh.add_mistakes). Computed in trusted children
    forked from this process, which student code has not touched (it ran in children only)."""
    if exercises:
        from .fresh import add_mistakes as compute

        compute(expected, exercises, ctx, limits, parallel, limit_address_space(device),
                before_fork=_trusted_before_fork(ctx))


def _trusted_before_fork(ctx) -> dict:
    # the trusted processes run the reference and the known mistakes: plot_losses several times
    return {**shared_before_fork(ctx), "plot_losses": import_pyplot}


def limit_address_space(device: str) -> bool:
    return device == "cpu" and sys.platform.startswith("linux")


def prepare_shared(before_fork: dict, exercises) -> None:
    """Everything ``before_fork`` prepares for ``exercises``, each once (the preparations are idempotent)."""
    for prepare in dict.fromkeys(before_fork[e] for e in exercises if e in before_fork):
        prepare()


def prepare_source(source, limits: Limits, device: str, lockdown=None, forget_in_child=None,
                   while_waiting=None) -> None:
    """What a source needs before its exercises are graded: a notebook runs its cells once in a
    probing child, which finds the cells to skip (sources.NotebookFile.probe, probe.py). The
    probing child runs as the grading children do (run_isolated, with the same arguments and,
    under instructor grading, the same sandbox, forgetting what ``forget_in_child`` drops).
    A source whose every child imports pyplot (one file, a notebook) has it imported here, once.
    ``while_waiting()``: the parent's own work (prepare_shared), done while the probing child runs."""
    if getattr(source, "shares_pyplot", False):
        import_pyplot()
    probe = getattr(source, "probe", None)
    if probe is not None:
        probe(limits, lambda tasks, child_limits: run_isolated(
            tasks, child_limits, limit_address_space=limit_address_space(device), lockdown=lockdown,
            forget_in_child=forget_in_child, while_waiting=while_waiting))


def source_notes(source) -> list[str]:
    """What the report says once about a source (a notebook's failed cells, lines left out)."""
    return list(getattr(source, "notes", []))


def plan(source, exercises, ctx) -> tuple[dict, dict]:
    """``(children, tasks)``: ChildResults known without running anything (a syntax error),
    and exercise -> the work of its grading child (for sandbox.run_isolated)."""
    from .child import ChildWork

    children: dict[str, ChildResult] = {}
    tasks = {}
    for exercise in exercises:
        problem = source.static_problem(exercise)
        if problem:  # e.g. a syntax error: nothing to run
            children[exercise] = ChildResult("load_error", message=problem)
        else:
            tasks[exercise] = ChildWork(source, exercise, ctx)
    return children, tasks


def import_key(source, exercise: str) -> str:
    """The file a grading child of ``exercise`` imports first: children with the same key
    import the same code (sandbox.run_isolated's groups), so its failure is shared."""
    file_for = getattr(source, "file_for", None)  # sources.ExercisesDir: one file per exercise
    return str(file_for(exercise) if file_for else getattr(source, "path", exercise))


def explain_import_failures(source, children: dict) -> None:
    """Say "importing x.py" in the message of each child that was stopped, or crashed, while
    the student's code was still being imported (the same for every exercise of that file)."""
    for exercise, child in children.items():
        if not child.loaded and child.status in ABNORMAL:
            path = Path(import_key(source, exercise))
            what = f"running the code cells of {path.name}" if path.suffix == ".ipynb" else f"importing {path.name}"
            child.message = f"{what}: {child.message}"


def import_scoring() -> None:
    """Import pytest and the checks' plugin (~0.3 s), while the last children run."""
    from . import pytest_plugin  # noqa: F401


def score(label: str, exercises, children: dict, device: str, seconds: float, junitxml=None, notes=(),
          expected: dict | None = None) -> Report:
    """The Report of one source from its exercises' ChildResults (the checks run here, in the parent).
    ``notes``: what the report says once about the source (source_notes). ``expected``: exercise ->
    its expected values (fresh seeds, fresh.py); None: the frozen ones."""
    from .context import load_expected
    from .pytest_plugin import run_checks

    children = {e: children[e] for e in exercises}
    expected = {e: load_expected(e) for e in exercises} if expected is None else {e: expected[e] for e in exercises}
    checks = run_checks(children, expected, junitxml=junitxml)
    ordered = [
        exercise_result(e, children[e], [checks.get((e, c["id"])) or unrun_check(e, c) for c in check_definitions()[e]["checks"]])
        for e in exercises
    ]
    return Report(ordered, label, device, seconds, notes=list(notes))
