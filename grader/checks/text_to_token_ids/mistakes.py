"""Known mistakes in text_to_token_ids: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import torch


def mistake_no_batch_dim(text, tokenizer):
    return torch.tensor(tokenizer.encode(text, allowed_special={"<|endoftext|>"}))


def mistake_special_not_allowed(text, tokenizer):
    return torch.tensor(tokenizer.encode(text)).unsqueeze(0)


def mistake_special_as_text(text, tokenizer):
    return torch.tensor(tokenizer.encode_ordinary(text)).unsqueeze(0)
