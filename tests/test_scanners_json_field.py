"""Field shapes of the JSON / Qualys VMDR / packed exports: nuclei IPv6 hosts and missing template ids,
testssl.sh JSON (flat and pretty) and scan status, sslyze errors, Qualys host detections, gzip / zip /
UTF-16 exports. Fixtures: ``tests/fixtures/scans/field/`` (written for these tests)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from cyberobs_lib.scanners import ScanError, detect_format, iter_scan_file, read_scan_file, unpack
from cyberobs_lib.scanners.reader import merge_results

FIELD = Path(__file__).parent / "fixtures" / "scans" / "field"


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Temporary files of the unpacker go to a folder of their own (to check that they are removed)."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(d))
    return d


def _balanced(res) -> None:
    acc = res.accounting
    assert acc["items_read"] == acc["findings"] + sum(acc["skipped"].values())
    assert acc["findings"] == len(res.findings)


# ----------------------------------------------------------------------------------------------- nuclei
def test_nuclei_ipv6_hosts_are_full_addresses_and_no_template_id_is_no_id():
    res = read_scan_file(FIELD / "nuclei_ipv6_and_no_template.jsonl", audit_id="A1")
    _balanced(res)
    f = res.findings
    assert f["host"].tolist() == ["fe80::1", "2001:db8::5", "::1", "pacs.chu-exemple.fr"]
    assert f["port"].tolist()[1:] == [8443, 8443, 443]
    assert f["port"].isna().tolist()[0]
    assert f["vuln_id"].tolist()[:3] == [
        "nuclei:tech-detect",
        "nuclei:CVE-2021-44228",
        "nuclei:exposed-panel",
    ]
    assert f["vuln_id"].iloc[3] is None  # never a made-up "nuclei:"
    assert f["title"].iloc[3] == "Record without template id"
    assert f["cve"].iloc[1] == "CVE-2021-44228"
    assert res.hosts == ["2001:db8::5", "::1", "fe80::1", "pacs.chu-exemple.fr"]
    assert res.status == "complete"


def test_nuclei_record_without_template_id_is_rejected_by_the_row_rules():
    import pandas as pd

    from cyberobs_lib.ingest import check_scan_rows

    path = FIELD / "nuclei_ipv6_and_no_template.jsonl"
    res = read_scan_file(path, audit_id="A1")
    check = check_scan_rows(
        res, known_audits=pd.Index(["A1"]), perimeter=None, today=pd.Timestamp("2026-12-01"), dataset=FIELD
    )
    v = pd.concat(check.violations) if isinstance(check.violations, list) else check.violations
    assert v[["row", "column", "rule", "severity"]].values.tolist() == [
        [4, "vuln_id", "required_value", "error"]
    ]
    assert v["file"].tolist() == [str(path)]


@pytest.mark.parametrize(
    ("name", "line", "column", "what"),
    [
        ("nuclei_array_bad.json", 3, 23, "Expecting ',' delimiter"),
        ("nuclei_jsonl_bad_column.jsonl", 2, 66, "Expecting property name enclosed in double quotes"),
        ("testssl_pretty_bad.json", 4, 24, "Expecting ',' delimiter"),
    ],
)
def test_invalid_json_names_line_and_column(name, line, column, what):
    path = FIELD / name
    with pytest.raises(ScanError) as info:
        read_scan_file(path)
    err = info.value
    assert str(err).startswith(f"{path}: line {line}: invalid JSON: {what} at line {line} column {column}")
    assert err.line == line and err.column == column and err.path == str(path)
    assert "no known scanner" not in str(err)


def test_detect_reports_the_json_parse_error_not_an_unknown_scanner(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{\n  "scanResult": [\n    {"id": "a",}\n  ]\n}\n')
    with pytest.raises(ScanError, match=r"line 3: invalid JSON: .* at line 3 column 16") as info:
        detect_format(p)
    assert info.value.column == 16


def test_nuclei_reader_with_forced_format_reports_line_and_column(tmp_path):
    p = tmp_path / "pretty.json"
    p.write_text('{\n  "template-id": "a",\n  "info": {"severity": "low"\n}\n')
    with pytest.raises(ScanError) as info:
        list(iter_scan_file(p, fmt="nuclei_json"))
    assert (info.value.line, info.value.column) == (5, 1)  # where the parser noticed: the end
    assert "invalid JSON" in str(info.value)


# ---------------------------------------------------------------------------------------------- testssl
def test_testssl_flat_json():
    path = FIELD / "testssl_flat.json"
    assert detect_format(path) == "testssl_json"
    res = read_scan_file(path, audit_id="A2")
    _balanced(res)
    assert res.format == "testssl_json"
    assert res.accounting == {
        "items_read": 7,
        "findings": 3,
        "skipped": {"check_passed": 1, "informational": 2, "no_host": 1},
    }
    f = res.findings
    assert f["vuln_id"].tolist() == ["testssl:SSLv3", "testssl:HSTS", "testssl:BEAST"]
    assert f["severity"].tolist() == ["high", "low", "medium"]
    assert f["host"].unique().tolist() == ["192.0.2.10"] and f["port"].unique().tolist() == [443]
    assert f["cve"].tolist() == ["CVE-2014-3566", None, "CVE-2011-3389"]
    assert f["scanner"].unique().tolist() == ["testssl"]
    assert f["evidence"].iloc[0] == "portail.chu-exemple.fr: offered"
    assert res.hosts == ["192.0.2.10"]
    assert sorted(map(tuple, res.controls[["control", "present"]].values.tolist())) == [
        ("hsts", False),
        ("tls_modern", False),
    ]
    assert res.status == "complete"


def test_testssl_pretty_json_sections_targets_and_partial_fatal():
    path = FIELD / "testssl_pretty.json"
    assert detect_format(path) == "testssl_json"
    res = read_scan_file(path)
    _balanced(res)
    # 1 clientProblem + 9 entries of webmail (pretest 1, protocols 3, serverDefaults 1, headerResponse 1,
    # vulnerabilities 2, rating 1) + 1 FATAL pretest of vpn
    assert res.accounting == {
        "items_read": 11,
        "findings": 3,
        "skipped": {"check_passed": 4, "informational": 2, "no_host": 1, "scan_problem": 1},
    }
    f = res.findings
    assert f["vuln_id"].tolist() == ["testssl:TLS1", "testssl:cert_expirationStatus", "testssl:LUCKY13"]
    assert f["severity"].tolist() == ["low", "critical", "low"]
    assert f["cve"].tolist() == [None, None, "CVE-2013-0169"]
    assert set(f["host"]) == {"192.0.2.20"}
    assert res.hosts == ["192.0.2.20", "192.0.2.21"]  # the unreachable target stays in the perimeter
    controls = {(h, c): p for h, c, p in res.controls[["host", "control", "present"]].values.tolist()}
    assert controls == {("192.0.2.20", "tls_modern"): False, ("192.0.2.20", "hsts"): True}
    assert res.status == "incomplete"
    assert res.status_detail == (
        "testssl.sh FATAL for vpn.chu-exemple.fr/192.0.2.21:443: Can't connect to '192.0.2.21:443' "
        "Make sure a firewall is not between you and your scanning target!"
    )


def test_testssl_json_unreachable_target_is_a_failed_scan():
    res = read_scan_file(FIELD / "testssl_unreachable.json")
    _balanced(res)
    assert res.accounting == {"items_read": 1, "findings": 0, "skipped": {"scan_problem": 1}}
    assert res.hosts == ["198.51.100.7"]
    assert res.status == "failed"
    assert res.status_detail.startswith(
        "testssl.sh FATAL for dmz.chu-exemple.fr/198.51.100.7:8443: Can't connect"
    )


def test_testssl_csv_one_target_unreachable_is_incomplete_across_chunks():
    path = FIELD / "testssl_two_targets_one_fatal.csv"
    res = merge_results(list(iter_scan_file(path, chunk_rows=1)))
    _balanced(res)
    assert res.accounting == {
        "items_read": 4,
        "findings": 1,
        "skipped": {"check_passed": 1, "informational": 1, "scan_problem": 1},
    }
    assert res.hosts == ["192.0.2.30", "192.0.2.31"]
    assert res.status == "incomplete"
    assert (
        res.status_detail
        == "testssl.sh FATAL for pacs.chu-exemple.fr/192.0.2.31:443: Oops: TCP connect problem"
    )


def test_testssl_csv_single_fatal_row_is_failed(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(
        '"id","fqdn/ip","port","severity","finding","cve","cwe"\n'
        '"engine_problem","/","443","WARN","No engine or GOST support","",""\n'
        '"scanProblem","x.example/192.0.2.9","443","FATAL","Can\'t connect to \'192.0.2.9:443\'","",""\n'
    )
    res = read_scan_file(p)
    assert res.status == "failed"
    assert (
        res.status_detail == "testssl.sh FATAL for x.example/192.0.2.9:443: Can't connect to '192.0.2.9:443'"
    )
    assert res.accounting["skipped"] == {"no_host": 1, "scan_problem": 1}


def test_testssl_interrupted_scan_is_incomplete(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(
        '[{"id": "SSLv3", "ip": "h/192.0.2.8", "port": "443", "severity": "OK", "finding": "not offered"},'
        ' {"id": "scanTime", "ip": "h/192.0.2.8", "port": "443", "severity": "WARN", "finding": "Scan interrupted"}]'
    )
    res = read_scan_file(p)
    assert (res.status, res.status_detail) == ("incomplete", "testssl.sh: scan interrupted")
    assert res.accounting == {
        "items_read": 2,
        "findings": 0,
        "skipped": {"check_passed": 1, "scan_problem": 1},
    }


# ----------------------------------------------------------------------------------------------- sslyze
def test_sslyze_one_server_down_and_one_command_error_is_incomplete():
    res = read_scan_file(FIELD / "sslyze_one_down_one_error.json")
    _balanced(res)
    # rdv: robot errored (scan_problem), tls_1_0_offered (finding), heartbleed (passed); 192.0.2.41: down
    assert res.accounting == {
        "items_read": 4,
        "findings": 1,
        "skipped": {"check_passed": 1, "scan_problem": 2},
    }
    assert res.findings["vuln_id"].tolist() == ["sslyze:tls_1_0_offered"]
    assert res.hosts == ["192.0.2.41", "rdv.chu-exemple.fr"]
    assert res.status == "incomplete"
    assert res.status_detail.split("; ") == [
        "sslyze rdv.chu-exemple.fr:443: robot errored (CONNECTIVITY_ISSUE)",
        "sslyze 192.0.2.41:8443: ERROR_NO_CONNECTIVITY "
        '(sslyze.errors.ConnectionToServerFailed: 192.0.2.41:8443 -> "Connection rejected".)',
    ]


def test_sslyze_every_server_down_is_failed(tmp_path):
    import json

    doc = json.loads((FIELD / "sslyze_one_down_one_error.json").read_text())
    doc["server_scan_results"] = doc["server_scan_results"][1:]
    doc["invalid_server_strings"] = [
        {"server_string": "gone.chu-exemple.fr:443", "error_message": "Could not resolve hostname"}
    ]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    res = read_scan_file(p)
    _balanced(res)
    assert res.status == "failed"
    assert res.accounting == {"items_read": 2, "findings": 0, "skipped": {"scan_problem": 2}}
    assert res.hosts == ["192.0.2.41", "gone.chu-exemple.fr"]
    assert "sslyze gone.chu-exemple.fr:443: Could not resolve hostname" in res.status_detail


# ----------------------------------------------------------------------------------------------- Qualys
def test_qualys_vmdr_host_detections():
    path = FIELD / "qualys_vmdr_detections.xml"
    assert detect_format(path) == "qualys_xml"
    res = read_scan_file(path, audit_id="A3")
    _balanced(res)
    assert res.accounting == {
        "items_read": 6,
        "findings": 3,
        "skipped": {"fixed": 1, "informational": 1, "no_host": 1},
    }
    f = res.findings
    assert f[["host", "port", "protocol", "vuln_id", "severity"]].values.tolist() == [
        ["10.20.0.5", 445, "tcp", "qualys:91850", "critical"],
        ["10.20.0.5", 3389, "tcp", "qualys:38170", "medium"],
        ["2001:db8:20::7", 443, "tcp", "qualys:11827", "low"],
    ]
    assert f["title"].tolist() == [
        "Qualys QID 91850",
        "Qualys QID 38170",
        "HTTP Security Header Not Detected",
    ]
    assert f["evidence"].tolist() == ["SMBv1 dialect accepted", None, "X-Frame-Options header missing"]
    assert str(f["first_seen"].iloc[0]) == "2026-03-02 08:00:00"
    assert res.hosts == ["10.20.0.5", "2001:db8:20::7"]
    assert res.status == "incomplete"
    assert res.status_detail.startswith("Qualys WARNING 1980: 3 record limit exceeded.")
    assert "id_min=71004" in res.status_detail


def test_qualys_vmdr_include_info_keeps_the_info_detection_not_the_fixed_one():
    res = read_scan_file(FIELD / "qualys_vmdr_detections.xml", include_info=True)
    assert res.accounting["skipped"] == {"fixed": 1, "no_host": 1}
    assert "qualys:45017" in res.findings["vuln_id"].tolist()
    assert "qualys:105484" not in res.findings["vuln_id"].tolist()


# ----------------------------------------------------------------------------------------------- packed
def test_gzip_export_is_read_and_named_by_its_original_file(private_tmp):
    path = FIELD / "packed_nuclei.jsonl.gz"
    assert detect_format(path) == "nuclei_json"
    res = read_scan_file(path, audit_id="A4")
    plain = read_scan_file(FIELD / "nuclei_ipv6_and_no_template.jsonl", audit_id="A4")
    assert res.accounting == plain.accounting
    assert res.findings.drop(columns="source_file").equals(plain.findings.drop(columns="source_file"))
    assert res.findings["source_file"].unique().tolist() == [str(path)]
    assert res.source_file == str(path)
    assert list(private_tmp.iterdir()) == []


def test_utf16_powershell_csv_is_transcoded(private_tmp):
    path = FIELD / "packed_testssl_utf16.csv"
    res = read_scan_file(path)
    assert res.format == "testssl_csv"
    assert res.findings["vuln_id"].tolist() == ["testssl:SSLv3"]
    assert res.findings["source_file"].tolist() == [str(path)]
    assert res.controls["source_file"].tolist() == [str(path)]
    assert res.status == "incomplete"
    assert list(private_tmp.iterdir()) == []


def test_utf16_be_xml_with_utf16_declaration(tmp_path, private_tmp):
    xml = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<nmaprun scanner="nmap">\n'
        '<host><status state="up"/><address addr="192.0.2.5" addrtype="ipv4"/>\n'
        '<ports><port protocol="tcp" portid="3389"><state state="open"/><service name="ms-wbt-server"/></port>'
        "</ports></host>\n</nmaprun>\n"
    )
    p = tmp_path / "scan.xml"
    p.write_bytes(b"\xfe\xff" + xml.encode("utf-16-be"))
    res = read_scan_file(p)
    assert res.format == "nmap_xml"
    assert res.findings[["host", "port", "severity"]].values.tolist() == [["192.0.2.5", 3389, "high"]]
    assert list(private_tmp.iterdir()) == []


def test_single_member_zip_is_read(tmp_path, private_tmp):
    p = tmp_path / "export.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("reports/", "")  # a folder entry is not a member
        z.write(FIELD / "testssl_flat.json", "reports/testssl_flat.json")
    res = read_scan_file(p)
    assert res.format == "testssl_json"
    assert res.accounting["findings"] == 3
    assert res.findings["source_file"].unique().tolist() == [str(p)]
    assert list(private_tmp.iterdir()) == []


def test_zip_with_several_members_is_refused():
    path = FIELD / "packed_two_members.zip"
    with pytest.raises(ScanError) as info:
        read_scan_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}: zip archive with 2 files (testssl_flat.json, testssl_unreachable.json)")
    assert "extract the archive into the audit folder" in text


def test_encrypted_zip_is_refused(tmp_path, private_tmp):
    p = tmp_path / "locked.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("scan.nessus", "<NessusClientData_v2/>")
    raw = bytearray(p.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" bit of the flags
        i = raw.index(sig)
        raw[i + at] |= 0x1
    p.write_bytes(bytes(raw))
    with pytest.raises(ScanError, match=r"encrypted zip member 'scan.nessus'") as info:
        read_scan_file(p)
    assert info.value.path == str(p)
    assert list(private_tmp.iterdir()) == []


def test_gzip_bomb_stops_early_with_the_limit_named(tmp_path, private_tmp):
    p = tmp_path / "bomb.nessus.gz"
    with gzip.open(p, "wb", compresslevel=9) as fh:
        block = b"\0" * (1 << 20)
        for _ in range(64):  # 64 MiB of zeros: about 64 KiB packed (ratio ~1000:1)
            fh.write(block)
    with pytest.raises(ScanError) as info:
        read_scan_file(p)
    text = str(info.value)
    assert text.startswith(f"{p}: gzip content more than {unpack.MAX_RATIO} times its packed size")
    assert "MAX_RATIO=200:1" in text
    assert list(private_tmp.iterdir()) == []


def test_size_limit_applies_whatever_the_ratio(tmp_path, private_tmp, monkeypatch):
    monkeypatch.setattr(unpack, "MAX_UNPACKED_BYTES", 500)
    p = tmp_path / "scan.jsonl.gz"
    p.write_bytes(gzip.compress((FIELD / "nuclei_ipv6_and_no_template.jsonl").read_bytes()))
    with pytest.raises(ScanError, match=r"gzip content larger than 500 bytes \(limit MAX_UNPACKED_BYTES\)"):
        read_scan_file(p)
    assert list(private_tmp.iterdir()) == []


def test_errors_inside_packed_content_name_the_original_file(tmp_path, private_tmp):
    p = tmp_path / "broken.jsonl.gz"
    p.write_bytes(gzip.compress((FIELD / "nuclei_jsonl_bad_column.jsonl").read_bytes()))
    with pytest.raises(ScanError) as info:
        read_scan_file(p)
    err = info.value
    assert err.path == str(p) and err.line == 2 and err.column == 66
    assert str(err).startswith(f"{p}: line 2: invalid JSON: ")
    assert "(in its gzip-unpacked content)" in str(err)
    assert list(private_tmp.iterdir()) == []


def test_truncated_gzip_is_a_clear_error(tmp_path, private_tmp):
    p = tmp_path / "cut.nessus.gz"
    p.write_bytes(gzip.compress(b"<NessusClientData_v2>" + b"<Report/>" * 5000)[:60])
    with pytest.raises(ScanError, match=r"truncated gzip") as info:
        read_scan_file(p)
    assert info.value.path == str(p)
    assert list(private_tmp.iterdir()) == []


def test_abandoned_stream_removes_its_temp_file(private_tmp):
    chunks = iter_scan_file(FIELD / "packed_nuclei.jsonl.gz")
    next(chunks)
    assert len(list(private_tmp.iterdir())) == 1
    chunks.close()
    assert list(private_tmp.iterdir()) == []


def test_corpus_failed_targets_are_failed_scans(corpus_dir):
    res = read_scan_file(corpus_dir / "testssl" / "defectdojo_failed_target.csv")
    assert res.status == "failed" and "Can't connect to '1.2.3.4:443'" in res.status_detail
    res = read_scan_file(corpus_dir / "sslyze" / "securecodebox_unavailable-host.json")
    assert res.status == "failed" and "ERROR_NO_CONNECTIVITY" in res.status_detail
    assert "Connection to the server timed out" in res.status_detail
