"""Remediation time of each finding episode (interval-bounded, right-censored) and monthly close rates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.kernels.matching import count_before_in_run
from cyberobs_lib.lifecycle._encode import FINGERPRINT, KNOWN_EXPLOITED, encode
from cyberobs_lib.schema import Audits, Findings

CONVENTIONS = ("midpoint", "upper", "lower")
INTERVAL_COLUMNS = (
    FINGERPRINT,
    Audits.finess,
    Findings.severity,
    Findings.category,
    KNOWN_EXPLOITED,
    "episode",
    "first_seen_audit",
    "origin",
    "last_seen",
    "fixed_lower",
    "fixed_upper",
    "observed",
    "duration_days",
    "duration_lower",
    "duration_upper",
    "n_audits_seen",
    "convention",
)
_DAY = np.timedelta64(1, "D")


def _next_in_scope(enc) -> np.ndarray:
    """For each finding row, the position of the next audit of its establishment covering its host."""
    est = enc.audits["est"].to_numpy()[enc.per_audit]
    order = np.lexsort((enc.per_audit, enc.per_host, est))
    same = np.zeros(len(order), dtype=bool)
    same[:-1] = (est[order][1:] == est[order][:-1]) & (enc.per_host[order][1:] == enc.per_host[order][:-1])
    nxt_sorted = np.full(len(order), -1)
    nxt_sorted[:-1] = np.where(same[:-1], enc.per_audit[order][1:], -1)
    next_audit = np.empty(len(order), dtype=np.int64)
    next_audit[order] = nxt_sorted
    return next_audit[enc.per_row]


def remediation_intervals(
    findings: pd.DataFrame,
    audits: pd.DataFrame,
    *,
    hosts: pd.DataFrame | None = None,
    convention: str = "midpoint",
    use_first_seen: bool = False,
) -> pd.DataFrame:
    """One row per finding episode: when it was first seen, when it was fixed (bounds), or censored.

    Parameters
    ----------
    findings : DataFrame
        ``audit_id``, ``host``, ``fingerprint``; optional ``severity``, ``category``,
        ``known_exploited`` (bool), ``first_seen`` (scanner's first detection date).
    audits : DataFrame
        ``audit_id``, ``finess``, ``audit_date``. Every audit is used (no ``min_days`` skipping).
    hosts : DataFrame or None, keyword-only
        Perimeter (``audit_id``, ``host``); ``None``/empty: hosts with findings (see
        :func:`match_lifecycle`).
    convention : {"midpoint", "upper", "lower"}, keyword-only
        Which point of the fix interval gives ``duration_days`` for fixed episodes.
    use_first_seen : bool, keyword-only
        When true and ``first_seen`` is given and earlier than the first audit where the finding was
        seen, the *first* episode of the finding starts at ``first_seen``.

    Returns
    -------
    DataFrame
        ``fingerprint``, ``finess``, ``severity``, ``category`` (from the first row of the episode;
        NA when absent), ``known_exploited`` (any row of the episode; NA when the column is absent),
        ``episode`` (1 for the first episode of the finding, 2 after a fix and a reappearance...),
        ``first_seen_audit`` (date of the first audit of the episode), ``origin`` (time origin),
        ``last_seen`` (last audit date where seen), ``fixed_lower``/``fixed_upper`` (the fix lies in
        this interval: last audit where seen, first later audit covering its host where it was
        absent; NaT when censored), ``observed`` (True: fixed; False: censored), ``duration_days``
        (float, per convention), ``duration_lower``, ``duration_upper`` (days from origin to the
        interval bounds; both equal the censoring time when censored), ``n_audits_seen``,
        ``convention``. Ordered by (finess, first appearance of the fingerprint, episode).

    Notes
    -----
    An episode is a run of audits where the finding is seen, counting only the audits that cover its
    host: an audit whose perimeter lacks the host says nothing and is stepped over. The episode ends
    with a *fix* at the first later audit that covers the host without the finding, the fix date being
    interval-censored between ``fixed_lower`` and ``fixed_upper``: ``lower`` takes the last audit where
    seen (optimistic), ``upper`` the audit that saw it gone (pessimistic), ``midpoint`` their mean
    (default). When no later audit covers the host (last audit of the establishment, or the host left
    the perimeter), the episode is right-censored at its last audit: ``duration = last_seen −
    origin``, ``observed = False`` (a host that leaves is *not* a fix). Time origin: the first audit of
    the episode (the finding existed earlier, so durations are lower bounds of the true age); with
    ``use_first_seen`` the scanner's own first detection date when earlier (first episode only).

    References
    ----------
    Cyentia Institute & Kenna Security, *Prioritization to Prediction* vol. 3 (2019): remediation
    timelines by survival analysis with right-censoring. Turnbull (1976), JRSS B 38:290–295, for
    interval-censored event times; the midpoint imputation is the usual simplification.

    Examples
    --------
    >>> audits = pd.DataFrame({"audit_id": ["a1", "a2", "a3"], "finess": "750000001",
    ...     "audit_date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-05-01"])})
    >>> findings = pd.DataFrame({"audit_id": ["a1", "a2", "a1", "a2", "a3"],
    ...     "host": ["h1", "h1", "h2", "h2", "h2"], "fingerprint": ["p", "p", "q", "q", "q"]})
    >>> hosts = pd.DataFrame({"audit_id": ["a1", "a1", "a2", "a2", "a3", "a3"],
    ...     "host": ["h1", "h2", "h1", "h2", "h1", "h2"]})
    >>> out = remediation_intervals(findings, audits, hosts=hosts)
    >>> out[["fingerprint", "observed", "duration_lower", "duration_upper", "duration_days"]]
      fingerprint  observed  duration_lower  duration_upper  duration_days
    0           p      True            60.0           121.0           90.5
    1           q     False           121.0           121.0          121.0
    """
    cols, _ = interval_columns(
        findings, audits, hosts=hosts, convention=convention, use_first_seen=use_first_seen
    )
    return pd.DataFrame(
        cols, columns=list(INTERVAL_COLUMNS), copy=False
    )  # object columns not copied into one block


def interval_columns(
    findings: pd.DataFrame,
    audits: pd.DataFrame,
    *,
    hosts: pd.DataFrame | None = None,
    convention: str = "midpoint",
    use_first_seen: bool = False,
    select=None,
) -> tuple[dict, np.ndarray]:
    """The columns of :func:`remediation_intervals` (a dict in ``INTERVAL_COLUMNS`` order), and the
    establishment code of each episode, optionally for some episodes only.

    ``select``: None, or ``select(finess_of_est, est, observed, duration_days)`` returning a boolean
    mask of the episodes to keep, where ``finess_of_est`` is the FINESS of each establishment code (an
    object array) and ``est``, ``observed``, ``duration_days`` are per episode. The text columns are
    taken for the kept episodes only.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    enc = encode(findings, audits, hosts=hosts, min_days=0)
    key, a = enc.ident, enc.audit
    dates = enc.audits[Audits.audit_date].to_numpy().astype("datetime64[ns]")
    ns = _next_in_scope(enc)
    cont = np.zeros(len(a), dtype=bool)
    cont[:-1] = (key[1:] == key[:-1]) & (a[1:] == ns[:-1])
    start = np.ones(len(a), dtype=bool)
    start[1:] = ~cont[:-1]
    s, e = np.flatnonzero(start), np.flatnonzero(~cont)
    observed = ns[e] >= 0
    episode = count_before_in_run(start, key)[s] + 1

    first_audit = dates[a[s]]
    origin = first_audit.copy()
    if use_first_seen and Findings.first_seen in findings.columns:
        fs = pd.to_datetime(findings[Findings.first_seen], errors="coerce").to_numpy()
        fs = fs.astype("datetime64[ns]")[enc.row[s]]
        earlier = (episode == 1) & ~np.isnat(fs) & (fs < first_audit)
        origin[earlier] = fs[earlier]
    last_seen = dates[a[e]]
    upper_date = np.where(observed, dates[np.maximum(ns[e], 0)], np.datetime64("NaT"))
    d_lower = (last_seen - origin) / _DAY
    d_upper = np.where(observed, (upper_date - origin) / _DAY, d_lower)
    duration = {"lower": d_lower, "upper": d_upper, "midpoint": (d_lower + d_upper) / 2}[convention]
    est_of_audit = enc.audits["est"].to_numpy()
    est = est_of_audit[a[s]]
    kev = None
    if KNOWN_EXPLOITED in findings.columns:
        kev = pd.array(findings[KNOWN_EXPLOITED], dtype="boolean").fillna(False).to_numpy(dtype=bool)[enc.row]
        kev = np.maximum.reduceat(kev, s) if len(s) else kev[:0]
    if select is not None:
        first_of_est = (
            np.flatnonzero(np.r_[True, est_of_audit[1:] != est_of_audit[:-1]]) if len(dates) else []
        )
        finess_of_est = enc.audits[Audits.finess].to_numpy()[first_of_est]
        keep = np.asarray(select(finess_of_est, est, observed, duration), dtype=bool)
        s, e, est, episode, observed = s[keep], e[keep], est[keep], episode[keep], observed[keep]
        first_audit, origin, last_seen, upper_date = (
            first_audit[keep],
            origin[keep],
            last_seen[keep],
            upper_date[keep],
        )
        d_lower, d_upper, duration = d_lower[keep], d_upper[keep], duration[keep]
        kev = kev[keep] if kev is not None else None

    rows = enc.row[s]
    out = {
        FINGERPRINT: enc.fingerprints.take(enc.fp[s]),
        Audits.finess: enc.audits[Audits.finess].to_numpy()[a[s]],
    }
    for col in (Findings.severity, Findings.category):
        # Take the episode rows first: a categorical column becomes objects for those rows only.
        out[col] = findings[col].array.take(rows).to_numpy() if col in findings.columns else pd.NA
    if kev is not None:
        out[KNOWN_EXPLOITED] = pd.array(kev, dtype="boolean")
    else:
        out[KNOWN_EXPLOITED] = pd.array([pd.NA] * len(s), dtype="boolean")
    out.update(
        {
            "episode": episode,
            "first_seen_audit": first_audit,
            "origin": origin,
            "last_seen": last_seen,
            "fixed_lower": np.where(observed, last_seen, np.datetime64("NaT")),
            "fixed_upper": upper_date,
            "observed": observed,
            "duration_days": duration,
            "duration_lower": d_lower,
            "duration_upper": d_upper,
            "n_audits_seen": e - s + 1,
            "convention": convention,
        }
    )
    return out, est


