"""Reference implementation of chapter 5 of *Build a Large Language Model From Scratch*.

``python -m reference`` runs the chapter's pretraining on *The Verdict*;
sections 5.3-5.4 are in decoding.py and checkpoints.py.
"""

from .checkpoints import load_checkpoint, read_checkpoint, save_checkpoint

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
    TrainingState,
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
    "DATA_DIR",
    "DataFileError",
    "FeedForward",
    "GELU",
    "GPTDatasetV1",
    "GPTModel",
    "GPT_CONFIG_124M",
    "LayerNorm",
    "MultiHeadAttention",
    "TrainingState",
    "TransformerBlock",
    "calc_loss_batch",
    "calc_loss_loader",
    "create_dataloader_v1",
    "evaluate_model",
    "generate",
    "generate_and_print_sample",
    "generate_text_simple",
    "get_tokenizer",
    "inverse_vocab",
    "load_checkpoint",
    "load_text",
    "manual_cross_entropy",
    "next_token_logits",
    "perplexity",
    "plot_losses",
    "print_sampled_tokens",
    "read_checkpoint",
    "sample_token_frequencies",
    "save_checkpoint",
    "softmax_with_temperature",
    "text_to_token_ids",
    "token_ids_to_text",
    "train_model_simple",
    "verify_all_data",
    "vocab",
]
