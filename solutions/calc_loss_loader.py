"""Exercise 5 (section 5.1.3): the average loss over a data loader."""

# The grader uses the reference calc_loss_batch here, so a mistake in your own
# calc_loss_batch costs points in that exercise only.
from reference import calc_loss_batch


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Average ``calc_loss_batch`` over the first ``num_batches`` batches of ``data_loader``.

    Args:
        data_loader: a DataLoader yielding ``(input_batch, target_batch)`` pairs.
        model: the GPT model, on ``device``.
        device: where to compute.
        num_batches: how many batches to use; ``None`` means all of them. A number
            larger than ``len(data_loader)`` is reduced to ``len(data_loader)``.
    Returns:
        A Python float (use ``loss.item()``), or ``float("nan")`` when the loader is empty.

    Steps:
        TODO 1: return ``float("nan")`` for an empty loader.
        TODO 2: set ``num_batches`` to ``len(data_loader)`` when it is None,
                else to ``min(num_batches, len(data_loader))``.
        TODO 3: add up ``calc_loss_batch(...).item()`` over the first ``num_batches`` batches.
        TODO 4: return the sum divided by ``num_batches``.
    """
    # BEGIN SOLUTION
    total_loss = 0.0
    if len(data_loader) == 0:
        return float("nan")
    elif num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            total_loss += loss.item()
        else:
            break
    return total_loss / num_batches
    # END SOLUTION
