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


def _row(fit: pd.DataFrame, term: str, level: str | None = None) -> pd.Series:
    """The coefficient row of ``term`` (and ``level``) of a model table."""
    rows = fit[(fit["term"] == term) & ((fit["level"] == level) if level is not None else True)]
    assert len(rows) == 1, (term, level)
    return rows.iloc[0]


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
    fit = fit_count_model(
        two_families, outcome="n_findings", exposure="hosts", terms=["family"], model="poisson"
    )
    pd.testing.assert_frame_equal(two_families, before)
    assert fit["term"].tolist() == ["Intercept", "family"]
    row = fit.iloc[1]
    assert (row["term"], row["level"], row["reference"]) == ("family", "EHPAD", "CH")
    assert row["model"] == "poisson" and row["dispersion"] < 1.5
    assert row["model_choice"] == "poisson: requested by the caller" and row["estimable"]
    # the intercept is the crude rate of the reference family, 30 findings / 100 hosts
    assert fit.loc[0, "rate_ratio"] == pytest.approx(0.3, rel=1e-8)
    assert row["rate_ratio"] == pytest.approx(7 / 3, rel=1e-8)
    se = np.sqrt(1 / 21 + 1 / 30)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (7 / 3 * np.exp(-Z95 * se), 7 / 3 * np.exp(Z95 * se)), rel=1e-6
    )
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(np.log(7 / 3) / se), rel=1e-6)
    assert row["n"] == 6 and row["ci_method"] == "wald" and row["df_resid"] == 4


def test_explicit_reference_level_inverts_the_ratio(two_families):
    fit = fit_count_model(
        two_families,
        outcome="n_findings",
        exposure="hosts",
        terms=["family"],
        reference={"family": "EHPAD"},
        model="poisson",
    )
    assert (fit.loc[1, "level"], fit.loc[1, "reference"]) == ("CH", "EHPAD")
    assert fit.loc[1, "rate_ratio"] == pytest.approx(3 / 7, rel=1e-8)


def test_unused_category_does_not_break_the_fit(two_families):
    # notebook-stack.md P7: an unused category made statsmodels raise LinAlgError
    df = two_families.assign(family=pd.Categorical(two_families["family"], categories=["CHU", "CH", "EHPAD"]))
    fit = fit_count_model(
        df,
        outcome="n_findings",
        exposure="hosts",
        terms=["family"],
        reference={"family": "CH"},
        model="poisson",
    )
    assert fit["level"].tolist() == [None, "EHPAD"]
    assert fit.loc[1, "rate_ratio"] == pytest.approx(7 / 3, rel=1e-8)


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
    assert "negative binomial" in fit.attrs["note"] and "LR test of alpha = 0" in fit.attrs["note"]
    assert (fit["overdispersion_p"] < 1e-10).all() and (fit["model_choice"] == fit.attrs["note"]).all()
    for _, row in fit[fit["term"] == "family"].iterrows():
        assert row["ci_low"] < true_rr[row["level"]] < row["ci_high"], row["level"]
    assert fit.attrs["nb_alpha"] == pytest.approx(0.8, abs=0.15)
    # NB2 log-likelihood: AIC = -2 l + 2 (3 coefficients + alpha)
    assert fit.loc[0, "aic"] == pytest.approx(-2 * fit.loc[0, "log_likelihood"] + 8)


def test_poisson_counts_keep_the_poisson_model_by_the_boundary_corrected_test():
    # Poisson counts: the LR statistic of alpha = 0 is ~0 (alpha at the boundary); p >= 0.05 keeps Poisson
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.poisson(5, 400), "hosts": 10, "family": rng.choice(["CH", "EHPAD"], 400)})
    fit = fit_count_model(df, outcome="y", exposure="hosts", terms=["family"])
    assert set(fit["model"]) == {"poisson"} and np.isnan(fit.attrs["nb_alpha"])
    assert fit.loc[0, "overdispersion_p"] >= 0.05 and fit.loc[0, "model_choice"].startswith(
        "poisson: LR test"
    )


