"""Section 5.4: saving and loading checkpoints, and resuming the training run.

The resume tests run the CLI in-process (``reference.run.main``) on the small
model with a context of 64 tokens and the first 4,000 characters of The Verdict
(7 steps an epoch)
(the run's logic does not depend on the text; the whole text and the 124M model
are in tests/test_pretraining_slow.py). Nothing here uses the network.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference import data as ref_data
from reference import run as ref_run
from reference.checkpoints import (
    capture_rng_state,
    load_checkpoint,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from reference.model import GPTModel

ROOT = Path(__file__).resolve().parent.parent
TINY = {"vocab_size": 50, "context_length": 6, "emb_dim": 8, "n_heads": 2, "n_layers": 1,
        "drop_rate": 0.0, "qkv_bias": False}


def _trained_pair(seed=0, cfg=TINY):
    """A tiny model and its AdamW after one step (so the optimizer has state)."""
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    x = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]))
    loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten())
    loss.backward()
    optimizer.step()
    return model, optimizer


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip(tmp_path):
    model, optimizer = _trained_pair(seed=0)
    path = tmp_path / "model_and_optimizer.pth"
    save_checkpoint(model, optimizer, path, config=TINY, epoch=3, losses=[1.5, 2.5])

    fresh, fresh_opt = _trained_pair(seed=1)  # other weights, other optimizer state
    assert not torch.equal(fresh.tok_emb.weight, model.tok_emb.weight)
    checkpoint = load_checkpoint(path, fresh, fresh_opt, device="cpu")
    _assert_same_state(fresh.state_dict(), model.state_dict())
    assert fresh_opt.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for p_fresh, p_model in zip(fresh.parameters(), model.parameters()):
        state_fresh, state_model = fresh_opt.state[p_fresh], optimizer.state[p_model]
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state_fresh[key], state_model[key]), key
    assert checkpoint["config"] == TINY and checkpoint["epoch"] == 3 and checkpoint["losses"] == [1.5, 2.5]
    assert set(checkpoint) == {"model_state_dict", "optimizer_state_dict", "config", "epoch", "losses"}

    # the model alone, as in the book's section 5.4
    only_model, _ = _trained_pair(seed=2)
    load_checkpoint(path, only_model)
    _assert_same_state(only_model.state_dict(), model.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_and_optimizer.pth"]  # no temporary file left


def test_save_never_leaves_half_a_checkpoint(tmp_path, monkeypatch):
    model, optimizer = _trained_pair()
    path = tmp_path / "ckpt.pth"
    save_checkpoint(model, optimizer, path, epoch=1)
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, optimizer, path, epoch=2)
    assert path.read_bytes() == before  # the earlier checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth"]  # the temporary file is gone


def test_save_refuses_clashing_extra(tmp_path):
    model, optimizer = _trained_pair()
    with pytest.raises(ValueError, match="model_state_dict"):
        save_checkpoint(model, optimizer, tmp_path / "c.pth", model_state_dict={})
    assert not (tmp_path / "c.pth").exists()


def test_load_errors_are_one_line(tmp_path):
    model, optimizer = _trained_pair()
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError) as excinfo:
        load_checkpoint(missing, model)
    assert str(missing) in _one_line(str(excinfo.value))

    with pytest.raises(FileNotFoundError, match="a folder"):
        load_checkpoint(tmp_path, model)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ValueError) as excinfo:
        load_checkpoint(garbage, model)
    assert "is not a checkpoint" in _one_line(str(excinfo.value))

    tensor_only = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(ValueError, match="expected a dict with 'model_state_dict'"):
        load_checkpoint(tensor_only, model)

    model_only = tmp_path / "model.pth"
    torch.save({"model_state_dict": model.state_dict()}, model_only)
    load_checkpoint(model_only, model)  # fine without an optimizer
    with pytest.raises(ValueError, match="no optimizer_state_dict"):
        load_checkpoint(model_only, model, optimizer)

    save_checkpoint(model, optimizer, tmp_path / "tiny.pth")
    other = GPTModel(dict(TINY, emb_dim=12))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError) as excinfo:
        load_checkpoint(tmp_path / "tiny.pth", other)
    line = _one_line(str(excinfo.value))
    assert "tok_emb.weight: checkpoint (50, 8) vs model (50, 12)" in line and "more" in line
    _assert_same_state(other.state_dict(), before)  # nothing was loaded


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    model, optimizer = _trained_pair()
    torch.manual_seed(99)
    random.seed(99)
    save_checkpoint(model, optimizer, tmp_path / "c.pth", rng_state=capture_rng_state("cpu"))
    expected = (torch.rand(5), random.random())
    torch.manual_seed(0)
    random.seed(0)
    restore_rng_state(read_checkpoint(tmp_path / "c.pth")["rng_state"])
    got = (torch.rand(5), random.random())
    assert torch.equal(got[0], expected[0]) and got[1] == expected[1]


# --------------------------------------------------------------------------- resuming the run


@pytest.fixture
def quick_run(monkeypatch, one_thread):
    """The CLI in-process on a shorter text, with one CPU thread (faster on a shared 2-core machine)."""
    text = ref_data.load_text()[:4000]
    monkeypatch.setattr(ref_data, "load_text", lambda *args, **kwargs: text)


def _main(capsys, *args):
    rc = ref_run.main([*map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


SMALL_RUN = ("--model", "small", "--context-length", "64", "--device", "cpu")


def _epochs_of(stdout):
    """stdout split after each epoch's sample line (the line after its Ep lines)."""
    epochs, current = [], []
    for line in stdout.split("\n")[:-1]:
        current.append(line)
        if not line.startswith("Ep "):
            epochs.append(current)
            current = []
    assert current == []
    return epochs


