"""Linear-time building blocks for 10^7 findings: counting sort, string factorization by hashing.

A comparison sort or a hash table of millions of entries touches memory at random, and the time per
row grows with the table once it no longer fits in the processor caches. These helpers keep the
random accesses within small blocks:

* :func:`counting_argsort`: stable argsort of integer codes in a known range (counting sort, O(n + k)),
  equal to ``np.argsort(codes, kind="stable")``;
* :func:`factorize_text`: ``pd.factorize`` of a text column (object ``str`` or Arrow strings), codes in
  order of first appearance and the same uniques, computed from a 64-bit hash of the UTF-8 bytes
  (vectorized over the Arrow buffers), the hashes factorized in cache-sized blocks split by their top
  bits, and every row checked byte for byte against the first row of its code (a hash collision falls
  back to ``pd.factorize``: the result is exact).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Rows per hash block (a block's hash table stays in the processor cache).
_BLOCK_ROWS = 1 << 15
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x9E3779B97F4A7C15)


def counting_argsort(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Stable argsort of integer ``codes`` in ``[-1, n_groups)`` (-1, a missing value, sorts first).

    Equal to ``np.argsort(codes, kind="stable")``, in O(len(codes) + n_groups) (a counting sort).
    """
    codes = np.asarray(codes)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.intp)
    if codes.dtype.itemsize <= 2 and codes.dtype.kind in "iub":  # numpy's stable sort is a radix sort
        return np.argsort(codes, kind="stable")
    try:
        from pandas._libs.algos import groupsort_indexer
    except ImportError:  # pragma: no cover - private pandas API moved
        return np.argsort(codes, kind="stable")
    order, _ = groupsort_indexer(np.asarray(codes, dtype=np.intp), int(n_groups))
    return order


def _arrow_strings(values):
    """The column as one contiguous Arrow ``large_string`` array, or None when it is not text."""
    import pyarrow as pa

    if isinstance(values, pd.Series):
        values = values.array
    dtype = getattr(values, "dtype", None)
    try:
        if isinstance(values, (np.ndarray, pd.arrays.NumpyExtensionArray)):
            arr = np.asarray(values)
            if arr.dtype != object:
                return None
            out = pa.array(arr, type=pa.large_string(), from_pandas=True)
        elif hasattr(values, "_pa_array") and (
            getattr(dtype, "storage", None) in ("pyarrow", "pyarrow_numpy")
            or pa.types.is_string(values._pa_array.type)
            or pa.types.is_large_string(values._pa_array.type)
        ):
            out = values._pa_array.cast(pa.large_string())
        else:
            return None
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks() if out.num_chunks != 1 else out.chunk(0)
    if not (pa.types.is_large_string(out.type) or pa.types.is_string(out.type)):
        return None
    return out


def _buffers(arr):
    """(start, length, data) of an Arrow string array: byte offsets, byte lengths, the data bytes."""
    n = len(arr)
    import pyarrow as pa

    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offsets[:-1], np.diff(offsets), data


