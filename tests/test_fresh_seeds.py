"""Fresh seeds under instructor grading (issue 9, section 4) and the replayed 124M model (issue 11).

Under instructor grading the scenarios' seeds are drawn at grade time (``ctx.seed``) and the
expected values of the scenarios that draw one are computed then (grader/fresh.py); local practice
keeps the frozen seeds (tests/test_expected.py checks the frozen files are what they give). Graded
here in this process, forking the grader's children as runner.grade does, on the exercises whose
function returns its output (EXERCISES_HERE): train_model_simple's expected values alone cost ~10-60
s of CPU here (the Gradescope bundle's test grades it under fresh seeds, tests/test_gradescope.py).
The hostile corpus file ``frozen_answers`` returns the kit's expected value of the scenario it is
called in: from the grader's own expected values if its process still holds them, else from the
frozen file. Graded with the frozen seeds it scores; under fresh seeds every check whose expected
value the fresh seeds changed scores 0.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
import weakref
from pathlib import Path

import pytest
import torch

from grader.checks import check_definitions
from grader.compare import run_comparator
from grader.context import derived_seed, load_expected
from grader.grading import scenario_output

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))
EXERCISES_HERE = ["text_to_token_ids", "token_ids_to_text", "manual_cross_entropy", "calc_loss_batch",
                  "calc_loss_loader", "evaluate_model", "softmax_with_temperature", "generate"]
MISTAKES_HERE = ["batch_targets_transposed", "gen_top_k_plus_one"]  # one on the 124M model's book input too
BOOK_SEED = 123  # the book's: The Verdict's loaders and the 124M model (grader/checks/common.py)


@pytest.fixture(scope="module")
def fresh():
    """An instructor grading's context (a salt, the 124M replay) and its expected values: (ctx, expected)."""
    from grader.answers import import_kit_modules
    from grader.runner import expected_values, prepare_parent
    from grader.sandbox import Limits

    import_kit_modules()  # as lockdown.prepare does: the tests here grade under a bare Lockdown()
    ctx = prepare_parent(EXERCISES_HERE, "cpu", instructor=True)
    return ctx, expected_values(EXERCISES_HERE, ctx, Limits(), parallel=2, device="cpu")


def grade(path: Path, ctx, expected=None, lockdown=None, drop="expected", exercises=EXERCISES_HERE):
    """The Report of ``path`` (a file, or a folder like exercises/) graded as runner.grade does, on
    ``ctx`` against ``expected`` (None: the frozen values). ``drop``: the expected values the children
    forget (fresh.forget; under a lockdown): ``expected`` by default, None for none."""
    from grader import fresh as fresh_module, runner
    from grader.sandbox import Limits, run_isolated
    from grader.sources import ExercisesDir, open_submission

    source = ExercisesDir(path, str(path)) if path.is_dir() else open_submission(path)
    known, tasks = runner.plan(source, exercises, ctx)
    results = run_isolated(tasks, Limits(timeout_s=120), parallel=2, lockdown=lockdown,
                           forget_in_child=fresh_module.forget(expected if drop == "expected" else drop))
    return runner.score(source.label, exercises, {**known, **results}, "cpu", 0.0, expected=expected)


def changed_checks(expected) -> list[tuple[str, str]]:
    """(exercise, check id) of the checks whose frozen expected output fails against the fresh one."""
    changed = []
    for exercise in EXERCISES_HERE:
        frozen = load_expected(exercise)["reference"]
        for check in check_definitions()[exercise]["checks"]:
            fresh_value = scenario_output(expected[exercise]["reference"], check)
            if run_comparator(check, scenario_output(frozen, check), fresh_value) is not None:
                changed.append((exercise, check["id"]))
    return changed


def passed(report) -> set[tuple[str, str]]:
    return {(c.exercise, c.id) for ex in report.exercises for c in ex.checks if c.passed}


def test_a_derived_seed_is_fixed_by_salt_and_seed_and_never_the_seed_itself():
    assert derived_seed("ab", 21) == derived_seed("ab", 21)
    assert derived_seed("ab", 21) != derived_seed("cd", 21) and derived_seed("ab", 21) != derived_seed("ab", 22)
    assert all(0 <= derived_seed("ab", n) < 2**31 and derived_seed("ab", n) != n for n in range(200))


