"""Paired tests (one establishment measured twice or more): Wilcoxon, sign, McNemar, Friedman, Cochran's Q.

Sign convention
---------------
Every paired effect, difference and one-sided count of this module is a **change = after − before**
(``group_b`` − ``group_a``; follow-up − baseline in the studies). A negative change means fewer (lower
counts, fewer units in the state) at the second measurement: an improvement for vulnerability counts and
"bad" binary states. The Wilcoxon matched-pairs rank-biserial r, the sign-test effect and the McNemar
difference of proportions are all negative when the second measurement is lower, and every row says so
in words in the column ``effect_direction`` (:func:`change_direction`, e.g.
``follow-up − baseline (negative: fewer)``). Non-directional effects (Kendall's W) say ``none: ...``.

Rows
----
Every test returns one row in the ``tests.csv`` vocabulary plus ``effect_direction`` (appended after the
vocabulary by :func:`tidy_tests`). Inputs are paired by position (arrays) or by index (two Series
indexed by a unit id, e.g. the establishment pseudonym); a pair with a missing side is dropped and
counted in ``variant`` as ``incomplete_dropped=k``. ``variant`` is a ``;``-separated list: its first item
is what was computed (``exact``, ``exact_conditional``, ``asymptotic+cc``, ``midp``, ...), then
``key=value`` facts, among which ``statistic=...`` names the quantity in the ``statistic`` column.
No method is switched silently: a rule that chooses (``method="auto"``) says so (``method=auto``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q as _sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from cyberobs_lib.schema import TESTS_COLUMNS
from cyberobs_lib.stats._tidy import make_tests_table
from cyberobs_lib.stats.proportions import newcombe_paired_difference

ArrayLike = Sequence[float] | np.ndarray | pd.Series

#: Column of every tests table of this module: the sign convention of ``effect_size`` in words.
DIRECTION_COLUMN = "effect_direction"
#: ``effect_direction`` of a test without effect size (Cochran's Q, log-rank).
NO_DIRECTION = "none: no effect size"
#: ``effect_direction`` of Friedman's Kendall's W.
UNSIGNED_W = "none: Kendall's W is not signed (0 = no agreement, 1 = same order in every block)"
#: ``method`` of :func:`wilcoxon_paired`.
WILCOXON_METHODS = ("auto", "exact", "exact_conditional", "asymptotic")
#: ``ci_method`` of :func:`wilcoxon_paired` (interval of the rank-biserial correlation).
RANK_BISERIAL_CI_METHODS = ("score", "fisher_z")
#: ``variant`` of :func:`mcnemar_test`.
MCNEMAR_VARIANTS = ("midp", "exact", "asymptotic", "asymptotic_cc")
#: Largest number of differences whose 2^n sign patterns :func:`wilcoxon_paired` enumerates
#: (``method="exact_conditional"``); about 5 s at 16.
MAX_CONDITIONAL_N = 16


def change_direction(group_a: str = "before", group_b: str = "after", *, of: str = "values") -> str:
    """The sign convention of a paired effect, in words (the ``effect_direction`` column).

    Parameters
    ----------
    group_a, group_b : str
        First and second measurement (``baseline``, ``follow-up``).
    of : {"values", "shares"}, keyword-only
        Differences of values (counts, rates: Wilcoxon, sign test) or of shares (McNemar).

    Examples
    --------
    >>> change_direction("baseline", "follow-up")
    'follow-up − baseline (negative: fewer)'
    >>> change_direction("baseline", "follow-up", of="shares")
    'share follow-up − share baseline (negative: fewer)'
    """
    if of == "values":
        return f"{group_b} − {group_a} (negative: fewer)"
    if of == "shares":
        return f"share {group_b} − share {group_a} (negative: fewer)"
    raise ValueError(f"of must be 'values' or 'shares', got {of!r}")


def tidy_tests(rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """:func:`~cyberobs_lib.stats._tidy.make_tests_table` plus the ``effect_direction`` column.

    The column is appended after the ``tests.csv`` vocabulary (empty where a row does not give it); when
    the vocabulary itself holds it, it is passed through. Other unknown keys raise ``KeyError``.

    >>> t = tidy_tests([{"test": "sign", "effect_direction": "after − before (negative: fewer)"}, {}])
    >>> t.columns[-1], t["effect_direction"].tolist()
    ('effect_direction', ['after − before (negative: fewer)', None])
    """
    rows = [dict(row) for row in rows]
    if DIRECTION_COLUMN in TESTS_COLUMNS:
        return make_tests_table(rows)
    directions = [_text_or_none(row.pop(DIRECTION_COLUMN, None)) for row in rows]
    frame = make_tests_table(rows)
    frame[DIRECTION_COLUMN] = pd.Series(directions, index=frame.index, dtype=object)
    return frame


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


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


def _changes(before: ArrayLike, after: ArrayLike) -> tuple[np.ndarray, int]:
    """``after - before`` of the complete pairs (the module's sign convention) and the pairs dropped."""
    b, a, dropped = _pairs(before, after)
    try:
        return a.astype(float) - b.astype(float), dropped
    except (TypeError, ValueError) as exc:
        raise ValueError(f"paired values must be numbers: {exc}") from None


def _wilcoxon_method(
    method: str, *, n_nz: int, n_ranked: int, zeros: int, ties: int, exact_max_n: int, conditional_max_n: int
) -> str:
    """The computation :func:`wilcoxon_paired` runs for ``method`` (the first item of ``variant``);
    ``n_ranked`` differences enter the ranking (the non-zero ones, or all of them with Pratt's zeros)."""
    if method == "auto":
        if zeros == 0 and ties == 0 and n_nz < exact_max_n:
            return "exact"
        return "exact_conditional" if n_ranked <= conditional_max_n else "asymptotic"
    if method == "exact" and (zeros or ties):
        raise ValueError(
            f"method='exact' needs distinct non-zero differences ({zeros} zero(s), {ties} tied difference(s)): "
            "use 'exact_conditional' (permutation, small n) or 'asymptotic'"
        )
    if method == "exact_conditional" and n_ranked > MAX_CONDITIONAL_N:
        raise ValueError(
            f"method='exact_conditional' enumerates 2^n sign patterns: {n_ranked} differences exceed "
            f"{MAX_CONDITIONAL_N}; use 'asymptotic'"
        )
    return method


def rank_biserial_interval(
    r: float, n: int, *, alpha: float = 0.05, method: str = "score"
) -> tuple[float, float]:
    """Confidence interval of the matched-pairs rank-biserial correlation ``r`` of ``n`` non-zero differences.

    Parameters
    ----------
    r : float
        ``(T+ - T-) / (T+ + T-)``, in [-1, 1].
    n : int
        Number of ranked non-zero differences.
    alpha : float, keyword-only
    method : {"score", "fisher_z"}, keyword-only
        ``score``: Wilson-type score interval. With ``s0 = sqrt(n(n+1)(2n+1)/6) / (n(n+1)/2)`` the
        standard error of r under the null (Kerby 2014; King, Rosopa & Minium 2011), the variance of r is
        taken as ``s0^2 (1 - rho^2)`` (``4 theta (1 - theta)`` with ``theta = (1 + rho)/2``, the share of
        positive Walsh averages, as for a proportion) and the limits are the roots of
        ``(r - rho)^2 = z^2 s0^2 (1 - rho^2)``. It never collapses: with r = 1 the lower limit is
        ``(1 - z^2 s0^2) / (1 + z^2 s0^2)`` (0.30 for n = 9). ``fisher_z``: ``tanh(atanh(r) +/- z s0)``,
        the interval of the R package ``effectsize`` (``rank_biserial(paired = TRUE)``); it collapses to
        [1, 1] (or [-1, -1]) when every difference has the same sign.

    Returns
    -------
    (low, high)

    Notes
    -----
    Coverage measured by simulation (tests/test_stats_paired_coverage.py; normal and shifted exponential
    differences, n = 5 to 40, effects from 0 to the boundary, 20 000 samples each): ``score`` 0.94-1.00,
    ``fisher_z`` 0.72-0.94 away from the boundary and 0 when r = 1 is likely. The score interval is
    conservative for large effects.

    References
    ----------
    Wilson EB (1927) JASA 22:209-212. Kerby DS (2014) Compr Psychol 3:11.IT.3.1. King BM, Rosopa PJ,
    Minium EW (2011) Statistical Reasoning in the Behavioral Sciences, 6th ed., Wiley. Newcombe RG (2006)
    Stat Med 25:559-573 (score-type intervals for Mann-Whitney-type effect sizes).

    Examples
    --------
    R ``effectsize::rank_biserial(x, y, paired = TRUE)`` on the depression data of ``?wilcox.test``
    prints r = 0.78, 95 % CI [0.30, 0.94] (Fisher z):

    >>> [round(v, 2) for v in rank_biserial_interval(35 / 45, 9, method="fisher_z")]
    [0.3, 0.94]
    >>> [round(v, 2) for v in rank_biserial_interval(1.0, 9)]
    [0.3, 1.0]
    """
    if method not in RANK_BISERIAL_CI_METHODS:
        raise ValueError(f"method must be one of {RANK_BISERIAL_CI_METHODS}, got {method!r}")
    if not -1.0 <= r <= 1.0 or n < 1:
        raise ValueError(f"r must be in [-1, 1] and n >= 1, got r={r}, n={n}")
    s0 = np.sqrt(n * (n + 1) * (2 * n + 1) / 6) / (n * (n + 1) / 2)
    z = stats.norm.ppf(1 - alpha / 2)
    if method == "fisher_z":
        zr = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
        return float(np.tanh(zr - z * s0)), float(np.tanh(zr + z * s0))
    q = (z * s0) ** 2
    root = np.sqrt(q * (1 + q - r * r))
    return float(max(-1.0, (r - root) / (1 + q))), float(min(1.0, (r + root) / (1 + q)))


def wilcoxon_paired(
    before: ArrayLike,
    after: ArrayLike,
    *,
    alpha: float = 0.05,
    zero_method: str = "wilcox",
    method: str = "auto",
    correction: bool = True,
    ci_method: str = "score",
    exact_max_n: int = 50,
    conditional_max_n: int = 13,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "before",
    group_b: str = "after",
) -> pd.DataFrame:
    """Wilcoxon signed-rank test of the changes ``after - before``, with the matched-pairs rank-biserial r.

    Parameters
    ----------
    before, after : arrays or Series
        Paired values. The changes are ``after - before`` (module sign convention): the row is that of
        R ``wilcox.test(after, before, paired = TRUE)``.
    alpha : float, keyword-only
        For the effect-size interval.
    zero_method : {"wilcox", "pratt"}, keyword-only
        ``wilcox`` drops zero changes before ranking (R's convention); ``pratt`` ranks them and then
        drops their ranks (Pratt 1959).
    method : {"auto", "exact", "exact_conditional", "asymptotic"}, keyword-only
        ``exact``: exact null distribution of V (distinct non-zero changes only, else ValueError), as R
        ``wilcox.test(exact = TRUE)``. ``exact_conditional``: exact permutation distribution given the
        observed ranks (mid-ranks, zeros), enumerating the 2^n sign patterns (:class:`scipy.stats.
        PermutationMethod`; at most :data:`MAX_CONDITIONAL_N` differences), as ``coin::wilcoxsign_test(
        distribution = "exact")``. ``asymptotic``: normal approximation with tie-corrected variance and,
        when ``correction``, the continuity correction (R ``wilcox.test(exact = FALSE, correct = ...)``).
        ``auto`` (default): ``exact`` when there are no ties and no zeros and fewer than ``exact_max_n``
        changes (R's rule); otherwise ``exact_conditional`` up to ``conditional_max_n`` differences;
        otherwise ``asymptotic``. ``variant`` starts with the computation chosen and says ``method=auto``.
    correction : bool, keyword-only
        Continuity correction of the normal approximation (R's default, True).
    ci_method : {"score", "fisher_z"}, keyword-only
        Interval of r (:func:`rank_biserial_interval`); ``score`` never collapses when every change has
        the same sign.
    exact_max_n, conditional_max_n : int, keyword-only
        Thresholds of ``method="auto"``.
    study, metric, group_a, group_b : str, keyword-only
        Labels copied into the row.

    Returns
    -------
    DataFrame (tests vocabulary + ``effect_direction``), one row: ``test`` = ``wilcoxon_signed_rank``;
    ``variant`` = ``exact`` / ``exact_conditional`` / ``asymptotic+cc`` / ``asymptotic`` then
    ``method=..;zero_method=..;zeros=..;ties=..;incomplete_dropped=..;statistic=V`` (``ties``: number of
    non-zero changes sharing their absolute value with another); ``n_a`` = ``n_b`` = complete pairs;
    ``statistic`` = V, the sum of the ranks of the positive changes (R's V); ``p_value`` two-sided;
    ``effect_size`` = r = ``(T+ - T-) / (T+ + T-)`` (negative: lower after), ``ci_low``/``ci_high``,
    ``ci_method`` (``score_wilson_null_se`` or ``fisher_z``); ``effect_direction``. When no change is
    non-zero, statistic and p-value are NaN and ``variant`` starts ``undefined_all_differences_zero``.

    References
    ----------
    Wilcoxon F (1945) Biometrics Bull 1:80-83. Pratt JW (1959) JASA 54:655-667. Kerby DS (2014) Compr
    Psychol 3:11.IT.3.1. Hollander M, Wolfe DA (1973) Nonparametric Statistical Methods, Wiley, p. 29.

    Examples
    --------
    Hollander & Wolfe (1973) p. 29, R ``?wilcox.test``: ``wilcox.test(y - x, alternative = "less")``
    gives V = 5, p = 0.01953 (two-sided 0.03906); the second visit is lower, r is negative.

    >>> x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    >>> y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    >>> r = wilcoxon_paired(x, y, group_a="first", group_b="second")
    >>> print(r.variant.iloc[0])
    exact;method=auto;zero_method=wilcox;zeros=0;ties=0;incomplete_dropped=0;statistic=V
    >>> r[["statistic", "p_value", "effect_size"]].round(4)
       statistic  p_value  effect_size
    0        5.0   0.0391      -0.7778
    >>> print(r.effect_direction.iloc[0])
    second − first (negative: fewer)
    """
    if zero_method not in ("wilcox", "pratt"):
        raise ValueError("zero_method must be 'wilcox' or 'pratt'")
    if method not in WILCOXON_METHODS:
        raise ValueError(f"method must be one of {WILCOXON_METHODS}, got {method!r}")
    if ci_method not in RANK_BISERIAL_CI_METHODS:
        raise ValueError(f"ci_method must be one of {RANK_BISERIAL_CI_METHODS}, got {ci_method!r}")
    d, dropped = _changes(before, after)
    n_pairs = len(d)
    nonzero = d[d != 0]
    zeros, n_nz = n_pairs - len(nonzero), len(nonzero)
    _, counts = np.unique(np.abs(nonzero), return_counts=True)
    ties = int(counts[counts > 1].sum())
    ranked = nonzero if zero_method == "wilcox" else d
    ranks = stats.rankdata(np.abs(ranked))
    t_plus, t_minus = float(ranks[ranked > 0].sum()), float(ranks[ranked < 0].sum())
    facts = f"zero_method={zero_method};zeros={zeros};ties={ties};incomplete_dropped={dropped};statistic=V"
    row = {
        "study": study, "metric": metric, "test": "wilcoxon_signed_rank", "group_a": group_a,
        "group_b": group_b, "n_a": n_pairs, "n_b": n_pairs, "effect_size_kind": "rank_biserial_paired",
        DIRECTION_COLUMN: change_direction(group_a, group_b),
    }  # fmt: skip
    if n_nz == 0:
        return tidy_tests([{**row, "variant": f"undefined_all_differences_zero;method={method};{facts}"}])
    computed = _wilcoxon_method(method, n_nz=n_nz, n_ranked=len(ranked), zeros=zeros, ties=ties,
                                exact_max_n=exact_max_n, conditional_max_n=conditional_max_n)  # fmt: skip
    scipy_method = {
        "exact": "exact",
        "exact_conditional": stats.PermutationMethod(n_resamples=np.inf),
        "asymptotic": "asymptotic",
    }[computed]
    res = stats.wilcoxon(ranked, zero_method=zero_method,
                         correction=correction and computed == "asymptotic", method=scipy_method)  # fmt: skip
    if computed == "asymptotic" and correction:
        computed = "asymptotic+cc"
    r = (t_plus - t_minus) / (t_plus + t_minus)
    low, high = rank_biserial_interval(r, n_nz, alpha=alpha, method=ci_method)
    row |= {
        "variant": f"{computed};method={method};{facts}", "statistic": t_plus, "p_value": float(res.pvalue),
        "effect_size": float(r), "ci_low": low, "ci_high": high,
        "ci_method": "score_wilson_null_se" if ci_method == "score" else "fisher_z",
    }  # fmt: skip
    return tidy_tests([row])


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
    """Exact sign test of the changes ``after - before`` (binomial test of the increases, zeros dropped).

    Returns
    -------
    DataFrame (tests vocabulary + ``effect_direction``), one row: ``test`` = ``sign``, ``variant`` =
    ``exact_binomial;zeros=..;incomplete_dropped=..;statistic=n_increased``, ``n_a`` = ``n_b`` = complete
    pairs, ``statistic`` = number of positive changes (increases), ``p_value`` two-sided
    (:func:`scipy.stats.binomtest`, p = 1/2, as R ``binom.test``), ``effect_size`` = (increases −
    decreases) / non-zero changes, in [-1, 1], negative when most pairs decreased
    (``effect_size_kind`` = ``share_increased_minus_decreased``), with the Clopper-Pearson interval of
    the share of increases mapped by ``2p - 1`` (``ci_method`` = ``clopper_pearson``).

    References
    ----------
    Conover WJ (1999) Practical Nonparametric Statistics, 3rd ed., section 3.4.

    Examples
    --------
    Two increases, one decrease, one zero: p = 1 (R ``binom.test(2, 3)``).

    >>> sign_test([1, 2, 3, 4], [1, 0, 0, 5])[["statistic", "p_value", "effect_size"]].round(4)
       statistic  p_value  effect_size
    0        1.0      1.0      -0.3333
    """
    d, dropped = _changes(before, after)
    pos, neg, zeros = int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum())
    n_nz = pos + neg
    row = {
        "study": study, "metric": metric, "test": "sign", "group_a": group_a, "group_b": group_b,
        "n_a": len(d), "n_b": len(d), "effect_size_kind": "share_increased_minus_decreased",
        DIRECTION_COLUMN: change_direction(group_a, group_b),
    }  # fmt: skip
    facts = f"zeros={zeros};incomplete_dropped={dropped};statistic=n_increased"
    if n_nz == 0:
        return tidy_tests([{**row, "variant": f"undefined_all_differences_zero;{facts}"}])
    res = stats.binomtest(pos, n_nz, 0.5)
    ci = res.proportion_ci(confidence_level=1 - alpha, method="exact")
    row |= {
        "variant": f"exact_binomial;{facts}", "statistic": float(pos), "p_value": float(res.pvalue),
        "effect_size": (pos - neg) / n_nz, "ci_low": 2 * float(ci.low) - 1, "ci_high": 2 * float(ci.high) - 1,
        "ci_method": "clopper_pearson",
    }  # fmt: skip
    return tidy_tests([row])


