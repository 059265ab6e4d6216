"""Section 5.3: temperature, top-k and ``generate``, against the book's printed values.

The values are in tests/data/chapter5-sections-5.3-5.5-values.json (measured on
CPU with torch 2.13, equal to the book's); tolerances are stated beside each
comparison. Nothing here uses the network.
"""

from __future__ import annotations

import pytest
import torch

from reference.data import get_tokenizer
from reference.decoding import (
    _keep_top_k,
    generate,
    inverse_vocab,
    next_token_logits,
    print_sampled_tokens,
    sample_token_frequencies,
    softmax_with_temperature,
    vocab,
)
from reference.model import GPTModel, generate_text_simple
from reference.pretraining import text_to_token_ids, token_ids_to_text

SMALL = {"vocab_size": 97, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
         "drop_rate": 0.1, "qkv_bias": True}


@pytest.fixture(scope="module")
def toy(values_53_55):
    return values_53_55["toy_vocab"]


@pytest.fixture(scope="module")
def small_model():
    """A seeded small GPTModel in eval mode, vocabulary 97, context 8."""
    torch.manual_seed(1)
    return GPTModel(SMALL).eval()


def _prompt(b=1, n=11, seed=5):
    """LongTensor (b, n) of ids < 97; n > context 8, so generate has to crop."""
    return torch.randint(0, 97, (b, n), generator=torch.Generator().manual_seed(seed))


class NextIsLastPlusOne(torch.nn.Module):
    """Fake model over ``vocab_size`` tokens: the next token is (last token + 1) mod vocab_size.

    Logits are 1 for that token and 0 elsewhere (ties never arise in the argmax).
    Records the number of tokens it is given and whether gradients were enabled.
    """

    def __init__(self, vocab_size=10):
        super().__init__()
        self.vocab_size = vocab_size
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # so generate finds the model's device
        self.seen_lengths, self.grad_enabled = [], []

    def forward(self, idx):
        self.seen_lengths.append(idx.shape[1])
        self.grad_enabled.append(torch.is_grad_enabled())
        nxt = (idx + 1) % self.vocab_size  # (b, num_tokens)
        return torch.nn.functional.one_hot(nxt, self.vocab_size).float() + self.anchor


class FixedLogits(torch.nn.Module):
    """Fake model whose last-position logits are always ``logits`` (vocab_size,), for every row."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone(), requires_grad=False)

    def forward(self, idx):
        b, n = idx.shape
        return self.logits.expand(b, n, -1)


def book_generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """The book's listing 5.4 for one row (b = 1), as printed (with ``top_logits[:, -1]``)."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]
        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)
        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if idx_next == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


# --------------------------------------------------------------------------- the toy vocabulary (5.3.1)


def test_toy_constants(toy):
    assert vocab == toy["vocab"]
    assert inverse_vocab == {i: w for w, i in toy["vocab"].items()}
    assert next_token_logits.dtype == torch.float32 and next_token_logits.shape == (9,)
    assert torch.equal(next_token_logits, torch.tensor(toy["next_token_logits"]))  # same float32 values


def test_argmax_and_one_sample(toy):
    probas = torch.softmax(next_token_logits, dim=0)
    assert inverse_vocab[torch.argmax(probas).item()] == toy["argmax_token"]  # "forward"
    torch.manual_seed(123)
    assert inverse_vocab[torch.multinomial(probas, num_samples=1).item()] == toy["seed_123_one_multinomial_sample"]


@pytest.mark.parametrize("temperature", [1, 0.1, 5])
def test_sampled_frequencies(toy, temperature):
    expected = toy["sampled_1000_frequencies_seed_123"][f"temperature_{temperature}"]
    counts = sample_token_frequencies(softmax_with_temperature(next_token_logits, temperature))
    assert counts.dtype == torch.int64 and counts.shape == (9,)
    assert counts.tolist() == expected  # exact counts
    # another seed draws other counts: the seed is used
    assert sample_token_frequencies(softmax_with_temperature(next_token_logits, 5), seed=7).tolist() != \
        toy["sampled_1000_frequencies_seed_123"]["temperature_5"]


