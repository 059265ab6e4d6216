"""Scenarios of assign (section 5.5): a pretrained tensor copied into a parameter's place,
and a tensor of the wrong shape refused.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch


def _tensor(seed, shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def scenario_same_shape(fn, ctx):
    left = torch.nn.Parameter(_tensor(ctx.seed(131), (3, 4)))
    right = _tensor(ctx.seed(132), (3, 4))
    result = fn(left, right)
    return {
        "values": result,
        "is_parameter": isinstance(result, torch.nn.Parameter),
        "trainable": bool(getattr(result, "requires_grad", False)),
        "copied": isinstance(result, torch.Tensor) and result.untyped_storage().data_ptr() != right.untyped_storage().data_ptr(),
    }


def scenario_shape_mismatch(fn, ctx):
    left = torch.nn.Parameter(_tensor(ctx.seed(133), (4, 3)))
    right = _tensor(ctx.seed(134), (3, 4))  # the same numbers of elements, stored transposed
    try:
        fn(left, right)
    except ValueError as exc:
        return {"raised": "ValueError", "names_both_shapes": "4, 3" in str(exc) and "3, 4" in str(exc)}
    return {"raised": "nothing", "names_both_shapes": False}
