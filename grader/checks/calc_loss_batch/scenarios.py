"""Scenarios of calc_loss_batch (section 5.1.3): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import BOOK_INPUTS, BOOK_TARGETS, MoveRecorder, random_loader, tiny_model


def scenario_book_124m(fn, ctx):
    model = ctx.model_124m()
    loss = fn(torch.tensor(BOOK_INPUTS), torch.tensor(BOOK_TARGETS), model, ctx.device)
    return {"loss": loss}


def scenario_tiny_3x8(fn, ctx):
    model = tiny_model(ctx, seed=21)
    model.train()
    loader = random_loader(seed=22, num_batches=1, batch_size=3)
    inputs, targets = next(iter(loader))
    torch.manual_seed(0)
    loss = fn(inputs, targets, model, ctx.device)
    return {"loss": loss, "attached_to_graph": reaches_parameters(loss, model)}


def reaches_parameters(loss, model) -> bool:
    """Whether backpropagating ``loss`` gives a gradient to some parameter of ``model``
    (a tensor merely created with requires_grad=True gives none)."""
    if not (isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1):
        return False
    grads = torch.autograd.grad(loss.sum(), list(model.parameters()), allow_unused=True)
    return any(g is not None for g in grads)


def scenario_tiny_4x5(fn, ctx):
    model = tiny_model(ctx, seed=23, vocab_size=53, context_length=5).eval()
    loader = random_loader(seed=24, num_batches=1, batch_size=4, num_tokens=5, vocab_size=53)
    inputs, targets = next(iter(loader))
    return {"loss": fn(inputs, targets, model, ctx.device)}


def scenario_device(fn, ctx):
    """Both batches are moved to the device before they are used (checked on a CPU too)."""
    model = tiny_model(ctx, seed=25).eval()
    inputs, targets = next(iter(random_loader(seed=26, num_batches=1)))
    recorder = MoveRecorder(ctx.device)
    fn(recorder.tensor("input_batch", inputs), recorder.tensor("target_batch", targets), model, ctx.device)
    return {"not_moved": recorder.not_moved()}
