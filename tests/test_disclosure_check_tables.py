"""check-disclosure reads every establishment count of every table, suppressed rows included.

Counts ``0 < n < min_cell`` are small cells in any count column (data-contract.md result tables, model
and incident tables), in CSV, HTML pages with French headings, Markdown and JSON; suppressed rows must be
blank but for their keys; per-establishment tables never leave confidential reports; registry counts
(eligible establishments) are public.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.disclosure import check_disclosure, identifiers_from_dataset


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def rows(folder: Path, kind: str) -> list[tuple[str, str, str, str]]:
    hits = check_disclosure(folder, recover=False)
    part = hits[hits["kind"] == kind]
    return sorted(part[["file", "location", "value", "rule"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(
    "column",
    ["n_establishments", "n_a", "n_b", "n", "n_family", "n_reference", "n_exposed", "declaring_structures",
     "n_declaring", "n_audited", "audited", "n_pairs", "n_audits", "events", "events_exposed"],
)  # fmt: skip
def test_every_count_column(tmp_path, column):
    write(tmp_path, "t.csv", f"group,{column},other\nCH,12,3\nEHPAD,4,1\nHAD,0,2\n")
    assert rows(tmp_path, "small_cell") == [
        ("t.csv", f"line 3, column {column}", f"{column}=4", f"{column}<5")
    ]


def test_min_cell_is_the_threshold(tmp_path):
    write(tmp_path, "t.csv", "group,n_establishments\nCH,9\nEHPAD,10\n")
    assert check_disclosure(tmp_path).empty
    assert [r[1] for r in rows(tmp_path, "small_cell")] == []
    hits = check_disclosure(tmp_path, min_cell=10)
    assert hits["location"].tolist() == ["line 2, column n_establishments"]


def test_suppressed_rows_are_read_too(tmp_path):
    # The army row of issue 16: suppressed, yet it says that 1 of the 2 army hospitals declared.
    write(
        tmp_path,
        "tables/incidents_indicators.csv",
        "indicator,group,period,n_establishments,n_audits,value,ci_low,ci_high,ci_method,suppressed\n"
        "declarations,Army,2025,1,,,,,garwood_exact,True\n"
        "eligible_establishments,Army,2025,2,,2,,,,False\n"
        "declarations,CH,2025,,,,,,garwood_exact,True\n",
    )
    write(
        tmp_path,
        "tables/incidents_trends.csv",
        "group,rate_ratio_per_year,n_years,first_year,last_year,declaring_structures,suppressed\n"
        "CHU/CHR,,3,2023,2025,4,True\n",
    )
    assert rows(tmp_path, "small_cell") == [
        (
            "tables/incidents_indicators.csv",
            "line 2, column n_establishments",
            "n_establishments=1",
            "n_establishments<5",
        ),
        (
            "tables/incidents_trends.csv",
            "line 2, column declaring_structures",
            "declaring_structures=4",
            "declaring_structures<5",
        ),
    ]  # the registry count of eligible army hospitals (2) is public
    assert rows(tmp_path, "suppressed_value") == [
        ("tables/incidents_indicators.csv", "line 2, column n_establishments", "n_establishments=1", "suppressed_row_keeps_value"),
        ("tables/incidents_trends.csv", "line 2, column declaring_structures", "declaring_structures=4", "suppressed_row_keeps_value"),
    ]  # fmt: skip


def test_suppressed_model_rows_keep_their_context(tmp_path):
    # n (the model), n_reference (the reference group), dispersion and df describe something else.
    write(
        tmp_path,
        "t.csv",
        "term,level,reference,rate_ratio,p_value,dispersion,n,n_family,n_reference,df,suppressed\n"
        "family,CHU/CHR,CH,,,3.2,65,,9,1,True\n"
        "family,Dialysis,CH,,0.04,3.2,65,,9,1,True\n",
    )
    assert rows(tmp_path, "suppressed_value") == [
        ("t.csv", "line 3, column p_value", "p_value=0.04", "suppressed_row_keeps_value")
    ]


def test_registry_counts_are_public_but_not_the_audits(tmp_path):
    write(
        tmp_path,
        "t.csv",
        "indicator,group,period,n_establishments,n_audits,value,suppressed\n"
        "audit_coverage,Army,2025,2,1,,True\n"
        "eligible_establishments,Army,2025,2,,2,False\n",
    )
    assert rows(tmp_path, "small_cell") == [("t.csv", "line 2, column n_audits", "n_audits=1", "n_audits<5")]
    assert [r[1] for r in rows(tmp_path, "suppressed_value")] == ["line 2, column n_audits"]


def test_registry_counts_shown_without_their_indicator(tmp_path):
    # The reader's page shows the audit coverage table without its indicator column: its 2 army
    # hospitals are the registry count published as such in the CSV, hence public there too.
    write(
        tmp_path,
        "tables/indicators.csv",
        "indicator,group,period,n_establishments,n_audits,value,suppressed\n"
        "audit_coverage,Army,2025,2,,,True\naudit_coverage,CH,2025,24,10,0.375,False\n",
    )
    write(
        tmp_path,
        "summary.html",
        "<table><tr><th>groupe</th><th>établissements</th><th>audits</th><th>secret</th></tr>"
        "<tr><td>hôpitaux des armées</td><td>2</td><td></td><td>oui</td></tr>"
        "<tr><td>Dialysis</td><td>3</td><td></td><td>oui</td></tr></table>",
    )
    assert rows(tmp_path, "small_cell") == [
        (
            "summary.html",
            "table 1 (line 1) line 3, column établissements",
            "n_establishments=3",
            "n_establishments<5",
        )
    ]


def test_withheld_two_by_two_row_keeps_the_analysis_total(tmp_path):
    write(
        tmp_path,
        "t.csv",
        "exposure,odds_ratio,n,n_exposed,events,events_exposed,suppressed\n"
        "has_kev,1.5,93,56,17,10,False\nno_protection,,93,,,,True\n",
    )
    assert check_disclosure(tmp_path).empty


def test_life_tables_count_findings_at_each_time(tmp_path):
    write(
        tmp_path,
        "survival.csv",
        "group,time_days,survival,at_risk,events,censored,n_establishments,suppressed\n"
        "CH,76,0.97,574,1,0,10,False\n"
        "EHPAD,80,0.9,20,2,1,3,False\n",
    )
    assert [r[1] for r in rows(tmp_path, "small_cell")] == ["line 3, column n_establishments"]


def test_tables_inside_pages_markdown_and_json(tmp_path):
    html = (
        "<html><body><div class='jp-OutputArea'><table><thead><tr><th>groupe</th><th>établissements</th>"
        "<th>secret</th></tr></thead><tbody><tr><td>CH</td><td>12</td><td>non</td></tr>"
        "<tr><td>hôpitaux des armées</td><td>2</td><td>oui</td></tr></tbody></table></div></body></html>"
    )
    write(tmp_path, "report.html", html)
    write(
        tmp_path, "summary.md", "# Summary\n\n| group | n_family |\n|---|---:|\n| CH | 12 |\n| Army | 2 |\n"
    )
    write(
        tmp_path, "data.json", json.dumps({"rows": [{"group": "CH", "n_a": 12}, {"group": "HAD", "n_a": 3}]})
    )
    assert rows(tmp_path, "small_cell") == [
        ("data.json", "JSON $.rows line 3, column n_a", "n_a=3", "n_a<5"),
        (
            "report.html",
            "table 1 (line 1) line 3, column établissements",
            "n_establishments=2",
            "n_establishments<5",
        ),
        ("summary.md", "Markdown table 1 (line 3) line 3, column n_family", "n_family=2", "n_family<5"),
    ]
    assert [r[1] for r in rows(tmp_path, "suppressed_value")] == [
        "table 1 (line 1) line 3, column établissements"
    ]


def test_per_establishment_tables(tmp_path):
    write(
        tmp_path,
        "tables/lifecycle.csv",
        "establishment,family,n_new\nE2dceb16771,CH,9\nEd7bf7100db,EHPAD,4\n",
    )
    write(tmp_path, "tables/pseudo.csv", "who,n\nE2dceb16771,9\nEd7bf7100db,14\nE5a0c3d9e01,8\n")
    write(tmp_path, "tables/notes.csv", "year,note\n2024,E2dceb16771 left out\n2025,none\n")
    assert rows(tmp_path, "per_establishment_rows") == [
        ("tables/lifecycle.csv", "line 1, column establishment", "2 rows", "per_establishment_column"),
        ("tables/pseudo.csv", "line 1, column who", "3 rows", "pseudonym_column"),
    ]


def test_identifiers_from_dataset_include_audit_and_incident_ids(tmp_path):
    write(
        tmp_path,
        "audits.csv",
        "audit_id,finess,audit_date,hosts_in_scope\nA000119-01,014053177,2024-03-01,2\n",
    )
    write(
        tmp_path,
        "incidents.csv",
        "incident_id,declared_on,finess,nature\nINC-000007-01,2024-05-01,014053177,malicious\n",
    )
    found = identifiers_from_dataset(tmp_path)
    assert found["audit_id"] == {"A000119-01"} and found["incident_id"] == {"INC-000007-01"}
    write(tmp_path.parent / "report", "t.csv", "pair,n\nA000119-01 to A000119-02,12\n")
    hits = check_disclosure(tmp_path.parent / "report", identifiers=found)
    assert hits[["location", "kind", "rule"]].values.tolist() == [
        ["line 2, column pair", "audit_id", "audit_id_listed"],
        ["line 2, column pair", "audit_id", "audit_id_stem_listed"],
    ]


def test_a_clean_table_of_every_kind_passes(tmp_path):
    frame = pd.DataFrame(
        {
            "indicator": ["no_protection"] * 3,
            "group": ["CH", "EHPAD", "all"],
            "period": [2025, 2025, 2025],
            "n_establishments": [8, 45, 53],
            "value": [0.25, 0.311111, 0.301887],
            "effect": [-0.0611111, 0.0, 1.2e-05],
            "suppressed": [False, False, False],
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_json(tmp_path / "t.json", orient="split")
    (tmp_path / "t.html").write_text(frame.to_html(), encoding="utf-8")
    assert check_disclosure(tmp_path).empty
