"""Ingestion: every input row kept or rejected with a reason; atomic, deterministic writes."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from cyberobs_lib.cli import main
from cyberobs_lib.ingest import ingest_dataset, read_canonical, write_canonical

TODAY = "2026-01-01"


def _digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def test_every_row_is_kept_or_rejected(fixtures_dir):
    result = ingest_dataset(fixtures_dir / "datasets" / "violations", today=TODAY)
    acc = result.accounting.set_index("source_file")
    assert (acc["rows_read"] == acc["kept"] + acc["rejected"] + acc["duplicates"] + acc["skipped"]).all()
    # each rejected row appears once in the rejects, with a reason code
    counts = result.rejects.groupby("source_file").size()
    for name, row in acc.iterrows():
        assert counts.get(name, 0) == row["rejected"], name
    assert result.rejects["reason"].notna().all()
    # kept rows are in the canonical tables
    assert len(result.tables["findings"]) == acc.loc["findings.csv", "kept"]


def test_a_file_without_a_required_column_has_every_row_rejected_never_kept_empty(fixtures_dir, tmp_path):
    """hosts.csv lacks its required ``host`` column: each of its rows is a reject naming the rule, none is
    kept with an empty host (which broke the canonical schema), and the canonical tables can be written."""
    result = ingest_dataset(fixtures_dir / "datasets" / "violations", today=TODAY)
    hosts = result.rejects[result.rejects["source_file"] == "hosts.csv"]
    assert len(hosts) == len(pd.read_csv(fixtures_dir / "datasets" / "violations" / "hosts.csv")) > 0
    assert (hosts["reason"] == "missing_column").all() and hosts["message"].str.startswith(
        "file refused"
    ).all()
    assert len(result.tables["hosts"]) == 0
    write_canonical(result, tmp_path / "canonical")  # no CanonicalSchemaError


def test_cascade_orphans_are_rejected(fixtures_dir):
    result = ingest_dataset(fixtures_dir / "datasets" / "violations", today=TODAY)
    rej = result.rejects
    audits = rej[rej["source_file"] == "audits.csv"]
    assert "unknown_finess" in set(audits["reason"])
    # a row breaking several rules has its first rule as reason and every rule in the message
    assert audits["message"].str.contains("future_date").any()
    assert "unknown_audit" in set(rej.loc[rej["source_file"] == "findings.csv", "reason"])


def test_clean_dataset_round_trip_and_byte_identical(fixtures_dir, tmp_path):
    src = fixtures_dir / "datasets" / "clean"
    out1, out2 = tmp_path / "a", tmp_path / "b"
    assert main(["ingest", str(src), "--out", str(out1), "--today", TODAY]) == 0
    assert main(["ingest", str(src), "--out", str(out2), "--today", TODAY]) == 0
    assert _digest(out1) == _digest(out2)
    tables = read_canonical(out1)
    assert len(tables["findings"]) == 5 and len(tables["establishments"]) == 2
    assert tables["establishments"].set_index("finess").loc["690000039", "family"] == "EHPAD"
    assert tables["findings"]["fingerprint"].notna().all()
    # protection status: A1 all absent -> no protection; A2 has a WAF; B1 dmarc absent -> none
    prot = tables["protection"].set_index("audit_id")["no_protection"]
    assert bool(prot["A1"]) is True and bool(prot["A2"]) is False


def test_write_is_atomic_marker_last(fixtures_dir, tmp_path, monkeypatch):
    """A crash while writing leaves no ingest.json: the folder is not taken for a complete one."""
    result = ingest_dataset(fixtures_dir / "datasets" / "clean", today=TODAY)
    import cyberobs_lib.ingest as ingest

    calls = {"n": 0}
    real = ingest.write_parquet_atomic

    def crashing(frame, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(frame, path)

    monkeypatch.setattr(ingest, "write_parquet_atomic", crashing)
    with pytest.raises(OSError):
        write_canonical(result, tmp_path / "out")
    assert not (tmp_path / "out" / "ingest.json").exists()
    assert not list((tmp_path / "out").glob("*.tmp"))
    with pytest.raises(FileNotFoundError, match="ingest.json"):
        read_canonical(tmp_path / "out")


def test_missing_required_file_fails_clearly(fixtures_dir, tmp_path, capsys):
    ds = tmp_path / "ds"
    shutil.copytree(fixtures_dir / "datasets" / "clean", ds)
    (ds / "audits.csv").unlink()
    assert main(["ingest", str(ds), "--out", str(tmp_path / "o"), "--today", TODAY]) == 1


def test_inputs_not_mutated(fixtures_dir):
    src = fixtures_dir / "datasets" / "clean"
    before = _digest(src)
    ingest_dataset(src, today=TODAY)
    assert _digest(src) == before
    assert isinstance(pd.read_csv(src / "findings.csv"), pd.DataFrame)


def test_canonical_tables_are_checked_against_the_pandera_models(fixtures_dir):
    from cyberobs_lib.ingest import CanonicalSchemaError, check_canonical

    result = ingest_dataset(fixtures_dir / "datasets" / "clean", today=TODAY)
    check_canonical(result.tables)  # the pipeline's own output passes
    broken = dict(result.tables)
    broken["findings"] = broken["findings"].assign(severity="urgent", cvss_score=12.0)
    with pytest.raises(
        CanonicalSchemaError, match=r"findings\.severity.*findings\.cvss_score|findings\.cvss_score"
    ):
        check_canonical(broken)


def test_scanner_exports_join_the_findings_and_a_bad_file_does_not_stop_the_batch(
    fixtures_dir, tmp_path, capsys
):
    ds = tmp_path / "ds"
    shutil.copytree(fixtures_dir / "datasets" / "clean", ds)
    scans = fixtures_dir / "scans"
    for audit, name in (
        ("A1", "small.nessus"),
        ("A2", "testssl.csv"),
        ("B1", "invalid_token.nessus"),
        ("B1", "truncated_nmap.xml"),
        ("Z9", "small.nessus"),
        ("B1", "xxe.xml"),
    ):
        (ds / "scans" / audit).mkdir(parents=True, exist_ok=True)
        shutil.copy(scans / name, ds / "scans" / audit / name)
    result = ingest_dataset(ds, today=TODAY)
    assert not result.ok and len(result.scan_errors) == 2  # malformed XML and the XXE file, both named
    messages = " | ".join(str(e) for e in result.scan_errors)
    assert "invalid_token.nessus" in messages and "xxe.xml" in messages
    # a truncated XML file is read up to the cut, not refused: its scan is incomplete
    truncated = result.scans[result.scans["source_file"].str.endswith("truncated_nmap.xml")]
    assert truncated["status"].tolist() == ["incomplete"]
    assert truncated["status_detail"].str.startswith("truncated XML at line 4").all()
    findings = result.tables["findings"]
    assert len(findings) > 5 and set(findings["scanner"].dropna()) >= {"nessus"}
    acc = result.accounting
    scan_rows = acc[acc["table"].str.startswith("scan:")]
    assert (scan_rows["rows_read"] == scan_rows["kept"] + scan_rows["rejected"] + scan_rows["skipped"]).all()
    reasons = set(result.rejects["reason"])
    assert {"unreadable_scan", "unknown_audit"} <= reasons  # Z9 is not an audit of audits.csv
    assert main(["ingest", str(ds), "--out", str(tmp_path / "out"), "--today", TODAY]) == 1
    assert "2 scanner file(s) refused" in capsys.readouterr().err
    assert (tmp_path / "out" / "findings.parquet").is_file()


def test_a_schema_break_names_the_source_files_of_the_offending_rows():
    """The canonical schema check can only fail on a pipeline bug; when it does, it says where to look."""
    from cyberobs_lib.ingest import CanonicalSchemaError, check_canonical

    f = pd.DataFrame(
        {"audit_id": ["A", "B"], "host": ["h", "h"], "vuln_id": ["x", "y"], "title": ["t", "t"],
         "cvss_score": [5.0, 75.0], "source_file": ["scans/A/a.nessus", "scans/B/b.csv"]}
    )  # fmt: skip
    with pytest.raises(CanonicalSchemaError, match=r"findings\.cvss_score: .* in scans/B/b\.csv$"):
        check_canonical({"findings": f})
