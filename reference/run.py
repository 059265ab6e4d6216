"""``python -m reference``: the chapter's pretraining run on *The Verdict* (section 5.2).

With the defaults it reproduces the book's 18 log lines on CPU (about 15-20
minutes on 2 cores). ``--model small --epochs 1`` is a smoke run of seconds.
After each epoch the run's checkpoint is written, so ``--resume DIR`` can
continue an interrupted run (section 5.4). The other commands
(``generate``, ``gpt2-losses``, ``download``) are in commands.py.
"""

from __future__ import annotations

import argparse
import os
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
             on_step=None, *, on_epoch_end=None, resume=None):
    """Run the chapter's training; returns ``(model, optimizer, PretrainingResult)``.

    The seed is set before the loaders and again before the model, as in the book,
    so the 124M run on CPU reproduces the book's numbers.

    Args:
        on_step: ``on_step(epoch, global_step, tokens_seen)`` after every step.
        on_epoch_end: ``on_epoch_end(model, optimizer, state)`` after each epoch's
            sample (state: the live TrainingState), e.g. ``checkpoint_writer(...)``.
        resume: a checkpoint dict of ``save_run_checkpoint`` (``read_checkpoint``):
            model, optimizer, training state and RNG states are restored, and
            training continues with the epoch after the saved one, up to
            ``num_epochs`` in all. With the same settings the rest of the run is
            the same as without the interruption.
    """
    import torch

    from .checkpoints import apply_checkpoint, restore_rng_state
    from .data import get_tokenizer, load_text
    from .model import GPTModel
    from .pretraining import train_model_simple

    text = load_text()
    torch.manual_seed(seed)
    train_loader, val_loader = make_loaders(text, cfg["context_length"], batch_size)

    torch.manual_seed(seed)
    model = GPTModel(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start_state = None
    if resume is not None:
        apply_checkpoint(resume, model, optimizer)
        start_state = training_state_of(resume)
        # the loaders draw their shuffle seeds from this RNG at each epoch's start
        restore_rng_state(resume["rng_state"])
    epoch_hook = None if on_epoch_end is None else (lambda state: on_epoch_end(model, optimizer, state))
    start = time.perf_counter()
    train_losses, val_losses, tokens_seen = train_model_simple(
        model, train_loader, val_loader, optimizer, device,
        num_epochs=num_epochs, eval_freq=eval_freq, eval_iter=eval_iter,
        start_context=start_context, tokenizer=get_tokenizer(), on_step=on_step,
        start=start_state, on_epoch_end=epoch_hook,
    )
    result = PretrainingResult(train_losses, val_losses, tokens_seen, time.perf_counter() - start)
    return model, optimizer, result


# Checkpoints of the run (section 5.4) --------------------------------------------

RESUME_KEYS = ("config", "settings", "rng_state", "epoch", "global_step", "tokens_seen",
               "train_losses", "val_losses", "track_tokens_seen")


def run_settings(model_name, num_epochs, seed, batch_size, context_length) -> dict:
    """The settings a run's checkpoint records, so that ``--resume`` continues with them."""
    return {"model": model_name, "num_epochs": num_epochs, "seed": seed, "batch_size": batch_size,
            "context_length": context_length, **BOOK_TRAINING}


def save_run_checkpoint(path, model, optimizer, cfg, settings, state, device):
    """``model_and_optimizer.pth`` of a run after an epoch: the book's two states plus
    config, settings, the TrainingState's fields and the RNG states."""
    from dataclasses import asdict

    from .checkpoints import capture_rng_state, save_checkpoint

    save_checkpoint(model, optimizer, path, config=dict(cfg), settings=dict(settings),
                    rng_state=capture_rng_state(device), **asdict(state))


def checkpoint_writer(path, cfg, settings, device):
    """An ``on_epoch_end`` hook for ``pretrain`` that saves the run's checkpoint to ``path``."""

    def on_epoch_end(model, optimizer, state):
        save_run_checkpoint(path, model, optimizer, cfg, settings, state, device)

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


def build_parser():
    p = ArgumentParser(
        prog=PROG,
        description="Pretrain the chapter-5 GPT on The Verdict and write the loss plot and a checkpoint.",
        epilog=f"Other commands: {', '.join(COMMANDS)} (python -m reference COMMAND --help).",
    )
    # defaults of None are filled in by _settings_from_args: --resume takes them from the run
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs in all (default 10, as in the book; with --resume: the run's own, "
                        "or more to train on)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--model", choices=["124M", "small"], default=None,
                   help="124M (default): the book's GPT_CONFIG_124M; small: 2 layers of 64 dims, a smoke run in seconds")
    p.add_argument("--context-length", type=int, default=None, help="default 256")
    p.add_argument("--batch-size", type=int, default=None, help="default 2")
    p.add_argument("--seed", type=int, default=None, help="default 123")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for loss-plot.pdf/.png and model_and_optimizer.pth "
                        "(default ./pretraining-output; with --resume: the resumed folder)")
    p.add_argument("--overwrite", action="store_true", help="replace output files of an earlier run")
    p.add_argument("--resume", type=Path, metavar="DIR", default=None,
                   help="continue the run whose checkpoint DIR/model_and_optimizer.pth holds, with its settings")
    return p


