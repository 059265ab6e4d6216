"""Reference implementation of chapter 5 of *Build a Large Language Model From Scratch*.

``python -m reference`` runs the chapter's pretraining on *The Verdict*.
"""

from .data import (
    DATA_DIR,
    DataFileError,
    GPTDatasetV1,
    create_dataloader_v1,
    get_tokenizer,
    load_text,
    verify_all_data,
)
from .decoding import (
    generate,
    inverse_vocab,
    next_token_logits,
    print_sampled_tokens,
    sample_token_frequencies,
    softmax_with_temperature,
    vocab,
)
from .model import (
    GELU,
    GPT_CONFIG_124M,
    FeedForward,
    GPTModel,
    LayerNorm,
    MultiHeadAttention,
    TransformerBlock,
    generate_text_simple,
)
from .pretraining import (
    calc_loss_batch,
    calc_loss_loader,
    evaluate_model,
    generate_and_print_sample,
    manual_cross_entropy,
    perplexity,
    plot_losses,
    text_to_token_ids,
    token_ids_to_text,
    train_model_simple,
)

__all__ = [
    "generate",
    "inverse_vocab",
    "next_token_logits",
    "print_sampled_tokens",
    "sample_token_frequencies",
    "softmax_with_temperature",
    "vocab",
    "DATA_DIR",
    "DataFileError",
    "FeedForward",
    "GELU",
    "GPTDatasetV1",
    "GPTModel",
    "GPT_CONFIG_124M",
    "LayerNorm",
    "MultiHeadAttention",
    "TransformerBlock",
    "calc_loss_batch",
    "calc_loss_loader",
    "create_dataloader_v1",
    "evaluate_model",
    "generate_and_print_sample",
    "generate_text_simple",
    "get_tokenizer",
    "load_text",
    "manual_cross_entropy",
    "perplexity",
    "plot_losses",
    "text_to_token_ids",
    "token_ids_to_text",
    "train_model_simple",
    "verify_all_data",
]
