"""A submission folder, or a .zip, as students and LMS exports deliver them.

``open_folder`` finds what to grade in a folder (``python -m grader --submission DIR``,
``grader batch``, Gradescope's run_autograder), first match wins:

1. an ``exercises/`` folder, in it or one level down: one file per exercise;
2. ``.py`` files named after the exercises (``calc_loss_batch.py``...), or several
   ``.py`` files: each exercise comes from the file that defines it (``FilesByDefinition``);
3. one notebook (``chapter5.ipynb`` when there are several), even beside a .py file;
4. one ``.py`` file.

A folder that holds only one folder is looked into (a zipped folder). Hidden entries
(``.x``) and ``__MACOSX`` are skipped. ``unpack_zip`` unpacks a ``.zip`` safely: no path
outside the target folder, no links, bounded size.
"""

from __future__ import annotations

import ast
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import EXERCISES
from .child import load_module
from .errors import LoadError, NotImplementedYet, SourceError
from .sources import ExercisesDir, open_submission, syntax_problem

NOTEBOOK_NAME = "chapter5.ipynb"
HIDDEN = (".", "__MACOSX", "__pycache__")
ZIP_MAX_BYTES = 200 * 2**20  # unpacked: far more than any submission, far less than a zip bomb
ZIP_MAX_FILES = 2000


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(HIDDEN))


def inner_folder(folder: Path) -> Path:
    """``folder``, or the folder it holds alone (a zipped folder), as deep as that goes."""
    entries = visible(folder)
    while len(entries) == 1 and entries[0].is_dir() and entries[0].name != "exercises":
        folder = entries[0]
        entries = visible(folder)
    return folder


