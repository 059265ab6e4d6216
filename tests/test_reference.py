"""Tests of the reference implementation against the numbers printed in chapter 5.

Every asserted number comes from tests/data/chapter5-book-values.json or was
measured on CPU with torch 2.13 (noted beside it), with its tolerance stated.
Nothing here uses the network.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reference import data as ref_data
from reference.data import DataFileError, get_tokenizer, load_text
from reference.model import generate_text_simple
from reference.pretraining import (
    calc_loss_loader,
    evaluate_model,
    manual_cross_entropy,
    perplexity,
    plot_losses,
    text_to_token_ids,
    token_ids_to_text,
)
from reference.run import make_loaders

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A copy of data/ that reference.data reads instead of the real one."""
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    monkeypatch.setattr(ref_data, "DATA_DIR", copy)
    monkeypatch.setattr(ref_data, "expected_checksums", ref_data.expected_checksums.__wrapped__)
    return copy


TOKENIZER_STRINGS = [
    "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace.",
    "Every effort moves you",
    "<|endoftext|>",
    "  leading spaces, tabs\tand\nnewlines; digits 12345 and émigré ünïcode 日本語 🙂",
]


# --------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def tiktoken_gpt2():
    """tiktoken's own "gpt2" encoding (tiktoken_ext.openai_public.gpt2), fed the local files.

    tiktoken.get_encoding("gpt2") would download the two files; here its file
    reader is replaced, while building, by one that serves data/gpt2/ and checks
    the hash tiktoken itself expects, so the encoding is built by tiktoken's
    code, not the kit's.
    """
    import tiktoken
    import tiktoken.load
    from tiktoken_ext.openai_public import gpt2

    def read_local(blobpath, expected_hash=None):
        contents = (DATA / "gpt2" / blobpath.rsplit("/", 1)[-1]).read_bytes()
        assert hashlib.sha256(contents).hexdigest() == expected_hash
        return contents

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tiktoken.load, "read_file_cached", read_local)
        return tiktoken.Encoding(**gpt2())


def test_tokenizer_equals_tiktoken_gpt2(tiktoken_gpt2):
    tokenizer = get_tokenizer()
    assert tokenizer.n_vocab == tiktoken_gpt2.n_vocab == 50257
    for text in TOKENIZER_STRINGS:
        ids = tokenizer.encode(text, allowed_special={"<|endoftext|>"})
        assert ids == tiktoken_gpt2.encode(text, allowed_special={"<|endoftext|>"}), text
        assert tokenizer.decode(ids) == text
    assert tokenizer.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [50256]
    # special token text is refused unless allowed, as with tiktoken
    with pytest.raises(ValueError):
        tokenizer.encode("<|endoftext|>")


def test_tokenizer_book_ids(book_values):
    u = book_values["untrained"]
    tokenizer = get_tokenizer()
    # the book's inputs "every effort moves" / "I really like" and targets shifted by one
    for row_in, row_tgt, text in zip(
        u["inputs"], u["targets"], ["every effort moves you", "I really like chocolate"]
    ):
        assert tokenizer.encode(text) == row_in + row_tgt[-1:]
    ids = text_to_token_ids(u["start_context"], tokenizer)
    assert ids.shape == (1, 4) and ids.dtype == torch.int64
    assert token_ids_to_text(ids, tokenizer) == u["start_context"]


