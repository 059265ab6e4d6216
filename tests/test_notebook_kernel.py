"""Grading inside Jupyter (issue 9, sections 1 and 2): the grade cells grade what the kernel
has defined, not the saved file, and the generated notebook runs in a real kernel.

- kernel.py's choice of cells, on a kernel's history as IPython keeps it (a stand-in
  shell: milliseconds), and one grading of such a snapshot (~2 s);
- one real Jupyter kernel (nbclient + ipykernel) running a short notebook made of the
  generated notebook's cells: a solved exercise, a stub, the plot cell, the last cell
  (grade everything), then an unsaved redefinition graded again (a kernel start and two
  grade cells, each a `python -m grader` process that imports torch: 25-58 s on 2 cores
  at load 6-7 from other work);
- marked slow: the whole generated notebook, with the stubs and with the solutions,
  in a real kernel (measured 149-150 s and 124-190 s on 2 cores at load 4-7: nine grade
  cells each).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbformat import v4

from grader import EXERCISES
from grader.kernel import distinct, history, needed, write_kernel_notebook
from grader.make_notebook import build_notebook
from grader.runner import grade
from grader.sources import open_submission
from notebook_helpers import exercise_of, filled_notebook, index_of, max_points

ROOT = Path(__file__).resolve().parent.parent
SETUP = "import torch\nfrom reference import get_tokenizer\ntokenizer = get_tokenizer()\n"
RIGHT = ("def text_to_token_ids(text, tokenizer):\n"
         "    encoded = tokenizer.encode(text, allowed_special={'<|endoftext|>'})\n"
         "    return torch.tensor(encoded).unsqueeze(0)\n")
NO_BATCH_DIM = RIGHT.replace(".unsqueeze(0)", "")


def shell(*inputs, **user_ns):
    """A stand-in for IPython's shell after running ``inputs`` (In [1], In [2], ...)."""
    raw = ["", *inputs]
    return SimpleNamespace(history_manager=SimpleNamespace(input_hist_raw=raw), user_ns={"_ih": raw, **user_ns})


def kept_counts(sh) -> list[int]:
    cells = distinct(history(sh))
    return [c.count for c in needed(cells, [n for n in EXERCISES if n in sh.user_ns])]


# --- which cells a kernel's history gives the grader --------------------------------------------

def test_the_cells_defining_the_exercises_and_what_they_use_are_kept():
    sh = shell(SETUP,                                   # 1: torch, tokenizer
               RIGHT,                                   # 2
               "print(text_to_token_ids('hi', tokenizer))\nx = 5\n",  # 3: exploration: dropped
               "FACTOR = 2\n",                          # 4: used by scale, used by calc_loss_batch
               "def scale(v):\n    return v * FACTOR\n",  # 5
               "def calc_loss_batch(a, b, model, device):\n    return scale(torch.tensor(1.0))\n",  # 6
               "cfg = {'n': 1}\n", "cfg['n'] = 2\n",    # 7, 8: cfg changed in place: both kept
               "def token_ids_to_text(ids, tokenizer):\n    return str(cfg)\n",  # 9
               "while True:\n    pass\n",               # 10: nothing uses it: dropped (never run again)
               text_to_token_ids=1, calc_loss_batch=1, token_ids_to_text=1)
    assert kept_counts(sh) == [1, 2, 4, 5, 6, 7, 8, 9]


def test_every_version_runs_in_order_so_the_kernels_last_working_one_wins():
    # In [3] is the latest edit, which raised before its def: the kernel still has In [2]'s version.
    sh = shell(SETUP, RIGHT, "raise ValueError('typo')\n" + NO_BATCH_DIM, text_to_token_ids=1)
    assert kept_counts(sh) == [1, 2, 3]


def test_cells_run_out_of_order_keep_the_order_they_ran_in_and_a_rerun_counts_once():
    sh = shell(NO_BATCH_DIM, SETUP, RIGHT, NO_BATCH_DIM, text_to_token_ids=1)  # In [4] re-ran In [1]
    cells = distinct(history(sh))
    assert [c.count for c in cells] == [2, 3, 4]
    assert [c.count for c in needed(cells, ["text_to_token_ids"])] == [2, 3, 4]  # the wrong one is last


def test_grade_cells_and_magics_in_the_history():
    grade_cell = build_notebook().cells[index_of(build_notebook(), "text_to_token_ids") + 1].source
    sh = shell("%matplotlib inline\n" + SETUP, "!pip install tiktoken\n", "%time OFFSET = 0\n",
               RIGHT.replace("encoded)", "encoded) + OFFSET"), grade_cell, "%who\n", text_to_token_ids=1)
    assert kept_counts(sh) == [1, 3, 4]  # %time's statement binds OFFSET; the grade cell is dropped


def test_a_function_no_cell_defines_is_named_in_a_note(tmp_path):
    sh = shell(SETUP, "%run my_solutions.py\n", text_to_token_ids=1)
    snapshot = write_kernel_notebook(sh, tmp_path)
    assert snapshot.notes == ["text_to_token_ids is defined in this kernel, but by no cell the grader can run "
                              "(%run, exec?): define it in a code cell"]


def test_the_grader_grades_the_kernels_version_not_the_latest_text(tmp_path, grading_ctx):
    sh = shell(SETUP, RIGHT, "raise ValueError('typo')\n" + NO_BATCH_DIM, text_to_token_ids=1)
    snapshot = write_kernel_notebook(sh, tmp_path)
    assert snapshot.first_line(["text_to_token_ids"]) == (
        "Grading text_to_token_ids as this kernel has it now (from In [1]-[3]), not the saved file ...")
    report = grade(open_submission(snapshot.path), ["text_to_token_ids"], ctx=grading_ctx)
    assert report.exercises[0].score == max_points(["text_to_token_ids"])
    # the failing cell is named as the student saw it: In [3], not its place in the snapshot
    assert report.notes == ["In [3] raised ValueError: typo (line 1); the cells after it ran"]


