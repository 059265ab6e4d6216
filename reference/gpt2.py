"""Chapter 5, section 5.5: loading OpenAI's pretrained GPT-2 weights.

The weights come from Hugging Face's ``model.safetensors`` files of
``openai-community/gpt2`` (and -medium, -large, -xl), as in the book's
safetensors variant of section 5.5: no TensorFlow needed. ``download_gpt2``
fetches a file once (resumable, size- and sha256-checked); offline, put a
``model.safetensors`` downloaded elsewhere at the path its error message names
(or load it from anywhere with ``load_pretrained_gpt2(..., weights_file=PATH)``).

GPT-2 layout (``d`` = emb_dim, ``V`` = 50,257, ``L`` = 1,024): ``wte.weight``
(V, d), ``wpe.weight`` (L, d), per block ``h.{b}.``: ``ln_1``/``ln_2``
``.weight``/``.bias`` (d,), ``attn.c_attn.weight`` (d, 3d) and ``.bias`` (3d,)
(query, key, value concatenated), ``attn.c_proj.weight`` (d, d), ``mlp.c_fc.weight``
(d, 4d), ``mlp.c_proj.weight`` (4d, d) with biases, ``attn.bias`` (1, 1, L, L)
(the causal mask, not a weight); ``ln_f.weight``/``.bias`` (d,). Its Conv1D
layers store weights input-first, ``(d_in, d_out)``: the transpose of nn.Linear's.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

import torch

# The book's sizes (section 5.5): the parts of the config that differ between them.
model_configs = {
    "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}
# book name -> (short name, parameter count, Hugging Face repository under openai-community)
_NAMES = {
    "gpt2-small (124M)": ("gpt2-small", "124M", "gpt2"),
    "gpt2-medium (355M)": ("gpt2-medium", "355M", "gpt2-medium"),
    "gpt2-large (774M)": ("gpt2-large", "774M", "gpt2-large"),
    "gpt2-xl (1558M)": ("gpt2-xl", "1558M", "gpt2-xl"),
}
SHORT_NAMES = tuple(short for short, _, _ in _NAMES.values())
DEFAULT_BASE_URL = "https://huggingface.co/openai-community"
BASE_URL_ENV = "GPT2_BASE_URL"  # overrides DEFAULT_BASE_URL, e.g. for a mirror or a test server
WEIGHTS_FILE = "model.safetensors"
_CHUNK = 1 << 20  # bytes per write while downloading
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(RuntimeError):
    """A GPT-2 weights file could not be downloaded or verified; the message is one line."""


def gpt2_model_name(model_size) -> str:
    """The book's name (``"gpt2-small (124M)"``) for any accepted spelling of a size.

    Accepts ``"124M"``/``"355M"``/``"774M"``/``"1558M"``, ``"gpt2-small"``/
    ``"gpt2-medium"``/``"gpt2-large"``/``"gpt2-xl"`` and the book's names.

    Raises:
        ValueError: any other value (the message names the choices).
    """
    for book_name, (short, count, _) in _NAMES.items():
        if model_size in (book_name, short, count):
            return book_name
    raise ValueError(
        f"unknown GPT-2 size {model_size!r}: choose one of {', '.join(SHORT_NAMES)} "
        "(or 124M, 355M, 774M, 1558M)"
    )


def gpt2_config(model_size) -> dict:
    """The full GPTModel config of a GPT-2 size: vocab 50,257, context 1,024, no dropout, qkv biases (section 5.5).

    Raises:
        ValueError: an unknown size (see ``gpt2_model_name``).
    """
    sizes = model_configs[gpt2_model_name(model_size)]
    return {
        "vocab_size": 50257,
        "context_length": 1024,  # GPT-2's, not chapter 5's 256
        "emb_dim": sizes["emb_dim"],
        "n_heads": sizes["n_heads"],
        "n_layers": sizes["n_layers"],
        "drop_rate": 0.0,
        "qkv_bias": True,  # OpenAI's query/key/value layers have biases
    }


def gpt2_url(model_size, base_url=None) -> str:
    """``{base}/{gpt2|gpt2-medium|gpt2-large|gpt2-xl}/resolve/main/model.safetensors``.

    ``base`` is ``base_url``, else the environment variable ``GPT2_BASE_URL``,
    else ``https://huggingface.co/openai-community``.
    """
    _, _, repo = _NAMES[gpt2_model_name(model_size)]
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{repo}/resolve/main/{WEIGHTS_FILE}"


def gpt2_weights_path(model_size, models_dir="gpt2") -> Path:
    """Where ``download_gpt2`` keeps a size's file: ``models_dir/<gpt2-small|...>/model.safetensors``."""
    short, _, _ = _NAMES[gpt2_model_name(model_size)]
    return Path(models_dir) / short / WEIGHTS_FILE


