"""Poisson counts and rates: exact (Garwood) intervals, rates per 1,000, exact comparison of two rates.

Thin wrappers over statsmodels and scipy (:func:`statsmodels.stats.rates.confint_poisson`,
:func:`statsmodels.stats.rates.test_poisson_2indep`, :func:`scipy.stats.binomtest`) that return rows in the
library's vocabulary; the values are theirs, checked against R ``poisson.test`` in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats import rates as sm_rates

from cyberobs_lib.stats._tidy import make_tests_table

ArrayLike = float | int | Sequence[float] | np.ndarray | pd.Series


def poisson_exact_interval(count: ArrayLike, exposure: ArrayLike = 1, *, alpha: float = 0.05) -> pd.DataFrame:
    """Exact (Garwood) confidence interval for a Poisson count or rate (vectorized).

    Parameters
    ----------
    count : scalar, array or Series of non-negative integers
        Observed events. A Series index is kept.
    exposure : scalar, array or Series of positive numbers
        Person-time, establishments, hosts... (broadcast with ``count``); the rate is count / exposure.
    alpha : float, keyword-only

    Returns
    -------
    DataFrame, one row per element: ``count``, ``exposure``, ``value`` = count / exposure,
    ``ci_low``, ``ci_high``, ``ci_method`` = ``garwood_exact``.

    Notes
    -----
    ``low = chi2_{alpha/2}(2x) / 2``, ``high = chi2_{1-alpha/2}(2x + 2) / 2``, both divided by the
    exposure; ``low = 0`` when x = 0: statsmodels ``confint_poisson(method="exact-c")`` (the central
    interval from gamma quantiles), once per distinct count. Same interval as R ``poisson.test``.

    References
    ----------
    Garwood F (1936) Biometrika 28:437-442. Ulm K (1990) Am J Epidemiol 131:373-375.

    Examples
    --------
    >>> poisson_exact_interval([0, 1, 10]).round(4)
       count  exposure  value  ci_low  ci_high      ci_method
    0    0.0       1.0    0.0  0.0000   3.6889  garwood_exact
    1    1.0       1.0    1.0  0.0253   5.5716  garwood_exact
    2   10.0       1.0   10.0  4.7954  18.3904  garwood_exact
    """
    x = np.atleast_1d(np.asarray(count, dtype=float))
    t = np.atleast_1d(np.asarray(exposure, dtype=float))
    x, t = np.broadcast_arrays(x, t)
    if np.any(np.isnan(x)) or np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("count must hold non-negative integers")
    if np.any(np.isnan(t)) or np.any(t <= 0):
        raise ValueError("exposure must be positive")
    # quantiles once per distinct count (counts repeat a lot in large tables), for a unit exposure
    ux, inverse = np.unique(x, return_inverse=True)
    low, high = (
        np.asarray(v, float)
        for v in sm_rates.confint_poisson(ux, np.ones_like(ux), method="exact-c", alpha=alpha)
    )
    low, high = np.where(ux > 0, low, 0.0)[inverse], high[inverse]
    out = pd.DataFrame({"count": x, "exposure": t, "value": x / t, "ci_low": low / t, "ci_high": high / t})
    out["ci_method"] = "garwood_exact"
    for v in (count, exposure):
        if isinstance(v, pd.Series) and len(v) == len(out):
            out.index = v.index
            break
    return out


def rate_per_1000(
    events: ArrayLike, population: ArrayLike, *, per: float = 1000.0, alpha: float = 0.05
) -> pd.DataFrame:
    """Rate per ``per`` units (default 1,000) with its exact Poisson interval.

    Parameters
    ----------
    events : counts; population : positive denominators (e.g. establishments of a family).
    per : float, keyword-only
        Multiplier (1000 = per 1,000).
    alpha : float, keyword-only

    Returns
    -------
    DataFrame: ``events``, ``population``, ``value`` = per * events / population, ``ci_low``,
    ``ci_high`` (Garwood, scaled likewise), ``ci_method`` = ``garwood_exact``.

    Notes
    -----
    The events are treated as Poisson given the population (appropriate when events are rare
    relative to the population; for a share of units use :func:`~cyberobs_lib.stats.proportions.wilson_interval`).

    Examples
    --------
    >>> rate_per_1000(5, 2000).round(3)
       events  population  value  ci_low  ci_high      ci_method
    0     5.0      2000.0    2.5   0.812    5.834  garwood_exact
    """
    out = poisson_exact_interval(events, population, alpha=alpha)
    out = out.rename(columns={"count": "events", "exposure": "population"})
    out[["value", "ci_low", "ci_high"]] = out[["value", "ci_low", "ci_high"]] * per
    return out


def poisson_rate_ratio_test(
    count1: int,
    exposure1: float,
    count2: int,
    exposure2: float,
    *,
    alpha: float = 0.05,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "a",
    group_b: str = "b",
) -> pd.DataFrame:
    """Exact conditional test that two Poisson rates are equal, with the rate ratio and its exact CI.

    Parameters
    ----------
    count1, exposure1, count2, exposure2 : events and exposures of groups a and b.
    alpha : float, keyword-only
    study, metric, group_a, group_b : labels copied into the row.

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``poisson_rate_ratio``, ``variant`` =
    ``exact_conditional_binomial``, ``n_a``/``n_b`` the event counts, ``statistic`` = count1,
    ``p_value`` two-sided, ``effect_size`` = (count1/exposure1) / (count2/exposure2) with
    ``ci_low``/``ci_high`` (``ci_method`` = ``clopper_pearson_conditional``).

    Notes
    -----
    Given the total x1 + x2, x1 ~ Bin(x1 + x2, pi) with pi = t1 / (t1 + t2) under equal rates;
    the two-sided p-value is statsmodels ``test_poisson_2indep(method="exact-cond")`` (the conditional
    binomial test, tables no more probable than the observed one), and the Clopper-Pearson limits
    (pl, pu) of pi from :func:`scipy.stats.binomtest` map to the ratio as ``p / (1 - p) * t2 / t1``.
    This is R ``poisson.test(c(x1, x2), c(t1, t2))``. Not used by the studies; kept as the library's
    two-rate comparison for reference cases.

    References
    ----------
    Przyborowski J, Wilenski H (1940) Biometrika 31:313-323. Fay MP (2010) R Journal 2:53-58.
    """
    x1, x2 = int(count1), int(count2)
    t1, t2 = float(exposure1), float(exposure2)
    if x1 < 0 or x2 < 0 or x1 != count1 or x2 != count2:
        raise ValueError("counts must be non-negative integers")
    if not (t1 > 0 and t2 > 0):
        raise ValueError("exposures must be positive")
    row = {
        "study": study,
        "metric": metric,
        "test": "poisson_rate_ratio",
        "variant": "exact_conditional_binomial",
        "group_a": group_a,
        "group_b": group_b,
        "n_a": x1,
        "n_b": x2,
        "statistic": float(x1),
        "effect_size_kind": "rate_ratio",
        "ci_method": "clopper_pearson_conditional",
    }
    if x1 + x2 == 0:
        return make_tests_table([{**row, "p_value": 1.0}])
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero count makes statsmodels' ratio infinite
        pvalue = sm_rates.test_poisson_2indep(x1, t1, x2, t2, method="exact-cond").pvalue
    ci = stats.binomtest(x1, x1 + x2, t1 / (t1 + t2)).proportion_ci(
        confidence_level=1 - alpha, method="exact"
    )

    def to_ratio(p: float) -> float:
        return np.inf if p >= 1 else p / (1 - p) * t2 / t1

    ratio = np.inf if x2 == 0 else (x1 / t1) / (x2 / t2)
    row |= {
        "p_value": float(pvalue),
        "effect_size": ratio,
        "ci_low": to_ratio(ci.low),
        "ci_high": to_ratio(ci.high),
    }
    return make_tests_table([row])
