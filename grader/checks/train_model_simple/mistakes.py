"""Known mistakes in train_model_simple: one training loop with a switch per mistake.

``python -m grader regen`` runs the scenarios on each ``mistake_<id>`` and freezes their
outputs; a student's output that matches one is explained by the message of
``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import functools

from reference import calc_loss_batch, evaluate_model, generate_and_print_sample


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


mistake_no_zero_grad = functools.partial(_training_loop, zero_grad=False)
mistake_step_before_backward = functools.partial(_training_loop, step_first=True)
mistake_no_train_mode = functools.partial(_training_loop, train_mode=False)
mistake_tokens_as_rows = functools.partial(_training_loop, count_rows=True)
mistake_step_from_zero = functools.partial(_training_loop, step_from=0)
