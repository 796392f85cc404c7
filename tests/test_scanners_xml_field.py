"""Nmap XML and OpenVAS/GVM (XML, CSV) as written in the field: fixtures under tests/fixtures/scans/field/,
written for these tests from nmap.dtd and the GMP/OMP report layouts (no third-party file copied)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.scanners import read_scan_file
from cyberobs_lib.scanners.openvas import parse_port

FIELD = Path(__file__).parent / "fixtures" / "scans" / "field"


def _read(name: str, **kw):
    res = read_scan_file(FIELD / name, audit_id="A", **kw)
    acc = res.accounting
    assert acc["items_read"] == acc["findings"] + sum(acc["skipped"].values())
    return res


def _ports(res) -> list[tuple]:
    f = res.findings
    return [
        (h, None if pd.isna(p) else int(p), pr, s)
        for h, p, pr, s in zip(f["host"], f["port"], f["protocol"], f["service"], strict=True)
    ]


# --- Nmap -------------------------------------------------------------------------------------------


def test_nmap_address_without_addrtype_several_ports_blocks_hosthint_and_no_address_host():
    res = _read("nmap_field.xml")
    assert res.format == "nmap_xml"
    # 10.0.0.5 has no addrtype (DTD default ipv4); <hosthint> and the host down are not hosts;
    # the MAC-only host has no IP nor hostname
    assert res.hosts == ["10.0.0.5"]
    assert res.accounting == {
        "items_read": 4,  # 3389, 80 (first <ports>), 161/udp (second <ports>), 23 on the MAC-only host
        "findings": 2,
        "skipped": {"informational": 1, "no_host": 1},
    }
    assert _ports(res) == [("10.0.0.5", 3389, "tcp", "ms-wbt-server"), ("10.0.0.5", 161, "udp", "snmp")]
    assert res.findings["vuln_id"].tolist() == ["nmap:port/3389", "nmap:port/161"]
    assert (res.status, res.status_detail) == ("complete", "")


def test_nmap_info_included_keeps_the_http_port_of_the_first_ports_block():
    res = _read("nmap_field.xml", include_info=True)
    assert sorted(_ports(res)) == [
        ("10.0.0.5", 80, "tcp", "http"),
        ("10.0.0.5", 161, "udp", "snmp"),
        ("10.0.0.5", 3389, "tcp", "ms-wbt-server"),
    ]
    assert res.accounting["skipped"] == {"no_host": 1}


def test_nmap_error_exit_without_host_up_is_failed_with_errormsg():
    res = _read("nmap_error_nohost.xml")
    assert res.status == "failed"
    assert res.status_detail == "nmap error: Failed to open input file targets.txt for reading"
    assert res.hosts == [] and res.accounting["items_read"] == 0


def test_nmap_error_exit_with_a_host_up_is_incomplete_and_timed_out_host_is_not_in_perimeter():
    res = _read("nmap_error_partial.xml")
    assert res.status == "incomplete"
    assert res.status_detail.startswith("nmap error: sendto in send_ip_packet_sd")
    assert "1 host(s) not scanned: host timeout" in res.status_detail
    assert res.hosts == ["10.0.1.1"]  # 10.0.1.2 timed out: no port reported
    assert _ports(res) == [("10.0.1.1", 445, "tcp", "microsoft-ds")]
    assert res.accounting == {"items_read": 1, "findings": 1, "skipped": {}}


def test_nmap_without_runstats_is_incomplete_but_read():
    res = _read("nmap_no_runstats.xml")
    assert res.status == "incomplete"
    assert "no <runstats>" in res.status_detail
    assert _ports(res) == [("10.0.2.1", 5900, "tcp", "vnc")]


def test_nmap_unusual_items_are_counted(tmp_path):
    # items of a host down (nmap writes none; a file that does is accounted for) and an
    # <extraports state="open"> summary (open ports without numbers), per the DTD
    p = tmp_path / "n.xml"
    p.write_text(
        '<nmaprun scanner="nmap" version="7.94" xmloutputversion="1.05">'
        '<host><status state="down" reason="no-response"/><address addr="10.1.1.1"/>'
        '<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/></port></ports></host>'
        '<host><status state="up" reason="syn-ack"/><address addr="10.1.1.2" addrtype="ipv4"/>'
        '<ports><extraports state="open" count="3"/><extraports state="closed" count="990"/>'
        '<port protocol="tcp" portid="21"><state state="open" reason="syn-ack"/>'
        '<service name="ftp" method="table" conf="3"/></port></ports></host>'
        '<runstats><finished time="1" elapsed="1" exit="success"/><hosts up="1" down="1" total="2"/></runstats>'
        "</nmaprun>"
    )
    res = read_scan_file(p, audit_id="A")
    assert res.hosts == ["10.1.1.2"]
    assert res.accounting == {
        "items_read": 5,
        "findings": 1,
        "skipped": {"host_not_up": 1, "open_port_unlisted": 3},
    }
    assert _ports(res) == [("10.1.1.2", 21, "tcp", "ftp")]
    assert res.status == "complete"


# --- OpenVAS / GVM ports ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "protocol", "expected"),
    [
        ("443/tcp", None, ("443", "tcp", None)),
        ("general/tcp", None, (None, "tcp", None)),
        ("http (80/tcp)", None, ("80", "tcp", "http")),
        ("www (443/tcp)", None, ("443", "tcp", "www")),
        ("domain (53/udp)", None, ("53", "udp", "domain")),
        ("general/CPE-T", None, (None, None, None)),
        ("general/HOST-T", None, (None, None, None)),
        ("general/SMBClient", None, (None, None, None)),
        ("general/icmp", None, (None, "icmp", None)),
        ("package", None, (None, None, None)),
        (None, None, (None, None, None)),
        ("443", "tcp", ("443", "tcp", None)),  # CSV Port / Port Protocol
        ("", "tcp", (None, "tcp", None)),
        ("general", "CPE-T", (None, None, None)),
        ("161", "UDP", ("161", "udp", None)),
        ("99999/tcp", None, (None, "tcp", None)),
    ],
)
def test_parse_port(value, protocol, expected):
    assert parse_port(value, protocol) == expected


def test_openvas8_xml_ports_and_pseudo_ports():
    res = _read("openvas_v8_ports.xml")
    assert res.format == "openvas_xml"
    assert res.hosts == ["192.0.2.10"]
    assert _ports(res) == [
        ("192.0.2.10", 80, "tcp", "http"),
        ("192.0.2.10", None, "tcp", None),
        ("192.0.2.10", None, None, None),  # general/CPE-T
        ("192.0.2.10", None, "icmp", None),
        ("192.0.2.10", None, None, None),  # package
        ("192.0.2.10", 53, "udp", "domain"),
    ]
    assert res.accounting == {"items_read": 7, "findings": 6, "skipped": {"informational": 1}}
    assert res.findings["cve"].tolist()[2:5] == ["CVE-2016-0001", "CVE-1999-0524", "CVE-2016-0002"]
    assert (res.status, res.status_detail) == ("complete", "")


def test_openvas_csv_ports_use_the_same_parser():
    res = _read("openvas_ports.csv")
    assert res.format == "openvas_csv"
    assert _ports(res) == [
        ("192.0.2.20", 443, "tcp", None),
        ("192.0.2.20", None, "tcp", None),
        ("192.0.2.20", None, None, None),  # general / CPE-T
        ("192.0.2.20", 80, "tcp", "http"),
        ("192.0.2.20", None, None, None),
        ("192.0.2.20", 161, "udp", None),
    ]
    assert res.accounting == {"items_read": 6, "findings": 6, "skipped": {}}
    assert res.status == "complete"


# --- OpenVAS / GVM completeness ---------------------------------------------------------------------


def test_gvm_stopped_scan_without_scan_end_is_incomplete():
    res = _read("gvm_stopped.xml")
    assert res.status == "incomplete"
    assert res.status_detail == "scan_run_status 'Stopped', not 'Done'; no scan_end: the scan did not finish"
    # the <detection><result> inside the result is not an item
    assert res.accounting == {"items_read": 1, "findings": 1, "skipped": {}}
    assert _ports(res) == [("198.51.100.7", 22, "tcp", None)]
    assert res.findings["cve"].tolist() == ["CVE-2023-38408"]


def test_gvm_errors_make_the_scan_incomplete_and_the_delta_run_status_is_not_this_reports():
    res = _read("gvm_delta_errors.xml")
    # <delta><report> says Interrupted with an empty scan_end: the other run, ignored
    assert res.status == "incomplete"
    assert res.status_detail == (
        "2 scan error(s): 203.0.113.10: NVT timed out after 320 seconds. | "
        "203.0.113.10: Host process failure (Host has been marked as dead)."
    )
    assert res.hosts == ["203.0.113.10", "203.0.113.9"]
    assert res.accounting == {"items_read": 1, "findings": 1, "skipped": {}}  # errors are not items


def test_gvm_errors_for_every_host_and_no_result_is_failed():
    res = _read("gvm_failed.xml")
    assert res.status == "failed"
    assert "scan_run_status 'Interrupted', not 'Done'" in res.status_detail
    assert "1 scan error(s): 192.0.2.50: Host access denied." in res.status_detail
    assert res.accounting == {"items_read": 0, "findings": 0, "skipped": {}}


def test_gvm_done_report_with_scan_end_is_complete_and_trimmed_report_says_nothing(tmp_path):
    done = tmp_path / "done.xml"
    done.write_text(
        "<report><report><scan_run_status>Done</scan_run_status><scan_start>2024-01-01T00:00:00Z</scan_start>"
        "<results/><errors><count>0</count></errors><scan_end>2024-01-01T01:00:00Z</scan_end></report></report>"
    )
    trimmed = tmp_path / "trimmed.xml"
    trimmed.write_text("<report><report><results/></report></report>")
    for p in (done, trimmed):
        res = read_scan_file(p, audit_id="A")
        assert (res.status, res.status_detail) == ("complete", "")
