"""Tests for cyberobs_lib.stats.paired. Each test docstring names the source of its expected values:
a published R output (the function call and where it is printed), a textbook table, or "hand" (recomputed
here from the published formula, independently of the library code).

Sign convention under test: every paired effect is a change ``after - before`` (follow-up - baseline),
negative when the second measurement is lower."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats import paired
from cyberobs_lib.stats.paired import (
    DIRECTION_COLUMN,
    MCNEMAR_VARIANTS,
    change_direction,
    cochran_q,
    friedman_test,
    mcnemar_pvalue,
    mcnemar_test,
    rank_biserial_interval,
    sign_test,
    wilcoxon_paired,
)

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

# Agresti (2002) Categorical Data Analysis, Table 10.1 (R ?mcnemar.test, "Performance"): approval of
# the Prime Minister in two surveys of the same 1600 people: (approve, approve) 794, (approve,
# disapprove) 150, (disapprove, approve) 86, (disapprove, disapprove) 570.
SURVEY1 = np.array([True] * 944 + [False] * 656)
SURVEY2 = np.array([True] * 794 + [False] * 150 + [True] * 86 + [False] * 570)


def _paired_binary(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Before/after booleans of the paired 2x2 table [[a, b], [c, d]] (rows: before true/false,
    columns: after true/false), i.e. R's ``matrix(c(a, c, b, d), 2)``."""
    before = np.array([True] * (a + b) + [False] * (c + d))
    after = np.array([True] * a + [False] * b + [True] * c + [False] * d)
    return before, after


# ------------------------------------------------------------------------------- sign convention
def test_change_direction_words():
    """The convention in words, for values and for shares; anything else is refused."""
    assert change_direction("baseline", "follow-up") == "follow-up − baseline (negative: fewer)"
    assert change_direction("baseline", "follow-up", of="shares").startswith(
        "share follow-up − share baseline"
    )
    with pytest.raises(ValueError, match="of must be"):
        change_direction(of="ratios")


def test_every_paired_test_is_negative_when_every_pair_decreased():
    """Every pair lower after: r, the sign effect and the McNemar change are all negative, and every row
    says which difference it is (after − before)."""
    before = [10.0, 8.0, 7.0, 12.0, 9.0, 15.0]
    after = [4.0, 5.0, 6.5, 2.0, 8.0, 9.5]
    rows = pd.concat(
        [
            wilcoxon_paired(before, after),
            sign_test(before, after),
            mcnemar_test([True] * 6, [False, False, False, True, False, False]),
        ]
    )
    assert (rows["effect_size"] < 0).all() and (rows["ci_low"] < 0).all()
    assert rows[DIRECTION_COLUMN].str.startswith(("after − before", "share after − share before")).all()
    # the reverse pairing flips every sign and nothing else
    back = pd.concat([wilcoxon_paired(after, before), sign_test(after, before)])
    assert back["effect_size"].tolist() == pytest.approx((-rows["effect_size"].iloc[:2]).tolist())
    assert back["p_value"].tolist() == pytest.approx(rows["p_value"].iloc[:2].tolist())


# ------------------------------------------------------------------------------------- Wilcoxon
def test_wilcoxon_exact_hollander_wolfe_both_orientations():
    """R ?wilcox.test (Hollander & Wolfe 1973 p. 29): ``wilcox.test(x, y, paired = TRUE)`` prints
    V = 40, p-value = 0.03906 and ``wilcox.test(y - x, alternative = "less")`` V = 5 (one-sided
    0.01953). Here change = second visit - first: V = 5, r = (5 - 40) / 45 (Kerby 2014, hand)."""
    out = wilcoxon_paired(HW_X, HW_Y, group_a="first", group_b="second")
    assert list(out.columns) == [*TESTS_COLUMNS, DIRECTION_COLUMN]
    row = out.iloc[0]
    assert (
        row["variant"]
        == "exact;method=auto;zero_method=wilcox;zeros=0;ties=0;incomplete_dropped=0;statistic=V"
    )
    assert row["statistic"] == 5
    assert round(row["p_value"], 5) == 0.03906
    assert row["p_value"] == pytest.approx(2 * 10 / 512, abs=1e-12)
    assert row["effect_size"] == pytest.approx(-35 / 45)
    assert row["n_a"] == row["n_b"] == 9
    assert row[DIRECTION_COLUMN] == "second − first (negative: fewer)"
    # R's orientation, x - y: wilcox.test(x, y, paired = TRUE) -> V = 40, p = 0.03906
    r_way = wilcoxon_paired(HW_Y, HW_X, method="exact").iloc[0]
    assert r_way["statistic"] == 40 and round(r_way["p_value"], 5) == 0.03906
    assert r_way["effect_size"] == pytest.approx(35 / 45)


