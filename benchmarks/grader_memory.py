"""Benchmark: the memory of one Gradescope grading run, the whole process tree summed.

    python benchmarks/grader_memory.py [--submission FOLDER] [--repeats N]

Builds the Gradescope bundle, lays it out in a temporary folder as Gradescope does
(``source/`` = the zip, ``run_autograder`` copied up, ``submission/`` = the kit's
solutions as one .py file per exercise), runs ``run_autograder`` there and samples, every
50 ms, the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``) of every process of
its tree: the grader and its grading processes. Prints the peak of their sum, the processes
at that moment, and the results' score (the solutions must get full marks, else the run
measured nothing).

Gradescope's default autograder container has 768 MB; the goal is a peak total PSS of at
most 650 MB (issue 11, "The instructor's path"). PSS divides a page among every process
that maps it, including processes outside the tree: on a machine where other programs map
the same torch libraries, PSS is lower than it would be in a container of its own. The
second figure printed, ``alone``, counts those file pages in full: the tree's anonymous
PSS (pages shared only within the tree) plus the largest file-backed resident size of any
of its processes (the grading processes map what the grader maps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
GOAL_MB = 650
INTERVAL_S = 0.05


def _children_of(root: int) -> list[int]:
    """``root`` and every process descended from it (from /proc/*/stat), alive now."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            parents[int(name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(p for p, parent in parents.items() if parent == pid)
    return tree


def _rollup(pid: int) -> dict[str, int]:
    """``/proc/<pid>/smaps_rollup`` in kB ({} when the process is gone)."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    values[key] = int(parts[0])
    except OSError:
        return {}
    return values


@dataclass
class Sample:
    seconds: float
    pss_kb: int  # the sum of the tree's PSS
    alone_kb: int  # anonymous PSS + the largest file-backed RSS (see the module docstring)
    processes: list = field(default_factory=list)  # (pid, PSS kB)


def sample_tree(root: int, start: float) -> Sample:
    rollups = {pid: _rollup(pid) for pid in _children_of(root)}
    rollups = {pid: r for pid, r in rollups.items() if r}
    pss = sum(r.get("Pss", 0) for r in rollups.values())
    anon = sum(r.get("Pss_Anon", 0) for r in rollups.values())
    files = max((r.get("Rss", 0) - r.get("Anonymous", 0) - r.get("Pss_Shmem", 0) for r in rollups.values()),
                default=0)
    return Sample(time.perf_counter() - start, pss, anon + files,
                  sorted(((pid, r.get("Pss", 0)) for pid, r in rollups.items()), key=lambda p: -p[1]))


class TreeMemory:
    """Samples a process tree's summed PSS every ``interval`` seconds in a thread; ``peak`` and
    ``peak_alone`` (Samples) are the largest seen. Use as a context manager around the run."""

    def __init__(self, root_pid: int, interval: float = INTERVAL_S):
        self.root, self.interval = root_pid, interval
        self.peak = self.peak_alone = Sample(0.0, 0, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.perf_counter()
        while not self._stop.is_set():
            sample = sample_tree(self.root, start)
            self.samples += 1
            if sample.pss_kb > self.peak.pss_kb:
                self.peak = sample
            if sample.alone_kb > self.peak_alone.alone_kb:
                self.peak_alone = sample
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def gradescope_root(folder: Path, submission: Path | None = None) -> Path:
    """A folder laid out like Gradescope's /autograder: source/ (the bundle), run_autograder,
    submission/ (``submission``'s files, or the kit's solutions, one file per exercise)."""
    sys.path.insert(0, str(KIT_ROOT))
    from grader.gradescope import build_bundle

    bundle = folder / "autograder.zip"
    build_bundle(bundle)
    root = folder / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    if submission is not None:
        shutil.copytree(submission, root / "submission")
    else:
        (root / "submission").mkdir()
        for path in sorted((KIT_ROOT / "solutions").glob("*.py")):
            if path.name != "__init__.py":
                shutil.copy(path, root / "submission" / path.name)
    return root


def run_autograder(root: Path, interval: float = INTERVAL_S, timeout: float = 900) -> dict:
    """Run ``root``'s run_autograder (with this Python) while sampling its tree's memory."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    results = root / "results" / "results.json"
    if results.exists():
        results.unlink()
    start = time.perf_counter()
    process = subprocess.Popen(["bash", str(root / "run_autograder")], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with TreeMemory(process.pid, interval) as memory:
        out, _ = process.communicate(timeout=timeout)
    seconds = time.perf_counter() - start
    data = json.loads(results.read_text(encoding="utf-8")) if results.is_file() else {}
    return {"seconds": seconds, "returncode": process.returncode, "output": out, "results": data,
            "peak": memory.peak, "peak_alone": memory.peak_alone, "samples": memory.samples}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--submission", type=Path, help="a submission folder (default: the kit's solutions)")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grader-memory-") as tmp:
        root = gradescope_root(Path(tmp), args.submission)
        for i in range(args.repeats):
            run = run_autograder(root)
            results = run["results"]
            max_score = sum(t.get("max_score", 0) for t in results.get("tests", []))
            peak, alone = run["peak"], run["peak_alone"]
            print(f"run {i + 1}: {run['seconds']:.1f} s, score {results.get('score')}/{max_score:g}, "
                  f"{run['samples']} samples")
            print(f"  peak total PSS: {peak.pss_kb / 1024:.0f} MiB = {peak.pss_kb * 1.024 / 1000:.0f} MB "
                  f"at {peak.seconds:.1f} s (goal <= {GOAL_MB} MB)")
            print("    processes then (pid: PSS MiB): "
                  + ", ".join(f"{pid}: {kb / 1024:.0f}" for pid, kb in peak.processes))
            print(f"  peak alone (anonymous PSS + largest file-backed RSS): {alone.alone_kb / 1024:.0f} MiB = "
                  f"{alone.alone_kb * 1.024 / 1000:.0f} MB at {alone.seconds:.1f} s")
            if run["returncode"] != 0 or not results.get("tests"):
                print(run["output"][-3000:])
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
