"""Hidden cells given back by the published numbers (cyberobs_lib.disclosure.recovery, through the check).

Each scenario is a small report folder written here, with the attack of issue 16 it reproduces; the
finding must name the file and line of the hidden cell, the rule and the value an attacker recovers.
Figures are chosen so that the arithmetic is checkable by hand (stated in each test).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.disclosure import check_disclosure
from cyberobs_lib.disclosure._tables import Table
from cyberobs_lib.disclosure.recovery import recover_hidden_cells

HEADER = "indicator,group,period,n_establishments,n_audits,value,ci_low,ci_high,ci_method,suppressed\n"


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def recovered(folder: Path, min_cell: int = 5) -> pd.DataFrame:
    hits = check_disclosure(folder, min_cell=min_cell)
    return hits[hits["kind"].isin(["recovered_cell", "small_cell"]) & (hits["detail"] != "")]


def test_same_cell_published_in_another_table(tmp_path):
    # Private clinic 2025 is hidden in indicators.csv and published in annual_indicators.csv.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,Private clinic (MCO),2025,,,,,,wilson,True\n",
    )
    write(
        tmp_path,
        "tables/annual_indicators.csv",
        HEADER + "no_protection,Private clinic (MCO),2025,6,9,0.166667,0.0300534,0.563503,wilson,False\n",
    )
    hits = recovered(tmp_path)
    value = hits[hits["location"] == "line 2, column value"].iloc[0]
    assert (value.file, value.rule, value.value) == (
        "tables/indicators.csv",
        "same_cell_published",
        "value=0.166667",
    )
    assert "tables/annual_indicators.csv line 2, column value" in value.detail
    assert {"n_establishments=6", "ci_low=0.0300534"} <= set(hits["value"])


def test_same_cell_in_a_french_html_table(tmp_path):
    # The reader's page shows the hidden cell under French headings and labels.
    write(tmp_path, "tables/indicators.csv", HEADER + "has_kev,Private clinic (MCO),2025,,,,,,wilson,True\n")
    write(
        tmp_path,
        "20_cohorts.html",
        "<html><body><div class='jp-OutputArea'><table><thead><tr><th>indicateur</th><th>groupe</th>"
        "<th>période</th><th>établissements</th><th>valeur</th><th>secret</th></tr></thead><tbody>"
        "<tr><td>vulnérabilité exploitée connue (KEV)</td><td>cliniques privées (MCO)</td><td>2025</td>"
        "<td>7</td><td>28,6 %</td><td>non</td></tr></tbody></table></div></body></html>",
    )
    hits = recovered(tmp_path)
    value = hits[hits["location"] == "line 2, column value"].iloc[0]
    assert (
        value.value == "value=0.286"
        and "20_cohorts.html table 1 (line 1) line 2, column valeur" in value.detail
    )


def test_margin_recovers_a_count_and_a_share(tmp_path):
    # all = 25 establishments, 11 without protection (0.44 × 25); CH 5 of 10, EHPAD 3 of 12:
    # CHU/CHR has 25 − 10 − 12 = 3 establishments and 11 − 5 − 3 = 3 without protection (100 %).
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,CH,2025,10,12,0.5,0.236593,0.763407,wilson,False\n"
        "no_protection,EHPAD,2025,12,14,0.25,0.0889,0.5323,wilson,False\n"
        "no_protection,CHU/CHR,2025,,,,,,wilson,True\n"
        "no_protection,all,2025,25,30,0.44,0.266668,0.626693,wilson,False\n",
    )
    hits = recovered(tmp_path)
    margin = hits[hits["rule"] == "margin"].set_index("location")
    assert margin.loc["line 4, column n_establishments", "value"] == "n_establishments=3"
    assert margin.loc["line 4, column value", "value"] == "value=1 (3 of 3)"
    assert margin.loc["line 4, column n_establishments", "detail"].endswith(
        "with tables/indicators.csv line 2, 3, 5"
    )
    assert set(margin["file"]) == {"tables/indicators.csv"}


@pytest.mark.parametrize(("total", "found"), [("0.16", ["value=0"]), ("0", [])])
def test_a_hidden_zero_counts_unless_the_total_is_zero(tmp_path, total, found):
    # all: 25 establishments, 4 without protection (0.16) or none; CH 4 of 12 (0.333333) or 0 of 12,
    # EHPAD 0 of 10: CHU/CHR (3 establishments) has 0 of 3 -- which a total of 0 says of every family.
    ch = "0.333333" if total != "0" else "0"
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,CH,2024,12,12,0.333333,0.1,0.6,wilson,False\n"  # a share, in any case
        f"no_protection,CH,2025,12,12,{ch},0.2,0.8,wilson,False\n"
        "no_protection,EHPAD,2025,10,14,0,0,0.24,wilson,False\n"
        "no_protection,CHU/CHR,2025,3,4,,,,wilson,True\n"
        f"no_protection,all,2025,25,30,{total},0,0.4,wilson,False\n",
    )
    hits = recovered(tmp_path)
    assert hits.loc[hits["rule"] == "margin", "value"].tolist() == found


@pytest.mark.parametrize(("blank_rows", "found"), [(1, ["n_establishments=9"]), (2, [])])
def test_a_blank_count_on_a_row_not_flagged_is_hidden_too(tmp_path, blank_rows, found):
    # Ransomware counts published (0) while the declaring structures behind them are blanked: with one
    # count blank, 22 − 5 − 8 = 9 comes back; with two, only their sum does.
    other = "" if blank_rows == 2 else "0"
    write(
        tmp_path,
        "tables/incidents_indicators.csv",
        HEADER + "ransomware,CH,all,5,,0,0,3.7,garwood_exact,False\n"
        "ransomware,EHPAD,all,8,,0,0,3.7,garwood_exact,False\n"
        "ransomware,HAD,all,,,0,0,3.7,garwood_exact,False\n"
        f"ransomware,Army,all,{other},,0,0,3.7,garwood_exact,False\n"
        "ransomware,all,all,22,,1,0.03,5.6,garwood_exact,False\n",
    )
    hits = recovered(tmp_path)
    assert hits.loc[hits["location"] == "line 4, column n_establishments", "value"].tolist() == found


def test_margin_with_two_hidden_cells_recovers_nothing(tmp_path):
    # CHU/CHR and Private clinic hidden together: their sum (3 + 6) is known, neither of them.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,CH,2025,10,12,0.5,0.2,0.8,wilson,False\n"
        "no_protection,EHPAD,2025,12,14,0.25,0.09,0.53,wilson,False\n"
        "no_protection,CHU/CHR,2025,,,,,,wilson,True\n"
        "no_protection,Private clinic (MCO),2025,,,,,,wilson,True\n"
        "no_protection,all,2025,31,36,0.419355,0.26,0.59,wilson,False\n",
    )
    assert recovered(tmp_path).empty


def test_margin_of_groups_that_do_not_cover_the_total_is_an_inequality(tmp_path):
    # 2024 shows the listed families do not add up to "all" (other families exist): 10 + 12 < 40.
    # So in 2025 the hidden CHU/CHR count is only bounded (≤ 40 − 22), not recovered.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,CH,2024,10,12,0.5,0.2,0.8,wilson,False\n"
        "no_protection,EHPAD,2024,12,14,0.25,0.09,0.53,wilson,False\n"
        "no_protection,all,2024,40,50,0.3,0.1,0.5,wilson,False\n"
        "no_protection,CH,2025,10,12,0.5,0.2,0.8,wilson,False\n"
        "no_protection,EHPAD,2025,12,14,0.25,0.09,0.53,wilson,False\n"
        "no_protection,CHU/CHR,2025,,,,,,wilson,True\n"
        "no_protection,all,2025,25,30,0.44,0.26,0.62,wilson,False\n",
    )
    assert recovered(tmp_path).empty


def test_a_few_families_beside_an_all_row_of_every_family_is_not_a_partition(tmp_path):
    # Other tables list Dialysis and Psychiatry too: "all" (40) counts them, so 40 − 10 − 12 = 18 is
    # not the hidden CHU/CHR count (3), and no complete slice says otherwise: nothing is claimed.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,CH,2025,10,12,0.5,0.2,0.8,wilson,False\n"
        "no_protection,EHPAD,2025,12,14,0.25,0.09,0.53,wilson,False\n"
        "no_protection,CHU/CHR,2025,,,,,,wilson,True\n"
        "no_protection,all,2025,40,50,0.4,0.26,0.55,wilson,False\n",
    )
    write(
        tmp_path,
        "tables/other.csv",
        HEADER + "has_kev,Dialysis,2025,,,,,,wilson,True\nhas_kev,Psychiatry,2025,,,,,,wilson,True\n"
        "has_kev,all,2025,9,9,0.5,0.2,0.8,wilson,False\n",
    )
    assert recovered(tmp_path).empty


def test_margin_across_tables_national_totals(tmp_path):
    # 9 structures declared in 2025 nationally; the families' rows publish 5 + 3: Army has 1.
    write(
        tmp_path,
        "tables/incidents_national_totals.csv",
        "year,declarations,declaring_structures,malicious\n2025,9,9,4\n",
    )
    write(
        tmp_path,
        "tables/incidents_indicators.csv",
        HEADER + "declaring_structures,CH,2025,5,,5,,,,False\n"
        "declaring_structures,EHPAD,2025,0,,3,,,,False\n"
        "declaring_structures,Army,2025,,,,,,,True\n",
    )
    hits = recovered(tmp_path)
    row = hits[(hits["rule"] == "margin") & (hits["location"] == "line 4, column value")].iloc[0]
    assert row.value == "value=1" and "tables/incidents_national_totals.csv line 2" in row.detail


def test_declarations_add_up_over_the_years_establishments_do_not(tmp_path):
    # CH declared 3 + ? + 2 = 6 incidents over 2023-2025: 1 in 2024. Its audited establishments
    # (8, ?, 9; 12 over all years, each counted once) give nothing back.
    write(
        tmp_path,
        "tables/incidents_indicators.csv",
        HEADER + "declarations,CH,2023,,,3,,,,False\ndeclarations,CH,2024,,,,,,,True\n"
        "declarations,CH,2025,,,2,,,,False\ndeclarations,CH,all,,,6,,,,False\n"
        "no_protection,CH,2023,8,9,0.5,,,,False\nno_protection,CH,2024,,,,,,,True\n"
        "no_protection,CH,2025,9,9,0.333333,,,,False\nno_protection,CH,all,12,27,0.5,,,,False\n",
    )
    hits = recovered(tmp_path)
    assert hits[["location", "value", "rule"]].values.tolist() == [
        ["line 3, column value", "value=1", "margin"]
    ]
    assert "over period" in hits["detail"].iloc[0]


def test_pairwise_difference_gives_the_hidden_share_back(tmp_path):
    # EHPAD 0.311111 (14 of 45) published, clinic hidden; risk difference EHPAD − clinic = 0.144444:
    # clinic = 0.166667 = 1 of 6.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,EHPAD,2025,45,56,0.311111,0.195287,0.456648,wilson,False\n"
        "no_protection,Private clinic (MCO),2025,,,,,,wilson,True\n",
    )
    write(
        tmp_path,
        "tables/tests_cohorts.csv",
        "study,metric,test,variant,group_a,group_b,n_a,n_b,p_value,effect_size,effect_size_kind,suppressed\n"
        "cohorts,no_protection,fisher_exact,pairwise,EHPAD,Private clinic (MCO),45,6,0.656568,0.144444,risk_difference,False\n",
    )
    hits = recovered(tmp_path)
    row = hits[hits["rule"] == "pairwise_difference"].iloc[0]
    assert (row.file, row.location, row.value) == (
        "tables/indicators.csv",
        "line 3, column value",
        "value=0.166667 (1 of 6)",
    )
    assert "tables/tests_cohorts.csv line 2" in row.detail


def test_pairwise_difference_that_fits_no_count_is_not_claimed(tmp_path):
    # The same effect with n_b = 7: 0.166667 × 7 is not an integer, so it is not the clinic's share.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,EHPAD,2025,45,56,0.311111,0.19,0.45,wilson,False\n"
        "no_protection,Private clinic (MCO),2025,,,,,,wilson,True\n",
    )
    write(
        tmp_path,
        "tables/tests_cohorts.csv",
        "study,metric,test,group_a,group_b,n_a,n_b,effect_size,effect_size_kind\n"
        "cohorts,no_protection,fisher_exact,EHPAD,Private clinic (MCO),45,7,0.144444,risk_difference\n",
    )
    assert recovered(tmp_path).empty


def test_global_test_over_a_hidden_group(tmp_path):
    # n = 62 over CH|CHU/CHR|EHPAD, pairwise counts CH 8 and EHPAD 51 published, CHU/CHR hidden: 3.
    tests = (
        "study,metric,test,variant,group_a,group_b,n_a,n_b,p_value,effect_size,effect_size_kind,suppressed\n"
        "cohorts,no_protection,fisher_exact,global,CH|CHU/CHR|EHPAD,,62,,{p},{v},cramers_v,False\n"
        "cohorts,no_protection,fisher_exact,pairwise,CHU/CHR,EHPAD,,,,,risk_difference,True\n"
        "cohorts,no_protection,fisher_exact,pairwise,CH,EHPAD,8,51,1,0.05,risk_difference,False\n"
    )
    write(tmp_path, "tables/tests_cohorts.csv", tests.format(p="0.82", v="0.171"))
    row = recovered(tmp_path).iloc[0]
    assert (row.location, row.rule, row.value) == (
        "line 2, column n_a",
        "global_test_includes_hidden_cell",
        "n_CHU/CHR=3",
    )
    # Withheld (statistic, p-value and effect blank): nothing computed over the hidden group is published.
    write(tmp_path, "tables/tests_cohorts.csv", tests.format(p="", v=""))
    assert recovered(tmp_path).empty


def test_model_total_minus_the_other_levels(tmp_path):
    # n = 62 = 8 (CH, reference) + CHU/CHR + 45 + 6: CHU/CHR has 3.
    write(
        tmp_path,
        "tables/odds_ratios.csv",
        "term,level,reference,odds_ratio,n,n_family,n_reference,suppressed\n"
        "family,CHU/CHR,CH,,62,,8,True\n"
        "family,EHPAD,CH,1.2,62,45,8,False\n"
        "family,Private clinic (MCO),CH,0.8,62,6,8,False\n"
        "legal_status,public,private_forprofit,1.1,62,62,,False\n",
    )
    row = recovered(tmp_path).iloc[0]
    assert (row.file, row.location, row.rule, row.value) == (
        "tables/odds_ratios.csv",
        "line 2, column n_family",
        "model_partition",
        "n_family=3",
    )


def test_two_by_two_by_difference(tmp_path):
    # 93 establishments, 62 exposed; 7 with an incident, 6 of them exposed: 1 unexposed with an incident.
    write(
        tmp_path,
        "tables/incidents_odds_ratios.csv",
        "exposure,odds_ratio,n,n_exposed,events,events_exposed\nkev_or_remote_admin,3.7,93,62,7,6\n",
    )
    row = recovered(tmp_path).iloc[0]
    assert (row.location, row.kind, row.rule, row.value) == (
        "line 2, column n",
        "small_cell",
        "small_cell_by_difference",
        "events_among_the_unexposed=1",
    )


def test_well_suppressed_folder_passes(tmp_path):
    # Two hidden groups per margin, their pairwise tests withheld, the global test recomputed without them,
    # the model's n without them, every 2×2 cell ≥ 5.
    write(
        tmp_path,
        "tables/indicators.csv",
        HEADER + "no_protection,CH,2025,10,12,0.5,0.2,0.8,wilson,False\n"
        "no_protection,EHPAD,2025,12,14,0.25,0.09,0.53,wilson,False\n"
        "no_protection,CHU/CHR,2025,,,,,,wilson,True\n"
        "no_protection,Private clinic (MCO),2025,,,,,,wilson,True\n"
        "no_protection,all,2025,31,36,0.419355,0.26,0.59,wilson,False\n",
    )
    write(
        tmp_path,
        "tables/tests_cohorts.csv",
        "study,metric,test,group_a,group_b,n_a,n_b,p_value,effect_size,effect_size_kind,suppressed\n"
        "cohorts,no_protection,fisher_exact,CH|EHPAD,,22,,0.4,0.28,cramers_v,False\n"
        "cohorts,no_protection,fisher_exact,CH,EHPAD,10,12,0.4,0.25,risk_difference,False\n"
        "cohorts,no_protection,fisher_exact,CH,CHU/CHR,,,,,risk_difference,True\n",
    )
    write(
        tmp_path,
        "tables/incidents_odds_ratios.csv",
        "exposure,odds_ratio,n,n_exposed,events,events_exposed\nhas_kev,1.5,93,56,17,10\n",
    )
    assert check_disclosure(tmp_path).empty


def test_recover_hidden_cells_on_tables_directly():
    table = Table.from_rows(
        "t.csv",
        "",
        [
            ["indicator", "group", "period", "n_establishments", "suppressed"],
            ["x", "A", "2025", "7", "False"],
            ["x", "B", "2025", "", "True"],
            ["x", "all", "2025", "9", "False"],
        ],
    )
    findings = recover_hidden_cells([table], min_cell=5)
    assert [(f[1], f[3], f[4]) for f in findings] == [
        ("line 3, column n_establishments", "n_establishments=2", "margin")
    ]


@pytest.mark.parametrize("total", ["9", ""])
def test_hidden_total_is_recovered_too(total):
    rows = [
        ["indicator", "group", "period", "n_establishments", "suppressed"],
        ["x", "A", "2025", "7", "False"],
        ["x", "B", "2025", "6", "False"],
        ["x", "all", "2025", total, "True" if not total else "False"],
    ]
    findings = recover_hidden_cells([Table.from_rows("t.csv", "", rows)], min_cell=5)
    assert [(f[1], f[3]) for f in findings] == (
        [] if total else [("line 4, column n_establishments", "n_establishments=13")]
    )
