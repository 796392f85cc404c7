"""Figures of the horizontal study. Each function takes ``ax=None`` and returns the Axes (never shows).

Paired figures follow the study's sign convention: change = follow-up − baseline, negative = fewer at
follow-up (see :mod:`cyberobs_lib.studies.longitudinal`); axes say it in words, in French or English.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.l10n import LOCALES, fmt_number, fmt_pvalue, fmt_range, text
from cyberobs_lib.plots import no_data, number_axis, percent_axis
from cyberobs_lib.report import label
from cyberobs_lib.stats.paired import DIRECTION_COLUMN, change_direction

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
#: The convention of the differences drawn by :func:`plot_paired_differences` (``effect_direction``).
PAIRED_DIRECTION = change_direction("baseline", "follow-up")
#: Colours of the lifecycle states (fixed, persistent, new, reopened), distinct in grey too.
LIFECYCLE_COLORS = ("#55A868", "#8C8C8C", "#C44E52", "#DD8452")


def _t(key: str, lang: str) -> str:
    return label(key, lang)


def _check_direction(tests: pd.DataFrame) -> None:
    """Refuse a tests table whose Wilcoxon effects are not follow-up − baseline: the printed r would have the
    opposite sign of the drawn differences."""
    rows = tests[tests["test"] == "wilcoxon_signed_rank"] if "test" in tests.columns else tests.iloc[0:0]
    if rows.empty or rows["p_value"].isna().all():
        return
    if DIRECTION_COLUMN not in tests.columns:
        raise ValueError(
            f"tests table without {DIRECTION_COLUMN!r}: the sign of r cannot be checked against the drawn "
            "follow-up − baseline differences (use studies.longitudinal.paired_tests)"
        )
    stated = rows[DIRECTION_COLUMN].dropna()
    wrong = stated[stated != PAIRED_DIRECTION]
    if len(wrong):
        raise ValueError(
            f"the Wilcoxon rows say {wrong.iloc[0]!r}; the figure draws {PAIRED_DIRECTION!r}: signs would disagree"
        )


def plot_slopes(
    pairs: pd.DataFrame, *, metric: str = "findings_per_host", ax=None, lang: str = "fr", max_lines: int = 400
):
    """Slope chart: one grey line per establishment from baseline to follow-up, median in bold."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 5))
    a, b = pairs[f"{metric}_a"].astype(float), pairs[f"{metric}_b"].astype(float)
    keep = a.notna() & b.notna()
    a, b = a[keep].to_numpy(), b[keep].to_numpy()
    if len(a) == 0:
        return no_data(ax, lang)
    shown = slice(None) if len(a) <= max_lines else np.linspace(0, len(a) - 1, max_lines).astype(int)
    for y0, y1 in zip(a[shown], b[shown], strict=True):
        color = "#55A868" if y1 < y0 else ("#C44E52" if y1 > y0 else "#8C8C8C")
        ax.plot([0, 1], [y0, y1], color=color, alpha=0.25, linewidth=0.8)
    ax.plot(
        [0, 1],
        [np.median(a), np.median(b)],
        color="black",
        linewidth=2.5,
        marker="o",
        label=_t("median", lang),
    )
    ax.set_xticks([0, 1], [_t("baseline", lang), _t("follow-up", lang)])
    ax.set_xlim(-0.2, 1.2)
    ax.set_ylabel(_t(metric, lang))
    number_axis(ax.yaxis, lang)
    ax.set_title(text("lon.fig.slopes.title", lang, n=fmt_number(len(a), lang)), loc="left")
    ax.legend(loc="upper right", frameon=False)
    return ax


