"""Instructor grading: the kit's own answers out of the reach of the student code in a grading child.

``def calc_loss_batch(*a): import reference; return reference.calc_loss_batch(*a)``
must earn nothing when grades count. So in the grading child of exercise X, before
the student's module is loaded (``hide``):

- the reference's X, and the helpers only X uses (``generate``'s ``_keep_top_k``,
  ``load_checkpoint``'s ``read_checkpoint``...), are replaced by stand-ins that raise
  KitAnswerHidden, in the namespace of every module of the kit's, of the tests' and of
  ``__main__``: the ``reference`` package and its modules included, so the reference
  functions bound for the other exercises, which look X up in those same dicts
  (``calc_loss_loader.__globals__["calc_loss_batch"]``), meet the stand-in too;
- ``solutions.*``, the known mistakes (``grader.checks.*.mistakes``: each one small
  change away from the answer) and the regen code (``grader.expected``) leave
  ``sys.modules``; importing them, or importing a reference module again
  (``importlib.reload``), raises ImportError;
- the kit's source lines that ``linecache`` holds are dropped.

Then no object of the child holds X's code any more: checked with weak references,
and the child stops (fails closed) where one still does. Reading the kit's files
(the source, ``__pycache__``) is what lockdown.py prevents, as root.

Local practice (``python -m grader``, ``--watch``, the notebooks) does none of this:
there a wrapper like the one above still scores.
"""

from __future__ import annotations

import gc
import importlib
import importlib.abc
import importlib.util
import inspect
import linecache
import os
import pkgutil
import re
import sys
import sysconfig
import types
import weakref

from . import EXERCISES
from .errors import KitAnswerHidden

KIT_PACKAGES = ("reference", "grader", "solutions", "exercises")
EARLIER_CHAPTERS = ("reference.data", "reference.model")  # the given code of chapters 2-4, never hidden
HIDDEN_MODULES = re.compile(r"(solutions(\..+)?|grader\.expected|grader\.checks\.\w+\.mistakes)")
# Grader modules a grading child may import lazily: imported before it may no longer read them.
CHILD_MODULES = ("grader.child", "grader.sources", "grader.notebook", "grader.release_mode", "grader.checks.common")
RELEASE_ONLY_MODULES = ("grader.given",)  # written by `python -m grader release`


class AnswerStillReachable(RuntimeError):
    """An object of the grading child still holds the kit's answer (a grader bug: fail closed)."""


def import_kit_modules() -> None:
    """Import every reference module and every module a grading child may need (in the grader's process)."""
    import reference

    from .checks import scenarios

    for info in pkgutil.iter_modules(reference.__path__):
        if info.name != "__main__":
            importlib.import_module(f"reference.{info.name}")
    for name in CHILD_MODULES:
        importlib.import_module(name)
    for name in RELEASE_ONLY_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    for exercise in EXERCISES:
        scenarios(exercise)


def _is_chapter5_function(value) -> bool:
    base = inspect.unwrap(value) if callable(value) else None
    module = getattr(base, "__module__", "") or ""
    return isinstance(base, types.FunctionType) and module.startswith("reference.") and module not in EARLIER_CHAPTERS


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def calls(fn, stop=frozenset()) -> dict[int, object]:
    """id -> function: the chapter-5 reference functions ``fn`` calls through its globals, transitively
    (not through those whose id is in ``stop``)."""
    found, todo = {}, [fn]
    while todo:
        base = inspect.unwrap(todo.pop())
        for name in sorted(_code_names(base.__code__)):
            value = base.__globals__.get(name)
            if _is_chapter5_function(value) and id(value) not in found and id(value) not in stop:
                found[id(value)] = value
                todo.append(value)
    return found


def answer_functions(exercise: str, kept: tuple[str, ...]) -> dict[int, object]:
    """id -> function: the reference's ``exercise`` and the helpers only it uses.

    ``kept``: the names the grader binds into the student's module (the other exercises and
    the book's given functions); they, and what they call, stay.
    """
    import reference

    answer = getattr(reference, exercise, None)
    if answer is None:  # the student release: no chapter-5 reference to hide
        return {}
    hidden = {id(answer): answer, **calls(answer)}
    for name in kept:
        value = getattr(reference, name, None)
        if value is not None and value is not answer:
            for key in [id(value), *calls(value, stop={id(answer)})]:
                hidden.pop(key, None)
    return hidden


