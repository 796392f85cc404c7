"""Figures of the incident study: rates per family with intervals, yearly trends, odds-ratio forest plot.

Every function takes ``ax=None`` (a new figure is made when absent), draws, and returns the Axes; none calls
``plt.show()`` or saves. Every word comes from the catalog (``data/labels.csv``) in ``lang`` (French by default),
numbers are written for the locale, and each figure has a title and its ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from cyberobs_lib.l10n import fmt_number, text
from cyberobs_lib.plots import axes_or_new, no_data, number_axis, percent_axis, ratio_axis
from cyberobs_lib.report import label

incident_label = label  # reader-facing labels: one table for every study (data/labels.csv)


def plot_incident_rates(
    indicators: pd.DataFrame,
    *,
    period: str = "all",
    indicator: str = "incident_rate_per_1000",
    planted: pd.Series | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Horizontal dot-and-interval plot of an incident rate by family (suppressed cells in grey, no value),
    each family with its ``n`` (establishments of the registry behind the rate).

    Parameters
    ----------
    indicators : DataFrame
        Output of :func:`cyberobs_lib.studies.incidents.incident_indicators` (possibly after
        :func:`cyberobs_lib.disclosure.suppress_small_cells`).
    period : str
        The period shown (a year as text, or ``"all"``).
    indicator : str
        Indicator drawn.
    planted : Series, optional
        Known true values by group (synthetic data), drawn as crosses.
    title : str, optional
        Title (default: the indicator and the period).
    ax, lang
        Axes to draw on (new figure if None); label language.

    Returns
    -------
    matplotlib Axes
    """
    rows = indicators[(indicators["indicator"] == indicator) & (indicators["period"] == str(period))]
    rows = rows.assign(_a=rows["group"].eq("all")).sort_values(["_a", "group"], ascending=[False, False])
    ax = axes_or_new(ax, (7, 0.35 * len(rows) + 1.2))
    if rows.empty:
        return no_data(ax, lang)
    y = np.arange(len(rows))
    secret = rows["suppressed"].astype(bool).to_numpy() if "suppressed" in rows else np.zeros(len(rows), bool)
    value = rows["value"].to_numpy(float)
    low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    shown = ~secret & np.isfinite(value)
    ax.errorbar(
        value[shown], y[shown], xerr=np.clip([value[shown] - low[shown], high[shown] - value[shown]], 0, None),
        fmt="o", color="tab:red", ecolor="0.4", capsize=3,
    )  # fmt: skip
    for yy in y[secret]:
        ax.text(0.01, yy, text("fig.secret", lang), va="center", color="0.5", fontsize=8,
                transform=ax.get_yaxis_transform())  # fmt: skip
    if planted is not None:
        truth = rows["group"].map(planted).to_numpy(float)
        ax.plot(truth, y, "x", color="k", label=text("fig.planted", lang))
        ax.legend(loc="lower right", fontsize=8)
    n = (
        rows["n_establishments"]
        if "n_establishments" in rows.columns
        else pd.Series(np.nan, index=rows.index)
    )
    names = [
        incident_label(g, lang)
        + (f" ({text('fig.n', lang, n=fmt_number(k, lang))})" if ok and pd.notna(k) else "")
        for g, k, ok in zip(rows["group"], n, ~secret, strict=True)
    ]
    ax.set_yticks(y, names)
    ax.set_ylim(-0.6, len(rows) - 0.4)  # every row inside the frame, secret ones included
    ax.set_xlabel(f"{incident_label(indicator, lang)}\n{text('fig.n_declaring', lang)}")
    ax.set_xlim(left=0)
    number_axis(ax.xaxis, lang)
    shown_period = incident_label("all_years", lang) if str(period) == "all" else str(period)
    ax.set_title(title or text("fig.period.title", lang, what=incident_label(indicator, lang), period=shown_period),
                 loc="left")  # fmt: skip
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_incident_trends(
    indicators: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
    top: int | None = None,
    indicator: str = "incident_rate_per_1000",
    title: str | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Yearly lines of an incident rate per family, with shaded intervals (suppressed years left out); each
    family has its own marker and line style (apart in grey print).

    Parameters
    ----------
    indicators : DataFrame
        Output of :func:`~cyberobs_lib.studies.incidents.incident_indicators` (yearly periods are used).
    groups : list of str, optional
        Groups drawn; default every group but ``all``.
    top : int, optional
        Keep only the ``top`` groups of ``groups`` with the most published declarations over the years
        (groups with nothing but zeros or secret cells are left out), plus ``all``.
    indicator, title, ax, lang
        Indicator drawn; title (default: the indicator by year); Axes (new figure if None); label language.

    Returns
    -------
    matplotlib Axes
    """
    rows = indicators[(indicators["indicator"] == indicator) & (indicators["period"] != "all")]
    if "suppressed" in rows:
        rows = rows[~rows["suppressed"].astype(bool)]
    groups = list(groups) if groups is not None else sorted(g for g in rows["group"].unique() if g != "all")
    if top is not None:  # rank by published declarations (the evidence behind a line), else by the values
        rank = indicators[(indicators["indicator"] == "declarations") & (indicators["period"] != "all")]
        rank = rank if len(rank) else rows
        if "suppressed" in rank:
            rank = rank[~rank["suppressed"].astype(bool)]
        total = rank[rank["group"].isin(groups) & rank["group"].ne("all")].groupby("group")["value"].sum()
        groups = [*total[total > 0].sort_values(ascending=False, kind="stable").index[:top], "all"]
    ax = axes_or_new(ax, (7, 4))
    if rows.empty:
        return no_data(ax, lang)
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1))), ("P", (0, (3, 1, 1, 1)))]
    for i, group in enumerate(groups):  # a few families
        g = rows[rows["group"] == group].assign(year=lambda d: d["period"].astype(int)).sort_values("year")
        if g.empty:
            continue
        marker, style = styles[i % len(styles)]
        line = ax.plot(
            g["year"], g["value"], marker=marker, linestyle=style, label=incident_label(group, lang)
        )[0]
        ax.fill_between(g["year"], g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.12)
    ax.set_xlabel(incident_label("year", lang))
    ax.set_ylabel(incident_label(indicator, lang))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(bottom=0)
    number_axis(ax.yaxis, lang)
    ax.set_title(title or text("fig.trend.title", lang, what=incident_label(indicator, lang)), loc="left")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return ax


def plot_odds_ratios(
    odds_ratios: pd.DataFrame,
    *,
    planted: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Forest plot of exposure odds ratios (log scale) with their intervals and a line at 1, each exposure
    with its ``n``.

    Parameters
    ----------
    odds_ratios : DataFrame
        Second output of :func:`cyberobs_lib.studies.incident_exposure.exposure_incident_association`.
    planted : float, optional
        Known true odds ratio (synthetic data), drawn as a dashed line.
    title : str, optional
        Title (default: the odds ratios and their intervals).
    ax, lang
        Axes (new figure if None); label language.

    Returns
    -------
    matplotlib Axes
    """
    rows = odds_ratios.iloc[::-1]
    ax = axes_or_new(ax, (7, 0.5 * len(rows) + 1.2))
    if rows.empty:
        return no_data(ax, lang)
    y = np.arange(len(rows))
    v = rows["odds_ratio"].to_numpy(float)
    lo, hi = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    ok = np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(
        v[ok],
        y[ok],
        xerr=np.clip([v[ok] - lo[ok], hi[ok] - v[ok]], 0, None),
        fmt="s",
        color="tab:blue",
        capsize=3,
    )
    ax.axvline(1.0, color="0.3", lw=1)
    if planted is not None:
        ax.axvline(planted, color="k", ls="--", lw=1, label=text("fig.planted", lang))
        ax.legend(fontsize=8, loc="lower right")
    ratio_axis(ax, lo[ok], hi[ok], lang)
    names = [
        f"{incident_label(e, lang)} ({text('fig.n', lang, n=fmt_number(n, lang))})"
        for e, n in zip(rows["exposure"], rows["n"], strict=True)
    ]
    ax.set_yticks(y, names)
    ax.set_xlabel(incident_label("odds_ratio_axis", lang))
    ax.set_title(title or text("fig.ratios.title", lang, ratio=label("odds_ratio", lang)), loc="left")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_exposure_vs_rate(
    side: pd.DataFrame,
    *,
    exposure: str = "has_kev",
    period: str = "all",
    title: str | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Scatter of a family's exposure share against its incident rate (descriptive, one point per family,
    named in ``lang``).

    Parameters
    ----------
    side : DataFrame
        Output of :func:`cyberobs_lib.studies.incident_exposure.side_by_side`.
    exposure, period
        Exposure share on the x axis; period shown.
    title : str, optional
        Title (default: the exposure against the incident rate).
    ax, lang
        Axes (new figure if None); label language.

    Returns
    -------
    matplotlib Axes
    """
    rows = side[(side["period"] == str(period)) & (side["group"] != "all")].dropna(subset=[exposure])
    ax = axes_or_new(ax, (6, 4.5))
    if rows.empty:
        return no_data(ax, lang)
    ax.errorbar(
        rows[exposure], rows["incident_rate_per_1000"],
        # clipped at 0: a value equal to its bound may exceed it by a rounding error (1e-17)
        xerr=np.clip([rows[exposure] - rows[f"{exposure}_ci_low"], rows[f"{exposure}_ci_high"] - rows[exposure]], 0, None),
        yerr=np.clip([rows["incident_rate_per_1000"] - rows["rate_ci_low"], rows["rate_ci_high"] - rows["incident_rate_per_1000"]], 0, None),
        fmt="o", color="tab:purple", ecolor="0.7", capsize=2,
    )  # fmt: skip
    for _, r in rows.iterrows():  # one label per family (a dozen points)
        ax.annotate(incident_label(r["group"], lang), (r[exposure], r["incident_rate_per_1000"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel(text("fig.exposure_axis", lang, share=incident_label("exposure_share", lang),
                       exposure=incident_label(exposure, lang)))  # fmt: skip
    ax.set_ylabel(incident_label("incident_rate_per_1000", lang))
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    percent_axis(ax.xaxis, lang)
    number_axis(ax.yaxis, lang)
    ax.set_title(title or text("fig.exposure_rate.title", lang, exposure=incident_label(exposure, lang),
                               n=fmt_number(len(rows), lang)), loc="left")  # fmt: skip
    ax.grid(alpha=0.3)
    return ax
