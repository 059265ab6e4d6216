"""Exercise 6 (section 5.2): training and validation loss for the training log."""

import torch

# The reference calc_loss_loader, so a mistake there costs points in that exercise only.
from reference import calc_loss_loader


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Loss on the first ``eval_iter`` batches of each loader, without dropout or gradients.

    Args:
        model: the GPT model, on ``device``.
        train_loader, val_loader: DataLoaders of ``(input_batch, target_batch)``.
        device: where to compute.
        eval_iter: number of batches per loader (``num_batches`` of ``calc_loss_loader``).
    Returns:
        ``(train_loss, val_loss)``: two Python floats.
        Afterwards the model must be back in training mode.

    Steps:
        TODO 1: put the model in evaluation mode (``model.eval()``) so dropout is off.
        TODO 2: inside ``torch.no_grad()``, compute both losses with ``calc_loss_loader``.
        TODO 3: put the model back in training mode (``model.train()``).
        TODO 4: return both losses.
    """
    # BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss
    # END SOLUTION