def _as_bool(values: np.ndarray, name: str) -> np.ndarray:
    ok = pd.Series(values).isin([True, False, 0, 1])
    if not ok.all():
        raise ValueError(
            f"{name} must hold booleans or 0/1, got {sorted(set(map(str, values[~ok.to_numpy()])))}"
        )
    return values.astype(bool)


def mcnemar_pvalue(b: int, c: int, *, variant: str = "midp") -> tuple[float, float, float]:
    """McNemar test of ``b`` (true then false) against ``c`` (false then true) discordant pairs.

    Parameters
    ----------
    b, c : int
        Discordant pairs: true at the first measurement and false at the second (``b``, R's ``x[1, 2]``),
        false then true (``c``).
    variant : {"midp", "exact", "asymptotic", "asymptotic_cc"}, keyword-only
        ``exact``: exact conditional test, ``min(1, 2 P(X <= min(b, c)))`` with X ~ Bin(b + c, 1/2)
        (statsmodels ``mcnemar(exact=True)``; R ``exact2x2::mcnemar.exact``). ``midp`` (default,
        recommended by Fagerland, Lydersen & Laake 2013): the exact p-value minus ``P(X = b)``, and
        ``1 - P(X = b)/2`` when b = c (their formula; ``exact2x2(midp = TRUE)`` gives 1 there).
        ``asymptotic``: ``(b - c)^2 / (b + c)`` on chi-square(1) (R ``mcnemar.test(correct = FALSE)``).
        ``asymptotic_cc``: Edwards' continuity correction ``(|b - c| - 1)^2 / (b + c)``, 0 when
        ``|b - c| <= 1`` (R ``mcnemar.test()``, which drops the correction when b = c).

    Returns
    -------
    (statistic, df, p_value): the statistic is ``b`` for ``exact`` and ``midp`` (as exact2x2 reports it),
    the chi-square otherwise; df is NaN for the exact and mid-p tests, 1 otherwise. Without discordant
    pair (b = c = 0) the data say nothing: p = 1 (exact2x2), statistic NaN for the chi-square variants.

    References
    ----------
    McNemar Q (1947) Psychometrika 12:153-157. Edwards AL (1948) Psychometrika 13:185-187. Fagerland MW,
    Lydersen S, Laake P (2013) BMC Med Res Methodol 13:91.

    Examples
    --------
    Fagerland et al. (2017) ch. 8, Cavo et al. (2012), b = 6, c = 16 (R ``contingencytables``): mid-P
    0.034690, exact 0.052479, asymptotic 0.033006, with continuity correction 0.055009.

    >>> [round(mcnemar_pvalue(6, 16, variant=v)[2], 6) for v in MCNEMAR_VARIANTS]
    [0.03469, 0.052479, 0.033006, 0.055009]
    """
    if variant not in MCNEMAR_VARIANTS:
        raise ValueError(f"variant must be one of {MCNEMAR_VARIANTS}, got {variant!r}")
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    exact = variant in ("exact", "midp")
    if b + c == 0:
        return (0.0 if exact else np.nan), (np.nan if exact else 1.0), 1.0
    table = [[0, b], [c, 0]]
    if exact:
        p = float(_sm_mcnemar(table, exact=True).pvalue)
        if variant == "midp":
            half = stats.binom.pmf(b, b + c, 0.5)
            p = 1.0 - 0.5 * float(half) if b == c else p - float(half)
        return float(b), np.nan, min(1.0, p)
    if variant == "asymptotic_cc" and abs(b - c) <= 1:
        return 0.0, 1.0, 1.0  # (|b - c| - 1)^2 would be 1 / (b + c) > 0 at b = c (statsmodels); R: 0
    res = _sm_mcnemar(table, exact=False, correction=variant == "asymptotic_cc")
    return float(res.statistic), 1.0, float(res.pvalue)


