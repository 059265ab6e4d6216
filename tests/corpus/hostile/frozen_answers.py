"""Hostile: every exercise returns the kit's expected value for the scenario it is called in.

It finds the scenario on the call stack (the frame of ``scenario_<name>``) and returns the
reference's output there: from the grader's expected values if its grading process still holds
them (the garbage collector), else from the frozen file ``grader/expected/<exercise>.pt``, which
the kit and the student release ship. The n-th call in one scenario returns its n-th output
(calc_loss_loader's verdict scenario asks for the training loss, then the validation loss).
train_model_simple prints the frozen log lines too. Graded with the frozen seeds this scores on
every check whose output is what the function returns; under fresh seeds (instructor grading)
those checks earn nothing but the book's own numbers, which are the same in every run.
"""

import gc
import sys
from pathlib import Path

import torch

CALLS = {}  # (id of the scenario's frame) -> calls so far


def _scenario_frame():
    frame = sys._getframe(2)
    while frame is not None and not frame.f_code.co_name.startswith("scenario_"):
        frame = frame.f_back
    return frame


def _expected(exercise):
    """The grader's own expected values of ``exercise`` if this process holds them, else the frozen ones."""
    for obj in gc.get_objects():  # the grader's {exercise: {"reference": ..., "mistakes": ...}}
        if isinstance(obj, dict) and isinstance(obj.get(exercise), dict) \
                and set(obj[exercise]) == {"reference", "mistakes"}:
            return obj[exercise]
    import grader

    return torch.load(Path(grader.__file__).parent / "expected" / f"{exercise}.pt", weights_only=True)


def _answer(exercise):
    frame = _scenario_frame()
    name = frame.f_code.co_name.removeprefix("scenario_")
    outputs = _expected(exercise)["reference"][name]
    n = CALLS[id(frame)] = CALLS.get(id(frame), -1) + 1
    keys = list(outputs)
    return outputs[keys[min(n, len(keys) - 1)]]


def text_to_token_ids(text, tokenizer):
    return _answer("text_to_token_ids")


def token_ids_to_text(token_ids, tokenizer):
    return _answer("token_ids_to_text")


def manual_cross_entropy(logits, targets):
    return _answer("manual_cross_entropy")


def calc_loss_batch(input_batch, target_batch, model, device):
    return _answer("calc_loss_batch")


def calc_loss_loader(data_loader, model, device, num_batches=None):
    return _answer("calc_loss_loader")


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    return _answer("evaluate_model")


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    frame = _scenario_frame()
    outputs = _expected("train_model_simple")["reference"][frame.f_code.co_name.removeprefix("scenario_")]
    print("\n".join(outputs["log_lines"]))
    return outputs["result"]


def plot_losses(epochs_seen, tokens_seen, train_losses, val_losses):
    return _answer("plot_losses")


def softmax_with_temperature(logits, temperature):
    return _answer("softmax_with_temperature")


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    return _answer("generate")


def save_checkpoint(model, optimizer, path):
    return _answer("save_checkpoint")


def load_checkpoint(path, model, optimizer, device):
    return _answer("load_checkpoint")


def assign(left, right):
    return _answer("assign")


def load_weights_into_gpt(gpt, params):
    return _answer("load_weights_into_gpt")
