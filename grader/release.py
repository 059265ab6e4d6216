"""``python -m grader release --output DIR``: write the kit as students get it.

The release holds:

- ``exercises/``: the stubs, generated from ``solutions/`` as ``make-exercises``
  does, except that an exercise using another one imports the student's own
  (``from exercises.calc_loss_batch import calc_loss_batch``), and the book's
  given ``generate_and_print_sample`` (not an exercise) is written into the
  train_model_simple stub, calling the student's text_to_token_ids and
  token_ids_to_text;
- ``grader/`` without the error model (grader/checks/*/mistakes.py: its outputs are
  frozen in grader/expected/), regen, make-exercises and this command, plus the marker
  ``grader/RELEASE`` that switches the grader to release mode (release_mode.py);
- ``grader/expected/``: the frozen expected values made by ``python -m grader regen``,
  copied byte for byte;
- ``reference/`` with the earlier chapters only: data.py (chapter 2), model.py
  (chapters 3-4) and, from run.py, the loaders of section 5.1.3 (``make_loaders``);
- ``data/``, a README for students, a pyproject.toml and the kit's setup.py.

No solutions/, no reference/pretraining.py. Before the release is moved into
place, every text file of it is searched for the lines of the solution regions and
of the chapter-5 reference functions (``leaked_lines``); any hit stops the build.
"""

from __future__ import annotations

import argparse
import ast
import filecmp
import os
import shutil
import tempfile
from pathlib import Path

from . import EXERCISES
from .errors import UsageError
from .context import missing_expected_files
from .generate import REGION, GenerateError, stub_source
from .release_given import (GIVEN_FUNCTIONS, REFERENCE_SHIPPED, _reference_module_names, given_function, given_module,
                            import_lines, reference_given)
from .release_leaks import leaked_lines, secret_lines

KIT_ROOT = Path(__file__).resolve().parent.parent
GRADER_DIR = KIT_ROOT / "grader"
TEMPLATES = GRADER_DIR / "templates"  # the release's README and pyproject.toml
# instructor-only modules: regen, make-exercises, release; and each exercise's error model
# (grader/checks/<exercise>/mistakes.py), whose outputs are frozen in grader/expected/
GRADER_EXCLUDED = {"expected.py", "generate.py", "release.py", "release_given.py", "release_leaks.py"}
CHECKS_EXCLUDED = {"mistakes.py"}
# reference modules of chapter 5: never shipped, and none of their lines may be
CHAPTER5_REFERENCE = ("pretraining.py", "decoding.py", "checkpoints.py", "gpt2.py", "commands.py")
# from reference/run.py, what the grader's scenarios use (the loaders of section 5.1.3)
RUN_KEPT = ("UsageError", "make_loaders")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")

OWN_IMPORTS_COMMENT = (
    "# Your own earlier exercises: the grader runs this one with them too, so a\n"
    "# mistake in one of them can also cost points here. Get them right first.\n"
)
GIVEN_COMMENT = (
    "# Given code from the book (section 5.2), not an exercise: it prints a sample\n"
    "# with your text_to_token_ids and token_ids_to_text.\n"
)


# Exercises ------------------------------------------------------------------


def release_exercise_source(solution_source: str, exercise: str, keep_solution: bool = False) -> str:
    """The release's exercises/<exercise>.py from solutions/<exercise>.py.

    The solution region becomes a stub (unless ``keep_solution``: the completed
    exercise as a student would have it in the release, for tests); ``from reference
    import`` of chapter-5 names becomes imports of the student's own exercises,
    and given functions (GIVEN_FUNCTIONS) are written in. Raises GenerateError.
    """
    text = solution_source if keep_solution else stub_source(solution_source, exercise)
    if keep_solution and not REGION.search(text):
        raise GenerateError(f"solutions/{exercise}.py has no solution region")
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    reference_names = _reference_module_names()
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "reference" and n.level == 0]
    imports_torch = any(isinstance(n, ast.Import) and any(a.name == "torch" and not a.asname for a in n.names)
                        for n in tree.body)
    for node in reversed(imports):
        names = {alias.name for alias in node.names}
        if any(alias.asname for alias in node.names):
            raise GenerateError(f"solutions/{exercise}.py: 'from reference import ... as ...' is not supported")
        given = [n for n in GIVEN_FUNCTIONS if n in names]
        needed = names - set(given)
        given_sources = []
        for name in given:
            source, uses = given_function(name)
            needed |= uses
            given_sources.append(source)
        if imports_torch:
            needed.discard("torch")
        third_party, kit = import_lines(needed, exercise, reference_names)
        start = node.lineno - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):  # the comment about the import
            start -= 1
        block = "".join(third_party) + ("\n" if third_party else "")
        block += (OWN_IMPORTS_COMMENT if any(n in EXERCISES for n in needed) else "") + "".join(kit)
        for source in given_sources:
            block += "\n\n" + GIVEN_COMMENT + source
        lines[start:node.end_lineno] = [block]
    result = "".join(lines)
    ast.parse(result)  # what we wrote must still be Python
    return result


