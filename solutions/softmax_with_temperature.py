"""Exercise 9 (section 5.3.1): temperature scaling."""

import torch


def softmax_with_temperature(logits, temperature):
    """Probabilities of the next token, sharpened or flattened by a temperature.

    Args:
        logits: float tensor ``(..., vocab_size)``, e.g. ``(vocab_size,)`` for one
            position or ``(batch, vocab_size)`` for the last position of each sequence.
        temperature: a positive float. Below 1 the distribution gets sharper (1 -> the
            plain softmax; near 0 -> almost all mass on the largest logit), above 1 flatter.
    Returns:
        Float tensor of the same shape as ``logits``: probabilities over the last
        (vocabulary) dimension, each row summing to 1.

    Steps:
        TODO 1: divide the logits by the temperature (before the softmax: dividing the
                probabilities afterwards changes nothing once they are renormalized).
        TODO 2: softmax over the last dimension (``dim=-1``).
    """
    # BEGIN SOLUTION
    scaled_logits = logits / temperature
    return torch.softmax(scaled_logits, dim=-1)
    # END SOLUTION
