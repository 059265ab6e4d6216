"""Benchmark: the kit's pretraining run against the book's own loop, same conditions.

    python benchmarks/pretraining_speed.py [--repeats 3] [--epochs 1 | --steps N] [--fast]

Runs, alternately and ``--repeats`` times each, one epoch (``--epochs``) of the
book's configuration (124M model, The Verdict, batch 2, context 256, CPU):
- book: benchmarks/book_gpt_train.py, the book's loop with the notebook's settings,
  its checkpoint saved at the end;
- faithful: ``python -m reference`` (its checkpoint written after each epoch);
- fast: ``python -m reference --fast`` (with ``--fast``): its threads fitted to the
  free CPUs; and fast-T: the same with torch's own thread count, as the other two have.
Each is a fresh process, timed from start to exit (checkpoint and plot included),
with its CPU time (user + system) and peak memory. Prints the medians and ranges,
the ratio to the book's run (median of the alternated pairs, and their range), the
training tokens per second, whether the log lines equal the book run's, and the
load average before and after (timings on a busy machine are noisy: compare ratios).

``--steps N`` (when a whole epoch per row takes too long): each row times only N optimizer
steps of the same configuration in a fresh process (benchmarks/training_steps.py: the model
and optimizer built as that row's run builds them; no evaluation, sample or checkpoint),
and compares each step's loss, bit for bit, with the book row's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
TRAIN_TOKENS_PER_EPOCH = 4608  # 9 batches of 2 x 256 tokens (tests/data/chapter5-book-values.json)
TOKENS_PER_STEP = 512  # 2 x 256
# Runs a command and reports its wall time, CPU time and peak memory (RUSAGE_CHILDREN: its process tree).
MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "run = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "wall = time.perf_counter() - t\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'wall': wall, 'cpu': r.ru_utime + r.ru_stime, 'peak_mib': r.ru_maxrss / 1024,\n"
    "                  'rc': run.returncode, 'stdout': run.stdout, 'stderr_tail': run.stderr[-2000:]}))\n"
)


def commands(epochs: int, out: Path, fast: bool) -> dict[str, list[str]]:
    python = sys.executable
    cases = {
        "book": [python, str(KIT_ROOT / "benchmarks" / "book_gpt_train.py"), "--epochs", str(epochs),
                 "--out", str(out / "book")],
        "faithful": [python, "-m", "reference", "--epochs", str(epochs), "--device", "cpu",
                     "--out", str(out / "faithful"), "--overwrite"],
    }
    if fast:
        cases["fast"] = [python, "-m", "reference", "--fast", "--epochs", str(epochs), "--device", "cpu",
                         "--out", str(out / "fast"), "--overwrite"]
        # the same with torch's own thread count, as the book's run has: the kernels' share of the gain
        cases["fast-T"] = cases["fast"][:-3] + ["--threads", str(torch_threads()), "--out", str(out / "fast-T"),
                                                "--overwrite"]
    return cases


def step_commands(steps: int, fast: bool) -> dict[str, list[str]]:
    rows = ("book", "faithful", "fast", "fast-T") if fast else ("book", "faithful")
    script = str(KIT_ROOT / "benchmarks" / "training_steps.py")
    return {row: [sys.executable, script, row, str(steps)] for row in rows}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def measure(command: list[str], timed_inside: bool = False) -> dict:
    """Run ``command`` in a fresh process; timed from start to exit, or (``timed_inside``,
    training_steps.py) by the command itself, which prints the same JSON."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(KIT_ROOT))
    wrapped = command if timed_inside else [sys.executable, "-c", MEASURE, *command]
    out = subprocess.run(wrapped, cwd=KIT_ROOT, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {result['rc']}):\n{result['stderr_tail']}")
    return result


def log_lines(stdout: str) -> list[str]:
    return [line for line in stdout.split("\n") if line.startswith("Ep ")]


def last_loss(stdout: str) -> tuple[str, float]:
    """The last log line's validation loss (an epoch run), else its training loss (--steps)."""
    line = log_lines(stdout)[-1]
    kind = "val" if "Val loss " in line else "train"
    return kind, float(line.rsplit(" ", 1)[1].rstrip(","))


def spread(values) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def report(runs: dict[str, list[dict]], tokens: int) -> None:
    """The table: per row medians and ranges, ``tokens`` trained tokens per run / median wall."""
    book = runs["book"]
    print(f"\n{'run':<9} {'wall s: median (range)':>24} {'CPU s: median (range)':>24} {'tokens/s':>9} "
          f"{'peak MiB':>9}  ratio to book: wall, CPU (median of pairs, range)   log lines")
    for name, results in runs.items():
        walls, cpus = [r["wall"] for r in results], [r["cpu"] for r in results]
        tokens_per_s = tokens / statistics.median(walls)
        wall_ratios = [r["wall"] / b["wall"] for r, b in zip(results, book)]
        cpu_ratios = [r["cpu"] / b["cpu"] for r, b in zip(results, book)]
        same = all(log_lines(r["stdout"]) == log_lines(b["stdout"]) for r, b in zip(results, book))
        samples_same = all(r["stdout"] == b["stdout"] for r, b in zip(results, book))
        if name == "book":
            verdict = "(the baseline)"
        elif same:
            verdict = "identical to the book's" + ("" if samples_same else " (samples differ)")
        else:
            (kind, mine), (_, books) = last_loss(results[0]["stdout"]), last_loss(book[0]["stdout"])
            digits = 3 if kind == "val" else 6  # the log's 3 decimals; a step's loss in full
            verdict = f"differ: last {kind} loss {mine:.{digits}f} vs {books:.{digits}f}"
        print(f"{name:<9} {spread(walls):>24} {spread(cpus):>24} {tokens_per_s:9.1f} "
              f"{max(r['peak_mib'] for r in results):9.0f}  "
              f"{statistics.median(wall_ratios):.2f} ({min(wall_ratios):.2f}-{max(wall_ratios):.2f}), "
              f"{statistics.median(cpu_ratios):.2f} ({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})   {verdict}")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()}, Python {platform.python_version()}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, metavar="N",
                   help="time only N optimizer steps per row (9 = one epoch's), not whole runs")
    p.add_argument("--fast", action="store_true", help="also time python -m reference --fast")
    args = p.parse_args(argv)
    for name in ("repeats", "epochs", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be 1 or more")

    import torch  # only for its version

    print(f"machine: {machine()}; torch {torch.__version__}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pretraining-speed-") as tmp:
        timed_inside = args.steps is not None
        cases = step_commands(args.steps, args.fast) if timed_inside else commands(args.epochs, Path(tmp), args.fast)
        runs = {name: [] for name in cases}
        for repeat in range(args.repeats):
            for name, command in cases.items():  # alternated: book, faithful, fast, book, ...
                result = measure(command, timed_inside)
                runs[name].append(result)
                print(f"  round {repeat + 1} {name:<9} wall {result['wall']:7.1f} s  CPU {result['cpu']:7.1f} s  "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    what = f"{args.steps} optimizer steps a run" if timed_inside else f"{args.epochs} epoch(s) a run, whole process"
    print(f"timed: {what}")
    report(runs, TOKENS_PER_STEP * args.steps if timed_inside else TRAIN_TOKENS_PER_EPOCH * args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
