"""Scenarios of load_checkpoint (section 5.4, exercise 5.4): a checkpoint of a small model
and its AdamW, loaded into a fresh model and optimizer that then train on.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import torch

from ..common import tiny_model
from ..save_checkpoint.scenarios import same_state, trained_tiny, training_steps


@contextlib.contextmanager
def recorded_torch_load(calls: list):
    """``torch.load`` that records the keyword arguments of each call (weights_only, map_location)."""
    original = torch.load

    def load(*args, **kwargs):
        calls.append(dict(kwargs))
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def same_device(map_location, device) -> bool:
    """Whether torch.load's ``map_location`` sends the tensors to ``device`` (a device or its name)."""
    if isinstance(map_location, (str, torch.device)):
        try:
            return torch.device(map_location).type == torch.device(device).type
        except RuntimeError:
            return False
    return False


def default_weights_only() -> bool:
    """torch.load's default for weights_only (True since torch 2.6)."""
    import inspect

    default = inspect.signature(torch.serialization.load).parameters["weights_only"].default
    return default is None or bool(default)


def scenario_resume_tiny(fn, ctx):
    saved_model, saved_optimizer = trained_tiny(ctx, seed=ctx.seed(121))
    model = tiny_model(ctx, seed=ctx.seed(122))  # other weights, and a fresh AdamW without state
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    calls = []
    with tempfile.TemporaryDirectory(prefix="grader-ckpt-") as folder:
        path = Path(folder) / "model_and_optimizer.pth"
        torch.save({"model_state_dict": saved_model.state_dict(),
                    "optimizer_state_dict": saved_optimizer.state_dict()}, path)
        with recorded_torch_load(calls):
            returned = fn(str(path), model, optimizer, ctx.device)
    weights_only = [call.get("weights_only", default_weights_only()) for call in calls]
    return {
        "model_restored": same_state(model.state_dict(), saved_model.state_dict()),
        "optimizer_restored": same_state(optimizer.state_dict(), saved_optimizer.state_dict()),
        "weights_only": bool(weights_only) and all(w is True for w in weights_only),
        "returned": isinstance(returned, dict) and {"model_state_dict", "optimizer_state_dict"} <= set(returned),
        # where the tensors were read to: what makes a GPU checkpoint load on a CPU-only machine
        "map_location": bool(calls) and all(same_device(call.get("map_location"), ctx.device) for call in calls),
        # exercise 5.4: two more steps continue the saved run
        "continued_losses": training_steps(model, optimizer, ctx, seed=ctx.seed(123)),
    }
