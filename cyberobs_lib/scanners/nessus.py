"""Nessus v2 (``.nessus`` XML) and Tenable CSV exports (Nessus, Tenable.sc, Tenable.io; ``,`` or ``;``).

Policy
------
* Item = one ``ReportItem`` (XML) or one data row (CSV). Severity ``0`` / risk ``None`` / ``Info`` items are
  informational: skipped (reason ``informational``) unless ``include_info=True``.
* Perimeter (``hosts``) = every ``ReportHost@name`` (XML), including hosts without any item; for CSV,
  every host that has a row (a CSV export does not list clean hosts).
* ``vuln_id`` = ``nessus:<plugin id>``; ``cve`` = the ``<cve>`` elements joined by ``;``; CVSS v3 vector and
  score when present, else v2 (the ``CVSS2#`` prefix is dropped). ``first_seen`` = the host scan start
  (``HOST_START`` host property) for XML — Nessus does not record an earlier first sighting — and the
  "First Discovered" / ``first_observed`` column of Tenable.sc/io CSV exports.
* ``evidence`` = the start of ``plugin_output`` (volatile between scans, so never an identity column).
* Root element must be ``NessusClientData_v2``: the legacy v1 ``NessusClientData`` is refused with a
  wrong-root error.
* Truncated ``.nessus`` (the document ends before ``</NessusClientData_v2>``: a cut download or copy, a
  full disk): the ``ReportHost`` elements complete before the cut are read and kept; the ``ReportHost``
  cut in its middle is dropped *whole* — its ``ReportItem`` elements complete before the cut are neither
  findings nor counted in ``items_read``, and its name is not in ``hosts`` — as the other XML readers
  drop the record open at the cut: a host is never kept half-read (half its findings would look like a
  host with fewer vulnerabilities). The scan is ``incomplete`` with detail ``truncated XML at line <n>
  (the document ends before <NessusClientData_v2> is closed): records after it lost``. Any other XML
  error (mismatched tag, invalid token) refuses the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cyberobs_lib.scanners._core import EVIDENCE_MAX, Collector, ScanError, ScanResult, join_cves
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header
from cyberobs_lib.scanners.xmlsafe import TruncatedXML, detach, iterparse_safe, until_cut

ROOTS = ("NessusClientData_v2",)
_WANTED = frozenset({"ReportItem", "tag", "ReportHost", "Policy"})


def _v2(vector: str | None) -> str | None:
    if vector and vector.startswith("CVSS2#"):
        return vector[6:]
    return vector


@dataclass
class _NessusScan:
    """What reading one ``.nessus`` file carries from element to element.

    The collector; the root and its ``<Report>`` (complete hosts are detached from them: memory stays
    flat); the current host's ``HOST_START``; the ``source_row`` counter (``ReportItem`` elements in file
    order); where the current host's rows begin in the collector (its items are read before its end tag
    names them) and the items counted as skipped before it (to drop a host cut by a truncation whole).
    """

    col: Collector
    root: ET.Element | None = None
    report: ET.Element | None = None
    host_start: str | None = None
    n: int = 0
    first_of_host: int = 0
    skipped_before_host: dict = field(default_factory=dict)

    def start_host(self) -> None:
        """The next host's rows begin here."""
        self.first_of_host = len(self.col)
        self.skipped_before_host = dict(self.col.extra_skipped)


#: what a ``ReportItem`` holds beside its attributes (see :func:`_read_item`)
_ItemFields = tuple[list[str], str | None, str | None, str | None, str | None, str | None, str | None]


def _read_item(item: ET.Element) -> _ItemFields:
    """``(cves, cvss3 vector, cvss3 score, cvss2 vector, cvss2 score, risk_factor, plugin_output)`` of a
    ``ReportItem``."""
    cves = []
    v3 = s3 = v2 = s2 = risk = output = None
    for c in item:
        t = c.tag
        if t == "cve":
            cves.append(c.text)
        elif t == "cvss3_vector":
            v3 = c.text
        elif t == "cvss3_base_score":
            s3 = c.text
        elif t == "cvss_vector":
            v2 = c.text
        elif t == "cvss_base_score":
            s2 = c.text
        elif t == "risk_factor":
            risk = c.text
        elif t == "plugin_output":
            output = c.text
    return cves, v3, s3, v2, s2, risk, output


def _item_row(item: ET.Element, scan: _NessusScan) -> None:
    """The row of a ``ReportItem`` (its host and ``first_seen`` are filled when the host ends): CVSS v3
    when present, else v2; severity from ``severity``, else ``risk_factor``. The element is then cleared
    (its empty shell stays in its ``ReportHost`` until the host ends)."""
    scan.n += 1
    cves, v3, s3, v2, s2, risk, output = _read_item(item)
    sev = item.get("severity")
    scan.col.add(
        port=item.get("port"),
        protocol=item.get("protocol"),
        service=item.get("svc_name"),
        vuln_id=scan.col.prefix + (item.get("pluginID") or ""),
        cve=";".join(dict.fromkeys(cves)) if cves else None,
        title=item.get("pluginName"),
        cvss_vector=v3 or _v2(v2),
        cvss_score=s3 if v3 or s3 else s2,
        scanner_severity=sev if sev is not None else risk,
        source_row=scan.n,
        evidence=output.strip()[:EVIDENCE_MAX] if output else None,
        scale="severity" if sev is not None else "risk",
        native=sev if sev is not None else risk,
    )
    item.clear()


