"""``python -m reference [options]``: the training run's command line (fresh, resumed, --fast, --ddp).

The run itself (``pretrain``, its loaders, checkpoints, plots and progress) is in run.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .run import (
    CHECKPOINT_FILE,
    COMMANDS,
    EXTRA_SETTINGS,
    OUTPUT_FILES,
    PROG,
    SMALL_CONFIG,
    ArgumentParser,
    LinesAboveBar,
    StepProgress,
    UsageError,
    checkpoint_writer,
    pretrain,
    read_run_checkpoint,
    report_error,
    resolve_device,
    run_loaders,
    run_settings,
    save_plots,
)


def build_parser():
    p = ArgumentParser(
        prog=PROG,
        description="Pretrain the chapter-5 GPT on The Verdict and write the loss plot and a checkpoint.",
        epilog=f"Other commands: {', '.join(COMMANDS)} (python -m reference COMMAND --help).",
    )
    # defaults of None are filled in by _fresh_run: --resume takes them from the run
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs in all (default 10, as in the book; with --resume: the run's own, "
                        "or more to train on)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--model", choices=["124M", "small"], default=None,
                   help="124M (default): the book's GPT_CONFIG_124M; small: 2 layers of 64 dims, a smoke run in seconds")
    p.add_argument("--context-length", type=int, default=None, help="default 256")
    p.add_argument("--batch-size", type=int, default=None, help="default 2 (with --ddp: the global batch)")
    p.add_argument("--seed", type=int, default=None, help="default 123")
    p.add_argument("--drop-rate", type=float, default=None, help="the model's dropout rate (default 0.1, the book's)")
    p.add_argument("--text", type=Path, metavar="PATH", default=None,
                   help="train on this UTF-8 text file instead of The Verdict (split 90/10 as in the book)")
    p.add_argument("--fast", action="store_true", default=None,
                   help="fused kernels and fused AdamW (bf16 on CUDA): faster, close to the book's numbers, not equal")
    p.add_argument("--threads", type=int, default=None,
                   help="torch's CPU threads (default: torch's own, as the book's run has; with --fast: the CPUs "
                        "the load leaves free)")
    p.add_argument("--ddp", action="store_true",
                   help="distributed data parallel over the processes torchrun starts "
                        "(torchrun --nproc_per_node=N -m reference --ddp)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for loss-plot.pdf/.png and model_and_optimizer.pth "
                        "(default ./pretraining-output; with --resume: the resumed folder)")
    p.add_argument("--overwrite", action="store_true", help="replace output files of an earlier run")
    p.add_argument("--resume", type=Path, metavar="DIR", default=None,
                   help="continue the run whose checkpoint DIR/model_and_optimizer.pth holds, with its settings")
    return p


FRESH_DEFAULTS = {"epochs": 10, "model": "124M", "context_length": 256, "batch_size": 2, "seed": 123}
# fixed for a run: --resume takes them from it (and refuses other values)
RUN_OPTIONS = ("model", "context_length", "batch_size", "seed", "drop_rate", "fast", "text")


def _option(name):
    return "--" + name.replace("_", "-")


def _check_positive(args):
    for name in ("epochs", "context_length", "batch_size", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{_option(name)} must be at least 1 (got {value})")
    if args.drop_rate is not None and not 0 <= args.drop_rate < 1:
        raise UsageError(f"--drop-rate must be at least 0 and below 1 (got {args.drop_rate})")


def _check_out(args):
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    if args.resume is not None and args.out.resolve() == args.resume.resolve():
        return  # continuing the run in its own folder replaces its files by design
    existing = [name for name in OUTPUT_FILES if (args.out / name).exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{args.out} already holds {', '.join(existing)}: pass --overwrite or another --out")


def _given_text(args):
    return None if args.text is None else str(args.text.resolve())


def _resumed_settings(args, checkpoint, processes) -> dict:
    """The run's settings, with --epochs applied; options that would change the run are refused."""
    settings = {**EXTRA_SETTINGS, "drop_rate": checkpoint["config"]["drop_rate"], **checkpoint["settings"]}
    given_values = {option: getattr(args, option) for option in RUN_OPTIONS}
    given_values["text"] = _given_text(args)
    for option, given in given_values.items():
        if given is not None and given != settings[option]:
            own = "" if option == "fast" else f" ({settings[option]})"
            raise UsageError(f"--resume continues with the run's own {_option(option)}{own}: leave out "
                             f"{_option(option)}{'' if option == 'fast' else f' {given}'}")
    if (settings["processes"] is None) != (processes is None):
        raise UsageError(f"the run in {args.resume} was {'not ' * (processes is not None)}trained with --ddp: "
                         f"resume it {'with torchrun and --ddp' if processes is None else 'without --ddp'}")
    if processes is not None and settings["processes"] != processes.world_size:
        print(f"{PROG}: the run had {settings['processes']} processes, this one {processes.world_size}: "
              "the same global batches, other dropout draws than an uninterrupted run", file=sys.stderr)
        settings["processes"] = processes.world_size
    done = checkpoint["epoch"]
    if args.epochs is not None:
        if args.epochs < done:
            raise UsageError(f"--epochs {args.epochs} is fewer than the {done} epochs the run in {args.resume} has done")
        settings["num_epochs"] = args.epochs
    return settings


