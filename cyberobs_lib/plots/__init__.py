"""Figures of the studies. Every function takes ``ax=None`` and returns the matplotlib Axes (never shows or
saves); every word comes from the catalog (:mod:`cyberobs_lib.l10n`, ``data/labels.csv``) in ``lang``, numbers
on axes and in annotations are written for the locale (:func:`percent_axis`, :func:`number_axis`)."""

from __future__ import annotations

from cyberobs_lib.l10n import text as catalog_text
from cyberobs_lib.ticks import number_axis, percent_axis, ratio_axis  # noqa: F401 - re-exported


def axes_or_new(ax, size: tuple[float, float]):
    """``ax`` itself, or the Axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def no_data(ax, lang: str = "fr", text: str | None = None):
    """Write "nothing to show" (or ``text``) in the middle of ``ax``, without ticks; returns ``ax``.

    For figures whose table is empty (no pair of audits, no incident declaration): the reader sees why
    the figure is blank instead of empty axes. The reason itself is said in the report's text.
    """
    if text is None:
        text = catalog_text("fig.no_data", lang)
    ax.text(0.5, 0.5, text, ha="center", va="center", color="0.4", style="italic", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
