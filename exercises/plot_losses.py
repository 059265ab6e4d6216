"""Exercise 8 (section 5.2): the loss plot."""

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def plot_losses(epochs_seen, tokens_seen, train_losses, val_losses):
    """Plot training and validation loss against epochs, with a second x-axis of tokens seen.

    Args:
        epochs_seen: x values in epochs, one per evaluation
            (e.g. ``torch.linspace(0, num_epochs, len(train_losses))``).
        tokens_seen: x values in tokens, one per evaluation.
        train_losses, val_losses: y values, one per evaluation.
    Returns:
        The matplotlib Figure, so that the caller decides what to do with it
        (``fig.savefig("loss-plot.pdf")``). The book's version returns nothing and
        calls ``plt.show()``: the grader accepts that too (it then reads the current
        figure; ``plt.show()`` shows nothing while grading).

    Steps:
        TODO 1: ``fig, ax1 = plt.subplots(figsize=(5, 3))``.
        TODO 2: plot training loss (label "Training loss") and validation loss
                (``linestyle="-."``, label "Validation loss") against ``epochs_seen``.
        TODO 3: label the axes "Epochs" and "Loss"; add a legend; whole-number
                epoch ticks (``MaxNLocator(integer=True)``).
        TODO 4: a second x-axis on top, ``ax2 = ax1.twiny()``; plot training loss
                against ``tokens_seen`` with ``alpha=0`` (invisible, it sets the axis's
                range); label it "Tokens seen". (``ax1.secondary_xaxis("top", ...)``
                mapping epochs to tokens is fine too: the grader checks what the axis shows.)
        TODO 5: ``fig.tight_layout()`` and return ``fig``.
    """
    raise NotImplementedError("plot_losses is not implemented yet")