def test_practice_draws_the_frozen_seeds_and_instructor_grading_fresh_ones(grading_ctx, fresh):
    ctx, _ = fresh
    assert grading_ctx.salt is None and grading_ctx.seed(21) == 21
    assert len(ctx.salt) == 32 and ctx.seed(21) == derived_seed(ctx.salt, 21)
    # both replay the 124M model: practice with the real model behind the recordings (test_practice_replay.py)
    assert type(grading_ctx.model_124m()).__name__ == "PracticeReplay124M"
    assert type(ctx.model_124m()).__name__ == "Replay124M"


def seeds_set_by_scenarios(ctx) -> dict:
    """In a forked child: exercise -> scenario -> {"set": seeds the scenario code (grader/checks/) gave
    torch.manual_seed or a torch.Generator, "drawn": what ctx.seed returned}, the reference running."""
    import reference

    from grader.checks import CHECKS_DIR, scenarios
    from grader.child import run_scenarios

    seen = {"set": set(), "drawn": set()}

    def from_checks() -> bool:
        return sys._getframe(2).f_code.co_filename.startswith(str(CHECKS_DIR))

    manual_seed, generator, draw = torch.manual_seed, torch.Generator, ctx.seed

    def recorded_manual_seed(seed):
        if from_checks():
            seen["set"].add(int(seed))
        return manual_seed(seed)

    class RecordedGenerator(generator):
        def manual_seed(self, seed):
            if from_checks():
                seen["set"].add(int(seed))
            return super().manual_seed(seed)

    def recorded_draw(seed):
        value = draw(seed)
        seen["drawn"].add(value)
        return value

    torch.manual_seed, torch.Generator, ctx.seed = recorded_manual_seed, RecordedGenerator, recorded_draw
    found = {}
    from grader import EXERCISES

    for exercise in EXERCISES:
        for name in scenarios(exercise):
            seen["set"], seen["drawn"] = set(), set()
            run_scenarios(exercise, getattr(reference, exercise), ctx, names=(name,))
            found.setdefault(exercise, {})[name] = {k: sorted(v) for k, v in seen.items()}
    return found


def test_every_seed_a_scenario_sets_is_drawn_from_the_context(fresh):
    """A seed written into a scenario (``tiny_model(ctx, seed=25)``) would give the same inputs under
    fresh seeds: every seed the scenarios' code sets must come from ctx.seed, but the book's 123."""
    from grader import EXERCISES
    from grader.sandbox import Limits, run_isolated

    ctx, _ = fresh
    result = run_isolated({"seeds": lambda: {"status": "ran", "outputs": seeds_set_by_scenarios(ctx)}},
                          Limits(timeout_s=300))["seeds"]
    assert result.status == "ran", result.message
    found = result.outputs
    assert sorted(found) == sorted(EXERCISES)
    # a seed computed from a drawn one (save_checkpoint's ``seed + 1``) is fresh too: a written one is
    # no small step from any drawn seed (those are random numbers below 2**31)
    written = {(e, s): sorted(set(v["set"]) - {d + k for d in v["drawn"] for k in range(-8, 9)} - {BOOK_SEED})
               for e, by in found.items() for s, v in by.items()}
    assert {k: v for k, v in written.items() if v} == {}
    # and every exercise has inputs drawn at grade time
    assert [e for e, by in found.items() if not any(v["drawn"] for v in by.values())] == []


def test_fresh_seeds_change_the_expected_values_but_not_the_books(fresh):
    from grader.expected import differences

    _, expected = fresh
    for exercise in EXERCISES_HERE:
        frozen, now = load_expected(exercise), expected[exercise]
        changed = [name for name in frozen["reference"] if differences(frozen["reference"][name], now["reference"][name])]
        assert changed, exercise  # some scenario of every exercise runs on fresh inputs
        for mistake, outputs in frozen["mistakes"].items():  # the mistakes' outputs: on the same fresh inputs
            assert not differences(outputs, now["mistakes"][mistake]) or \
                set(changed) & {n for n in outputs if differences(outputs[n], now["mistakes"][mistake][n])}
    books = {"text_to_token_ids": "book", "manual_cross_entropy": "book", "calc_loss_batch": "book_124m",
             "calc_loss_loader": "verdict_124m", "softmax_with_temperature": "book_t1", "generate": "greedy_124m"}
    for exercise, name in books.items():  # the book's inputs: its numbers, frozen
        assert differences(load_expected(exercise)["reference"][name], expected[exercise]["reference"][name]) == []
    # measured with 2 salts: 18 of these exercises' 47 checks, every time; the others run on the book's
    # inputs, on fixed ones (generate's end token, an empty loader) or check a property of the code
    # (a type, the device, the mode, gradients)
    assert len(changed_checks(expected)) >= 18