def _fresh_run(args, processes):
    """``(settings, cfg)`` of a new run from the options and their defaults."""
    from .model import GPT_CONFIG_124M

    for name, value in FRESH_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.out = Path("pretraining-output") if args.out is None else args.out
    cfg = dict(GPT_CONFIG_124M if args.model == "124M" else SMALL_CONFIG)
    cfg["context_length"] = args.context_length
    if args.drop_rate is not None:
        cfg["drop_rate"] = args.drop_rate
    text = _given_text(args)
    settings = run_settings(
        args.model, args.epochs, args.seed, args.batch_size, args.context_length, drop_rate=cfg["drop_rate"],
        fast=bool(args.fast), text=text, text_sha256=None if text is None else _sha256_of(Path(text)),
        processes=None if processes is None else processes.world_size,
    )
    return settings, cfg


def _sha256_of(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"--text {path}: cannot read it ({exc.strerror or exc})") from None


def training_text(settings) -> str:
    """The run's text: The Verdict, or its ``--text`` file (checked unchanged when resuming). Raises UsageError."""
    from .data import load_text

    if settings["text"] is None:
        return load_text()
    path = Path(settings["text"])
    if not path.is_file():
        raise UsageError(f"--text {path}: no such file; give a UTF-8 text file")
    if settings["text_sha256"] is not None and _sha256_of(path) != settings["text_sha256"]:
        raise UsageError(f"{path} changed since the run started: a resumed run must train on the same text")
    try:
        return load_text(path)
    except UnicodeDecodeError as exc:
        raise UsageError(f"--text {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


def _text_name(settings) -> str:
    return "The Verdict" if settings["text"] is None else Path(settings["text"]).name


def _announce(settings, device, total_steps, done_steps, resumed_from, done):
    on = f"on {_text_name(settings)} on {device}"
    if settings["processes"] is not None:
        count = settings["processes"]
        on += f" x {count} process{'es' * (count != 1)} (DDP, global batch {settings['batch_size']})"
    if resumed_from is None:
        epochs = settings["num_epochs"]
        print(f"Pretraining the {settings['model']} model {on} "
              f"({epochs} epoch{'s' * (epochs != 1)}, {total_steps} steps)", file=sys.stderr)
    else:
        print(f"Resuming the {settings['model']} run of {resumed_from} {on} at epoch {done + 1} "
              f"of {settings['num_epochs']} ({total_steps - done_steps} steps left)", file=sys.stderr)


def _train_with_progress(cfg, settings, device, checkpoint, total_steps, done_steps, on_epoch_end,
                         text, processes):
    """``pretrain`` with the run's settings, progress on stderr (by rank 0 only), the log lines kept off the bar."""
    progress = StepProgress(total_steps, done_steps) if processes is None or processes.is_main else None
    real_stdout = sys.stdout
    if progress is not None and progress.interactive and real_stdout.isatty():
        sys.stdout = LinesAboveBar(real_stdout, progress.bar)
    try:
        _, _, result = pretrain(
            cfg, num_epochs=settings["num_epochs"], device=device, seed=settings["seed"],
            batch_size=settings["batch_size"], lr=settings["lr"], weight_decay=settings["weight_decay"],
            eval_freq=settings["eval_freq"], eval_iter=settings["eval_iter"],
            start_context=settings["start_context"], on_step=progress,
            on_epoch_end=on_epoch_end, resume=checkpoint, fast=settings["fast"], text=text,
            processes=processes,
        )
    finally:
        sys.stdout = real_stdout
        if progress is not None:
            progress.close()
    return result


def _tune(settings, device, processes, threads=None):
    """The run's process settings: freed memory kept for reuse (never changes a number);
    ``threads`` torch threads if given, else with --fast on CPU as many as the load leaves
    free (under torchrun: its OMP_NUM_THREADS). Rank 0 says on stderr that --fast is not the book's run."""
    import torch

    from .allocator import keep_freed_memory

    keep_freed_memory()
    if threads is not None:
        torch.set_num_threads(threads)
    if not settings["fast"]:
        return
    from .fast import NOTICE, fit_threads

    if device.type == "cuda":
        extra = ", bf16 autocast"
    elif processes is None:
        count, why = (threads, "--threads") if threads is not None else fit_threads()
        extra = f", {count} CPU thread{'s' * (count != 1)} ({why})"
    else:
        extra = ""
    if processes is None or processes.is_main:
        print(f"{PROG}: {NOTICE.format(extra=extra)}", file=sys.stderr)


def _processes(args):
    """This process's place in a torchrun job with --ddp, else None. Raises UsageError without torchrun."""
    if not args.ddp:
        return None
    from .distributed import processes_from_environment

    try:
        return processes_from_environment()
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None


def train_main(argv) -> int:
    """``python -m reference [options]``: the chapter's training, fresh or resumed, on one or more processes."""
    from .checkpoints import BackgroundWriter
    from .data import DataFileError

    args = build_parser().parse_args(argv)
    submitted = []  # epochs whose checkpoint this invocation began to write
    writer, processes = BackgroundWriter(), None
    try:
        _check_positive(args)
        processes = _processes(args)
        checkpoint, done = None, 0
        if args.resume is not None:
            checkpoint = read_run_checkpoint(args.resume)
            settings, done = _resumed_settings(args, checkpoint, processes), checkpoint["epoch"]
            cfg = dict(checkpoint["config"])
            args.out = args.resume if args.out is None else args.out
        else:
            settings, cfg = _fresh_run(args, processes)
        _check_out(args)
        if done >= settings["num_epochs"]:
            print(f"{PROG}: nothing to do: the run in {args.resume} has done all its {done} epochs; "
                  f"pass --epochs N (more than {done}) to train on", file=sys.stderr)
            return 0
        text = training_text(settings)
        device = resolve_device(args.device)
        if processes is not None:
            from .distributed import start

            device = start(processes, device.type)
        train_loader, _ = run_loaders(text, settings["context_length"], settings["batch_size"],  # fail early
                                      processes, settings["seed"])
        total_steps, done_steps = len(train_loader) * settings["num_epochs"], len(train_loader) * done
        main_process = processes is None or processes.is_main
        if main_process:
            _announce(settings, device, total_steps, done_steps, args.resume, done)
            args.out.mkdir(parents=True, exist_ok=True)
        _tune(settings, device, processes, args.threads)
        write_checkpoint = checkpoint_writer(args.out / CHECKPOINT_FILE, cfg, settings, device, writer=writer)

        def on_epoch_end(model, optimizer, state):
            if main_process:  # only rank 0 writes files
                write_checkpoint(model, optimizer, state)
                submitted.append(state.epoch)

        with _only_main_prints(main_process):
            result = _train_with_progress(cfg, settings, device, checkpoint, total_steps, done_steps,
                                          on_epoch_end, text, processes)
        if main_process:
            save_plots(args.out, result, settings["num_epochs"])
        writer.wait()
    except (UsageError, DataFileError) as exc:
        return report_error(exc) if processes is None or processes.is_main else 2
    except KeyboardInterrupt:
        saved = _finish_writing(writer, submitted)
        if processes is None or processes.is_main:
            hint = f"; continue with: {PROG} --resume {args.out}" if saved else ""
            print(f"{PROG}: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m reference | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the checkpoint or the plots could not be written (disk full, ...)
        where = exc.filename or args.out
        return report_error(UsageError(f"could not write {where}: {exc.strerror or exc}"))
    finally:
        if processes is not None:
            from .distributed import stop

            stop()
    if main_process:
        print(f"Training took {result.seconds:.1f} s; wrote {', '.join(OUTPUT_FILES)} to {args.out}/",
              file=sys.stderr)
    return 0


def _finish_writing(writer, submitted) -> bool:
    """After Ctrl-C: let a checkpoint that is being written finish; True when one is on disk."""
    if writer.pending:
        print(f"{PROG}: interrupted: finishing the checkpoint of epoch {submitted[-1]} first", file=sys.stderr)
    try:
        writer.wait()
    except OSError:
        return len(submitted) > 1  # the one before it was written
    return bool(submitted)


class _only_main_prints:
    """On processes other than rank 0 of a torchrun job, stdout goes nowhere (rank 0 prints the log)."""

    def __init__(self, main_process):
        self.main_process = main_process

    def __enter__(self):
        if not self.main_process:
            self.saved, sys.stdout = sys.stdout, open(os.devnull, "w", encoding="utf-8")

    def __exit__(self, *exc):
        if not self.main_process:
            sys.stdout.close()
            sys.stdout = self.saved
