"""OpenVAS / Greenbone GVM XML reports (GMP ``get_reports``, OpenVAS 6 to GVM 22.x) and CSV result exports.

Policy
------
* Item = one ``<result>`` that carries an ``<nvt>`` (nested ``<detection><result>`` references are not
  results), or one CSV data row. Every item is a finding row or counted in ``skipped`` with its reason.
* Severity from the ``<threat>`` word (``Log``/``Debug`` informational: skipped unless ``include_info``;
  ``False Positive`` skipped as ``false_positive``; ``Error`` as ``scan_problem``), or, when the word is
  missing, from the numeric ``<severity>`` by its CVSS band. ``cvss_score`` = ``<severity>`` (else
  ``nvt/cvss_base``); ``cvss_vector`` = ``severities/severity/value`` (GVM 21+) or the
  ``cvss_base_vector=`` tag. A result without a host is skipped (``no_host``).
* ``vuln_id`` = ``openvas:<NVT OID>``; CVEs from ``refs/ref[@type="cve"]`` (GVM 9+), ``nvt/cve``
  (OpenVAS ≤ 8; ``NOCVE`` ignored) or the CSV ``CVEs`` column.
* Ports (:func:`parse_port`, the same for the XML ``<port>`` and the CSV ``Port`` / ``Port Protocol``
  cells): ``443/tcp`` → port 443, protocol tcp; ``general/tcp`` → no port, protocol tcp; OpenVAS ≤ 8
  ``http (80/tcp)`` → port 80, protocol tcp, service ``http``; pseudo-ports ``general/CPE-T``,
  ``general/HOST-T``, ``general/SMBClient``, ``package`` → no port, no protocol (``general/icmp``:
  protocol icmp). Only ``tcp``, ``udp`` and ``icmp`` are protocols.
* Perimeter = the report's ``<host><ip>`` entries plus every result host (XML); the hosts with a row (CSV).
* ``first_seen`` = the result's ``creation_time`` (else ``modification_time``) / the CSV ``Timestamp``.
* Root must be ``report`` (or ``get_reports_response``): a lone ``<result>`` fragment is refused.
* Status (XML; a CSV export carries no run information and is ``complete``). Report fields are read at
  their place, in the report (``<report>``, ``<report><report>``, ``get_reports_response/report/report``),
  never from a delta report's ``<delta><report>`` (the other run), a result or a port summary:

  - ``incomplete`` when a ``scan_run_status`` is not ``Done`` (``Stopped``, ``Interrupted``,
    ``Stop Requested``, ``Running``, ``Requested``...), or when a report that has run information
    (``scan_run_status`` or ``scan_start``) has no ``scan_end`` or an empty one (gvmd fills it when the
    scan ends). A trimmed report with none of these says nothing against completeness: ``complete``.
  - ``<errors>``: the GMP report lists there the scan's *error messages* (results of severity -3: an NVT
    that timed out, a host process failure, host access denied) with their host and description. They
    are not items (not vulnerabilities); any ``<error>`` makes the scan ``incomplete``, with the count and
    the first three ``host: description`` in the detail.
  - ``failed`` when the report has errors and no result at all, and the errors name every host of the
    report (or, with no report host listed, one error names no host: a scanner-wide failure) — the
    scanner reached no host without an error. With errors and no result but some host unnamed by the
    errors, the report may just be filtered (GSA exports apply the result filter): ``incomplete``.

* Truncated report (the document ends before its root is closed: a cut download, a full disk): the
  results and report fields complete before the cut are read and kept, a ``<result>`` cut in its middle
  is dropped whole (not read, not counted), and the scan is ``incomplete`` with detail ``truncated XML at
  line <n> (the document ends before <report> is closed): records after it lost``. A ``scan_end``
  missing from a truncated report is not reported (it may lie after the cut); ``<errors>`` after the cut
  are lost. Any other XML error (mismatched tag, invalid token) refuses the file.

Speed
-----
As the Qualys reader (:func:`~cyberobs_lib.scanners.xmlsafe.iter_records`, with its memory bounds): no
per-element events, each completed ``<result>`` / report ``<host>`` / ``<errors>`` read whole and removed;
rows appended as tuples in the collector's column order; the disposition of each distinct (threat, severity)
decided once, so a result skipped by policy is counted without reading its ``<nvt>``; ports, scores and CVE
lists converted once per distinct value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cyberobs_lib.scanners._core import EVIDENCE_MAX, Collector, ScanError, ScanResult, join_cves
from cyberobs_lib.scanners._memo import ValueMemo
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header
from cyberobs_lib.scanners.xmlsafe import TruncatedXML, iter_records, open_xml, require_root, until_cut

ROOTS = ("report", "get_reports_response")
#: Report fields, read as records (whole, when complete) besides ``<result>``.
_REPORT_FIELDS = frozenset({"host", "scan_run_status", "scan_start", "scan_end", "errors"})
#: Elements read as records and ignored: they hold elements named as report fields that are not this
#: report's (a delta report's ``<delta><report>`` with the other run's ``scan_run_status`` and
#: ``scan_end``; the ``<host>`` of each ``<ports><port>`` summary and of OMP's ``<host_start>`` /
#: ``<host_end>``; the report's ``<task>``). Records nested in a record are never yielded on their own
#: (:func:`~cyberobs_lib.scanners.xmlsafe.iter_records`), so a report field is read only at its place.
_IGNORED = frozenset({"delta", "ports", "host_start", "host_end", "task"})
_RECORDS = frozenset({"result"}) | _REPORT_FIELDS | _IGNORED
#: Protocols kept from a port field (``general/CPE-T``, ``general/HOST-T``, ... name no protocol).
_PROTOCOLS = frozenset({"tcp", "udp", "icmp"})
_NAMED_PORT = re.compile(r"^(.*?)\s*\(([^()]*)\)$")
_ERRORS_SHOWN = 3  # error descriptions quoted in the status detail


def parse_port(value: str | None, protocol: str | None = None) -> tuple[str | None, str | None, str | None]:
    """``(port, protocol, service)`` of an OpenVAS / GVM port field, as every version writes it.

    ``value`` is the XML ``<port>`` text or the CSV ``Port`` cell; ``protocol`` the CSV ``Port Protocol``
    cell (it completes a ``Port`` without ``/``). The port is a digit string (0-65535) or None; the
    protocol is ``tcp``, ``udp`` or ``icmp``, else None; the service is the name that OpenVAS ≤ 8 wrote
    before the port in parentheses.

    Examples
    --------
    >>> parse_port("443/tcp"), parse_port("general/tcp"), parse_port("http (80/tcp)")
    (('443', 'tcp', None), (None, 'tcp', None), ('80', 'tcp', 'http'))
    >>> parse_port("general/CPE-T"), parse_port("general/icmp"), parse_port("package")
    ((None, None, None), (None, 'icmp', None), (None, None, None))
    >>> parse_port("9200", "tcp"), parse_port("", "tcp"), parse_port("general", "CPE-T"), parse_port("")
    (('9200', 'tcp', None), (None, 'tcp', None), (None, None, None), (None, None, None))
    """
    text = (value or "").strip()
    service = None
    named = _NAMED_PORT.match(text)
    if named:
        service = named.group(1).strip() or None
        text = named.group(2).strip()
    extra = (protocol or "").strip()
    if extra and "/" not in text:
        text = f"{text or 'general'}/{extra}"
    port, _, proto = text.partition("/")
    port = port.strip()
    proto = proto.strip().lower()
    number = port if port.isascii() and port.isdigit() and int(port) <= 65535 else None
    return number, (proto if proto in _PROTOCOLS else None), service


def _tag_value(tags: str | None, key: str) -> str | None:
    for part in (tags or "").split("|"):
        k, _, v = part.partition("=")
        if k == key:
            return v or None
    return None


def _port(memo: ValueMemo, value: str | None) -> tuple:
    """:func:`parse_port` of ``value``, the port as an int (memoized)."""
    key = ("port/proto", value)
    if key not in memo:
        port, proto, service = parse_port(value)
        memo.put(key, (memo.port(port), proto, service))
    return memo[key]


def _cves(memo: ValueMemo, cves: tuple) -> str | None:
    key = ("openvas cve", cves)
    if key not in memo:
        memo.put(key, ";".join(dict.fromkeys(c.strip().upper() for c in cves if c)) or None)
    return memo[key]


def _read_result(el: ET.Element) -> tuple:
    """``(host, port text, threat, severity, <nvt>, creation_time, modification_time, description, name)``
    of a ``<result>`` (one pass over its children; host, threat and severity stripped, empty as None)."""
    host = port_text = threat = sev = created = modified = desc = rname = None
    nvt = None
    for c in el:
        t = c.tag
        if t == "host":
            host = (c.text or "").strip()
        elif t == "port":
            port_text = c.text
        elif t == "threat":
            threat = (c.text or "").strip() or None
        elif t == "severity":
            sev = (c.text or "").strip() or None
        elif t == "nvt":
            nvt = c
        elif t == "creation_time":
            created = c.text
        elif t == "modification_time":
            modified = c.text
        elif t == "description":
            desc = c.text
        elif t == "name":
            rname = c.text
    return host, port_text, threat, sev, nvt, created, modified, desc, rname


def _read_nvt(nvt: ET.Element) -> tuple[str | None, str | None, str | None, str | None, list[str]]:
    """``(name, cvss_base, tags, CVSS vector, CVEs)`` of a result's ``<nvt>``: CVEs from ``refs`` (GVM 9+)
    and ``cve`` (OpenVAS ≤ 8, ``NOCVE`` ignored), the vector from ``severities`` (GVM 21+)."""
    name = cvss_base = tags = vector = None
    cves = []
    for c in nvt:
        t = c.tag
        if t == "name":
            name = c.text
        elif t == "cvss_base":
            cvss_base = c.text
        elif t == "tags":
            tags = c.text
        elif t == "refs":
            cves += [r.get("id") for r in c if r.get("type") == "cve"]
        elif t == "cve":
            if c.text and c.text.strip().upper() != "NOCVE":
                cves.append(c.text)
        elif t == "severities":
            vector = c.findtext("severity/value")
    return name, cvss_base, tags, vector, cves


def _result(el: ET.Element, scan: _OpenvasScan) -> None:
    """One ``<result>``: its host joins the perimeter; a result skipped by policy (or without host) is
    counted without reading its ``<nvt>``, any other one is a row."""
    host, port_text, threat, sev, nvt, created, modified, desc, rname = _read_result(el)
    if host:
        scan.col.hosts.add(host)
    scale = "threat" if threat else "cvss"
    native = threat or sev
    reason = scan.memo.skip_reason(scale, native) if host else "no_host"
    if reason is not None:
        scan.skipped[reason] = scan.skipped.get(reason, 0) + 1
        return
    memo = scan.memo
    name, cvss_base, tags, vector, cves = _read_nvt(nvt)
    port, proto, service = _port(memo, port_text)
    vid = "openvas:" + (nvt.get("oid") or "")
    cve = _cves(memo, tuple(cves))
    vector = vector or _tag_value(tags, "cvss_base_vector")
    score = memo.number(sev if sev is not None else cvss_base)
    seen = (created or modified or "").strip() or None
    ev = desc.strip()[:EVIDENCE_MAX] if desc else None
    scan.col.rows.append(
        (
            host,
            port,
            proto,
            service,
            vid,
            cve,
            name or rname,
            vector,
            score,
            native,
            seen,
            scan.n,
            ev,
            scale,
            native,
            None,
        )
    )


def _text(el: ET.Element | None) -> str:
    """The element's own text, whitespace collapsed ("" for None)."""
    return " ".join((el.text or "").split()) if el is not None else ""


