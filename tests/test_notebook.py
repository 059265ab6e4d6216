"""The exercise notebook: writing it (``python -m grader notebook``) and grading one
(``python -m grader --submission work.ipynb``).

Gradings run in-process with the session's shared grading context (~10 s for all
eight exercises on 2 busy cores, ~1-3 s for one or two); three tests start the CLI
(writing the notebook twice, and a grade cell that runs the grader on its saved notebook).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from grader import EXERCISES
from grader.cli import main as cli_main
from grader.checks import check_definitions
from grader.make_notebook import SETUP_NAMES, build_notebook, exercise_code
from grader.notebook import DEFAULT_NAME, GRADE_TAG, NESTED_ENV, grade_in_notebook, python_source
from grader.runner import grade
from grader.sources import open_submission

ROOT = Path(__file__).resolve().parent.parent


def run_grader(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def exercise_of(cell) -> str | None:
    return cell.get("metadata", {}).get("grader", {}).get("exercise")


def code_cell_number(nb, cell_index: int) -> int:
    """The grader's number of the code cell at ``nb.cells[cell_index]`` (code cells from 1)."""
    return sum(c.cell_type == "code" for c in nb.cells[: cell_index + 1])


def filled_notebook() -> nbformat.NotebookNode:
    """The generated stub notebook with every exercise cell filled in with its solution."""
    nb = build_notebook()
    solved = {exercise_of(c): c.source for c in build_notebook(with_solutions=True).cells if exercise_of(c)}
    for cell in nb.cells:
        if exercise_of(cell):
            cell.source = solved[exercise_of(cell)]
    return nb


def save(nb, path: Path) -> Path:
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return path


def index_of(nb, exercise: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if exercise_of(c) == exercise)


def max_points(exercises=EXERCISES) -> float:
    return sum(c["points"] for e in exercises for c in check_definitions()[e]["checks"])


# --- writing the notebook ---------------------------------------------------------------------

def test_notebook_command_writes_a_valid_notebook_with_every_exercise(tmp_path):
    result = run_grader("notebook", "--output", str(tmp_path / "class"))
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(str(tmp_path / "class" / DEFAULT_NAME), as_version=4)
    nbformat.validate(nb)
    setup = nb.cells[1]
    assert setup.cell_type == "code" and "from reference import (" in setup.source
    assert all(f"    {name},\n" in setup.source for name in SETUP_NAMES)
    for number, exercise in enumerate(EXERCISES, 1):
        i = index_of(nb, exercise)
        markdown, code, grade_cell = nb.cells[i - 1], nb.cells[i], nb.cells[i + 1]
        spec = check_definitions()[exercise]
        assert markdown.cell_type == "markdown"
        assert markdown.source.startswith(f"## Exercise {number}: `{exercise}` (section {spec['section']},")
        assert "**What to do**" in markdown.source and "**Inputs**" in markdown.source
        assert all(check["what"] in markdown.source for check in spec["checks"])
        assert f"def {exercise}(" in code.source
        assert f'raise NotImplementedError("{exercise} is not implemented yet")' in code.source
        assert grade_cell.metadata["tags"] == [GRADE_TAG]
        assert f"grade_in_notebook({exercise!r})" in grade_cell.source


