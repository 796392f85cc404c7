"""Paired tests (one establishment measured twice or more): Wilcoxon, sign, McNemar, Friedman, Cochran's Q.

Every test returns one row in the ``tests.csv`` vocabulary. Inputs are paired by position (arrays)
or by index (two Series indexed by a unit id, e.g. the establishment pseudonym); a pair with a
missing side is dropped and counted, and the count is written in ``variant`` as
``incomplete_dropped=k``. ``variant`` is a ``;``-separated list of ``key=value`` facts whose first
item is the computation (``exact``, ``exact_binomial``, ``asymptotic+cc``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q as _sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from cyberobs_lib.stats._tidy import make_tests_table
from cyberobs_lib.stats.proportions import newcombe_paired_difference

ArrayLike = Sequence[float] | np.ndarray | pd.Series


def _pairs(before: ArrayLike, after: ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    """Align two samples (by index for two Series, else by position); drop and count incomplete pairs."""
    if isinstance(before, pd.Series) and isinstance(after, pd.Series):
        both = pd.concat([before.rename("before"), after.rename("after")], axis=1, join="outer")
    else:
        b, a = np.asarray(before, dtype=object), np.asarray(after, dtype=object)
        if b.shape != a.shape or b.ndim != 1:
            raise ValueError(f"before and after must be 1-D of equal length, got {b.shape} and {a.shape}")
        both = pd.DataFrame({"before": b, "after": a})
    complete = both.notna().all(axis=1)
    kept = both[complete]
    if kept.empty:
        raise ValueError("no complete pair: every pair has a missing value (or the input is empty)")
    return kept["before"].to_numpy(), kept["after"].to_numpy(), int((~complete).sum())


def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(V <= v), v = 0..n(n+1)/2, for the Wilcoxon signed-rank statistic without ties (exact)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return np.cumsum(counts) / 2.0**n


def wilcoxon_paired(
    before: ArrayLike,
    after: ArrayLike,
    *,
    alpha: float = 0.05,
    zero_method: str = "wilcox",
    exact_max_n: int = 50,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "before",
    group_b: str = "after",
) -> pd.DataFrame:
    """Wilcoxon signed-rank test on paired values, with the matched-pairs rank-biserial correlation.

    Parameters
    ----------
    before, after : arrays or Series
        Paired values; differences are ``before - after`` (as R ``wilcox.test(before, after,
        paired = TRUE)``).
    alpha : float, keyword-only
        For the effect-size interval.
    zero_method : {"wilcox", "pratt"}, keyword-only
        ``wilcox`` drops zero differences before ranking (R's convention); ``pratt`` ranks them
        and then drops them (Pratt 1959).
    exact_max_n : int, keyword-only
        Exact null distribution when the number of non-zero differences is below this, and there
        are no ties and no zeros (R's rule, n < 50); otherwise the normal approximation with
        continuity correction and tie-corrected variance.
    study, metric, group_a, group_b : str, keyword-only
        Labels copied into the row.

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``wilcoxon_signed_rank``; ``variant`` =
    ``exact`` or ``asymptotic+cc`` then ``zero_method=..;zeros=..;incomplete_dropped=..``;
    ``n_a`` = ``n_b`` = complete pairs; ``statistic`` = V, the sum of the ranks of the positive
    differences; ``p_value`` two-sided; ``effect_size`` the matched-pairs rank-biserial correlation
    ``(T+ - T-) / (T+ + T-)`` with ``ci_low``/``ci_high`` (``ci_method`` = ``fisher_z``). When no
    difference is non-zero, statistic and p-value are NaN and ``variant`` starts ``undefined``.

    Notes
    -----
    The CI of r uses Fisher's z: ``tanh(atanh(r) +/- z_{1-alpha/2} SE)`` with
    ``SE = sqrt(n(n+1)(2n+1)/6) / (n(n+1)/2)`` (n non-zero differences), as the R package
    ``effectsize`` (``rank_biserial(paired = TRUE)``). p-values come from
    :func:`scipy.stats.wilcoxon`.

    References
    ----------
    Wilcoxon F (1945) Biometrics Bull 1:80-83. Kerby DS (2014) Compr Psychol 3:11.IT.3.1.
    Hollander M, Wolfe DA (1973) Nonparametric Statistical Methods, Wiley.

    Examples
    --------
    >>> x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    >>> y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    >>> r = wilcoxon_paired(x, y)
    >>> print(r.variant.iloc[0])
    exact;zero_method=wilcox;zeros=0;incomplete_dropped=0
    >>> r[["statistic", "p_value", "effect_size"]].round(4)
       statistic  p_value  effect_size
    0       40.0   0.0391       0.7778
    """
    if zero_method not in ("wilcox", "pratt"):
        raise ValueError("zero_method must be 'wilcox' or 'pratt'")
    b, a, dropped = _pairs(before, after)
    d = b.astype(float) - a.astype(float)
    n_pairs = len(d)
    zeros = int((d == 0).sum())
    ranked = d[d != 0] if zero_method == "wilcox" else d
    ranks = stats.rankdata(np.abs(ranked))
    t_plus, t_minus = ranks[ranked > 0].sum(), ranks[ranked < 0].sum()
    n_nz = int((ranked != 0).sum())
    has_ties = len(np.unique(np.abs(ranked))) < len(ranked)
    facts = f"zero_method={zero_method};zeros={zeros};incomplete_dropped={dropped}"
    row = {
        "study": study, "metric": metric, "test": "wilcoxon_signed_rank", "group_a": group_a,
        "group_b": group_b, "n_a": n_pairs, "n_b": n_pairs, "effect_size_kind": "rank_biserial_paired",
    }  # fmt: skip
    if n_nz == 0:
        return make_tests_table([{**row, "variant": f"undefined_all_differences_zero;{facts}"}])
    exact = n_nz < exact_max_n and not has_ties and zeros == 0
    res = stats.wilcoxon(
        d, zero_method=zero_method, correction=not exact, method="exact" if exact else "approx"
    )
    r = (t_plus - t_minus) / (t_plus + t_minus)
    se = np.sqrt(n_nz * (n_nz + 1) * (2 * n_nz + 1) / 6) / (n_nz * (n_nz + 1) / 2)
    z = stats.norm.ppf(1 - alpha / 2)
    zr = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    row |= {
        "variant": f"{'exact' if exact else 'asymptotic+cc'};{facts}", "statistic": float(t_plus),
        "p_value": float(res.pvalue), "effect_size": float(r), "ci_low": float(np.tanh(zr - z * se)),
        "ci_high": float(np.tanh(zr + z * se)), "ci_method": "fisher_z",
    }  # fmt: skip
    return make_tests_table([row])


def hodges_lehmann_paired(
    before: ArrayLike, after: ArrayLike, *, alpha: float = 0.05, max_n: int = 5000
) -> pd.DataFrame:
    """Hodges-Lehmann estimate (pseudo-median of ``before - after``) with its distribution-free CI.

    Parameters
    ----------
    before, after : arrays or Series
        Paired values, aligned as in :func:`wilcoxon_paired`.
    alpha : float, keyword-only
    max_n : int, keyword-only
        Refuse more than this many non-zero differences (the Walsh averages take O(n^2) memory).

    Returns
    -------
    DataFrame, one row: ``n`` non-zero differences, ``value`` the median of the Walsh averages,
    ``ci_low``, ``ci_high``, ``ci_method`` = ``walsh_exact`` (exact signed-rank quantile, n < 50
    and no ties) or ``walsh_normal`` (normal-approximation quantile).

    Notes
    -----
    As R ``wilcox.test(..., paired = TRUE, conf.int = TRUE)``, zero differences are dropped first.
    Limits are the order statistics ``W_(q)`` and ``W_(M+1-q)`` of the M = n(n+1)/2 sorted Walsh
    averages, with q the ``alpha/2`` quantile of the signed-rank distribution (at least 1).
    In the normal case q = floor(n(n+1)/4 - z sqrt(n(n+1)(2n+1)/24)), which is the textbook
    approximation, not R's root-finding interval.

    References
    ----------
    Hodges JL, Lehmann EL (1963) Ann Math Stat 34:598-611. Hollander M, Wolfe DA (1999)
    Nonparametric Statistical Methods, 2nd ed., section 3.2.
    """
    b, a, _ = _pairs(before, after)
    d = b.astype(float) - a.astype(float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        raise ValueError("no non-zero paired difference: the pseudo-median is undefined")
    if n > max_n:
        raise ValueError(f"{n} differences exceed max_n={max_n} (Walsh averages are O(n^2))")
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2)
    m = len(walsh)
    if n < 50 and len(np.unique(np.abs(d))) == n:
        q, method = int(np.searchsorted(_signed_rank_cdf(n), alpha / 2 - 1e-12)), "walsh_exact"
    else:
        z = stats.norm.ppf(1 - alpha / 2)
        q, method = (
            int(np.floor(n * (n + 1) / 4 - z * np.sqrt(n * (n + 1) * (2 * n + 1) / 24))),
            "walsh_normal",
        )
    q = max(q, 1)
    return pd.DataFrame(
        {
            "n": [n],
            "value": [float(np.median(walsh))],
            "ci_low": [walsh[q - 1]],
            "ci_high": [walsh[m - q]],
            "ci_method": [method],
        }
    )


def sign_test(
    before: ArrayLike,
    after: ArrayLike,
    *,
    alpha: float = 0.05,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "before",
    group_b: str = "after",
) -> pd.DataFrame:
    """Exact sign test on paired values (binomial test of the positive differences, zeros dropped).

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``sign``, ``variant`` =
    ``exact_binomial;zeros=..;incomplete_dropped=..``, ``n_a`` = ``n_b`` = complete pairs,
    ``statistic`` = number of positive ``before - after`` differences, ``p_value`` two-sided
    (:func:`scipy.stats.binomtest`, p = 0.5), ``effect_size`` the share of positive differences
    among non-zero ones with its Clopper-Pearson interval (``ci_method`` = ``clopper_pearson``).

    References
    ----------
    Conover WJ (1999) Practical Nonparametric Statistics, 3rd ed., section 3.4.

    Examples
    --------
    >>> sign_test([3, 5, 2, 8, 7], [1, 2, 2, 4, 9])[["statistic", "p_value", "effect_size"]].round(4)
       statistic  p_value  effect_size
    0        3.0    0.625         0.75
    """
    b, a, dropped = _pairs(before, after)
    d = b.astype(float) - a.astype(float)
    pos, n_nz, zeros = int((d > 0).sum()), int((d != 0).sum()), int((d == 0).sum())
    row = {
        "study": study, "metric": metric, "test": "sign", "group_a": group_a, "group_b": group_b,
        "n_a": len(d), "n_b": len(d), "effect_size_kind": "share_positive_differences",
        "variant": f"exact_binomial;zeros={zeros};incomplete_dropped={dropped}",
    }  # fmt: skip
    if n_nz == 0:
        row["variant"] = "undefined_all_differences_zero;" + row["variant"].split(";", 1)[1]
        return make_tests_table([row])
    res = stats.binomtest(pos, n_nz, 0.5)
    ci = res.proportion_ci(confidence_level=1 - alpha, method="exact")
    row |= {
        "statistic": float(pos), "p_value": float(res.pvalue), "effect_size": pos / n_nz,
        "ci_low": float(ci.low), "ci_high": float(ci.high), "ci_method": "clopper_pearson",
    }  # fmt: skip
    return make_tests_table([row])


def _as_bool(values: np.ndarray, name: str) -> np.ndarray:
    ok = pd.Series(values).isin([True, False, 0, 1])
    if not ok.all():
        raise ValueError(
            f"{name} must hold booleans or 0/1, got {sorted(set(map(str, values[~ok.to_numpy()])))}"
        )
    return values.astype(bool)


def mcnemar_test(
    before: ArrayLike,
    after: ArrayLike,
    *,
    exact_threshold: int = 25,
    alpha: float = 0.05,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "before",
    group_b: str = "after",
) -> pd.DataFrame:
    """McNemar test of paired binary outcomes, with the paired difference of proportions and its CI.

    Parameters
    ----------
    before, after : boolean arrays or Series (``True``/``False`` or 1/0; missing = incomplete pair)
    exact_threshold : int, keyword-only
        Exact binomial test when the discordant pairs b + c are fewer than this; otherwise the
        chi-square with continuity correction ``(|b - c| - 1)^2 / (b + c)``, 1 df.
    alpha : float, keyword-only
        For the Newcombe interval.

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``mcnemar``; ``variant`` =
    ``exact_binomial`` or ``asymptotic+cc`` then ``;incomplete_dropped=k``; ``n_a`` = ``n_b`` =
    complete pairs; ``statistic`` (min(b, c) for the exact test, chi-square otherwise); ``df``
    (1, or NaN for exact); ``p_value``; ``effect_size`` = p_before - p_after = (b - c) / n
    (``paired_difference_of_proportions``) with the Newcombe (1998) method-10 interval
    (``ci_method`` = ``newcombe_paired_score_phi_cc``).

    Notes
    -----
    b = before true and after false, c = before false and after true. The exact p-value is
    ``min(1, 2 P(X <= min(b, c)))``, X ~ Bin(b + c, 1/2) (statsmodels ``mcnemar``); b + c = 0 gives
    p = 1.

    References
    ----------
    McNemar Q (1947) Psychometrika 12:153-157. Agresti A (2002) Categorical Data Analysis,
    2nd ed., section 10.1. Newcombe RG (1998) Stat Med 17:2635-2650.

    Examples
    --------
    >>> before = [True] * 944 + [False] * 656
    >>> after = [True] * 794 + [False] * 150 + [True] * 86 + [False] * 570
    >>> mcnemar_test(before, after)[["variant", "statistic", "effect_size"]].round(4)
                                  variant  statistic  effect_size
    0  asymptotic+cc;incomplete_dropped=0    16.8178         0.04
    """
    b_raw, a_raw, dropped = _pairs(before, after)
    bb, aa = _as_bool(b_raw, "before"), _as_bool(a_raw, "after")
    a11 = int((bb & aa).sum())
    b10 = int((bb & ~aa).sum())
    c01 = int((~bb & aa).sum())
    d00 = int((~bb & ~aa).sum())
    exact = b10 + c01 < exact_threshold
    res = _sm_mcnemar([[a11, b10], [c01, d00]], exact=exact, correction=True)
    ci = newcombe_paired_difference(a11, b10, c01, d00, alpha=alpha).iloc[0]
    n = len(bb)
    row = {
        "study": study, "metric": metric, "test": "mcnemar", "group_a": group_a, "group_b": group_b,
        "variant": f"{'exact_binomial' if exact else 'asymptotic+cc'};incomplete_dropped={dropped}",
        "n_a": n, "n_b": n, "statistic": float(res.statistic) if b10 + c01 > 0 or exact else np.nan,
        "df": np.nan if exact else 1.0, "p_value": min(1.0, float(res.pvalue)),
        "effect_size": float(ci["value"]), "effect_size_kind": "paired_difference_of_proportions",
        "ci_low": float(ci["ci_low"]), "ci_high": float(ci["ci_high"]), "ci_method": ci["ci_method"],
    }  # fmt: skip
    return make_tests_table([row])


def _complete_rows(frame: pd.DataFrame, min_columns: int, name: str) -> tuple[pd.DataFrame, int]:
    if not isinstance(frame, pd.DataFrame) or frame.shape[1] < min_columns:
        raise ValueError(f"{name} needs a wide DataFrame with at least {min_columns} columns (conditions)")
    complete = frame.notna().all(axis=1)
    if not complete.any():
        raise ValueError(f"{name}: no complete row (block) to analyse")
    return frame[complete], int((~complete).sum())


def friedman_test(
    frame: pd.DataFrame, *, study: str | None = None, metric: str | None = None
) -> pd.DataFrame:
    """Friedman rank test for k >= 3 related samples (rows = blocks, columns = conditions).

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``friedman``, ``variant`` =
    ``asymptotic_chi2+ties;incomplete_dropped=k``, ``group_a`` = the column labels joined by ``|``,
    ``n_a`` = complete blocks, ``statistic`` (tie-corrected chi-square, as R ``friedman.test``),
    ``df`` = k - 1, ``p_value``, ``effect_size`` Kendall's W = statistic / (n (k - 1)) (no CI).
    Statistic and p-value are NaN when every block is constant.

    References
    ----------
    Friedman M (1937) JASA 32:675-701. Hollander M, Wolfe DA (1973) p. 140.
    """
    kept, dropped = _complete_rows(frame, 3, "friedman_test")
    n, k = kept.shape
    values = kept.to_numpy(dtype=float)
    if np.all(values == values[:, :1]):
        stat, p = np.nan, np.nan
    else:
        stat, p = stats.friedmanchisquare(*values.T)
    row = {
        "study": study, "metric": metric, "test": "friedman",
        "variant": f"asymptotic_chi2+ties;incomplete_dropped={dropped}",
        "group_a": "|".join(map(str, kept.columns)), "n_a": n, "statistic": stat, "df": float(k - 1),
        "p_value": p, "effect_size": stat / (n * (k - 1)), "effect_size_kind": "kendalls_w",
    }  # fmt: skip
    return make_tests_table([row])


def cochran_q(frame: pd.DataFrame, *, study: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """Cochran's Q test for k >= 2 related binary outcomes (rows = blocks, columns = conditions).

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``cochran_q``, ``variant`` =
    ``asymptotic_chi2;incomplete_dropped=k``, ``group_a`` = column labels joined by ``|``,
    ``n_a`` = complete blocks, ``statistic`` Q, ``df`` = k - 1, ``p_value``; no effect size.
    Q and p are NaN when every block is constant (all true or all false).

    Notes
    -----
    ``Q = (k-1) [k sum C_j^2 - N^2] / (k N - sum R_i^2)`` (statsmodels ``cochrans_q``). With
    k = 2 it equals the McNemar chi-square without continuity correction.

    References
    ----------
    Cochran WG (1950) Biometrika 37:256-266.
    """
    kept, dropped = _complete_rows(frame, 2, "cochran_q")
    values = np.column_stack([_as_bool(kept[c].to_numpy(), str(c)) for c in kept.columns]).astype(int)
    n, k = values.shape
    rows = values.sum(axis=1)
    if np.all((rows == 0) | (rows == k)):
        stat, p = np.nan, np.nan
    else:
        res = _sm_cochrans_q(values)
        stat, p = float(res.statistic), float(res.pvalue)
    row = {
        "study": study, "metric": metric, "test": "cochran_q",
        "variant": f"asymptotic_chi2;incomplete_dropped={dropped}",
        "group_a": "|".join(map(str, kept.columns)), "n_a": n, "statistic": stat, "df": float(k - 1),
        "p_value": p,
    }  # fmt: skip
    return make_tests_table([row])