def download_gpt2(model_size, models_dir="gpt2", *, base_url=None, timeout=30) -> Path:
    """Download a size's ``model.safetensors`` into ``models_dir`` once; return its path.

    A complete file already there is returned without any request. Otherwise the
    file is streamed into ``model.safetensors.part`` (tqdm progress bar on a
    terminal), continuing a partial file with an HTTP ``Range`` request (from the
    start when the server answers 200), checked against the sizes the server
    advertises (Content-Length / Content-Range, ``X-Linked-Size``) and its sha256
    (``X-Linked-Etag``, else a 64-hex-digit ``ETag``), and only then moved into
    place. A file that fails the checks is deleted; a broken connection keeps the
    partial file for the next call to resume.

    Args:
        model_size: e.g. ``"124M"`` or ``"gpt2-small"`` (see ``gpt2_model_name``).
        base_url: overrides ``GPT2_BASE_URL`` / Hugging Face (see ``gpt2_url``).
        timeout: seconds to wait for the connection and for each read.
    Raises:
        ValueError: an unknown size.
        DownloadError: offline, an HTTP error, a broken connection or a failed
            check; one line naming the URL and the path to put the file at by hand.
    """
    path = gpt2_weights_path(model_size, models_dir)
    if path.is_file():
        return path  # only complete, verified files are ever moved to this name
    url = gpt2_url(model_size, base_url)
    created = _missing_folders(path.parent)
    try:
        _download_verified(url, path, timeout)
    except _Failed as exc:
        _remove_empty(created)  # offline: no empty gpt2/ folder left behind (a partial file stays, to resume)
        raise DownloadError(
            f"could not download {url} ({exc}); to use a copy downloaded elsewhere, put it at {path}"
        ) from None
    return path


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()  # only if empty
        except OSError:
            return


class _Failed(Exception):
    """Why a download failed, short; download_gpt2 turns it into a DownloadError."""


def _download_verified(url, path: Path, timeout):
    """Download ``url`` to ``path`` through ``path.part``; raise _Failed with the reason."""
    import requests

    part = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a second try from scratch when the server cannot continue the partial file
            advertised = _fetch(url, part, timeout)
            if advertised is not None:
                break
        else:
            raise _Failed("the server cannot continue the partial download")
    except requests.HTTPError as exc:
        raise _Failed(f"HTTP {exc.response.status_code} {exc.response.reason}") from None
    except requests.Timeout:
        raise _Failed(f"no answer within {timeout} s") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        got = part.stat().st_size if part.is_file() else 0
        lost = f"connection lost after {got} bytes, run again to resume" if got else "no connection"
        raise _Failed(f"{lost}: {_errno_text(exc)}") from None
    except requests.RequestException as exc:
        raise _Failed(type(exc).__name__) from None
    except OSError as exc:
        raise _Failed(f"cannot write {exc.filename or part}: {exc.strerror or exc}") from None
    _verify(part, *advertised)
    os.replace(part, path)


def _fetch(url, part: Path, timeout):
    """Stream ``url`` into ``part``, appending when the server continues it.

    Returns ``(sizes, sha256)`` that the server advertised, or None when the partial
    file must be restarted (it was deleted).
    """
    import requests
    from tqdm import tqdm

    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity"}  # sizes are of the file itself, not a compressed body
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        responses = [*response.history, response]  # Hugging Face answers with a redirect to its CDN
        if offset and response.status_code == 416:  # nothing after offset: complete already, or a wrong file
            total = _range_total(response.headers.get("Content-Range", ""))
            if total == offset:
                return _advertised_sizes(responses, "Content-Range", total), _advertised_sha256(responses)
            part.unlink()
            return None
        response.raise_for_status()
        resumed = bool(offset) and response.status_code == 206
        if resumed and _range_start(response.headers.get("Content-Range", "")) != offset:
            part.unlink()
            return None
        if resumed:
            total = _range_total(response.headers.get("Content-Range", ""))
        else:  # 200: the whole file, also when a Range was asked for
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        sizes = _advertised_sizes(responses, "Content-Range" if resumed else "Content-Length", total)
        with open(part, "ab" if resumed else "wb") as f, tqdm(
            total=max(sizes.values(), default=None), initial=offset, unit="B", unit_scale=True,
            unit_divisor=1024, desc=f"{part.parent.name}/{part.name[:-len('.part')]}",
            disable=None, file=sys.stderr,  # disable=None: no bar when stderr is not a terminal
        ) as bar:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
        return sizes, _advertised_sha256(responses)


