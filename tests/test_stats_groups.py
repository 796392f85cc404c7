"""Tests for cyberobs_lib.stats.groups: every expected value says where it comes from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats.groups import (
    cliffs_delta,
    compare_groups,
    to_long_format,
)

# R documentation of kruskal.test (Hollander & Wolfe 1973, p. 116, mucociliary efficiency)
HW = {"x": [2.9, 3.0, 2.5, 2.6, 3.2], "y": [3.8, 2.7, 4.0, 2.4], "z": [2.8, 3.4, 3.7, 2.2, 2.0]}


def _long(data: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(g, v) for g, vs in data.items() for v in vs], columns=["family", "n_findings"])


def test_kruskal_matches_r_help_example():
    # R: kruskal.test(list(x, y, z)) -> Kruskal-Wallis chi-squared = 0.77143, df = 2, p-value = 0.68
    out = compare_groups(_long(HW), value="n_findings", group="family", n_boot=0, method="asymptotic")
    kw = out.iloc[0]
    assert list(out.columns) == list(TESTS_COLUMNS)
    assert kw["test"] == "kruskal_wallis"
    assert kw["statistic"] == pytest.approx(0.77143, abs=5e-6)
    assert kw["df"] == 2
    assert round(kw["p_value"], 2) == 0.68
    assert (kw["n_a"], kw["df"]) == (14, 2) and pd.isna(kw["n_b"])  # k = df + 1 groups
    # epsilon^2 = H / ((N^2 - 1)/(N + 1)) = H / 13 (Tomczak & Tomczak 2014)
    assert kw["effect_size"] == pytest.approx(0.77143 / 13, abs=1e-6)
    assert kw["effect_size_kind"] == "epsilon_squared"
    assert kw["metric"] == "n_findings"


def test_kruskal_tie_correction_by_hand():
    # a = [1, 1, 2], b = [2, 3, 3]: rank sums 6.5 and 14.5, H_raw = 12/42 * 252.5/3 - 21 = 3.047619;
    # ties 3 x (2^3 - 2) = 18, C = 1 - 18/210, so H = 10/3 exactly; p from chi2(1).
    out = compare_groups({"a": [1, 1, 2], "b": [2, 3, 3]}, n_boot=0, method="asymptotic")
    assert out.loc[0, "statistic"] == pytest.approx(10 / 3, rel=1e-12)
    assert out.loc[0, "p_value"] == pytest.approx(2 * stats.norm.sf(np.sqrt(10 / 3)), rel=1e-12)
    assert "tie-corrected" in out.loc[0, "variant"]


def test_dunn_z_and_p_by_hand():
    # Mean ranks in the pooled sample (no ties, N = 14): x 36/5 = 7.2, y 36/4 = 9, z 33/5 = 6.6.
    # Dunn (1964): z_xy = (7.2 - 9) / sqrt(14*15/12 * (1/5 + 1/4)) = -1.8 / sqrt(7.875) = -0.641427
    out = compare_groups(HW, n_boot=0, pairwise="dunn", method="asymptotic").set_index(["group_a", "group_b"])
    xy = out.loc[("x", "y")]
    assert xy["statistic"] == pytest.approx(-1.8 / np.sqrt(7.875), rel=1e-9)
    assert xy["p_value"] == pytest.approx(2 * stats.norm.sf(1.8 / np.sqrt(7.875)), rel=1e-9)
    xz = out.loc[("x", "z")]
    assert xz["statistic"] == pytest.approx(0.6 / np.sqrt(17.5 * 0.4), rel=1e-9)
    # Holm on raw p (0.392, 0.521, 0.821): 3 * 0.392 > 1 and every later step is >= that: all 1.
    assert (out["p_adjusted"].iloc[1:] == 1.0).all()
    assert set(out["adjust_method"].iloc[1:]) == {"holm"}


def test_holm_adjustment_when_groups_differ():
    rng = np.random.default_rng(1)
    data = {"a": rng.normal(0, 1, 30), "b": rng.normal(1.5, 1, 30), "c": rng.normal(0.2, 1, 30)}
    dunn = compare_groups(data, n_boot=0, pairwise="dunn").iloc[1:]
    p = dunn["p_value"].to_numpy()
    order = np.argsort(p)
    # Holm (1979): step-down p_(i) * (m - i + 1), cumulative maximum, capped at 1
    expected = np.minimum(1, np.maximum.accumulate(p[order] * (3 - np.arange(3))))
    assert dunn["p_adjusted"].to_numpy()[order] == pytest.approx(expected, rel=1e-12)
    ab = dunn.set_index(["group_a", "group_b"]).loc[("a", "b")]
    assert ab["p_adjusted"] < 0.001 and ab["statistic"] < 0 and ab["effect_size"] < -0.5


def test_cliffs_delta_matches_r_effsize():
    # R effsize test suite, cliff.delta(treatment, control): delta estimate -0.25,
    # 95 percent CI -0.7265846 0.3890062 (effsize default: unbiased variance, Student t).
    treatment = [10, 10, 20, 20, 20, 30, 30, 30, 40, 50]
    control = [10, 20, 30, 40, 40, 50]
    d, lo, hi = cliffs_delta(treatment, control)
    assert d == -0.25
    assert (lo, hi) == pytest.approx((-0.7265846, 0.3890062), abs=5e-8)


def test_cliffs_delta_equals_dominance_matrix_with_ties():
    # definition: mean of sign(x_i - y_j) over the m x n dominance matrix (Cliff 1993)
    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 6, 40).astype(float), rng.integers(1, 7, 25).astype(float)
    assert cliffs_delta(x, y)[0] == pytest.approx(np.sign(x[:, None] - y[None, :]).mean())


def test_cliffs_delta_complete_separation_has_no_interval():
    d, lo, hi = cliffs_delta([5, 6, 7], [1, 2, 3])
    assert d == 1.0 and np.isnan(lo) and np.isnan(hi)


def test_bootstrap_interval_is_seeded_and_stated():
    a = compare_groups(HW, n_boot=300, seed=3)
    b = compare_groups(HW, n_boot=300, seed=3)
    c = compare_groups(HW, n_boot=300, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert a.loc[0, "ci_low"] != c.loc[0, "ci_low"]
    assert 0 <= a.loc[0, "ci_low"] < a.loc[0, "ci_high"] <= 1
    assert a.loc[0, "ci_method"].startswith("bootstrap-percentile")


def test_bootstrap_h_equals_scipy_on_each_replicate():
    # the vectorised H used in the bootstrap must equal scipy's tie-corrected H, row by row
    from cyberobs_lib.stats.groups import _kruskal_h

    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, size=(4, 12))  # integer codes 0..4, with many ties
    codes = np.repeat([0, 1, 2], 4)
    got = _kruskal_h(values, 5, codes, 3)
    want = [stats.kruskal(*(row[codes == g] for g in range(3))).statistic for row in values]
    assert got == pytest.approx(want, rel=1e-12)


def test_input_shapes_give_the_same_answer_and_nan_are_counted():
    long = _long(HW)
    long.loc[len(long)] = ["x", np.nan]
    before = long.copy()
    from_long = compare_groups(long, value="n_findings", group="family", n_boot=0, metric="m")
    assert from_long.attrs["n_dropped_nan"] == 1
    pd.testing.assert_frame_equal(long, before)  # input not mutated
    wide = pd.DataFrame({g: pd.Series(v) for g, v in HW.items()})  # NaN padding in y
    from_wide = compare_groups(wide, n_boot=0, metric="m")
    from_map = compare_groups(HW, n_boot=0, metric="m")
    pd.testing.assert_frame_equal(from_long, from_wide, check_like=False)
    pd.testing.assert_frame_equal(from_wide, from_map)
    assert to_long_format(wide)[1] == 1


@pytest.mark.parametrize(
    ("data", "kwargs", "error"),
    [
        ({"a": [1, 2, 3]}, {}, ValueError),  # one group
        ({"a": [1, 2, 3], "b": [4]}, {"reference": "c"}, ValueError),  # unknown reference
        (
            {"a": [1, 2, 3], "b": [4, 5]},
            {"pairwise": "dunn", "method": "exact"},
            ValueError,
        ),  # Dunn: no exact
        ({"a": [1, 2, 3], "b": [4, 5]}, {"pairwise": "t_test"}, ValueError),
        ({"a": [1, 1], "b": [1, 1]}, {}, ValueError),  # all identical
        (pd.DataFrame({"v": [1], "g": ["a"]}), {"value": "v"}, ValueError),  # group missing
        (pd.DataFrame({"v": [1], "g": ["a"]}), {"value": "v", "group": "G"}, KeyError),
        ([1, 2, 3], {}, TypeError),
        ({"a": ["x", "y"], "b": [1, 2]}, {}, ValueError),  # not numeric
    ],
)
def test_bad_input_raises(data, kwargs, error):
    with pytest.raises(error):
        compare_groups(data, n_boot=0, **kwargs)
