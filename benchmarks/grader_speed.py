"""Benchmark: how long a student waits for the grader, and how much memory it takes.

    python benchmarks/grader_speed.py [--repeats 5] [--batch] [--replay]

Every speed figure the README and docs/instructors.md quote comes from here. It runs the cases
round after round (each once a round, so that the floor is measured in the same conditions as
the rest) and prints the
machine (CPU model and core count from /proc/cpuinfo, load average before and after) and,
per case, the median wall time with the range over the repeats and the peak resident memory
of the largest single process:

- the floor: one fresh interpreter that imports torch, tiktoken and matplotlib, builds the
  124M model once and runs one forward of a 2x3 batch;
- a full ``python -m grader --solutions``, and how soon its header line appears;
- the same solutions as one ``.py`` file and as the solutions notebook (``--submission``: every
  exercise's child runs the whole file, or all the cells);
- one-exercise runs (``python -m grader --solutions EXERCISE``);
- ``--watch``: the re-grade of one exercise after a save (the time the watch itself prints);
- the small reference run, ``python -m reference --model small --epochs 1``;
- ``--replay``: what calc_loss_loader's scenario would cost without its frozen per-batch
  losses (the 124M model on The Verdict's 10 batches of [2, 256]);
- ``--batch``: ``python -m grader batch`` of a class of 23 submissions (tests/test_batch.py's
  class with 7 copies), every exercise, ``--jobs 2``.

Goals (issue "Speed and scale"): full grade within 1.5x the floor, one exercise within the
floor + 0.5 s, a single file or notebook within 1.2x the folder, no process above 1.5 GiB. Run it
on a quiet machine; the load average shows whether it was.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
FLOOR = (
    "import torch, tiktoken, matplotlib.pyplot\n"
    "from reference import GPTModel, GPT_CONFIG_124M\n"
    "torch.manual_seed(123)\n"
    "model = GPTModel(GPT_CONFIG_124M).eval()\n"
    "with torch.no_grad(): model(torch.tensor([[16833, 3626, 6100], [40, 1107, 588]]))\n"
)
REPLAY = (
    "import torch\n"
    "from reference import GPT_CONFIG_124M, GPTModel, calc_loss_loader, load_text\n"
    "from reference.run import make_loaders\n"
    "torch.set_num_threads(1)  # as in a grading child\n"
    "torch.manual_seed(123)\n"
    "model = GPTModel(GPT_CONFIG_124M).eval()\n"
    "train_loader, val_loader = make_loaders(load_text(), 256, 2)\n"
    "import time; t = time.perf_counter()\n"
    "with torch.no_grad(): calc_loss_loader(train_loader, model, 'cpu'); calc_loss_loader(val_loader, model, 'cpu')\n"
    "print(time.perf_counter() - t)\n"
)
# Runs a command and reports its wall time, when its first line of output came, and the peak
# RSS of its largest process (RUSAGE_CHILDREN covers every waited-for descendant, the
# grader's children too).
MEASURE = (
    "import resource, subprocess, sys, time, json\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
    "first = p.stdout.readline(); first_s = time.perf_counter() - t\n"
    "out = first + p.stdout.read(); rc = p.wait()\n"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'first_line_s': first_s, 'rc': rc,\n"
    "                  'stdout_tail': out.decode(errors='replace')[-300:],\n"
    "                  'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def machine() -> str:
    """CPU model and core count (from /proc/cpuinfo), for the README's "measured on"."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{os.cpu_count()} CPU cores (no /proc/cpuinfo)"
    models = re.findall(r"^model name\s*:\s*(.+)$", info, re.M)
    cores = len(re.findall(r"^processor\s*:", info, re.M)) or os.cpu_count()
    return f"{models[0].strip() if models else 'unknown CPU'}, {cores} cores"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(command: list[str], cwd=KIT_ROOT) -> dict:
    """One run of ``command``: {"seconds", "first_line_s", "rc", "stdout_tail", "peak_mib"} (MEASURE)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def summary(seconds: list[float], **extra) -> dict:
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds),
            "repeats": len(seconds), **extra}


def merged(runs: list[dict]) -> dict:
    """The summary of one case's runs (one a round): median and range, the largest peak, the exit codes."""
    out = summary([r["seconds"] for r in runs])
    if "peak_mib" in runs[0]:
        out["peak_mib"] = max(r["peak_mib"] for r in runs)
    if "first_line_s" in runs[0]:
        out["first_line"] = [r["first_line_s"] for r in runs]
    if "rc" in runs[0]:
        out["exit_codes"] = sorted({r["rc"] for r in runs})
    return out


