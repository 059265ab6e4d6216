"""``python -m grader --watch``: re-grade when an exercise file is saved; Ctrl-C exits 0.

Each test starts the grader once (~5-10 s on 2 busy cores, most of it importing
torch and grading the first time) in a temp copy of the exercise stubs.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader.checks import check_definitions

from conftest import write_stubs

ROOT = Path(__file__).resolve().parent.parent
WATCHING = b"save to re-grade, Ctrl-C to stop."


def start_watch(exercises_dir: Path, *exercises, rounds=None):
    env = dict(os.environ)
    env.pop("CH5_GRADER_WATCH_ROUNDS", None)
    if rounds is not None:
        env["CH5_GRADER_WATCH_ROUNDS"] = str(rounds)
    return subprocess.Popen([sys.executable, "-m", "grader", "--watch", *exercises,
                             "--exercises-dir", str(exercises_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def read_until(proc, marker: bytes, seen: bytes = b"", count: int = 1, timeout: float = 120) -> bytes:
    """What ``proc`` printed until ``marker`` has appeared ``count`` times (or it ended, or time ran out)."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while seen.count(marker) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
    return seen


def stub_copy(tmp_path: Path) -> Path:
    return write_stubs(tmp_path / "exercises")


def test_saving_a_file_regrades_that_exercise_only(tmp_path):
    folder = stub_copy(tmp_path)
    proc = start_watch(folder, "text_to_token_ids", "token_ids_to_text", rounds=2)
    try:
        first = read_until(proc, WATCHING)
        # it says what it prepares, and when it is ready, before the first grading
        assert first.index(b"Preparing the grader once") < first.index(b"Ready in") \
            < first.index(b"first grading: grading text_to_token_ids, token_ids_to_text"), first
        assert first.count(b"not implemented yet") == 2
        time.sleep(0.1)  # a later mtime than the stub's, even on a coarse clock
        shutil.copy(ROOT / "solutions" / "text_to_token_ids.py", folder / "text_to_token_ids.py")
        out = read_until(proc, WATCHING, seen=first, count=2)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    second = out[len(first):].decode()
    assert "text_to_token_ids.py changed: grading text_to_token_ids ---" in second, second
    assert "Graded text_to_token_ids in" in second
    assert "token_ids_to_text" in second  # the table still shows every watched exercise
    lines = {line.split()[0]: line for line in second.splitlines() if line.startswith("  ")}
    points = sum(c["points"] for c in check_definitions()["text_to_token_ids"]["checks"])
    assert f"{points}/{points}" in lines["text_to_token_ids"] and "passed" in lines["text_to_token_ids"]
    assert "not implemented yet" in lines["token_ids_to_text"]


def test_ctrl_c_stops_watching_with_status_0(tmp_path):
    folder = stub_copy(tmp_path)
    proc = start_watch(folder, "text_to_token_ids")
    try:
        out = read_until(proc, WATCHING)
        assert WATCHING in out, out
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert b"Stopped watching." in rest


def test_watch_refuses_output_files(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "grader", "--watch", "--output", str(tmp_path / "r.txt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r.txt").exists()
