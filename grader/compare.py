"""Comparisons of a student's output with the frozen reference output (parent process only).

Each comparator returns ``None`` when the check passes, else a short sentence of
what was expected and what came. Student values arrive as plain data loaded with
``torch.load(weights_only=True)``; an error a function raised arrives as
``{"__error__": type name, "message": ...}``.
"""

from __future__ import annotations

import math
import re

import torch

NUMBER = re.compile(r"-?\d+\.\d+|nan|inf")


def is_error(value) -> bool:
    return isinstance(value, dict) and "__error__" in value


def describe(value, limit=80) -> str:
    """A short, readable rendering of any output value."""
    if is_error(value):
        return str(value.get("message") or value["__error__"])[:limit]
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return f"tensor({value.item():.6g})"
        shape = "x".join(str(n) for n in value.shape)
        data = value.flatten()[:6].tolist()
        more = ", ..." if value.numel() > 6 else ""
        return f"tensor of shape ({shape}) {str(value.dtype).replace('torch.', '')} {data}{more}"[:limit]
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _close(actual: float, expected: float, atol: float, rtol: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return abs(actual - expected) <= atol + rtol * abs(expected)


def compare_tensor(actual, expected, check) -> str | None:
    """Values and shape only: the type (tensor, dtype) is a check of its own (``compare_type``),
    so a right value of the wrong type costs the type check alone."""
    if isinstance(actual, (list, tuple)):
        try:
            actual = torch.as_tensor(actual)
        except (TypeError, ValueError, RuntimeError):
            pass
    if not isinstance(actual, torch.Tensor):
        return f"expected a tensor of shape {tuple(expected.shape)}, got {type_name(actual)}: {describe(actual)}"
    if actual.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(actual.shape)}"
    try:
        torch.testing.assert_close(
            actual.to(expected.dtype), expected,
            atol=check.get("atol", 0.0), rtol=check.get("rtol", 0.0), equal_nan=True,
        )
    except AssertionError:
        return f"expected {describe(expected)}, got {describe(actual)}"
    return None


