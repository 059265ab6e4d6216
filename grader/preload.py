"""Students' files read into memory before a grading child enters the sandbox (instructor
grading, lockdown.py): once it runs as a user of its own, with the grader's folders covered,
it may not be able to read them any more. Near the bottom of the grader's layers: it imports
only the exercise names.
"""

from __future__ import annotations

import importlib.machinery
import linecache
from pathlib import Path

from . import EXERCISES

PRELOADED: dict[str, bytes] = {}  # path -> the file's bytes


class PreloadedLoader(importlib.machinery.SourceFileLoader):
    """Imports a file from PRELOADED: no read of the file now, no bytecode cache read or written."""

    def get_data(self, path):
        if path == self.path:
            return student_bytes(path)
        raise OSError(f"{path}: not read while grading")

    def path_stats(self, path):
        return {"mtime": 0, "size": len(PRELOADED[self.path])}

    def set_data(self, path, data, *, _mode=0o666):
        pass


def preload(source) -> None:
    """Read the student's files of ``source`` into PRELOADED (a notebook's cells are read already)."""
    if hasattr(source, "file_for"):  # sources.ExercisesDir: every exercise's file (the release binds them all)
        paths = [Path(source.file_for(e)) for e in EXERCISES]
    else:
        paths = [Path(source.path)] if Path(source.path).suffix == ".py" else []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:  # missing (or a folder): loading it says so
            continue
        PRELOADED[str(path)] = data
        text = data.decode("utf-8-sig", "replace")
        linecache.cache[str(path)] = (len(text), None, text.splitlines(True), str(path))  # for tracebacks


def available(path) -> bool:
    """Whether the student's file ``path`` is there: read already, or on disk."""
    return str(path) in PRELOADED or Path(path).is_file()


def student_bytes(path) -> bytes:
    """The bytes of the student's file ``path``: as read before the sandbox, else from disk."""
    data = PRELOADED.get(str(path))
    return data if data is not None else Path(path).read_bytes()
