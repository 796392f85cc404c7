"""Tests for cyberobs_lib.stats.proportions (and multiplicity, which has no test module of its own).

Every expected value names its source in the test docstring. "Hand" means recomputed here from
the published formula, independently of the library code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats.multiplicity import adjust_pvalues, check_adjustment_stated
from cyberobs_lib.stats.proportions import (
    cochran_armitage_trend,
    compare_proportions,
    contingency_cells,
    newcombe_difference,
    newcombe_paired_difference,
    pairwise_proportions,
    wilson_interval,
)

Z95 = 1.959963984540054  # qnorm(0.975)


def _wilson_by_hand(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = x / n
    centre = 2 * n * p + z * z
    half = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    return (centre - half) / (2 * (n + z * z)), (centre + half) / (2 * (n + z * z))


# ---------------------------------------------------------------------------------------------- Wilson
@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_newcombe_1998a_table_1(x, n, low, high):
    """Newcombe (1998a) Stat Med 17:857, Table I, method 3 (score, no continuity correction)."""
    row = wilson_interval(x, n).iloc[0]
    assert row["ci_low"] == pytest.approx(low, abs=5e-5)
    assert row["ci_high"] == pytest.approx(high, abs=5e-5)
    assert row["value"] == pytest.approx(x / n)
    assert row["ci_method"] == "wilson"


def test_wilson_vectorized_keeps_series_index_and_matches_hand_formula():
    """Hand: Wilson (1927) closed form for every element, at 90 %."""
    x = pd.Series([3, 7, 12], index=["EHPAD", "CH", "CHU"])
    n = pd.Series([10, 40, 12], index=x.index)
    out = wilson_interval(x, n, alpha=0.10)
    assert list(out.index) == ["EHPAD", "CH", "CHU"]
    for key in x.index:
        low, high = _wilson_by_hand(x[key], n[key], z=stats.norm.ppf(0.95))
        assert out.loc[key, "ci_low"] == pytest.approx(low, rel=1e-9)
        assert out.loc[key, "ci_high"] == pytest.approx(high, rel=1e-9)


def test_wilson_failure_paths():
    """n = 0 gives a NaN row (undefined proportion); impossible counts raise."""
    out = wilson_interval([0, 2], [0, 4])
    assert out.loc[0, ["value", "ci_low", "ci_high"]].isna().all()
    assert out.loc[1, "value"] == 0.5
    with pytest.raises(ValueError, match="exceed"):
        wilson_interval(5, 4)
    with pytest.raises(ValueError, match="non-negative"):
        wilson_interval(-1, 4)


# ------------------------------------------------------------------------------ Newcombe, unpaired
@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_difference_matches_newcombe_1998b_table_ii(x1, n1, x2, n2, low, high):
    """Newcombe (1998b) Stat Med 17:873, Table II, method 10 (hybrid score)."""
    row = newcombe_difference(x1, n1, x2, n2).iloc[0]
    assert row["ci_low"] == pytest.approx(low, abs=5e-5)
    assert row["ci_high"] == pytest.approx(high, abs=5e-5)


def test_newcombe_difference_agrees_with_statsmodels_newcomb():
    """Cross-check: statsmodels confint_proportions_2indep(method='newcomb'), same method 10."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    out = newcombe_difference([63, 5], [93, 56], [38, 0], [92, 29])
    for i, (a, m, b, n) in enumerate([(63, 93, 38, 92), (5, 56, 0, 29)]):
        low, high = confint_proportions_2indep(a, m, b, n, method="newcomb")
        assert out.loc[i, "ci_low"] == pytest.approx(low, abs=1e-10)
        assert out.loc[i, "ci_high"] == pytest.approx(high, abs=1e-10)


