"""Exercise 13 (section 5.5): copying one pretrained tensor into a parameter, shape checked."""

import torch


def assign(left, right):
    """A new parameter holding ``right``'s values, after checking it fits where ``left`` is.

    Args:
        left: the model's current parameter (its shape is the one expected).
        right: a tensor of pretrained weights.
    Returns:
        ``torch.nn.Parameter`` with a copy of ``right`` (``right.clone().detach()``), so the
        model does not share memory with the loaded file's tensors.
    Raises:
        ValueError: ``f"Shape mismatch. Left: {left.shape}, Right: {right.shape}"`` when the
            shapes differ (a weight stored transposed, say).

    Steps:
        TODO 1: compare ``left.shape`` and ``right.shape``; raise the ValueError above if they differ.
        TODO 2: return ``torch.nn.Parameter(right.clone().detach())``.
    """
    raise NotImplementedError("assign is not implemented yet")
