"""The release's leak check: no line of a solution or of the chapter-5 reference may ship.

``secret_lines`` collects the telling lines of the solution regions and of the chapter-5
reference function bodies; ``leaked_lines`` finds them in a built release, except those
shipped by design (the earlier chapters, the given functions, the stubs' scaffolding,
the hints), which the caller passes in.
"""

from __future__ import annotations

import ast
import keyword
import re
from pathlib import Path

from . import EXERCISES
from .generate import REGION


def telling(code: str) -> bool:
    """A line that says something: at least two names besides Python keywords
    (``else:``, ``)``, ``break``, ``return loss`` say nothing about a solution)."""
    return len([t for t in re.findall(r"[A-Za-z_]\w*", code) if not keyword.iskeyword(t)]) >= 2


def code_lines(text: str) -> set[str]:
    """Telling lines, stripped, trailing comments removed."""
    out = set()
    for line in text.splitlines():
        code = re.sub(r"\s+#.*$", "", line).strip()
        if code and not code.startswith("#") and telling(code):
            out.add(code)
    return out


def secret_lines(kit_root: Path, reference_modules=("pretraining.py",), given=()) -> set[str]:
    """Lines of the solution regions and of the answers in ``reference_modules``: the bodies of
    the functions named like an exercise and of the module's functions they call, transitively
    (docstrings and the ``given`` functions excepted). A module's other code (a command line,
    a downloader) answers no exercise and may share ordinary lines with the grader."""
    secret = set()
    for exercise in EXERCISES:
        text = (kit_root / "solutions" / f"{exercise}.py").read_text(encoding="utf-8")
        for match in REGION.finditer(text):
            secret |= code_lines(match.group(0))
    for module in reference_modules:
        text = (kit_root / "reference" / module).read_text(encoding="utf-8")
        functions = {node.name: node for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)}
        answers, todo = set(), [name for name in functions if name in EXERCISES]
        while todo:
            name = todo.pop()
            if name in answers or name in given:
                continue
            answers.add(name)
            todo += [n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name) and n.id in functions]
        for name in answers:
            node = functions[name]
            body = node.body[1:] if ast.get_docstring(node) else node.body
            for stmt in body:
                secret |= code_lines(ast.get_source_segment(text, stmt, padded=True))
    return secret


def text_files(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binary: the frozen expected values (tensors), never code


def leaked_lines(release_dir: Path, design: list[str], secret: set[str]) -> dict[str, list[str]]:
    """Release file -> the ``secret`` lines in it (as a line, or inside one when 30+ characters
    long) that are not shipped by design (in one of the ``design`` texts)."""
    secret = secret - set().union(*(code_lines(t) for t in design))
    long_secret = {s for s in secret if len(s) >= 30 and not any(s in t for t in design)}
    leaks = {}
    for path, text in text_files(release_dir):
        hits = sorted((secret & code_lines(text)) | {s for s in long_secret if s in text})
        if hits:
            leaks[str(path.relative_to(release_dir))] = hits
    return leaks
