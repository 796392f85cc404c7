"""Group-by without ``groupby``: run heads, stable orders and rows per group on integer codes.

Each function computes what a ``sort_values``/``groupby`` would, on NumPy arrays, in one pass where the
input is (almost) in order already; its plain-pandas reference is :mod:`cyberobs_lib.kernels.reference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "first_of_runs",
    "lexsort_text_ties",
    "rows_per_group",
    "sort_key",
    "stable_order",
    "sum_per_group",
    "value_ranks",
]

_LAST = np.iinfo(np.int64).max


def first_of_runs(keys: np.ndarray, which: Literal["first", "last"] = "first") -> np.ndarray:
    """Mask of the first (``"last"``: last) element of each run of equal adjacent keys.

    Parameters
    ----------
    keys : ndarray
        Any array whose elements compare with ``!=``.
    which : {"first", "last"}
        Which element of a run is kept.

    Returns
    -------
    ndarray of bool
        One element per key; as ``~Series(keys).eq(Series(keys).shift())`` for ``"first"``.

    Examples
    --------
    >>> first_of_runs(np.array([3, 3, 1, 2, 2])).tolist(), first_of_runs(np.array([3, 3, 1]), "last").tolist()
    ([True, False, True, True, False], [False, True, True])
    """
    keep = np.ones(len(keys), dtype=bool)
    if which == "first":
        keep[1:] = keys[1:] != keys[:-1]
    else:
        keep[:-1] = keys[1:] != keys[:-1]
    return keep


def sort_key(values: pd.Series) -> np.ndarray:
    """What ``sort_values`` compares, as an array: category codes for a categorical (missing last),
    ``datetime64`` as integers (NaT last), otherwise the values as objects.

    Examples
    --------
    >>> sort_key(pd.Series(["b", None, "a"], dtype="category")).tolist()[:1]
    [1]
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int64)
        return np.where(codes >= 0, codes, _LAST)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        day = values.to_numpy("datetime64[ns]").view(np.int64)
        return np.where(day == np.iinfo(np.int64).min, _LAST, day)
    return np.asarray(values, dtype=object)


def _in_order(arrays: Sequence[np.ndarray]) -> bool:
    """Whether the rows are sorted by ``arrays`` (first array first), comparing adjacent rows once."""
    ok = arrays[-1][:-1] <= arrays[-1][1:]
    for a in arrays[-2::-1]:
        ok = (a[:-1] < a[1:]) | ((a[:-1] == a[1:]) & ok)
    return bool(np.all(ok))


def stable_order(frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Row positions of ``frame`` sorted by ``keys``, as ``sort_values(keys, kind="stable")`` orders them.

    Rows already in that order are recognised in one comparison pass of adjacent rows instead of a
    sort; when the pass cannot decide (missing values, values that do not compare), it is
    ``sort_values``.

    Examples
    --------
    >>> f = pd.DataFrame({"a": ["b", "a", "a"], "b": [1, 2, 1]})
    >>> stable_order(f, ["a", "b"]).tolist(), stable_order(f.iloc[[2, 1, 0]], ["a", "b"]).tolist()
    ([2, 1, 0], [0, 1, 2])
    """
    keys = list(keys)
    try:
        if _in_order([sort_key(frame[k]) for k in keys]):
            return np.arange(len(frame))
    except TypeError:  # missing or mixed values: let sort_values decide
        pass
    return frame[keys].reset_index(drop=True).sort_values(keys, kind="stable").index.to_numpy()


def value_ranks(values: pd.Series) -> np.ndarray:
    """Integers in the order of ``values`` (equal values, equal integers): ranks of the categories of a
    categorical (each category ranked once), sorted factorization codes otherwise. Raises ``TypeError``
    for values that do not compare.

    Examples
    --------
    >>> value_ranks(pd.Series(["b", "a", "b"], dtype="category")).tolist()
    [1, 0, 1]
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        rank = np.empty(len(values.cat.categories), dtype=np.int64)
        rank[values.cat.categories.argsort()] = np.arange(len(rank))
        return rank[values.cat.codes.to_numpy()]
    return pd.factorize(values, sort=True)[0]


def lexsort_text_ties(first: np.ndarray, second: np.ndarray, text: pd.Series) -> np.ndarray:
    """Row order sorting by ``first``, then ``second`` (integer arrays), then ``text`` as ``str``,
    ties kept in row order; ``text`` is only read (and converted) on the rows tied on the two integers.

    Examples
    --------
    >>> lexsort_text_ties(np.array([1, 0, 1]), np.array([5, 5, 5]), pd.Series(["10", "x", "9"])).tolist()
    [1, 0, 2]
    """
    order = np.lexsort((second, first))
    tie = (first[order][1:] == first[order][:-1]) & (second[order][1:] == second[order][:-1])
    if tie.any():  # within each run of ties: by text
        run = np.concatenate([[0], np.cumsum(~tie)])
        inside = np.zeros(len(order), dtype=bool)
        inside[1:] |= tie
        inside[:-1] |= tie
        pos = np.flatnonzero(inside)
        ids = text.iloc[order[pos]].astype(str).to_numpy(dtype=object)
        order[pos] = order[pos][np.lexsort((pd.factorize(ids, sort=True)[0], run[pos]))]
    return order


def rows_per_group(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row positions of each group ``0 .. n_groups - 1`` (``codes``: the group of each row), each in row
    order (one stable sort by group); groups without rows get an empty array.

    Examples
    --------
    >>> [a.tolist() for a in rows_per_group(np.array([1, 0, 1, 2]), 3)]
    [[1], [0, 2], [3]]
    """
    if n_groups == 0:
        return []
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(np.bincount(codes, minlength=n_groups))[:-1])


def sum_per_group(
    codes: np.ndarray, n_groups: int, *, weights: np.ndarray | None = None, where: np.ndarray | None = None
) -> np.ndarray:
    """Rows (``weights`` None: ``int64`` counts) or sums of ``weights`` (``float64``) of each group
    ``0 .. n_groups - 1``, over the rows where ``where`` is True (all rows by default); a group without
    rows gets 0. A ``groupby(codes).size()`` / ``.sum()`` reindexed on every group, as one ``np.bincount``.

    Examples
    --------
    >>> sum_per_group(np.array([1, 0, 1, 3]), 4).tolist()
    [1, 2, 0, 1]
    >>> sum_per_group(np.array([1, 0, 1]), 2, weights=np.array([0.5, 2.0, 1.0]), where=np.array([True, True, False])).tolist()
    [2.0, 0.5]
    """
    codes = np.asarray(codes)
    if where is not None:
        codes = codes[where]
        weights = None if weights is None else np.asarray(weights)[where]
    if weights is None:
        return np.bincount(codes, minlength=n_groups).astype(np.int64)
    # float64 even without rows (numpy gives int64 zeros for an empty input)
    return np.bincount(codes, weights=np.asarray(weights, dtype=float), minlength=n_groups).astype(np.float64)