def measure_replay() -> dict:
    """Seconds of the 10 forward passes calc_loss_loader's scenario replays from frozen values."""
    out = subprocess.run([sys.executable, "-c", REPLAY], cwd=KIT_ROOT, capture_output=True, text=True, check=True)
    return {"seconds": float(out.stdout.split()[-1])}


def measure_watch() -> dict:
    """The re-grade of one exercise after a save, as ``--watch`` reports it ("Graded X in N s")."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "exercises"
        shutil.copytree(KIT_ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
        env = {**os.environ, "CH5_GRADER_WATCH_ROUNDS": "2"}
        proc = subprocess.Popen([sys.executable, "-m", "grader", "--watch", "text_to_token_ids",
                                 "--exercises-dir", str(folder)], cwd=KIT_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in proc.stdout:
            if "save to re-grade" in line:
                time.sleep(0.1)
                path = folder / "text_to_token_ids.py"
                path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
                break
        rest = proc.stdout.read()
        proc.wait()
    return {"seconds": float(re.findall(r"Graded text_to_token_ids in ([\d.]+) s", rest)[-1])}


def measure_batch() -> dict:
    sys.path[:0] = [str(KIT_ROOT), str(KIT_ROOT / "tests")]  # this kit's grader, not an installed one
    from test_batch import build_class

    with tempfile.TemporaryDirectory() as tmp:
        build_class(Path(tmp) / "class", copies=7)
        return measure([sys.executable, "-m", "grader", "batch", str(Path(tmp) / "class"), "--jobs", "2",
                        "--output", str(Path(tmp) / "gradebook.csv")])


def solutions_as_one_file(folder: Path) -> Path:
    """solutions/*.py one after the other in one file, as a student who keeps one file submits it."""
    path = folder / "chapter5.py"
    path.write_text("\n\n".join(f.read_text(encoding="utf-8") for f in sorted((KIT_ROOT / "solutions").glob("[a-z]*.py"))),
                    encoding="utf-8")
    return path


def solutions_notebook(folder: Path) -> Path:
    """The solutions notebook (``python -m grader notebook --solutions``)."""
    subprocess.run([sys.executable, "-m", "grader", "notebook", "--solutions", "--output", str(folder)],
                   cwd=KIT_ROOT, check=True, capture_output=True)
    return folder / "chapter5-solutions.ipynb"


def measure_batch_vs_single(timeout: int = 10) -> dict:
    """``grader batch --jobs 2`` of tests/test_batch.py's class (``copies=2``: 20 and more
    submissions, a hang and a crash among them) against grading each of its entries on its own
    (``--submission``, practice), one after the other; every run with ``--timeout`` ``timeout``."""
    sys.path[:0] = [str(KIT_ROOT), str(KIT_ROOT / "tests")]
    from test_batch import build_class

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        build_class(folder, copies=2)
        entries = sorted(folder.iterdir())
        batch = measure([sys.executable, "-m", "grader", "batch", str(folder), "--jobs", "2", "--timeout", str(timeout),
                         "--output", str(Path(tmp) / "gradebook.csv")])
        singles = [measure([sys.executable, "-m", "grader", "--submission", str(entry), "--timeout", str(timeout)])
                   for entry in entries]
    return {"entries": len(entries), "batch_s": batch["seconds"], "singles_s": sum(r["seconds"] for r in singles)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--exercises", nargs="*", default=["text_to_token_ids", "calc_loss_batch", "train_model_simple"])
    p.add_argument("--batch", action="store_true", help="also a batch of 23 submissions (~30-90 s a repeat)")
    p.add_argument("--replay", action="store_true", help="also the 124M forward passes the scenario replays")
    p.add_argument("--batch-vs-single", action="store_true",
                   help="only: a batch of the test class with --jobs 2 against its entries graded one by one (~5 min)")
    p.add_argument("--only", metavar="TEXT", help="only the cases whose name contains TEXT (and the floor)")
    args = p.parse_args(argv)

    print(f"machine: {machine()}; load average {load_average()} (1, 5, 15 min) at the start")
    if args.batch_vs_single:
        r = measure_batch_vs_single()
        print(f"grader batch --jobs 2 of {r['entries']} entries: {r['batch_s']:.1f} s; each graded on its own, one "
              f"after the other: {r['singles_s']:.1f} s in all, / 2 = {r['singles_s'] / 2:.1f} s; batch / (singles / 2) "
              f"= {r['batch_s'] / (r['singles_s'] / 2):.2f} (goal <= 1); load average {load_average()} at the end")
        return 0
    grader = [sys.executable, "-m", "grader", "--solutions"]
    cases = {"floor (import + 124M model + forward)": lambda: measure([sys.executable, "-c", FLOOR]),
             "python -m grader --solutions": lambda: measure(grader)}
    single = Path(tempfile.mkdtemp(prefix="grader-speed-"))
    one_file, notebook = solutions_as_one_file(single), solutions_notebook(single)
    cases["--submission: the solutions as one .py file"] = lambda: measure(
        [sys.executable, "-m", "grader", "--submission", str(one_file)])
    cases["--submission: the solutions notebook"] = lambda: measure(
        [sys.executable, "-m", "grader", "--submission", str(notebook)])
    for exercise in args.exercises:
        cases[f"python -m grader --solutions {exercise}"] = (lambda e: lambda: measure(grader + [e]))(exercise)
    cases["--watch: re-grade text_to_token_ids after a save"] = measure_watch
    with tempfile.TemporaryDirectory() as out:
        cases["python -m reference --model small --epochs 1"] = lambda: measure(
            [sys.executable, "-m", "reference", "--model", "small", "--epochs", "1", "--out", out, "--overwrite"])
        if args.replay:
            cases["124M model on The Verdict's 10 batches (replayed when grading)"] = measure_replay
        if args.batch:
            cases["python -m grader batch: 23 submissions, --jobs 2"] = measure_batch
        selected = [name for name in cases if not args.only or args.only in name or name.startswith("floor")]
        runs = {name: [] for name in selected}
        try:  # round after round, each case once a round: the floor is measured in the same conditions
            for round_number in range(args.repeats):
                for name in selected:
                    runs[name].append(cases[name]())
                print(f"  round {round_number + 1} of {args.repeats} measured", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(single, ignore_errors=True)
        results = {name: merged(one_each) for name, one_each in runs.items()}

    width = max(map(len, results))
    print(f"{'case':<{width}}  median s  range s       peak MiB  exit")
    for name, r in results.items():
        peak = f"{r['peak_mib']:8.0f}" if "peak_mib" in r else " " * 8
        print(f"{name:<{width}}  {r['median_s']:8.2f}  {r['min_s']:5.2f}-{r['max_s']:<6.2f}  {peak}  "
              f"{r.get('exit_codes', '')}")
    print(f"({args.repeats} rounds, each case once a round; load average {load_average()} at the end)")
    floor = results["floor (import + 124M model + forward)"]["median_s"]
    full = results.get("python -m grader --solutions")
    if full:
        first = full["first_line"]
        print(f"\nfull grade: its header line after {statistics.median(first):.2f} s "
              f"(range {min(first):.2f}-{max(first):.2f})")
        print(f"full grade / floor: {full['median_s'] / floor:.2f} (goal <= 1.5)")
        for name in ("--submission: the solutions as one .py file", "--submission: the solutions notebook"):
            if name in results:
                print(f"{name.split(': ')[1]} / the folder: {results[name]['median_s'] / full['median_s']:.2f} "
                      "(goal <= 1.2)")
    for exercise in args.exercises:
        one = results.get(f"python -m grader --solutions {exercise}")
        if one:
            print(f"{exercise}: floor + {one['median_s'] - floor:+.2f} s (goal <= +0.5 s)")
    print(f"largest process: {max(r.get('peak_mib', 0) for r in results.values()):.0f} MiB (goal <= 1536)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
