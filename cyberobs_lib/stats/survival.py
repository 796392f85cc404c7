"""How long findings stay open: Kaplan–Meier, medians, log-rank tests, interval censoring, close rates.

A finding still open at the last audit is right-censored, never dropped. The fix time of a finding
is only known to lie between the last audit that saw it and the first that did not:
:func:`apply_fix_time_convention` turns that interval into one duration (the caller's choice),
and :func:`interval_censored_median` uses the interval itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter, WeibullFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import median_survival_times
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cyberobs_lib.schema import REMEDIATION_COLUMNS, SURVIVAL_COLUMNS
from cyberobs_lib.stats._tidy import make_tests_table

KM_CI_METHOD = "exponential Greenwood (log(-log))"
FIX_TIME_CONVENTIONS = ("midpoint", "upper", "lower")


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


def kaplan_meier(
    frame: pd.DataFrame, *, duration: str, event: str, group: str | None = None, alpha: float = 0.05
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

    Returns
    -------
    DataFrame
        :data:`~cyberobs_lib.schema.SURVIVAL_COLUMNS`: ``group``, ``time_days`` (0, then each
        distinct time), ``survival`` (share still open just after that time), ``ci_low``,
        ``ci_high``, ``at_risk`` (open just before), ``events`` (fixed at), ``censored`` (last seen
        open at). ``attrs["ci_method"]``.

    Notes
    -----
    Product-limit estimate S(t) = Π (1 − d_i/n_i); pointwise interval from Greenwood's variance on
    the log(−log S) scale (Kalbfleisch & Prentice 1980), as lifelines does:
    S^exp(±z √V / log S), V = Σ d_i / (n_i (n_i − d_i)) — R ``survfit(conf.type = "log-log")``.

    References
    ----------
    Kaplan E.L., Meier P. (1958) JASA 53:457–481. Kalbfleisch J.D., Prentice R.L. (1980) The
    Statistical Analysis of Failure Time Data, §1.3.

    Examples
    --------
    >>> df = pd.DataFrame({"days": [10, 20, 30], "fixed": [1, 0, 1]})
    >>> kaplan_meier(df, duration="days", event="fixed")["survival"].round(3).tolist()
    [1.0, 0.667, 0.667, 0.0]
    """
    tables = []
    for label, km, _ in _fits(frame, duration, event, group, alpha):
        et = km.event_table
        table = pd.DataFrame(
            {
                "group": [label] * len(et),
                "time_days": et.index.to_numpy(float),
                "survival": km.survival_function_.iloc[:, 0].to_numpy(),
                "ci_low": km.confidence_interval_.iloc[:, 0].to_numpy(),
                "ci_high": km.confidence_interval_.iloc[:, 1].to_numpy(),
                "at_risk": et["at_risk"].to_numpy(),
                "events": et["observed"].to_numpy(),
                "censored": et["censored"].to_numpy(),
            }
        )
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)[list(SURVIVAL_COLUMNS)]
    out.attrs["ci_method"] = KM_CI_METHOD
    return out


def _at(km: KaplanMeierFitter, t: float) -> tuple[float, float, float]:
    """S(t) and its band; NaN beyond the last observed time unless the curve already reached 0."""
    sf = km.survival_function_.iloc[:, 0]
    if t > sf.index.max() and sf.iloc[-1] > 0:
        return np.nan, np.nan, np.nan
    pos = sf.index.searchsorted(t, side="right") - 1
    band = km.confidence_interval_.iloc[pos]
    return float(sf.iloc[pos]), float(band.iloc[0]), float(band.iloc[1])


def median_survival(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    times: Sequence[float] = (90, 365),
) -> pd.DataFrame:
    """Median time to fix with its interval, and the share still open at given days, per group.

    Parameters
    ----------
    frame, duration, event, alpha
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
        ``share_open_at_{t}d_ci_low``, ``share_open_at_{t}d_ci_high``.

    Notes
    -----
    The median is the first time S(t) ≤ 0.5 (inf when never reached). Its interval is read off
    the pointwise log(−log) band: the times where the lower and upper band cross 0.5 (lifelines
    ``median_survival_times`` on ``confidence_interval_``; Brookmeyer & Crowley 1982 in spirit).
    The share open at t is S(t) with its band; NaN when t lies beyond the last observed time and
    S > 0 there (the curve is not estimable past the follow-up).

    References
    ----------
    Brookmeyer R., Crowley J. (1982) Biometrics 38:29–41.
    """
    groups = [group] if isinstance(group, str) else list(group or [])
    rows = []
    for label, km, n in _fits(frame, duration, event, groups, alpha):
        labels = label if isinstance(label, tuple) else (label,)
        row = dict(zip(groups or ["group"], labels, strict=True))
        median_ci = median_survival_times(km.confidence_interval_)
        row.update(
            n=n,
            events=int(km.event_table["observed"].sum()),
            median_days=float(km.median_survival_time_),
            median_ci_low=float(median_ci.iloc[0, 0]),
            median_ci_high=float(median_ci.iloc[0, 1]),
        )
        for t in times:
            s, lo, hi = _at(km, t)
            key = f"share_open_at_{t:g}d"
            row.update({key: s, f"{key}_ci_low": lo, f"{key}_ci_high": hi})
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["ci_method"] = KM_CI_METHOD
    return out


def remediation_table(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str,
    severity: str,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The ``remediation.csv`` table: median days to fix and share open at 90/365 days.

    Parameters
    ----------
    frame, duration, event, alpha
        As in :func:`kaplan_meier`.
    group, severity : str
        Grouping column (e.g. ``family``) and the severity column.

    Returns
    -------
    DataFrame
        :data:`~cyberobs_lib.schema.REMEDIATION_COLUMNS` (``group``, ``severity``, ``n``,
        ``median_days``, ``median_ci_low``, ``median_ci_high``, ``share_open_at_365d``) plus
        ``share_open_at_90d``. Intervals as in :func:`median_survival`.
    """
    res = median_survival(frame, duration=duration, event=event, group=[group, severity], alpha=alpha)
    res = res.rename(columns={group: "group", severity: "severity"})
    out = res[[*REMEDIATION_COLUMNS, "share_open_at_90d"]].reset_index(drop=True)
    out.attrs["ci_method"] = KM_CI_METHOD
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


def plot_survival(table: pd.DataFrame, *, ax=None):
    """Step curves of a :func:`kaplan_meier` table with their confidence bands; returns the Axes.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`kaplan_meier`.
    ax : matplotlib Axes, optional
        Drawn on a new figure when None. Never shown or saved here.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    for label, curve in table.groupby("group", sort=True):
        line = ax.step(curve["time_days"], curve["survival"], where="post", label=str(label))[0]
        band = (curve["time_days"], curve["ci_low"], curve["ci_high"])
        ax.fill_between(*band, step="post", alpha=0.2, color=line.get_color())
    ax.set_xlabel("days since first detection")
    ax.set_ylabel("share still open")
    ax.set_ylim(0, 1.02)
    ax.legend(title=table.attrs.get("ci_method", "95 % band"))
    return ax
