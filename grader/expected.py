"""``python -m grader regen``: compute and freeze the expected outputs of every scenario.

Runs each scenario on the reference function and on every known mistake
(grader/checks/<exercise>/mistakes.py), on the CPU, and writes ``grader/expected/<exercise>.pt``
plus ``fixtures.pt`` (the book's logits and the 124M model's per-batch losses on
The Verdict) and ``replay_124m.pt`` (every input the scenarios fed the 124M model, with its
logits: grader/replay.py). Never edit these files by hand; tests/ check they are current.

Reproducible: a frozen error record keeps the exception's type and message only (no
traceback, no line of a kit file), so no path of the machine that ran ``regen`` is stored.
Floats of the 124M model's forward pass can differ by ~1e-6 between runs (the CPU kernels
it picks depend on memory alignment); ``regen`` therefore keeps an existing file, byte for
byte, when the new values equal it within ATOL + RTOL * |value|, and ``regen --check``
reports whether anything changed beyond that tolerance.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from . import EXERCISES
from .child import frozen
from .context import EXPECTED_DIR, FIXTURES_FILE, REPLAY_FILE, Context

# Two regens on one machine gave book logits of the untrained 124M model that differ by up to
# 1.5e-6 (values up to 2.7); everything else came out bit-identical. Known mistakes differ
# from the reference by far more than this.
ATOL, RTOL = 1e-6, 1e-5


def compute_fixtures(ctx: Context) -> dict:
    """Inputs the scenarios replay instead of recomputing with the 124M model."""
    from reference import calc_loss_batch

    from .checks.common import BOOK_INPUTS, batch_key, verdict_loaders

    model = ctx.build_model_124m()
    losses = {}
    with torch.no_grad():
        book_logits = model(torch.tensor(BOOK_INPUTS))  # (2, 3, 50257)
        train_loader, val_loader = verdict_loaders(ctx, context_length=256)
        torch.manual_seed(123)  # the shuffle the calc_loss_loader scenario draws
        for loader in (train_loader, val_loader):
            for input_batch, target_batch in loader:
                losses[batch_key(input_batch, target_batch)] = calc_loss_batch(
                    input_batch, target_batch, model, "cpu").item()
    return {"book_logits": book_logits, "verdict_batch_losses": losses}


def compute_expected(exercise: str, ctx: Context) -> dict:
    import reference

    from .checks import mistakes
    from .child import run_scenarios

    return frozen({
        "reference": run_scenarios(exercise, getattr(reference, exercise), ctx),
        "mistakes": {mid: run_scenarios(exercise, fn, ctx) for mid, fn in mistakes(exercise).items()},
    })


def differences(old, new, path="") -> list[str]:
    """Where two frozen structures differ beyond ATOL/RTOL (error records exactly)."""
    if isinstance(old, dict) and "__error__" in old:
        return [] if new == old else [f"{path}: {old!r} vs {new!r}"[:300]]
    if isinstance(old, torch.Tensor):
        if not isinstance(new, torch.Tensor) or new.shape != old.shape or new.dtype != old.dtype:
            return [f"{path}: {old!r} vs {new!r}"[:300]]
        if old.is_floating_point():
            same = torch.allclose(new, old, atol=ATOL, rtol=RTOL, equal_nan=True)
        else:
            same = torch.equal(new, old)
        return [] if same else [f"{path}: tensors differ"]
    if isinstance(old, float):
        same = isinstance(new, float) and (math.isclose(new, old, rel_tol=RTOL, abs_tol=ATOL)
                                           or (math.isnan(new) and math.isnan(old)))
        return [] if same else [f"{path}: {old!r} vs {new!r}"]
    if isinstance(old, dict):
        if not isinstance(new, dict) or set(new) != set(old):
            return [f"{path}: keys {sorted(old)} vs {sorted(new) if isinstance(new, dict) else new!r}"]
        return [d for key in old for d in differences(old[key], new[key], f"{path}/{key}")]
    if isinstance(old, (list, tuple)):
        if type(new) is not type(old) or len(new) != len(old):
            return [f"{path}: {old!r} vs {new!r}"[:300]]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if new == old and type(new) is type(old) else [f"{path}: {old!r} vs {new!r}"[:300]]


def _store(values, path: Path, check: bool) -> str:
    """Write ``values`` to ``path`` unless it already holds them within the tolerance.
    Returns "unchanged", "changed" (or "would change" with ``check``) or "new"."""
    if path.is_file():
        try:
            old = torch.load(path, weights_only=True)
        except Exception:  # unreadable: replace it
            old = None
        if old is not None and not differences(old, values):
            return "unchanged"
        status = "would change" if check else "changed"
    else:
        status = "would be new" if check else "new"
    if not check:
        buffer = io.BytesIO()
        torch.save(values, buffer)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)
    return status


def regenerate(out_dir: Path = EXPECTED_DIR, exercises=EXERCISES, log=print, check: bool = False) -> list[str]:
    """Recompute the frozen files into ``out_dir``; returns the names that changed (or would)."""
    import matplotlib

    from .replay import Recorder

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # tiny workloads: threads only add overhead (and noise)
    torch.manual_seed(123)
    ctx = Context("cpu", fixtures={"book_logits": None, "verdict_batch_losses": {}})
    fixtures = compute_fixtures(ctx)
    ctx.book_logits = fixtures["book_logits"]
    ctx.verdict_batch_losses = fixtures["verdict_batch_losses"]
    recorder = Recorder(ctx.build_model_124m())  # what the reference and the mistakes feed it, for the replay
    ctx.replace_model_124m(recorder)
    files = [(FIXTURES_FILE, lambda: fixtures)] + [
        (f"{e}.pt", (lambda ex: lambda: compute_expected(ex, ctx))(e)) for e in exercises]
    if set(exercises) == set(EXERCISES):  # every scenario ran: the recordings are complete
        files.append((REPLAY_FILE, recorder.recordings))
    changed = []
    for name, compute in files:
        status = _store(compute(), out_dir / name, check)
        log(f"{status}: {name}")
        if status != "unchanged":
            changed.append(name)
    return changed
