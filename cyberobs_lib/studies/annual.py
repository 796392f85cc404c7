"""The annual summary: the year's headline figures, their evolution, written out for a general reader.

Functions here only assemble what the studies compute (indicators, family ratios, remediation, incidents)
into short tables and sentences; every number comes with its interval and the method named once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.report import label
from cyberobs_lib.studies.markup import escape_markdown

#: Headline indicators in reading order, with French and English wording of "share of audited structures ...".
HEADLINES = {
    "no_protection": (
        "sans aucun mécanisme de protection mis en œuvre",
        "with no protection mechanism implemented",
    ),
    "has_critical": ("avec au moins une vulnérabilité critique", "with at least one critical vulnerability"),
    "exposes_remote_admin": (
        "exposant une administration à distance (RDP, SMB, Telnet, bases de données…)",
        "exposing remote administration (RDP, SMB, Telnet, databases…)",
    ),
    "has_kev": (
        "avec une vulnérabilité activement exploitée (catalogue KEV)",
        "with an actively exploited vulnerability (KEV catalog)",
    ),
}


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.0f} %"


def headline_table(indicators: pd.DataFrame, *, year: int | str, lang: str = "fr") -> pd.DataFrame:
    """The year's headline shares for all audited structures: value, 95 % interval, establishments.

    ``indicators`` is the output of :func:`studies.indicators.compute_indicators` (group ``all`` used).
    A year without indicators gives an empty table with the same columns.

    >>> headline_table(pd.DataFrame(columns=["indicator", "group", "period"]), year=2026).columns.tolist()[-2:]
    ['ci_method', 'suppressed']
    """
    year = str(year)
    rows = []
    for key, (fr, en) in HEADLINES.items():
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
                "label": fr if lang == "fr" else en,
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
    if lang == "fr":
        return {"has_kev": "non disponible : aucun catalogue KEV n'a été fourni à l'ingestion"}
    return {"has_kev": "not available: no KEV catalog was given at ingestion"}


def headline_sentences(
    headlines: pd.DataFrame, *, year: int | str, lang: str = "fr", unavailable: dict[str, str] | None = None
) -> str:
    """The headline figures as Markdown bullets, e.g. "64 % [57 %; 72 %] of the 161 audited structures ...".

    Examples
    --------
    >>> h = pd.DataFrame([{"indicator": "no_protection", "label": "with no protection mechanism implemented",
    ...                    "value": 0.7, "ci_low": 0.6, "ci_high": 0.78, "n_establishments": 120,
    ...                    "ci_method": "wilson", "suppressed": False}])
    >>> print(headline_sentences(h, year=2025, lang="en"))
    - **70 %** [60 %; 78 %] of the 120 structures audited in 2025 were with no protection mechanism implemented.
    <BLANKLINE>
    *95 % confidence intervals: wilson.*

    ``unavailable`` maps an indicator to the reason it cannot be measured (:func:`unavailable_headlines`):
    its line says so instead of giving a value.
    """
    lines = []
    for r in headlines.itertuples(index=False):
        name = escape_markdown(r.label)
        if r.indicator in (unavailable or {}):
            lines.append(f"- {name}: {escape_markdown(unavailable[r.indicator])}")
            continue
        if r.suppressed or pd.isna(r.value):
            lines.append(
                f"- {name}: " + ("secret statistique" if lang == "fr" else "suppressed (small cell)")
            )
            continue
        if lang == "fr":
            lines.append(
                f"- **{_pct(r.value)}** [{_pct(r.ci_low)} ; {_pct(r.ci_high)}] des "
                f"{int(r.n_establishments)} structures auditées en {year} étaient {name}."
            )
        else:
            lines.append(
                f"- **{_pct(r.value)}** [{_pct(r.ci_low)}; {_pct(r.ci_high)}] of the "
                f"{int(r.n_establishments)} structures audited in {year} were {name}."
            )
    known = headlines["ci_method"].dropna().astype(str) if len(headlines) else pd.Series(dtype=str)
    methods = ", ".join(sorted({m for m in known if not m.startswith("unavailable")}))
    note = (
        f"*Intervalles de confiance à 95 % : {methods}.*"
        if lang == "fr"
        else f"*95 % confidence intervals: {methods}.*"
    )
    return "\n".join(lines) + "\n\n" + note


def family_label(name: str, lang: str = "fr") -> str:
    """Reader-facing family name (``data/labels.csv``; the registry's name when it has no label)."""
    return label(name, lang)


def plot_evolution(indicators: pd.DataFrame, *, indicators_shown=tuple(HEADLINES), ax=None, lang: str = "fr"):
    """Yearly evolution of the headline shares (all structures), with 95 % intervals; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    sub = indicators[(indicators["group"] == "all") & (indicators["period"].astype(str) != "all")].copy()
    sub["year"] = sub["period"].astype(int)
    for i, key in enumerate(indicators_shown):
        line = sub[sub["indicator"] == key].sort_values("year")
        if line.empty:
            continue
        x = line["year"] + (i - 1.5) * 0.04
        err = np.clip(np.vstack([line["value"] - line["ci_low"], line["ci_high"] - line["value"]]), 0, None)
        ax.errorbar(
            x, line["value"], yerr=err, marker="o", capsize=3, label=HEADLINES[key][0 if lang == "fr" else 1]
        )
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f} %"))
    years = sorted(sub["year"].unique())
    ax.set_xticks(years, [str(y) for y in years])
    ax.set_ylabel("part des structures auditées" if lang == "fr" else "share of audited structures")
    if ax.get_legend_handles_labels()[0]:  # nothing to label when no year has indicators
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False, fontsize="small")
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
    """One headline share by family for the year, sorted, with intervals; suppressed cells marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    sub = indicators[
        (indicators["indicator"] == indicator)
        & (indicators["period"].astype(str) == str(year))
        & (indicators["group"] != "all")
    ].copy()
    sub["label"] = [family_label(g, lang) for g in sub["group"]]
    sub = sub.sort_values("value", na_position="first")
    y = np.arange(len(sub))
    shown = sub["value"].notna().to_numpy()
    ax.errorbar(
        sub["value"][shown],
        y[shown],
        xerr=np.clip(
            np.vstack([(sub["value"] - sub["ci_low"])[shown], (sub["ci_high"] - sub["value"])[shown]]),
            0,
            None,
        ),
        fmt="o",
        color="#4C72B0",
        capsize=3,
    )
    for yy in y[~shown]:
        ax.text(
            0.01,
            yy,
            "secret statistique" if lang == "fr" else "suppressed (small cell)",
            va="center",
            color="grey",
            fontsize="small",
            style="italic",
        )
    overall = indicators[
        (indicators["indicator"] == indicator)
        & (indicators["group"] == "all")
        & (indicators["period"].astype(str) == str(year))
    ]
    if len(overall) and pd.notna(overall["value"].iloc[0]):
        ax.axvline(overall["value"].iloc[0], color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, sub["label"])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f} %"))
    ax.set_title(
        HEADLINES.get(indicator, (indicator, indicator))[0 if lang == "fr" else 1], fontsize="medium"
    )
    return ax