def test_resume_continues_the_run_exactly(tmp_path, capsys, monkeypatch, quick_run):
    whole, interrupted, extended = tmp_path / "whole", tmp_path / "interrupted", tmp_path / "extended"

    rc, whole_out, whole_err = _main(capsys, *SMALL_RUN, "--epochs", 4, "--out", whole)
    assert rc == 0, whole_err
    whole_epochs = _epochs_of(whole_out)
    assert len(whole_epochs) == 4 and all(len(e) >= 2 for e in whole_epochs)  # Ep lines, then the sample
    # progress: plain lines when stderr is not a terminal, every 10 steps and at the end
    assert "[epoch 2: step 10/28," in whole_err and "[epoch 4: step 28/28," in whole_err

    # the same run, interrupted (Ctrl-C) right after epoch 2's checkpoint
    real_save = ref_run.save_run_checkpoint

    def save_then_interrupt(path, model, optimizer, cfg, settings, state, device, writer=None):
        real_save(path, model, optimizer, cfg, settings, state, device, writer=writer)
        if state.epoch == 2:
            raise KeyboardInterrupt  # while epoch 2's checkpoint is being written in the background

    monkeypatch.setattr(ref_run, "save_run_checkpoint", save_then_interrupt)
    rc, first_out, first_err = _main(capsys, *SMALL_RUN, "--epochs", 4, "--out", interrupted)
    monkeypatch.setattr(ref_run, "save_run_checkpoint", real_save)
    assert rc == 130
    assert f"continue with: python -m reference --resume {interrupted}" in first_err
    assert _epochs_of(first_out) == whole_epochs[:2]
    assert not (interrupted / "loss-plot.png").exists()
    shutil.copytree(interrupted, extended)

    rc, rest_out, rest_err = _main(capsys, "--resume", interrupted, "--device", "cpu")
    assert rc == 0, rest_err
    assert "at epoch 3 of 4" in rest_err
    assert first_out + rest_out == whole_out  # every log line and sample, in order
    for name in ("loss-plot.pdf", "loss-plot.png"):
        assert (interrupted / name).stat().st_size > 0
    a = read_checkpoint(whole / "model_and_optimizer.pth")
    b = read_checkpoint(interrupted / "model_and_optimizer.pth")
    _assert_same_state(a["model_state_dict"], b["model_state_dict"])
    for key in ("epoch", "global_step", "tokens_seen", "train_losses", "val_losses", "track_tokens_seen",
                "settings", "config"):
        assert a[key] == b[key], key  # the losses: equal floats, not just the 3 printed decimals
    assert a["epoch"] == 4 and a["settings"]["num_epochs"] == 4 and a["config"]["emb_dim"] == 64

    # a run stopped after 2 epochs and extended with --epochs 3: the whole run's epoch 3
    rc, third_out, err = _main(capsys, "--resume", extended, "--epochs", 3, "--device", "cpu")
    assert rc == 0, err
    assert _epochs_of(third_out) == [whole_epochs[2]]
    c = read_checkpoint(extended / "model_and_optimizer.pth")
    assert c["epoch"] == 3 and c["settings"]["num_epochs"] == 3
    assert c["train_losses"] == a["train_losses"][: len(c["train_losses"])]

    # resuming the finished run: nothing to do; options that would change the run are refused
    rc, out, err = _main(capsys, "--resume", whole)
    assert rc == 0 and out == ""
    assert "nothing to do" in _one_line(err) and "all its 4 epochs" in err
    rc, out, err = _main(capsys, "--resume", whole, "--epochs", 3)
    assert rc == 2 and out == ""
    assert "--epochs 3 is fewer than the 4 epochs" in _one_line(err)
    rc, out, err = _main(capsys, "--resume", whole, "--context-length", 32)
    assert rc == 2 and "run's own --context-length (64): leave out --context-length 32" in _one_line(err)


def test_resume_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = _main(capsys, "--resume", empty)
    assert rc == 2 and out == ""
    line = _one_line(err)
    assert line.startswith("python -m reference: error: --resume ") and "no model_and_optimizer.pth" in line

    model, optimizer = _trained_pair()
    save_checkpoint(model, optimizer, empty / "model_and_optimizer.pth")  # no training state in it
    rc, out, err = _main(capsys, "--resume", empty)
    assert rc == 2 and "cannot be resumed" in _one_line(err)

    (empty / "model_and_optimizer.pth").write_bytes(b"garbage")
    rc, out, err = _main(capsys, "--resume", empty)
    assert rc == 2 and "is not a checkpoint" in _one_line(err)


def test_cli_resume_without_checkpoint_subprocess(tmp_path):
    run = subprocess.run([sys.executable, "-m", "reference", "--resume", str(tmp_path)], cwd=ROOT,
                         env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    line = _one_line(run.stderr)
    assert line == (f"python -m reference: error: --resume {tmp_path}: no model_and_optimizer.pth there; "
                    "give the --out folder of a run")


def test_bad_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as excinfo:
        ref_run.main(["--model", "huge"])
    assert excinfo.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("python -m reference: error: argument --model: invalid choice: 'huge'")


def test_lines_above_bar_keeps_stdout_exact():
    import io

    from tqdm import tqdm

    terminal, out = io.StringIO(), io.StringIO()
    bar = tqdm(total=3, file=terminal, disable=False)
    proxy = ref_run.LinesAboveBar(out, bar)
    print("Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933", file=proxy)
    bar.update(1)
    print("Every effort moves you", file=proxy, end="")
    assert out.getvalue() == "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933\n"  # whole lines only
    print(file=proxy)
    bar.close()
    assert out.getvalue() == "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933\nEvery effort moves you\n"
    assert "1/3" in terminal.getvalue()  # the bar itself went to its own stream
