"""Compare a continuous or ordinal measure between two or k groups: rank tests with exact p for small samples.

* :func:`mann_whitney` — Wilcoxon–Mann–Whitney rank-sum test of two samples: exact p below a documented size
  (R ``wilcox.test``'s rule), exact *conditional* p with ties, asymptotic with continuity correction above;
* :func:`brunner_munzel` — Brunner–Munzel test of stochastic equality (unequal variances allowed), with the
  interval of P(a > b) + ½ P(a = b); a studentized permutation p for small samples;
* :func:`compare_groups` — Kruskal–Wallis across k groups (permutation p for small groups), then every pair
  (Mann–Whitney by default, Brunner–Munzel or Dunn on request) with Cliff's delta, Holm-adjusted. A group
  with fewer than 2 values does not stop the others: its pairs are rows saying ``not estimable: n < 2``.

Direction: every pairwise effect is of ``group_a`` over ``group_b`` (positive: ``group_a`` tends to larger
values); the Mann–Whitney ``statistic`` is U of ``group_a`` (R's W). ``variant`` states how each p was
computed (``exact``, ``exact_conditional``, ``permutation_exact``, ``permutation_monte_carlo``,
``asymptotic`` or ``asymptotic+cc``), then ``;key=value`` facts (alternative, ties, why it was chosen).

One helper (:func:`to_long_format`) turns every accepted input shape into one long frame
(``group``, ``value``) before any statistics run, as scikit-posthocs does; the statistics only
ever see that shape.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from math import comb
from typing import Literal

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats
from statsmodels.stats.nonparametric import rank_compare_2indep

from cyberobs_lib.stats._tidy import make_tests_table
from cyberobs_lib.stats.multiplicity import adjust_pvalues

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


ALTERNATIVES = ("two-sided", "less", "greater")
#: Exact p (R ``wilcox.test``'s rule) when both samples have fewer than this many values.
EXACT_BELOW = 50
#: Kruskal–Wallis: permutation p when the smallest group has fewer values than this.
KRUSKAL_PERMUTATION_BELOW = 5
#: Brunner–Munzel: studentized permutation p when a sample has fewer values than this.
BRUNNER_MUNZEL_PERMUTATION_BELOW = 10
#: A group is compared only with at least this many values.
MIN_GROUP_SIZE = 2
#: ``variant`` of a comparison with a group of fewer than :data:`MIN_GROUP_SIZE` values.
NOT_ESTIMABLE = "undefined: not estimable: n < 2"
PAIRWISE_TESTS = ("mann_whitney", "brunner_munzel", "dunn")
CLIFF_CI = "cliff-asymmetric (unbiased variance, t quantile; Feng & Cliff 2004)"

Method = Literal["auto", "exact", "asymptotic"]


def _sample(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """A 1-D float sample; missing values refused (drop them first, and say how many)."""
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} has {int(np.isnan(arr).sum())} missing value(s): drop them first")
    return arr


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def _subset_sum_counts(scores: np.ndarray, size: int) -> np.ndarray:
    """``counts[s]``: how many subsets of ``size`` of the integer ``scores`` sum to ``s``.

    The shift algorithm of Streitberg & Röhmel (1986) written as a dynamic program over the items:
    after each item w, ``c[j, s] += c[j - 1, s - w]``. Float counts (C(98, 49) < 1e29): exact enough.
    """
    total = int(scores.sum())
    counts = np.zeros((size + 1, total + 1))
    counts[0, 0] = 1.0
    for k, w in enumerate(scores):
        top = min(k + 1, size)
        counts[1 : top + 1, w:] = counts[1 : top + 1, w:] + counts[:top, : total + 1 - w]
    return counts[size]


def _exact_conditional_p(x: np.ndarray, y: np.ndarray, alternative: str) -> float:
    """Exact p of the rank-sum test given the ties: every split of the pooled mid-ranks equally likely.

    Two-sided: P(|T − E T| ≥ |t − E T|) (as StatXact and R ``coin::wilcox_test(distribution = "exact")``);
    without ties this is twice the one-sided p of R ``wilcox.test(exact = TRUE)``.
    """
    pooled = np.concatenate([x, y])
    n_total, m = len(pooled), len(x)
    scores = np.rint(2 * stats.rankdata(pooled)).astype(np.int64)  # doubled mid-ranks are integers
    size = min(m, n_total - m)
    counts = _subset_sum_counts(scores, size)
    sums = np.arange(len(counts))
    if size != m:  # the distribution of y's sum gives x's: T_x = total − T_y
        sums = int(scores.sum()) - sums
    prob = counts / counts.sum()
    observed, centre = int(scores[:m].sum()), m * (n_total + 1)
    if alternative == "greater":
        return float(prob[sums >= observed].sum())
    if alternative == "less":
        return float(prob[sums <= observed].sum())
    return float(min(1.0, prob[np.abs(sums - centre) >= abs(observed - centre)].sum()))


def mann_whitney(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    alternative: str = "two-sided",
    method: Method = "auto",
    correct: bool = True,
    exact_below: int = EXACT_BELOW,
    alpha: float = 0.05,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "x",
    group_b: str = "y",
) -> pd.DataFrame:
    """Wilcoxon–Mann–Whitney rank-sum test of ``x`` against ``y``, with Cliff's delta and its interval.

    Parameters
    ----------
    x, y : array-like
        The two samples (no missing value).
    alternative : {"two-sided", "less", "greater"}
        ``greater``: ``x`` tends to larger values than ``y`` (as R ``wilcox.test(x, y, alternative =
        "greater")``).
    method : {"auto", "exact", "asymptotic"}
        ``auto`` (default): exact when both samples have fewer than ``exact_below`` values (R's rule),
        asymptotic otherwise. ``exact`` without ties is R ``wilcox.test(exact = TRUE)``; with ties it is
        the exact *conditional* p (the permutation distribution of the mid-rank sums, as R
        ``coin::wilcox_test(distribution = "exact")``), never a silent normal approximation.
        ``asymptotic``: normal approximation with the tie-corrected variance.
    correct : bool
        Continuity correction of the normal approximation (R's default, True).
    exact_below : int
        The size of ``auto``'s rule (50, as R).
    alpha : float
        1 − confidence level of the Cliff's delta interval.
    study, metric, group_a, group_b : str
        Copied into the row.

    Returns
    -------
    DataFrame
        One row in the ``tests.csv`` vocabulary: ``test`` = ``mann_whitney``; ``statistic`` = U of ``x``
        (the number of pairs with x > y, ties counting ½: R's W); ``df`` empty; ``p_value``;
        ``effect_size`` = Cliff's delta of x over y (= the rank-biserial correlation 2U/(mn) − 1,
        positive when x tends larger) with :func:`cliffs_delta`'s interval. ``variant``: the computation
        (``exact``, ``exact_conditional``, ``asymptotic+cc`` or ``asymptotic``) then
        ``;alternative=…;ties=k`` (k = values sharing a rank beyond the first) ``;choice=…`` (``caller``
        or the ``auto`` rule that applied). All values equal: ``variant`` ``undefined: all values equal``.

    Notes
    -----
    Exact p without ties and asymptotic p: :func:`scipy.stats.mannwhitneyu` (``method="exact"`` or
    ``"asymptotic"``, ``use_continuity=correct``), which gives R's values. Exact conditional p with
    ties: the distribution of the sum of x's doubled mid-ranks over the C(m + n, m) equally likely
    splits, by the shift algorithm (Streitberg & Röhmel 1986); two-sided p = P(|T − E T| ≥ |t − E T|).

    References
    ----------
    Mann H.B., Whitney D.R. (1947) Ann. Math. Stat. 18:50–60. Hollander M., Wolfe D.A. (1999)
    Nonparametric Statistical Methods, 2nd ed., §4.1. Streitberg B., Röhmel J. (1986) Statistical
    Software Newsletter 12:10–17. Hothorn T. et al. (2008) J. Stat. Softw. 28(8) (R package coin).

    Examples
    --------
    R ``?wilcox.test`` (Hollander & Wolfe 1973, p. 69): W = 35, p-value = 0.2544.

    >>> x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    >>> y = [1.15, 0.88, 0.90, 0.74, 1.21]
    >>> r = mann_whitney(x, y).iloc[0]
    >>> float(r.statistic), round(float(r.p_value), 4), r.variant
    (35.0, 0.2544, 'exact;alternative=two-sided;ties=0;choice=auto(both n<50)')
    """
    _check_choice("alternative", alternative, ALTERNATIVES)
    _check_choice("method", method, ("auto", "exact", "asymptotic"))
    x, y = _sample(group_a, x), _sample(group_b, y)
    m, n = len(x), len(y)
    pooled = np.concatenate([x, y])
    ties = int(len(pooled) - np.unique(pooled).size)
    row = {"study": study, "metric": metric, "test": "mann_whitney", "group_a": group_a, "group_b": group_b,
           "n_a": m, "n_b": n, "effect_size_kind": "cliffs_delta"}  # fmt: skip
    if ties == len(pooled) - 1:
        return make_tests_table([{**row, "variant": "undefined: all values equal"}])
    if method == "auto":
        exact = m < exact_below and n < exact_below
        choice = f"auto(both n<{exact_below})" if exact else f"auto(n>={exact_below})"
    else:
        exact, choice = method == "exact", "caller"
    u = float(stats.mannwhitneyu(x, y, method="asymptotic").statistic)
    if exact and not ties:
        kind, p = "exact", stats.mannwhitneyu(x, y, alternative=alternative, method="exact").pvalue
    elif exact:
        kind, p = "exact_conditional", _exact_conditional_p(x, y, alternative)
    else:
        res = stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic", use_continuity=correct)
        kind, p = ("asymptotic+cc" if correct else "asymptotic"), res.pvalue
    delta, low, high = cliffs_delta(x, y, alpha=alpha)
    facts = f"alternative={alternative};ties={ties};choice={choice}"
    row |= {"variant": f"{kind};{facts}", "statistic": u, "p_value": float(p), "effect_size": delta,
            "ci_low": low, "ci_high": high, "ci_method": CLIFF_CI}  # fmt: skip
    return make_tests_table([row])


def _brunner_munzel_statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Brunner–Munzel statistic oriented a over b (positive: a tends larger), vectorised (scipy's, negated).

    A split without overlap has a zero variance: ±inf, written ±1e300 so that scipy's tolerance on ties of
    the statistic stays finite (as extreme as can be; no warning).
    """
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(
            -stats.brunnermunzel(a, b, axis=axis).statistic, nan=np.nan, posinf=1e300, neginf=-1e300
        )


def brunner_munzel(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    alternative: str = "two-sided",
    method: Literal["auto", "asymptotic", "permutation"] = "auto",
    n_resamples: int = 20_000,
    seed: int = 0,
    alpha: float = 0.05,
    effect: Literal["probability", "cliffs_delta"] = "probability",
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "x",
    group_b: str = "y",
) -> pd.DataFrame:
    """Brunner–Munzel test of stochastic equality of ``x`` and ``y`` (unequal spreads allowed).

    Parameters
    ----------
    x, y : array-like
        The two samples (no missing value).
    alternative : {"two-sided", "less", "greater"}
        ``greater``: P(x > y) + ½ P(x = y) > ½ (``x`` tends larger).
    method : {"auto", "asymptotic", "permutation"}
        ``asymptotic``: Student t with Welch–Satterthwaite-type df (Brunner & Munzel 2000).
        ``permutation``: the studentized permutation test of Neubert & Brunner (2007) — every split
        when there are at most ``n_resamples`` of them (``permutation_exact``), else ``n_resamples``
        seeded random ones (``permutation_monte_carlo``). ``auto`` (default): permutation when a sample
        has fewer than 10 values or the t statistic is undefined (no overlap: a zero variance),
        asymptotic otherwise.
    n_resamples, seed : int
        Permutation settings.
    alpha : float
        1 − confidence level of the interval.
    effect : {"probability", "cliffs_delta"}
        Effect reported: p = P(x > y) + ½ P(x = y) (``stochastic_superiority``; > ½: x tends larger)
        or Cliff's delta 2p − 1 with the same interval mapped (as :func:`compare_groups` reports).
    study, metric, group_a, group_b : str
        Copied into the row.

    Returns
    -------
    DataFrame
        One row in the ``tests.csv`` vocabulary: ``test`` = ``brunner_munzel``; ``statistic`` = the
        Brunner–Munzel statistic oriented x over y (positive: x tends larger — R ``lawstat`` prints the
        opposite sign, oriented y over x); ``df`` its t degrees of freedom (empty for a permutation p);
        ``p_value``; ``effect_size`` with ``ci_low``/``ci_high`` (``ci_method`` ``brunner-munzel t``:
        p ± t(df) · SE, two-sided, clipped to [0, 1] (R ``lawstat`` does not clip), empty when the
        variance is 0). ``variant``: ``asymptotic_t``,
        ``permutation_exact`` or ``permutation_monte_carlo`` then ``;alternative=…;choice=…``.

    Notes
    -----
    Statistic, df, p and interval: :func:`statsmodels.stats.nonparametric.rank_compare_2indep`
    (``prob1`` = P(x > y) + ½ P(x = y)); permutation p: :func:`scipy.stats.permutation_test` on
    :func:`scipy.stats.brunnermunzel`'s statistic.

    References
    ----------
    Brunner E., Munzel U. (2000) Biometrical Journal 42:17–25. Neubert K., Brunner E. (2007) Comput.
    Stat. Data Anal. 51:5192–5204.

    Examples
    --------
    R ``lawstat::brunner.munzel.test`` pain scores (Y, N): statistic 3.1375 (y over x), df = 17.683,
    p = 0.005786, estimate P(X<Y)+.5P(X=Y) = 0.788961, so P(x > y) + ½ P(x = y) = 0.211039 here.

    >>> Y = [1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1]
    >>> N = [3, 3, 4, 3, 1, 2, 3, 1, 1, 5, 4]
    >>> r = brunner_munzel(Y, N).iloc[0]
    >>> round(float(r.statistic), 4), round(float(r.df), 3), round(float(r.p_value), 6)
    (-3.1375, 17.683, 0.005786)
    """
    _check_choice("alternative", alternative, ALTERNATIVES)
    _check_choice("method", method, ("auto", "asymptotic", "permutation"))
    _check_choice("effect", effect, ("probability", "cliffs_delta"))
    x, y = _sample(group_a, x), _sample(group_b, y)
    m, n = len(x), len(y)
    row = {"study": study, "metric": metric, "test": "brunner_munzel", "group_a": group_a, "group_b": group_b,
           "n_a": m, "n_b": n}  # fmt: skip
    pooled = np.concatenate([x, y])
    if np.unique(pooled).size == 1:
        return make_tests_table([{**row, "variant": "undefined: all values equal"}])
    if m < 2 or n < 2:
        return make_tests_table([{**row, "variant": NOT_ESTIMABLE}])
    with np.errstate(divide="ignore", invalid="ignore"):
        res = rank_compare_2indep(x, y, use_t=True)
    separated = not np.isfinite(res.statistic) or res.var_prob <= 0
    if method == "auto":
        small = min(m, n) < BRUNNER_MUNZEL_PERMUTATION_BELOW
        permute, choice = small or separated, (
            f"auto(n<{BRUNNER_MUNZEL_PERMUTATION_BELOW})" if small
            else "auto(t undefined: zero variance)" if separated
            else f"auto(both n>={BRUNNER_MUNZEL_PERMUTATION_BELOW})"
        )  # fmt: skip
    else:
        permute, choice = method == "permutation", "caller"
    prob = float(res.prob1)
    if separated:
        low = high = np.nan
    else:
        low, high = (float(np.clip(v, 0.0, 1.0)) for v in res.conf_int(alpha=alpha))
    if permute:
        splits = comb(m + n, m)
        perm = stats.permutation_test(
            (x, y), _brunner_munzel_statistic, permutation_type="independent", vectorized=True,
            n_resamples=n_resamples, alternative=alternative, rng=np.random.default_rng(seed),
        )  # fmt: skip
        kind = (
            f"permutation_exact;splits={splits}" if splits <= n_resamples
            else f"permutation_monte_carlo;n_resamples={n_resamples};seed={seed}"
        )  # fmt: skip
        p, df = float(perm.pvalue), np.nan
    elif separated:
        return make_tests_table(
            [{**row, "variant": f"undefined: no overlap (zero variance);choice={choice}"}]
        )
    else:
        side = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
        p, df = float(res.test_prob_superior(value=0.5, alternative=side).pvalue), float(res.df)
        kind = "asymptotic_t"
    if effect == "probability":
        value, kind_name, ci = prob, "stochastic_superiority", (low, high)
    else:
        value, kind_name, ci = 2 * prob - 1, "cliffs_delta", (2 * low - 1, 2 * high - 1)
    row |= {"variant": f"{kind};alternative={alternative};choice={choice}", "statistic": float(res.statistic),
            "df": df, "p_value": p, "effect_size": value, "effect_size_kind": kind_name, "ci_low": ci[0],
            "ci_high": ci[1], "ci_method": "brunner-munzel t" if effect == "probability"
            else "brunner-munzel t interval of P(a>b)+0.5P(a=b), as 2p-1"}  # fmt: skip
    return make_tests_table([row])


def _multinomial(sizes: Sequence[int]) -> int:
    """Number of distinct assignments of sum(sizes) values to groups of these sizes."""
    out, seen = 1, 0
    for size in sizes:
        seen += int(size)
        out *= comb(seen, int(size))
    return out


def _kruskal_permutation_p(long: pd.DataFrame, *, n_resamples: int, seed: int) -> tuple[float, str]:
    """Permutation p of Kruskal–Wallis H: P(H* ≥ H) over the assignments of the pooled mid-ranks.

    H is an increasing function of Σ R_g²/n_g once the ranks are fixed (the tie correction does not
    change under permutation), so that sum is the statistic. Every assignment when there are at most
    ``n_resamples`` of them (:func:`scipy.stats.permutation_test`), else ``n_resamples`` seeded random
    ones, p = (hits + 1)/(n_resamples + 1) (Phipson & Smyth 2010).
    """
    codes, _ = pd.factorize(long[GROUP], sort=True)
    ranks = stats.rankdata(long[VALUE].to_numpy())
    sizes = np.bincount(codes)
    k, n_total = len(sizes), len(ranks)
    observed = float((np.bincount(codes, weights=ranks, minlength=k) ** 2 / sizes).sum())
    assignments = _multinomial(sizes)
    if assignments <= n_resamples:
        samples = tuple(ranks[codes == g] for g in range(k))

        def statistic(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
            return sum(g.sum(axis=axis) ** 2 / g.shape[axis] for g in groups)

        res = stats.permutation_test(
            samples, statistic, permutation_type="independent", vectorized=True,
            n_resamples=n_resamples, alternative="greater",
        )  # fmt: skip
        return float(res.pvalue), f"permutation_exact;assignments={assignments}"
    rng = np.random.default_rng(seed)
    tolerance = observed * 1e-12
    hits, chunk = 0, max(1, 2_000_000 // n_total)
    for start in range(0, n_resamples, chunk):  # chunks of replicates keep memory bounded
        b = min(chunk, n_resamples - start)
        permuted = rng.permuted(np.tile(codes, (b, 1)), axis=1)
        sums = np.bincount((permuted + k * np.arange(b)[:, None]).ravel(), weights=np.tile(ranks, b),
                           minlength=b * k).reshape(b, k)  # fmt: skip
        hits += int(((sums**2 / sizes).sum(axis=1) >= observed - tolerance).sum())
    p = (hits + 1) / (n_resamples + 1)
    return float(p), f"permutation_monte_carlo;n_resamples={n_resamples};seed={seed}"


def _kruskal_row(
    long: pd.DataFrame, *, method: str, n_resamples: int, seed: int, left_out: int
) -> dict[str, object]:
    """The Kruskal–Wallis row of :func:`compare_groups` over the groups of ``long`` (each n ≥ 2)."""
    sizes = long.groupby(GROUP, sort=True).size()
    k, n_total = len(sizes), len(long)
    note = f";left_out_n<{MIN_GROUP_SIZE}={left_out}" if left_out else ""
    row: dict[str, object] = {"test": "kruskal_wallis", "group_a": "all", "n_a": n_total, "n_b": None}
    if k < 2:
        return {**row, "variant": f"{NOT_ESTIMABLE} in all groups but {k}{note}"}
    if long[VALUE].nunique() < 2:
        return {**row, "variant": f"undefined: all values equal{note}"}
    h, p = stats.kruskal(*(long.loc[long[GROUP] == g, VALUE].to_numpy() for g in sizes.index))
    if method == "auto":
        permute = sizes.min() < KRUSKAL_PERMUTATION_BELOW
        choice = f"auto(smallest n{'<' if permute else '>='}{KRUSKAL_PERMUTATION_BELOW})"
    else:
        permute, choice = method == "exact", "caller"
    if permute:
        p, kind = _kruskal_permutation_p(long, n_resamples=n_resamples, seed=seed)
        df = np.nan
    else:
        kind, df = "asymptotic chi2, tie-corrected", k - 1
    return {**row, "variant": f"{kind};k={k} groups;choice={choice}{note}", "statistic": h, "df": df,
            "p_value": p, "effect_size": h / (n_total - 1), "effect_size_kind": "epsilon_squared"}  # fmt: skip


def _dunn_rows(long: pd.DataFrame, pairs: list[tuple[str, str]], alpha: float) -> list[dict[str, object]]:
    """Dunn's z (pooled mean ranks, tie-corrected variance) and p (scikit-posthocs, raw and Holm)."""
    sizes = long.groupby(GROUP, sort=True).size()
    n_total = len(long)
    raw = sp.posthoc_dunn(long, val_col=VALUE, group_col=GROUP, p_adjust=None)
    holm = sp.posthoc_dunn(long, val_col=VALUE, group_col=GROUP, p_adjust="holm")
    mean_rank = pd.Series(stats.rankdata(long[VALUE]), index=long.index).groupby(long[GROUP]).mean()
    _, t = np.unique(long[VALUE], return_counts=True)
    tie = (t.astype(float) ** 3 - t).sum() / (12 * (n_total - 1))
    rows = []
    for a, b in pairs:
        se = np.sqrt((n_total * (n_total + 1) / 12 - tie) * (1 / sizes[a] + 1 / sizes[b]))
        values_a = long.loc[long[GROUP] == a, VALUE].to_numpy()
        delta, d_lo, d_hi = cliffs_delta(values_a, long.loc[long[GROUP] == b, VALUE].to_numpy(), alpha=alpha)
        rows.append(
            {"test": "dunn", "variant": "asymptotic z, tie-corrected", "group_a": a, "group_b": b,
             "n_a": int(sizes[a]), "n_b": int(sizes[b]), "statistic": (mean_rank[a] - mean_rank[b]) / se,
             "p_value": raw.loc[a, b], "p_adjusted": holm.loc[a, b], "adjust_method": "holm",
             "effect_size": delta, "effect_size_kind": "cliffs_delta", "ci_low": d_lo, "ci_high": d_hi,
             "ci_method": CLIFF_CI}
        )  # fmt: skip
    return rows


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
    pairwise: Literal["mann_whitney", "brunner_munzel", "dunn"] = "mann_whitney",
    method: Method = "auto",
    exact_below: int = EXACT_BELOW,
    correct: bool = True,
    n_resamples: int = 20_000,
    reference: str | None = None,
) -> pd.DataFrame:
    """Kruskal–Wallis across groups, then every pair of groups with Cliff's delta, Holm-adjusted.

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
        Bootstrap replicates for the epsilon² interval (0 skips it) and their seed (also the seed of
        every Monte Carlo permutation p).
    pairwise : {"mann_whitney", "brunner_munzel", "dunn"}
        Test of each pair: :func:`mann_whitney` on the pair's two samples (default, R
        ``pairwise.wilcox.test``), :func:`brunner_munzel` (unequal spreads) or Dunn's z on the ranks of
        all groups (asymptotic only).
    method : {"auto", "exact", "asymptotic"}
        How p-values are computed. ``auto`` (default): Kruskal–Wallis by permutation when the
        smallest group has fewer than 5 values, by χ² otherwise; Mann–Whitney exact when both groups
        have fewer than ``exact_below`` values (exact conditional with ties), asymptotic otherwise;
        Brunner–Munzel by permutation when a group has fewer than 10 values. ``exact``: permutation /
        exact everywhere; ``asymptotic``: χ² and normal/t approximations everywhere (R
        ``kruskal.test``, ``wilcox.test(exact = FALSE)``).
    exact_below, correct : int, bool
        Mann–Whitney size rule and continuity correction (see :func:`mann_whitney`).
    n_resamples : int
        Permutations: every assignment when there are at most this many, else this many random ones.
    reference : str, optional
        A group put in ``group_b`` of each pair that includes it (effects read "group vs reference").

    Returns
    -------
    DataFrame
        ``tests.csv`` vocabulary (:data:`cyberobs_lib.schema.TESTS_COLUMNS`). Row 0: ``test`` =
        ``kruskal_wallis`` over the groups with at least 2 values (``group_a`` = ``"all"``, ``n_a`` =
        their N, ``n_b`` empty; ``variant`` says ``k=…`` groups, how p was computed and how many
        groups were left out; ``statistic`` = H; ``df`` = k − 1 for the χ² p, empty for a
        permutation p; ``effect_size`` = epsilon² with its bootstrap CI). Then one row per pair
        (``test`` = ``pairwise``; ``statistic`` = U of ``group_a`` for Mann–Whitney, the
        Brunner–Munzel statistic or Dunn's z, both positive when ``group_a`` ranks higher;
        ``p_adjusted`` Holm over the pairs (``adjust_method`` ``holm``); ``effect_size`` = Cliff's
        delta of a over b with its interval). A pair with a group of fewer than 2 values is a row
        whose ``variant`` is ``undefined: not estimable: n < 2`` (no p, no effect); the other pairs
        go on. ``attrs["n_dropped_nan"]`` counts the rows dropped for a missing value or group.

    Raises
    ------
    ValueError
        Fewer than two groups, every value identical (no test is defined), an unknown option, or
        ``method="exact"`` with Dunn's test.

    Notes
    -----
    H is scipy's, divided by the tie correction 1 − Σ(t³ − t)/(N³ − N). Its permutation p compares
    Σ R_g²/n_g over assignments of the pooled mid-ranks (exact enumeration when feasible); with two
    groups it equals the two-sided exact (conditional) Mann–Whitney p. The χ² approximation is poor
    for groups of fewer than 5 (the exact tables of Kruskal & Wallis 1952 and Conover 1999, Table A8,
    cover groups of up to 5), hence the ``auto`` rule. epsilon² = H / ((N² − 1)/(N + 1)) = H/(N − 1)
    (Tomczak & Tomczak 2014); its percentile interval resamples within each group. Dunn's z uses
    mean ranks of the pooled sample with the tie-corrected variance; p-values from
    ``scikit_posthocs.posthoc_dunn``. Cliff's delta: see :func:`cliffs_delta`.

    References
    ----------
    Kruskal W.H., Wallis W.A. (1952) JASA 47:583–621. Conover W.J. (1999) Practical Nonparametric
    Statistics, 3rd ed., §5.2. Dunn O.J. (1964) Technometrics 6:241–252. Tomczak M., Tomczak E.
    (2014) Trends in Sport Sciences 1(21):19–25. Cliff N. (1993). Holm S. (1979) Scand. J. Stat.
    6:65–70.

    Examples
    --------
    >>> out = compare_groups({"x": [2.9, 3.0, 2.5, 2.6, 3.2], "y": [3.8, 2.7, 4.0, 2.4],
    ...                       "z": [2.8, 3.4, 3.7, 2.2, 2.0]}, n_boot=0, method="asymptotic")
    >>> float(round(out.loc[0, "statistic"], 5)), float(round(out.loc[0, "p_value"], 2))
    (0.77143, 0.68)
    """
    _check_choice("pairwise", pairwise, PAIRWISE_TESTS)
    _check_choice("method", method, ("auto", "exact", "asymptotic"))
    if pairwise == "dunn" and method == "exact":
        raise ValueError("Dunn's test is asymptotic only: use pairwise='mann_whitney' for exact p-values")
    long, n_dropped = to_long_format(frame, value=value, group=group)
    sizes = long.groupby(GROUP, sort=True).size()
    if len(sizes) < 2:
        raise ValueError(f"need at least two groups with data, got {list(sizes.index)}")
    if long[VALUE].nunique() < 2:
        raise ValueError("all values are identical: no rank test is defined")
    if reference is not None and reference not in sizes.index:
        raise ValueError(f"reference {reference!r} is not a group with data: {list(sizes.index)}")
    metric = metric if metric is not None else (value or VALUE)
    estimable = sizes.index[sizes >= MIN_GROUP_SIZE]
    used = long[long[GROUP].isin(estimable)].reset_index(drop=True)
    omnibus = _kruskal_row(
        used, method=method, n_resamples=n_resamples, seed=seed, left_out=len(sizes) - len(estimable)
    )
    if pd.notna(omnibus.get("p_value")):
        eps_lo, eps_hi = _bootstrap_epsilon2(used, n_boot=n_boot, alpha=alpha, seed=seed)
        omnibus |= {
            "ci_low": eps_lo,
            "ci_high": eps_hi,
            "ci_method": (
                f"bootstrap-percentile (stratified, n_boot={n_boot}, seed={seed})" if n_boot > 0 else None
            ),
        }
    order = sorted(sizes.index, key=lambda g: (g == reference, g))  # the reference last: always group_b
    pairs = list(combinations(order, 2))
    ok = [(a, b) for a, b in pairs if a in estimable and b in estimable]
    samples = {g: used.loc[used[GROUP] == g, VALUE].to_numpy() for g in estimable}
    if pairwise == "dunn":
        done = {(r["group_a"], r["group_b"]): r for r in _dunn_rows(used, ok, alpha)} if len(ok) else {}
    else:
        done = {}
        for a, b in ok:
            if pairwise == "mann_whitney":
                res = mann_whitney(samples[a], samples[b], method=method, correct=correct,
                                   exact_below=exact_below, alpha=alpha, group_a=a, group_b=b)  # fmt: skip
            else:
                res = brunner_munzel(samples[a], samples[b], method={"exact": "permutation"}.get(method, method),
                                     n_resamples=n_resamples, seed=seed, alpha=alpha, effect="cliffs_delta",
                                     group_a=a, group_b=b)  # fmt: skip
            done[(a, b)] = res.iloc[0].to_dict()
    rows = [{"study": study, "metric": metric, **omnibus}]
    pair_rows = []
    for a, b in pairs:
        row = done.get((a, b)) or {"test": pairwise, "variant": NOT_ESTIMABLE, "group_a": a, "group_b": b,
                                   "n_a": int(sizes[a]), "n_b": int(sizes[b])}  # fmt: skip
        pair_rows.append({**row, "study": study, "metric": metric})
    pair_table = make_tests_table(pair_rows)
    if pairwise != "dunn" and len(pair_table):
        pair_table = adjust_pvalues(pair_table, method="holm")
    pair_table["adjust_method"] = "holm"
    out = make_tests_table([*rows, *pair_table.to_dict("records")])
    out.attrs["n_dropped_nan"] = n_dropped
    return out
