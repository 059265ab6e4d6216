"""What runs inside a grading child: load the student's function, run its scenarios,
return plain outputs. Nothing here compares or scores; the parent does that.
"""

from __future__ import annotations

import __future__
import ast
import difflib
import functools
import importlib.util
import inspect
import operator
import random
import re
import sys
import textwrap
import traceback
from pathlib import Path

import torch

from . import EXERCISES
from .checks import scenarios
from .errors import LoadError, NotImplementedYet
from .preload import ReleaseExercisesFinder, preload, student_bytes
from .sandbox_child import report_loaded

# Names a student's module may use besides its own exercise; when one exercise is
# graded they are bound to the reference, so a mistake costs points in one place only.
REFERENCE_NAMES = tuple(EXERCISES) + ("generate_and_print_sample", "generate_text_simple")
MAX_TENSOR_ELEMENTS = 2_000_000
KIT_PACKAGES = ("reference", "solutions", "grader")  # where the kit's own answers live


def load_module(path: Path, module_name: str):
    """Import a student's file as a fresh module. Raises LoadError with a one-line reason.

    The file's encoding is Python's: UTF-8, a byte-order mark, or a PEP 263 coding line
    (``# -*- coding: latin-1 -*-``). Its top-level statements run one at a time, so that
    the functions it defines are seen as they appear: the student's own definition of an
    exercise wins over a later import of the kit's name (``cat solutions/*.py > all.py``
    repeats ``from reference import calc_loss_batch`` after ``def calc_loss_batch``).
    """
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        tree = ast.parse(student_bytes(path), str(path))  # bytes: the coding line is honoured
    except SyntaxError as exc:
        raise LoadError(f"syntax error in {path.name} line {exc.lineno}: {exc.msg}") from None
    except (ValueError, OSError) as exc:  # null bytes, an unreadable file
        raise LoadError(f"{path.name} could not be read: {error_line(exc)}") from None
    statements, flags = [], 0
    try:
        for node in tree.body:
            statements.append(compile(ast.Module([node], type_ignores=[]), str(path), "exec",
                                      flags=flags, dont_inherit=True))
            flags |= future_flags(node)
    except SyntaxError as exc:  # e.g. 'return' outside function: found by the compiler, not the parser
        raise LoadError(f"syntax error in {path.name} line {exc.lineno}: {exc.msg}") from None
    own = {}
    try:
        for code in statements:
            exec(code, module.__dict__)
            note_own_definitions(module.__dict__, own, str(path))
    except BaseException as exc:  # import-time code of any kind: a crash, exit, interrupt
        raise LoadError(f"importing {path.name} raised {error_line(exc)}") from None
    restore_own_definitions(module.__dict__, own)
    return module


def future_flags(node) -> int:
    """Compiler flags of a ``from __future__ import ...`` statement (0 for any other)."""
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return functools.reduce(operator.or_, (getattr(__future__, a.name).compiler_flag for a in node.names), 0)
    return 0


def from_the_kit(value) -> bool:
    """Whether ``value`` is one of the kit's own functions (imported, not written)."""
    return str(getattr(value, "__module__", "") or "").split(".")[0] in KIT_PACKAGES


def defined_in(value, filename: str) -> bool:
    """Whether ``value`` is a function (or class) whose code is in the file ``filename``."""
    code = getattr(value, "__code__", None)
    if code is not None:
        return code.co_filename == filename
    module = sys.modules.get(getattr(value, "__module__", None) or "")
    return getattr(module, "__file__", None) == filename


def note_own_definitions(namespace: dict, own: dict, filename: str) -> None:
    """Record, per exercise name, the latest function the file itself bound to it."""
    for name in EXERCISES:
        value = namespace.get(name)
        if callable(value) and defined_in(value, filename):
            own[name] = value


def restore_own_definitions(namespace: dict, own: dict) -> None:
    """Undo what replaced a student's own exercise function later on: an import of the same
    name (from the kit's reference, or the release's ``from exercises.x import x``), or a
    binding to something that is not callable."""
    for name, fn in own.items():
        current = namespace.get(name)
        if current is not fn and (not callable(current) or from_the_kit(current)
                                  or getattr(current, "__code__", None) is not None):
            namespace[name] = fn


def load_student_function(source, exercise: str, release: bool | None = None):
    """The student's function for ``exercise``, with other exercise names bound to the reference
    (in the student release, which has no chapter-5 reference: to the student's own, see release_mode.py).

    ``release``: whether this is the student release (None: look; a sandboxed child may no longer see).
    """
    from .release_mode import bind_own_functions, is_release

    release = is_release() if release is None else release
    module = source.load_module(exercise)
    fn = getattr(module, exercise, None)
    if not callable(fn):
        raise NotImplementedYet(not_defined_message(source, module, exercise), summary="not defined")
    if from_the_kit(fn):  # the kit's own answer, imported instead of written: earns nothing
        raise NotImplementedYet(f"{exercise} is imported from the kit ({fn.__module__}), not written",
                                summary="imported, not written")
    if release:
        bind_own_functions(source, module, exercise)
        return fn
    import reference

    for name in REFERENCE_NAMES:  # defined, imported or missing alike
        if name != exercise:
            module.__dict__[name] = getattr(reference, name)
    return fn