def test_existing_notebook_is_kept_unless_force(tmp_path):
    target = tmp_path / DEFAULT_NAME
    target.write_text("a student's work", encoding="utf-8")
    result = run_grader("notebook", "--output", str(tmp_path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--force" in result.stderr
    assert target.read_text(encoding="utf-8") == "a student's work"
    assert cli_main(["notebook", "--output", str(tmp_path), "--force"]) == 0
    nbformat.validate(nbformat.read(str(target), as_version=4))


def test_exercise_cells_drop_reference_imports_of_other_exercises():
    cells = {exercise_of(c): c.source for c in build_notebook().cells if exercise_of(c)}
    # In the notebook the student's own earlier functions are in scope: no `from reference import`
    # of an exercise (nor the comment that explained it), and nothing the setup cell imports.
    for exercise, source in cells.items():
        assert "from reference import" not in source, exercise
        assert "The grader uses the reference" not in source and '"""Exercise' not in source
    assert cells["evaluate_model"].startswith("import torch\n")
    source = "import torch\n\n# why\nfrom reference import calc_loss_batch, perplexity as ppl\n\n\ndef f():\n    pass\n"
    assert exercise_code(source) == "import torch\n\n# why\nfrom reference import perplexity as ppl\n\n\ndef f():\n    pass\n"


@pytest.mark.parametrize("cell, expected", [
    ("x = 1\n", "x = 1\n"),
    ("%matplotlib inline\nimport os\n", "pass  # skipped: %matplotlib inline\nimport os\n"),
    ("if True:\n    !pip install tiktoken\nx = 2\n", "if True:\n    pass  # skipped: !pip install tiktoken\nx = 2\n"),
    # a `%` that continues an expression is Python, even in a cell with a magic line
    ("%time y = 1\nz = (7\n     % 4)\n", "pass  # skipped: %time y = 1\nz = (7\n     % 4)\n"),
    ("%%time\nw = 3\n", "\nw = 3\n"),  # a Python cell magic: its body runs, line numbers kept
])
def test_magic_and_shell_lines_are_skipped(cell, expected):
    assert python_source(cell) == (expected, "")
    compile(expected, "<cell>", "exec")


def test_other_cell_magics_skip_the_cell():
    assert python_source("%%bash\nls -l\n") == ("", "cell magic %%bash")


# --- grading notebooks -------------------------------------------------------------------------

def test_filled_notebook_gets_full_marks(tmp_path, grading_ctx):
    nb = filled_notebook()
    nb.cells.insert(1, v4.new_code_cell("%matplotlib inline\n!pip list\nimport os\n"))
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")), ctx=grading_ctx)
    assert [e.status for e in report.exercises] == ["graded"] * len(EXERCISES)
    assert report.full_marks and report.score == max_points()


def test_generated_stub_notebook_grades_to_zero(tmp_path, grading_ctx):
    report = grade(open_submission(save(build_notebook(), tmp_path / "stub.ipynb")), ctx=grading_ctx)
    assert [e.status for e in report.exercises] == ["not_implemented"] * len(EXERCISES)
    assert report.score == 0 and report.max_score == max_points()


def test_a_failing_cell_stops_the_cells_after_it(tmp_path, grading_ctx):
    nb = filled_notebook()
    at = index_of(nb, "calc_loss_batch") + 1
    nb.cells.insert(at, v4.new_code_cell("x = 1\ny = x / 0\n"))
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")),
                   ["calc_loss_batch", "calc_loss_loader"], ctx=grading_ctx)
    before, after = report.exercises
    assert before.status == "graded" and before.score == before.max_score  # defined above the cell
    assert after.status == "load_error" and after.score == 0
    assert after.message == (f"code cell {code_cell_number(nb, at)} raised ZeroDivisionError: division by zero "
                             "(line 2), so the cells after it did not run")


def test_syntax_error_cell_is_named(tmp_path, grading_ctx):
    nb = filled_notebook()
    at = index_of(nb, "text_to_token_ids")
    nb.cells[at].source = nb.cells[at].source.replace("def text_to_token_ids(text, tokenizer):",
                                                      "def text_to_token_ids(text, tokenizer)")
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")), ["text_to_token_ids"], ctx=grading_ctx)
    (ex,) = report.exercises
    assert ex.status == "load_error"
    assert ex.message.startswith(f"code cell {code_cell_number(nb, at)} raised SyntaxError: ")
    assert ex.message.endswith("so the cells after it did not run")


def test_importing_the_reference_version_does_not_count_as_an_answer(tmp_path, grading_ctx):
    nb = build_notebook()  # stubs
    # Pasted from exercises/calc_loss_loader.py: would replace the student's own calc_loss_batch.
    nb.cells.insert(index_of(nb, "calc_loss_batch") + 1,
                    v4.new_code_cell("from reference import calc_loss_batch, text_to_token_ids\n"))
    del nb.cells[index_of(nb, "text_to_token_ids")]  # never defined in the notebook, only imported
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")),
                   ["calc_loss_batch", "text_to_token_ids"], ctx=grading_ctx)
    assert [(e.status, e.score) for e in report.exercises] == [("not_implemented", 0), ("not_implemented", 0)]
    assert report.exercises[1].message == "text_to_token_ids is not defined"


