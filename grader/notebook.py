"""Jupyter notebooks as the grader reads and runs them, and the grade cells inside Jupyter.

``python -m grader --submission work.ipynb`` grades a notebook. The parent reads
and validates it (``read_code_cells``) and runs its cells once in a probing child
(probe.py) to find the cells that hang, end the process or raise. Each grading
child then runs the code cells in order in a fresh module (``load_notebook_module``),
as a fresh "Run all" would, except that the cells the probe stopped are skipped and
a cell that raises does not stop the cells after it. Jupyter- and Colab-only lines
are left out (cell_source.py); grade cells are skipped.

The notebook itself is written by ``python -m grader notebook`` (make_notebook.py).
This module is also imported inside the student's Jupyter kernel (the grade
cells: ``grade_in_notebook``, which grades what the kernel has defined: kernel.py),
so it imports nothing heavy at the top.
"""

from __future__ import annotations

import linecache
import os
import re
import subprocess
import sys
import tempfile
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import EXERCISES
from .cell_source import KERNEL_ORIGIN, NESTED_ENV, cell_names, cell_text, is_grade_cell
from .errors import LoadError, NotebookError

KIT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAME = "chapter5.ipynb"


# ---------------------------------------------------------------------------
# Reading a notebook for grading (parent) and running it (child)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeCell:
    """One code cell of a submitted notebook, as grading runs it.

    ``number`` counts the notebook's code cells from 1 (``In [number]`` after a
    fresh "Run all"); ``source`` is the Python that runs, with magic, shell and
    Colab-only lines replaced by ``pass``; ``skipped`` says why the cell does not
    run at all; ``left_out`` lists the lines left out worth a note; ``label`` is
    how reports name the cell ("code cell 3", or "In [7]" for a kernel's history).
    """

    number: int
    source: str
    skipped: str = ""
    left_out: tuple = ()
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"code cell {self.number}"


def read_code_cells(text: str, path: Path) -> list[CodeCell]:
    """The code cells of a notebook's text, ready to run. Raises NotebookError (one line)."""
    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. MissingIDFieldWarning for older notebooks
        try:
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
        except nbformat.reader.NotJSONError:
            raise NotebookError(f"{path} is not a Jupyter notebook: it is not JSON") from None
        except Exception as exc:  # nbformat raises ValidationError, TypeError, KeyError... on odd JSON
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
            raise NotebookError(f"{path} is not a valid Jupyter notebook ({detail})") from None
    from_kernel = nb.get("metadata", {}).get("grader", {}).get("origin") == KERNEL_ORIGIN
    cells = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        number = len(cells) + 1
        label = f"In [{cell.get('execution_count')}]" if from_kernel else ""
        source = cell.get("source", "")
        tags = cell.get("metadata", {}).get("tags", [])
        if is_grade_cell(source, tags):
            cells.append(CodeCell(number, "", "grade cell", label=label))
            continue
        text = cell_text(source)
        cells.append(CodeCell(number, text.python, text.skipped, tuple(text.left_out), label))
    return cells


@dataclass
class CellProblem:
    """What went wrong in one cell. ``kind``: ``raised`` (the cells after it still run),
    ``timeout``, ``exited``, ``memory`` (found by the probe: the cell is skipped when
    grading) or ``not_run`` (skipped: the probe stopped before it)."""

    cell: CodeCell
    kind: str
    error: str = ""  # raised: "NameError: name 'x' is not defined (line 3)"; else the details

    @property
    def skips_cell(self) -> bool:
        return self.kind != "raised"

    def what_happened(self) -> str:
        return {"raised": f"raised {self.error}",
                "timeout": f"did not finish within {self.error}",
                "exited": f"ended the process ({self.error})",
                "memory": f"used more than the memory limit ({self.error})",
                "not_run": f"was not run ({self.error})"}.get(self.kind, self.error)

    def sentence(self) -> str:
        then = "; the cells after it ran" if self.kind == "raised" else \
            ("" if self.kind == "not_run" else ": it was skipped")
        return f"{self.cell.name} {self.what_happened()}{then}"

    def defines(self, name: str) -> bool:
        """Whether the cell binds ``name`` (by its text: also when it does not parse)."""
        if name in cell_names(self.cell.source).binds:
            return True
        return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", self.cell.source, re.M) is not None


def _display(*objects, **_):
    """Stand-in for IPython's ``display`` while grading: prints the objects."""
    for obj in objects:
        print(repr(obj))


def cell_filename(path: Path, cell: CodeCell) -> str:
    return f"<{Path(path).name} {cell.name}>"


def fresh_module():
    """The module a notebook's cells run in (in a grading or probing child)."""
    os.environ[NESTED_ENV] = "1"  # a grader started from a cell refuses to run (no recursion)
    module = types.ModuleType("submission")
    module.__dict__["display"] = _display
    sys.modules["submission"] = module
    return module


def run_cell(path: Path, cell: CodeCell, namespace: dict, passthrough=()) -> str:
    """Run one cell in ``namespace``; returns "" or what it raised, as one line with the cell's line.
    Exceptions of the types in ``passthrough`` are raised again (the probe's alarm)."""
    from .child import error_line

    filename = cell_filename(path, cell)
    linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
    try:
        exec(compile(cell.source, filename, "exec"), namespace)
    except SyntaxError as exc:
        if exc.filename == filename:  # the cell itself does not parse
            where = f" (line {exc.lineno})" if exc.lineno else ""
            return f"{exc.__class__.__name__}: {exc.msg}{where}"
        return error_line(exc) + cell_line(exc, filename)  # raised while it ran (an import of a broken file)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the next cell runs
        if isinstance(exc, passthrough):
            raise
        return error_line(exc) + cell_line(exc, filename)
    return ""


