"""Figures of the studies. Every function takes ``ax=None`` and returns the matplotlib Axes (never shows or
saves); every word comes from the catalog (:mod:`cyberobs_lib.l10n`, ``data/labels.csv``) in ``lang``, numbers
on axes and in annotations are written for the locale (:func:`percent_axis`, :func:`number_axis`)."""

from __future__ import annotations

from cyberobs_lib.l10n import fmt_number, fmt_percent
from cyberobs_lib.l10n import text as catalog_text


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


def percent_axis(axis, lang: str = "fr", *, scale: float = 1.0) -> None:
    """Tick labels of a share axis in the reader's locale ("20 %" / "20%"); ``scale`` 100: values already
    in percent."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_percent(v / scale, lang, decimals=0)))


def ratio_axis(ax, low, high, lang: str = "fr") -> None:
    """A log-scale x axis of ratios (odds, rates) ticked at powers of two that span ``low``..``high``, written
    in the reader's locale ("0,5", "2"), with no minor labels (matplotlib would print "2 × 10⁰")."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    lo = np.nanmin(np.asarray(low, dtype=float)) if np.size(low) else 1.0
    hi = np.nanmax(np.asarray(high, dtype=float)) if np.size(high) else 1.0
    lo, hi = (lo, hi) if np.isfinite(lo) and np.isfinite(hi) and lo > 0 else (0.5, 2.0)
    ticks = [2.0**k for k in range(-12, 13) if lo / 1.5 <= 2.0**k <= hi * 1.9] or [1.0]
    ax.set_xticks(ticks, [fmt_number(t, lang) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def number_axis(axis, lang: str = "fr") -> None:
    """Tick labels of a number axis in the reader's locale ("1 230", "0,5")."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(v, lang)))