def test_rank_biserial_fisher_z_matches_effectsize():
    """R effectsize: ``rank_biserial(x, y, paired = TRUE)`` on the ?wilcox.test data prints
    r = 0.78, 95 % CI [0.30, 0.94] (effectsize README, "Effect sizes for rank-based tests")."""
    row = wilcoxon_paired(HW_Y, HW_X, ci_method="fisher_z").iloc[0]
    assert row["ci_method"] == "fisher_z"
    assert (round(row["effect_size"], 2), round(row["ci_low"], 2), round(row["ci_high"], 2)) == (
        0.78,
        0.30,
        0.94,
    )
    mirrored = wilcoxon_paired(HW_X, HW_Y, ci_method="fisher_z").iloc[0]
    assert (mirrored["ci_low"], mirrored["ci_high"]) == pytest.approx((-row["ci_high"], -row["ci_low"]))


def test_rank_biserial_score_interval_does_not_collapse():
    """Every change negative: r = -1. Fisher z collapses to [-1, -1]; the score interval is the root of
    (r - rho)^2 = z^2 s0^2 (1 - rho^2) (hand): upper limit -(1 - q) / (1 + q), q = z^2 s0^2,
    s0 = sqrt(n(n+1)(2n+1)/6) / (n(n+1)/2)."""
    before, after = [9.0, 7.5, 8.0, 6.0, 12.0], [8.0, 5.0, 4.5, 2.0, 7.0]  # changes -1, -2.5, -3.5, -4, -5
    row = wilcoxon_paired(before, after).iloc[0]
    n = 5
    s0 = math.sqrt(n * (n + 1) * (2 * n + 1) / 6) / (n * (n + 1) / 2)
    q = stats.norm.ppf(0.975) ** 2 * s0**2
    assert row["effect_size"] == -1.0 and row["ci_method"] == "score_wilson_null_se"
    assert row["ci_low"] == -1.0
    assert row["ci_high"] == pytest.approx(-(1 - q) / (1 + q))
    assert -0.1 < row["ci_high"] < 0  # n = 5: exact p = 2/32 = 0.0625, the interval nearly reaches 0
    assert row["p_value"] == pytest.approx(2 / 32)
    fisher = wilcoxon_paired(before, after, ci_method="fisher_z").iloc[0]
    assert fisher["ci_high"] == pytest.approx(-1.0, abs=1e-6)  # the collapse the score interval avoids
    # an interior value: the score interval is a proper interval around r
    lo, hi = rank_biserial_interval(35 / 45, 9)
    assert lo < 35 / 45 < hi and (35 / 45 - lo) ** 2 == pytest.approx(
        stats.norm.ppf(0.975) ** 2 * (math.sqrt(9 * 10 * 19 / 6) / 45) ** 2 * (1 - lo**2)
    )


