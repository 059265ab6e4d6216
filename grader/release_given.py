"""The code the book gives in chapter 5 (not exercises), as the student release ships it.

``generate_and_print_sample`` (section 5.2) is chapter-5 reference code that students get:
written into the release's exercises/train_model_simple.py stub (release.py), into
``grader/given.py`` for the release's grader to bind with the student's own exercises
(release_mode.py), and into ``reference/given.py`` so that ``from reference import
generate_and_print_sample`` (the notebook's setup cell, a student's .py file) works.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

from . import EXERCISES
from .generate import GenerateError

KIT_ROOT = Path(__file__).resolve().parent.parent
# chapter-5 functions the book gives (not exercises)
GIVEN_FUNCTIONS = ("generate_and_print_sample",)
# reference modules of the earlier chapters, shipped as they are
REFERENCE_SHIPPED = ("data.py", "model.py")


def _reference_module_names() -> set[str]:
    """Names the release's ``reference`` package exports (chapters 2-4)."""
    names = set()
    for module in REFERENCE_SHIPPED:
        tree = ast.parse((KIT_ROOT / "reference" / module).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def import_lines(names, exercise: str, reference_names: set[str]) -> tuple[list[str], list[str]]:
    """Import statements for ``names`` in the release: ``(third-party, kit)``; the kit's
    import the exercises from the student's own modules."""
    lines, from_reference = [], []
    for name in sorted(names, key=lambda n: (EXERCISES.index(n) if n in EXERCISES else 99, n)):
        if name == "torch":
            continue
        if name in EXERCISES:
            if name == exercise:
                raise GenerateError(f"solutions/{exercise}.py imports {exercise} from reference")
            lines.append(f"from exercises.{name} import {name}\n")
        elif name in reference_names:
            from_reference.append(name)
        else:
            raise GenerateError(f"solutions/{exercise}.py needs {name}, which the release's reference does not have")
    if from_reference:
        lines.append(f"from reference import {', '.join(from_reference)}\n")
    return ["import torch\n"] if "torch" in names else [], lines


def given_function(name: str) -> tuple[str, set[str]]:
    """The source of a given chapter-5 function from reference/pretraining.py, and the
    global names it uses."""
    text = (KIT_ROOT / "reference" / "pretraining.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        raise GenerateError(f"reference/pretraining.py has no function {name}")
    params = {a.arg for a in node.args.args + node.args.kwonlyargs}
    assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return ast.get_source_segment(text, node) + "\n", used - params - assigned - set(dir(builtins))


def given_parts() -> tuple[list[str], list[str], list[str], list[str]]:
    """The given functions' sources, the exercises they call (the student's own in the release),
    and the import lines of everything else they use: (sources, own, third_party, kit)."""
    sources, uses = [], set()
    for name in GIVEN_FUNCTIONS:
        source, used = given_function(name)
        sources.append(source)
        uses |= used
    own = sorted(n for n in uses if n in EXERCISES)
    third_party, kit = import_lines(uses - set(own), "", _reference_module_names())
    return sources, own, third_party, kit


def given_module() -> str:
    """grader/given.py of the release: the given functions, for release_mode.py to bind."""
    sources, own, third_party, kit = given_parts()
    return (
        '"""Code the book gives in chapter 5 (not exercises), as the student release\'s grader runs it.\n\n'
        "Written by ``python -m grader release`` from the kit's reference. When an exercise is graded,\n"
        "release_mode.py binds these functions with the student's own exercises in place of the\n"
        'names set to None below.\n"""\n\n'
        + "".join(third_party) + "\n" + "".join(kit) + "\n"
        + f"GIVEN = {tuple(GIVEN_FUNCTIONS)!r}\n"
        + "".join(f"{name} = None  # the student's own, bound by release_mode.py\n" for name in own)
        + "\n\n" + "\n\n".join(sources)
    )


REFERENCE_GIVEN_HEAD = '''"""The code the book gives in chapter 5 (not exercises), for your own runs.

``from reference import generate_and_print_sample`` works as in the book. It calls your
own text_to_token_ids and token_ids_to_text: those where it is called from (your
notebook, your module), else the ones in exercises/. (The grader binds its own copy.)
"""

import importlib
import sys
import types
'''

REFERENCE_GIVEN_WRAPPER = '''

def _own_exercises(caller_globals: dict) -> dict:
    """Your exercises the given code calls: the caller's, else those in exercises/."""
    found = {}
    for name in OWN_EXERCISES:
        fn = caller_globals.get(name)
        found[name] = fn if callable(fn) else getattr(importlib.import_module(f"exercises.{name}"), name)
    return found


def _calling_your_exercises(book_function):
    def given(*args, **kwargs):
        namespace = {**globals(), **_own_exercises(sys._getframe(1).f_globals)}
        return types.FunctionType(book_function.__code__, namespace, book_function.__name__,
                                  book_function.__defaults__)(*args, **kwargs)

    given.__name__ = given.__qualname__ = book_function.__name__
    given.__doc__ = book_function.__doc__
    return given
'''


def reference_given() -> str:
    """reference/given.py of the release: the book's given functions (GIVEN_FUNCTIONS), so that
    the notebook's setup cell and a student's .py file can import them from reference."""
    sources, own, third_party, kit = given_parts()
    return (REFERENCE_GIVEN_HEAD + "\n" + "".join(third_party) + "".join(kit)
            + f"\nOWN_EXERCISES = {tuple(own)!r}\n" + REFERENCE_GIVEN_WRAPPER + "\n\n" + "\n\n".join(sources)
            + "".join(f"\n\n{n} = _calling_your_exercises({n})\n" for n in GIVEN_FUNCTIONS))