def release_exercises(solutions_dir: Path, keep_solution: bool = False) -> dict[str, str]:
    """File name -> text of the release's exercises/ folder."""
    files = {"__init__.py": EXERCISES_INIT}
    for exercise in EXERCISES:
        source = (solutions_dir / f"{exercise}.py").read_text(encoding="utf-8")
        files[f"{exercise}.py"] = release_exercise_source(source, exercise, keep_solution)
    return files


EXERCISES_INIT = '''"""Chapter-5 exercises: fill in each function, then run ``python -m grader EXERCISE``.

Later exercises import your own earlier ones (``from exercises.calc_loss_batch import
calc_loss_batch``): get them right in the order of ``python -m grader --list``.
"""
'''


# Reference (earlier chapters) ------------------------------------------------


def reference_init() -> str:
    """reference/__init__.py of the release: the kit's, without the chapter-5 imports."""
    text = (KIT_ROOT / "reference" / "__init__.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    kept, exported = [], []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module in {m[:-3] for m in REFERENCE_SHIPPED}:
            kept.append(ast.get_source_segment(text, node))
            exported += [a.asname or a.name for a in node.names]
    kept.append(f"from .given import {', '.join(GIVEN_FUNCTIONS)}")  # reference/given.py (reference_given)
    exported += GIVEN_FUNCTIONS
    body = "\n".join(kept)
    all_list = "".join(f'    "{name}",\n' for name in sorted(exported))
    return (
        '"""The earlier chapters of *Build a Large Language Model From Scratch*, as chapter 5 uses them.\n\n'
        "Chapter 2 (data.py: the text, the tokenizer, the data loaders) and chapters 3-4\n"
        "(model.py: GPTModel and generate_text_simple), and the code chapter 5 gives (given.py).\n"
        "Chapter 5's exercises are yours: exercises/.\n"
        '"""\n\n'
        f"{body}\n\n__all__ = [\n{all_list}]\n"
    )


def reference_run() -> str:
    """reference/run.py of the release: only the loaders of section 5.1.3 (what the grader uses)."""
    text = (KIT_ROOT / "reference" / "run.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    segments = {n.name: ast.get_source_segment(text, n) for n in tree.body
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in RUN_KEPT}
    missing = [name for name in RUN_KEPT if name not in segments]
    if missing:
        raise GenerateError(f"reference/run.py has no {', '.join(missing)}")
    return (
        '"""The chapter\'s data loaders (section 5.1.3): a 90/10 split of the text into\n'
        "training and validation loaders. (The instructor's kit also has the pretraining run here.)\n"
        '"""\n\nfrom __future__ import annotations\n\n\n'
        + "\n\n\n".join(segments[name] for name in RUN_KEPT) + "\n"
    )


# Leak check -------------------------------------------------------------------


def design_texts() -> list[str]:
    """What students get by design: the shipped earlier chapters (model.py's
    generate_text_simple also has ``with torch.no_grad():``), the given functions, the
    stubs' scaffolding (signatures, docstrings, TODOs), the hints of checks.toml, and the
    grader's own code (its scenarios train and load small models, so ordinary lines such as
    ``loss.backward()`` or ``except Exception as exc:`` are in both; the grader is reviewed
    code, the check is for solution and reference files that should not ship)."""
    texts = [(KIT_ROOT / "reference" / module).read_text(encoding="utf-8") for module in REFERENCE_SHIPPED]
    texts += [path.read_text(encoding="utf-8") for path in sorted(GRADER_DIR.rglob("*.py"))
              if path.name not in GRADER_EXCLUDED | CHECKS_EXCLUDED]
    texts += [given_function(name)[0] for name in GIVEN_FUNCTIONS]
    for exercise in EXERCISES:  # what make-exercises leaves outside the solution regions
        texts.append(stub_source((KIT_ROOT / "solutions" / f"{exercise}.py").read_text(encoding="utf-8"), exercise))
    texts += [(GRADER_DIR / "checks" / e / "checks.toml").read_text(encoding="utf-8") for e in EXERCISES]
    return texts


# Build ----------------------------------------------------------------------------


def pyproject() -> str:
    import tomllib

    with open(KIT_ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    deps = "[\n" + "".join(f'    "{d}",\n' for d in project["dependencies"]) + "]"
    template = (TEMPLATES / "release-pyproject.toml").read_text(encoding="utf-8")
    return template.format(version=project["version"], dependencies=deps)


GITIGNORE = "__pycache__/\n*.egg-info/\nresults.json\npretraining-output/\n.ipynb_checkpoints/\n"


def classroom_workflow() -> str:
    """.github/workflows/classroom.yml of the release (grader/templates/classroom.yml)."""
    from .deps import TORCH_INDEX, TORCH_VERSION

    text = (TEMPLATES / "classroom.yml").read_text(encoding="utf-8")
    return text.replace("@TORCH_INDEX@", TORCH_INDEX).replace("@TORCH_VERSION@", TORCH_VERSION)


def write_release(dest: Path, log=print) -> None:
    """Write the release into the empty folder ``dest``. Raises GenerateError."""
    if missing_expected_files(GRADER_DIR / "expected"):
        raise GenerateError("grader/expected/ is incomplete: run `python -m grader regen` first")
    shutil.copytree(KIT_ROOT / "data", dest / "data", ignore=IGNORED)
    (dest / "reference").mkdir()
    for module in REFERENCE_SHIPPED:
        shutil.copy2(KIT_ROOT / "reference" / module, dest / "reference" / module)
    (dest / "reference" / "__init__.py").write_text(reference_init(), encoding="utf-8")
    (dest / "reference" / "run.py").write_text(reference_run(), encoding="utf-8")
    (dest / "reference" / "given.py").write_text(reference_given(), encoding="utf-8")

    def grader_ignore(folder, names):
        skipped = set(IGNORED(folder, names))
        if Path(folder).resolve() == GRADER_DIR:
            skipped |= GRADER_EXCLUDED & set(names)
        elif Path(folder).resolve().parent == GRADER_DIR / "checks":
            skipped |= CHECKS_EXCLUDED & set(names)
        return skipped

    shutil.copytree(GRADER_DIR, dest / "grader", ignore=grader_ignore)
    for name in os.listdir(GRADER_DIR / "expected"):  # byte for byte, as regen wrote them
        if not filecmp.cmp(GRADER_DIR / "expected" / name, dest / "grader" / "expected" / name, shallow=False):
            raise GenerateError(f"grader/expected/{name} changed while it was copied")
    (dest / "grader" / "given.py").write_text(given_module(), encoding="utf-8")
    (dest / "grader" / "RELEASE").write_text(
        "This grader is the student release of the chapter-5 kit (python -m grader release).\n"
        "Other exercises are bound to the student's own functions; see grader/release_mode.py.\n",
        encoding="utf-8")
    (dest / "exercises").mkdir()
    for name, text in release_exercises(KIT_ROOT / "solutions").items():
        (dest / "exercises" / name).write_text(text, encoding="utf-8")
    shutil.copyfile(TEMPLATES / "release-README.md", dest / "README.md")
    (dest / ".github" / "workflows").mkdir(parents=True)  # the release is the Classroom template repository
    (dest / ".github" / "workflows" / "classroom.yml").write_text(classroom_workflow(), encoding="utf-8")
    (dest / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    (dest / "pyproject.toml").write_text(pyproject(), encoding="utf-8")
    shutil.copy2(KIT_ROOT / "setup.py", dest / "setup.py")  # what an install holds, data/ included

    leaks = leaked_lines(dest, design_texts(), secret_lines(KIT_ROOT, CHAPTER5_REFERENCE, GIVEN_FUNCTIONS))
    if leaks:
        where = "; ".join(f"{path}: {hits[0]!r}" for path, hits in leaks.items())
        raise GenerateError(f"solution code would be released ({where})")


def check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} is a file: name a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(f"--output {out} is not empty: name a new or empty folder")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    resolved = out.resolve()
    for part in ("data", "grader", "reference", "exercises", "solutions"):
        inside = KIT_ROOT / part
        if resolved == inside or inside in resolved.parents:
            raise UsageError(f"--output {out} is inside the kit's {part}/: name a folder outside it")


def release_command(argv) -> int:
    p = argparse.ArgumentParser(
        prog="python -m grader release",
        description="Write the kit as students get it: exercises, grader (frozen expected values, "
                    "works offline), the earlier chapters' reference and data; no solutions, no "
                    "chapter-5 reference code.",
    )
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="a new or empty folder")
    args = p.parse_args(argv)
    out = args.output
    check_destination(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.resolve().parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the release from other users (the grading sandbox's)
    try:
        write_release(tmp)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except GenerateError as exc:
        raise UsageError(str(exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"wrote the student release to {out}/ ({files} files); try it: cd {out} && python -m grader --list")
    return 0
