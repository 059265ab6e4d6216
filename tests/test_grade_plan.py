"""How one grade plans its children for speed (grader/runner.py): the order they start in, and what
the parent imports once for them (measured in benchmarks/grader_speed.py)."""

from __future__ import annotations

import json

from grader import EXERCISES
from grader.runner import NEEDS_124M, STARTS_FIRST, USES_OPTIMIZER, start_rank
from grader.sources import open_submission


class Ctx:
    def __init__(self, replays_124m):
        self.replays_124m = replays_124m


def test_the_optimizer_exercises_start_after_the_ones_that_run_while_the_parent_imports_for_them():
    order = sorted(EXERCISES, key=lambda e: start_rank(e, Ctx(replays_124m=True)))
    assert order[:len(STARTS_FIRST)] == list(STARTS_FIRST)
    optimizer = [order.index(e) for e in USES_OPTIMIZER]
    assert min(optimizer) == len(STARTS_FIRST)
    assert max(optimizer) == len(STARTS_FIRST) + len(USES_OPTIMIZER) - 1


def test_train_model_simple_needs_no_optimizer_import_and_starts_with_the_first():
    """Its scenarios hand the loop common.PlainSGD (tests/test_plain_sgd.py): the longest child
    that needs nothing of the parent's, it runs while the parent imports torch._dynamo."""
    assert "train_model_simple" not in USES_OPTIMIZER and "train_model_simple" in STARTS_FIRST
    assert {"save_checkpoint", "load_checkpoint"} <= USES_OPTIMIZER  # they save and load AdamW's state


def test_where_the_124m_model_is_built_its_children_start_last():
    order = sorted(EXERCISES, key=lambda e: start_rank(e, Ctx(replays_124m=False)))
    assert set(order[-len(NEEDS_124M):]) == NEEDS_124M


def test_a_file_or_notebook_that_uses_matplotlib_has_pyplot_imported_once_by_the_parent(tmp_path):
    with_plot, without = tmp_path / "a.py", tmp_path / "b.py"
    with_plot.write_text("import torch\nfrom matplotlib import pyplot as plt\n")
    without.write_text("import torch\n")
    assert open_submission(with_plot).shares_pyplot and not open_submission(without).shares_pyplot
    notebook = tmp_path / "c.ipynb"
    notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": "%matplotlib inline", "outputs": [],
         "execution_count": None}]}))
    assert open_submission(notebook).shares_pyplot
