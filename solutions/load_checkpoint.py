"""Exercise 12 (section 5.4): loading a checkpoint to continue training."""

import torch


def load_checkpoint(path, model, optimizer, device):
    """Restore the model's and the optimizer's state from a checkpoint ``save_checkpoint`` wrote.

    Args:
        path: the checkpoint file (a dict with ``"model_state_dict"`` and
            ``"optimizer_state_dict"``).
        model: a model of the same configuration, on ``device``; its weights are replaced.
        optimizer: an optimizer over ``model.parameters()`` (e.g. a fresh AdamW); its state
            is replaced, so training continues with the saved moment estimates.
        device: where the tensors go, e.g. "cpu" (``map_location``: a checkpoint saved on a
            GPU then loads on a machine without one).
    Returns:
        The checkpoint dict.

    Steps:
        TODO 1: ``torch.load(path, map_location=device, weights_only=True)``: weights_only
                reads tensors and plain data only, never arbitrary pickled objects.
        TODO 2: ``model.load_state_dict(...)`` and ``optimizer.load_state_dict(...)``.
        TODO 3: return the checkpoint.
    """
    # BEGIN SOLUTION
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint
    # END SOLUTION
