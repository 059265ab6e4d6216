"""Known mistakes in token_ids_to_text: typical wrong versions, one function ``mistake_<id>`` each.

``python -m grader regen`` runs the scenarios on each and freezes their outputs; a student's
output that matches one is explained by the message of ``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations



def mistake_first_token_only(token_ids, tokenizer):
    return tokenizer.decode([token_ids[0, 0].item()])


def mistake_drops_last_token(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0)[:-1].tolist())


def mistake_drops_first_token(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0)[1:].tolist())


def mistake_squeeze_all(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze().tolist())