# --- a real Jupyter kernel ------------------------------------------------------------------------

def execute(nb, folder: Path):
    """Run ``nb`` in a real kernel (nbclient + ipykernel) as "Run all" does: an error stops it."""
    NotebookClient = pytest.importorskip("nbclient", reason="the test extra: pip install -e '.[test]'").NotebookClient
    pytest.importorskip("ipykernel", reason="the test extra: pip install -e '.[test]'")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this kit, not an installed copy
        mp.delenv("CH5_GRADER_IN_NOTEBOOK", raising=False)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def cells_of(nb, exercise):
    """The generated notebook's text, code and grade cell of ``exercise``."""
    i = index_of(nb, exercise)
    return [copy.deepcopy(c) for c in nb.cells[i - 1: i + 2]]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """The generated notebook's setup cell, a solved exercise, a stub, the plot cell and the last
    cell (grade everything), then an unsaved wrong redefinition graded by the exercise's grade cell.
    Two grade cells: each starts a grader process, the cost of this test."""
    solved, stubs = filled_notebook(), build_notebook()
    text, code, grade_cell = cells_of(solved, "text_to_token_ids")
    plot_cell = next(c for c in stubs.cells if c.get("metadata", {}).get("grader", {}).get("role") == "plot")
    wrong = v4.new_code_cell(code.source.replace(".unsqueeze(0)", ""))
    nb = v4.new_notebook(cells=[*stubs.cells[:2], text, code, *cells_of(stubs, "plot_losses")[:2], plot_cell,
                                copy.deepcopy(stubs.cells[-1]), wrong, grade_cell])
    folder = tmp_path_factory.mktemp("kernel")
    return execute(nb, folder), folder


def test_in_a_real_kernel_grade_cells_grade_what_the_kernel_has(short_run):
    nb, folder = short_run
    assert not list(folder.glob("*.ipynb"))  # nothing was saved: there is no file to grade
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup, solved, stub, plot, grade_all, wrong, grade_again = code
    assert [c.execution_count for c in code] == [1, 2, 3, 4, 5, 6, 7]  # "Run all" did not stop
    out = text_of(grade_all)
    assert out.startswith("Grading every exercise as this kernel has it now (from In [1]-[3]), "
                          "not the saved file ...\nGrading this kernel's cells on cpu\n"), out
    solved_points = f"{max_points(['text_to_token_ids']):g}"
    assert re.search(rf"text_to_token_ids +{solved_points}/{solved_points}  passed", out), out
    assert re.search(rf"plot_losses +0/{max_points(['plot_losses']):g}  not implemented yet", out), out
    assert re.search(rf"Total +{solved_points}/{max_points():g}\n", out), out
    assert text_of(plot) == "plot_losses is not implemented yet: fill in the plot_losses cell above first\n"
    out = text_of(grade_again)
    assert out.startswith("Grading text_to_token_ids as this kernel has it now (from In [1]-[3], [6]), "), out
    assert re.search(rf"text_to_token_ids +\d/{solved_points}  \d of \d checks failed", out) and "likely cause:" in out, out


def test_the_kits_ci_installs_what_the_kernel_tests_need():
    """Else they would skip there: the test extra holds nbclient and ipykernel, and CI installs it."""
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["test"]
    assert {re.split(r"[<>=]", d)[0] for d in extra} >= {"nbclient", "ipykernel"}
    assert 'pip install -e ".[test]"' in (ROOT / ".github" / "workflows" / "kit.yml").read_text(encoding="utf-8")
    assert 'pip install --quiet -e ".[test]"' in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def outputs_by_exercise(nb) -> dict:
    """Exercise (or "all" for the last cell) -> what its grade cell printed."""
    found, last = {}, None
    for cell in nb.cells:
        if exercise_of(cell):
            last = exercise_of(cell)
        elif "grade_in_notebook(" in cell.source:
            found[last if f"grade_in_notebook({last!r})" in cell.source else "all"] = text_of(cell)
    return found


@pytest.mark.slow
def test_the_generated_notebook_with_stubs_runs_all_in_a_real_kernel(tmp_path):
    outputs = outputs_by_exercise(execute(build_notebook(), tmp_path))
    assert set(outputs) == {*EXERCISES, "all"}
    for exercise in EXERCISES:
        assert re.search(rf"{exercise} +0/\d+  not implemented yet", outputs[exercise]), outputs[exercise]
    assert re.search(rf"Total +0/{max_points():g}", outputs["all"])


@pytest.mark.slow
def test_the_generated_notebook_with_solutions_gets_full_marks_in_a_real_kernel(tmp_path):
    nb = execute(build_notebook(with_solutions=True), tmp_path)
    outputs = outputs_by_exercise(nb)
    for exercise in EXERCISES:
        points = f"{max_points([exercise]):g}"
        assert re.search(rf"{exercise} +{points}/{points}  passed", outputs[exercise]), outputs[exercise]
    assert re.search(rf"Total +{max_points():g}/{max_points():g}\n", outputs["all"]) \
        and "All checks passed." in outputs["all"]
    plot = next(c for c in nb.cells if c.get("metadata", {}).get("grader", {}).get("role") == "plot")
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)  # %matplotlib inline drew it
