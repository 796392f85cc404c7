"""Tests for cyberobs_lib.stats.models: closed forms and planted parameters, each one stated."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats.models import (
    SeparationWarning,
    build_design,
    fit_count_model,
    fit_logistic,
    fit_poisson_trend,
    fit_trend_gee,
    to_tests_table,
)

Z95 = stats.norm.ppf(0.975)


@pytest.fixture
def two_families() -> pd.DataFrame:
    # hand-written, mildly dispersed counts: CH 30 findings on 100 hosts, EHPAD 21 on 30 hosts
    return pd.DataFrame(
        {
            "n_findings": [8, 12, 10, 6, 7, 8],
            "hosts": [30, 40, 30, 10, 8, 12],
            "family": ["CH", "CH", "CH", "EHPAD", "EHPAD", "EHPAD"],
        }
    )


def test_poisson_rate_ratio_equals_ratio_of_crude_rates(two_families):
    # Poisson MLE with one binary covariate and a log offset: RR = (21/30) / (30/100) = 7/3,
    # SE(log RR) = sqrt(1/21 + 1/30) (score equations of the saturated-in-groups model).
    before = two_families.copy()
    fit = fit_count_model(two_families, outcome="n_findings", exposure="hosts", terms=["family"])
    pd.testing.assert_frame_equal(two_families, before)
    row = fit.iloc[0]
    assert (row["term"], row["level"], row["reference"]) == ("family", "EHPAD", "CH")
    assert row["model"] == "poisson" and row["dispersion"] < 1.5
    assert row["rate_ratio"] == pytest.approx(7 / 3, rel=1e-8)
    se = np.sqrt(1 / 21 + 1 / 30)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (7 / 3 * np.exp(-Z95 * se), 7 / 3 * np.exp(Z95 * se)), rel=1e-6
    )
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(np.log(7 / 3) / se), rel=1e-6)
    assert row["n"] == 6 and row["ci_method"] == "wald"


def test_explicit_reference_level_inverts_the_ratio(two_families):
    fit = fit_count_model(
        two_families,
        outcome="n_findings",
        exposure="hosts",
        terms=["family"],
        reference={"family": "EHPAD"},
    )
    assert (fit.loc[0, "level"], fit.loc[0, "reference"]) == ("CH", "EHPAD")
    assert fit.loc[0, "rate_ratio"] == pytest.approx(3 / 7, rel=1e-8)


def test_unused_category_does_not_break_the_fit(two_families):
    # notebook-stack.md P7: an unused category made statsmodels raise LinAlgError
    df = two_families.assign(family=pd.Categorical(two_families["family"], categories=["CHU", "CH", "EHPAD"]))
    fit = fit_count_model(
        df, outcome="n_findings", exposure="hosts", terms=["family"], reference={"family": "CH"}
    )
    assert fit["level"].tolist() == ["EHPAD"]
    assert fit.loc[0, "rate_ratio"] == pytest.approx(7 / 3, rel=1e-8)


def _nb_sample(rng, n, mu, alpha):
    # NB2 as a gamma-Poisson mixture: Var = mu + alpha mu^2
    return rng.poisson(rng.gamma(1 / alpha, alpha * mu, size=n))


def test_negative_binomial_recovers_planted_rate_ratios():
    rng = np.random.default_rng(2024)
    n = 1500
    family = rng.choice(["CH", "CHU", "EHPAD"], size=n)
    hosts = rng.integers(5, 60, size=n)
    true_rr = {"CH": 1.0, "CHU": 2.0, "EHPAD": 0.5}
    mu = hosts * 0.4 * pd.Series(family).map(true_rr).to_numpy()
    df = pd.DataFrame({"y": _nb_sample(rng, n, mu, 0.8), "hosts": hosts, "family": family})
    fit = fit_count_model(df, outcome="y", exposure="hosts", terms=["family"], reference={"family": "CH"})
    assert set(fit["model"]) == {"negative_binomial"}
    assert fit.loc[0, "dispersion"] > 1.5
    assert "negative binomial" in fit.attrs["note"]
    for _, row in fit.iterrows():
        assert row["ci_low"] < true_rr[row["level"]] < row["ci_high"], row["level"]
    assert fit.attrs["nb_alpha"] == pytest.approx(0.8, abs=0.15)


def test_size_confounding_disappears_once_size_is_adjusted():
    # groups differ only by size: rate per host depends on log(beds), not on the family
    rng = np.random.default_rng(11)
    n = 800
    family = np.repeat(["EHPAD", "CHU"], n // 2)
    beds = np.where(family == "CHU", rng.integers(500, 2000, n), rng.integers(40, 120, n))
    hosts = rng.integers(10, 50, n)
    y = rng.poisson(hosts * 0.02 * beds**0.5)
    df = pd.DataFrame({"y": y, "hosts": hosts, "family": family, "log_beds": np.log(beds)})
    crude = fit_count_model(
        df, outcome="y", exposure="hosts", terms=["family"], reference={"family": "EHPAD"}
    )
    adjusted = fit_count_model(
        df,
        outcome="y",
        exposure="hosts",
        terms=["family", "log_beds"],
        reference={"family": "EHPAD"},
    ).set_index("term")
    assert crude.loc[0, "rate_ratio"] > 3 and crude.loc[0, "p_value"] < 1e-6
    fam = adjusted.loc["family"]
    assert fam["ci_low"] < 1 < fam["ci_high"]
    # planted elasticity 0.5 on beds, i.e. a rate ratio exp(0.5) per unit of log(beds)
    assert adjusted.loc["log_beds", "ci_low"] < np.exp(0.5) < adjusted.loc["log_beds", "ci_high"]


def _two_by_two(a: int, b: int, c: int, d: int) -> pd.DataFrame:
    # exposed (EHPAD): a with outcome, b without; reference (CH): c with, d without
    return pd.DataFrame(
        {
            "no_protection": [1] * a + [0] * b + [1] * c + [0] * d,
            "family": ["EHPAD"] * (a + b) + ["CH"] * (c + d),
        }
    )


def test_logistic_matches_woolf_closed_form():
    # OR = ad/bc = 20*30 / (10*15) = 4; SE(log OR) = sqrt(1/a + 1/b + 1/c + 1/d) (Woolf 1955)
    fit = fit_logistic(_two_by_two(20, 10, 15, 30), outcome="no_protection", terms=["family"])
    row = fit.iloc[0]
    se = np.sqrt(1 / 20 + 1 / 10 + 1 / 15 + 1 / 30)
    assert row["odds_ratio"] == pytest.approx(4.0, rel=1e-8)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (4 * np.exp(-Z95 * se), 4 * np.exp(Z95 * se)), rel=1e-6
    )
    assert not row["separation"] and row["model"] == "logistic"


def test_logistic_flags_quasi_complete_separation():
    # every EHPAD lacks protection: the MLE of the EHPAD odds ratio is infinite
    df = _two_by_two(12, 0, 15, 30)
    with pytest.warns(SeparationWarning, match="family"):
        fit = fit_logistic(df, outcome="no_protection", terms=["family"])
    assert fit.loc[0, "separation"] and np.isnan(fit.loc[0, "odds_ratio"])


def test_logistic_flags_complete_separation_by_a_numeric_term():
    df = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1], "hosts": [1.0, 2, 3, 4, 5, 6]})
    with pytest.warns(SeparationWarning):
        fit = fit_logistic(df, outcome="y", terms=["hosts"])
    assert fit["separation"].all()


def test_logistic_without_separation_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_logistic(_two_by_two(20, 10, 15, 30), outcome="no_protection", terms=["family"])


def _repeated_audits(rng, n_est: int, waves: int, trend: float, group_rr: float) -> pd.DataFrame:
    est = np.repeat(np.arange(n_est), waves)
    t = np.tile(np.arange(waves, dtype=float), n_est)
    family = np.where(est % 2 == 0, "CH", "EHPAD")
    frailty = np.repeat(rng.gamma(2.0, 0.5, n_est), waves)  # shared within establishment
    hosts = rng.integers(10, 40, est.size)
    mu = hosts * 0.3 * frailty * trend**t * np.where(family == "EHPAD", group_rr, 1.0)
    return pd.DataFrame({"y": rng.poisson(mu), "years": t, "est": est, "family": family, "hosts": hosts})


def test_gee_recovers_planted_trend_and_sees_the_clustering():
    df = _repeated_audits(np.random.default_rng(5), 300, 4, trend=0.8, group_rr=1.5)
    fit = fit_trend_gee(df, outcome="y", time="years", group_id="est", terms=["family"], exposure="hosts")
    gee = fit.set_index("term")
    assert gee.loc["years", "ci_low"] < 0.8 < gee.loc["years", "ci_high"]
    assert gee.loc["family", "ci_low"] < 1.5 < gee.loc["family", "ci_high"]
    assert gee.loc["family", "n_clusters"] == 300 and gee.loc["family", "n"] == 1200
    assert gee.loc["family", "correlation"] > 0.1  # gamma frailty makes audits correlate
    # robust SE of the establishment-level covariate exceeds the naive Poisson GLM SE
    glm = fit_count_model(
        df, outcome="y", exposure="hosts", terms=["years", "family"], dispersion_threshold=np.inf
    ).set_index("term")
    width = np.log(gee.loc["family", "ci_high"] / gee.loc["family", "ci_low"])
    assert width > 1.5 * np.log(glm.loc["family", "ci_high"] / glm.loc["family", "ci_low"])


def test_gee_binomial_and_its_tests_rows():
    rng = np.random.default_rng(8)
    df = _repeated_audits(rng, 200, 3, trend=1.0, group_rr=1.0)
    df["any_critical"] = (df["y"] > df["y"].median()).astype(int)
    fit = fit_trend_gee(df, outcome="any_critical", time="years", group_id="est", terms=[], family="binomial")
    assert fit["model"].tolist() == ["gee_binomial"] and "odds_ratio" in fit.columns
    rows = to_tests_table(fit, study="trend")
    assert rows.loc[0, "effect_size_kind"] == "odds_ratio" and rows.loc[0, "group_a"] == "years"


def test_poisson_trend_closed_forms():
    df = pd.DataFrame(
        {
            "family": ["CH"] * 2 + ["EHPAD"] * 3,
            "year": [2022, 2023, 2021, 2022, 2023],
            "incidents": [40, 60, 100, 80, 64],
            "establishments": [1000, 1000, 7500, 7500, 7500],
        }
    )
    out = fit_poisson_trend(df, count="incidents", exposure="establishments", year="year", by="family")
    ch, ehpad = out.set_index("group").loc["CH"], out.set_index("group").loc["EHPAD"]
    # two years: RR = (60/1000)/(40/1000) = 1.5, SE(log RR) = sqrt(1/40 + 1/60)
    se = np.sqrt(1 / 40 + 1 / 60)
    assert ch["rate_ratio_per_year"] == pytest.approx(1.5, rel=1e-8)
    assert ch["ci_high"] == pytest.approx(1.5 * np.exp(Z95 * se), rel=1e-6)
    # 100, 80, 64 on a constant exposure lie exactly on a geometric trend of ratio 0.8: the MLE
    assert ehpad["rate_ratio_per_year"] == pytest.approx(0.8, rel=1e-8)
    assert ehpad["rate_first"] == pytest.approx(100 / 7500 * 1000)
    assert (ehpad["first_year"], ehpad["last_year"], ehpad["n_years"]) == (2021, 2023, 3)


def test_poisson_trend_overdispersion_scales_the_interval():
    df = pd.DataFrame({"year": range(2019, 2024), "n": [100, 40, 130, 60, 150], "e": [1000] * 5})
    quasi = fit_poisson_trend(df, count="n", exposure="e", year="year").iloc[0]
    plain = fit_poisson_trend(df, count="n", exposure="e", year="year", dispersion_threshold=np.inf).iloc[0]
    assert quasi["model"] == "quasi_poisson" and plain["model"] == "poisson"
    assert quasi["rate_ratio_per_year"] == pytest.approx(plain["rate_ratio_per_year"])
    # quasi-Poisson: SE multiplied by sqrt(Pearson chi2 / df)
    ratio = np.log(quasi["ci_high"] / quasi["ci_low"]) / np.log(plain["ci_high"] / plain["ci_low"])
    assert ratio == pytest.approx(np.sqrt(quasi["dispersion"]), rel=1e-8)


def test_poisson_trend_without_finite_mle_is_nan():
    df = pd.DataFrame({"year": [2022, 2023], "n": [0, 5], "e": [100, 100]})
    out = fit_poisson_trend(df, count="n", exposure="e", year="year")
    assert out.loc[0, "group"] == "all" and np.isnan(out.loc[0, "rate_ratio_per_year"])


def test_tests_table_vocabulary(two_families):
    fit = fit_count_model(two_families, outcome="n_findings", exposure="hosts", terms=["family"])
    rows = to_tests_table(fit, study="vertical")
    assert list(rows.columns) == list(TESTS_COLUMNS)
    row = rows.iloc[0]
    assert (row["group_a"], row["group_b"], row["metric"]) == ("family=EHPAD", "CH", "n_findings")
    assert row["effect_size"] == fit.loc[0, "rate_ratio"] and row["effect_size_kind"] == "rate_ratio"
    with pytest.raises(ValueError):
        to_tests_table(pd.DataFrame({"x": [1]}))


def test_build_design_is_explicit_about_levels():
    X, coefs = build_design(
        pd.DataFrame({"f": ["b", "a", "c"], "x": [1, 2, 3]}), terms=["f", "x"], reference={"f": "c"}
    )
    assert list(X.columns) == ["Intercept", "f[a]", "f[b]", "x"]
    assert coefs["reference"].tolist() == ["c", "c", None]


@pytest.mark.parametrize(
    ("change", "kwargs", "error"),
    [
        ({"n_findings": [-1, 12, 10, 6, 7, 8]}, {}, ValueError),  # negative count
        ({"n_findings": [1.5, 12, 10, 6, 7, 8]}, {}, ValueError),  # not an integer
        ({"hosts": [0, 40, 30, 10, 8, 12]}, {}, ValueError),  # zero exposure
        ({}, {"reference": {"family": "CHU"}}, ValueError),  # unknown reference level
        ({}, {"reference": {"beds": "1"}}, ValueError),  # reference for a term not in the model
        ({"family": ["CH"] * 6}, {}, ValueError),  # single level
        ({}, {"terms": ["region"]}, KeyError),
    ],
)
def test_count_model_bad_input(two_families, change, kwargs, error):
    df = two_families.assign(**change)
    kwargs = {"terms": ["family"], **kwargs}
    with pytest.raises(error):
        fit_count_model(df, outcome="n_findings", exposure="hosts", **kwargs)


def test_missing_rows_are_dropped_and_counted(two_families):
    df = two_families.copy()
    df.loc[0, "hosts"] = np.nan
    fit = fit_count_model(df, outcome="n_findings", exposure="hosts", terms=["family"])
    assert fit.attrs["n_dropped"] == 1 and fit.loc[0, "n"] == 5


def test_other_bad_inputs():
    df = _two_by_two(5, 5, 5, 5)
    with pytest.raises(ValueError):
        fit_logistic(df.assign(no_protection=2), outcome="no_protection", terms=["family"])
    with pytest.raises(ValueError):
        fit_logistic(df.assign(no_protection=1), outcome="no_protection", terms=["family"])
    audits = _repeated_audits(np.random.default_rng(0), 10, 2, 1.0, 1.0)
    with pytest.raises(ValueError):
        fit_trend_gee(audits, outcome="y", time="years", group_id="est", terms=[], family="gamma")
    with pytest.raises(ValueError):
        fit_trend_gee(audits.assign(years="2021"), outcome="y", time="years", group_id="est", terms=[])
    with pytest.raises(ValueError):
        fit_trend_gee(audits, outcome="y", time="years", group_id="est", terms=[], family="binomial")


def test_gee_non_convergence_is_reported():
    # every audit of an establishment repeats the same count: the exchangeable correlation tends
    # to 1, statsmodels' working covariance becomes singular and the estimates NaN
    rng = np.random.default_rng(0)
    est = pd.DataFrame({"family": rng.choice(["CH", "EHPAD"], 60), "y": rng.poisson(5, 60)})
    rep = est.loc[est.index.repeat(3)].assign(years=np.tile([0.0, 1, 2], 60), est=np.repeat(np.arange(60), 3))
    with pytest.warns(UserWarning, match="did not converge"):
        fit = fit_trend_gee(rep, outcome="y", time="years", group_id="est", terms=["family"])
    assert fit.attrs["converged"] is False
