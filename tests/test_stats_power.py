"""Tests for cyberobs_lib.stats.power. Each test docstring names the source of its expected values."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from cyberobs_lib.stats.power import (
    power_two_proportions,
    sample_size_two_means,
    sample_size_two_proportions,
    sample_size_two_rates,
)


def test_power_prop_test_power():
    """R ?power.prop.test: power.prop.test(n = 50, p1 = .50, p2 = .75) gives power = 0.7401659."""
    assert power_two_proportions(50, 0.5, 0.75)["power"].iloc[0] == pytest.approx(0.7401659, abs=1e-7)


def test_power_prop_test_sample_size():
    """R ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90) gives n = 76.7 (the
    help page's own comment: "## => n = 76.7"). The exact root of R's power equation is 76.7069;
    the figure 76.65 sometimes quoted does not satisfy it (power(76.65) < 0.9)."""
    row = sample_size_two_proportions(0.5, 0.75, power=0.9).iloc[0]
    assert round(row["n_per_group"], 1) == 76.7
    assert power_two_proportions(row["n_per_group"], 0.5, 0.75)["power"].iloc[0] == pytest.approx(
        0.9, abs=1e-12
    )
    assert power_two_proportions(76.65, 0.5, 0.75)["power"].iloc[0] < 0.9
    assert row["n_total"] == 154 and row["n_group2"] == row["n_per_group"]


def test_sample_size_proportions_unequal_groups_by_hand():
    """Hand: Fleiss, Levin & Paik (2003) eq. 4.19 without continuity correction, r = n2/n1 = 2."""
    p1, p2, r = 0.30, 0.15, 2.0
    pbar = (p1 + r * p2) / (1 + r)
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    n1 = (
        za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / r)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / r)
    ) ** 2
    n1 /= (p1 - p2) ** 2
    row = sample_size_two_proportions(p1, p2, ratio=r).iloc[0]
    assert row["n_per_group"] == pytest.approx(n1)
    assert row["n_group2"] == pytest.approx(2 * n1)
    assert row["n_total"] == math.ceil(n1) + math.ceil(2 * n1)


def test_power_t_test_references():
    """R ?power.t.test: power.t.test(power = .90, delta = 1) gives n = 22.02110."""
    row = sample_size_two_means(1.0, 1.0, power=0.9).iloc[0]
    assert row["n_per_group"] == pytest.approx(22.02110, abs=5e-5)
    assert row["n_total"] == 46


def test_sample_size_means_solves_noncentral_t_power():
    """Hand: at the returned n (delta = 1, sd = 2, ratio 1.5), the two-sided power computed directly
    from the noncentral t (ncp = d / sqrt(1/n1 + 1/n2), df = n1 + n2 - 2) is 0.8 (Cohen 1988)."""
    row = sample_size_two_means(1.0, 2.0, ratio=1.5).iloc[0]
    n1, n2 = row["n_per_group"], row["n_group2"]
    df, ncp = n1 + n2 - 2, 0.5 / math.sqrt(1 / n1 + 1 / n2)
    crit = stats.t.ppf(0.975, df)
    power = stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)
    assert power == pytest.approx(0.8, abs=1e-6)
    assert row["effect_size"] == 0.5


def test_sample_size_two_rates_by_hand():
    """Hand: (z_.975 + z_.8)^2 (0.1 + 0.2) / 0.1^2 = 235.47 units of exposure per group (Lachin 2011)."""
    row = sample_size_two_rates(0.1, 0.2).iloc[0]
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * 0.3 / 0.01
    assert row["n_per_group"] == pytest.approx(expected)
    assert round(expected, 2) == 235.47


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sample_size_two_proportions(0.5, 0.5), "no difference"),
        (lambda: sample_size_two_proportions(0.0, 0.5), r"\(0, 1\)"),
        (lambda: sample_size_two_proportions(0.2, 0.5, alpha=1.5), "alpha"),
        (lambda: sample_size_two_proportions(0.2, 0.5, power=1.0), "power"),
        (lambda: sample_size_two_proportions(0.2, 0.5, ratio=0), "ratio"),
        (lambda: power_two_proportions(0, 0.2, 0.5), "n must be positive"),
        (lambda: sample_size_two_means(0.0), "non-zero delta"),
        (lambda: sample_size_two_rates(0.1, 0.1), "different"),
    ],
)
def test_power_failure_paths(call, message):
    """Impossible planning inputs raise a ValueError that says what is wrong."""
    with pytest.raises(ValueError, match=message):
        call()
