"""Nuclei JSON Lines (``-jsonl``, one finding per line) and JSON arrays (``-json-export``), old and new keys.

Policy
------
* Item = one finding object; it is a finding row unless skipped: ``info`` severity (``informational``,
  kept with ``include_info``), or no host at all (``no_host``).
* Template id from ``template-id`` (nuclei ≥ 2.5), ``templateID`` (older), ``template`` (a path);
  ``vuln_id = "nuclei:<template-id>"``, plus ``":<matcher-name>"`` when the finding names its matcher (one
  template can report several distinct matches on one target). A record without any template id gets
  ``vuln_id`` None (never a made-up id): the ingest's row rules reject that row (``required_value``),
  naming the file and the record.
* Host = the host of ``host`` (a URL, ``host:port``, a bare or bracketed IPv6 address such as
  ``fe80::1`` or ``[2001:db8::5]:8443``), else of ``url`` / ``matched-at`` / ``matched`` / ``ip``; an
  IPv6 host is its full address. Port = ``port`` when given, else the first explicit port of
  ``matched-at``, ``matched``, ``host``, ``url``, else 443/80 for https/http URLs. Perimeter = every such
  host.
* Severity from ``info.severity``; CVEs from ``info.classification.cve-id``; ``cvss-metrics`` /
  ``cvss-score`` likewise; ``first_seen`` = ``timestamp``; ``evidence`` = ``matched-at``.
* Content that is not valid JSON is a :class:`ScanError` ``invalid JSON`` with the line and column of
  the parse error (JSON Lines: the line of the file). Nuclei reports nothing about the scan itself: the
  status is always ``complete``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from cyberobs_lib.scanners._core import Collector, ScanError, ScanResult, join_cves
from cyberobs_lib.scanners.detect import json_error

_DEFAULT_PORTS = {"https": 443, "http": 80}


def _line_error(path: Path, err: json.JSONDecodeError, lineno: int) -> ScanError:
    """The error of JSON Lines line ``lineno`` (the decoder counted within the line)."""
    out = ScanError(
        path,
        f"invalid JSON: {err.msg} at line {lineno} column {err.colno}",
        line=lineno,
        expected="one JSON object per line",
    )
    out.column = err.colno
    return out


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    """``(record number, record)``: a JSON array, one (pretty-printed) object, or JSON Lines."""
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return
    if not lines[first].lstrip().startswith("["):
        try:
            json.loads(lines[first])
            jsonl = True
        except json.JSONDecodeError:
            jsonl = False  # a pretty-printed object: parsed whole below
        if jsonl:
            n = 0
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise _line_error(path, err, lineno) from None
                n += 1
                yield n, obj
            return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise json_error(path, err, "a JSON array of nuclei findings or JSON Lines") from None
    yield from enumerate(doc, start=1) if isinstance(doc, list) else [(1, doc)]


def _bare_ip(value: str) -> str | None:
    """``value`` when it is a bare IP address (IPv6 with or without zone), else None."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return value


def _split(value) -> tuple[str | None, int | None, str]:
    """``(host, explicit port, scheme)`` of a URL, ``host:port``, or bare / bracketed IPv6 value.

    Examples
    --------
    >>> [_split(v) for v in ("fe80::1", "[2001:db8::5]:8443", "https://[::1]:8443/x", "h.example:80")]
    [('fe80::1', None, ''), ('2001:db8::5', 8443, ''), ('::1', 8443, 'https'), ('h.example', 80, '')]
    """
    value = str(value).strip().lstrip("/")  # "/http://h/" seen in nuclei 3 output
    if "://" not in value and value.count(":") >= 2 and not value.startswith("["):
        return _bare_ip(value), None, ""  # an IPv6 address (a port cannot follow it unbracketed)
    try:
        parts = urlsplit(value if "://" in value else "//" + value)
        host = parts.hostname
    except ValueError:  # "Invalid IPv6 URL": an unbalanced bracket
        return None, None, ""
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port, parts.scheme


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
        tid = rec.get("template-id") or rec.get("templateID") or rec.get("template") or None
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
            vuln_id=f"nuclei:{tid}" + (f":{matcher}" if matcher else "") if tid else None,
            cve=join_cves(cve if isinstance(cve, list) else [cve]),
            title=(info.get("name") or tid or "") + (f" [{matcher}]" if matcher else "") or None,
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
