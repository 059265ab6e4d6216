"""Exercise 11 (section 5.4): saving the model and the optimizer in one checkpoint."""

import torch


def save_checkpoint(model, optimizer, path):
    """Save the model's and the optimizer's state to ``path`` (the book's model_and_optimizer.pth).

    Args:
        model: a ``torch.nn.Module`` (the GPT model).
        optimizer: its optimizer, e.g. AdamW, whose state (the moment estimates) training
            needs to continue where it stopped.
        path: file name, e.g. ``"model_and_optimizer.pth"``.
    Returns:
        None. The file holds a dict with the book's keys ``"model_state_dict"`` and
        ``"optimizer_state_dict"`` (state dicts: tensors and numbers, so it loads with
        ``torch.load(path, weights_only=True)``).

    Steps:
        TODO 1: ``torch.save`` a dict of ``model.state_dict()`` and ``optimizer.state_dict()``
                under the book's two keys (not the objects themselves).
    """
    raise NotImplementedError("save_checkpoint is not implemented yet")
