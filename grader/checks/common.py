"""Helpers the exercises' scenarios share: the book's inputs, small seeded models and loaders.

A scenario (``grader/checks/<exercise>/scenarios.py``, a function named ``scenario_<name>``)
is ``scenario(fn, ctx) -> dict`` of plain outputs (tensors, numbers, strings, lists,
bools). The same code runs the student's function in a sandboxed child and, through
``python -m grader regen``, the reference and the known mistakes, whose outputs are frozen
in ``grader/expected/``. Every exercise has the book's input and at least one other seeded
input, so a hard-coded book number fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import operator

import torch
from torch.utils.data import DataLoader, TensorDataset

BOOK_INPUTS = [[16833, 3626, 6100], [40, 1107, 588]]  # "every effort moves", "I really like"
BOOK_TARGETS = [[3626, 6100, 345], [1107, 588, 11311]]  # " effort moves you", " really like chocolate"
START_CONTEXT = "Every effort moves you"


def tiny_config(vocab_size=97, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0,
                qkv_bias=False):
    return {
        "vocab_size": vocab_size,
        "context_length": context_length,
        "emb_dim": emb_dim,
        "n_heads": n_heads,
        "n_layers": n_layers,
        "drop_rate": drop_rate,
        "qkv_bias": qkv_bias,
    }


def tiny_model(ctx, seed, **cfg):
    """A small ``GPTModel`` built after ``torch.manual_seed(seed)``, on the context's device."""
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


# --------------------------------------------------------------------------- a compact vocabulary
# A model over GPT-2's 50,257 tokens spends nearly all of a small training run in its output
# head, the embedding's gradient and AdamW's update of both. A scenario that trains on a short
# text needs only the tokens that occur in it: CompactTokenizer is GPT-2's tokenizer restricted
# to them, renumbered 0..n-1 in GPT-2's order, and ``renumbered`` maps a loader's batches to it.

class TokenOutsideVocabulary(ValueError):
    """Student code encoded or decoded a token the compact vocabulary lacks; the message is one line."""


def lacking(name: str, error: AttributeError) -> AttributeError:
    """What a scenario's stand-in (CompactTokenizer, PlainSGD) raises for an attribute it lacks: ``error``
    (one line, for the student), or a plain AttributeError for a dunder name (copy, pickle and the
    like look for optional protocols)."""
    return AttributeError(name) if name.startswith("__") else error


class AttributeOfCompactTokenizer(AttributeError):
    """Student code asked the compact tokenizer for an attribute it does not have."""