def own_functions(module) -> list[str]:
    """Names of the functions ``module`` itself defines (not imported), other exercises' names excluded."""
    return [name for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__
            and name not in EXERCISES and not name.startswith("_")]


def not_defined_message(source, module, exercise: str) -> str:
    """Why ``exercise`` is missing, naming what the file defines instead (a renamed function?)."""
    defined = own_functions(module)
    if hasattr(source, "file_for"):  # one file per exercise: whatever it defines is the candidate
        name = source.file_for(exercise).name
        if not defined:
            return f"{name} defines no function named {exercise}"
        others = ", ".join(defined)
        return (f"{name} defines no function named {exercise} (it defines {others}): "
                f"the grader calls the book's name, {exercise}")
    close = difflib.get_close_matches(exercise, defined, n=1, cutoff=0.6)
    if close:
        return (f"no function named {exercise} is defined ({close[0]} is: "
                f"the grader calls the book's name, {exercise})")
    return f"{exercise} is not defined"


def stub_problem(fn, exc: NotImplementedError, exercise: str) -> NotImplementedYet:
    """What a NotImplementedError from the first scenario means: the untouched stub, the stub's
    ``raise`` left in with the student's code around it, or a raise somewhere else."""
    student_file = getattr(getattr(fn, "__code__", None), "co_filename", None)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == student_file]
    if not frames:
        return NotImplementedYet(f"{exercise} still raises NotImplementedError")
    frame = frames[-1]
    where = f"line {frame.lineno}" + cell_of(frame.filename)
    statements = body_statements(fn) if frame.name == fn.__name__ else None
    first_line = fn.__code__.co_firstlineno
    raises = [s for s in statements or () if isinstance(s, ast.Raise) and s.lineno + first_line - 1 == frame.lineno]
    if not raises:  # a raise of the student's own, in a branch or a helper
        return NotImplementedYet(f"{exercise} raised NotImplementedError at {where}",
                                 summary="raises NotImplementedError")
    if len(statements) == 1:
        return NotImplementedYet(f"{exercise} still raises NotImplementedError")
    if statements.index(raises[0]) == 0:
        return NotImplementedYet(f"the stub's `raise NotImplementedError` is still there, at {where}, and runs "
                                 "before your code: delete that line", summary="the stub's raise is still there")
    return NotImplementedYet(f"the stub's `raise NotImplementedError` is still there, at {where}: your code above "
                             "it runs, then it raises; delete that line", summary="the stub's raise is still there")


def body_statements(fn) -> list | None:
    """The statements of ``fn``'s body without its docstring, or None when its source cannot be
    read. Their line numbers count from the first line of ``inspect.getsource(fn)``, 1."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return body


def cell_of(filename: str) -> str:
    """`` of code cell N`` for a notebook cell's pseudo file name (grader/notebook.py), else ""."""
    found = re.search(r" code cell (\d+)>$", filename)
    return f" of code cell {found.group(1)}" if found else ""


def error_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit (sys.exit({exc.code!r}) was called)"
    message = " ".join(line.strip() for line in str(exc).strip().splitlines())  # all of it, on one line
    if not message:
        return exc.__class__.__name__
    text = f"{exc.__class__.__name__}: {message}"
    return text if len(text) <= 300 else text[:297] + "..."


def reset_global_state(threads: int | None = None):
    """Undo what earlier code may have changed: seeds, dtype, default device, grad mode,
    determinism and (when ``threads`` is given) the number of threads."""
    torch.manual_seed(123)
    random.seed(123)
    torch.set_default_dtype(torch.float32)
    torch.set_default_device(None)
    torch.set_grad_enabled(True)
    torch.autograd.set_detect_anomaly(False)
    if torch.are_deterministic_algorithms_enabled():  # the setter imports torch._dynamo (~2 s of CPU
        torch.use_deterministic_algorithms(False)     # in every forked child): only when needed
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)  # more threads than cores is catastrophically slow


