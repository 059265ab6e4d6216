"""A notebook cell's text as the grader runs it, and the names it binds and uses.

Shared by the grading side (notebook.py: a submitted notebook's cells, run in a
grading child) and the Jupyter side (kernel.py: the cells a running kernel has
run). Standard library only: this is imported inside the student's kernel.

What does not run outside Jupyter is left out, line by line, keeping the cell's
line numbers: IPython line magics and shell lines (``%matplotlib inline``,
``!pip install ...``) and Colab-only statements (``from google.colab import
drive``, ``drive.mount(...)``). ``%time STATEMENT`` and ``%timeit STATEMENT`` run
their statement once; a cell starting with ``%%time``, ``%%timeit``, ``%%capture``
or ``%%prun`` runs its body once; any other cell magic (``%%bash``, ``%%writefile``)
skips the cell.
"""

from __future__ import annotations

import ast
import io
import re
import symtable
import tokenize
from dataclasses import dataclass, field

# A grade cell has this tag, or a first line starting with GRADE_MARKER; grading skips it.
GRADE_TAG = "grade-cell"
GRADE_MARKER = "# grade-cell"
# Set in a grading child that runs a notebook: a grader started from there refuses to run.
NESTED_ENV = "CH5_GRADER_IN_NOTEBOOK"
# Cell magics whose body is Python: grading runs the body once; other cell magics are skipped.
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")
# Magics that only change how Jupyter shows things: left out without a note.
QUIET_MAGICS = ("matplotlib", "config", "load_ext", "reload_ext", "autoreload", "precision",
                "html", "markdown", "latex", "javascript", "js", "svg")
# ``%timeit``'s own options before its statement (-n 10 -r 3 -q ...).
TIMEIT_OPTIONS = re.compile(r"^(?:\s*-[nrp]\s*\d+|\s*-[tcqo]\b)*\s*")
COLAB_MODULE = "google.colab"
# ``metadata.grader.origin`` of the notebook kernel.py writes from a kernel's history: its
# cells are then named by execution count ("In [7]") rather than by position ("code cell 3").
KERNEL_ORIGIN = "kernel history"


@dataclass
class CellText:
    """``python``: what runs (same line numbers as the cell); ``skipped``: why nothing runs
    ("" if it does); ``left_out``: the lines left out that the student should hear about."""

    python: str
    skipped: str = ""
    left_out: list = field(default_factory=list)


def is_grade_cell(source: str, tags=()) -> bool:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return GRADE_TAG in tags or first.startswith(GRADE_MARKER)


def python_source(source: str) -> tuple[str, str]:
    """``(python, skipped)`` for a cell's text: what runs, and why nothing runs ("" if it does)."""
    text = cell_text(source)
    return text.python, text.skipped


def cell_text(source: str) -> CellText:
    """The cell as the grader runs it (see the module's docstring)."""
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first, _, body = stripped.partition("\n")
        magic = first[2:].split()[0] if first[2:].split() else ""
        if magic not in PYTHON_CELL_MAGICS:
            quiet = magic in QUIET_MAGICS
            return CellText("", f"cell magic %%{magic}", [] if quiet else [f"%%{magic} (the whole cell)"])
        # The lines up to the magic line become blank lines: line numbers are kept.
        blank = source[: len(source) - len(stripped)].count("\n") + 1
        return cell_text("\n" * blank + body)
    python, left_out = _without_magic_lines(source)
    python, colab = _without_colab(python)
    return CellText(python, "", left_out + colab)


