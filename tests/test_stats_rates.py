"""Tests for cyberobs_lib.stats.rates. Each test docstring names the source of its expected values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats.rates import poisson_exact_interval, poisson_rate_ratio_test, rate_per_1000


@pytest.mark.parametrize(
    ("x", "low", "high"),
    [(0, 0.0, 3.688879), (1, 0.02531781, 5.57164339), (2, 0.2422093, 7.2246877), (10, 4.795389, 18.390356)],
)
def test_garwood_limits_for_small_counts(x, low, high):
    """Exact Poisson limits (Garwood 1936), as printed by R poisson.test(x)$conf.int and tabulated
    by Ulm (1990) Am J Epidemiol 131:373: 0 -> (0, 3.689), 1 -> (0.0253, 5.572),
    2 -> (0.2422, 7.225), 10 -> (4.795, 18.390)."""
    row = poisson_exact_interval(x).iloc[0]
    assert row["ci_low"] == pytest.approx(low, abs=1e-6)
    assert row["ci_high"] == pytest.approx(high, abs=1e-6)
    assert row["ci_method"] == "garwood_exact"


def test_garwood_rate_with_exposure():
    """R ?poisson.test, Welsh nickel workers (from ISwR): poisson.test(137, 24.19893) gives
    event rate 5.661407, 95 % CI 4.753125 to 6.692709."""
    row = poisson_exact_interval(137, 24.19893).iloc[0]
    assert row["value"] == pytest.approx(5.661407, abs=1e-6)
    assert row["ci_low"] == pytest.approx(4.753125, abs=1e-6)
    assert row["ci_high"] == pytest.approx(6.692709, abs=1e-6)


def test_garwood_vectorized_with_series_index():
    """Hand: chi-square quantiles, low = chi2(0.05, 2x)/2, high = chi2(0.95, 2x+2)/2, over exposure (90 %)."""
    counts = pd.Series([3, 0, 12], index=["CH", "CHU", "EHPAD"])
    out = poisson_exact_interval(counts, [2.0, 1.0, 40.0], alpha=0.10)
    assert list(out.index) == ["CH", "CHU", "EHPAD"]
    assert out.loc["CH", "ci_low"] == pytest.approx(stats.chi2.ppf(0.05, 6) / 2 / 2)
    assert out.loc["EHPAD", "ci_high"] == pytest.approx(stats.chi2.ppf(0.95, 26) / 2 / 40)
    assert out.loc["CHU", "ci_low"] == 0.0


def test_poisson_interval_failure_paths():
    """Negative or fractional counts and non-positive exposures raise."""
    with pytest.raises(ValueError, match="non-negative integers"):
        poisson_exact_interval(-1)
    with pytest.raises(ValueError, match="non-negative integers"):
        poisson_exact_interval(1.5)
    with pytest.raises(ValueError, match="positive"):
        poisson_exact_interval(3, 0)


def test_rate_per_1000():
    """Hand: 5 incidents among 2,000 establishments = 2.5 per 1,000; limits are the Garwood limits
    for x = 5 (1.6235, 11.6683, R poisson.test(5)) times 1000/2000."""
    row = rate_per_1000(5, 2000).iloc[0]
    assert row["value"] == pytest.approx(2.5)
    assert row["ci_low"] == pytest.approx(1.623486 / 2, abs=1e-6)
    assert row["ci_high"] == pytest.approx(11.668332 / 2, abs=1e-6)
    per_100 = rate_per_1000([5], [2000], per=100).iloc[0]
    assert per_100["value"] == pytest.approx(0.25)


def test_rate_ratio_exact_conditional():
    """R ?poisson.test, myocardial infarction (from ISwR): poisson.test(c(11, 6+8+7),
    c(800, 1083+1050+878)) gives p-value = 0.07967, rate ratio 1.971488, 95 % CI 0.8584264 to 4.2772659."""
    out = poisson_rate_ratio_test(11, 800, 21, 1083 + 1050 + 878, group_a="exposed", group_b="unexposed")
    assert list(out.columns) == list(TESTS_COLUMNS)
    row = out.iloc[0]
    assert row["p_value"] == pytest.approx(0.07967, abs=5e-6)
    assert row["effect_size"] == pytest.approx(1.971488, abs=1e-6)
    assert row["ci_low"] == pytest.approx(0.8584264, abs=1e-6)
    assert row["ci_high"] == pytest.approx(4.2772659, abs=1e-6)
    assert (row["n_a"], row["n_b"], row["group_a"]) == (11, 21, "exposed")


def test_rate_ratio_edge_and_failure_paths():
    """No events at all: p = 1 and no ratio; zero in group b: infinite ratio; bad inputs raise."""
    empty = poisson_rate_ratio_test(0, 10, 0, 10).iloc[0]
    assert empty["p_value"] == 1.0 and np.isnan(empty["effect_size"])
    only_a = poisson_rate_ratio_test(4, 10, 0, 10).iloc[0]
    assert np.isinf(only_a["effect_size"]) and np.isinf(only_a["ci_high"])
    assert only_a["p_value"] == pytest.approx(2 * 0.5**4)  # hand: binomial, all 4 events in a
    with pytest.raises(ValueError, match="exposures"):
        poisson_rate_ratio_test(1, 0, 1, 1)
    with pytest.raises(ValueError, match="counts"):
        poisson_rate_ratio_test(-1, 1, 1, 1)
