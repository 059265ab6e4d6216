"""Exercise 2 (section 5.1.1): token ids -> text."""


def token_ids_to_text(token_ids, tokenizer):
    """Decode a batch of one sequence of token ids back into a string.

    Args:
        token_ids: int64 tensor of shape ``(1, num_tokens)``.
        tokenizer: the GPT-2 tokenizer (a tiktoken Encoding).
    Returns:
        The decoded string of all ``num_tokens`` tokens.

    Steps:
        TODO 1: remove the batch dimension (``squeeze(0)``): (1, num_tokens) -> (num_tokens,).
        TODO 2: decode the list of ids (``tokenizer.decode(ids.tolist())``).
    """
    # BEGIN SOLUTION
    flat = token_ids.squeeze(0)  # (num_tokens,)
    return tokenizer.decode(flat.tolist())
    # END SOLUTION
