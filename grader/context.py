"""Shared inputs of the scenarios: device, tokenizer, text, frozen fixtures, the 124M model.

The grader's parent process prepares these once, before it forks a child per
exercise, so children share them copy-on-write instead of rebuilding them.
"""

from __future__ import annotations

from pathlib import Path

import torch

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"
FIXTURES_FILE = "fixtures.pt"


class Context:
    def __init__(self, device="cpu", expected_dir: Path = EXPECTED_DIR, fixtures=None):
        from reference import get_tokenizer, load_text

        self.device = torch.device(device)
        self.tokenizer = get_tokenizer()
        self.verdict_text = load_text()
        self._model_cpu = None
        self._model_device = None
        fixtures = fixtures if fixtures is not None else load_fixtures(expected_dir)
        self.book_logits = fixtures["book_logits"]
        self.verdict_batch_losses = dict(fixtures["verdict_batch_losses"])

    def build_model_124m(self):
        """Build the untrained 124M model on the CPU (seed 123, eval mode), once."""
        if self._model_cpu is None:
            from reference import GPT_CONFIG_124M, GPTModel

            torch.manual_seed(123)
            self._model_cpu = GPTModel(GPT_CONFIG_124M).eval()
        return self._model_cpu

    def model_124m(self):
        """The untrained 124M model on this context's device."""
        if self._model_device is None:
            self._model_device = self.build_model_124m().to(self.device)
        return self._model_device


def missing_expected_files(expected_dir: Path = EXPECTED_DIR) -> list[str]:
    """The frozen files `python -m grader regen` writes that are not in ``expected_dir``."""
    from . import EXERCISES

    names = [FIXTURES_FILE] + [f"{e}.pt" for e in EXERCISES]
    return [name for name in names if not (expected_dir / name).is_file()]


def load_fixtures(expected_dir: Path = EXPECTED_DIR) -> dict:
    return torch.load(expected_dir / FIXTURES_FILE, weights_only=True)


def load_expected(exercise: str, expected_dir: Path = EXPECTED_DIR) -> dict:
    """``{"reference": {scenario: outputs}, "mistakes": {id: {scenario: outputs}}}``."""
    return torch.load(expected_dir / f"{exercise}.pt", weights_only=True)
