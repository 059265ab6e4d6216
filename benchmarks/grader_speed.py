"""Benchmark: how long a student waits for the grader, and how much memory it takes.

    python benchmarks/grader_speed.py [--repeats 5]

Prints the median wall time and the peak resident memory of the largest single
process for:
- the floor: one fresh interpreter that imports torch, tiktoken and matplotlib,
  builds the 124M model once and runs one forward of a 2x3 batch;
- a full ``python -m grader --solutions``;
- one-exercise runs (``python -m grader --solutions EXERCISE``).
Goals (issue "The chapter-5 kit"): full grade within 2x the floor, one exercise
within the floor + 1 s, no process above 1.5 GiB. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
FLOOR = (
    "import torch, tiktoken, matplotlib.pyplot\n"
    "from reference import GPTModel, GPT_CONFIG_124M\n"
    "torch.manual_seed(123)\n"
    "model = GPTModel(GPT_CONFIG_124M).eval()\n"
    "with torch.no_grad(): model(torch.tensor([[16833, 3626, 6100], [40, 1107, 588]]))\n"
)
# Runs a command and reports its wall time and the peak RSS of its largest process
# (RUSAGE_CHILDREN covers every waited-for descendant, the grader's children too).
MEASURE = (
    "import resource, subprocess, sys, time, json\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'rc': rc,\n"
    "                  'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def measure(command: list[str], repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", MEASURE, *command], cwd=KIT_ROOT,
                             capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(out))
    return {
        "median_s": statistics.median(r["seconds"] for r in runs),
        "min_s": min(r["seconds"] for r in runs),
        "peak_mib": max(r["peak_mib"] for r in runs),
        "exit_codes": sorted({r["rc"] for r in runs}),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--exercises", nargs="*", default=["text_to_token_ids", "calc_loss_batch", "train_model_simple"])
    args = p.parse_args(argv)

    cases = {"floor (import + 124M model + forward)": [sys.executable, "-c", FLOOR],
             "python -m grader --solutions": [sys.executable, "-m", "grader", "--solutions"]}
    for exercise in args.exercises:
        cases[f"python -m grader --solutions {exercise}"] = [sys.executable, "-m", "grader", "--solutions", exercise]

    results = {name: measure(cmd, args.repeats) for name, cmd in cases.items()}
    floor = results["floor (import + 124M model + forward)"]["median_s"]
    width = max(map(len, results))
    print(f"{'case':<{width}}  median s  min s  peak MiB  exit")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['median_s']:8.2f}  {r['min_s']:5.2f}  {r['peak_mib']:8.0f}  {r['exit_codes']}")
    full = results["python -m grader --solutions"]["median_s"]
    print(f"\nfull grade / floor: {full / floor:.2f} (goal <= 2)")
    for exercise in args.exercises:
        one = results[f"python -m grader --solutions {exercise}"]["median_s"]
        print(f"{exercise}: floor + {one - floor:+.2f} s (goal <= +1 s)")
    print(f"largest process: {max(r['peak_mib'] for r in results.values()):.0f} MiB (goal <= 1536)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
