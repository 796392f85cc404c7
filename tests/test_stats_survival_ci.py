"""Kaplan–Meier interval scales, standard errors and medians against R ``survfit`` on the aml data.

R values: ``summary(survfit(Surv(time, status) ~ x, data = aml))`` (R survival 3.8.9, default
``conf.type = "log"``) as published in test/r_expected_values.json of github.com/Cameron-Lyons/survival
("generated using the R survival package"); the Maintained rows at 9-31 weeks are also printed in the
R session of rstudio-pubs-static.s3.amazonaws.com/610133 (std.err 0.0867 0.1163 0.1397 0.1526 0.1642,
lower 0.7541 0.6192 0.4884 0.3769 0.2549, upper 1.000 1.000 1.000 0.999 0.946).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cyberobs_lib.stats.survival import (
    greenwood_band,
    kaplan_meier,
    median_survival,
    remediation_table,
    survival_quantile,
)

Z95 = stats.norm.ppf(0.975)
R_MAINTAINED = {
    "time": [9, 13, 18, 23, 31, 34, 48],
    "survival": [0.90909090909, 0.81818181818, 0.71590909091, 0.61363636364, 0.49090909091, 0.36818181818,
                 0.18409090909],
    "std_err": [0.086678417204, 0.11629129983, 0.13966497056, 0.15263233103, 0.16419326722, 0.16266888583,
                0.15349274579],
    "lower": [0.75413384508, 0.6192489874, 0.48842628742, 0.3768670595, 0.2548599512, 0.1548771179,
              0.035917898489],
    "upper": [1, 1, 1, 0.99915760023, 0.9455849552, 0.87526067814, 0.94352576947],
}  # fmt: skip
R_NONMAINTAINED_STD_ERR = [0.10758287073, 0.13608276349, 0.14231876064, 0.14813006255, 0.14698618395,
                           0.13871516913, 0.12187450538, 0.091866364968, np.nan]  # fmt: skip


@pytest.fixture
def aml() -> pd.DataFrame:
    # R survival::aml (Miller 1981), weeks; status 0 = censored
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
    return pd.DataFrame(rows, columns=["time", "status", "x"])  # fmt: skip


def _events(km: pd.DataFrame, group: str) -> pd.DataFrame:
    return km[(km["group"] == group) & (km["events"] > 0)]


def test_log_scale_matches_r_survfit_default(aml):
    km = kaplan_meier(aml, duration="time", event="status", group="x", ci_transform="log")
    m = _events(km, "Maintained")
    assert m["time_days"].tolist() == R_MAINTAINED["time"]
    for ours, theirs in [("survival", "survival"), ("std_error", "std_err"), ("ci_low", "lower"),
                         ("ci_high", "upper")]:  # fmt: skip
        assert m[ours].to_numpy() == pytest.approx(R_MAINTAINED[theirs], abs=5e-11)
    assert set(km["ci_method"]) == {"Greenwood, log scale (R survfit default)"}
    assert km.attrs["ci_method"] == "Greenwood, log scale (R survfit default)"


def test_std_error_is_greenwood_and_nan_where_nothing_is_left(aml):
    km = kaplan_meier(aml, duration="time", event="status", group="x")
    nm = _events(km, "Nonmaintained")
    np.testing.assert_allclose(nm["std_error"], R_NONMAINTAINED_STD_ERR, atol=5e-11)  # NaN at S = 0, as R
    last = nm.iloc[-1]
    assert last["survival"] == 0 and np.isnan(last["ci_low"]) and np.isnan(last["ci_high"])
    # the standard error does not depend on the interval's scale
    other = kaplan_meier(aml, duration="time", event="status", group="x", ci_transform="plain")
    pd.testing.assert_series_equal(km["std_error"], other["std_error"])


def test_plain_and_log_log_by_hand(aml):
    # Klein & Moeschberger (2003) eq. 4.3.1: S +- z SE, clipped to [0, 1]; Kalbfleisch & Prentice: S^exp(+-z sqrt(V)/log S)
    plain = _events(
        kaplan_meier(aml, duration="time", event="status", group="x", ci_transform="plain"), "Maintained"
    )
    s, se = plain["survival"].to_numpy(), plain["std_error"].to_numpy()
    assert plain["ci_low"].to_numpy() == pytest.approx(np.maximum(s - Z95 * se, 0))
    assert plain["ci_high"].to_numpy() == pytest.approx(np.minimum(s + Z95 * se, 1))
    loglog = _events(kaplan_meier(aml, duration="time", event="status", group="x"), "Maintained")
    half = Z95 * (se / s) / np.log(s)
    assert loglog["ci_low"].to_numpy() == pytest.approx(s ** np.exp(-half), rel=1e-10)
    assert loglog["ci_high"].to_numpy() == pytest.approx(s ** np.exp(half), rel=1e-10)
    # before the first event: S = 1 and the band is [1, 1] whatever the scale
    for transform in ("log", "log-log", "plain"):
        first = kaplan_meier(aml, duration="time", event="status", ci_transform=transform).iloc[0]
        assert (first["survival"], first["ci_low"], first["ci_high"]) == (1.0, 1.0, 1.0)


def test_median_interval_follows_the_chosen_band_as_r(aml):
    # R print(survfit(...)) reads the median's limits where the bands cross 0.5. Log scale (R's default),
    # from the published bands above: lower band 0.619 at 13 weeks > 0.5 >= 0.488 at 18 -> 18; the upper
    # band never falls to 0.5 (minimum 0.875) -> not reached (R: NA, here inf). Median 31 (R).
    r_lower, r_upper = np.array(R_MAINTAINED["lower"]), np.array(R_MAINTAINED["upper"])
    assert r_lower[1] > 0.5 >= r_lower[2] and r_upper.min() > 0.5
    log = median_survival(aml, duration="time", event="status", group="x", ci_transform="log").set_index("x")
    assert log.loc["Maintained", ["median_days", "median_ci_low"]].tolist() == [31, 18]
    assert np.isinf(log.loc["Maintained", "median_ci_high"])
    assert log.loc["Maintained", "ci_method"] == "Greenwood, log scale (R survfit default)"
    # the log(-log) band is wider below: its lower limit crosses 0.5 at 13 weeks already
    loglog = median_survival(aml, duration="time", event="status", group="x").set_index("x")
    assert loglog.loc["Maintained", "median_ci_low"] == 13
    assert loglog.loc["Nonmaintained", "median_days"] == 23  # R: median 23 (Nonmaintained)


def test_median_of_a_curve_flat_at_one_half_is_the_midpoint():
    # R ?quantile.survfit: a horizontal segment exactly at 0.5 gives its midpoint, "the standard behavior
    # of the median when data is uncensored": 4 fixes at 1, 2, 3, 4 days -> 2.5, numpy's median
    df = pd.DataFrame({"days": [1, 2, 3, 4], "fixed": 1})
    assert median_survival(df, duration="days", event="fixed")["median_days"].iloc[0] == np.median(
        [1, 2, 3, 4]
    )
    # flat at 0.5 until the end of the curve (last time censored): midpoint with the last time
    assert survival_quantile(np.array([0.0, 2, 10]), np.array([1.0, 0.5, 0.5])) == 6.0
    assert survival_quantile(np.array([0.0, 2]), np.array([1.0, np.nan])) == np.inf


def test_transform_is_checked_and_passed_through(aml):
    with pytest.raises(ValueError, match="ci_transform"):
        kaplan_meier(aml, duration="time", event="status", ci_transform="arcsine")
    with pytest.raises(ValueError, match="ci_transform"):
        greenwood_band(np.array([0.5]), np.array([2]), np.array([1]), alpha=0.05, ci_transform="logit")
    df = aml.assign(severity="high")
    table = remediation_table(
        df, duration="time", event="status", group="x", severity="severity", ci_transform="log"
    )
    assert set(table["ci_method"]) == {"Greenwood, log scale (R survfit default)"}
    assert table.set_index("group").loc["Maintained", "median_ci_low"] == 18