def test_print_sampled_tokens(toy, capsys):
    print_sampled_tokens(softmax_with_temperature(next_token_logits, 1))
    counts = toy["sampled_1000_frequencies_seed_123"]["temperature_1"]
    words = sorted(toy["vocab"], key=toy["vocab"].get)
    assert capsys.readouterr().out == "".join(f"{c} x {w}\n" for c, w in zip(counts, words))
    with pytest.raises(ValueError, match="inverse_vocab"):
        print_sampled_tokens(torch.full((5,), 0.2))


def test_softmax_with_temperature(toy):
    probas = softmax_with_temperature(next_token_logits, 5)
    # exercise 5.1: printed to 4 decimals (measured 0.042998): abs 5e-5
    assert probas[vocab["pizza"]].item() == pytest.approx(toy["exercise_5_1_pizza_probability_temperature_5"], abs=5e-5)
    torch.testing.assert_close(softmax_with_temperature(next_token_logits, 1), torch.softmax(next_token_logits, 0),
                               rtol=0, atol=0)
    batch = softmax_with_temperature(next_token_logits.expand(3, 9), 0.5)  # softmax over the last dimension
    torch.testing.assert_close(batch.sum(-1), torch.ones(3), rtol=0, atol=1e-6)  # float32 sums
    for bad in (0, 0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"temperature=0\.0"):
            softmax_with_temperature(next_token_logits, bad)


def test_top_k_3(toy):
    k3 = toy["top_k_3"]
    top_logits, top_pos = torch.topk(next_token_logits, 3)
    torch.testing.assert_close(top_logits, torch.tensor(k3["top_logits"]), rtol=0, atol=0)  # the same float32 values
    assert top_pos.tolist() == k3["top_positions"]
    masked = _keep_top_k(next_token_logits.unsqueeze(0), 3)[0]
    expected = torch.tensor([float(v) for v in k3["masked_logits"]])  # "-inf" -> -inf
    assert torch.equal(masked, expected)
    # printed to 4 decimals (measured 0.061485, 0.577547, 0.360968): atol 5e-5
    torch.testing.assert_close(torch.softmax(masked, dim=0), torch.tensor(k3["probas"]), rtol=0, atol=5e-5)


def test_top_k_keeps_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.0]])
    # the book's strict "<": both logits equal to the 2nd largest stay
    assert torch.isfinite(_keep_top_k(logits, 2)).tolist() == [[False, True, True, True, False]]


def test_generate_top_k_sampling_is_the_books_formula(toy):
    """generate(top_k=3, temperature=T) draws, for each row, from softmax(masked / T): same seed, same tokens."""
    k3 = toy["top_k_3"]
    masked = torch.tensor([float(v) for v in k3["masked_logits"]])
    rows = 500
    torch.manual_seed(123)
    out = generate(FixedLogits(next_token_logits), torch.zeros(rows, 1, dtype=torch.long),
                   max_new_tokens=1, context_size=4, temperature=0.8, top_k=3)
    torch.manual_seed(123)
    expected = torch.multinomial(torch.softmax(masked / 0.8, dim=-1).expand(rows, 9), num_samples=1)
    assert torch.equal(out[:, 1:], expected)
    assert set(out[:, 1].tolist()) == {vocab["closer"], vocab["forward"], vocab["toward"]}


# --------------------------------------------------------------------------- generate (5.3.3)


def test_greedy_equals_generate_text_simple(small_model):
    """Exercise 5.3: temperature 0 and no top-k make generate deterministic: generate_text_simple's tokens."""
    idx = _prompt(b=3)
    out = generate(small_model, idx, max_new_tokens=12, context_size=8)
    assert out.dtype == torch.int64 and out.shape == (3, 11 + 12)
    assert torch.equal(out, generate_text_simple(small_model, idx, max_new_tokens=12, context_size=8))
    assert torch.equal(out[:, :11], idx)
    assert len(set(map(tuple, out[:, 11:].tolist()))) > 1  # the rows differ: a real check of each row


