"""The report as it happens (grader/live.py): the header at once, each exercise's row as it
finishes (in its place on a terminal, in finishing order in a log), a note while one runs on.

The LiveTable tests run on a fake clock; one test runs the real command line on a file whose
second exercise loops until its time limit (~10-15 s on 2 busy cores).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from grader.live import NOTE_AFTER_S, NOTE_EVERY_S, LiveTable

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:  # what LiveTable reads of a grading.ExerciseResult
    name: str
    score: float
    max_score: float
    status_line: str


@dataclass
class Totals:  # ... and of a grading.Report
    score: float
    max_score: float


class Stream:
    def __init__(self, terminal: bool):
        self.text, self.terminal = "", terminal

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self.terminal


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_log_gets_the_header_at_once_rows_in_finishing_order_and_notes():
    out, clock = Stream(terminal=False), Clock()
    table = LiveTable(out, "work.py", "cpu", ["text_to_token_ids", "train_model_simple"], 60, clock=clock)
    table.start()
    assert out.text == "Grading work.py on cpu\n\n"
    table.started("train_model_simple")
    table.started("text_to_token_ids")
    table.finished(Result("text_to_token_ids", 7, 7, "passed"))
    assert out.text.endswith("  text_to_token_ids      7/7  passed\n")
    clock.now += NOTE_AFTER_S - 0.1
    table.tick()
    assert "still grading" not in out.text  # not yet: 2.9 s of quiet
    clock.now += 0.2
    table.tick()
    note = "  ... still grading train_model_simple, 3 s so far (time limit 60 s)\n"
    assert out.text.endswith(note)
    clock.now += NOTE_EVERY_S - 1
    table.tick()
    assert out.text.count("still grading") == 1
    clock.now += 1
    table.tick()
    assert out.text.count("still grading") == 2 and "13 s so far" in out.text
    table.finished(Result("train_model_simple", 9, 11, "1 of 7 checks failed"))
    table.close(Totals(16, 18), ["details", "advice"])
    assert out.text.endswith("  train_model_simple    9/11  1 of 7 checks failed\n"
                             "  Total                16/18\n\ndetails\nadvice\n")
    assert "\x1b" not in out.text  # no cursor movement in a log


def test_a_terminal_gets_every_row_at_once_redrawn_in_place():
    out, clock = Stream(terminal=True), Clock()
    table = LiveTable(out, "work.py", "cpu", ["text_to_token_ids", "token_ids_to_text"], 60, clock=clock)
    table.start()
    assert out.text == ("Grading work.py on cpu\n\n"
                        "\x1b[2K  text_to_token_ids          waiting\n"
                        "\x1b[2K  token_ids_to_text          waiting\n")
    table.started("text_to_token_ids")
    clock.now += 2
    table.tick()
    assert out.text.endswith("\x1b[2F\x1b[2K  text_to_token_ids          grading, 2 s\n"
                             "\x1b[2K  token_ids_to_text          waiting\n")
    table.finished(Result("token_ids_to_text", 6, 6, "passed"))  # the second row, in its place
    assert out.text.endswith("\x1b[2F\x1b[2K  text_to_token_ids          grading, 2 s\n"
                             "\x1b[2K  token_ids_to_text     6/6  passed\n")
    assert "still grading" not in out.text


def test_the_command_line_prints_each_row_as_it_finishes(tmp_path):
    """A file whose token_ids_to_text never returns: the header and text_to_token_ids's row come
    long before the time limit ends the loop, and a note says what is still running."""
    solution = (ROOT / "solutions" / "text_to_token_ids.py").read_text(encoding="utf-8")
    path = tmp_path / "work.py"
    path.write_text(solution + "\n\ndef token_ids_to_text(token_ids, tokenizer):\n    import time\n    while True:\n"
                    "        time.sleep(0.01)  # never returns, without taking a CPU from the grading\n",
                    encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "grader", "--submission", str(path), "--timeout", "15",
                             "text_to_token_ids", "token_ids_to_text"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arrived = []  # (seconds since start, line)
    buffer = b""
    try:
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                arrived += [(time.monotonic() - start, line.decode()) for line in lines]
            if time.monotonic() - start > 240:
                raise AssertionError(f"no end after 240 s: {arrived}")
    finally:
        proc.kill()
        proc.wait()

    def when(fragment):
        return next(t for t, line in arrived if fragment in line)

    end = arrived[-1][0]
    assert arrived[0][1].startswith("Grading ") and arrived[0][1].endswith(" on cpu")
    # its row, well before the loop is stopped (it took up to 9 s at load 6 on 2 cores; the limit is 15 s)
    assert when("text_to_token_ids ") < end - 3, arrived
    assert when("still grading token_ids_to_text") < when("token_ids_to_text ") < end + 0.5
    assert "stopped: time limit" in next(line for _, line in arrived if line.startswith("  token_ids_to_text"))
    assert any(line.startswith("  Total") for _, line in arrived)


def test_the_header_needs_no_torch():
    """What runs before the header (parsing the command line, opening the source) imports no torch
    (~2 s), so the header comes at once."""
    code = ("import sys, grader.cli, grader.live, grader.options, grader.sources; "
            "sys.exit('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr or "torch was imported"
