"""Known mistakes in load_weights_into_gpt: one loader with a switch per mistake.

``python -m grader regen`` runs the scenarios on each ``mistake_<id>`` and freezes their
outputs; a student's output that matches one is explained by the message of
``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import functools

import torch

from reference import assign


def _loader(gpt, params, *, transpose=True, transpose_qkv=True, split_axis=-1, biases=True,
            tie_head=True, swap_norms=False):
    def t(weight, on=True):
        return weight.T if on else weight

    gpt.pos_emb.weight = assign(gpt.pos_emb.weight, params["wpe.weight"])
    gpt.tok_emb.weight = assign(gpt.tok_emb.weight, params["wte.weight"])
    for b, block in enumerate(gpt.trf_blocks):
        att, ff = block.att, block.ff
        chunks = torch.chunk(params[f"h.{b}.attn.c_attn.weight"], 3, axis=split_axis)
        for layer, w in zip((att.W_query, att.W_key, att.W_value), chunks):
            layer.weight = assign(layer.weight, t(w, transpose and transpose_qkv))
        pairs = [(att.out_proj, "attn.c_proj"), (ff.layers[0], "mlp.c_fc"), (ff.layers[2], "mlp.c_proj")]
        for layer, name in pairs:
            layer.weight = assign(layer.weight, t(params[f"h.{b}.{name}.weight"], transpose))
        if biases:
            for layer, bias in zip((att.W_query, att.W_key, att.W_value),
                                   torch.chunk(params[f"h.{b}.attn.c_attn.bias"], 3, axis=-1)):
                layer.bias = assign(layer.bias, bias)
            for layer, name in pairs:
                layer.bias = assign(layer.bias, params[f"h.{b}.{name}.bias"])
        for norm, name in ((block.norm1, "ln_1"), (block.norm2, "ln_2")):
            weight, bias = params[f"h.{b}.{name}.weight"], params[f"h.{b}.{name}.bias"]
            norm.scale = assign(norm.scale, bias if swap_norms else weight)
            norm.shift = assign(norm.shift, weight if swap_norms else bias)
    gpt.final_norm.scale = assign(gpt.final_norm.scale, params["ln_f.weight"])
    gpt.final_norm.shift = assign(gpt.final_norm.shift, params["ln_f.bias"])
    if tie_head:
        gpt.out_head.weight = assign(gpt.out_head.weight, params["wte.weight"])


mistake_not_transposed = functools.partial(_loader, transpose=False)
mistake_attention_not_transposed = functools.partial(_loader, transpose_qkv=False)
mistake_split_wrong_axis = functools.partial(_loader, split_axis=0)
mistake_biases_not_loaded = functools.partial(_loader, biases=False)
mistake_head_not_tied = functools.partial(_loader, tie_head=False)
mistake_norms_swapped = functools.partial(_loader, swap_norms=True)
