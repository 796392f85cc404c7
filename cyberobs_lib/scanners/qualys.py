"""Qualys XML (scan reports ``SCAN`` / WebGUI infrastructure, ``ASSET_DATA_REPORT``, WAS) and CSV exports.

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
* CSV (scan report and VMDR "Asset Vuln Datalist" layouts; metadata lines before the header accepted):
  item = each data row; ``Type`` ``Ig``/``Info`` informational; host = ``IP`` / ``Asset IPV4`` (else DNS,
  IPv6, asset name; a cell listing several addresses gives its first: one asset is one host). Perimeter =
  hosts with a row.
* ``vuln_id`` = ``qualys:<QID>``; ``cvss_score`` = CVSS v3 base when given, else v2 base.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from cyberobs_lib.scanners._core import (
    EVIDENCE_MAX,
    Collector,
    ScanError,
    ScanResult,
    join_cves,
    severity_table,
)
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header
from cyberobs_lib.scanners.xmlsafe import detach, iterparse_safe

ROOTS = ("SCAN", "ASSET_DATA_REPORT", "WAS_SCAN_REPORT")
_KINDS = {"VULN", "PRACTICE", "INFO", "SERVICE"}
_SCORE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:\((.*)\))?\s*$")


def _info_types() -> frozenset[str]:
    t = severity_table()
    sel = (t["scanner"] == "qualys") & (t["scale"] == "type") & (t["disposition"] == "info")
    return frozenset(t.loc[sel, "native"])


def _num(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if value and value not in ("-", "'-") else None


def _scan_ip(col: Collector, ip_el, date: str | None, counter: list[int]) -> None:
    host = ip_el.get("value")
    col.hosts.add(host)
    for group in ip_el:
        for cat in group.iterfind("CAT"):
            for item in cat:
                kind = item.tag
                if kind not in _KINDS:
                    continue
                counter[0] += 1
                sev = item.get("severity")
                title = v3 = v2 = result = None
                cves = []
                for c in item:  # one pass over the entry's children
                    t = c.tag
                    if t == "TITLE":
                        title = c.text
                    elif t == "CVSS3_BASE":
                        v3 = _num(c.text)
                    elif t == "CVSS_BASE":
                        v2 = _num(c.text)
                    elif t == "CVE_ID_LIST":
                        cves = [i.text for i in c.iter("ID")]
                    elif t == "RESULT":
                        result = c.text
                informational = kind in ("INFO", "SERVICE")
                col.add(
                    host=host,
                    port=cat.get("port"),
                    protocol=cat.get("protocol"),
                    service=cat.get("value") if cat.get("port") else None,
                    vuln_id="qualys:" + (item.get("number") or ""),
                    cve=join_cves(cves or [item.get("cveid")]),
                    title=(title or "").strip() or None,
                    cvss_score=v3 or v2,
                    scanner_severity=sev,
                    first_seen=date,
                    source_row=counter[0],
                    evidence=result.strip()[:EVIDENCE_MAX] if result else None,
                    scale="type" if informational else "severity",
                    native=kind.lower() if informational else sev,
                )


def _asset_host(col: Collector, host_el, counter: list[int], qids: list) -> None:
    host = host_el.findtext("IP") or host_el.findtext("DNS")
    if host:
        col.hosts.add(host.strip())
    info = _info_types()
    for vi in host_el.iterfind("VULN_INFO_LIST/VULN_INFO"):
        counter[0] += 1
        qid = vi.findtext("QID")
        typ = (vi.findtext("TYPE") or "").strip()
        qids.append(vi.find("QID").get("id") if vi.find("QID") is not None else None)
        col.add(
            host=host,
            port=vi.findtext("PORT"),
            protocol=vi.findtext("PROTOCOL"),
            vuln_id=f"qualys:{qid}",
            scanner_severity=None,
            cvss_score=_num(vi.findtext("CVSS3_FINAL")) or _num(vi.findtext("CVSS_FINAL")),
            first_seen=vi.findtext("FIRST_FOUND"),
            source_row=counter[0],
            evidence=(vi.findtext("RESULT") or "").strip() or None,
            scale="type" if typ.lower() in info else "severity",
            native=typ.lower() if typ.lower() in info else None,
            skip=None if host else "no_host",
        )


def _glossary_entry(el) -> dict:
    cves = [c.text for c in el.iterfind("CVE_ID_LIST/CVE_ID/ID")]
    v3 = _num(el.findtext("CVSS3_SCORE/CVSS3_BASE")) or _num(el.findtext("CVSS_V3/BASE"))
    v2 = _num(el.findtext("CVSS_SCORE/CVSS_BASE")) or _num(el.findtext("CVSS_BASE"))
    return {
        "title": el.findtext("TITLE"),
        "severity": el.findtext("SEVERITY"),
        "cve": join_cves(cves),
        "score": v3 or v2,
    }


def _apply_glossary(col: Collector, keys: list, glossary: dict) -> None:
    for i, key in enumerate(keys):
        g = glossary.get(key, {})
        changes = {
            "title": (g.get("title") or "").strip() or col.field(i, "vuln_id"),
            "cve": g.get("cve"),
            "scanner_severity": g.get("severity"),
        }
        if col.field(i, "cvss_score") is None:
            changes["cvss_score"] = g.get("score")
        if col.field(i, "scale") == "severity":
            changes["native"] = g.get("severity")
        col.update_row(i, **changes)


def _find(cache: dict, root, path: str):
    """``root.find(path)``, cached once found (the container of the records being read)."""
    if cache.get(path) is None:
        cache[path] = root.find(path)
    return cache[path]


def iter_qualys_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a Qualys XML report as :class:`ScanResult` chunks (glossary layouts: one chunk)."""
    col = Collector("qualys_xml", path, audit_id=audit_id, include_info=include_info)
    root = date = None
    keys: list = []
    glossary: dict = {}
    counter = [0]
    parents: dict = {}
    for batch in iterparse_safe(path, roots=ROOTS):
        for ev, el in batch:
            tag = el.tag
            if ev == "start":
                if root is None:
                    root = el
                continue
            if root.tag == "SCAN":
                if tag == "KEY" and el.get("value") == "DATE":
                    date = el.text
                elif tag == "IP" and el.get("value") is not None:
                    _scan_ip(col, el, date, counter)
                    detach(root, el)
                    if len(col) >= chunk_rows:
                        yield col.flush()
            elif root.tag == "ASSET_DATA_REPORT":
                if tag == "HOST":
                    _asset_host(col, el, counter, keys)
                    detach(_find(parents, root, "HOST_LIST"), el)
                elif tag == "VULN_DETAILS":
                    glossary[el.get("id")] = _glossary_entry(el)
                    detach(_find(parents, root, "GLOSSARY/VULN_DETAILS_LIST"), el)
            else:  # WAS_SCAN_REPORT
                if tag == "VULNERABILITY" and el.find("QID") is not None:
                    counter[0] += 1
                    url = urlsplit(el.findtext("URL") or "")
                    host = url.hostname
                    if host:
                        col.hosts.add(host)
                    keys.append((el.findtext("QID") or "").strip())
                    col.add(
                        host=host,
                        port=url.port or {"https": 443, "http": 80}.get(url.scheme),
                        protocol="tcp",
                        service=url.scheme or None,
                        vuln_id="qualys:" + keys[-1],
                        first_seen=el.findtext("DETECTION_DATE"),
                        source_row=counter[0],
                        evidence=el.findtext("URL"),
                        scale="severity",
                        skip=None if host else "no_host",
                    )
                    detach(_find(parents, root, "RESULTS/VULNERABILITY_LIST"), el)
                elif tag == "QID" and el.find("SEVERITY") is not None:
                    glossary[(el.findtext("QID") or "").strip()] = _glossary_entry(el)
                    detach(_find(parents, root, "GLOSSARY/QID_LIST"), el)
    if keys:
        _apply_glossary(col, keys, glossary)
    yield col.flush()


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