# -------------------------------------------------------------------------------- Newcombe, paired
def _newcombe_paired_by_hand(a, b, c, d):
    """Newcombe (1998c) method 10 written out from the paper, scalar, without the library."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson_by_hand(a + b, n)
    l2, u2 = _wilson_by_hand(a + c, n)
    big_b = a * d - b * c
    num = max(big_b - n / 2, 0) if big_b > 0 else big_b
    den = (a + b) * (c + d) * (a + c) * (b + d)
    phi = num / math.sqrt(den) if den else 0.0
    dl = math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    du = math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return p1 - p2, p1 - p2 - dl, p1 - p2 + du


@pytest.mark.parametrize(
    "cells",
    [(36, 12, 2, 0), (14, 5, 0, 22), (212, 144, 256, 707), (5, 1, 0, 3), (10, 0, 0, 10), (0, 0, 0, 7)],
)
def test_newcombe_paired_matches_independent_implementation(cells):
    """Hand: the method-10 formulas of Newcombe (1998c) re-implemented in plain Python.

    Tables: Altman et al. (2000) Statistics with Confidence, Table 6.2 (14, 5, 0, 22); cough at
    12 and 14 years (212, 144, 256, 707, same book); small and degenerate tables.
    """
    value, low, high = _newcombe_paired_by_hand(*cells)
    row = newcombe_paired_difference(*cells).iloc[0]
    assert row["value"] == pytest.approx(value, abs=1e-12)
    assert row["ci_low"] == pytest.approx(low, abs=1e-10)
    assert row["ci_high"] == pytest.approx(high, abs=1e-10)
    assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_newcombe_paired_matches_fagerland_cavo_2012():
    """Fagerland, Lydersen & Laake (2017) Statistical Analysis of Contingency Tables, ch. 8, complete
    response before/after consolidation therapy (Cavo et al. 2012), table [[59, 6], [16, 80]]:
    Newcombe square-and-add estimate -0.0621, 95 % CI -0.1186 to -0.0046 (as printed by the
    authors' R package contingencytables, Newcombe_square_and_add_CI_paired_2x2)."""
    row = newcombe_paired_difference(59, 6, 16, 80).iloc[0]
    assert round(row["value"], 4) == -0.0621
    assert row["ci_low"] == pytest.approx(-0.1186, abs=5e-5)
    assert row["ci_high"] == pytest.approx(-0.0046, abs=5e-5)


def test_newcombe_paired_phi_correction_matters_and_n0_is_nan():
    """Hand: with ad - bc > n/2 the corrected phi is smaller than the raw phi, so the interval is
    wider than with the raw phi; n = 0 gives NaN (undefined)."""
    a, b, c, d = 30, 5, 2, 40
    n = a + b + c + d
    raw_phi = (a * d - b * c) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    cor_phi = (a * d - b * c - n / 2) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    assert cor_phi < raw_phi
    row = newcombe_paired_difference(a, b, c, d).iloc[0]
    p1, p2 = (a + b) / n, (a + c) / n
    l1, _ = _wilson_by_hand(a + b, n)
    _, u2 = _wilson_by_hand(a + c, n)
    raw_low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * raw_phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    assert row["ci_low"] < raw_low
    assert newcombe_paired_difference(0, 0, 0, 0)[["value", "ci_low", "ci_high"]].isna().all(axis=None)


# ------------------------------------------------------------------------------- compare_proportions
def test_fisher_tea_tasting():
    """Agresti (2002) Categorical Data Analysis, section 3.5, Fisher's tea-tasting table
    [[3, 1], [1, 3]]: two-sided p = 0.486 (R fisher.test(TeaTasting) gives 0.4857)."""
    tea = pd.DataFrame([[3, 1], [1, 3]], index=["milk", "tea"], columns=["milk_guess", "tea_guess"])
    before = tea.copy()
    out = compare_proportions(tea)
    assert list(out.columns) == list(TESTS_COLUMNS)
    row = out.iloc[0]
    assert (row["test"], row["variant"]) == (
        "fisher_exact",
        "fisher_exact;choice=auto(an expected count < 5 in a 2x2 table)",
    )
    assert row["p_value"] == pytest.approx(0.4857, abs=5e-5)
    assert np.isnan(row["df"]) and np.isnan(row["statistic"])  # no df for an exact test
    assert (row["group_a"], row["group_b"], row["n_a"], row["n_b"]) == ("milk", "tea", 4, 4)
    pd.testing.assert_frame_equal(tea, before)


def test_chi_square_party_by_gender():
    """R ?chisq.test example (Agresti 2007, p. 39, party identification by gender):
    X-squared = 30.07, df = 2, p-value = 2.954e-07."""
    m = pd.DataFrame([[762, 327, 468], [484, 239, 477]], index=["F", "M"])
    row = compare_proportions(m).iloc[0]
    assert (row["test"], row["variant"]) == (
        "chi_square",
        "pearson;choice=auto(no expected count < 1, at most 20% < 5)",
    )
    assert row["statistic"] == pytest.approx(30.07, abs=0.005)
    assert row["df"] == 2
    assert row["p_value"] == pytest.approx(2.954e-07, rel=1e-3)
    # Cramér's V by hand: sqrt(X2 / (N (min(r, c) - 1)))
    assert row["effect_size"] == pytest.approx(math.sqrt(row["statistic"] / 2757), rel=1e-9)


def test_cramers_v_noncentral_interval_inverts_ncx2():
    """Hand: the limits solve P(X2 >= obs | lambda) = 0.025 and 0.975 (Smithson 2003), lambda = V^2 N (k-1)."""
    m = np.array([[762, 327, 468], [484, 239, 477]])
    row = compare_proportions(m).iloc[0]
    chi2 = stats.chi2_contingency(m, correction=False).statistic
    lam_low, lam_high = row["ci_low"] ** 2 * m.sum(), row["ci_high"] ** 2 * m.sum()
    assert stats.ncx2.sf(chi2, 2, lam_low) == pytest.approx(0.025, abs=1e-6)
    assert stats.ncx2.sf(chi2, 2, lam_high) == pytest.approx(0.975, abs=1e-6)
    assert row["ci_low"] < row["effect_size"] < row["ci_high"]


def test_yates_variant_matches_hand_formula():
    """Hand: Yates-corrected X2 = N (|ad - bc| - N/2)^2 / (r1 r2 c1 c2) (Yates 1934)."""
    a, b, c, d = 20, 30, 35, 15
    n = a + b + c + d
    expected = n * (abs(a * d - b * c) - n / 2) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    row = compare_proportions(np.array([[a, b], [c, d]]), yates=True).iloc[0]
    assert row["variant"] == "pearson+yates;choice=auto(every expected count >= 5)"
    assert row["statistic"] == pytest.approx(expected, rel=1e-12)
    assert compare_proportions(np.array([[a, b], [c, d]])).iloc[0]["variant"].startswith("pearson;")


def test_sparse_rxc_uses_monte_carlo_fisher_freeman_halton():
    """R ?fisher.test, Job satisfaction by income example (4x4, from Agresti 2002): fisher.test(Job)
    p = 0.7827; Monte Carlo with 100,000 tables is within 0.01 (SE ~ 0.0013)."""
    job = np.array([[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]]).T
    row = compare_proportions(job).iloc[0]
    assert row["variant"] == (
        "fisher_freeman_halton_monte_carlo;n_resamples=100000;seed=0;choice=auto(an expected count < 1)"
    )
    assert np.isnan(row["df"])
    assert row["p_value"] == pytest.approx(0.7827, abs=0.01)
    assert row["group_a"].count("|") == 3 and pd.isna(row["group_b"])
    assert compare_proportions(job).equals(compare_proportions(job))  # seeded: deterministic


def test_compare_proportions_failure_paths():
    """Bad tables raise a clear ValueError; all-zero rows are dropped before testing."""
    with pytest.raises(ValueError, match="non-empty"):
        compare_proportions(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="at least two"):
        compare_proportions(np.array([[3, 4], [0, 0]]))
    with pytest.raises(ValueError, match="non-negative"):
        compare_proportions(np.array([[3, -1], [2, 2]]))
    kept = compare_proportions(pd.DataFrame([[3, 1], [0, 0], [1, 3]], index=list("abc"))).iloc[0]
    assert (kept["group_a"], kept["group_b"]) == ("a", "c")


# ------------------------------------------------------------------------------------ trend test
def test_cochran_armitage_matches_prop_trend_test():
    """R ?prop.trend.test (data from Fleiss 1981, p. 139): smokers c(83, 90, 129, 70) of
    c(86, 93, 136, 82): X-squared = 8.2249, df = 1, p-value = 0.004132."""
    row = cochran_armitage_trend([83, 90, 129, 70], [86, 93, 136, 82]).iloc[0]
    assert row["statistic"] == pytest.approx(8.2249, abs=5e-5)
    assert row["p_value"] == pytest.approx(0.004132, abs=5e-7)
    assert row["df"] == 1 and row["n_a"] == 397


def test_cochran_armitage_failure_paths():
    """Undefined trend (no variation, one score level) and mismatched lengths raise."""
    with pytest.raises(ValueError, match="undefined"):
        cochran_armitage_trend([5, 5], [5, 5])
    with pytest.raises(ValueError, match="undefined"):
        cochran_armitage_trend([1, 4], [5, 5], [2, 2])
    with pytest.raises(ValueError, match="same length"):
        cochran_armitage_trend([1, 2, 3], [5, 5])


# ---------------------------------------------------------------------------------- multiplicity
def test_adjust_pvalues_holm_and_bh_by_hand():
    """Hand: Holm (1979) step-down and Benjamini-Hochberg (1995) step-up on four p-values
    (what R p.adjust gives): Holm 0.04, 0.06, 0.06, 0.06; BH all 0.04. NaN left alone."""
    t = pd.DataFrame({"test": list("abcde"), "p_value": [0.01, 0.04, 0.03, np.nan, 0.02]})
    holm = adjust_pvalues(t, method="holm")
    np.testing.assert_allclose(holm["p_adjusted"], [0.04, 0.06, 0.06, np.nan, 0.06])
    bh = adjust_pvalues(t)
    np.testing.assert_allclose(bh["p_adjusted"], [0.04, 0.04, 0.04, np.nan, 0.04])
    assert set(bh["adjust_method"]) == {"fdr_bh"}
    assert "p_adjusted" not in t.columns  # input not mutated


def test_adjust_pvalues_by_group():
    """Hand: Bonferroni within each study: family sizes 2 and 1."""
    t = pd.DataFrame({"study": ["h", "h", "v"], "p_value": [0.01, 0.2, 0.03]})
    out = adjust_pvalues(t, method="bonferroni", by="study")
    np.testing.assert_allclose(out["p_adjusted"], [0.02, 0.4, 0.03])
    assert out["adjust_method"].iloc[0] == "bonferroni by study"


def test_adjust_pvalues_failure_paths():
    """Unknown method, missing columns and out-of-range p-values raise."""
    t = pd.DataFrame({"p_value": [0.5]})
    with pytest.raises(ValueError, match="unknown method"):
        adjust_pvalues(t, method="sidak_typo")
    with pytest.raises(KeyError):
        adjust_pvalues(t, by="study")
    with pytest.raises(KeyError):
        adjust_pvalues(pd.DataFrame({"p": [0.5]}))
    with pytest.raises(ValueError, match="outside"):
        adjust_pvalues(pd.DataFrame({"p_value": [1.5]}))
    assert adjust_pvalues(t.iloc[:0]).empty


# ------------------------------------------------------------------- test chosen by the caller
def test_caller_chooses_the_test_and_variant_says_so():
    """Hand: the same 2 x 2 table through each method; R fisher.test / chisq.test(correct = FALSE)."""
    big = np.array([[20, 30], [35, 15]])  # every expected count >= 5: auto gives Pearson
    fisher = compare_proportions(big, method="fisher_exact").iloc[0]
    assert fisher["variant"] == "fisher_exact;choice=caller" and np.isnan(fisher["df"])
    assert fisher["p_value"] == pytest.approx(stats.fisher_exact(big).pvalue, rel=1e-12)
    chi = compare_proportions(np.array([[3, 1], [1, 3]]), method="chi_square").iloc[0]
    assert chi["variant"] == "pearson;choice=caller" and chi["df"] == 1
    assert chi["statistic"] == pytest.approx(2.0)  # N (ad - bc)^2 / (r1 r2 c1 c2) = 8 * 64 / 256
    mc = compare_proportions(
        np.array([[3, 1], [1, 3]]), method="fisher_monte_carlo", n_resamples=20_000
    ).iloc[0]
    assert mc["variant"] == "fisher_freeman_halton_monte_carlo;n_resamples=20000;seed=0;choice=caller"
    assert mc["p_value"] == pytest.approx(0.4857, abs=0.02)  # Monte Carlo of the exact 0.4857
    with pytest.raises(ValueError, match="fisher_monte_carlo"):
        compare_proportions(np.array([[3, 1, 2], [1, 3, 2]]), method="fisher_exact")
    with pytest.raises(ValueError, match="method must be"):
        compare_proportions(big, method="barnard")


# ---------------------------------------------------------------- expected counts and residuals
def test_contingency_cells_match_r_chisq_test_residuals():
    """R chisq.test(M)$stdres on Agresti (2007) p. 39 (party identification by gender), as printed by the
    R package chisq.posthoc.test (?chisq.posthoc.test example): F: 4.502054, 0.6994517, -5.315946 (M: the
    opposite); Agresti's Table 2.6 prints 4.50, 0.70, -5.32."""
    m = pd.DataFrame([[762, 327, 468], [484, 239, 477]], index=["F", "M"], columns=["Dem", "Ind", "Rep"])
    cells = contingency_cells(m).set_index(["row", "column"])
    assert cells.loc["F", "std_residual"].to_numpy() == pytest.approx(
        [4.502054, 0.6994517, -5.315946], abs=5e-7
    )
    assert cells.loc["M", "std_residual"].to_numpy() == pytest.approx(
        [-4.502054, -0.6994517, 5.315946], abs=5e-7
    )
    # expected = row total x column total / N (hand: 1557 * 1246 / 2757)
    assert cells.loc[("F", "Dem"), "expected"] == pytest.approx(1557 * 1246 / 2757)
    # the contributions add up to Pearson's X2 = 30.07 (R ?chisq.test)
    assert cells["contribution"].sum() == pytest.approx(compare_proportions(m).iloc[0]["statistic"])


def test_contingency_cells_match_a_published_r_session():
    """s-nako.work (2020) "Chi-Square Test in R": chisq.test(cross_data, correct = F) on groups A, B, C x
    (failure, success) = (100, 23), (44, 65), (119, 158): X-squared = 57.236; $residuals A: 4.571703,
    -4.727030, B: -1.641673, 1.697450, C: -2.016609, 2.085125; $stdres A: 7.551524, B: -2.663833,
    C: -4.296630 (failure; success is the opposite)."""
    t = pd.DataFrame([[100, 23], [44, 65], [119, 158]], index=list("ABC"), columns=["failure", "success"])
    cells = contingency_cells(t)
    assert cells["residual"].to_numpy() == pytest.approx(
        [4.571703, -4.727030, -1.641673, 1.697450, -2.016609, 2.085125], abs=5e-7
    )
    assert cells["std_residual"].to_numpy() == pytest.approx(
        [7.551524, -7.551524, -2.663833, 2.663833, -4.296630, 4.296630], abs=5e-7
    )
    assert compare_proportions(t).iloc[0]["statistic"] == pytest.approx(57.236, abs=5e-4)


# ------------------------------------------------------------------------------ pairwise rows
def test_pairwise_proportions_fisher_rows_have_no_df_and_reference_is_group_b():
    """Hand: each pair is compare_proportions of its 2 x 2 table; Newcombe (1998b) example (b) 56/70 vs
    48/80: 0.0524 to 0.3339; Holm (1979) over the 3 pairs."""
    table = pd.DataFrame({"yes": [48, 56, 3], "no": [32, 14, 1]}, index=["CH", "EHPAD", "Army"])
    out = pairwise_proportions(table, reference="CH", study="s", metric="m")
    assert list(out.columns) == list(TESTS_COLUMNS)
    assert list(zip(out.group_a, out.group_b, strict=True)) == [
        ("Army", "EHPAD"),
        ("Army", "CH"),
        ("EHPAD", "CH"),
    ]
    ehpad = out.iloc[2]
    assert ehpad.variant == "pairwise pearson;choice=auto(every expected count >= 5)" and ehpad.df == 1
    assert (ehpad.effect_size, ehpad.ci_low, ehpad.ci_high) == pytest.approx((0.2, 0.0524, 0.3339), abs=5e-5)
    army = out.iloc[1]  # 3/4 vs 48/80: an expected count < 5
    assert army.test == "fisher_exact" and np.isnan(army.df) and np.isnan(army.statistic)
    assert army.p_value == pytest.approx(stats.fisher_exact([[3, 1], [48, 32]]).pvalue)
    p = out.p_value.to_numpy()
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (3 - np.arange(3))))
    assert out.p_adjusted.to_numpy()[order] == pytest.approx(holm)
    assert set(out.adjust_method) == {"holm"} and set(out.effect_size_kind) == {"risk_difference"}


