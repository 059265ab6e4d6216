"""Scenarios of save_checkpoint (section 5.4): a small model and its AdamW after two steps,
saved, then read back the way the book reads it.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..common import random_loader, tiny_model

BOOK_KEYS = ("model_state_dict", "optimizer_state_dict")


def training_steps(model, optimizer, ctx, seed, steps=2) -> list[float]:
    """``steps`` AdamW steps on seeded batches (the chapter's loss, written out: the student
    release has no chapter-5 reference to call); returns the losses."""
    losses = []
    for inputs, targets in random_loader(seed, num_batches=steps):
        optimizer.zero_grad()
        logits = model(inputs.to(ctx.device))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.to(ctx.device).flatten())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def trained_tiny(ctx, seed, steps=2):
    """A small model and its AdamW after ``steps`` optimizer steps on seeded batches."""
    model = tiny_model(ctx, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    training_steps(model, optimizer, ctx, seed + 1, steps)
    return model, optimizer


def same_state(saved, live) -> bool:
    """Whether a loaded state dict holds the same entries and values as a live one."""
    if not isinstance(saved, dict) or set(saved) != set(live):
        return False
    for key, value in live.items():
        other = saved[key]
        if isinstance(value, torch.Tensor):
            if not (isinstance(other, torch.Tensor) and other.shape == value.shape
                    and torch.equal(other.to(value.device), value)):
                return False
        elif isinstance(value, dict):
            if not same_state(other, value):
                return False
        elif isinstance(value, list):
            if not isinstance(other, list) or len(other) != len(value) or not all(
                    same_state(a, b) if isinstance(b, dict) else a == b for a, b in zip(other, value)):
                return False
        elif other != value:
            return False
    return True


def scenario_tiny_adamw(fn, ctx):
    model, optimizer = trained_tiny(ctx, seed=ctx.seed(111))
    with tempfile.TemporaryDirectory(prefix="grader-ckpt-") as folder:
        path = Path(folder) / "model_and_optimizer.pth"
        fn(model, optimizer, str(path))
        if not path.is_file():
            # nothing to read: no value that a mistake which writes something could explain
            return {"written": False, "loads_weights_only": None, "missing_book_keys": None,
                    "model_state": None, "optimizer_state": None}
        try:
            checkpoint, loads = torch.load(path, weights_only=True), True
        except Exception:  # pickled objects: read them anyway (this process wrote them) to say what is in it
            loads = False
            try:
                checkpoint = torch.load(path, weights_only=False)
            except Exception:
                checkpoint = {}
    checkpoint = checkpoint if isinstance(checkpoint, dict) else {}
    return {
        "written": True,
        "loads_weights_only": loads,
        "missing_book_keys": [key for key in BOOK_KEYS if key not in checkpoint],
        "model_state": same_state(checkpoint.get("model_state_dict"), model.state_dict()),
        "optimizer_state": same_state(checkpoint.get("optimizer_state_dict"), optimizer.state_dict()),
    }
