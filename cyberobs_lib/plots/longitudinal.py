"""Figures of the horizontal study. Each function takes ``ax=None`` and returns the Axes (never shows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.plots import no_data
from cyberobs_lib.report import label

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def _t(key: str, lang: str) -> str:
    return label(key, lang)


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
    ax.legend(loc="upper right", frameon=False)
    return ax


def plot_paired_differences(
    pairs: pd.DataFrame, tests: pd.DataFrame, *, metrics=None, ax=None, lang: str = "fr"
):
    """Distribution of follow-up − baseline differences per metric (strip + box), with the
    rank-biserial effect size and its CI written beside each metric."""
    import matplotlib.pyplot as plt

    metrics = list(metrics or ["findings_per_host", "n_crit_high", "n_kev"])
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.3 + 0.9 * len(metrics)))
    rng = np.random.default_rng(0)
    if pairs.empty:
        return no_data(ax, lang)
    for i, metric in enumerate(metrics):
        d = (pairs[f"{metric}_b"].astype(float) - pairs[f"{metric}_a"].astype(float)).dropna().to_numpy()
        if len(d) == 0:
            continue
        ax.boxplot(
            d,
            positions=[i],
            orientation="horizontal",
            widths=0.5,
            showfliers=False,
            medianprops={"color": "black"},
        )
        ax.scatter(d, i + rng.uniform(-0.18, 0.18, len(d)), s=6, alpha=0.35, color="#4C72B0")
        row = tests[(tests["metric"] == metric) & (tests["test"] == "wilcoxon_signed_rank")]
        if len(row) and pd.notna(row.iloc[0]["p_value"]):
            r = row.iloc[0]
            ax.annotate(
                f"r = {r['effect_size']:.2f} [{r['ci_low']:.2f}; {r['ci_high']:.2f}], p = {r['p_value']:.2g}",
                xy=(1.01, i),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize="small",
            )
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(metrics)), [_t(m, lang) for m in metrics])
    ax.set_xlabel(_t("difference", lang))
    return ax


def plot_lifecycle_counts(lifecycle: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Stacked bars of new / persistent / fixed / reopened findings, summed over pairs, per family."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    cols = ["n_fixed", "n_persistent", "n_new", "n_reopened"]
    colors = ["#55A868", "#8C8C8C", "#C44E52", "#DD8452"]
    table = lifecycle.groupby("family", observed=True)[cols].sum()
    if table.empty:
        return no_data(ax, lang)
    table = table.loc[table.sum(axis=1).sort_values().index]
    left = np.zeros(len(table))
    for col, color in zip(cols, colors, strict=True):
        ax.barh(table.index, table[col], left=left, color=color, label=_t(col[2:], lang))
        left += table[col].to_numpy()
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    ax.set_xlabel(
        "constats (somme des paires d'audits)" if lang == "fr" else "findings (sum over audit pairs)"
    )
    return ax


def plot_survival_curves(table: pd.DataFrame, *, ax=None, lang: str = "fr", groups=None):
    """Kaplan–Meier "still open" curves with their confidence bands, one per group."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    if groups is not None:
        table = table[table["group"].isin(groups)]
    names = list(dict.fromkeys(table["group"]))
    if not names:
        return no_data(ax, lang)
    names.sort(key=lambda g: (SEVERITY_ORDER.index(g) if g in SEVERITY_ORDER else 99, str(g)))
    for name in names:
        curve = table[table["group"] == name]
        line = ax.step(curve["time_days"], curve["survival"], where="post", label=_t(str(name), lang))[0]
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
    for d in (90, 365):
        ax.axvline(d, color="grey", linestyle=":", linewidth=1)
    ax.legend(frameon=False, fontsize="small")
    return ax
