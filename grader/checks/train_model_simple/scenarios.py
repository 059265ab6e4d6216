"""Scenarios of train_model_simple (section 5.2): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import re

import torch

from ..common import START_CONTEXT, MoveRecorder, capture_stdout, random_loader, tiny_model, verdict_loaders

# What the printed lines are, by what they look like: the log line of each evaluation starts
# "Ep 1 (Step 000000): " (the log check compares the rest), the sample after each epoch starts
# with the start context. Anything else a student prints (a debug line) is neither and costs
# nothing; the first few such lines are kept to show when the log lines are missing.
LOG_LINE = re.compile(r"^Ep \d+ \(Step \d+\): ")
IGNORED_KEPT = 3


def read_printed(printed, start_context=START_CONTEXT) -> dict:
    """``{"log": {"lines": [...], "ignored": [...]}, "num_samples": n}`` of the printed lines."""
    lines = [line for line in printed if LOG_LINE.match(line)]
    samples = [line for line in printed if line.startswith(start_context) and not LOG_LINE.match(line)]
    ignored = [line for line in printed if line.strip() and line not in lines and line not in samples]
    return {"log": {"lines": lines, "ignored": ignored[:IGNORED_KEPT]}, "num_samples": len(samples)}


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
    return {"result": result, **read_printed(printed)}


def scenario_tiny_2_epochs(fn, ctx):
    return _train(fn, ctx, seed=51, num_epochs=2, eval_freq=3, eval_iter=2)


def scenario_tiny_from_eval_mode(fn, ctx):
    return _train(fn, ctx, seed=52, num_epochs=1, eval_freq=2, eval_iter=1, start_in_eval_mode=True)


def scenario_device(fn, ctx):
    """The batches of both loaders are moved to the device before they are used (one short epoch)."""
    vocab_size = 6200  # enough for the start context's ids (6109 the largest), 8x cheaper than GPT-2's
    model = tiny_model(ctx, seed=53, vocab_size=vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.1)
    recorder = MoveRecorder(ctx.device)
    train_loader = recorder.loader("train_loader", random_loader(54, 2, vocab_size=vocab_size))
    val_loader = recorder.loader("val_loader", random_loader(55, 1, vocab_size=vocab_size))
    capture_stdout(lambda: fn(model, train_loader, val_loader, optimizer, ctx.device, 1, 1, 1,
                              START_CONTEXT, ctx.tokenizer))
    return {"not_moved": recorder.not_moved()}
