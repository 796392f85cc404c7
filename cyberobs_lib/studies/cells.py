"""Indicator cells: one audit per establishment and period, stacked once per (period, group) cell.

:func:`stack_cells` turns the per-audit frame of :func:`cyberobs_lib.studies.indicators.audit_metrics`
into the rows behind each indicator cell (a period — a calendar year or ``"all"`` — crossed with a group
of the grouping column, plus the pooled group ``"all"``), with integer cell codes, so that per-cell sums,
counts and arrays are sums over integer codes and one stable sort instead of a ``groupby`` on text keys.
:func:`audit_order` and :func:`in_text_order` put audits in (finess, audit_date, audit_id) order without
sorting text when the rows are (almost) in order already. How (the array kernels, each beside its pandas
reference): :mod:`cyberobs_lib.kernels.group_counts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from cyberobs_lib.kernels import group_counts
from cyberobs_lib.schema import Audits

AuditChoice = Literal["first", "last"]
YEAR, PERIOD, GROUP, ALL = "year", "period", "group", "all"
#: The order of audits: an establishment's audits adjacent, by date.
AUDIT_ORDER = (Audits.finess, Audits.audit_date, Audits.audit_id)


class IndicatorCells(NamedTuple):
    """Selected audits stacked once per (period, group) cell they belong to (:func:`stack_cells`)."""

    rows: pd.DataFrame  #: the columns asked for, one row per (selected audit, cell)
    cell: np.ndarray  #: cell of each row: 0, 1, ... in order of first appearance
    index: pd.MultiIndex  #: (period, group) of each cell
    n_audits: pd.Series  #: audits per cell before one is chosen per establishment (index: ``index``)


def first_of_runs(keys: np.ndarray, audit_choice: AuditChoice = "first") -> np.ndarray:
    """Mask of the first (``"last"``: last) element of each run of equal adjacent keys (the audit kept
    per establishment when its audits are adjacent; :func:`cyberobs_lib.kernels.group_counts.first_of_runs`).

    Examples
    --------
    >>> first_of_runs(np.array([3, 3, 1, 2, 2])).tolist(), first_of_runs(np.array([3, 3, 1]), "last").tolist()
    ([True, False, True, True, False], [False, True, True])
    """
    return group_counts.first_of_runs(keys, audit_choice)


def audit_order(frame: pd.DataFrame) -> np.ndarray:
    """Row positions of ``frame`` sorted by ``finess, audit_date, audit_id``, as
    ``sort_values(kind="stable")`` orders them.

    Rows already in that order (the output of
    :func:`~cyberobs_lib.studies.indicators.audit_metrics`) are recognised in one comparison pass of
    adjacent rows instead of a sort (:func:`cyberobs_lib.kernels.group_counts.stable_order`).

    Examples
    --------
    >>> m = pd.DataFrame({"finess": ["b", "a", "a"], "audit_date": pd.to_datetime(["2024-01-01"] * 3),
    ...                   "audit_id": ["3", "2", "1"]})
    >>> audit_order(m).tolist(), audit_order(m.iloc[[2, 1, 0]]).tolist()
    ([2, 1, 0], [0, 1, 2])
    """
    return group_counts.stable_order(frame, AUDIT_ORDER)


def in_text_order(aud: pd.DataFrame) -> pd.DataFrame:
    """Audits in (finess, audit_date, audit_id as text) order, so that the metrics merged from them are
    already in order and :func:`audit_order` only checks it.

    Establishments are ranked (categorical: once per category), dates compared as integers; the audit id
    only breaks the ties on (establishment, date). Inputs with missing values or dates that are not
    ``datetime64`` are returned as they are (the final sort orders them).
    """
    fin, dates = aud[Audits.finess], aud[Audits.audit_date]
    if not pd.api.types.is_datetime64_dtype(dates.dtype) or fin.isna().any() or dates.isna().any():
        return aud
    try:
        est = group_counts.value_ranks(fin)
    except TypeError:  # values that do not compare
        return aud
    day = dates.to_numpy("datetime64[ns]").view(np.int64)
    return aud.take(group_counts.lexsort_text_ties(est, day, aud[Audits.audit_id]))


def stack_cells(
    metrics: pd.DataFrame,
    *,
    by: str,
    columns: Sequence[str],
    periods: Sequence[int] | None = None,
    overall: bool = True,
    audit_choice: AuditChoice = "first",
) -> IndicatorCells:
    """Selected audits stacked once per (period, group) cell they belong to, and audits per cell.

    Parameters
    ----------
    metrics : DataFrame
        One row per audit with ``finess``, ``audit_date``, ``audit_id``, ``year``, ``by`` and
        ``columns``; not mutated.
    by : str
        Grouping column; audits without a group are left out of the groups, not of ``"all"``.
    columns : list of str
        Columns of ``metrics`` carried into ``rows``.
    periods, overall, audit_choice
        As in :func:`cyberobs_lib.studies.indicators.compute_indicators`: the calendar years (None: every
        year present), the period ``"all"``, the establishment's first or last audit of a period.

    Returns
    -------
    IndicatorCells
        ``rows`` as :func:`~cyberobs_lib.studies.indicators.select_audits` gives them per period, the
        ``by`` groups of every period first, then the group ``"all"`` of every period; ``cell`` of each
        row; ``index`` (``period``, ``group``) of each cell; ``n_audits`` per cell.

    Notes
    -----
    One stable sort by ``finess, audit_date, audit_id`` (:func:`audit_order`) serves every period (filtering a stably sorted
    frame gives the stable sort of the filtered frame); an establishment's audits are then adjacent, so
    its first (last) audit of a period is the first (last) of its run. A group named ``"all"`` is pooled
    with the group ``"all"``, as a ``groupby`` on the labels would.

    Examples
    --------
    >>> m = pd.DataFrame({"finess": ["a", "a", "b"], "audit_id": ["1", "2", "3"], "year": [2024, 2024, 2024],
    ...                   "audit_date": pd.to_datetime(["2024-01-01", "2024-05-01", "2024-02-01"]),
    ...                   "family": ["CH", "CH", "EHPAD"], "n": [5, 7, 1]})
    >>> c = stack_cells(m, by="family", columns=["n"], periods=[2024], overall=False)
    >>> c.rows["n"].tolist(), c.cell.tolist(), c.index.tolist(), c.n_audits.tolist()
    ([5, 1, 5, 1], [0, 1, 2, 2], [('2024', 'CH'), ('2024', 'EHPAD'), ('2024', 'all')], [2, 1, 3])
    """
    if audit_choice not in ("first", "last"):
        raise ValueError(f"audit_choice must be 'first' or 'last', got {audit_choice!r}")
    years = sorted(metrics[YEAR].dropna().unique().tolist()) if periods is None else list(periods)
    ordered = metrics.take(audit_order(metrics))
    est = pd.factorize(ordered[Audits.finess])[0]
    group, labels = pd.factorize(ordered[by].astype(object))  # -1: no group
    merged, labels = pd.factorize(pd.Index([*labels, ALL], dtype=object))
    n_groups, pooled = len(labels), merged[-1]
    group = np.where(group >= 0, merged[np.maximum(group, 0)], -1)
    year = ordered[YEAR]
    period_labels, by_rows, by_cells, all_rows, all_cells, n_audits = [], [], [], [], [], []
    for p, y in enumerate([*years, *([0] if overall else [])]):  # a few periods, not data rows
        period_labels.append(str(y) if y else ALL)
        pos = np.arange(len(ordered)) if not y else np.flatnonzero((year == y).to_numpy(bool, na_value=False))
        grouped = group[pos][group[pos] >= 0]
        n_audits.append(group_counts.sum_per_group(grouped, n_groups))
        n_audits[-1][pooled] += len(pos)
        chosen = pos[first_of_runs(est[pos], audit_choice)]
        g = group[chosen]
        by_rows.append(chosen[g >= 0])
        by_cells.append(p * n_groups + g[g >= 0])
        all_rows.append(chosen)
        all_cells.append(np.full(len(chosen), p * n_groups + pooled))
    rows = np.concatenate([*by_rows, *all_rows]).astype(np.intp)
    cell, cells = pd.factorize(np.concatenate([*by_cells, *all_cells]).astype(np.int64))
    index = pd.MultiIndex.from_arrays(
        [pd.Index(period_labels, dtype=object)[cells // n_groups], labels[cells % n_groups]],
        names=[PERIOD, GROUP],
    )
    counts = np.concatenate(n_audits)[cells] if len(cells) else np.zeros(0, dtype=np.int64)
    frame = ordered[list(columns)].iloc[rows].reset_index(drop=True)
    return IndicatorCells(frame, cell, index, pd.Series(counts, index=index, name="n_audits"))


def rows_per_cell(cell: np.ndarray, n_cells: int) -> list[np.ndarray]:
    """Row positions of each cell ``0 .. n_cells - 1``, each in row order
    (:func:`cyberobs_lib.kernels.group_counts.rows_per_group`).

    Examples
    --------
    >>> [a.tolist() for a in rows_per_cell(np.array([1, 0, 1, 2]), 3)]
    [[1], [0, 2], [3]]
    """
    return group_counts.rows_per_group(cell, n_cells)
