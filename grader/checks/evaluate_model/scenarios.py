"""Scenarios of evaluate_model (section 5.2): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import MoveRecorder, random_loader, tiny_model, verdict_loaders


class ForwardRecorder:
    """Records, for each forward call, whether the model was in training mode and grad was on."""

    def __init__(self, model):
        self.training, self.grad_enabled = [], []
        model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.training.append(bool(module.training))
        self.grad_enabled.append(torch.is_grad_enabled())


def _evaluate(fn, ctx, model, train_loader, val_loader, eval_iter):
    recorder = ForwardRecorder(model)
    model.train()
    torch.manual_seed(0)  # dropout, if the model is (wrongly) left in training mode
    result = fn(model, train_loader, val_loader, ctx.device, eval_iter)
    out = {
        "result": result,
        "train_mode_after": bool(model.training),
        "eval_mode_during": bool(recorder.training) and not any(recorder.training),
        "grad_off_during": bool(recorder.grad_enabled) and not any(recorder.grad_enabled),
    }
    return out


def scenario_tiny_dropout(fn, ctx):
    model = tiny_model(ctx, seed=41, drop_rate=0.5)
    return _evaluate(fn, ctx, model, random_loader(42, 4), random_loader(43, 3), eval_iter=2)


def scenario_verdict_ctx32(fn, ctx):
    model = tiny_model(ctx, seed=44, vocab_size=50257, context_length=32, drop_rate=0.1)
    train_loader, val_loader = verdict_loaders(ctx, context_length=32, chars=4000)
    return _evaluate(fn, ctx, model, train_loader, val_loader, eval_iter=3)


def scenario_device(fn, ctx):
    """The batches of both loaders are moved to the device before they are used."""
    model = tiny_model(ctx, seed=47)
    recorder = MoveRecorder(ctx.device)
    fn(model, recorder.loader("train_loader", random_loader(48, 2)), recorder.loader("val_loader", random_loader(49, 2)),
       ctx.device, 1)
    return {"not_moved": recorder.not_moved()}
