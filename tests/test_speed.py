"""The training run's speed-ups: what may not change a number, and what --fast changes.

- the allocator setting (reference/allocator.py) and the background checkpoint
  writes (checkpoints.BackgroundWriter) leave every loss and weight bit for bit equal;
- ``--fast`` (reference/fast.py) keeps the book's model: same weights, same state
  dict, no random number drawn; its forward and gradients agree with the book's
  modules within float32 rounding; the run says on stderr that it is not the book's.

Every tolerance was measured on CPU with torch 2.13 (noted beside it). The 10-epoch
``--fast`` run against the book's final validation loss is slow-marked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from reference import checkpoints
from reference.checkpoints import BackgroundWriter, read_checkpoint
from reference.fast import FusedLayerNorm, SDPAttention, TanhGELU, available_cpus, fit_threads, speed_up_model
from reference.model import GPTModel
from reference.run import SMALL_CONFIG

ROOT = Path(__file__).resolve().parent.parent
SMALL_64 = dict(SMALL_CONFIG, context_length=64)


def _cli(*args, code_before="", timeout=600, one_thread=True):
    """``python -m reference ARGS`` in a fresh process, after running ``code_before`` in it;
    one torch thread unless told otherwise (faster on the shared 2-core machine)."""
    script = f"import sys\n{code_before}\nfrom reference.run import main\nsys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def short_text(tmp_path_factory):
    """The first 12,000 characters of The Verdict: 4 batches of 2x256 tokens for training, 1 chunk for validation."""
    from reference.data import load_text

    path = tmp_path_factory.mktemp("text") / "verdict-start.txt"
    path.write_text(load_text()[:12000], encoding="utf-8")
    return path


# --------------------------------------------------------------------------- numbers that may not change


@pytest.mark.slow
def test_allocator_setting_and_background_writes_change_no_number(tmp_path, short_text):
    """The small model at the book's context of 256 (its logits, 2x256x50,257 floats = 103 MB,
    are one of the blocks glibc would map afresh each step), 2 epochs: once as the CLI runs
    it, once with the allocator left alone and the checkpoint written synchronously.
    Slow: two runs, 85 s on the shared 2-core machine (load average 7); the default run keeps
    the writer's guard (test_background_writer_makes_the_optimizer_step_wait)."""
    run = ("--model", "small", "--epochs", 2, "--text", short_text, "--device", "cpu")
    tuned = _cli(*run, "--out", tmp_path / "tuned")
    assert tuned.returncode == 0, tuned.stderr
    plain = _cli(*run, "--out", tmp_path / "plain", code_before=(
        "import reference.allocator, reference.run\n"
        "reference.allocator.keep_freed_memory = lambda: False\n"
        "write = reference.run.save_run_checkpoint\n"
        "reference.run.save_run_checkpoint = lambda *a, writer=None: write(*a)\n"))
    assert plain.returncode == 0, plain.stderr
    assert tuned.stdout == plain.stdout  # every log line and sample
    a = read_checkpoint(tmp_path / "tuned" / "model_and_optimizer.pth")
    b = read_checkpoint(tmp_path / "plain" / "model_and_optimizer.pth")
    assert a["train_losses"] == b["train_losses"] and a["val_losses"] == b["val_losses"]  # equal floats
    for name, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][name]), name
    for state_a, state_b in zip(a["optimizer_state_dict"]["state"].values(), b["optimizer_state_dict"]["state"].values()):
        assert all(torch.equal(state_a[k], state_b[k]) for k in ("exp_avg", "exp_avg_sq")), "AdamW state"


