"""Known mistakes in calc_loss_batch: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import torch


def mistake_unflattened(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits, target_batch.to(device))


def mistake_targets_unflattened(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.to(device))


def mistake_inputs_as_targets(input_batch, target_batch, model, device):
    input_batch = input_batch.to(device)
    logits = model(input_batch)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), input_batch.flatten())


def mistake_transposed_targets(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.to(device).T.flatten())


def mistake_hard_coded(input_batch, target_batch, model, device):
    return torch.tensor(10.7940, requires_grad=True)


def mistake_item(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.to(device).flatten()).item()
