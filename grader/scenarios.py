"""Seeded scenarios: the inputs each exercise is run on, and what is recorded of the run.

A scenario is ``scenario(fn, ctx) -> dict`` of plain outputs (tensors, numbers,
strings, lists, bools). The same code runs the student's function in a sandboxed
child and, through ``python -m grader regen``, the reference and the known
mistakes (``grader/mistakes.py``), whose outputs are frozen in ``grader/expected/``.

Every exercise has the book's input and at least one other seeded input, so a
hard-coded book number fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import io

import torch
from torch.utils.data import DataLoader, TensorDataset

BOOK_INPUTS = [[16833, 3626, 6100], [40, 1107, 588]]  # "every effort moves", "I really like"
BOOK_TARGETS = [[3626, 6100, 345], [1107, 588, 11311]]  # " effort moves you", " really like chocolate"
START_CONTEXT = "Every effort moves you"

SCENARIOS: dict[str, dict] = {}  # exercise -> {scenario name: function}


def scenario(exercise: str, name: str):
    def register(func):
        SCENARIOS.setdefault(exercise, {})[name] = func
        return func

    return register


def tiny_config(vocab_size=97, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0):
    return {
        "vocab_size": vocab_size,
        "context_length": context_length,
        "emb_dim": emb_dim,
        "n_heads": n_heads,
        "n_layers": n_layers,
        "drop_rate": drop_rate,
        "qkv_bias": False,
    }


def tiny_model(ctx, seed, **cfg):
    from reference import GPTModel

    torch.manual_seed(seed)
    return GPTModel(tiny_config(**cfg)).to(ctx.device)


def random_loader(seed, num_batches, batch_size=2, num_tokens=8, vocab_size=97, drop_last=False):
    """A fixed-order loader of ``num_batches`` seeded batches of ``(batch_size, num_tokens)`` ids."""
    gen = torch.Generator().manual_seed(seed)
    rows = num_batches * batch_size
    ids = torch.randint(0, vocab_size, (rows, num_tokens + 1), generator=gen)
    dataset = TensorDataset(ids[:, :-1].contiguous(), ids[:, 1:].contiguous())
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=drop_last)


def verdict_loaders(ctx, context_length, batch_size=2, chars=None):
    """The chapter's 90/10 loaders on The Verdict (or its first ``chars`` characters), seed 123."""
    from reference.run import make_loaders

    text = ctx.verdict_text if chars is None else ctx.verdict_text[:chars]
    torch.manual_seed(123)
    return make_loaders(text, context_length, batch_size)


def batch_key(input_batch, target_batch) -> str:
    """A content hash of a batch, for replaying frozen per-batch losses."""
    digest = hashlib.sha256()
    for t in (input_batch, target_batch):
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def rebound(fn, name, replacement):
    """Temporarily bind ``name`` in ``fn``'s module globals (if the module uses that name)."""
    namespace = getattr(fn, "__globals__", {})
    if name not in namespace:
        yield
        return
    old = namespace[name]
    namespace[name] = replacement
    try:
        yield
    finally:
        namespace[name] = old


