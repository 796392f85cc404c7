"""Qualys XML (``SCAN`` / WebGUI, ``ASSET_DATA_REPORT``, WAS, VMDR host detections) and CSV exports.

Policy
------
* ``SCAN`` (scan-1.dtd): item = each ``VULN``, ``PRACTICE`` (potential vulnerability), ``INFO``
  (information gathered) and ``SERVICE`` entry of each ``IP``. ``INFO``/``SERVICE`` are informational
  (skipped unless ``include_info``); ``VULN``/``PRACTICE`` take the severity of their level 1-5 (level 1,
  "minimal", is informational). Perimeter = every ``IP@value``. ``first_seen`` = the report ``DATE`` key.
* ``ASSET_DATA_REPORT``: item = each ``HOST/VULN_INFO_LIST/VULN_INFO``; title, severity, CVEs and CVSS come
  from the report's ``GLOSSARY/VULN_DETAILS`` (which follows the hosts, so this layout is joined at the end
  and read in one chunk); ``TYPE`` ``Ig`` is informational; ``first_seen`` = ``FIRST_FOUND``.
  Perimeter = every ``HOST/IP``.
* ``WAS_SCAN_REPORT``: item = each ``VULNERABILITY``; host and port from its ``URL``; glossary
  ``QID_LIST`` as above; ``first_seen`` = ``DETECTION_DATE``.
* ``HOST_LIST_VM_DETECTION_OUTPUT`` (VMDR API ``/api/2.0/fo/asset/host/vm/detection/``): item = each
  ``HOST/DETECTION_LIST/DETECTION``. ``STATUS`` ``Fixed`` is no finding (skipped ``fixed``; ``New``,
  ``Active``, ``Re-Opened`` are); ``TYPE`` ``Info`` is informational; ``Confirmed`` / ``Potential`` take
  the severity of their ``SEVERITY`` level 1-5 as above. Host = ``IP``, else ``IPV6``, ``DNS``,
  ``NETBIOS`` (detections of a host with none: skipped ``no_host``); port / protocol from ``PORT`` /
  ``PROTOCOL``; title = ``TITLE`` when present, else ``Qualys QID <n>`` (this export carries no
  KnowledgeBase); ``first_seen`` = ``FIRST_FOUND_DATETIME``; ``evidence`` = ``RESULTS``; ``cvss_score`` =
  ``CVSS3_FINAL`` / ``CVSS_FINAL`` when present. Perimeter = every ``HOST``. A ``RESPONSE/WARNING``
  (truncation limit reached: the rest of the list is on the next page, at its ``URL``) makes the scan
  ``incomplete``.
* Scan status: the other layouts report nothing about the scan's completion: ``complete``.
* Truncated XML (the document ends before its root is closed: a cut download, a full disk): the records
  complete before the cut (``IP``, ``HOST``, ``VULNERABILITY``, glossary entries) are read and kept, the
  one cut in its middle is dropped whole (not read, not counted), and the scan is ``incomplete`` with
  detail ``truncated XML at line <n> (the document ends before <SCAN> is closed): records after it
  lost``. In the glossary layouts (``ASSET_DATA_REPORT``, ``WAS_SCAN_REPORT``) the glossary follows the
  hosts: items whose entry was cut off keep no title (their ``vuln_id`` stands in) nor severity, as an
  item missing from a complete glossary, and the detail counts them. Any other XML error (mismatched
  tag, invalid token) refuses the file.
* CSV (scan report and VMDR "Asset Vuln Datalist" layouts; metadata lines before the header accepted):
  item = each data row; ``Type`` ``Ig``/``Info`` informational; host = ``IP`` / ``Asset IPV4`` (else DNS,
  IPv6, asset name; a cell listing several addresses gives its first: one asset is one host). Perimeter =
  hosts with a row.
* ``vuln_id`` = ``qualys:<QID>``; ``cvss_score`` = CVSS v3 base when given, else v2 base.
* Every item is a finding row or counted in ``skipped`` with its reason (``informational``, ``no_host``,
  ``empty_row``, ``fixed``).

Speed
-----
The XML layouts are parsed without per-element events: after each 16 KB block fed to the C parser, the
completed children of the open elements on the path from the root (all but the last child of each) are
read and removed, and the records among them (``IP``, ``HOST``, ``VULN_DETAILS``, ...) are processed whole
(memory stays flat: the glossary layouts keep one small row per item until the glossary is read). Rows
are appended as tuples in the collector's column order; the disposition of each distinct (entry kind,
severity) is decided once (with :func:`~cyberobs_lib.scanners._core.map_severity`, as the collector
does), so an item skipped by policy is counted without reading its children; CVE lists, ports and CVSS
scores are converted once per distinct value (ports as ints, scores as floats: same values as the
collector's own conversion, which is faster on numbers than on digit strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from cyberobs_lib.scanners import _core
from cyberobs_lib.scanners._core import (
    EVIDENCE_MAX,
    Collector,
    ScanError,
    ScanResult,
    join_cves,
    severity_table,
)
from cyberobs_lib.scanners._memo import ValueMemo, score_or_none
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header
from cyberobs_lib.scanners.xmlsafe import TruncatedXML, iter_records, open_xml, require_root, until_cut

ROOTS = ("SCAN", "ASSET_DATA_REPORT", "WAS_SCAN_REPORT", "HOST_LIST_VM_DETECTION_OUTPUT")
_KINDS = {"VULN", "PRACTICE", "INFO", "SERVICE"}
_SCORE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:\((.*)\))?\s*$")
#: The records of each layout: processed whole once complete (never descended into while open).
_RECORDS = {
    "SCAN": frozenset({"IP", "KEY"}),
    "ASSET_DATA_REPORT": frozenset({"HOST", "VULN_DETAILS"}),
    "WAS_SCAN_REPORT": frozenset({"VULNERABILITY", "QID"}),
    "HOST_LIST_VM_DETECTION_OUTPUT": frozenset({"HOST", "WARNING"}),
}
#: Positions in the tuples appended to ``Collector.rows`` (checked against the collector's at import).
_FIELDS = tuple(
    "host port protocol service vuln_id cve title cvss_vector cvss_score scanner_severity first_seen"
    " source_row evidence scale native skip".split()
)
if _core._RAW != _FIELDS:  # pragma: no cover - guards the positional rows below
    raise ImportError("cyberobs_lib.scanners.qualys: Collector row fields changed; update _FIELDS")


def _info_types() -> frozenset[str]:
    t = severity_table()
    sel = (t["scanner"] == "qualys") & (t["scale"] == "type") & (t["disposition"] == "info")
    return frozenset(t.loc[sel, "native"])


def _scan_kind(memo: ValueMemo, kind: str, sev: str | None) -> tuple[str, str | None, str | None]:
    """``(scale, native, skip reason)`` of a ``SCAN`` entry (memoised per ``(kind, severity)``):
    ``INFO``/``SERVICE`` on the ``type`` scale, ``VULN``/``PRACTICE`` by their level."""
    k = memo.kinds.get((kind, sev))
    if k is None:
        informational = kind in ("INFO", "SERVICE")
        scale = "type" if informational else "severity"
        native = kind.lower() if informational else sev
        k = memo.kinds[(kind, sev)] = (scale, native, memo.skip_reason(scale, native))
    return k


def _read_scan_entry(item) -> tuple[str | None, str | None, str | None, tuple | None, str | None]:
    """``(TITLE, CVSS3_BASE, CVSS_BASE, CVE ids, RESULT)`` of a ``SCAN`` entry (one pass over its
    children: the last one of a tag wins)."""
    title = v3 = v2 = result = None
    cves = None
    for c in item:
        t = c.tag
        if t == "TITLE":
            title = c.text
        elif t == "CVSS3_BASE":
            v3 = c.text
        elif t == "CVSS_BASE":
            v2 = c.text
        elif t == "CVE_ID_LIST":
            cves = tuple(i.text for i in c.iter("ID"))
        elif t == "RESULT":
            result = c.text
    return title, v3, v2, cves, result


def _scan_ip(rows: list, skipped: dict, memo: ValueMemo, ip_el, date: str | None, n: int) -> int:
    """The rows of one ``SCAN/IP``; returns the running item count (``source_row``)."""
    host = ip_el.get("value")
    for group in ip_el:
        for cat in group:
            if cat.tag != "CAT":
                continue
            port_raw = cat.get("port")
            port = memo.port(port_raw)
            proto = cat.get("protocol")
            service = cat.get("value") if port_raw else None
            for item in cat:
                kind = item.tag
                if kind not in _KINDS:
                    continue
                n += 1
                sev = item.get("severity")
                k = _scan_kind(memo, kind, sev)
                if k[2] is not None:  # skipped by policy: counted, children never read
                    skipped[k[2]] = skipped.get(k[2], 0) + 1
                    continue
                title, v3, v2, cves, result = _read_scan_entry(item)
                score = memo.score(v3)
                if score is None:
                    score = memo.score(v2)
                vid = "qualys:" + (item.get("number") or "")
                cve = memo.cves(cves or (item.get("cveid"),))
                title = (title or "").strip() or None
                ev = result.strip()[:EVIDENCE_MAX] if result else None
                rows.append(
                    (host, port, proto, service, vid, cve, title, None, score, sev, date, n, ev, *k[:2], None)
                )
    return n


def _asset_host(rows: list, skipped: dict, memo: ValueMemo, host_el, n: int, keys: list, info) -> int:
    """The rows of one ``ASSET_DATA_REPORT`` ``HOST`` (glossary fields filled at the end)."""
    host = host_el.findtext("IP") or host_el.findtext("DNS")
    for vi in host_el.iterfind("VULN_INFO_LIST/VULN_INFO"):
        n += 1
        f: dict = {}
        for c in vi:  # the first child of each tag, as findtext
            f.setdefault(c.tag, c)

        def text(tag: str, f=f) -> str | None:
            el = f.get(tag)
            return None if el is None else (el.text or "")

        typ = (text("TYPE") or "").strip().lower()
        scale, native = ("type", typ) if typ in info else ("severity", None)
        reason = "no_host" if not host else memo.skip_reason(scale, native) if native else None
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        keys.append(f["QID"].get("id") if "QID" in f else None)
        score = memo.score(text("CVSS3_FINAL"))
        if score is None:
            score = memo.score(text("CVSS_FINAL"))
        port, proto, seen = memo.port(text("PORT")), text("PROTOCOL"), text("FIRST_FOUND")
        ev = (text("RESULT") or "").strip() or None
        vid = f"qualys:{text('QID')}"
        rows.append(
            (host, port, proto, None, vid, None, None, None, score, None, seen, n, ev, scale, native, None)
        )
    return n


def _glossary_entry(el) -> dict:
    cves = [c.text for c in el.iterfind("CVE_ID_LIST/CVE_ID/ID")]
    v3 = score_or_none(el.findtext("CVSS3_SCORE/CVSS3_BASE")) or score_or_none(el.findtext("CVSS_V3/BASE"))
    v2 = score_or_none(el.findtext("CVSS_SCORE/CVSS_BASE")) or score_or_none(el.findtext("CVSS_BASE"))
    return {
        "title": el.findtext("TITLE"),
        "severity": el.findtext("SEVERITY"),
        "cve": join_cves(cves),
        "score": v3 or v2,
    }


def _apply_glossary(rows: list, keys: list, glossary: dict) -> None:
    """Title, CVEs, severity (and the score when the item has none) of each row, from the glossary."""
    for i, key in enumerate(keys):
        g = glossary.get(key, {})
        r = rows[i]
        sev = g.get("severity")
        rows[i] = (
            *r[:5],
            g.get("cve"),
            (g.get("title") or "").strip() or r[4],
            r[7],
            g.get("score") if r[8] is None else r[8],
            sev,
            *r[10:14],
            sev if r[13] == "severity" else r[14],
            r[15],
        )


def _was_vuln(col: Collector, el, n: int, keys: list) -> None:
    """One ``WAS_SCAN_REPORT`` ``VULNERABILITY`` (glossary fields filled at the end)."""
    url = urlsplit(el.findtext("URL") or "")
    host = url.hostname
    if host:
        col.hosts.add(host)
    else:
        col.skip("no_host")
        return
    keys.append((el.findtext("QID") or "").strip())
    col.add(
        host=host,
        port=url.port or {"https": 443, "http": 80}.get(url.scheme),
        protocol="tcp",
        service=url.scheme or None,
        vuln_id="qualys:" + keys[-1],
        first_seen=el.findtext("DETECTION_DATE"),
        source_row=n,
        evidence=el.findtext("URL"),
        scale="severity",
    )


def _detection_host(col: Collector, host_el, n: int) -> int:
    """The items of one VMDR ``HOST`` (host list detection API); returns the running item count."""
    host = next(
        (
            t.strip()
            for t in (host_el.findtext(k) for k in ("IP", "IPV6", "DNS", "NETBIOS"))
            if t and t.strip()
        ),
        None,
    )
    if host:
        col.hosts.add(host)
    for det in host_el.iterfind("DETECTION_LIST/DETECTION"):
        n += 1
        if not host:
            col.skip("no_host")
            continue
        if (det.findtext("STATUS") or "").strip().lower() == "fixed":
            col.skip("fixed")
            continue
        qid = (det.findtext("QID") or "").strip()
        typ = (det.findtext("TYPE") or "").strip()
        sev = (det.findtext("SEVERITY") or "").strip() or None
        informational = typ.lower() in ("info", "ig")
        results = (det.findtext("RESULTS") or "").strip()
        title = (det.findtext("TITLE") or "").strip()
        score = score_or_none(det.findtext("CVSS3_FINAL")) or score_or_none(det.findtext("CVSS_FINAL"))
        col.add(
            host=host,
            port=(det.findtext("PORT") or "").strip() or None,
            protocol=(det.findtext("PROTOCOL") or "").strip() or None,
            vuln_id=f"qualys:{qid}" if qid else None,
            cve=join_cves(
                c.text for c in det.iter("ID") if c.text and c.text.strip().upper().startswith("CVE-")
            ),
            title=title or (f"Qualys QID {qid}" if qid else None),
            cvss_score=score,
            scanner_severity=sev,
            first_seen=det.findtext("FIRST_FOUND_DATETIME"),
            source_row=n,
            evidence=results or None,
            scale="type" if informational else "severity",
            native=typ.lower() if informational else sev,
        )
    return n


def _detection_warning(col: Collector, el) -> None:
    """``RESPONSE/WARNING``: the API cut the list (truncation limit); the rest is on the next page."""
    code = (el.findtext("CODE") or "").strip()
    text = (el.findtext("TEXT") or "").strip() or "truncated output"
    url = (el.findtext("URL") or "").strip()
    col.flag(
        "incomplete",
        f"Qualys WARNING {code}: {text}".replace("WARNING :", "WARNING:")
        + (f" (next page: {url})" if url else " (more pages)"),
    )


class _QualysScan:
    """What reading one Qualys report carries from record to record: the collector, the value memo, the
    informational entry types, the ``SCAN`` report date, the ``source_row`` counter (items in file order),
    the items skipped since the last flush (by reason), and for the glossary layouts the glossary key of
    each row and the glossary read so far."""

    def __init__(self, col: Collector, include_info: bool) -> None:
        self.col = col
        self.memo = ValueMemo(col.scanner, include_info)
        self.info = _info_types()
        self.date: str | None = None
        self.n = 0
        self.skipped: dict[str, int] = {}
        self.keys: list = []
        self.glossary: dict = {}

    def flush(self) -> ScanResult:
        """The chunk collected so far, with its skipped counts (both then reset)."""
        for reason, count in self.skipped.items():
            self.col.skip(reason, count)
        self.skipped.clear()
        return self.col.flush()


def _scan_record(el, scan: _QualysScan) -> bool:
    """``SCAN``: the report ``DATE`` key, or an ``IP`` (a perimeter host and its rows)."""
    if el.tag == "KEY":
        if el.get("value") == "DATE":
            scan.date = el.text
        return False
    if el.get("value") is None:
        return False
    scan.col.hosts.add(el.get("value"))
    scan.n = _scan_ip(scan.col.rows, scan.skipped, scan.memo, el, scan.date, scan.n)
    return True


def _asset_record(el, scan: _QualysScan) -> bool:
    """``ASSET_DATA_REPORT``: a ``HOST`` (a perimeter host and its rows, glossary keys noted) or a
    glossary ``VULN_DETAILS``."""
    if el.tag == "HOST":
        host = el.findtext("IP") or el.findtext("DNS")
        if host:
            scan.col.hosts.add(host.strip())
        scan.n = _asset_host(scan.col.rows, scan.skipped, scan.memo, el, scan.n, scan.keys, scan.info)
    else:
        scan.glossary[el.get("id")] = _glossary_entry(el)
    return False


def _detection_record(el, scan: _QualysScan) -> bool:
    """``HOST_LIST_VM_DETECTION_OUTPUT``: a ``HOST`` and its detections, or the API's truncation
    ``WARNING``."""
    if el.tag == "HOST":
        scan.n = _detection_host(scan.col, el, scan.n)
        return True
    _detection_warning(scan.col, el)
    return False


def _was_record(el, scan: _QualysScan) -> bool:
    """``WAS_SCAN_REPORT``: a ``VULNERABILITY`` with a ``QID`` (an item, glossary key noted), or a glossary
    ``QID`` entry (one with a ``SEVERITY``)."""
    if el.tag == "VULNERABILITY":
        if el.find("QID") is not None:
            scan.n += 1
            _was_vuln(scan.col, el, scan.n, scan.keys)
    elif el.find("SEVERITY") is not None:
        scan.glossary[(el.findtext("QID") or "").strip()] = _glossary_entry(el)
    return False


#: The step reading one record of each layout; it returns whether a chunk may end after the record (the
#: glossary layouts are read in one chunk: their rows are completed from the glossary at the end).
_RECORD_STEPS = {
    "SCAN": _scan_record,
    "ASSET_DATA_REPORT": _asset_record,
    "HOST_LIST_VM_DETECTION_OUTPUT": _detection_record,
    "WAS_SCAN_REPORT": _was_record,
}


def _flag_cuts(scan: _QualysScan, cuts: list[TruncatedXML]) -> None:
    """A truncated report is ``incomplete``; items whose glossary entry was cut off are counted."""
    for cut in cuts:
        scan.col.flag("incomplete", cut.detail)
        lost = sum(key not in scan.glossary for key in scan.keys)
        if lost:  # the glossary follows the hosts: cut off, its entries are unknown
            scan.col.flag("incomplete", f"{lost} item(s) without a glossary entry (title, severity): cut off")


def iter_qualys_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a Qualys XML report as :class:`ScanResult` chunks (glossary layouts: one chunk).

    The root names the layout, hence its records and the step reading each one; a chunk is yielded once it
    holds ``chunk_rows`` rows (``SCAN``, VMDR); at the end the truncation is flagged and the glossary
    layouts' rows get their title, severity and CVEs (module docstring: Policy).
    """
    path = Path(path)
    stream, root_tag, root_line = open_xml(path)
    try:
        require_root(path, root_tag, root_line, ROOTS)
        col = Collector("qualys_xml", path, audit_id=audit_id, include_info=include_info)
        scan = _QualysScan(col, include_info)
        layout = root_tag  # as the parsed root's tag
        step = _RECORD_STEPS.get(layout, _was_record)
        cuts: list[TruncatedXML] = []
        records = iter_records(path, stream, root_tag, _RECORDS.get(layout, _RECORDS["WAS_SCAN_REPORT"]))
        for el in until_cut(records, cuts):
            if step(el, scan) and len(col) >= chunk_rows:
                yield scan.flush()
        _flag_cuts(scan, cuts)
        if scan.keys:
            _apply_glossary(col.rows, scan.keys, scan.glossary)
        yield scan.flush()
    finally:
        stream.close()


