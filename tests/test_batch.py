"""``python -m grader batch``: a class of submissions into one CSV gradebook.

One batch run (module fixture) grades a small class holding every kind of entry:
exercises/ folders, single .py files, known mistakes, an endless loop, a crash,
files the grader cannot take at all, a coding line, exercise files concatenated verbatim,
an LMS export's files of one student (Canvas names) with a duplicate, a zipped folder. To keep it short it
grades the five exercises its mistakes are in (GRADED); a batch of every exercise is what
`benchmarks/grader_speed.py --batch-vs-single` measures.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import EXERCISES
from grader.checks import check_definitions

from conftest import write_stubs

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
# The exercises the class's mistakes and breakages hit (batch's behaviour is the same for every
# exercise, and every exercise's grading has tests of its own): 18 submissions x 5 exercises.
# All 13 cheap ones took 180 s of the default run on a busy 2-core machine; these 5, a third of it.
GRADED = ["text_to_token_ids", "token_ids_to_text", "manual_cross_entropy", "evaluate_model", "plot_losses"]
FULL_MARKS = sum(c["points"] for e in GRADED for c in check_definitions()[e]["checks"])  # python -m grader --list


def solution_text(exercise: str) -> str:
    return (SOLUTIONS / f"{exercise}.py").read_text(encoding="utf-8")


def single_file(edits: dict | None = None) -> str:
    """All eight solutions in one .py file; ``edits`` = {exercise: (old, new)} text replacements.

    The solutions' ``from reference import ...`` lines are dropped: in one file they
    would replace the functions defined above them.
    """
    parts = []
    for exercise in EXERCISES:
        text = solution_text(exercise)
        old, new = (edits or {}).get(exercise, (None, None))
        if old is not None:
            assert old in text, f"{old!r} not in solutions/{exercise}.py"
            text = text.replace(old, new)
        parts.append("".join(line for line in text.splitlines(keepends=True)
                             if not line.startswith("from reference import")))
    return "from reference import generate_and_print_sample\n\n" + "\n\n".join(parts)


def exercises_folder(folder: Path, edits: dict | None = None) -> None:
    tree = folder / "exercises"
    tree.mkdir(parents=True)
    for exercise in EXERCISES:
        text = solution_text(exercise)
        old, new = (edits or {}).get(exercise, (None, None))
        if old is not None:
            assert old in text
            text = text.replace(old, new)
        (tree / f"{exercise}.py").write_text(text, encoding="utf-8")


# Known mistakes (their likely cause is in checks.toml) and ways a submission can break.
NO_NEGATION = {"manual_cross_entropy": ("avg_log_probas * -1", "avg_log_probas")}
NO_BATCH_DIM = {"text_to_token_ids": ("torch.tensor(encoded).unsqueeze(0)", "torch.tensor(encoded)")}
NO_EVAL_MODE = {"evaluate_model": ("    model.eval()\n    with", "    with")}
# a loop that sleeps: stopped at the time limit all the same, without taking a CPU from the other tests
HANG = {"token_ids_to_text": ("    # BEGIN SOLUTION\n", "    # BEGIN SOLUTION\n    import time\n    while True:\n        time.sleep(0.01)\n")}
CRASH = {"plot_losses": ("    # BEGIN SOLUTION\n", "    # BEGIN SOLUTION\n    import os\n    os._exit(3)\n")}


def build_class(folder: Path, copies: int = 2) -> dict:
    """Write a class into ``folder``; returns the expected gradebook facts per submission name."""
    folder.mkdir(parents=True, exist_ok=True)
    expect = {}
    for i in range(copies):
        exercises_folder(folder / f"folder_{i}")
        expect[f"folder_{i}"] = {"total": FULL_MARKS}
        (folder / f"single_{i}.py").write_text(single_file(), encoding="utf-8")
        expect[f"single_{i}.py"] = {"total": FULL_MARKS}
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Chapter 5"), nbformat.v4.new_code_cell(single_file())]
    nbformat.write(notebook, str(folder / "notebook.ipynb"))
    expect["notebook.ipynb"] = {"total": FULL_MARKS}
    (folder / "no_negation.py").write_text(single_file(NO_NEGATION), encoding="utf-8")
    expect["no_negation.py"] = {"failing": "manual_cross_entropy", "cause": "negat"}
    exercises_folder(folder / "no_batch_dim", NO_BATCH_DIM)
    expect["no_batch_dim"] = {"failing": "text_to_token_ids", "cause": "batch dimension"}
    (folder / "no_eval_mode.py").write_text(single_file(NO_EVAL_MODE), encoding="utf-8")
    expect["no_eval_mode.py"] = {"failing": "evaluate_model"}
    (folder / "hang.py").write_text(single_file(HANG), encoding="utf-8")
    expect["hang.py"] = {"zero": "token_ids_to_text", "note": "time limit"}
    (folder / "crash.py").write_text(single_file(CRASH), encoding="utf-8")
    expect["crash.py"] = {"zero": "plot_losses", "note": "exited with code 3"}
    stub_folder = folder / "stubs"
    write_stubs(stub_folder / "exercises")
    expect["stubs"] = {"total": 0, "note": "not implemented yet"}
    (folder / "latin1.py").write_bytes("# caf\xe9\n".encode("latin-1") + single_file().encode())
    expect["latin1.py"] = {"error": "not UTF-8"}
    # Python's own rule: a PEP 263 coding line makes it a valid source
    (folder / "latin1_declared.py").write_bytes("# -*- coding: latin-1 -*-\n# caf\xe9\n".encode("latin-1")
                                                + single_file().encode())
    expect["latin1_declared.py"] = {"total": FULL_MARKS}
    # the exercise files concatenated verbatim: their `from reference import` lines come after the defs
    (folder / "concatenated.py").write_text("\n".join(solution_text(e) for e in EXERCISES), encoding="utf-8")
    expect["concatenated.py"] = {"total": FULL_MARKS}
    lines = single_file().splitlines(keepends=True)
    (folder / "syntax_error.py").write_text("".join(lines[:3]) + "def broken(:\n" + "".join(lines[3:]), encoding="utf-8")
    expect["syntax_error.py"] = {"error": "syntax error in syntax_error.py line 4"}
    # an LMS export (Canvas): one student's two files are two entries, named name_userid_submissionid_file
    half = len(EXERCISES) // 2
    for part, names in (("part1.py", EXERCISES[:half]), ("part2.py", EXERCISES[half:])):
        (folder / f"doejane_123456_7890123_{part}").write_text("\n".join(solution_text(e) for e in names),
                                                              encoding="utf-8")
    expect["doejane_123456_7890123"] = {"total": FULL_MARKS, "student_id": "123456",
                                        "duplicate": "doejane_123456_7999999"}
    (folder / "doejane_123456_7999999_late.py").write_text(single_file(), encoding="utf-8")
    expect["doejane_123456_7999999"] = {"total": FULL_MARKS, "student_id": "123456",
                                        "duplicate": "doejane_123456_7890123"}
    # a zipped folder holding an exercises/ tree, as an LMS keeps an upload
    exercises_folder(folder.parent / "to_zip" / "my-work")
    shutil.make_archive(str(folder / "zipped"), "zip", folder.parent / "to_zip")
    expect["zipped.zip"] = {"total": FULL_MARKS}
    (folder / "missing_import.py").write_text("import not_installed_anywhere_xyz\n" + single_file(), encoding="utf-8")
    expect["missing_import.py"] = {"error": "not installed"}
    (folder / "notes.txt").write_text("my answers are in the notebook\n", encoding="utf-8")
    expect["notes.txt"] = {"error": "unsupported"}
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "__MACOSX").mkdir()
    return expect


def run_grader(*args, timeout=300, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("batch")
    expect = build_class(base / "class", copies=1)
    out = base / "gradebook.csv"
    # --timeout 20: the hanging submission costs one slot 20 s; a correct exercise takes < 1 s on a quiet
    # machine, and more than 10 s was seen at load 6 on 2 cores
    proc = run_grader("batch", str(base / "class"), *GRADED, "--jobs", "2", "--timeout", "20",
                      "--output", str(out), "--reports", str(base / "reports"))
    rows = list(csv.DictReader(out.open(encoding="utf-8"))) if out.exists() else []
    assert rows and rows[0]["submission"] == "Points Possible", rows[:1]
    return proc, {r["submission"]: r for r in rows[1:]}, expect, base


def test_batch_exits_zero_and_writes_one_row_per_submission(batch_run):
    proc, rows, expect, _ = batch_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(rows) == set(expect)  # hidden entries (.DS_Store, __MACOSX) are skipped


def test_gradebook_columns(batch_run):
    _, rows, _, _ = batch_run
    assert list(next(iter(rows.values()))) == ["submission", "student_id", *GRADED, "total", "error", "notes"]


def test_points_are_numbers_in_every_row_and_the_first_row_has_the_maxima(batch_run):
    _, rows, _, base = batch_run
    table = list(csv.DictReader((base / "gradebook.csv").open(encoding="utf-8")))
    for row in table:
        assert all(float(row[e]) >= 0 for e in [*GRADED, "total"]), row  # what pandas reads as numbers
    maxima = table[0]
    assert float(maxima["total"]) == FULL_MARKS == sum(float(maxima[e]) for e in GRADED)


def test_student_ids_from_lms_names_and_duplicates_flagged(batch_run):
    proc, rows, expect, _ = batch_run
    for name, facts in expect.items():
        assert rows[name]["student_id"] == facts.get("student_id", ""), name
        if "duplicate" in facts:
            assert f"duplicate: student {facts['student_id']} also submitted {facts['duplicate']}" in rows[name]["notes"]
    assert "Duplicates (2 submissions share a student id" in proc.stdout


def test_correct_submissions_get_full_marks(batch_run):
    _, rows, expect, _ = batch_run
    for name, facts in expect.items():
        if facts.get("total") == FULL_MARKS:
            assert rows[name]["total"] == str(FULL_MARKS), (name, rows[name])
            assert rows[name]["error"] == "", rows[name]
            assert rows[name]["notes"] == "" or "duplicate" in facts, rows[name]


def test_mistakes_cost_points_in_their_exercise_only(batch_run):
    _, rows, expect, _ = batch_run
    full = {name: rows["folder_0"][name] for name in GRADED}
    for name, facts in expect.items():
        if "failing" in facts:
            row = rows[name]
            assert float(row[facts["failing"]]) < float(full[facts["failing"]]), name
            others = {e: row[e] for e in GRADED if e != facts["failing"]}
            assert others == {e: full[e] for e in others}, name


def test_hang_and_crash_cost_one_exercise(batch_run):
    _, rows, expect, _ = batch_run
    for name in ("hang.py", "crash.py"):
        facts, row = expect[name], rows[name]
        assert row[facts["zero"]] == "0"
        assert float(row["total"]) == FULL_MARKS - float(rows["folder_0"][facts["zero"]])
        assert facts["note"] in row["notes"], row["notes"]


def test_stubs_score_zero_with_a_note(batch_run):
    _, rows, _, _ = batch_run
    assert rows["stubs"]["total"] == "0"
    assert rows["stubs"]["notes"] == f"{', '.join(GRADED)}: not implemented yet"


def test_ungradable_entries_get_an_error_row(batch_run):
    _, rows, expect, _ = batch_run
    for name, facts in expect.items():
        if "error" in facts:
            # the same columns for every kind of failure: 0 points, the reason in error, no notes
            assert facts["error"] in rows[name]["error"], rows[name]
            assert rows[name]["total"] == "0" and all(rows[name][e] == "0" for e in GRADED)
            assert rows[name]["notes"] == ""


def test_summary_names_the_common_failing_checks(batch_run):
    proc, _, expect, _ = batch_run
    out = proc.stdout
    assert f"Graded {len(expect)} submissions ({len(GRADED)} exercises each)" in out
    assert "Most common failing checks" in out
    assert "manual_cross_entropy [" in out and "likely cause" in out
    assert "Could not be graded (4" in out  # latin1.py, missing_import.py, notes.txt, syntax_error.py


def test_progress_and_per_submission_lines_on_stderr(batch_run):
    proc, _, expect, _ = batch_run
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == len(expect)
    assert lines[-1].startswith(f"[{len(expect)}/{len(expect)}]")


def test_reports_written_per_submission(batch_run):
    _, _, expect, base = batch_run
    reports = base / "reports"
    assert sorted(p.name for p in reports.iterdir()) == sorted(f"{n}.txt" for n in expect)
    assert "likely cause" in (reports / "no_negation.py.txt").read_text(encoding="utf-8")


def test_existing_gradebook_is_never_overwritten(batch_run, tmp_path):
    _, _, _, base = batch_run
    out = base / "gradebook.csv"
    before = out.read_bytes()
    proc = run_grader("batch", str(base / "class"), "--output", str(out))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == before


@pytest.mark.parametrize("where", ["inside", "missing_folder", "not_a_dir"])
def test_bad_arguments_are_one_line_errors(where, tmp_path):
    subs = tmp_path / "class"
    subs.mkdir()
    (subs / "a.py").write_text("x = 1\n", encoding="utf-8")
    args = {
        "inside": ["batch", str(subs), "--output", str(subs / "gradebook.csv")],
        "missing_folder": ["batch", str(tmp_path / "nope")],
        "not_a_dir": ["batch", str(subs / "a.py")],
    }[where]
    proc = run_grader(*args, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (subs / "gradebook.csv").exists()


def test_progress_bar_on_a_terminal():
    """On a terminal, tqdm draws the bar and the per-submission lines go above it."""
    import io

    from grader.batch import Progress
    from grader.lms import Submission

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(total_exercises=4, total_submissions=2, stream=stream)
    for _ in range(4):
        progress.exercise_done()
    progress.submission_done(Submission("alice.py", Path("alice.py"), error="not UTF-8"))
    progress.close()
    text = stream.getvalue()
    assert "[1/2] alice.py: not graded: not UTF-8\n" in text
    assert "Grading" in text and "4/4" in text  # tqdm's bar, redrawn in place with \r
    assert "\r" in text


def test_progress_is_plain_lines_off_a_terminal():
    import io

    from grader.batch import Progress
    from grader.lms import Submission

    stream = io.StringIO()
    progress = Progress(total_exercises=4, total_submissions=1, stream=stream)
    for _ in range(4):
        progress.exercise_done()
    progress.submission_done(Submission("bob.py", Path("bob.py"), error="not UTF-8"))
    progress.close()
    assert stream.getvalue() == "[1/1] bob.py: not graded: not UTF-8\n"
