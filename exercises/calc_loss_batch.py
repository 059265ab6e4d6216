"""Exercise 4 (section 5.1.3): the loss of one batch."""

import torch


def calc_loss_batch(input_batch, target_batch, model, device):
    """Cross-entropy of the model's predictions for one batch.

    Args:
        input_batch: int64 tensor ``(batch, num_tokens)`` of input token ids.
        target_batch: int64 tensor ``(batch, num_tokens)``, the inputs shifted by one.
        model: a ``GPTModel`` (or any module mapping ids to logits
            ``(batch, num_tokens, vocab_size)``), already on ``device``.
        device: ``torch.device`` or string such as "cpu" or "cuda".
    Returns:
        0-dim float tensor on ``device``, still attached to the autograd graph
        (training calls ``loss.backward()`` on it).

    Steps:
        TODO 1: move both batches to ``device``.
        TODO 2: run the model on the inputs -> logits (batch, num_tokens, vocab_size).
        TODO 3: flatten logits to (batch * num_tokens, vocab_size) and targets to
                (batch * num_tokens,), then ``torch.nn.functional.cross_entropy``.
    """
    raise NotImplementedError("calc_loss_batch is not implemented yet")
