"""Known mistakes in save_checkpoint: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import torch


def mistake_whole_objects(model, optimizer, path):
    torch.save({"model_state_dict": model, "optimizer_state_dict": optimizer}, path)


def mistake_model_only(model, optimizer, path):
    torch.save({"model_state_dict": model.state_dict()}, path)


def mistake_other_keys(model, optimizer, path):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)


def mistake_writes_nothing(model, optimizer, path):
    pass
