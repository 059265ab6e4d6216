"""Known mistakes in calc_loss_loader: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

from reference import calc_loss_batch


def _loader_losses(data_loader, model, device, n):
    losses = []
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= n:
            break
        losses.append(calc_loss_batch(input_batch, target_batch, model, device))
    return losses


def mistake_divides_by_loader_length(data_loader, model, device, num_batches=None):
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return sum(l.item() for l in _loader_losses(data_loader, model, device, n)) / len(data_loader)


def mistake_not_clamped(data_loader, model, device, num_batches=None):
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else num_batches
    return sum(l.item() for l in _loader_losses(data_loader, model, device, n)) / n


def mistake_empty_raises(data_loader, model, device, num_batches=None):
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return sum(l.item() for l in _loader_losses(data_loader, model, device, n)) / n


def mistake_returns_tensor(data_loader, model, device, num_batches=None):
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return sum(_loader_losses(data_loader, model, device, n)) / n
