"""Chapter 5, section 5.3: decoding strategies that control randomness.

Temperature scaling (5.3.1), top-k sampling (5.3.2) and ``generate`` (5.3.3,
listing 5.4), which combines them. The names and signatures are the book's.
Shape legend: b = batch size, num_tokens = sequence length, vocab_size = the
model's vocabulary (50,257 for GPT-2; 9 for the toy vocabulary below).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

# The book's toy vocabulary of section 5.3.1 and the next-token logits it samples from.
vocab = {
    "closer": 0,
    "every": 1,
    "effort": 2,
    "forward": 3,
    "inches": 4,
    "moves": 5,
    "pizza": 6,
    "toward": 7,
    "you": 8,
}
inverse_vocab = {v: k for k, v in vocab.items()}
next_token_logits = torch.tensor([4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79])


def softmax_with_temperature(logits, temperature):
    """Softmax of ``logits / temperature`` over the last dimension (section 5.3.1).

    Temperatures above 1 flatten the distribution, below 1 sharpen it.

    Args:
        logits: float tensor ``(..., vocab_size)``.
        temperature: a number > 0.
    Returns:
        Float tensor of the same shape; each row sums to 1.
    Raises:
        ValueError: ``temperature <= 0``.
    """
    if not temperature > 0:  # also catches nan
        raise ValueError(
            f"temperature must be > 0 (got {temperature}); for greedy decoding use generate(..., temperature=0.0)"
        )
    return torch.softmax(logits / temperature, dim=-1)


def sample_token_frequencies(probas, num_samples=1000, seed=123):
    """How often each token id is drawn in ``num_samples`` single draws (section 5.3.1).

    As the book's ``print_sampled_tokens``: ``torch.manual_seed(seed)`` (this
    resets torch's global RNG), then ``num_samples`` calls of
    ``torch.multinomial(probas, num_samples=1)``, counted with ``torch.bincount``.

    Args:
        probas: float tensor ``(vocab_size,)`` of probabilities.
    Returns:
        LongTensor ``(vocab_size,)`` of counts summing to ``num_samples``.
    Raises:
        ValueError: ``probas`` is not one-dimensional.
    """
    if probas.dim() != 1:
        raise ValueError(f"probas must be one-dimensional, (vocab_size,) (got shape {tuple(probas.shape)})")
    torch.manual_seed(seed)
    sample = [torch.multinomial(probas, num_samples=1).item() for _ in range(num_samples)]
    return torch.bincount(torch.tensor(sample, dtype=torch.long), minlength=probas.shape[0])


def print_sampled_tokens(probas, inverse_vocab=inverse_vocab):
    """Print ``"{freq} x {word}"`` for each word of 1,000 seed-123 draws from ``probas`` (section 5.3.1).

    Args:
        probas: float tensor ``(vocab_size,)``.
        inverse_vocab: token id -> word, one entry per id of ``probas``.
    Raises:
        ValueError: ``probas`` is not one-dimensional or does not match ``inverse_vocab``.
    """
    if probas.dim() == 1 and probas.shape[0] != len(inverse_vocab):
        raise ValueError(
            f"probas has {probas.shape[0]} entries but inverse_vocab {len(inverse_vocab)} words: pass one per token id"
        )
    sampled_ids = sample_token_frequencies(probas, num_samples=1000, seed=123)
    for i, freq in enumerate(sampled_ids.tolist()):
        print(f"{freq} x {inverse_vocab[i]}")


def _model_device(model, fallback):
    """The device of the model's first parameter (``fallback`` for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else fallback


