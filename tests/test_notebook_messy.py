"""Messy notebooks cost only what is broken (issue 9, section 3).

Each input is the generated notebook with the solutions filled in, plus one cell of the
kind students hand in: an endless loop, ``os._exit``, a stray exploration cell that
raises, a Colab first cell. Expected: that cell is reported once, by number; every
exercise gets full marks; an endless loop costs one per-cell limit for the whole run
(probe.py), not one time limit per exercise. Gradings run in-process with the session's
grading context: ~29 s for the endless loop (its 20 s limit plus one normal grading,
~12 s) and ~25 s for the three others together (one batch queue), on 2 busy cores.
"""

from __future__ import annotations

import re
import time
import warnings

import nbformat
import pytest
from nbformat import v4

from grader import EXERCISES
from grader.batch import grade_all
from grader.folders import open_any as open_entry
from grader.gradebook import row as gradebook_row
from grader.lms import Submission
from grader.notebook import read_code_cells
from grader.runner import grade
from grader.sandbox import Limits
from grader.sources import open_submission
from notebook_helpers import before_exercise, code_cell_number, filled_notebook, index_of, max_points, save

FULL = max_points()  # 65
# The batch of three leaves out train_model_simple (it trained a small model in a 50,257-token
# vocabulary then; cells are run the same way for every exercise).
BATCH_GRADED = [e for e in EXERCISES if e != "train_model_simple"]
BATCH_FULL = max_points(BATCH_GRADED)  # 55
# The per-cell limit --timeout 20 gives (the case). The exercises keep 60 s: on a shared
# machine at load 9, train_model_simple alone took over 20 s in a notebook.
LIMITS = Limits(timeout_s=60, cell_timeout_s=20)
HANG_CELL = "while True:\n    pass\n"
EXIT_CELL = "import os; os._exit(3)\n"
STRAY_CELL = "print(undefined_name)\n"
COLAB_CELL = "!pip install tiktoken\nfrom google.colab import drive\ndrive.mount('/content/drive')\n"


def with_cell(source: str, at) -> tuple[nbformat.NotebookNode, int]:
    """The filled notebook with a code cell ``source`` inserted at ``at(nb)``; returns it and
    the grader's number of the new cell."""
    nb = filled_notebook()
    index = at(nb)
    nb.cells.insert(index, v4.new_code_cell(source))
    return nb, code_cell_number(nb, index)


def scores(report) -> dict:
    return {e.name: e.score for e in report.exercises}


@pytest.fixture(scope="module")
def normal_grading(tmp_path_factory, grading_ctx):
    """The filled notebook graded as it is (with a display magic, left out without a note):
    full marks, and the time that takes."""
    nb = filled_notebook()
    nb.cells.insert(1, v4.new_code_cell("%matplotlib inline\n%config InlineBackend.figure_format = 'retina'\n"))
    path = save(nb, tmp_path_factory.mktemp("normal") / "work.ipynb")
    start = time.perf_counter()
    report = grade(open_submission(path), ctx=grading_ctx, limits=LIMITS)
    return report, time.perf_counter() - start


def test_the_filled_notebook_gets_full_marks_with_nothing_to_report(normal_grading):
    report, _ = normal_grading
    assert [e.status for e in report.exercises] == ["graded"] * len(EXERCISES)
    assert report.score == FULL and report.full_marks and report.notes == []


def test_an_endless_loop_cell_costs_one_limit_for_the_whole_run(tmp_path, grading_ctx, normal_grading):
    """Before: 0/65, every exercise stopped after its own limit (87 s with --timeout 20)."""
    _, normal_s = normal_grading
    nb, number = with_cell(HANG_CELL, lambda nb: before_exercise(nb, "calc_loss_loader"))
    source = open_submission(save(nb, tmp_path / "work.ipynb"))
    start = time.perf_counter()
    source.probe(LIMITS)  # what grade() does first; timed apart here
    probe_s = time.perf_counter() - start
    report = grade(source, ctx=grading_ctx, limits=LIMITS)
    seconds = time.perf_counter() - start
    assert report.score == FULL, scores(report)
    # the line the interrupt lands on is the loop's first or second, as the Python version compiles it
    assert re.fullmatch(rf"code cell {number} did not finish within 20 s \(stopped at line [12]\): it was skipped",
                        report.notes[0]) and len(report.notes) == 1, report.notes
    # One limit, once: the probe waits 20 s for the cell, then runs the other cells again without it
    # (measured 20.3 s at load 3, 21.3 s at load 9 on 2 cores); allowed: 4 s over the limit.
    assert 20 <= probe_s <= 24, probe_s
    assert all(e.status == "graded" for e in report.exercises)  # no exercise ran into the cell
    # In all, one limit plus a normal grading: measured 27.4 s against 12.1 s for the notebook
    # without the cell (2 busy cores); allowed: the normal time x 2 + 5 s, for the load of a shared machine.
    assert seconds <= 20 + 2 * normal_s + 5, (seconds, normal_s)