class _RunInfo:
    """What a report says of its scan run (report-level ``scan_run_status``, ``scan_start``, ``scan_end``,
    ``errors``), gathered while streaming and turned into a status at the end (:meth:`flag`)."""

    def __init__(self) -> None:
        self.run_status: list[str] = []
        self.started = False
        self.ends: list[str] = []
        self.errors: list[tuple[str, str]] = []  # (host, description)
        self.error_count = 0
        self.hosts: set[str] = set()  # the report's <host><ip> entries

    def add_errors(self, el: ET.Element) -> None:
        found = [(_text(e.find("host")), _text(e.find("description"))) for e in el if e.tag == "error"]
        self.errors += found
        count = _text(el.find("count"))
        self.error_count += max(len(found), int(count) if count.isdigit() else 0)

    def flag(self, col: Collector, n_results: int, *, truncated: bool = False) -> None:
        """Record the scan status on ``col`` (``n_results``: the report's ``<result>`` items; ``truncated``:
        the file was cut, so a missing ``scan_end`` may just lie after the cut and says nothing)."""
        for status in self.run_status:
            if status and status != "Done":
                col.flag("incomplete", f"scan_run_status {status!r}, not 'Done'")
        unknown = truncated and not self.ends  # no scan_end before the cut: it may come after it
        if (self.run_status or self.started) and not unknown and (not self.ends or not all(self.ends)):
            col.flag("incomplete", "no scan_end: the scan did not finish")
        if self.error_count:
            shown = " | ".join(
                f"{host or 'scanner'}: {desc[:120] or '(no description)'}"
                for host, desc in self.errors[:_ERRORS_SHOWN]
            )
            error_hosts = {host for host, _ in self.errors if host}
            scanner_wide = any(not host for host, _ in self.errors)
            failed = n_results == 0 and (
                (self.hosts and self.hosts <= error_hosts) or (not self.hosts and scanner_wide)
            )
            col.flag(
                "failed" if failed else "incomplete",
                f"{self.error_count} scan error(s)" + (f": {shown}" if shown else ""),
            )


