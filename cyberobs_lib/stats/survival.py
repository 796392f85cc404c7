"""How long findings stay open: Kaplan–Meier, medians, log-rank tests, interval censoring, close rates.

A finding still open at the last audit is right-censored, never dropped. The fix time of a finding
is only known to lie between the last audit that saw it and the first that did not:
:func:`apply_fix_time_convention` turns that interval into one duration (the caller's choice),
and :func:`interval_censored_median` uses the interval itself.

Kaplan–Meier intervals come from Greenwood's variance on a scale chosen by ``ci_transform``
(``log-log`` by default, ``log`` as R ``survfit``'s default, ``plain``); every table says which in its
``ci_method`` column, and the median's interval follows the same band (Brookmeyer & Crowley 1982, read
as R ``quantile.survfit`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter, WeibullFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cyberobs_lib.schema import REMEDIATION_COLUMNS, SURVIVAL_COLUMNS
from cyberobs_lib.stats._tidy import make_tests_table

#: Scales of the Kaplan–Meier pointwise interval, and what each table says in ``ci_method``.
CI_METHODS = {
    "log-log": "exponential Greenwood (log(-log))",
    "log": "Greenwood, log scale (R survfit default)",
    "plain": "Greenwood, plain (linear) scale",
}
CI_TRANSFORMS = tuple(CI_METHODS)
#: Default scale: see :func:`kaplan_meier` (Notes) for the reason.
DEFAULT_CI_TRANSFORM = "log-log"
KM_CI_METHOD = CI_METHODS[DEFAULT_CI_TRANSFORM]
#: The columns :func:`kaplan_meier` adds to :data:`~cyberobs_lib.schema.SURVIVAL_COLUMNS`.
SURVIVAL_EXTRA_COLUMNS = ("std_error", "ci_method")
FIX_TIME_CONVENTIONS = ("midpoint", "upper", "lower")
CiTransform = Literal["log-log", "log", "plain"]
# R quantile.survfit's tolerance for "the curve is exactly at p" (sqrt(.Machine$double.eps))
_QUANTILE_TOL = float(np.sqrt(np.finfo(float).eps))


def _check(frame: pd.DataFrame, duration: str, event: str, groups: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in (duration, event, *groups) if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    data = frame.loc[:, [duration, event, *groups]]
    if data[duration].isna().any() or (data[duration] < 0).any():
        raise ValueError(f"{duration!r} must be non-negative and not missing")
    if not data[event].isin([0, 1, True, False]).all():
        raise ValueError(f"{event!r} must be 0/1 or boolean (1 = fixed, 0 = still open: censored)")
    if data[list(groups)].isna().any().any():
        raise ValueError(f"missing values in grouping column(s) {list(groups)}")
    return data


def _collapse(data: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct rows of ``data[columns]`` (in order of first appearance) and how many rows each stands for.

    lifelines builds its event tables by summing case weights per time: fitting the distinct
    (duration, event[, group]) rows weighted by their counts gives the same tables, hence the same
    estimates and tests, from a few thousand rows instead of millions of findings.
    """
    counts = data.groupby(list(columns), observed=True, sort=False).size()
    return counts.index.to_frame(index=False), counts.to_numpy(dtype=float)


def _fits(frame, duration, event, group, alpha):
    """Yield (label, fitted KaplanMeierFitter, n) per group (a few groups: not a loop over rows)."""
    groups = [group] if isinstance(group, str) else list(group or [])
    data = _check(frame, duration, event, groups)
    parts = data.groupby(groups, observed=True, sort=True) if groups else [("all", data)]
    for label, part in parts:
        rows, weights = _collapse(part, [duration, event])
        km = KaplanMeierFitter(alpha=alpha).fit(rows[duration], rows[event].astype(bool), weights=weights)
        yield (label[0] if isinstance(label, tuple) and len(label) == 1 else label), km, len(part)


def _check_transform(ci_transform: str) -> None:
    if ci_transform not in CI_TRANSFORMS:
        raise ValueError(f"ci_transform must be one of {CI_TRANSFORMS}, got {ci_transform!r}")