def test_grade_cells_are_skipped_and_the_grader_does_not_nest(tmp_path, grading_ctx):
    nb = filled_notebook()
    at = index_of(nb, "text_to_token_ids")
    nb.cells.insert(at, v4.new_code_cell("raise RuntimeError('a tagged grade cell ran')\n",
                                         metadata={"tags": [GRADE_TAG]}))
    nb.cells.insert(at, v4.new_code_cell("# grade-cell (recognised by its first line)\nraise RuntimeError('ran')\n"))
    # A cell that starts the grader itself: it must get the one-line refusal (exit 2), not a nested grading.
    nb.cells.insert(at, v4.new_code_cell(
        "import subprocess, sys\n"
        f"done = subprocess.run([sys.executable, '-m', 'grader', 'text_to_token_ids'], cwd={str(ROOT)!r},\n"
        "                      capture_output=True, text=True)\n"
        "assert done.returncode == 2 and 'does not nest' in done.stderr, done.stderr\n"))
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")), ["text_to_token_ids"], ctx=grading_ctx)
    (ex,) = report.exercises
    assert ex.status == "graded" and ex.score == ex.max_score, ex.message


def test_grade_cell_runs_the_grader_on_the_saved_notebook(tmp_path, monkeypatch, capsys):
    """The grade cell's own code, run as Jupyter would in the notebook's folder (real CLI)."""
    nb = filled_notebook()
    save(nb, tmp_path / DEFAULT_NAME)
    grade_cell = nb.cells[index_of(nb, "text_to_token_ids") + 1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(NESTED_ENV, raising=False)
    exec(compile(grade_cell.source, "<grade cell>", "exec"), {})
    out = capsys.readouterr().out
    assert f"Grading {DEFAULT_NAME} as saved" in out
    points = f"{max_points(['text_to_token_ids']):g}"
    assert re.search(rf"text_to_token_ids +{points}/{points}  passed", out) and "All checks passed." in out


def test_grade_cell_inside_a_graded_notebook_does_nothing(monkeypatch, capsys):
    monkeypatch.setenv(NESTED_ENV, "1")
    grade_in_notebook("text_to_token_ids")
    assert capsys.readouterr().out == "(grade cell skipped: this notebook is being graded)\n"


@pytest.mark.parametrize("content, says", [
    ("print('not a notebook')", "is not a Jupyter notebook: it is not JSON"),
    ("{}", "is not a valid Jupyter notebook"),
    ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "extra": 1}', "is not a valid Jupyter notebook"),
])
def test_a_file_that_is_not_a_notebook_is_a_one_line_error(tmp_path, capsys, content, says):
    path = tmp_path / "work.ipynb"
    path.write_text(content, encoding="utf-8")
    assert cli_main(["--submission", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and err.startswith("python -m grader: error: ")


def test_a_leftover_stub_raise_in_a_cell_is_named_with_its_cell_and_line(tmp_path, grading_ctx):
    nb = build_notebook()
    at = index_of(nb, "text_to_token_ids")
    lines = nb.cells[at].source.splitlines()
    raised = lines.index('    raise NotImplementedError("text_to_token_ids is not implemented yet")')
    lines[raised:raised] = ['    encoded = tokenizer.encode(text, allowed_special={"<|endoftext|>"})']
    nb.cells[at].source = "\n".join(lines)
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")), ["text_to_token_ids"], ctx=grading_ctx)
    (ex,) = report.exercises
    assert ex.status == "not_implemented" and ex.status_line == "the stub's raise is still there"
    assert f"is still there, at line {raised + 2} of code cell {code_cell_number(nb, at)}: your code" in ex.message