def test_the_solutions_get_full_marks_under_fresh_seeds(fresh):
    from grader.lockdown import Lockdown

    ctx, expected = fresh
    report = grade(ROOT / "solutions", ctx, expected, lockdown=Lockdown())
    failed = [f"{c.exercise}.{c.id}: {c.message}" for ex in report.exercises for c in ex.checks if not c.passed]
    assert report.full_marks, failed


@pytest.mark.parametrize("name", MISTAKES_HERE)
def test_a_known_mistake_is_still_named_under_fresh_seeds(fresh, tmp_path, name):
    from grader.lockdown import Lockdown

    ctx, expected = fresh
    spec = MANIFEST["mistakes"][name]
    path = Path(shutil.copy(CORPUS / "mistakes" / f"{name}.py", tmp_path))
    report = grade(path, ctx, expected, lockdown=Lockdown(), exercises=[spec["exercise"]])
    ex = report.exercises[0]
    failing = [c for c in ex.checks if not c.passed]
    assert failing and spec["cause"] in failing[0].diagnosis, [(c.id, c.message, c.diagnosis) for c in failing]


def test_one_grading_run_computes_the_mistakes_after_the_students_code_where_a_check_failed(tmp_path, monkeypatch):
    """runner.grade under instructor grading, end to end: the reference's values first, the known
    mistakes' only for an exercise that failed a check (train_model_simple's cost ~40 s of CPU)."""
    from grader import fresh as fresh_module, runner
    from grader.lockdown import Lockdown
    from grader.sources import open_submission

    asked = []
    add_mistakes = fresh_module.add_mistakes
    monkeypatch.setattr(fresh_module, "add_mistakes", lambda expected, exercises, *args, **kwargs: (
        asked.append(sorted(exercises)), add_mistakes(expected, exercises, *args, **kwargs))[1])
    spec = MANIFEST["mistakes"]["batch_targets_transposed"]
    source = open_submission(Path(shutil.copy(CORPUS / "mistakes" / "batch_targets_transposed.py", tmp_path)))
    report = runner.grade(source, ["text_to_token_ids", spec["exercise"]], parallel=2, lockdown=Lockdown())
    assert asked == [[spec["exercise"]]]  # text_to_token_ids passed: none of its mistakes computed
    by_name = {ex.name: ex for ex in report.exercises}
    assert by_name["text_to_token_ids"].score == by_name["text_to_token_ids"].max_score
    failing = [c for c in by_name[spec["exercise"]].checks if not c.passed]
    assert failing and spec["cause"] in failing[0].diagnosis, [(c.id, c.message, c.diagnosis) for c in failing]


@pytest.fixture(scope="module")
def frozen_answers(tmp_path_factory):
    return Path(shutil.copy(CORPUS / "hostile" / "frozen_answers.py", tmp_path_factory.mktemp("frozen_answers")))


def test_returning_the_frozen_values_scores_with_the_frozen_seeds(grading_ctx, fresh, frozen_answers):
    """The attack is real: in local practice it passes the checks the fresh seeds change. (Graded
    under a bare Lockdown() whose children forget the fresh values this test session holds, which a
    real practice run does not have, nor the garbage of this session's earlier fresh-seed runs:
    collected first.)"""
    import gc

    from grader.lockdown import Lockdown

    _, expected = fresh
    changed = changed_checks(expected)
    gc.collect()
    won = passed(grade(frozen_answers, grading_ctx, lockdown=Lockdown(), drop=expected)) & set(changed)
    assert {e for e, _ in won} == set(EXERCISES_HERE)
    assert won == set(changed)  # measured: 18 of 18 (66 of the eight exercises' 71 points; 36 under fresh seeds)