def _words(data: np.ndarray) -> np.ndarray:
    """The data bytes as little-endian uint64 words (a view when aligned, else a zero-padded copy)."""
    if len(data) % 8 == 0 and data.ctypes.data % 8 == 0 and len(data):
        return data.view("<u8")
    words = np.zeros(len(data) // 8 + 1, dtype="<u8")
    words.view(np.uint8)[: len(data)] = data
    return words


def _word(words: np.ndarray, start: np.ndarray, length: np.ndarray, j: int) -> np.ndarray:
    """Bytes ``8j .. 8j+7`` of each string (given by byte ``start`` and ``length``), zero past its end."""
    pos = start + 8 * j
    q = pos >> 3
    shift = ((pos & 7) * 8).astype(np.uint64)
    word = words[q] >> shift
    if shift.any():
        nxt = words[np.minimum(q + 1, len(words) - 1)]
        word |= np.where(shift > 0, nxt << ((np.uint64(64) - shift) % np.uint64(64)), np.uint64(0))
    rem = length - 8 * j
    short = rem < 8
    if short.any():
        bits = (np.clip(rem, 0, 8) * 8).astype(np.uint64)
        word &= np.where(short, (np.uint64(1) << (bits % np.uint64(64))) - np.uint64(1), ~np.uint64(0))
    return word


def _fixed_matrix(start: np.ndarray, length: np.ndarray, words: np.ndarray):
    """The strings as rows of a (n, k) word matrix view when all have one length, a multiple of 8,
    and lie back to back from an aligned start; else None."""
    n = len(start)
    if n == 0 or length[0] % 8 or start[0] % 8 or not (length == length[0]).all():
        return None
    k = int(length[0]) // 8
    if k == 0 or not (start == start[0] + length[0] * np.arange(n)).all():
        return None
    first = int(start[0]) // 8
    if first + n * k > len(words):
        return None
    return words[first : first + n * k].reshape(n, k)


def _mix(h: np.ndarray, word: np.ndarray) -> np.ndarray:
    h = (h ^ word) * _MUL1
    h ^= h >> np.uint64(31)
    return h


def _hash_strings(start: np.ndarray, length: np.ndarray, words: np.ndarray, matrix) -> np.ndarray:
    """64-bit hash of each string's bytes and length."""
    with np.errstate(over="ignore"):
        h = (length.astype(np.uint64) + _SEED) * _MUL2
        if matrix is not None:
            for j in range(matrix.shape[1]):
                h = _mix(h, matrix[:, j])
            return h
        n_words = (length + 7) // 8
        for j in range(int(n_words.max(initial=0))):
            rows = np.flatnonzero(n_words > j) if j else None
            if rows is None or len(rows) == len(h):
                h = _mix(h, _word(words, start, length, j))
            else:
                h[rows] = _mix(h[rows], _word(words, start[rows], length[rows], j))
        h ^= h >> np.uint64(29)
        return h * _MUL2


def _same_strings(rows, reps, start, length, words, matrix) -> bool:
    """Whether string ``rows[i]`` equals string ``reps[i]`` for every i (byte for byte); ``rows`` is a
    range of consecutive rows."""
    if not (length[rows] == length[reps]).all():
        return False
    if matrix is not None:
        return bool((matrix[rows[0] : rows[-1] + 1] == matrix[reps]).all())
    s_a, s_b, ln = start[rows], start[reps], length[rows]
    n_words = (ln + 7) // 8
    for j in range(int(n_words.max(initial=0))):
        sel = np.flatnonzero(n_words > j)
        if not (_word(words, s_a[sel], ln[sel], j) == _word(words, s_b[sel], ln[sel], j)).all():
            return False
    return True


def factorize_hashes(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``h`` in order of first appearance, and the first row of each code.

    Same codes as ``pd.factorize(h)``; the hashes are split by their top bits into blocks of about
    ``_BLOCK_ROWS`` rows (a stable radix sort on 16-bit keys), each block factorized on its own, then
    the codes renumbered by first row (a scatter into a row-sized array, no sort).
    """
    n = len(h)
    if n <= 2 * _BLOCK_ROWS:
        codes, uniques = pd.factorize(h)
        codes = codes.astype(np.int64, copy=False)
        first = np.full(len(uniques), n, dtype=np.int64)
        np.minimum.at(first, codes, np.arange(n))
        return codes, first
    bits = min(16, int(np.ceil(np.log2(n / _BLOCK_ROWS))))
    part = (h >> np.uint64(64 - bits)).astype(np.uint16)
    order = np.argsort(part, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=1 << bits))])
    hs = h[order]
    prov = np.empty(n, dtype=np.int64)
    base = 0
    for b in range(1 << bits):
        lo, hi = bounds[b], bounds[b + 1]
        if hi > lo:
            cc, uu = pd.factorize(hs[lo:hi])
            prov[lo:hi] = cc + base
            base += len(uu)
    del hs
    # provisional codes grow along the block-sorted rows: a code's first row is where it exceeds all before
    is_first = np.empty(n, dtype=bool)
    is_first[0] = True
    is_first[1:] = prov[1:] > np.maximum.accumulate(prov)[:-1]
    first_prov = order[is_first]  # provisional code k -> its first input row
    mark = np.zeros(n, dtype=bool)
    mark[first_prov] = True
    first = np.flatnonzero(mark)  # first rows in input order = final code order
    final_of_first_row = np.cumsum(mark) - 1
    final = final_of_first_row[first_prov]
    codes = np.empty(n, dtype=np.int64)
    codes[order] = final[prov]
    return codes, first


def factorize_text(values) -> tuple[np.ndarray, pd.Index] | None:
    """``pd.factorize`` of a text column by hashing (see the module); None when not text.

    Returns int64 codes (-1 for missing values) in order of first appearance and the uniques as an
    ``Index`` of the column's own values and dtype, as ``pd.Index(pd.factorize(values)[1])``.
    """
    done = factorize_text_hashed(values)
    return None if done is None else done[:2]


def factorize_text_hashed(values) -> tuple[np.ndarray, pd.Index, np.ndarray] | None:
    """:func:`factorize_text`, plus the 64-bit hash of each unique (distinct strings, distinct hashes)."""
    arr = _arrow_strings(values)
    if arr is None:
        return None
    n = len(arr)
    start, length, data = _buffers(arr)
    words = _words(data)
    matrix = _fixed_matrix(start, length, words)
    valid = None
    if arr.null_count:
        valid = np.flatnonzero(~np.asarray(arr.is_null()))
        start, length, matrix = start[valid], length[valid], None
    h = _hash_strings(start, length, words, matrix)
    codes, first = factorize_hashes(h)
    for lo in range(0, len(codes), _BLOCK_ROWS):  # blocks: the temporaries stay in the cache
        rows = np.arange(lo, min(lo + _BLOCK_ROWS, len(codes)))
        if not _same_strings(rows, first[codes[rows]], start, length, words, matrix):
            return None  # a 64-bit hash collision: let pandas do it
    unique_hashes = h[first]
    if valid is not None:
        full = np.full(n, -1, dtype=np.int64)
        full[valid] = codes
        codes, first = full, valid[first]
    source = values.array if isinstance(values, pd.Series) else values
    if isinstance(source, (np.ndarray, pd.arrays.NumpyExtensionArray)):
        return codes, pd.Index(np.asarray(source)[first]), unique_hashes
    return codes, pd.Index(source.take(first)), unique_hashes