def test_greedy_equals_generate_text_simple_124m(model_124m, values_53_55):
    assert values_53_55["after_10_epoch_training"]["exercise_5_3_deterministic"].startswith("generate(..., temperature=0.0")
    idx = text_to_token_ids("Every effort moves you", get_tokenizer())
    out = generate(model_124m, idx, max_new_tokens=4, context_size=256, temperature=0.0, top_k=None)
    assert torch.equal(out, generate_text_simple(model_124m, idx, max_new_tokens=4, context_size=256))
    assert token_ids_to_text(out, get_tokenizer()).startswith("Every effort moves you")


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0, 5.0])
def test_top_k_1_is_greedy(small_model, temperature):
    idx = _prompt(b=2)
    torch.manual_seed(0)
    out = generate(small_model, idx, max_new_tokens=10, context_size=8, temperature=temperature, top_k=1)
    assert torch.equal(out, generate(small_model, idx, max_new_tokens=10, context_size=8))


def test_top_k_vocab_size_is_plain_sampling(small_model):
    idx = _prompt(b=2)
    torch.manual_seed(42)
    with_k = generate(small_model, idx, max_new_tokens=10, context_size=8, temperature=1.3, top_k=97)
    torch.manual_seed(42)
    without = generate(small_model, idx, max_new_tokens=10, context_size=8, temperature=1.3)
    assert torch.equal(with_k, without)
    torch.manual_seed(43)
    other_seed = generate(small_model, idx, max_new_tokens=10, context_size=8, temperature=1.3)
    assert not torch.equal(other_seed, without)  # sampling does use the seed
    with pytest.raises(ValueError, match=r"top_k=98 is larger than the vocabulary \(97 tokens\)"):
        generate(small_model, idx, max_new_tokens=1, context_size=8, top_k=98)


def test_sampling_matches_books_listing_for_one_row(small_model):
    idx = _prompt(b=1)
    for temperature, top_k in ((1.4, 25), (0.0, None), (0.9, None)):
        torch.manual_seed(123)
        ours = generate(small_model, idx, max_new_tokens=10, context_size=8, temperature=temperature, top_k=top_k)
        torch.manual_seed(123)
        book = book_generate(small_model, idx, max_new_tokens=10, context_size=8, temperature=temperature, top_k=top_k)
        assert torch.equal(ours, book), (temperature, top_k)


def test_context_is_cropped():
    model = NextIsLastPlusOne()
    idx = torch.tensor([[0, 1, 2, 3, 4, 5, 6]])  # 7 tokens, context 3
    out = generate(model, idx, max_new_tokens=4, context_size=3)
    assert out.tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]]
    assert model.seen_lengths == [3, 3, 3, 3]


def test_eos_batch_pads_finished_rows_and_stops_when_all_finished():
    model = NextIsLastPlusOne(vocab_size=10)
    eos = 9
    # row 0 reaches eos at its 3rd new token, row 1 at its 6th
    idx = torch.tensor([[6], [3]])
    out = generate(model, idx, max_new_tokens=20, context_size=4, eos_id=eos)
    # step 6 (row 1's eos) is not appended; row 0 is padded with eos after its own eos
    assert out.tolist() == [[6, 7, 8, 9, 9, 9], [3, 4, 5, 6, 7, 8]]
    assert len(model.seen_lengths) == 6  # stopped at the step where the last row finished

    # each row is what the book's generate returns for it alone, right-padded with eos
    for row, expected in zip(idx, out):
        alone = book_generate(model, row.unsqueeze(0), 20, 4, eos_id=eos)[0].tolist()
        assert alone + [eos] * (out.shape[1] - len(alone)) == expected.tolist()

    # limited by max_new_tokens before the last row finishes: every step appended
    assert generate(model, idx, max_new_tokens=4, context_size=4, eos_id=eos).tolist() == \
        [[6, 7, 8, 9, 9], [3, 4, 5, 6, 7]]


