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

Speed
-----
``<host>`` elements are children of the root ``<nmaprun>`` (nmap.dtd), so the file is parsed without
per-element events: after each block fed to the C parser, every root child but the last is complete; those
are read and removed from the root (memory stays flat). Rows are appended as tuples straight into the
collector's column order, and the per-port classification (scale, native value, skip reason, title) is
computed once per distinct ``(service, port, protocol)`` and reused.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from cyberobs_lib.scanners import _core
from cyberobs_lib.scanners._core import SKIP_REASONS, Collector, ScanResult, severity_keys
from cyberobs_lib.scanners.xmlsafe import iter_records, open_xml, require_root

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_LINE = re.compile(r"^\s*(\S+)\t([0-9.]+)\t", re.M)
#: The records of an nmap file.
_HOSTS = frozenset({"host"})
#: Field order of the tuples appended to ``Collector.rows`` (checked against the collector's at import).
_FIELDS = (
    "host",
    "port",
    "protocol",
    "service",
    "vuln_id",
    "cve",
    "title",
    "cvss_vector",
    "cvss_score",
    "scanner_severity",
    "first_seen",
    "source_row",
    "evidence",
    "scale",
    "native",
    "skip",
)
if _core._RAW != _FIELDS:  # pragma: no cover - guards the positional rows below
    raise ImportError("cyberobs_lib.scanners.nmap: Collector row fields changed; update _FIELDS")


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


def _iter_hosts(path: str | Path) -> Iterator[ET.Element]:
    """Each complete ``<host>`` of an nmap file, in document order (also hosts nested in other elements),
    after the safe prolog check: :func:`~cyberobs_lib.scanners.xmlsafe.iter_records`, as the Qualys and
    OpenVAS readers."""
    path = Path(path)
    stream, root_tag, root_line = open_xml(path)
    try:
        require_root(path, root_tag, root_line, ("nmaprun",))
        yield from iter_records(path, stream, root_tag, _HOSTS)
    finally:
        stream.close()


def iter_nmap_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream an nmap ``-oX`` file as :class:`ScanResult` chunks (one ``<host>`` at a time)."""
    col = Collector("nmap_xml", path, audit_id=audit_id, include_info=include_info)
    services = severity_keys("nmap", "service")
    port_keys = severity_keys("nmap", "port")
    dispositions = col._dispositions
    cve_match = _CVE.match
    epoch = _epoch
    kinds: dict = {}  # (service, portid, protocol) -> (vuln_id, title, scale, native, skip, port number)
    skipped: dict[str, int] = {}
    n = 0  # source_row: open ports and vulners entries, in file order

    def skip_reason(scale, native):  # what Collector.add decides from the table
        disp = dispositions.get(f"{scale}\x1f{str(native).strip().lower()}")
        if disp is not None and disp != "finding" and not (disp == "info" and include_info):
            return SKIP_REASONS[disp]
        return None

    cvss_listed = any(key.startswith("cvss\x1f") for key in dispositions)  # none today: any-scanner bands

    def kind(name, portid, proto):
        if name and name.lower() in services:
            scale, native = "service", name
        elif portid in port_keys:
            scale, native = "port", portid
        else:
            scale, native = "port", "any"
        skip = skip_reason(scale, native)
        title = f"Open port {portid}/{proto}" + (f" ({name})" if name else "")
        # the port number as an int: the collector's to_numeric is 4x faster on ints than on digit strings
        number = int(portid) if portid and portid.isascii() and portid.isdigit() else portid
        return f"nmap:port/{portid}", title, scale, native, skip, number

    def flush() -> ScanResult:
        for reason, count in skipped.items():
            col.skip(reason, count)
        skipped.clear()
        return col.flush()

    rows = col.rows
    hosts = col.hosts
    for el in _iter_hosts(path):
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
            continue
        addr = addr or name_fallback
        if addr is None:
            continue
        hosts.add(addr)
        seen = epoch(el.get("starttime"))
        for port in port_list:
            if port.tag != "port":
                continue
            open_ = False
            svc = None
            scripts = None
            for c in port:
                t = c.tag
                if t == "state":
                    open_ = c.get("state") == "open"
                elif t == "service":
                    svc = c
                elif t == "script" and c.get("id") == "vulners":
                    if scripts is None:
                        scripts = [c]
                    else:
                        scripts.append(c)
            if not open_:
                continue
            n += 1
            portid, proto = port.get("portid"), port.get("protocol")
            if svc is not None:
                name = svc.get("name")
                if name == "http" and svc.get("tunnel") == "ssl":
                    name = "https"
                product = " ".join(filter(None, (svc.get("product"), svc.get("version"))))
            else:
                name = None
                product = ""
            key = (name, portid, proto)
            k = kinds.get(key)
            if k is None:
                if len(kinds) >= 4096:  # bounded memo (a sweep of all 65,535 ports)
                    kinds.clear()
                k = kinds[key] = kind(name, portid, proto)
            evidence = product or None
            number = k[5]
            if k[4] is None:
                rows.append(
                    (
                        addr,
                        number,
                        proto,
                        name,
                        k[0],
                        None,
                        k[1],
                        None,
                        None,
                        "open",
                        seen,
                        n,
                        evidence,
                        k[2],
                        k[3],
                        None,
                    )
                )
            else:
                skipped[k[4]] = skipped.get(k[4], 0) + 1
            if scripts is None:
                continue
            label = f" ({product or name or 'service'})"
            for script in scripts:
                done = set()
                for vid, cvss in _vulners_entries(script):
                    n += 1
                    if not cve_match(vid):
                        skipped["vulners_non_cve"] = skipped.get("vulners_non_cve", 0) + 1  # no row
                        continue
                    if vid in done:
                        skipped["duplicate"] = skipped.get("duplicate", 0) + 1
                        continue
                    done.add(vid)
                    if cvss_listed and (reason := skip_reason("cvss", cvss)) is not None:
                        skipped[reason] = skipped.get(reason, 0) + 1
                        continue
                    rows.append(
                        (
                            addr,
                            number,
                            proto,
                            name,
                            vid,
                            vid,
                            vid + label,
                            None,
                            cvss,
                            cvss,
                            seen,
                            n,
                            evidence,
                            "cvss",
                            cvss,
                            None,
                        )
                    )
        if len(rows) >= chunk_rows:
            yield flush()
            rows = col.rows
            hosts = col.hosts
    yield flush()
