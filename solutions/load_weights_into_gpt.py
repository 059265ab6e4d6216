"""Exercise 14 (section 5.5): OpenAI's GPT-2 weights into the chapter's GPTModel."""

import torch

# The reference version of the other exercise, so a mistake there costs points
# in that exercise only.
from reference import assign


def load_weights_into_gpt(gpt, params):
    """Copy GPT-2's pretrained weights (Hugging Face ``model.safetensors`` layout) into ``gpt``.

    Args:
        gpt: a ``GPTModel`` built with the matching configuration (GPT-2: context 1024,
            ``qkv_bias=True``); changed in place.
        params: dict of tensors, as ``safetensors.torch.load_file`` returns it, with d = emb_dim:
            ``wte.weight`` (vocab_size, d), ``wpe.weight`` (context_length, d), and per block b:
            ``h.{b}.ln_1.weight``/``.bias`` (d,), ``h.{b}.attn.c_attn.weight`` (d, 3d) and
            ``.bias`` (3d,): query, key and value side by side; ``h.{b}.attn.c_proj.weight``
            (d, d), ``.bias`` (d,); ``h.{b}.ln_2.*``; ``h.{b}.mlp.c_fc.weight`` (d, 4d),
            ``.bias`` (4d,); ``h.{b}.mlp.c_proj.weight`` (4d, d), ``.bias`` (d,); ``ln_f.weight``/``.bias``.
            GPT-2's Conv1D layers store weights input-first, (d_in, d_out): a ``nn.Linear``
            holds (d_out, d_in), so they are transposed (``.T``).
    Returns:
        None.

    Steps:
        TODO 1: positional and token embeddings: ``gpt.pos_emb.weight = assign(gpt.pos_emb.weight,
                params["wpe.weight"])``, the same for ``tok_emb`` and ``wte.weight``.
        TODO 2: for each block: split ``c_attn`` weight and bias into query, key and value with
                ``torch.chunk(..., 3, axis=-1)``; assign the weights transposed to
                ``att.W_query``/``W_key``/``W_value`` and the biases as they are.
        TODO 3: ``attn.c_proj`` -> ``att.out_proj``; ``mlp.c_fc`` -> ``ff.layers[0]``;
                ``mlp.c_proj`` -> ``ff.layers[2]`` (weights transposed, biases as they are);
                ``ln_1``/``ln_2`` weight and bias -> ``norm1``/``norm2`` ``scale`` and ``shift``.
        TODO 4: ``ln_f`` -> ``final_norm``; the output head reuses the token embedding
                (weight tying): ``gpt.out_head.weight = assign(gpt.out_head.weight, params["wte.weight"])``.
    """
    # BEGIN SOLUTION
    gpt.pos_emb.weight = assign(gpt.pos_emb.weight, params["wpe.weight"])
    gpt.tok_emb.weight = assign(gpt.tok_emb.weight, params["wte.weight"])

    for b, block in enumerate(gpt.trf_blocks):
        q_w, k_w, v_w = torch.chunk(params[f"h.{b}.attn.c_attn.weight"], 3, axis=-1)
        block.att.W_query.weight = assign(block.att.W_query.weight, q_w.T)
        block.att.W_key.weight = assign(block.att.W_key.weight, k_w.T)
        block.att.W_value.weight = assign(block.att.W_value.weight, v_w.T)

        q_b, k_b, v_b = torch.chunk(params[f"h.{b}.attn.c_attn.bias"], 3, axis=-1)
        block.att.W_query.bias = assign(block.att.W_query.bias, q_b)
        block.att.W_key.bias = assign(block.att.W_key.bias, k_b)
        block.att.W_value.bias = assign(block.att.W_value.bias, v_b)

        block.att.out_proj.weight = assign(block.att.out_proj.weight, params[f"h.{b}.attn.c_proj.weight"].T)
        block.att.out_proj.bias = assign(block.att.out_proj.bias, params[f"h.{b}.attn.c_proj.bias"])

        block.ff.layers[0].weight = assign(block.ff.layers[0].weight, params[f"h.{b}.mlp.c_fc.weight"].T)
        block.ff.layers[0].bias = assign(block.ff.layers[0].bias, params[f"h.{b}.mlp.c_fc.bias"])
        block.ff.layers[2].weight = assign(block.ff.layers[2].weight, params[f"h.{b}.mlp.c_proj.weight"].T)
        block.ff.layers[2].bias = assign(block.ff.layers[2].bias, params[f"h.{b}.mlp.c_proj.bias"])

        block.norm1.scale = assign(block.norm1.scale, params[f"h.{b}.ln_1.weight"])
        block.norm1.shift = assign(block.norm1.shift, params[f"h.{b}.ln_1.bias"])
        block.norm2.scale = assign(block.norm2.scale, params[f"h.{b}.ln_2.weight"])
        block.norm2.shift = assign(block.norm2.shift, params[f"h.{b}.ln_2.bias"])

    gpt.final_norm.scale = assign(gpt.final_norm.scale, params["ln_f.weight"])
    gpt.final_norm.shift = assign(gpt.final_norm.shift, params["ln_f.bias"])
    gpt.out_head.weight = assign(gpt.out_head.weight, params["wte.weight"])
    # END SOLUTION