def capture_stdout(call):
    """Run ``call()`` and return ``(result, printed lines)``."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = call()
    return result, buffer.getvalue().splitlines()


# 1. text_to_token_ids ------------------------------------------------------------


@scenario("text_to_token_ids", "book")
def _(fn, ctx):
    return {"ids": fn(START_CONTEXT, ctx.tokenizer)}


@scenario("text_to_token_ids", "endoftext")
def _(fn, ctx):
    return {"ids": fn("It was<|endoftext|>The Verdict", ctx.tokenizer)}


@scenario("text_to_token_ids", "verdict_slice")
def _(fn, ctx):
    start = int(torch.randint(0, 19000, (1,), generator=torch.Generator().manual_seed(5)))
    return {"ids": fn(ctx.verdict_text[start : start + 300], ctx.tokenizer)}


# 2. token_ids_to_text ------------------------------------------------------------

BOOK_GREEDY_IDS = [[6109, 3626, 6100, 345, 34245, 5139, 2492, 25405, 17434, 17853, 5308, 3398, 13174, 43071]]


@scenario("token_ids_to_text", "book")
def _(fn, ctx):
    return {"text": fn(torch.tensor(BOOK_GREEDY_IDS), ctx.tokenizer)}


@scenario("token_ids_to_text", "endoftext")
def _(fn, ctx):
    ids = ctx.tokenizer.encode("the end.<|endoftext|>A new story", allowed_special="all")
    return {"text": fn(torch.tensor([ids]), ctx.tokenizer)}


@scenario("token_ids_to_text", "random_ids")
def _(fn, ctx):
    ids = torch.randint(0, 50256, (1, 23), generator=torch.Generator().manual_seed(7))
    return {"text": fn(ids, ctx.tokenizer)}


@scenario("token_ids_to_text", "one_token")
def _(fn, ctx):
    return {"text": fn(torch.tensor([[40]]), ctx.tokenizer)}  # "I"


# 3. manual_cross_entropy ---------------------------------------------------------


def _random_logits(seed, shape, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen) * scale
    targets = torch.randint(0, shape[-1], shape[:-1], generator=gen)
    return logits, targets


@scenario("manual_cross_entropy", "book")
def _(fn, ctx):
    logits = ctx.book_logits.to(ctx.device)
    targets = torch.tensor(BOOK_TARGETS, device=ctx.device)
    return {"loss": fn(logits, targets)}


@scenario("manual_cross_entropy", "random_3x5x17")
def _(fn, ctx):
    logits, targets = _random_logits(11, (3, 5, 17))
    return {"loss": fn(logits.to(ctx.device), targets.to(ctx.device))}


@scenario("manual_cross_entropy", "random_1x7x101")
def _(fn, ctx):
    logits, targets = _random_logits(12, (1, 7, 101), scale=1.0)
    return {"loss": fn(logits.to(ctx.device), targets.to(ctx.device))}


# 4. calc_loss_batch ---------------------------------------------------------------


@scenario("calc_loss_batch", "book_124m")
def _(fn, ctx):
    model = ctx.model_124m()
    loss = fn(torch.tensor(BOOK_INPUTS), torch.tensor(BOOK_TARGETS), model, ctx.device)
    return {"loss": loss}


@scenario("calc_loss_batch", "tiny_3x8")
def _(fn, ctx):
    model = tiny_model(ctx, seed=21)
    model.train()
    loader = random_loader(seed=22, num_batches=1, batch_size=3)
    inputs, targets = next(iter(loader))
    torch.manual_seed(0)
    loss = fn(inputs, targets, model, ctx.device)
    return {"loss": loss, "attached_to_graph": reaches_parameters(loss, model)}


def reaches_parameters(loss, model) -> bool:
    """Whether backpropagating ``loss`` gives a gradient to some parameter of ``model``
    (a tensor merely created with requires_grad=True gives none)."""
    if not (isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1):
        return False
    grads = torch.autograd.grad(loss.sum(), list(model.parameters()), allow_unused=True)
    return any(g is not None for g in grads)


@scenario("calc_loss_batch", "tiny_4x5")
def _(fn, ctx):
    model = tiny_model(ctx, seed=23, vocab_size=53, context_length=5).eval()
    loader = random_loader(seed=24, num_batches=1, batch_size=4, num_tokens=5, vocab_size=53)
    inputs, targets = next(iter(loader))
    return {"loss": fn(inputs, targets, model, ctx.device)}


# 5. calc_loss_loader --------------------------------------------------------------


@scenario("calc_loss_loader", "verdict_124m")
def _(fn, ctx):
    """The book's initial losses, 10.98758 and 10.98111 (section 5.1.3)."""
    # what fn's module calls: the reference in the kit, the student's own in the release
    calc_loss_batch = getattr(fn, "__globals__", {}).get("calc_loss_batch")
    table = ctx.verdict_batch_losses

    def replayed_calc_loss_batch(input_batch, target_batch, model, device):
        # The untrained 124M model's per-batch losses were measured by
        # `python -m grader regen`; 10 forward passes of [2, 256] would take ~15 s here.
        key = batch_key(input_batch, target_batch)
        if model is ctx.model_124m() and key in table:
            return torch.tensor(table[key], device=device)
        return calc_loss_batch(input_batch, target_batch, model, device)

    model = ctx.model_124m()
    train_loader, val_loader = verdict_loaders(ctx, context_length=256)
    with rebound(fn, "calc_loss_batch", replayed_calc_loss_batch), torch.no_grad():
        torch.manual_seed(123)
        train = fn(train_loader, model, ctx.device)
        val = fn(val_loader, model, ctx.device)
    return {"train_loss": train, "val_loss": val}


@scenario("calc_loss_loader", "tiny_first_3_of_5")
def _(fn, ctx):
    model = tiny_model(ctx, seed=31).eval()
    return {"loss": fn(random_loader(seed=32, num_batches=5), model, ctx.device, num_batches=3)}


@scenario("calc_loss_loader", "tiny_all_of_4")
def _(fn, ctx):
    model = tiny_model(ctx, seed=33).eval()
    return {"loss": fn(random_loader(seed=34, num_batches=4), model, ctx.device)}


@scenario("calc_loss_loader", "tiny_10_of_4")
def _(fn, ctx):
    model = tiny_model(ctx, seed=35).eval()
    return {"loss": fn(random_loader(seed=36, num_batches=4), model, ctx.device, num_batches=10)}


@scenario("calc_loss_loader", "empty")
def _(fn, ctx):
    model = tiny_model(ctx, seed=37).eval()
    loader = random_loader(seed=38, num_batches=0)
    return {"loss": fn(loader, model, ctx.device, num_batches=2)}


@scenario("calc_loss_loader", "with_grad")
def _(fn, ctx):
    """Called outside no_grad, as in training code: the result must still be a float."""
    model = tiny_model(ctx, seed=39).eval()
    return {"loss": fn(random_loader(seed=40, num_batches=2), model, ctx.device)}