def test_returning_the_frozen_values_earns_nothing_under_fresh_seeds(fresh, frozen_answers):
    """Instructor grading where the grader is not root (Lockdown(): the frozen file is readable)."""
    from grader.lockdown import Lockdown

    ctx, expected = fresh
    report = grade(frozen_answers, ctx, expected, lockdown=Lockdown())
    assert passed(report) & set(changed_checks(expected)) == set()
    changed = set(changed_checks(expected))
    # nor do they match a known mistake's outputs on the fresh inputs (a property check, such as
    # calc_loss_batch's graph, may still name the mistake that has the same property)
    named = [(ex.name, c.id, c.diagnosis) for ex in report.exercises for c in ex.checks
             if not c.passed and c.diagnosis and (ex.name, c.id) in changed]
    assert named == []


@pytest.mark.slow  # a negative control that depends on this process's garbage: run it with its own file
def test_a_grading_process_that_kept_the_expected_values_would_give_them_away(fresh, frozen_answers):
    """Why a student's grading process drops them (fresh.forget): without that, the hostile file finds
    them with the garbage collector and passes the changed checks too."""
    import gc

    from grader.lockdown import Lockdown

    ctx, expected = fresh
    gc.collect()  # an earlier test's fresh-seed values, left as garbage in this process, would be found first
    report = grade(frozen_answers, ctx, expected, lockdown=Lockdown(), drop=None, exercises=["calc_loss_batch"])
    changed = {(e, c) for e, c in changed_checks(expected) if e == "calc_loss_batch"}
    assert changed and changed <= passed(report)


def test_forget_frees_the_expected_values_in_a_child():
    from grader.fresh import forget
    from grader.lockdown import Lockdown
    from grader.sandbox import Limits, run_isolated

    expected = {"calc_loss_batch": {"reference": {"x": {"loss": torch.tensor(1.5)}}, "mistakes": {}}}
    ref = weakref.ref(expected["calc_loss_batch"]["reference"]["x"]["loss"])

    def work():
        return {"status": "ran", "outputs": {"alive": ref() is not None, "left": len(expected)}}

    child = run_isolated({"x": work}, Limits(timeout_s=60), lockdown=Lockdown(), forget_in_child=forget(expected))["x"]
    assert child.outputs == {"alive": False, "left": 0}
    assert ref() is not None and len(expected) == 1  # this process keeps them


# --------------------------------------------------------------------------- the replayed 124M model


@pytest.fixture(scope="module")
def replay():
    from grader.context import EXPECTED_DIR
    from grader.replay import load_replay

    return load_replay(EXPECTED_DIR)


def test_the_replay_gives_the_books_logits_row_by_row_and_in_any_order(replay):
    from grader.checks.common import BOOK_INPUTS
    from grader.context import load_fixtures

    book = load_fixtures()["book_logits"]  # the real model's, frozen by regen
    ids = torch.tensor(BOOK_INPUTS)
    # bit for bit for the recorded batch; rows computed in another batch within 1e-5 (measured: ~1e-6)
    assert torch.equal(replay(ids), book)
    torch.testing.assert_close(replay(ids.flip(0)), book.flip(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(replay(ids[1:]), book[1:], rtol=0, atol=1e-5)
    assert replay(ids).shape == (2, 3, 50257) and replay(ids).dtype == torch.float32


def test_the_replay_refuses_an_input_it_has_no_recording_of_in_one_line(replay):
    from grader.checks.common import BOOK_INPUTS
    from grader.replay import AttributeOfReplay, UnrecordedInput

    with pytest.raises(UnrecordedInput, match="no recording|has none") as info:
        replay(torch.tensor(BOOK_INPUTS) + 1)
    assert "\n" not in str(info.value)
    with pytest.raises(UnrecordedInput):
        replay(torch.zeros(2, 3))  # floats, not token ids
    with pytest.raises(AttributeOfReplay, match="context_size"):
        replay.pos_emb  # noqa: B018 (an attribute of the real model)


def test_a_check_that_feeds_the_replay_another_input_fails_saying_so(replay):
    """calc_loss_batch's book scenario with code that shifts the ids: the scenario records the error."""
    from grader.child import run_scenarios
    from grader.context import Context

    ctx = Context("cpu", model_124m=replay)

    def shifted(input_batch, target_batch, model, device):
        logits = model((input_batch + 1) % 50257)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())

    outputs = run_scenarios("calc_loss_batch", shifted, ctx, names=("book_124m",))["book_124m"]
    assert outputs["__error__"] == "UnrecordedInput" and "replayed from recorded outputs" in outputs["message"]
