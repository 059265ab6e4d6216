"""Local practice's 124M model (grader/replay.py, PracticeReplay124M): the recorded logits where
regen recorded the input, the real model, built on first need, for anything else."""

from __future__ import annotations

import pytest
import torch

from grader.checks.common import BOOK_INPUTS, BOOK_TARGETS
from grader.context import EXPECTED_DIR, load_fixtures
from grader.replay import PracticeReplay124M, load_replay


class StandIn(torch.nn.Module):
    """What ``build`` returns in these tests: cheap, draws from torch's RNG as building a model does,
    and says which mode it ran in (its logits are 1 in eval mode, 2 in train mode)."""

    def __init__(self):
        super().__init__()
        torch.randn(1000)  # a model's initialisation draws random numbers
        self.pos_emb = torch.nn.Embedding(256, 4)

    def forward(self, idx):
        return torch.full((*idx.shape, 50257), 2.0 if self.training else 1.0)


@pytest.fixture
def practice():
    built = []

    def build():
        built.append(StandIn())
        return built[-1]

    return load_replay(EXPECTED_DIR, build=build), built


def test_a_recorded_input_is_replayed_without_building_the_model(practice):
    replay, built = practice
    book = load_fixtures()["book_logits"]  # the real model's, frozen by regen
    assert isinstance(replay, PracticeReplay124M) and not replay.training
    assert torch.equal(replay(torch.tensor(BOOK_INPUTS)), book)
    assert built == []


def test_any_other_input_gets_the_real_models_logits_built_once(practice):
    replay, built = practice
    other = torch.tensor(BOOK_INPUTS) + 1
    assert torch.equal(replay(other), torch.ones(2, 3, 50257))
    assert torch.equal(replay(other[:1]), torch.ones(1, 3, 50257))
    assert len(built) == 1


def test_in_train_mode_even_a_recorded_input_goes_to_the_real_model(practice):
    """Dropout: in train mode the real model's logits are not the recorded (eval-mode) ones."""
    replay, built = practice
    assert torch.equal(replay.train()(torch.tensor(BOOK_INPUTS)), torch.full((2, 3, 50257), 2.0))
    assert built[0].training
    assert torch.equal(replay.eval()(torch.tensor(BOOK_INPUTS) + 1), torch.ones(2, 3, 50257))


def test_an_attribute_the_replay_lacks_is_the_real_models(practice):
    replay, built = practice
    assert replay.pos_emb.weight.shape[0] == 256 and len(built) == 1
    with pytest.raises(AttributeError):
        replay._no_such_internal  # noqa: B018 (torch's internals are not looked up on the real model)


def test_building_the_real_model_leaves_the_scenarios_random_draws_as_they_were(practice):
    replay, _ = practice
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    replay(torch.tensor(BOOK_INPUTS) + 1)  # builds: StandIn draws 1000 numbers
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_the_replays_parameters_and_device_are_its_own_not_the_real_models(practice):
    replay, _ = practice
    replay.pos_emb  # noqa: B018 (builds the real model)
    assert [p.shape for p in replay.parameters()] == [torch.Size([])]  # the anchor only
    assert next(replay.parameters()).device.type == "cpu"


def test_code_that_feeds_another_input_is_graded_on_the_real_model_in_practice():
    """calc_loss_batch's book scenario with code that shifts the ids: under instructor grading the
    check fails saying the input was not recorded (test_fresh_seeds.py); in practice the code gets the
    real model's loss of what it fed, so the comparison with the book's value says what is wrong."""
    from grader.child import run_scenarios
    from grader.context import Context
    from grader.runner import use_practice_replay

    ctx = Context("cpu")
    use_practice_replay(ctx, EXPECTED_DIR)

    def shifted(input_batch, target_batch, model, device):
        logits = model((input_batch + 1) % 50257)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())

    outputs = run_scenarios("calc_loss_batch", shifted, ctx, names=("book_124m",))["book_124m"]
    assert "__error__" not in outputs
    with torch.no_grad():
        real = shifted(torch.tensor(BOOK_INPUTS), torch.tensor(BOOK_TARGETS), ctx.build_model_124m(), "cpu")
    torch.testing.assert_close(torch.as_tensor(outputs["loss"]), real, rtol=0, atol=0)  # the same model, same op
