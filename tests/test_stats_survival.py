"""Tests for cyberobs_lib.stats.survival, against the aml data (Miller 1981) and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.schema import REMEDIATION_COLUMNS, SURVIVAL_COLUMNS, TESTS_COLUMNS
from cyberobs_lib.stats.survival import (
    apply_fix_time_convention,
    interval_censored_median,
    kaplan_meier,
    logrank,
    median_survival,
    monthly_close_rate,
    remediation_table,
)

Z95 = stats.norm.ppf(0.975)


@pytest.fixture
def aml() -> pd.DataFrame:
    # R survival::aml (Miller 1981), weeks; status 0 = censored ("13+", "28+", "45+", "161+", "16+")
    maintained = [
        (9, 1),
        (13, 1),
        (13, 0),
        (18, 1),
        (23, 1),
        (28, 0),
        (31, 1),
        (34, 1),
        (45, 0),
        (48, 1),
        (161, 0),
    ]
    nonmaint = [
        (5, 1),
        (5, 1),
        (8, 1),
        (8, 1),
        (12, 1),
        (16, 0),
        (23, 1),
        (27, 1),
        (30, 1),
        (33, 1),
        (43, 1),
        (45, 1),
    ]
    rows = [(t, s, "Maintained") for t, s in maintained] + [(t, s, "Nonmaintained") for t, s in nonmaint]
    return pd.DataFrame(rows, columns=["time", "status", "x"])


def test_kaplan_meier_product_limit_on_aml(aml):
    before = aml.copy()
    km = kaplan_meier(aml, duration="time", event="status", group="x")
    pd.testing.assert_frame_equal(aml, before)
    assert list(km.columns) == [*SURVIVAL_COLUMNS, "std_error", "ci_method"]
    m = km[km["group"] == "Maintained"].set_index("time_days")
    # product-limit by hand: 10/11, x 9/10, x 7/8, x 6/7, x 4/5, x 3/4, x 1/2
    factors = {9: 10 / 11, 13: 9 / 10, 18: 7 / 8, 23: 6 / 7, 31: 4 / 5, 34: 3 / 4, 48: 1 / 2}
    expected = np.cumprod(list(factors.values()))
    assert m.loc[list(factors), "survival"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert m.loc[13, ["at_risk", "events", "censored"]].tolist() == [10, 1, 1]
    assert m.loc[161, ["at_risk", "events", "censored"]].tolist() == [1, 0, 1]
    assert m.loc[0, "survival"] == 1.0
    assert km.attrs["ci_method"] == "exponential Greenwood (log(-log))"
    assert set(km["ci_method"]) == {"exponential Greenwood (log(-log))"}


def _loglog_band(s: float, greenwood: float) -> tuple[float, float]:
    # Kalbfleisch & Prentice (1980): S ** exp(+-z sqrt(V) / log S), V = sum d / (n (n - d))
    half = Z95 * np.sqrt(greenwood) / np.log(s)
    return s ** np.exp(-half), s ** np.exp(half)


def test_kaplan_meier_loglog_greenwood_band(aml):
    m = kaplan_meier(aml, duration="time", event="status", group="x")
    m = m[m["group"] == "Maintained"].set_index("time_days")
    assert tuple(m.loc[9, ["ci_low", "ci_high"]]) == pytest.approx(_loglog_band(10 / 11, 1 / 110), rel=1e-6)
    v13 = 1 / (11 * 10) + 1 / (10 * 9)
    assert tuple(m.loc[13, ["ci_low", "ci_high"]]) == pytest.approx(
        _loglog_band(0.9 * 10 / 11, v13), rel=1e-6
    )


def test_medians_match_r_survfit(aml):
    # R: survfit(Surv(time, status) ~ x, data = aml) -> median 31 (Maintained), 23 (Nonmaintained)
    med = median_survival(aml, duration="time", event="status", group="x").set_index("x")
    assert med.loc["Maintained", "median_days"] == 31
    assert med.loc["Nonmaintained", "median_days"] == 23
    assert med.loc["Maintained", ["n", "events"]].tolist() == [11, 7]
    # interval: first time the lower band is <= 0.5. Lower band (hand formula above) at 9 weeks is
    # 0.508 > 0.5 and at 13 weeks 0.447 <= 0.5, so 13; the upper band never reaches 0.5: inf.
    assert _loglog_band(10 / 11, 1 / 110)[0] > 0.5 > _loglog_band(9 / 11, 1 / 110 + 1 / 90)[0]
    assert med.loc["Maintained", "median_ci_low"] == 13
    assert np.isinf(med.loc["Maintained", "median_ci_high"])


def test_share_open_at_fixed_days(aml):
    med = median_survival(aml, duration="time", event="status", group="x", times=(40, 90, 365))
    med = med.set_index("x")
    # Maintained: S(40) = S(34) and S(90) = S(48) = product-limit above; follow-up ends at 161 with
    # S > 0, so S(365) is not estimable (NaN). Nonmaintained: last time is an event, S = 0 after 45.
    s34 = 10 / 11 * 9 / 10 * 7 / 8 * 6 / 7 * 4 / 5 * 3 / 4
    assert med.loc["Maintained", "share_open_at_40d"] == pytest.approx(s34)
    assert med.loc["Maintained", "share_open_at_90d"] == pytest.approx(s34 / 2)
    assert np.isnan(med.loc["Maintained", "share_open_at_365d"])
    assert med.loc["Nonmaintained", "share_open_at_365d"] == 0.0
    lo, hi = med.loc["Maintained", ["share_open_at_90d_ci_low", "share_open_at_90d_ci_high"]]
    assert lo < s34 / 2 < hi


def test_logrank_matches_r_survdiff(aml):
    # R: survdiff(Surv(time, status) ~ x, data = aml) -> Chisq = 3.4 on 1 degrees of freedom, p = 0.07
    out = logrank(aml, duration="time", event="status", group="x", study="horizontal")
    assert list(out.columns) == list(TESTS_COLUMNS) and len(out) == 1
    row = out.iloc[0]
    assert round(row["statistic"], 1) == 3.4 and row["df"] == 1 and round(row["p_value"], 2) == 0.07
    assert (row["n_a"], row["df"], row["metric"]) == (23, 1, "time") and pd.isna(row["n_b"])


def test_pairwise_logrank_with_holm(aml):
    third = pd.DataFrame({"time": [2, 3, 4, 6, 7, 10], "status": 1, "x": "Other"})
    out = logrank(pd.concat([aml, third], ignore_index=True), duration="time", event="status", group="x")
    assert out.loc[0, "df"] == 2 and len(out) == 4
    pairs = out.iloc[1:].set_index(["group_a", "group_b"])
    # a pairwise test only uses the two groups' rows: same chi2 as the two-group aml test
    assert round(pairs.loc[("Maintained", "Nonmaintained"), "statistic"], 1) == 3.4
    p = pairs["p_value"].to_numpy()
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (3 - np.arange(3))))  # Holm (1979)
    assert pairs["p_adjusted"].to_numpy()[order] == pytest.approx(holm)
    assert set(pairs["adjust_method"]) == {"holm"}


def test_remediation_table_shape_and_values(aml):
    df = aml.assign(severity=np.where(aml["time"] % 2 == 0, "high", "critical"))
    table = remediation_table(df, duration="time", event="status", group="x", severity="severity")
    assert list(table.columns) == [*REMEDIATION_COLUMNS, "share_open_at_90d", "ci_method"]
    assert len(table) == 4
    sub = df[(df["x"] == "Maintained") & (df["severity"] == "high")]
    one = median_survival(sub, duration="time", event="status").iloc[0]
    got = table.set_index(["group", "severity"]).loc[("Maintained", "high")]
    assert got["n"] == len(sub) and got["median_days"] == one["median_days"]


def test_fix_time_conventions():
    df = pd.DataFrame({"seen": [0.0, 100.0, 200.0], "gone": [180.0, 300.0, np.nan]})
    before = df.copy()
    mid = apply_fix_time_convention(df, last_seen="seen", first_absent="gone")
    pd.testing.assert_frame_equal(df, before)
    assert mid["duration_days"].tolist() == [90.0, 200.0, 200.0]
    assert mid["fixed"].tolist() == [1, 1, 0]
    upper = apply_fix_time_convention(df, last_seen="seen", first_absent="gone", convention="upper")
    lower = apply_fix_time_convention(df, last_seen="seen", first_absent="gone", convention="lower")
    assert upper["duration_days"].tolist() == [180.0, 300.0, 200.0]
    assert lower["duration_days"].tolist() == [0.0, 100.0, 200.0]
    assert upper.attrs["fix_time_convention"] == "upper"
    with pytest.raises(ValueError):
        apply_fix_time_convention(df, last_seen="seen", first_absent="gone", convention="mean")
    with pytest.raises(ValueError):
        apply_fix_time_convention(df.assign(gone=[0.0, 300, np.nan]), last_seen="seen", first_absent="gone")


def _interval_sample(seed: int, n: int = 600):
    # planted Weibull(lambda = 100, rho = 1.5): median = 100 ln(2)^(1/1.5) = 78.32 days;
    # audits every 30 days; follow-up ends at 120 days (about 27 % still open: right-censored)
    t = 100 * np.random.default_rng(seed).weibull(1.5, n)
    audits = np.arange(0, 121, 30.0)
    idx = np.clip(np.searchsorted(audits, t), 1, len(audits) - 1)
    censored = t > 120
    return np.where(censored, 120.0, audits[idx - 1]), np.where(censored, np.inf, audits[idx])


def test_interval_censored_median_recovers_planted_weibull():
    lower, upper = _interval_sample(3)
    out = interval_censored_median(lower, upper).iloc[0]
    true_median = 100 * np.log(2) ** (1 / 1.5)
    assert out["ci_low"] < true_median < out["ci_high"]
    assert out["rho_"] == pytest.approx(1.5, abs=0.2) and out["model"] == "weibull"
    assert 0.2 < np.isinf(upper).mean() < 0.35


def test_interval_censored_median_observed_flag_and_bad_input():
    lower, upper = _interval_sample(4, n=200)
    flagged = interval_censored_median(lower, np.where(np.isinf(upper), 999.0, upper), np.isfinite(upper))
    plain = interval_censored_median(lower, upper)
    assert flagged["median_days"].iloc[0] == pytest.approx(plain["median_days"].iloc[0], rel=1e-6)
    with pytest.raises(ValueError):
        interval_censored_median([10, 20], [np.inf, np.inf])  # nothing ever fixed
    with pytest.raises(ValueError):
        interval_censored_median([10, 20], [5, 30])  # upper below lower


def test_monthly_close_rate_by_hand():
    f = pd.DataFrame(
        {
            "opened": pd.to_datetime(["2024-01-05", "2024-01-10", "2024-02-01", "2024-01-20"]),
            "closed": pd.to_datetime(["2024-02-10", None, "2024-03-15", "2024-01-25"]),
            "family": ["CH", "CH", "CH", "EHPAD"],
        }
    )
    out = monthly_close_rate(f, opened="opened", closed="closed")
    # Feb: open at start = findings 1 and 2 (4 opened and closed in Jan), 1 closed -> 0.5;
    # Mar: open at start = 2 and 3, 3 closed -> 0.5; Jan: none open at its start -> NaN
    assert out["open_at_start"].tolist() == [0, 2, 2]
    assert out["closed"].tolist() == [0, 1, 1]
    assert np.isnan(out.loc[0, "close_rate"]) and out["close_rate"].iloc[1:].tolist() == [0.5, 0.5]
    by = monthly_close_rate(f, opened="opened", closed="closed", group="family")
    assert by.loc[by["group"] == "EHPAD", "open_at_start"].sum() == 0  # finding 4: same month
    assert by.loc[by["group"] == "CH", "open_at_start"].tolist() == [0, 2, 2]
    assert by["month"].dt.strftime("%Y-%m").tolist()[:3] == ["2024-01", "2024-02", "2024-03"]
    with pytest.raises(ValueError):
        monthly_close_rate(
            f.assign(family=[None, "CH", "CH", "CH"]), opened="opened", closed="closed", group="family"
        )
    with pytest.raises(ValueError):
        monthly_close_rate(f.assign(closed=pd.to_datetime("2023-01-01")), opened="opened", closed="closed")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"time": -1}, ValueError),
        ({"status": 2}, ValueError),
        ({"time": np.nan}, ValueError),
    ],
)
def test_survival_bad_input(aml, change, error):
    with pytest.raises(error):
        kaplan_meier(aml.assign(**change), duration="time", event="status")
    with pytest.raises(KeyError):
        kaplan_meier(aml, duration="weeks", event="status")
    with pytest.raises(ValueError):
        logrank(aml.assign(x="one"), duration="time", event="status", group="x")
    with pytest.raises(ValueError):  # a missing group would otherwise vanish in groupby
        kaplan_meier(
            aml.assign(x=aml["x"].where(aml["time"] > 5)), duration="time", event="status", group="x"
        )


@pytest.fixture
def many_ties() -> pd.DataFrame:
    """Thousands of findings on few distinct (days, fixed, group) rows, as audit intervals give."""
    rng = np.random.default_rng(7)
    n = 6000
    return pd.DataFrame(
        {
            "days": rng.choice([0, 30, 91, 182, 183, 365, 400], size=n).astype(float),
            "fixed": rng.integers(0, 2, size=n),
            "family": rng.choice(["CH", "CHU", "EHPAD", "Clinique"], size=n),
        }
    )


def test_kaplan_meier_on_distinct_rows_equals_lifelines_on_every_row(many_ties):
    from lifelines import KaplanMeierFitter

    got = kaplan_meier(many_ties, duration="days", event="fixed", group="family")
    for family, part in many_ties.groupby("family"):
        km = KaplanMeierFitter().fit(part["days"], part["fixed"].astype(bool))
        mine = got[got["group"] == family]
        np.testing.assert_array_equal(mine["survival"], km.survival_function_.iloc[:, 0])
        inside = (mine["survival"] > 0).to_numpy()  # lifelines writes [0, 0] where S = 0, R and we NaN
        np.testing.assert_allclose(
            mine["ci_low"][inside], km.confidence_interval_.iloc[:, 0][inside], rtol=1e-12
        )
        np.testing.assert_allclose(
            mine["ci_high"][inside], km.confidence_interval_.iloc[:, 1][inside], rtol=1e-12
        )
        for column, theirs in [("at_risk", "at_risk"), ("events", "observed"), ("censored", "censored")]:
            assert mine[column].dtype == km.event_table[theirs].dtype  # integers, not weights
            np.testing.assert_array_equal(mine[column], km.event_table[theirs])
    med = median_survival(many_ties, duration="days", event="fixed", group="family")
    assert med["n"].tolist() == many_ties.groupby("family").size().tolist()


def test_logrank_on_distinct_rows_equals_lifelines_on_every_row(many_ties):
    from lifelines.statistics import logrank_test, multivariate_logrank_test

    got = logrank(many_ties, duration="days", event="fixed", group="family")
    overall = multivariate_logrank_test(
        many_ties["days"], many_ties["family"], many_ties["fixed"].astype(bool)
    )
    assert got.loc[0, "statistic"] == pytest.approx(overall.test_statistic, rel=1e-12)
    assert got.loc[0, "p_value"] == pytest.approx(overall.p_value, rel=1e-12)
    pairs = got.iloc[1:]
    assert len(pairs) == 6
    for _, row in pairs.iterrows():
        a = many_ties[many_ties["family"] == row["group_a"]]
        b = many_ties[many_ties["family"] == row["group_b"]]
        ref = logrank_test(a["days"], b["days"], a["fixed"].astype(bool), b["fixed"].astype(bool))
        assert (row["n_a"], row["n_b"]) == (len(a), len(b))
        assert row["statistic"] == pytest.approx(ref.test_statistic, rel=1e-12)
        assert row["p_value"] == pytest.approx(ref.p_value, rel=1e-12)
