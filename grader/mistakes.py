"""The error model: typical wrong versions of each exercise.

``python -m grader regen`` runs every scenario on each of these and freezes the
outputs. When a student's output fails a check but matches a mistake's output
within the check's tolerance, the report names that mistake (its message lives
with the checks in ``checks.toml``).
"""

from __future__ import annotations

import torch

from reference import calc_loss_batch, calc_loss_loader, evaluate_model, generate_and_print_sample

MISTAKES: dict[str, dict] = {}  # exercise -> {mistake id: function}


def mistake(exercise: str, mistake_id: str):
    def register(func):
        MISTAKES.setdefault(exercise, {})[mistake_id] = func
        return func

    return register


# text_to_token_ids


@mistake("text_to_token_ids", "no_batch_dim")
def _(text, tokenizer):
    return torch.tensor(tokenizer.encode(text, allowed_special={"<|endoftext|>"}))


@mistake("text_to_token_ids", "special_not_allowed")
def _(text, tokenizer):
    return torch.tensor(tokenizer.encode(text)).unsqueeze(0)


@mistake("text_to_token_ids", "special_as_text")
def _(text, tokenizer):
    return torch.tensor(tokenizer.encode_ordinary(text)).unsqueeze(0)


# token_ids_to_text


@mistake("token_ids_to_text", "first_token_only")
def _(token_ids, tokenizer):
    return tokenizer.decode([token_ids[0, 0].item()])


@mistake("token_ids_to_text", "drops_last_token")
def _(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0)[:-1].tolist())


@mistake("token_ids_to_text", "drops_first_token")
def _(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0)[1:].tolist())


@mistake("token_ids_to_text", "squeeze_all")
def _(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze().tolist())


# manual_cross_entropy


def _target_log_probas(probas, targets):
    return torch.log(torch.gather(probas, -1, targets.unsqueeze(-1)).squeeze(-1))


@mistake("manual_cross_entropy", "no_negation")
def _(logits, targets):
    return torch.mean(_target_log_probas(torch.softmax(logits, dim=-1), targets))


@mistake("manual_cross_entropy", "sum_not_mean")
def _(logits, targets):
    return -torch.sum(_target_log_probas(torch.softmax(logits, dim=-1), targets))


@mistake("manual_cross_entropy", "softmax_wrong_dim")
def _(logits, targets):
    return -torch.mean(_target_log_probas(torch.softmax(logits, dim=1), targets))


@mistake("manual_cross_entropy", "softmax_batch_dim")
def _(logits, targets):
    return -torch.mean(_target_log_probas(torch.softmax(logits, dim=0), targets))


@mistake("manual_cross_entropy", "no_log")
def _(logits, targets):
    probas = torch.softmax(logits, dim=-1)
    return -torch.mean(torch.gather(probas, -1, targets.unsqueeze(-1)).squeeze(-1))


@mistake("manual_cross_entropy", "hard_coded")
def _(logits, targets):
    return torch.tensor(10.7940)


# calc_loss_batch


@mistake("calc_loss_batch", "unflattened")
def _(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits, target_batch.to(device))


@mistake("calc_loss_batch", "targets_unflattened")
def _(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.to(device))


@mistake("calc_loss_batch", "inputs_as_targets")
def _(input_batch, target_batch, model, device):
    input_batch = input_batch.to(device)
    logits = model(input_batch)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), input_batch.flatten())


@mistake("calc_loss_batch", "transposed_targets")
def _(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.to(device).T.flatten())


@mistake("calc_loss_batch", "hard_coded")
def _(input_batch, target_batch, model, device):
    return torch.tensor(10.7940, requires_grad=True)


@mistake("calc_loss_batch", "item")
def _(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.to(device).flatten()).item()


# calc_loss_loader


def _loader_losses(data_loader, model, device, n):
    losses = []
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= n:
            break
        losses.append(calc_loss_batch(input_batch, target_batch, model, device))
    return losses


@mistake("calc_loss_loader", "divides_by_loader_length")
def _(data_loader, model, device, num_batches=None):
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return sum(l.item() for l in _loader_losses(data_loader, model, device, n)) / len(data_loader)


@mistake("calc_loss_loader", "not_clamped")
def _(data_loader, model, device, num_batches=None):
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else num_batches
    return sum(l.item() for l in _loader_losses(data_loader, model, device, n)) / n


@mistake("calc_loss_loader", "empty_raises")
def _(data_loader, model, device, num_batches=None):
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return sum(l.item() for l in _loader_losses(data_loader, model, device, n)) / n


@mistake("calc_loss_loader", "returns_tensor")
def _(data_loader, model, device, num_batches=None):
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    return sum(_loader_losses(data_loader, model, device, n)) / n


# evaluate_model


@mistake("evaluate_model", "stays_in_eval_mode")
def _(model, train_loader, val_loader, device, eval_iter):
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    return train_loss, val_loss


@mistake("evaluate_model", "never_eval_mode")
def _(model, train_loader, val_loader, device, eval_iter):
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


@mistake("evaluate_model", "no_no_grad")
def _(model, train_loader, val_loader, device, eval_iter):
    model.eval()
    train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
    val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


@mistake("evaluate_model", "swapped")
def _(model, train_loader, val_loader, device, eval_iter):
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return val_loss, train_loss


# train_model_simple: one loop with a switch per mistake


def _training_loop(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq,
                   eval_iter, start_context, tokenizer, *, zero_grad=True, step_first=False,
                   train_mode=True, count_rows=False, step_from=-1):
    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, global_step = 0, step_from
    for epoch in range(num_epochs):
        if train_mode:
            model.train()
        for input_batch, target_batch in train_loader:
            if zero_grad:
                optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            if step_first:
                optimizer.step()
                loss.backward()
            else:
                loss.backward()
                optimizer.step()
            tokens_seen += input_batch.shape[0] if count_rows else input_batch.numel()
            global_step += 1
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(f"Ep {epoch+1} (Step {global_step:06d}): "
                      f"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen


def _training_mistake(mistake_id, **switch):
    @mistake("train_model_simple", mistake_id)
    def _(*args, **kwargs):
        return _training_loop(*args, **kwargs, **switch)


_training_mistake("no_zero_grad", zero_grad=False)
_training_mistake("step_before_backward", step_first=True)
_training_mistake("no_train_mode", train_mode=False)
_training_mistake("tokens_as_rows", count_rows=True)
_training_mistake("step_from_zero", step_from=0)

