"""Compare a continuous or ordinal measure across k groups: Kruskal–Wallis, Dunn, Cliff's delta.

One helper (:func:`to_long_format`) turns every accepted input shape into one long frame
(``group``, ``value``) before any statistics run, as scikit-posthocs does; the statistics only
ever see that shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

from cyberobs_lib.stats._tidy import make_tests_table

GROUP = "group"
VALUE = "value"


def to_long_format(
    data: pd.DataFrame | Mapping[str, Sequence[float]],
    *,
    value: str | None = None,
    group: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """Turn a long frame, a wide frame or a mapping of group → values into one long frame.

    Parameters
    ----------
    data : DataFrame or mapping
        Long frame (give ``value`` and ``group``), wide frame (one column per group; leave both
        ``None``) or ``{group: values}``.
    value, group : str, optional
        Column names in a long frame.

    Returns
    -------
    (DataFrame, int)
        Columns ``group`` (str) and ``value`` (float), NaN values dropped, input order kept; and the
        number of rows dropped because the value or the group was missing.

    Examples
    --------
    >>> long, dropped = to_long_format({"a": [1.0, None], "b": [2.0]})
    >>> long.to_dict("list"), dropped
    ({'group': ['a', 'b'], 'value': [1.0, 2.0]}, 1)
    """
    if isinstance(data, pd.DataFrame) and (value is not None or group is not None):
        if value is None or group is None:
            raise ValueError("a long frame needs both `value` and `group` column names")
        missing = [c for c in (value, group) if c not in data.columns]
        if missing:
            raise KeyError(f"columns not in frame: {missing}")
        long = pd.DataFrame({GROUP: data[group].to_numpy(), VALUE: data[value].to_numpy()})
    elif isinstance(data, pd.DataFrame):
        long = data.melt(var_name=GROUP, value_name=VALUE)
    elif isinstance(data, Mapping):
        long = pd.DataFrame([(g, v) for g, values in data.items() for v in values], columns=[GROUP, VALUE])
    else:
        raise TypeError(f"unsupported input type {type(data).__name__}")
    long[VALUE] = pd.to_numeric(long[VALUE], errors="raise").astype(float)
    keep = long[VALUE].notna() & long[GROUP].notna()
    long = long.loc[keep].reset_index(drop=True)
    long[GROUP] = long[GROUP].astype(str)
    return long, int((~keep).sum())


def _kruskal_h(value_codes: np.ndarray, n_values: int, codes: np.ndarray, k: int) -> np.ndarray:
    """Tie-corrected H for each row of ``value_codes`` (shape (b, N), order-preserving integer
    codes of the values, < ``n_values``); ``codes`` are the group indices of the N columns.

    Mid-ranks come from the counts of each distinct value (no sort per replicate): the mid-rank of
    value v is (#values ≤ v) − (count(v) − 1)/2, and the tie term is Σ(count³ − count).
    """
    b, n_total = value_codes.shape
    flat = (value_codes + n_values * np.arange(b)[:, None]).ravel()
    counts = np.bincount(flat, minlength=b * n_values).reshape(b, n_values).astype(float)
    mid_rank = counts.cumsum(axis=1) - (counts - 1) / 2
    ranks = np.take_along_axis(mid_rank, value_codes, axis=1)
    rank_sums = ranks @ np.eye(k)[codes]  # (b, k)
    sizes = np.bincount(codes, minlength=k)
    h = 12.0 / (n_total * (n_total + 1)) * (rank_sums**2 / sizes).sum(axis=1) - 3 * (n_total + 1)
    correction = 1.0 - (counts**3 - counts).sum(axis=1) / (n_total**3 - n_total)
    return np.where(correction > 0, h / np.where(correction > 0, correction, 1.0), 0.0)


def _bootstrap_epsilon2(long: pd.DataFrame, *, n_boot: int, alpha: float, seed: int) -> tuple[float, float]:
    """Percentile CI of epsilon² by resampling within each group (group sizes fixed)."""
    if n_boot <= 0:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    codes, _ = pd.factorize(long[GROUP], sort=True)
    k = codes.max() + 1
    value_codes, uniques = pd.factorize(long[VALUE], sort=True)
    n_total = len(value_codes)
    positions = [np.flatnonzero(codes == g) for g in range(k)]
    order_codes = np.concatenate([np.full(len(p), g) for g, p in enumerate(positions)])
    chunk = max(1, int(4_000_000 // (n_total + len(uniques))))
    eps = []
    for start in range(0, n_boot, chunk):  # chunks of replicates keep memory bounded
        b = min(chunk, n_boot - start)
        draws = np.concatenate([p[rng.integers(0, len(p), size=(b, len(p)))] for p in positions], axis=1)
        eps.append(_kruskal_h(value_codes[draws], len(uniques), order_codes, k) / (n_total - 1))
    eps = np.concatenate(eps)
    lo, hi = np.quantile(eps, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def cliffs_delta(x: np.ndarray, y: np.ndarray, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Cliff's delta of ``x`` over ``y`` with Cliff's (1993) asymmetric confidence interval.

    Parameters
    ----------
    x, y : array-like
        Two samples without NaN.
    alpha : float
        1 − confidence level.

    Returns
    -------
    (delta, ci_low, ci_high)

    Notes
    -----
    delta = (#(x > y) − #(x < y)) / (m n), d_ij = sign(x_i − y_j). Variance: Cliff's (1993)
    unbiased estimate s² = [n² Σ(d_i. − d)² + m² Σ(d_.j − d)² − ΣΣ(d_ij − d)²] / [m n (m−1)(n−1)]
    (when it is ≤ 0, the consistent estimate of Cliff 1996 is used instead). Interval: Cliff's
    asymmetric one, (d − d³ ∓ q s √((1 − d²)² + q² s²)) / (1 − d² + q² s²), with q the Student t
    quantile on m + n − 2 df (Feng & Cliff 2004). This is R ``effsize::cliff.delta``'s default.
    When both estimates are 0 (|d| = 1: complete separation) the interval is NaN, not [d, d].
    Computed from sorted samples (O((m + n) log)), never from the m × n dominance matrix.

    References
    ----------
    Cliff N. (1993) Dominance statistics. Psychological Bulletin 114(3):494–509.
    Cliff N. (1996) Ordinal methods for behavioral data analysis. Erlbaum. Feng D., Cliff N. (2004) J. Modern Applied Statistical Methods 3(2):322–332.

    Examples
    --------
    >>> round(cliffs_delta([1, 2, 3], [1, 2, 3])[0], 3)
    0.0
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    m, n = len(x), len(y)
    ys, xs = np.sort(y), np.sort(x)
    # row means d_i. (each x against all y) and column means d_.j (all x against each y)
    di = (np.searchsorted(ys, x, "left") - (n - np.searchsorted(ys, x, "right"))) / n
    dj = ((m - np.searchsorted(xs, y, "right")) - np.searchsorted(xs, y, "left")) / m
    d = float(di.mean())
    if m < 2 or n < 2:
        return d, np.nan, np.nan
    n_ties = np.sum(np.searchsorted(ys, x, "right") - np.searchsorted(ys, x, "left"))
    ssr = (m * n - n_ties) - m * n * d**2  # ΣΣ (d_ij − d)²: d_ij² is 1 off ties, 0 on ties
    ss_i, ss_j = np.sum((di - d) ** 2), np.sum((dj - d) ** 2)
    s2 = (n**2 * ss_i + m**2 * ss_j - ssr) / (m * n * (m - 1) * (n - 1))
    if s2 <= 0:  # the unbiased estimate can be negative: fall back to the consistent one
        s2 = (ss_i / (m - 1) * (n - 1) + ss_j / (n - 1) * (m - 1) + ssr / ((m - 1) * (n - 1))) / (m * n)
    s = np.sqrt(s2)
    z = stats.t.ppf(1 - alpha / 2, m + n - 2)
    if s2 <= 0:  # complete separation (|d| = 1) or constant samples: no variance estimate
        return d, np.nan, np.nan
    root = z * s * np.sqrt((1 - d**2) ** 2 + z**2 * s2)
    den = 1 - d**2 + z**2 * s2
    return d, float((d - d**3 - root) / den), float((d - d**3 + root) / den)


def compare_groups(
    frame: pd.DataFrame | Mapping[str, Sequence[float]],
    *,
    value: str | None = None,
    group: str | None = None,
    alpha: float = 0.05,
    study: str = "",
    metric: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Kruskal–Wallis across groups, then Dunn pairwise tests with Cliff's delta per pair.

    Parameters
    ----------
    frame : DataFrame or mapping
        Any shape accepted by :func:`to_long_format` (long frame with ``value``/``group``,
        wide frame, or ``{group: values}``).
    value, group : str, optional
        Column names for a long frame.
    alpha : float
        1 − confidence level of every interval.
    study, metric : str
        Copied into the result (``metric`` defaults to ``value``).
    n_boot, seed : int
        Bootstrap replicates for the epsilon² interval (0 skips it) and their seed.

    Returns
    -------
    DataFrame
        ``tests.csv`` vocabulary (:data:`cyberobs_lib.schema.TESTS_COLUMNS`). Row 0: ``test`` =
        ``kruskal_wallis`` (``group_a`` = ``"all"``, ``n_a`` = N, ``n_b`` empty (k = ``df`` + 1), ``statistic`` = H,
        ``df`` = k − 1, ``effect_size`` = epsilon² with its bootstrap CI). Then one ``dunn`` row per
        pair (``statistic`` = z, positive when ``group_a`` ranks higher; ``p_adjusted`` Holm;
        ``effect_size`` = Cliff's delta of a over b with its CI). ``attrs["n_dropped_nan"]`` counts
        the rows dropped for a missing value or group.

    Notes
    -----
    H is scipy's, divided by the tie correction 1 − Σ(t³ − t)/(N³ − N) (variant says so); p from
    χ²(k − 1). epsilon² = H / ((N² − 1)/(N + 1)) = H/(N − 1) (Tomczak & Tomczak 2014); its
    percentile interval resamples within each group (stratified, group sizes fixed). Dunn's z uses
    mean ranks of the pooled sample with the tie-corrected variance; p-values come from
    ``scikit_posthocs.posthoc_dunn`` (raw and Holm). Cliff's delta: see :func:`cliffs_delta`.

    References
    ----------
    Kruskal W.H., Wallis W.A. (1952) JASA 47:583–621. Dunn O.J. (1964) Technometrics 6:241–252.
    Tomczak M., Tomczak E. (2014) Trends in Sport Sciences 1(21):19–25. Cliff N. (1993).

    Examples
    --------
    >>> out = compare_groups({"x": [2.9, 3.0, 2.5, 2.6, 3.2], "y": [3.8, 2.7, 4.0, 2.4],
    ...                       "z": [2.8, 3.4, 3.7, 2.2, 2.0]}, n_boot=0)
    >>> float(round(out.loc[0, "statistic"], 5)), float(round(out.loc[0, "p_value"], 2))
    (0.77143, 0.68)
    """
    long, n_dropped = to_long_format(frame, value=value, group=group)
    sizes = long.groupby(GROUP, sort=True).size()
    if len(sizes) < 2:
        raise ValueError(f"need at least two groups with data, got {list(sizes.index)}")
    if (sizes < 2).any():
        raise ValueError(f"groups with fewer than 2 values: {list(sizes.index[sizes < 2])}")
    samples = {g: long.loc[long[GROUP] == g, VALUE].to_numpy() for g in sizes.index}
    n_total, k = len(long), len(sizes)
    if long[VALUE].nunique() < 2:
        raise ValueError("all values are identical: Kruskal–Wallis is undefined")
    h, p = stats.kruskal(*samples.values())
    eps_lo, eps_hi = _bootstrap_epsilon2(long, n_boot=n_boot, alpha=alpha, seed=seed)
    metric = metric if metric is not None else (value or VALUE)
    rows = [
        {
            "study": study,
            "metric": metric,
            "test": "kruskal_wallis",
            "variant": f"asymptotic chi2, tie-corrected; k={k} groups",
            "group_a": "all",
            "n_a": n_total,
            "n_b": None,
            "statistic": h,
            "df": k - 1,
            "p_value": p,
            "effect_size": h / ((n_total**2 - 1) / (n_total + 1)),
            "effect_size_kind": "epsilon_squared",
            "ci_low": eps_lo,
            "ci_high": eps_hi,
            "ci_method": f"bootstrap-percentile (stratified, n_boot={n_boot}, seed={seed})"
            if n_boot > 0
            else None,
        }
    ]
    # Dunn: scikit-posthocs p-values, z from mean ranks with the tie-corrected variance
    raw = sp.posthoc_dunn(long, val_col=VALUE, group_col=GROUP, p_adjust=None)
    holm = sp.posthoc_dunn(long, val_col=VALUE, group_col=GROUP, p_adjust="holm")
    ranks = pd.Series(stats.rankdata(long[VALUE]), index=long.index)
    mean_rank = ranks.groupby(long[GROUP]).mean()
    _, t = np.unique(long[VALUE], return_counts=True)
    tie = (t.astype(float) ** 3 - t).sum() / (12 * (n_total - 1))
    for a, b in combinations(sizes.index, 2):
        se = np.sqrt((n_total * (n_total + 1) / 12 - tie) * (1 / sizes[a] + 1 / sizes[b]))
        delta, d_lo, d_hi = cliffs_delta(samples[a], samples[b], alpha=alpha)
        rows.append(
            {
                "study": study,
                "metric": metric,
                "test": "dunn",
                "variant": "asymptotic z, tie-corrected",
                "group_a": a,
                "group_b": b,
                "n_a": int(sizes[a]),
                "n_b": int(sizes[b]),
                "statistic": (mean_rank[a] - mean_rank[b]) / se,
                "p_value": raw.loc[a, b],
                "p_adjusted": holm.loc[a, b],
                "adjust_method": "holm",
                "effect_size": delta,
                "effect_size_kind": "cliffs_delta",
                "ci_low": d_lo,
                "ci_high": d_hi,
                "ci_method": "cliff-asymmetric (unbiased variance, t quantile; Feng & Cliff 2004)",
            }
        )
    out = make_tests_table(rows)
    out.attrs["n_dropped_nan"] = n_dropped
    return out
