"""Readers on tiny hand-written exports (tests/fixtures/scans); every expected value is counted from the
fixture file itself (see the comment next to each assertion)."""

from __future__ import annotations

import pandas as pd
import pytest

from cyberobs_lib.scanners import FINDING_COLUMNS, detect_format, read_scan_file
from cyberobs_lib.scanners._core import map_severity


@pytest.fixture
def scans(fixtures_dir):
    return fixtures_dir / "scans"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("small.nessus", "nessus_xml"),
        ("tenable_semicolon.csv", "tenable_csv"),
        ("gvm_report.xml", "openvas_xml"),
        ("openvas.csv", "openvas_csv"),
        ("nmap_bom_comment.xml", "nmap_xml"),
        ("qualys_scan.xml", "qualys_xml"),
        ("qualys_asset.xml", "qualys_xml"),
        ("qualys_vmdr.csv", "qualys_csv"),
        ("nuclei_old.jsonl", "nuclei_json"),
        ("nuclei_array.json", "nuclei_json"),
        ("testssl.csv", "testssl_csv"),
        ("sslyze5.json", "sslyze_json"),
        ("empty.nessus", "empty"),
    ],
)
def test_detect_format_by_content(scans, name, fmt, tmp_path):
    assert detect_format(scans / name) == fmt
    # the extension plays no part
    renamed = tmp_path / "export.dat"
    renamed.write_bytes((scans / name).read_bytes())
    assert detect_format(renamed) == fmt


def test_findings_columns_and_types(scans):
    res = read_scan_file(scans / "small.nessus", audit_id="A1")
    f = res.findings
    assert tuple(f.columns) == FINDING_COLUMNS
    assert str(f["port"].dtype) == "Int32"
    assert f["cvss_score"].dtype == float
    assert str(f["first_seen"].dtype) == "datetime64[ns]"
    assert (f["audit_id"] == "A1").all()
    assert (f["scanner"] == "nessus").all()


def test_nessus_v2(scans):
    res = read_scan_file(scans / "small.nessus")
    # 2 ReportHost (one with only a severity-0 item), 4 ReportItem of which 2 severity 0
    assert res.hosts == ["192.0.2.10", "192.0.2.11"]
    assert res.accounting == {"items_read": 4, "findings": 2, "skipped": {"informational": 2}}
    rdp = res.findings.iloc[0]
    assert rdp["vuln_id"] == "nessus:10940"
    assert rdp["cve"] == "CVE-2019-0708;CVE-2019-1181"
    assert rdp["cvss_vector"].startswith("CVSS:3.0/") and rdp["cvss_score"] == 8.1  # v3 preferred
    assert (rdp["port"], rdp["protocol"], rdp["severity"], rdp["scanner_severity"]) == (
        3389,
        "tcp",
        "high",
        "3",
    )
    assert rdp["first_seen"] == pd.Timestamp("2021-03-25 13:23:31")  # HOST_START
    assert rdp["source_row"] == 1
    cert = res.findings.iloc[1]
    assert cert["cvss_vector"] == "AV:N/AC:L/Au:N/C:P/I:P/A:N"  # CVSS2# prefix dropped
    assert cert["source_row"] == 3  # third ReportItem of the file


def test_include_info_keeps_informational_items(scans):
    res = read_scan_file(scans / "small.nessus", include_info=True)
    assert res.accounting == {"items_read": 4, "findings": 4, "skipped": {}}
    assert res.findings["severity"].tolist().count("info") == 2


def test_tenable_semicolon_csv(scans):
    res = read_scan_file(scans / "tenable_semicolon.csv")
    # 2 rows: High (kept) and Info (informational); the first has a quoted multi-line cell
    assert res.accounting == {"items_read": 2, "findings": 1, "skipped": {"informational": 1}}
    row = res.findings.iloc[0]
    assert (row["host"], row["vuln_id"], row["cve"], row["severity"]) == (
        "192.0.2.20",
        "nessus:42873",
        "CVE-2016-2183",
        "high",
    )