def _host_property(tag: ET.Element, scan: _NessusScan) -> None:
    """Keep the host's scan start (``<tag name="HOST_START">``): its items' ``first_seen``."""
    if tag.get("name") == "HOST_START":
        scan.host_start = tag.text


def _end_host(host: ET.Element, scan: _NessusScan) -> None:
    """A ``ReportHost`` ends: its name joins the perimeter and, with its ``HOST_START``, fills the rows of
    its items (read before its end tag); the host is then detached from its ``<Report>``."""
    name = host.get("name")
    col = scan.col
    col.hosts.add(name)
    col.fill("host", scan.first_of_host, name)
    col.fill("first_seen", scan.first_of_host, scan.host_start)
    scan.host_start = None
    if scan.report is None:
        scan.report = scan.root.find("Report")
    detach(scan.report, host)


def _drop_cut_host(scan: _NessusScan, cuts: list[TruncatedXML]) -> None:
    """A truncated file is ``incomplete``; a ``ReportHost`` cut in its middle (every complete one was
    detached) is dropped whole: its rows and its skipped counts."""
    if not cuts:
        return
    scan.col.flag("incomplete", cuts[0].detail)
    if scan.root is not None and next(scan.root.iter("ReportHost"), None) is not None:
        del scan.col.rows[scan.first_of_host :]
        scan.col.extra_skipped = Counter(scan.skipped_before_host)


def _skip_unhosted(scan: _NessusScan) -> None:
    """Items outside any ``ReportHost`` (not valid v2) stay visible, skipped ``no_host``."""
    if scan.first_of_host < len(scan.col):
        scan.col.fill("skip", scan.first_of_host, "no_host")


def iter_nessus_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a ``.nessus`` v2 file as :class:`ScanResult` chunks of at most ``chunk_rows`` items.

    Each ``ReportItem`` is a row as soon as it ends; a ``HOST_START`` property is kept for its host; at the
    end of a ``ReportHost`` its rows get its name and start time, and a chunk is yielded once it holds
    ``chunk_rows`` rows. A truncated file drops the host cut in its middle (module docstring: Policy).
    """
    col = Collector("nessus_xml", path, audit_id=audit_id, include_info=include_info)
    scan = _NessusScan(col, skipped_before_host=dict(col.extra_skipped))
    cuts: list[TruncatedXML] = []
    for batch in until_cut(iterparse_safe(path, roots=ROOTS), cuts):
        if scan.root is None:
            scan.root = batch[0][1]  # the first event is the root's start
        for ev, el in batch:
            tag = el.tag
            if tag not in _WANTED or ev != "end":
                continue
            if tag == "ReportItem":
                _item_row(el, scan)
            elif tag == "tag":
                _host_property(el, scan)
            elif tag == "ReportHost":
                _end_host(el, scan)
                if len(col) >= chunk_rows:
                    yield col.flush()
                scan.start_host()
            elif tag == "Policy":
                detach(scan.root, el)
    _drop_cut_host(scan, cuts)
    _skip_unhosted(scan)
    yield col.flush()


def is_tenable_header(names: set[str]) -> bool:
    return bool(
        {"plugin id", "definition.id"} & names
        or {"plugin", "plugin name"} <= names
        or ("plugin" in names and "ip address" in names)
    )


def iter_tenable_csv(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a Nessus / Tenable.sc / Tenable.io CSV export as :class:`ScanResult` chunks."""
    sniffed = sniff_header(path, is_tenable_header)
    if sniffed is None:
        raise ScanError(
            path, "no Tenable CSV header", line=1, expected="a 'Plugin ID' or 'definition.id' column"
        )
    enc, sep, skip, _ = sniffed
    col = Collector("tenable_csv", path, audit_id=audit_id, include_info=include_info)
    for df in iter_csv(path, encoding=enc, sep=sep, skip_lines=skip, chunk_rows=chunk_rows):
        host = pick(df, "host", "ip address", "asset.display_ipv4_address", "asset.display_fqdn", "dns name")
        fallback = pick(df, "dns name", "asset.display_fqdn", "asset.host_name", "asset.display_ipv6_address")
        host = host.where(host.notna(), fallback)
        pid = pick(df, "plugin id", "plugin", "definition.id")
        risk = pick(df, "risk", "risk factor", "severity", "definition.severity")
        v3 = pick(df, "cvss v3 vector", "definition.cvss3.base_vector")
        v2 = pick(df, "cvss v2 vector", "definition.cvss2.base_vector")
        s3 = pick(df, "cvss v3.0 base score", "cvss v3 base score", "definition.cvss3.base_score")
        s2 = pick(df, "cvss v2.0 base score", "cvss v2 base score", "definition.cvss2.base_score")
        cve = pick(df, "cve", "definition.cve").map(lambda v: join_cves([v]) if v else None)
        col.hosts.update(host.dropna())
        col.add_block(
            len(df),
            host=host,
            port=pick(df, "port"),
            protocol=pick(df, "protocol"),
            vuln_id=("nessus:" + pid.fillna("")).where(pid.notna(), None),
            cve=cve,
            title=pick(df, "name", "plugin name", "definition.name"),
            cvss_vector=v3.where(v3.notna(), v2.map(_v2, na_action="ignore")),
            cvss_score=s3.where(s3.notna(), s2),
            scanner_severity=risk,
            first_seen=pick(df, "first discovered", "first_observed", "first_found"),
            source_row=df["_row"],
            evidence=pick(df, "plugin output", "plugin text", "output"),
            scale=["risk"] * len(df),
            native=risk,
            skip=row_skip(df, host),
        )
        yield col.flush()
    yield col.flush()
