"""Truncated XML exports (the document ends before its root closes: nmap killed, a disk full, a cut copy).

Policy (``cyberobs_lib/scanners/xmlsafe.py``): the records complete before the cut are read and kept, the
record open at the cut is dropped whole, the scan is ``incomplete`` with detail ``truncated XML at line <n>
(the document ends before <root> is closed): records after it lost``, and no exception is raised. Any other
well-formedness error (mismatched tag, invalid token) is still a refusal. Fixtures are written here; the
expected counts are those of each fixture's records, stated with the fixture.
"""

from __future__ import annotations

import gzip
import pyexpat
import re

import pytest

from cyberobs_lib.scanners import ScanError, iter_scan_file, read_scan_file
from cyberobs_lib.scanners.xmlsafe import TruncatedXML, iter_records, open_xml

NL = b"\n"

NMAP = b"""<?xml version="1.0"?>
<nmaprun scanner="nmap" start="1700000000">
<host starttime="1700000000"><status state="up"/><address addr="192.0.2.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh"/></port>
<port protocol="tcp" portid="80"><state state="open"/><service name="http" product="caf\xc3\xa9"/></port></ports>
</host>
<host starttime="1700000000"><status state="up"/><address addr="192.0.2.2" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="3306"><state state="open"/><service name="mysql"/></port></ports>
</host>
<host><status state="down"/><address addr="192.0.2.3" addrtype="ipv4"/></host>
<runstats><finished time="1700000100" exit="success"/></runstats>
</nmaprun>
"""
#: per <host>: (address when up, items = open ports, findings = exposure ports: ssh, mysql)
NMAP_HOSTS = [("192.0.2.1", 2, 1), ("192.0.2.2", 1, 1), (None, 0, 0)]

NESSUS = b"""<?xml version="1.0" ?>
<NessusClientData_v2>
<Report name="r">
<ReportHost name="192.0.2.10"><HostProperties><tag name="HOST_START">Thu Mar 25 13:23:31 2021</tag></HostProperties>
<ReportItem port="3389" svc_name="msrdp" protocol="tcp" severity="3" pluginID="10940" pluginName="RDP"><risk_factor>High</risk_factor></ReportItem>
<ReportItem port="0" svc_name="general" protocol="tcp" severity="0" pluginID="19506" pluginName="Scan Info"/>
<ReportItem port="443" svc_name="www" protocol="tcp" severity="2" pluginID="51192" pluginName="Cert \xc3\xa9"><cve>CVE-2020-1</cve></ReportItem>
</ReportHost>
<ReportHost name="192.0.2.11"><HostProperties><tag name="HOST_START">Thu Mar 25 13:30:00 2021</tag></HostProperties>
<ReportItem port="22" svc_name="ssh" protocol="tcp" severity="1" pluginID="70658" pluginName="SSH CBC"/>
<ReportItem port="0" svc_name="general" protocol="tcp" severity="0" pluginID="19506" pluginName="Scan Info"/>
<ReportItem port="445" svc_name="cifs" protocol="tcp" severity="4" pluginID="97833" pluginName="MS17-010"/>
</ReportHost>
</Report>
</NessusClientData_v2>
"""
#: per <ReportHost>: (name, items = ReportItems, findings = severity > 0)
NESSUS_HOSTS = [("192.0.2.10", 3, 2), ("192.0.2.11", 3, 2)]

OPENVAS = b"""<report id="r1" format_id="f" extension="xml">
<report id="r1"><scan_run_status>Done</scan_run_status><scan_start>2024-02-01T09:00:00Z</scan_start>
<results start="1" max="-1">
<result id="a"><name>TLS 1.0</name><host>192.0.2.30</host><port>443/tcp</port>
<nvt oid="1.3.6.1.4.1.25623.1.0.117274"><name>TLS 1.0 \xc3\xa9</name><cvss_base>4.3</cvss_base></nvt><threat>Medium</threat><severity>4.3</severity></result>
<result id="b"><name>OS</name><host>192.0.2.30</host><port>general/tcp</port>
<nvt oid="1.3.6.1.4.1.25623.1.0.105937"><name>OS</name></nvt><threat>Log</threat><severity>0.0</severity></result>
<result id="c"><name>SSH</name><host>192.0.2.31</host><port>22/tcp</port>
<nvt oid="1.3.6.1.4.1.25623.1.0.1"><name>SSH weak</name></nvt><threat>High</threat><severity>7.5</severity></result>
</results>
<host><ip>192.0.2.32</ip></host>
<scan_end>2024-02-01T10:00:00Z</scan_end>
</report></report>
"""
#: per <result>: (host, items, findings) — Log is informational
OPENVAS_RESULTS = [("192.0.2.30", 1, 1), ("192.0.2.30", 1, 0), ("192.0.2.31", 1, 1)]