def test_gvm_report(scans):
    res = read_scan_file(scans / "gvm_report.xml")
    # 3 results (one Log, one False Positive); the nested <detection><result> is not a result;
    # perimeter = report <host><ip> 192.0.2.30 and 192.0.2.31 (no result)
    assert res.hosts == ["192.0.2.30", "192.0.2.31"]
    assert res.accounting == {
        "items_read": 3,
        "findings": 1,
        "skipped": {"false_positive": 1, "informational": 1},
    }
    row = res.findings.iloc[0]
    assert row["vuln_id"] == "openvas:1.3.6.1.4.1.25623.1.0.117274"
    assert row["cve"] == "CVE-2011-3389;CVE-2015-0204"
    assert row["cvss_vector"] == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:N"
    assert (row["port"], row["protocol"], row["severity"]) == (443, "tcp", "medium")


def test_openvas_csv_general_port_and_multiline(scans):
    res = read_scan_file(scans / "openvas.csv")
    # rows: Low (no port: general/tcp), Log (informational), High with 2 CVEs
    assert res.accounting == {"items_read": 3, "findings": 2, "skipped": {"informational": 1}}
    assert res.findings["port"].isna().tolist() == [True, False]
    assert res.findings["cve"].tolist() == [None, "CVE-2024-6387;CVE-2024-6409"]


def test_nmap_bom_comment_exposure_and_vulners(scans):
    res = read_scan_file(scans / "nmap_bom_comment.xml")
    # BOM + licence comment before the XML declaration are tolerated.
    # hosts up: .5 and .7 (.6 is down). Open ports of .5: 3389 (exposure), 443 https (info), 22 ssh
    # (exposure, low); port 25 filtered (not an item). vulners: 2 CVE + 1 EDB-ID.
    assert res.hosts == ["198.51.100.5", "198.51.100.7"]
    assert res.accounting == {
        "items_read": 6,
        "findings": 4,
        "skipped": {"informational": 1, "vulners_non_cve": 1},
    }
    f = res.findings.set_index("vuln_id")
    assert f.loc["nmap:port/3389", "severity"] == "high"
    assert f.loc["CVE-2016-10012", "cve"] == "CVE-2016-10012"
    assert f.loc["CVE-2016-10012", "cvss_score"] == 7.8
    assert f.loc["CVE-2016-10012", "severity"] == "high"  # 7.8 in the CVSS v3.1 7.0-8.9 band
    assert f.loc["CVE-2018-15919", "severity"] == "medium"
    assert f.loc["nmap:port/3389", "first_seen"] == pd.Timestamp("2023-11-14 22:13:20")  # epoch 1700000000


def test_qualys_scan_report(scans):
    res = read_scan_file(scans / "qualys_scan.xml")
    # IP .40: INFO, SERVICE (informational), VULN sev 2, VULN sev 1 (informational), PRACTICE sev 4; IP .41 empty
    assert res.hosts == ["192.0.2.40", "192.0.2.41"]
    assert res.accounting == {"items_read": 5, "findings": 2, "skipped": {"informational": 3}}
    assert res.findings["vuln_id"].tolist() == ["qualys:38170", "qualys:82070"]
    assert res.findings["severity"].tolist() == ["low", "high"]


def test_qualys_asset_report_joins_the_glossary(scans):
    res = read_scan_file(scans / "qualys_asset.xml")
    # qid 11 (Vuln, glossary SEVERITY 4), qid 6 (Ig: informational)
    assert res.accounting == {"items_read": 2, "findings": 1, "skipped": {"informational": 1}}
    row = res.findings.iloc[0]
    assert (row["title"], row["severity"], row["cve"]) == ("Hidden RPC Services", "high", "CVE-1999-0632")


def test_qualys_vmdr_csv_with_metadata_lines(scans):
    res = read_scan_file(scans / "qualys_vmdr.csv")
    # two metadata lines before the header; asset with two IPv4 -> first; second row sev 1, IPv6 only
    assert res.hosts == ["192.0.2.60", "2001:db8::1"]
    assert res.findings["host"].tolist() == ["192.0.2.60"]
    assert res.findings["cvss_score"].tolist() == [10.0]


