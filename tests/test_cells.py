"""Tests of cyberobs_lib.studies.cells: the rows behind each indicator cell.

The expected rows are those of :func:`cyberobs_lib.studies.indicators.select_audits` applied period by
period (the definition that ``stack_cells`` computes with one sort), on hand-made audits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.studies.cells import first_of_runs, rows_per_cell, stack_cells
from cyberobs_lib.studies.indicators import select_audits


def _metrics() -> pd.DataFrame:
    # E1: two audits in 2023 (same day: the audit id breaks the tie), one in 2024; E2: one per year;
    # E3: 2024 only, no family; rows deliberately out of order.
    return pd.DataFrame(
        {
            "audit_id": ["a3", "a1", "a2", "b1", "b2", "c1"],
            "finess": ["E1", "E1", "E1", "E2", "E2", "E3"],
            "audit_date": pd.to_datetime(
                ["2024-02-01", "2023-03-01", "2023-03-01", "2023-06-01", "2024-06-01", "2024-01-01"]
            ),
            "year": [2024, 2023, 2023, 2023, 2024, 2024],
            "family": ["CH", "CH", "CH", "EHPAD", "EHPAD", None],
            "n": [30, 10, 20, 40, 50, 60],
        }
    )


@pytest.mark.parametrize("choice", ["first", "last"])
def test_rows_of_each_cell_are_select_audits_of_its_period(choice):
    m = _metrics()
    c = stack_cells(m, by="family", columns=["audit_id"], audit_choice=choice)
    rows = c.rows.assign(period=c.index.get_level_values("period")[c.cell],
                         group=c.index.get_level_values("group")[c.cell])  # fmt: skip
    for period, year in (("2023", 2023), ("2024", 2024), ("all", None)):
        want = select_audits(m, period=year, audit_choice=choice)
        pooled = rows[(rows.period == period) & (rows.group == "all")]
        assert pooled.audit_id.tolist() == want.audit_id.tolist()
        for family in ("CH", "EHPAD"):
            got = rows[(rows.period == period) & (rows.group == family)].audit_id.tolist()
            assert got == want[want.family == family].audit_id.tolist()
    # first audits: 2023 -> a1 (tie with a2 on date, a1 < a2) and b1
    if choice == "first":
        assert rows[(rows.period == "2023") & (rows.group == "all")].audit_id.tolist() == ["a1", "b1"]


def test_audits_per_cell_count_before_choosing_and_no_group_only_in_all():
    c = stack_cells(_metrics(), by="family", columns=["n"], overall=True)
    n_audits = c.n_audits.to_dict()
    assert n_audits[("2023", "CH")] == 2 and n_audits[("2024", "all")] == 3 and n_audits[("all", "all")] == 6
    assert ("2024", None) not in n_audits and not c.index.get_level_values("group").isna().any()
    # cells in order of first appearance: groups of every period, then "all" of every period
    assert c.index.tolist() == [("2023", "CH"), ("2023", "EHPAD"), ("2024", "CH"), ("2024", "EHPAD"),
                                ("all", "CH"), ("all", "EHPAD"), ("2023", "all"), ("2024", "all"),
                                ("all", "all")]  # fmt: skip


def test_a_group_named_all_is_pooled_with_all():
    m = _metrics().assign(family=["all", "CH", "CH", "EHPAD", "EHPAD", None])
    c = stack_cells(m, by="family", columns=["n"], periods=[2024], overall=False)
    assert c.index.tolist() == [("2024", "all"), ("2024", "EHPAD")]
    assert c.n_audits.tolist() == [4, 1]  # 3 audits of 2024 + the one whose family is "all"


def test_bad_choice_and_helpers():
    with pytest.raises(ValueError, match="audit_choice"):
        stack_cells(_metrics(), by="family", columns=["n"], audit_choice="middle")
    assert first_of_runs(np.array([], dtype=int)).tolist() == []
    assert rows_per_cell(np.array([], dtype=int), 0) == []
    assert [a.tolist() for a in rows_per_cell(np.array([2, 2, 0]), 3)] == [[2], [], [0, 1]]
