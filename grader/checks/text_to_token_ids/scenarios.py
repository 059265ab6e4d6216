"""Scenarios of text_to_token_ids (section 5.1.1): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import START_CONTEXT


def scenario_book(fn, ctx):
    return {"ids": fn(START_CONTEXT, ctx.tokenizer)}


def scenario_endoftext(fn, ctx):
    return {"ids": fn("It was<|endoftext|>The Verdict", ctx.tokenizer)}


def scenario_verdict_slice(fn, ctx):
    start = int(torch.randint(0, 19000, (1,), generator=torch.Generator().manual_seed(ctx.seed(5))))
    return {"ids": fn(ctx.verdict_text[start : start + 300], ctx.tokenizer)}
