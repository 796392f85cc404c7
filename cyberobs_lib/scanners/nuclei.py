"""Nuclei JSON Lines (``-jsonl``, one finding per line) and JSON arrays (``-json-export``), old and new keys.

Policy
------
* Item = one finding object. Template id from ``template-id`` (nuclei ≥ 2.5) or ``templateID`` (older);
  ``vuln_id = "nuclei:<template-id>"``, plus ``":<matcher-name>"`` when the finding names its matcher (one
  template can report several distinct matches on one target).
* Host = the host name of ``host`` (a URL or ``host:port``), else of ``url`` / ``matched-at`` /
  ``matched`` / ``ip``; port = ``port`` when given, else the first explicit port of ``matched-at``,
  ``matched``, ``host``, ``url``, else 443/80 for https/http URLs.
  Perimeter = every such host.
* Severity from ``info.severity`` (``info`` informational: skipped unless ``include_info``); CVEs from
  ``info.classification.cve-id``; ``cvss-metrics`` / ``cvss-score`` likewise; ``first_seen`` =
  ``timestamp``; ``evidence`` = ``matched-at``.
* A line that is not valid JSON is a :class:`ScanError` naming the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from cyberobs_lib.scanners._core import Collector, ScanError, ScanResult, join_cves

_DEFAULT_PORTS = {"https": 443, "http": 80}


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if not stripped:
        return
    if stripped.startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise ScanError(
                path, f"invalid JSON: {err.msg}", line=err.lineno, expected="a JSON array of findings"
            ) from None
        yield from enumerate(doc, start=1)
        return
    try:  # a single (possibly pretty-printed) object
        yield 1, json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    n = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ScanError(
                path, f"invalid JSON: {err.msg}", line=lineno, expected="one JSON object per line"
            ) from None
        n += 1
        yield n, obj


def _split(value) -> tuple[str | None, int | None, str]:
    """``(hostname, explicit port, scheme)`` of a URL or ``host:port`` value."""
    value = str(value).lstrip("/")  # "/http://h/" seen in nuclei 3 output
    parts = urlsplit(value if "://" in value else "//" + value)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname, port, parts.scheme


def _host_port(rec: dict) -> tuple[str | None, int | None]:
    """Host from ``host``/``url``/``matched-at``/``matched``/``ip``; port from ``port``, else the first
    explicit port (``matched-at`` first: it is where the match happened), else the URL scheme's default."""
    keys = ("host", "url", "matched-at", "matched", "ip")
    split = {k: _split(rec[k]) for k in keys if rec.get(k)}
    host = next((split[k][0] for k in keys if k in split and split[k][0]), None)
    if host is None:
        return None, None
    if rec.get("port") and str(rec["port"]).isdigit():
        return host, int(rec["port"])
    for k in ("matched-at", "matched", "host", "url"):
        if k in split and split[k][1]:
            return host, split[k][1]
    for k in ("host", "url", "matched-at"):
        if k in split and split[k][2] in _DEFAULT_PORTS:
            return host, _DEFAULT_PORTS[split[k][2]]
    return host, None


def iter_nuclei_json(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Read a nuclei JSONL / JSON export as :class:`ScanResult` chunks."""
    path = Path(path)
    col = Collector("nuclei_json", path, audit_id=audit_id, include_info=include_info)
    for n, rec in _records(path):
        if not isinstance(rec, dict):
            raise ScanError(
                path, "a finding that is not a JSON object", line=n, expected="nuclei finding objects"
            )
        info = rec.get("info") or {}
        cls = info.get("classification") or {}
        tid = rec.get("template-id") or rec.get("templateID") or rec.get("template") or ""
        matcher = rec.get("matcher-name") or rec.get("matcher_name")
        host, port = _host_port(rec)
        if host:
            col.hosts.add(host)
        cve = cls.get("cve-id")
        sev = info.get("severity")
        col.add(
            host=host,
            port=port,
            protocol="tcp" if port else None,
            vuln_id=f"nuclei:{tid}" + (f":{matcher}" if matcher else ""),
            cve=join_cves(cve if isinstance(cve, list) else [cve]),
            title=(info.get("name") or tid) + (f" [{matcher}]" if matcher else ""),
            cvss_vector=cls.get("cvss-metrics"),
            cvss_score=cls.get("cvss-score"),
            scanner_severity=sev,
            first_seen=rec.get("timestamp"),
            source_row=n,
            evidence=rec.get("matched-at") or rec.get("matched"),
            scale="severity",
            native=sev,
            skip=None if host else "no_host",
        )
        if len(col) >= chunk_rows:
            yield col.flush()
    yield col.flush()