def _is_qualys_header(names: set[str]) -> bool:
    return "qid" in names and bool({"ip", "asset ipv4", "title", "vuln title"} & names)


def _split_score(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"8.1 (AV:N/...)"`` → score ``"8.1"`` and vector ``"AV:N/..."``."""
    ext = values.fillna("").astype(str).str.extract(_SCORE)
    score = ext[0].where(ext[0].notna(), None)
    vector = ext[1].where(ext[1].notna() & (ext[1] != ""), None)
    return score, vector


def iter_qualys_csv(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a Qualys CSV export as :class:`ScanResult` chunks."""
    sniffed = sniff_header(path, _is_qualys_header)
    if sniffed is None:
        raise ScanError(path, "no Qualys CSV header", line=1, expected="a 'QID' column")
    enc, sep, skip, _ = sniffed
    col = Collector("qualys_csv", path, audit_id=audit_id, include_info=include_info)
    info = _info_types()
    for df in iter_csv(path, encoding=enc, sep=sep, skip_lines=skip, chunk_rows=chunk_rows):
        host = pick(df, "ip", "asset ipv4")
        alt = pick(df, "dns", "hostname", "asset ipv6", "asset name", "fqdn")
        host = host.where(host.notna(), alt)
        host = host.where(host.isna(), host.astype(str).str.split(",").str[0].str.strip())
        typ = pick(df, "type", "type detected").fillna("").str.strip().str.lower()
        is_info = typ.isin(info)
        sev = pick(df, "severity", "q_severity")
        s3, vec3 = _split_score(pick(df, "cvss3 base", "cvssv3.1 base (nvd)", "cvss3", "cvss3.1 base"))
        s2, _ = _split_score(pick(df, "cvss base", "cvss_base", "cvssv2 base (nvd)", "cvss"))
        qid = pick(df, "qid")
        port = pick(df, "port").map(lambda v: v if v and str(v).isdigit() else None)
        col.hosts.update(host.dropna())
        col.add_block(
            len(df),
            host=host,
            port=port,
            protocol=pick(df, "protocol").map(lambda v: v if v and v != "'-" else None),
            vuln_id=("qualys:" + qid.fillna("")).where(qid.notna(), None),
            cve=pick(df, "cve id", "cveid", "cve").map(lambda v: join_cves([v]) if v else None),
            title=pick(df, "title", "vuln title"),
            cvss_vector=vec3,
            cvss_score=s3.where(s3.notna(), s2),
            scanner_severity=sev,
            first_seen=pick(df, "first detected", "last scan"),
            source_row=df["_row"],
            evidence=pick(df, "results", "result"),
            scale=pd.Series("severity", index=df.index).where(~is_info, "type"),
            native=sev.where(~is_info, typ),
            skip=row_skip(df, host),
        )
        if len(col) >= chunk_rows:
            yield col.flush()
    yield col.flush()
