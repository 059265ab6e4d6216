"""``python -m reference``: the chapter's pretraining run on *The Verdict* (section 5.2).

With the defaults it reproduces the book's 18 log lines on CPU (about 15-20
minutes on 2 cores). ``--model small --epochs 1`` is a smoke run of seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SMALL_CONFIG = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 64,
    "n_heads": 4,
    "n_layers": 2,
    "drop_rate": 0.1,
    "qkv_bias": False,
}
OUTPUT_FILES = ("loss-plot.pdf", "loss-plot.png", "model_and_optimizer.pth")


class UsageError(Exception):
    """A bad option or an input the run cannot use; printed as one line."""


@dataclass
class PretrainingResult:
    train_losses: list = field(default_factory=list)
    val_losses: list = field(default_factory=list)
    tokens_seen: list = field(default_factory=list)
    seconds: float = 0.0


def resolve_device(name: str):
    """``auto`` -> cuda when available, else cpu. Raises UsageError for cuda without a GPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here; use --device cpu")
    return torch.device(name)


def make_loaders(text, context_length, batch_size, train_ratio=0.9):
    """The chapter's loaders: 90/10 split by characters, stride = context length."""
    from .data import create_dataloader_v1

    split_idx = int(train_ratio * len(text))
    loaders = []
    for part, name, train in ((text[:split_idx], "training", True), (text[split_idx:], "validation", False)):
        try:
            loaders.append(
                create_dataloader_v1(
                    part,
                    batch_size=batch_size,
                    max_length=context_length,
                    stride=context_length,
                    drop_last=train,
                    shuffle=train,
                    num_workers=0,
                )
            )
        except ValueError:
            raise UsageError(
                f"--context-length {context_length} is too long for the {name} text "
                f"({len(part)} characters): use a smaller value, e.g. 256"
            ) from None
    if len(loaders[0]) == 0:
        raise UsageError(
            f"the training text gives no full batch of {batch_size}x{context_length} tokens: "
            "lower --batch-size or --context-length"
        )
    return loaders


def pretrain(cfg, num_epochs=10, device="cpu", seed=123, batch_size=2, lr=0.0004,
             weight_decay=0.1, eval_freq=5, eval_iter=5, start_context="Every effort moves you",
             on_step=None):
    """Run the chapter's training; returns ``(model, optimizer, PretrainingResult)``.

    The seed is set before the loaders and again before the model, as in the book,
    so the 124M run on CPU reproduces the book's numbers.
    """
    import torch

    from .data import get_tokenizer, load_text
    from .model import GPTModel
    from .pretraining import train_model_simple

    text = load_text()
    torch.manual_seed(seed)
    train_loader, val_loader = make_loaders(text, cfg["context_length"], batch_size)

    torch.manual_seed(seed)
    model = GPTModel(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start = time.perf_counter()
    train_losses, val_losses, tokens_seen = train_model_simple(
        model, train_loader, val_loader, optimizer, device,
        num_epochs=num_epochs, eval_freq=eval_freq, eval_iter=eval_iter,
        start_context=start_context, tokenizer=get_tokenizer(), on_step=on_step,
    )
    result = PretrainingResult(train_losses, val_losses, tokens_seen, time.perf_counter() - start)
    return model, optimizer, result


def save_outputs(out_dir: Path, model, optimizer, cfg, result: PretrainingResult, num_epochs):
    """Write the loss plot (PDF, PNG) and the checkpoint of model and optimizer state."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt
    import torch

    from .pretraining import plot_losses

    out_dir.mkdir(parents=True, exist_ok=True)
    epochs_seen = torch.linspace(0, num_epochs, len(result.train_losses))
    fig = plot_losses(epochs_seen, result.tokens_seen, result.train_losses, result.val_losses)
    fig.savefig(out_dir / "loss-plot.pdf")
    fig.savefig(out_dir / "loss-plot.png", dpi=150)
    plt.close(fig)
    torch.save(
        {"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "config": cfg},
        out_dir / "model_and_optimizer.pth",
    )


def _progress(total_steps: int, start: float):
    """An ``on_step`` hook printing step and elapsed time to stderr."""
    interactive = sys.stderr.isatty()

    def on_step(epoch, global_step, tokens_seen):
        step = global_step + 1
        if interactive or step == total_steps or step % 10 == 0:
            elapsed = time.perf_counter() - start
            end = "\r" if interactive and step < total_steps else "\n"
            print(f"[step {step}/{total_steps}, epoch {epoch + 1}, {tokens_seen} tokens, "
                  f"{elapsed:.0f} s elapsed]", end=end, file=sys.stderr, flush=True)

    return on_step


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m reference",
        description="Pretrain the chapter-5 GPT on The Verdict and write the loss plot and a checkpoint.",
    )
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10, as in the book)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--model", choices=["124M", "small"], default="124M",
                   help="124M: the book's GPT_CONFIG_124M; small: 2 layers of 64 dims, a smoke run in seconds")
    p.add_argument("--context-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--out", type=Path, default=Path("pretraining-output"),
                   help="folder for loss-plot.pdf/.png and model_and_optimizer.pth (default ./pretraining-output)")
    p.add_argument("--overwrite", action="store_true", help="replace output files of an earlier run")
    return p


def _check_args(args):
    for name in ("epochs", "context_length", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    existing = [name for name in OUTPUT_FILES if (args.out / name).exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{args.out} already holds {', '.join(existing)}: pass --overwrite or another --out")


def main(argv=None) -> int:
    from .data import DataFileError

    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        from .model import GPT_CONFIG_124M

        cfg = dict(GPT_CONFIG_124M if args.model == "124M" else SMALL_CONFIG)
        cfg["context_length"] = args.context_length
        device = resolve_device(args.device)
        from .data import load_text

        text = load_text()
        train_loader, _ = make_loaders(text, args.context_length, args.batch_size)  # fail early
        total_steps = len(train_loader) * args.epochs
        print(f"Pretraining the {args.model} model on The Verdict on {device} "
              f"({args.epochs} epoch{'s' * (args.epochs != 1)}, {total_steps} steps)", file=sys.stderr)
        start = time.perf_counter()
        model, optimizer, result = pretrain(
            cfg, num_epochs=args.epochs, device=device, seed=args.seed,
            batch_size=args.batch_size, on_step=_progress(total_steps, start),
        )
        save_outputs(args.out, model, optimizer, cfg, result, args.epochs)
    except (UsageError, DataFileError) as exc:
        print(f"python -m reference: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m reference: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m reference | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(f"Training took {result.seconds:.1f} s; wrote {', '.join(OUTPUT_FILES)} to {args.out}/",
          file=sys.stderr)
    return 0