def _without_magic_lines(source: str) -> tuple[str, list[str]]:
    try:
        compile(source, "<cell>", "exec")
        return source, []
    except SyntaxError:
        pass
    lines, left_out = [], []
    for line in source.splitlines():
        body = line.lstrip()
        if body.startswith(("%", "!")) and not _continues_statement("\n".join(lines) + "\n"):
            indent = line[: len(line) - len(body)]
            name = re.match(r"%*(\w*)", body).group(1)
            statement = body.split(None, 1)[1] if len(body.split(None, 1)) > 1 else ""
            if body.startswith("%time ") and statement:
                line = indent + statement
            elif body.startswith("%timeit ") and TIMEIT_OPTIONS.sub("", statement, count=1):
                line = indent + TIMEIT_OPTIONS.sub("", statement, count=1)
            else:
                line = indent + "pass  # skipped: " + body[:60].replace("\\", "/")
                if not (body.startswith("%") and name in QUIET_MAGICS):
                    left_out.append(body[:60])
        lines.append(line)
    return "\n".join(lines) + ("\n" if source.endswith("\n") else ""), left_out


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


def _is_colab_import(node) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == COLAB_MODULE or a.name.startswith(COLAB_MODULE + ".") for a in node.names)
    return isinstance(node, ast.ImportFrom) and node.level == 0 and bool(node.module) and (
        node.module == COLAB_MODULE or node.module.startswith(COLAB_MODULE + ".")
        or (node.module == "google" and any(a.name == "colab" for a in node.names)))


def _without_colab(python: str) -> tuple[str, list[str]]:
    """Colab-only statements become ``pass``: its imports, and the simple statements using a
    name they bound (``drive.mount(...)``). Returns the new text and the statements left out."""
    if "colab" not in python:
        return python, []
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return python, []
    imports = [n for n in ast.walk(tree) if _is_colab_import(n)]
    names = {(a.asname or a.name).split(".")[0] for n in imports for a in n.names}
    compound = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Match)
    users = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and not isinstance(n, compound)
             and n not in imports and any(isinstance(x, ast.Name) and x.id in names for x in ast.walk(n))]
    statements = sorted(imports + users, key=lambda n: (n.lineno, n.col_offset))
    if not statements:
        return python, []
    lines = python.splitlines(keepends=True)
    left_out = []
    for node in reversed(statements):  # from the end, so that earlier offsets stay valid
        left_out.append((ast.get_source_segment(python, node) or "").splitlines()[0][:60])
        first = lines[node.lineno - 1].encode()
        last = lines[node.end_lineno - 1].encode()
        spliced = first[: node.col_offset] + b"pass" + b"\n" * (node.end_lineno - node.lineno) \
            + last[node.end_col_offset:]
        lines[node.lineno - 1: node.end_lineno] = [spliced.decode()]
    return "".join(lines), left_out[::-1]


# ---------------------------------------------------------------------------
# The names a cell binds and uses (kernel.py slices a kernel's history with them)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CellNames:
    """``binds``: module-level names the cell assigns, imports, defines, deletes or changes in
    place (``cfg["x"] = 1``, ``model.eval_mode = 2``); ``uses``: module-level names it reads,
    at the top level or inside its functions; ``star``: it has a ``from m import *``."""

    binds: frozenset = frozenset()
    uses: frozenset = frozenset()
    star: bool = False


def cell_names(python: str) -> CellNames:
    """The names of a cell's Python (after ``cell_text``); none for a cell that does not parse."""
    try:
        table = symtable.symtable(python, "<cell>", "exec")
        tree = ast.parse(python)
    except (SyntaxError, ValueError):
        return CellNames()
    binds, uses = set(), set()
    for sym in table.get_symbols():
        if sym.is_assigned() or sym.is_imported():
            binds.add(sym.get_name())
        if sym.is_referenced():
            uses.add(sym.get_name())
    stack = list(table.get_children())
    while stack:  # functions and classes: the names they read or assign as globals
        scope = stack.pop()
        stack.extend(scope.get_children())
        for sym in scope.get_symbols():
            if sym.is_declared_global() and sym.is_assigned():
                binds.add(sym.get_name())
            if sym.is_global() and sym.is_referenced():
                uses.add(sym.get_name())
    star = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            star = True
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            root = target
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if root is not target and isinstance(root, ast.Name):
                binds.add(root.id)  # changed in place: the cell matters to whoever reads it
    return CellNames(frozenset(binds), frozenset(uses), star)
