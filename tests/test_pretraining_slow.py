"""The full 10-epoch pretraining of the 124M model against the book (sections 5.2-5.4).

One 10-epoch run (about 15-20 minutes on 2 CPU cores) is shared by the tests of
this module; resuming it from its epoch-5 checkpoint trains 5 more epochs (about
8-10 minutes). Marked slow: ``python -m pytest -m slow tests/test_pretraining_slow.py``.
"""

from __future__ import annotations

import contextlib
import io
import shutil

import pytest
import torch


def _train(cfg, num_epochs, **kwargs):
    """``pretrain`` on CPU; returns ``(model, result, stdout)``."""
    from reference.run import pretrain

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model, _, result = pretrain(cfg, num_epochs=num_epochs, device="cpu", **kwargs)
    return model, result, out.getvalue()


def _lines(stdout):
    # split on "\n" only: a sample line may hold other characters str.splitlines() breaks on
    lines = stdout.split("\n")
    assert lines[-1] == ""  # every print ends with a newline
    return lines[:-1]


def run_with_checkpoint(cfg, num_epochs, checkpoint_epoch, folder):
    """The chapter's run, saving the run's checkpoint (as the CLI does) after ``checkpoint_epoch`` only."""
    from reference.run import CHECKPOINT_FILE, checkpoint_writer, run_settings

    settings = run_settings("124M", num_epochs, 123, 2, cfg["context_length"])
    write = checkpoint_writer(folder / CHECKPOINT_FILE, cfg, settings, "cpu")

    def at_checkpoint_epoch(model, optimizer, state):
        if state.epoch == checkpoint_epoch:
            write(model, optimizer, state)

    return _train(cfg, num_epochs, on_epoch_end=at_checkpoint_epoch)


def resume_from(folder, cfg, num_epochs):
    from reference.run import read_run_checkpoint

    return _train(cfg, num_epochs, resume=read_run_checkpoint(folder))


def lines_through_epoch(lines, epoch):
    """The printed lines up to and including the sample of ``epoch`` (each epoch ends with its sample)."""
    samples = [i for i, line in enumerate(lines) if not line.startswith("Ep ")]
    return lines[: samples[epoch - 1] + 1]


@pytest.fixture(scope="module")
def ten_epoch_run(tmp_path_factory, book_values):
    """The book's 10-epoch run of the 124M model, with its checkpoint after epoch 5 (~1.9 GB, removed after)."""
    from reference.model import GPT_CONFIG_124M

    folder = tmp_path_factory.mktemp("run-124m")
    model, result, out = run_with_checkpoint(GPT_CONFIG_124M, book_values["training"]["num_epochs"], 5, folder)
    yield model, result, out, folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_pretrain_124m_ten_epochs_matches_book(ten_epoch_run, book_values):
    _, result, out, _ = ten_epoch_run
    training = book_values["training"]
    lines = _lines(out)

    # The run prints, per epoch, its "Ep E (Step S): ..." lines, then one sample line.
    log_lines = [line for line in lines if line.startswith("Ep ")]
    samples = [line for line in lines if not line.startswith("Ep ")]

    # Log lines: compared exactly (the book prints 3 decimals; measured identical on CPU).
    assert log_lines == training["log_lines"]

    # Samples: compared exactly, each named on failure.
    expected_samples = training["samples_after_each_epoch"]
    assert len(samples) == len(expected_samples) == training["num_epochs"]
    differing = [
        f"epoch {i + 1}:\n  got      {got!r}\n  expected {want!r}"
        for i, (got, want) in enumerate(zip(samples, expected_samples))
        if got != want
    ]
    assert not differing, "samples that differ from the book:\n" + "\n".join(differing)

    # Order: each epoch's sample follows that epoch's log lines.
    assert lines == _book_order(training)

    # Returned history: one entry per evaluation; tokens seen are exact integers.
    assert result.tokens_seen == training["tokens_seen"]
    assert len(result.train_losses) == len(result.val_losses) == len(training["log_lines"])
    printed = [
        f"Train loss {t:.3f}, Val loss {v:.3f}"
        for t, v in zip(result.train_losses, result.val_losses)
    ]
    assert printed == [line.split(": ", 1)[1] for line in training["log_lines"]]


def _book_order(training):
    expected = []
    for epoch in range(1, training["num_epochs"] + 1):
        expected += [l for l in training["log_lines"] if l.startswith(f"Ep {epoch} ")]
        expected.append(training["samples_after_each_epoch"][epoch - 1])
    return expected


@pytest.mark.slow
def test_interrupted_after_epoch_5_and_resumed_matches_book(ten_epoch_run, book_values):
    """Section 5.4: the run stopped after epoch 5 and resumed from its checkpoint prints the book's lines."""
    from reference.model import GPT_CONFIG_124M

    model, result, out, folder = ten_epoch_run
    training = book_values["training"]
    resumed_model, resumed_result, resumed_out = resume_from(folder, GPT_CONFIG_124M, training["num_epochs"])
    lines = lines_through_epoch(_lines(out), 5) + _lines(resumed_out)
    assert [line for line in lines if line.startswith("Ep ")] == training["log_lines"]  # the 18 lines, exactly
    assert lines == _book_order(training)  # and the samples, in order
    assert resumed_result.train_losses == result.train_losses  # equal floats, not only 3 decimals
    assert resumed_result.val_losses == result.val_losses
    assert resumed_result.tokens_seen == result.tokens_seen
    for (name, a), b in zip(model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_texts_after_ten_epochs(ten_epoch_run, values_53_55):
    """Section 5.3: greedy, and top-k 25 at temperature 1.4 with seed 123, from the trained model on CPU."""
    from reference.data import get_tokenizer
    from reference.decoding import generate
    from reference.model import generate_text_simple
    from reference.pretraining import text_to_token_ids, token_ids_to_text

    model = ten_epoch_run[0].to("cpu").eval()
    expected = values_53_55["after_10_epoch_training"]
    tokenizer = get_tokenizer()
    idx = text_to_token_ids("Every effort moves you", tokenizer)

    greedy = generate_text_simple(model, idx, max_new_tokens=25, context_size=256)
    assert token_ids_to_text(greedy, tokenizer) == expected["greedy_generate_text_simple_25_tokens"]  # exact
    # exercise 5.3: generate with temperature 0 and no top-k is the same
    assert torch.equal(generate(model, idx, max_new_tokens=25, context_size=256), greedy)

    torch.manual_seed(123)
    sampled = generate(model, idx, max_new_tokens=15, context_size=256, top_k=25, temperature=1.4)
    assert token_ids_to_text(sampled, tokenizer) == expected["generate_seed_123_top_k_25_temperature_1.4_15_tokens"]
