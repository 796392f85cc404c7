"""Small-cell suppression (cyberobs_lib.disclosure.suppression).

Expected values are worked out by hand from the rules stated in the docstrings: primary suppression
when 0 < n < min_cell; secondary suppression of the next smallest non-zero cell of a set that adds up to
a total and holds exactly one suppressed cell; French secrecy: fewer than 3 units, or one unit above
85 % of the cell's total (INSEE, "Le secret statistique").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.disclosure.suppression import (
    SecrecyRule,
    TableLayout,
    UnitContributions,
    suppress_small_cells,
    suppress_tests,
)
from cyberobs_lib.schema import INDICATORS_COLUMNS
from cyberobs_lib.stats._tidy import make_tests_table


def indicators(groups, counts, values, period="2024"):
    n = len(groups)
    return pd.DataFrame(
        {
            "indicator": ["no_protection"] * n,
            "group": groups,
            "period": [period] * n,
            "n_establishments": counts,
            "n_audits": counts,
            "value": values,
            "ci_low": [v - 0.1 for v in values],
            "ci_high": [v + 0.1 for v in values],
            "ci_method": ["wilson"] * n,
            "suppressed": [False] * n,
        },
        columns=list(INDICATORS_COLUMNS),
    )


def test_secondary_suppression_with_total_row():
    # CH 10 + EHPAD 2 + CHU 6 + HAD 8 = all 26. EHPAD (2 < 5) is primary; without a second hidden cell,
    # EHPAD = all - CH - CHU - HAD. The next smallest non-suppressed cell is CHU (6).
    table = indicators(["CH", "EHPAD", "CHU", "HAD", "all"], [10, 2, 6, 8, 26], [0.5, 1.0, 0.5, 0.25, 0.5])
    before = table.copy()
    out = suppress_small_cells(table, reason_col="why")
    assert out["suppressed"].tolist() == [False, True, True, False, False]
    assert out["why"].tolist() == ["", "primary", "secondary", "", ""]
    assert out.loc[[1, 2], ["value", "ci_low", "ci_high"]].isna().all().all()
    assert out.loc[[0, 3, 4], "value"].tolist() == [0.5, 0.25, 0.5]
    # Rows are never deleted, counts stay, other columns untouched, input not mutated.
    assert len(out) == 5 and out["n_establishments"].tolist() == [10, 2, 6, 8, 26]
    assert list(out.columns) == [*INDICATORS_COLUMNS, "why"]
    assert list(suppress_small_cells(table).columns) == list(INDICATORS_COLUMNS)
    pd.testing.assert_frame_equal(table, before)


def test_two_primary_cells_need_no_secondary_and_sets_are_per_period():
    table = pd.concat(
        [
            indicators(["CH", "EHPAD", "CHU", "all"], [10, 2, 3, 15], [0.5, 1.0, 0.0, 0.47], period="2023"),
            indicators(["CH", "EHPAD", "CHU", "all"], [10, 2, 6, 18], [0.5, 1.0, 0.0, 0.44], period="2024"),
        ],
        ignore_index=True,
    )
    out = suppress_small_cells(table)
    # 2023: EHPAD and CHU both primary -> no secondary. 2024: EHPAD primary, CHU (6) secondary.
    assert out["suppressed"].tolist() == [False, True, True, False, False, True, True, False]


def test_zero_count_cells_are_not_chosen():
    # EHPAD (2) primary. HAD has the smallest count but it is a known 0: hiding it protects nothing,
    # so CH (5, the smallest non-zero count, ahead of the total 7) is the secondary cell.
    table = indicators(["CH", "EHPAD", "HAD", "all"], [5, 2, 0, 7], [0.2, 0.5, np.nan, 0.29])
    out = suppress_small_cells(table)
    assert out["suppressed"].tolist() == [True, True, False, False]


def test_two_margins_iterate_until_stable():
    # family x region table with both margins. Cell (EHPAD, R1) = 2 is primary. Set "region R1": hide
    # its next smallest cell (CH, R1) = 6. Sets "family CH" and "family EHPAD" now hold one hidden cell
    # each: hide (CH, R2) = 7 and (EHPAD, R2) = 8. Then "region R2" holds two: stable.
    rows = [
        ("CH", "R1", 6),
        ("EHPAD", "R1", 2),
        ("all", "R1", 8),
        ("CH", "R2", 7),
        ("EHPAD", "R2", 8),
        ("all", "R2", 15),
        ("CH", "all", 13),
        ("EHPAD", "all", 10),
        ("all", "all", 23),
    ]
    table = pd.DataFrame(rows, columns=["family", "region", "n_establishments"]).assign(value=1.0)
    margins = [(["region"], {"family": "all"}), (["family"], {"region": "all"})]
    out = suppress_small_cells(table, layout=TableLayout(margins=margins))
    hidden = set(out.loc[out["suppressed"], ["family", "region"]].itertuples(index=False, name=None))
    assert hidden == {("EHPAD", "R1"), ("CH", "R1"), ("CH", "R2"), ("EHPAD", "R2")}
    for cols in (["region"], ["family"]):
        assert set(out.groupby(cols)["suppressed"].sum()) <= {0, 2}


def test_no_total_row_means_no_secondary_and_min_cell_option():
    table = indicators(["CH", "EHPAD"], [10, 2], [0.5, 1.0])
    assert suppress_small_cells(table)["suppressed"].tolist() == [False, True]
    assert suppress_small_cells(table, rule=SecrecyRule(min_cell=11))["suppressed"].tolist() == [True, True]
    assert suppress_small_cells(table, rule=SecrecyRule(min_cell=2))["suppressed"].tolist() == [False, False]


def test_missing_count_is_suppressed_and_existing_flag_kept():
    table = indicators(["CH", "CHU"], [10, 12], [0.5, 0.4]).astype({"n_establishments": "Int64"})
    table.loc[0, "n_establishments"] = pd.NA
    table["suppressed"] = ["false", "true"]  # as read back from a CSV
    out = suppress_small_cells(table)
    assert out["suppressed"].tolist() == [True, True]


def test_count_is_blanked_when_it_is_the_published_figure():
    freq = pd.DataFrame({"group": ["CH", "EHPAD", "all"], "period": "2024", "n_establishments": [9, 1, 10]})
    layout = TableLayout(value_cols=["n_establishments"], group_cols=["period"])
    out = suppress_small_cells(freq, layout=layout)
    assert out["n_establishments"].isna().tolist() == [True, True, False]
    assert str(out["n_establishments"].dtype) == "Int64"


def test_french_rule_dominance():
    # Cell A: 4 units contributing 90, 5, 3, 2 -> the largest holds 90 / 100 = 90 % > 85 %: secret
    # even though it has 4 >= 3 units. Cell B: 40, 30, 20, 10 -> 40 %: published. Cell C: 2 units < 3.
    table = pd.DataFrame(
        {
            "indicator": "findings",
            "group": ["A", "B", "C"],
            "period": "2024",
            "n_establishments": [4, 4, 2],
            "value": [100.0, 100.0, 30.0],
        }
    )
    contributions = pd.DataFrame(
        {
            "indicator": "findings",
            "period": "2024",
            "group": ["A"] * 4 + ["B"] * 4 + ["C"] * 2,
            "establishment": ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10"],
            "contribution": [90, 5, 3, 2, 40, 30, 20, 10, 20, 10],
        }
    )
    french = SecrecyRule("french_secrecy")
    out = suppress_small_cells(
        table, rule=french, contributions=UnitContributions(contributions), reason_col="why"
    )
    assert out["why"].tolist() == ["dominance", "", "primary"]
    # The min_count rule (5) would hide all three; the French count rule alone (3) only C.
    assert suppress_small_cells(table)["suppressed"].tolist() == [True, True, True]
    assert suppress_small_cells(table, rule=french)["suppressed"].tolist() == [False, False, True]
    # Exactly 85 % is allowed ("above 85 %" is secret): 85, 10, 5.
    edge = contributions.assign(contribution=[85, 10, 5, 0, 40, 30, 20, 10, 20, 10])
    assert not suppress_small_cells(table, rule=french, contributions=UnitContributions(edge))[
        "suppressed"
    ].iloc[0]


def test_dominance_sums_units_across_rows():
    table = pd.DataFrame({"group": ["A"], "n_establishments": [3], "value": [100.0]})
    contributions = pd.DataFrame(
        {"group": "A", "establishment": ["e1", "e1", "e2", "e3"], "contribution": [50, 40, 5, 5]}
    )  # e1 holds 90 of 100
    out = suppress_small_cells(
        table,
        rule=SecrecyRule("french_secrecy"),
        layout=TableLayout(cell_cols=["group"]),
        contributions=UnitContributions(contributions),
    )
    assert out["suppressed"].tolist() == [True]


def test_bad_arguments():
    table = indicators(["CH"], [10], [0.5])
    with pytest.raises(ValueError, match="rule"):
        SecrecyRule("k_anonymity")
    with pytest.raises(KeyError, match="count column"):
        suppress_small_cells(table, layout=TableLayout(count_col="n"))
    with pytest.raises(KeyError, match="share"):
        suppress_small_cells(table, layout=TableLayout(value_cols=["share"]))
    with pytest.raises(ValueError, match="min_cell"):
        SecrecyRule(min_cell=0)
    with pytest.raises(KeyError, match="contribution"):
        suppress_small_cells(
            table,
            rule=SecrecyRule("french_secrecy"),
            contributions=UnitContributions(pd.DataFrame({"group": ["CH"]})),
        )
    with pytest.raises(KeyError, match="cell_cols"):
        suppress_small_cells(
            table,
            rule=SecrecyRule("french_secrecy"),
            layout=TableLayout(cell_cols=["region"]),
            contributions=UnitContributions(pd.DataFrame({"region": ["R1"]})),
        )


def test_suppress_tests():
    tests = make_tests_table(
        [
            {
                "test": "mannwhitneyu",
                "group_a": "CH",
                "group_b": "EHPAD",
                "n_a": 12,
                "n_b": 4,
                "statistic": 10.0,
                "p_value": 0.03,
                "p_adjusted": 0.06,
                "effect_size": 0.4,
                "ci_low": 0.1,
                "ci_high": 0.7,
            },
            {
                "test": "mannwhitneyu",
                "group_a": "CH",
                "group_b": "CHU",
                "n_a": 12,
                "n_b": 9,
                "statistic": 40.0,
                "p_value": 0.5,
                "p_adjusted": 0.5,
                "effect_size": 0.1,
                "ci_low": -0.2,
                "ci_high": 0.4,
            },
            {"test": "binomial", "group_a": "all", "n_a": 30, "statistic": 0.7, "p_value": 0.01},  # n_b NA
        ]
    )
    before = tests.copy()
    out = suppress_tests(tests)
    assert out["suppressed"].tolist() == [True, False, False]
    assert out.loc[0, ["statistic", "p_value", "p_adjusted", "effect_size", "ci_low", "ci_high"]].isna().all()
    assert out.loc[0, "n_b"] == 4 and out.loc[1, "statistic"] == 40.0 and out.loc[2, "p_value"] == 0.01
    pd.testing.assert_frame_equal(tests, before)
    assert suppress_tests(tests, min_cell=10)["suppressed"].tolist() == [True, True, False]
    with pytest.raises(KeyError, match="n_b"):
        suppress_tests(tests.drop(columns="n_b"))
