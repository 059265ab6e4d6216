"""Chapter 5, section 5.4: saving and loading model weights in PyTorch.

A checkpoint is the book's dict ``{"model_state_dict": ..., "optimizer_state_dict":
...}`` written with ``torch.save``, plus any extra entries (the training run adds
its config, settings, progress and RNG states so that it can be resumed). Files
are read with ``weights_only=True``: plain data and tensors, no arbitrary pickles.
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import torch

STATE_KEYS = ("model_state_dict", "optimizer_state_dict")


def save_checkpoint(model, optimizer, path, **extra):
    """Write model and optimizer state (and ``extra`` entries) to ``path`` (section 5.4).

    The file is written beside ``path`` under a temporary name and then moved into
    place, so a crash never leaves half a checkpoint; an existing file at ``path``
    is replaced. ``extra`` values should be plain data (numbers, strings, lists,
    dicts, tuples) or tensors, so that ``load_checkpoint`` (``weights_only=True``) can read them.

    Raises:
        ValueError: ``extra`` holds ``model_state_dict`` or ``optimizer_state_dict``.
    """
    write_atomically(checkpoint_dict(model, optimizer, **extra), path)


def checkpoint_dict(model, optimizer, **extra) -> dict:
    """The dict ``save_checkpoint`` writes. Its tensors are the live ones (state dicts share storage)."""
    clashing = [key for key in STATE_KEYS if key in extra]
    if clashing:
        raise ValueError(f"save_checkpoint writes {', '.join(clashing)} itself: pass other names as extra entries")
    return {"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), **extra}


def write_atomically(checkpoint: dict, path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder: os.replace stays a rename
    try:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class BackgroundWriter:
    """Writes one checkpoint at a time in a background thread, as ``write_atomically`` does.

    A checkpoint dict holds the live tensors of the model and the optimizer, so nothing
    may change them until ``wait()`` returns. During training only ``optimizer.step()``
    changes them (forward and backward only read the weights): ``guard(optimizer)``
    makes every step wait for a pending write first, so the write of an epoch's
    checkpoint overlaps the next epoch's first forward and backward pass.
    torch.save releases the GIL while it writes tensor data.
    """

    def __init__(self):
        self._thread = None
        self._error = None
        self._guarded = set()

    def submit(self, checkpoint: dict, path) -> None:
        """Start writing ``checkpoint`` to ``path`` (after waiting for the previous write)."""
        self.wait()

        def write():
            try:
                write_atomically(checkpoint, path)
            except BaseException as exc:  # handed to the main thread by wait()
                self._error = exc

        self._thread = threading.Thread(target=write, name=f"write {Path(path).name}")
        self._thread.start()

    def wait(self) -> None:
        """Block until the pending write is on disk; re-raise its error (OSError: disk full, ...)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    @property
    def pending(self) -> bool:
        return self._thread is not None

    def guard(self, optimizer) -> None:
        """Make ``optimizer.step()`` wait for the pending write before it changes any tensor."""
        if id(optimizer) not in self._guarded:
            optimizer.register_step_pre_hook(lambda *_: self.wait())
            self._guarded.add(id(optimizer))


def read_checkpoint(path, device=None) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (or the book's ``torch.save``) without applying it.

    Args:
        path: the ``.pth`` file.
        device: ``map_location`` for its tensors (None: where they were saved).
    Returns:
        The checkpoint dict, with at least ``model_state_dict``.
    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a checkpoint (one line, saying what was expected).
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "missing"
        raise FileNotFoundError(f"no checkpoint at {path} ({what}): expected a .pth file written by save_checkpoint")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except OSError:
        raise  # unreadable (permissions, I/O): not a question of the format
    except Exception as exc:  # a file of another format fails anywhere in the unpickler (IndexError, ...)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a checkpoint (torch.load failed: {first_line}); "
            "expected a file written by save_checkpoint / torch.save"
        ) from None
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
        raise ValueError(
            f"{path} is not a checkpoint: expected a dict with 'model_state_dict' "
            "and 'optimizer_state_dict', as save_checkpoint writes"
        )
    return checkpoint


def load_checkpoint(path, model, optimizer=None, device=None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``, when given) (section 5.4).

    ``torch.load(path, map_location=device, weights_only=True)``, then
    ``model.load_state_dict`` and ``optimizer.load_state_dict``.

    Returns:
        The checkpoint dict (with the extra entries it was saved with).
    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a checkpoint, no optimizer state when an optimizer is
            given, or weights that do not fit ``model`` (one line each).
    """
    checkpoint = read_checkpoint(path, device=device)
    apply_checkpoint(checkpoint, model, optimizer, source=path)
    return checkpoint


def apply_checkpoint(checkpoint, model, optimizer=None, source="the checkpoint"):
    """Load a checkpoint dict's states into ``model`` and ``optimizer`` (when given).

    Raises:
        ValueError: no optimizer state though an optimizer is given, or weights that
            do not fit ``model`` (their names and shapes in one line).
    """
    state_dict = checkpoint["model_state_dict"]
    _check_fits(model, state_dict, source)
    if optimizer is not None and "optimizer_state_dict" not in checkpoint:
        raise ValueError(f"{source} holds no optimizer_state_dict: load it without an optimizer")
    model.load_state_dict(state_dict)
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])


def _check_fits(model, state_dict, source):
    """Raise one line naming the first few names and shapes that do not fit (torch's error is many lines)."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in own]
    problems += [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(
            f"the weights in {source} do not fit this {type(model).__name__} "
            f"({'; '.join(problems[:3])}{more}): build the model with the config it was trained with"
        )


def capture_rng_state(device=None) -> dict:
    """The RNG states a run needs to continue identically: torch CPU, CUDA (when ``device`` is cuda), Python ``random``."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device is not None and torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Set the RNG states that ``capture_rng_state`` returned (CUDA only when saved and available)."""
    torch.set_rng_state(state["torch"].cpu())  # a map_location may have moved it
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))  # setstate needs tuples, not lists
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