def test_wilcoxon_normal_approximation_with_ties_and_zeros():
    """Hand: zeros dropped (Wilcoxon), mid-ranks, continuity correction 0.5 and the tie-corrected
    variance n(n+1)(2n+1)/24 - sum(t^3 - t)/48, as R wilcox.test(correct = TRUE)."""
    before = [5, 3, 4, 6, 2, 7, 5, 8, 3, 4, 6, 5]
    after = [3, 3, 2, 4, 4, 5, 5, 5, 1, 4, 2, 6]
    # after - before = -2,0,-2,-2,2,-2,0,-3,-2,0,-4,1: 3 zeros; |d| ranks: 1 -> 1, six 2s -> 4.5, 3 -> 8,
    # 4 -> 9; positive changes: +2 (4.5) and +1 (1)
    v = 4.5 + 1
    n = 9
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (6**3 - 6) / 48)
    p = 2 * stats.norm.sf((abs(v - n * (n + 1) / 4) - 0.5) / sigma)
    row = wilcoxon_paired(before, after, method="asymptotic").iloc[0]
    assert row["variant"] == (
        "asymptotic+cc;method=asymptotic;zero_method=wilcox;zeros=3;ties=6;incomplete_dropped=0;statistic=V"
    )
    assert row["statistic"] == v
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["effect_size"] == pytest.approx((v - 39.5) / 45)
    uncorrected = wilcoxon_paired(before, after, method="asymptotic", correction=False).iloc[0]
    assert uncorrected["variant"].startswith("asymptotic;")
    assert uncorrected["p_value"] == pytest.approx(2 * stats.norm.sf(abs(v - 22.5) / sigma), rel=1e-9)
    pratt = wilcoxon_paired(before, after, zero_method="pratt", method="asymptotic").iloc[0]
    assert pratt["variant"].startswith("asymptotic+cc;method=asymptotic;zero_method=pratt;zeros=3")
    assert pratt["statistic"] == 7.5 + 4  # zeros take ranks 1-3 (Pratt 1959), hand: +2 -> 7.5, +1 -> 4


def test_wilcoxon_exact_conditional_by_enumeration():
    """Hand: with ties and zeros the default (``method="auto"``, 9 non-zero changes <= 13) is the exact
    permutation distribution of V given the mid-ranks: the 2^9 sign patterns enumerated here."""
    before = [5, 3, 4, 6, 2, 7, 5, 8, 3, 4, 6, 5]
    after = [3, 3, 2, 4, 4, 5, 5, 5, 1, 4, 2, 6]
    ranks = [4.5, 4.5, 4.5, 4.5, 4.5, 4.5, 1, 8, 9]  # the non-zero |changes| 2 x6, 1, 3, 4
    observed = 4.5 + 1
    centre = sum(ranks) / 2
    vs = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product([0, 1], repeat=9)
    ]
    p = np.mean([abs(v - centre) >= abs(observed - centre) - 1e-9 for v in vs])
    row = wilcoxon_paired(before, after).iloc[0]
    assert row["variant"].startswith("exact_conditional;method=auto;")
    assert row["p_value"] == pytest.approx(p)
    with pytest.raises(ValueError, match="distinct non-zero"):
        wilcoxon_paired(before, after, method="exact")
    with pytest.raises(ValueError, match="2\\^n sign patterns"):
        wilcoxon_paired(
            np.arange(20.0), np.arange(20.0) + np.arange(1, 21) % 3 + 1, method="exact_conditional"
        )


def test_wilcoxon_large_sample_is_asymptotic_and_says_so():
    """Auto rule: 60 distinct changes (>= 50) give the normal approximation, named in ``variant``."""
    rng = np.random.default_rng(3)
    before = rng.normal(size=60)
    after = before + rng.normal(0.3, 1, size=60)
    row = wilcoxon_paired(before, after).iloc[0]
    assert row["variant"].startswith("asymptotic+cc;method=auto;")
    ref = stats.wilcoxon(after - before, correction=True, method="asymptotic")
    assert row["p_value"] == pytest.approx(ref.pvalue)