def as_number(value):
    """A Python number, or None when ``value`` is not a number or 0-dim/1-element tensor."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        return float(value.item())
    return None


def compare_number(actual, expected, check) -> str | None:
    """A Python number or one-element tensor, by value (its type is ``compare_type``'s)."""
    number = as_number(actual)
    if number is None:
        return f"expected a number close to {describe(expected)}, got {type_name(actual)}: {describe(actual)}"
    target = as_number(expected)
    if not _close(number, target, check.get("atol", 0.0), check.get("rtol", 0.0)):
        return f"expected {target:.6g}, got {number:.6g}"
    return None


def type_description(value) -> str:
    """What kind of value this is, as the type checks name it: "a 0-dim float32 tensor", "a float"."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dim()}-dim {str(value.dtype).replace('torch.', '')} tensor"
    return f"a {type(value).__name__}"


def compare_type(actual, expected, check) -> str | None:
    """The type alone (``type = "float"``: a Python float; ``"tensor"``: a tensor, with ``dim``
    and ``dtype`` if given), whatever the value: the value checks look at values only."""
    wanted = check["type"]
    if wanted == "float":
        if isinstance(actual, (float, int)) and not isinstance(actual, bool):
            return None
        return f"expected a Python float, got {type_description(actual)}"
    if wanted != "tensor":
        raise ValueError(f"unknown type {wanted!r} in a type check")
    dim, dtype = check.get("dim"), check.get("dtype")
    ok = (isinstance(actual, torch.Tensor) and (dim is None or actual.dim() == dim)
          and (dtype is None or str(actual.dtype) == f"torch.{dtype}"))
    if ok:
        return None
    shown = " ".join(part for part in (f"{dim}-dim" if dim is not None else "", dtype or "") if part)
    return f"expected a{'n' if shown[:1] in 'aeiou' and shown else ''} {shown + ' ' if shown else ''}tensor, " \
           f"got {type_description(actual)}"


def compare_floats(actual, expected, check) -> str | None:
    if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
        return f"expected {len(expected)} numbers {describe(list(expected))}, got {type_name(actual)}: {describe(actual)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        number = as_number(a)
        where = f"item {i + 1} of {len(expected)}"  # counted from 1, as people count
        if number is None:
            return f"{where}: expected a number, got {type_name(a)}"
        if not _close(number, as_number(e), check.get("atol", 0.0), check.get("rtol", 0.0)):
            return f"{where}: expected {as_number(e):.6g}, got {number:.6g} (expected {describe(list(expected))})"
    return None


def compare_exact(actual, expected, check) -> str | None:
    if isinstance(actual, torch.Tensor) and not isinstance(expected, torch.Tensor):
        actual = actual.tolist()
    if type(actual) is not type(expected) and not (isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple))):
        return f"expected {describe(expected)}, got {type_name(actual)}: {describe(actual)}"
    if isinstance(expected, (list, tuple)):
        if list(actual) != list(expected):
            return f"expected {describe(list(expected))}, got {describe(list(actual))}"
    elif actual != expected:
        return f"expected {describe(expected)}, got {describe(actual)}"
    return None


def compare_log(actual, expected, check) -> str | None:
    """Log lines ``{"lines": [...], "ignored": [...]}`` (checks/train_model_simple/scenarios.py):
    the same lines, numbers within atol (they are printed rounded to 3 decimals). Other printed
    lines were ignored; a few are shown when the log lines are missing."""
    if not isinstance(actual, dict) or not isinstance(actual.get("lines"), list):
        return f"expected {len(expected['lines'])} log lines, got {describe(actual)}"
    got, want = actual["lines"], expected["lines"]
    if len(got) != len(want):
        message = f"expected {len(want)} log lines like {want[0]!r}, got {len(got)}"
        ignored = [line for line in actual.get("ignored", []) if isinstance(line, str)]
        if ignored and len(got) < len(want):
            message += "; printed lines that are not in that format (not counted): " + \
                       ", ".join(repr(line[:80]) for line in ignored)
        return message
    atol = check.get("atol", 0.0)
    for line, wanted in zip(got, want):
        same_text = NUMBER.sub("#", line) == NUMBER.sub("#", wanted)
        numbers_close = same_text and all(
            _close(float(g), float(w), atol, 0.0)
            for g, w in zip(NUMBER.findall(line), NUMBER.findall(wanted))
        )
        if not numbers_close:
            return f"expected the line {wanted!r}, got {line!r}"
    return None


# Plot checks look at the figure description made in the child (checks/plot_losses/scenarios.py: describe_figure)


def _matches(values, wanted, atol=1e-6):
    return len(values) == len(wanted) and all(abs(a - b) <= atol * max(1.0, abs(b)) for a, b in zip(values, wanted))


def _figure(actual):
    if not isinstance(actual, dict) or not actual.get("figure"):
        returned = actual.get("returned") if isinstance(actual, dict) else None
        return None, f"no figure: the function returned {returned or 'nothing'} and left no current figure"
    return actual["figure"], None


def plot_figure(actual, expected, check):
    return _figure(actual)[1]


def plot_losses_vs_epochs(actual, expected, check):
    axes, problem = _figure(actual)
    if problem:
        return problem
    inputs = actual["inputs"]
    for ax in axes:
        visible = [line for line in ax["lines"] if line["visible"] and _matches(line["x"], inputs["epochs"])]
        has_train = any(_matches(line["y"], inputs["train"]) for line in visible)
        has_val = any(_matches(line["y"], inputs["val"]) for line in visible)
        if has_train and has_val:
            return None
    missing = []
    if not any(_matches(l["y"], inputs["train"]) and _matches(l["x"], inputs["epochs"]) for ax in axes for l in ax["lines"]):
        missing.append("training losses")
    if not any(_matches(l["y"], inputs["val"]) and _matches(l["x"], inputs["epochs"]) for ax in axes for l in ax["lines"]):
        missing.append("validation losses")
    if len(missing) == 1:  # one series drawn twice instead of both once?
        drawn = "train" if missing[0] == "validation losses" else "val"
        twice = sum(_matches(l["y"], inputs[drawn]) and _matches(l["x"], inputs["epochs"]) for ax in axes for l in ax["lines"])
        if twice >= 2:
            name = {"train": "training", "val": "validation"}[drawn]
            return (f"the {name} losses are drawn twice against epochs_seen and the {missing[0]} not at all: "
                    f"plot {'val_losses' if drawn == 'train' else 'train_losses'} in one of the two calls")
    what = " and ".join(missing) or "both losses on one axes"
    return f"no visible line of the {what} against epochs_seen"


def plot_tokens_axis(actual, expected, check):
    """What the figure shows, however it was drawn (``twiny()``, ``secondary_xaxis("top", ...)``):
    an x-axis on top, labelled 'Tokens seen', whose limits span tokens_seen (and not
    more than twice that span)."""
    axes, problem = _figure(actual)
    if problem:
        return problem
    tokens = actual["inputs"]["tokens"]
    labelled = [ax for ax in axes if ax["xlabel"].strip().lower() == "tokens seen"]
    if not labelled:
        return "no x-axis is labelled 'Tokens seen'"
    top = [ax for ax in labelled if ax.get("xlabel_top")]
    if not top:
        return "the axis labelled 'Tokens seen' is at the bottom: make it a second x-axis on top (ax1.twiny())"
    low, high = min(tokens), max(tokens)
    slack = 0.01 * (high - low)
    for ax in top:
        lo, hi = sorted(ax["xlim"])
        if lo <= low + slack and hi >= high - slack and hi - lo <= 2 * (high - low) + slack:
            return None
    lo, hi = sorted(top[0]["xlim"])
    return (f"the 'Tokens seen' axis runs from {lo:.6g} to {hi:.6g}, but tokens_seen goes from {low:g} to {high:g}: "
            "plot against tokens_seen on that axis (an invisible line, alpha=0, sets its range)")


def compare_devices(actual, expected, check):
    """The scenario's record of inputs that reached a computation without ``.to(device)``
    (grader/checks/common.py: MoveRecorder): none, like the reference."""
    if not isinstance(actual, list) or not all(isinstance(item, str) for item in actual):
        return f"could not tell where the inputs were used: got {describe(actual)}"
    if not actual:
        return None
    return (f"not moved to the device: {'; '.join(actual)}. It works on a CPU, but with device='cuda' it fails "
            "('Expected all tensors to be on the same device'): move each with .to(device) before using it")


def plot_labels(actual, expected, check):
    axes, problem = _figure(actual)
    if problem:
        return problem
    xlabels = {ax["xlabel"].strip().lower() for ax in axes}
    ylabels = {ax["ylabel"].strip().lower() for ax in axes}
    missing = [name for name, ok in (("x-label 'Epochs'", "epochs" in xlabels), ("y-label 'Loss'", "loss" in ylabels)) if not ok]
    return f"missing {' and '.join(missing)}" if missing else None


COMPARATORS = {
    "tensor": compare_tensor,
    "number": compare_number,
    "floats": compare_floats,
    "exact": compare_exact,
    "log": compare_log,
    "plot_figure": plot_figure,
    "plot_losses_vs_epochs": plot_losses_vs_epochs,
    "plot_tokens_axis": plot_tokens_axis,
    "plot_labels": plot_labels,
    "type": compare_type,
    "devices": compare_devices,
}
DIAGNOSABLE = {"tensor", "number", "floats", "exact", "log", "type"}  # compare two values, so mistakes can match
VALUE_COMPARES = {"tensor", "number", "floats"}  # by value only: a type is a "type" check of its own


def pick(outputs: dict, check: dict):
    """The output a check looks at: ``outputs[key]``, then ``[index]`` if the check has one."""
    value = outputs[check["key"]]
    if "index" in check and not is_error(value):
        if not isinstance(value, (list, tuple)) or len(value) <= check["index"]:
            return {"__error__": "WrongReturn", "message": f"expected a tuple of lists, got {describe(value)}"}
        value = value[check["index"]]
    return value


SAME_CAUSE_ERRORS = {"ZeroDivisionError"}  # one cause, whatever the wording ("float division by zero")


def _error_core(error: dict) -> str:
    """The start of an error message, without where it happened and without numbers."""
    message = str(error.get("message", "")).split(" (at line ")[0]
    return re.sub(r"\d+", "#", message)[:80]


def error_key(error: dict) -> str:
    """One string per cause of an error record: its type and message without numbers or line."""
    return f"{error['__error__']}: {_error_core(error)}"


def same_error(actual: dict, other: dict) -> bool:
    """The same exception type, and the same message unless the type has one cause only:
    a TypeError from one mistake says nothing about another TypeError."""
    if actual["__error__"] != other["__error__"]:
        return False
    return actual["__error__"] in SAME_CAUSE_ERRORS or _error_core(actual) == _error_core(other)


def same_output(check, actual, other) -> bool:
    """Whether two outputs for ``check`` are the same for diagnosis: the same exception type
    for errors; for a type check the same type; else equal within the check's tolerance
    (a value check looks at the value only, whatever its type)."""
    if is_error(actual) or is_error(other):
        return is_error(actual) and is_error(other) and same_error(actual, other)
    if check["compare"] == "type":
        return type_description(actual) == type_description(other)
    return run_comparator(check, actual, other) is None


def run_comparator(check, actual, expected) -> str | None:
    if is_error(actual):
        message = actual.get("message") or actual["__error__"]
        return message if actual["__error__"] in ("MemoryLimit", "Missing", "WrongReturn") else f"raised {message}"
    try:
        return COMPARATORS[check["compare"]](actual, expected, check)
    except Exception as exc:  # a malformed value must fail the check, never the grader
        return f"could not compare the output ({exc.__class__.__name__}): got {describe(actual)}"
