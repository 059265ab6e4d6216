"""Chapter 5, sections 5.1-5.2: pretraining on unlabeled data.

The function names and signatures are the book's; students copy them.
Shape legend: b = batch size, num_tokens = sequence length, vocab_size = 50,257.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .data import ENDOFTEXT
from .model import generate_text_simple


def text_to_token_ids(text, tokenizer):
    """Encode ``text`` into a LongTensor of shape ``(1, num_tokens)`` (section 5.1.1).

    ``<|endoftext|>`` is allowed and becomes id 50256.
    """
    encoded = tokenizer.encode(text, allowed_special={ENDOFTEXT})
    return torch.tensor(encoded).unsqueeze(0)  # add the batch dimension: (1, num_tokens)


def token_ids_to_text(token_ids, tokenizer):
    """Decode a ``(1, num_tokens)`` tensor of token ids into a string (section 5.1.1)."""
    flat = token_ids.squeeze(0)  # remove the batch dimension: (num_tokens,)
    return tokenizer.decode(flat.tolist())


def manual_cross_entropy(logits, targets):
    """Cross-entropy loss in the six steps of section 5.1.2.

    Args:
        logits: float tensor ``(b, num_tokens, vocab_size)``.
        targets: int64 tensor ``(b, num_tokens)`` of target token ids.
    Returns:
        0-dim float tensor: the mean negative log-probability of the targets.
    """
    probas = torch.softmax(logits, dim=-1)  # step 2: (b, num_tokens, vocab_size)
    # step 3: the probability of each target token: (b, num_tokens)
    target_probas = torch.gather(probas, dim=-1, index=targets.unsqueeze(-1)).squeeze(-1)
    log_probas = torch.log(target_probas)  # step 4
    avg_log_probas = torch.mean(log_probas)  # step 5
    return avg_log_probas * -1  # step 6: negate


def perplexity(loss):
    """Perplexity ``exp(loss)`` of a cross-entropy loss (section 5.1.2).

    Args:
        loss: float or 0-dim tensor, in nats per token.
    Returns:
        0-dim float tensor.
    """
    return torch.exp(torch.as_tensor(loss, dtype=torch.float32))


def calc_loss_batch(input_batch, target_batch, model, device):
    """Cross-entropy of one batch (section 5.1.3).

    Args:
        input_batch, target_batch: int64 tensors ``(b, num_tokens)``.
        device: where ``model`` lives; both batches are moved there.
    Returns:
        0-dim float tensor on ``device``, attached to the autograd graph.
    """
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (b, num_tokens, vocab_size)
    # flatten over the batch: (b * num_tokens, vocab_size) vs (b * num_tokens,)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Average batch loss over the first ``num_batches`` batches of a loader (section 5.1.3).

    ``num_batches`` defaults to all batches and is clamped to ``len(data_loader)``.
    Returns:
        Python float; ``nan`` for an empty loader.
    """
    total_loss = 0.0
    if len(data_loader) == 0:
        return float("nan")
    elif num_batches is None:
        num_batches = len(data_loader)
    else:
        # fewer batches than asked for when the loader is shorter
        num_batches = min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            total_loss += loss.item()
        else:
            break
    return total_loss / num_batches


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Training and validation loss over ``eval_iter`` batches each, in eval mode without gradients (section 5.2).

    The model is put back in training mode before returning.
    Returns:
        ``(train_loss, val_loss)``, two Python floats.
    """
    model.eval()  # dropout off for a stable estimate
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def generate_and_print_sample(model, tokenizer, device, start_context):
    """Print a 50-token greedy continuation of ``start_context`` on one line (section 5.2)."""
    model.eval()
    context_size = model.pos_emb.weight.shape[0]
    encoded = text_to_token_ids(start_context, tokenizer).to(device)
    with torch.no_grad():
        token_ids = generate_text_simple(
            model=model, idx=encoded, max_new_tokens=50, context_size=context_size
        )
    decoded_text = token_ids_to_text(token_ids, tokenizer)
    print(decoded_text.replace("\n", " "))  # compact print format
    model.train()


@dataclass
class TrainingState:
    """Where ``train_model_simple`` stands after a whole epoch (not in the book; for resuming).

    ``epoch`` counts the finished epochs; the others are the loop's own variables
    (``global_step`` is -1 before the first step) and its three lists, one entry
    per evaluation.
    """

    epoch: int = 0
    global_step: int = -1
    tokens_seen: int = 0
    train_losses: list = field(default_factory=list)
    val_losses: list = field(default_factory=list)
    track_tokens_seen: list = field(default_factory=list)


def train_model_simple(
    model,
    train_loader,
    val_loader,
    optimizer,
    device,
    num_epochs,
    eval_freq,
    eval_iter,
    start_context,
    tokenizer,
    *,
    on_step: Optional[Callable[[int, int, int], None]] = None,
    start: Optional[TrainingState] = None,
    on_epoch_end: Optional[Callable[[TrainingState], None]] = None,
    evaluate: Optional[Callable] = None,
):
    """The chapter's training loop (section 5.2, listing 5.3).

    Every ``eval_freq`` optimizer steps it evaluates on ``eval_iter`` batches and
    prints ``Ep E (Step SSSSSS): Train loss X.XXX, Val loss Y.YYY``; after each
    epoch it prints a greedy sample continuing ``start_context``.

    The keyword-only arguments are not in the book; without them the loop is the book's.

    Args:
        on_step: optional hook ``on_step(epoch, global_step, tokens_seen)`` called
            after every optimizer step (the CLI shows progress with it).
        start: optional TrainingState of an earlier run that finished
            ``start.epoch`` epochs: the loop continues with epoch ``start.epoch + 1``
            (of ``num_epochs`` in all), its step count, tokens and lists (copied, not
            changed). Model, optimizer and RNG states are the caller's to restore.
        on_epoch_end: optional hook ``on_epoch_end(state)`` called after each
            epoch's sample with the live TrainingState (copy what you keep).
        evaluate: optional replacement of ``evaluate_model`` with its signature
            (the distributed run averages the losses over its processes with it).
    Returns:
        ``(train_losses, val_losses, track_tokens_seen)``: three lists of equal
        length, one entry per evaluation (floats, floats, ints = input tokens seen),
        including those of ``start``.
    """
    state = TrainingState() if start is None else _copy_state(start)
    train_losses, val_losses, track_tokens_seen = state.train_losses, state.val_losses, state.track_tokens_seen
    tokens_seen, global_step = state.tokens_seen, state.global_step
    evaluate = evaluate_model if evaluate is None else evaluate

    for epoch in range(state.epoch, num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()  # reset gradients from the previous batch
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()
            global_step += 1
            if on_step is not None:
                on_step(epoch, global_step, tokens_seen)

            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate(
                    model, train_loader, val_loader, device, eval_iter
                )
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(
                    f"Ep {epoch+1} (Step {global_step:06d}): "
                    f"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}"
                )

        generate_and_print_sample(model, tokenizer, device, start_context)
        state.epoch, state.global_step, state.tokens_seen = epoch + 1, global_step, tokens_seen
        if on_epoch_end is not None:
            on_epoch_end(state)

    return train_losses, val_losses, track_tokens_seen


def _copy_state(state: TrainingState) -> TrainingState:
    return TrainingState(
        state.epoch, state.global_step, state.tokens_seen,
        list(state.train_losses), list(state.val_losses), list(state.track_tokens_seen),
    )


def plot_losses(epochs_seen, tokens_seen, train_losses, val_losses):
    """Training and validation loss against epochs, with a second x-axis for tokens seen (section 5.2).

    Returns:
        The matplotlib Figure. Nothing is shown or saved, so it never blocks.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax1 = plt.subplots(figsize=(5, 3))
    ax1.plot(epochs_seen, train_losses, label="Training loss")
    ax1.plot(epochs_seen, val_losses, linestyle="-.", label="Validation loss")
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel("Loss")
    ax1.legend(loc="upper right")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only

    ax2 = ax1.twiny()  # second x-axis sharing the y-axis
    ax2.plot(tokens_seen, train_losses, alpha=0)  # invisible, aligns the ticks
    ax2.set_xlabel("Tokens seen")

    fig.tight_layout()
    return fig