def plot_paired_differences(
    pairs: pd.DataFrame,
    tests: pd.DataFrame,
    *,
    metrics=None,
    ax=None,
    lang: str = "fr",
    show_points: bool = False,
):
    """Distribution of the changes follow-up − baseline per metric (box, and each establishment's change as
    a point with ``show_points``), with the matched-pairs rank-biserial r and its CI written beside each
    metric.

    The box is the quartiles, the whiskers reach the last changes within the 10th and 90th percentiles, no
    outlier point: a published page shows no establishment's own change (``show_points`` only in a
    confidential report), as the distributions of :func:`cyberobs_lib.plots.cohorts.plot_family_distributions`.

    The axis says the convention in words (negative = fewer at follow-up) and r has the same sign as the
    drawn changes: ``tests`` must state ``effect_direction`` = ``follow-up − baseline (negative: fewer)`` on
    its Wilcoxon rows (:func:`cyberobs_lib.studies.longitudinal.paired_tests`), else ValueError.
    """
    import matplotlib.pyplot as plt

    metrics = list(metrics or ["findings_per_host", "n_crit_high", "n_kev"])
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.3 + 0.9 * len(metrics)))
    rng = np.random.default_rng(0)
    if pairs.empty:
        return no_data(ax, lang)
    _check_direction(tests)
    for i, metric in enumerate(metrics):
        d = (pairs[f"{metric}_b"].astype(float) - pairs[f"{metric}_a"].astype(float)).dropna().to_numpy()
        if len(d) == 0:
            continue
        ax.boxplot(
            d,
            positions=[i],
            orientation="horizontal",
            widths=0.5,
            whis=(10, 90),
            showfliers=False,
            medianprops={"color": "black"},
        )
        if show_points:
            ax.scatter(d, i + rng.uniform(-0.18, 0.18, len(d)), s=6, alpha=0.35, color="#4C72B0")
        row = tests[(tests["metric"] == metric) & (tests["test"] == "wilcoxon_signed_rank")]
        if len(row) and pd.notna(row.iloc[0]["p_value"]):
            r = row.iloc[0]
            ax.annotate(
                text(
                    "lon.fig.r",
                    lang,
                    r=fmt_number(r["effect_size"], lang, decimals=2),
                    ci=fmt_range(r["ci_low"], r["ci_high"], lang, decimals=2),
                    p=fmt_pvalue(r["p_adjusted"] if pd.notna(r.get("p_adjusted")) else r["p_value"], lang),
                ),
                xy=(1.01, i),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize="small",
            )
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(metrics)), [_t(m, lang) for m in metrics])
    number_axis(ax.xaxis, lang)
    ax.set_xlabel(text("lon.fig.change_axis", lang))
    ax.set_title(text("lon.fig.differences.title", lang, n=fmt_number(len(pairs), lang)), loc="left")
    return ax


