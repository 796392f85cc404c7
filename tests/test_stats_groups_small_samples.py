"""Small samples in cyberobs_lib.stats.groups: exact Mann–Whitney, Brunner–Munzel, permutation Kruskal–Wallis,
groups of fewer than 2 values. Every expected value names its published source (or is computed by hand).
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats.groups import NOT_ESTIMABLE, brunner_munzel, compare_groups, mann_whitney

# Hollander & Wolfe (1999) Example 4.1 (R ?wilcox.test "permeability constants"; exactRankTests
# tests/reg-tests.Rout.save): wilcox.exact(y, x) -> W = 15, p-value = 0.2544 (so W = 35 for (x, y)).
HW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
HW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]


def test_exact_mann_whitney_matches_r_wilcox_test():
    row = mann_whitney(HW_X, HW_Y).iloc[0]
    assert list(mann_whitney(HW_X, HW_Y).columns) == list(TESTS_COLUMNS)
    assert (row["test"], row["statistic"], round(row["p_value"], 4)) == ("mann_whitney", 35.0, 0.2544)
    assert row["variant"] == "exact;alternative=two-sided;ties=0;choice=auto(both n<50)"
    assert np.isnan(row["df"]) and (row["n_a"], row["n_b"]) == (10, 5)
    swapped = mann_whitney(HW_Y, HW_X).iloc[0]
    assert (swapped["statistic"], round(swapped["p_value"], 4)) == (15.0, 0.2544)
    # no ties: the null distribution is symmetric, so the one-sided p is half the two-sided one
    # (R: wilcox.test(x, y, alternative = "greater") -> 0.1272)
    greater = mann_whitney(HW_X, HW_Y, alternative="greater").iloc[0]
    assert greater["p_value"] == pytest.approx(row["p_value"] / 2, rel=1e-12)
    assert round(greater["p_value"], 4) == 0.1272
    # effect: Cliff's delta of x over y = 2U/(mn) - 1 = 70/50 - 1
    assert row["effect_size"] == pytest.approx(0.4) and row["effect_size_kind"] == "cliffs_delta"
    assert -swapped["effect_size"] == pytest.approx(row["effect_size"])


def test_exact_mann_whitney_hollander_wolfe_example_4_2():
    # Hollander & Wolfe (1999) Example 4.2, p. 112 (exactRankTests reg-tests.Rout.save):
    # wilcox.exact(contr, SST) -> W = 106, p-value = 0.00186
    contr = [1042, 1617, 1180, 973, 1552, 1251, 1151, 728, 1079, 951, 1319]
    sst = [874, 389, 612, 798, 1152, 893, 541, 741, 1064, 862, 213]
    row = mann_whitney(contr, sst).iloc[0]
    assert row["statistic"] == 106 and round(row["p_value"], 5) == 0.00186


def test_asymptotic_variants_match_r():
    # R wilcox.test(x, y, exact = FALSE) uses the continuity correction; by hand: U = 35, mean mn/2 = 25,
    # sd sqrt(mn(N+1)/12) = sqrt(50 * 16 / 12): z = (35 - 25 - 0.5) / sd
    sd = np.sqrt(50 * 16 / 12)
    cc = mann_whitney(HW_X, HW_Y, method="asymptotic").iloc[0]
    assert cc["p_value"] == pytest.approx(2 * stats.norm.sf(9.5 / sd), rel=1e-12)
    assert cc["variant"].startswith("asymptotic+cc;") and cc["variant"].endswith("choice=caller")
    plain = mann_whitney(HW_X, HW_Y, method="asymptotic", correct=False).iloc[0]
    assert plain["p_value"] == pytest.approx(2 * stats.norm.sf(10 / sd), rel=1e-12)
    big = mann_whitney(np.arange(50.0), np.arange(50.0) + 0.5).iloc[0]
    assert big["variant"].startswith("asymptotic+cc;") and "choice=auto(n>=50)" in big["variant"]


def _rotarod() -> tuple[list[float], list[float]]:
    """Rotarod (Bergmann, Ludbrook & Spooren 2000, Am. Stat. 54:72; R coin ?rotarod): every control rat
    reached the 300 s ceiling (variance 0, equal medians); 5 treated rats fell earlier. Rank tests only use
    the order, so the 5 shorter times stand for any 5 times under 300 s."""
    return [300.0] * 12, [22.0, 26.0, 45.0, 70.0, 168.0] + [300.0] * 7


def test_exact_conditional_with_ties_matches_coin_rotarod():
    # coin ?rotarod: exact conditional p = 0.0186 (one-sided), 0.0373 (two-sided); asymptotic two-sided
    # p (tie-corrected, no continuity correction) = 0.0147. By hand: the one-sided p is the chance that
    # the 5 short times all fall in the treated group, C(19, 7) / C(24, 12).
    control, treated = _rotarod()
    one = mann_whitney(control, treated, alternative="greater").iloc[0]
    assert one["p_value"] == pytest.approx(comb(19, 7) / comb(24, 12), rel=1e-12)
    assert round(one["p_value"], 4) == 0.0186
    two = mann_whitney(control, treated).iloc[0]
    assert round(two["p_value"], 4) == 0.0373
    assert two["variant"] == "exact_conditional;alternative=two-sided;ties=18;choice=auto(both n<50)"
    asym = mann_whitney(control, treated, method="asymptotic", correct=False).iloc[0]
    assert round(asym["p_value"], 4) == 0.0147


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_exact_conditional_one_sided_equals_full_enumeration(seed, alternative):
    # Hand: every one of the C(13, 6) = 1716 splits enumerated (scipy permutation_test, exact when
    # n_resamples exceeds the number of splits), statistic = rank sum of x
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 4, 6).astype(float), rng.integers(1, 5, 7).astype(float)

    def rank_sum(a, b, axis):
        return stats.rankdata(np.concatenate([a, b], axis=axis), axis=axis)[..., : a.shape[axis]].sum(
            axis=axis
        )

    ref = stats.permutation_test((x, y), rank_sum, permutation_type="independent", vectorized=True,
                                 n_resamples=10**6, alternative=alternative)  # fmt: skip
    got = mann_whitney(x, y, alternative=alternative).iloc[0]
    assert got["variant"].startswith("exact_conditional;")
    assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_small_families_get_the_exact_p_not_the_asymptotic_one():
    # issue 19: "0.086 where the exact p is 0.111". Groups of 4 and 5, U = 3 (7 beats 4, 5, 6): the exact
    # two-sided p counts the 14 of C(9, 4) = 126 splits with |U - 10| >= 7; chi2(1) of H gives 0.086.
    small = {"A": [1.0, 2.0, 3.0, 7.0], "B": [4.0, 5.0, 6.0, 8.0, 9.0]}
    out = compare_groups(small, n_boot=0)
    kw, pair = out.iloc[0], out.iloc[1]
    assert pair["test"] == "mann_whitney" and pair["statistic"] == 3
    assert pair["p_value"] == pytest.approx(14 / 126, rel=1e-12)
    assert kw["p_value"] == pytest.approx(14 / 126, rel=1e-12)  # permutation H = exact two-sided U test
    assert kw["variant"].startswith("permutation_exact;assignments=126;k=2 groups;choice=auto(smallest n<5)")
    assert np.isnan(kw["df"])
    asym = compare_groups(small, n_boot=0, method="asymptotic").iloc[0]
    assert round(asym["p_value"], 3) == 0.086 and asym["df"] == 1
    assert asym["p_value"] == pytest.approx(stats.kruskal(*small.values()).pvalue)


def test_family_with_one_value_does_not_drop_the_others():
    data = {"A": [1.0, 2.0, 3.0, 7.0], "B": [4.0, 5.0, 6.0, 8.0, 9.0], "C": [5.0], "D": [2.0, 6.0, 6.5]}
    out = compare_groups(data, n_boot=0)
    kw = out.iloc[0]
    assert "k=3 groups" in kw["variant"] and kw["variant"].endswith("left_out_n<2=1")
    assert kw["n_a"] == 12 and pd.notna(kw["p_value"])
    pairs = out.iloc[1:].set_index(["group_a", "group_b"])
    assert len(pairs) == 6  # every pair has its row
    with_c = pairs[[("C" in key) for key in pairs.index]]
    assert len(with_c) == 3 and (with_c["variant"] == NOT_ESTIMABLE).all()
    assert with_c[["p_value", "p_adjusted", "effect_size"]].isna().all(axis=None)
    assert set(with_c["n_b"]) | set(with_c["n_a"]) >= {1}
    others = pairs.drop(with_c.index)
    assert others["p_value"].notna().all()
    # Holm over the 3 estimable pairs only (Holm 1979: step-down, cumulative maximum)
    p = others["p_value"].to_numpy()
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (3 - np.arange(3))))
    assert others["p_adjusted"].to_numpy()[order] == pytest.approx(holm)
    assert set(out.iloc[1:]["adjust_method"]) == {"holm"}


def test_only_one_family_with_two_values_still_gives_rows():
    out = compare_groups({"a": [1.0, 2.0, 3.0], "b": [4.0]}, n_boot=0)
    assert out.loc[0, "variant"].startswith(NOT_ESTIMABLE) and np.isnan(out.loc[0, "p_value"])
    assert out.loc[1, "variant"] == NOT_ESTIMABLE and (out.loc[1, "n_a"], out.loc[1, "n_b"]) == (3, 1)


def test_reference_is_group_b_and_effects_read_group_over_reference():
    data = {
        "CH": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0],
        "EHPAD": [3.0, 4.0, 5.0, 6.0, 5.0, 6.0],
        "Army": [2.0, 2.5, 9.0],
    }
    out = compare_groups(data, n_boot=0, reference="CH").iloc[1:]
    assert (out["group_b"] == "CH").sum() == 2 and not (out["group_a"] == "CH").any()
    ehpad = out.set_index("group_a").loc["EHPAD"]
    # Cliff's delta of EHPAD over CH, counted by hand: greater 4 + 5 + 6 + 6 + 6 + 6 = 33, smaller 1
    assert ehpad["effect_size"] == pytest.approx(32 / 36)
    assert ehpad["statistic"] == pytest.approx(33 + 0.5 * 2)  # U of EHPAD: 33 wins, 2 ties (3 = 3, 4 = 4)


def test_brunner_munzel_matches_lawstat_and_scipy():
    # R lawstat ?brunner.munzel.test (pain scores, Brunner & Munzel 2000; Neubert & Brunner 2007):
    # brunner.munzel.test(Y, N): statistic 3.1375, df = 17.683, p-value = 0.005786, 95 % CI
    # 0.5952169 0.9827052, estimate P(X<Y)+.5*P(X=Y) = 0.788961. Here oriented Y over N: statistic
    # -3.1375, P(Y > N) + 0.5 P(Y = N) = 1 - 0.788961, interval 1 - (0.9827052, 0.5952169).
    # scipy ?brunnermunzel prints the same statistic 3.1374674823029505 and p 0.0057862086661515377.
    pain_y = [1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1]
    pain_n = [3, 3, 4, 3, 1, 2, 3, 1, 1, 5, 4]
    row = brunner_munzel(pain_y, pain_n).iloc[0]
    assert row["statistic"] == pytest.approx(-3.1374674823029505, rel=1e-9)
    assert round(row["df"], 3) == 17.683
    assert row["p_value"] == pytest.approx(0.0057862086661515377, rel=1e-6)
    assert row["effect_size"] == pytest.approx(1 - 0.788961, abs=5e-7)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1 - 0.9827052, 1 - 0.5952169), abs=5e-8)
    assert row["variant"] == "asymptotic_t;alternative=two-sided;choice=auto(both n>=10)"
    assert row["effect_size_kind"] == "stochastic_superiority"
    delta = brunner_munzel(pain_y, pain_n, effect="cliffs_delta").iloc[0]
    assert delta["effect_size"] == pytest.approx(2 * row["effect_size"] - 1)
    assert delta["ci_low"] == pytest.approx(2 * row["ci_low"] - 1)


def test_brunner_munzel_small_samples_use_the_permutation_distribution():
    # no overlap: the t statistic is infinite (zero variance); the permutation p counts the 2 most
    # extreme of the C(6, 3) = 20 splits: 0.1. No interval rather than a collapsed [1, 1].
    row = brunner_munzel([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]).iloc[0]
    assert row["p_value"] == pytest.approx(0.1)
    assert row["variant"] == "permutation_exact;splits=20;alternative=two-sided;choice=auto(n<10)"
    assert row["effect_size"] == 1.0 and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    forced = brunner_munzel([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], method="asymptotic").iloc[0]
    assert forced["variant"].startswith("undefined: no overlap") and np.isnan(forced["p_value"])


def test_compare_groups_with_brunner_munzel_pairs():
    data = {"a": [1.0, 2.0, 3.0, 3.0, 5.0], "b": [2.0, 4.0, 6.0, 6.0, 7.0, 8.0]}
    pair = compare_groups(data, n_boot=0, pairwise="brunner_munzel").iloc[1]
    direct = brunner_munzel(data["a"], data["b"], effect="cliffs_delta").iloc[0]
    assert pair["test"] == "brunner_munzel" and pair["variant"].startswith("permutation_")
    assert pair["p_value"] == pytest.approx(direct["p_value"]) and pair["effect_size"] < 0


def test_kruskal_monte_carlo_is_seeded_and_close_to_the_enumeration():
    # R ?kruskal.test data (Hollander & Wolfe 1973, p. 116): groups of 5, 4, 5 -> 252252 assignments
    hw = {"x": [2.9, 3.0, 2.5, 2.6, 3.2], "y": [3.8, 2.7, 4.0, 2.4], "z": [2.8, 3.4, 3.7, 2.2, 2.0]}
    mc = compare_groups(hw, n_boot=0).iloc[0]
    assert mc["variant"].startswith("permutation_monte_carlo;n_resamples=20000;seed=0;k=3 groups")
    assert compare_groups(hw, n_boot=0).iloc[0]["p_value"] == mc["p_value"]
    full = compare_groups(hw, n_boot=0, n_resamples=300_000).iloc[0]
    assert full["variant"].startswith("permutation_exact;assignments=252252")
    assert abs(mc["p_value"] - full["p_value"]) < 0.01  # Monte Carlo SE about 0.003
    assert full["statistic"] == pytest.approx(0.77143, abs=5e-6)  # same H as R
