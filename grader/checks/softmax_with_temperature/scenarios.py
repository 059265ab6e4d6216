"""Scenarios of softmax_with_temperature (section 5.3.1): the book's toy vocabulary at the
temperatures of figure 5.14, and seeded batches of logits.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

# The book's toy example (section 5.3): next-token logits over a 9-word vocabulary.
TOY_LOGITS = [4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79]
PIZZA = 6  # "pizza" in the toy vocabulary (exercise 5.1)


def _toy(fn, temperature):
    return fn(torch.tensor(TOY_LOGITS), temperature)


def scenario_book_t1(fn, ctx):
    return {"probas": _toy(fn, 1.0)}


def scenario_book_t01(fn, ctx):
    return {"probas": _toy(fn, 0.1)}


def scenario_book_t5(fn, ctx):
    probas = _toy(fn, 5.0)
    # a list of the right nine values has the right 'pizza' too: the type is the type check's
    one_row = probas.shape == (9,) if isinstance(probas, torch.Tensor) else isinstance(probas, (list, tuple)) and len(probas) == 9
    pizza = probas[PIZZA] if one_row else probas
    return {"probas": probas, "pizza": pizza}


def scenario_batch_2x3x11(fn, ctx):
    logits = torch.randn(2, 3, 11, generator=torch.Generator().manual_seed(ctx.seed(91))) * 2
    return {"probas": fn(logits.to(ctx.device), 0.7)}


def scenario_rows_4x50257(fn, ctx):
    logits = torch.randn(4, 50257, generator=torch.Generator().manual_seed(ctx.seed(92))) * 3
    return {"probas": fn(logits.to(ctx.device), 2.5)}