def top_level_functions(path: Path) -> set[str] | None:
    """The names of the functions a .py file defines at its top level, or None if it does not parse."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return None
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


@dataclass
class FilesByDefinition:
    """Several .py files of one submission: each exercise is graded from the file that
    defines it (the one named after it, if there is one). Duck-types sources.ExercisesDir."""

    path: Path  # the folder
    label: str = ""
    files: dict = field(default_factory=dict)  # exercise -> Path
    ambiguous: dict = field(default_factory=dict)  # exercise -> the files that all define it
    unreadable: list = field(default_factory=list)  # files that do not parse (they may hold anything)

    def __post_init__(self):
        self.path = Path(self.path).resolve()
        self.label = self.label or f"{self.path}/"

    @classmethod
    def scan(cls, folder: Path, scripts: list[Path], label: str = "") -> "FilesByDefinition":
        source = cls(folder, label)
        defined: dict[str, list[Path]] = {}
        for path in scripts:
            names = top_level_functions(path)
            if names is None:
                source.unreadable.append(path.resolve())
                names = {path.stem} & set(EXERCISES)  # named after an exercise: its syntax error is shown
            for name in names & set(EXERCISES):
                defined.setdefault(name, []).append(path.resolve())
        for exercise, paths in defined.items():
            named = [p for p in paths if p.stem == exercise]
            if named or len(paths) == 1:
                source.files[exercise] = (named or paths)[0]
            else:
                source.ambiguous[exercise] = paths
        return source

    def file_for(self, exercise: str) -> Path:
        return self.files.get(exercise, self.path / f"{exercise}.py")

    def load_module(self, exercise: str):
        if exercise in self.ambiguous:
            names = " and ".join(p.name for p in self.ambiguous[exercise])
            raise LoadError(f"{exercise} is defined in {names}: keep one")
        if exercise not in self.files:
            raise NotImplementedYet(f"{exercise} is not defined in any file of the submission")
        return load_module(self.files[exercise], f"student_{exercise}")

    def static_problem(self, exercise: str) -> str | None:
        if exercise in self.files:
            return syntax_problem(self.files[exercise])
        if self.unreadable:  # not found, perhaps because it is in a file that does not parse
            return syntax_problem(self.unreadable[0])
        return None


def what_to_grade(folder: Path) -> tuple[str, object]:
    """``(kind, what)`` for a submission folder: ("exercises", DIR), ("files", [.py files]),
    ("notebook", FILE) or ("file", FILE). Raises SourceError when nothing can be graded."""
    folder = inner_folder(Path(folder))
    trees = [folder / "exercises"] if (folder / "exercises").is_dir() else \
        [p for p in sorted(folder.glob("*/exercises")) if p.is_dir() and not p.parent.name.startswith(HIDDEN)]
    if len(trees) == 1:
        return "exercises", trees[0]
    if len(trees) > 1:
        raise SourceError(f"{len(trees)} exercises/ folders in {folder.name}: keep one")
    entries = [p for p in visible(folder) if p.is_file()]
    scripts = [p for p in entries if p.suffix == ".py"]
    notebooks = [p for p in entries if p.suffix == ".ipynb"]
    if any(p.stem in EXERCISES for p in scripts) or (len(scripts) > 1 and not notebooks):
        return "files", scripts
    if len(notebooks) > 1:
        named = [p for p in notebooks if p.name == NOTEBOOK_NAME]
        if not named:
            raise SourceError(f"several notebooks ({', '.join(p.name for p in notebooks)}): submit one, "
                              f"or name the one to grade {NOTEBOOK_NAME}")
        notebooks = named
    if notebooks:
        return "notebook", notebooks[0]
    if scripts:  # one .py file (several are "files" above)
        return "file", scripts[0]
    raise SourceError(f"{folder.name} is a folder with nothing to grade: expected {NOTEBOOK_NAME}, .py files "
                      "defining the exercise functions, or an exercises/ folder")


def open_folder(folder: Path, label: str = ""):
    """The grading source of a submission folder (see the module docstring). Raises SourceError."""
    kind, what = what_to_grade(folder)
    if kind == "exercises":
        return ExercisesDir(what, label or f"{what}/")
    if kind == "files":
        source = FilesByDefinition.scan(what[0].parent, what, label)
        if not source.files and not source.ambiguous and not source.unreadable:
            raise SourceError(f"none of the .py files in {Path(folder).name} defines an exercise function "
                              f"({', '.join(EXERCISES[:2])}, ...)")
        return source
    source = open_submission(what)
    source.label = label or source.label
    return source


def unpack_zip(path: Path, dest: Path) -> Path:
    """Unpack the zip ``path`` into the new folder ``dest``; returns ``dest``. Members with an
    absolute path, ``..``, a link, or hidden names are skipped. Raises SourceError (one line)
    for a file that is not a zip, or one that unpacks to more than ZIP_MAX_BYTES / ZIP_MAX_FILES."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if _safe_member(m)]
            if len(members) > ZIP_MAX_FILES or sum(m.file_size for m in members) > ZIP_MAX_BYTES:
                raise SourceError(f"{path.name} unpacks to more than {ZIP_MAX_FILES} files or "
                                  f"{ZIP_MAX_BYTES // 2**20} MiB: submit only the exercises")
            dest.mkdir(parents=True)
            for member in members:
                target = dest.joinpath(*Path(member.filename).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    out.write(src.read(ZIP_MAX_BYTES + 1)[:ZIP_MAX_BYTES])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise SourceError(f"{path.name} is not a zip file that can be unpacked ({exc})") from None
    return dest


def _safe_member(member: zipfile.ZipInfo) -> bool:
    parts = Path(member.filename.replace("\\", "/")).parts
    if member.is_dir() or not parts or member.filename.startswith("/") or ".." in parts or ":" in parts[0]:
        return False
    if any(part.startswith(HIDDEN) for part in parts):
        return False
    return not stat.S_ISLNK(member.external_attr >> 16)


def open_any(path: Path, label: str = ""):
    """The grading source of a .py file, a notebook, a folder or a .zip (unpacked into a
    temporary folder removed when this process exits). Raises SourceError."""
    path = Path(path)
    if path.suffix == ".zip" and path.is_file():
        import atexit
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="grader-zip-"))
        tmp.chmod(0o755)  # instructor grading reads it as the sandbox's user, not as mkdtemp's owner only
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        return open_folder(unpack_zip(path, tmp / path.stem), label or str(path))
    if path.is_dir():
        return open_folder(path, label or f"{path}/")
    if path.is_file() and path.suffix not in (".py", ".ipynb"):
        raise SourceError(f"unsupported submission {path.name!r}: expected a .py, .ipynb or .zip file, "
                          "or a folder of them")
    source = open_submission(path)
    source.label = label or source.label
    return source
