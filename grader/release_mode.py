"""Which edition of the kit this grader belongs to, and what a graded exercise's helpers are.

Instructor's kit (this repository): the chapter-5 reference is here. When one
exercise is graded, every other exercise name in the student's module is bound to
the reference version (grader/child.py), so a mistake costs points in one
exercise only.

Student release (``python -m grader release``, marked by the file
``grader/RELEASE``): there is no chapter-5 reference code. The other exercise
names are bound to the student's OWN functions from the same submission: the
sibling files of an exercises/ folder, or the same module of a single .py file or
notebook. A mistake in ``calc_loss_batch`` can then also cost points in
``calc_loss_loader``, ``evaluate_model`` and ``train_model_simple``; the release's
README says so. When such an exercise is still a stub, the graded one's checks say
"your calc_loss_batch is not implemented yet, and calc_loss_loader depends on it"
(DependencyError), not that the graded exercise is unimplemented. The book's given
``generate_and_print_sample`` is bound to the release's copy (grader/given.py)
calling the student's text_to_token_ids and token_ids_to_text, as the kit binds
the reference's. The frozen expected values and mistake outputs
(``grader/expected/``) are the kit's, made by ``python -m grader regen``.
"""

from __future__ import annotations

import types
from pathlib import Path

from . import EXERCISES
from .errors import DependencyError, LoadError
from .preload import available

MARKER = Path(__file__).resolve().with_name("RELEASE")
# Commands that need the instructor's kit (the reference, solutions/); not in a release.
KIT_ONLY_COMMANDS = {
    "regen": "the expected values are frozen in grader/expected/",
    "make-exercises": "there is no solutions/ to generate exercises from",
    "release": "a release is built from the instructor's kit",
    "notebook": "the exercise notebook is written from solutions/, which a release does not have",
    "gradescope": "the Gradescope autograder is built from the instructor's kit",
}


# The student's own exercises the graded one called, in this grading child (a fresh fork each).
USED: set[str] = set()


def is_release() -> bool:
    """True in the student release."""
    return MARKER.is_file()


def unavailable(exercise_name: str, why: str):
    """A stand-in that raises a one-line error when called."""

    def missing(*args, **kwargs):
        raise DependencyError(why)

    missing.__name__ = exercise_name
    return missing


class OwnFunctions:
    """The student's own functions of one source, for binding into the modules it grades.

    Sibling modules of an exercises/ folder are loaded (in the grading child) only
    when one of their functions is first called, and get the same bindings, so a
    whole chain (train_model_simple -> evaluate_model -> calc_loss_loader ->
    calc_loss_batch) runs on this source's code.
    """

    def __init__(self, source, graded_module, exercise: str):
        self.source = source
        self.exercise = exercise
        self.per_file = hasattr(source, "file_for")  # sources.ExercisesDir
        # a single module: its own definitions, read before any binding replaces them
        self.defined = {n: graded_module.__dict__.get(n) for n in EXERCISES}
        self.resolved: dict[str, object] = {}
        self._given = None

    def _resolve(self, name: str):
        if not self.per_file:
            fn = self.defined.get(name)
            if callable(fn):
                return fn
            return unavailable(name, f"{name} is not defined in your submission ({self.exercise} depends on it)")
        path = self.source.file_for(name)
        if not available(path):
            return unavailable(name, f"{path.name} is missing ({self.exercise} depends on {name})")
        try:
            module = self.source.load_module(name)
        except LoadError as exc:
            return unavailable(name, f"your {name} could not be loaded ({self.exercise} depends on it): {exc}")
        fn = getattr(module, name, None)
        if not callable(fn):
            return unavailable(name, f"{name} is not defined in {path.name} ({self.exercise} depends on it)")
        self.bind(module, name)
        return fn

    def function(self, name: str):
        if name not in self.resolved:
            self.resolved[name] = None  # a cycle of imports resolves to the stand-in below
            self.resolved[name] = self._resolve(name)
        fn = self.resolved[name]
        return fn if fn is not None else unavailable(name, f"{name} calls itself through other exercises")

    def proxy(self, name: str):
        def own(*args, **kwargs):
            USED.add(name)  # reported with the results: a failure here may come from there
            try:
                return self.function(name)(*args, **kwargs)
            except NotImplementedError:
                # not "<graded exercise> is not implemented": it is, the one it uses is not
                raise DependencyError(f"your {name} is not implemented yet, and {self.exercise} depends on it") from None

        own.__name__ = own.__qualname__ = name
        return own

    def given(self) -> dict:
        """The book's given functions (grader/given.py, written by ``python -m grader release``),
        calling this source's own exercises: the same for every student, as in the kit."""
        from . import given

        namespace = dict(vars(given))
        namespace.update({name: self.proxy(name) for name in EXERCISES})
        return {name: types.FunctionType(getattr(given, name).__code__, namespace, name,
                                         getattr(given, name).__defaults__)
                for name in given.GIVEN}

    def bind(self, module, own_name: str) -> None:
        """Bind every other exercise name in ``module`` to this source's function, and the
        given functions to the grader's copy."""
        for name in EXERCISES:
            if name != own_name:
                module.__dict__[name] = self.proxy(name)
        if self._given is None:
            self._given = self.given()
        module.__dict__.update(self._given)


def bind_own_functions(source, module, exercise: str) -> None:
    """Release mode: in ``module`` (the graded one), other exercise names become the source's own."""
    OwnFunctions(source, module, exercise).bind(module, exercise)
