"""Figures of the studies. Every function takes ``ax=None`` and returns the matplotlib Axes (never shows or
saves); labels come from :func:`cyberobs_lib.report.label` (one table, ``data/labels.csv``)."""

from __future__ import annotations


def axes_or_new(ax, size: tuple[float, float]):
    """``ax`` itself, or the Axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]
