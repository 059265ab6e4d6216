"""Scenarios of train_model_simple (section 5.2): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import re

import torch

from ..common import (START_CONTEXT, CompactTokenizer, MoveRecorder, PlainSGD, TokenOutsideVocabulary,
                      capture_stdout, random_loader, renumbered, tiny_model, verdict_loaders)

# What the printed lines are, by what they look like: the log line of each evaluation starts
# "Ep 1 (Step 000000): " (the log check compares the rest), the sample after each epoch starts
# with the start context. Anything else a student prints (a debug line) is neither and costs
# nothing; the first few such lines are kept to show when the log lines are missing.
LOG_LINE = re.compile(r"^Ep \d+ \(Step \d+\): ")
IGNORED_KEPT = 3


def read_printed(printed, start_context=START_CONTEXT) -> dict:
    """``{"log": {"lines": [...], "ignored": [...]}, "num_samples": n}`` of the printed lines."""
    lines = [line for line in printed if LOG_LINE.match(line)]
    samples = [line for line in printed if line.startswith(start_context) and not LOG_LINE.match(line)]
    ignored = [line for line in printed if line.strip() and line not in lines and line not in samples]
    return {"log": {"lines": lines, "ignored": ignored[:IGNORED_KEPT]}, "num_samples": len(samples)}


# PlainSGD's learning rate, measured (the 5 known mistakes and loops that never step, step twice or
# build their own AdamW): the closest one's losses differ from the reference's by >= 90x the checks'
# tolerance (0.5: 48x, 1.5: 144x; AdamW at lr 0.004 gave 82x); above 1.0 the loop without
# zero_grad() nears divergence (at 1.5 it turns 1e-6 of float noise into 0.08x the tolerance, at
# 1.0 into 0.0035x; at 2.0 it diverges) and the reference's losses stop falling smoothly.
LEARNING_RATE = 1.0

TEXT_CHARS = 2400  # the first characters of The Verdict: 598 tokens, 305 distinct (306 with <|endoftext|>)


def training_tokenizer(ctx) -> CompactTokenizer:
    """GPT-2's tokenizer restricted to the tokens of the training text and the start context:
    the model's vocabulary is those 306 tokens, not 50,257 (whose output head, embedding gradient
    and AdamW update were most of the run; the loop under test is the same)."""
    return CompactTokenizer(ctx.tokenizer, [ctx.verdict_text[:TEXT_CHARS], START_CONTEXT])


def training_optimizer(model) -> PlainSGD:
    """The optimizer the loop gets: plain SGD, not torch.optim (whose first use imports torch._dynamo,
    ~2.5 s; common.PlainSGD). The loop under test calls only zero_grad() and step()."""
    return PlainSGD(model.parameters(), lr=LEARNING_RATE)


def _run(fn, model, train_loader, val_loader, optimizer, ctx, num_epochs, eval_freq, eval_iter, tokenizer):
    """The student's loop, its prints captured; a token id beyond the compact vocabulary (text
    encoded with another tokenizer than the argument) is said as such, at the student's line."""
    try:
        return capture_stdout(lambda: fn(model, train_loader, val_loader, optimizer, ctx.device, num_epochs,
                                         eval_freq, eval_iter, START_CONTEXT, tokenizer))
    except IndexError as exc:
        if "index out of range in self" not in str(exc):  # the embedding's message
            raise
        raise TokenOutsideVocabulary(
            f"the model got a token id beyond its vocabulary ({exc}): the grader trains on a compact vocabulary "
            f"here, the {tokenizer.n_vocab} tokens of the tokenizer argument: encode with it, not another tokenizer"
        ).with_traceback(exc.__traceback__) from None  # the student's frames, for the line it names


def _train(fn, ctx, seed, num_epochs, eval_freq, eval_iter, start_in_eval_mode=False):
    tokenizer = training_tokenizer(ctx)
    # one layer: the 50-token sample after each epoch is most of the forward passes, each mostly
    # Python's overhead per module; a second layer took ~1.7x the time and tests nothing of the loop
    model = tiny_model(ctx, seed=seed, vocab_size=tokenizer.n_vocab, context_length=32, n_layers=1,
                       drop_rate=0.1)
    loaders = verdict_loaders(ctx, context_length=32, chars=TEXT_CHARS)
    train_loader, val_loader = (renumbered(loader, tokenizer) for loader in loaders)
    optimizer = training_optimizer(model)
    if start_in_eval_mode:
        model.eval()  # as after an evaluation: training must switch dropout back on
    torch.manual_seed(seed)
    result, printed = _run(fn, model, train_loader, val_loader, optimizer, ctx, num_epochs, eval_freq, eval_iter,
                           tokenizer)
    return {"result": result, **read_printed(printed)}


def scenario_tiny_2_epochs(fn, ctx):
    return _train(fn, ctx, seed=ctx.seed(51), num_epochs=2, eval_freq=3, eval_iter=2)


def scenario_tiny_from_eval_mode(fn, ctx):
    return _train(fn, ctx, seed=ctx.seed(52), num_epochs=1, eval_freq=2, eval_iter=1, start_in_eval_mode=True)


def scenario_device(fn, ctx):
    """The batches of both loaders are moved to the device before they are used (one short epoch)."""
    tokenizer = training_tokenizer(ctx)  # the sample after the epoch decodes any id of the model's
    vocab_size = tokenizer.n_vocab
    model = tiny_model(ctx, seed=ctx.seed(53), vocab_size=vocab_size, n_layers=1)
    optimizer = training_optimizer(model)
    recorder = MoveRecorder(ctx.device)
    train_loader = recorder.loader("train_loader", random_loader(ctx.seed(54), 2, vocab_size=vocab_size))
    val_loader = recorder.loader("val_loader", random_loader(ctx.seed(55), 1, vocab_size=vocab_size))
    _run(fn, model, train_loader, val_loader, optimizer, ctx, 1, 1, 1, tokenizer)
    return {"not_moved": recorder.not_moved()}
