"""Figures survive what national-size data throws at them (regressions seen on real runs)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cyberobs_lib.plots.incidents import plot_exposure_vs_rate  # noqa: E402
from cyberobs_lib.studies.annual import plot_evolution  # noqa: E402


def test_interval_bound_equal_to_value_up_to_rounding_is_drawn():
    """A share of 1.0 whose Wilson upper bound is 1.0 - 1e-16 must not make matplotlib refuse a negative
    error bar (it failed the 10,000-establishment annual run once)."""
    side = pd.DataFrame(
        {
            "period": ["all", "all"],
            "group": ["A", "B"],
            "exposes_remote_admin": [1.0, 0.4],
            "exposes_remote_admin_ci_low": [0.9, 0.3],
            "exposes_remote_admin_ci_high": [1.0 - 1e-16, 0.5],
            "incident_rate_per_1000": [10.0, 20.0],
            "rate_ci_low": [5.0, 15.0],
            "rate_ci_high": [15.0, 25.0],
        }
    )
    ax = plot_exposure_vs_rate(side, exposure="exposes_remote_admin", period="all")
    assert len(ax.collections) >= 1
    plt.close("all")


def test_evolution_plot_draws_one_line_per_headline():
    rows = []
    for year in (2023, 2024):
        for key in ("no_protection", "has_critical"):
            rows.append(
                {
                    "indicator": key,
                    "group": "all",
                    "period": str(year),
                    "value": 0.5,
                    "ci_low": 0.5 + 1e-17,
                    "ci_high": 0.6,
                }
            )
    ax = plot_evolution(pd.DataFrame(rows), lang="en")
    assert len(ax.get_legend().get_texts()) == 2
    plt.close("all")


# --- every figure speaks the reader's language, is titled and shows its n ---------------------------------

#: A few words of each language that a figure of the other language must not show (whole words).
OTHER_LANGUAGE = {
    "fr": [
        "the",
        "of",
        "share",
        "and",
        "suppressed",
        "findings",
        "family",
        "establishments",
        "audited",
        "rank",
    ],
    "en": ["les", "des", "part", "secret", "vulnérabilités", "famille", "établissements", "auditées", "rang"],
}


def _indicators() -> pd.DataFrame:
    rows = []
    for period in ("2024", "2025"):
        for group, n, secret in (("CH", 24, False), ("Army", 2, True), ("Private clinic (MCO)", 1230, False),
                                 ("all", 1256, False)):  # fmt: skip
            for key in ("no_protection", "exposes_remote_admin", "has_critical"):
                rows.append({"indicator": key, "group": group, "period": period,
                             "n_establishments": None if secret else n, "value": None if secret else 0.308,
                             "ci_low": None if secret else 0.24, "ci_high": None if secret else 0.43,
                             "suppressed": secret})  # fmt: skip
    return pd.DataFrame(rows)


def _figures(lang: str) -> dict:
    """Every figure of the converted plot modules, drawn on small tables in ``lang``."""
    from cyberobs_lib.plots import cohorts, incidents
    from cyberobs_lib.studies import annual, establishment
    from cyberobs_lib.studies import data_quality as dq

    ind = _indicators()
    acc = pd.DataFrame({"source_file": ["a.csv", "b.csv"], "table": ["audits", "findings"], "rows_read": [1230, 5],
                        "kept": [1200, 5], "rejected": [20, 0], "duplicates": [10, 0], "skipped": [0, 0]})  # fmt: skip
    sev = pd.DataFrame({"critical": [1, 0], "high": [4, 2], "medium": [9, 5], "low": [3, 1]},
                       index=pd.to_datetime(["2024-01-17", "2025-03-12"]).date)  # fmt: skip
    ranks = pd.DataFrame(
        {"metric": ["findings_per_host", "n_kev"], "family": "CH", "percentile": [45.6, None]}
    )
    rates = pd.DataFrame({"indicator": "incident_rate_per_1000", "group": ["CH", "Army", "all"], "period": "2025",
                          "n_establishments": [12, None, 63], "value": [186.7, None, 58.8],
                          "ci_low": [102.0, None, 45.5], "ci_high": [313.2, None, 74.8],
                          "suppressed": [False, True, False]})  # fmt: skip
    trends = pd.concat([rates.assign(period=p) for p in ("2024", "2025")])
    ors = pd.DataFrame({"exposure": ["has_kev", "exposes_remote_admin"], "n": [1230, 88], "odds_ratio": [1.5, 0.8],
                        "ci_low": [1.1, 0.5], "ci_high": [2.1, 1.3]})  # fmt: skip
    side = pd.DataFrame({"period": "all", "group": ["CH", "EHPAD"], "has_kev": [0.3, 0.5],
                         "has_kev_ci_low": [0.2, 0.4], "has_kev_ci_high": [0.4, 0.6],
                         "incident_rate_per_1000": [100.0, 20.0], "rate_ci_low": [80.0, 10.0],
                         "rate_ci_high": [120.0, 30.0]})  # fmt: skip
    metrics = pd.DataFrame(
        {"family": ["CH"] * 6 + ["EHPAD"] * 2, "findings_per_host": [0.5, 1, 2, 3, 4, 5, 1, 2]}
    )
    ratios = pd.DataFrame({"term": ["family", "family", "log_beds"], "level": ["EHPAD", "Army", None],
                           "reference": ["CH", "CH", None], "rate_ratio": [1.2, 0.7, 1.4], "ci_low": [0.6, 0.4, 1.2],
                           "ci_high": [2.3, 1.1, 1.6], "n_family": [46, 12, None]})  # fmt: skip
    return {
        "evolution": annual.plot_evolution(ind, lang=lang),
        "family_shares": annual.plot_family_shares(ind, year=2025, lang=lang),
        "accounting": dq.plot_accounting(acc, lang=lang),
        "findings_by_audit": establishment.plot_findings_by_audit(sev, lang=lang),
        "family_percentiles": establishment.plot_family_percentiles(ranks, lang=lang),
        "indicator_ci": cohorts.plot_indicator_ci(ind, indicator="no_protection", period="2025", lang=lang),
        "distributions": cohorts.plot_family_distributions(metrics, min_cell=5, lang=lang),
        "rate_ratios": cohorts.plot_rate_ratios(ratios, lang=lang),
        "incident_rates": incidents.plot_incident_rates(rates, period="2025", lang=lang),
        "incident_trends": incidents.plot_incident_trends(trends, lang=lang),
        "odds_ratios": incidents.plot_odds_ratios(ors, lang=lang),
        "exposure_vs_rate": incidents.plot_exposure_vs_rate(side, exposure="has_kev", lang=lang),
    }


def _texts(ax) -> list[str]:
    texts = [ax.get_title(loc) for loc in ("left", "center", "right")] + [ax.get_xlabel(), ax.get_ylabel()]
    texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() + ax.texts]
    legend = ax.get_legend()
    texts += [t.get_text() for t in legend.get_texts()] if legend else []
    ax.figure.canvas.draw()  # tick labels from formatters
    texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return [t for t in texts if t]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_figure_is_titled_in_the_readers_language_with_locale_numbers(lang):
    import re

    for name, ax in _figures(lang).items():
        texts = _texts(ax)
        words = " ".join(texts)
        assert any(ax.get_title(loc) for loc in ("left", "center", "right")), f"{name}: no title"
        for word in OTHER_LANGUAGE[lang]:
            assert not re.search(rf"(?<![\w-]){word}(?![\w-])", words, re.I), f"{name}: {word!r} in {texts}"
        assert not re.search(r"\de[-+]\d|\bnan\b|00:00:00|Private clinic|\bArmy\b", words), f"{name}: {texts}"
        if lang == "fr":
            assert not re.search(r"\d\.\d", words), f"{name}: Python number in {texts}"
    plt.close("all")


def test_figures_show_their_n_and_secret_cells_in_words():
    figs = _figures("fr")
    ticks = [t.get_text() for t in figs["family_shares"].get_yticklabels()]
    assert "CH (n = 24)" in ticks and "cliniques privées (MCO) (n = 1\u202f230)" in ticks
    assert "hôpitaux des armées" in ticks  # a hidden family: its name, no n
    assert "secret statistique" in [t.get_text() for t in figs["family_shares"].texts]
    assert any("n = 1\u202f256" in t.get_text() for t in figs["evolution"].get_xticklabels())
    assert "20 %" in [t.get_text().replace("\u00a0", " ") for t in figs["accounting"].get_xticklabels()]
    assert [t.get_text() for t in figs["findings_by_audit"].get_xticklabels()] == [
        "17 janv. 2024",
        "12 mars 2025",
    ]
    plt.close("all")


def test_severity_legend_swatches_are_visible_and_apart_in_grey():
    """Every swatch of the severity legend has a dark edge (a light "low" stays visible on white) and its own
    hatch or shade, so that a grey print keeps the severities apart."""
    from matplotlib.colors import to_rgba

    from cyberobs_lib.studies.establishment import plot_findings_by_audit

    sev = pd.DataFrame({"critical": [1], "high": [2], "medium": [3], "low": [4], "info": [1]},
                       index=pd.to_datetime(["2025-03-12"]).date)  # fmt: skip
    ax = plot_findings_by_audit(sev, lang="en")
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["critical", "high", "medium", "low", "info"]
    styles = set()
    for patch in legend.get_patches():
        edge = to_rgba(patch.get_edgecolor())
        assert edge[3] > 0 and sum(edge[:3]) < 1.5, "swatch without a visible edge"
        face = to_rgba(patch.get_facecolor())
        grey = round(0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2], 2)
        styles.add((grey, patch.get_hatch()))
    assert len(styles) == 5
    plt.close("all")


def test_a_shown_figure_carries_its_title_as_alternative_text():
    from cyberobs_lib.report import figure_text

    fig, ax = plt.subplots()
    plot_evolution(
        pd.DataFrame(columns=["indicator", "group", "period", "value", "ci_low", "ci_high"]), ax=ax
    )
    ax.set_title("Indicateurs principaux, 2023–2025", loc="left")
    assert figure_text(fig) == "Indicateurs principaux, 2023–2025"
    plt.close("all")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_ratio_axes_are_written_as_plain_numbers(lang):
    """Log axes of odds and rate ratios: ticks at powers of two in the reader's locale, no "2 × 10⁰" minor labels."""
    import matplotlib.pyplot as plt

    from cyberobs_lib.plots.incidents import plot_odds_ratios

    ors = pd.DataFrame({"exposure": ["has_kev", "no_protection"], "odds_ratio": [1.8, 0.7],
                        "ci_low": [1.1, 0.4], "ci_high": [2.9, 1.2], "n": [100, 100]})  # fmt: skip
    fig, ax = plt.subplots()
    plot_odds_ratios(ors, ax=ax, lang=lang)
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels()]
    minor = [t.get_text() for t in ax.get_xticklabels(minor=True)]
    plt.close(fig)
    assert major == ["0,5" if lang == "fr" else "0.5", "1", "2", "4"]  # 0.4..2.9
    assert not any(minor)


