"""Shared fixtures for the kit's tests.

The tests run from the repository root with ``python -m pytest`` without
installing the kit, so the root is put on ``sys.path`` here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS_DATA = Path(__file__).resolve().parent / "data"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def book_values():
    """The numbers printed in chapter 5, measured on CPU (tests/data/chapter5-book-values.json)."""
    return json.loads((TESTS_DATA / "chapter5-book-values.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def values_53_55():
    """The numbers and texts of sections 5.3-5.5 (tests/data/chapter5-sections-5.3-5.5-values.json)."""
    return json.loads((TESTS_DATA / "chapter5-sections-5.3-5.5-values.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def model_124m():
    """The book's untrained 124M model: ``torch.manual_seed(123); GPTModel(GPT_CONFIG_124M)``, eval mode.

    Shared by several tests; none of them may train it or change its mode for good.
    """
    import torch

    from reference.model import GPT_CONFIG_124M, GPTModel

    torch.manual_seed(123)
    return GPTModel(GPT_CONFIG_124M).eval()


@pytest.fixture
def one_thread():
    """torch on one CPU thread during the test (faster on a shared 2-core machine), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def grading_ctx():
    """The grader's shared inputs, made once per session (``runner.prepare_parent`` for every
    exercise on the CPU; it sets ``torch.set_num_threads(1)`` and MPLBACKEND=Agg here).

    Tests that grade in-process pass it on: ``runner.grade(source, ctx=grading_ctx)``.
    """
    from grader import EXERCISES
    from grader.runner import prepare_parent

    return prepare_parent(EXERCISES, "cpu")


def write_stubs(folder: Path) -> Path:
    """An exercises/ folder as ``python -m grader make-exercises`` writes it from solutions/, in
    ``folder``: tests that need the stubs use this, never the working exercises/ folder, which
    holds whatever a student has written there."""
    from grader.generate import generated_files

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in generated_files().items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
