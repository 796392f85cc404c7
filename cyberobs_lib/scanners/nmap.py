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
import functools
import re
from collections.abc import Iterator
from pathlib import Path

from cyberobs_lib.scanners._core import Collector, ScanResult, severity_keys
from cyberobs_lib.scanners.xmlsafe import detach, iterparse_safe

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_LINE = re.compile(r"^\s*(\S+)\t([0-9.]+)\t", re.M)


def _vulners_entries(script) -> list[tuple[str, str | None]]:
    """``(id, cvss)`` of each vulners entry (script tables, else the ``output`` text lines)."""
    out = []
    for table in script.iter("table"):
        vid = cvss = None
        for e in table:
            if e.tag == "elem":
                key = e.get("key")
                if key == "id":
                    vid = e.text
                elif key == "cvss":
                    cvss = e.text
        if vid:
            out.append((vid, cvss))
    if not out:
        out = [(m.group(1), m.group(2)) for m in _LINE.finditer(script.get("output") or "")]
    return out


@functools.lru_cache(maxsize=4096)
def _epoch(value: str | None) -> str | None:
    if not value or not value.isdigit():
        return None
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _host(col: Collector, el, counter: list[int]) -> None:
    """One ``<host>``: a single pass over its children; exposure rows and vulners CVE rows."""
    state = addr = name_fallback = None
    port_list = ()
    for c in el:
        t = c.tag
        if t == "status":
            state = c.get("state")
        elif t == "address":
            if addr is None and c.get("addrtype") in ("ipv4", "ipv6"):
                addr = c.get("addr")
        elif t == "hostnames":
            hn = c.find("hostname")
            name_fallback = hn.get("name") if hn is not None else None
        elif t == "ports":
            port_list = c
    if state is not None and state != "up":
        return
    addr = addr or name_fallback
    if addr is None:
        return
    col.hosts.add(addr)
    seen = _epoch(el.get("starttime"))
    services = severity_keys("nmap", "service")
    ports = severity_keys("nmap", "port")
    for port in port_list:
        if port.tag != "port":
            continue
        open_ = False
        svc = None
        scripts = []
        for c in port:
            t = c.tag
            if t == "state":
                open_ = c.get("state") == "open"
            elif t == "service":
                svc = c
            elif t == "script" and c.get("id") == "vulners":
                scripts.append(c)
        if not open_:
            continue
        counter[0] += 1
        portid, proto = port.get("portid"), port.get("protocol")
        name = svc.get("name") if svc is not None else None
        if name == "http" and svc.get("tunnel") == "ssl":
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
        for script in scripts:
            done = set()
            for vid, cvss in _vulners_entries(script):
                counter[0] += 1
                if not _CVE.match(vid):
                    col.skip("vulners_non_cve")  # counted, never a finding: no row needed
                    continue
                if vid in done:
                    col.skip("duplicate")
                    continue
                done.add(vid)
                col.add(
                    host=addr,
                    port=portid,
                    protocol=proto,
                    service=name,
                    vuln_id=vid,
                    cve=vid,
                    title=f"{vid} ({product or name or 'service'})",
                    cvss_score=cvss,
                    scanner_severity=cvss,
                    first_seen=seen,
                    source_row=counter[0],
                    evidence=product or None,
                    scale="cvss",
                    native=cvss,
                )


def iter_nmap_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream an nmap ``-oX`` file as :class:`ScanResult` chunks (one ``<host>`` at a time)."""
    col = Collector("nmap_xml", path, audit_id=audit_id, include_info=include_info)
    root = None
    counter = [0]
    for batch in iterparse_safe(path, roots=("nmaprun",)):
        if root is None:
            root = batch[0][1]  # the first event is the root's start
        for ev, el in batch:
            if el.tag == "host" and ev == "end":
                _host(col, el, counter)
                detach(root, el)
                if len(col) >= chunk_rows:
                    yield col.flush()
    yield col.flush()