# 6. evaluate_model ------------------------------------------------------------------


class ForwardRecorder:
    """Records, for each forward call, whether the model was in training mode and grad was on."""

    def __init__(self, model):
        self.training, self.grad_enabled = [], []
        model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.training.append(bool(module.training))
        self.grad_enabled.append(torch.is_grad_enabled())


def _evaluate(fn, ctx, model, train_loader, val_loader, eval_iter):
    recorder = ForwardRecorder(model)
    model.train()
    torch.manual_seed(0)  # dropout, if the model is (wrongly) left in training mode
    result = fn(model, train_loader, val_loader, ctx.device, eval_iter)
    out = {
        "result": result,
        "train_mode_after": bool(model.training),
        "eval_mode_during": bool(recorder.training) and not any(recorder.training),
        "grad_off_during": bool(recorder.grad_enabled) and not any(recorder.grad_enabled),
    }
    return out


@scenario("evaluate_model", "tiny_dropout")
def _(fn, ctx):
    model = tiny_model(ctx, seed=41, drop_rate=0.5)
    return _evaluate(fn, ctx, model, random_loader(42, 4), random_loader(43, 3), eval_iter=2)


@scenario("evaluate_model", "verdict_ctx32")
def _(fn, ctx):
    model = tiny_model(ctx, seed=44, vocab_size=50257, context_length=32, drop_rate=0.1)
    train_loader, val_loader = verdict_loaders(ctx, context_length=32, chars=4000)
    return _evaluate(fn, ctx, model, train_loader, val_loader, eval_iter=3)


# 7. train_model_simple ------------------------------------------------------------------


def _train(fn, ctx, seed, num_epochs, eval_freq, eval_iter, start_in_eval_mode=False):
    model = tiny_model(ctx, seed=seed, vocab_size=50257, context_length=32, drop_rate=0.1)
    train_loader, val_loader = verdict_loaders(ctx, context_length=32, chars=2400)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.1)
    if start_in_eval_mode:
        model.eval()  # as after an evaluation: training must switch dropout back on
    torch.manual_seed(seed)
    result, printed = capture_stdout(
        lambda: fn(model, train_loader, val_loader, optimizer, ctx.device, num_epochs,
                   eval_freq, eval_iter, START_CONTEXT, ctx.tokenizer)
    )
    log_lines = [line for line in printed if line.startswith("Ep ")]
    samples = [line for line in printed if not line.startswith("Ep ")]
    return {
        "result": result,
        "log_lines": log_lines,
        "num_samples": len(samples),
        "samples_start_with_context": all(s.startswith(START_CONTEXT) for s in samples),
    }


@scenario("train_model_simple", "tiny_2_epochs")
def _(fn, ctx):
    return _train(fn, ctx, seed=51, num_epochs=2, eval_freq=3, eval_iter=2)


@scenario("train_model_simple", "tiny_from_eval_mode")
def _(fn, ctx):
    return _train(fn, ctx, seed=52, num_epochs=1, eval_freq=2, eval_iter=1, start_in_eval_mode=True)


# 8. plot_losses ---------------------------------------------------------------------------


def describe_figure(fig):
    """What a plot shows, as plain data: per axes its labels and lines (x, y, alpha, style)."""
    axes = []
    for ax in fig.get_axes():
        lines = []
        for line in ax.get_lines():
            lines.append({
                "x": [float(v) for v in line.get_xdata()],
                "y": [float(v) for v in line.get_ydata()],
                "visible": bool(line.get_visible()) and (line.get_alpha() is None or line.get_alpha() > 0),
                "linestyle": str(line.get_linestyle()),
                "label": str(line.get_label()),
            })
        axes.append({"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "lines": lines})
    return axes


def _plot(fn, ctx, num_epochs, n, seed):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.close("all")
    gen = torch.Generator().manual_seed(seed)
    train = (torch.linspace(9.5, 1.0, n) + 0.1 * torch.rand(n, generator=gen)).tolist()
    val = (torch.linspace(9.8, 6.0, n) + 0.1 * torch.rand(n, generator=gen)).tolist()
    tokens = [512 * (i + 1) for i in range(n)]
    epochs = torch.linspace(0, num_epochs, n)
    returned = fn(epochs, tokens, train, val)
    if isinstance(returned, Figure):
        fig, how = returned, "returned"
    elif returned is None and plt.get_fignums():
        fig, how = plt.gcf(), "current"  # returned nothing but left the figure current
    else:
        return {"plot": {"figure": None, "returned": type(returned).__name__}}
    return {"plot": {
        "figure": describe_figure(fig),
        "returned": how,
        "inputs": {"epochs": epochs.tolist(), "tokens": tokens, "train": train, "val": val},
    }}


@scenario("plot_losses", "seven_points")
def _(fn, ctx):
    return _plot(fn, ctx, num_epochs=3, n=7, seed=61)


@scenario("plot_losses", "eighteen_points")
def _(fn, ctx):
    return _plot(fn, ctx, num_epochs=10, n=18, seed=62)