FRESH_DEFAULTS = {"epochs": 10, "model": "124M", "context_length": 256, "batch_size": 2, "seed": 123}
RUN_OPTIONS = ("model", "context_length", "batch_size", "seed")  # fixed for a run: --resume takes them from it


def _option(name):
    return "--" + name.replace("_", "-")


def _check_positive(args):
    for name in ("epochs", "context_length", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{_option(name)} must be at least 1 (got {value})")


def _check_out(args):
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    if args.resume is not None and args.out.resolve() == args.resume.resolve():
        return  # continuing the run in its own folder replaces its files by design
    existing = [name for name in OUTPUT_FILES if (args.out / name).exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{args.out} already holds {', '.join(existing)}: pass --overwrite or another --out")


def _resumed_settings(args, checkpoint) -> dict:
    """The run's settings, with --epochs applied; options that would change the run are refused."""
    settings = dict(checkpoint["settings"])
    for option in RUN_OPTIONS:
        given = getattr(args, option)
        if given is not None and given != settings[option]:
            raise UsageError(
                f"--resume continues with the run's own {_option(option)} ({settings[option]}): leave out "
                f"{_option(option)} {given}"
            )
    done = checkpoint["epoch"]
    if args.epochs is not None:
        if args.epochs < done:
            raise UsageError(f"--epochs {args.epochs} is fewer than the {done} epochs the run in {args.resume} has done")
        settings["num_epochs"] = args.epochs
    return settings


def _fresh_run(args):
    """``(settings, cfg)`` of a new run from the options and their defaults."""
    from .model import GPT_CONFIG_124M

    for name, value in FRESH_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.out = Path("pretraining-output") if args.out is None else args.out
    cfg = dict(GPT_CONFIG_124M if args.model == "124M" else SMALL_CONFIG)
    cfg["context_length"] = args.context_length
    return run_settings(args.model, args.epochs, args.seed, args.batch_size, args.context_length), cfg


def _announce(settings, device, total_steps, done_steps, resumed_from, done):
    if resumed_from is None:
        epochs = settings["num_epochs"]
        print(f"Pretraining the {settings['model']} model on The Verdict on {device} "
              f"({epochs} epoch{'s' * (epochs != 1)}, {total_steps} steps)", file=sys.stderr)
    else:
        print(f"Resuming the {settings['model']} run of {resumed_from} on {device} at epoch {done + 1} "
              f"of {settings['num_epochs']} ({total_steps - done_steps} steps left)", file=sys.stderr)


def _train_with_progress(cfg, settings, device, checkpoint, total_steps, done_steps, on_epoch_end):
    """``pretrain`` with the run's settings, progress on stderr, the log lines kept off the bar."""
    progress = StepProgress(total_steps, done_steps)
    real_stdout = sys.stdout
    if progress.interactive and real_stdout.isatty():
        sys.stdout = LinesAboveBar(real_stdout, progress.bar)
    try:
        _, _, result = pretrain(
            cfg, num_epochs=settings["num_epochs"], device=device, seed=settings["seed"],
            batch_size=settings["batch_size"], lr=settings["lr"], weight_decay=settings["weight_decay"],
            eval_freq=settings["eval_freq"], eval_iter=settings["eval_iter"],
            start_context=settings["start_context"], on_step=progress,
            on_epoch_end=on_epoch_end, resume=checkpoint,
        )
    finally:
        sys.stdout = real_stdout
        progress.close()
    return result


def train_main(argv) -> int:
    """``python -m reference [options]``: the chapter's training, fresh or resumed."""
    from .data import DataFileError, load_text

    args = build_parser().parse_args(argv)
    saved_epochs = []  # epochs whose checkpoint this invocation wrote
    try:
        _check_positive(args)
        checkpoint, done = None, 0
        if args.resume is not None:
            checkpoint = read_run_checkpoint(args.resume)
            settings, cfg, done = _resumed_settings(args, checkpoint), dict(checkpoint["config"]), checkpoint["epoch"]
            args.out = args.resume if args.out is None else args.out
        else:
            settings, cfg = _fresh_run(args)
        _check_out(args)
        if done >= settings["num_epochs"]:
            print(f"{PROG}: nothing to do: the run in {args.resume} has done all its {done} epochs; "
                  f"pass --epochs N (more than {done}) to train on", file=sys.stderr)
            return 0
        device = resolve_device(args.device)
        train_loader, _ = make_loaders(load_text(), settings["context_length"], settings["batch_size"])  # fail early
        total_steps, done_steps = len(train_loader) * settings["num_epochs"], len(train_loader) * done
        _announce(settings, device, total_steps, done_steps, args.resume, done)
        args.out.mkdir(parents=True, exist_ok=True)
        write_checkpoint = checkpoint_writer(args.out / CHECKPOINT_FILE, cfg, settings, device)

        def on_epoch_end(model, optimizer, state):
            write_checkpoint(model, optimizer, state)
            saved_epochs.append(state.epoch)

        result = _train_with_progress(cfg, settings, device, checkpoint, total_steps, done_steps, on_epoch_end)
        save_plots(args.out, result, settings["num_epochs"])
    except (UsageError, DataFileError) as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        hint = f"; continue with: {PROG} --resume {args.out}" if saved_epochs else ""
        print(f"{PROG}: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m reference | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(f"Training took {result.seconds:.1f} s; wrote {', '.join(OUTPUT_FILES)} to {args.out}/",
          file=sys.stderr)
    return 0


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
    return train_main(argv)
