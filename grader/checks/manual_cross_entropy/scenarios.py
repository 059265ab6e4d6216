"""Scenarios of manual_cross_entropy (section 5.1.2): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import BOOK_TARGETS


def _random_logits(seed, shape, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen) * scale
    targets = torch.randint(0, shape[-1], shape[:-1], generator=gen)
    return logits, targets


def scenario_book(fn, ctx):
    logits = ctx.book_logits.to(ctx.device)
    targets = torch.tensor(BOOK_TARGETS, device=ctx.device)
    return {"loss": fn(logits, targets)}


def scenario_random_3x5x17(fn, ctx):
    logits, targets = _random_logits(ctx.seed(11), (3, 5, 17))
    return {"loss": fn(logits.to(ctx.device), targets.to(ctx.device))}


def scenario_random_1x7x101(fn, ctx):
    logits, targets = _random_logits(ctx.seed(12), (1, 7, 101), scale=1.0)
    return {"loss": fn(logits.to(ctx.device), targets.to(ctx.device))}
