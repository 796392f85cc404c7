"""Rows and flagged rows per key, from a frame in memory or from Arrow record batches.

A *flag* is a named set of conditions ``(column, value)`` (a row raises the flag when any condition
holds: its ``column`` equals ``value``; missing values never do). The counts per key are the rows, then
the rows raising each flag: a ``groupby(key).sum()`` of 0/1 columns, computed here as ``np.bincount`` on
integer codes. From Arrow, the frame is never built: each record batch is counted on the integer codes of
its (dictionary-encoded) columns with one ``np.bincount`` of ``key code x 2^flags + flag bits``, and the
per-batch counts are summed per key. Plain-pandas references: :mod:`cyberobs_lib.kernels.reference`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Flags", "KEY_DTYPE", "count_by_key", "count_flags_batches", "flag_masks"]

#: Output column name -> the ``(column, value)`` conditions raising it (any of them).
Flags = Mapping[str, Sequence[tuple[str, object]]]
#: Keys of the result (its index) by default: pandas ``string`` backed by Arrow.
KEY_DTYPE = pd.StringDtype("pyarrow")
#: At most this many flags (one bit each in a ``uint8``).
MAX_FLAGS = 7


def flag_masks(frame: pd.DataFrame, flags: Flags) -> dict[str, np.ndarray]:
    """One boolean array per flag: the rows of ``frame`` where any of its conditions holds (``column ==
    value``; a missing value or a column absent from the frame never holds). What
    :func:`count_flags_batches` counts in Arrow, for a frame in memory.

    Examples
    --------
    >>> f = pd.DataFrame({"sev": ["high", None, "low"], "kev": pd.array([None, True, False], "boolean")})
    >>> {k: v.tolist() for k, v in flag_masks(f, {"hot": [("sev", "high"), ("kev", True)], "x": [("y", 1)]}).items()}
    {'hot': [True, True, False], 'x': [False, False, False]}
    """
    masks = {}
    for name, conditions in flags.items():
        mask = np.zeros(len(frame), dtype=bool)
        for column, value in conditions:
            if column in frame.columns:
                mask |= (frame[column] == value).to_numpy(dtype=bool, na_value=False)
        masks[name] = mask
    return masks


def count_by_key(
    keys: pd.Series, masks: Mapping[str, np.ndarray], *, total: str, key_dtype=KEY_DTYPE
) -> pd.DataFrame:
    """Rows and ``True`` rows of each mask per key: ``total`` then one column per mask (``int64``).

    Parameters
    ----------
    keys : Series
        The key of each row; missing keys are not counted. Categorical keys come out in category order
        (absent categories left out), other keys in order of first appearance.
    masks : mapping of str -> ndarray of bool
        One boolean array per output column, aligned with ``keys``.
    total, key_dtype
        Name of the column of row counts; dtype of the index (the keys as ``str``).

    Returns
    -------
    DataFrame
        One row per key present, indexed by the keys as text.

    Examples
    --------
    >>> k = pd.Series(["b", "a", "b", None])
    >>> count_by_key(k, {"odd": np.array([1, 0, 1, 1], bool)}, total="n").to_dict("index")
    {'b': {'n': 2, 'odd': 2}, 'a': {'n': 1, 'odd': 0}}
    """
    if isinstance(keys.dtype, pd.CategoricalDtype):
        codes, uniques = keys.cat.codes.to_numpy(), keys.cat.categories
    else:
        codes, uniques = pd.factorize(keys)
    known = codes >= 0
    everything = bool(known.all())
    size = len(uniques)
    cols = {total: np.bincount(codes if everything else codes[known], minlength=size)}
    for name, mask in masks.items():
        cols[name] = np.bincount(codes[mask if everything else mask & known], minlength=size)
    seen = cols[total] > 0
    index = pd.Index(uniques[seen]).astype(str).astype(key_dtype)
    return pd.DataFrame({k: v[seen].astype("int64") for k, v in cols.items()}, index=index)


def _codes(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (``intp``) of a column and its distinct values; nulls get the code ``len(values)``."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    indices, size = column.indices, len(column.dictionary)
    codes = (indices.fill_null(size) if indices.null_count else indices).to_numpy(zero_copy_only=False)
    return codes.astype(np.intp, copy=False), column.dictionary


def _bits(column: pa.Array, bits: Mapping[object, int]) -> np.ndarray:
    """Each row's flag bits from its value (``bits``: value -> bits; other values and nulls: 0)."""
    if pa.types.is_boolean(column.type) and set(bits) == {True}:  # a boolean column: its own bit
        return pc.cast(column.fill_null(False), pa.uint8()).to_numpy(zero_copy_only=False) * np.uint8(
            bits[True]
        )
    codes, values = _codes(column)
    per_value = np.zeros(len(values) + 1, dtype=np.uint8)
    for value, bit in bits.items():
        per_value[:-1][pc.equal(values, value).fill_null(False).to_numpy(zero_copy_only=False)] |= bit
    return per_value[codes]


