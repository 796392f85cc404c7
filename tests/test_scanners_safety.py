"""Malicious, broken and unknown exports: clear errors naming file and line; the batch survives them."""

from __future__ import annotations

import shutil
import socket

import pytest

from cyberobs_lib.scanners import ScanError, ScanSecurityError, detect_format, read_scan_file, read_scans_dir


@pytest.fixture
def scans(fixtures_dir):
    return fixtures_dir / "scans"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test (an external entity must never be fetched)."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize(
    ("name", "entity", "line"),
    [("billion_laughs.nessus", "lol", 3), ("xxe.xml", "xxe", 3), ("xxe_parameter.xml", "remote", 3)],
)
def test_entities_are_refused_with_a_security_error(scans, no_network, name, entity, line):
    for call in (read_scan_file, detect_format):
        with pytest.raises(ScanSecurityError) as info:
            call(scans / name)
        err = info.value
        assert isinstance(err, ScanError)
        assert err.line == line
        assert f"'{entity}'" in str(err) and "security" in str(err)
        assert str(scans / name) in str(err)


def test_xxe_file_content_never_appears(scans, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = tmp_path / "x.xml"
    doc.write_text(
        f'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY s SYSTEM "file://{secret}">]>'
        '<nmaprun><host><status state="up"/><address addr="&s;" addrtype="ipv4"/></host></nmaprun>'
    )
    with pytest.raises(ScanSecurityError) as info:
        read_scan_file(doc)
    assert "TOP-SECRET-VALUE" not in str(info.value)


def test_external_dtd_reference_without_entities_is_read_not_fetched(scans, no_network):
    # Qualys reports declare <!DOCTYPE SCAN SYSTEM "https://..."> : accepted, never fetched
    res = read_scan_file(scans / "qualys_scan.xml")
    assert res.accounting["items_read"] == 5


@pytest.mark.parametrize(
    ("name", "fragment", "line"),
    [
        ("invalid_token.nessus", "invalid token", 6),
        ("wrong_root.nessus", "wrong root element <NessusClientData_v3>; expected <NessusClientData_v2>", 2),
        ("testssl_bad_row.csv", "row with 9 fields; expected 7 fields", 3),
        ("nuclei_bad_line.jsonl", "invalid JSON", 2),
    ],
)
def test_broken_files_give_one_clear_line(scans, name, fragment, line):
    with pytest.raises(ScanError) as info:
        read_scan_file(scans / name)
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert text.startswith(f"{scans / name}: line {line}: ")
    assert fragment in text
    assert err.line == line and err.path == str(scans / name) and err.expected


@pytest.mark.parametrize("name", ["unknown.csv", "unknown_root.xml"])
def test_unknown_content_is_an_error(scans, name):
    with pytest.raises(ScanError, match="expected"):
        detect_format(scans / name)


def test_missing_file(tmp_path):
    with pytest.raises(ScanError, match="no such file"):
        read_scan_file(tmp_path / "nope.nessus")


def test_read_scans_dir_survives_bad_files(scans, tmp_path):
    (tmp_path / "A1").mkdir()
    (tmp_path / "A2").mkdir()
    for name in ("small.nessus", "testssl.csv", "invalid_token.nessus", "truncated_nmap.xml"):
        shutil.copy(scans / name, tmp_path / "A1" / name)
    for name in ("empty.nessus", "xxe.xml", "nmap_bom_comment.xml"):
        shutil.copy(scans / name, tmp_path / "A2" / name)
    (tmp_path / "A2" / ".hidden").write_text("ignored")
    batch = read_scans_dir(tmp_path)
    assert not batch.ok
    assert len(batch.errors) == 2  # invalid_token.nessus, xxe.xml
    assert any(isinstance(e, ScanSecurityError) for e in batch.errors)
    acc = batch.accounting.set_index(batch.accounting["source_file"].str.rsplit("/", n=1).str[-1])
    assert len(acc) == 7
    # findings: small.nessus 2 + testssl.csv 3 + nmap_bom_comment.xml 4 (counted in test_scanners_readers)
    assert len(batch.findings) == 9 == acc["findings"].sum()
    assert acc.loc["testssl.csv", "skipped_reasons"] == "check_passed=5;informational=1;no_host=1"
    assert acc.loc["invalid_token.nessus", "error"].endswith(
        "expected a well-formed <NessusClientData_v2> document"
    )
    # truncated (cut inside its only host): read, nothing kept, incomplete; not an error
    assert acc.loc["truncated_nmap.xml", "error"] is None
    assert acc.loc["truncated_nmap.xml", "status"] == "incomplete"
    assert (acc["items_read"] == acc["findings"] + acc["skipped"]).all()
    assert set(batch.findings["audit_id"]) == {"A1", "A2"}
    hosts = batch.hosts.groupby("audit_id")["host"].apply(sorted).to_dict()
    assert hosts == {
        "A1": ["192.0.2.10", "192.0.2.11", "192.0.2.80", "192.0.2.81"],
        "A2": ["198.51.100.5", "198.51.100.7"],
    }
    assert len(batch.controls) == 4
    assert "2 of 7 scan files failed" in batch.summary()


def test_inputs_are_not_modified(scans):
    before = (scans / "gvm_report.xml").read_bytes()
    read_scan_file(scans / "gvm_report.xml")
    assert (scans / "gvm_report.xml").read_bytes() == before


# --- bounded memory: hostile shapes stop with an error naming the limit (small limits, small files) ---

NMAP_HEAD = '<?xml version="1.0"?>\n<nmaprun scanner="nmap">\n'
NESSUS_HEAD = '<?xml version="1.0"?>\n<NessusClientData_v2><Report name="r">\n'
RECORD = {"nmap": "<host>", "nessus": '<ReportHost name="192.0.2.1">'}


def _hostile(tmp_path, fmt: str, body: str):
    path = tmp_path / ("h.xml" if fmt == "nmap" else "h.nessus")
    path.write_text((NMAP_HEAD if fmt == "nmap" else NESSUS_HEAD) + body)
    return path


@pytest.mark.parametrize("fmt", ["nmap", "nessus"])
def test_deep_nesting_is_refused_at_the_depth_limit(tmp_path, fmt):
    from cyberobs_lib.scanners import xmlsafe

    path = _hostile(tmp_path, fmt, "<a>" * (xmlsafe.MAX_DEPTH + 10))  # on line 3
    with pytest.raises(ScanError) as info:
        read_scan_file(path)
    assert str(info.value).startswith(f"{path}: line 3: XML nesting deeper than 256 elements")
    assert "MAX_DEPTH" in str(info.value)
    # a complete document just as deep is refused too; one level less is read
    closed = "<a>" * (xmlsafe.MAX_DEPTH + 10) + "</a>" * (xmlsafe.MAX_DEPTH + 10)
    with pytest.raises(ScanError, match="nesting deeper"):
        read_scan_file(
            _hostile(
                tmp_path, fmt, closed + ("</nmaprun>" if fmt == "nmap" else "</Report></NessusClientData_v2>")
            )
        )


@pytest.mark.parametrize("fmt", ["nmap", "nessus"])
def test_record_that_never_closes_is_refused_at_the_held_limit(tmp_path, fmt, monkeypatch):
    from cyberobs_lib.scanners import xmlsafe

    monkeypatch.setattr(xmlsafe, "MAX_HELD_ELEMENTS", 1000)
    monkeypatch.setattr(xmlsafe, "_CHECK_BYTES", 1 << 14)
    path = _hostile(tmp_path, fmt, RECORD[fmt] + '<x a="1"/>\n' * 20_000)
    with pytest.raises(ScanError) as info:
        read_scan_file(path)
    err = info.value
    assert "more than 1,000 XML elements and attributes held open or unread at once" in str(err)
    assert "MAX_HELD_ELEMENTS" in str(err) and err.path == str(path) and 3 < err.line < 20_000


@pytest.mark.parametrize("fmt", ["nmap", "nessus"])
def test_text_held_in_a_record_is_refused_at_the_character_limit(tmp_path, fmt, monkeypatch):
    from cyberobs_lib.scanners import xmlsafe

    monkeypatch.setattr(xmlsafe, "MAX_HELD_CHARS", 100_000)
    monkeypatch.setattr(xmlsafe, "_CHECK_BYTES", 1 << 14)
    path = _hostile(tmp_path, fmt, RECORD[fmt] + f"<x>{'t' * 1000}</x>\n" * 1000)
    with pytest.raises(ScanError, match=r"more than 100,000 characters of XML text held .*MAX_HELD_CHARS"):
        read_scan_file(path)


@pytest.mark.parametrize("fmt", ["nmap", "nessus"])
def test_endless_text_is_refused_at_the_text_limit(tmp_path, fmt, monkeypatch):
    from cyberobs_lib.scanners import xmlsafe

    monkeypatch.setattr(xmlsafe, "MAX_TEXT_BYTES", 1 << 16)
    path = _hostile(tmp_path, fmt, RECORD[fmt] + "<x>" + "ab\n" * 100_000)
    with pytest.raises(
        ScanError, match=r"more than 65,536 bytes of XML without a new element .*MAX_TEXT_BYTES"
    ):
        read_scan_file(path)


def test_limits_leave_real_exports_alone(scans, tmp_path):
    # a prolog longer than a block (licence comment) before the root: no empty first batch for the reader
    doc = tmp_path / "long_prolog.nessus"
    body = (scans / "small.nessus").read_text()
    doc.write_text("<!-- " + "licence text " * 3000 + "-->\n" + body)
    assert read_scan_file(doc).accounting == read_scan_file(scans / "small.nessus").accounting
