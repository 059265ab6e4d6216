"""Jupyter notebooks: write the exercise notebook, and run a submitted one for grading.

``python -m grader notebook --output DIR`` writes ``DIR/chapter5.ipynb`` (nbformat 4):
an introduction, a setup cell importing the earlier chapters' pieces from
``reference``, then for each exercise a markdown cell (book section, what to do,
shapes, what the grader checks), a code cell with the stub from solutions/ (as
``python -m grader make-exercises`` makes it) and a *grade cell* that runs
``python -m grader --submission <the saved notebook> EXERCISE`` in a separate
process (``grade_in_notebook``).

``python -m grader --submission work.ipynb`` grades a notebook. The parent reads
and validates it (``read_code_cells``); each grading child runs its code cells in
order in a fresh module (``load_notebook_module``), the way a fresh "Run all"
would: IPython magics and shell lines (``%matplotlib inline``, ``!pip ...``) are
skipped, grade cells are skipped, and a cell that raises stops the cells after it.

This module is also imported inside the student's Jupyter kernel (the grade
cells), so it imports nothing heavy at the top.
"""

from __future__ import annotations

import argparse
import ast
import io
import linecache
import os
import re
import subprocess
import sys
import time
import tokenize
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import EXERCISES

KIT_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = KIT_ROOT / "solutions"
DEFAULT_NAME = "chapter5.ipynb"
SOLUTIONS_NAME = "chapter5-solutions.ipynb"
# A grade cell has this tag, or a first line starting with GRADE_MARKER; grading skips it.
GRADE_TAG = "grade-cell"
GRADE_MARKER = "# grade-cell"
# Set in a grading child that runs a notebook: a grader started from there refuses to run.
NESTED_ENV = "CH5_GRADER_IN_NOTEBOOK"
# The earlier chapters' pieces the setup cell imports.
SETUP_NAMES = ("GPTModel", "GPT_CONFIG_124M", "create_dataloader_v1", "generate_text_simple",
               "get_tokenizer", "load_text", "generate_and_print_sample")
# Cell magics whose body is Python: grading runs the body once; other cell magics are skipped.
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")
SOLUTION_MARKER = re.compile(r"^[ \t]*# (BEGIN|END) SOLUTION[ \t]*\n", re.M)
DOC_SECTION = re.compile(r"^(Args|Returns|Prints|Raises|Steps):\s*$")


class NotebookError(ValueError):
    """A file that is not a usable notebook; the message is one line."""


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

    from .child import LoadError

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
# Writing the exercise notebook
# ---------------------------------------------------------------------------

def _rst_to_markdown(text: str) -> str:
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _items(lines: list[str]) -> list[str]:
    """Docstring section lines -> items: a line at the section's indent starts one."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    items = []
    for line in lines:
        if len(line) - len(line.lstrip()) == indent or not items:
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
    return items


def docstring_markdown(doc: str) -> str:
    """A Google-style docstring (Args/Returns/Prints/Steps) as markdown."""
    intro, sections, current = [], {}, None
    for line in doc.splitlines():
        match = DOC_SECTION.match(line.strip()) if not line.startswith((" ", "\t")) else None
        if match:
            current = match.group(1)
            sections[current] = []
        elif current:
            sections[current].append(line)
        else:
            intro.append(line)
    out = [" ".join(p.split()) for p in "\n".join(intro).split("\n\n") if p.strip()]
    if "Args" in sections:
        out.append("**Inputs**\n\n" + "\n".join(
            "- `{}`:{}".format(*item.split(":", 1)) if ":" in item else f"- {item}"
            for item in _items(sections["Args"])))
    for name, title in (("Returns", "Returns"), ("Raises", "Raises"), ("Prints", "Prints")):
        if name in sections:
            out.append(f"**{title}**: " + " ".join(_items(sections[name])))
    if "Steps" in sections:
        steps = [re.sub(r"^TODO (\d+):\s*", r"\1. ", item) for item in _items(sections["Steps"])]
        out.append("**What to do** (in the code cell below)\n\n" + "\n".join(steps))
    return _rst_to_markdown("\n\n".join(out))


def exercise_code(source: str) -> str:
    """One exercise module as a notebook code cell.

    Drops the module docstring (the markdown cell says it) and the imports of
    other exercises or setup-cell names from ``reference`` with the comment
    above them: in the notebook, the student's own earlier functions are in
    scope (the grader still binds the reference versions when it grades one).
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    replace = {}  # first line (0-based) -> (last line, replacement lines)
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        replace[body[0].lineno - 1] = (body[0].end_lineno - 1, [])
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module == "reference" and node.level == 0:
            keep = [a for a in node.names if a.name not in EXERCISES and a.name not in SETUP_NAMES]
            new = [] if not keep else ["from reference import " + ", ".join(
                a.name + (f" as {a.asname}" if a.asname else "") for a in keep)]
            first = node.lineno - 1
            if not keep:
                while first > 0 and lines[first - 1].lstrip().startswith("#"):
                    first -= 1
            replace[first] = (node.end_lineno - 1, new)
    out, i = [], 0
    while i < len(lines):
        if i in replace:
            last, new = replace[i]
            out.extend(new)
            i = last + 1
        else:
            out.append(lines[i])
            i += 1
    text = re.sub(r"\n{3,}", "\n\n\n", "\n".join(out).strip("\n"))
    return text + "\n"


def _function_doc(source: str, exercise: str) -> str:
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == exercise:
            return ast.get_docstring(node) or ""
    return ""


