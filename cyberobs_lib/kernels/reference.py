"""Plain-pandas reference implementations of the kernels: obviously correct, slow, for tests and benchmarks.

One function per kernel, named after it (``<kernel>_reference``), same arguments, same result: the kernel
is right when it agrees with its reference (``tests/test_kernels.py`` compares them on seeded random
inputs; ``benchmarks/bench_kernels.py`` times both). Written with ``groupby``, ``sort_values``,
``shift`` and ``to_pylist``: what the kernels avoid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from cyberobs_lib.kernels.arrow_frames import TEXT
from cyberobs_lib.kernels.flag_counts import KEY_DTYPE, Flags

# ------------------------------------------------------------------------------ group_counts


def first_of_runs_reference(keys: np.ndarray, which: str = "first") -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.group_counts.first_of_runs`: a key differs from its neighbour."""
    s = pd.Series(keys, dtype=object)
    neighbour = s.shift(1 if which == "first" else -1)
    return (neighbour.isna() | (s != neighbour)).to_numpy(dtype=bool)


def stable_order_reference(frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.group_counts.stable_order`: ``sort_values(kind="stable")``."""
    return frame.reset_index(drop=True).sort_values(list(keys), kind="stable").index.to_numpy()


def value_ranks_reference(values: pd.Series) -> np.ndarray:
    """Dense ranks (0, 1, ...) of the values: what :func:`~cyberobs_lib.kernels.group_counts.value_ranks`
    must order the same way."""
    return (pd.Series(values.astype(object)).rank(method="dense").to_numpy() - 1).astype(np.int64)


def lexsort_text_ties_reference(first: np.ndarray, second: np.ndarray, text: pd.Series) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.group_counts.lexsort_text_ties`: a stable sort on the three keys."""
    frame = pd.DataFrame({"a": first, "b": second, "c": text.astype(str).to_numpy(dtype=object)})
    return frame.sort_values(["a", "b", "c"], kind="stable").index.to_numpy()


def rows_per_group_reference(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """:func:`~cyberobs_lib.kernels.group_counts.rows_per_group`: ``groupby(codes).indices``."""
    indices = pd.Series(np.arange(len(codes))).groupby(codes).indices
    return [np.asarray(indices.get(g, []), dtype=np.int64) for g in range(n_groups)]


def sum_per_group_reference(codes: np.ndarray, n_groups: int, *, weights=None, where=None) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.group_counts.sum_per_group`: ``groupby(codes).size()`` or ``.sum()``,
    reindexed on every group (0 for a group without rows)."""
    frame = pd.DataFrame(
        {"g": np.asarray(codes), "w": 1.0 if weights is None else np.asarray(weights, float)}
    )
    if where is not None:
        frame = frame[np.asarray(where, dtype=bool)]
    grouped = frame.groupby("g")["w"]
    out = (grouped.size() if weights is None else grouped.sum()).reindex(range(n_groups), fill_value=0)
    return out.to_numpy(dtype=np.int64 if weights is None else float)


# ------------------------------------------------------------------------------ flag_counts


def count_by_key_reference(
    keys: pd.Series, masks: Mapping[str, np.ndarray], *, total: str, key_dtype=KEY_DTYPE
) -> pd.DataFrame:
    """:func:`~cyberobs_lib.kernels.flag_counts.count_by_key`: ``groupby(keys).sum()`` of 0/1 columns."""
    frame = pd.DataFrame({total: 1, **{k: np.asarray(m, dtype=np.int64) for k, m in masks.items()}},
                         index=keys.index)  # fmt: skip
    categorical = isinstance(keys.dtype, pd.CategoricalDtype)
    sums = frame.groupby(keys.to_numpy() if not categorical else keys, sort=categorical, observed=True).sum()
    sums.index = pd.Index(sums.index.to_numpy(dtype=object)).astype(str).astype(key_dtype)
    return sums.astype("int64")


def count_flags_batches_reference(
    batches: Iterable[pa.RecordBatch], *, key: str, flags: Flags, total: str, key_dtype=KEY_DTYPE
) -> pd.DataFrame:
    """:func:`~cyberobs_lib.kernels.flag_counts.count_flags_batches`: the batches as one frame of Python
    values, each flag an ``|`` of ``==``, then :func:`count_by_key_reference` (keys in order of first
    appearance)."""
    batches = [b for b in batches if b.num_rows]
    if not batches:
        rows = pd.DataFrame({key: pd.Series(dtype=object)})
    else:
        table = pa.Table.from_batches(batches)
        rows = pd.DataFrame(
            {c: pd.Series(table.column(c).to_pylist(), dtype=object) for c in table.column_names}
        )
    masks = {}
    for name, conditions in flags.items():
        mask = pd.Series(False, index=rows.index)
        for column, value in conditions:
            if column in rows.columns:
                mask |= rows[column].map(lambda v, value=value: v is not None and v == value).astype(bool)
        masks[name] = mask.to_numpy()
    return count_by_key_reference(rows[key], masks, total=total, key_dtype=key_dtype)


# ------------------------------------------------------------------------------ arrow_frames


def to_pandas_reference(
    arrays: Mapping[str, pa.ChunkedArray],
    *,
    order: pa.Array | None = None,
    categorical: Sequence[str] = (),
    types: Mapping[str, object] | None = None,
    text=TEXT,
) -> pd.DataFrame:
    """:func:`~cyberobs_lib.kernels.arrow_frames.to_pandas`: each column as Python values, then
    ``astype`` to its nullable type (text, ``Int64``, ``boolean``; categoricals kept)."""
    table = pa.table(dict(arrays))
    if order is not None:
        table = table.take(order)
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_dictionary(column.type) and name in categorical:
            series = column.to_pandas()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            series = pd.Series(column.to_pylist(), dtype=object).astype(text)
        elif pa.types.is_integer(kind):
            series = pd.Series(column.to_pylist(), dtype=object).astype("Int64")
        elif pa.types.is_boolean(kind):
            series = pd.Series(column.to_pylist(), dtype=object).astype("boolean")
        else:
            series = column.to_pandas()
        dtype = (types or {}).get(name)
        if dtype is not None and not series.isna().any():
            series = series.astype(dtype)
        columns[name] = series.rename(name)
    return pd.DataFrame(columns, columns=table.column_names)


def stable_order_arrow_reference(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.arrow_frames.stable_order`: ``sort_values(kind="stable")`` on the
    keys as Python values (missing last)."""
    frame = pd.DataFrame({k: pd.Series(table.column(k).to_pylist(), dtype=object) for k in keys})
    return frame.sort_values(list(keys), kind="stable", na_position="last").index.to_numpy()


# ------------------------------------------------------------------------------ matching


def count_before_in_run_reference(flag: np.ndarray, key: np.ndarray) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.matching.count_before_in_run`: ``groupby(key).cumsum() - flag``."""
    f = pd.Series(np.asarray(flag, dtype=np.int64))
    return (f.groupby(key).cumsum() - f).to_numpy()


def step_events_reference(key, position, rank, prev_kept, next_kept, watched_next, watched_prev):
    """:func:`~cyberobs_lib.kernels.matching.step_events`: neighbours by ``groupby(key).shift``, the
    events of both sides stacked and sorted by (occurrence, side)."""
    occ = pd.DataFrame({"key": key, "pos": position, "rank": rank[position]})
    by_key = occ.groupby("key", sort=False)["rank"]
    cont = (by_key.shift(-1) == occ["rank"] + 1).to_numpy()
    came = (by_key.shift(1) == occ["rank"] - 1).to_numpy()
    nxt, prv = next_kept[position], prev_kept[position]
    leaves = (nxt >= 0) & ~cont
    left = leaves & watched_next
    arrives = (prv >= 0) & ~came
    arrived = arrives & watched_prev
    left_before = pd.Series(left.astype(np.int64)).groupby(key).cumsum().to_numpy() - left > 0
    kind_from = np.where(cont, 1, np.where(left, 2, 5))
    kind_to = np.where(arrived & left_before, 3, np.where(arrived, 0, 4))
    rows = np.arange(len(occ))
    from_side = pd.DataFrame({"row": rows, "side": 1, "kind": kind_from, "a": position, "b": nxt})[
        cont | leaves
    ]
    to_side = pd.DataFrame({"row": rows, "side": 0, "kind": kind_to, "a": prv, "b": position})[arrives]
    events = pd.concat([from_side, to_side]).sort_values(["row", "side"], kind="stable")
    return (events["row"].to_numpy(np.int64), events["kind"].to_numpy(np.int8),
            events["a"].to_numpy(np.int64), events["b"].to_numpy(np.int64))  # fmt: skip


def count_table_reference(first: np.ndarray, second: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.matching.count_table`: ``groupby([first, second]).size()`` unstacked."""
    sizes = pd.DataFrame({"a": first, "b": second}).groupby(["a", "b"]).size()
    full = pd.MultiIndex.from_product([range(shape[0]), range(shape[1])], names=["a", "b"])
    return sizes.reindex(full, fill_value=0).to_numpy(np.int64).reshape(shape)


def blocks_of_groups_reference(group: np.ndarray, n_groups: int, block_rows: int) -> tuple[np.ndarray, int]:
    """:func:`~cyberobs_lib.kernels.matching.blocks_of_groups`: rows before each group, ``//``."""
    sizes = pd.Series(group).value_counts().reindex(range(n_groups), fill_value=0).sort_index()
    block = (sizes.cumsum().shift(1, fill_value=0) // block_rows).to_numpy(np.int64)
    return block, int(block.max()) + 1 if n_groups else 1


def take_concat_reference(codes: Sequence[np.ndarray], uniques: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`~cyberobs_lib.kernels.matching.take_concat`: each part's values looked up, then joined."""
    return np.concatenate(
        [np.asarray(u)[np.asarray(c, dtype=np.intp)] for c, u in zip(codes, uniques, strict=True)]
    )
