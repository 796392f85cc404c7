"""The annual summary: the year's headline figures, their evolution, written out for a general reader.

Functions here only assemble what the studies compute (indicators, family ratios, remediation, incidents)
into short tables, sentences and figures; every number comes with its interval. Every word comes from the
catalog (:mod:`cyberobs_lib.l10n`, ``data/labels.csv``): the headline sentence of an indicator is
``annual.headline.<indicator>``, its short name ``annual.indicator.<indicator>``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.l10n import (
    fmt_ci,
    fmt_number,
    fmt_percent,
    fmt_pvalue,
    has,
    label,
    md_text,
    share_in_words,
    text,
)

#: Headline indicators in reading order; each has a sentence ``annual.headline.<key>`` and a short name
#: ``annual.indicator.<key>`` in the catalog.
HEADLINES = ("no_protection", "has_critical", "exposes_remote_admin", "has_kev")
#: Markers and line styles of the evolution figure, one per headline (apart in grey print).
LINE_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))


def indicator_name(key: str, lang: str = "fr") -> str:
    """The short name of an indicator ("sans mécanisme de protection"); its label when it has none."""
    return text(f"annual.indicator.{key}", lang) if has(f"annual.indicator.{key}") else label(key, lang)


def headline_table(indicators: pd.DataFrame, *, year: int | str, lang: str = "fr") -> pd.DataFrame:
    """The year's headline shares for all audited structures: value, interval, establishments.

    ``indicators`` is the output of :func:`studies.indicators.compute_indicators` (group ``all`` used).
    ``label`` is the indicator's short name in ``lang``. A year without indicators gives an empty table with
    the same columns.

    >>> headline_table(pd.DataFrame(columns=["indicator", "group", "period"]), year=2026).columns.tolist()[-2:]
    ['ci_method', 'suppressed']
    """
    year = str(year)
    rows = []
    for key in HEADLINES:
        row = indicators[
            (indicators["indicator"] == key)
            & (indicators["group"] == "all")
            & (indicators["period"].astype(str) == year)
        ]
        if row.empty:
            continue
        r = row.iloc[0]
        rows.append(
            {
                "indicator": key,
                "label": indicator_name(key, lang),
                "value": r["value"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "n_establishments": r["n_establishments"],
                "ci_method": r["ci_method"],
                "suppressed": bool(r.get("suppressed", False)),
            }
        )
    columns = [
        "indicator",
        "label",
        "value",
        "ci_low",
        "ci_high",
        "n_establishments",
        "ci_method",
        "suppressed",
    ]
    return pd.DataFrame(rows, columns=columns).astype({"suppressed": bool})


def unavailable_headlines(summary: dict | None, lang: str = "fr") -> dict[str, str]:
    """Headline indicators that the dataset cannot measure, with the reason in ``lang``: today the KEV
    share when no KEV catalog was given at ingestion (``summary["catalogs"]["kev"]`` empty), which makes
    every ``has_kev`` false: unknown, not 0 %.

    >>> unavailable_headlines({"catalogs": {"kev": None}}, "en")
    {'has_kev': 'not available: no KEV catalog was given at ingestion'}
    >>> unavailable_headlines({"catalogs": {"kev": {"count": 49}}}, "en")
    {}
    """
    catalogs = (summary or {}).get("catalogs")
    if not isinstance(catalogs, dict) or catalogs.get("kev"):
        return {}
    return {"has_kev": text("annual.unavailable.no_kev_catalog", lang)}


def headline_sentence(row, *, year: int | str, lang: str = "fr", level: float = 0.95) -> str:
    """One indicator in one plain sentence (Markdown): "**Un tiers** des 85 structures auditées en 2025
    (33 %, IC 95 % : 24 %–43 %) n'avaient aucun mécanisme de protection."

    ``row`` is a row of :func:`headline_table` (attributes ``indicator``, ``label``, ``value``, ``ci_low``,
    ``ci_high``, ``n_establishments``). An indicator without a sentence of its own gets the generic one,
    naming its label.
    """
    key = f"annual.headline.{row.indicator}"
    share = share_in_words(row.value, lang)
    value = fmt_percent(row.value, lang, decimals=0)
    ci = fmt_ci(row.ci_low, row.ci_high, kind="percent", lang=lang, level=level)
    # the share in words, then its percentage and interval; a share without simple fraction is its percentage
    detail = ci if share == value else text("annual.value_ci", lang, value=value, ci=ci)
    fields = {"share": share, "n": fmt_number(row.n_establishments, lang), "year": year, "detail": detail}
    if has(key):
        return md_text(key, lang, **fields)
    return md_text("annual.headline.generic", lang, label=row.label, **fields)


def headline_sentences(
    headlines: pd.DataFrame,
    *,
    year: int | str,
    lang: str = "fr",
    unavailable: dict[str, str] | None = None,
    level: float = 0.95,
) -> str:
    """The headline figures as Markdown bullets, one plain sentence per indicator, then the denominators.

    Examples
    --------
    >>> h = pd.DataFrame([{"indicator": "no_protection", "label": "no protection", "value": 0.33,
    ...                    "ci_low": 0.24, "ci_high": 0.43, "n_establishments": 85,
    ...                    "ci_method": "wilson", "suppressed": False}])
    >>> print(headline_sentences(h, year=2025, lang="en"))
    - **A third** of the 85 structures audited in 2025 (33%, 95% CI: 24%–43%) had no protection mechanism.
    <BLANKLINE>
    Each share is out of the structures audited in 2025 whose audit is complete (a structure counts once, for its first audit of the year).

    ``unavailable`` maps an indicator to the reason it cannot be measured (:func:`unavailable_headlines`):
    its line says so instead of giving a value; a suppressed indicator says "statistical secrecy".
    """
    lines = []
    for r in headlines.itertuples(index=False):
        if r.indicator in (unavailable or {}):
            lines.append("- " + md_text("annual.headline.unavailable", lang, label=r.label,
                                        reason=unavailable[r.indicator]))  # fmt: skip
        elif r.suppressed or pd.isna(r.value):
            lines.append("- " + md_text("annual.headline.secret", lang, label=r.label))
        else:
            lines.append("- " + headline_sentence(r, year=year, lang=lang, level=level))
    if not lines:
        return ""
    return (
        "\n".join(lines)
        + "\n\n"
        + denominator_sentences(headlines, year=year, lang=lang, unavailable=unavailable)
    )


def denominator_sentences(
    headlines: pd.DataFrame, *, year: int | str, lang: str = "fr", unavailable: dict[str, str] | None = None
) -> str:
    """What the shares are out of, and why an indicator has fewer structures than the others (Markdown).

    >>> h = pd.DataFrame({"indicator": ["no_protection", "has_critical"], "label": ["a", "b"],
    ...                   "value": [0.3, 0.4], "n_establishments": [85, 88], "suppressed": False})
    >>> print(denominator_sentences(h, year=2025, lang="fr").splitlines()[-1])
    La part sans mécanisme de protection porte sur 85 structures et non 88 : pour les autres, les mécanismes de protection n'ont pas été relevés lors de l'audit.
    """
    known = headlines[~headlines["suppressed"].astype(bool) & headlines["value"].notna()]
    known = known[~known["indicator"].isin(list(unavailable or {}))]
    out = [md_text("annual.den.common", lang, year=year)]
    if known.empty:
        return out[0]
    total = int(known["n_establishments"].max())
    for r in known.itertuples(index=False):
        if int(r.n_establishments) >= total:
            continue
        key = f"annual.den.{r.indicator}" if has(f"annual.den.{r.indicator}") else "annual.den.other"
        out.append(md_text(key, lang, n=fmt_number(r.n_establishments, lang), total=fmt_number(total, lang),
                           label=r.label))  # fmt: skip
    return " ".join(out[:1]) + ("\n\n" + " ".join(out[1:]) if len(out) > 1 else "")


def family_label(name: str, lang: str = "fr") -> str:
    """Reader-facing family name (``data/labels.csv``; the registry's name when it has no label)."""
    return label(name, lang)


def _percent_axis(axis, lang: str) -> None:
    import matplotlib.pyplot as plt

    axis.set_major_formatter(plt.FuncFormatter(lambda v, _: fmt_percent(v, lang, decimals=0)))


def plot_evolution(
    indicators: pd.DataFrame, *, indicators_shown=HEADLINES, ax=None, lang: str = "fr", level: float = 0.95
):
    """Yearly evolution of the headline shares (all structures), with their intervals; returns the Axes.

    Titled, in ``lang``; each indicator has its own marker and line style (apart in grey print); the x axis
    gives each year's audited structures (``n``).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    sub = indicators[(indicators["group"] == "all") & (indicators["period"].astype(str) != "all")].copy()
    sub = sub[sub["indicator"].isin(list(indicators_shown))]
    sub["year"] = sub["period"].astype(int)
    for i, key in enumerate(indicators_shown):
        line = sub[sub["indicator"] == key].dropna(subset=["value"]).sort_values("year")
        if line.empty:
            continue
        x = line["year"] + (i - 1.5) * 0.04
        err = np.clip(np.vstack([line["value"] - line["ci_low"], line["ci_high"] - line["value"]]), 0, None)
        marker, style = LINE_STYLES[i % len(LINE_STYLES)]
        ax.errorbar(x, line["value"], yerr=np.nan_to_num(err), marker=marker, linestyle=style, capsize=3,
                    label=indicator_name(key, lang))  # fmt: skip
    ax.set_ylim(0, 1)
    _percent_axis(ax.yaxis, lang)
    years = sorted(sub["year"].unique())
    n = sub.groupby("year")["n_establishments"].max() if "n_establishments" in sub else pd.Series(dtype=float)
    ticks = [
        str(y)
        + ("\n" + text("fig.n", lang, n=fmt_number(n[y], lang)) if y in n.index and pd.notna(n[y]) else "")
        for y in years
    ]
    ax.set_xticks(years, ticks)
    ax.set_ylabel(text("annual.fig.share_axis", lang, level=fmt_percent(level, lang, decimals=0)))
    if years:
        span = str(years[0]) if years[0] == years[-1] else f"{years[0]}–{years[-1]}"
        ax.set_title(text("annual.fig.evolution.title", lang, years=span), loc="left")
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to label when no year has indicators
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False, fontsize="small")
    return ax


def plot_family_shares(
    indicators: pd.DataFrame,
    *,
    indicator: str = "no_protection",
    year: int | str,
    ax=None,
    lang: str = "fr",
    min_families: int = 1,
):
    """One headline share by family for the year, sorted, with intervals and each family's ``n``; suppressed
    cells marked "secret statistique"; the dashed line is all structures. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    sub = indicators[
        (indicators["indicator"] == indicator)
        & (indicators["period"].astype(str) == str(year))
        & (indicators["group"] != "all")
    ].copy()
    shown = sub["value"].notna() & ~sub.get("suppressed", pd.Series(False, index=sub.index)).astype(bool)
    sub["label"] = [
        family_label(g, lang)
        + (f" ({text('fig.n', lang, n=fmt_number(n, lang))})" if ok and pd.notna(n) else "")
        for g, n, ok in zip(sub["group"], sub["n_establishments"], shown, strict=True)
    ]
    sub = sub.assign(_shown=shown).sort_values(["_shown", "value"], na_position="first")
    y = np.arange(len(sub))
    shown = sub["_shown"].to_numpy()
    ax.errorbar(
        sub["value"][shown],
        y[shown],
        xerr=np.clip(
            np.vstack([(sub["value"] - sub["ci_low"])[shown], (sub["ci_high"] - sub["value"])[shown]]),
            0,
            None,
        ),
        fmt="o",
        color="#2F4B7C",
        capsize=3,
    )
    for yy in y[~shown]:
        ax.text(
            0.01, yy, text("fig.secret", lang), va="center", color="0.35", fontsize="small", style="italic"
        )
    overall = indicators[
        (indicators["indicator"] == indicator)
        & (indicators["group"] == "all")
        & (indicators["period"].astype(str) == str(year))
    ]
    if len(overall) and pd.notna(overall["value"].iloc[0]):
        ax.axvline(overall["value"].iloc[0], color="0.3", linestyle="--", linewidth=1,
                   label=text("annual.fig.all_line", lang))  # fmt: skip
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    ax.set_yticks(y, sub["label"])
    ax.set_xlim(0, 1)
    _percent_axis(ax.xaxis, lang)
    ax.set_xlabel(text("annual.fig.family_axis", lang))
    ax.set_title(text("annual.fig.family.title", lang, indicator=indicator_name(indicator, lang), year=year),
                 fontsize="medium", loc="left")  # fmt: skip
    ax.grid(axis="x", alpha=0.3)
    return ax


def paired_view(paired: pd.DataFrame, tests: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """The first-versus-last-audit comparison as a reader's table: one row per measure, its structures
    followed, its value at the first and last audit (medians as numbers, shares in percent), the change and
    the adjusted p-value of its test (Wilcoxon for medians, McNemar for shares), all written in ``lang``.

    ``paired`` and ``tests`` are the published :func:`~cyberobs_lib.studies.longitudinal.paired_summary` and
    :func:`~cyberobs_lib.studies.longitudinal.paired_tests`; suppressed rows keep their ``suppressed`` flag
    and show no number.

    >>> p = pd.DataFrame({"metric": ["no_protection"], "statistic": ["share"], "n_pairs": [120],
    ...                   "baseline": [0.5], "follow_up": [0.4], "median_difference": [None],
    ...                   "share_difference": [-0.1], "suppressed": [False]})
    >>> t = pd.DataFrame({"metric": ["no_protection"], "test": ["mcnemar"], "p_adjusted": [0.0312]})
    >>> paired_view(p, t, "fr")[["baseline", "follow_up", "change", "p_adjusted"]].iloc[0].tolist()
    ['50\\xa0%', '40\\xa0%', '-10 points', '0,031']
    """
    chosen = tests[tests["test"].isin(["wilcoxon_signed_rank", "mcnemar"])] if len(tests) else tests
    p = dict(zip(chosen.get("metric", []), chosen.get("p_adjusted", []), strict=True))
    rows = []
    for r in paired.itertuples(index=False):
        hidden = bool(getattr(r, "suppressed", False))
        share = r.statistic == "share"

        def value(x, share=share, hidden=hidden):
            if hidden or pd.isna(x):
                return ""
            return fmt_percent(x, lang, decimals=0) if share else fmt_number(x, lang)

        diff = r.share_difference if share else r.median_difference
        if hidden or pd.isna(diff):
            change = ""
        elif share:
            change = text("annual.points", lang, n=fmt_number(round(100 * diff), lang))
        else:
            change = fmt_number(diff, lang)
        rows.append(
            {
                "metric": r.metric,
                "n_pairs": pd.NA if hidden else r.n_pairs,
                "baseline": value(r.baseline),
                "follow_up": value(r.follow_up),
                "change": change,
                "p_adjusted": ""
                if hidden or pd.isna(p.get(r.metric))
                else fmt_pvalue(p[r.metric], lang, prefix=False),
                "suppressed": hidden,
            }
        )
    columns = ["metric", "n_pairs", "baseline", "follow_up", "change", "p_adjusted", "suppressed"]
    return pd.DataFrame(rows, columns=columns)
