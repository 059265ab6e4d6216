"""Shared inputs of the scenarios: device, tokenizer, text, frozen fixtures, the 124M model, seeds.

The grader's parent process prepares these once, before it forks a child per
exercise, so children share them copy-on-write instead of rebuilding them.

Seeds: a scenario takes every seed that is not the book's from ``ctx.seed(n)``. In local
practice (and in ``regen``) that is ``n`` itself, so the inputs are the ones whose outputs
``regen`` froze. Under instructor grading the context has a ``salt`` drawn at grade time
and ``ctx.seed(n)`` is a seed derived from ``n`` and the salt: other inputs every run, whose
expected outputs are computed then (grader/fresh.py). The book's own inputs (its batch,
'Every effort moves you', The Verdict's loaders and the 124M model with seed 123) are not
drawn from ``ctx.seed``: they stay the book's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"
FIXTURES_FILE = "fixtures.pt"
REPLAY_FILE = "replay_124m.pt"  # the 124M model's recorded outputs (grader/replay.py)


def derived_seed(salt: str, seed: int) -> int:
    """The seed that stands for ``seed`` in a run with ``salt``: in [0, 2**31), never ``seed`` itself."""
    for attempt in range(8):
        digest = hashlib.sha256(f"{salt}:{seed}:{attempt}".encode()).digest()
        value = int.from_bytes(digest[:4], "big") >> 1
        if value != seed:
            return value
    raise AssertionError("sha256 gave the same seed 8 times")  # p = 2**-248


class Context:
    """``salt``: None for the frozen seeds (local practice, regen), else this run's (fresh seeds).
    ``model_124m``: a stand-in for the untrained 124M model (grader/replay.py: its recorded
    outputs under instructor grading, a recorder in regen); None builds the real one on first use."""

    def __init__(self, device="cpu", expected_dir: Path = EXPECTED_DIR, fixtures=None, salt: str | None = None,
                 model_124m=None):
        from reference import get_tokenizer, load_text

        self.device = torch.device(device)
        self.tokenizer = get_tokenizer()
        self.verdict_text = load_text()
        self._model_cpu = None
        self._model_device = None
        self._stand_in = model_124m
        fixtures = fixtures if fixtures is not None else load_fixtures(expected_dir)
        self.book_logits = fixtures["book_logits"]
        self.verdict_batch_losses = dict(fixtures["verdict_batch_losses"])
        self.salt = salt
        self.seeds_drawn = 0  # how many ctx.seed calls so far (fresh.py: which scenarios draw seeds)

    def seed(self, seed: int) -> int:
        """A scenario's seed: ``seed`` itself with the frozen seeds, else one derived from it and the salt."""
        self.seeds_drawn += 1
        return seed if self.salt is None else derived_seed(self.salt, seed)

    @property
    def replays_124m(self) -> bool:
        """Whether the 124M model is a stand-in (then nothing needs building before a fork)."""
        return self._stand_in is not None

    def replace_model_124m(self, stand_in) -> None:
        """Use ``stand_in`` (a module) wherever the scenarios ask for the 124M model from now on."""
        self._stand_in = stand_in

    def prepare_model_124m(self) -> None:
        """Build, before forking, what the children share of the 124M model (nothing for a stand-in)."""
        if self._stand_in is None:
            self.build_model_124m()

    def build_model_124m(self):
        """Build the untrained 124M model on the CPU (seed 123, eval mode), once."""
        if self._model_cpu is None:
            from reference import GPT_CONFIG_124M, GPTModel

            torch.manual_seed(123)
            self._model_cpu = GPTModel(GPT_CONFIG_124M).eval()
        return self._model_cpu

    def model_124m(self):
        """The untrained 124M model on this context's device (or its stand-in)."""
        if self._stand_in is not None:
            return self._stand_in
        if self._model_device is None:
            self._model_device = self.build_model_124m().to(self.device)
        return self._model_device


def missing_expected_files(expected_dir: Path = EXPECTED_DIR) -> list[str]:
    """The frozen files `python -m grader regen` writes that are not in ``expected_dir``."""
    from . import EXERCISES

    names = [FIXTURES_FILE] + [f"{e}.pt" for e in EXERCISES] + [REPLAY_FILE]
    return [name for name in names if not (expected_dir / name).is_file()]


def load_fixtures(expected_dir: Path = EXPECTED_DIR) -> dict:
    return torch.load(expected_dir / FIXTURES_FILE, weights_only=True)


def load_expected(exercise: str, expected_dir: Path = EXPECTED_DIR) -> dict:
    """``{"reference": {scenario: outputs}, "mistakes": {id: {scenario: outputs}}}``."""
    return torch.load(expected_dir / f"{exercise}.pt", weights_only=True)