def test_a_cell_that_ignores_the_interrupt_is_killed(tmp_path, grading_ctx):
    stubborn = ("import time\nwhile True:\n    try:\n        time.sleep(0.1)\n"
                "    except BaseException:  # swallows the probe's interrupt too\n        pass\n")
    nb, number = with_cell(stubborn, lambda nb: before_exercise(nb, "token_ids_to_text"))
    start = time.perf_counter()
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")), ["text_to_token_ids", "token_ids_to_text"],
                   ctx=grading_ctx, limits=Limits(timeout_s=20, cell_timeout_s=2))
    seconds = time.perf_counter() - start
    assert scores(report) == {e: max_points([e]) for e in ("text_to_token_ids", "token_ids_to_text")}
    assert report.notes == [f"code cell {number} did not finish within 2 s (and it did not stop when interrupted): "
                            "it was skipped"]
    assert seconds < 20  # the 2 s limit, the 2 s grace, one grading (~3 s): never an exercise's 20 s


@pytest.fixture(scope="module")
def class_of_messy_notebooks(tmp_path_factory, grading_ctx):
    """One batch queue: the os._exit, the stray-cell and the Colab notebook; entry name ->
    (Submission, the grader's number of the added cell)."""
    folder = tmp_path_factory.mktemp("class")
    notebooks = {
        "exit.ipynb": with_cell(EXIT_CELL, lambda nb: before_exercise(nb, "calc_loss_loader")),
        "stray.ipynb": with_cell(STRAY_CELL, lambda nb: index_of(nb, "token_ids_to_text") + 2),
        "colab.ipynb": with_cell(COLAB_CELL, lambda nb: 1),
    }
    subs = []
    for name, (nb, _) in notebooks.items():
        save(nb, folder / name)
        subs.append(Submission(name, folder / name, source=open_entry(folder / name, name)))
    grade_all(subs, BATCH_GRADED, "cpu", Limits(timeout_s=60), 2, grading_ctx)
    return {s.name: (s, notebooks[s.name][1]) for s in subs}


def test_a_cell_that_ends_the_process_is_reported_once_and_skipped(class_of_messy_notebooks):
    """Before: 0/65, "the grading process exited with code 3" for every exercise."""
    sub, number = class_of_messy_notebooks["exit.ipynb"]
    assert sub.error == "" and sub.report.score == BATCH_FULL, scores(sub.report)
    assert sub.report.notes == [f"code cell {number} ended the process (exit code 3): it was skipped"]
    assert gradebook_row(sub, BATCH_GRADED)["notes"] == sub.report.notes[0]  # in the gradebook once too


def test_a_stray_cell_that_raises_costs_nothing_after_it(class_of_messy_notebooks):
    """Before: 12/65, every exercise after the cell "not defined"."""
    sub, number = class_of_messy_notebooks["stray.ipynb"]
    assert sub.report.score == BATCH_FULL, scores(sub.report)
    assert sub.report.notes == [f"code cell {number} raised NameError: name 'undefined_name' is not defined "
                                "(line 1); the cells after it ran"]


def test_a_colab_notebook_is_graded_with_a_note(class_of_messy_notebooks):
    """Before: refused with exit 2 ("imports google, which is not installed here")."""
    sub, number = class_of_messy_notebooks["colab.ipynb"]
    assert sub.error == "" and sub.report.score == BATCH_FULL, scores(sub.report)
    assert sub.report.notes == [f"code cell {number}: left out what runs only in Jupyter or Colab: "
                                "!pip install tiktoken; from google.colab import drive; drive.mount('/content/drive')"]


@pytest.mark.parametrize("cell, runs", [
    ("from google.colab import drive, files\nimport os; drive.mount('/content/drive')\nx = 1\n",
     "pass\nimport os; pass\nx = 1\n"),
    ("try:\n    import google.colab\n    IN_COLAB = True\nexcept ImportError:\n    IN_COLAB = False\n",
     "try:\n    pass\n    IN_COLAB = True\nexcept ImportError:\n    IN_COLAB = False\n"),
    ("files.upload()\n", "files.upload()\n"),  # no Colab import in this cell: plain Python
])
def test_only_the_colab_statements_are_left_out(tmp_path, cell, runs):
    path = save(v4.new_notebook(cells=[v4.new_code_cell(cell)]), tmp_path / "work.ipynb")
    (code,) = read_code_cells(path.read_text(encoding="utf-8"), path)
    assert code.source == runs
    compile(code.source, "<cell>", "exec")


# --- what works today and must keep working ---------------------------------------------------

def older_notebook(minor: int) -> nbformat.NotebookNode:
    """The filled notebook as nbformat 4.minor writes it: no cell ids before 4.5."""
    nb = filled_notebook()
    nb.nbformat_minor = minor
    if minor < 5:
        for cell in nb.cells:
            cell.pop("id", None)
    return nb


