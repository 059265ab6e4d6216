"""Instructor grading piece by piece: the kit's answers out of a grading child's reach
(grader/answers.py), the sandbox around it as root (grader/lockdown.py), and what the
sandbox does in every mode: the report pipe and the processes a child leaves behind
(grader/sandbox.py, grader/processes.py).

Whole hostile submissions are in the corpus (tests/test_corpus.py: kit_answers,
stop_the_grader, kill_the_grader, kill_siblings, write_results_file, background_holds_pipe).
The tests that need root (the sandbox gives root up) skip with the reason elsewhere.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from pathlib import Path

import pytest

from grader import EXERCISES
from grader.child import REFERENCE_NAMES
from grader.sandbox import Limits, run_isolated

ROOT = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox of instructor grading gives up root: "
                                "it needs the tests to run as root (they do in the kit's containers)")

# What answers.answer_functions hides besides the exercise itself: the helpers only it calls
# (measured; the other exercises and the book's given functions stay, with what they call).
HELPERS = {
    "train_model_simple": {"_copy_state"},
    "save_checkpoint": {"checkpoint_dict", "write_atomically"},
    "generate": {"_check_generate_args", "_keep_top_k", "_model_device", "_next_token"},
    "load_checkpoint": {"read_checkpoint", "apply_checkpoint", "_check_fits"},
    "load_weights_into_gpt": {"_gpt2_assignments"},
}


def kept(exercise):
    return tuple(name for name in REFERENCE_NAMES if name != exercise)


def test_the_answer_and_the_helpers_only_it_uses_are_what_is_hidden():
    from grader.answers import answer_functions

    for exercise in EXERCISES:
        hidden = {inspect.unwrap(f).__name__ for f in answer_functions(exercise, kept(exercise)).values()}
        assert hidden == {exercise} | HELPERS.get(exercise, set()), exercise


def reach_the_answer(exercise):
    """In a grading child: hide the answer, then try the ways student code reaches it in memory.
    Returns way -> what happened ("reached" when it got the kit's function)."""
    import gc
    import sys

    import reference
    from grader.answers import hide

    module = inspect.unwrap(getattr(reference, exercise)).__module__
    others = [getattr(reference, name) for name in kept(exercise) if hasattr(reference, name)]
    hide(exercise, kept(exercise))
    ways = {
        "package": lambda: getattr(reference, exercise),
        "module": lambda: getattr(sys.modules[module], exercise),
        "import": lambda: getattr(importlib.import_module(module), exercise),
        "other functions' globals": lambda: next(inspect.unwrap(f).__globals__[exercise] for f in others
                                                 if exercise in inspect.unwrap(f).__globals__),
        # (a function exec'd in a bare namespace, as tests define students' loops, has __module__ None)
        "garbage collector": lambda: next(f for f in gc.get_objects() if inspect.isfunction(f)
                                          and f.__name__ == exercise and (f.__module__ or "").startswith("reference.")),
        "solutions": lambda: getattr(importlib.import_module(f"solutions.{exercise}"), exercise),
        "known mistakes": lambda: importlib.import_module(f"grader.checks.{exercise}.mistakes"),
        "reload": lambda: importlib.reload(sys.modules[module]),
    }
    found = {}
    for way, reach in ways.items():
        try:
            value = reach()
            found[way] = "stand-in" if getattr(value, "__module__", "") == "reference" else "reached"
        except (ImportError, StopIteration) as exc:
            found[way] = type(exc).__name__
    return {"status": "ran", "outputs": found}


def test_in_a_grading_child_no_way_reaches_the_kits_answer():
    tasks = {e: (lambda e: lambda: reach_the_answer(e))(e) for e in EXERCISES}
    results = run_isolated(tasks, Limits(timeout_s=120), parallel=2)
    for exercise, result in results.items():
        assert result.status == "ran", (exercise, result.message)
        assert "reached" not in result.outputs.values(), (exercise, result.outputs)
        assert result.outputs["solutions"] == result.outputs["reload"] == "ImportError", exercise


def a_grading_process_of_its_own(pids_file: Path, detach: bool, report: bool):
    """A child's work that leaves a process holding its result pipe for 60 s, then reports or exits."""
    def work():
        pid = os.fork()
        if pid == 0:
            if detach:
                os.setsid()
                if os.fork():
                    os._exit(0)
            with open(pids_file, "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(60)
            os._exit(0)
        if detach:
            os.waitpid(pid, 0)
        while not pids_file.exists():
            time.sleep(0.01)
        if not report:
            os._exit(3)
        return {"status": "ran", "outputs": {"answer": 42}}
    return work


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


@pytest.mark.parametrize("detach", [False, True], ids=["same-group", "setsid"])
@pytest.mark.parametrize("report", [True, False], ids=["reports", "exits"])
def test_a_process_left_holding_the_pipe_neither_delays_the_result_nor_survives(tmp_path, detach, report):
    pids = tmp_path / "pids"
    start = time.perf_counter()
    result = run_isolated({"x": a_grading_process_of_its_own(pids, detach, report)}, Limits(timeout_s=30))["x"]
    seconds = time.perf_counter() - start
    if report:
        assert (result.status, result.outputs) == ("ran", {"answer": 42})
    else:
        assert result.status == "crashed" and "exited with code 3 before reporting" in result.message
    assert seconds < 15  # measured 0.2-2 s on the kit's busy 2-core machine; the time limit is 30 s
    assert not [pid for pid in map(int, pids.read_text().split()) if alive(pid)]


def test_not_root_means_a_warning_that_says_what_student_code_can_do(monkeypatch):
    from grader import lockdown

    monkeypatch.setattr(lockdown.os, "geteuid", lambda: 1000)
    found = lockdown.prepare(2)
    assert not found.drop and not found.mounts
    assert found.warning().startswith("warning: instructor grading without the full sandbox: the grader is not root")
    assert "README" in found.warning()


@needs_root
def test_as_root_the_probe_finds_the_full_sandbox():
    from grader.lockdown import prepare
    from reference.data import DATA_DIR

    found = prepare(2)
    assert found.drop and found.mounts and found.warning() == "", found.problems
    assert len(set(found.uids)) == 2 and 0 not in found.uids
    assert str(ROOT) in found.covers or any(str(ROOT).startswith(c + "/") for c in found.covers)
    assert str(DATA_DIR) in found.exposed


@needs_root
def test_without_mount_namespaces_the_warning_says_what_does_not_hold(monkeypatch):
    """Docker without CAP_SYS_ADMIN: no covers; whatever the machine then lacks is named."""
    from grader import lockdown

    monkeypatch.setattr(lockdown, "USE_MOUNTS", False)
    found = lockdown.prepare(1)
    assert not found.mounts
    assert found.warning().startswith("warning: instructor grading without the full sandbox: "), found
    assert any(word in found.warning() for word in ("answers are readable", "cannot read what grading needs"))


def what_a_sandboxed_child_can_do():
    import reference

    facts = {"uid": os.getuid(), "home": os.environ["HOME"], "cwd": os.getcwd(), "groups": os.getgroups()}
    attempts = {
        "signal the grader": lambda: os.kill(os.getppid(), 0),
        "write into the kit": lambda: open(ROOT / "grader" / "expected" / "fake.pt", "w").close(),
        "read the reference": lambda: (ROOT / "reference" / "pretraining.py").read_text(),
        "read the solutions": lambda: (ROOT / "solutions" / "calc_loss_batch.py").read_text(),
        "read the corpus": lambda: (ROOT / "tests" / "corpus" / "correct" / "book.py").read_text(),
        "read the frozen values": lambda: (ROOT / "grader" / "expected" / "fixtures.pt").read_bytes(),
        "read the data": lambda: reference.load_text(),
        "import a new module": lambda: importlib.import_module("wave"),
        "write its own folder": lambda: open("scratch.txt", "w").close(),
    }
    for what, attempt in attempts.items():
        try:
            attempt()
            facts[what] = "done"
        except OSError as exc:
            facts[what] = type(exc).__name__
    return {"status": "ran", "outputs": facts}


@needs_root
def test_a_sandboxed_child_cannot_signal_write_or_read_the_answers():
    from grader.lockdown import prepare

    lockdown = prepare(1)
    result = run_isolated({"x": what_a_sandboxed_child_can_do}, Limits(timeout_s=60), lockdown=lockdown)["x"]
    facts = result.outputs
    assert result.status == "ran", result.message
    assert facts["uid"] in lockdown.uids and facts["groups"] == [] and facts["home"] == facts["cwd"]
    assert facts["signal the grader"] == "PermissionError"
    assert facts["write into the kit"] != "done"
    for what in ("read the reference", "read the solutions", "read the corpus", "read the frozen values"):
        assert facts[what] in ("FileNotFoundError", "PermissionError"), what
    assert facts["read the data"] == facts["import a new module"] == facts["write its own folder"] == "done"
    assert not (ROOT / "grader" / "expected" / "fake.pt").exists()
