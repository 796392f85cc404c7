"""Proportions: Wilson intervals, Newcombe differences (unpaired and paired), 2-way tables, trend test.

Interval functions return one row per input element with ``value, ci_low, ci_high, ci_method``;
test functions return a frame in the fixed ``tests.csv`` vocabulary
(:data:`cyberobs_lib.schema.TESTS_COLUMNS`), whose ``variant`` starts with the computation (``pearson``,
``pearson+yates``, ``fisher_exact``, ``fisher_freeman_halton_monte_carlo``, ...) followed by ``;key=value``
facts, ``choice=caller`` or ``choice=auto(<the rule that applied>)``. :func:`contingency_cells` is the
companion table of a χ² test: expected counts and residuals per cell (R ``chisq.test()$expected``,
``$residuals``, ``$stdres``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.contingency_tables import Table
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from cyberobs_lib.stats._tidy import make_tests_table
from cyberobs_lib.stats.multiplicity import adjust_pvalues

#: Tests of an r x c table: ``auto`` applies Cochran's rule (and says so in ``variant``).
TABLE_METHODS = ("auto", "chi_square", "fisher_exact", "fisher_monte_carlo")

ArrayLike = float | int | Sequence[float] | np.ndarray | pd.Series


def _counts(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if np.any(arr < 0) or np.any(np.isnan(arr)):
        raise ValueError(f"{name} must be non-negative counts, got {arr.tolist()}")
    return arr


def _index_of(*values: ArrayLike) -> pd.Index | None:
    for v in values:
        if isinstance(v, pd.Series):
            return v.index
    return None


def wilson_interval(successes: ArrayLike, n: ArrayLike, *, alpha: float = 0.05) -> pd.DataFrame:
    """Wilson score interval for one or many binomial proportions (vectorized).

    Parameters
    ----------
    successes, n : scalar, array or Series
        Counts of successes and of trials (broadcast together). A Series index is kept.
    alpha : float, keyword-only
        1 - confidence level.

    Returns
    -------
    DataFrame, one row per element:
        ``successes``, ``n``; ``value`` = successes / n; ``ci_low``, ``ci_high`` the Wilson limits;
        ``ci_method`` = ``"wilson"``. Rows with ``n == 0`` have NaN value and limits.

    Notes
    -----
    Score interval without continuity correction (Wilson 1927; method 3 of Newcombe 1998a):
    ``(2np + z^2 +/- z sqrt(z^2 + 4np(1-p))) / (2(n + z^2))``, computed by
    :func:`statsmodels.stats.proportion.proportion_confint`. Raises ``ValueError`` for negative
    counts or successes > n.

    References
    ----------
    Wilson EB (1927) JASA 22:209-212. Newcombe RG (1998a) Two-sided confidence intervals for the
    single proportion: comparison of seven methods. Stat Med 17:857-872 (Table I).

    Examples
    --------
    >>> wilson_interval([81, 0], [263, 20]).round(4)
       successes      n  value  ci_low  ci_high ci_method
    0       81.0  263.0  0.308  0.2553   0.3662    wilson
    1        0.0   20.0  0.000  0.0000   0.1611    wilson
    """
    x, m = np.broadcast_arrays(_counts("successes", successes), _counts("n", n))
    if np.any(x > m):
        raise ValueError("successes cannot exceed n")
    ok = m > 0
    low = np.full(x.shape, np.nan)
    high = np.full(x.shape, np.nan)
    if ok.any():
        low[ok], high[ok] = proportion_confint(x[ok], m[ok], alpha=alpha, method="wilson")
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(ok, x / np.where(ok, m, 1), np.nan)
    out = pd.DataFrame({"successes": x, "n": m, "value": value, "ci_low": low, "ci_high": high})
    out["ci_method"] = "wilson"
    index = _index_of(successes, n)
    if index is not None and len(index) == len(out):
        out.index = index
    return out


def newcombe_difference(
    x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike, *, alpha: float = 0.05
) -> pd.DataFrame:
    """Newcombe hybrid-score interval for the difference of two independent proportions.

    Parameters
    ----------
    x1, n1, x2, n2 : scalar, array or Series
        Successes and trials in groups 1 and 2 (vectorized).
    alpha : float, keyword-only

    Returns
    -------
    DataFrame: ``p1``, ``p2``; ``value`` = p1 - p2; ``ci_low``, ``ci_high``;
    ``ci_method`` = ``"newcombe_hybrid_score"``.

    Notes
    -----
    Method 10 of Newcombe (1998b): with Wilson limits (l1, u1), (l2, u2),
    ``L = d - sqrt((p1-l1)^2 + (u2-p2)^2)``, ``U = d + sqrt((u1-p1)^2 + (p2-l2)^2)``, computed by
    :func:`statsmodels.stats.proportion.confint_proportions_2indep` (``method="newcomb"``). A group with
    n = 0 gives NaN.

    References
    ----------
    Newcombe RG (1998b) Interval estimation for the difference between independent proportions:
    comparison of eleven methods. Stat Med 17:873-890.

    Examples
    --------
    >>> newcombe_difference(56, 70, 48, 80).round(4)
        p1   p2  value  ci_low  ci_high              ci_method
    0  0.8  0.6    0.2  0.0524   0.3339  newcombe_hybrid_score
    """
    x1, n1, x2, n2 = np.broadcast_arrays(
        *(_counts(k, v) for k, v in zip(("x1", "n1", "x2", "n2"), (x1, n1, x2, n2), strict=True))
    )
    if np.any(x1 > n1) or np.any(x2 > n2):
        raise ValueError("successes cannot exceed n")
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", alpha=alpha)
        p1, p2 = x1 / n1, x2 / n2
    empty = (n1 == 0) | (n2 == 0)
    out = pd.DataFrame(
        {
            "p1": np.where(n1 > 0, p1, np.nan),
            "p2": np.where(n2 > 0, p2, np.nan),
            "value": np.where(empty, np.nan, p1 - p2),
            "ci_low": np.where(empty, np.nan, np.atleast_1d(low)),
            "ci_high": np.where(empty, np.nan, np.atleast_1d(high)),
        }
    )
    out["ci_method"] = "newcombe_hybrid_score"
    return out


def newcombe_paired_difference(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, d: ArrayLike, *, alpha: float = 0.05
) -> pd.DataFrame:
    """Newcombe interval for the difference of two paired proportions (method 10, phi-corrected).

    Parameters
    ----------
    a, b, c, d : scalar, array or Series
        Paired 2x2 counts: ``a`` = yes/yes, ``b`` = yes/no, ``c`` = no/yes, ``d`` = no/no
        (first measurement / second measurement).
    alpha : float, keyword-only

    Returns
    -------
    DataFrame: ``p1`` = (a+b)/n, ``p2`` = (a+c)/n; ``value`` = p1 - p2 = (b-c)/n; ``ci_low``,
    ``ci_high``; ``ci_method`` = ``"newcombe_paired_score_phi_cc"``. NaN when n = 0.

    Notes
    -----
    Method 10 of Newcombe (1998c): Wilson limits (l1,u1) for p1 and (l2,u2) for p2, combined as
    ``L = D - sqrt((p1-l1)^2 - 2 phi (p1-l1)(u2-p2) + (u2-p2)^2)`` and
    ``U = D + sqrt((p2-l2)^2 - 2 phi (p2-l2)(u1-p1) + (u1-p1)^2)``, where phi is the correlation
    of the paired table with a continuity correction: with ``B = ad - bc``, phi uses
    ``max(B - n/2, 0)`` when B > 0 and B otherwise, over ``sqrt((a+b)(c+d)(a+c)(b+d))``, and is
    0 when that product is 0. Written here: statsmodels has the unpaired interval
    (:func:`newcombe_difference` uses it) but not the paired one.

    References
    ----------
    Newcombe RG (1998c) Improved confidence intervals for the difference between binomial
    proportions based on paired data. Stat Med 17:2635-2650. Fagerland MW, Lydersen S, Laake P
    (2017) Statistical Analysis of Contingency Tables, CRC, ch. 8.

    Examples
    --------
    Fagerland, Lydersen & Laake (2017), ch. 8 (Cavo et al. 2012): -0.0621 (-0.1186 to -0.0046).

    >>> newcombe_paired_difference(59, 6, 16, 80).round(4)
           p1      p2   value  ci_low  ci_high                     ci_method
    0  0.4037  0.4658 -0.0621 -0.1186  -0.0046  newcombe_paired_score_phi_cc
    """
    a, b, c, d = np.broadcast_arrays(*(_counts(k, v) for k, v in zip("abcd", (a, b, c, d), strict=True)))
    n = a + b + c + d
    w1 = wilson_interval(a + b, n, alpha=alpha)
    w2 = wilson_interval(a + c, n, alpha=alpha)
    p1, l1, u1 = (w1[k].to_numpy() for k in ("value", "ci_low", "ci_high"))
    p2, l2, u2 = (w2[k].to_numpy() for k in ("value", "ci_low", "ci_high"))
    big_b = a * d - b * c
    corrected = np.where(big_b > 0, np.maximum(big_b - n / 2, 0.0), big_b)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(denom > 0, corrected / np.sqrt(np.where(denom > 0, denom, 1.0)), 0.0)
    diff = p1 - p2
    dl = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    out = pd.DataFrame(
        {
            "p1": p1,
            "p2": p2,
            "value": diff,
            "ci_low": diff - np.sqrt(np.maximum(dl, 0.0)),
            "ci_high": diff + np.sqrt(np.maximum(du, 0.0)),
        }
    )
    out["ci_method"] = "newcombe_paired_score_phi_cc"
    return out


def _cramers_v_ci(chi2: float, df: int, n: float, k: int, alpha: float) -> tuple[float, float, float]:
    """Cramér's V and a CI by inverting the noncentral chi-square in its noncentrality."""
    scale = n * (k - 1)
    v = float(np.sqrt(chi2 / scale))

    def sf(lam: float) -> float:
        return float(stats.ncx2.sf(chi2, df, lam)) if lam > 0 else float(stats.chi2.sf(chi2, df))

    def bound(target: float) -> float:
        if sf(0.0) >= target:
            return 0.0
        hi = max(chi2, 1.0)
        while sf(hi) < target:
            hi *= 2
        return optimize.brentq(lambda lam: sf(lam) - target, 0.0, hi, xtol=1e-10)

    low = bound(alpha / 2)
    high = bound(1 - alpha / 2)
    return v, min(np.sqrt(low / scale), 1.0), min(np.sqrt(high / scale), 1.0)