def test_wilcoxon_pairs_by_index_and_counts_incomplete():
    """Two Series are paired by establishment id; a pair with a missing side is dropped and counted."""
    before = pd.Series(HW_X + [9.0], index=[f"e{i}" for i in range(10)])
    after = pd.Series([np.nan] + HW_Y[::-1], index=[f"e{i}" for i in range(9, -1, -1)])
    # after reversed onto reversed ids: e0..e8 get HW_Y in order, e9 gets NaN
    row = wilcoxon_paired(before, after).iloc[0]
    assert row["statistic"] == 5 and row["n_a"] == 9
    assert "incomplete_dropped=1" in row["variant"]
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
    with pytest.raises(ValueError, match="method must be"):
        wilcoxon_paired([1, 2], [2, 1], method="approx")
    with pytest.raises(ValueError, match="ci_method must be"):
        wilcoxon_paired([1, 2], [2, 1], ci_method="bootstrap")
    with pytest.raises(ValueError, match="numbers"):
        wilcoxon_paired(["a", "b"], ["c", "d"])
    row = wilcoxon_paired([1, 2, 3], [1, 2, 3]).iloc[0]
    assert row["variant"].startswith("undefined_all_differences_zero")
    assert np.isnan(row["p_value"]) and np.isnan(row["statistic"])
    assert row[DIRECTION_COLUMN] == "after − before (negative: fewer)"


# ------------------------------------------------------------------------------------ sign test
def test_sign_test_bsda_drug_relief():
    """R BSDA ``SIGN.test(x, y)`` (hours of relief, drugs A and B, 12 patients) prints S = 3,
    p-value = 0.146 for x - y. Here before = y (B), after = x (A): change = x - y, 3 increases,
    9 decreases, effect (3 - 9) / 12 = -0.5 (hand); p = 2 (1 + 12 + 66 + 220) / 4096 (hand)."""
    x = [2.0, 3.6, 2.6, 2.6, 7.3, 3.4, 14.9, 6.6, 2.3, 2.0, 6.8, 8.5]
    y = [3.5, 5.7, 2.9, 2.4, 9.9, 3.3, 16.7, 6.0, 3.8, 4.0, 9.1, 20.9]
    row = sign_test(y, x).iloc[0]
    assert row["statistic"] == 3 and round(row["p_value"], 3) == 0.146
    assert row["p_value"] == pytest.approx(598 / 4096)
    assert row["effect_size"] == pytest.approx(-0.5)
    assert row["effect_size_kind"] == "share_increased_minus_decreased"
    ci = stats.binomtest(3, 12).proportion_ci(method="exact")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((2 * ci.low - 1, 2 * ci.high - 1))
    assert row["variant"] == "exact_binomial;zeros=0;incomplete_dropped=0;statistic=n_increased"


def test_sign_test_hollander_wolfe_second_visit_lower():
    """Hand: of the 9 changes second - first visit, 2 increase: p = 2 (1 + 9 + 36) / 512; effect -5/9."""
    row = sign_test(HW_X, HW_Y).iloc[0]
    assert row["statistic"] == 2
    assert row["p_value"] == pytest.approx(92 / 512)
    assert row["effect_size"] == pytest.approx(-5 / 9)


def test_sign_test_zeros_dropped_and_all_zero_undefined():
    """Zeros are dropped and counted; all zeros give an undefined row."""
    row = sign_test([1, 2, 3, 4], [1, 0, 0, 5]).iloc[0]
    assert row["variant"] == "exact_binomial;zeros=1;incomplete_dropped=0;statistic=n_increased"
    assert row["statistic"] == 1 and row["p_value"] == pytest.approx(1.0)
    undefined = sign_test([1, 2], [1, 2]).iloc[0]
    assert undefined["variant"].startswith("undefined") and np.isnan(undefined["p_value"])