QUALYS = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE SCAN SYSTEM "https://qualysguard.qualys.com/scan-1.dtd">
<SCAN value="scan/1"><HEADER><KEY value="DATE">2023-05-04T12:00:00Z</KEY></HEADER>
<IP value="192.0.2.40"><VULNS><CAT value="Web server" port="443" protocol="tcp">
<VULN number="38001" severity="3"><TITLE><![CDATA[Weak cipher \xc3\xa9]]></TITLE></VULN>
<VULN number="38002" severity="1"><TITLE><![CDATA[Minimal]]></TITLE></VULN>
</CAT></VULNS></IP>
<IP value="192.0.2.41"><VULNS><CAT value="Web server" port="80" protocol="tcp">
<VULN number="38003" severity="5"><TITLE><![CDATA[Critical]]></TITLE></VULN>
</CAT></VULNS></IP>
</SCAN>
"""
#: per <IP>: (value, items, findings) — severity 1 is informational
QUALYS_IPS = [("192.0.2.40", 2, 1), ("192.0.2.41", 1, 1)]

DOCS = {
    "nmap": (NMAP, "x.xml", "host", NMAP_HOSTS, "nmaprun"),
    "nessus": (NESSUS, "x.nessus", "ReportHost", NESSUS_HOSTS, "NessusClientData_v2"),
    "openvas": (OPENVAS, "x.xml", "result", OPENVAS_RESULTS, "report"),
    "qualys": (QUALYS, "x.xml", "IP", QUALYS_IPS, "SCAN"),
}


def _offsets(doc: bytes, tag: str) -> tuple[int, list[int]]:
    """Byte offset just after the root's start tag, and just after each ``tag`` record's end tag
    (a plain expat pass over the complete document, independent of the readers)."""
    parser = pyexpat.ParserCreate()
    ends: list[int] = []
    root_end: list[int] = []

    def start(name, _attrs):
        if not root_end:
            root_end.append(doc.index(b">", parser.CurrentByteIndex) + 1)

    def end(name):
        if name == tag:
            ends.append(doc.index(b">", parser.CurrentByteIndex) + 1)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(doc, True)
    return root_end[0], ends


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _check(res, records, kept: int, fmt: str, *, truncated: bool = True):
    """The result of a file cut after ``kept`` complete records."""
    acc = res.accounting
    assert (
        acc["items_read"]
        == acc["findings"] + sum(acc["skipped"].values())
        == len(res.findings) + sum(acc["skipped"].values())
    )
    assert acc["items_read"] == sum(r[1] for r in records[:kept])
    assert acc["findings"] == sum(r[2] for r in records[:kept])
    hosts = {r[0] for r in records[:kept] if r[0]}
    if fmt == "openvas" and not truncated:
        hosts.add("192.0.2.32")  # the report <host> listed after the results
    assert set(res.hosts) >= hosts
    if fmt != "openvas":
        assert set(res.hosts) == hosts
    assert set(res.findings["host"]) <= hosts
    if not truncated:
        return
    assert res.status == "incomplete"
    assert re.fullmatch(
        rf"truncated XML at line \d+ \(the document ends before <{DOCS[fmt][4]}> is closed\): "
        "records after it lost",
        res.status_detail,
    ), res.status_detail


@pytest.mark.parametrize("fmt", sorted(DOCS))
def test_cut_after_each_record_keeps_the_records_before_it(tmp_path, fmt):
    doc, name, tag, records, root = DOCS[fmt]
    _root_end, ends = _offsets(doc, tag)
    assert len(ends) == len(records)
    for i, end in enumerate(ends):
        for cut in (end - 1, end, end + 1, end + 3):  # inside the end tag, right after it, a partial next tag
            data = doc[:cut]
            res = read_scan_file(_write(tmp_path, name, data))
            kept = i + 1 if cut >= end else i
            _check(res, records, kept, fmt)
            assert res.status_detail.startswith(f"truncated XML at line {data.count(NL) + 1} ")


@pytest.mark.parametrize("fmt", sorted(DOCS))
def test_every_cut_reads_the_complete_records_and_never_raises(tmp_path, fmt):
    """A cut at any byte after the root's start tag (inside a tag, an attribute, a text, a CDATA section,
    a multi-byte character): the complete records are kept, the one cut is dropped, nothing raises. Every
    11th byte here (every byte passes too: 40 s)."""
    doc, name, tag, records, _root = DOCS[fmt]
    root_end, ends = _offsets(doc, tag)
    for cut in range(root_end, len(doc) - 1, 11):
        data = doc[:cut]
        res = read_scan_file(_write(tmp_path, name, data))
        kept = sum(end <= cut for end in ends)
        _check(res, records, kept, fmt)
    # the complete document, as a check of the expectations
    res = read_scan_file(_write(tmp_path, name, doc))
    _check(res, records, len(records), fmt, truncated=False)
    assert res.status == "complete"


@pytest.mark.parametrize("fmt", sorted(DOCS))
def test_a_cut_before_the_root_start_tag_is_complete_is_refused(tmp_path, fmt):
    doc, name, tag, _records, _root = DOCS[fmt]
    root_end, _ends = _offsets(doc, tag)
    with pytest.raises(ScanError):
        read_scan_file(_write(tmp_path, name, doc[: root_end - 2]))


def test_nmap_cut_inside_a_host(tmp_path):
    cut = NMAP.index(b'<host starttime="1700000000"><status state="up"/><address addr="192.0.2.2"') + 120
    path = _write(tmp_path, "x.xml", NMAP[:cut])
    res = read_scan_file(path)
    assert res.hosts == ["192.0.2.1"]
    assert res.accounting == {"items_read": 2, "findings": 1, "skipped": {"informational": 1}}
    assert res.findings["vuln_id"].tolist() == ["nmap:port/22"]
    assert res.status == "incomplete"
    line = NMAP[:cut].count(NL) + 1
    assert res.status_detail == (
        f"truncated XML at line {line} (the document ends before <nmaprun> is closed): records after it lost"
    )  # no "no <runstats>" detail: the truncation explains it


def test_nmap_missing_only_its_last_line_keeps_its_runstats(tmp_path):
    doc = NMAP.replace(b'exit="success"', b'exit="error" errormsg="socket error"')
    path = _write(tmp_path, "x.xml", doc[: doc.index(b"</nmaprun>")])
    res = read_scan_file(path)
    assert res.hosts == ["192.0.2.1", "192.0.2.2"]
    assert res.accounting["items_read"] == 3 and res.accounting["findings"] == 2
    assert res.status == "incomplete"
    assert res.status_detail.split("; ") == [
        "truncated XML at line 12 (the document ends before <nmaprun> is closed): records after it lost",
        "nmap error: socket error",  # read from the <runstats> complete before the cut
    ]


def test_nessus_host_cut_in_its_middle_is_dropped_whole(tmp_path):
    # cut after the second host's first two ReportItems (one finding, one informational)
    second = NESSUS.index(b'<ReportHost name="192.0.2.11">')
    cut = NESSUS.index(b'<ReportItem port="445"', second) + 10
    path = _write(tmp_path, "x.nessus", NESSUS[:cut])
    res = read_scan_file(path)
    assert res.hosts == ["192.0.2.10"]  # the cut host is not in the perimeter
    assert res.accounting == {"items_read": 3, "findings": 2, "skipped": {"informational": 1}}
    assert set(res.findings["host"]) == {"192.0.2.10"}
    assert res.status == "incomplete"
    assert res.status_detail.startswith(f"truncated XML at line {NESSUS[:cut].count(NL) + 1} ")
    # streamed in chunks of one item: the cut host's items never reach a chunk either
    chunks = list(iter_scan_file(path, chunk_rows=1))
    assert sum(c.accounting["items_read"] for c in chunks) == 3
    assert sum(len(c.findings) for c in chunks) == 2
    assert {c.status for c in chunks} >= {"incomplete"}


def test_openvas_cut_inside_a_result(tmp_path):
    cut = OPENVAS.index(b'<result id="c">') + 40
    res = read_scan_file(_write(tmp_path, "x.xml", OPENVAS[:cut]))
    assert res.accounting == {"items_read": 2, "findings": 1, "skipped": {"informational": 1}}
    assert res.hosts == ["192.0.2.30"]
    assert res.status == "incomplete"
    # scan_end lies after the cut: not reported as "no scan_end: the scan did not finish"
    assert res.status_detail.startswith("truncated XML at line ") and "scan_end" not in res.status_detail
    assert "<report> is closed" in res.status_detail


def test_openvas_truncated_report_still_reports_its_run_status(tmp_path):
    doc = OPENVAS.replace(b"<scan_run_status>Done", b"<scan_run_status>Stopped")
    res = read_scan_file(_write(tmp_path, "x.xml", doc[: doc.index(b"</results>")]))
    assert res.accounting["items_read"] == 3
    assert res.status == "incomplete"
    assert "scan_run_status 'Stopped', not 'Done'" in res.status_detail
    assert res.status_detail.startswith("truncated XML at line 10 ")


def test_qualys_cut_inside_an_ip(tmp_path):
    cut = QUALYS.index(b'<VULN number="38003"') + 5
    res = read_scan_file(_write(tmp_path, "x.xml", QUALYS[:cut]))
    assert res.hosts == ["192.0.2.40"]
    assert res.accounting == {"items_read": 2, "findings": 1, "skipped": {"informational": 1}}
    assert res.status == "incomplete" and "<SCAN> is closed" in res.status_detail


def test_qualys_glossary_cut_off_is_counted_in_the_detail(tmp_path):
    doc = b"""<?xml version="1.0" encoding="UTF-8" ?>
