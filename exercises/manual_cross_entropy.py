"""Exercise 3 (section 5.1.2): cross-entropy by hand, in the book's six steps."""

import torch


def manual_cross_entropy(logits, targets):
    """The average negative log-probability of the target tokens.

    Step 1 of the book (the model computing ``logits``) is already done.

    Args:
        logits: float32 tensor ``(batch, num_tokens, vocab_size)``.
        targets: int64 tensor ``(batch, num_tokens)`` of target token ids.
    Returns:
        0-dim float32 tensor, e.g. ``tensor(10.7940)`` for the book's untrained model.
        It equals ``torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())``;
        here you compute it step by step to see what that function does.

    Steps:
        TODO 2: softmax over the vocabulary dimension -> probabilities (batch, num_tokens, vocab_size).
        TODO 3: pick each target token's probability -> (batch, num_tokens)
                (``torch.gather`` along the last dimension, or indexing).
        TODO 4: take the logarithm.
        TODO 5: average over all tokens of all sequences.
        TODO 6: negate, so that lower is better.
    """
    raise NotImplementedError("manual_cross_entropy is not implemented yet")
