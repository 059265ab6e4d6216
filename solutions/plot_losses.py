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
        The matplotlib Figure. Do not call ``plt.show()`` or save files here:
        the caller decides (``fig.savefig("loss-plot.pdf")``).

    Steps:
        TODO 1: ``fig, ax1 = plt.subplots(figsize=(5, 3))``.
        TODO 2: plot training loss (label "Training loss") and validation loss
                (``linestyle="-."``, label "Validation loss") against ``epochs_seen``.
        TODO 3: label the axes "Epochs" and "Loss"; add a legend; whole-number
                epoch ticks (``MaxNLocator(integer=True)``).
        TODO 4: a second x-axis ``ax2 = ax1.twiny()``; plot training loss against
                ``tokens_seen`` with ``alpha=0`` (invisible, it aligns the ticks);
                label it "Tokens seen".
        TODO 5: ``fig.tight_layout()`` and return ``fig``.
    """
    # BEGIN SOLUTION
    fig, ax1 = plt.subplots(figsize=(5, 3))
    ax1.plot(epochs_seen, train_losses, label="Training loss")
    ax1.plot(epochs_seen, val_losses, linestyle="-.", label="Validation loss")
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel("Loss")
    ax1.legend(loc="upper right")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))

    ax2 = ax1.twiny()
    ax2.plot(tokens_seen, train_losses, alpha=0)
    ax2.set_xlabel("Tokens seen")

    fig.tight_layout()
    return fig
    # END SOLUTION
