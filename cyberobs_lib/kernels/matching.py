"""Item-by-item comparison of consecutive snapshots of a chain, on integer codes, with no join or loop.

Vocabulary (domain-free). Snapshots are positions ``0 .. n-1``; each position may have a previous and a
next *kept* position in its chain (``-1``: none) and a rank in the chain. An *occurrence* is an item (an
integer key) seen at a position; occurrences are sorted by (key, rank), so that "the same item at the next
kept position" is the next array element. Each occurrence also says whether its item was *watched* at the
next and at the previous kept position (it could have been seen there). Between two consecutive kept
positions an item:

===  ==================  ==============================================================================
0    appears             seen at the later one only, watched at the earlier one, never *left* before
1    stays               seen at both
2    leaves              seen at the earlier one only, watched at the later one
3    reappears           as *appears*, but the item *left* at an earlier step of its chain
4    appears_unwatched   seen at the later one only, not watched at the earlier one
5    leaves_unwatched    seen at the earlier one only, not watched at the later one
===  ==================  ==============================================================================

Plain-pandas references: :mod:`cyberobs_lib.kernels.reference`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["KINDS", "blocks_of_groups", "count_before_in_run", "count_table", "step_events", "take_concat"]

#: Event kinds, in code order (see the module docstring).
KINDS = ("appears", "stays", "leaves", "reappears", "appears_unwatched", "leaves_unwatched")


def _run_starts(key: np.ndarray) -> np.ndarray:
    """For each element of an array sorted by ``key``, the position of the first element of its run."""
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    return np.maximum.accumulate(np.where(start, np.arange(len(key)), 0))


def count_before_in_run(flag: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Number of earlier elements of the same run of equal ``key`` (array sorted by ``key``) where
    ``flag`` is true: ``groupby(key).cumsum() - flag``.

    >>> count_before_in_run(np.array([1, 1, 0, 1]), np.array([5, 5, 5, 6])).tolist()
    [0, 1, 2, 0]
    """
    excl = np.cumsum(flag) - flag
    return excl - excl[_run_starts(key)]


def step_events(
    key: np.ndarray,
    position: np.ndarray,
    rank: np.ndarray,
    prev_kept: np.ndarray,
    next_kept: np.ndarray,
    watched_next: np.ndarray,
    watched_prev: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events between consecutive kept positions, one per (occurrence, step) where something happens.

    Parameters
    ----------
    key, position : ndarray of int
        Per occurrence (sorted by key, then rank of position): the item and the position it is seen at.
    rank, prev_kept, next_kept : ndarray of int
        Per position: rank in its chain; previous and next kept position (-1: none).
    watched_next, watched_prev : ndarray of bool
        Per occurrence: its item watched at the next / previous kept position.

    Returns
    -------
    row, kind, pos_from, pos_to : ndarray
        Per event: its occurrence, its kind (code of :data:`KINDS`, ``int8``), the earlier and the later
        position of its step. Events in occurrence order; an occurrence with two events (the step that
        ends at it, the step that starts from it) has the ending one first.

    Examples
    --------
    >>> r = step_events(np.array([7, 7]), np.array([0, 1]), np.array([0, 1]), np.array([-1, 0]),
    ...                 np.array([1, -1]), np.array([True, False]), np.array([False, True]))
    >>> [a.tolist() for a in r]
    [[0], [1], [0], [1]]
    """
    a = position
    r = rank[a]
    cont = np.zeros(len(a), dtype=bool)  # occurrence i is seen again at the next kept position
    cont[:-1] = (key[1:] == key[:-1]) & (r[1:] == r[:-1] + 1)
    came = np.zeros(len(a), dtype=bool)  # occurrence i was seen at the previous kept position
    came[1:] = cont[:-1]
    leaves = (next_kept[a] >= 0) & ~cont
    left = leaves & watched_next
    gone = leaves & ~watched_next
    arrives = (prev_kept[a] >= 0) & ~came
    arrived = arrives & watched_prev
    back = arrived & (count_before_in_run(left, key) > 0)
    new = arrived & ~back
    unwatched_new = arrives & ~watched_prev

    # "from" side (stays, leaves, leaves_unwatched) and "to" side (appears, reappears, appears_unwatched);
    # an occurrence can carry both: its to-side event comes first. Merged by position (a prefix sum).
    side_from = cont | left | gone
    side_to = new | back | unwatched_new
    n_ev = side_to.astype(np.int64) + side_from
    at = np.cumsum(n_ev) - n_ev  # first event position of each occurrence
    idx_f, idx_t = np.flatnonzero(side_from), np.flatnonzero(side_to)
    at_f, at_t = at[idx_f] + side_to[idx_f], at[idx_t]
    idx = np.empty(len(idx_f) + len(idx_t), dtype=np.int64)
    kind = np.empty(len(idx), dtype=np.int8)
    pos_from = np.empty(len(idx), dtype=np.int64)
    pos_to = np.empty(len(idx), dtype=np.int64)
    idx[at_f], idx[at_t] = idx_f, idx_t
    kind[at_f] = np.select([cont[idx_f], left[idx_f]], [1, 2], 5)
    kind[at_t] = np.select([new[idx_t], back[idx_t]], [0, 3], 4)
    pos_from[at_f], pos_from[at_t] = a[idx_f], prev_kept[a[idx_t]]
    pos_to[at_f], pos_to[at_t] = next_kept[a[idx_f]], a[idx_t]
    return idx, kind, pos_from, pos_to


def count_table(first: np.ndarray, second: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``shape`` table of the number of elements per pair ``(first, second)`` of codes (``int64``):
    ``pd.crosstab(first, second)`` with every code of the shape.

    >>> count_table(np.array([0, 1, 1]), np.array([2, 0, 0]), (2, 3)).tolist()
    [[0, 0, 1], [2, 0, 0]]
    """
    n_first, n_second = shape
    counts = np.bincount(first * n_second + second, minlength=n_first * n_second)
    return counts.reshape(n_first, n_second)


def blocks_of_groups(group: np.ndarray, n_groups: int, block_rows: int) -> tuple[np.ndarray, int]:
    """Cut the groups ``0 .. n_groups - 1``, in code order, into contiguous ranges of about
    ``block_rows`` rows: the block of each group (``(rows of the groups before) // block_rows``) and the
    number of blocks (1 when there is no group). ``group``: the group of each row.

    >>> blocks_of_groups(np.array([0, 0, 1, 2, 2, 2]), 3, 2)
    (array([0, 1, 1]), 2)
    """
    per_group = np.bincount(group, minlength=n_groups)
    before = np.cumsum(per_group) - per_group
    block = before // block_rows
    return block, int(block.max()) + 1 if n_groups else 1


def take_concat(codes: Sequence[np.ndarray], uniques: Sequence[np.ndarray]) -> np.ndarray:
    """``np.concatenate([u[c] for c, u in zip(codes, uniques)])``, written straight into one object array
    (a pointer copy) when every ``uniques`` is an object array.

    >>> take_concat([np.array([1, 0]), np.array([0])], [np.array(["a", "b"], object), np.array(["c"], object)])
    array(['b', 'a', 'c'], dtype=object)
    """
    ends = np.cumsum([len(c) for c in codes])
    if all(u.dtype == object for u in uniques):
        out = np.empty(ends[-1] if len(ends) else 0, dtype=object)
        for c, u, end in zip(codes, uniques, ends, strict=True):
            np.take(u, c, out=out[end - len(c) : end])
        return out
    return np.concatenate([u[c] for c, u in zip(codes, uniques, strict=True)])
