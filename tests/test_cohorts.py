"""Tests of cyberobs_lib.studies.cohorts: crude comparisons, adjusted ratios, trends, sample size.

Hand-made per-audit frames give reference values from published examples (cited at each test); the
recovery test generates canonical tables with planted family and size effects
(``benchmarks/bench_cohorts.py``) and checks that the adjusted rate ratios find them.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.studies import cohorts
from cyberobs_lib.studies.indicators import audit_metrics
from cyberobs_lib.studies.methods import not_modelled_sentence

Z = 1.959963984540054
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cohorts.py"


def _frame(groups: dict[str, dict[str, list]], year: int = 2024) -> pd.DataFrame:
    """A per-audit frame (audit_metrics columns that the tests use), one establishment per row."""
    parts = []
    for family, cols in groups.items():
        n = len(next(iter(cols.values())))
        parts.append(pd.DataFrame({"family": family, **cols}, index=range(n)))
    m = pd.concat(parts, ignore_index=True)
    m["finess"] = [f"F{i:05d}" for i in range(len(m))]
    m["audit_id"] = [f"A{i:05d}" for i in range(len(m))]
    m["year"] = m["year"] if "year" in m else year
    m["audit_date"] = pd.to_datetime(m["year"].astype(str) + "-03-01")
    return m


def _shares(family_counts: dict[str, tuple[int, int]], metric: str = "has_critical") -> pd.DataFrame:
    return _frame({f: {metric: [True] * x + [False] * (n - x)} for f, (x, n) in family_counts.items()})


# --- compare_families: proportions ---------------------------------------------------------------------


def test_pairwise_difference_is_newcombe_published_example_oriented_to_reference():
    # Newcombe (1998b) Stat Med 17:873-890, example (b): 56/70 vs 48/80, difference 0.2, CI 0.0524 to 0.3339
    m = _shares({"EHPAD": (56, 70), "CH": (48, 80)})
    out = cohorts.compare_families(m, metrics=["has_critical"], reference="CH")
    assert list(out.columns) == list(TESTS_COLUMNS)
    pair = out[out.group_b.notna()].iloc[0]
    assert (pair.group_a, pair.group_b, pair.n_a, pair.n_b) == ("EHPAD", "CH", 70, 80)
    assert pair.effect_size == pytest.approx(0.2)
    assert (pair.ci_low, pair.ci_high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert pair.effect_size_kind == "risk_difference" and pair.ci_method == "newcombe_hybrid_score"
    # Pearson X2 of [[56, 14], [48, 32]] = N (ad - bc)^2 / (r1 r2 c1 c2) = 150 * 1120^2 / (70 * 80 * 104 * 46)
    x2 = 150 * 1120**2 / (70 * 80 * 104 * 46)
    omnibus = out[out.group_b.isna()].iloc[0]
    assert omnibus.test == "chi_square" and omnibus.variant.startswith("pearson")
    assert omnibus.statistic == pytest.approx(x2) and omnibus.p_value == pytest.approx(stats.chi2.sf(x2, 1))
    assert omnibus.effect_size == pytest.approx(math.sqrt(x2 / 150))  # Cramér's V = phi for a 2 x 2 table
    assert omnibus.adjust_method == "fdr_bh across metrics" and pair.adjust_method == "holm within metric"


def test_small_expected_counts_switch_to_fisher():
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 0.4857 (Fisher 1935; R fisher.test)
    m = _shares({"CH": (3, 4), "EHPAD": (1, 4)})
    out = cohorts.compare_families(m, metrics=["has_critical"], reference="CH")
    assert set(out.test) == {"fisher_exact"}
    assert out.p_value.iloc[0] == pytest.approx(0.4857, abs=1e-4)
    assert out.variant.iloc[1].startswith("pairwise fisher_exact")
    assert np.isnan(out.df.iloc[1])  # an exact test has no degrees of freedom


def test_holm_within_pairs_and_bh_across_metrics():
    m = _frame(
        {
            "CH": {"has_critical": [True] * 30 + [False] * 30, "has_kev": [True] * 20 + [False] * 40},
            "EHPAD": {"has_critical": [True] * 45 + [False] * 15, "has_kev": [True] * 22 + [False] * 38},
            "CHU/CHR": {"has_critical": [True] * 32 + [False] * 28, "has_kev": [True] * 21 + [False] * 39},
        }
    )
    out = cohorts.compare_families(m, metrics=["has_critical", "has_kev"], reference="CH")
    omni = out[out.group_b.isna()].set_index("metric")
    p1, p2 = omni.loc["has_critical", "p_value"], omni.loc["has_kev", "p_value"]
    lo, hi = sorted([p1, p2])
    # Benjamini-Hochberg with 2 tests: largest p unchanged, smallest min(2 p, largest)
    expected = {p1: min(2 * lo, hi) if p1 == lo else hi, p2: min(2 * lo, hi) if p2 == lo else hi}
    assert omni.loc["has_critical", "p_adjusted"] == pytest.approx(expected[p1])
    assert omni.loc["has_kev", "p_adjusted"] == pytest.approx(expected[p2])
    pairs = out[(out.metric == "has_critical") & out.group_b.notna()].sort_values("p_value")
    raw = pairs.p_value.to_numpy()
    holm = np.maximum.accumulate(np.minimum(1, raw * np.array([3, 2, 1])))  # Holm (1979), step-down
    assert pairs.p_adjusted.to_numpy() == pytest.approx(holm)
    assert (pairs.group_b == "CH").sum() == 2  # the reference is always group_b


def test_constant_outcome_gives_an_undefined_row_not_an_error():
    m = _shares({"CH": (5, 5), "EHPAD": (6, 6)})
    out = cohorts.compare_families(m, metrics=["has_critical"])
    assert len(out) == 1 and out.variant.iloc[0].startswith("undefined:") and np.isnan(out.p_value.iloc[0])


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metrics"):
        cohorts.compare_families(_shares({"CH": (1, 2)}), metrics=["beds"])


# --- compare_families: rates and counts ----------------------------------------------------------------


def test_pairwise_rows_oriented_and_cliffs_delta_by_hand():
    m = _frame({"CH": {"n_crit_high": [1, 2, 3, 4, 1, 2]}, "EHPAD": {"n_crit_high": [3, 4, 5, 6, 5, 6]}})
    out = cohorts.compare_families(m, metrics=["n_crit_high"], reference="CH", n_boot=0)
    kw, dunn = out.iloc[0], out.iloc[1]
    assert kw.test == "kruskal_wallis"
    assert (dunn.group_a, dunn.group_b) == ("EHPAD", "CH")
    # Cliff's delta of EHPAD over CH, counted by hand: greater 4 + 5 + 6 + 6 + 6 + 6 = 33, smaller 1 (3 < 4)
    assert dunn.effect_size == pytest.approx((33 - 1) / 36)
    assert dunn.statistic > 0 and dunn.ci_low < dunn.effect_size < dunn.ci_high
    assert dunn.adjust_method == "holm within metric"


# --- adjusted models -----------------------------------------------------------------------------------


def test_rate_ratio_with_family_only_is_the_ratio_of_crude_rates():
    # one binary covariate: Poisson MLE rate ratio = (sum y1 / sum e1) / (sum y0 / sum e0), SE = sqrt(1/Y1 + 1/Y0)
    m = _frame({"CH": {"n_findings": [10, 12], "hosts_in_scope": [10, 10]},
                "EHPAD": {"n_findings": [11, 13], "hosts_in_scope": [10, 10]}})  # fmt: skip
    table, tests = cohorts.adjusted_rate_ratios(
        m, reference="CH", covariates=("legal_status", "beds"), count_model="poisson"
    )
    assert table.term.tolist() == ["Intercept", "family"] and len(tests) == 1  # no test of the intercept
    assert np.isnan(table.p_adjusted.iloc[0]) and table.n_family.iloc[0] == 4  # the model's n
    row = table.iloc[1]
    se = math.sqrt(1 / 24 + 1 / 22)
    assert row.rate_ratio == pytest.approx(24 / 22) and row.model == "poisson"
    assert (row.ci_low, row.ci_high) == pytest.approx(
        (24 / 22 * math.exp(-Z * se), 24 / 22 * math.exp(Z * se))
    )
    assert "dropped covariates ['legal_status', 'beds']" in row.note  # absent columns are named, not fatal
    assert (row.n_family, row.n_reference) == (2, 2) and (tests.n_a.iloc[0], tests.n_b.iloc[0]) == (2, 2)
    assert tests.group_a.iloc[0] == "family=EHPAD" and tests.adjust_method.iloc[0] == "fdr_bh across metrics"
    with pytest.raises(ValueError, match="reference family"):
        cohorts.adjusted_rate_ratios(m, reference="CHU/CHR")
    assert list(table.columns[: len(cohorts.RATE_RATIO_COLUMNS)]) == list(cohorts.RATE_RATIO_COLUMNS)


def test_count_model_with_too_few_residual_df_is_said_not_fitted():
    # 4 audits, 2 coefficients: 2 residual df < 10, no test of overdispersion, no rate ratio, a sentence
    m = _frame({"CH": {"n_findings": [10, 12], "hosts_in_scope": [10, 10]},
                "EHPAD": {"n_findings": [11, 13], "hosts_in_scope": [10, 10]}})  # fmt: skip
    table, tests = cohorts.adjusted_rate_ratios(m, reference="CH", covariates=())
    assert (table.model == "not estimable").all() and table.rate_ratio.isna().all()
    assert tests.variant.iloc[0].startswith("undefined: 2 residual df < 10")
    sentence = not_modelled_sentence(table, "en")
    assert sentence.startswith("*Rate ratios not computed: findings") and "2 residual degrees" in sentence


def test_collinear_covariate_is_dropped():
    m = _frame({"CH": {"n_findings": [10, 12, 9], "hosts_in_scope": [10, 10, 9], "legal_status": ["public"] * 3},
                "EHPAD": {"n_findings": [11, 13, 8], "hosts_in_scope": [10, 10, 7],
                          "legal_status": ["private_forprofit"] * 3}})  # fmt: skip
    table, _ = cohorts.adjusted_rate_ratios(
        m, reference="CH", covariates=("legal_status",), count_model="poisson"
    )
    assert (
        set(table.term) == {"Intercept", "family"}
        and "dropped covariates ['legal_status']" in table.note.iloc[0]
    )


def test_odds_ratio_with_family_only_is_woolf():
    # 2 x 2 table: OR = ad / bc, SE(log OR) = sqrt(1/a + 1/b + 1/c + 1/d) (Woolf 1955)
    m = _shares({"EHPAD": (56, 70), "CH": (48, 80)})
    table, tests = cohorts.adjusted_odds_ratios(m, reference="CH", outcomes=["has_critical"])
    or_, se = (56 * 32) / (14 * 48), math.sqrt(1 / 56 + 1 / 14 + 1 / 48 + 1 / 32)
    row = table.iloc[1]
    assert row.term == "family" and row.estimation == "ML" and not row.separation
    assert row.odds_ratio == pytest.approx(or_)
    assert (row.ci_low, row.ci_high) == pytest.approx((or_ * math.exp(-Z * se), or_ * math.exp(Z * se)))
    assert tests.effect_size_kind.iloc[0] == "odds_ratio"
    assert "events per parameter" not in row.note  # min(104 events, 46 non-events) for 1 coefficient
    few = _shares({"EHPAD": (3, 10), "CH": (2, 10)})
    assert (
        "events per parameter"
        in cohorts.adjusted_odds_ratios(few, reference="CH", outcomes=["has_critical"])[0].note.iloc[0]
    )
    with pytest.raises(ValueError, match="no binary outcome"):
        cohorts.adjusted_odds_ratios(
            _shares({"EHPAD": (3, 3), "CH": (2, 2)}), reference="CH", outcomes=["has_critical"]
        )


def test_a_family_without_events_keeps_every_other_family_odds_ratio():
    # issue 19: one family with no event blanked every family's odds ratio; now the others keep their ML
    # odds ratios (those of the fit without that family) and the separated family gets Firth's estimate
    m = _shares({"CH": (30, 80), "EHPAD": (40, 70), "CHU/CHR": (12, 20), "Psychiatry": (0, 12)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the separation is said in note, not raised
        table, tests = cohorts.adjusted_odds_ratios(
            m, reference="CH", outcomes=["has_critical"], covariates=()
        )
    without, _ = cohorts.adjusted_odds_ratios(
        m[m.family != "Psychiatry"], reference="CH", outcomes=["has_critical"], covariates=()
    )
    fam = table[table.term == "family"].set_index("level")
    ml = without[without.term == "family"].set_index("level")
    for level in ("CHU/CHR", "EHPAD"):
        assert fam.loc[level, "estimation"] == "ML" and not fam.loc[level, "separation"]
        assert fam.loc[level, "odds_ratio"] == pytest.approx(ml.loc[level, "odds_ratio"], rel=1e-8)
        assert fam.loc[level, "ci_low"] == pytest.approx(ml.loc[level, "ci_low"], rel=1e-8)
    psy = fam.loc["Psychiatry"]
    assert psy.estimation == "Firth (separation)" and psy.separation and 0 < psy.odds_ratio < psy.ci_high < 1
    # one covariate-free 2 x 2 against CH: Firth = OR with 1/2 added to each cell (Firth 1993)
    assert psy.odds_ratio == pytest.approx((0.5 * 50.5) / (12.5 * 30.5), rel=1e-6)
    assert "separation in ['family']" in psy.note and tests.p_value.notna().all()


@pytest.fixture(scope="module")
def planted():
    spec = importlib.util.spec_from_file_location("bench_cohorts", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tables, truth = bench.make_planted_tables(2000, seed=7)
    return audit_metrics(tables), truth


def test_adjusted_rate_ratios_recover_planted_values(planted):
    m, truth = planted
    table, _ = cohorts.adjusted_rate_ratios(m, reference=truth["reference"])
    fam = table[table.term == "family"].set_index("level")
    assert (fam.model == "negative_binomial").all()  # gamma-mixed counts are overdispersed
    for family, planted_rr in truth["rate_ratio"].items():
        assert fam.loc[family, "ci_low"] <= planted_rr <= fam.loc[family, "ci_high"], family
    size = table[table.term == "log_beds"].iloc[0]
    assert size.ci_low <= truth["rate_ratio_per_log_bed"] <= size.ci_high
    # the size-only family: a clear crude difference, none once size is adjusted for
    crude, _ = cohorts.adjusted_rate_ratios(m, reference=truth["reference"], covariates=())
    only = truth["size_only_family"]
    assert crude.set_index("level").loc[only, "p_value"] < 1e-6
    assert fam.loc[only, "p_adjusted"] > 0.05


def test_family_trends_on_planted_data_find_no_trend(planted):
    m, _ = planted
    out = cohorts.family_trends(m, proportions=["has_critical"])
    rates = out[out.metric == "n_findings per year"]
    assert len(rates) == 4 and (rates.ci_low < 1).all() and (rates.ci_high > 1).all()  # nothing planted


# --- trends and planning -------------------------------------------------------------------------------


def test_cochran_armitage_with_calendar_years_matches_r_prop_trend_test():
    # R prop.trend.test(c(83, 90, 129, 70), c(86, 93, 136, 82)): X-squared = 8.2249 (equally spaced scores,
    # so years 2021..2024 give the same statistic as 1..4)
    years, x, n = [2021, 2022, 2023, 2024], [83, 90, 129, 70], [86, 93, 136, 82]
    m = _frame({"CH": {"year": np.repeat(years, n), "has_kev": np.concatenate(
        [[True] * xi + [False] * (ni - xi) for xi, ni in zip(x, n, strict=True)]),
        "n_findings": 1, "hosts_in_scope": 1}})  # fmt: skip
    m["audit_date"] = pd.to_datetime(m["year"].astype(str) + "-06-01")
    out = cohorts.family_trends(m, proportions=["has_kev"])
    ca = out[out.test == "cochran_armitage_trend"].iloc[0]
    assert ca.statistic == pytest.approx(8.2249, abs=1e-4) and ca.group_a == "CH"


def test_rate_trend_with_two_years_is_the_ratio_of_rates():
    # 7 audits a year with identical counts: no overdispersion (LR = 0 at the boundary), Poisson MLE = 2
    m = _frame({"CH": {"year": [2023] * 7 + [2024] * 7, "n_findings": [10] * 7 + [20] * 7,
                       "hosts_in_scope": 10, "has_kev": False}})  # fmt: skip
    m["audit_date"] = pd.to_datetime(m["year"].astype(str) + "-06-01")
    out = cohorts.family_trends(m, proportions=[])
    assert out.effect_size.iloc[0] == pytest.approx(2.0) and out.effect_size_kind.iloc[0] == "rate_ratio"
    assert out.test.iloc[0] == "poisson" and "LR test of alpha = 0" in out.variant.iloc[0]
    single = cohorts.family_trends(m[m.year == 2024], proportions=["has_kev"])
    assert single.variant.str.startswith("undefined:").all()
    few = cohorts.family_trends(m.iloc[[0, 1, 7, 8]], proportions=[])  # 2 residual df: not estimable, said so
    assert few.variant.iloc[0].startswith("undefined: 2 residual df < 10") and np.isnan(
        few.effect_size.iloc[0]
    )


def test_plan_sample_size_matches_r_power_prop_test():
    # R: power.prop.test(p1 = .50, p2 = .75, power = .90) -> n = 76.7 per group
    from cyberobs_lib.stats.power import sample_size_two_proportions

    out = cohorts.plan_sample_size(0.5, 0.75, power=0.9)
    assert out.n_exact.iloc[0] == pytest.approx(76.7, abs=0.05) and out.n_per_family.iloc[0] == 77
    # one implementation: the same number as stats.power
    assert out.n_exact.iloc[0] == sample_size_two_proportions(0.5, 0.75, power=0.9).n_per_group.iloc[0]
    both = cohorts.plan_sample_size([0.7, 0.6], 0.5)
    assert both.n_per_family.tolist()[0] < both.n_per_family.tolist()[1]  # a smaller gap needs more
    with pytest.raises(ValueError):
        cohorts.plan_sample_size(0.5, 0.5)
    with pytest.raises(ValueError):
        cohorts.plan_sample_size(0.5, 0.6, power=1.2)


def test_recovery_on_the_demo_generator_through_ingestion(tmp_path):
    """cyberobs_lib.demo.generate_dataset plants rate ratios and a size effect (truth.json); ingest and refit."""
    from cyberobs_lib.demo import DemoScale, generate_dataset
    from cyberobs_lib.studies.data import load_study_data

    per_family = {"CH": 300, "CHU/CHR": 120, "EHPAD": 500, "Private clinic (MCO)": 250, "Other health": 120}
    scale = DemoScale(establishments_per_family=per_family, years=(2024, 2025), audits_per_establishment=(1, 1),
                      audited_share=1.0, pilot_establishments=0)  # fmt: skip
    truth = generate_dataset(tmp_path, seed=11, scale=scale)["findings"]
    m = audit_metrics(load_study_data(tmp_path, today="2026-01-01"))
    table, _ = cohorts.adjusted_rate_ratios(m, reference=truth["reference_family"])
    fam = table[table.term == "family"].set_index("level")
    for family in per_family.keys() - {truth["reference_family"]}:
        planted_rr = truth["rate_ratio"][family]
        assert fam.loc[family, "ci_low"] <= planted_rr <= fam.loc[family, "ci_high"], family
    size = table[table.term == "log_beds"].iloc[0]  # mean ∝ (beds / 100) ** size_beta
    assert size.ci_low <= math.exp(truth["size_beta"]) <= size.ci_high
    crude, _ = cohorts.adjusted_rate_ratios(m, reference=truth["reference_family"], covariates=())
    crude = crude.set_index("level")
    for family in truth["size_only_families"]:  # crude difference from size alone, gone once adjusted
        assert crude.loc[family, "p_value"] < 1e-6 and fam.loc[family, "p_adjusted"] > 0.05, family


def test_plots_return_axes_and_mark_secret_cells():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cyberobs_lib.plots import cohorts as plots

    ind = pd.DataFrame({"indicator": "has_kev", "group": ["CH", "EHPAD", "all"], "period": "all",
                        "value": [0.2, np.nan, 0.3], "ci_low": [0.1, np.nan, 0.2], "ci_high": [0.3, np.nan, 0.4],
                        "suppressed": [False, True, False]})  # fmt: skip
    ax = plots.plot_indicator_ci(ind, indicator="has_kev", lang="en")
    labels = ["general hospitals (CH)", "nursing homes (EHPAD)", "all"]  # the reader's words (catalog)
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert any("suppressed" in t.get_text() for t in ax.texts)  # the secret cell is labelled, not drawn
    with pytest.raises(ValueError, match="no row"):
        plots.plot_indicator_ci(ind, indicator="has_kev", period="2024")
    ratios = pd.DataFrame({"term": ["family", "region"], "level": ["EHPAD", "84"], "reference": ["CH", "11"],
                           "rate_ratio": [1.5, 0.9], "ci_low": [1.2, 0.7], "ci_high": [1.9, 1.1]})  # fmt: skip
    ax = plots.plot_rate_ratios(ratios, lang="en")
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_yticklabels()] == [
        "nursing homes (EHPAD)"
    ]
    assert "general hospitals (CH)" in ax.get_xlabel()  # the one reference, said on the axis
    plt.close("all")


def test_no_family_to_compare_is_no_model_not_every_family(planted):
    """``families=[]`` (a published run where no family can be shown) compares nothing; ``None`` compares every
    family. An empty list used to mean every family: the models then ran on families whose cells are secret."""
    m, truth = planted
    table, _ = cohorts.adjusted_rate_ratios(m, reference=truth["reference"], families=[], on_error="row")
    assert (table["model"] == "not modelled").all()
    assert table["note"].str.contains("fewer than two families").all()
    with pytest.raises(ValueError, match="no binary outcome could be modelled"):
        cohorts.adjusted_odds_ratios(m, reference=truth["reference"], families=[], outcomes=["has_critical"])
    assert cohorts.family_trends(m, families=[], proportions=["has_critical"]).empty
    every, _ = cohorts.adjusted_rate_ratios(m, reference=truth["reference"], families=None)
    assert (every[every.term == "family"]["level"].nunique()) == m["family"].nunique() - 1
