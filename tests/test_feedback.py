"""What a student sees when their code fails, and files the grader must never touch.

Each test pins a problem found by trying the kit as a newcomer. The inputs of issue 8
("A student's first hour") are built from solutions/ with one change each, graded together
in one queue of forked children (``graded``, two at a time, as ``runner.grade`` runs them),
and each is checked for its score and the message the student reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader import runner
from grader.checks import check_definitions
from grader.cli import main
from grader.generate import generated_files
from grader.report import render_text
from grader.sources import ExercisesDir, SubmissionFile, open_submission

KIT = Path(__file__).resolve().parent.parent
NAME_ERROR = '''\
def token_ids_to_text(token_ids, tokenizer):
    flat = token_ids.squeeze(0)
    return tokenizer.decode(flat.tolist(), foo)
'''


def solution(exercise: str) -> str:
    return (KIT / "solutions" / f"{exercise}.py").read_text(encoding="utf-8")


def changed(exercise: str, old: str, new: str, text: str | None = None) -> str:
    """The solution of ``exercise`` (or ``text``) with one change: ``old`` replaced by ``new``."""
    text = solution(exercise) if text is None else text
    assert old in text, f"{old!r} not in solutions/{exercise}.py"
    return text.replace(old, new)


def points(exercise: str, *check_ids: str) -> float:
    """The points of an exercise, or of some of its checks (grader/checks/<exercise>/checks.toml)."""
    checks = check_definitions()[exercise]["checks"]
    return sum(c["points"] for c in checks if not check_ids or c["id"] in check_ids)


def check_hint(exercise: str, check_id: str) -> str:
    return next(c["hint"] for c in check_definitions()[exercise]["checks"] if c["id"] == check_id)


def solution_body(exercise: str) -> str:
    """The lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``."""
    found = re.search(r"# BEGIN SOLUTION\n(.*?)^[ \t]*# END SOLUTION", solution(exercise), re.S | re.M)
    return found.group(1)


STUB_RAISE = '    raise NotImplementedError("text_to_token_ids is not implemented yet")\n'
STUB = generated_files()["text_to_token_ids.py"]
ABOVE_THE_RAISE = changed("text_to_token_ids", STUB_RAISE, solution_body("text_to_token_ids").replace(
    "    return encoded_tensor\n", "") + STUB_RAISE, text=STUB)
BELOW_THE_RAISE = changed("text_to_token_ids", STUB_RAISE, STUB_RAISE + solution_body("text_to_token_ids"), text=STUB)
NO_MOVE = "    input_batch, target_batch = input_batch.to(device), target_batch.to(device)\n"
INLINE_LOSS = ("loss = __import__('torch').nn.functional.cross_entropy("
               "model(input_batch).flatten(0, 1), target_batch.flatten())")
UNMOVED_LOADER = '''

def loss_without_moving(loader, model, device, num_batches):
    import torch

    batches = [b for _, b in zip(range(num_batches), loader)]
    return sum(torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
               for x, y in batches) / len(batches)
'''
SECONDARY_AXIS = '''
    ax2 = ax1.twiny()
    ax2.plot(tokens_seen, train_losses, alpha=0)
    ax2.set_xlabel("Tokens seen")
'''
BOOK_PLOT_END = '''
    fig.tight_layout()
    return fig
'''

# name -> (exercise, file text); a name starting with "folder:" is graded as exercises/<exercise>.py
CASES = {
    "debug_print": ("train_model_simple", changed(
        "train_model_simple", "            optimizer.step()\n",
        '            optimizer.step()\n            print(f"step loss {loss.item():.4f}")\n')),
    "folder:renamed": ("calc_loss_batch", changed(
        "calc_loss_batch", "def calc_loss_batch(", "def calc_batch_loss(")),
    "renamed": ("calc_loss_batch", changed("calc_loss_batch", "def calc_loss_batch(", "def calc_batch_loss(")),
    "folder:above_the_raise": ("text_to_token_ids", ABOVE_THE_RAISE),
    "folder:below_the_raise": ("text_to_token_ids", BELOW_THE_RAISE),
    "ce_item": ("manual_cross_entropy", changed(
        "manual_cross_entropy", "return neg_avg_log_probas", "return neg_avg_log_probas.item()")),
    "ce_no_negation": ("manual_cross_entropy", changed(
        "manual_cross_entropy", "neg_avg_log_probas = avg_log_probas * -1", "neg_avg_log_probas = avg_log_probas")),
    "batch_no_move": ("calc_loss_batch", changed("calc_loss_batch", NO_MOVE, "")),
    "batch_input_moved_only": ("calc_loss_batch", changed(
        "calc_loss_batch", NO_MOVE, "    input_batch = input_batch.to(device)\n")),
    "batch_unflattened": ("calc_loss_batch", changed(
        "calc_loss_batch", "logits.flatten(0, 1), target_batch.flatten()", "logits, target_batch")),
    "loader_tensor": ("calc_loss_loader", changed(
        "calc_loss_loader", "total_loss += loss.item()", "total_loss += loss")),
    "eval_no_move": ("evaluate_model", changed(
        "evaluate_model", "= calc_loss_loader(", "= loss_without_moving(") + UNMOVED_LOADER),
    "eval_swapped": ("evaluate_model", changed(
        "evaluate_model", "return train_loss, val_loss", "return val_loss, train_loss")),
    "train_no_move": ("train_model_simple", changed(
        "train_model_simple", "loss = calc_loss_batch(input_batch, target_batch, model, device)", INLINE_LOSS)),
    "prints_a_lot": ("text_to_token_ids", changed(
        "text_to_token_ids", "    return encoded_tensor\n", '    print("x" * 2_000_000)\n    return encoded_tensor\n')),
    "plot_secondary_axis": ("plot_losses", changed("plot_losses", SECONDARY_AXIS, '''
    per_epoch = tokens_seen[-1] / float(epochs_seen[-1])
    top = ax1.secondary_xaxis("top", functions=(lambda e: e * per_epoch, lambda t: t / per_epoch))
    top.set_xlabel("Tokens seen")
''')),
    "plot_book_show": ("plot_losses", changed("plot_losses", BOOK_PLOT_END, '''
    fig.tight_layout()
    plt.savefig("loss-plot.pdf")
    plt.show()
''')),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, grading_ctx):
    """name -> (Report, its text, its text with -v) for every case, graded in one queue."""
    from grader.sandbox import Limits, run_isolated

    sources, known, queue = {}, {}, {}
    for name, (exercise, text) in CASES.items():
        folder = tmp_path_factory.mktemp(name.replace(":", "-"))
        if name.startswith("folder:"):
            (folder / f"{exercise}.py").write_text(text, encoding="utf-8")
            sources[name] = ExercisesDir(folder, "exercises/")
        else:
            (folder / "work.py").write_text(text, encoding="utf-8")
            sources[name] = open_submission(folder / "work.py")
        known[name], tasks = runner.plan(sources[name], [exercise], grading_ctx)
        queue.update({(name, e): work for e, work in tasks.items()})
    order = sorted(queue, key=lambda key: key[1] != "train_model_simple")  # the slowest first
    children = run_isolated({key: queue[key] for key in order}, Limits(timeout_s=60), parallel=2)
    out = {}
    for name, (exercise, _) in CASES.items():
        results = {**known[name], **{e: children[(n, e)] for (n, e) in children if n == name}}
        report = runner.score(sources[name].label, [exercise], results, "cpu", 0.0)
        out[name] = (report, render_text(report), render_text(report, verbose=True))
    return out


def failed(report) -> dict:
    """check id -> CheckResult of every failed check (one exercise graded)."""
    (ex,) = report.exercises
    return {c.id: c for c in ex.checks if not c.passed}


def assert_every_failure_explained(text: str) -> None:
    """Never a failed check without an explanation: every block of failed checks in the text
    report ends with a hint (after its likely cause, if there is one)."""
    for block in text.split("\n\n"):
        if re.match(r"^\w+ \[\w+\]: ", block):
            assert "\n  hint: " in block, block


# --------------------------------------------------------------------------- 1. never blame the wrong line


def test_extra_prints_in_the_training_loop_cost_nothing(graded):
    report, text, _ = graded["debug_print"]
    assert report.score == report.max_score == points("train_model_simple"), text


def test_a_renamed_function_is_named_not_called_unimplemented(graded):
    report, text, _ = graded["folder:renamed"]
    (ex,) = report.exercises
    assert report.score == 0 and ex.status_line == "not defined"
    assert ex.message == ("calc_loss_batch.py defines no function named calc_loss_batch (it defines "
                          "calc_batch_loss): the grader calls the book's name, calc_loss_batch")
    assert ex.message in text and "not implemented yet" not in text


def test_a_renamed_function_in_one_file_is_suggested(graded):
    report, text, _ = graded["renamed"]
    (ex,) = report.exercises
    assert ex.message == ("no function named calc_loss_batch is defined (calc_batch_loss is: "
                          "the grader calls the book's name, calc_loss_batch)"), ex.message


def test_code_above_a_leftover_stub_raise_names_the_raise_and_its_line(graded):
    report, text, _ = graded["folder:above_the_raise"]
    line = ABOVE_THE_RAISE.splitlines().index(STUB_RAISE.rstrip("\n")) + 1
    (ex,) = report.exercises
    assert report.score == 0 and ex.status_line == "the stub's raise is still there"
    assert f"the stub's `raise NotImplementedError` is still there, at line {line}: your code above it runs" in text


def test_code_below_a_stub_raise_is_told_the_raise_runs_first(graded):
    report, text, _ = graded["folder:below_the_raise"]
    line = BELOW_THE_RAISE.splitlines().index(STUB_RAISE.rstrip("\n")) + 1
    assert f"is still there, at line {line}, and runs before your code: delete that line" in text


def test_an_untouched_stub_still_reads_not_implemented_yet(tmp_path, grading_ctx):
    (tmp_path / "text_to_token_ids.py").write_text(STUB, encoding="utf-8")
    report = runner.grade(ExercisesDir(tmp_path, "exercises/"), ["text_to_token_ids"], ctx=grading_ctx)
    (ex,) = report.exercises
    assert ex.status_line == "not implemented yet" and not ex.says_more


def test_the_hint_shown_belongs_to_the_cause_shown(graded):
    # .item(): the type check fails alone, with its own hint, not the value checks' softmax hint
    report, text, _ = graded["ce_item"]
    assert list(failed(report)) == ["type"]
    assert "expected a 0-dim tensor, got a float" in text
    assert f"hint: {check_hint('manual_cross_entropy', 'type')}" in text and "oftmax" not in text


# --------------------------------------------------------------------------- 2. device placement on a CPU


@pytest.mark.parametrize("case, exercise, says", [
    ("batch_no_move", "calc_loss_batch",
     "not moved to the device: input_batch (used in embedding); target_batch (used in cross_entropy)."),
    ("batch_input_moved_only", "calc_loss_batch", "not moved to the device: target_batch (used in cross_entropy)."),
    ("eval_no_move", "evaluate_model", "not moved to the device: the input batches of train_loader (used in "
     "embedding); the input batches of val_loader (used in embedding); the target batches of train_loader"),
    ("train_no_move", "train_model_simple", "not moved to the device: the input batches of train_loader "
     "(used in embedding); the target batches of train_loader (used in cross_entropy)."),
])
def test_a_missing_move_to_the_device_costs_the_device_check_only(graded, case, exercise, says):
    report, text, _ = graded[case]
    assert list(failed(report)) == ["device"], text
    assert report.score == points(exercise) - points(exercise, "device")
    assert says in text and "with device='cuda' it fails" in text


def test_a_loader_loss_computed_without_moving_names_the_loaders_batches(grading_ctx):
    # Graded whole, such a calc_loss_loader also runs the 124M model on The Verdict for real
    # (the scenario replays calc_loss_batch's frozen losses only): its device scenario alone.
    from grader.checks.calc_loss_loader.scenarios import scenario_device
    from grader.compare import compare_devices

    namespace = {}
    exec(changed("calc_loss_loader", "loss = calc_loss_batch(input_batch, target_batch, model, device)",
                 INLINE_LOSS), namespace)
    not_moved = scenario_device(namespace["calc_loss_loader"], grading_ctx)["not_moved"]
    assert compare_devices(not_moved, [], {}).startswith(
        "not moved to the device: the input batches of data_loader (used in embedding); "
        "the target batches of data_loader (used in cross_entropy).")
    import reference

    assert scenario_device(reference.calc_loss_loader, grading_ctx)["not_moved"] == []


# --------------------------------------------------------------------------- 3. points in proportion


def test_a_right_average_as_a_tensor_fails_the_type_check_only(graded):
    report, text, _ = graded["loader_tensor"]
    assert list(failed(report)) == ["float"]
    assert report.score == points("calc_loss_loader") - points("calc_loss_loader", "float")
    assert "expected a Python float, got a 0-dim float32 tensor" in text


def test_item_in_manual_cross_entropy_costs_the_type_check_only(graded):
    report, _, _ = graded["ce_item"]
    assert report.score == points("manual_cross_entropy") - points("manual_cross_entropy", "type")


def test_one_cause_is_printed_once_under_all_the_checks_it_fails(graded):
    report, text, _ = graded["ce_no_negation"]
    value_checks = ["book", "random_3x5x17", "random_1x7x101"]
    # the type check waits for a right value (a type alone is no answer): it says so apart
    assert sorted(failed(report)) == sorted(value_checks + ["type"])
    assert "[type]: the loss is a 0-dim tensor (training calls .backward() on losses)\n" \
           "  not counted while no check of the values passes" in text
    assert text.count("likely cause:") == 1
    cause = text.index("likely cause: your loss is the negative")
    assert all(text.index(f"[{check}]") < cause for check in value_checks)
    assert text[cause:].index("  hint: ") < text[cause:].index("\n\n")  # the hint under the cause


def test_checks_one_error_fails_share_its_cause(graded):
    # unflattened targets raise in every scenario, the device check's too: one cause, once
    report, text, _ = graded["batch_unflattened"]
    assert report.score == 0
    assert text.count("likely cause: cross_entropy got unflattened tensors") == 1
    assert text.count("raised RuntimeError") == 1 and text.count("  hint: ") == 1
    assert text.index("[device]") < text.index("likely cause:")


def test_never_a_failed_check_without_an_explanation(graded):
    for name, (report, text, verbose) in graded.items():
        assert_every_failure_explained(text)
        assert_every_failure_explained(verbose)


def test_a_type_alone_is_no_answer(tmp_path, grading_ctx):
    # the right type with wrong values earns nothing: the type check waits for a value
    path = tmp_path / "work.py"
    path.write_text("import torch\n\ndef manual_cross_entropy(logits, targets):\n    return torch.tensor(0.0)\n")
    report = runner.grade(SubmissionFile(path), ["manual_cross_entropy"], ctx=grading_ctx)
    assert report.score == 0
    assert "not counted while no check of the values passes" in render_text(report)


# --------------------------------------------------------------------------- 6. smaller things


def test_verbose_shows_what_the_code_printed_when_it_passes_and_marks_the_cut(graded):
    report, text, verbose = graded["prints_a_lot"]
    assert report.full_marks and "printed" not in text
    assert "text_to_token_ids: what your code printed:" in verbose
    # 3 scenarios x 2,000,001 bytes printed; the first 300 characters shown
    assert "  " + "x" * 300 + "\n  ... 6.0 MB more not shown" in verbose, verbose[-400:]


def test_item_numbers_count_from_1(graded):
    report, text, _ = graded["eval_swapped"]
    assert "item 1 of 2: expected" in text


def test_a_submission_that_is_not_python_says_what_is_expected(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my answers are in the notebook\n")
    assert main(["--submission", str(notes)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a .py, .ipynb or .zip file" in err, err


def test_a_deleted_exercise_file_says_how_to_restore_it(tmp_path, grading_ctx, monkeypatch):
    import grader.sources

    monkeypatch.setattr(grader.sources, "KIT_ROOT", tmp_path)  # tmp_path/exercises is "the kit's" (forked too)
    (tmp_path / "exercises").mkdir()
    report = runner.grade(ExercisesDir(tmp_path / "exercises"), ["calc_loss_batch"], ctx=grading_ctx)
    (ex,) = report.exercises
    assert ex.status == "load_error" and "calc_loss_batch.py is missing" in ex.message
    assert "`python -m grader make-exercises` writes the stub again" in render_text(report)


def test_a_tokens_axis_made_with_secondary_xaxis_is_correct(graded):
    report, text, _ = graded["plot_secondary_axis"]
    assert report.full_marks, text


def test_the_books_plot_losses_with_plt_show_is_correct_and_documented(graded):
    report, text, _ = graded["plot_book_show"]
    assert report.full_marks, text
    docstring = solution("plot_losses")
    assert "The book's version returns nothing and\n        calls ``plt.show()``: the grader accepts that" in docstring


# --------------------------------------------------------------------------- earlier newcomer runs


def grade_text(path, exercise, ctx, verbose=False):
    report = runner.grade(SubmissionFile(path), [exercise], ctx=ctx)
    return report, render_text(report, verbose=verbose)


def test_an_error_names_the_students_line_and_v_shows_the_traceback(tmp_path, grading_ctx):
    path = tmp_path / "work.py"
    path.write_text(NAME_ERROR)
    _, text = grade_text(path, "token_ids_to_text", grading_ctx)
    assert "raised NameError: name 'foo' is not defined (at line 3: return tokenizer.decode(flat.tolist(), foo))" in text
    assert "Traceback" not in text
    _, verbose = grade_text(path, "token_ids_to_text", grading_ctx, verbose=True)
    assert f'File "{path}", line 3, in token_ids_to_text' in verbose


def test_a_different_error_of_the_same_type_is_not_given_a_known_mistakes_cause(tmp_path, grading_ctx):
    # squeeze() on a one-token tensor raises a TypeError too, with another message
    path = tmp_path / "work.py"
    path.write_text("def token_ids_to_text(token_ids, tokenizer):\n    return tokenizer.decode(token_ids)\n")
    report, text = grade_text(path, "token_ids_to_text", grading_ctx)
    assert report.score == 0 and "likely cause" not in text


def test_a_file_with_a_byte_order_mark_is_graded(tmp_path, grading_ctx):
    path = tmp_path / "bom.py"
    path.write_bytes(b"\xef\xbb\xbf" + solution("text_to_token_ids").encode("utf-8"))  # as Windows editors save it
    report = runner.grade(open_submission(path), ["text_to_token_ids"], ctx=grading_ctx)
    assert report.score == report.max_score == points("text_to_token_ids")


def test_output_never_replaces_code_or_kit_files(tmp_path, capsys):
    code = tmp_path / "calc_loss_batch.py"
    code.write_text("# my finished exercise\n")
    assert main(["text_to_token_ids", "--output", str(code)]) == 2
    assert code.read_text() == "# my finished exercise\n"
    assert main(["text_to_token_ids", "--output", str(KIT / "exercises" / "report.txt")]) == 2
    assert not (KIT / "exercises" / "report.txt").exists()
    assert "--output" in capsys.readouterr().err


def test_data_line_endings_are_never_converted_by_git():
    attributes = (KIT / ".gitattributes").read_text().split("\n")
    assert "data/** -text" in attributes
