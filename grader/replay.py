"""The untrained 124M model replayed from recorded outputs: instructor grading without 650 MB of weights.

Three scenarios run the book's untrained 124M model (``torch.manual_seed(123)``, 163M float32
parameters: 650 MB) on the book's inputs: calc_loss_batch on the book's 2x3 batch, generate's
greedy continuation of 'Every effort moves you' and calc_loss_loader on The Verdict (whose
per-batch losses are replayed already, ``fixtures.pt``). ``python -m grader regen`` runs them
through a ``Recorder`` and freezes every input the reference and the known mistakes fed the
model with its logits in ``grader/expected/replay_124m.pt`` (~4 MB). Under instructor grading
(the Gradescope bundle, whose container has 768 MB; ``grader batch``; ``--fresh-seeds``) the
scenarios get a ``Replay124M`` instead of the model, which returns those logits.

A recording covers an input, the same inputs regrouped (row by row, another batch order) and
its prefixes whose logits ``regen`` found bit for bit equal to the longer input's (a causal
model's: ``generate`` feeds each step's sequence, one token longer than the last). Rows
computed in another batch differ from the model's own by ~1e-6, far within the checks'
tolerance of these scenarios (1e-4). Any other input raises ``UnrecordedInput``: the check
that fed it fails with that message.

Local practice replays too, with the real model behind the recordings (``PracticeReplay124M``):
an input regen recorded gets its logits at once, anything else (another input, train mode, an
attribute such as ``model.pos_emb``) builds the real model in the grading child on first need
and uses it, so the feedback holds for any input, as the real model's. The book's code feeds
recorded inputs only, so a grade builds no 650 MB model (~2.5 s) unless the code differs.
"""

from __future__ import annotations

from pathlib import Path

import torch

MAX_RECORDED_BYTES = 64 * 2**20  # what regen may store; [2, 256] Verdict batches would be 100 MB each


class UnrecordedInput(RuntimeError):
    """The replayed 124M model was given an input regen did not record; the message is one line."""


class AttributeOfReplay(AttributeError):
    """Student code asked the replayed model for an attribute it does not have."""


def _row_key(row: torch.Tensor) -> tuple:
    return tuple(row.tolist())


class Recorder(torch.nn.Module):
    """Wraps the real model for ``regen``: each forward's input and logits are kept (``recordings``)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.seen: dict[tuple, tuple] = {}  # (shape, tokens) -> (ids, logits)
        self.bytes = 0

    def forward(self, idx):
        logits = self.model(idx)
        ids = idx.detach().to("cpu", torch.int64)
        key = (tuple(ids.shape), _row_key(ids.flatten()))
        if key not in self.seen:
            self.bytes += logits.numel() * logits.element_size()
            if self.bytes > MAX_RECORDED_BYTES:
                raise RuntimeError(f"regen: the scenarios fed the 124M model inputs whose logits exceed "
                                   f"{MAX_RECORDED_BYTES // 2**20} MiB: replay them another way (grader/replay.py)")
            self.seen[key] = (ids.clone(), logits.detach().to("cpu").clone())
        return logits

    def recordings(self) -> dict:
        """What ``regen`` freezes: ``{"recordings": [{"ids", "logits", "lengths"}]}``, each input once,
        an input dropped where it is a prefix of a longer one whose logits hold its own bit for bit
        (``lengths``: the prefix lengths a recording covers, its own included), in a stable order."""
        inputs = sorted(self.seen.values(), key=lambda pair: (pair[0].shape[0], -pair[0].shape[1],
                                                               pair[0].flatten().tolist()))
        kept: list[dict] = []
        for ids, logits in inputs:
            longer = next((r for r in kept if r["ids"].shape[0] == ids.shape[0]
                           and r["ids"].shape[1] > ids.shape[1]
                           and torch.equal(r["ids"][:, :ids.shape[1]], ids)
                           and torch.equal(r["logits"][:, :ids.shape[1]], logits)), None)
            if longer is not None:
                longer["lengths"].append(ids.shape[1])
            else:
                kept.append({"ids": ids, "logits": logits, "lengths": [ids.shape[1]]})
        for r in kept:
            r["lengths"] = sorted(r["lengths"])
        return {"recordings": kept}


class Replay124M(torch.nn.Module):
    """Stands in for the untrained 124M model: ``model(idx)`` returns the logits ``regen`` recorded
    for ``idx`` (a ``(batch, num_tokens)`` tensor of token ids), a float32 tensor of shape
    ``(batch, num_tokens, 50257)`` on ``idx``'s device, attached to a (zero) parameter when grad is on,
    as the model's output is. Raises UnrecordedInput for any input it has no recording of."""

    def __init__(self, recordings: dict):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # parameters() and .to() work as on a model
        self._rows: dict[tuple, tuple] = {}  # row tokens -> (logits of its recording, row, length)
        for rec in recordings["recordings"]:
            for r in range(rec["ids"].shape[0]):
                for length in rec["lengths"]:
                    self._rows.setdefault(_row_key(rec["ids"][r, :length]), (rec["logits"], r, length))

    def forward(self, idx):
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype.is_floating_point:
            raise UnrecordedInput(f"the 124M model takes a (batch, num_tokens) tensor of token ids, got "
                                  f"{type(idx).__name__ if not isinstance(idx, torch.Tensor) else tuple(idx.shape)}")
        rows = []
        for row in idx.detach().to("cpu", torch.int64):
            found = self._rows.get(_row_key(row))
            if found is None:
                raise UnrecordedInput(
                    f"the untrained 124M model is replayed from recorded outputs here (instructor grading) "
                    f"and has none for this input of shape {tuple(idx.shape)}: this check feeds it the "
                    "book's tokens only, as the book's code does")
            logits, r, length = found
            rows.append(logits[r, :length])
        return torch.stack(rows).to(idx.device) + self.anchor.to(idx.device)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            raise AttributeOfReplay(f"the untrained 124M model is replayed from recorded outputs here "
                                    f"(instructor grading): it has no attribute {name!r}; use the "
                                    "function's arguments (context_size, device)") from None


class PracticeReplay124M(Replay124M):
    """Local practice's 124M model: the recorded logits where ``idx`` was recorded and the model is in
    eval mode, else the real model's (built by ``build()`` on first need, in this process, without
    moving torch's CPU random state). Attributes the replay lacks are the real model's."""

    def __init__(self, recordings: dict, build):
        super().__init__(recordings)
        self.__dict__["_build"] = build  # () -> the real untrained 124M model on the grading device
        self.__dict__["_real"] = None  # not a submodule: .to() and parameters() are the replay's

    def real_model(self):
        """The real untrained 124M model, built once, in the replay's train/eval mode."""
        if self._real is None:
            with torch.random.fork_rng(devices=[]):  # the scenario's own random draws stay the same
                self.__dict__["_real"] = self._build()
        return self._real.train(self.training)

    def forward(self, idx):
        if not self.training:
            try:
                return super().forward(idx)
            except UnrecordedInput:
                pass
        return self.real_model()(idx)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeOfReplay:
            if name.startswith("_"):  # torch's internals, or this class's own before __init__ set them
                raise
            return getattr(self.real_model(), name)


def load_replay(expected_dir: Path, build=None) -> Replay124M:
    """The replayed 124M model from ``expected_dir``; with ``build`` (() -> the real model), the
    practice replay that falls back to it (PracticeReplay124M)."""
    from .context import REPLAY_FILE

    recordings = torch.load(expected_dir / REPLAY_FILE, weights_only=True)
    return (Replay124M(recordings) if build is None else PracticeReplay124M(recordings, build)).eval()
