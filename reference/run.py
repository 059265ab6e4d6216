"""``python -m reference``: the chapter's pretraining run on *The Verdict* (section 5.2).

With the defaults it reproduces the book's 18 log lines on CPU (about 15-20
minutes on 2 cores). ``--model small --epochs 1`` is a smoke run of seconds.
After each epoch the run's checkpoint is written (in the background, while the
next epoch starts), so ``--resume DIR`` can continue an interrupted run (section
5.4). The command line is in train_cli.py, ``--fast`` in fast.py, ``--ddp`` in
distributed.py; the other commands (``generate``, ``gpt2-losses``, ``download``)
are in commands.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# The chapter's training settings besides model, epochs, seed, batch and context (section 5.2).
BOOK_TRAINING = {
    "lr": 0.0004,
    "weight_decay": 0.1,
    "eval_freq": 5,
    "eval_iter": 5,
    "start_context": "Every effort moves you",
}
SMALL_CONFIG = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 64,
    "n_heads": 4,
    "n_layers": 2,
    "drop_rate": 0.1,
    "qkv_bias": False,
}
CHECKPOINT_FILE = "model_and_optimizer.pth"  # the book's name
OUTPUT_FILES = ("loss-plot.pdf", "loss-plot.png", CHECKPOINT_FILE)
PROG = "python -m reference"
COMMANDS = ("generate", "gpt2-losses", "download")  # first word of the command line; else: training


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
            from .data import ENDOFTEXT, get_tokenizer

            longest = len(get_tokenizer().encode(part, allowed_special={ENDOFTEXT})) - 1  # one chunk + its target
            fix = f"use a smaller value (at most {longest})" if longest >= 1 else "use a longer text"
            raise UsageError(
                f"--context-length {context_length} is too long for the {name} text ({len(part)} characters): {fix}"
            ) from None
    if len(loaders[0]) == 0:
        raise UsageError(
            f"the training text gives no full batch of {batch_size}x{context_length} tokens: "
            "lower --batch-size or --context-length"
        )
    return loaders


def run_loaders(text, context_length, batch_size, processes=None, seed=123):
    """The run's loaders: the book's (``make_loaders``), or with ``processes`` (a torchrun
    job) each process's share of every global batch of ``batch_size``. Raises UsageError."""
    if processes is None:
        return make_loaders(text, context_length, batch_size)
    from .distributed import distributed_loaders

    try:
        loaders = distributed_loaders(text, context_length, batch_size, processes, seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(loaders[0]) == 0:
        raise UsageError(f"the training text gives no full batch of {batch_size}x{context_length} tokens "
                         f"over {processes.world_size} processes: lower --batch-size or --context-length")
    return loaders


def pretrain(cfg, num_epochs=10, device="cpu", seed=123, batch_size=2, lr=0.0004,
             weight_decay=0.1, eval_freq=5, eval_iter=5, start_context="Every effort moves you",
             on_step=None, *, on_epoch_end=None, resume=None, fast=False, text=None, processes=None):
    """Run the chapter's training; returns ``(model, optimizer, PretrainingResult)``.

    The seed is set before the loaders and again before the model, as in the book,
    so the 124M run on CPU reproduces the book's numbers (unless ``fast``).

    Args:
        on_step: ``on_step(epoch, global_step, tokens_seen)`` after every step.
        on_epoch_end: ``on_epoch_end(model, optimizer, state)`` after each epoch's
            sample (state: the live TrainingState), e.g. ``checkpoint_writer(...)``.
        resume: a checkpoint dict of ``save_run_checkpoint`` (``read_checkpoint``):
            model, optimizer, training state and RNG states are restored, and
            training continues with the epoch after the saved one, up to
            ``num_epochs`` in all. With the same settings the rest of the run is
            the same as without the interruption.
        fast: the fused kernels and fused AdamW of reference/fast.py (close to the
            book's numbers, not equal).
        text: the text to train on (default: The Verdict).
        processes: this process's place in a torchrun job (reference.distributed),
            after ``distributed.start``: the model is trained under DDP, each process
            on its share of every global batch of ``batch_size``, the evaluation
            losses averaged over the processes. The returned model is the plain one, the
            result's tokens those of all processes (the checkpoint's TrainingState holds
            the loop's own count, of one process).
    """
    import torch

    from .checkpoints import apply_checkpoint, restore_rng_state
    from .data import get_tokenizer, load_text
    from .model import GPTModel
    from .pretraining import evaluate_model, train_model_simple

    text = load_text() if text is None else text
    torch.manual_seed(seed)
    train_loader, val_loader = run_loaders(text, cfg["context_length"], batch_size, processes, seed)

    torch.manual_seed(seed)
    model = GPTModel(cfg).to(device)
    if fast:
        from .fast import fast_optimizer, speed_up_model

        speed_up_model(model, device)  # after the book's initialisation: the same weights
        optimizer = fast_optimizer(model, lr, weight_decay)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start_state = None
    if resume is not None:
        apply_checkpoint(resume, model, optimizer)
        start_state = training_state_of(resume)
        # the loaders draw their shuffle seeds from this RNG at each epoch's start
        restore_rng_state(resume["rng_state"])
    trained, evaluate, hooks, world = model, None, [] if on_epoch_end is None else [on_epoch_end], 1
    if processes is not None:
        from .distributed import averaged_evaluate, wrap

        trained, evaluate = wrap(model, torch.device(device)), averaged_evaluate(evaluate_model)
        world = processes.world_size
        train_loader.sampler.set_epoch(0 if start_state is None else start_state.epoch)
        hooks.insert(0, lambda model, optimizer, state: train_loader.sampler.set_epoch(state.epoch))
        if on_step is not None:  # the loop counts this process's tokens; the run's are world times as many
            on_step = (lambda hook: lambda epoch, step, tokens: hook(epoch, step, tokens * world))(on_step)
    epoch_hook = (lambda state: [hook(model, optimizer, state) for hook in hooks]) if hooks else None
    start = time.perf_counter()
    train_losses, val_losses, tokens_seen = train_model_simple(
        trained, train_loader, val_loader, optimizer, device,
        num_epochs=num_epochs, eval_freq=eval_freq, eval_iter=eval_iter,
        start_context=start_context, tokenizer=get_tokenizer(), on_step=on_step,
        start=start_state, on_epoch_end=epoch_hook, evaluate=evaluate,
    )
    tokens_seen = [tokens * world for tokens in tokens_seen]
    result = PretrainingResult(train_losses, val_losses, tokens_seen, time.perf_counter() - start)
    return model, optimizer, result


# Checkpoints of the run (section 5.4) --------------------------------------------

RESUME_KEYS = ("config", "settings", "rng_state", "epoch", "global_step", "tokens_seen",
               "train_losses", "val_losses", "track_tokens_seen")


# What a run's settings hold besides run_settings' arguments, and their values in the
# checkpoints of runs from before they existed (a resumed old run keeps them).
EXTRA_SETTINGS = {"fast": False, "text": None, "text_sha256": None, "processes": None}


def run_settings(model_name, num_epochs, seed, batch_size, context_length, **extra) -> dict:
    """The settings a run's checkpoint records, so that ``--resume`` continues with them.

    ``extra``: EXTRA_SETTINGS (``fast``; ``text``, the resolved path of a ``--text``
    file, and its ``text_sha256``; ``processes``, the number of processes of a
    ``--ddp`` run) and ``drop_rate``.
    """
    unknown = set(extra) - set(EXTRA_SETTINGS) - {"drop_rate"}
    if unknown:
        raise TypeError(f"run_settings: unknown settings {sorted(unknown)}")
    return {"model": model_name, "num_epochs": num_epochs, "seed": seed, "batch_size": batch_size,
            "context_length": context_length, **BOOK_TRAINING, **EXTRA_SETTINGS, **extra}


def save_run_checkpoint(path, model, optimizer, cfg, settings, state, device, writer=None):
    """``model_and_optimizer.pth`` of a run after an epoch: the book's two states plus
    config, settings, the TrainingState's fields and the RNG states.

    With ``writer`` (a checkpoints.BackgroundWriter) the file is written in a
    background thread while training goes on; the optimizer's next step waits for it.
    """
    from dataclasses import asdict

    from .checkpoints import capture_rng_state, checkpoint_dict, write_atomically

    checkpoint = checkpoint_dict(model, optimizer, config=dict(cfg), settings=dict(settings),
                                 rng_state=capture_rng_state(device), **asdict(state))
    if writer is None:
        write_atomically(checkpoint, path)
    else:
        writer.guard(optimizer)
        writer.submit(checkpoint, path)


def checkpoint_writer(path, cfg, settings, device, writer=None):
    """An ``on_epoch_end`` hook for ``pretrain`` that saves the run's checkpoint to ``path``
    (in the background with ``writer``, see ``save_run_checkpoint``)."""

    def on_epoch_end(model, optimizer, state):
        save_run_checkpoint(path, model, optimizer, cfg, settings, state, device, writer=writer)

    return on_epoch_end


def training_state_of(checkpoint):
    """The TrainingState saved in a run's checkpoint."""
    from dataclasses import fields

    from .pretraining import TrainingState

    return TrainingState(**{f.name: checkpoint[f.name] for f in fields(TrainingState)})


def read_run_checkpoint(folder: Path) -> dict:
    """The checkpoint of the run in ``folder``, checked to hold what resuming needs. Raises UsageError."""
    from .checkpoints import read_checkpoint

    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        raise UsageError(f"--resume {folder}: no {CHECKPOINT_FILE} there; give the --out folder of a run")
    try:
        checkpoint = read_checkpoint(path, device="cpu")
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    missing = [key for key in RESUME_KEYS if key not in checkpoint]
    if missing:
        raise UsageError(
            f"{path} has no {', '.join(missing)}: it cannot be resumed (it was not written "
            f"after an epoch of {PROG})"
        )
    return checkpoint


def save_plots(out_dir: Path, result: PretrainingResult, num_epochs):
    """Write the loss plot as PDF and PNG (the checkpoint is written after each epoch)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt
    import torch

    from .pretraining import plot_losses

    epochs_seen = torch.linspace(0, num_epochs, len(result.train_losses))
    fig = plot_losses(epochs_seen, result.tokens_seen, result.train_losses, result.val_losses)
    fig.savefig(out_dir / "loss-plot.pdf")
    fig.savefig(out_dir / "loss-plot.png", dpi=150)
    plt.close(fig)


# Progress on stderr ----------------------------------------------------------------


class StepProgress:
    """An ``on_step`` hook: a tqdm bar on a terminal, else a plain line every ``every`` steps and at the end.

    Written to ``stream`` (stderr); the log lines on stdout are not touched, but
    while the bar is shown on a terminal ``lines_above_bar`` keeps them off it.
    """

    def __init__(self, total_steps, done_steps=0, every=10, stream=None):
        from tqdm import tqdm

        self.stream = sys.stderr if stream is None else stream
        self.total, self.done, self.every = total_steps, done_steps, every
        self.interactive = self.stream.isatty()
        self.start = time.perf_counter()
        self.bar = tqdm(total=total_steps, initial=done_steps, unit="step", file=self.stream,
                        dynamic_ncols=True, disable=not self.interactive)

    def __call__(self, epoch, global_step, tokens_seen):
        from tqdm import tqdm

        step = global_step + 1
        if self.interactive:
            self.bar.set_postfix_str(f"epoch {epoch + 1}, {tokens_seen} tokens", refresh=False)
            self.bar.update(1)
        elif step % self.every == 0 or step == self.total:
            line = tqdm.format_meter(
                step, self.total, time.perf_counter() - self.start, prefix=f"epoch {epoch + 1}",
                unit="step", initial=self.done, postfix=f"{tokens_seen} tokens",
                bar_format="[{desc}: step {n_fmt}/{total_fmt}, {elapsed} elapsed, {remaining} left{postfix}]",
            )
            print(line, file=self.stream, flush=True)

    def close(self):
        self.bar.close()


class LinesAboveBar:
    """stdout while a progress bar is drawn on the same terminal: each whole line is
    written with the bar cleared first and redrawn after, so neither garbles the other."""

    def __init__(self, stream, bar):
        self.stream, self.bar, self.pending = stream, bar, ""

    def write(self, text):
        self.pending += text
        if "\n" in self.pending:
            lines, self.pending = self.pending.rsplit("\n", 1)
            self.bar.clear()
            self.stream.write(lines + "\n")
            self.stream.flush()
            self.bar.refresh()
        return len(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):  # encoding, isatty, fileno, ... of the real stream
        return getattr(self.stream, name)


# The command line -------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """Bad options are one line, ``python -m reference: error: ...``, exit 2 (argparse prints the usage too)."""

    def error(self, message):
        print(f"{PROG}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def report_error(exc) -> int:
    """Print ``python -m reference: error: <one line>`` to stderr; return the exit status 2."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """``python -m reference [COMMAND] [options]``: training, or one of COMMANDS."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        from .commands import run_command

        return run_command(argv[0], argv[1:])
    from .train_cli import train_main

    return train_main(argv)
