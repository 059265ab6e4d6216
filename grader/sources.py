"""Where a student's functions come from: the exercises/ folder, or one submitted .py file.

The parent only checks a source (exists, is UTF-8, parses, imports installed
modules); its code is executed in the grading children alone.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LoadError, NotebookError, SourceError

KIT_ROOT = Path(__file__).resolve().parent.parent


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
        if not path.is_file():
            raise LoadError(missing_file_message(path))
        return load_module(path, f"student_{exercise}")

    def static_problem(self, exercise: str) -> str | None:
        path = self.file_for(exercise)
        return syntax_problem(path) if path.is_file() else None


@dataclass
class SubmissionFile:
    """A single .py file defining any of the exercise functions by name."""

    path: Path
    label: str = ""

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
    (grader/notebook.py); the cells are read and checked once, in the parent."""

    path: Path
    cells: list = field(default_factory=list)  # notebook.CodeCell
    label: str = ""

    def __post_init__(self):
        self.label = self.label or str(self.path)
        self.path = Path(self.path).resolve()

    def load_module(self, exercise: str):
        from .notebook import load_notebook_module

        return load_notebook_module(self.path, self.cells, exercise)

    def static_problem(self, exercise: str) -> str | None:
        return None  # a failing cell is reported by the child, the way "Run all" meets it


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
    """Read and check a submitted notebook in the parent. Raises SourceError (exit 2) for a
    file that is not a valid notebook or whose code imports a module not installed here."""
    from .notebook import read_code_cells

    try:
        cells = read_code_cells(read_source(path), path)
    except NotebookError as exc:
        raise SourceError(str(exc)) from None
    missing = sorted({name for cell in cells if not cell.skipped for name in missing_imports(cell.source)})
    if missing:
        raise SourceError(
            f"{path} imports {', '.join(missing)}, which is not installed here: "
            "remove the import or install it"
        )
    return NotebookFile(path, cells)


def read_source(path: Path) -> str:
    """The text of a submitted file. Raises SourceError for a missing, non-file or non-UTF-8 path."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path} is a folder: pass the .py file to grade")
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark, as Windows editors write, is fine
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


def syntax_problem(path: Path) -> str | None:
    """A one-line description of a syntax error in ``path``, or None."""
    try:
        compile(read_source(path), str(path), "exec")
    except SyntaxError as exc:
        return f"syntax error in {path.name} line {exc.lineno}: {exc.msg}"
    except SourceError as exc:
        return str(exc)
    return None


def missing_imports(source: str) -> list[str]:
    """Top-level modules a file imports that are not installed (found without running it)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


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
    return SubmissionFile(path)
