"""Exercise 1 (section 5.1.1): text -> token ids."""

import torch


def text_to_token_ids(text, tokenizer):
    """Encode ``text`` into a tensor of token ids with a batch dimension.

    Args:
        text: a Python string, e.g. "Every effort moves you".
        tokenizer: the GPT-2 tokenizer (``reference.get_tokenizer()``, a tiktoken Encoding).
    Returns:
        int64 tensor of shape ``(1, num_tokens)``, e.g. ``[[6109, 3626, 6100, 345]]``.
        ``<|endoftext|>`` in the text must become id 50256, not an error.

    Steps:
        TODO 1: encode the text, allowing the special token '<|endoftext|>'
                (``allowed_special={'<|endoftext|>'}``).
        TODO 2: turn the list of ids into a tensor and add the batch dimension
                (``unsqueeze(0)``): (num_tokens,) -> (1, num_tokens).
    """
    # BEGIN SOLUTION
    encoded = tokenizer.encode(text, allowed_special={"<|endoftext|>"})
    encoded_tensor = torch.tensor(encoded).unsqueeze(0)  # (1, num_tokens)
    return encoded_tensor
    # END SOLUTION