<ASSET_DATA_REPORT><HOST_LIST>
<HOST><IP>192.0.2.50</IP><VULN_INFO_LIST>
<VULN_INFO><QID id="qid_1">1</QID><TYPE>Vuln</TYPE><PORT>443</PORT><PROTOCOL>tcp</PROTOCOL></VULN_INFO>
<VULN_INFO><QID id="qid_2">2</QID><TYPE>Vuln</TYPE></VULN_INFO>
</VULN_INFO_LIST></HOST>
</HOST_LIST>
<GLOSSARY><VULN_DETAILS_LIST>
<VULN_DETAILS id="qid_1"><QID>1</QID><TITLE>One</TITLE><SEVERITY>4</SEVERITY></VULN_DETAILS>
<VULN_DETAILS id="qid_2"><QID>2</QID><TITLE>Two</TITLE><SEVERITY>2</SEVERITY></VULN_DETAILS>
</VULN_DETAILS_LIST></GLOSSARY>
</ASSET_DATA_REPORT>
"""
    full = read_scan_file(_write(tmp_path, "full.xml", doc))
    assert full.status == "complete" and full.findings["title"].tolist() == ["One", "Two"]
    cut = doc.index(b'<VULN_DETAILS id="qid_2"') + 30  # the second glossary entry is cut
    res = read_scan_file(_write(tmp_path, "x.xml", doc[:cut]))
    assert res.hosts == ["192.0.2.50"] and res.accounting["items_read"] == 2 == len(res.findings)
    assert res.findings["title"].tolist() == ["One", "qualys:2"]
    assert res.findings["severity"].tolist() == ["high", None]
    assert res.status == "incomplete"
    assert res.status_detail.endswith("; 1 item(s) without a glossary entry (title, severity): cut off")


def test_a_truncated_gzip_member_content_is_read_too(tmp_path):
    path = tmp_path / "x.xml.gz"
    path.write_bytes(gzip.compress(NMAP[: NMAP.index(b"<host><status state=")]))
    res = read_scan_file(path)
    assert res.hosts == ["192.0.2.1", "192.0.2.2"] and res.status == "incomplete"
    assert res.source_file == str(path)


@pytest.mark.parametrize(
    ("fmt", "old", "new", "line"),
    [
        ("nmap", b"</ports>\n</host>\n<host starttime", b"</ports>\n</hostx>\n<host starttime", 6),
        ("nessus", b"</ReportItem>", b"</ReportItm>", 5),
        ("openvas", b"</nvt><threat>High", b"</nvtx><threat>High", 9),
        ("qualys", b'<VULN number="38003"', b'<VULN <number="38003"', 9),
    ],
)
def test_other_well_formedness_errors_are_still_refused(tmp_path, fmt, old, new, line):
    doc, name, *_ = DOCS[fmt]
    assert old in doc
    broken = doc.replace(old, new, 1)
    for data in (broken, broken[: broken.index(new) + len(new) + 40]):  # complete, or also truncated after
        path = _write(tmp_path, name, data)
        with pytest.raises(ScanError) as info:
            read_scan_file(path)
        err = info.value
        assert not isinstance(err, TruncatedXML)
        assert "malformed XML" in str(err) and err.line == line


def test_iter_records_yields_the_complete_records_then_raises_truncated_xml(tmp_path):
    path = _write(tmp_path, "x.xml", NMAP[: NMAP.index(b"<runstats>") + 12])
    stream, root, _line = open_xml(path)
    seen = []
    with pytest.raises(TruncatedXML) as info:
        for el in iter_records(path, stream, root, frozenset({"host", "runstats"})):
            seen.append(el.tag)
    stream.close()
    assert seen == ["host", "host", "host"]  # the cut <runstats> is not yielded
    assert isinstance(info.value, ScanError) and info.value.line == 11
    assert info.value.detail.startswith("truncated XML at line 11 (the document ends before <nmaprun>")
