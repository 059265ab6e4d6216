"""Helpers the exercises' scenarios share: the book's inputs, small seeded models and loaders.

A scenario (``grader/checks/<exercise>/scenarios.py``, a function named ``scenario_<name>``)
is ``scenario(fn, ctx) -> dict`` of plain outputs (tensors, numbers, strings, lists,
bools). The same code runs the student's function in a sandboxed child and, through
``python -m grader regen``, the reference and the known mistakes, whose outputs are frozen
in ``grader/expected/``. Every exercise has the book's input and at least one other seeded
input, so a hard-coded book number fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import io

import torch
from torch.utils.data import DataLoader, TensorDataset

BOOK_INPUTS = [[16833, 3626, 6100], [40, 1107, 588]]  # "every effort moves", "I really like"
BOOK_TARGETS = [[3626, 6100, 345], [1107, 588, 11311]]  # " effort moves you", " really like chocolate"
START_CONTEXT = "Every effort moves you"


def tiny_config(vocab_size=97, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0,
                qkv_bias=False):
    return {
        "vocab_size": vocab_size,
        "context_length": context_length,
        "emb_dim": emb_dim,
        "n_heads": n_heads,
        "n_layers": n_layers,
        "drop_rate": drop_rate,
        "qkv_bias": qkv_bias,
    }


def tiny_model(ctx, seed, **cfg):
    """A small ``GPTModel`` built after ``torch.manual_seed(seed)``, on the context's device."""
    from reference import GPTModel

    torch.manual_seed(seed)
    return GPTModel(tiny_config(**cfg)).to(ctx.device)


def random_loader(seed, num_batches, batch_size=2, num_tokens=8, vocab_size=97, drop_last=False):
    """A fixed-order loader of ``num_batches`` seeded batches of ``(batch_size, num_tokens)`` ids."""
    gen = torch.Generator().manual_seed(seed)
    rows = num_batches * batch_size
    ids = torch.randint(0, vocab_size, (rows, num_tokens + 1), generator=gen)
    dataset = TensorDataset(ids[:, :-1].contiguous(), ids[:, 1:].contiguous())
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=drop_last)


def verdict_loaders(ctx, context_length, batch_size=2, chars=None):
    """The chapter's 90/10 loaders on The Verdict (or its first ``chars`` characters), seed 123."""
    from reference.run import make_loaders

    text = ctx.verdict_text if chars is None else ctx.verdict_text[:chars]
    torch.manual_seed(123)
    return make_loaders(text, context_length, batch_size)


def batch_key(input_batch, target_batch) -> str:
    """A content hash of a batch, for replaying frozen per-batch losses."""
    digest = hashlib.sha256()
    for t in (input_batch, target_batch):
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def rebound(fn, name, replacement):
    """Temporarily bind ``name`` in ``fn``'s module globals (if the module uses that name)."""
    namespace = getattr(fn, "__globals__", {})
    if name not in namespace:
        yield
        return
    old = namespace[name]
    namespace[name] = replacement
    try:
        yield
    finally:
        namespace[name] = old


def capture_stdout(call):
    """Run ``call()`` and return ``(result, printed lines)``."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = call()
    return result, buffer.getvalue().splitlines()
