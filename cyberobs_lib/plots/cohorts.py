"""Figures of the cohort study: indicators with intervals by family, distributions, forest plot of ratios.

Every function takes ``ax=None`` (a new figure is made when absent), draws, and returns the Axes; none
calls ``plt.show()`` or saves. Every word comes from the catalog (``data/labels.csv``) in ``lang`` (French by
default), numbers are written for the locale, and each figure has a title and its ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from cyberobs_lib.l10n import fmt_number, fmt_percent, fmt_range, text
from cyberobs_lib.plots import axes_or_new, number_axis, percent_axis, ratio_axis
from cyberobs_lib.report import label

#: Indicators drawn in percent.
SHARES = ("no_protection", "has_critical", "exposes_remote_admin", "has_kev", "audit_coverage")
SECRET_COLOR, DOT_COLOR, ALL_COLOR = "0.6", "tab:blue", "0.2"


cohort_label = label  # reader-facing labels: one table for every study (data/labels.csv)


def plot_indicator_ci(
    indicators: pd.DataFrame,
    *,
    indicator: str,
    period: str = "all",
    groups: Sequence[str] | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Dots with confidence-interval bars, one line per group; suppressed cells shown as a grey "secret".

    Parameters
    ----------
    indicators : DataFrame
        ``indicators.csv`` rows (after :func:`cyberobs_lib.disclosure.suppress_small_cells` when published).
    indicator, period : str
        The indicator and period drawn.
    groups : list of str, optional
        Order of the groups (top to bottom); ``"all"`` is drawn last, in black. Default: table order.
    ax, lang
        Axes to draw on; label language.

    Returns
    -------
    matplotlib Axes. Shares are drawn in percent.
    """
    rows = indicators[
        (indicators["indicator"] == indicator) & (indicators["period"].astype(str) == str(period))
    ]
    if rows.empty:
        raise ValueError(f"no row for indicator {indicator!r} and period {period!r}")
    order = [g for g in (groups or rows["group"].tolist()) if g != "all" and g in set(rows["group"])]
    order += ["all"] if "all" in set(rows["group"]) else []
    rows = rows.set_index("group").loc[order]
    ax = axes_or_new(ax, (7, 0.5 * len(order) + 1.2))
    scale = 100.0 if indicator in SHARES else 1.0
    y = np.arange(len(order))[::-1]
    secret = (
        rows["suppressed"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        | rows["value"].isna().to_numpy()
    )
    value, low, high = (rows[c].to_numpy(float) * scale for c in ("value", "ci_low", "ci_high"))
    for is_all in (False, True):
        pick = ~secret & ((rows.index == "all") == is_all)
        err = np.clip(np.vstack([value[pick] - low[pick], high[pick] - value[pick]]), 0, None)
        ax.errorbar(value[pick], y[pick], xerr=np.nan_to_num(err), fmt="o", capsize=3,
                    color=ALL_COLOR if is_all else DOT_COLOR)  # fmt: skip
        for xv, yv, hi in zip(value[pick], y[pick], high[pick], strict=True):
            shown = (
                fmt_percent(xv / 100, lang, decimals=0) if scale == 100 else fmt_number(xv, lang, decimals=2)
            )
            ax.annotate(shown, (hi if np.isfinite(hi) else xv, yv), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8)  # fmt: skip
    if secret.any():  # a hatched grey square and the word "secret" where the value is withheld
        ax.scatter(np.zeros(secret.sum()), y[secret], marker="s", s=90, color=SECRET_COLOR, hatch="///",
                   edgecolor="0.3")  # fmt: skip
        for yv in y[secret]:
            ax.annotate(text("fig.secret", lang), (0.0, yv), xytext=(9, 0), textcoords="offset points",
                        va="center", fontsize=8, color="0.35")  # fmt: skip
    n = (
        rows["n_establishments"]
        if "n_establishments" in rows.columns
        else pd.Series(np.nan, index=rows.index)
    )
    names = [
        cohort_label(g, lang)
        + (f" ({text('fig.n', lang, n=fmt_number(k, lang))})" if not s and pd.notna(k) else "")
        for g, k, s in zip(order, n, secret, strict=True)
    ]
    ax.set_yticks(y, names)
    ax.set_xlabel(cohort_label(indicator, lang))
    if scale == 100:
        ax.set_xlim(-3, 112)
        ax.set_xticks(range(0, 101, 20))
        percent_axis(ax.xaxis, lang, scale=100)
    else:
        number_axis(ax.xaxis, lang)
    when = cohort_label("all_years", lang) if str(period) == "all" else str(period)
    ax.set_title(f"{cohort_label(indicator, lang)} — {when}")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_family_distributions(
    metrics: pd.DataFrame,
    *,
    value: str = "findings_per_host",
    families: Sequence[str] | None = None,
    min_cell: int = 5,
    show_points: bool = False,
    seed: int = 0,
    title: str | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Boxplots of a per-establishment value by family on a log scale, optionally with the points.

    Parameters
    ----------
    metrics : DataFrame
        One row per establishment (e.g. :func:`~cyberobs_lib.studies.indicators.select_audits` output).
    value : str
        Column drawn (``findings_per_host``, ``n_crit_high``...).
    families : list of str, optional
        Families and their order (top to bottom). Default: sorted.
    min_cell : int
        Families with fewer establishments are not drawn (labelled secret).
    show_points : bool
        Add a jittered strip of the individual establishments (never in published reports: points are
        individual values). Boxes are the quartiles, whiskers reach the last values within the 10th and
        90th percentiles, with no outlier points.
    seed, title, ax, lang
        Jitter seed; title (default: the value by family); Axes; label language.

    Returns
    -------
    matplotlib Axes; x axis symmetric-log (linear below 0.1, so that zeros are shown).
    """
    data = metrics[["family", value]].dropna()
    order = list(families) if families else sorted(data["family"].unique())
    ax = axes_or_new(ax, (7, 0.6 * len(order) + 1.2))
    sizes = data["family"].value_counts()
    names = {
        family: (
            f"{cohort_label(family, lang)} ({text('fig.n', lang, n=fmt_number(int(sizes.get(family, 0)), lang))})"
            if sizes.get(family, 0) >= min_cell
            else text("fig.name_secret", lang, name=cohort_label(family, lang))
        )
        for family in order
    }
    # only the families of at least min_cell establishments carry values; the others keep their row, empty
    drawn = data[data["family"].map(sizes).ge(min_cell) & data["family"].isin(order)]
    drawn = drawn.assign(row=drawn["family"].map(names))
    rows = [names[f] for f in order]
    if not drawn.empty:
        # whiskers to the last values within the 10th and 90th percentiles, no outlier points: a published
        # figure shows neither the minimum nor the maximum of a family, nor any outlying establishment
        sns.boxplot(data=drawn, x=value, y="row", order=rows, orient="h", width=0.5, whis=(10, 90), showfliers=False,
                    color="lightsteelblue", linecolor="0.2", medianprops={"color": "k"}, ax=ax)  # fmt: skip
        if show_points:  # jittered with the given seed (seaborn's stripplot draws from numpy's global state)
            rng = np.random.default_rng(seed)
            where = drawn["row"].map({r: k for k, r in enumerate(rows)}).to_numpy(float)
            ax.scatter(
                drawn[value], where + rng.uniform(-0.18, 0.18, len(drawn)), s=6, alpha=0.35, color=DOT_COLOR
            )
    ax.set_xscale("symlog", linthresh=0.1)
    if not drawn.empty and (drawn[value] >= 0).all():
        ax.set_xlim(left=0)  # counts and rates: no negative side
    number_axis(ax.xaxis, lang)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first family on top
    ax.set_ylabel("")
    ax.set_xlabel(
        f"{cohort_label(value, lang)} ({cohort_label('log_scale', lang)})\n{text('fig.box.note', lang)}"
    )
    ax.set_title(title or text("fig.by_family.title", lang, value=cohort_label(value, lang)), loc="left")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_rate_ratios(
    ratios: pd.DataFrame,
    *,
    terms: Sequence[str] = ("family", "log_beds"),
    ratio: str = "rate_ratio",
    title: str | None = None,
    name_reference: bool | None = None,
    ax: Axes | None = None,
    lang: str = "fr",
) -> Axes:
    """Forest plot of rate (or odds) ratios with their intervals, log x axis and a line at 1.

    Parameters
    ----------
    ratios : DataFrame
        Output of :func:`~cyberobs_lib.studies.cohorts.adjusted_rate_ratios` (or ``adjusted_odds_ratios``
        with ``ratio="odds_ratio"``): ``term``, ``level``, ``reference``, the ratio, ``ci_low``,
        ``ci_high``, optionally ``outcome``.
    terms : list of str
        Terms drawn (covariates such as region are left out by default).
    ratio, title, ax, lang
        Ratio column; figure title (default: the ratios and their intervals); Axes; label language.
    name_reference : bool, optional
        Name the reference on every line ("EHPAD vs CH"); default: only when the levels have different
        references (one reference is said by the axis label, "rate ratio vs CH").

    Returns
    -------
    matplotlib Axes, one line per coefficient ("EHPAD vs CH (n = 46)", ``n``: the family's establishments when
    the table has ``n_family``), annotated with the ratio and its interval in the reader's locale.
    """
    rows = ratios[ratios["term"].isin(list(terms))].dropna(subset=[ratio])
    if rows.empty:
        raise ValueError(f"no coefficient of terms {list(terms)} to draw")
    multi = "outcome" in rows.columns and rows["outcome"].nunique() > 1
    levels = rows.loc[rows["level"].map(lambda v: isinstance(v, str)), "reference"]
    # one reference for every level: said once (in the title and axis), not on every line
    versus = name_reference if name_reference is not None else levels.nunique() > 1
    names = [
        (f"{cohort_label(o, lang)}: " if multi else "")
        + ((f"{cohort_label(lv, lang)} {cohort_label('vs', lang)} {cohort_label(ref, lang)}" if versus
            else cohort_label(lv, lang)) if isinstance(lv, str) else cohort_label(t, lang))
        for o, t, lv, ref in zip(rows.get("outcome", rows["term"]), rows["term"], rows["level"], rows["reference"],
                                 strict=True)
    ]  # fmt: skip
    if "n_family" in rows.columns:
        names = [f"{name} ({text('fig.n', lang, n=fmt_number(k, lang))})" if isinstance(lv, str) and pd.notna(k)
                 else name for name, lv, k in zip(names, rows["level"], rows["n_family"], strict=True)]  # fmt: skip
    ax = axes_or_new(ax, (7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    value, low, high = (rows[c].to_numpy(float) for c in (ratio, "ci_low", "ci_high"))
    ax.errorbar(
        value,
        y,
        xerr=np.clip(np.vstack([value - low, high - value]), 0, None),
        fmt="s",
        color=DOT_COLOR,
        capsize=3,
    )
    for v, lo, hi, yy in zip(value, low, high, y, strict=True):
        ax.annotate(f"{fmt_number(v, lang, decimals=2)} ({fmt_range(lo, hi, lang, decimals=2)})", (hi, yy), xytext=(5, 0), textcoords="offset points",
                    va="center", fontsize=8)  # fmt: skip
    ax.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
    ratio_axis(ax, low, high, lang)
    ax.set_yticks(y, names)
    refs = levels.dropna().unique()
    against = (
        f" {cohort_label('vs', lang)} {cohort_label(refs[0], lang)}" if not versus and len(refs) == 1 else ""
    )
    ax.set_xlabel(f"{label(ratio, lang)}{against} ({cohort_label('log_scale', lang)})")
    span = max(np.nanmax(high), 1 / np.nanmin(low), 1.5)
    ax.set_xlim(min(np.nanmin(low), 1 / 1.5) / 1.15, span * 1.9)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or text("fig.ratios.title", lang, ratio=label(ratio, lang)), loc="left")
    return ax