def test_boundary_corrected_lr_p_value_is_half_the_chi2_tail():
    # Cameron & Trivedi (2013) section 3.4: p = 1/2 P(chi2_1 > LR); forced NB on overdispersed data
    rng = np.random.default_rng(9)
    df = pd.DataFrame(
        {"y": _nb_sample(rng, 80, np.full(80, 4.0), 0.3), "hosts": 1.0, "x": rng.normal(size=80)}
    )
    fit = fit_count_model(df, outcome="y", exposure="hosts", terms=["x"])
    lr = fit.loc[0, "overdispersion_lr"]
    assert lr > 0 and fit.loc[0, "overdispersion_p"] == pytest.approx(0.5 * stats.chi2.sf(lr, 1))


def test_too_few_residual_df_is_a_not_estimable_row_not_a_fit(two_families):
    # 6 audits, 2 coefficients: 4 residual df < 10, neither the test nor alpha can be trusted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning, no division warning
        fit = fit_count_model(two_families, outcome="n_findings", exposure="hosts", terms=["family"])
    assert fit["model"].eq("not estimable").all() and not fit["estimable"].any()
    assert fit["rate_ratio"].isna().all() and fit["p_value"].isna().all()
    assert fit.loc[0, "model_choice"].startswith("not estimable: 4 residual df < 10")
    rows = to_tests_table(fit, study="s")
    assert (
        rows.loc[0, "variant"].startswith("undefined: 4 residual df < 10")
        and rows.loc[0, "test"] == "count_model"
    )
    lower = fit_count_model(
        two_families, outcome="n_findings", exposure="hosts", terms=["family"], min_df_resid=4
    )
    assert lower["estimable"].all()


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
    ).iloc[1:]
    adjusted = fit_count_model(
        df,
        outcome="y",
        exposure="hosts",
        terms=["family", "log_beds"],
        reference={"family": "EHPAD"},
    ).set_index("term")
    assert crude["rate_ratio"].iloc[0] > 3 and crude["p_value"].iloc[0] < 1e-6
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
    row = _row(fit, "family")
    se = np.sqrt(1 / 20 + 1 / 10 + 1 / 15 + 1 / 30)
    assert row["odds_ratio"] == pytest.approx(4.0, rel=1e-8)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (4 * np.exp(-Z95 * se), 4 * np.exp(Z95 * se)), rel=1e-6
    )
    assert not row["separation"] and row["model"] == "logistic" and row["estimation"] == "ML"
    assert _row(fit, "Intercept")["odds_ratio"] == pytest.approx(15 / 30)  # odds in the reference
    # binary outcome: deviance = -2 l, AIC = deviance + 2 x 2 coefficients, df = 75 - 2
    assert row["deviance"] == pytest.approx(-2 * row["log_likelihood"]) and row["df_resid"] == 73
    assert row["aic"] == pytest.approx(row["deviance"] + 4)


def test_logistic_flags_quasi_complete_separation():
    # every EHPAD lacks protection: the MLE of the EHPAD odds ratio is infinite
    df = _two_by_two(12, 0, 15, 30)
    with pytest.warns(SeparationWarning, match="family"):
        fit = fit_logistic(df, outcome="no_protection", terms=["family"])
    row = _row(fit, "family")
    # finite Firth estimate, never a blank: the 2 x 2 Firth estimate is the OR with 1/2 added to every
    # cell, (12.5 x 30.5) / (0.5 x 15.5) (Firth 1993; Heinze & Schemper 2002, section 2)
    assert row["separation"] and row["estimation"] == "Firth (separation)"
    assert row["odds_ratio"] == pytest.approx(12.5 * 30.5 / (0.5 * 15.5), rel=1e-6)
    assert 1 < row["ci_low"] < row["odds_ratio"] < row["ci_high"] < np.inf
    assert row["ci_method"] == "profile penalised likelihood"
    with pytest.raises(ValueError, match="separation"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        fit_logistic(df, outcome="no_protection", terms=["family"], method="ml")


def test_logistic_flags_complete_separation_by_a_numeric_term():
    df = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1], "hosts": [1.0, 2, 3, 4, 5, 6]})
    with pytest.warns(SeparationWarning, match="whole model"):
        fit = fit_logistic(df, outcome="y", terms=["hosts"])
    assert _row(fit, "hosts")["separation"] and (fit["estimation"] == "Firth (separation)").all()
    assert np.isfinite(fit["odds_ratio"]).all() and _row(fit, "hosts")["odds_ratio"] > 1


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
    assert (fit["covariance"] == "bias-reduced sandwich (Mancl-DeRouen)").all() and fit["estimable"].all()
    # robust SE of the establishment-level covariate exceeds the naive Poisson GLM SE
    glm = fit_count_model(
        df, outcome="y", exposure="hosts", terms=["years", "family"], model="poisson"
    ).set_index("term")
    width = np.log(gee.loc["family", "ci_high"] / gee.loc["family", "ci_low"])
    assert width > 1.5 * np.log(glm.loc["family", "ci_high"] / glm.loc["family", "ci_low"])