@pytest.mark.parametrize("minor", [0, 1, 2, 3, 4, 5])
def test_notebooks_of_nbformat_4_0_to_4_5_read_the_same(tmp_path, minor):
    path = tmp_path / "work.ipynb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nbformat.write(older_notebook(minor), str(path))
    assert nbformat.read(str(path), as_version=4).nbformat_minor == minor
    expected = read_code_cells(nbformat.writes(filled_notebook()), path)
    assert read_code_cells(path.read_text(encoding="utf-8"), path) == expected


def test_a_notebook_without_cell_ids_and_a_time_cell_magic_is_graded(tmp_path, grading_ctx):
    nb = older_notebook(4)
    at = index_of(nb, "text_to_token_ids")
    nb.cells[at].source = "%%time\n" + nb.cells[at].source
    path = tmp_path / "work.ipynb"
    nbformat.write(nb, str(path))
    assert '"id"' not in path.read_text(encoding="utf-8")
    report = grade(open_submission(path), ["text_to_token_ids", "token_ids_to_text"], ctx=grading_ctx)
    assert scores(report) == {e: max_points([e]) for e in ("text_to_token_ids", "token_ids_to_text")}
    assert report.notes == []


def test_an_empty_notebook_grades_to_zero(tmp_path, grading_ctx):
    report = grade(open_submission(save(v4.new_notebook(), tmp_path / "empty.ipynb")), ctx=grading_ctx)
    assert [e.status for e in report.exercises] == ["not_implemented"] * len(EXERCISES)
    assert report.score == 0 and report.notes == []


# --- the probe's own bounds (probe.py), on tiny notebooks: no grading ----------------------------

def probed(tmp_path, sources, limits):
    from grader.probe import probe_cells

    path = save(v4.new_notebook(cells=[v4.new_code_cell(s) for s in sources]), tmp_path / "work.ipynb")
    return [(p.cell.number, p.kind) for p in probe_cells(path, read_code_cells(path.read_text("utf-8"), path), limits)]


def test_after_three_cells_that_end_the_process_the_rest_is_not_run(tmp_path):
    cells = ["x = 1\n"] + ["import os; os._exit(1)\n"] * 4 + ["y = 2\n"]
    assert probed(tmp_path, cells, Limits(timeout_s=20)) == [
        (2, "exited"), (3, "exited"), (4, "exited"), (5, "not_run"), (6, "not_run")]


@pytest.mark.parametrize("cell", [
    "try:\n    while True:\n        pass\nexcept BaseException:\n    pass\n",  # ends once interrupted
    "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",  # no interrupt
])
def test_a_cell_that_takes_too_long_is_stopped_however_it_meets_the_interrupt(tmp_path, cell):
    # the second cell meets the probing child's own limit: 3 + 1 + 2 x 2 s (probe.py)
    assert probed(tmp_path, ["x = 1\n", cell, "y = 2\n"], Limits(timeout_s=3, cell_timeout_s=1)) == [(2, "timeout")]


def test_cells_that_take_the_whole_exercise_limit_leave_the_rest_unrun(tmp_path):
    # 0.8 s each against a 2 s limit per exercise: the third cell starts at 1.6 s, the fourth does not
    cells = ["import time; time.sleep(0.8)\n"] * 4 + ["z = 3\n"]
    assert probed(tmp_path, cells, Limits(timeout_s=2)) == [(4, "not_run"), (5, "not_run")]


def test_watch_mode_shows_the_notes_too(tmp_path, monkeypatch):
    import gc
    import io

    from grader.watch import ROUNDS_ENV, watch

    nb, number = with_cell(STRAY_CELL, lambda nb: index_of(nb, "token_ids_to_text") + 2)
    path = save(nb, tmp_path / "work.ipynb")
    monkeypatch.setenv(ROUNDS_ENV, "1")
    monkeypatch.setattr(gc, "freeze", lambda: None)  # watch() freezes its shared inputs; not this test process
    out = io.StringIO()
    assert watch(lambda: open_submission(path), ["text_to_token_ids"], "cpu", Limits(timeout_s=20), 1, out=out) == 0
    assert f"note: code cell {number} raised NameError: name 'undefined_name' is not defined" in out.getvalue()


@pytest.mark.parametrize("command", [[], ["batch"]])
def test_a_cell_timeout_that_is_not_positive_is_a_one_line_error(tmp_path, capsys, command):
    from grader.cli import main

    (tmp_path / "class").mkdir()
    path = save(filled_notebook(), tmp_path / "class" / "work.ipynb")
    where = [str(path.parent), "--output", str(tmp_path / "gradebook.csv")] if command else ["--submission", str(path)]
    assert main([*command, *where, "--cell-timeout", "0"]) == 2
    assert capsys.readouterr().err == "python -m grader: error: --cell-timeout must be positive\n"