# -------------------------------------------------------------------------------------- McNemar
def test_mcnemar_r_mcnemar_test_agresti():
    """R ?mcnemar.test (Agresti 1990 p. 350, the Performance table): ``mcnemar.test(Performance)``
    prints McNemar's chi-squared = 16.818, df = 1, p-value = 4.115e-05; ``correct = FALSE`` prints
    17.356, p-value = 3.099e-05. Change of approval 880/1600 - 944/1600 = -0.04 (hand)."""
    cc = mcnemar_test(SURVEY1, SURVEY2, variant="asymptotic_cc").iloc[0]
    assert cc["variant"] == "asymptotic_cc;statistic=chi2_cc;incomplete_dropped=0"
    assert round(cc["statistic"], 3) == 16.818 and cc["df"] == 1
    assert float(f"{cc['p_value']:.4g}") == 4.115e-05
    plain = mcnemar_test(SURVEY1, SURVEY2, variant="asymptotic").iloc[0]
    assert plain["variant"].startswith("asymptotic;statistic=chi2;")
    assert round(plain["statistic"], 3) == 17.356 and float(f"{plain['p_value']:.4g}") == 3.099e-05
    assert cc["effect_size"] == pytest.approx(-0.04) and plain["effect_size"] == pytest.approx(-0.04)
    assert cc[DIRECTION_COLUMN] == "share after − share before (negative: fewer)"


def test_mcnemar_fagerland_cavo_2012_all_variants():
    """R contingencytables (Fagerland, Lydersen & Laake 2017, ch. 8; the package's tests print them),
    Cavo et al. (2012) table [[59, 6], [16, 80]]: mid-P 0.034690; exact conditional 0.052479;
    asymptotic 0.033006 (Z = -2.132); with continuity correction 0.055009 (Z = 1.919); Newcombe
    square-and-add interval of p1+ - p+1: -0.0621 (-0.1186 to -0.0046), so after - before is
    0.0621 (0.0046 to 0.1186)."""
    before, after = _paired_binary(59, 6, 16, 80)
    expected = {"midp": 0.034690, "exact": 0.052479, "asymptotic": 0.033006, "asymptotic_cc": 0.055009}
    for variant, p in expected.items():
        row = mcnemar_test(before, after, variant=variant).iloc[0]
        assert row["variant"].startswith(variant + ";")
        assert round(row["p_value"], 6) == p, variant
        assert (round(row["effect_size"], 4), round(row["ci_low"], 4), round(row["ci_high"], 4)) == (
            0.0621, 0.0046, 0.1186
        )  # fmt: skip
    assert (
        round(math.sqrt(mcnemar_test(before, after, variant="asymptotic").iloc[0]["statistic"]), 3) == 2.132
    )
    assert (
        round(math.sqrt(mcnemar_test(before, after, variant="asymptotic_cc").iloc[0]["statistic"]), 3)
        == 1.919
    )
    default = mcnemar_test(before, after).iloc[0]
    assert default["variant"] == "midp;statistic=b;incomplete_dropped=0" and default["statistic"] == 6


@pytest.mark.parametrize(
    ("b", "c", "exact", "chi2_cc", "p_cc", "chi2", "p"),
    [
        # exact2x2 vignette "exactMcNemar": x <- matrix(c(21, 9, 2, 12), 2, 2); mcnemar.exact(x):
        # b = 2, c = 9, p-value = 0.06543; mcnemar.test(x): 3.2727, p = 0.07044; correct = FALSE:
        # 4.4545, p = 0.03481
        (2, 9, 0.06543, 3.2727, 0.07044, 4.4545, 0.03481),
        # mcnemar.exact(matrix(c(6, 8, 1, 5), nrow = 2)): b = 1, c = 8, p-value = 0.03906;
        # mcnemar.test: McNemar's chi-squared = 4, p-value = 0.0455 (published R session)
        (1, 8, 0.03906, 4.0, 0.0455, None, None),
        # exact2x2(hodgkin, paired = TRUE): b = 15, c = 7, p-value = 0.1338; mcnemar.test(hodgkin):
        # 2.2273, p = 0.1356; correct = F: 2.9091, p = 0.08808 (published R session)
        (15, 7, 0.1338, 2.2273, 0.1356, 2.9091, 0.08808),
    ],
)
def test_mcnemar_published_r_outputs(b, c, exact, chi2_cc, p_cc, chi2, p):
    """exact2x2::mcnemar.exact and stats::mcnemar.test outputs, to their printed precision (R prints
    statistics with 5 and p-values with 4 significant digits)."""

    def sig(x: float, digits: int = 4) -> float:
        return float(f"{x:.{digits}g}")

    before, after = _paired_binary(3, b, c, 4)
    row = mcnemar_test(before, after, variant="exact").iloc[0]
    assert row["statistic"] == b and sig(row["p_value"]) == exact and np.isnan(row["df"])
    cc = mcnemar_test(before, after, variant="asymptotic_cc").iloc[0]
    assert sig(cc["statistic"], 5) == chi2_cc and sig(cc["p_value"]) == p_cc
    if chi2 is not None:
        plain = mcnemar_test(before, after, variant="asymptotic").iloc[0]
        assert sig(plain["statistic"], 5) == chi2 and sig(plain["p_value"]) == p