def test_pairwise_proportions_pair_without_variation_keeps_its_difference():
    table = pd.DataFrame({"yes": [5, 6, 1], "no": [0, 0, 4]}, index=["a", "b", "c"])
    out = pairwise_proportions(table, method="fisher_exact").set_index(["group_a", "group_b"])
    ab = out.loc[("a", "b")]
    assert ab.variant == "undefined: no variation in the pair" and np.isnan(ab.p_value)
    assert ab.effect_size == 0 and ab.ci_low < 0 < ab.ci_high
    assert out.loc[("a", "c"), "variant"] == "pairwise fisher_exact;choice=caller"


# ------------------------------------------------------------------------- trend, two variances
def test_linear_by_linear_is_the_n_minus_1_version_of_cochran_armitage():
    """Agresti (2007) §2.5: M2 = (N - 1) r2 while prop.trend.test uses N r2, so M2 = 8.2249 x 396 / 397 on
    the R ?prop.trend.test data (Fleiss 1981, p. 139)."""
    x, n = [83, 90, 129, 70], [86, 93, 136, 82]
    ca = cochran_armitage_trend(x, n).iloc[0]
    lbl = cochran_armitage_trend(x, n, method="linear_by_linear").iloc[0]
    assert lbl.statistic == pytest.approx(ca.statistic * 396 / 397, rel=1e-9)
    assert lbl.p_value == pytest.approx(stats.chi2.sf(lbl.statistic, 1), rel=1e-9)
    assert ca.variant == "asymptotic;variance=N (prop.trend.test)"
    assert lbl.variant == "asymptotic;variance=N-1 (linear-by-linear)"
    assert ca.effect_size == lbl.effect_size < 0  # the share of smokers falls with the score


