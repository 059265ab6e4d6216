"""Known mistakes in softmax_with_temperature: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import torch


def mistake_after_softmax(logits, temperature):
    return torch.softmax(logits, dim=-1) / temperature


def mistake_multiplied(logits, temperature):
    return torch.softmax(logits * temperature, dim=-1)


def mistake_ignored(logits, temperature):
    return torch.softmax(logits, dim=-1)


def mistake_wrong_dim(logits, temperature):
    return torch.softmax(logits / temperature, dim=0)