def _table(table: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
    """Counts of a 2-D table without its empty rows and columns, with the labels kept."""
    frame = pd.DataFrame(table)
    counts = frame.to_numpy(dtype=float)
    if counts.ndim != 2 or counts.size == 0 or np.any(np.isnan(counts)) or np.any(counts < 0):
        raise ValueError("table must be a non-empty 2-D table of non-negative counts")
    keep_r, keep_c = counts.sum(axis=1) > 0, counts.sum(axis=0) > 0
    counts = counts[keep_r][:, keep_c]
    rows, cols = [str(x) for x in frame.index[keep_r]], [str(x) for x in frame.columns[keep_c]]
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        raise ValueError("need at least two non-empty rows and two non-empty columns")
    return counts, rows, cols


def _cochran_rule(expected: np.ndarray) -> tuple[str, str]:
    """The test Cochran's (1954) rule picks, and the rule that applied (for ``variant``)."""
    if expected.shape == (2, 2):
        if (expected < 5).any():
            return "fisher_exact", "auto(an expected count < 5 in a 2x2 table)"
        return "chi_square", "auto(every expected count >= 5)"
    if (expected < 1).any():
        return "fisher_monte_carlo", "auto(an expected count < 1)"
    if (expected < 5).mean() > 0.2:
        return "fisher_monte_carlo", "auto(over 20% of expected counts < 5)"
    return "chi_square", "auto(no expected count < 1, at most 20% < 5)"


def compare_proportions(
    table: pd.DataFrame | np.ndarray,
    *,
    method: Literal["auto", "chi_square", "fisher_exact", "fisher_monte_carlo"] = "auto",
    yates: bool = False,
    alpha: float = 0.05,
    n_resamples: int = 100_000,
    seed: int = 0,
    study: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Test independence in an r x c table: Pearson chi-square, Fisher's exact test or its Monte Carlo version.

    Parameters
    ----------
    table : DataFrame or 2-D array of counts
        Rows are groups (the index gives their labels), columns are outcome categories.
    method : {"auto", "chi_square", "fisher_exact", "fisher_monte_carlo"}, keyword-only
        ``chi_square``: Pearson's X² on (r-1)(c-1) df (R ``chisq.test``). ``fisher_exact``: Fisher's
        exact test of a 2 x 2 table (R ``fisher.test``); a larger table raises (the network algorithm
        of R's r x c ``fisher.test`` is not available here: use ``fisher_monte_carlo``).
        ``fisher_monte_carlo``: the Fisher-Freeman-Halton test by ``n_resamples`` seeded random tables
        with the observed margins (R ``fisher.test(simulate.p.value = TRUE)``), any shape. ``auto``
        (default): Cochran's rule — Fisher for a 2 x 2 table with an expected count < 5, Monte Carlo
        Fisher for a larger table with an expected count < 1 or over 20 % of them < 5, Pearson
        otherwise; ``variant`` then says ``choice=auto(<which part of the rule applied>)``.
    yates : bool, keyword-only
        Yates' continuity correction of the chi-square of a 2x2 table (R ``chisq.test``'s default
        is ``True``; ours is ``False``, following Campbell 2007).
    alpha : float, keyword-only
        For the Cramér's V interval.
    n_resamples, seed : int, keyword-only
        Monte Carlo settings.
    study, metric : str, keyword-only
        Copied into the result row.

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` in {``chi_square``, ``fisher_exact``};
    ``variant`` = ``pearson``, ``pearson+yates``, ``fisher_exact`` or
    ``fisher_freeman_halton_monte_carlo;n_resamples=…;seed=…``, then ``;choice=caller`` or
    ``;choice=auto(…)``; ``group_a``/``group_b`` the two row labels and ``n_a``/``n_b`` their totals
    (for more than two rows ``group_a`` joins all labels with ``|`` and ``n_a`` is the grand total);
    ``statistic`` (X², or NaN for Fisher), ``df`` ((r-1)(c-1) for X², NaN for Fisher: no reference
    distribution with df), ``p_value``; ``effect_size`` Cramér's V with ``ci_low``/``ci_high``
    (``ci_method`` = ``noncentral_chi2``). Expected counts and residuals: :func:`contingency_cells`.

    Notes
    -----
    Fisher's two-sided p sums the tables no more probable than the observed one, as R
    ``fisher.test`` (:func:`scipy.stats.fisher_exact`; Monte Carlo with ``MonteCarloMethod``, seeded).
    Cramér's V = sqrt(X^2 / (N (min(r,c)-1))) always uses the uncorrected Pearson X^2; its CI
    inverts the noncentral chi-square distribution in the noncentrality lambda (limits solve
    P(X^2 >= obs | lambda) = alpha/2 and 1-alpha/2) and maps lambda to sqrt(lambda / (N (k-1))),
    as the R package ``effectsize`` does. Rows or columns that sum to 0 are dropped first.

    References
    ----------
    Cochran WG (1954) Biometrics 10:417-451. Campbell I (2007) Stat Med 26:3661-3675.
    Smithson M (2003) Confidence Intervals, Sage. Ben-Shachar MS et al. (2020) effectsize, JOSS 5:2815.

    Examples
    --------
    >>> tea = pd.DataFrame([[3, 1], [1, 3]], index=["milk_first", "tea_first"])
    >>> r = compare_proportions(tea)
    >>> r[["test", "n_a", "n_b", "p_value"]].round(4)
               test  n_a  n_b  p_value
    0  fisher_exact    4    4   0.4857
    >>> print(r.variant.iloc[0])
    fisher_exact;choice=auto(an expected count < 5 in a 2x2 table)
    """
    if method not in TABLE_METHODS:
        raise ValueError(f"method must be one of {TABLE_METHODS}, got {method!r}")
    counts, labels, _ = _table(table)
    total = counts.sum()
    chi2_raw, _, dof, expected = stats.chi2_contingency(counts, correction=False)
    is_2x2 = counts.shape == (2, 2)
    if method == "auto":
        method, choice = _cochran_rule(expected)
    else:
        choice = "caller"
    if method == "fisher_exact" and not is_2x2:
        raise ValueError(
            f"fisher_exact is the exact test of a 2x2 table, got {counts.shape[0]}x{counts.shape[1]}: "
            "use method='fisher_monte_carlo' (Fisher-Freeman-Halton by Monte Carlo) or 'chi_square'"
        )
    if method == "fisher_exact":
        test, variant, statistic, df = "fisher_exact", "fisher_exact", np.nan, np.nan
        p_value = stats.fisher_exact(counts.astype(int)).pvalue
    elif method == "fisher_monte_carlo":
        test, statistic, df = "fisher_exact", np.nan, np.nan
        variant = f"fisher_freeman_halton_monte_carlo;n_resamples={n_resamples};seed={seed}"
        mc = stats.MonteCarloMethod(n_resamples=n_resamples, rng=np.random.default_rng(seed))
        p_value = stats.fisher_exact(counts.astype(int), method=mc).pvalue
    else:
        use_yates = yates and is_2x2
        res = stats.chi2_contingency(counts, correction=use_yates)
        test, variant = "chi_square", "pearson+yates" if use_yates else "pearson"
        statistic, p_value, df = res.statistic, res.pvalue, float(dof)
    v, low, high = _cramers_v_ci(chi2_raw, int(dof), total, min(counts.shape), alpha)
    rows_n = counts.sum(axis=1)
    two = counts.shape[0] == 2
    row = {
        "study": study,
        "metric": metric,
        "test": test,
        "variant": f"{variant};choice={choice}",
        "group_a": labels[0] if two else "|".join(labels),
        "group_b": labels[1] if two else None,
        "n_a": int(rows_n[0]) if two else int(total),
        "n_b": int(rows_n[1]) if two else None,
        "statistic": statistic,
        "df": df,
        "p_value": float(p_value),
        "effect_size": v,
        "effect_size_kind": "cramers_v",
        "ci_low": low,
        "ci_high": high,
        "ci_method": "noncentral_chi2",
    }
    return make_tests_table([row])


def contingency_cells(table: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """Expected counts and residuals of each cell under independence: the companion of a χ² test.

    Parameters
    ----------
    table : DataFrame or 2-D array of counts
        As :func:`compare_proportions` (empty rows and columns dropped first, as there).

    Returns
    -------
    DataFrame, one row per cell (row-major): ``row``, ``column`` (labels as text), ``observed``,
    ``expected`` = r_i c_j / N (R ``chisq.test()$expected``), ``residual`` = (O - E) / sqrt(E), the Pearson
    residual (``$residuals``), ``std_residual`` = (O - E) / sqrt(E (1 - r_i/N) (1 - c_j/N)), the adjusted
    standardized residual (``$stdres``; about N(0, 1) under independence: |value| > 2 marks a cell that
    departs from it), ``contribution`` = (O - E)² / E (they sum to Pearson's X²).

    References
    ----------
    Haberman SJ (1973) The analysis of residuals in cross-classified tables. Biometrics 29:205-220.
    Agresti A (2007) An Introduction to Categorical Data Analysis, 2nd ed., §2.4.5.

    Examples
    --------
    Agresti (2007) p. 39, party identification by gender: standardized residuals 4.50, 0.70, -5.32.

    >>> m = pd.DataFrame([[762, 327, 468], [484, 239, 477]], index=["F", "M"], columns=["D", "I", "R"])
    >>> contingency_cells(m).loc[:2, ["row", "column", "expected", "std_residual"]].round(2)
      row column  expected  std_residual
    0   F      D    703.67          4.50
    1   F      I    319.65          0.70
    2   F      R    533.68         -5.32
    """
    counts, rows, cols = _table(table)
    total = counts.sum()
    r, c = counts.sum(axis=1, keepdims=True), counts.sum(axis=0, keepdims=True)
    expected = r @ c / total
    residual = (counts - expected) / np.sqrt(expected)
    std_residual = (counts - expected) / np.sqrt(expected * (1 - r / total) * (1 - c / total))
    return pd.DataFrame(
        {
            "row": np.repeat(rows, len(cols)),
            "column": np.tile(cols, len(rows)),
            "observed": counts.ravel(),
            "expected": expected.ravel(),
            "residual": residual.ravel(),
            "std_residual": std_residual.ravel(),
            "contribution": (residual**2).ravel(),
        }
    )


def pairwise_proportions(
    table: pd.DataFrame,
    *,
    reference: str | None = None,
    method: Literal["auto", "chi_square", "fisher_exact", "fisher_monte_carlo"] = "auto",
    adjust: str = "holm",
    yates: bool = False,
    alpha: float = 0.05,
    n_resamples: int = 100_000,
    seed: int = 0,
    study: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Every pair of groups of a groups x (yes, no) table: the 2 x 2 test and the Newcombe difference.

    Parameters
    ----------
    table : DataFrame
        Rows are groups (index = labels); column 0 counts the outcome ("yes"), column 1 the others.
    reference : str, optional
        A group put in ``group_b`` of each pair that includes it (differences read "group − reference").
    method : {"auto", "chi_square", "fisher_exact", "fisher_monte_carlo"}
        The 2 x 2 test of each pair (see :func:`compare_proportions`).
    adjust : str
        Multiplicity adjustment over the pairs (:func:`cyberobs_lib.stats.multiplicity.adjust_pvalues`),
        written in ``adjust_method``.
    yates, alpha, n_resamples, seed, study, metric
        As :func:`compare_proportions`.

    Returns
    -------
    DataFrame (tests vocabulary), one row per pair (groups in label order, the reference last):
    ``test``/``statistic``/``df``/``p_value`` of the pair's 2 x 2 test (``df`` 1 for X², NaN for
    Fisher); ``variant`` = ``pairwise `` + the test's variant; ``effect_size`` = share_a − share_b
    (``risk_difference``) with the Newcombe hybrid-score interval; ``p_adjusted``/``adjust_method``.
    A pair where both groups have the same single outcome has no test (``variant`` ``undefined: no
    variation in the pair``) but keeps its difference (0) and interval.
    """
    frame = pd.DataFrame(table)
    if frame.shape[1] != 2:
        raise ValueError(f"need a groups x (yes, no) table with 2 columns, got {frame.shape[1]}")
    if reference is not None and reference not in frame.index:
        raise ValueError(f"reference {reference!r} is not a row of the table: {list(frame.index)}")
    order = sorted(frame.index, key=lambda g: (g == reference, str(g)))
    rows = []
    for a, b in combinations(order, 2):
        pair = frame.loc[[a, b]]
        yes, n = pair.iloc[:, 0].to_numpy(float), pair.sum(axis=1).to_numpy(float)
        diff = newcombe_difference(yes[0], n[0], yes[1], n[1], alpha=alpha).iloc[0]
        base = {"study": study, "metric": metric, "group_a": str(a), "group_b": str(b), "n_a": int(n[0]),
                "n_b": int(n[1]), "effect_size": diff["value"], "effect_size_kind": "risk_difference",
                "ci_low": diff["ci_low"], "ci_high": diff["ci_high"], "ci_method": diff["ci_method"]}  # fmt: skip
        try:
            test = compare_proportions(pair, method=method, yates=yates, alpha=alpha, n_resamples=n_resamples,
                                       seed=seed).iloc[0]  # fmt: skip
        except ValueError:  # both groups all-yes or all-no (or an empty group): no test, the difference stays
            rows.append({**base, "test": "chi_square" if method in ("auto", "chi_square") else "fisher_exact",
                         "variant": "undefined: no variation in the pair"})  # fmt: skip
            continue
        rows.append({**base, "test": test["test"], "variant": f"pairwise {test['variant']}",
                     "statistic": test["statistic"], "df": test["df"], "p_value": test["p_value"]})  # fmt: skip
    if not rows:
        return make_tests_table([])
    return adjust_pvalues(make_tests_table(rows), method=adjust)


def cochran_armitage_trend(
    successes: ArrayLike,
    totals: ArrayLike,
    scores: ArrayLike | None = None,
    *,
    method: Literal["cochran_armitage", "linear_by_linear"] = "cochran_armitage",
    study: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Cochran-Armitage chi-square test for a linear trend in proportions across ordered groups.

    Parameters
    ----------
    successes, totals : arrays
        Successes and trials per ordered group.
    scores : array, optional
        Group scores; default 1, 2, ..., k (as R ``prop.trend.test``).
    method : {"cochran_armitage", "linear_by_linear"}, keyword-only
        ``cochran_armitage`` (default): the statistic of R ``prop.trend.test`` (variance with N).
        ``linear_by_linear``: Mantel's linear-by-linear association test of the groups x (yes, no) table
        (variance with N - 1: the statistic is (N-1)/N times the former), by
        :meth:`statsmodels.stats.contingency_tables.Table.test_ordinal_association`.
    study, metric : str, keyword-only

    Returns
    -------
    DataFrame (tests vocabulary), one row: ``test`` = ``cochran_armitage_trend``, ``variant`` =
    ``asymptotic;variance=N (prop.trend.test)`` or ``asymptotic;variance=N-1 (linear-by-linear)``,
    ``n_a`` = total trials, ``statistic`` (chi-square, 1 df), ``df`` = 1, ``p_value`` (two-sided),
    ``effect_size`` the weighted least-squares slope of the proportion per score unit
    (``effect_size_kind`` = ``trend_slope_per_score_unit``: positive when the proportion rises with the
    score); no CI.

    Notes
    -----
    With p = sum(x)/N, ``T = sum s_i (x_i - n_i p)`` and
    ``V = p(1-p) [sum n_i s_i^2 - (sum n_i s_i)^2 / N]``, statistic ``T^2 / V`` ~ chi-square(1).
    This is the statistic of R ``prop.trend.test`` (variance with N, not N-1); statsmodels has only the
    N-1 version (``linear_by_linear``), hence the closed form here.

    References
    ----------
    Cochran WG (1954) Biometrics 10:417-451. Armitage P (1955) Biometrics 11:375-386. Agresti A (2007)
    An Introduction to Categorical Data Analysis, 2nd ed., §2.5 (linear-by-linear M² = (N-1) r²).

    Examples
    --------
    >>> r = cochran_armitage_trend([83, 90, 129, 70], [86, 93, 136, 82])
    >>> print(f"{r.statistic.iloc[0]:.4f} {r.p_value.iloc[0]:.6f}")
    8.2249 0.004132
    """
    if method not in ("cochran_armitage", "linear_by_linear"):
        raise ValueError(f"method must be 'cochran_armitage' or 'linear_by_linear', got {method!r}")
    x, n = _counts("successes", successes), _counts("totals", totals)
    s = np.arange(1, len(x) + 1, dtype=float) if scores is None else np.asarray(scores, dtype=float)
    if not (len(x) == len(n) == len(s)) or len(x) < 2:
        raise ValueError("successes, totals and scores need the same length, at least 2")
    if np.any(x > n):
        raise ValueError("successes cannot exceed totals")
    big_n = n.sum()
    p = x.sum() / big_n if big_n > 0 else np.nan
    sxx = (n * s**2).sum() - (n * s).sum() ** 2 / big_n if big_n > 0 else 0.0
    if not (0 < p < 1) or sxx <= 0:
        raise ValueError("trend test undefined: all outcomes identical or a single score level")
    t = (s * (x - n * p)).sum()
    if method == "cochran_armitage":
        chi2, variant = t**2 / (p * (1 - p) * sxx), "asymptotic;variance=N (prop.trend.test)"
        p_value = float(stats.chi2.sf(chi2, 1))
    else:
        keep = n > 0  # an empty group adds nothing to either statistic
        res = Table(np.column_stack([x, n - x])[keep]).test_ordinal_association(
            row_scores=s[keep], col_scores=np.array([1.0, 0.0])
        )
        chi2, p_value, variant = (
            res.zscore**2,
            float(res.pvalue),
            "asymptotic;variance=N-1 (linear-by-linear)",
        )
    row = {
        "study": study,
        "metric": metric,
        "test": "cochran_armitage_trend",
        "variant": variant,
        "n_a": int(big_n),
        "statistic": chi2,
        "df": 1.0,
        "p_value": p_value,
        "effect_size": t / sxx,
        "effect_size_kind": "trend_slope_per_score_unit",
    }
    return make_tests_table([row])
