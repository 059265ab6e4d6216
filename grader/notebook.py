"""Jupyter notebooks as the grader reads and runs them, and the grade cells inside Jupyter.

``python -m grader --submission work.ipynb`` grades a notebook. The parent reads
and validates it (``read_code_cells``); each grading child runs its code cells in
order in a fresh module (``load_notebook_module``), the way a fresh "Run all"
would: IPython magics and shell lines (``%matplotlib inline``, ``!pip ...``) are
skipped, grade cells are skipped, and a cell that raises stops the cells after it.

The notebook itself is written by ``python -m grader notebook`` (make_notebook.py).
This module is also imported inside the student's Jupyter kernel (the grade
cells: ``grade_in_notebook``), so it imports nothing heavy at the top.
"""

from __future__ import annotations

import io
import linecache
import os
import subprocess
import sys
import time
import tokenize
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import EXERCISES
from .errors import LoadError, NotebookError

KIT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAME = "chapter5.ipynb"
# A grade cell has this tag, or a first line starting with GRADE_MARKER; grading skips it.
GRADE_TAG = "grade-cell"
GRADE_MARKER = "# grade-cell"
# Set in a grading child that runs a notebook: a grader started from there refuses to run.
NESTED_ENV = "CH5_GRADER_IN_NOTEBOOK"
# Cell magics whose body is Python: grading runs the body once; other cell magics are skipped.
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")


# ---------------------------------------------------------------------------
# Reading a notebook for grading (parent) and running it (child)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeCell:
    """One code cell of a submitted notebook, as grading runs it.

    ``number`` counts the notebook's code cells from 1 (``In [number]`` after a
    fresh "Run all"); ``source`` is the Python that runs, with magic and shell
    lines replaced by ``pass``; ``skipped`` says why the cell does not run at all.
    """

    number: int
    source: str
    skipped: str = ""


def is_grade_cell(source: str, tags=()) -> bool:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return GRADE_TAG in tags or first.startswith(GRADE_MARKER)


def python_source(source: str) -> tuple[str, str]:
    """``(python, skipped)`` for a cell's text: what runs, and why nothing runs ("" if it does).

    A cell that compiles as it is runs as it is. Otherwise lines starting with
    ``%`` or ``!`` (IPython line magics and shell commands) become ``pass`` at
    the same indent, so that line numbers stay those of the notebook. A cell
    starting with ``%%time``/``%%timeit``/``%%capture``/``%%prun`` runs its body
    once; any other cell magic (``%%bash``, ``%%writefile``...) is skipped.
    """
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first, _, body = stripped.partition("\n")
        magic = first[2:].split()[0] if first[2:].split() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return "", f"cell magic %%{magic}"
        # The lines up to the magic line become blank lines: line numbers are kept.
        blank = source[: len(source) - len(stripped)].count("\n") + 1
        return python_source("\n" * blank + body)[0], ""
    try:
        compile(source, "<cell>", "exec")
        return source, ""
    except SyntaxError:
        pass
    lines = []
    for line in source.splitlines():
        body = line.lstrip()
        if body.startswith(("%", "!")) and not _continues_statement("\n".join(lines) + "\n"):
            line = line[: len(line) - len(body)] + "pass  # skipped: " + body[:60].replace("\\", "/")
        lines.append(line)
    return "\n".join(lines) + ("\n" if source.endswith("\n") else ""), ""


def _continues_statement(prefix: str) -> bool:
    """Whether the next line after ``prefix`` is inside an open bracket, string or backslash line."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(prefix).readline):
            pass
    except tokenize.TokenError:
        return True
    except SyntaxError:  # e.g. an inconsistent dedent: not our business here
        return False
    return False


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
    cells = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        number = len(cells) + 1
        source = cell.get("source", "")
        tags = cell.get("metadata", {}).get("tags", [])
        if is_grade_cell(source, tags):
            cells.append(CodeCell(number, "", "grade cell"))
            continue
        python, skipped = python_source(source)
        cells.append(CodeCell(number, python, skipped))
    return cells


@dataclass
class CellFailure:
    number: int
    error: str  # e.g. "NameError: name 'x' is not defined (line 3)"

    def sentence(self) -> str:
        return f"code cell {self.number} raised {self.error}, so the cells after it did not run"


def _display(*objects, **_):
    """Stand-in for IPython's ``display`` while grading: prints the objects."""
    for obj in objects:
        print(repr(obj))


def cell_filename(path: Path, number: int) -> str:
    return f"<{Path(path).name} code cell {number}>"


