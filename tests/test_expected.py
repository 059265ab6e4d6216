"""The frozen expected values (grader/expected/) are current, and hold the book's numbers.

``python -m grader regen`` takes minutes here; these tests recompute, in this process,
only the cheap exercises' frozen outputs (the reference's and the known mistakes') with
the same code (``grader.expected.compute_expected``) and compare them with the files.
train_model_simple (several seconds per mistake) is left to ``regen``.

Tolerance: floats agree within 1e-6 + 1e-5 * |value|. Two regens on this machine gave
book logits of the untrained 124M model that differ by up to 1.5e-6 (values up to 2.7);
everything else came out bit-identical.
"""

from __future__ import annotations

import math

import pytest
import torch

from grader.context import load_expected, load_fixtures

CHEAP = ["text_to_token_ids", "token_ids_to_text", "manual_cross_entropy", "calc_loss_batch",
         "calc_loss_loader", "evaluate_model", "plot_losses"]
ATOL, RTOL = 1e-6, 1e-5


def differences(frozen, fresh, path="") -> list[str]:
    """Where two frozen-output structures differ, beyond the tolerance; error records by type and message."""
    if isinstance(frozen, dict) and "__error__" in frozen:
        same = isinstance(fresh, dict) and (fresh.get("__error__"), fresh.get("message")) == (
            frozen["__error__"], frozen.get("message"))
        return [] if same else [f"{path}: {frozen.get('message')!r} vs {fresh!r}"[:300]]
    if isinstance(frozen, torch.Tensor):
        if not isinstance(fresh, torch.Tensor) or fresh.shape != frozen.shape or fresh.dtype != frozen.dtype:
            return [f"{path}: {frozen!r} vs {fresh!r}"[:300]]
        if frozen.is_floating_point():
            ok = torch.allclose(fresh, frozen, atol=ATOL, rtol=RTOL, equal_nan=True)
        else:
            ok = torch.equal(fresh, frozen)
        return [] if ok else [f"{path}: tensors differ"]
    if isinstance(frozen, float):
        ok = isinstance(fresh, float) and (math.isclose(fresh, frozen, rel_tol=RTOL, abs_tol=ATOL)
                                           or (math.isnan(fresh) and math.isnan(frozen)))
        return [] if ok else [f"{path}: {frozen!r} vs {fresh!r}"]
    if isinstance(frozen, dict):
        if not isinstance(fresh, dict) or set(fresh) != set(frozen):
            return [f"{path}: keys {sorted(frozen)} vs {sorted(fresh) if isinstance(fresh, dict) else fresh!r}"]
        return [d for key in frozen for d in differences(frozen[key], fresh[key], f"{path}/{key}")]
    if isinstance(frozen, (list, tuple)):
        if type(fresh) is not type(frozen) or len(fresh) != len(frozen):
            return [f"{path}: {frozen!r} vs {fresh!r}"[:300]]
        return [d for i, (a, b) in enumerate(zip(frozen, fresh)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if fresh == frozen and type(fresh) is type(frozen) else [f"{path}: {frozen!r} vs {fresh!r}"[:300]]


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
