"""``python -m grader make-exercises``: write exercises/ from solutions/.

In each solutions/<exercise>.py the lines from ``# BEGIN SOLUTION`` to
``# END SOLUTION`` become ``raise NotImplementedError(...)`` at the same indent.
Existing files in exercises/ are never replaced without ``--force`` (they may
hold a student's work); ``--check`` only reports drift.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import EXERCISES

KIT_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = KIT_ROOT / "solutions"
EXERCISES_DIR = KIT_ROOT / "exercises"
REGION = re.compile(r"^([ \t]*)# BEGIN SOLUTION\n.*?^[ \t]*# END SOLUTION\n", re.S | re.M)
INIT_TEXT = '''"""Chapter-5 exercises: fill in each function, then run ``python -m grader EXERCISE``.

Generated from solutions/ by ``python -m grader make-exercises``; edit the stubs freely.
"""
'''


class GenerateError(Exception):
    pass


def stub_source(solution_source: str, exercise: str) -> str:
    """The stub text of one solution file. Raises GenerateError when it has no solution region."""
    stub, count = REGION.subn(
        lambda m: f'{m.group(1)}raise NotImplementedError("{exercise} is not implemented yet")\n',
        solution_source,
    )
    if count == 0:
        raise GenerateError(f"solutions/{exercise}.py has no '# BEGIN SOLUTION' ... '# END SOLUTION' region")
    return stub


def generated_files(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, str]:
    """File name -> text of the whole generated exercises/ folder."""
    files = {"__init__.py": INIT_TEXT}
    for exercise in EXERCISES:
        source = (solutions_dir / f"{exercise}.py").read_text(encoding="utf-8")
        files[f"{exercise}.py"] = stub_source(source, exercise)
    return files


def drift(exercises_dir: Path = EXERCISES_DIR, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Names of exercises/ files that differ from what solutions/ generates."""
    out = []
    for name, text in generated_files(solutions_dir).items():
        path = exercises_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def write_exercises(exercises_dir: Path = EXERCISES_DIR, solutions_dir: Path = SOLUTIONS_DIR,
                    force: bool = False, log=print) -> list[str]:
    """Write the stubs; returns the names of existing, different files that were kept."""
    exercises_dir.mkdir(parents=True, exist_ok=True)
    kept = []
    for name, text in generated_files(solutions_dir).items():
        path = exercises_dir / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        if path.exists() and not force:
            kept.append(name)
            continue
        path.write_text(text, encoding="utf-8")
        log(f"wrote {path}")
    for name in kept:
        log(f"kept {exercises_dir / name}: it differs from the generated stub (--force replaces it)")
    return kept
