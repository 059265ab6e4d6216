"""Notebooks for the notebook tests: the generated notebook with the solutions filled in, and
helpers to change it (test_notebook.py, test_notebook_messy.py, test_notebook_kernel.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat

from grader import EXERCISES
from grader.checks import check_definitions
from grader.make_notebook import build_notebook


def exercise_of(cell) -> str | None:
    return cell.get("metadata", {}).get("grader", {}).get("exercise")


def code_cell_number(nb, cell_index: int) -> int:
    """The grader's number of the code cell at ``nb.cells[cell_index]`` (code cells from 1)."""
    return sum(c.cell_type == "code" for c in nb.cells[: cell_index + 1])


def filled_notebook() -> nbformat.NotebookNode:
    """The generated stub notebook with every exercise cell filled in with its solution
    (the code cells of ``python -m grader notebook --solutions``)."""
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
    """The index in ``nb.cells`` of the code cell of ``exercise``."""
    return next(i for i, c in enumerate(nb.cells) if exercise_of(c) == exercise)


def before_exercise(nb, exercise: str) -> int:
    """The index at which a cell lands just before the exercise's text (its markdown cell)."""
    return index_of(nb, exercise) - 1


def max_points(exercises=EXERCISES) -> float:
    return sum(c["points"] for e in exercises for c in check_definitions()[e]["checks"])