def mcnemar_test(
    before: ArrayLike,
    after: ArrayLike,
    *,
    variant: str = "midp",
    alpha: float = 0.05,
    study: str | None = None,
    metric: str | None = None,
    group_a: str = "before",
    group_b: str = "after",
) -> pd.DataFrame:
    """McNemar test of paired binary outcomes, with the paired change of proportions and its CI.

    Parameters
    ----------
    before, after : boolean arrays or Series (``True``/``False`` or 1/0; missing = incomplete pair)
    variant : {"midp", "exact", "asymptotic", "asymptotic_cc"}, keyword-only
        The test computed, whatever the number of discordant pairs (:func:`mcnemar_pvalue`): mid-P
        (default, Fagerland, Lydersen & Laake 2013: it kept the nominal level in all their 9595
        scenarios and is nearly as powerful as the asymptotic test), exact conditional, asymptotic
        without or with Edwards' continuity correction.
    alpha : float, keyword-only
        For the Newcombe interval.

    Returns
    -------
    DataFrame (tests vocabulary + ``effect_direction``), one row: ``test`` = ``mcnemar``; ``variant`` =
    the variant computed, then ``statistic=b`` (exact, mid-P) or ``statistic=chi2`` / ``chi2_cc``, then
    ``incomplete_dropped=k``; ``n_a`` = ``n_b`` = complete pairs; ``statistic``, ``df`` and ``p_value``
    of :func:`mcnemar_pvalue`; ``effect_size`` = p_after − p_before = (c − b) / n (negative: fewer true
    after; ``paired_difference_of_proportions``) with the Newcombe (1998) method-10 interval
    (``ci_method`` = ``newcombe_paired_score_phi_cc``).

    Notes
    -----
    b = before true and after false, c = before false and after true (the table of R
    ``mcnemar.test(table(before, after))`` has b in row 1, column 2).

    References
    ----------
    McNemar Q (1947) Psychometrika 12:153-157. Agresti A (2002) Categorical Data Analysis, 2nd ed.,
    section 10.1. Newcombe RG (1998) Stat Med 17:2635-2650. Fagerland MW, Lydersen S, Laake P (2013)
    BMC Med Res Methodol 13:91.

    Examples
    --------
    Agresti (2002) Table 10.1 (R ``?mcnemar.test``): 794 approve twice, 150 approve then disapprove,
    86 disapprove then approve, 570 disapprove twice; R prints McNemar's chi-squared = 16.818.

    >>> before = [True] * 944 + [False] * 656
    >>> after = [True] * 794 + [False] * 150 + [True] * 86 + [False] * 570
    >>> row = mcnemar_test(before, after, variant="asymptotic_cc").iloc[0]
    >>> print(row["variant"])
    asymptotic_cc;statistic=chi2_cc;incomplete_dropped=0
    >>> print(round(row["statistic"], 3), round(row["effect_size"], 4))
    16.818 -0.04
    """
    if variant not in MCNEMAR_VARIANTS:
        raise ValueError(f"variant must be one of {MCNEMAR_VARIANTS}, got {variant!r}")
    b_raw, a_raw, dropped = _pairs(before, after)
    bb, aa = _as_bool(b_raw, "before"), _as_bool(a_raw, "after")
    a11 = int((bb & aa).sum())
    b10 = int((bb & ~aa).sum())
    c01 = int((~bb & aa).sum())
    d00 = int((~bb & ~aa).sum())
    statistic, df, p = mcnemar_pvalue(b10, c01, variant=variant)
    # first measurement = after: Newcombe's p1 - p2 is then p_after - p_before, with its own interval
    ci = newcombe_paired_difference(a11, c01, b10, d00, alpha=alpha).iloc[0]
    n = len(bb)
    kind = {"midp": "b", "exact": "b", "asymptotic": "chi2", "asymptotic_cc": "chi2_cc"}[variant]
    row = {
        "study": study, "metric": metric, "test": "mcnemar", "group_a": group_a, "group_b": group_b,
        "variant": f"{variant};statistic={kind};incomplete_dropped={dropped}",
        "n_a": n, "n_b": n, "statistic": statistic, "df": df, "p_value": p,
        "effect_size": float(ci["value"]), "effect_size_kind": "paired_difference_of_proportions",
        "ci_low": float(ci["ci_low"]), "ci_high": float(ci["ci_high"]), "ci_method": ci["ci_method"],
        DIRECTION_COLUMN: change_direction(group_a, group_b, of="shares"),
    }  # fmt: skip
    return tidy_tests([row])


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
    DataFrame (tests vocabulary + ``effect_direction``), one row: ``test`` = ``friedman``, ``variant`` =
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
        DIRECTION_COLUMN: UNSIGNED_W,
    }  # fmt: skip
    return tidy_tests([row])


def cochran_q(frame: pd.DataFrame, *, study: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """Cochran's Q test for k >= 2 related binary outcomes (rows = blocks, columns = conditions).

    Returns
    -------
    DataFrame (tests vocabulary + ``effect_direction``), one row: ``test`` = ``cochran_q``, ``variant`` =
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
        "p_value": p, DIRECTION_COLUMN: NO_DIRECTION,
    }  # fmt: skip
    return tidy_tests([row])