class _OpenvasScan:
    """What reading one report carries from record to record: the collector, the value memo (ports,
    scores, CVE lists, dispositions), the run information, the results skipped since the last flush (by
    reason) and the ``source_row`` counter (``<result>`` items in file order)."""

    def __init__(self, col: Collector, include_info: bool) -> None:
        self.col = col
        self.memo = ValueMemo(col.scanner, include_info)
        self.run = _RunInfo()
        self.skipped: dict[str, int] = {}
        self.n = 0

    def flush(self) -> ScanResult:
        """The chunk collected so far, with its skipped counts (both then reset)."""
        for reason, count in self.skipped.items():
            self.col.skip(reason, count)
        self.skipped.clear()
        return self.col.flush()


def _report_field(el: ET.Element, scan: _OpenvasScan) -> None:
    """A report field: a report ``<host>`` (its IP joins the perimeter), ``scan_run_status``,
    ``scan_start``, ``scan_end`` or ``<errors>`` (kept for the scan status)."""
    tag, run = el.tag, scan.run
    if tag == "host":
        ip = (el.findtext("ip") or "").strip()
        if ip:
            scan.col.hosts.add(ip)
            run.hosts.add(ip)
    elif tag == "scan_run_status":
        run.run_status.append(_text(el))
    elif tag == "scan_start":
        run.started = True
    elif tag == "scan_end":
        run.ends.append(_text(el))
    else:  # <errors>
        run.add_errors(el)


