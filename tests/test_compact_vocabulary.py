"""train_model_simple's scenarios train on a compact vocabulary (grader/checks/common.py).

GPT-2's tokenizer restricted to the tokens of the training text and start context, renumbered:
the model's vocabulary is 306 tokens instead of 50,257 (the output head, the embedding's gradient
and AdamW's update of both were most of the scenarios' time). What must hold: the tokenizer
encodes and decodes as GPT-2's does, the loaders hold the same batches in the same shuffled
order, any reasonable student loop still gets full marks, and code that asks the tokenizer for
something it lacks is told so in one line. The scenarios run in this process (no child), on
the frozen seeds, and are compared with the values regen froze.
"""

from __future__ import annotations

import pytest
import torch

from grader.checks import definition
from grader.checks.common import (START_CONTEXT, AttributeOfCompactTokenizer,
                                  TokenOutsideVocabulary, renumbered, verdict_loaders)
from grader.checks.train_model_simple.scenarios import TEXT_CHARS, training_tokenizer
from grader.child import run_scenarios
from grader.compare import run_comparator
from grader.context import load_expected
from grader.grading import scenario_output

ENDOFTEXT = "<|endoftext|>"


@pytest.fixture(scope="module")
def tokenizer(grading_ctx):
    return training_tokenizer(grading_ctx)


def test_it_encodes_and_decodes_the_training_text_as_gpt2_does(grading_ctx, tokenizer):
    gpt2 = grading_ctx.tokenizer
    text = grading_ctx.verdict_text[:TEXT_CHARS]
    assert tokenizer.n_vocab == 306  # measured: 305 distinct tokens in the text and start context, and the end token
    for sample in (text, START_CONTEXT):
        ids = tokenizer.encode(sample)
        assert len(ids) == len(gpt2.encode(sample)) and all(0 <= i < tokenizer.n_vocab for i in ids)
        assert tokenizer.decode(ids) == sample
    assert tokenizer.decode(list(range(tokenizer.n_vocab))) == gpt2.decode(tokenizer._gpt2_ids)  # every id decodes
    # the end token is the last id, as in GPT-2; tiktoken's own rules for special tokens hold
    assert tokenizer.encode(ENDOFTEXT, allowed_special={ENDOFTEXT}) == [tokenizer.n_vocab - 1]
    with pytest.raises(ValueError, match="disallowed special token"):
        tokenizer.encode(ENDOFTEXT)


def test_what_it_lacks_is_said_in_one_line(tokenizer):
    cases = [(TokenOutsideVocabulary, "outside the vocabulary", lambda: tokenizer.encode("quantum zebras")),
             (TokenOutsideVocabulary, "got id 306", lambda: tokenizer.decode([306])),
             (TokenOutsideVocabulary, "got id -1", lambda: tokenizer.decode([-1])),
             (AttributeOfCompactTokenizer, "no attribute 'eot_token'", lambda: tokenizer.eot_token)]
    for kind, says, call in cases:
        with pytest.raises(kind, match=says) as info:
            call()
        assert "compact vocabulary" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(AttributeOfCompactTokenizer("x"), AttributeError)  # hasattr and getattr(..., default) work
    with pytest.raises(TypeError, match="Sequence"):  # tiktoken refuses a tensor: so does the compact one
        tokenizer.decode(torch.tensor([1, 2]))


def test_the_loaders_keep_the_batches_and_their_shuffled_order(grading_ctx, tokenizer):
    """The same batches, mapped back to GPT-2's ids, in the same order, drawing the same random numbers."""
    loaders = verdict_loaders(grading_ctx, context_length=32, chars=TEXT_CHARS)
    gpt2_ids = torch.tensor(tokenizer._gpt2_ids)
    for loader in loaders:
        compact = renumbered(loader, tokenizer)
        assert (len(compact), compact.batch_size, compact.drop_last) == (len(loader), loader.batch_size,
                                                                          loader.drop_last)
        torch.manual_seed(51)
        original = [batch for _ in range(2) for batch in loader]
        after_original = torch.rand(3)
        torch.manual_seed(51)
        mapped = [(gpt2_ids[x], gpt2_ids[y]) for _ in range(2) for x, y in compact]
        assert torch.equal(torch.rand(3), after_original)
        assert len(mapped) == len(original)
        assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(original, mapped))
    train = renumbered(loaders[0], tokenizer)
    torch.manual_seed(1)
    first = next(iter(train))[0]
    torch.manual_seed(2)
    assert not torch.equal(next(iter(train))[0], first)  # the training loader still shuffles


# Written out, its imports inside the function: a module-level `from reference import ...` in a bare exec
# namespace would keep the kit's functions referenced from this process's garbage, which the grading
# children forked later by other tests refuse to run with (answers.AnswerStillReachable).
OWN_SAMPLE_LOOP = '''
def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    """The book's loop, its sample printed with the tokenizer's encode and decode directly."""
    import torch
    from reference import calc_loss_batch, evaluate_model, generate_text_simple

    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, global_step = 0, -1
    for epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()
            global_step += 1
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(f"Ep {epoch+1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")
        model.eval()
        idx = torch.tensor([tokenizer.encode(start_context, allowed_special={"<|endoftext|>"})], device=device)
        ids = generate_text_simple(model, idx, max_new_tokens=50, context_size=model.pos_emb.weight.shape[0])
        print(tokenizer.decode(ids[0].tolist()).replace("\\n", " "))
        model.train()
    return train_losses, val_losses, track_tokens_seen
'''


def student_loop(source: str, old: str = "", new: str = ""):
    assert old in source
    namespace = {}
    exec(compile(source.replace(old, new), "student.py", "exec"), namespace)
    return namespace["train_model_simple"]


def failed_checks(outputs) -> dict:
    """check id -> message of each check the outputs fail against the frozen reference values."""
    expected = load_expected("train_model_simple")
    failed = {}
    for check in definition("train_model_simple")["checks"]:
        message = run_comparator(check, scenario_output(outputs, check), scenario_output(expected["reference"], check))
        if message:
            failed[check["id"]] = message
    return failed


def test_a_loop_that_encodes_and_decodes_itself_gets_full_marks(grading_ctx):
    outputs = run_scenarios("train_model_simple", student_loop(OWN_SAMPLE_LOOP), grading_ctx)
    assert failed_checks(outputs) == {}
    assert outputs["tiny_2_epochs"]["num_samples"] == 2  # the samples were read as such


@pytest.mark.parametrize("old, new, kind, says", [
    # a loop that asks the tokenizer for an attribute tiktoken has and the compact one lacks
    ("        model.eval()\n", "        model.eval()\n        print(tokenizer.name)\n",
     "AttributeOfCompactTokenizer", "no attribute 'name'"),
    # a loop that encodes with GPT-2's own tokenizer: ids beyond the model's vocabulary
    ("        idx = torch.tensor([tokenizer.encode(", "        from reference import get_tokenizer\n"
     "        idx = torch.tensor([get_tokenizer().encode(", "TokenOutsideVocabulary", "the tokenizer argument"),
])
def test_a_loop_that_needs_more_of_the_tokenizer_fails_saying_so(grading_ctx, old, new, kind, says):
    outputs = run_scenarios("train_model_simple", student_loop(OWN_SAMPLE_LOOP, old, new), grading_ctx,
                            names=("tiny_from_eval_mode",))
    error = outputs["tiny_from_eval_mode"]
    assert error["__error__"] == kind, error
    assert says in error["message"] and "compact vocabulary" in error["message"]
    assert "(at line " in error["message"]  # the student's line, as for any error of theirs
    assert "\n" not in error["message"].split(" (at line ")[0]