class CompactTokenizer:
    """GPT-2's tokenizer restricted to the tokens of ``texts`` (and ``<|endoftext|>``, the last id,
    as in GPT-2), renumbered ``0..n_vocab-1``. ``encode`` and ``decode`` take and give what the
    tiktoken Encoding's do, in the compact ids; a token outside the vocabulary raises
    TokenOutsideVocabulary, any other attribute AttributeOfCompactTokenizer (one line each)."""

    def __init__(self, tokenizer, texts):
        from reference.data import ENDOFTEXT

        self._tokenizer = tokenizer
        found = {i for text in texts for i in tokenizer.encode(text, allowed_special={ENDOFTEXT})}
        self._gpt2_ids = sorted(found | {tokenizer.eot_token})  # compact id -> GPT-2 id
        self._to_compact = torch.full((tokenizer.n_vocab,), -1, dtype=torch.int64)  # GPT-2 id -> compact, or -1
        self._to_compact[self._gpt2_ids] = torch.arange(len(self._gpt2_ids))

    def compact_ids(self, gpt2_ids: torch.Tensor) -> torch.Tensor:
        """GPT-2 token ids (an int64 tensor of any shape) in compact ids, -1 where a token is outside."""
        return self._to_compact[gpt2_ids]

    @property
    def n_vocab(self) -> int:
        return len(self._gpt2_ids)

    def _outside(self, what: str) -> TokenOutsideVocabulary:
        return TokenOutsideVocabulary(
            f"{what}: the grader trains on a compact vocabulary here (GPT-2's {self.n_vocab} tokens of its "
            f"text and start context, ids 0..{self.n_vocab - 1}): encode start_context with the tokenizer "
            "argument, decode the model's ids")

    def encode(self, text, **kwargs) -> list[int]:
        """tiktoken's ``encode(text, allowed_special=..., disallowed_special=...)``, in compact ids."""
        ids = self.compact_ids(torch.tensor(self._tokenizer.encode(text, **kwargs), dtype=torch.int64))
        if (ids < 0).any():
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise self._outside(f"tokenizer.encode({shown!r}) has tokens outside the vocabulary")
        return ids.tolist()

    def decode(self, tokens, **kwargs) -> str:
        """tiktoken's ``decode(tokens, errors=...)`` of a sequence of compact ids."""
        if isinstance(tokens, torch.Tensor):
            return self._tokenizer.decode(tokens, **kwargs)  # refused as tiktoken refuses it
        gpt2_ids = []
        for token in tokens:
            index = operator.index(token)
            if not 0 <= index < self.n_vocab:
                raise self._outside(f"tokenizer.decode got id {index}")
            gpt2_ids.append(self._gpt2_ids[index])
        return self._tokenizer.decode(gpt2_ids, **kwargs)

    def __getattr__(self, name):  # only for what the instance lacks
        raise lacking(name, AttributeOfCompactTokenizer(
            "the grader trains on a compact vocabulary here: its tokenizer (GPT-2's, restricted to the "
            f"tokens of its text) has encode, decode and n_vocab, no attribute {name!r}"))


def renumbered(loader: DataLoader, tokenizer: CompactTokenizer) -> DataLoader:
    """``loader``'s batches in ``tokenizer``'s compact ids: its dataset's (input, target) pairs
    renumbered, the same batch size, shuffle (it draws from torch's global generator as the
    original does) and drop_last."""
    pairs = [loader.dataset[i] for i in range(len(loader.dataset))]
    inputs, targets = (tokenizer.compact_ids(torch.stack(column)) for column in zip(*pairs))
    if (inputs < 0).any() or (targets < 0).any():
        raise ValueError("renumbered: the loader holds tokens outside the compact vocabulary")
    shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    return DataLoader(TensorDataset(inputs, targets), batch_size=loader.batch_size, shuffle=shuffle,
                      drop_last=loader.drop_last)


# --------------------------------------------------------------------------- a plain optimizer
# Any torch.optim.Optimizer, a subclass too, imports torch._dynamo on first use: __init__'s
# add_param_group, zero_grad, step and state_dict are wrapped in torch._disable_dynamo. That import
# takes 2.5-2.7 s after `import torch` (measured), which grading train_model_simple alone paid before
# its child could start, while the book's loop calls only zero_grad() and step(). PlainSGD is those
# two (and param_groups), imports nothing, and costs less than AdamW's update.

class AttributeOfPlainSGD(AttributeError):
    """Student code asked the scenario's optimizer for an attribute it does not have."""


class PlainSGD:
    """Plain SGD, ``param -= lr * param.grad`` for each parameter with a gradient, written out: the
    optimizer train_model_simple's scenarios hand the loop, since any torch.optim optimizer imports
    torch._dynamo on first use (2.5-2.7 s, measured; see above).

    What a training loop uses of a ``torch.optim.Optimizer``: ``zero_grad(set_to_none=True)``
    (None or zeroed gradients), ``step(closure=None)`` (returns the closure's loss) and
    ``param_groups`` (one group, ``{"params": [...], "lr": lr}``; ``step`` reads ``lr`` from it,
    so code that reads or sets the learning rate works). It is not a torch.optim.Optimizer and
    imports nothing; any other attribute raises AttributeOfPlainSGD (one line).
    """

    def __init__(self, params, lr: float):
        self.param_groups = [{"params": list(params), "lr": lr}]

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self._params():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:  # as torch.optim does: the gradient leaves any graph, then is zeroed in place
                if param.grad.grad_fn is not None:
                    param.grad.detach_()
                else:
                    param.grad.requires_grad_(False)
                param.grad.zero_()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        param.sub_(param.grad, alpha=group["lr"])
        return loss

    def __getattr__(self, name):  # only for what the instance lacks
        raise lacking(name, AttributeOfPlainSGD(
            "the grader's optimizer here is a plain SGD with zero_grad() and step() (and param_groups), "
            f"not a torch.optim optimizer: it has no attribute {name!r}"))


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


