"""``python -m grader notebook --output DIR``: write the exercise notebook.

``DIR/chapter5.ipynb`` (nbformat 4): an introduction, a setup cell importing the
earlier chapters' pieces from ``reference``, then for each exercise a markdown cell
(book section, what to do, shapes, what the grader checks), a code cell with the stub
from solutions/ (as ``python -m grader make-exercises`` makes it) and a *grade cell*
(``notebook.grade_in_notebook``). How a submitted notebook is graded: notebook.py.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
from pathlib import Path

from . import EXERCISES
from .errors import UsageError
from .cell_source import GRADE_MARKER, GRADE_TAG
from .notebook import DEFAULT_NAME

KIT_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = KIT_ROOT / "solutions"
SOLUTIONS_NAME = "chapter5-solutions.ipynb"
# The earlier chapters' pieces the setup cell imports.
SETUP_NAMES = ("GPTModel", "GPT_CONFIG_124M", "create_dataloader_v1", "generate_text_simple",
               "get_tokenizer", "load_text", "generate_and_print_sample")
SOLUTION_MARKER = re.compile(r"^[ \t]*# (BEGIN|END) SOLUTION[ \t]*\n", re.M)
DOC_SECTION = re.compile(r"^(Args|Returns|Prints|Raises|Steps):\s*$")


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
    return (f"{GRADE_MARKER}: grades {what} as this kernel has it now (no need to save first).\n"
            "# It runs `python -m grader` in a separate process on the cells this kernel ran, and is\n"
            "# skipped when the notebook itself is graded.\n"
            "from grader.notebook import grade_in_notebook\n"
            f"grade_in_notebook({args})\n")


INTRO = """# Chapter 5: Pretraining on unlabeled data — exercises

The functions of chapter 5 of *Build a Large Language Model From Scratch*, one exercise each.
For each exercise: read the text, fill in the function in the code cell (replace the
`raise NotImplementedError(...)`), run the cell, then run the grade cell below it. The grade
cell grades the function as this kernel has it now, with the cells it depends on (what you
ran, not the file as last saved), in a separate process. Each exercise is graded on its own:
when one exercise is graded, the other exercises' names used inside it are the kit's
reference versions, so a mistake costs points in one exercise only.

Handing in the notebook file: the grader runs its code cells in order in a fresh process, as
a fresh *Run all* would, with three differences. Lines that only run in Jupyter or Colab
(`%matplotlib inline`, `!pip ...`, `from google.colab import drive`) are left out, with a note;
a cell that raises is reported and the cells after it still run; a cell that runs longer than
the time limit, or ends the process, is stopped once, reported and skipped. Code cells are
counted from 1. Keep long runs (a full training) out of the notebook: every exercise runs its
cells again.

From a terminal in the kit's folder: `python -m grader --submission chapter5.ipynb`
(add exercise names to grade only those; `--hint EXERCISE` for hints).
"""

# After plot_losses: the loss plot, drawn in the notebook (runs with the stub too).
# Guarded by `__name__ == "__main__"` (true in Jupyter, not in the module the grader runs the cells
# in): every exercise's grading process runs all the cells, and drawing costs ~0.2 s in each.
PLOT_CELL = """%matplotlib inline
# Try your plot_losses on made-up losses: two epochs, five evaluations.
# (Only in Jupyter: the grader, which runs every cell once per exercise, skips what this `if` holds.)
if __name__ == "__main__":
    epochs_seen = torch.linspace(0, 2, 5)
    tokens_seen = [0, 2560, 5120, 7680, 10240]
    try:
        plot_losses(epochs_seen, tokens_seen, [9.8, 7.5, 6.3, 5.6, 5.0], [9.9, 7.9, 7.0, 6.6, 6.5])
    except NotImplementedError as exc:
        print(f"{exc}: fill in the plot_losses cell above first")
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
    from .checks import check_definitions

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
        if exercise == "plot_losses":
            cells.append(v4.new_markdown_cell("### Your loss plot"))
            cells.append(v4.new_code_cell(PLOT_CELL, metadata={"grader": {"role": "plot"}}))
    cells.append(v4.new_markdown_cell("## Grade everything"))
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

