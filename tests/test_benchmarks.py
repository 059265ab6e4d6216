"""The benchmark scripts themselves: their baseline is the book's loop, their report says
what it measured, and the GPU script is valid bash (it cannot run here: no GPU)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _module(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_book_loop_prints_what_the_kits_loop_prints():
    """benchmarks/book_gpt_train.py's functions (written out as the book writes them) and the
    kit's train_model_simple: the same lines on a seeded tiny model, exactly."""
    from reference.data import get_tokenizer
    from reference.model import GPTModel
    from reference.pretraining import train_model_simple

    book = _module("book_gpt_train")
    cfg = {"vocab_size": 50257, "context_length": 16, "emb_dim": 16, "n_heads": 2, "n_layers": 1,
           "drop_rate": 0.1, "qkv_bias": False}
    data = torch.randint(0, 50257, (6, 17), generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(list(zip(data[:, :-1], data[:, 1:])), batch_size=2, shuffle=True)
    outputs = []
    for loop in (book.train_model_simple, train_model_simple):
        torch.manual_seed(123)
        model = GPTModel(cfg)
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            result = loop(model, loader, loader, optimizer, "cpu", num_epochs=2, eval_freq=2, eval_iter=2,
                          start_context="Every effort moves you", tokenizer=get_tokenizer())
        outputs.append((out.getvalue(), result))
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count("Ep ") == 3  # steps 0, 2, 4 of 6


def test_speed_report_gives_ratios_and_says_whether_the_log_is_the_books():
    speed = _module("pretraining_speed")
    book_log = "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933\nEvery effort moves you,,,\n"
    other_log = "Ep 1 (Step 000000): Train loss 9.790, Val loss 9.940\nEvery effort moves you,,,\n"
    runs = {
        "book": [{"wall": 100.0, "cpu": 200.0, "peak_mib": 4000, "stdout": book_log}] * 3,
        "faithful": [{"wall": w, "cpu": 190.0, "peak_mib": 4100, "stdout": book_log} for w in (90.0, 95.0, 99.0)],
        "fast": [{"wall": 60.0, "cpu": 130.0, "peak_mib": 3900, "stdout": other_log}] * 3,
    }
    with contextlib.redirect_stdout(io.StringIO()) as out:
        speed.report(runs, tokens=4608)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[1:] if line.strip()}
    assert "0.95 (0.90-0.99), 0.95 (0.95-0.95)" in lines["faithful"] and "identical to the book's" in lines["faithful"]
    assert "differ: last val loss 9.940 vs 9.933" in lines["fast"]
    assert "48.5" in lines["faithful"]  # 4,608 tokens / 95 s (the median)


def test_gpu_check_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(BENCHMARKS / "gpu_check.sh")], capture_output=True).returncode == 0


def test_steps_mode_times_each_row_in_its_own_process_and_compares_train_losses():
    speed, steps = _module("pretraining_speed"), _module("training_steps")
    rows = speed.step_commands(3, fast=True)
    assert list(rows) == list(steps.ROWS) and all(command[-2:] == [row, "3"] for row, command in rows.items())
    book = {"wall": 30.0, "cpu": 20.0, "peak_mib": 3700, "stdout": "Ep 1 (Step 000002): Train loss 9.5\n"}
    fast = dict(book, wall=15.0, stdout="Ep 1 (Step 000002): Train loss 9.5004\n")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        speed.report({"book": [book] * 3, "fast": [fast] * 3}, tokens=3 * 512)
    line = out.getvalue().splitlines()[-1]
    assert "0.50 (0.50-0.50)" in line and "differ: last train loss 9.500400 vs 9.500000" in line
    assert "102.4" in line  # 1,536 tokens / 15 s


def test_training_steps_refuses_an_unknown_row():
    try:
        _module("training_steps").main(["plain", "1"])
    except SystemExit as exit_:
        assert "ROW must be one of book, faithful, fast, fast-T" in str(exit_)
    else:
        raise AssertionError("no error for an unknown row")