def _check_generate_args(idx, max_new_tokens, context_size, temperature, top_k):
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype.is_floating_point or idx.shape[1] == 0:
        got = f"shape {tuple(idx.shape)}, {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be a LongTensor (b, num_tokens) with at least one token (got {got}); "
            "add the batch dimension with idx.unsqueeze(0)"
        )
    if not isinstance(max_new_tokens, Integral) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0 (got {max_new_tokens!r})")
    if not isinstance(context_size, Integral) or context_size < 1:
        raise ValueError(f"context_size must be an integer >= 1 (got {context_size!r})")
    if not isinstance(temperature, Real) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (got {temperature!r}); 0.0 means greedy decoding")
    if top_k is not None and (not isinstance(top_k, Integral) or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1 (got {top_k!r})")


def _keep_top_k(logits, top_k):
    """Set every logit below the ``top_k``-th largest of its row to -inf; ties at the k-th value stay."""
    if top_k > logits.shape[-1]:
        raise ValueError(
            f"top_k={top_k} is larger than the vocabulary ({logits.shape[-1]} tokens): use 1 <= top_k <= vocab_size or None"
        )
    top_logits, _ = torch.topk(logits, top_k)
    min_val = top_logits[:, -1:]  # (b, 1): the k-th largest logit of each row
    return torch.where(logits < min_val, torch.tensor(float("-inf"), device=logits.device), logits)


def _next_token(logits, temperature):
    """``(b, 1)`` ids: sampled from ``softmax(logits / temperature)``, or the argmax when temperature is 0."""
    if temperature > 0.0:
        probs = torch.softmax(logits / temperature, dim=-1)  # (b, vocab_size)
        return torch.multinomial(probs, num_samples=1)
    return torch.argmax(logits, dim=-1, keepdim=True)


@torch.no_grad()  # not inference_mode: its tensors could not be edited in place afterwards
def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Append up to ``max_new_tokens`` tokens to ``idx`` (section 5.3.3, listing 5.4).

    Each step feeds the last ``context_size`` tokens to ``model``, keeps the
    ``top_k`` largest logits of the last position (if ``top_k`` is given; ties at
    the k-th value are kept, as the book's ``<`` does), then samples from
    ``softmax(logits / temperature)`` (``temperature > 0``, torch's global RNG)
    or takes the argmax (``temperature == 0``: greedy, as ``generate_text_simple``).
    Runs without gradients; the model's mode is not changed (call ``model.eval()``
    first to switch dropout off).

    End of sequence (``eos_id``): a row that has produced ``eos_id`` gets
    ``eos_id`` at every later step. When after a step every row has produced it,
    generation stops *without* appending that step. So for ``b == 1`` the result
    is the book's: the eos token is not appended. For ``b > 1`` (where the book's
    ``if idx_next == eos_id`` fails) each row is, with greedy decoding, what the
    book's ``generate`` returns for that row alone, right-padded with ``eos_id``
    to the longest row of the batch.

    Args:
        model: maps ``(b, num_tokens)`` int64 ids to logits ``(b, num_tokens, vocab_size)``.
        idx: LongTensor ``(b, num_tokens)``, ``num_tokens >= 1``; moved to the
            model's device (that of its first parameter).
        max_new_tokens: integer >= 0.
        context_size: integer >= 1, the most tokens the model is given at once.
        temperature: number >= 0; 0.0 means greedy.
        top_k: None, or an integer with ``1 <= top_k <= vocab_size``.
        eos_id: None, or the token id that ends a row.
    Returns:
        LongTensor ``(b, num_tokens + n_generated)`` on the model's device, with
        ``n_generated <= max_new_tokens`` (fewer only when every row ended with eos).
    Raises:
        ValueError: an argument out of range (the message says which).
    """
    _check_generate_args(idx, max_new_tokens, context_size, temperature, top_k)
    idx = idx.to(_model_device(model, fallback=idx.device))
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)  # (b,)

    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]  # crop to the supported context
        logits = model(idx_cond)[:, -1, :]  # (b, vocab_size): last position only
        if top_k is not None:
            logits = _keep_top_k(logits, top_k)
        idx_next = _next_token(logits, temperature)  # (b, 1)
        if eos_id is not None:
            idx_next = torch.where(finished.unsqueeze(1), torch.full_like(idx_next, eos_id), idx_next)
            finished |= idx_next.squeeze(1) == eos_id
            if bool(finished.all()):
                break  # as the book: the step that ends the last row is not appended
        idx = torch.cat((idx, idx_next), dim=1)  # (b, num_tokens + 1)
    return idx