def test_gee_binomial_and_its_tests_rows():
    rng = np.random.default_rng(8)
    df = _repeated_audits(rng, 200, 3, trend=1.0, group_rr=1.0)
    df["any_critical"] = (df["y"] > df["y"].median()).astype(int)
    fit = fit_trend_gee(df, outcome="any_critical", time="years", group_id="est", terms=[], family="binomial")
    assert fit["model"].tolist() == ["gee_binomial"] * 2 and "odds_ratio" in fit.columns
    rows = to_tests_table(fit, study="trend")  # the intercept is no test
    assert (
        len(rows) == 1
        and rows.loc[0, "effect_size_kind"] == "odds_ratio"
        and rows.loc[0, "group_a"] == "years"
    )
    assert rows.loc[0, "variant"].endswith("bias-reduced sandwich (Mancl-DeRouen)")


def test_gee_bias_reduced_widens_the_robust_interval_and_matches_statsmodels():
    import statsmodels.api as sm

    df = _repeated_audits(np.random.default_rng(21), 25, 3, trend=0.9, group_rr=1.0)
    kw = {"outcome": "y", "time": "years", "group_id": "est", "terms": [], "exposure": "hosts"}
    reduced = _row(fit_trend_gee(df, **kw), "years")
    robust = _row(fit_trend_gee(df, **kw, cov_type="robust"), "years")
    assert reduced["estimate"] == pytest.approx(robust["estimate"])
    assert reduced["std_error"] > robust["std_error"]  # Mancl-DeRouen inflates the small-sample sandwich
    model = sm.GEE(df["y"], sm.add_constant(df["years"]), groups=df["est"], family=sm.families.Poisson(),
                   cov_struct=sm.cov_struct.Exchangeable(), offset=np.log(df["hosts"]))  # fmt: skip
    assert reduced["std_error"] == pytest.approx(model.fit(cov_type="bias_reduced").bse["years"], rel=1e-6)
    assert robust["ci_method"] == "wald, robust sandwich"


def test_gee_with_too_few_establishments_is_not_estimable():
    df = _repeated_audits(np.random.default_rng(2), 12, 3, trend=1.0, group_rr=1.0)
    fit = fit_trend_gee(df, outcome="y", time="years", group_id="est", terms=["family"])
    assert fit["model"].eq("not estimable").all() and fit["rate_ratio"].isna().all()
    assert fit.loc[0, "note"] == "not estimable: 12 clusters < 20" and fit.loc[0, "n_clusters"] == 12
    assert to_tests_table(fit).loc[0, "variant"] == "undefined: 12 clusters < 20"
    assert fit_trend_gee(df, outcome="y", time="years", group_id="est", terms=[], min_clusters=10)[
        "estimable"
    ].all()


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
    # two years: RR = (60/1000)/(40/1000) = 1.5, SE(log RR) = sqrt(1/40 + 1/60); no df left for a scale
    se = np.sqrt(1 / 40 + 1 / 60)
    assert ch["rate_ratio_per_year"] == pytest.approx(1.5, rel=1e-8)
    assert ch["ci_high"] == pytest.approx(1.5 * np.exp(Z95 * se), rel=1e-6)
    assert ch["model"] == "poisson" and ch["df_resid"] == 0 and ch["scale"] == 1.0
    # 100, 80, 64 on a constant exposure lie exactly on a geometric trend of ratio 0.8: the MLE
    assert ehpad["rate_ratio_per_year"] == pytest.approx(0.8, rel=1e-8)
    assert ehpad["rate_first"] == pytest.approx(100 / 7500 * 1000)
    assert (ehpad["first_year"], ehpad["last_year"], ehpad["n_years"]) == (2021, 2023, 3)


