"""Contract validation: every planted violation is reported with its file, row and rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.cli import main
from cyberobs_lib.validate import RULES, check_dataset, cve_list_ok, cvss_vector_ok, parse_bool, parse_dates

TODAY = "2026-01-01"

# (file, physical row, rule) planted in tests/fixtures/datasets/violations — one line per planted defect.
PLANTED = [
    ("establishments.csv", 3, "finess_leading_zero"),  # 8 digits (and 075000001 fails the key)
    ("establishments.csv", 4, "unknown_category"),  # 999
    ("establishments.csv", 5, "duplicate_id"),  # same FINESS, other content
    ("establishments.csv", 6, "negative_count"),  # beds -5
    ("establishments.csv", 7, "finess_check_key"),  # Luhn key wrong (warning)
    ("establishments.csv", 8, "unknown_legal_status"),
    ("audits.csv", 3, "duplicate_id"),
    ("audits.csv", 4, "unknown_finess"),  # orphan audit
    ("audits.csv", 5, "future_date"),
    ("audits.csv", 6, "negative_count"),  # hosts_in_scope -1
    ("audits.csv", 7, "date_too_early"),
    ("audits.csv", 8, "bad_date"),  # 31/02/2024
    ("audits.csv", 9, "required_value"),  # hosts_in_scope empty
    ("findings.csv", 3, "port_range"),
    ("findings.csv", 4, "unknown_protocol"),
    ("findings.csv", 5, "bad_cvss_vector"),
    ("findings.csv", 6, "cvss_score_range"),
    ("findings.csv", 7, "unknown_severity"),
    ("findings.csv", 8, "bad_cve"),
    ("findings.csv", 9, "unknown_audit"),
    ("findings.csv", 10, "duplicate_row"),
    ("findings.csv", 11, "required_value"),
    ("controls.csv", 4, "bad_boolean"),
    ("controls.csv", 5, "unknown_control"),
    ("incidents.csv", 3, "unknown_nature"),
]


@pytest.fixture(scope="module")
def violations(fixtures_dir):
    return check_dataset(fixtures_dir / "datasets" / "violations", today=TODAY).violations


@pytest.mark.parametrize(("file", "row", "rule"), PLANTED)
def test_every_planted_violation_is_reported(violations, file, row, rule):
    hit = violations[(violations["file"] == file) & (violations["row"] == row) & (violations["rule"] == rule)]
    assert len(hit) == 1, violations[violations["file"] == file].to_string()


def test_missing_required_column_is_a_file_level_error(violations):
    hit = violations[(violations["file"] == "hosts.csv") & (violations["rule"] == "missing_column")]
    assert hit["column"].tolist() == ["host"]
    assert hit["row"].isna().all()


def test_latin1_semicolon_bom_and_header_case_are_read(fixtures_dir):
    check = check_dataset(fixtures_dir / "datasets" / "violations", today=TODAY)
    est = check.tables["establishments"]
    assert est.read.delimiter == ";" and est.read.encoding in {"cp1252", "latin-1"}
    assert est.frame.loc[0, "name"] == "Hôpital fictif é"
    aud = check.tables["audits"]
    assert aud.read.had_bom and "audit_id" in aud.frame.columns
    assert aud.frame.loc[0, "audit_date"] == pd.Timestamp("2024-01-15")  # dd/mm/yyyy accepted


def test_unknown_category_message_names_the_table(violations):
    msg = violations.loc[violations["rule"] == "unknown_category", "message"].iloc[0]
    assert "999" in msg and "finess_categories.csv" in msg


def test_clean_dataset_has_no_violation(fixtures_dir):
    check = check_dataset(fixtures_dir / "datasets" / "clean", today=TODAY)
    assert check.violations.empty, check.violations.to_string()
    assert check.ok


def test_every_rule_is_described():
    assert all(isinstance(v, str) and v for v in RULES.values())


def test_cli_validate_exit_status(fixtures_dir, capsys):
    assert main(["validate", str(fixtures_dir / "datasets" / "violations"), "--today", TODAY]) == 1
    out = capsys.readouterr().out
    assert "error(s)" in out and "finess_leading_zero" in out
    assert main(["validate", str(fixtures_dir / "datasets" / "clean"), "--today", TODAY]) == 0


def test_validate_changes_nothing(fixtures_dir, tmp_path):
    folder = fixtures_dir / "datasets" / "violations"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    check_dataset(folder, today=TODAY)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_cell_parsers():
    values, bad = parse_bool(pd.Series(["oui", "NON", "1", "false", "peut-être", None]))
    assert values.tolist()[:4] == [True, False, True, False] and bad.tolist() == [False] * 4 + [True, False]
    dates, bad = parse_dates(pd.Series(["2024-02-29", "29/02/2023"]))
    assert bad.tolist() == [False, True]  # 2023 is not a leap year
    assert cvss_vector_ok(
        pd.Series(
            [
                "AV:N/AC:L/Au:N/C:P/I:P/A:P",
                "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                "CVSS:3.1/AV:N",
                None,
            ]
        )
    ).tolist() == [True, True, True, False, True]
    assert cve_list_ok(pd.Series(["CVE-2021-44228; cve-2019-0708", "CVE-21-1", None])).tolist() == [
        True,
        False,
        True,
    ]


def test_fast_and_fallback_csv_paths_agree(tmp_path, fixtures_dir):
    """The pyarrow path and the csv-module path give the same cells and line numbers."""
    import cyberobs_lib.io as io_mod

    samples = {
        "simple.csv": 'a,b,c\n1, x ,\n\n2,"y, z",3\n , ,\n4,w,5\r\n',
        "multiline.csv": 'a,b\n1,"two\nlines"\n2,x\n',  # a quoted field spans lines: fallback
        "ragged.csv": "a,b\n1,2,3\n4\n",  # ragged records: fallback
    }
    for name, text in samples.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    files = [tmp_path / n for n in samples] + sorted((fixtures_dir / "datasets" / "violations").glob("*.csv"))
    for path in files:
        fast = io_mod.read_table_csv(path)
        real = io_mod._read_fast
        try:
            io_mod._read_fast = lambda *a, **k: None
            slow = io_mod.read_table_csv(path)
        finally:
            io_mod._read_fast = real
        pd.testing.assert_frame_equal(fast.frame, slow.frame, check_dtype=False)
        assert fast.lines.tolist() == slow.lines.tolist(), path.name
    simple = io_mod.read_table_csv(tmp_path / "simple.csv")
    assert simple.lines.tolist() == [2, 4, 6] and simple.frame["b"].tolist() == ["x", "y, z", "w"]


@pytest.mark.parametrize("name", ["parse_dates", "parse_int", "parse_float", "parse_bool"])
def test_cell_parsers_per_distinct_value_equal_direct_parsing(name):
    import cyberobs_lib.parsing as P

    parse = getattr(P, name)
    cells = [
        "2024-02-29",
        "29/02/2023",
        "2024-13-01",
        "443",
        "12.0",
        "7,5",
        "-3",
        "oui",
        "NON",
        "x",
        " 80 ",
        None,
    ]
    rng = np.random.default_rng(4)
    values = pd.Series(rng.choice(np.array(cells, dtype=object), size=5000), name="col")
    values.index = values.index + 10  # a non-default index must be kept
    got, bad = parse(values)
    want, want_bad = parse.__wrapped__(values)
    pd.testing.assert_series_equal(got, want)
    pd.testing.assert_series_equal(bad, want_bad, check_names=False)
    assert bad.any() and not bad.all()  # both valid and invalid cells were parsed


def test_cvss_validation_and_normalisation_parse_alike():
    """A vector passes validation exactly when normalisation can score it (one parser, the cvss package)."""
    from cyberobs_lib.normalize.severity import cvss_severity

    vectors = pd.Series(
        [
            "CVSS2#AV:N/AC:L/Au:N/C:P/I:P/A:P",  # Nessus prefix: scored, so valid
            "(AV:N/AC:L/Au:N/C:P/I:P/A:P)",  # NVD parentheses
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Z",  # unknown metric value: not scorable
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:Y",  # unknown metric
            "AV:N/AC:L/Au:N/C:P/I:P/A:P/E:Q",
            "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",  # unsupported version prefix
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            " CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H ",
        ]
    )
    ok = cvss_vector_ok(vectors)
    assert ok.tolist() == [True, True, False, False, False, False, True, True]
    assert ok.tolist() == cvss_severity(vectors)["cvss_error"].isna().tolist()
