"""Count models and yearly trends against published R ``glm`` output.

* Students ~ Days (109 days of an outbreak; Lillis D., "Generalized Linear Models in R, Part 6: Poisson
  Regression for Count Variables" and "Part 7: Checking for Overdispersion in Count Regression", The
  Analysis Factor): R prints for ``glm(Students ~ Days, family = poisson)`` (Intercept) 1.990235
  (SE 0.083935), Days -0.017463 (SE 0.001727, z -10.11), null deviance 215.36 on 108 df, residual
  deviance 101.17 on 107 df, AIC 393.11; for ``family = quasipoisson`` the same estimates with SE 0.074789
  and 0.001539, t 26.61 and -11.35, "Dispersion parameter for quasipoisson family taken to be 0.7939441",
  AIC NA; and ``exp(confint.default(model2))`` for Days 0.9797296 to 0.9856562 (normal quantiles).
* Dobson (1990) randomized controlled trial, R ``example(glm)``: ``glm(counts ~ outcome + treatment,
  family = poisson())`` prints (Intercept) 3.045 (SE 0.1709), outcome2 -0.4543 (0.2022, z -2.247,
  p 0.0246), outcome3 -0.2930 (0.1927, z -1.520, p 0.1285), treatment2 and treatment3 0 (SE 0.2000),
  residual deviance 5.1291 on 4 df, AIC 56.761 (e.g. the RPubs "Quasi-Poisson Regression" page
  reproducing ``example(glm)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.stats.models import fit_count_model, fit_poisson_trend

DAYS = [1, 2, 3, 3, 4, 4, 4, 6, 7, 8, 8, 8, 8, 12, 14, 15, 17, 17, 17, 18, 19, 19, 20, 23, 23, 23, 24, 24, 25, 26,
        27, 28, 29, 34, 36, 36, 42, 42, 43, 43, 44, 44, 44, 44, 45, 46, 48, 48, 49, 49, 53, 53, 53, 54, 55, 56, 56,
        58, 60, 63, 65, 67, 67, 68, 71, 71, 72, 72, 72, 73, 74, 74, 74, 75, 75, 80, 81, 81, 81, 81, 88, 88, 90, 93,
        93, 94, 95, 95, 95, 96, 96, 97, 98, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
        114, 115]  # fmt: skip
STUDENTS = [6, 8, 12, 9, 3, 3, 11, 5, 7, 3, 8, 4, 6, 8, 3, 6, 3, 2, 2, 6, 3, 7, 7, 2, 2, 8, 3, 6, 5, 7, 6, 4, 4, 3,
            3, 5, 3, 3, 3, 5, 3, 5, 6, 3, 3, 3, 3, 2, 3, 1, 3, 3, 5, 4, 4, 3, 5, 4, 3, 5, 3, 4, 2, 3, 3, 1, 3, 2, 5,
            4, 3, 0, 3, 3, 4, 0, 3, 3, 4, 0, 2, 2, 1, 1, 2, 0, 2, 1, 1, 0, 0, 1, 1, 2, 2, 1, 1, 1, 1, 0, 0, 0, 1, 1,
            0, 0, 0, 0, 0]  # fmt: skip


@pytest.fixture
def outbreak() -> pd.DataFrame:
    return pd.DataFrame({"Days": DAYS, "Students": STUDENTS, "one": 1.0})


def test_outbreak_data_has_109_days(outbreak):
    assert len(outbreak) == 109  # row.names = c(NA, -109L) in the published structure()


def test_poisson_glm_matches_r_and_keeps_poisson_by_the_overdispersion_test(outbreak):
    fit = fit_count_model(outbreak, outcome="Students", exposure="one", terms=["Days"]).set_index("term")
    assert set(fit["model"]) == {"poisson"}  # underdispersed (0.79): the LR test of alpha finds nothing
    assert fit.loc["Intercept", "estimate"] == pytest.approx(1.990235, abs=5e-7)
    assert fit.loc["Intercept", "std_error"] == pytest.approx(0.083935, abs=5e-7)
    assert fit.loc["Days", "estimate"] == pytest.approx(-0.017463, abs=5e-7)
    assert fit.loc["Days", "std_error"] == pytest.approx(0.001727, abs=5e-7)
    assert fit.loc["Days", "z"] == pytest.approx(-10.11, abs=5e-3)
    assert fit.loc["Days", "deviance"] == pytest.approx(101.17, abs=5e-3)
    assert fit.loc["Days", "df_resid"] == 107
    assert fit.loc["Days", "aic"] == pytest.approx(393.11, abs=5e-3)
    assert fit.loc["Days", "dispersion"] == pytest.approx(
        0.7939441, abs=1e-7
    )  # Pearson chi2 / df (R: at its IRLS tolerance)
    assert fit.loc["Days", "overdispersion_p"] > 0.05


def test_quasi_poisson_trend_matches_r_quasipoisson(outbreak):
    # every day an observation (aggregate=False): glm(Students ~ Days, family = quasipoisson)
    row = fit_poisson_trend(outbreak, count="Students", exposure="one", year="Days", aggregate=False).iloc[0]
    assert row["model"] == "quasi_poisson" and row["df_resid"] == 107 and row["n"] == 109
    assert row["scale"] == pytest.approx(0.7939441, abs=1e-7)  # R stops IRLS at deviance change < 1e-8
    assert row["estimate"] == pytest.approx(-0.01746317, abs=5e-9)  # model2$coefficients
    assert row["std_error"] == pytest.approx(0.001539, abs=5e-7)
    assert row["statistic"] == pytest.approx(-11.35, abs=5e-3)
    # the intercept is at the first day (Days = 1): 1.99023497 - 0.01746317
    assert row["intercept"] == pytest.approx(1.99023497 - 0.01746317, abs=1e-8)
    # R's confint.default uses normal quantiles: 0.9797296 to 0.9856562; the library uses t(107) as
    # summary.glm does for its p-values, so the same SE gives a slightly wider interval
    se = (np.log(0.9856562) - np.log(0.9797296)) / (2 * stats.norm.ppf(0.975))
    assert row["std_error"] == pytest.approx(se, rel=2e-5)
    t = stats.t.ppf(0.975, 107)
    assert row["ci_low"] == pytest.approx(np.exp(-0.01746317 - t * se), rel=1e-6)
    assert row["ci_high"] == pytest.approx(np.exp(-0.01746317 + t * se), rel=1e-6)
    assert row["ci_low"] < 0.9797296 and row["ci_high"] > 0.9856562


def test_trend_aggregates_days_by_default(outbreak):
    # summing the counts of each day keeps the Poisson estimate (sufficient statistics), not the scale
    by_day = fit_poisson_trend(outbreak, count="Students", exposure="one", year="Days").iloc[0]
    assert by_day["estimate"] == pytest.approx(-0.01746317, abs=5e-9)
    assert by_day["n"] == by_day["n_years"] == outbreak["Days"].nunique() and by_day["df_resid"] == 71 - 2


@pytest.fixture
def dobson() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "counts": [18, 17, 15, 20, 10, 20, 25, 13, 12],
            "outcome": ["1", "2", "3"] * 3,
            "treatment": ["1"] * 3 + ["2"] * 3 + ["3"] * 3,
            "one": 1.0,
        }
    )


def test_dobson_poisson_glm_matches_r_example_glm(dobson):
    fit = fit_count_model(
        dobson, outcome="counts", exposure="one", terms=["outcome", "treatment"], model="poisson"
    )
    fit = fit.set_index(fit["term"] + fit["level"].fillna(""))
    assert fit.loc["Intercept", "estimate"] == pytest.approx(3.045, abs=5e-4)
    assert fit.loc["Intercept", "std_error"] == pytest.approx(0.1709, abs=5e-5)
    assert fit.loc["outcome2", "estimate"] == pytest.approx(-0.4543, abs=5e-5)
    assert fit.loc["outcome2", "std_error"] == pytest.approx(0.2022, abs=5e-5)
    assert fit.loc["outcome2", "z"] == pytest.approx(-2.247, abs=5e-4)
    assert fit.loc["outcome2", "p_value"] == pytest.approx(0.0246, abs=5e-5)
    assert fit.loc["outcome3", "estimate"] == pytest.approx(-0.2930, abs=5e-5)
    assert fit.loc["outcome3", "p_value"] == pytest.approx(0.1285, abs=5e-5)
    assert fit.loc["treatment2", "estimate"] == pytest.approx(0, abs=1e-8)
    assert fit.loc["treatment3", "std_error"] == pytest.approx(0.2000, abs=5e-5)
    assert fit.loc["Intercept", "deviance"] == pytest.approx(5.1291, abs=5e-5)
    assert fit.loc["Intercept", "aic"] == pytest.approx(56.761, abs=5e-4)
    assert fit.loc["Intercept", "df_resid"] == 4


def test_dobson_with_four_residual_df_cannot_choose_a_count_model(dobson):
    fit = fit_count_model(dobson, outcome="counts", exposure="one", terms=["outcome", "treatment"])
    assert (fit["model"] == "not estimable").all() and fit["rate_ratio"].isna().all()
    assert fit["model_choice"].iloc[0].startswith("not estimable: 4 residual df < 10")