def test_tokenizer_rejects_changed_file(data_copy):
    build = ref_data.get_tokenizer.__wrapped__  # uncached, so the copy is read
    assert build().n_vocab == 50257  # the unchanged copy is accepted
    with open(data_copy / "gpt2" / "encoder.json", "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(DataFileError, match=r"encoder\.json was changed"):
        build()


# --------------------------------------------------------------------------- load_text


def test_load_text_counts(book_values):
    text = load_text()
    assert len(text) == book_values["data"]["characters"]  # 20479
    tokens = get_tokenizer().encode(text)
    assert len(tokens) == book_values["data"]["tokens"]  # 5145


def test_load_text_changed_file_raises(data_copy):
    assert len(load_text()) == 20479  # the unchanged copy is read
    verdict = data_copy / "the-verdict.txt"
    verdict.write_text(verdict.read_text(encoding="utf-8") + "x", encoding="utf-8")
    with pytest.raises(DataFileError) as excinfo:
        load_text()
    message = str(excinfo.value)
    assert str(verdict) in message
    assert "changed" in message and "SHA256SUMS" in message
    assert "git checkout -- data/" in message  # says how to repair it
    assert "\n" not in message


def test_load_text_missing_shipped_file_raises(data_copy):
    (data_copy / "the-verdict.txt").unlink()
    with pytest.raises(DataFileError, match=r"missing data file .*the-verdict\.txt"):
        load_text()


def test_load_text_missing_path_without_url(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match=r"nope\.txt does not exist"):
        load_text(path=missing, url=None)


def test_load_text_failed_download_names_path(tmp_path, monkeypatch):
    import requests

    calls = []

    def fail(url, timeout=None, **kwargs):
        calls.append(url)
        raise requests.ConnectionError("no network in tests")

    monkeypatch.setattr(requests, "get", fail)
    missing = tmp_path / "sub" / "verdict.txt"
    with pytest.raises(FileNotFoundError) as excinfo:
        load_text(path=missing, url="https://example.invalid/the-verdict.txt")
    assert calls == ["https://example.invalid/the-verdict.txt"]
    assert str(missing) in str(excinfo.value)
    assert not missing.exists()


def test_load_text_download_saves_file(tmp_path, monkeypatch):
    import requests

    class FakeResponse:
        content = "I HAD always thought Jack Gisburn\n".encode("utf-8")

        def raise_for_status(self):
            pass

    monkeypatch.setattr(requests, "get", lambda url, timeout=None, **kw: FakeResponse())
    target = tmp_path / "sub" / "verdict.txt"
    assert load_text(path=target, url="https://example.invalid/t.txt") == "I HAD always thought Jack Gisburn\n"
    assert target.read_text(encoding="utf-8") == "I HAD always thought Jack Gisburn\n"
    assert load_text(path=target) == "I HAD always thought Jack Gisburn\n"  # now read locally


# --------------------------------------------------------------------------- untrained 124M model


def test_parameter_count(model_124m):
    # measured: 162,419,712 (GPT_CONFIG_124M with context_length 256, untied output head)
    assert sum(p.numel() for p in model_124m.parameters()) == 162_419_712


def test_untrained_greedy_continuation(model_124m, book_values):
    u = book_values["untrained"]
    tokenizer = get_tokenizer()
    idx = text_to_token_ids(u["start_context"], tokenizer)
    out = generate_text_simple(model_124m, idx, max_new_tokens=10, context_size=256)
    assert out.shape == (1, 14)
    assert token_ids_to_text(out, tokenizer) == u["greedy_10_tokens"]  # exact string


@pytest.fixture(scope="module")
def untrained_logits(model_124m, book_values):
    u = book_values["untrained"]
    inputs = torch.tensor(u["inputs"])
    with torch.no_grad():
        logits = model_124m(inputs)
    return logits, torch.tensor(u["targets"])


def test_untrained_argmax_and_target_probas(untrained_logits, book_values):
    u = book_values["untrained"]
    logits, targets = untrained_logits
    probas = torch.softmax(logits, dim=-1)
    assert list(probas.shape) == u["probas_shape"]  # [2, 3, 50257]
    token_ids = torch.argmax(probas, dim=-1)
    assert token_ids.tolist() == u["argmax_ids"]  # exact ids
    assert token_ids_to_text(token_ids[0:1], get_tokenizer()) == u["outputs_batch_1_text"]

    target_probas = torch.gather(probas, -1, targets.unsqueeze(-1)).squeeze(-1)
    # printed to 5 significant digits (rounding error <= 5e-5 relative); measured
    # e.g. 7.454045e-05 vs printed 7.4541e-05. rtol 1e-3 allows other CPUs' BLAS.
    torch.testing.assert_close(target_probas[0], torch.tensor(u["target_probas_text_1"]), rtol=1e-3, atol=0)
    torch.testing.assert_close(target_probas[1], torch.tensor(u["target_probas_text_2"]), rtol=1e-3, atol=0)
    # printed to 4 decimals; measured e.g. -9.504169 vs -9.5042: atol 1e-4
    torch.testing.assert_close(
        torch.log(target_probas).flatten(), torch.tensor(u["log_probas"]), atol=1e-4, rtol=0
    )


def test_untrained_cross_entropy_and_perplexity(untrained_logits, book_values):
    u = book_values["untrained"]
    logits, targets = untrained_logits
    manual = manual_cross_entropy(logits, targets)
    builtin = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert manual.dim() == 0
    # measured 10.793964 (manual) and 10.793965 (F.cross_entropy); printed 10.7940: atol 1e-4
    torch.testing.assert_close(manual, builtin, atol=1e-5, rtol=0)
    torch.testing.assert_close(manual, torch.tensor(u["loss"]), atol=1e-4, rtol=0)
    torch.testing.assert_close(-manual, torch.tensor(u["avg_log_proba"]), atol=1e-4, rtol=0)
    # measured 48725.8203 from the manual loss, 48725.8672 from F.cross_entropy: rtol 1e-4
    ppl = perplexity(manual)
    assert ppl.dim() == 0
    torch.testing.assert_close(ppl, torch.tensor(u["perplexity"]), rtol=1e-4, atol=0)
    torch.testing.assert_close(perplexity(builtin), torch.tensor(u["perplexity"]), rtol=1e-4, atol=0)
    torch.testing.assert_close(perplexity(2.0), torch.tensor(math.exp(2.0)), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- data and initial losses


@pytest.fixture(scope="module")
def verdict_loaders():
    torch.manual_seed(123)
    return make_loaders(load_text(), 256, 2)


def test_loaders_split_and_shapes(verdict_loaders, book_values):
    d = book_values["data"]
    text = load_text()
    split_idx = int(d["train_ratio"] * len(text))
    assert split_idx == 18431  # 90% of 20479 characters, by characters
    train_loader, val_loader = verdict_loaders
    assert len(train_loader) == d["train_batches"]  # 9
    assert len(val_loader) == d["val_batches"]  # 1
    for loader in (train_loader, val_loader):
        for x, y in loader:
            assert list(x.shape) == list(y.shape) == d["batch_shape"]  # [2, 256]
            assert x.dtype == y.dtype == torch.int64
            assert torch.equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one
    train_tokens = sum(x.numel() for x, _ in train_loader)
    val_tokens = sum(x.numel() for x, _ in val_loader)
    assert train_tokens == d["train_tokens"]  # 4608
    assert val_tokens == d["val_tokens"]  # 512
    # the validation chunk is the start of the validation text, unshuffled
    tokenizer = get_tokenizer()
    val_ids = tokenizer.encode(text[split_idx:])
    x, _ = next(iter(val_loader))
    assert x[0].tolist() == val_ids[:256] and x[1].tolist() == val_ids[256:512]


@pytest.mark.slow  # 23-30 s of 124M forwards; the frozen values (tests/test_expected.py) hold the same book numbers
def test_initial_losses(verdict_loaders, model_124m, book_values):
    d = book_values["data"]
    train_loader, val_loader = verdict_loaders
    torch.manual_seed(123)  # as in the book (the order of training batches does not change the mean)
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model_124m, "cpu")
        val_loss = calc_loss_loader(val_loader, model_124m, "cpu")
    assert isinstance(train_loss, float) and isinstance(val_loss, float)
    # book: 10.98758347829183 and 10.98110580444336, measured equal to ~1e-6 on CPU: atol 1e-4
    assert train_loss == pytest.approx(d["initial_train_loss"], abs=1e-4, rel=0)
    assert val_loss == pytest.approx(d["initial_val_loss"], abs=1e-4, rel=0)


# --------------------------------------------------------------------------- calc_loss_loader, evaluate_model


class _ClassZeroLogit(torch.nn.Module):
    """Toy model over 4 classes: logits [x, 0, 0, 0] for input value x; records its modes."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        logits = torch.zeros(*x.shape, 4)
        logits[..., 0] = x.float()
        return logits


def _batch(value):
    """One (inputs, targets) batch of shape (2, 3); its loss is log(e^value + 3) - value."""
    return torch.full((2, 3), value), torch.zeros(2, 3, dtype=torch.int64)


def _loss(value):
    return math.log(math.exp(value) + 3) - value


def test_calc_loss_loader_empty_is_nan():
    empty = torch.utils.data.DataLoader([], batch_size=1)
    assert len(empty) == 0
    assert math.isnan(calc_loss_loader(empty, _ClassZeroLogit(), "cpu"))
    assert math.isnan(calc_loss_loader(empty, _ClassZeroLogit(), "cpu", num_batches=3))


def test_calc_loss_loader_num_batches():
    loader = [_batch(0), _batch(1), _batch(2)]
    model = _ClassZeroLogit()
    # exact formula values; float32 arithmetic: rel 1e-6
    all_three = (_loss(0) + _loss(1) + _loss(2)) / 3
    assert calc_loss_loader(loader, model, "cpu") == pytest.approx(all_three, rel=1e-6)
    assert calc_loss_loader(loader, model, "cpu", num_batches=2) == pytest.approx(
        (_loss(0) + _loss(1)) / 2, rel=1e-6
    )
    model.modes.clear()
    # clamped: 10 batches asked, 3 used and averaged over 3
    assert calc_loss_loader(loader, model, "cpu", num_batches=10) == pytest.approx(all_three, rel=1e-6)
    assert len(model.modes) == 3


def test_evaluate_model_uses_eval_mode_and_restores_train_mode():
    model = _ClassZeroLogit().train()
    train_loader = [_batch(0), _batch(1), _batch(2)]
    val_loader = [_batch(3)]
    train_loss, val_loss = evaluate_model(model, train_loader, val_loader, "cpu", eval_iter=2)
    assert model.modes == [False, False, False]  # 2 train + 1 val batches, all in eval mode
    assert model.training is True
    assert train_loss == pytest.approx((_loss(0) + _loss(1)) / 2, rel=1e-6)
    assert val_loss == pytest.approx(_loss(3), rel=1e-6)

    model.eval()  # also from eval mode it leaves the model in training mode, as in the book
    evaluate_model(model, train_loader, val_loader, "cpu", eval_iter=1)
    assert model.training is True


def test_evaluate_model_without_gradients():
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.grad_enabled = []
            self.w = torch.nn.Parameter(torch.zeros(4))

        def forward(self, x):
            self.grad_enabled.append(torch.is_grad_enabled())
            return torch.zeros(*x.shape, 4) + self.w

    model = Probe()
    evaluate_model(model, [_batch(0)], [_batch(1)], "cpu", eval_iter=1)
    assert model.grad_enabled == [False, False]


# --------------------------------------------------------------------------- plot_losses


def test_plot_losses_figure(book_values):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    tokens_seen = book_values["training"]["tokens_seen"]
    n = len(tokens_seen)
    train_losses = [10.0 - 0.5 * i for i in range(n)]
    val_losses = [10.0 - 0.2 * i for i in range(n)]
    fig = plot_losses(torch.linspace(0, 10, n), tokens_seen, train_losses, val_losses)
    try:
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 2
        ax1, ax2 = fig.axes
        assert ax1.get_xlabel() == "Epochs"
        assert ax1.get_ylabel() == "Loss"
        assert ax2.get_xlabel() == "Tokens seen"
        lines = ax1.get_lines()
        assert len(lines) == 2
        assert list(lines[0].get_ydata()) == train_losses
        assert list(lines[1].get_ydata()) == val_losses
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- the CLI


def _cli(*args, timeout=600):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "reference", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def _one_line_error(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("python -m reference: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_cli_small_run_and_no_overwrite(tmp_path):
    out = tmp_path / "out"
    run = _cli("--model", "small", "--epochs", "1", "--device", "cpu", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    names = ("loss-plot.pdf", "loss-plot.png", "model_and_optimizer.pth")
    for name in names:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "loss-plot.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "loss-plot.png").read_bytes().startswith(b"\x89PNG")
    checkpoint = torch.load(out / "model_and_optimizer.pth", map_location="cpu", weights_only=True)
    assert "model_state_dict" in checkpoint and "optimizer_state_dict" in checkpoint
    assert checkpoint["model_state_dict"]["tok_emb.weight"].shape == (50257, 64)  # the small model
    assert checkpoint["optimizer_state_dict"]["state"]  # AdamW took steps
    # 9 steps, evaluated at steps 0 and 5, then one sample
    stdout_lines = run.stdout.split("\n")
    assert [line[:20] for line in stdout_lines[:2]] == ["Ep 1 (Step 000000): ", "Ep 1 (Step 000005): "]
    assert stdout_lines[2].startswith("Every effort moves you")

    before = {name: ((out / name).stat().st_mtime_ns, (out / name).read_bytes()) for name in names}
    again = _cli("--model", "small", "--epochs", "1", "--device", "cpu", "--out", str(out))
    assert again.returncode == 2
    line = _one_line_error(again.stderr)
    assert "--overwrite" in line
    assert again.stdout == ""
    after = {name: ((out / name).stat().st_mtime_ns, (out / name).read_bytes()) for name in names}
    assert after == before


def test_cli_context_length_too_long(tmp_path):
    run = _cli("--model", "small", "--context-length", "4096", "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    line = _one_line_error(run.stderr)
    assert "--context-length 4096" in line
    assert not (tmp_path / "out").exists()


def test_cli_rejects_zero_epochs(tmp_path):
    run = _cli("--model", "small", "--epochs", "0", "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    line = _one_line_error(run.stderr)
    assert "--epochs must be at least 1" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--batch-size", "--context-length"])
def test_main_rejects_zero(tmp_path, capsys, option):
    """The same checks in-process (reference.run.main), sparing a subprocess each."""
    from reference.run import main

    assert main(["--model", "small", option, "0", "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    line = _one_line_error(captured.err)
    assert f"{option} must be at least 1" in line
    assert captured.out == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_124m_one_epoch_matches_book(tmp_path, book_values):
    """The book's model for one epoch on CPU: the first two log lines and the first sample.

    Slow: measured 259-416 s wall on the 2-core machine (229 s of CPU time in
    one run), over the 2.5 min budget of the default run.
    """
    training = book_values["training"]
    out = tmp_path / "out"
    try:
        run = _cli("--epochs", "1", "--device", "cpu", "--out", str(out))
        assert run.returncode == 0, run.stderr
        assert (out / "model_and_optimizer.pth").is_file()
    finally:
        shutil.rmtree(out, ignore_errors=True)  # the checkpoint is ~1.9 GB
    lines = run.stdout.split("\n")
    # printed to 3 decimals, compared exactly (measured identical on CPU)
    assert lines[:2] == [
        "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933",
        "Ep 1 (Step 000005): Train loss 8.111, Val loss 8.339",
    ]
    assert lines[:2] == training["log_lines"][:2]
    assert lines[2] == training["samples_after_each_epoch"][0]  # exact sample string
    assert lines[3:] == [""]
