"""Hostile: every exercise returns the kit's own answer, each reached another way
(import, a submodule, sys.modules, importlib.reload, another function's __globals__,
the garbage collector, reading the source, the bytecode cache, inspect, a known
mistake, solutions/, another copy of the kit on the import path, the test corpus,
the git history, a private helper). Graded locally this scores full marks (local
practice does not hide the answers); under instructor grading it must earn nothing.
"""

import gc
import importlib
import importlib.util
import inspect
import marshal
import runpy
import subprocess
import sys
import types
from pathlib import Path

import reference

KIT = Path(reference.__file__).resolve().parent.parent


def _run_copy(code, name):
    """Execute a reference module's source (or code) as a copy of that module; return its ``name``."""
    copy = types.ModuleType("reference._copy")
    copy.__package__ = "reference"
    sys.modules[copy.__name__] = copy  # dataclasses look their module up
    exec(compile(code, "copy", "exec") if isinstance(code, str) else code, vars(copy))
    return getattr(copy, name)


def text_to_token_ids(text, tokenizer):
    import reference

    return reference.text_to_token_ids(text, tokenizer)


def token_ids_to_text(token_ids, tokenizer):
    for finder in sys.meta_path:  # another copy of the kit the interpreter can import
        try:
            spec = finder.find_spec("solutions", None)
        except ImportError:
            continue
        for folder in (getattr(spec, "submodule_search_locations", None) or []):
            path = Path(folder) / "token_ids_to_text.py"
            module_spec = importlib.util.spec_from_file_location("copied_solution", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            return module.token_ids_to_text(token_ids, tokenizer)
    raise LookupError("no copy of solutions/ found")


def manual_cross_entropy(logits, targets):
    mistakes = importlib.import_module("grader.checks.manual_cross_entropy.mistakes")
    return -mistakes.mistake_no_negation(logits, targets)  # one sign away from the answer


def calc_loss_batch(input_batch, target_batch, model, device):
    return sys.modules["reference.pretraining"].calc_loss_batch(input_batch, target_batch, model, device)


def calc_loss_loader(data_loader, model, device, num_batches=None):
    kit = _run_copy((KIT / "reference" / "pretraining.py").read_text(), "calc_loss_loader")
    kit.__globals__["calc_loss_batch"] = globals()["calc_loss_batch"]  # what the grader binds here
    return kit(data_loader, model, device, num_batches)


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    fresh = importlib.reload(sys.modules["reference.pretraining"])
    return fresh.evaluate_model(model, train_loader, val_loader, device, eval_iter)


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    from solutions.train_model_simple import train_model_simple as kit

    return kit(model, train_loader, val_loader, optimizer, device, num_epochs,
               eval_freq, eval_iter, start_context, tokenizer)


def plot_losses(epochs_seen, tokens_seen, train_losses, val_losses):
    kit = reference.calc_loss_loader.__globals__["plot_losses"]  # the module dict another exercise uses
    return kit(epochs_seen, tokens_seen, train_losses, val_losses)


def softmax_with_temperature(logits, temperature):
    kit = next(f for f in gc.get_objects() if isinstance(f, types.FunctionType)
               and f.__name__ == "softmax_with_temperature" and f.__module__ == "reference.decoding")
    return kit(logits, temperature)


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    cached = Path(importlib.util.cache_from_source(str(KIT / "reference" / "decoding.py")))
    if cached.exists():  # the bytecode cache
        code = marshal.loads(cached.read_bytes()[16:])
    else:  # the module's own loader compiles its file again
        code = sys.modules["reference.decoding"].__spec__.loader.get_code("reference.decoding")
    return _run_copy(code, "generate")(model, idx, max_new_tokens, context_size, temperature, top_k, eos_id)


def save_checkpoint(model, optimizer, path):
    book = runpy.run_path(str(KIT / "tests" / "corpus" / "correct" / "book.py"))
    return book["save_checkpoint"](model, optimizer, path)


def load_checkpoint(*args, **kwargs):
    shown = subprocess.run(["git", "-C", str(KIT), "show", "HEAD:solutions/load_checkpoint.py"],
                           capture_output=True, text=True, check=True)
    namespace = {}
    exec(shown.stdout, namespace)
    return namespace["load_checkpoint"](*args, **kwargs)


def assign(left, right):
    return _run_copy(inspect.getsource(sys.modules["reference.gpt2"]), "assign")(left, right)


def load_weights_into_gpt(gpt, params):
    from reference.gpt2 import _gpt2_assignments  # the helper that does the work

    for module, attribute, _, _, tensor in list(_gpt2_assignments(gpt, params)):
        setattr(module, attribute, reference.assign(getattr(module, attribute), tensor))
