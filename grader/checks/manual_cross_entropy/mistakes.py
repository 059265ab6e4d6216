"""Known mistakes in manual_cross_entropy: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import torch


def _target_log_probas(probas, targets):
    return torch.log(torch.gather(probas, -1, targets.unsqueeze(-1)).squeeze(-1))


def mistake_no_negation(logits, targets):
    return torch.mean(_target_log_probas(torch.softmax(logits, dim=-1), targets))


def mistake_sum_not_mean(logits, targets):
    return -torch.sum(_target_log_probas(torch.softmax(logits, dim=-1), targets))


def mistake_softmax_wrong_dim(logits, targets):
    return -torch.mean(_target_log_probas(torch.softmax(logits, dim=1), targets))


def mistake_softmax_batch_dim(logits, targets):
    return -torch.mean(_target_log_probas(torch.softmax(logits, dim=0), targets))


def mistake_no_log(logits, targets):
    probas = torch.softmax(logits, dim=-1)
    return -torch.mean(torch.gather(probas, -1, targets.unsqueeze(-1)).squeeze(-1))


def mistake_hard_coded(logits, targets):
    return torch.tensor(10.7940)


def mistake_item(logits, targets):
    return (-torch.mean(_target_log_probas(torch.softmax(logits, dim=-1), targets))).item()