def greenwood_band(
    survival: np.ndarray, at_risk: np.ndarray, events: np.ndarray, *, alpha: float, ci_transform: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greenwood standard error of S(t) and the pointwise band on the chosen scale, as R ``survfit``.

    Parameters
    ----------
    survival, at_risk, events : arrays
        S(t) and the risk set and events at each time of a product-limit curve, in time order.
    alpha : float
        1 − confidence level.
    ci_transform : {"log-log", "log", "plain"}

    Returns
    -------
    (std_error, ci_low, ci_high)
        ``std_error`` = S(t) √V(t), V = Σ d/(n(n − d)) (Greenwood's variance of log S, R's ``std.err``
        of ``summary.survfit``). Bands (z the normal quantile): ``log`` S·exp(∓z√V), upper capped at 1;
        ``log-log`` exp(−exp(log(−log S) ∓ z√V / log S)) (Kalbfleisch & Prentice); ``plain``
        S ∓ z·S√V clipped to [0, 1] (Klein & Moeschberger eq. 4.3.1). Where S = 1 (no event yet) the
        band is [1, 1]; where S = 0 it is NaN, and so is ``std_error`` (as R's NA).

    Examples
    --------
    R ``summary(survfit(Surv(time, status) ~ x, aml))``, Maintained at 9 weeks: 0.909, std.err 0.0867,
    95 % CI 0.7541 to 1.000.

    >>> se, lo, hi = greenwood_band(np.array([10 / 11]), np.array([11]), np.array([1]), alpha=0.05,
    ...                             ci_transform="log")
    >>> round(float(se[0]), 4), round(float(lo[0]), 4), float(hi[0])
    (0.0867, 0.7541, 1.0)
    """
    _check_transform(ci_transform)
    s = np.asarray(survival, dtype=float)
    n, d = np.asarray(at_risk, dtype=float), np.asarray(events, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(d > 0, d / (n * (n - d)), 0.0)  # inf once the risk set is exhausted (S = 0)
        se_log = np.sqrt(np.cumsum(term))
        std_error = np.where(s > 0, s * se_log, np.nan)
        z = stats.norm.ppf(1 - alpha / 2)
        if ci_transform == "plain":
            low, high = np.maximum(s - z * std_error, 0.0), np.minimum(s + z * std_error, 1.0)
        elif ci_transform == "log":
            low, high = s * np.exp(-z * se_log), np.minimum(s * np.exp(z * se_log), 1.0)
        else:
            inner = (0 < s) & (s < 1)
            log_s = np.log(np.where(inner, s, 0.5))
            shift = z * se_log / log_s  # negative
            low = np.exp(-np.exp(np.log(-log_s) - shift))
            high = np.exp(-np.exp(np.log(-log_s) + shift))
    full = s >= 1
    low, high = np.where(full, 1.0, low), np.where(full, 1.0, high)
    empty = s <= 0
    return std_error, np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _curve(km: KaplanMeierFitter, label: object, *, alpha: float, ci_transform: str) -> pd.DataFrame:
    """One group's product-limit table (lifelines' estimate and event table) with its Greenwood band."""
    et = km.event_table
    surv = km.survival_function_.iloc[:, 0].to_numpy()
    std_error, low, high = greenwood_band(
        surv, et["at_risk"].to_numpy(), et["observed"].to_numpy(), alpha=alpha, ci_transform=ci_transform
    )
    return pd.DataFrame(
        {
            "group": [label] * len(et),
            "time_days": et.index.to_numpy(float),
            "survival": surv,
            "ci_low": low,
            "ci_high": high,
            "at_risk": et["at_risk"].to_numpy(),
            "events": et["observed"].to_numpy(),
            "censored": et["censored"].to_numpy(),
            "std_error": std_error,
            "ci_method": CI_METHODS[ci_transform],
        }
    )


def kaplan_meier(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str | None = None,
    alpha: float = 0.05,
    ci_transform: CiTransform = DEFAULT_CI_TRANSFORM,
) -> pd.DataFrame:
    """Kaplan–Meier survival ("still open") curve per group, as the ``survival.csv`` table.

    Parameters
    ----------
    frame : DataFrame
        One row per finding.
    duration, event : str
        Days from first detection to fix (event = 1) or to the last audit (event = 0, censored).
    group : str, optional
        Grouping column (None: one curve labelled ``"all"``).
    alpha : float
        1 − confidence level of the pointwise band.
    ci_transform : {"log-log", "log", "plain"}
        Scale of the Greenwood interval (R ``survfit(conf.type = …)``); default ``log-log``.

    Returns
    -------
    DataFrame
        :data:`~cyberobs_lib.schema.SURVIVAL_COLUMNS`: ``group``, ``time_days`` (0, then each
        distinct time), ``survival`` (share still open just after that time), ``ci_low``,
        ``ci_high``, ``at_risk`` (open just before), ``events`` (fixed at), ``censored`` (last seen
        open at); then ``std_error`` (Greenwood standard error of ``survival``, R's ``std.err``) and
        ``ci_method`` (the interval's scale). ``attrs["ci_method"]`` too.

    Notes
    -----
    Product-limit estimate S(t) = Π (1 − d_i/n_i) (lifelines ``KaplanMeierFitter``); interval from
    Greenwood's variance (:func:`greenwood_band`). Default ``log-log`` rather than R's ``log``: its
    limits always lie inside [0, 1] without truncation (the ``log`` upper limit is cut at 1 wherever
    most findings are still open — on the aml data, at every time up to 18 weeks), and its coverage is
    closer to nominal in small samples and in the tails of the curve (Borgan & Liestøl 1990;
    Kalbfleisch & Prentice 2002 §1.4); it is also lifelines' own band, so earlier reports keep their
    intervals. ``ci_transform="log"`` gives R ``survfit``'s default intervals.

    References
    ----------
    Kaplan E.L., Meier P. (1958) JASA 53:457–481. Greenwood M. (1926) Reports on Public Health and
    Medical Subjects 33. Kalbfleisch J.D., Prentice R.L. (2002) The Statistical Analysis of Failure
    Time Data, 2nd ed. Borgan Ø., Liestøl K. (1990) Scand. J. Stat. 17:35–41. Klein J.P., Moeschberger
    M.L. (2003) Survival Analysis, 2nd ed., §4.3.

    Examples
    --------
    >>> df = pd.DataFrame({"days": [10, 20, 30], "fixed": [1, 0, 1]})
    >>> kaplan_meier(df, duration="days", event="fixed")["survival"].round(3).tolist()
    [1.0, 0.667, 0.667, 0.0]
    """
    _check_transform(ci_transform)
    tables = [
        _curve(km, label, alpha=alpha, ci_transform=ci_transform)
        for label, km, _ in _fits(frame, duration, event, group, alpha)
    ]
    out = pd.concat(tables, ignore_index=True)[[*SURVIVAL_COLUMNS, *SURVIVAL_EXTRA_COLUMNS]]
    out.attrs["ci_method"] = CI_METHODS[ci_transform]
    return out


def survival_quantile(times: np.ndarray, survival: np.ndarray, p: float = 0.5) -> float:
    """The time where S(t) falls to ``1 − p`` (p = 0.5: the median), by R ``quantile.survfit``'s rule.

    The first time S(t) ≤ 1 − p; if S is exactly 1 − p over a stretch, the midpoint of that stretch
    (the usual median of an even sample; to the last time when the stretch ends the curve). Applied to
    a band (``ci_low`` or ``ci_high``) it gives the interval of the quantile (Brookmeyer & Crowley
    1982). Missing band values are skipped, as R does. Never reached: ``inf``.

    >>> survival_quantile(np.array([0.0, 1, 2, 3]), np.array([1.0, 0.75, 0.5, 0.25]))
    2.5
    >>> survival_quantile(np.array([0.0, 1, 2]), np.array([1.0, 0.75, 0.6]))
    inf
    """
    x = np.concatenate([[0.0], np.asarray(times, dtype=float)])
    y = np.concatenate([[0.0], 1.0 - np.asarray(survival, dtype=float)])  # the CDF, as R
    x_max = x[-1]
    keep = ~pd.Series(y).duplicated().to_numpy()  # censoring times repeat the level
    x, y = x[keep], y[keep]
    last_defined = not np.isnan(y[-1])
    ok = ~np.isnan(y)
    x, y = x[ok], y[ok]
    if p == 0:
        return float(x[0])
    first = np.flatnonzero(y + _QUANTILE_TOL >= p)
    if len(first) == 0:
        return np.inf
    beyond = np.flatnonzero(y - _QUANTILE_TOL >= p)
    if len(beyond):
        return float((x[first[0]] + x[beyond[0]]) / 2)
    if last_defined and abs(p - y[-1]) < _QUANTILE_TOL:  # flat at p until the end of the curve
        return float((x[first[0]] + x_max) / 2)
    return np.inf


def _at(curve: pd.DataFrame, t: float) -> tuple[float, float, float]:
    """S(t) and its band; NaN beyond the last observed time unless the curve already reached 0."""
    times = curve["time_days"].to_numpy()
    last = curve.iloc[-1]
    if t > times.max() and last["survival"] > 0:
        return np.nan, np.nan, np.nan
    row = curve.iloc[int(np.searchsorted(times, t, side="right")) - 1]
    return float(row["survival"]), float(row["ci_low"]), float(row["ci_high"])


def median_survival(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    times: Sequence[float] = (90, 365),
    ci_transform: CiTransform = DEFAULT_CI_TRANSFORM,
) -> pd.DataFrame:
    """Median time to fix with its interval, and the share still open at given days, per group.

    Parameters
    ----------
    frame, duration, event, alpha, ci_transform
        As in :func:`kaplan_meier`.
    group : str or list of str, optional
        One or several grouping columns.
    times : sequence of float
        Days at which the share still open is reported.

    Returns
    -------
    DataFrame
        The group column(s), ``n``, ``events``, ``median_days``, ``median_ci_low``,
        ``median_ci_high``, and for each t in ``times``: ``share_open_at_{t}d``,
        ``share_open_at_{t}d_ci_low``, ``share_open_at_{t}d_ci_high``; then ``ci_method`` (the band's
        scale, which the median's interval follows). ``attrs["ci_method"]``.

    Notes
    -----
    The median is the first time S(t) ≤ 0.5, the midpoint of the stretch where S is exactly 0.5
    (:func:`survival_quantile`, R's rule), ``inf`` when never reached (R prints NA). Its interval
    (Brookmeyer & Crowley 1982, as R ``survfit``): the same rule applied to the lower band (lower
    limit) and to the upper band (upper limit) of the chosen scale — so it changes with
    ``ci_transform``, as R's does with ``conf.type``; ``inf`` where the band never falls to 0.5. The
    share open at t is S(t) with its band; NaN when t lies beyond the last observed time and S > 0
    there (the curve is not estimable past the follow-up).

    References
    ----------
    Brookmeyer R., Crowley J. (1982) Biometrics 38:29–41.
    """
    _check_transform(ci_transform)
    groups = [group] if isinstance(group, str) else list(group or [])
    rows = []
    for label, km, n in _fits(frame, duration, event, groups, alpha):
        labels = label if isinstance(label, tuple) else (label,)
        row = dict(zip(groups or ["group"], labels, strict=True))
        curve = _curve(km, label, alpha=alpha, ci_transform=ci_transform)
        t_ = curve["time_days"].to_numpy()
        row.update(
            n=n,
            events=int(curve["events"].sum()),
            median_days=survival_quantile(t_, curve["survival"].to_numpy()),
            median_ci_low=survival_quantile(t_, curve["ci_low"].to_numpy()),
            median_ci_high=survival_quantile(t_, curve["ci_high"].to_numpy()),
        )
        for t in times:
            s, lo, hi = _at(curve, t)
            key = f"share_open_at_{t:g}d"
            row.update({key: s, f"{key}_ci_low": lo, f"{key}_ci_high": hi})
        row["ci_method"] = CI_METHODS[ci_transform]
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["ci_method"] = CI_METHODS[ci_transform]
    return out


def remediation_table(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str,
    severity: str,
    alpha: float = 0.05,
    ci_transform: CiTransform = DEFAULT_CI_TRANSFORM,
) -> pd.DataFrame:
    """The ``remediation.csv`` table: median days to fix and share open at 90/365 days.

    Parameters
    ----------
    frame, duration, event, alpha, ci_transform
        As in :func:`kaplan_meier`.
    group, severity : str
        Grouping column (e.g. ``family``) and the severity column.

    Returns
    -------
    DataFrame
        :data:`~cyberobs_lib.schema.REMEDIATION_COLUMNS` (``group``, ``severity``, ``n``,
        ``median_days``, ``median_ci_low``, ``median_ci_high``, ``share_open_at_365d``) plus
        ``share_open_at_90d`` and ``ci_method``. Intervals as in :func:`median_survival`.
    """
    res = median_survival(
        frame, duration=duration, event=event, group=[group, severity], alpha=alpha, ci_transform=ci_transform
    )
    res = res.rename(columns={group: "group", severity: "severity"})
    out = res[[*REMEDIATION_COLUMNS, "share_open_at_90d", "ci_method"]].reset_index(drop=True)
    out.attrs["ci_method"] = CI_METHODS[ci_transform]
    return out


def logrank(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str,
    study: str = "",
    metric: str | None = None,
) -> pd.DataFrame:
    """Log-rank test across groups, then pairwise log-rank tests with Holm's adjustment.

    Parameters
    ----------
    frame, duration, event
        As in :func:`kaplan_meier`.
    group : str
        Grouping column (at least two groups).
    study, metric : str
        Copied into the rows (``metric`` defaults to ``duration``).

    Returns
    -------
    DataFrame
        ``tests.csv`` vocabulary. Row 0: ``logrank`` over all groups (``group_a`` = ``"all"``,
        ``n_a`` = N, ``n_b`` empty (k is in ``variant`` and ``df`` + 1), ``statistic`` = χ², ``df`` = k − 1). With k > 2, one row per pair
        with ``p_adjusted`` (Holm).

    Notes
    -----
    Mantel–Haenszel log-rank χ² = (O − E)ᵀ V⁻¹ (O − E) on k − 1 df (lifelines
    ``multivariate_logrank_test``), the statistic of R ``survival::survdiff`` (rho = 0).

    References
    ----------
    Mantel N. (1966) Cancer Chemotherapy Reports 50:163–170. Holm S. (1979) Scand. J. Stat. 6:65–70.
    """
    data = _check(frame, duration, event, [group])
    sizes = data.groupby(group, observed=True, sort=True).size()
    if len(sizes) < 2:
        raise ValueError(f"need at least two groups, got {list(sizes.index)}")
    rows_, weights = _collapse(data, [duration, event, group])
    res = multivariate_logrank_test(rows_[duration], rows_[group], rows_[event].astype(bool), weights=weights)
    base = {"study": study, "metric": metric or duration, "test": "logrank"}
    rows = [
        {
            **base,
            "variant": f"Mantel-Haenszel chi2, asymptotic; k={len(sizes)} groups",
            "group_a": "all",
            "n_a": len(data),
            "n_b": None,
            "statistic": res.test_statistic,
            "df": res.degrees_of_freedom,
            "p_value": res.p_value,
        }
    ]
    if len(sizes) > 2:
        pairs = []
        part = {g: (rows_[duration].to_numpy()[ix], rows_[event].astype(bool).to_numpy()[ix], weights[ix])
                for g, ix in rows_.groupby(group, observed=True, sort=False).indices.items()}  # fmt: skip
        for i, a in enumerate(sizes.index):  # k(k-1)/2 pairs of groups
            for b in sizes.index[i + 1 :]:
                (ta, ea, wa), (tb, eb, wb) = part[a], part[b]
                r = logrank_test(ta, tb, ea, eb, weights_A=wa, weights_B=wb)
                pair = {"group_a": a, "group_b": b, "n_a": int(sizes[a]), "n_b": int(sizes[b]), "df": 1}
                pair.update(statistic=r.test_statistic, p_value=r.p_value, adjust_method="holm")
                pairs.append({**base, "variant": "pairwise Mantel-Haenszel chi2", **pair})
        adjusted = multipletests([p["p_value"] for p in pairs], method="holm")[1]
        rows += [{**p, "p_adjusted": q} for p, q in zip(pairs, adjusted, strict=True)]
    return make_tests_table(rows)


def apply_fix_time_convention(
    frame: pd.DataFrame, *, last_seen: str, first_absent: str, convention: str = "midpoint"
) -> pd.DataFrame:
    """Turn "fixed between two audits" into one duration, by a stated convention.

    Parameters
    ----------
    frame : DataFrame
    last_seen : str
        Days from first detection to the last audit that still saw the finding.
    first_absent : str
        Days from first detection to the first audit that no longer saw it (NaN: still open).
    convention : {"midpoint", "upper", "lower"}
        Fixed at the midpoint of the interval, at the audit that saw it gone (pessimistic: the
        usual "days to close" of audit reports), or at the last audit that saw it.

    Returns
    -------
    DataFrame
        A copy of ``frame`` with ``duration_days`` and ``fixed`` (1 fixed, 0 censored at
        ``last_seen``); ``attrs["fix_time_convention"]``.

    Examples
    --------
    >>> df = pd.DataFrame({"seen": [0, 180], "gone": [180, None]})
    >>> apply_fix_time_convention(df, last_seen="seen", first_absent="gone")[["duration_days", "fixed"]].values.tolist()
    [[90.0, 1.0], [180.0, 0.0]]
    """
    if convention not in FIX_TIME_CONVENTIONS:
        raise ValueError(f"convention must be one of {FIX_TIME_CONVENTIONS}, got {convention!r}")
    lower, upper = frame[last_seen].astype(float), frame[first_absent].astype(float)
    if (upper <= lower).any() or lower.isna().any() or (lower < 0).any():
        raise ValueError(f"need 0 <= {last_seen!r} < {first_absent!r} on every fixed row")
    fixed = upper.notna()
    point = {"midpoint": (lower + upper) / 2, "upper": upper, "lower": lower}[convention]
    out = frame.assign(duration_days=point.where(fixed, lower), fixed=fixed.astype(int))
    out.attrs["fix_time_convention"] = convention
    return out


def interval_censored_median(
    lower: Sequence[float],
    upper: Sequence[float],
    observed: Sequence[bool] | None = None,
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Median time to fix from interval-censored fix times, under a Weibull model.

    Parameters
    ----------
    lower, upper : array-like
        The fix happened in (lower, upper] days; ``upper`` = inf (or NaN) means still open at
        ``lower`` (right-censored); lower = upper means an exact time.
    observed : array-like of bool, optional
        False marks a right-censored row whatever ``upper`` says.
    alpha : float

    Returns
    -------
    DataFrame
        One row: ``n``, ``median_days``, ``ci_low``, ``ci_high``, ``lambda_``, ``rho_``,
        ``model`` (``weibull``), ``ci_method`` (``delta method, log scale``).

    Notes
    -----
    lifelines has no nonparametric (Turnbull) estimator for interval-censored data; we choose
    the parametric Weibull fit ``WeibullFitter.fit_interval_censoring`` (S(t) = exp(−(t/λ)^ρ)),
    whose likelihood uses each interval as it is. Median = λ (ln 2)^(1/ρ); its interval is
    exp(log m ± z SE) with SE from the delta method on the ML covariance of (λ, ρ).

    References
    ----------
    Turnbull B.W. (1976) JRSS B 38:290–295. Lindsey J.C., Ryan L.M. (1998) Statistics in Medicine
    17:219–238 (tutorial on interval censoring).
    """
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    hi = np.where(np.isnan(hi), np.inf, hi)
    if observed is not None:
        hi = np.where(np.asarray(observed, dtype=bool), hi, np.inf)
    if lo.shape != hi.shape or (lo < 0).any() or (hi < lo).any() or np.isnan(lo).any():
        raise ValueError("need 0 <= lower <= upper, same length, no missing lower bound")
    if np.isinf(hi).all():
        raise ValueError("every row is right-censored: no fix observed, no median")
    wf = WeibullFitter().fit_interval_censoring(lo, hi)
    lam, rho = wf.lambda_, wf.rho_
    log_m = np.log(lam) + np.log(np.log(2)) / rho
    grad = np.array([1 / lam, -np.log(np.log(2)) / rho**2])
    cov = wf.variance_matrix_.loc[["lambda_", "rho_"], ["lambda_", "rho_"]].to_numpy()
    se = float(np.sqrt(grad @ cov @ grad))
    z = stats.norm.ppf(1 - alpha / 2)
    return pd.DataFrame(
        [
            {
                "n": len(lo),
                "median_days": np.exp(log_m),
                "ci_low": np.exp(log_m - z * se),
                "ci_high": np.exp(log_m + z * se),
                "lambda_": lam,
                "rho_": rho,
                "model": "weibull",
                "ci_method": "delta method, log scale",
            }
        ]
    )


def monthly_close_rate(
    frame: pd.DataFrame, *, opened: str, closed: str, group: str | None = None
) -> pd.DataFrame:
    """Share of the findings open at the start of each month that were closed during it.

    Parameters
    ----------
    frame : DataFrame
    opened, closed : str
        Datetime columns: first detection and fix (NaT: still open).
    group : str, optional

    Returns
    -------
    DataFrame
        ``group``, ``month`` (first day), ``open_at_start``, ``closed`` (of those open at the
        start, closed during the month), ``close_rate`` = closed / open_at_start (NaN if none open).

    Notes
    -----
    A finding is open at the start of month m if opened before m and not closed before m; since
    closed ≥ opened, open_at_start(m) = #opened before m − #closed before m (cumulative counts,
    no finding × month product). Findings opened and closed within the same month are in neither
    count. Months run from the first opening to the last date seen; restrict the result to
    months covered by audits. Kenna/Cyentia "Prioritization to Prediction" vol. 5 report monthly
    close rates of 6.6 % / 15.2 % / 27.1 % (low / median / high performers).
    """
    start, end = frame[opened], frame[closed]
    if start.isna().any() or (end < start).any():
        raise ValueError(f"{opened!r} must be set and not after {closed!r}")
    if group and frame[group].isna().any():
        raise ValueError(f"{group!r} has missing values")
    g_codes, g_labels = (
        pd.factorize(frame[group], sort=True) if group else (np.zeros(len(frame), int), ["all"])
    )
    m_open = (start.dt.year * 12 + start.dt.month - 1).to_numpy()  # month index, no Period objects
    m_close = (end.dt.year * 12 + end.dt.month - 1).to_numpy(dtype=float, na_value=np.nan)
    first = m_open.min()
    n_months = int(
        np.nanmax([m_open.max(), np.nanmax(m_close) if np.isfinite(m_close).any() else 0]) - first + 1
    )
    n_g = len(g_labels)

    def per_month(mask: np.ndarray, month: np.ndarray) -> np.ndarray:  # (groups, months) counts
        flat = g_codes[mask] * n_months + (month[mask] - first).astype(int)
        return np.bincount(flat, minlength=n_g * n_months).reshape(n_g, n_months)

    def before(counts: np.ndarray) -> np.ndarray:  # cumulative count up to the previous month
        return np.concatenate([np.zeros((n_g, 1), int), counts.cumsum(axis=1)[:, :-1]], axis=1)

    is_closed = np.isfinite(m_close)
    open_at_start = before(per_month(np.ones(len(m_open), bool), m_open)) - before(
        per_month(is_closed, m_close)
    )
    closed_n = per_month(is_closed & (m_close > m_open), m_close)
    month_index = first + np.arange(n_months)
    out = pd.DataFrame(
        {
            "group": np.repeat(np.asarray(g_labels, dtype=object), n_months),
            "month": pd.to_datetime(
                {
                    "year": np.tile(month_index // 12, n_g),
                    "month": np.tile(month_index % 12 + 1, n_g),
                    "day": 1,
                }
            ),
            "open_at_start": open_at_start.ravel(),
            "closed": closed_n.ravel(),
        }
    )
    out["close_rate"] = out["closed"] / out["open_at_start"].where(out["open_at_start"] > 0)
    return out
