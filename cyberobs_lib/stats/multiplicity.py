"""Multiplicity control: fill ``p_adjusted`` and ``adjust_method`` of a ``tests.csv``-shaped frame.

Every adjusted row says how it was adjusted: :func:`adjust_pvalues` writes ``adjust_method`` on every row it
adjusts, and :func:`check_adjustment_stated` refuses a table with an adjusted p-value whose method is not
stated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

#: Methods accepted (the same word is written in ``adjust_method``).
ADJUST_METHODS = ("fdr_bh", "fdr_by", "holm", "hochberg", "hommel", "bonferroni", "none")
#: R ``p.adjust`` names accepted as aliases (the canonical name is written in ``adjust_method``).
R_ALIASES = {"BH": "fdr_bh", "fdr": "fdr_bh", "BY": "fdr_by"}
#: statsmodels' name of each method.
_STATSMODELS = {"hochberg": "simes-hochberg"}


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = (
            p[ok] if method == "none" else multipletests(p[ok], method=_STATSMODELS.get(method, method))[1]
        )
    return out


def check_adjustment_stated(tests: pd.DataFrame) -> pd.DataFrame:
    """``tests`` unchanged, or ``ValueError`` naming the rows with a ``p_adjusted`` but no ``adjust_method``.

    >>> check_adjustment_stated(pd.DataFrame({"p_adjusted": [0.2], "adjust_method": [None]}))
    Traceback (most recent call last):
    ...
    ValueError: adjusted p-values without their adjustment method (adjust_method) in rows [0]
    """
    if "p_adjusted" not in tests.columns:
        return tests
    method = (
        tests["adjust_method"] if "adjust_method" in tests.columns else pd.Series(None, index=tests.index)
    )
    missing = tests["p_adjusted"].notna() & (method.isna() | (method.astype(str).str.strip() == ""))
    if missing.any():
        raise ValueError(
            f"adjusted p-values without their adjustment method (adjust_method) in rows {list(tests.index[missing])}"
        )
    return tests


def adjust_pvalues(
    tests: pd.DataFrame, *, method: str = "fdr_bh", by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Adjust the ``p_value`` column of a tests table for multiple comparisons.

    Parameters
    ----------
    tests : DataFrame
        A frame with a ``p_value`` column (normally in the ``tests.csv`` vocabulary). Not mutated.
    method : str, keyword-only
        ``fdr_bh`` (Benjamini-Hochberg, default), ``fdr_by`` (Benjamini-Yekutieli), ``holm``,
        ``hochberg``, ``hommel``, ``bonferroni`` or ``none``; R ``p.adjust``'s ``BH``, ``fdr`` and
        ``BY`` are accepted and written under the canonical name.
    by : column name(s), keyword-only
        Adjust separately within each group of these columns (e.g. ``"study"`` or
        ``["study", "metric"]``: one family of tests per group). ``None`` = one family.

    Returns
    -------
    DataFrame: a copy of ``tests`` with ``p_adjusted`` (same index) and ``adjust_method`` filled;
    ``adjust_method`` is ``method`` plus, when ``by`` is given, ``" by <columns>"``.
    Rows whose ``p_value`` is NaN keep a NaN ``p_adjusted`` and do not count in the family size.

    Notes
    -----
    Computed by :func:`statsmodels.stats.multitest.multipletests` on the non-missing p-values of
    each family (``hochberg`` is its ``simes-hochberg``), which gives the same values as R
    ``p.adjust``. Groups with a missing key in ``by`` form their own family.

    References
    ----------
    Holm S (1979) Scand J Stat 6:65-70. Hochberg Y (1988) Biometrika 75:800-802. Hommel G (1988)
    Biometrika 75:383-386. Benjamini Y, Hochberg Y (1995) JRSS B 57:289-300.
    Benjamini Y, Yekutieli D (2001) Ann Stat 29:1165-1188.

    Examples
    --------
    >>> t = pd.DataFrame({"p_value": [0.01, 0.04, 0.03, None, 0.02]})
    >>> adjust_pvalues(t, method="holm")
       p_value  p_adjusted adjust_method
    0     0.01        0.04          holm
    1     0.04        0.06          holm
    2     0.03        0.06          holm
    3      NaN         NaN          holm
    4     0.02        0.06          holm
    """
    method = R_ALIASES.get(method, method)
    if method not in ADJUST_METHODS:
        raise ValueError(
            f"unknown method {method!r}; use one of {ADJUST_METHODS} (or R's {tuple(R_ALIASES)})"
        )
    if "p_value" not in tests.columns:
        raise KeyError("tests has no 'p_value' column")
    p = pd.to_numeric(tests["p_value"], errors="coerce").astype(float)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p_value outside [0, 1]")
    out = tests.copy()
    keys = [by] if isinstance(by, str) else list(by or [])
    missing = [k for k in keys if k not in tests.columns]
    if missing:
        raise KeyError(f"by columns not in tests: {missing}")
    if keys:
        adjusted = p.groupby([tests[k] for k in keys], dropna=False, observed=True, sort=False).transform(
            lambda s: pd.Series(_adjust(s.to_numpy(), method), index=s.index)
        )
        label = f"{method} by {','.join(keys)}"
    else:
        adjusted = pd.Series(_adjust(p.to_numpy(), method), index=tests.index)
        label = method
    out["p_adjusted"] = adjusted.astype(float)
    out["adjust_method"] = label
    return out
