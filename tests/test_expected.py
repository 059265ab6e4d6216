"""The frozen expected values (grader/expected/) are current, and hold the book's numbers.

``python -m grader regen`` takes minutes here; these tests recompute, in this process,
only the cheap exercises' frozen outputs (the reference's and the known mistakes') with
the same code (``grader.expected.compute_expected``) and compare them with the files.
train_model_simple (several seconds per mistake) is left to ``regen``.

Tolerance: grader.expected.ATOL/RTOL (floats within 1e-6 + 1e-5 * |value|; see there).
"""

from __future__ import annotations

import pytest
import torch

from grader.context import load_expected, load_fixtures
from grader.expected import differences

CHEAP = ["text_to_token_ids", "token_ids_to_text", "manual_cross_entropy", "calc_loss_batch",
         "calc_loss_loader", "evaluate_model", "plot_losses"]


@pytest.mark.parametrize("exercise", CHEAP)
def test_frozen_outputs_are_what_the_reference_and_the_mistakes_give_now(grading_ctx, exercise):
    from grader.expected import compute_expected

    fresh = compute_expected(exercise, grading_ctx)
    torch.set_num_threads(1)  # the scenarios may not change this process's settings for later tests
    assert differences(load_expected(exercise), fresh) == []


def test_frozen_values_hold_the_books_numbers(book_values):
    untrained, data = book_values["untrained"], book_values["data"]
    fixtures = load_fixtures()
    argmax = fixtures["book_logits"].argmax(dim=-1)
    assert argmax.tolist() == untrained["argmax_ids"]

    reference = {e: load_expected(e)["reference"] for e in CHEAP}
    # the book prints 10.7940 (4 decimals): within half of its last digit
    assert reference["manual_cross_entropy"]["book"]["loss"].item() == pytest.approx(untrained["loss"], abs=5e-5)
    assert reference["calc_loss_batch"]["book_124m"]["loss"].item() == pytest.approx(untrained["loss"], abs=5e-5)
    # 10.98758 and 10.98111 (the book prints 5 decimals), measured to float precision in the json
    verdict = reference["calc_loss_loader"]["verdict_124m"]
    assert verdict["train_loss"] == pytest.approx(data["initial_train_loss"], abs=1e-5)
    assert verdict["val_loss"] == pytest.approx(data["initial_val_loss"], abs=1e-5)
    assert round(verdict["train_loss"], 5) == 10.98758 and round(verdict["val_loss"], 5) == 10.98111
    assert reference["token_ids_to_text"]["book"]["text"] == untrained["greedy_10_tokens"]
    assert reference["text_to_token_ids"]["book"]["ids"].tolist() == [[6109, 3626, 6100, 345]]