# --------------------------------------------------------------------------- device placement
# A missing `.to(device)` works on a CPU and breaks on the first GPU. The scenarios that check
# it hand the function inputs wrapped in _Unmoved; an op that combines an unmoved tensor with
# tensors that are on the device (the model's weights, a moved tensor) is what would fail on a
# GPU, so it is recorded. The values computed are those of plain tensors.

def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


class _Unmoved(torch.Tensor):
    """An input tensor (or one computed from it alone) not moved with ``.to(device)`` yet."""

    _origin = "an input"
    _recorder = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from torch.utils._pytree import tree_flatten

        kwargs = kwargs or {}
        leaves = tree_flatten((args, kwargs))[0]
        unmoved = [leaf for leaf in leaves if isinstance(leaf, _Unmoved)]
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **kwargs)
        if not unmoved:
            return result
        recorder, first = unmoved[0]._recorder, unmoved[0]
        if func in (torch.Tensor.to, torch.Tensor.cuda) and recorder.moves(func, args, kwargs):
            return _plain(result)
        if func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            # a CUDA tensor takes CPU index tensors: only the indexed tensor's place matters
            return recorder.tag(result, first) if isinstance(args[0], _Unmoved) else _plain(result)
        on_device = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)
                     and not isinstance(leaf, _Unmoved) and leaf.dim() > 0]
        if on_device and any(u.dim() > 0 for u in unmoved):  # a CPU scalar would be fine on a GPU
            recorder.record(unmoved, getattr(func, "__name__", str(func)))
            return _plain(result)
        return recorder.tag(result, first)


def _plain(value):
    from torch.utils._pytree import tree_map

    return tree_map(lambda v: v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v, value)


class MoveRecorder:
    """Which named inputs a function used on the device they came from, without ``.to(device)``.

    ``tensor(name, t)`` and ``loader(name, loader)`` wrap inputs; ``not_moved()`` lists
    "NAME (used in FUNCTION)" for each input that reached an op together with tensors on
    the device (what raises "Expected all tensors to be on the same device" on a GPU).
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.used: dict[str, str] = {}  # input name -> the first op that used it unmoved

    def moves(self, func, args, kwargs) -> bool:
        if func is torch.Tensor.cuda:
            return self.device.type == "cuda"
        device = torch._C._nn._parse_to(*args[1:], **kwargs)[0]
        return device is not None and _same_device(device, self.device)

    def tag(self, value, origin: "_Unmoved"):
        from torch.utils._pytree import tree_map

        def wrap(v):
            if not isinstance(v, torch.Tensor) or isinstance(v, torch.nn.Parameter):
                return v
            wrapped = v.as_subclass(_Unmoved)
            wrapped._origin, wrapped._recorder = origin._origin, self
            return wrapped

        return tree_map(wrap, value)

    def record(self, unmoved, op: str) -> None:
        for tensor in unmoved:
            self.used.setdefault(tensor._origin, op)

    def tensor(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        origin = tensor.as_subclass(_Unmoved)
        origin._origin, origin._recorder = name, self
        return origin

    def loader(self, name: str, loader: DataLoader) -> DataLoader:
        """The same batches as ``loader``, each tensor wrapped ("the input batches of NAME")."""
        def collate(items):
            inputs, targets = torch.utils.data.default_collate(items)
            return (self.tensor(f"the input batches of {name}", inputs),
                    self.tensor(f"the target batches of {name}", targets))

        return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False,
                          drop_last=loader.drop_last, collate_fn=collate)

    def not_moved(self) -> list[str]:
        return [f"{name} (used in {op})" for name, op in sorted(self.used.items())]