def test_newcombe_difference_empty_group_is_nan_and_bad_counts_raise():
    out = newcombe_difference([0, 2], [0, 10], [1, 1], [5, 5])
    assert out.loc[0, ["value", "ci_low", "ci_high"]].isna().all()
    assert out.loc[1, ["value", "ci_low", "ci_high"]].notna().all()
    with pytest.raises(ValueError, match="exceed"):
        newcombe_difference(6, 5, 1, 5)


def test_adjust_pvalues_hochberg_hommel_and_r_aliases_by_hand():
    """Hand (R p.adjust formulas) on p = 0.01, 0.02, 0.03, 0.04 (m = 4):
    Hochberg (1988) step-up min_{j>=i} (m - j + 1) p_(j): 0.04, 0.04, 0.04, 0.04;
    Bonferroni 0.04, 0.08, 0.12, 0.16; BH (alias of fdr_bh) i-th: min_{j>=i} m p_(j) / j = 0.04 each."""
    t = pd.DataFrame({"p_value": [0.01, 0.02, 0.03, 0.04]})
    np.testing.assert_allclose(adjust_pvalues(t, method="hochberg")["p_adjusted"], [0.04] * 4)
    np.testing.assert_allclose(adjust_pvalues(t, method="bonferroni")["p_adjusted"], [0.04, 0.08, 0.12, 0.16])
    bh = adjust_pvalues(t, method="BH")
    np.testing.assert_allclose(bh["p_adjusted"], [0.04] * 4)
    assert set(bh["adjust_method"]) == {"fdr_bh"}  # the canonical name is written
    # Hochberg differs from Holm when a later p is small: p = 0.01, 0.04, 0.045 -> Holm 0.03, 0.08, 0.08;
    # Hochberg 0.03, 0.045, 0.045
    u = pd.DataFrame({"p_value": [0.01, 0.04, 0.045]})
    np.testing.assert_allclose(adjust_pvalues(u, method="holm")["p_adjusted"], [0.03, 0.08, 0.08])
    np.testing.assert_allclose(adjust_pvalues(u, method="hochberg")["p_adjusted"], [0.03, 0.045, 0.045])


def test_check_adjustment_stated():
    ok = adjust_pvalues(pd.DataFrame({"p_value": [0.1, 0.2]}), method="holm")
    assert check_adjustment_stated(ok) is ok
    bad = ok.assign(adjust_method=[None, "holm"])
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        check_adjustment_stated(bad)
    assert check_adjustment_stated(pd.DataFrame({"p_value": [0.5]})).shape == (1, 1)
