"""Each performance kernel (cyberobs_lib.kernels) agrees with its plain-pandas reference.

Seeded random inputs (numpy ``default_rng``), several seeds and sizes: empty, one row, many ties, missing
values, categories absent from the data. Exact equality (values and dtypes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cyberobs_lib.kernels import arrow_frames, flag_counts, group_counts, matching
from cyberobs_lib.kernels import reference as ref

SEEDS = [0, 1, 2]
SIZES = [0, 1, 2, 7, 300]
CASES = [(seed, n) for seed in SEEDS for n in SIZES]
WORDS = np.array(["a", "b", "bb", "B", "é", "z10", "z9", "10", "9"], dtype=object)


def _words(rng, n: int, *, missing: float = 0.0, pool: int = 6) -> np.ndarray:
    """``n`` words drawn from a pool of few (ties), a share of them missing (None)."""
    out = WORDS[rng.integers(0, pool, n)].copy()
    out[rng.random(n) < missing] = None
    return out


# ------------------------------------------------------------------------------ group_counts


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("which", ["first", "last"])
def test_first_of_runs(seed, n, which):
    keys = np.sort(np.random.default_rng(seed).integers(0, 4, n))
    keys = np.random.default_rng(seed).integers(0, 3, n) if seed == 2 else keys  # unsorted runs too
    got = group_counts.first_of_runs(keys, which)
    np.testing.assert_array_equal(got, ref.first_of_runs_reference(keys, which))


def _frame(rng, n: int, *, missing: float) -> pd.DataFrame:
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 3, n), unit="D")
    frame = pd.DataFrame(
        {
            "a": pd.Categorical(_words(rng, n, missing=missing), categories=["z9", "b", "a", "unused", "bb"]),
            "d": pd.Series(dates).where(rng.random(n) >= missing),
            "t": _words(rng, n, missing=missing),
        }
    )
    return frame


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_stable_order(seed, n, missing):
    rng = np.random.default_rng(seed)
    frame = _frame(rng, n, missing=missing)
    if missing:  # object text with None does not compare: the sort path
        frame["t"] = frame["t"].where(frame["t"].notna(), None)
    else:
        frame["t"] = frame["t"].astype(str)
    keys = ["a", "d", "t"]
    got = group_counts.stable_order(frame, keys)
    np.testing.assert_array_equal(got, ref.stable_order_reference(frame, keys))
    ordered = frame.iloc[got].reset_index(drop=True)  # already in order: the one-pass path, same answer
    np.testing.assert_array_equal(
        group_counts.stable_order(ordered, keys), ref.stable_order_reference(ordered, keys)
    )


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("categorical", [True, False])
def test_value_ranks(seed, n, categorical):
    rng = np.random.default_rng(seed)
    values = pd.Series(_words(rng, n)).astype(str)
    if categorical:  # categories in an order that is not sorted, one absent
        values = values.astype(pd.CategoricalDtype(["z9", "b", "a", "B", "é", "bb", "absent", "z10"]))
    got = pd.Series(group_counts.value_ranks(values)).rank(method="dense").to_numpy() - 1
    np.testing.assert_array_equal(got.astype(np.int64), ref.value_ranks_reference(values))


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_lexsort_text_ties(seed, n):
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, 3, n), rng.integers(0, 2, n)
    text = pd.Series(_words(rng, n, missing=0.1, pool=9), index=rng.permutation(n))  # index not 0..n-1
    got = group_counts.lexsort_text_ties(first, second, text)
    np.testing.assert_array_equal(got, ref.lexsort_text_ties_reference(first, second, text))


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_rows_per_group(seed, n):
    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(0, 6)) + (1 if n else 0)
    codes = (
        rng.integers(0, max(n_groups - 1, 1), n) if n else np.zeros(0, dtype=np.int64)
    )  # last group absent
    got = group_counts.rows_per_group(codes, n_groups)
    want = ref.rows_per_group_reference(codes, n_groups)
    assert len(got) == len(want) == n_groups
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_sum_per_group(seed, n, weighted, masked):
    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(1, 6)) + 1  # the last group never drawn: an empty group
    codes = rng.integers(0, n_groups - 1, n)
    weights = rng.normal(size=n).round(3) if weighted else None
    where = rng.random(n) < 0.6 if masked else None
    got = group_counts.sum_per_group(codes, n_groups, weights=weights, where=where)
    want = ref.sum_per_group_reference(codes, n_groups, weights=weights, where=where)
    assert got.dtype == want.dtype == (np.float64 if weighted else np.int64)
    assert got[-1] == 0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------ flag_counts


def _findings(rng, n: int, *, missing: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "k": _words(rng, n, missing=missing, pool=9),
            "s": _words(rng, n, missing=missing, pool=4),
            "c": _words(rng, n, missing=missing, pool=3),
            "b": pd.array(np.where(rng.random(n) < missing, None, rng.random(n) < 0.3), dtype="boolean"),
        }
    )


FLAGS = {"is_a": [("s", "a")], "is_b": [("s", "b")], "any": [("c", "bb"), ("b", True)], "never": [("c", "x")]}


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("keys", ["object", "categorical", "string"])
def test_count_by_key(seed, n, keys):
    rng = np.random.default_rng(seed)
    f = _findings(rng, n)
    k = f["k"]
    if keys == "categorical":
        k = k.astype(pd.CategoricalDtype(["z9", "absent", *WORDS[:4]]))
    elif keys == "string":
        k = k.astype("string[pyarrow]")
    masks = {name: rng.random(n) < 0.4 for name in ("x", "y")}
    got = flag_counts.count_by_key(k, masks, total="n")
    pd.testing.assert_frame_equal(got, ref.count_by_key_reference(k, masks, total="n"), check_exact=True)


def _batches(f: pd.DataFrame, rng, *, dictionary: bool) -> list[pa.RecordBatch]:
    schema = pa.schema([(c, pa.bool_() if c == "b" else pa.string()) for c in f.columns])
    table = pa.Table.from_pandas(f, preserve_index=False, schema=schema)
    if dictionary:
        table = pa.table(
            {c: (table[c].dictionary_encode() if c != "b" else table[c]) for c in table.column_names}
        )
    cuts = np.sort(rng.integers(0, len(f) + 1, 2))
    parts = [table.slice(lo, hi - lo) for lo, hi in zip([0, *cuts], [*cuts, len(f)], strict=True)]
    return [
        pa.RecordBatch.from_arrays([c.combine_chunks() for c in t.columns], names=t.column_names)
        for t in parts
    ]


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("dictionary", [False, True])
def test_count_flags_batches(seed, n, dictionary):
    rng = np.random.default_rng(seed)
    f = _findings(rng, n)
    if seed == 1:
        f = f.drop(columns="b")  # a flag column absent: raises no flag
    batches = _batches(f, rng, dictionary=dictionary)
    got = flag_counts.count_flags_batches(batches, key="k", flags=FLAGS, total="n")
    want = ref.count_flags_batches_reference(batches, key="k", flags=FLAGS, total="n")
    if dictionary:  # keys come in dictionary order, not necessarily first appearance
        got, want = got.sort_index(), want.sort_index()
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("categorical", [False, True])
def test_flag_masks_count_what_the_batches_count(seed, n, categorical):
    """A frame in memory (flag_masks + count_by_key) and its Arrow batches (count_flags_batches) give the
    same counts: one rule for both paths."""
    rng = np.random.default_rng(seed)
    f = _findings(rng, n)
    if seed == 1:
        f = f.drop(columns="b")  # a flag column absent: raises no flag
    frame = f.astype({"s": "category", "c": "category"}) if categorical else f
    got = flag_counts.count_by_key(frame["k"], flag_counts.flag_masks(frame, FLAGS), total="n")
    want = ref.count_flags_batches_reference(
        _batches(f, rng, dictionary=False), key="k", flags=FLAGS, total="n"
    )
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_count_flags_batches_no_batches_is_count_by_key_of_nothing():
    got = flag_counts.count_flags_batches([], key="k", flags=FLAGS, total="n")
    assert list(got.columns) == ["n", *FLAGS] and len(got) == 0
    pd.testing.assert_frame_equal(got, ref.count_flags_batches_reference([], key="k", flags=FLAGS, total="n"))
    with pytest.raises(ValueError, match="at most"):
        flag_counts.count_flags_batches([], key="k", flags={str(i): [] for i in range(8)}, total="n")


# ------------------------------------------------------------------------------ arrow_frames


def _arrow_columns(rng, n: int, *, missing: float) -> dict[str, pa.ChunkedArray]:
    def nulls(values):
        return [None if m else v for v, m in zip(values, rng.random(n) < missing, strict=True)]

    words = nulls(_words(rng, n).tolist())
    half = n // 2
    return {
        "text": pa.chunked_array([pa.array(words[:half], pa.string()), pa.array(words[half:], pa.string())]),
        "large": pa.chunked_array([pa.array(words, pa.large_string())]),
        "dict": pa.chunked_array([pa.array(words, pa.string()).dictionary_encode()]),
        "cat": pa.chunked_array([pa.array(words, pa.string()).dictionary_encode()]),
        "port": pa.chunked_array([pa.array(nulls(rng.integers(0, 70000, n).tolist()), pa.int32())]),
        "count": pa.chunked_array([pa.array(rng.integers(-5, 5, n), pa.int64())]),
        "flag": pa.chunked_array([pa.array(nulls((rng.random(n) < 0.5).tolist()), pa.bool_())]),
        "ok": pa.chunked_array([pa.array(rng.random(n) < 0.5)]),
        "x": pa.chunked_array([pa.array(nulls(rng.random(n).tolist()), pa.float64())]),
    }


TYPES = {"port": "Int32", "count": "int64", "ok": "bool"}


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("missing", [0.0, 0.3])
@pytest.mark.parametrize("ordered", [False, True])
def test_to_pandas(seed, n, missing, ordered):
    rng = np.random.default_rng(seed)
    columns = _arrow_columns(rng, n, missing=missing)
    order = pa.array(rng.permutation(n)) if ordered else None
    want = ref.to_pandas_reference(columns, order=order, categorical=["cat"], types=TYPES)
    got = arrow_frames.to_pandas(dict(columns), order=order, categorical=["cat"], types=TYPES)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["cat"].dtype == "category" and got["dict"].dtype == arrow_frames.TEXT


def test_to_pandas_empties_its_input():
    arrays = {"a": pa.chunked_array([pa.array(["x"])])}
    arrow_frames.to_pandas(arrays)
    assert arrays == {}


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_stable_order_arrow(seed, n, missing):
    rng = np.random.default_rng(seed)
    c = _arrow_columns(rng, n, missing=missing)
    table = pa.table({"dict": c["dict"], "text": c["text"], "port": c["port"]})
    for keys in (["dict"], ["text"], ["dict", "port"], ["port", "text", "dict"]):
        got = arrow_frames.stable_order(table, keys)
        np.testing.assert_array_equal(got, ref.stable_order_arrow_reference(table, keys), err_msg=str(keys))


# ------------------------------------------------------------------------------ matching


def _chains(rng, n_items: int):
    """Positions in chains (some not kept), items seen at kept positions, sorted by (item, rank)."""
    n_chains = int(rng.integers(1, 5))
    per_chain = rng.integers(1, 5, n_chains)
    chain = np.repeat(np.arange(n_chains), per_chain)
    kept = rng.random(len(chain)) < 0.8
    rank = np.full(len(chain), -1)
    prev_kept = np.full(len(chain), -1)
    next_kept = np.full(len(chain), -1)
    for c in range(n_chains):
        pos = np.flatnonzero((chain == c) & kept)
        rank[pos] = np.arange(len(pos))
        prev_kept[pos[1:]], next_kept[pos[:-1]] = pos[:-1], pos[1:]
    item_chain = rng.integers(0, n_chains, n_items)
    rows = []
    for item, c in enumerate(item_chain):
        for p in np.flatnonzero((chain == c) & kept):
            if rng.random() < 0.6:
                rows.append((item, p))
    occ = np.array(rows, dtype=np.int64).reshape(-1, 2)
    occ = occ[np.lexsort((rank[occ[:, 1]], occ[:, 0]))]
    key, position = occ[:, 0], occ[:, 1]
    watched_next, watched_prev = rng.random(len(key)) < 0.8, rng.random(len(key)) < 0.8
    return key, position, rank, prev_kept, next_kept, watched_next, watched_prev


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_step_events(seed, n):
    args = _chains(np.random.default_rng(seed), n)
    got = matching.step_events(*args)
    want = ref.step_events_reference(*args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    assert set(got[1].tolist()) <= set(range(len(matching.KINDS)))


def test_step_events_every_kind():
    """Five kept positions of one chain. Item 0: seen at 0, 1, 3 (left at 1 -> 2, back at 3, then not
    watched at 4); item 1: seen at 1, 2 (not watched at 3); item 2: seen at 4 only, not watched at 3."""
    rank, prev_kept, next_kept = np.arange(5), np.array([-1, 0, 1, 2, 3]), np.array([1, 2, 3, 4, -1])
    key, position = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 3, 1, 2, 4])
    watched_next = np.array([True, True, False, True, False, True])
    watched_prev = np.array([True, True, True, True, True, False])
    args = (key, position, rank, prev_kept, next_kept, watched_next, watched_prev)
    row, kind, pos_from, pos_to = matching.step_events(*args)
    for g, w in zip((row, kind, pos_from, pos_to), ref.step_events_reference(*args), strict=True):
        np.testing.assert_array_equal(g, w)
    assert [matching.KINDS[k] for k in kind] == [
        "stays", "leaves", "reappears", "leaves_unwatched", "appears", "stays", "leaves_unwatched",
        "appears_unwatched",
    ]  # fmt: skip
    assert row.tolist() == [0, 1, 2, 2, 3, 3, 4, 5]
    assert list(zip(pos_from.tolist(), pos_to.tolist(), strict=True)) == [
        (0, 1), (1, 2), (2, 3), (3, 4), (0, 1), (1, 2), (2, 3), (3, 4)
    ]  # fmt: skip


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_count_before_in_run(seed, n):
    rng = np.random.default_rng(seed)
    key, flag = np.sort(rng.integers(0, 4, n)), rng.random(n) < 0.5
    np.testing.assert_array_equal(
        matching.count_before_in_run(flag, key), ref.count_before_in_run_reference(flag, key)
    )


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_count_table(seed, n):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 5)), 6)
    first, second = rng.integers(0, shape[0], n), rng.integers(0, 5, n)  # the last column absent
    np.testing.assert_array_equal(
        matching.count_table(first, second, shape), ref.count_table_reference(first, second, shape)
    )


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("block_rows", [1, 3, 1000])
def test_blocks_of_groups(seed, n, block_rows):
    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(1, 8)) if n else int(rng.integers(0, 2))
    group = rng.integers(0, n_groups, n) if n else np.zeros(0, dtype=np.int64)
    got = matching.blocks_of_groups(group, n_groups, block_rows)
    want = ref.blocks_of_groups_reference(group, n_groups, block_rows)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]


@pytest.mark.parametrize(("seed", "n"), CASES)
@pytest.mark.parametrize("kind", [object, str])
def test_take_concat(seed, n, kind):
    rng = np.random.default_rng(seed)
    parts = int(rng.integers(1, 4))
    uniques = [np.array(_words(rng, int(rng.integers(1, 5))).tolist(), dtype=kind) for _ in range(parts)]
    codes = [rng.integers(0, len(u), int(rng.integers(0, n + 1))) for u in uniques]
    got, want = matching.take_concat(codes, uniques), ref.take_concat_reference(codes, uniques)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype
