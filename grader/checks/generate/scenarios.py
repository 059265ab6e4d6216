"""Scenarios of generate (section 5.3.3): greedy and sampled decoding on the untrained 124M
model and on small seeded models; top-k at its edges (k = 1, ties at the k-th logit); an
end token in a batch where one sequence finishes first.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import tiny_model


class TableModel(torch.nn.Module):
    """A stand-in language model whose next-token logits depend on the last token only:
    ``model(idx)[:, t, :] = table[idx[:, t]]``, so the tokens it favours are known exactly."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32))  # (vocab, vocab)

    def forward(self, idx):  # (b, num_tokens) -> (b, num_tokens, vocab_size)
        return self.table[idx]


class GradRecorder:
    """Records, for each forward call, whether gradients were on."""

    def __init__(self, model):
        self.grad_enabled = []
        model.register_forward_pre_hook(lambda module, args: self.grad_enabled.append(torch.is_grad_enabled()))

    def graph_free(self, result) -> bool:
        built = any(self.grad_enabled) or (isinstance(result, torch.Tensor) and result.requires_grad)
        return bool(self.grad_enabled) and not built


def peaked(model, scale=8.0):
    """The model with its output head scaled: logits of several units, as a trained model's,
    so that the temperature and top-k visibly change what is sampled (an untrained small
    model's logits are near zero, its distribution almost flat)."""
    with torch.no_grad():
        model.out_head.weight.mul_(scale)
    return model


def _prompt(seed, shape, vocab_size=97):
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def _run(fn, model, idx, max_new_tokens, context_size, seed=None, **options):
    if seed is not None:
        torch.manual_seed(seed)
    return fn(model, idx, max_new_tokens, context_size, **options)


def scenario_greedy_124m(fn, ctx):
    """The untrained 124M model continues 'Every effort moves you' (ids 6109, 3626, 6100, 345)."""
    idx = torch.tensor([[6109, 3626, 6100, 345]])
    return {"ids": _run(fn, ctx.model_124m(), idx, max_new_tokens=4, context_size=256)}


def scenario_greedy_long_prompt(fn, ctx):
    model = tiny_model(ctx, seed=ctx.seed(101)).eval()  # context_length 8
    recorder = GradRecorder(model)
    ids = _run(fn, model, _prompt(ctx.seed(102), (2, 12)), max_new_tokens=6, context_size=8)
    return {"ids": ids, "graph_free": recorder.graph_free(ids)}


def scenario_sampled(fn, ctx):
    model = peaked(tiny_model(ctx, seed=ctx.seed(103)).eval())
    ids = _run(fn, model, _prompt(ctx.seed(104), (1, 5)), max_new_tokens=10, context_size=8, seed=ctx.seed(123),
               temperature=1.4, top_k=25)
    return {"ids": ids}


def scenario_sampled_batch(fn, ctx):
    model = peaked(tiny_model(ctx, seed=ctx.seed(105)).eval())
    ids = _run(fn, model, _prompt(ctx.seed(106), (2, 4)), max_new_tokens=8, context_size=8, seed=ctx.seed(7), temperature=0.8)
    return {"ids": ids}


def scenario_top_k_1(fn, ctx):
    model = peaked(tiny_model(ctx, seed=ctx.seed(107)).eval())
    prompt = _prompt(ctx.seed(108), (2, 3))
    sampled = _run(fn, model, prompt, max_new_tokens=6, context_size=8, seed=ctx.seed(9), temperature=1.5, top_k=1)
    return {"ids": sampled}


def scenario_top_k_ties(fn, ctx):
    # every row: one logit of 2.0, three tied at 1.0, the rest lower; top_k=2 keeps the 2.0 and
    # every logit equal to the 2nd largest (the book's `logits < min_val`), i.e. four tokens
    row = torch.tensor([2.0, 1.0, 1.0, 1.0, 0.5, -1.0])
    table = torch.stack([row.roll(i) for i in range(6)])
    ids = _run(fn, TableModel(table), torch.tensor([[0]]), max_new_tokens=30, context_size=4, seed=ctx.seed(5),
               temperature=1.0, top_k=2)
    return {"ids": ids}


def _chain_model():
    """Greedy chain over 8 tokens: each token's favourite next token is the following one; 7 is the end."""
    table = torch.full((8, 8), -1.0)
    for token in range(8):
        table[token, min(token + 1, 7)] = 4.0
    return TableModel(table)


def scenario_eos_batch(fn, ctx):
    # row 0 reaches the end token (7) after 3 steps, row 1 after 6
    idx = torch.tensor([[0, 4], [0, 1]])
    return {"ids": _run(fn, _chain_model(), idx, max_new_tokens=10, context_size=4, eos_id=7)}


def scenario_eos_single(fn, ctx):
    idx = torch.tensor([[3, 4]])
    return {"ids": _run(fn, _chain_model(), idx, max_new_tokens=10, context_size=4, eos_id=7)}