def test_eos_single_row_is_the_books():
    model = NextIsLastPlusOne(vocab_size=10)
    idx = torch.tensor([[6]])
    out = generate(model, idx, max_new_tokens=20, context_size=4, eos_id=9)
    assert out.tolist() == [[6, 7, 8]]  # the eos itself is not appended
    assert torch.equal(out, book_generate(model, idx, 20, 4, eos_id=9))
    # without eos_id the same model runs on through 9
    assert generate(model, idx, max_new_tokens=5, context_size=4).tolist() == [[6, 7, 8, 9, 0, 1]]
    # eos produced at the first step: nothing appended
    assert generate(model, torch.tensor([[8]]), max_new_tokens=5, context_size=4, eos_id=9).tolist() == [[8]]


def test_no_graph_and_modes_unchanged():
    model = NextIsLastPlusOne().train()
    assert torch.is_grad_enabled()
    out = generate(model, torch.tensor([[1, 2]]), max_new_tokens=3, context_size=4)
    assert model.grad_enabled == [False, False, False]
    assert out.requires_grad is False
    assert torch.is_grad_enabled()  # grad mode restored
    assert model.training is True  # generate does not change the model's mode
    out[0, 0] = 5  # an ordinary tensor (not inference mode): editable in place
    assert out[0, 0].item() == 5


def test_zero_new_tokens_returns_the_input_on_the_model_device():
    idx = torch.tensor([[1, 2, 3]])
    out = generate(NextIsLastPlusOne(), idx, max_new_tokens=0, context_size=4)
    assert torch.equal(out, idx)


def test_input_moves_to_the_models_device():
    """A model on the meta device (no data, any machine): generate moves idx there."""

    class MetaModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(5, device="meta"))

        def forward(self, idx):
            assert idx.device.type == "meta"
            b, n = idx.shape
            return self.w.expand(b, n, 5)

    out = generate(MetaModel(), torch.tensor([[1, 2]]), max_new_tokens=3, context_size=4)
    assert out.device.type == "meta" and out.shape == (1, 5)


def test_model_without_parameters_uses_the_inputs_device():
    class NoParameters(torch.nn.Module):
        def forward(self, idx):
            return torch.nn.functional.one_hot((idx + 1) % 4, 4).float()

    assert generate(NoParameters(), torch.tensor([[0]]), 3, 2).tolist() == [[0, 1, 2, 3]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_generate_on_cuda(small_model):
    model = GPTModel(SMALL).eval()
    model.load_state_dict(small_model.state_dict())
    model.to("cuda")
    idx = _prompt(b=2)  # on the CPU
    out = generate(model, idx, max_new_tokens=6, context_size=8)
    assert out.device.type == "cuda"
    # greedy on the GPU: the CPU's tokens (a near-tie could differ; none in this seeded model)
    assert torch.equal(out.cpu(), generate(small_model, idx, max_new_tokens=6, context_size=8))
    torch.manual_seed(123)
    sampled = generate(model, idx, max_new_tokens=6, context_size=8, temperature=1.0, top_k=5)
    assert sampled.device.type == "cuda" and sampled.shape == (2, 17)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be an integer >= 0"),
        ({"context_size": 0}, "context_size must be an integer >= 1"),
        ({"temperature": -0.5}, "temperature must be a number >= 0"),
        ({"temperature": float("nan")}, "temperature must be a number >= 0"),
        ({"top_k": 0}, "top_k must be None or an integer >= 1"),
        ({"idx": torch.tensor([1, 2])}, r"idx must be a LongTensor \(b, num_tokens\)"),
        ({"idx": torch.zeros(1, 0, dtype=torch.long)}, "at least one token"),
        ({"idx": torch.zeros(1, 2)}, r"idx must be a LongTensor"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, message):
    args = {"idx": torch.tensor([[1, 2]]), "max_new_tokens": 2, "context_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message) as excinfo:
        generate(NextIsLastPlusOne(), **args)
    assert "\n" not in str(excinfo.value)
