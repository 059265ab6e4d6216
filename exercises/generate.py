"""Exercise 10 (section 5.3.3, listing 5.4): decoding with temperature, top-k and an end token."""

import torch


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Append up to ``max_new_tokens`` generated tokens to each sequence of ``idx``.

    Args:
        model: a ``GPTModel`` (token ids ``(batch, num_tokens)`` -> logits
            ``(batch, num_tokens, vocab_size)``).
        idx: int64 tensor ``(batch, num_tokens)`` of prompt token ids (on any device:
            move it to the model's, ``next(model.parameters()).device``).
        max_new_tokens: how many tokens to generate at most.
        context_size: the longest context the model supports; feed it only the last
            ``context_size`` tokens.
        temperature: 0.0 -> greedy (``argmax``, deterministic); > 0 -> divide the
            logits by it and sample with ``torch.multinomial``.
        top_k: None, or keep only the ``top_k`` largest logits of each row (the others
            become ``-inf``, so their probability is exactly 0).
        eos_id: None, or a token id that ends a sequence.
    Returns:
        int64 tensor ``(batch, num_tokens + n)``, n <= max_new_tokens, on the model's
        device. With ``eos_id``: a sequence that has produced it gets ``eos_id`` at every
        later step, and generation stops as soon as every sequence has produced it
        (that last step is not appended: for one sequence this is the book's
        ``if idx_next == eos_id: break``, which fails for a batch of several).
        No autograd graph is built.

    Steps:
        TODO 1: no gradients (``with torch.no_grad():``); move ``idx`` to the model's device.
        TODO 2: for each step, crop the context to the last ``context_size`` tokens and
                keep the logits of the last position: ``(batch, vocab_size)``.
        TODO 3: top-k: ``torch.topk(logits, top_k)``; set the logits below the k-th
                largest of each row to ``-inf`` (``torch.where``).
        TODO 4: temperature > 0: ``torch.softmax(logits / temperature, dim=-1)`` and
                ``torch.multinomial(probs, num_samples=1)``; else ``argmax(..., keepdim=True)``.
        TODO 5: eos: keep a per-row "finished" mask; finished rows get ``eos_id``; stop when
                all rows are finished, before appending; else append ``(batch, 1)`` to ``idx``.
    """
    raise NotImplementedError("generate is not implemented yet")
