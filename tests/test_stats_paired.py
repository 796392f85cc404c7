"""Tests for cyberobs_lib.stats.paired. Each test docstring names the source of its expected values;
"hand" means recomputed here from the published formula, independently of the library code."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats.paired import (
    cochran_q,
    friedman_test,
    hodges_lehmann_paired,
    mcnemar_test,
    sign_test,
    wilcoxon_paired,
)
from cyberobs_lib.stats.proportions import newcombe_paired_difference

# Hollander & Wolfe (1973) p. 29f, Hamilton depression scale factor IV, first (x) and second (y)
# visit; the example of R ?wilcox.test.
HW_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HW_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]

# Hollander & Wolfe (1973) p. 140, rounding first base (round out, narrow angle, wide angle),
# 22 players; the example of R ?friedman.test.
ROUNDING = np.array(
    [5.40, 5.50, 5.55, 5.85, 5.70, 5.75, 5.20, 5.60, 5.50, 5.55, 5.50, 5.40, 5.90, 5.85, 5.70,
     5.45, 5.55, 5.60, 5.40, 5.40, 5.35, 5.45, 5.50, 5.35, 5.25, 5.15, 5.00, 5.85, 5.80, 5.70,
     5.25, 5.20, 5.10, 5.65, 5.55, 5.45, 5.60, 5.35, 5.45, 5.05, 5.00, 4.95, 5.50, 5.50, 5.40,
     5.45, 5.55, 5.50, 5.55, 5.55, 5.35, 5.45, 5.50, 5.55, 5.50, 5.45, 5.25, 5.65, 5.60, 5.40,
     5.70, 5.65, 5.55, 6.30, 6.30, 6.25]
).reshape(22, 3)  # fmt: skip

# Agresti (2002) Categorical Data Analysis, Table 10.1: approval of the Prime Minister in two
# surveys of the same 1600 people: (approve, approve) 794, (approve, disapprove) 150,
# (disapprove, approve) 86, (disapprove, disapprove) 570.
SURVEY1 = np.array([True] * 944 + [False] * 656)
SURVEY2 = np.array([True] * 794 + [False] * 150 + [True] * 86 + [False] * 570)


# ------------------------------------------------------------------------------------- Wilcoxon
def test_wilcoxon_exact_hollander_wolfe():
    """R ?wilcox.test: wilcox.test(x, y, paired = TRUE, alternative = "greater") gives V = 40,
    p = 0.01953, so two-sided p = 0.03906 (= 2 * 10/512, hand). Rank-biserial by hand:
    T- = 5, r = (40 - 5) / 45 (Kerby 2014)."""
    out = wilcoxon_paired(HW_X, HW_Y)
    assert list(out.columns) == list(TESTS_COLUMNS)
    row = out.iloc[0]
    assert row["variant"].startswith("exact;")
    assert row["statistic"] == 40
    assert row["p_value"] == pytest.approx(2 * 10 / 512, abs=1e-12)
    assert row["effect_size"] == pytest.approx(35 / 45)
    n = 9
    se = math.sqrt(n * (n + 1) * (2 * n + 1) / 6) / (n * (n + 1) / 2)
    z = stats.norm.ppf(0.975)
    assert row["ci_low"] == pytest.approx(math.tanh(math.atanh(35 / 45) - z * se))
    assert row["ci_high"] == pytest.approx(math.tanh(math.atanh(35 / 45) + z * se))
    assert row["n_a"] == row["n_b"] == 9


def test_wilcoxon_normal_approximation_with_ties_and_zeros():
    """Hand: zeros dropped (Wilcoxon), mid-ranks, continuity correction 0.5 and the tie-corrected
    variance n(n+1)(2n+1)/24 - sum(t^3 - t)/48, as R wilcox.test(correct = TRUE)."""
    before = [5, 3, 4, 6, 2, 7, 5, 8, 3, 4, 6, 5]
    after = [3, 3, 2, 4, 4, 5, 5, 5, 1, 4, 2, 6]
    # d = 2,0,2,2,-2,2,0,3,2,0,4,-1: 3 zeros; |d| ranks: 1 -> 1, six 2s -> 4.5, 3 -> 8, 4 -> 9
    v = 4.5 * 5 + 8 + 9
    n = 9
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (6**3 - 6) / 48)
    p = 2 * stats.norm.sf((v - n * (n + 1) / 4 - 0.5) / sigma)
    row = wilcoxon_paired(before, after).iloc[0]
    assert row["variant"] == "asymptotic+cc;zero_method=wilcox;zeros=3;incomplete_dropped=0"
    assert row["statistic"] == v
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["effect_size"] == pytest.approx((v - 5.5) / (v + 5.5))
    pratt = wilcoxon_paired(before, after, zero_method="pratt").iloc[0]
    assert pratt["variant"].startswith("asymptotic+cc;zero_method=pratt;zeros=3")
    assert pratt["statistic"] == 7.5 * 5 + 11 + 12  # zeros take ranks 1-3 (Pratt 1959), hand


def test_wilcoxon_pairs_by_index_and_counts_incomplete():
    """Two Series are paired by establishment id; a pair with a missing side is dropped and counted."""
    before = pd.Series(HW_X + [9.0], index=[f"e{i}" for i in range(10)])
    after = pd.Series([np.nan] + HW_Y[::-1], index=[f"e{i}" for i in range(9, -1, -1)])
    # after reversed onto reversed ids: e0..e8 get HW_Y in order, e9 gets NaN
    row = wilcoxon_paired(before, after).iloc[0]
    assert row["statistic"] == 40 and row["n_a"] == 9
    assert row["variant"].endswith("incomplete_dropped=1")
    assert before.iloc[-1] == 9.0  # input not mutated


def test_wilcoxon_failure_paths():
    """Empty input and all-missing pairs raise; all-zero differences give an undefined (NaN) row."""
    with pytest.raises(ValueError, match="no complete pair"):
        wilcoxon_paired([], [])
    with pytest.raises(ValueError, match="no complete pair"):
        wilcoxon_paired([1.0, np.nan], [np.nan, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        wilcoxon_paired([1, 2], [1])
    with pytest.raises(ValueError, match="zero_method"):
        wilcoxon_paired([1, 2], [2, 1], zero_method="zsplit")
    row = wilcoxon_paired([1, 2, 3], [1, 2, 3]).iloc[0]
    assert row["variant"].startswith("undefined_all_differences_zero")
    assert np.isnan(row["p_value"]) and np.isnan(row["statistic"])


# ------------------------------------------------------------------------------- Hodges-Lehmann
def test_hodges_lehmann_exact_interval_by_enumeration():
    """Hand: median of the 45 Walsh averages; exact limits from the signed-rank distribution
    obtained by enumerating the 2^9 sign patterns (Hollander & Wolfe 1999, section 3.2)."""
    d = np.array(HW_X) - np.array(HW_Y)
    walsh = sorted((d[i] + d[j]) / 2 for i in range(9) for j in range(i, 9))
    counts = np.bincount([sum(r for r, s in zip(range(1, 10), signs, strict=True) if s)
                          for signs in itertools.product([0, 1], repeat=9)])  # fmt: skip
    cdf = np.cumsum(counts) / 512
    q = int(np.argmax(cdf >= 0.025))  # qsignrank(0.025, 9)
    row = hodges_lehmann_paired(HW_X, HW_Y).iloc[0]
    assert row["value"] == pytest.approx(np.median(walsh))
    assert row["ci_low"] == pytest.approx(walsh[q - 1])
    assert row["ci_high"] == pytest.approx(walsh[45 - q])
    assert row["ci_method"] == "walsh_exact"


def test_hodges_lehmann_failure_paths():
    """All-zero differences and too many differences raise."""
    with pytest.raises(ValueError, match="undefined"):
        hodges_lehmann_paired([1, 2], [1, 2])
    with pytest.raises(ValueError, match="max_n"):
        hodges_lehmann_paired(np.arange(10.0), np.zeros(10), max_n=5)


# ------------------------------------------------------------------------------------ sign test
def test_sign_test_exact_binomial():
    """Hand: 7 positive of 9 non-zero differences, p = 2 (1 + 9 + 36) / 512 = 0.1797 (binomial)."""
    row = sign_test(HW_X, HW_Y).iloc[0]
    assert row["statistic"] == 7
    assert row["p_value"] == pytest.approx(92 / 512)
    ci = stats.binomtest(7, 9).proportion_ci(method="exact")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_sign_test_zeros_dropped_and_all_zero_undefined():
    """Zeros are dropped and counted; all zeros give an undefined row."""
    row = sign_test([1, 2, 3, 4], [1, 0, 0, 5]).iloc[0]
    assert row["variant"] == "exact_binomial;zeros=1;incomplete_dropped=0"
    assert row["statistic"] == 2 and row["p_value"] == pytest.approx(1.0)
    undefined = sign_test([1, 2], [1, 2]).iloc[0]
    assert undefined["variant"].startswith("undefined") and np.isnan(undefined["p_value"])


# -------------------------------------------------------------------------------------- McNemar
def test_mcnemar_asymptotic_agresti():
    """Agresti (2002) section 10.1, Table 10.1: z0 = (86 - 150) / sqrt(86 + 150) = -4.17,
    z0^2 = 17.36 without continuity correction; with it (hand; what R mcnemar.test reports):
    (|150 - 86| - 1)^2 / 236 = 16.82. Difference 944/1600 - 880/1600 = 0.04."""
    row = mcnemar_test(SURVEY1, SURVEY2).iloc[0]
    assert row["variant"] == "asymptotic+cc;incomplete_dropped=0"
    assert row["statistic"] == pytest.approx(63**2 / 236)
    assert round(row["statistic"], 2) == 16.82
    assert row["p_value"] == pytest.approx(stats.chi2.sf(63**2 / 236, 1))
    assert row["effect_size"] == pytest.approx(0.04)
    ci = newcombe_paired_difference(794, 150, 86, 570).iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci["ci_low"], ci["ci_high"]))


def test_mcnemar_exact_below_threshold():
    """Hand: b = 1, c = 6 discordant pairs (< 25): p = 2 P(X <= 1), X ~ Bin(7, 1/2) = 16/128."""
    before = [True] * 3 + [True] * 1 + [False] * 6 + [False] * 2
    after = [True] * 3 + [False] * 1 + [True] * 6 + [False] * 2
    row = mcnemar_test(before, after).iloc[0]
    assert row["variant"].startswith("exact_binomial")
    assert row["p_value"] == pytest.approx(16 / 128)
    assert row["statistic"] == 1 and np.isnan(row["df"])
    assert row["effect_size"] == pytest.approx((1 - 6) / 12)
    forced = mcnemar_test(before, after, exact_threshold=0).iloc[0]
    assert forced["variant"].startswith("asymptotic+cc")
    assert forced["statistic"] == pytest.approx((5 - 1) ** 2 / 7)


def test_mcnemar_matches_fagerland_cavo_2012():
    """Fagerland, Lydersen & Laake (2017) ch. 8, Cavo et al. (2012) table [[59, 6], [16, 80]]:
    McNemar exact conditional P = 0.052479; asymptotic with continuity correction P = 0.055009,
    Z = 1.919 (outputs of the authors' R package contingencytables)."""
    before = [True] * 65 + [False] * 96
    after = [True] * 59 + [False] * 6 + [True] * 16 + [False] * 80
    exact = mcnemar_test(before, after).iloc[0]  # b + c = 22 < 25
    assert exact["variant"].startswith("exact_binomial")
    assert exact["p_value"] == pytest.approx(0.052479, abs=5e-7)
    asym = mcnemar_test(before, after, exact_threshold=20).iloc[0]
    assert asym["variant"].startswith("asymptotic+cc")
    assert asym["p_value"] == pytest.approx(0.055009, abs=5e-7)
    assert math.sqrt(asym["statistic"]) == pytest.approx(1.919, abs=5e-4)
    assert (asym["ci_low"], asym["ci_high"]) == pytest.approx((-0.1186, -0.0046), abs=5e-5)


def test_mcnemar_failure_paths_and_missing():
    """Non-boolean values raise; missing values drop the pair; no discordant pair gives p = 1."""
    with pytest.raises(ValueError, match="booleans"):
        mcnemar_test([True, "maybe"], [True, False])
    row = mcnemar_test(pd.Series([True, None, False]), pd.Series([True, True, False])).iloc[0]
    assert row["variant"].endswith("incomplete_dropped=1") and row["n_a"] == 2
    assert row["p_value"] == 1.0


# ------------------------------------------------------------------------------ Friedman, Cochran
def test_friedman_rounding_times():
    """R ?friedman.test (Hollander & Wolfe 1973, p. 140): Friedman chi-squared = 11.143, df = 2,
    p-value = 0.003805. Kendall's W = 11.143 / (22 * 2) (hand)."""
    frame = pd.DataFrame(ROUNDING, columns=["round_out", "narrow_angle", "wide_angle"])
    row = friedman_test(frame).iloc[0]
    assert row["statistic"] == pytest.approx(11.143, abs=5e-4)
    assert row["df"] == 2
    assert row["p_value"] == pytest.approx(0.003805, abs=5e-7)
    assert row["effect_size"] == pytest.approx(row["statistic"] / 44)
    assert row["group_a"] == "round_out|narrow_angle|wide_angle" and row["n_a"] == 22


def test_friedman_incomplete_constant_and_bad_shape():
    """Incomplete blocks are dropped and counted; constant blocks give NaN; < 3 columns raise."""
    frame = pd.DataFrame(ROUNDING, columns=list("abc"))
    frame.iloc[0, 1] = np.nan
    row = friedman_test(frame).iloc[0]
    assert row["n_a"] == 21 and row["variant"].endswith("incomplete_dropped=1")
    assert np.isnan(friedman_test(pd.DataFrame(np.ones((4, 3)))).iloc[0]["p_value"])
    with pytest.raises(ValueError, match="at least 3"):
        friedman_test(frame[["a", "b"]])
    with pytest.raises(ValueError, match="no complete row"):
        friedman_test(pd.DataFrame({"a": [np.nan], "b": [1.0], "c": [2.0]}))


def test_cochran_q_two_conditions_equals_uncorrected_mcnemar():
    """Cochran (1950): with k = 2, Q equals McNemar's statistic without continuity correction,
    here (150 - 86)^2 / 236 = 17.36 (Agresti 2002 section 10.1.1: z0^2 = 17.36)."""
    row = cochran_q(pd.DataFrame({"s1": SURVEY1, "s2": SURVEY2})).iloc[0]
    assert row["statistic"] == pytest.approx(64**2 / 236)
    assert row["df"] == 1


def test_cochran_q_three_conditions_by_hand():
    """Hand: Q = (k-1)[k sum C_j^2 - N^2] / (k N - sum R_i^2) (Cochran 1950)."""
    x = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0]])
    k, cols, rows, total = 3, x.sum(axis=0), x.sum(axis=1), x.sum()
    q = (k - 1) * (k * (cols**2).sum() - total**2) / (k * total - (rows**2).sum())
    frame = pd.DataFrame(x.astype(bool), columns=["a1", "a2", "a3"])
    frame.loc[7] = [True, None, False]  # incomplete block
    row = cochran_q(frame).iloc[0]
    assert row["statistic"] == pytest.approx(q)
    assert row["p_value"] == pytest.approx(stats.chi2.sf(q, 2))
    assert row["variant"].endswith("incomplete_dropped=1") and row["n_a"] == 7
    assert np.isnan(cochran_q(pd.DataFrame({"a": [True, False], "b": [True, False]})).iloc[0]["p_value"])
