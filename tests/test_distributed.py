"""``torchrun -m reference --ddp``: distributed data parallel on CPU (gloo).

The small model (without dropout, so that both runs draw no random numbers that
depend on how the batch is split) on the first 4,000 characters of The Verdict,
context 64: 7 steps an epoch, 2 epochs. The 2-process run (torchrun) must take the
same steps as a 1-process run of the same global batch (2; in the test's process),
and only rank 0 may write files. Measured on the 2-core machine: losses equal to
9.5e-7 (of ~10.9), weights to 5.9e-7.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference import run as ref_run
from reference.checkpoints import read_checkpoint
from reference.distributed import TORCHRUN_VARIABLES, per_process_batch, processes_from_environment

ROOT = Path(__file__).resolve().parent.parent
RECORD_WRITES = ROOT / "tests" / "helpers" / "record_writes.py"
TOLERANCE = 1e-5  # measured differences: 9.5e-7 (losses), 5.9e-7 (weights)


def torchrun(processes, log_dir, *args, cwd):
    """``torchrun --standalone --nproc_per_node=N record_writes.py LOG_DIR --ddp ARGS`` (a free port each time)."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
               OMP_NUM_THREADS="1")
    for name in TORCHRUN_VARIABLES:
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(RECORD_WRITES), str(log_dir), "--ddp", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def short_text(tmp_path_factory):
    from reference.data import load_text

    path = tmp_path_factory.mktemp("text") / "verdict-start.txt"
    path.write_text(load_text()[:4000], encoding="utf-8")
    return path


def one_process_run(text_path, folder):
    """The same run with 1 process, here in the test's process (a gloo group of one), saving its checkpoint."""
    import contextlib
    import io

    import torch.distributed as dist

    from reference.distributed import Processes

    settings = ref_run.run_settings("small", 2, 123, 2, 64, drop_rate=0.0, processes=1)
    cfg = dict(ref_run.SMALL_CONFIG, context_length=64, drop_rate=0.0)
    save = ref_run.checkpoint_writer(folder / "model_and_optimizer.pth", cfg, settings, "cpu")
    dist.init_process_group("gloo", init_method=f"file://{folder / 'store'}", rank=0, world_size=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process has (OMP_NUM_THREADS=1): faster on a shared machine
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            ref_run.pretrain(cfg, num_epochs=2, device="cpu", text=text_path.read_text(encoding="utf-8"),
                             on_epoch_end=save, processes=Processes(0, 1, 0))
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)
    return read_checkpoint(folder / "model_and_optimizer.pth"), out.getvalue()


def torch_scratch(path: str) -> bool:
    """A file or folder torch itself makes directly in the temporary folder (a probe file, torchinductor_<user>)."""
    import tempfile

    return Path(path.split(" ", 1)[-1]).parent == Path(tempfile.gettempdir())


@pytest.fixture(scope="module")
def one_process(short_text, tmp_path_factory):
    return one_process_run(short_text, tmp_path_factory.mktemp("1-process"))


def test_one_process_ddp_run(one_process):
    """DDP in a group of one, in the test's process: the sharded loaders, DDP's model, averaged evaluation."""
    checkpoint, stdout = one_process
    lines = stdout.split("\n")
    assert [line[:20] for line in lines if line.startswith("Ep ")] == [
        "Ep 1 (Step 000000): ", "Ep 1 (Step 000005): ", "Ep 2 (Step 000010): "]
    assert sum(line.startswith("Every effort moves you") for line in lines) == 2
    assert checkpoint["epoch"] == 2 and checkpoint["global_step"] == 13  # 7 steps an epoch
    assert checkpoint["track_tokens_seen"] == [128, 768, 1408]  # 2 x 64 tokens a step
    assert "module.tok_emb.weight" not in checkpoint["model_state_dict"]  # the model's own names, not DDP's


