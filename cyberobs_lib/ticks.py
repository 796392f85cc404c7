"""Tick labels of matplotlib axes in the reader's locale (shares, ratios, numbers).

Below :mod:`cyberobs_lib.plots` (which re-exports them) and the studies that draw their own figures.
"""

from __future__ import annotations

from cyberobs_lib.l10n import fmt_number, fmt_percent


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
