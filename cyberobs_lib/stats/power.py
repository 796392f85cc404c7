"""Sample size and power for comparing two groups (proportions, means, Poisson rates).

Each function returns a one-row-per-scenario frame with the inputs, the answer and an
``assumptions`` sentence, so that a planning table can be shown as is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestIndPower


def _check(alpha: float, power: float | None, ratio: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if power is not None and not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")
    if not ratio > 0:
        raise ValueError("ratio must be positive")


def _proportions(p1: float, p2: float) -> None:
    if not (0 < p1 < 1 and 0 < p2 < 1):
        raise ValueError("p1 and p2 must be in (0, 1)")
    if p1 == p2:
        raise ValueError("p1 == p2: no difference to detect")


def _prop_terms(p1: float, p2: float, ratio: float) -> tuple[float, float]:
    """Standard deviations under H0 (pooled) and H1 for n1 = 1, n2 = ratio (Fleiss, no cc)."""
    pbar = (p1 + ratio * p2) / (1 + ratio)
    sd0 = np.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio))
    sd1 = np.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
    return sd0, sd1


def sample_size_two_proportions(
    p1: float, p2: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> pd.DataFrame:
    """Sample size to detect p1 != p2 with a two-sided test of two independent proportions.

    Parameters
    ----------
    p1, p2 : float
        Expected proportions in groups 1 and 2.
    alpha, power : float, keyword-only
        Two-sided significance level and target power.
    ratio : float, keyword-only
        n2 / n1.

    Returns
    -------
    DataFrame, one row: ``p1``, ``p2``, ``alpha``, ``power``, ``ratio``; ``n_per_group`` = n1
    (unrounded, as R prints it), ``n_group2`` = ratio * n1, ``n_total`` = ceil(n1) + ceil(n2);
    ``assumptions``.

    Notes
    -----
    ``n1 = [z_{1-a/2} sqrt(pbar qbar (1 + 1/r)) + z_{1-b} sqrt(p1 q1 + p2 q2 / r)]^2 / (p1 - p2)^2``
    with ``pbar = (p1 + r p2) / (1 + r)``: the normal approximation without continuity
    correction. For r = 1 it is the formula of R ``power.prop.test`` (which ignores the far
    tail, ``strict = FALSE``) and gives the same n.

    References
    ----------
    Fleiss JL, Levin B, Paik MC (2003) Statistical Methods for Rates and Proportions, 3rd ed., 4.2.

    Examples
    --------
    >>> sample_size_two_proportions(0.5, 0.75, power=0.9)[["n_per_group", "n_total"]].round(2)
       n_per_group  n_total
    0        76.71      154
    """
    _check(alpha, power, ratio)
    _proportions(p1, p2)
    sd0, sd1 = _prop_terms(p1, p2, ratio)
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    n1 = ((za * sd0 + zb * sd1) / abs(p1 - p2)) ** 2
    return pd.DataFrame(
        {
            "p1": [p1], "p2": [p2], "alpha": [alpha], "power": [power], "ratio": [ratio],
            "n_per_group": [n1], "n_group2": [ratio * n1],
            "n_total": [int(np.ceil(n1 - 1e-9) + np.ceil(ratio * n1 - 1e-9))],
            "assumptions": ["two-sided z test of two independent proportions, normal approximation, "
                            "no continuity correction (as R power.prop.test)"],
        }
    )  # fmt: skip


def power_two_proportions(
    n: float, p1: float, p2: float, *, alpha: float = 0.05, ratio: float = 1.0
) -> pd.DataFrame:
    """Power of a two-sided test of two independent proportions with n in group 1 and ratio * n in group 2.

    Returns
    -------
    DataFrame, one row: ``n_per_group``, ``p1``, ``p2``, ``alpha``, ``ratio``, ``power``, ``assumptions``.

    Notes
    -----
    ``power = Phi((sqrt(n) |p1 - p2| - z_{1-a/2} sd0) / sd1)`` (far tail ignored), the inverse of
    :func:`sample_size_two_proportions`; R ``power.prop.test(n = ...)`` for ratio 1.

    Examples
    --------
    >>> power_two_proportions(50, 0.5, 0.75)["power"].round(7).tolist()
    [0.7401659]
    """
    _check(alpha, None, ratio)
    _proportions(p1, p2)
    if not n > 0:
        raise ValueError("n must be positive")
    sd0, sd1 = _prop_terms(p1, p2, ratio)
    za = stats.norm.ppf(1 - alpha / 2)
    pw = stats.norm.cdf((np.sqrt(n) * abs(p1 - p2) - za * sd0) / sd1)
    return pd.DataFrame(
        {
            "n_per_group": [float(n)], "p1": [p1], "p2": [p2], "alpha": [alpha], "ratio": [ratio],
            "power": [float(pw)],
            "assumptions": ["two-sided z test of two independent proportions, normal approximation, "
                            "no continuity correction (as R power.prop.test)"],
        }
    )  # fmt: skip


def sample_size_two_means(
    delta: float, sd: float = 1.0, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> pd.DataFrame:
    """Sample size for a two-sided two-sample t test (equal variances) to detect a mean difference.

    Parameters
    ----------
    delta : float
        Difference of means to detect. sd : common standard deviation.
    alpha, power, ratio : float, keyword-only
        ratio = n2 / n1.

    Returns
    -------
    DataFrame, one row: ``delta``, ``sd``, ``effect_size`` = delta / sd (Cohen's d), ``alpha``,
    ``power``, ``ratio``, ``n_per_group`` = n1 (unrounded), ``n_group2``, ``n_total``
    (rounded up), ``assumptions``.

    Notes
    -----
    Solved with :class:`statsmodels.stats.power.TTestIndPower` (noncentral t, df = n1 + n2 - 2,
    both tails), which matches R ``power.t.test`` for ratio 1 to the printed precision.

    References
    ----------
    Cohen J (1988) Statistical Power Analysis for the Behavioral Sciences, 2nd ed.

    Examples
    --------
    >>> sample_size_two_means(1, 1, power=0.9)["n_per_group"].round(4).tolist()
    [22.0211]
    """
    _check(alpha, power, ratio)
    if not sd > 0 or delta == 0:
        raise ValueError("need sd > 0 and a non-zero delta")
    es = abs(delta) / sd
    n1 = float(TTestIndPower().solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio))
    return pd.DataFrame(
        {
            "delta": [delta], "sd": [sd], "effect_size": [es], "alpha": [alpha], "power": [power],
            "ratio": [ratio], "n_per_group": [n1], "n_group2": [ratio * n1],
            "n_total": [int(np.ceil(n1 - 1e-9) + np.ceil(ratio * n1 - 1e-9))],
            "assumptions": ["two-sided two-sample t test, equal variances, noncentral t"],
        }
    )  # fmt: skip


def sample_size_two_rates(
    rate1: float, rate2: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> pd.DataFrame:
    """Exposure needed per group to detect rate1 != rate2 (two Poisson rates, normal approximation).

    Parameters
    ----------
    rate1, rate2 : float
        Expected events per unit of exposure (e.g. incidents per establishment-year).
    alpha, power : float, keyword-only
    ratio : float, keyword-only
        Exposure of group 2 / exposure of group 1.

    Returns
    -------
    DataFrame, one row: ``rate1``, ``rate2``, ``alpha``, ``power``, ``ratio``,
    ``n_per_group`` = exposure units in group 1, ``n_group2``, ``n_total`` (rounded up), ``assumptions``.

    Notes
    -----
    Wald test of the rate difference with variances under the alternative:
    ``t1 = (z_{1-a/2} + z_{1-b})^2 (rate1 + rate2 / r) / (rate1 - rate2)^2``.

    References
    ----------
    Lachin JM (2011) Biostatistical Methods, 2nd ed., section 8.1 (Poisson rates).

    Examples
    --------
    >>> sample_size_two_rates(0.1, 0.2)["n_per_group"].round(2).tolist()
    [235.47]
    """
    _check(alpha, power, ratio)
    if not (rate1 > 0 and rate2 > 0) or rate1 == rate2:
        raise ValueError("rates must be positive and different")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    t1 = (za + zb) ** 2 * (rate1 + rate2 / ratio) / (rate1 - rate2) ** 2
    return pd.DataFrame(
        {
            "rate1": [rate1], "rate2": [rate2], "alpha": [alpha], "power": [power], "ratio": [ratio],
            "n_per_group": [t1], "n_group2": [ratio * t1],
            "n_total": [int(np.ceil(t1 - 1e-9) + np.ceil(ratio * t1 - 1e-9))],
            "assumptions": ["two-sided Wald z test of two Poisson rates, variances under H1"],
        }
    )  # fmt: skip
