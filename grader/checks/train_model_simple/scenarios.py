"""Scenarios of train_model_simple (section 5.2): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import START_CONTEXT, capture_stdout, tiny_model, verdict_loaders


def _train(fn, ctx, seed, num_epochs, eval_freq, eval_iter, start_in_eval_mode=False):
    model = tiny_model(ctx, seed=seed, vocab_size=50257, context_length=32, drop_rate=0.1)
    train_loader, val_loader = verdict_loaders(ctx, context_length=32, chars=2400)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.1)
    if start_in_eval_mode:
        model.eval()  # as after an evaluation: training must switch dropout back on
    torch.manual_seed(seed)
    result, printed = capture_stdout(
        lambda: fn(model, train_loader, val_loader, optimizer, ctx.device, num_epochs,
                   eval_freq, eval_iter, START_CONTEXT, ctx.tokenizer)
    )
    log_lines = [line for line in printed if line.startswith("Ep ")]
    samples = [line for line in printed if not line.startswith("Ep ")]
    return {
        "result": result,
        "log_lines": log_lines,
        "num_samples": len(samples),
        "samples_start_with_context": all(s.startswith(START_CONTEXT) for s in samples),
    }


def scenario_tiny_2_epochs(fn, ctx):
    return _train(fn, ctx, seed=ctx.seed(51), num_epochs=2, eval_freq=3, eval_iter=2)


def scenario_tiny_from_eval_mode(fn, ctx):
    return _train(fn, ctx, seed=ctx.seed(52), num_epochs=1, eval_freq=2, eval_iter=1, start_in_eval_mode=True)
