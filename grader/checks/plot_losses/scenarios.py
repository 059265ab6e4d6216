"""Scenarios of plot_losses (section 5.2): the seeded inputs it runs on and what is recorded.

Each ``scenario_<name>(fn, ctx)`` returns a dict of plain outputs (see grader/checks/common.py).
"""

from __future__ import annotations

import torch


def describe_figure(fig):
    """What a plot shows, as plain data: per axes (a secondary axis too) its labels, where its
    x-axis label is, its x limits, and its lines (x, y, visibility, style)."""
    fig.draw_without_rendering()  # lays out secondary axes, whose limits follow their parent's
    axes = []
    for ax in figure_axes(fig):
        lines = []
        for line in ax.get_lines():
            lines.append({
                "x": [float(v) for v in line.get_xdata()],
                "y": [float(v) for v in line.get_ydata()],
                "visible": bool(line.get_visible()) and (line.get_alpha() is None or line.get_alpha() > 0),
                "linestyle": str(line.get_linestyle()),
                "label": str(line.get_label()),
            })
        axes.append({"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "lines": lines,
                     "xlim": [float(v) for v in ax.get_xlim()],
                     "xlabel_top": ax.xaxis.get_label_position() == "top"})
    return axes


def figure_axes(fig) -> list:
    """The figure's axes and their child axes (``secondary_xaxis`` makes one), each once."""
    found = []
    for ax in fig.get_axes():
        for each in (ax, *getattr(ax, "child_axes", ())):
            if each not in found:
                found.append(each)
    return found


def _plot(fn, ctx, num_epochs, n, seed):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.close("all")
    gen = torch.Generator().manual_seed(seed)
    train = (torch.linspace(9.5, 1.0, n) + 0.1 * torch.rand(n, generator=gen)).tolist()
    val = (torch.linspace(9.8, 6.0, n) + 0.1 * torch.rand(n, generator=gen)).tolist()
    tokens = [512 * (i + 1) for i in range(n)]
    epochs = torch.linspace(0, num_epochs, n)
    returned = fn(epochs, tokens, train, val)
    if isinstance(returned, Figure):
        fig, how = returned, "returned"
    elif returned is None and plt.get_fignums():
        fig, how = plt.gcf(), "current"  # returned nothing but left the figure current
    else:
        return {"plot": {"figure": None, "returned": type(returned).__name__}}
    return {"plot": {
        "figure": describe_figure(fig),
        "returned": how,
        "inputs": {"epochs": epochs.tolist(), "tokens": tokens, "train": train, "val": val},
    }}


def scenario_seven_points(fn, ctx):
    return _plot(fn, ctx, num_epochs=3, n=7, seed=61)


def scenario_eighteen_points(fn, ctx):
    return _plot(fn, ctx, num_epochs=10, n=18, seed=62)
