"""Cells as spreadsheets write them: whole dates, French numbers, optional cells that never reject a row,
FINESS numbers that lost their leading zero (small frames and small dataset folders written here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.parsing import parse_dates, parse_float, parse_int
from cyberobs_lib.validate import RULES, check_dataset

TODAY = "2026-01-01"
NS = np.dtype("datetime64[ns]")


# --------------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------------
def _dates(cells):
    parsed, bad = parse_dates(pd.Series(cells, dtype=object, name="d"))
    return parsed, bad


def test_a_date_must_be_whole():
    parsed, bad = _dates(["2024-03-01garbage", "2024-03-01 x", "2024-03-01", "15/06/2023abc"])
    assert bad.tolist() == [True, True, False, True]
    assert parsed.isna().tolist() == [True, True, False, True]


def test_iso_date_times_with_fractions_and_offsets_become_naive_utc():
    parsed, bad = _dates(
        [
            "2024-03-01T10:22:33",
            "2024-03-01T10:22:33.5",
            "2024-03-01T10:22:33.123456789123",  # beyond nanoseconds: truncated
            "2024-03-01T10:22:33Z",
            "2024-03-01T10:22:33+02:00",
            "2024-03-01T10:22:33.25-0530",
            "2024-03-01 10:22",
            "2024-03-01T10:22:33,5",
        ]
    )
    assert not bad.any() and parsed.dtype == NS
    assert parsed.tolist() == [
        pd.Timestamp("2024-03-01 10:22:33"),
        pd.Timestamp("2024-03-01 10:22:33.5"),
        pd.Timestamp("2024-03-01 10:22:33.123456789"),
        pd.Timestamp("2024-03-01 10:22:33"),
        pd.Timestamp("2024-03-01 08:22:33"),
        pd.Timestamp("2024-03-01 15:52:33.25"),
        pd.Timestamp("2024-03-01 10:22"),
        pd.Timestamp("2024-03-01 10:22:33.5"),
    ]


def test_a_naive_date_time_after_an_offset_one_keeps_its_own_time():
    # pandas' ISO8601 parser lends the offset of one cell to the naive ones after it: not here
    parsed, bad = _dates(["2024-03-01T10:00:00+02:00", "2024-03-01T09:05:00", "2024-03-01"])
    assert parsed.tolist() == [pd.Timestamp("2024-03-01 08:00"), pd.Timestamp("2024-03-01 09:05"),
                               pd.Timestamp("2024-03-01")]  # fmt: skip
    assert not bad.any()


@pytest.mark.parametrize(
    "cells",
    [
        [None],
        ["x"],
        ["2024-03-01"],
        ["2024-03-01T10:22:33.123456789Z", "01/03/2024", "2024-03-01T10:22+01:00"],
        [pd.Timestamp("2024-03-01 10:00"), "2024-03-02"],
    ],
)
def test_dates_are_always_datetime64_ns(cells):
    parsed, _ = _dates(cells)
    assert parsed.dtype == NS and parsed.name == "d"


def test_french_dates_as_excel_writes_them():
    parsed, bad = _dates(["01/03/2024", "1/3/2024", "01/03/2024 09:05", "31/12/2023 23:59:59", "29/02/2023"])
    assert bad.tolist() == [False, False, False, False, True]
    assert parsed.tolist()[:4] == [
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-01 09:05"),
        pd.Timestamp("2023-12-31 23:59:59"),
    ]


@pytest.mark.parametrize(
    "cell",
    ["2024-03", "20240301", "01/03/24", "2024/03/01", "03-01-2024", "2024-03-01Z", "2024-03-01T10:22:33+25:00",
     "2024-02-30", "2024-03-01T24:30", "1 mars 2024", "", "2024-03-01t10:22"],
)  # fmt: skip
def test_anything_else_is_not_a_date(cell):
    parsed, bad = _dates([cell])
    assert bad.tolist() == [True] and parsed.isna().all()


def test_dates_per_distinct_value_equal_direct_parsing():
    cells = ["2024-03-01", "2024-03-01T10:00+02:00", "2024-03-01T09:05", "01/03/2024 10:00", "bad", None,
             "2024-03-01T10:22:33.123Z", "2024-03-01garbage"]  # fmt: skip
    values = pd.Series(np.random.default_rng(1).choice(np.array(cells, dtype=object), 4000), name="d")
    got, bad = parse_dates(values)
    want, want_bad = parse_dates.__wrapped__(values)
    pd.testing.assert_series_equal(got, want)
    pd.testing.assert_series_equal(bad, want_bad, check_names=False)
    assert got.dtype == NS and bad.any() and not bad.all()


# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------
def test_french_integers():
    n, bad = parse_int(
        pd.Series(["1 804", "1\u00a0804", "1\u202f804", "1804,0", "12.0", " 80 ", "-1 804", None])
    )
    assert n.dtype == "Int64"
    assert n.tolist() == [1804, 1804, 1804, 1804, 12, 80, -1804, pd.NA]
    assert not bad.any()


@pytest.mark.parametrize("cell", ["1.804", "1,804", "1804,5", "12 34", "1 8040", "douze", "1.804,0", "inf"])
def test_integers_never_guessed(cell):
    # a dot or a comma is a decimal separator: 1.804 is not 1804, it is reported
    n, bad = parse_int(pd.Series([cell]))
    assert bad.tolist() == [True] and n.isna().all()


def test_french_decimals():
    x, bad = parse_float(pd.Series(["3,5", "1 804,5", "1\u202f804,5", "1.804", "7", "-0,25", None]))
    assert x.dtype == "float64"
    assert x.tolist()[:6] == [3.5, 1804.5, 1804.5, 1.804, 7.0, -0.25] and np.isnan(x.iloc[6])
    assert not bad.any()
    _, bad = parse_float(pd.Series(["1.804,5", "1,804.5", "3,5,1", "nan"]))
    assert bad.all()


# --------------------------------------------------------------------------------------------------
# Dataset folders
# --------------------------------------------------------------------------------------------------
EST = "finess,name,category_code,legal_status,department,region,beds"
AUD = "audit_id,finess,audit_date,hosts_in_scope,scanner,perimeter"
FIN = "audit_id,host,vuln_id,title"
INC = "incident_id,declared_on,finess,category_code,family,nature,type,impact_on_care"


def _dataset(root: Path, *, est=(), aud=(), fin=(), inc=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (("establishments", EST, est), ("audits", AUD, aud), ("findings", FIN, fin)):
        (root / f"{name}.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    if inc is not None:
        (root / "incidents.csv").write_text("\n".join([INC, *inc]) + "\n", encoding="utf-8")
    return root


def _viol(check, file):
    v = check.violations
    return v[v["file"] == file][["row", "column", "rule", "severity", "value"]].values.tolist()


def _kept(check, name):
    t = check.tables[name]
    return t.frame.drop(index=t.rejected.index.union(t.duplicates))


def test_beds_with_a_thousands_space_keep_the_establishment_and_its_findings(tmp_path):
    ds = _dataset(
        tmp_path / "ds",
        est=["750000010,A,355,public,,,1 804", "010000024,B,355,public,,,1\u202f804"],
        aud=["A1,750000010,2024-01-15,1 804,,", "B1,010000024,15/01/2024,2,,"],
        fin=["A1,192.0.2.1,nessus:1,t", "B1,192.0.2.2,nessus:1,t"],
    )
    check = check_dataset(ds, today=TODAY)
    assert check.violations.empty, check.violations.to_string()
    assert _kept(check, "establishments")["beds"].tolist() == [1804, 1804]
    assert _kept(check, "audits")["hosts_in_scope"].tolist() == [1804, 2]
    assert len(_kept(check, "findings")) == 2


def test_bad_optional_establishment_cells_are_blanked_with_a_warning(tmp_path):
    ds = _dataset(
        tmp_path / "ds",
        est=[
            "750000010,A,355,bizarre,,,douze",
            "010000024,B,355,public,0612345678,99,-5",
            "2A0000212,C,355,public,2a,1,1.804",
        ],
        aud=["A1,750000010,2024-01-15,1,,"],
        fin=["A1,192.0.2.1,nessus:1,t"],
    )
    check = check_dataset(ds, today=TODAY)
    assert sorted(_viol(check, "establishments.csv")) == [
        [2, "beds", "not_integer", "warning", "douze"],
        [2, "legal_status", "unknown_legal_status", "warning", "bizarre"],
        [3, "beds", "negative_count", "warning", "-5"],
        [3, "department", "unknown_department", "warning", "0612345678"],
        [3, "region", "unknown_region", "warning", "99"],
        [4, "beds", "not_integer", "warning", "1.804"],
    ]
    kept = _kept(check, "establishments")
    assert kept["finess"].tolist() == ["750000010", "010000024", "2A0000212"]
    assert kept["beds"].isna().all() and kept["legal_status"].isna().tolist() == [True, False, False]
    assert kept["department"].tolist() == [pd.NA, pd.NA, "2A"] and kept["region"].tolist() == [
        pd.NA,
        pd.NA,
        "01",
    ]
    assert check.ok


def test_required_cells_still_reject(tmp_path):
    ds = _dataset(
        tmp_path / "ds",
        est=["750000010,A,355,public,,,", "690000039,B,999,public,,,"],
        aud=[
            "A1,750000010,2024-03-01garbage,1,,",
            "A2,750000010,2024-03-01T10:22:33+02:00,douze,,",
            "A3,750000010,2024-03-01T10:22:33+02:00,1 804,nessus,dmz",
        ],
        fin=["A3,192.0.2.1,nessus:1,t"],
    )
    check = check_dataset(ds, today=TODAY)
    assert _viol(check, "establishments.csv") == [[3, "category_code", "unknown_category", "error", "999"]]
    assert _viol(check, "audits.csv") == [
        [2, "audit_date", "bad_date", "error", "2024-03-01garbage"],
        [3, "hosts_in_scope", "not_integer", "error", "douze"],
    ]
    kept = _kept(check, "audits")
    # audit_date is a date: the UTC day of a date-time
    assert kept["audit_id"].tolist() == ["A3"] and kept["audit_date"].tolist() == [pd.Timestamp("2024-03-01")]
    assert kept["audit_date"].dtype == NS


def test_bad_optional_incident_cells_are_blanked_with_a_warning(tmp_path):
    ds = _dataset(
        tmp_path / "ds",
        est=["750000010,A,355,public,,,"],
        aud=["A1,750000010,2024-01-15,1,,"],
        fin=["A1,192.0.2.1,nessus:1,t"],
        inc=[
            "I1,2024-09-01,750000010,999,,malicious,zero-day,fatal",
            "I2,2024-09-02,,999,,malicious,phishing,none",  # the category is its only frame: rejected
            "I3,2024-09-03,,,CH,hostile,phishing,none",  # nature is required
        ],
    )
    check = check_dataset(ds, today=TODAY)
    assert sorted(_viol(check, "incidents.csv")) == [
        [2, "category_code", "unknown_category", "warning", "999"],
        [2, "impact_on_care", "unknown_impact", "warning", "fatal"],
        [2, "type", "unknown_incident_type", "warning", "zero-day"],
        [3, "category_code", "unknown_category", "error", "999"],
        [4, "nature", "unknown_nature", "error", "hostile"],
    ]
    kept = _kept(check, "incidents")
    assert kept["incident_id"].tolist() == ["I1"]
    assert kept[["category_code", "type", "impact_on_care"]].isna().all(axis=None)


def _lost_zero_dataset(root: Path) -> Path:
    return _dataset(
        root,
        # 10000024 → 010000024 passes the check key; 10000025 → 010000025 does not
        est=["10000024,A,355,public,,,10", "10000025,B,355,public,,,10", "750000010,C,355,public,,,10"],
        aud=["A1,10000024,2024-01-15,1,,", "A2,10000025,2024-01-15,1,,", "A3,750000010,2024-01-15,1,,"],
        fin=["A1,192.0.2.1,nessus:1,t", "A3,192.0.2.1,nessus:1,t"],
        inc=["I1,2024-09-01,10000024,,,malicious,,", "I2,2024-09-01,10000025,,,malicious,,"],
    )


def test_finess_that_lost_its_leading_zero_is_rejected_by_default(tmp_path):
    check = check_dataset(_lost_zero_dataset(tmp_path / "ds"), today=TODAY)
    for file in ("establishments.csv", "audits.csv", "incidents.csv"):
        assert _viol(check, file) == [
            [2, "finess", "finess_leading_zero", "error", "10000024"],
            [3, "finess", "finess_leading_zero", "error", "10000025"],
        ], file
    v = check.violations
    messages = v.loc[v["rule"] == "finess_leading_zero", "message"]
    assert messages.str.startswith(
        "leading zero lost (spreadsheet?): 2 FINESS number(s) of 8 digits in"
    ).all()
    assert messages.str.contains("pad_finess=True keeps it").sum() == 3  # one per file: 10000024
    assert _kept(check, "establishments")["finess"].tolist() == ["750000010"]
    assert _kept(check, "audits")["audit_id"].tolist() == ["A3"]
    assert _kept(check, "incidents").empty
    assert "finess_leading_zero" in RULES


def test_pad_finess_keeps_the_padded_number_when_its_key_holds(tmp_path):
    check = check_dataset(_lost_zero_dataset(tmp_path / "ds"), today=TODAY, pad_finess=True)
    for file in ("establishments.csv", "audits.csv", "incidents.csv"):
        assert _viol(check, file) == [
            [2, "finess", "finess_leading_zero", "warning", "10000024"],
            [3, "finess", "finess_leading_zero", "error", "10000025"],
        ], file
    assert _kept(check, "establishments")["finess"].tolist() == ["010000024", "750000010"]
    audits = _kept(check, "audits")
    assert audits[["audit_id", "finess"]].values.tolist() == [["A1", "010000024"], ["A3", "750000010"]]
    assert _kept(check, "incidents")["finess"].tolist() == ["010000024"]
    assert len(_kept(check, "findings")) == 2  # the findings of A1 come back with it
    v = check.violations
    warn = v[(v["rule"] == "finess_leading_zero") & (v["severity"] == "warning")]
    assert warn["message"].str.contains("restored with its zero").all()


def test_a_padded_number_equal_to_an_existing_one_is_a_duplicate(tmp_path):
    ds = _dataset(
        tmp_path / "ds",
        est=["010000024,A,355,public,,,10", "10000024,A,355,public,,,10"],
        aud=["A1,010000024,2024-01-15,1,,"],
        fin=["A1,192.0.2.1,nessus:1,t"],
    )
    check = check_dataset(ds, today=TODAY, pad_finess=True)
    assert [r[2] for r in _viol(check, "establishments.csv")] == ["duplicate_row", "finess_leading_zero"]
    assert _kept(check, "establishments")["finess"].tolist() == ["010000024"]