def test_mcnemar_midp_bentur_and_ties_formula():
    """Fagerland, Lydersen & Laake (2013) supplementary material, Bentur et al. (2009) table
    [[1, 1], [7, 12]] (b = 1, c = 7), by hand from their formulas: exact = 2 P(X <= 1), X ~ Bin(8, 1/2)
    = 18/256; mid-P = exact - P(X = 1) = 10/256; with b = c, mid-P = 1 - P(X = b)/2."""
    assert mcnemar_pvalue(1, 7, variant="exact")[2] == pytest.approx(18 / 256)
    assert mcnemar_pvalue(1, 7, variant="midp")[2] == pytest.approx(10 / 256)
    assert mcnemar_pvalue(7, 1, variant="midp")[2] == pytest.approx(10 / 256)
    assert mcnemar_pvalue(3, 3, variant="midp")[2] == pytest.approx(1 - 0.5 * 20 / 64)
    assert mcnemar_pvalue(3, 3, variant="exact")[2] == 1.0
    # R mcnemar.test drops the correction when b = c (statistic 0, p = 1); |b - c| = 1 gives 0 too
    assert mcnemar_pvalue(3, 3, variant="asymptotic_cc") == (0.0, 1.0, 1.0)
    assert mcnemar_pvalue(4, 3, variant="asymptotic_cc")[0] == 0.0


def test_mcnemar_no_silent_switch_at_25_discordant_pairs():
    """The variant is the caller's at any number of discordant pairs: mid-P on both sides of 25 (hand:
    2 P(X <= min) - P(X = b), X ~ Bin(b + c, 1/2)), never a chi-square."""
    for b, c in ((8, 16), (9, 17), (20, 40)):
        before, after = _paired_binary(5, b, c, 5)
        row = mcnemar_test(before, after).iloc[0]
        k = b + c
        assert row["variant"].startswith("midp;") and np.isnan(row["df"])
        assert row["p_value"] == pytest.approx(2 * stats.binom.cdf(b, k, 0.5) - stats.binom.pmf(b, k, 0.5))
    with pytest.raises(ValueError, match="variant must be"):
        mcnemar_test([True], [False], variant="exact_binomial")
    assert set(MCNEMAR_VARIANTS) == {"midp", "exact", "asymptotic", "asymptotic_cc"}


def test_mcnemar_failure_paths_and_missing():
    """Non-boolean values raise; missing values drop the pair; no discordant pair gives p = 1."""
    with pytest.raises(ValueError, match="booleans"):
        mcnemar_test([True, "maybe"], [True, False])
    row = mcnemar_test(pd.Series([True, None, False]), pd.Series([True, True, False])).iloc[0]
    assert row["variant"].endswith("incomplete_dropped=1") and row["n_a"] == 2
    assert row["p_value"] == 1.0
    for variant in MCNEMAR_VARIANTS:
        assert mcnemar_test([True, False], [True, False], variant=variant).iloc[0]["p_value"] == 1.0
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_pvalue(-1, 2)


def test_paired_module_exports_no_hodges_lehmann():
    """hodges_lehmann_paired was unused and is gone (issue 19: one implementation per statistic)."""
    assert not hasattr(paired, "hodges_lehmann_paired")


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
