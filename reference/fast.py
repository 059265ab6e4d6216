"""``python -m reference --fast``: the chapter's model and data with faster arithmetic.

The model is the book's ``GPTModel``, built exactly as the faithful run builds it
(same seed, same weights, same state dict: checkpoints of either run load into the
other); then its modules are switched, in place, to subclasses whose ``forward``
computes the same function with fused PyTorch kernels:

- ``MultiHeadAttention`` -> ``torch.nn.functional.scaled_dot_product_attention``
  with ``is_causal=True`` (one kernel instead of matmul, mask, softmax, dropout, matmul);
- ``LayerNorm`` -> ``torch.nn.functional.layer_norm`` (one kernel instead of five);
- ``GELU`` -> ``torch.nn.functional.gelu(approximate="tanh")`` (one kernel instead of seven);
- ``nn.Dropout(p=0)`` -> ``nn.Identity`` (no random numbers drawn for nothing);
- on CUDA, the forward pass runs under bf16 autocast.

The optimizer is AdamW with ``fused=True`` (one kernel per step on CPU and CUDA).
The results differ from the book's in the last bits of every operation (on CUDA,
in bf16's 8 bits of mantissa): over the first epoch the printed losses are still the
book's to 3 decimals on CPU, over 10 epochs they drift. The run says so on stderr.
Each choice was measured on the kit's 2-core CPU (docs/_drafts/speed.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import GELU, GPTModel, LayerNorm, MultiHeadAttention

NOTICE = ("--fast: fused kernels and fused AdamW{extra}; the numbers are close to the book's, "
          "not equal: for the book's exact run leave out --fast")


class SDPAttention(MultiHeadAttention):
    """The book's causal multi-head attention computed by ``scaled_dot_product_attention``.

    Same parameters (W_query, W_key, W_value, out_proj) and mask buffer (kept, unused,
    so that the state dict stays the book's). Dropout on the attention weights is
    applied by the kernel, with the module's rate, in training mode only.
    """

    def forward(self, x):
        b, num_tokens, _ = x.shape
        # (b, num_tokens, d_out) -> (b, num_heads, num_tokens, head_dim)
        queries, keys, values = (
            proj(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
            for proj in (self.W_query, self.W_key, self.W_value)
        )
        dropout_p = self.dropout.p if self.training else 0.0
        context = F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p, is_causal=True)
        # (b, num_heads, num_tokens, head_dim) -> (b, num_tokens, d_out)
        return self.out_proj(context.transpose(1, 2).reshape(b, num_tokens, self.d_out))


class FusedLayerNorm(LayerNorm):
    """The book's LayerNorm (biased variance, eps 1e-5) as one ``F.layer_norm`` kernel."""

    def forward(self, x):
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


class TanhGELU(GELU):
    """The book's tanh-approximated GELU as one ``F.gelu`` kernel."""

    def forward(self, x):
        return F.gelu(x, approximate="tanh")


class AutocastGPTModel(GPTModel):
    """GPTModel whose forward runs under bf16 autocast on CUDA; the logits it returns are
    float32, so that the loss (computed by the caller, outside autocast) is float32 too."""

    def forward(self, in_idx):
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            logits = super().forward(in_idx)
        return logits.float()


FAST_CLASSES = {MultiHeadAttention: SDPAttention, LayerNorm: FusedLayerNorm, GELU: TanhGELU}


def speed_up_model(model: GPTModel, device) -> GPTModel:
    """Switch the book's modules of ``model`` to their fused equivalents, in place; returns ``model``.

    No parameter is created, changed or re-initialised, and no random number is
    drawn: call it after building the model as the book does.
    """
    for module in list(model.modules()):
        fast_class = FAST_CLASSES.get(type(module))
        if fast_class is not None:
            module.__class__ = fast_class  # same attributes, parameters and buffers; faster forward
        if isinstance(module, MultiHeadAttention):
            continue  # its dropout rate is passed to the kernel, never called
        for child_name, child in module.named_children():
            if isinstance(child, nn.Dropout) and child.p == 0:
                setattr(module, child_name, nn.Identity())
    if torch.device(device).type == "cuda" and type(model) is GPTModel:
        model.__class__ = AutocastGPTModel
        torch.backends.cuda.matmul.allow_tf32 = True  # what autocast leaves in float32
    return model


def fast_optimizer(model, lr, weight_decay):
    """AdamW with the book's settings, as one fused kernel per step."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, and a container's CPU quota (cgroup v2 cpu.max).

    ``torch.get_num_threads()`` counts the machine's cores, which in a container
    limited to 2 CPUs of a 64-core host starts 32 threads that fight for 2.
    """
    import os

    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def fit_threads(load_average=None) -> tuple[int, str]:
    """One torch thread per CPU that is free: the available CPUs less the load other
    processes put on them (the 1-minute load average), at least 1, at most torch's default.

    On a busy machine two threads that wait for each other at every operation's end
    cost more than they gain: measured on the kit's shared 2-core machine (load
    average 6-7), 20 tokens of greedy sampling from the 124M model took 15-31 s with
    1 thread and 119-152 s with 2 (5-6 s of CPU against 36-38 s). The number of
    threads does not change a result there (1 and 2 threads: bit for bit equal).
    Returns ``(threads, why)``.
    """
    import os

    cpus = available_cpus()
    load = os.getloadavg()[0] if load_average is None and hasattr(os, "getloadavg") else (load_average or 0.0)
    threads = max(1, min(torch.get_num_threads(), cpus - round(load)))
    torch.set_num_threads(threads)
    return threads, f"{cpus} CPUs, load average {load:.1f}"
