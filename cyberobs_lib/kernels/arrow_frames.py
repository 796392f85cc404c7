"""Arrow columns to a typed pandas frame, column by column, and the stable row order of Arrow keys.

:func:`to_pandas` is ``pa.table(arrays).take(order).to_pandas()`` with the nullable pandas types, done one
column at a time (the peak memory is about the frame plus the Arrow columns not yet converted, not twice
the frame) with the Arrow work of the next column on a second thread. :func:`stable_order` is
``sort_values(keys, kind="stable")`` on Arrow columns, a dictionary column ranked through its dictionary.
Plain-pandas references: :mod:`cyberobs_lib.kernels.reference`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TEXT", "pandas_type", "sort_rank", "stable_order", "to_pandas"]

#: Text columns as pandas ``string`` backed by Arrow (compact: no Python object per cell).
TEXT = pd.StringDtype("pyarrow")


def pandas_type(arrow_type: pa.DataType, text=TEXT):
    """The nullable pandas type of an Arrow type: ``text`` for strings, ``Int64`` for integers,
    ``boolean`` for booleans; None (pyarrow's default conversion) for others.

    >>> pandas_type(pa.int32()), pandas_type(pa.float64())
    (Int64Dtype(), None)
    """
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return text
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _series(name: str, column: pa.ChunkedArray, types: Mapping[str, object], text) -> pd.Series:
    """One Arrow column as a pandas Series of its nullable type, then ``types[name]`` if it has no
    missing value."""
    series = pa.table({name: column}).to_pandas(types_mapper=lambda t: pandas_type(t, text))[name]
    del column
    dtype = types.get(name)
    if dtype is not None and not series.isna().any():
        series = series.astype(dtype)
    return series


def to_pandas(
    arrays: dict[str, pa.ChunkedArray],
    *,
    order: pa.Array | None = None,
    categorical: Sequence[str] = (),
    types: Mapping[str, object] | None = None,
    text=TEXT,
) -> pd.DataFrame:
    """A DataFrame of the Arrow columns ``arrays``, emptied as they are converted.

    Parameters
    ----------
    arrays : dict of str -> ChunkedArray
        The columns, in order; each is popped (released) once converted.
    order : Array of int, optional
        Rows taken in this order (None: as they are).
    categorical : list of str
        Dictionary columns kept as categoricals; other dictionary columns become ``text``.
    types : mapping of str -> dtype, optional
        Column -> dtype given to it when it has no missing value (e.g. ``{"port": "Int32"}``).
    text : dtype
        The pandas type of text columns.

    Returns
    -------
    DataFrame
        Columns as :func:`pandas_type` maps their Arrow type (then ``types``), ``RangeIndex``.

    Notes
    -----
    The memory freed in the Arrow pool is given back to the system at the end (NumPy and pandas allocate
    outside it): the peak is about the frame plus the Arrow columns not yet converted.

    Examples
    --------
    >>> f = to_pandas({"a": pa.chunked_array([["x", None]]), "n": pa.chunked_array([[1, 2]])},
    ...               order=pa.array([1, 0]), types={"n": "int64"})
    >>> f.dtypes.astype(str).tolist(), f["n"].tolist()
    (['string', 'int64'], [2, 1])
    """
    types = types or {}

    def arrange(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:  # Arrow kernels: no GIL held
        if order is not None:
            column = column.take(order)
        if pa.types.is_dictionary(column.type) and name not in categorical:
            column = column.cast(pa.large_string())  # pandas keeps Arrow text as large_string
        return column

    names, columns = list(arrays), {}
    pending: deque = deque()

    def convert_oldest() -> None:
        done, future = pending.popleft()
        columns[done] = _series(done, future.result(), types, text)

    with ThreadPoolExecutor(max_workers=2) as pool:  # the next columns taken while one converts
        for name in names:
            pending.append((name, pool.submit(arrange, name, arrays.pop(name))))
            if len(pending) == 2:
                convert_oldest()
        while pending:
            convert_oldest()
    pa.default_memory_pool().release_unused()
    return pd.DataFrame(columns, columns=names, copy=False)


def sort_rank(column: pa.ChunkedArray) -> np.ndarray:
    """Integer ranks giving the order of ``column`` (code-point order of text, missing values last).

    A dictionary column is ranked through its dictionary (sorted by Arrow: UTF-8 bytes, i.e. code-point
    order), not row by row: 10^7 values with 10^5 distinct ones sort as 10^5 strings.

    >>> sort_rank(pa.chunked_array([["b", None, "a", "b"]])).tolist()
    [1, 2, 0, 1]
    """
    if pa.types.is_dictionary(column.type):
        column = column.unify_dictionaries()
        values = column.chunk(0).dictionary if column.num_chunks else pa.array([], pa.string())
        rank = np.empty(len(values) + 1, dtype=np.int64)
        rank[pc.sort_indices(values).to_numpy()] = np.arange(len(values))
        rank[-1] = len(values)
        codes = [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in column.chunks]
        return rank[np.concatenate(codes) if codes else np.array([], dtype=np.int64)]
    codes, uniques = pd.factorize(column.to_pandas(), sort=True, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes).astype(np.int64)


def stable_order(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """Row order sorting ``table`` by ``keys`` (first key first; :func:`sort_rank`), ties kept in
    their order.

    >>> stable_order(pa.table({"k": ["b", "a", "b", "a"], "j": [2, 1, 1, 0]}), ["k", "j"]).tolist()
    [3, 1, 2, 0]
    """
    ranks = [sort_rank(table.column(k)) for k in keys]
    if len(ranks) == 1:
        return np.argsort(ranks[0], kind="stable")
    return np.lexsort(ranks[::-1])