def plain(value, depth=0):
    """Outputs as plain data that ``torch.load(weights_only=True)`` reads back safely."""
    if depth > 12:
        return {"__object__": "nesting", "repr": "too deeply nested"}
    if isinstance(value, torch.Tensor):
        if value.numel() > MAX_TENSOR_ELEMENTS:
            return {"__object__": "Tensor", "repr": f"tensor of shape {tuple(value.shape)} (too large to compare)"}
        # as a plain Tensor: a subclass would not load with weights_only, nor compare honestly
        return torch.Tensor.as_subclass(value.detach().to("cpu").clone(), torch.Tensor)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)  # a plain str, also from a subclass (with its own __eq__)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return plain(value.item(), depth + 1)
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_TENSOR_ELEMENTS:  # compared whole or not at all: a cut list would read as another shape
            return {"__object__": type(value).__name__, "repr": f"{type(value).__name__} of {len(value):,} items (too large to compare)"}
        items = [plain(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in list(value.items())[:1000]}
    return {"__object__": type(value).__name__, "repr": repr(value)[:200]}


def run_scenarios(exercise: str, fn, ctx, threads: int | None = None, names=None) -> dict:
    """Run every scenario of ``exercise`` (or those in ``names``) on ``fn``; errors are recorded, never raised.

    ``threads``: the thread count to restore before each scenario (see reset_global_state).

    Raises:
        NotImplementedYet: the first scenario raised NotImplementedError.
    """
    outputs = {}
    for name, scenario in scenarios(exercise).items():
        if names is not None and name not in names:
            continue
        reset_global_state(threads)
        try:
            outputs[name] = plain(scenario(fn, ctx))
        except NotImplementedError as exc:
            if not outputs:
                raise stub_problem(fn, exc, exercise) from None
            outputs[name] = {"__error__": "NotImplementedError", "message": ""}
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: they cost this scenario only
            outputs[name] = error_record(exc, getattr(getattr(fn, "__code__", None), "co_filename", None))
    return outputs


def frozen(outputs):
    """Outputs as they are frozen: error records without traceback or location (paths of the
    machine that ran regen), everything else as it is."""
    if isinstance(outputs, dict):
        if "__error__" in outputs:
            return {"__error__": outputs["__error__"],
                    "message": str(outputs.get("message", "")).split(" (at line ")[0]}
        return {key: frozen(value) for key, value in outputs.items()}
    if isinstance(outputs, list):
        return [frozen(v) for v in outputs]
    if isinstance(outputs, tuple):
        return tuple(frozen(v) for v in outputs)
    return outputs


def error_record(exc: BaseException, student_file: str | None = None) -> dict:
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        kind, message = "MemoryLimit", "ran out of memory: it allocated more than the memory limit (--memory-limit)"
    else:
        kind, message = exc.__class__.__name__, error_line(exc) + student_line(exc, student_file)
    return {"__error__": kind, "message": message,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def student_line(exc: BaseException, student_file: str | None) -> str:
    """`` (at line N: code)`` for the deepest frame of the student's file in the traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if student_file and f.filename == student_file]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f" (at line {frame.lineno}{code})"


class ChildWork:
    """The work of one grading child (a task for sandbox.run_isolated): grade ``exercise`` of ``source``.

    Under instructor grading the sandbox calls ``before_lockdown()`` in the child first, while it
    still has the grader's privileges: the student's files are read, the kit's answer to the
    exercise is hidden (answers.py), then the sandbox locks the child down (lockdown.py).
    """

    def __init__(self, source, exercise: str, ctx):
        self.source, self.exercise, self.ctx = source, exercise, ctx
        self.release = None

    def before_lockdown(self) -> None:
        from .answers import hide
        from .release_mode import is_release

        self.release = is_release()
        preload(self.source)
        if self.release:
            sys.meta_path.append(ReleaseExercisesFinder())
        hide(self.exercise, kept=tuple(n for n in REFERENCE_NAMES if n != self.exercise))

    def forget_source(self, keep: "ChildWork") -> None:
        """In another submission's grading child: drop what this one's source holds in memory
        (a notebook's code cells, read by the grader's process), unless both grade the same source."""
        if self.source is not getattr(keep, "source", None) and hasattr(self.source, "cells"):
            self.source.cells = []

    def __call__(self) -> dict:
        return grade_in_child(self.source, self.exercise, self.ctx, release=self.release)


def grade_in_child(source, exercise: str, ctx, release: bool | None = None) -> dict:
    """The whole child's work for one exercise: ``{"status": ..., "outputs"/"message": ...}``."""
    threads = torch.get_num_threads()  # before the student's module can change it
    try:
        fn = load_student_function(source, exercise, release=release)
        report_loaded()  # from here on, a hang or crash is this exercise's, not the import's
        outputs = run_scenarios(exercise, fn, ctx, threads=threads)
        explain = getattr(source, "explain", None)  # a notebook: which failed cell a missing name is from
        for output in outputs.values():
            if explain and isinstance(output, dict) and "__error__" in output:
                output["message"] = explain(str(output.get("message", "")))
        from .release_mode import USED  # release mode: the student's own exercises it called

        return {"status": "ran", "outputs": outputs, "uses": sorted(USED)}
    except NotImplementedYet as exc:
        return {"status": "not_implemented", "message": str(exc), "summary": exc.summary}
    except LoadError as exc:
        return {"status": "load_error", "message": str(exc)}