def grade_cell_source(*exercises: str) -> str:
    """A grade cell for ``exercises`` (none: all of them)."""
    args = ", ".join(repr(e) for e in exercises)
    what = ", ".join(exercises) if exercises else "every exercise"
    return (f"{GRADE_MARKER}: grades {what} in this notebook's SAVED file; save first (Ctrl+S / Cmd+S).\n"
            "# It runs `python -m grader --submission <this notebook>` in a separate process and is\n"
            "# skipped when the notebook itself is graded.\n"
            "from grader.notebook import grade_in_notebook\n"
            f"grade_in_notebook({args})\n")


INTRO = """# Chapter 5: Pretraining on unlabeled data — exercises

The functions of chapter 5 of *Build a Large Language Model From Scratch*, one exercise each.
For each exercise: read the text, fill in the function in the code cell (replace the
`raise NotImplementedError(...)`), run the cell, **save the notebook** (Ctrl+S / Cmd+S),
then run the grade cell below it. The grade cell runs the kit's grader on the saved file,
so unsaved changes are not graded.

How the grader runs this notebook: the code cells run in order in a fresh process, as a
fresh *Run all* would. IPython magics and shell lines (`%matplotlib inline`, `!pip ...`)
and the grade cells are skipped; a cell that raises stops the cells after it, and the
report names that cell (code cells counted from 1). Each exercise is graded on its own:
when one exercise is graded, the other exercises' names used inside it are the kit's
reference versions, so a mistake costs points in one exercise only. Keep long runs (a
full training) out of this notebook, or the grader runs them too.

From a terminal in the kit's folder: `python -m grader --submission chapter5.ipynb`
(add exercise names to grade only those; `--hint EXERCISE` for hints).
"""

SETUP = """# Setup: the pieces from earlier chapters, from the kit's reference implementation.
# ModuleNotFoundError here means the kit is not importable from this notebook's folder:
# `pip install -e /path/to/the/kit`, or keep this notebook in the kit's folder.
import torch

from reference import (
""" + "".join(f"    {name},\n" for name in SETUP_NAMES) + """)

tokenizer = get_tokenizer()  # GPT-2's BPE tokenizer (tiktoken), from the kit's offline files
"""


def build_notebook(with_solutions: bool = False, solutions_dir: Path = SOLUTIONS_DIR):
    """The exercise notebook as an ``nbformat`` v4 NotebookNode (validated).

    ``with_solutions`` puts the solutions in the code cells instead of the stubs.
    Every exercise code cell carries ``metadata.grader = {"exercise": name}`` and
    every grade cell the tag ``grade-cell``.
    """
    import nbformat
    from nbformat import v4

    from .generate import stub_source
    from .grading import check_definitions

    defs = check_definitions()
    cells = [v4.new_markdown_cell(INTRO), v4.new_code_cell(SETUP, metadata={"grader": {"role": "setup"}})]
    for number, exercise in enumerate(EXERCISES, 1):
        source = (solutions_dir / f"{exercise}.py").read_text(encoding="utf-8")
        spec = defs[exercise]
        points = sum(c["points"] for c in spec["checks"])
        checks = "\n".join(f"- {c['what']} ({c['points']:g} point{'s' * (c['points'] != 1)})"
                           for c in spec["checks"])
        text = (f"## Exercise {number}: `{exercise}` (section {spec['section']}, {points:g} points)\n\n"
                f"Task: {spec['summary']}.\n\n"
                f"{docstring_markdown(_function_doc(source, exercise))}\n\n"
                f"**The grader checks**\n\n{_rst_to_markdown(checks)}")
        code = SOLUTION_MARKER.sub("", source) if with_solutions else stub_source(source, exercise)
        cells.append(v4.new_markdown_cell(text))
        cells.append(v4.new_code_cell(exercise_code(code), metadata={"grader": {"exercise": exercise}}))
        cells.append(v4.new_code_cell(grade_cell_source(exercise), metadata={"tags": [GRADE_TAG]}))
    cells.append(v4.new_markdown_cell("## Grade everything\n\nSave the notebook first."))
    cells.append(v4.new_code_cell(grade_cell_source(), metadata={"tags": [GRADE_TAG]}))
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def write_notebook(directory: Path, name: str = DEFAULT_NAME, with_solutions: bool = False,
                   force: bool = False) -> Path:
    """Write the notebook to ``directory/name``; returns its path.

    Raises:
        FileExistsError: the file exists and ``force`` is false (it may hold a student's work).
        NotADirectoryError: ``directory`` exists and is not a folder.
    """
    import nbformat

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"--output {directory} is a file: name a folder")
    path = directory / name
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists: --force replaces it (and loses the work in it)")
    nb = build_notebook(with_solutions)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(path)
    return path


def notebook_command(argv) -> int:
    from .cli import UsageError

    p = argparse.ArgumentParser(
        prog="python -m grader notebook",
        description="Write the exercise notebook (Jupyter) into a folder. An existing notebook "
                    "there is kept unless --force.")
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder to write into (made if missing)")
    p.add_argument("--name", help=f"file name (default {DEFAULT_NAME}; {SOLUTIONS_NAME} with --solutions)")
    p.add_argument("--solutions", action="store_true", help="the instructor's copy: solutions in the code cells")
    p.add_argument("--force", action="store_true", help="replace an existing notebook (loses its edits)")
    args = p.parse_args(argv)
    name = args.name or (SOLUTIONS_NAME if args.solutions else DEFAULT_NAME)
    if not name.endswith(".ipynb") or "/" in name or os.sep in name:
        raise UsageError(f"--name {name}: give a file name ending in .ipynb")
    try:
        path = write_notebook(args.output, name, with_solutions=args.solutions, force=args.force)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {path}")
    return 0


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
    result = subprocess.run(command, cwd=KIT_ROOT, capture_output=True, text=True)
    print(result.stdout + result.stderr, end="")
