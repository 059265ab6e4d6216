"""Where a student's functions come from: the exercises/ folder, or one submitted .py file.

The parent only checks a source (exists, is UTF-8, parses, imports installed
modules); its code is executed in the grading children alone.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LoadError, NotebookError, SourceError
from .preload import available

KIT_ROOT = Path(__file__).resolve().parent.parent
CODING_LINE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")  # PEP 263


@dataclass
class ExercisesDir:
    """One module per exercise: ``DIR/<exercise>.py`` defines the function of that name."""

    path: Path
    label: str = "exercises/"

    def __post_init__(self):
        self.path = Path(self.path).resolve()  # the children run in a temp dir

    def file_for(self, exercise: str) -> Path:
        return self.path / f"{exercise}.py"

    def load_module(self, exercise: str):
        from .child import load_module  # in the grading child: it imports torch

        path = self.file_for(exercise)
        if not available(path):  # read already, where a sandboxed child no longer sees it (preload.py)
            raise LoadError(missing_file_message(path))
        return load_module(path, f"student_{exercise}")

    def static_problem(self, exercise: str) -> str | None:
        path = self.file_for(exercise)
        return syntax_problem(path) if path.is_file() else None


@dataclass
class SubmissionFile:
    """A single .py file defining any of the exercise functions by name; ``imports``: the top-level
    modules it imports (imported_modules), read in the parent."""

    path: Path
    label: str = ""
    imports: frozenset = frozenset()

    @property
    def shares_pyplot(self) -> bool:
        """Whether every grading child imports pyplot (it runs the whole file): the parent then
        imports it once before forking them (runner.prepare_source), ~0.8 s a child saved."""
        return "matplotlib" in self.imports

    def __post_init__(self):
        self.label = self.label or str(self.path)
        self.path = Path(self.path).resolve()  # the children run in a temp dir

    def load_module(self, exercise: str):
        from .child import load_module  # in the grading child: it imports torch

        return load_module(self.path, "submission")

    def static_problem(self, exercise: str) -> str | None:
        return syntax_problem(self.path)


@dataclass
class NotebookFile:
    """A Jupyter notebook: each grading child runs its code cells in order in a fresh module
    (grader/notebook.py); the cells are read once in the parent, and run once there in a
    probing child (``probe``) that finds the cells to skip (grader/probe.py)."""

    path: Path
    cells: list = field(default_factory=list)  # notebook.CodeCell
    label: str = ""
    problems: list = field(default_factory=list)  # notebook.CellProblem, found by the probe
    probed: bool = False

    def __post_init__(self):
        self.label = self.label or str(self.path)
        self.path = Path(self.path).resolve()

    def probe(self, limits, isolate=None) -> None:
        """Run the cells once (probe.py); the cells that hang or end the process are skipped from then on.
        Once per NotebookFile: a notebook read again (``--watch``) is probed again."""
        from dataclasses import replace

        from .probe import probe_cells

        if self.probed:
            return
        self.problems, self.probed = probe_cells(self.path, self.cells, limits, isolate), True
        skip = {p.cell.number: p for p in self.problems if p.skips_cell}
        self.cells = [replace(c, skipped=skip[c.number].kind) if c.number in skip else c for c in self.cells]

    @property
    def shares_pyplot(self) -> bool:
        """Whether the cells use matplotlib: the probe and every grading child run them all, so the
        parent imports pyplot once before forking them (runner.prepare_source)."""
        return any("matplotlib" in c.source for c in self.cells)

    @property
    def notes(self) -> list[str]:
        """What the report says once about the notebook: lines left out, cells that failed."""
        notes = [f"{c.name}: left out what runs only in Jupyter or Colab: {'; '.join(c.left_out)}"
                 for c in self.cells if c.left_out]
        return notes + [p.sentence() for p in self.problems]

    def explain(self, message: str) -> str:
        """``message`` of a failed scenario, plus the failed cell that defines the missing name."""
        from .notebook import explain_name_error

        return explain_name_error(message, self.problems)

    def load_module(self, exercise: str):
        from .notebook import load_notebook_module

        return load_notebook_module(self.path, self.cells, exercise, known=self.problems)

    def static_problem(self, exercise: str) -> str | None:
        return None  # a failing cell is reported once, by the probe


def missing_file_message(path: Path) -> str:
    """A deleted exercise file, and how to get its stub back."""
    from .release_mode import is_release

    if is_release():
        return f"{path} is missing: restore it from the release you were given (git checkout -- {path.name}, say)"
    if path.parent.resolve() != (KIT_ROOT / "exercises").resolve():
        return f"{path} is missing: copy the stub from the kit's exercises/ folder"
    return (f"{path} is missing: `python -m grader make-exercises` writes the stub again "
            "(it keeps every file you changed)")


def open_notebook(path: Path) -> NotebookFile:
    """Read and check a submitted notebook in the parent. Raises SourceError (exit 2) for a file
    that is not a valid notebook. A cell importing a module not installed here is not refused:
    it raises when it runs, which the report says once, and the other cells run."""
    from .notebook import read_code_cells

    try:
        cells = read_code_cells(read_source(path), path)
    except NotebookError as exc:
        raise SourceError(str(exc)) from None
    return NotebookFile(path, cells)


def read_source(path: Path) -> str:
    """The text of a submitted file. Raises SourceError for a missing, non-file or undecodable path.

    A .py file is decoded as Python decodes it: UTF-8, or what a byte-order mark or a
    PEP 263 coding line (``# -*- coding: latin-1 -*-``) says. A notebook is JSON: UTF-8.
    """
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path} is a folder: pass the .py file to grade")
    data = path.read_bytes()
    encoding, declared = "utf-8-sig", False  # a byte-order mark, as Windows editors write, is fine
    if path.suffix != ".ipynb":
        declared = any(CODING_LINE.match(line) for line in data.splitlines(keepends=True)[:2])
        try:
            encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        except SyntaxError as exc:
            if declared:  # "unknown encoding: foo", or a coding line that contradicts a BOM
                raise SourceError(f"{path}: its coding line cannot be used ({exc.msg}): save it as UTF-8") from None
            # no declaration and not UTF-8: the decoding below says where
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if declared:
            raise SourceError(f"{path} is not {encoding} text, as its coding line says (byte {exc.start}): "
                              "save it as UTF-8") from None
        raise SourceError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8, or declare its "
                          "encoding in its first line (# -*- coding: latin-1 -*-)") from None


def syntax_problem(path: Path) -> str | None:
    """A one-line description of a syntax error in ``path``, or None."""
    try:
        compile(read_source(path), str(path), "exec")
    except SyntaxError as exc:
        return f"syntax error in {path.name} line {exc.lineno}: {exc.msg}"
    except SourceError as exc:
        return str(exc)
    return None


def imported_modules(source: str) -> set[str]:
    """The top-level modules a file's code imports anywhere (found without running it; none if it
    does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def missing_imports(source: str) -> list[str]:
    """Top-level modules a file imports that are not installed (found without running it)."""
    return sorted(name for name in imported_modules(source) if importlib.util.find_spec(name) is None)


def open_submission(path: Path) -> SubmissionFile | NotebookFile:
    """Check a submitted .py file (or .ipynb notebook) in the parent. Raises SourceError (exit 2)."""
    if Path(path).suffix == ".ipynb":
        return open_notebook(Path(path))
    if path.suffix != ".py" and not path.is_dir() and path.exists():
        raise SourceError(f"{path}: expected a .py file or a .ipynb notebook")
    source = read_source(path)
    missing = missing_imports(source)
    if missing:
        raise SourceError(
            f"{path} imports {', '.join(missing)}, which is not installed here: "
            "remove the import or install it"
        )
    return SubmissionFile(path, imports=frozenset(imported_modules(source)))