@pytest.mark.slow
def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path, short_text, one_process):
    """Slow: 136-212 s on the shared 2-core machine (load average 5-8), most of it starting
    torchrun and its two processes (74 s of CPU for the whole module)."""
    two = tmp_path / "2-processes"
    (two / "logs").mkdir(parents=True)
    run = torchrun(2, two / "logs", "--model", "small", "--drop-rate", 0, "--context-length", 64, "--epochs", 2,
                   "--text", short_text, "--device", "cpu", "--batch-size", 2, "--out", "out", cwd=two)
    assert run.returncode == 0, run.stderr[-3000:]
    a, one_stdout = one_process

    assert "x 2 processes (DDP, global batch 2) (2 epochs, 14 steps)" in run.stderr
    # rank 0 prints the log (losses averaged over the processes) and the samples, the other rank nothing
    log = [line for line in run.stdout.split("\n") if line.startswith("Ep ")]
    assert [line[:20] for line in log] == ["Ep 1 (Step 000000): ", "Ep 1 (Step 000005): ", "Ep 2 (Step 000010): "]
    assert run.stdout.count("Every effort moves you") == 2
    assert len(run.stdout.split("\n")) == len(one_stdout.split("\n"))

    b = read_checkpoint(two / "out" / "model_and_optimizer.pth")
    assert b["settings"]["processes"] == 2
    assert len(a["train_losses"]) == len(b["train_losses"]) == 3
    for x, y in zip(a["train_losses"] + a["val_losses"], b["train_losses"] + b["val_losses"]):
        assert abs(x - y) <= TOLERANCE, (a["train_losses"], b["train_losses"], a["val_losses"], b["val_losses"])
    for name, tensor in a["model_state_dict"].items():
        torch.testing.assert_close(b["model_state_dict"][name], tensor, atol=TOLERANCE, rtol=0, msg=name)

    # only rank 0 wrote files: the checkpoint (a temporary file renamed into place) and the plots
    writes = {rank: [w for w in json.loads((two / "logs" / f"rank-{rank}.json").read_text())
                     if "__pycache__" not in w and not torch_scratch(w)] for rank in (0, 1)}
    assert writes[1] == []
    assert any(w.endswith("loss-plot.png") for w in writes[0]) and "os.rename out/model_and_optimizer.pth" in writes[0]
    assert sorted(p.name for p in (two / "out").iterdir()) == ["loss-plot.pdf", "loss-plot.png", "model_and_optimizer.pth"]
    assert sorted(p.name for p in two.iterdir()) == ["logs", "out"]  # nothing else in the working folder


def test_ddp_without_torchrun_is_one_line(monkeypatch, capsys, tmp_path):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert ref_run.main(["--ddp", "--model", "small", "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m reference: error: --ddp: ")
    assert "torchrun --nproc_per_node=N -m reference --ddp" in lines[0]
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_processes_from_torchrun_environment():
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29400"}
    processes = processes_from_environment(env)
    assert (processes.rank, processes.world_size, processes.local_rank, processes.is_main) == (3, 4, 1, False)
    with pytest.raises(RuntimeError, match="no MASTER_ADDR, MASTER_PORT"):
        processes_from_environment({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})


def test_global_batch_must_split_evenly():
    assert per_process_batch(2, 2) == 1 and per_process_batch(8, 4) == 2 and per_process_batch(2, 1) == 2
    with pytest.raises(ValueError, match=r"--batch-size 2 \(the global batch\) does not split over 4 processes: "
                                         r"give a multiple of 4, e.g. --batch-size 4"):
        per_process_batch(2, 4)


@pytest.mark.slow
def test_resumed_ddp_run_is_the_uninterrupted_one(tmp_path, short_text):
    """2 processes with dropout (the small model's 0.1): 2 epochs at once, and 1 epoch then
    ``--resume --epochs 2``, print the same and end with the same weights, bit for bit (every
    process restores rank 0's random state: all of them are seeded alike and draw alike).
    Slow: three torchrun starts, 224 s on the shared 2-core machine (95 s of CPU)."""
    options = ("--model", "small", "--context-length", 64, "--text", short_text, "--device", "cpu")
    (tmp_path / "logs").mkdir()
    whole = torchrun(2, tmp_path / "logs", *options, "--epochs", 2, "--out", "whole", cwd=tmp_path)
    first = torchrun(2, tmp_path / "logs", *options, "--epochs", 1, "--out", "parts", cwd=tmp_path)
    rest = torchrun(2, tmp_path / "logs", "--resume", "parts", "--epochs", 2, "--device", "cpu", cwd=tmp_path)
    for run in (whole, first, rest):
        assert run.returncode == 0, run.stderr[-3000:]
    assert first.stdout + rest.stdout == whole.stdout
    a = read_checkpoint(tmp_path / "whole" / "model_and_optimizer.pth")
    b = read_checkpoint(tmp_path / "parts" / "model_and_optimizer.pth")
    assert a["train_losses"] == b["train_losses"] and a["val_losses"] == b["val_losses"]
    for name, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][name]), name
