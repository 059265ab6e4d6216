"""``python -m reference generate | gpt2-losses | download``: sections 5.3-5.5 on the command line.

- ``generate``: text from the chapter's trained checkpoint (``--checkpoint DIR``)
  or from OpenAI's GPT-2 (``--weights gpt2-small``, the default), with the
  book's sampling settings for each;
- ``gpt2-losses``: exercise 5.5, GPT-2's training and validation loss on The Verdict;
- ``download``: fetch a GPT-2 ``model.safetensors`` and print where it is.

Every failure is one line, ``python -m reference: error: ...``, exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .run import CHECKPOINT_FILE, PROG, ArgumentParser, UsageError, make_loaders, report_error, resolve_device

PROMPT = "Every effort moves you"
# the book's sampling settings: for GPT-2 (section 5.5) and for the chapter's trained model (section 5.3.3)
GPT2_SAMPLING = {"max_new_tokens": 25, "top_k": 50, "temperature": 1.5, "seed": 123}
CHECKPOINT_SAMPLING = {"max_new_tokens": 15, "top_k": 25, "temperature": 1.4, "seed": 123}
DEFAULT_WEIGHTS = "gpt2-small"
DEFAULT_MODELS_DIR = Path("gpt2")


def _add_weights_options(p, weights_file=True):
    from .gpt2 import SHORT_NAMES

    p.add_argument("--weights", choices=SHORT_NAMES, default=None,
                   help=f"OpenAI's GPT-2 of this size (default {DEFAULT_WEIGHTS})")
    if weights_file:
        p.add_argument("--weights-file", type=Path, metavar="PATH", default=None,
                       help="a model.safetensors of that size to use as it is, instead of downloading")
    p.add_argument("--models-dir", type=Path, metavar="DIR", default=DEFAULT_MODELS_DIR,
                   help="where downloads are kept: DIR/<size>/model.safetensors (default ./gpt2)")


def _device_option(p):
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="default cpu: the book's numbers are the CPU's (sampling on a GPU draws other tokens)")


def generate_parser():
    p = ArgumentParser(prog=f"{PROG} generate",
                       description="Generate text from OpenAI's GPT-2 or from a checkpoint of the chapter's training.")
    _add_weights_options(p)
    p.add_argument("--checkpoint", type=Path, metavar="DIR", default=None,
                   help=f"instead of GPT-2: DIR/{CHECKPOINT_FILE} of a run (or that file itself)")
    p.add_argument("--prompt", default=PROMPT, help=f"default {PROMPT!r}")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="default 25 for GPT-2, 15 for a checkpoint (the book's)")
    p.add_argument("--temperature", type=float, default=None,
                   help="0 for greedy; default 1.5 for GPT-2, 1.4 for a checkpoint")
    p.add_argument("--top-k", type=int, default=None,
                   help="0 for no top-k; default 50 for GPT-2, 25 for a checkpoint")
    p.add_argument("--seed", type=int, default=None, help="torch.manual_seed before generating (default 123)")
    _device_option(p)
    return p


def losses_parser():
    p = ArgumentParser(prog=f"{PROG} gpt2-losses",
                       description="Exercise 5.5: GPT-2's training and validation loss on The Verdict "
                                   "(context 256, batch 2, seed 123).")
    _add_weights_options(p)
    _device_option(p)
    return p


def download_parser():
    p = ArgumentParser(prog=f"{PROG} download",
                       description="Download OpenAI's GPT-2 weights (model.safetensors from Hugging Face) "
                                   "and print where they are.")
    _add_weights_options(p, weights_file=False)
    return p


def load_gpt2_for_cli(args, device):
    """GPT-2 from --weights-file, or downloaded into --models-dir (no request when it is there)."""
    from .gpt2 import load_pretrained_gpt2

    size = args.weights or DEFAULT_WEIGHTS
    try:
        return load_pretrained_gpt2(size, models_dir=args.models_dir, weights_file=args.weights_file,
                                    device=device)
    except (FileNotFoundError, ValueError) as exc:
        hint = "; pass the --weights size the file is for" if "does not fit" in str(exc) else ""
        raise UsageError(f"--weights-file: {exc}{hint}") from None


def load_trained_checkpoint(where: Path, device):
    """The chapter's GPTModel from a run's checkpoint (its config is saved in it), eval mode."""
    import torch

    from .checkpoints import apply_checkpoint, read_checkpoint
    from .model import GPTModel

    path = where / CHECKPOINT_FILE if where.is_dir() else where
    try:
        checkpoint = read_checkpoint(path, device="cpu")
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"--checkpoint: {exc}") from None
    if "config" not in checkpoint:
        raise UsageError(f"--checkpoint: {path} has no config (written by {PROG} training, it would)")
    cfg = checkpoint["config"]
    with torch.random.fork_rng(devices=[]):  # the weights are replaced: leave the seed's numbers alone
        model = GPTModel(cfg)
    try:
        apply_checkpoint(checkpoint, model, source=path)
    except ValueError as exc:
        raise UsageError(f"--checkpoint: {exc}") from None
    return model.to(device).eval(), cfg


def _sampling(args, defaults):
    values = {name: getattr(args, name) for name in defaults}
    values = {name: defaults[name] if value is None else value for name, value in values.items()}
    if values["max_new_tokens"] < 0:
        raise UsageError(f"--max-new-tokens must be at least 0 (got {values['max_new_tokens']})")
    if not values["temperature"] >= 0:
        raise UsageError(f"--temperature must be at least 0 (got {values['temperature']}); 0 means greedy")
    if values["top_k"] < 0:
        raise UsageError(f"--top-k must be at least 0 (got {values['top_k']}); 0 means no top-k")
    return values


def generate_command(args) -> int:
    import torch

    from .data import get_tokenizer
    from .decoding import generate
    from .pretraining import text_to_token_ids, token_ids_to_text

    if args.checkpoint is not None and (args.weights is not None or args.weights_file is not None):
        raise UsageError("--checkpoint uses the chapter's trained model: leave out --weights and --weights-file")
    settings = _sampling(args, CHECKPOINT_SAMPLING if args.checkpoint is not None else GPT2_SAMPLING)
    tokenizer = get_tokenizer()
    idx = text_to_token_ids(args.prompt, tokenizer)
    if idx.shape[1] == 0:
        raise UsageError("--prompt is empty: give some text (or <|endoftext|>)")
    device = resolve_device(args.device)
    if args.checkpoint is not None:
        model, cfg = load_trained_checkpoint(args.checkpoint, device)
    else:
        model = load_gpt2_for_cli(args, device)
        cfg = {"context_length": model.pos_emb.weight.shape[0], "vocab_size": model.out_head.weight.shape[0]}
    if settings["top_k"] > cfg["vocab_size"]:
        raise UsageError(f"--top-k {settings['top_k']} is more than the vocabulary's {cfg['vocab_size']} tokens")
    torch.manual_seed(settings["seed"])
    token_ids = generate(
        model, idx, max_new_tokens=settings["max_new_tokens"], context_size=cfg["context_length"],
        temperature=settings["temperature"], top_k=settings["top_k"] or None,
    )
    print(token_ids_to_text(token_ids.cpu(), tokenizer))
    return 0


def verdict_losses(model, device="cpu", seed=123):
    """Exercise 5.5: ``(train_loss, val_loss)`` of ``model`` on the chapter's loaders (context 256, batch 2).

    As the book: ``torch.manual_seed(seed)`` before the loaders and before the losses.
    """
    import torch

    from .data import load_text
    from .pretraining import calc_loss_loader

    torch.manual_seed(seed)
    train_loader, val_loader = make_loaders(load_text(), 256, 2)
    torch.manual_seed(seed)
    with torch.no_grad():
        return calc_loss_loader(train_loader, model, device), calc_loss_loader(val_loader, model, device)


def losses_command(args) -> int:
    device = resolve_device(args.device)
    train_loss, val_loss = verdict_losses(load_gpt2_for_cli(args, device), device)
    print("Training loss:", train_loss)  # as the book prints them
    print("Validation loss:", val_loss)
    return 0


def download_command(args) -> int:
    from .gpt2 import download_gpt2

    print(download_gpt2(args.weights or DEFAULT_WEIGHTS, args.models_dir))
    return 0


COMMAND_LINE = {
    "generate": (generate_parser, generate_command),
    "gpt2-losses": (losses_parser, losses_command),
    "download": (download_parser, download_command),
}


def run_command(name, argv) -> int:
    """Run ``python -m reference NAME argv...``; returns the exit status."""
    from .data import DataFileError
    from .gpt2 import DownloadError

    build, command = COMMAND_LINE[name]
    args = build().parse_args(argv)
    try:
        return command(args)
    except DownloadError as exc:
        hint = "" if name == "download" else " (or pass --weights-file PATH)"
        return report_error(f"{exc}{hint}")
    except (UsageError, DataFileError) as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m reference generate | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
