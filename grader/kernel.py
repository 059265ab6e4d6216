"""Inside Jupyter: the cells a running kernel has run, as a notebook the grader can grade.

``grade_in_notebook`` (notebook.py) grades what the student sees, not the file as last
saved. The kernel's own input history (IPython's raw ``In``, in execution order, one
entry per execution) says what ran. From it, this module keeps the cells that made
the exercise functions the kernel has now, and the cells those depend on:

- every cell that binds an exercise name the kernel has (each version the student
  ran: run in order, they leave the kernel's last working definition, also when the
  latest edit raised before its ``def``);
- transitively, every cell that binds a name one of the kept cells reads, at its top
  level or inside its functions (cell_source.cell_names), and every ``from m import *``;
- a source run several times is kept once, at its last run; grade cells are dropped.

Exploration cells, plots and trainings nothing depends on are left out, so they cost
nothing. The kept cells go, in execution order and numbered by their execution count
("In [7]"), into a temporary notebook that ``python -m grader --submission`` grades in
a separate process: nothing here imports torch, and the kernel never forks.

Known limits: a name bound only by code the grader cannot see (``%run file.py``,
``exec``, ``globals()[...] = ...``) is reported in a note; an object changed only by
calling its methods (``config.update(...)``) keeps the value the kept cells give it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import EXERCISES
from .cell_source import KERNEL_ORIGIN, cell_names, cell_text, is_grade_cell

FILE_NAME = "kernel-cells.ipynb"


@dataclass(frozen=True)
class KernelCell:
    count: int  # the execution count: In [count]
    source: str  # as the student typed it (magics included)


@dataclass
class Snapshot:
    """The notebook written from a kernel: its ``path``, the ``cells`` kept, ``notes`` for the student."""

    path: Path
    cells: list
    notes: list = field(default_factory=list)

    def first_line(self, exercises) -> str:
        what = ", ".join(exercises) if exercises else "every exercise"
        cells = _counts([c.count for c in self.cells])
        return (f"Grading {what} as this kernel has it now ({f'from {cells}' if cells else 'no cell defines it yet'}), "
                "not the saved file ...")


def history(shell) -> list[KernelCell]:
    """The kernel's inputs in execution order, as typed (``In`` holds IPython's translation)."""
    raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if raw is None:
        raw = shell.user_ns.get("_ih", [])
    return [KernelCell(count, source) for count, source in enumerate(raw) if count and source.strip()]


def distinct(cells: list[KernelCell]) -> list[KernelCell]:
    """Grade cells dropped; a source run several times kept once, at its last run."""
    last = {cell.source: cell for cell in cells}
    return [cell for cell in cells if last[cell.source] is cell and not is_grade_cell(cell.source)]


def needed(cells: list[KernelCell], roots) -> list[KernelCell]:
    """The cells that bind ``roots``, and, transitively, the names those read (see the docstring)."""
    names = [cell_names(cell_text(cell.source).python) for cell in cells]
    binders: dict[str, list[int]] = {}
    for i, cell in enumerate(names):
        for name in cell.binds:
            binders.setdefault(name, []).append(i)
    kept = {i for i, n in enumerate(names) if n.star}  # a star import may bind anything
    todo, seen = list(roots) + [name for i in kept for name in names[i].uses], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for i in binders.get(name, ()):
            if i not in kept:
                kept.add(i)
                todo.extend(names[i].uses)
    return [cell for i, cell in enumerate(cells) if i in kept]


def write_kernel_notebook(shell, directory: Path) -> Snapshot:
    """Write the kernel's needed cells as ``directory/kernel-cells.ipynb``; returns the Snapshot."""
    import nbformat
    from nbformat import v4

    cells = distinct(history(shell))
    roots = [name for name in EXERCISES if name in shell.user_ns]
    kept = needed(cells, roots)
    bound = set().union(*(cell_names(cell_text(c.source).python).binds for c in kept)) if kept else set()
    notes = [f"{name} is defined in this kernel, but by no cell the grader can run (%run, exec?): "
             "define it in a code cell" for name in roots if name not in bound]
    nb = v4.new_notebook(metadata={"grader": {"origin": KERNEL_ORIGIN}})
    nb.cells = [v4.new_code_cell(cell.source, execution_count=cell.count) for cell in kept]
    path = Path(directory) / FILE_NAME
    nbformat.write(nb, str(path))
    return Snapshot(path, kept, notes)


def _counts(counts: list[int]) -> str:
    """``In [1], [3]-[5], [9]``: execution counts, consecutive ones as ranges."""
    if not counts:
        return ""
    groups, start, prev = [], counts[0], counts[0]
    for n in counts[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        groups.append(f"[{start}]" if start == prev else f"[{start}]-[{prev}]")
        if n is not None:
            start = prev = n
    return "In " + ", ".join(groups)
