"""Apply a column function once per distinct value, then map back by integer codes (the normalize idiom).

Results are pandas categoricals with string categories: millions of rows share a few thousand distinct
values, so codes are compact, and a later factorize (by the next step) costs an integer pass, not a string hash.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cyberobs_lib.parsing import distinct_probe


def factorize_na(values: pd.Series) -> tuple[np.ndarray, list]:
    """Codes (missing → ``len(uniques)``) and the distinct values followed by ``None``."""
    codes, probe = distinct_probe(pd.Series(values, copy=False))
    return codes, probe.tolist()


def categorical_from(codes: np.ndarray, values: np.ndarray, index: pd.Index) -> pd.Series:
    """Series of ``values[codes]`` as a categorical (``None``/NaN values become missing)."""
    vals = pd.Series(values, dtype=object)
    vals = vals.where(vals.notna(), None)
    res_codes, res_uniques = pd.factorize(vals, use_na_sentinel=True)
    cat = pd.Categorical.from_codes(
        res_codes[codes], categories=pd.Index(res_uniques, dtype=object).astype(str)
    )
    return pd.Series(cat, index=index)


def map_unique(values: pd.Series, func: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``func`` applied to the distinct values of ``values`` (as a ``string`` Series, missing = ``<NA>``),
    mapped back as a categorical.

    Examples
    --------
    >>> map_unique(pd.Series([" A", "b", " a", None]), lambda u: u.str.strip().str.lower()).tolist()
    ['a', 'b', 'a', nan]
    """
    s = pd.Series(values, copy=False)
    codes, uniques = factorize_na(s)
    u = pd.Series(uniques, dtype=object).astype("string")
    res = pd.Series(func(u), copy=False).to_numpy(dtype=object, na_value=None)
    return categorical_from(codes, res, s.index)


def assign_categorical(series: pd.Series, mask: np.ndarray, values) -> pd.Series:
    """Copy of a categorical Series with ``values`` set where ``mask``, adding categories as needed.

    Examples
    --------
    >>> s = pd.Series(pd.Categorical(["a", None, "b"]))
    >>> assign_categorical(s, np.array([False, True, False]), ["z"]).tolist()
    ['a', 'z', 'b']
    """
    vals = np.asarray(values, dtype=object)
    known = set(series.cat.categories)
    new = [c for c in pd.unique(vals[pd.notna(vals)]) if c not in known]
    out = series.cat.add_categories(new) if new else series.copy()
    out[mask] = vals
    return out