def close_rate_monthly(intervals: pd.DataFrame, *, by: list[str] | None = None) -> pd.DataFrame:
    """Monthly close rate: findings fixed during a month among those open at its start.

    Parameters
    ----------
    intervals : DataFrame
        Output of :func:`remediation_intervals` (``origin``, ``duration_days``, ``observed``,
        ``convention``).
    by : list of str or None, keyword-only
        Columns to group by (e.g. ``["severity"]`` or ``["finess"]``); ``None``: one series.

    Returns
    -------
    DataFrame
        One row per group × month with at least one open finding at its start: the ``by`` columns,
        ``month`` (Timestamp of the first day), ``n_open_start``, ``n_closed`` (of those, fixed during
        the month), ``n_censored`` (of those, leaving observation during the month),
        ``close_rate = n_closed / n_open_start``, ``convention`` (of the fix dates).

    Notes
    -----
    An episode ends at ``origin + duration_days`` (its fix date under the intervals' convention, or
    its censoring date). It is *open at the start* of month M when ``origin ≤ start(M) < end``, and
    *closed during* M when observed and ``start(M) < end ≤ start(M+1)``. The numerator is thus a
    subset of the denominator (0 ≤ rate ≤ 1): a finding opened and fixed within one month counts in
    neither. Censored episodes leave the denominator after their censoring date. The fix date is
    itself only known within an audit interval, so monthly rates are smoothed by the convention.

    References
    ----------
    Cyentia Institute & Kenna Security, *Prioritization to Prediction* vol. 4 (2019): monthly close
    rate of open vulnerabilities (6.6 % / 15.2 % / 27.1 % for low / median / high performers).

    Examples
    --------
    >>> iv = pd.DataFrame({"origin": pd.to_datetime(["2024-01-01", "2024-01-15"]),
    ...     "duration_days": [45.0, 60.0], "observed": [True, False], "convention": "midpoint"})
    >>> close_rate_monthly(iv)[["month", "n_open_start", "n_closed", "n_censored", "close_rate"]]
           month  n_open_start  n_closed  n_censored  close_rate
    0 2024-01-01             1         0           0         0.0
    1 2024-02-01             2         1           0         0.5
    2 2024-03-01             1         0           1         0.0
    """
    by = list(by or [])
    missing = [c for c in ["origin", "duration_days", "observed", *by] if c not in intervals.columns]
    if missing:
        raise ValueError(f"intervals: missing column(s) {missing}")
    origin = intervals["origin"].to_numpy().astype("datetime64[D]")
    end = origin + np.ceil(intervals["duration_days"].to_numpy(dtype=float)).astype(np.int64) * _DAY
    first = (origin - _DAY).astype("datetime64[M]").astype(np.int64) + 1
    last = (end - _DAY).astype("datetime64[M]").astype(np.int64)
    observed = intervals["observed"].to_numpy(dtype=bool)
    ok = first <= last
    if by:
        group = intervals.groupby(by, sort=True, dropna=False).ngroup().to_numpy()
        keys = intervals.groupby(by, sort=True, dropna=False).size().index.to_frame(index=False)
    else:
        group, keys = np.zeros(len(intervals), dtype=np.int64), pd.DataFrame(index=[0])
    first, last, group, observed = first[ok], last[ok], group[ok], observed[ok]
    m0 = first.min() if len(first) else 0
    n_months = int(last.max() - m0 + 2) if len(first) else 1
    n_groups = len(keys)
    size = n_groups * n_months
    base = group * n_months
    delta = np.bincount(base + first - m0, minlength=size) - np.bincount(base + last - m0 + 1, minlength=size)
    open_start = np.cumsum(delta.reshape(n_groups, n_months), axis=1).ravel()
    closed = np.bincount((base + last - m0)[observed], minlength=size)
    censored = np.bincount((base + last - m0)[~observed], minlength=size)
    cell = np.flatnonzero(open_start > 0)
    g, m = cell // n_months, cell % n_months
    out = keys.iloc[g].reset_index(drop=True) if by else pd.DataFrame(index=range(len(cell)))
    out["month"] = (m + m0).astype("datetime64[M]").astype("datetime64[ns]")
    out["n_open_start"] = open_start[cell]
    out["n_closed"] = closed[cell]
    out["n_censored"] = censored[cell]
    out["close_rate"] = closed[cell] / open_start[cell]
    conv = intervals["convention"].iloc[0] if "convention" in intervals.columns and len(intervals) else pd.NA
    out["convention"] = conv
    return out