def stand_in(name: str, exercise: str):
    """What the kit's ``name`` becomes while ``exercise`` is graded."""

    def hidden(*args, **kwargs):
        raise KitAnswerHidden(f"the kit's own {name} is hidden while {exercise} is graded: write it yourself")

    hidden.__name__ = hidden.__qualname__ = name
    hidden.__module__ = "reference"  # imported from the kit: the grader says so (child.load_student_function)
    return hidden


class _Blocked(importlib.abc.MetaPathFinder):
    """Refuses the kit's answer modules, and importing a reference module again."""

    def __init__(self, exercise: str):
        self.exercise = exercise

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if HIDDEN_MODULES.fullmatch(name) or top == "reference" or (target is not None and top in KIT_PACKAGES):
            raise ImportError(f"{name} is hidden while {self.exercise} is graded: write the function yourself")
        return None


def hide(exercise: str, kept: tuple[str, ...]) -> None:
    """Make the kit's answer to ``exercise`` unreachable in this (grading child's) process.

    Raises:
        AnswerStillReachable: some object still holds it (the child must not run student code).
    """
    watch = _replace_everywhere(answer_functions(exercise, kept), exercise)
    _drop_hidden_modules()
    sys.meta_path.insert(0, _Blocked(exercise))
    _forget_kit_source_lines()
    for ref in watch:
        if ref() is not None:
            _sweep(ref(), exercise)
        if ref() is not None:
            holders = sorted({type(r).__name__ for r in gc.get_referrers(ref())} - {"list", "frame"})
            raise AnswerStillReachable(f"the kit's {ref().__name__} is still held by {', '.join(holders) or 'a frame'}")


def _replace_everywhere(answers: dict, exercise: str) -> list:
    """Put stand-ins where the modules hold ``answers``; returns weak references to watch them die."""
    watch = [weakref.ref(f) for f in answers.values()] + [weakref.ref(inspect.unwrap(f)) for f in answers.values()]
    for module in _modules_to_search():
        namespace = vars(module)
        for key, value in list(namespace.items()):
            if id(value) in answers and answers[id(value)] is value:
                namespace[key] = stand_in(key, exercise)
    return watch


def _library_dirs() -> tuple[str, ...]:
    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")} - {None}
    return tuple(sorted({p + os.sep for p in paths} | {os.path.realpath(p) + os.sep for p in paths}))


def _modules_to_search():
    """The modules whose namespace may hold a kit function: not the libraries' (torch's ~58,000 names
    would cost ~0.25 s and ~40 MB of copied pages per child), all others. (One missed here is
    caught by the weak references in ``hide``.)"""
    libraries = _library_dirs()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.partition(".")[0] in KIT_PACKAGES or not isinstance(file, str) or not file.startswith(libraries):
            if isinstance(getattr(module, "__dict__", None), dict):
                yield module


def _drop_hidden_modules() -> None:
    for name in [n for n in sys.modules if HIDDEN_MODULES.fullmatch(n)]:
        module = sys.modules.pop(name)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            vars(sys.modules[parent]).pop(child, None)
        vars(module).clear()  # its functions hold it through __globals__: the cycle ends here


def _forget_kit_source_lines() -> None:
    roots = tuple({os.path.dirname(os.path.dirname(os.path.realpath(m.__file__))) + os.sep
                   for n, m in list(sys.modules.items())
                   if n in KIT_PACKAGES and getattr(m, "__file__", None)})
    for filename in list(linecache.cache):
        if os.path.realpath(filename).startswith(roots):
            del linecache.cache[filename]


def _sweep(target, exercise: str) -> None:
    """Replace ``target`` wherever a dict, list or closure cell still holds it (gc.get_referrers: slow)."""
    replacement = stand_in(getattr(target, "__name__", "function"), exercise)
    for holder in gc.get_referrers(target):
        if isinstance(holder, dict):
            for key in [k for k, v in holder.items() if v is target]:
                holder[key] = replacement
        elif isinstance(holder, list):
            holder[:] = [replacement if v is target else v for v in holder]
        elif isinstance(holder, types.CellType):
            holder.cell_contents = replacement
