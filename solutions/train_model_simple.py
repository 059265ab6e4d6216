"""Exercise 7 (section 5.2, listing 5.3): the training loop."""

# The reference versions of the other exercises, so a mistake there costs points
# in that exercise only.
from reference import calc_loss_batch, evaluate_model, generate_and_print_sample


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    """Train for ``num_epochs`` epochs, evaluating every ``eval_freq`` steps.

    Args:
        model: the GPT model, on ``device``.
        train_loader, val_loader: DataLoaders of ``(input_batch, target_batch)``, each
            ``(batch, num_tokens)`` int64.
        optimizer: e.g. ``torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)``.
        device: where to compute.
        num_epochs: passes over ``train_loader``.
        eval_freq: evaluate after every ``eval_freq``-th optimizer step (steps count from 0).
        eval_iter: batches per loader for each evaluation.
        start_context: text for the sample printed after each epoch.
        tokenizer: the GPT-2 tokenizer.
    Returns:
        ``(train_losses, val_losses, track_tokens_seen)``: lists with one entry per
        evaluation (floats, floats, ints).
    Prints:
        At each evaluation: ``Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933``
        (epoch from 1, step with 6 digits, losses with 3 decimals);
        after each epoch: ``generate_and_print_sample(model, tokenizer, device, start_context)``.

    Steps:
        TODO 1: start with empty lists, ``tokens_seen = 0`` and ``global_step = -1``.
        TODO 2: for each epoch, put the model in training mode; for each batch:
                reset the gradients, compute the batch loss, backpropagate,
                take an optimizer step.
        TODO 3: add the number of input tokens (``input_batch.numel()``) to
                ``tokens_seen`` and 1 to ``global_step``.
        TODO 4: when ``global_step % eval_freq == 0``: ``evaluate_model``, append
                the two losses and ``tokens_seen``, print the log line.
        TODO 5: after each epoch, print a sample with ``generate_and_print_sample``.
    """
    # BEGIN SOLUTION
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
                train_loss, val_loss = evaluate_model(
                    model, train_loader, val_loader, device, eval_iter
                )
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(f"Ep {epoch+1} (Step {global_step:06d}): "
                      f"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")

        generate_and_print_sample(model, tokenizer, device, start_context)

    return train_losses, val_losses, track_tokens_seen
    # END SOLUTION