def test_allocator_setting_is_taken_on_linux_glibc():
    probe = subprocess.run([sys.executable, "-c", "from reference.allocator import keep_freed_memory as k; print(k())"],
                           cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    import platform

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert probe.stdout.strip() == str(expected), probe.stderr


# --------------------------------------------------------------------------- the background writer


def _tiny_pair():
    torch.manual_seed(0)
    model = GPTModel({"vocab_size": 50, "context_length": 6, "emb_dim": 8, "n_heads": 2, "n_layers": 1,
                      "drop_rate": 0.0, "qkv_bias": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    return model, optimizer


def test_background_writer_makes_the_optimizer_step_wait(tmp_path, monkeypatch):
    model, optimizer = _tiny_pair()
    events = []
    real_write = checkpoints.write_atomically

    def slow_write(checkpoint, path):
        time.sleep(0.3)  # a write that takes longer than a step
        real_write(checkpoint, path)
        events.append("written")

    monkeypatch.setattr(checkpoints, "write_atomically", slow_write)
    writer = BackgroundWriter()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    writer.guard(optimizer)
    writer.guard(optimizer)  # once is enough: a second guard adds no second wait
    writer.submit(checkpoints.checkpoint_dict(model, optimizer, epoch=1), tmp_path / "c.pth")
    assert writer.pending and threading.active_count() >= 2
    optimizer.step()  # changes the weights the checkpoint holds: must wait for the write
    events.append("stepped")
    assert events == ["written", "stepped"]
    saved = read_checkpoint(tmp_path / "c.pth")
    for name, tensor in before.items():  # the weights of before the step
        assert torch.equal(saved["model_state_dict"][name], tensor), name
    assert len(optimizer._optimizer_step_pre_hooks) == 1


def test_background_writer_hands_its_error_to_wait(tmp_path):
    model, optimizer = _tiny_pair()
    writer = BackgroundWriter()
    writer.submit(checkpoints.checkpoint_dict(model, optimizer), tmp_path / "no-such-folder" / "c.pth")
    with pytest.raises(FileNotFoundError):
        writer.wait()
    writer.wait()  # the error is reported once
    assert not writer.pending and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- --fast


def test_fast_model_is_the_books_model_with_fused_kernels():
    torch.manual_seed(123)
    book = GPTModel(SMALL_64)
    torch.manual_seed(123)
    fast = GPTModel(SMALL_64)
    rng = torch.get_rng_state()
    speed_up_model(fast, "cpu")
    assert torch.equal(torch.get_rng_state(), rng)  # no random number drawn
    assert list(fast.state_dict()) == list(book.state_dict())  # checkpoints load into either
    for (name, a), b in zip(book.state_dict().items(), fast.state_dict().values()):
        assert torch.equal(a, b), name
    kinds = {type(m) for m in fast.modules()}
    assert {SDPAttention, FusedLayerNorm, TanhGELU} <= kinds

    x = torch.randint(0, 50257, (2, 64), generator=torch.Generator().manual_seed(0))
    book.eval()
    fast.eval()
    with torch.no_grad():
        # measured 9.5e-7 (logits up to 2.9): float32 rounding of other kernels
        torch.testing.assert_close(fast(x), book(x), atol=1e-5, rtol=1e-5)


def test_fast_gradients_without_dropout_match_the_books():
    cfg = dict(SMALL_64, drop_rate=0.0)
    models = []
    for fast in (False, True):
        torch.manual_seed(123)
        model = GPTModel(cfg)
        if fast:
            speed_up_model(model, "cpu")
        x = torch.randint(0, 50257, (2, 64), generator=torch.Generator().manual_seed(0))
        torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
        models.append(model)
    assert not any(isinstance(m, torch.nn.Dropout) for m in models[1].trf_blocks[0].ff.modules())
    assert isinstance(models[1].drop_emb, torch.nn.Identity)  # p = 0: no random numbers drawn for it
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        # measured at most 5.6e-9 (gradients up to 0.03)
        torch.testing.assert_close(b.grad, a.grad, atol=1e-7, rtol=1e-4, msg=name)


def test_fast_run_says_it_is_not_the_books(tmp_path, capsys, short_text):
    """In the test's process (a fresh one cost 20-29 s here, most of it starting torch)."""
    from reference import run as ref_run

    out = tmp_path / "out"
    threads = torch.get_num_threads()  # --fast fits them to the free CPUs
    try:
        rc = ref_run.main(["--model", "small", "--context-length", "64", "--batch-size", "8", "--epochs", "1",
                           "--fast", "--text", str(short_text), "--device", "cpu", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    run = capsys.readouterr()
    assert rc == 0, run.err
    notice = [line for line in run.err.splitlines() if "--fast" in line]
    assert len(notice) == 1 and "not equal" in notice[0] and "leave out --fast" in notice[0]
    assert run.out.startswith("Ep 1 (Step 000000): Train loss ")
    checkpoint = read_checkpoint(out / "model_and_optimizer.pth")
    assert checkpoint["settings"]["fast"] is True
    book_model = GPTModel(checkpoint["config"])
    book_model.load_state_dict(checkpoint["model_state_dict"])  # the book's class takes it as it is


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fast_on_cuda_autocasts_to_bf16():
    """Not measured here (no GPU lent): bf16 keeps 8 bits of mantissa (0.4% relative), so the
    untrained small model's loss (~10.9) stays within 0.05 of float32's."""
    torch.manual_seed(123)
    book = GPTModel(SMALL_64).to("cuda").eval()
    torch.manual_seed(123)
    fast = speed_up_model(GPTModel(SMALL_64), "cuda").to("cuda").eval()
    x = torch.randint(0, 50257, (2, 64), generator=torch.Generator().manual_seed(0)).to("cuda")
    with torch.no_grad():
        losses = [torch.nn.functional.cross_entropy(m(x).flatten(0, 1), x.flatten()) for m in (book, fast)]
        assert fast(x).dtype == torch.float32  # computed in bf16, handed back in float32 for the loss
    assert 0 < abs(losses[0].item() - losses[1].item()) <= 0.05  # not equal: bf16 did change the numbers


def test_available_cpus_counts_affinity():
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert available_cpus() <= len(os.sched_getaffinity(0))


def test_fit_threads_leaves_the_busy_cpus_alone():
    default = torch.get_num_threads()
    try:
        assert fit_threads(load_average=0.0)[0] == min(default, available_cpus())  # a quiet machine: all of them
        threads, why = fit_threads(load_average=50.0)  # a busy one: 1
        assert threads == 1 == torch.get_num_threads() and why.endswith("load average 50.0")
    finally:
        torch.set_num_threads(default)


@pytest.mark.slow
def test_fast_ten_epochs_ends_near_the_books_validation_loss(tmp_path, book_values):
    """The issue's goal: after the 10 epochs of ``python -m reference --fast``, a validation
    loss within 0.1 of the book's 6.452. Prints the run's log (see it with -s)."""
    run = _cli("--fast", "--device", "cpu", "--out", tmp_path / "out", timeout=4 * 3600, one_thread=False)
    assert run.returncode == 0, run.stderr[-3000:]
    print(run.stdout, run.stderr, sep="\n")
    last = [line for line in run.stdout.split("\n") if line.startswith("Ep ")][-1]
    book_last = book_values["training"]["log_lines"][-1]  # Ep 10 (Step 000085): ... Val loss 6.452
    assert last.split(":")[0] == book_last.split(":")[0]  # the same number of steps
    assert abs(float(last.rsplit(" ", 1)[1]) - float(book_last.rsplit(" ", 1)[1])) <= 0.1, last


def test_a_failed_checkpoint_write_is_one_line(tmp_path, capsys, monkeypatch, short_text):
    """Disk full while the background thread writes epoch 1's checkpoint: the optimizer's next
    step (epoch 2) meets the error; the run stops with one line and exit status 2."""
    from reference import run as ref_run

    def disk_full(checkpoint, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(checkpoints, "write_atomically", disk_full)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = ref_run.main(["--model", "small", "--context-length", "64", "--batch-size", "8", "--epochs", "2",
                           "--text", str(short_text),
                           "--device", "cpu", "--out", str(tmp_path / "out")])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert lines[-1] == (f"python -m reference: error: could not write {tmp_path / 'out' / 'model_and_optimizer.pth'}: "
                         "No space left on device")
    assert "Traceback" not in captured.err
    assert captured.out.count("Every effort moves you") == 1  # it stopped in epoch 2