def _bits_per_column(flags: Flags) -> dict[str, dict[object, int]]:
    """Column -> value -> the bits it raises (bit j: the j-th flag)."""
    if len(flags) > MAX_FLAGS:
        raise ValueError(f"at most {MAX_FLAGS} flags, got {len(flags)}")
    out: dict[str, dict[object, int]] = {}
    for j, conditions in enumerate(flags.values()):
        for column, value in conditions:
            out.setdefault(column, {})
            out[column][value] = out[column].get(value, 0) | (1 << j)
    return out


def _sums(n_flags: int) -> np.ndarray:
    """(2^n_flags x (1 + n_flags)) 0/1 matrix: column 0 sums every flag combination, column 1 + j those
    with bit j."""
    combos = np.arange(1 << n_flags)
    return np.column_stack([np.ones(len(combos)), *[(combos >> j) & 1 for j in range(n_flags)]]).astype(
        np.float64
    )


def _count_batch(
    batch: pa.RecordBatch, key: str, bits: Mapping[str, Mapping[object, int]], names: Sequence[str]
):
    """Counts per key of one record batch (columns ``names``: total then flags) as an Arrow table.

    The batch's key codes are first made dense (a Parquet dictionary holds every key of the file it
    comes from, most of them absent from a given batch); then one ``np.bincount`` of ``dense code x
    2^flags + flag bits``, summed per key by a 0/1 matrix."""
    n_flags = len(names) - 1
    columns = batch.schema.names
    codes, ids = _codes(batch.column(columns.index(key)))
    size = len(ids)  # code ``size``: no key, not counted
    seen = np.flatnonzero(np.bincount(codes, minlength=size + 1)[:size])
    if len(seen) < size:
        dense = np.full(size + 1, len(seen), dtype=np.intp)
        dense[seen] = np.arange(len(seen))
        code = dense[codes] << n_flags
    else:  # every value used (a store's partitions keep only those): the codes are dense already
        code = codes << n_flags
    for name, by_value in bits.items():
        if name in columns:
            code |= _bits(batch.column(columns.index(name)), by_value)
    width = 1 << n_flags
    table = np.bincount(code, minlength=(len(seen) + 1) * width).reshape(len(seen) + 1, width)[:-1]
    sums = (table.astype(np.float64) @ _sums(n_flags)).astype(np.int64)  # exact: counts are far below 2^53
    ids = ids if len(seen) == size else ids.take(pa.array(seen))
    return pa.table({key: ids.cast(pa.large_string()), **{n: sums[:, j] for j, n in enumerate(names)}})


def count_flags_batches(
    batches: Iterable[pa.RecordBatch], *, key: str, flags: Flags, total: str, key_dtype=KEY_DTYPE
) -> pd.DataFrame:
    """Rows and flagged rows per key of Arrow record batches, summed over the batches.

    Parameters
    ----------
    batches : iterable of RecordBatch
        Each with the column ``key`` and any of the columns the flags name (a column a batch lacks
        raises no flag); dictionary-encoded columns are counted on their codes.
    key : str
        Column of the keys; rows without a key are not counted.
    flags : mapping of str -> list of (column, value)
        Output column -> conditions raising it (a row equal to ``value`` in ``column``; ``True`` for a
        boolean column); at most :data:`MAX_FLAGS`.
    total, key_dtype
        Name of the column of row counts; dtype of the index.

    Returns
    -------
    DataFrame
        ``total`` then one ``int64`` column per flag, one row per key present, indexed by the keys (in
        order of first appearance over the batches). No rows: as :func:`count_by_key` of no rows.

    Examples
    --------
    >>> b = pa.record_batch({"k": ["x", "y", "x"], "c": ["hot", "cold", None]})
    >>> count_flags_batches([b], key="k", flags={"hot": [("c", "hot")]}, total="n").to_dict("index")
    {'x': {'n': 2, 'hot': 1}, 'y': {'n': 1, 'hot': 0}}
    """
    names = [total, *flags]
    bits = _bits_per_column(flags)
    parts = [_count_batch(b, key, bits, names) for b in batches if b.num_rows]
    if not parts:
        empty = pd.Series(dtype=object)
        masks = {name: np.zeros(0, dtype=bool) for name in flags}
        return count_by_key(empty, masks, total=total, key_dtype=key_dtype)
    whole = pa.concat_tables(parts)
    ids = pc.dictionary_encode(whole.column(key)).combine_chunks()
    codes, size = ids.indices.to_numpy(zero_copy_only=False), len(ids.dictionary)
    columns = {c: np.bincount(codes, weights=whole.column(c).to_numpy(), minlength=size).astype(np.int64)
               for c in names}  # fmt: skip
    return pd.DataFrame(columns, index=pd.Index(pd.array(ids.dictionary, dtype=key_dtype)))