def iter_openvas_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a GVM/OpenVAS XML report as :class:`ScanResult` chunks.

    Each record is a ``<result>`` carrying an ``<nvt>`` (an item: a row or a skipped count; a chunk is
    yielded once ``chunk_rows`` rows are held), a report field (kept for the perimeter and the scan status)
    or an ignored element; at the end, the truncation and the run information give the scan status (module
    docstring: Policy).
    """
    path = Path(path)
    stream, root_tag, root_line = open_xml(path)
    try:
        require_root(path, root_tag, root_line, ROOTS)
        col = Collector("openvas_xml", path, audit_id=audit_id, include_info=include_info)
        scan = _OpenvasScan(col, include_info)
        cuts: list[TruncatedXML] = []
        for el in until_cut(iter_records(path, stream, root_tag, _RECORDS), cuts):
            if el.tag == "result":
                if el.find("nvt") is None:
                    continue  # a <detection><result> reference (or a delta) outside a result
                scan.n += 1
                _result(el, scan)
                if len(col) >= chunk_rows:
                    yield scan.flush()
            elif el.tag not in _IGNORED:
                _report_field(el, scan)
        for cut in cuts:
            col.flag("incomplete", cut.detail)
        scan.run.flag(col, scan.n, truncated=bool(cuts))
        yield scan.flush()
    finally:
        stream.close()


def _is_openvas_header(names: set[str]) -> bool:
    return "nvt oid" in names or ("nvt name" in names and "ip" in names)


def _csv_ports(port: pd.Series, protocol: pd.Series) -> tuple[list, list, list]:
    """Port, protocol and service columns from the CSV ``Port`` / ``Port Protocol`` cells
    (:func:`parse_port`, once per distinct pair)."""
    pairs = list(zip(port, protocol, strict=True))
    parsed = {pair: parse_port(*pair) for pair in set(pairs)}
    cols = list(zip(*(parsed[pair] for pair in pairs), strict=True)) or [(), (), ()]
    return list(cols[0]), list(cols[1]), list(cols[2])


def iter_openvas_csv(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a GVM CSV results export as :class:`ScanResult` chunks."""
    sniffed = sniff_header(path, _is_openvas_header)
    if sniffed is None:
        raise ScanError(path, "no OpenVAS CSV header", line=1, expected="an 'NVT OID' column")
    enc, sep, skip, _ = sniffed
    col = Collector("openvas_csv", path, audit_id=audit_id, include_info=include_info)
    for df in iter_csv(path, encoding=enc, sep=sep, skip_lines=skip, chunk_rows=chunk_rows):
        host = pick(df, "ip", "hostname")
        threat = pick(df, "severity")
        score = pick(df, "cvss")
        oid = pick(df, "nvt oid")
        col.hosts.update(host.dropna())
        port, protocol, service = _csv_ports(pick(df, "port"), pick(df, "port protocol"))
        col.add_block(
            len(df),
            host=host,
            port=port,
            protocol=protocol,
            service=service,
            vuln_id=("openvas:" + oid.fillna("")).where(oid.notna(), None),
            cve=pick(df, "cves").map(lambda v: join_cves([v]) if v else None),
            title=pick(df, "nvt name"),
            cvss_score=score,
            scanner_severity=threat.where(threat.notna(), score),
            first_seen=pick(df, "timestamp"),
            source_row=df["_row"],
            evidence=pick(df, "specific result"),
            scale=pd.Series("threat", index=df.index).where(threat.notna(), "cvss"),
            native=threat.where(threat.notna(), score),
            skip=row_skip(df, host),
        )
        if len(col) >= chunk_rows:
            yield col.flush()
    yield col.flush()
