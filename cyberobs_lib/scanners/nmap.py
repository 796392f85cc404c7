"""Nmap XML (``-oX``): open ports as exposure findings, NSE ``vulners`` output as CVE findings.

Policy
------
* Perimeter (``hosts``) = every ``<host>`` whose ``<status state="up">``, identified by its IPv4 or IPv6
  address (else its first hostname). Hosts ``down`` are not in the perimeter and produce nothing.
* Items = each port in state ``open`` (``open|filtered``, ``closed`` and ``filtered`` ports are not
  evidence of exposure and are not items), plus each entry of a ``vulners`` script.
* An open port is an *exposure finding* when its nmap service name, or failing that its port number, is
  listed for ``nmap`` in ``scanner_severity.csv`` (RDP, SMB/NetBIOS, Telnet, VNC, X11, databases, FTP,
  SNMP, LDAP, MSRPC, WinRM, r-services, SSH): ``vuln_id = "nmap:port/<n>"``, severity from the table. Any
  other open port (e.g. ``http``, ``https``) is informational: skipped unless ``include_info=True``.
* ``vulners`` entries whose id is a CVE id become findings with ``vuln_id = cve = "CVE-..."``, the entry's
  CVSS score and the severity of its CVSS band; exploit / advisory entries (``MSF:...``, ``EDB-ID:...``)
  are skipped (reason ``vulners_non_cve``), and a CVE repeated on the same port (several CPEs) is skipped
  (reason ``duplicate``). Script tables are used when present, else the ``output`` text.
* ``first_seen`` = the host's ``starttime`` (scan time, UTC).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from cyberobs_lib.scanners._core import Collector, ScanResult, severity_keys
from cyberobs_lib.scanners.xmlsafe import detach, iterparse_safe

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_LINE = re.compile(r"^\s*(\S+)\t([0-9.]+)\t", re.M)


def _vulners_entries(script) -> list[tuple[str, str | None, str | None]]:
    """``(id, cvss, type)`` of each vulners entry (tables, else output text lines)."""
    out = []
    for table in script.iter("table"):
        elems = {e.get("key"): e.text for e in table.findall("elem")}
        if "id" in elems:
            out.append((elems["id"], elems.get("cvss"), elems.get("type")))
    if not out:
        out = [(m.group(1), m.group(2), None) for m in _LINE.finditer(script.get("output") or "")]
    return out


def _epoch(value: str | None) -> str | None:
    if not value or not value.isdigit():
        return None
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _host(col: Collector, el, counter: list[int]) -> None:
    status = el.find("status")
    if status is not None and status.get("state") != "up":
        return
    addr = None
    for a in el.findall("address"):
        if a.get("addrtype") in ("ipv4", "ipv6"):
            addr = a.get("addr")
            break
    if addr is None:
        hn = el.find("hostnames/hostname")
        addr = hn.get("name") if hn is not None else None
    if addr is None:
        return
    col.hosts.add(addr)
    seen = _epoch(el.get("starttime"))
    services = severity_keys("nmap", "service")
    ports = severity_keys("nmap", "port")
    for port in el.iterfind("ports/port"):
        state = port.find("state")
        if state is None or state.get("state") != "open":
            continue
        counter[0] += 1
        portid, proto = port.get("portid"), port.get("protocol")
        svc = port.find("service")
        name = svc.get("name") if svc is not None else None
        if name and svc.get("tunnel") == "ssl" and name == "http":
            name = "https"
        product = " ".join(filter(None, (svc.get("product"), svc.get("version")))) if svc is not None else ""
        if name and name.lower() in services:
            scale, native = "service", name
        elif portid in ports:
            scale, native = "port", portid
        else:
            scale, native = "port", "any"
        col.add(
            host=addr,
            port=portid,
            protocol=proto,
            service=name,
            vuln_id=f"nmap:port/{portid}",
            title=f"Open port {portid}/{proto}" + (f" ({name})" if name else ""),
            scanner_severity="open",
            first_seen=seen,
            source_row=counter[0],
            evidence=product or None,
            scale=scale,
            native=native,
        )
        for script in port.iterfind("script"):
            if script.get("id") != "vulners":
                continue
            done = set()
            for vid, cvss, _type in _vulners_entries(script):
                counter[0] += 1
                is_cve = bool(_CVE.match(vid))
                skip = None if is_cve else "vulners_non_cve"
                if is_cve and vid in done:
                    skip = "duplicate"
                done.add(vid)
                col.add(
                    host=addr,
                    port=portid,
                    protocol=proto,
                    service=name,
                    vuln_id=vid,
                    cve=vid if is_cve else None,
                    title=f"{vid} ({product or name or 'service'})",
                    cvss_score=cvss,
                    scanner_severity=cvss,
                    first_seen=seen,
                    source_row=counter[0],
                    evidence=product or None,
                    scale="cvss",
                    native=cvss,
                    skip=skip,
                )


def iter_nmap_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream an nmap ``-oX`` file as :class:`ScanResult` chunks (one ``<host>`` at a time)."""
    col = Collector("nmap_xml", path, audit_id=audit_id, include_info=include_info)
    root = None
    counter = [0]
    for batch in iterparse_safe(path, roots=("nmaprun",)):
        for ev, el in batch:
            if ev == "start":
                if root is None:
                    root = el
                continue
            if el.tag == "host":
                _host(col, el, counter)
                detach(root, el)
                if len(col) >= chunk_rows:
                    yield col.flush()
    yield col.flush()
