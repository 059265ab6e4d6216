"""``python -m grader regen``: compute and freeze the expected outputs of every scenario.

Runs each scenario on the reference function and on every known mistake
(grader/mistakes.py), on the CPU, and writes ``grader/expected/<exercise>.pt``
plus ``fixtures.pt`` (the book's logits and the 124M model's per-batch losses on
The Verdict). Never edit these files by hand; tests/ check they are current.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import EXERCISES
from .context import EXPECTED_DIR, FIXTURES_FILE, Context



def compute_fixtures(ctx: Context) -> dict:
    """Inputs the scenarios replay instead of recomputing with the 124M model."""
    from reference import calc_loss_batch

    from .scenarios import BOOK_INPUTS, batch_key, verdict_loaders

    model = ctx.build_model_124m()
    losses = {}
    with torch.no_grad():
        book_logits = model(torch.tensor(BOOK_INPUTS))  # (2, 3, 50257)
        train_loader, val_loader = verdict_loaders(ctx, context_length=256)
        torch.manual_seed(123)  # the shuffle the calc_loss_loader scenario draws
        for loader in (train_loader, val_loader):
            for input_batch, target_batch in loader:
                losses[batch_key(input_batch, target_batch)] = calc_loss_batch(
                    input_batch, target_batch, model, "cpu").item()
    return {"book_logits": book_logits, "verdict_batch_losses": losses}


def compute_expected(exercise: str, ctx: Context) -> dict:
    import reference

    from .child import run_scenarios
    from .mistakes import MISTAKES

    return {
        "reference": run_scenarios(exercise, getattr(reference, exercise), ctx),
        "mistakes": {mid: run_scenarios(exercise, fn, ctx) for mid, fn in MISTAKES.get(exercise, {}).items()},
    }


def regenerate(out_dir: Path = EXPECTED_DIR, exercises=EXERCISES, log=print) -> None:
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # tiny workloads: threads only add overhead (and noise)
    torch.manual_seed(123)
    ctx = Context("cpu", fixtures={"book_logits": None, "verdict_batch_losses": {}})
    fixtures = compute_fixtures(ctx)
    ctx.book_logits = fixtures["book_logits"]
    ctx.verdict_batch_losses = fixtures["verdict_batch_losses"]
    torch.save(fixtures, out_dir / FIXTURES_FILE)
    for exercise in exercises:
        torch.save(compute_expected(exercise, ctx), out_dir / f"{exercise}.pt")
        log(f"wrote {out_dir / (exercise + '.pt')}")
