"""OpenVAS / Greenbone GVM XML reports (GMP ``get_reports``, OpenVAS 6 to GVM 22.x) and CSV result exports.

Policy
------
* Item = one ``<result>`` that carries an ``<nvt>`` (nested ``<detection><result>`` references are not
  results), or one CSV data row.
* Severity from the ``<threat>`` word (``Log``/``Debug`` informational: skipped unless ``include_info``;
  ``False Positive`` skipped as ``false_positive``; ``Error`` as ``scan_problem``), or, when the word is
  missing, from the numeric ``<severity>`` by its CVSS band. ``cvss_score`` = ``<severity>`` (else
  ``nvt/cvss_base``); ``cvss_vector`` = ``severities/severity/value`` (GVM 21+) or the
  ``cvss_base_vector=`` tag.
* ``vuln_id`` = ``openvas:<NVT OID>``; CVEs from ``refs/ref[@type="cve"]`` (GVM 9+), ``nvt/cve``
  (OpenVAS ≤ 8; ``NOCVE`` ignored) or the CSV ``CVEs`` column.
* Port ``443/tcp`` → port 443, protocol tcp; ``general/tcp`` → no port, protocol tcp.
* Perimeter = the report's ``<host><ip>`` entries plus every result host (XML); the hosts with a row (CSV).
* ``first_seen`` = the result's ``creation_time`` (else ``modification_time``) / the CSV ``Timestamp``.
* Root must be ``report`` (or ``get_reports_response``): a lone ``<result>`` fragment is refused.

Speed
-----
As the Qualys reader (:func:`~cyberobs_lib.scanners.xmlsafe.iter_records`): no per-element events, each
completed ``<result>`` / report ``<host>`` read whole and removed; rows appended as tuples in the
collector's column order; the disposition of each distinct (threat, severity) decided once, so a result
skipped by policy is counted without reading its ``<nvt>``; ports, scores and CVE lists converted once per
distinct value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cyberobs_lib.scanners._core import EVIDENCE_MAX, Collector, ScanError, ScanResult, join_cves
from cyberobs_lib.scanners._memo import ValueMemo
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header
from cyberobs_lib.scanners.xmlsafe import iter_records, open_xml, require_root

ROOTS = ("report", "get_reports_response")
_RECORDS = frozenset({"result", "host"})


def _split_port(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    port, _, proto = value.strip().partition("/")
    return (port if port.isdigit() else None), (proto or None)


def _tag_value(tags: str | None, key: str) -> str | None:
    for part in (tags or "").split("|"):
        k, _, v = part.partition("=")
        if k == key:
            return v or None
    return None


def _port(memo: ValueMemo, value: str | None) -> tuple:
    """``_split_port(value)``, the port as an int when it is ASCII digits (memoized)."""
    key = ("port/proto", value)
    if key not in memo:
        port, proto = _split_port(value)
        memo.put(key, (memo.port(port), proto))
    return memo[key]


def _cves(memo: ValueMemo, cves: tuple) -> str | None:
    key = ("openvas cve", cves)
    if key not in memo:
        memo.put(key, ";".join(dict.fromkeys(c.strip().upper() for c in cves if c)) or None)
    return memo[key]


def _result(rows: list, skipped: dict, hosts: set, memo: ValueMemo, el, n: int) -> None:
    """One ``<result>``: a single pass over its children (and, when it is kept, its ``<nvt>``'s)."""
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
    if host:
        hosts.add(host)
    scale = "threat" if threat else "cvss"
    native = threat or sev
    reason = memo.skip_reason(scale, native) if host else "no_host"
    if reason is not None:  # counted, the <nvt> never read
        skipped[reason] = skipped.get(reason, 0) + 1
        return
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
    port, proto = _port(memo, port_text)
    vid = "openvas:" + (nvt.get("oid") or "")
    cve = _cves(memo, tuple(cves))
    vector = vector or _tag_value(tags, "cvss_base_vector")
    score = memo.number(sev if sev is not None else cvss_base)
    seen = (created or modified or "").strip() or None
    ev = desc.strip()[:EVIDENCE_MAX] if desc else None
    rows.append(
        (
            host,
            port,
            proto,
            None,
            vid,
            cve,
            name or rname,
            vector,
            score,
            native,
            seen,
            n,
            ev,
            scale,
            native,
            None,
        )
    )


def iter_openvas_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream a GVM/OpenVAS XML report as :class:`ScanResult` chunks."""
    path = Path(path)
    stream, root_tag, root_line = open_xml(path)
    try:
        require_root(path, root_tag, root_line, ROOTS)
        col = Collector("openvas_xml", path, audit_id=audit_id, include_info=include_info)
        memo = ValueMemo(col.scanner, include_info)
        skipped: dict[str, int] = {}
        n = 0
        for el in iter_records(path, stream, root_tag, _RECORDS):
            if el.tag == "result":
                if el.find("nvt") is None:
                    continue  # a <detection><result> reference (or a delta) outside a result
                n += 1
                _result(col.rows, skipped, col.hosts, memo, el, n)
                if len(col) >= chunk_rows:
                    for reason, count in skipped.items():
                        col.skip(reason, count)
                    skipped.clear()
                    yield col.flush()
            else:  # a report <host>
                ip = el.findtext("ip")
                if ip:
                    col.hosts.add(ip.strip())
        for reason, count in skipped.items():
            col.skip(reason, count)
        yield col.flush()
    finally:
        stream.close()


def _is_openvas_header(names: set[str]) -> bool:
    return "nvt oid" in names or ("nvt name" in names and "ip" in names)


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
        col.add_block(
            len(df),
            host=host,
            port=pick(df, "port"),
            protocol=pick(df, "port protocol"),
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
