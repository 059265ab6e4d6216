"""Known mistakes in generate: one decoding loop with a switch per mistake.

``python -m grader regen`` runs the scenarios on each ``mistake_<id>`` and freezes their
outputs; a student's output that matches one is explained by the message of
``[mistakes] <id>`` in checks.toml.
"""

from __future__ import annotations

import contextlib
import functools

import torch


def _decoding_loop(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None, *,
                   temperature_ignored=False, masked_value=float("-inf"), less_equal=False, k_plus_one=False,
                   argmax_always=False, crop=True, no_grad=True, book_eos=False, eos_appended=False,
                   position=-1, row_broadcast=False, steps_short=0):
    with torch.no_grad() if no_grad else contextlib.nullcontext():
        idx = idx.to(next(model.parameters()).device)
        finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens - steps_short):
            idx_cond = idx[:, -context_size:] if crop else idx
            logits = model(idx_cond)[:, position, :]
            if top_k is not None:
                top_logits, _ = torch.topk(logits, top_k + 1 if k_plus_one else top_k)
                min_val = top_logits[:, -1] if row_broadcast else top_logits[:, -1:]  # (b,) vs (b, 1)
                masked = logits <= min_val if less_equal else logits < min_val
                logits = torch.where(masked, torch.tensor(masked_value), logits)
            if temperature > 0.0 and not argmax_always:
                if temperature_ignored:
                    probs = torch.softmax(logits, dim=-1) / temperature
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
            else:
                idx_next = torch.argmax(logits, dim=-1, keepdim=True)
            if eos_id is not None and book_eos:
                if idx_next == eos_id:  # the book's check: ambiguous for a batch of several
                    break
            elif eos_id is not None:
                idx_next = torch.where(finished.unsqueeze(1), eos_id, idx_next)
                finished = finished | (idx_next.squeeze(1) == eos_id)
                if finished.all():
                    if eos_appended:
                        idx = torch.cat((idx, idx_next), dim=1)
                    break
            idx = torch.cat((idx, idx_next), dim=1)
    return idx


mistake_temperature_ignored = functools.partial(_decoding_loop, temperature_ignored=True)
mistake_masked_zero = functools.partial(_decoding_loop, masked_value=0.0)
mistake_top_k_less_equal = functools.partial(_decoding_loop, less_equal=True)
mistake_top_k_plus_one = functools.partial(_decoding_loop, k_plus_one=True)
mistake_argmax_always = functools.partial(_decoding_loop, argmax_always=True)
mistake_no_crop = functools.partial(_decoding_loop, crop=False)
mistake_builds_graph = functools.partial(_decoding_loop, no_grad=False)
mistake_book_eos_check = functools.partial(_decoding_loop, book_eos=True)
mistake_one_token_short = functools.partial(_decoding_loop, steps_short=1)
mistake_eos_appended = functools.partial(_decoding_loop, eos_appended=True)
mistake_last_position_not_used = functools.partial(_decoding_loop, position=0)
mistake_top_k_row_broadcast = functools.partial(_decoding_loop, row_broadcast=True)