def test_nuclei_old_and_new_keys(scans):
    res = read_scan_file(scans / "nuclei_old.jsonl")
    # 3 findings (blank line ignored): templateID low, template-id critical with matcher, info
    assert res.accounting == {"items_read": 3, "findings": 2, "skipped": {"informational": 1}}
    f = res.findings
    assert f["vuln_id"].tolist() == ["nuclei:openssh5.3-detect", "nuclei:CVE-2021-44228:header"]
    assert f["port"].tolist() == [22, 8080]  # port of 'matched', of the URL
    assert f["cve"].tolist() == [None, "CVE-2021-44228"]
    assert f["first_seen"].iloc[0] == pd.Timestamp("2021-05-20 08:11:01.667748")  # +03:00 -> UTC


def test_testssl_findings_and_controls(scans):
    res = read_scan_file(scans / "testssl.csv", audit_id="A9")
    # 10 rows: WARN with target '/' (no_host), HIGH, LOW, 5 OK, INFO, LOW
    assert res.accounting == {
        "items_read": 10,
        "findings": 3,
        "skipped": {"check_passed": 5, "informational": 1, "no_host": 1},
    }
    controls = res.controls.set_index(["host", "control"])["present"].to_dict()
    # .80 offers SSLv3 and TLS1 -> not modern; HSTS OK. .81 offers only TLS1_2 -> modern; HSTS not offered
    assert controls == {
        ("192.0.2.80", "tls_modern"): False,
        ("192.0.2.81", "tls_modern"): True,
        ("192.0.2.80", "hsts"): True,
        ("192.0.2.81", "hsts"): False,
    }
    assert (res.controls["audit_id"] == "A9").all()


def test_sslyze_checks_and_controls(scans):
    res = read_scan_file(scans / "sslyze5.json")
    # 9 items = 8 checks (4 protocol versions, heartbleed, certificate untrusted / hostname / expiry:
    # not_valid_after 2022-01-31 < scan 2022-03-01) + robot, whose command errored (scan_problem);
    # compression was not scheduled (not an item). Failed: TLS 1.0 accepted, certificate expired.
    assert res.accounting == {
        "items_read": 9,
        "findings": 2,
        "skipped": {"check_passed": 6, "scan_problem": 1},
    }
    assert res.findings["vuln_id"].tolist() == ["sslyze:tls_1_0_offered", "sslyze:certificate_expired"]
    assert res.controls[["control", "present"]].values.tolist() == [["tls_modern", False], ["hsts", False]]


def test_empty_file_is_a_valid_scan(scans):
    res = read_scan_file(scans / "empty.nessus")
    assert res.format == "empty"
    assert res.accounting == {"items_read": 0, "findings": 0, "skipped": {}}
    assert res.findings.empty and tuple(res.findings.columns) == FINDING_COLUMNS


def test_map_severity_table_scales():
    # values from scanner_severity.csv: testssl OK is a pass, openvas Log informational, qualys 5 critical
    out = map_severity("testssl", pd.Series(["severity"]), pd.Series(["OK"]))
    assert out.values.tolist() == [[None, "pass"]]
    out = map_severity("openvas", pd.Series(["threat", "cvss"]), pd.Series(["Log", "0.0"]))
    assert out.values.tolist() == [["info", "info"], ["info", "info"]]
    out = map_severity("qualys", pd.Series(["severity"]), pd.Series(["5"]))
    assert out.values.tolist() == [["critical", "finding"]]
    # an unknown word is kept as a finding with no severity (never hidden)
    out = map_severity("nuclei", pd.Series(["severity"]), pd.Series(["weird"]))
    assert out.values.tolist() == [[None, "finding"]]


def test_latin1_semicolon_csv(scans):
    # ISO-8859-1 bytes (0xE9 = "é") and ';' delimiters, as French administrations export
    res = read_scan_file(scans / "tenable_latin1.csv")
    assert res.format == "tenable_csv"
    assert res.findings["title"].tolist() == ["Vulnérabilité SMB"]
    assert res.findings["severity"].tolist() == ["critical"]
