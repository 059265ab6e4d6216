"""Scenarios of load_weights_into_gpt (section 5.5): a small synthetic checkpoint in GPT-2's
exact Hugging Face safetensors layout (key names, Conv1D weights stored input-first, query,
key and value side by side), loaded into a differently seeded model.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch

from ..common import tiny_model

CONFIG = {"vocab_size": 97, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
          "drop_rate": 0.0, "qkv_bias": True}


def gpt2_layout(model) -> dict:
    """A model's weights as GPT-2's model.safetensors stores them (names and layout; the
    output head is not stored: GPT-2 ties it to the token embedding)."""
    params = {"wte.weight": model.tok_emb.weight, "wpe.weight": model.pos_emb.weight,
              "ln_f.weight": model.final_norm.scale, "ln_f.bias": model.final_norm.shift}
    n = model.pos_emb.weight.shape[0]
    for b, block in enumerate(model.trf_blocks):
        att, ff = block.att, block.ff
        qkv = (att.W_query, att.W_key, att.W_value)
        params.update({
            # Conv1D stores (d_in, d_out): a Linear's weight transposed; q, k, v side by side
            f"h.{b}.attn.c_attn.weight": torch.cat([layer.weight.T for layer in qkv], dim=-1),
            f"h.{b}.attn.c_attn.bias": torch.cat([layer.bias for layer in qkv], dim=-1),
            f"h.{b}.attn.c_proj.weight": att.out_proj.weight.T,
            f"h.{b}.attn.c_proj.bias": att.out_proj.bias,
            f"h.{b}.attn.bias": torch.tril(torch.ones(n, n)).view(1, 1, n, n),  # GPT-2's mask buffer
            f"h.{b}.mlp.c_fc.weight": ff.layers[0].weight.T,
            f"h.{b}.mlp.c_fc.bias": ff.layers[0].bias,
            f"h.{b}.mlp.c_proj.weight": ff.layers[2].weight.T,
            f"h.{b}.mlp.c_proj.bias": ff.layers[2].bias,
            f"h.{b}.ln_1.weight": block.norm1.scale, f"h.{b}.ln_1.bias": block.norm1.shift,
            f"h.{b}.ln_2.weight": block.norm2.scale, f"h.{b}.ln_2.bias": block.norm2.shift,
        })
    return {name: tensor.detach().clone().contiguous() for name, tensor in params.items()}


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten() for t in tensors])


def parameter_groups(gpt) -> dict:
    """The loaded model's parameters, grouped the way a mistake shows (one flat tensor each)."""
    blocks = list(gpt.trf_blocks)
    return {
        "embeddings": _flat([gpt.tok_emb.weight, gpt.pos_emb.weight]),
        "qkv_weights": _flat([layer.weight for b in blocks for layer in (b.att.W_query, b.att.W_key, b.att.W_value)]),
        "qkv_biases": _flat([layer.bias for b in blocks for layer in (b.att.W_query, b.att.W_key, b.att.W_value)]),
        "projections": _flat([p for b in blocks for layer in (b.att.out_proj, b.ff.layers[0], b.ff.layers[2])
                              for p in (layer.weight, layer.bias)]),
        "norms": _flat([p for b in blocks for n in (b.norm1, b.norm2) for p in (n.scale, n.shift)]
                       + [gpt.final_norm.scale, gpt.final_norm.shift]),
        "out_head": gpt.out_head.weight.detach().clone(),
    }


def trained_looking_norms(model, seed: int) -> None:
    """Seeded noise on every LayerNorm's scale and shift: a fresh model's are all ones and zeros,
    the same in any two models, so a norm loaded from the wrong key (or not at all) would not show."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "scale") and hasattr(module, "shift"):
                for p in (module.scale, module.shift):
                    p.add_(0.2 * torch.randn(p.shape, generator=generator).to(p.device))


def scenario_tiny_gpt2(fn, ctx):
    source = tiny_model(ctx, seed=ctx.seed(141), **CONFIG).cpu()
    trained_looking_norms(source, ctx.seed(144))
    params = gpt2_layout(source)
    gpt = tiny_model(ctx, seed=ctx.seed(142), **CONFIG).eval()  # other weights until loaded
    fn(gpt, {name: tensor.to(ctx.device) for name, tensor in params.items()})
    idx = torch.randint(0, CONFIG["vocab_size"], (2, 8), generator=torch.Generator().manual_seed(ctx.seed(143)))
    with torch.no_grad():
        logits = gpt.to(ctx.device)(idx.to(ctx.device))
    return {"logits": logits, **parameter_groups(gpt)}