def test_family_distributions_draw_boxes_of_published_families_only():
    """Seaborn boxplots, one per family of at least ``min_cell`` establishments, first family on top; a
    smaller family keeps its row, labelled secret, with no box and no point of its values."""
    from cyberobs_lib.plots.cohorts import plot_family_distributions

    m = pd.DataFrame({"family": ["EHPAD"] * 6 + ["CH"] * 5 + ["Army"] * 2,
                      "findings_per_host": [0.5, 1, 2, 3, 4, 50, 1, 1, 2, 2, 3, 70, 80]})  # fmt: skip
    fig, ax = plt.subplots()
    plot_family_distributions(m, families=["EHPAD", "CH", "Army"], show_points=True, ax=ax, lang="en")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "nursing homes (EHPAD) (n = 6)" and labels[1].startswith(
        "general hospitals (CH) (n = 5)"
    )
    assert labels[2] == "army hospitals: suppressed (small cell)"
    points = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if len(c.get_offsets())])
    assert 70 not in points and 80 not in points and 50 in points  # the Army values are nowhere (50: a point)
    assert ax.get_xlim()[0] == 0 and ax.get_ylim()[0] > ax.get_ylim()[1]  # first family on top
    plt.close(fig)


def test_published_family_distributions_show_no_single_value():
    """Without points (published runs): no outlier marker and whiskers within the 10th/90th percentiles, so
    neither the largest value (50) nor the smallest is drawn; the axis says what the whiskers are."""
    from cyberobs_lib.plots.cohorts import plot_family_distributions

    m = pd.DataFrame({"family": ["EHPAD"] * 10, "findings_per_host": [0.1, 1, 1, 2, 2, 2, 3, 3, 4, 50]})
    fig, ax = plt.subplots()
    plot_family_distributions(m, lang="en", ax=ax)
    xs = np.concatenate([ln.get_xdata() for ln in ax.lines if len(ln.get_xdata())]).astype(float)
    assert 50 not in xs and 0.1 not in xs
    p90 = np.percentile(m["findings_per_host"], 90)  # the whisker stops at the last value within it (4)
    assert xs.max() == m["findings_per_host"][m["findings_per_host"] <= p90].max()
    assert "10th and 90th percentiles" in ax.get_xlabel()
    plt.close(fig)
