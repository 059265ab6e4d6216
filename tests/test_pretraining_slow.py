"""The full 10-epoch pretraining of the 124M model against the book (section 5.2).

About 15-20 minutes on 2 CPU cores, so it is marked slow:
``python -m pytest -m slow tests/test_pretraining_slow.py``.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_pretrain_124m_ten_epochs_matches_book(capsys, book_values):
    from reference.model import GPT_CONFIG_124M
    from reference.run import pretrain

    training = book_values["training"]
    _, _, result = pretrain(GPT_CONFIG_124M, num_epochs=training["num_epochs"], device="cpu")
    out = capsys.readouterr().out
    # split on "\n" only: a sample line may hold other characters str.splitlines() breaks on
    lines = out.split("\n")
    assert lines[-1] == ""  # every print ends with a newline
    lines = lines[:-1]

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
    expected_order = []
    for epoch in range(1, training["num_epochs"] + 1):
        expected_order += [l for l in training["log_lines"] if l.startswith(f"Ep {epoch} ")]
        expected_order.append(expected_samples[epoch - 1])
    assert lines == expected_order

    # Returned history: one entry per evaluation; tokens seen are exact integers.
    assert result.tokens_seen == training["tokens_seen"]
    assert len(result.train_losses) == len(result.val_losses) == len(training["log_lines"])
    printed = [
        f"Train loss {t:.3f}, Val loss {v:.3f}"
        for t, v in zip(result.train_losses, result.val_losses)
    ]
    assert printed == [line.split(": ", 1)[1] for line in training["log_lines"]]