def run_cells(path: Path, cells: list[CodeCell], namespace: dict, on_cell=None) -> CellFailure | None:
    """Run the cells in order in ``namespace``; stop at the first that raises and return why.

    ``on_cell(namespace)`` is called after each cell that ran, failed or not.
    """
    from .child import error_line

    for cell in cells:
        if cell.skipped:
            continue
        filename = cell_filename(path, cell.number)
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        failure = None
        try:
            exec(compile(cell.source, filename, "exec"), namespace)
        except SyntaxError as exc:
            if exc.filename == filename:  # the cell itself does not parse
                where = f" (line {exc.lineno})" if exc.lineno else ""
                failure = CellFailure(cell.number, f"{exc.__class__.__name__}: {exc.msg}{where}")
            else:  # raised while it ran (an import of a broken file, say)
                failure = CellFailure(cell.number, error_line(exc) + _cell_line(exc, filename))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt stop "Run all" too
            failure = CellFailure(cell.number, error_line(exc) + _cell_line(exc, filename))
        if on_cell:
            on_cell(namespace)
        if failure:
            return failure
    return None


def _cell_line(exc: BaseException, filename: str) -> str:
    """`` (line N)``: the cell's line where ``exc`` left it, or "" when none is known."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def load_notebook_module(path: Path, cells: list[CodeCell], exercise: str):
    """Run a notebook's cells in a fresh module (in a grading child) and return the module.

    The module's ``exercise`` is the last one a notebook cell defined: a later
    ``from reference import <exercise>`` (copied from exercises/, say) does not
    replace it, and one imported but never defined counts as not defined.

    Raises:
        child.LoadError: a cell raised and ``exercise`` is not defined by the cells before it.
    """
    import reference

    os.environ[NESTED_ENV] = "1"  # a grader started from a cell refuses to run (no recursion)
    module = types.ModuleType("submission")
    module.__dict__["display"] = _display
    sys.modules["submission"] = module
    own = {}  # exercise -> the last function a cell bound to that name

    def note_definitions(namespace):
        for name in EXERCISES:
            value = namespace.get(name)
            if callable(value) and value is not getattr(reference, name, None):
                own[name] = value

    failure = run_cells(path, cells, module.__dict__, on_cell=note_definitions)
    current = module.__dict__.get(exercise)
    from_reference = getattr(reference, exercise, None)  # None in the student release
    if exercise in own and current is not own[exercise] and (current is from_reference or not callable(current)):
        module.__dict__[exercise] = own[exercise]
    elif exercise not in own and from_reference is not None and current is from_reference:
        del module.__dict__[exercise]
    if failure is not None:
        if not callable(module.__dict__.get(exercise)):
            raise LoadError(failure.sentence())
        print(f"note: {failure.sentence()}", file=sys.stderr)
    return module


# ---------------------------------------------------------------------------
# Inside Jupyter: the grade cells
# ---------------------------------------------------------------------------

def _ipython_namespace() -> dict:
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return getattr(shell, "user_ns", {}) or {}


def find_notebook(notebook=None) -> Path | None:
    """The saved notebook this kernel runs: ``notebook`` if given, else what Jupyter or VS Code
    say (``__vsc_ipynb_file__``, ``__session__``, ``JPY_SESSION_NAME``), else ``chapter5.ipynb``
    or the only notebook in the current folder. None when there is no such file.
    """
    if notebook is not None:
        path = Path(notebook).expanduser()
        return path.resolve() if path.is_file() else None
    ns = _ipython_namespace()
    candidates = [ns.get("__vsc_ipynb_file__"), ns.get("__session__"), os.environ.get("JPY_SESSION_NAME"), DEFAULT_NAME]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            path = Path(candidate).expanduser()
            if path.is_file():
                return path.resolve()
    found = sorted(Path.cwd().glob("*.ipynb"))
    return found[0].resolve() if len(found) == 1 else None


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def grade_in_notebook(*exercises: str, notebook=None) -> None:
    """Grade ``exercises`` (default: all) of the saved notebook from inside Jupyter; prints the report.

    Runs ``python -m grader --submission NOTEBOOK EXERCISE...`` with this kernel's
    Python, from the kit's folder. It grades the file as last saved, so save first.
    It never raises, so that "Run all" goes on past it.
    """
    if os.environ.get(NESTED_ENV):
        print("(grade cell skipped: this notebook is being graded)")
        return
    path = find_notebook(notebook)
    if path is None:
        print("Cannot tell which notebook this is: pass its file name, "
              f"e.g. grade_in_notebook(notebook={DEFAULT_NAME!r})")
        return
    print(f"Grading {path.name} as saved {_age(time.time() - path.stat().st_mtime)} "
          "(save first if you changed it since) ...", flush=True)
    command = [sys.executable, "-m", "grader", "--submission", str(path), *exercises]
    # each line as the grader prints it (the report comes as the exercises finish)
    with subprocess.Popen(command, cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
