"""The exercise notebook: writing it (``python -m grader notebook``) and grading one
(``python -m grader --submission work.ipynb``).

Gradings run in-process with the session's shared grading context (~10 s for all
eight exercises on 2 busy cores, ~1-3 s for one or two); three tests start the CLI
(writing the notebook twice, and grade_in_notebook on a saved file). Messy notebooks:
test_notebook_messy.py; a real Jupyter kernel: test_notebook_kernel.py.
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
from grader.cell_source import GRADE_TAG, NESTED_ENV, python_source
from grader.notebook import DEFAULT_NAME, grade_in_notebook
from grader.runner import grade
from grader.sources import open_submission
from notebook_helpers import code_cell_number, exercise_of, filled_notebook, index_of, max_points, save

ROOT = Path(__file__).resolve().parent.parent


def run_grader(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


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
    ("%who\nz = (7\n     % 4)\n", "pass  # skipped: %who\nz = (7\n     % 4)\n"),
    ("%%time\nw = 3\n", "\nw = 3\n"),  # a Python cell magic: its body runs, line numbers kept
    # %time and %timeit run their statement once: what it assigns is there afterwards
    ("%time model = 1\n", "model = 1\n"),
    ("if True:\n    %timeit -n 10 -r 3 y = f()\n", "if True:\n    y = f()\n"),
])
def test_magic_and_shell_lines_are_skipped(cell, expected):
    assert python_source(cell) == (expected, "")
    compile(expected, "<cell>", "exec")


def test_other_cell_magics_skip_the_cell():
    assert python_source("%%bash\nls -l\n") == ("", "cell magic %%bash")


# --- grading notebooks -------------------------------------------------------------------------

def test_generated_stub_notebook_grades_to_zero(tmp_path, grading_ctx):
    report = grade(open_submission(save(build_notebook(), tmp_path / "stub.ipynb")), ctx=grading_ctx)
    assert [e.status for e in report.exercises] == ["not_implemented"] * len(EXERCISES)
    assert report.score == 0 and report.max_score == max_points()


def test_a_failing_cell_is_reported_once_and_the_cells_after_it_run(tmp_path, grading_ctx):
    nb = filled_notebook()
    at = index_of(nb, "calc_loss_batch") + 1
    nb.cells.insert(at, v4.new_code_cell("x = 1\ny = x / 0\n"))
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")),
                   ["calc_loss_batch", "calc_loss_loader"], ctx=grading_ctx)
    assert [(e.status, e.score) for e in report.exercises] == [("graded", max_points([e.name])) for e in report.exercises]
    assert report.notes == [f"code cell {code_cell_number(nb, at)} raised ZeroDivisionError: division by zero "
                            "(line 2); the cells after it ran"]


def test_a_function_a_failing_cell_would_define_fails_with_that_reason(tmp_path, grading_ctx):
    nb = filled_notebook()
    at = index_of(nb, "calc_loss_batch")
    # the cell raises before its def: calc_loss_batch is never defined, and the report says why
    nb.cells[at].source = "import no_such_module_here\n\n" + nb.cells[at].source
    # a helper a failing cell would define, used by a later exercise when it is graded
    loader = index_of(nb, "calc_loss_loader")
    nb.cells.insert(loader, v4.new_code_cell("oops()\ndef scale():\n    return 1.0\n"))
    nb.cells[loader + 1].source = nb.cells[loader + 1].source.replace(
        "return total_loss / num_batches", "return scale() * total_loss / num_batches")
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")),
                   ["calc_loss_batch", "calc_loss_loader", "evaluate_model"], ctx=grading_ctx)
    batch, loader_result, evaluate = report.exercises
    cell = code_cell_number(nb, at)
    assert (batch.status, batch.score) == ("load_error", 0)
    assert batch.message == (f"calc_loss_batch is not defined: code cell {cell}, which defines it, raised "
                             "ModuleNotFoundError: No module named 'no_such_module_here' (line 1)")
    # every check that calls scale() fails, saying why; only "an empty loader gives nan" passes
    assert [c.id for c in loader_result.checks if c.passed] == ["empty"]
    scale_cell = code_cell_number(nb, loader)
    assert all(c.message.endswith(f"; code cell {scale_cell}, which defines scale, raised NameError: "
                                  "name 'oops' is not defined (line 1)") for c in loader_result.checks
               if not c.passed), [c.message for c in loader_result.checks]
    assert (evaluate.status, evaluate.score) == ("graded", max_points(["evaluate_model"]))  # needs neither
    assert len(report.notes) == 2  # each failing cell once; the missing module is not refused


def test_syntax_error_cell_is_named(tmp_path, grading_ctx):
    nb = filled_notebook()
    at = index_of(nb, "text_to_token_ids")
    nb.cells[at].source = nb.cells[at].source.replace("def text_to_token_ids(text, tokenizer):",
                                                      "def text_to_token_ids(text, tokenizer)")
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")),
                   ["text_to_token_ids", "token_ids_to_text"], ctx=grading_ctx)
    broken, after = report.exercises
    assert broken.status == "load_error"
    assert broken.message.startswith(f"text_to_token_ids is not defined: code cell {code_cell_number(nb, at)}, "
                                     "which defines it, raised SyntaxError: ")
    assert (after.status, after.score) == ("graded", max_points(["token_ids_to_text"]))


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


def test_a_cell_guarded_by_name_main_runs_in_jupyter_only_and_the_plot_cell_is(tmp_path, grading_ctx):
    """The module the cells run in when graded is not __main__: a try-out cell under
    `if __name__ == "__main__":` costs the grading processes nothing (the notebook's plot cell)."""
    nb = filled_notebook()
    plot_cell = next(c for c in nb.cells if c.metadata.get("grader", {}).get("role") == "plot")
    assert '\nif __name__ == "__main__":\n    ' in plot_cell.source
    nb.cells.insert(index_of(nb, "text_to_token_ids"), v4.new_code_cell(
        'if __name__ == "__main__":\n    raise RuntimeError("a guarded cell ran")\n'))
    report = grade(open_submission(save(nb, tmp_path / "work.ipynb")), ["text_to_token_ids"], ctx=grading_ctx)
    (ex,) = report.exercises
    assert ex.score == ex.max_score and report.notes == [], (ex.message, report.notes)


def test_grade_in_notebook_can_still_grade_a_saved_file(tmp_path, monkeypatch, capsys):
    """``grade_in_notebook(..., notebook=FILE)``: the saved file, through the real CLI."""
    nb = filled_notebook()
    save(nb, tmp_path / DEFAULT_NAME)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(NESTED_ENV, raising=False)
    grade_in_notebook("text_to_token_ids", notebook=DEFAULT_NAME)
    out = capsys.readouterr().out
    assert out.startswith(f"Grading the saved file {DEFAULT_NAME} (saved ")
    points = f"{max_points(['text_to_token_ids']):g}"
    assert re.search(rf"text_to_token_ids +{points}/{points}  passed", out) and "All checks passed." in out


def test_the_grade_cell_outside_jupyter_says_what_to_run(monkeypatch, capsys):
    monkeypatch.delenv(NESTED_ENV, raising=False)
    nb = build_notebook()
    grade_cell = nb.cells[index_of(nb, "text_to_token_ids") + 1]
    exec(compile(grade_cell.source, "<grade cell>", "exec"), {})  # what a plain `python` would do with it
    assert capsys.readouterr().out == ("grade_in_notebook grades what a running Jupyter kernel has defined; "
                                       "outside Jupyter run: python -m grader --submission FILE\n")


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
