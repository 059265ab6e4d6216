"""Known mistakes in load_checkpoint: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import torch


def mistake_optimizer_not_restored(path, model, optimizer, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    return checkpoint


def mistake_weights_only_false(path, model, optimizer, device):
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint


def mistake_model_not_restored(path, model, optimizer, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint


def mistake_no_map_location(path, model, optimizer, device):
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint
