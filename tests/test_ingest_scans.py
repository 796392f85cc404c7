"""Scanner exports in a dataset: one row path with findings.csv, scan status, accounting that reconciles.

Small datasets written by each test (hand-made exports in the formats' documented layouts).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.cli import main
from cyberobs_lib.ingest import check_canonical, ingest_dataset, validate_dataset, write_canonical
from cyberobs_lib.studies.indicators import audit_metrics, excluded_note

TODAY = "2026-01-01"

NMAP_HOST = """<host starttime="1700000000"><status state="up"/><address addr="192.0.2.{n}"/>
<ports><port protocol="tcp" portid="3389"><state state="open"/><service name="ms-wbt-server"/></port></ports>
</host>"""


def _dataset(root: Path, audits: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "establishments.csv").write_text("finess,category_code\n010000024,355\n750000010,500\n")
    rows = [
        f"{a},{'010000024' if i % 2 == 0 else '750000010'},2025-0{i + 1}-10,3" for i, a in enumerate(audits)
    ]
    (root / "audits.csv").write_text("audit_id,finess,audit_date,hosts_in_scope\n" + "\n".join(rows) + "\n")
    return root


def _scan(root: Path, audit: str, name: str, text: str) -> Path:
    path = root / "scans" / audit / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _nmap(hosts: list[int], *, finished: str = '<runstats><finished exit="success"/></runstats>') -> str:
    body = "\n".join(NMAP_HOST.format(n=n) for n in hosts)
    return f'<?xml version="1.0"?>\n<nmaprun scanner="nmap">\n{body}\n{finished}\n</nmaprun>\n'


def _nuclei(host: str, template: str | None, ts: str) -> str:
    rec = {"host": host, "matched-at": f"https://{host}/", "timestamp": ts,
           "info": {"name": "Exposed panel", "severity": "high"}}  # fmt: skip
    if template:
        rec["template-id"] = template
    return json.dumps(rec)


def test_a_mix_of_sources_gives_one_dtype_per_column_and_reconciles(tmp_path):
    """findings.csv (dates), nmap (whole seconds) and nuclei (nanoseconds, offsets) in one dataset."""
    root = _dataset(tmp_path / "d", ["A1", "A2", "A3"])
    (root / "findings.csv").write_text(
        "audit_id,host,port,protocol,vuln_id,title,cvss_score,first_seen\n"
        "A1,10.0.0.1,443,tcp,nessus:1,TLS,5.0,2024-03-01\n"
    )
    # each host twice: exact copies, counted as duplicates of this file
    _scan(root, "A2", "perimeter.xml", _nmap([1, 2, 1, 2]))
    lines = [
        _nuclei("fe80::1", "panel-a", "2025-02-10T08:11:01.667748123+03:00"),
        _nuclei("[2001:db8::5]:8443", "panel-b", "2025-02-10T08:11:02Z"),
        _nuclei("www.example.org", None, "2025-02-10T08:11:03Z"),  # no template id: rejected, named
    ]
    _scan(root, "A3", "web.jsonl", "\n".join(lines) + "\n")
    res = ingest_dataset(root, today=TODAY)
    check_canonical(res.tables)
    f = res.tables["findings"]
    assert str(f["first_seen"].dtype) == "datetime64[ns]" and str(f["port"].dtype) == "Int32"
    assert {"2001:db8::5", "fe80::1"} <= set(f["host"])
    acc = res.accounting.set_index("source_file")
    assert (acc["rows_read"] == acc[["kept", "rejected", "duplicates", "skipped"]].sum(axis=1)).all()
    is_f = acc["table"].str.startswith("scan:") | (acc["table"] == "findings")
    assert int(acc.loc[is_f, "kept"].sum()) == len(f)
    nmap = acc.loc["scans/A2/perimeter.xml"]
    assert (nmap["rows_read"], nmap["kept"], nmap["duplicates"]) == (4, 2, 2)
    rej = res.rejects.set_index("source_file")
    assert rej.loc["scans/A3/web.jsonl", "reason"] == "required_value"
    assert rej.loc["scans/A3/web.jsonl", "column"] == "vuln_id"
    assert int(rej.loc["scans/A3/web.jsonl", "row"]) == 3
    assert not res.ok  # a rejected row: exit status 1, tables written


def test_unreadable_scanner_cells_are_blanked_with_a_warning_never_a_lost_finding(tmp_path):
    root = _dataset(tmp_path / "d", ["A1"])
    _scan(
        root,
        "A1",
        "tenable.csv",
        "Plugin ID,CVE,CVSS v2.0 Base Score,Risk,Host,Protocol,Port,Name,First Discovered\n"
        "10940,,75,High,192.0.2.1,tcp,99999,Remote Desktop,not a date\n"
        "51192,,n/a,Medium,192.0.2.1,tcp),443,SSL Certificate,2024-03-01\n",
    )
    res = ingest_dataset(root, today=TODAY)
    assert len(res.tables["findings"]) == 2 and len(res.rejects) == 0
    v = res.check.violations
    v = v[v["file"] == "scans/A1/tenable.csv"].set_index("rule")
    assert {"port_range", "cvss_score_range", "bad_date", "unknown_protocol"} <= set(v.index)
    assert (v["severity"] == "warning").all()
    assert v.loc["unknown_protocol", "value"] == "tcp)"
    f = res.tables["findings"].set_index("vuln_id")
    assert pd.isna(f.loc["nessus:10940", "port"]) and pd.isna(f.loc["nessus:10940", "cvss_score"])


def test_failed_and_unfinished_scans_are_flagged_and_left_out_of_the_indicators(tmp_path):
    root = _dataset(tmp_path / "d", ["A1", "A2", "A3", "A4"])
    _scan(root, "A1", "ok.xml", _nmap([1]))
    _scan(root, "A2", "cut.xml", "<nmaprun><host></nmaprun>")  # malformed (mismatched tag): refused
    _scan(
        root,
        "A3",
        "error.xml",
        _nmap([], finished='<runstats><finished exit="error" errormsg="no route"/></runstats>'),
    )
    _scan(root, "A4", "ok.xml", _nmap([3]))
    _scan(root, "A4", "bad.xml", "<unknown/>")  # one file of two refused: incomplete
    res = ingest_dataset(root, today=TODAY)
    status = res.tables["audits"].set_index("audit_id")["scan_status"]
    assert status.to_dict() == {"A1": "complete", "A2": "failed", "A3": "failed", "A4": "incomplete"}
    detail = res.tables["audits"].set_index("audit_id")["scan_status_detail"]
    assert "no route" in detail["A3"] and "bad.xml" in detail["A4"]
    m = audit_metrics(res.tables)
    assert m["audit_id"].tolist() == ["A1"]
    assert m.attrs["excluded_audits"] == {"failed": 2, "incomplete": 1}
    assert excluded_note(m, "en").startswith("3 audits left out")
    assert len(audit_metrics(res.tables, include_incomplete=True)) == 4
    scans = res.scans.set_index("source_file")
    assert scans.loc["scans/A2/cut.xml", "status"] == "refused"


def test_validate_opens_scans_and_names_each_file(tmp_path, capsys):
    root = _dataset(tmp_path / "d", ["A1", "A2"])
    _scan(root, "A1", "ok.xml", _nmap([1]))
    _scan(
        root,
        "A2",
        "xxe.xml",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><nmaprun/>',
    )
    v = validate_dataset(root, today=TODAY).violations
    bad = v[v["rule"] == "unreadable_scan"]
    assert bad["file"].tolist() == ["scans/A2/xxe.xml"]
    assert main(["validate", str(root), "--today", TODAY]) == 1
    assert "scans/A2/xxe.xml" in capsys.readouterr().out
    assert not (root / "ingest.json").exists()  # validate writes nothing


def test_exit_status_contract(tmp_path, capsys):
    clean = _dataset(tmp_path / "clean", ["A1"])
    _scan(clean, "A1", "ok.xml", _nmap([1]))
    assert main(["ingest", str(clean), "--out", str(tmp_path / "o1"), "--today", TODAY]) == 0
    # every establishment rejected: nothing to study, nothing written, exit 1
    fatal = _dataset(tmp_path / "fatal", ["A1"])
    (fatal / "establishments.csv").write_text("finess,category_code\nnot-a-finess,355\n")
    _scan(fatal, "A1", "ok.xml", _nmap([1]))
    assert main(["ingest", str(fatal), "--out", str(tmp_path / "o2"), "--today", TODAY]) == 1
    assert not (tmp_path / "o2" / "ingest.json").exists()
    assert "cannot be ingested" in capsys.readouterr().err
    # no findings.csv and no scans/: fatal
    empty = _dataset(tmp_path / "empty", ["A1"])
    assert main(["ingest", str(empty), "--out", str(tmp_path / "o3"), "--today", TODAY]) == 1
    # not a dataset folder: usage
    assert main(["ingest", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o4")]) == 2


def test_the_canonical_folder_lists_every_scan_file(tmp_path):
    root = _dataset(tmp_path / "d", ["A1"])
    _scan(root, "A1", "ok.xml", _nmap([1]))
    _scan(root, "A1", "junk.bin", "\x00\x01 not an export")
    out = write_canonical(ingest_dataset(root, today=TODAY), tmp_path / "c")
    scans = pd.read_csv(out / "scans.csv").set_index("source_file")
    assert scans.loc["scans/A1/ok.xml", "status"] == "complete"
    assert scans.loc["scans/A1/junk.bin", "status"] == "refused"
    summary = json.loads((out / "ingest.json").read_text())
    assert str(tmp_path) not in json.dumps(summary)  # no local path leaves the machine
    for name in ("rejects.csv", "scans.csv", "accounting.csv", "violations.csv"):
        assert str(tmp_path) not in (out / name).read_text(), name
    assert summary["scan_status"] == {"incomplete": 1}


@pytest.mark.parametrize("large", [False, True])
def test_large_path_writes_the_same_scan_rows_and_status(tmp_path, large):
    from cyberobs_lib.scale import ingest_large
    from cyberobs_lib.store import read_partitioned

    root = _dataset(tmp_path / "d", ["A1", "A2"])
    (root / "findings.csv").write_text("audit_id,host,vuln_id,title,port\nA1,10.0.0.1,nessus:1,TLS,99999\n")
    _scan(root, "A2", "ok.xml", _nmap([1, 1]))
    ref = ingest_dataset(root, today=TODAY)
    if not large:
        assert len(ref.tables["findings"]) == 2
        return
    ingest_large(root, tmp_path / "store", today=TODAY)
    got = read_partitioned(tmp_path / "store", "findings")
    assert sorted(got["vuln_id"]) == sorted(ref.tables["findings"]["vuln_id"])
    aud = read_partitioned(tmp_path / "store", "audits").set_index("audit_id")
    assert aud.loc["A2", "scan_status"] == "complete"
    acc = (
        read_partitioned(tmp_path / "store", "accounting")
        .astype({"source_file": str})
        .set_index("source_file")
    )
    cols = ["rows_read", "kept", "rejected", "duplicates", "skipped"]
    want = ref.accounting.set_index("source_file").sort_index()[cols].astype("int64")
    assert acc.sort_index()[cols].astype("int64").to_dict() == want.to_dict()