def plot_lifecycle_counts(lifecycle: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Stacked bars of fixed / persistent / new / reopened findings, summed over pairs, per family (named in
    ``lang``, with its establishments)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    cols = ["n_fixed", "n_persistent", "n_new", "n_reopened"]
    table = lifecycle.groupby("family", observed=True)[cols].sum()
    if table.empty:
        return no_data(ax, lang)
    table = table.loc[table.sum(axis=1).sort_values().index]
    n = (
        lifecycle.groupby("family", observed=True)["n_establishments"].sum()
        if "n_establishments" in lifecycle
        else None
    )
    names = [
        _t(str(f), lang) + (f" ({text('fig.n', lang, n=fmt_number(n[f], lang))})" if n is not None else "")
        for f in table.index
    ]
    y = np.arange(len(table))
    left = np.zeros(len(table))
    for col, color in zip(cols, LIFECYCLE_COLORS, strict=True):
        ax.barh(y, table[col], left=left, color=color, label=_t(col[2:], lang))
        left += table[col].to_numpy()
    ax.set_yticks(y, names)
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    number_axis(ax.xaxis, lang)
    ax.set_xlabel(text("lon.fig.lifecycle.axis", lang))
    ax.set_title(text("lon.fig.lifecycle.title", lang), loc="left")
    return ax


def plot_survival_curves(
    table: pd.DataFrame, *, ax=None, lang: str = "fr", groups=None, at_risk: bool = True
):
    """Kaplan–Meier "still open" curves with their confidence bands, one per group, and the number at risk
    under the axis.

    Parameters
    ----------
    table : DataFrame
        The ``survival.csv`` table (:func:`cyberobs_lib.stats.survival.kaplan_meier`): ``group``,
        ``time_days``, ``survival``, ``ci_low``, ``ci_high``, ``at_risk``.
    at_risk : bool
        Write under the x axis, for each group, the findings still at risk (open and followed) at each
        tick (:func:`at_risk_counts`), as R ``survminer`` risk tables or ``lifelines.plotting.
        add_at_risk_counts`` do.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5 + (0.25 * table["group"].nunique() if at_risk else 0)))
    if groups is not None:
        table = table[table["group"].isin(groups)]
    names = list(dict.fromkeys(table["group"]))
    if not names:
        return no_data(ax, lang)
    names.sort(key=lambda g: (SEVERITY_ORDER.index(g) if g in SEVERITY_ORDER else 99, str(g)))
    colors = []
    for name in names:
        curve = table[table["group"] == name]
        line = ax.step(curve["time_days"], curve["survival"], where="post", label=_t(str(name), lang))[0]
        colors.append(line.get_color())
        ax.fill_between(
            curve["time_days"],
            curve["ci_low"],
            curve["ci_high"],
            step="post",
            alpha=0.15,
            color=line.get_color(),
        )
    ax.set_xlabel(_t("days_since_detection", lang))
    ax.set_ylabel(_t("open", lang))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    number_axis(ax.xaxis, lang)
    percent_axis(ax.yaxis, lang)
    for d in (90, 365):
        ax.axvline(d, color="grey", linestyle=":", linewidth=1)
    ax.legend(frameon=False, fontsize="small")
    if at_risk:
        _draw_at_risk(ax, table, names, colors, lang)
    return ax


def at_risk_counts(table: pd.DataFrame, times) -> pd.DataFrame:
    """Number at risk of each group of a Kaplan–Meier table at the given times.

    At time t it is the ``at_risk`` of the first row of the group at or after t (findings still open and
    followed just before t), 0 after the last row.

    >>> km = pd.DataFrame({"group": ["a"] * 3, "time_days": [0.0, 10.0, 30.0], "at_risk": [5, 5, 2]})
    >>> at_risk_counts(km, [0, 10, 20, 40]).to_dict("records")
    [{'group': 'a', 'time_days': 0, 'at_risk': 5}, {'group': 'a', 'time_days': 10, 'at_risk': 5}, {'group': 'a', 'time_days': 20, 'at_risk': 2}, {'group': 'a', 'time_days': 40, 'at_risk': 0}]
    """
    rows = []
    for name, curve in table.groupby("group", sort=False):
        curve = curve.sort_values("time_days")
        times_seen = curve["time_days"].to_numpy(float)
        counts = curve["at_risk"].to_numpy()
        for t in times:
            i = int(np.searchsorted(times_seen, float(t), side="left"))
            rows.append({"group": name, "time_days": t, "at_risk": int(counts[i]) if i < len(counts) else 0})
    return pd.DataFrame(rows, columns=["group", "time_days", "at_risk"])


def _draw_at_risk(ax, table: pd.DataFrame, names: list, colors: list, lang: str) -> None:
    """The at-risk counts under the x axis at its ticks, one row per group in the group's colour."""
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    ax.set_xticks(ticks)  # frozen, so that every count stays under its tick
    counts = at_risk_counts(table[table["group"].isin(names)], ticks)
    top = -0.2
    ax.annotate(text("lon.fig.at_risk", lang), xy=(0, top), xycoords="axes fraction", ha="left", va="top",
                fontsize="small", annotation_clip=False)  # fmt: skip
    for k, (name, color) in enumerate(zip(names, colors, strict=True)):
        y = top - 0.075 * (k + 1)
        ax.annotate(_t(str(name), lang), xy=(0, y), xycoords="axes fraction", xytext=(-24, 0),
                    textcoords="offset points", ha="right", va="top", fontsize="x-small", color=color,
                    annotation_clip=False)  # fmt: skip
        for r in counts[counts["group"] == name].itertuples(index=False):
            ax.annotate(fmt_number(r.at_risk, lang), xy=(r.time_days, y), xycoords=("data", "axes fraction"), ha="center",
                        va="top", fontsize="x-small", color=color, annotation_clip=False)  # fmt: skip


def plot_close_rate(close: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """The monthly close rate (findings closed during a month / findings open at its start), in percent.

    ``close`` is the ``remediation_close_rate`` table (``month``, ``close_rate``, ``open_at_start``); months
    without open findings (no rate) are left out.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    shown = close.dropna(subset=["close_rate"]) if len(close) else close
    if shown.empty:
        return no_data(ax, lang)
    months = pd.to_datetime(shown["month"])
    ax.plot(months, shown["close_rate"], marker="o", color="#4C72B0")
    ax.set_ylabel(text("lon.fig.close_rate.axis", lang))
    percent_axis(ax.yaxis, lang)
    ax.set_ylim(bottom=0)
    ax.set_title(text("lon.fig.close_rate.title", lang), loc="left")
    _month_axis(ax, months, lang)
    ax.grid(axis="y", alpha=0.3)
    return ax


def _month_axis(ax, months: pd.Series, lang: str) -> None:
    """Ticks on the first month of each quarter, written "janv. 2024" / "Jan 2024" in ``lang``."""
    import matplotlib.dates as mdates
    from babel.dates import format_date
    from matplotlib.ticker import FixedLocator, FuncFormatter

    ticks = [m for m in months if m.month in (1, 4, 7, 10)] or list(months)
    ax.xaxis.set_major_locator(FixedLocator(mdates.date2num(ticks)))
    ax.xaxis.set_major_formatter(
        FuncFormatter(
            lambda v, _: format_date(mdates.num2date(v).date(), format="MMM y", locale=LOCALES[lang])
        )
    )
    for tick in ax.get_xticklabels():
        tick.set_rotation(45)
        tick.set_ha("right")