def _verify(part: Path, sizes: dict, sha256):
    """Delete ``part`` and fail unless it has every advertised size and the sha256."""
    size = part.stat().st_size
    for source, expected in sizes.items():
        if size != expected:
            part.unlink()
            raise _Failed(f"got {size} bytes but {source} says {expected}; the download was deleted")
    if sha256 is not None:
        with open(part, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != sha256:
            part.unlink()
            raise _Failed(f"sha256 {digest} differs from the advertised {sha256}; the download was deleted")


def _advertised_sizes(responses, label, total) -> dict:
    """``{header: size}`` for the file's total size from ``label`` (when known) and X-Linked-Size."""
    sizes = {} if total is None else {label: total}
    for response in responses:
        linked = response.headers.get("X-Linked-Size", "")
        if linked.isdigit():
            sizes["X-Linked-Size"] = int(linked)
    return sizes


def _advertised_sha256(responses):
    """Hugging Face's X-Linked-Etag (the LFS sha256) of any response, else a sha256-like ETag."""
    for header in ("X-Linked-Etag", "ETag"):
        for response in responses:
            value = response.headers.get(header, "").strip()
            value = value.removeprefix("W/").strip('"').lower()
            if _SHA256.fullmatch(value):
                return value
    return None


def _range_start(content_range: str):
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", content_range.strip())
    return int(match.group(1)) if match else None


def _range_total(content_range: str):
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", content_range.strip())
    return int(match.group(1)) if match else None


def _errno_text(exc) -> str:
    """'Connection refused' from requests' nested message, else the exception's class name."""
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return match.group(1).strip() if match else type(exc).__name__


def load_gpt2_params(path) -> dict:
    """The tensors of a GPT-2 ``model.safetensors`` file, keyed as ``wte.weight``, ``h.0.attn.c_attn.weight``, ...

    A leading ``transformer.`` in the keys (some exports have it) is removed.

    Returns:
        dict of name -> float tensor on the CPU, in the GPT-2 layout of the module docstring.
    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not in the safetensors format.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no GPT-2 weights at {path}: expected a model.safetensors file")
    try:
        params = load_file(path)
    except SafetensorError as exc:
        raise ValueError(
            f"{path} is not a safetensors file ({exc}): expected GPT-2's model.safetensors from Hugging Face"
        ) from None
    return {name.removeprefix("transformer."): tensor for name, tensor in params.items()}


def assign(left, right):
    """``right`` as a new Parameter, after checking it has the shape of ``left`` (section 5.5).

    Raises:
        ValueError: ``Shape mismatch. Left: ..., Right: ...``.
    """
    if left.shape != right.shape:
        raise ValueError(f"Shape mismatch. Left: {left.shape}, Right: {right.shape}")
    return torch.nn.Parameter(right.clone().detach())


def _gpt2_assignments(gpt, params):
    """``(module, attribute, target name, key, tensor)`` for every weight, in the book's order.

    Conv1D weights are transposed to nn.Linear's ``(d_out, d_in)``; the fused
    ``c_attn`` is split into query, key and value along its last axis.
    """
    yield gpt.pos_emb, "weight", "pos_emb.weight", "wpe.weight", params["wpe.weight"]
    yield gpt.tok_emb, "weight", "tok_emb.weight", "wte.weight", params["wte.weight"]
    for b, block in enumerate(gpt.trf_blocks):
        h, t = f"h.{b}.", f"trf_blocks.{b}."
        att, ff = block.att, block.ff
        q_w, k_w, v_w = torch.chunk(params[h + "attn.c_attn.weight"], 3, axis=-1)  # 3 x (d, d)
        q_b, k_b, v_b = torch.chunk(params[h + "attn.c_attn.bias"], 3, axis=-1)  # 3 x (d,)
        for name, linear, weight, bias in (("W_query", att.W_query, q_w, q_b), ("W_key", att.W_key, k_w, k_b),
                                           ("W_value", att.W_value, v_w, v_b)):
            yield linear, "weight", f"{t}att.{name}.weight", h + "attn.c_attn.weight", weight.T
            yield linear, "bias", f"{t}att.{name}.bias", h + "attn.c_attn.bias", bias
        for linear, target, key in ((att.out_proj, "att.out_proj", "attn.c_proj"),
                                    (ff.layers[0], "ff.layers.0", "mlp.c_fc"),
                                    (ff.layers[2], "ff.layers.2", "mlp.c_proj")):
            yield linear, "weight", f"{t}{target}.weight", f"{h}{key}.weight", params[f"{h}{key}.weight"].T
            yield linear, "bias", f"{t}{target}.bias", f"{h}{key}.bias", params[f"{h}{key}.bias"]
        for norm, target, key in ((block.norm1, "norm1", "ln_1"), (block.norm2, "norm2", "ln_2")):
            yield norm, "scale", f"{t}{target}.scale", f"{h}{key}.weight", params[f"{h}{key}.weight"]
            yield norm, "shift", f"{t}{target}.shift", f"{h}{key}.bias", params[f"{h}{key}.bias"]
    yield gpt.final_norm, "scale", "final_norm.scale", "ln_f.weight", params["ln_f.weight"]
    yield gpt.final_norm, "shift", "final_norm.shift", "ln_f.bias", params["ln_f.bias"]
    yield gpt.out_head, "weight", "out_head.weight", "wte.weight", params["wte.weight"]  # tied, as in GPT-2


def load_weights_into_gpt(gpt, params):
    """Copy OpenAI's GPT-2 weights into a GPTModel (section 5.5, safetensors layout).

    ``wpe.weight`` -> ``pos_emb``, ``wte.weight`` -> ``tok_emb`` and ``out_head``
    (weight tying, as GPT-2); per block ``b``: ``h.{b}.attn.c_attn`` split in three
    along the last axis -> ``W_query``/``W_key``/``W_value`` (weights transposed:
    Conv1D stores ``(d_in, d_out)``), ``attn.c_proj`` -> ``out_proj``,
    ``mlp.c_fc`` -> ``ff.layers[0]``, ``mlp.c_proj`` -> ``ff.layers[2]`` (weights
    transposed), ``ln_1``/``ln_2`` weight/bias -> ``norm1``/``norm2`` scale/shift;
    ``ln_f`` -> ``final_norm``. Every tensor goes through ``assign``. Every shape
    is checked before anything is replaced, so on error the model is unchanged.
    Parameters are created on the CPU (where ``params`` are): load into a CPU
    model, then move it.

    Args:
        gpt: a GPTModel built with the file's size, e.g. ``GPTModel(gpt2_config("124M"))``.
        params: from ``load_gpt2_params``.
    Raises:
        ValueError: a missing tensor, a shape mismatch (``assign``'s message, with
            the names), a different number of blocks, or a model without qkv biases.
    """
    if gpt.trf_blocks[0].att.W_query.bias is None:
        raise ValueError("the model has no query/key/value biases but GPT-2 has: build it with qkv_bias=True")
    assignments = []
    try:
        for module, attribute, target, key, tensor in _gpt2_assignments(gpt, params):  # the first problem, in order
            left = getattr(module, attribute)
            if left.shape != tensor.shape:  # assign's check and message, before anything is replaced
                raise ValueError(f"Shape mismatch. Left: {left.shape}, Right: {tensor.shape} ({target} <- {key})")
            assignments.append((module, attribute, tensor))
    except KeyError as exc:
        raise ValueError(
            f"the weights lack {exc.args[0]}: expected GPT-2's layout (wte.weight, h.0.attn.c_attn.weight, ...)"
        ) from None
    file_blocks = {int(m.group(1)) for name in params if (m := re.match(r"h\.(\d+)\.", name))}
    if len(file_blocks) != len(gpt.trf_blocks):
        raise ValueError(
            f"the weights have {len(file_blocks)} transformer blocks, the model {len(gpt.trf_blocks)}: "
            "build it with the config of the weights' size (gpt2_config)"
        )
    for module, attribute, tensor in assignments:
        setattr(module, attribute, assign(getattr(module, attribute), tensor))


def load_pretrained_gpt2(model_size, models_dir="gpt2", weights_file=None, device="cpu", *, base_url=None):
    """OpenAI's GPT-2 as a GPTModel in eval mode, on ``device`` (section 5.5).

    Uses ``weights_file`` when given, else ``download_gpt2(model_size, models_dir)``
    (no request when the file is there). The model's random initialisation does
    not advance torch's global RNG (its weights are replaced anyway), so seed
    before or after loading alike.

    Raises:
        ValueError: an unknown size, or a file that is not safetensors or does not
            fit the size (naming the file and the first mismatch).
        FileNotFoundError: ``weights_file`` does not exist.
        DownloadError: see ``download_gpt2``.
    """
    from .model import GPTModel

    cfg = gpt2_config(model_size)
    path = Path(weights_file) if weights_file is not None else download_gpt2(model_size, models_dir, base_url=base_url)
    params = load_gpt2_params(path)
    with torch.random.fork_rng(devices=[]):
        gpt = GPTModel(cfg)
    try:
        load_weights_into_gpt(gpt, params)
    except ValueError as exc:
        raise ValueError(f"{path} does not fit {gpt2_model_name(model_size)}: {exc}") from None
    return gpt.to(device).eval()
