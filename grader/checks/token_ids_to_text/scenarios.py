"""Scenarios of token_ids_to_text (section 5.1.1): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch


BOOK_GREEDY_IDS = [[6109, 3626, 6100, 345, 34245, 5139, 2492, 25405, 17434, 17853, 5308, 3398, 13174, 43071]]


def scenario_book(fn, ctx):
    return {"text": fn(torch.tensor(BOOK_GREEDY_IDS), ctx.tokenizer)}


def scenario_endoftext(fn, ctx):
    ids = ctx.tokenizer.encode("the end.<|endoftext|>A new story", allowed_special="all")
    return {"text": fn(torch.tensor([ids]), ctx.tokenizer)}


def scenario_random_ids(fn, ctx):
    ids = torch.randint(0, 50256, (1, 23), generator=torch.Generator().manual_seed(ctx.seed(7)))
    return {"text": fn(ids, ctx.tokenizer)}


def scenario_one_token(fn, ctx):
    return {"text": fn(torch.tensor([[40]]), ctx.tokenizer)}  # "I"