def test_poisson_trend_is_quasi_poisson_with_t_quantiles():
    import statsmodels.api as sm

    df = pd.DataFrame({"year": range(2019, 2024), "n": [100, 40, 130, 60, 150], "e": [1000] * 5})
    quasi = fit_poisson_trend(df, count="n", exposure="e", year="year").iloc[0]
    plain = sm.GLM(df["n"], sm.add_constant(df["year"] - 2019.0), family=sm.families.Poisson(),
                   offset=np.log(df["e"])).fit()  # fmt: skip
    assert quasi["model"] == "quasi_poisson" and quasi["df_resid"] == 3
    assert quasi["rate_ratio_per_year"] == pytest.approx(np.exp(plain.params.iloc[1]))
    # quasi-Poisson: SE multiplied by sqrt(Pearson chi2 / df), Student t with 3 df
    assert quasi["scale"] == pytest.approx(plain.pearson_chi2 / 3) == quasi["dispersion"]
    se = plain.bse.iloc[1] * np.sqrt(quasi["scale"])
    assert quasi["std_error"] == pytest.approx(se)
    assert quasi["ci_high"] == pytest.approx(np.exp(plain.params.iloc[1] + stats.t.ppf(0.975, 3) * se))
    assert quasi["p_value"] == pytest.approx(2 * stats.t.sf(abs(plain.params.iloc[1]) / se, 3))
    # underdispersed years shrink the interval as R's quasipoisson does: the scale is not floored at 1
    flat = fit_poisson_trend(
        df.assign(n=[100, 101, 99, 100, 102]), count="n", exposure="e", year="year"
    ).iloc[0]
    assert flat["scale"] < 1


def test_poisson_trend_without_finite_mle_is_nan():
    df = pd.DataFrame({"year": [2022, 2023], "n": [0, 5], "e": [100, 100]})
    out = fit_poisson_trend(df, count="n", exposure="e", year="year")
    assert out.loc[0, "group"] == "all" and np.isnan(out.loc[0, "rate_ratio_per_year"])
    assert out.loc[0, "model"] == "not estimable" and "first or last year" in out.loc[0, "model_choice"]


def test_tests_table_vocabulary(two_families):
    fit = fit_count_model(
        two_families, outcome="n_findings", exposure="hosts", terms=["family"], model="poisson"
    )
    rows = to_tests_table(fit, study="vertical")
    assert list(rows.columns) == list(TESTS_COLUMNS) and len(rows) == 1  # no intercept row
    row = rows.iloc[0]
    assert (row["group_a"], row["group_b"], row["metric"]) == ("family=EHPAD", "CH", "n_findings")
    assert row["effect_size"] == fit.loc[1, "rate_ratio"] and row["effect_size_kind"] == "rate_ratio"
    assert row["variant"] == "GLM log link, log-exposure offset; poisson: requested by the caller"
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
    kwargs = {"terms": ["family"], "model": "poisson", **kwargs}
    with pytest.raises(error):
        fit_count_model(df, outcome="n_findings", exposure="hosts", **kwargs)


def test_missing_rows_are_dropped_and_counted(two_families):
    df = two_families.copy()
    df.loc[0, "hosts"] = np.nan
    fit = fit_count_model(df, outcome="n_findings", exposure="hosts", terms=["family"], model="poisson")
    assert fit.attrs["n_dropped"] == 1 and fit.loc[0, "n"] == 5
    with pytest.raises(ValueError, match="model"):
        fit_count_model(df, outcome="n_findings", exposure="hosts", terms=["family"], model="quasi")


def test_other_bad_inputs():
    df = _two_by_two(5, 5, 5, 5)
    with pytest.raises(ValueError):
        fit_logistic(df.assign(no_protection=2), outcome="no_protection", terms=["family"])
    with pytest.raises(ValueError):
        fit_logistic(df.assign(no_protection=1), outcome="no_protection", terms=["family"])
    audits = _repeated_audits(np.random.default_rng(0), 10, 2, 1.0, 1.0)
    with pytest.raises(ValueError):
        fit_trend_gee(audits, outcome="y", time="years", group_id="est", terms=[], cov_type="jackknife")
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
    assert fit["model"].eq("not estimable").all() and fit.loc[0, "note"].endswith("did not converge")
