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