def run_cells(path: Path, cells: list[CodeCell], namespace: dict, on_cell=None) -> list[CellProblem]:
    """Run the cells in order in ``namespace``, past the ones that raise; returns what they raised.

    ``on_cell(namespace)`` is called after each cell that ran, failed or not.
    """
    problems = []
    for cell in cells:
        if cell.skipped:
            continue
        error = run_cell(path, cell, namespace)
        if error:
            problems.append(CellProblem(cell, "raised", error))
        if on_cell:
            on_cell(namespace)
    return problems


def cell_line(exc: BaseException, filename: str) -> str:
    """`` (line N)``: the cell's line where ``exc`` left it, or "" when none is known."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def load_notebook_module(path: Path, cells: list[CodeCell], exercise: str, known=()):
    """Run a notebook's cells in a fresh module (in a grading child) and return the module.

    The module's ``exercise`` is the last one a notebook cell defined: a later
    ``from reference import <exercise>`` (copied from exercises/, say) does not
    replace it, and one imported but never defined counts as not defined.
    ``known``: the CellProblems the probe found (its skipped cells are not in ``cells``' run).

    Raises:
        child.LoadError: ``exercise`` is not defined, and a cell that defines it raised or was skipped.
    """
    import reference

    module = fresh_module()
    own = {}  # exercise -> the last function a cell bound to that name

    def note_definitions(namespace):
        for name in EXERCISES:
            value = namespace.get(name)
            if callable(value) and value is not getattr(reference, name, None):
                own[name] = value

    problems = run_cells(path, cells, module.__dict__, on_cell=note_definitions)
    current = module.__dict__.get(exercise)
    from_reference = getattr(reference, exercise, None)  # None in the student release
    if exercise in own and current is not own[exercise] and (current is from_reference or not callable(current)):
        module.__dict__[exercise] = own[exercise]
    elif exercise not in own and from_reference is not None and current is from_reference:
        del module.__dict__[exercise]
    for problem in problems:
        print(f"note: {problem.sentence()}", file=sys.stderr)
    if not callable(module.__dict__.get(exercise)):
        cause = next((p for p in [*known, *problems] if p.defines(exercise)), None)
        if cause is not None:
            raise LoadError(f"{exercise} is not defined: {cause.cell.name}, which defines it, {cause.what_happened()}")
    return module


def explain_name_error(message: str, problems) -> str:
    """``message`` plus which failed cell would have defined the name a NameError names."""
    match = re.search(r"NameError: name '(\w+)' is not defined", message)
    if not match:
        return message
    cause = next((p for p in problems if p.defines(match.group(1))), None)
    if cause is None:
        return message
    return f"{message}; {cause.cell.name}, which defines {match.group(1)}, {cause.what_happened()}"


# ---------------------------------------------------------------------------
# Inside Jupyter: the grade cells
# ---------------------------------------------------------------------------

def _ipython_shell():
    if "IPython" not in sys.modules:  # never import IPython where it is not already running
        return None
    from IPython import get_ipython

    return get_ipython()


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def grade_in_notebook(*exercises: str, notebook=None) -> None:
    """Grade ``exercises`` (default: all) from inside Jupyter; prints the report.

    Grades the functions as this kernel has them now: the cells it ran that define
    them and what they use (kernel.py), not the saved file, so there is nothing to
    save first. ``notebook="work.ipynb"`` grades that saved file instead. Runs
    ``python -m grader --submission ...`` with this kernel's Python, from the kit's
    folder, in a separate process. It never raises, so that "Run all" goes on past it.
    """
    if os.environ.get(NESTED_ENV):
        print("(grade cell skipped: this notebook is being graded)")
        return
    if notebook is not None:
        path = Path(notebook).expanduser()
        if not path.is_file():
            print(f"grade_in_notebook: there is no file {notebook!r}; leave out notebook= to grade "
                  "what this kernel has defined")
            return
        print(f"Grading the saved file {path.name} (saved {_age(time.time() - path.stat().st_mtime)}), "
              "not this kernel's cells ...", flush=True)
        _run_grader(path.resolve(), exercises)
        return
    shell = _ipython_shell()
    if shell is None:
        print("grade_in_notebook grades what a running Jupyter kernel has defined; "
              "outside Jupyter run: python -m grader --submission FILE")
        return
    from .kernel import write_kernel_notebook

    with tempfile.TemporaryDirectory(prefix="grader-kernel-") as tmp:
        snapshot = write_kernel_notebook(shell, Path(tmp))
        print(snapshot.first_line(exercises), flush=True)
        for line in snapshot.notes:
            print(f"note: {line}")
        _run_grader(snapshot.path, exercises, label="this kernel's cells")


def _run_grader(path: Path, exercises, label: str = "") -> None:
    """Print the report of ``python -m grader --submission PATH EXERCISE...`` (stdout and stderr)
    as it comes; ``label`` replaces the temporary file's path in it."""
    command = [sys.executable, "-m", "grader", "--submission", str(path), *exercises]
    # each line as the grader prints it (the report comes as the exercises finish)
    with subprocess.Popen(command, cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            print(line.replace(str(path), label) if label else line, end="", flush=True)
