"""Nmap XML (``-oX``): open ports as exposure findings, NSE ``vulners`` output as CVE findings.

Policy
------
* Perimeter (``hosts``) = every ``<host>`` whose ``<status state="up">``, identified by its IPv4 or IPv6
  address (an ``<address>`` without ``addrtype`` is IPv4, the DTD default), else its first hostname.
  ``<hosthint>`` elements (nmap ≥ 7.80: a host announced during discovery, repeated later as a ``<host>``)
  are not hosts. Hosts ``down`` / ``unknown`` / ``skipped`` are not in the perimeter, nor hosts that nmap
  gave up on (``<host timedout="true">``: no port was reported).
* Items = each port in state ``open`` of every ``<ports>`` block of a host (a host may have several;
  ``open|filtered``, ``closed`` and ``filtered`` ports are not evidence of exposure and are not items,
  nor are ``<extraports>`` summaries of those states), plus each entry of a ``vulners`` script.
* An open port is an *exposure finding* when its nmap service name, or failing that its port number, is
  listed for ``nmap`` in ``scanner_severity.csv`` (RDP, SMB/NetBIOS, Telnet, VNC, X11, databases, FTP,
  SNMP, LDAP, MSRPC, WinRM, r-services, SSH): ``vuln_id = "nmap:port/<n>"``, severity from the table. Any
  other open port (e.g. ``http``, ``https``) is informational: skipped unless ``include_info=True``.
* ``vulners`` entries whose id is a CVE id become findings with ``vuln_id = cve = "CVE-..."``, the entry's
  CVSS score and the severity of its CVSS band; exploit / advisory entries (``MSF:...``, ``EDB-ID:...``)
  are skipped (reason ``vulners_non_cve``), and a CVE repeated on the same port (several CPEs) is skipped
  (reason ``duplicate``). Script tables are used when present, else the ``output`` text.
* Items that cannot become rows are counted, never dropped: items of a host with neither an IP address
  nor a hostname (``no_host``), of a host not up (``host_not_up``) or timed out (``host_timeout``) — nmap
  writes no ports for those, a file that does is still accounted for — and open ports that an
  ``<extraports state="open" count="n">`` summarizes without port numbers (``open_port_unlisted``, n
  items; nmap itself always lists open ports).
* ``first_seen`` = the host's ``starttime`` (scan time, UTC).
* Status: ``<runstats><finished exit="error" errormsg="...">`` is ``failed`` when no host was up, else
  ``incomplete``, with nmap's ``errormsg`` as detail; a file without ``<runstats>`` (well-formed, but nmap
  did not write its summary: interrupted) is ``incomplete``; so is a scan with timed-out hosts.
* Truncated file (nmap killed, a disk full: the document ends before ``</nmaprun>``): the hosts complete
  before the cut are read and kept, the ``<host>`` cut in its middle is dropped whole (not read, not
  counted: never half a host), and the scan is ``incomplete`` with detail ``truncated XML at line <n>
  (the document ends before <nmaprun> is closed): records after it lost``. A ``<runstats>`` complete
  before the cut (a file missing only its last line) still gives nmap's exit status. Any other XML error
  (mismatched tag, invalid token) refuses the file (:class:`~cyberobs_lib.scanners.ScanError`).

Speed
-----
``<host>`` and ``<runstats>`` elements are children of the root ``<nmaprun>`` (nmap.dtd), so the file is
parsed without per-element events: after each block fed to the C parser, every root child but the last is
complete; those are read and removed from the root (memory stays flat). Rows are appended as tuples straight
into the collector's column order, and the per-port classification (scale, native value, skip reason, title)
is computed once per distinct ``(service, port, protocol)`` and reused.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path

from cyberobs_lib.scanners import _core
from cyberobs_lib.scanners._core import SKIP_REASONS, Collector, ScanResult, severity_keys
from cyberobs_lib.scanners.xmlsafe import TruncatedXML, iter_records, open_xml, require_root

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_LINE = re.compile(r"^\s*(\S+)\t([0-9.]+)\t", re.M)
#: The records of an nmap file.
_RECORDS = frozenset({"host", "runstats"})
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


def _ports_of(port_lists: list) -> Iterable[ET.Element]:
    """The children of every ``<ports>`` block of a host, in order (a host may have several)."""
    if len(port_lists) == 1:
        return port_lists[0]
    return itertools.chain.from_iterable(port_lists)


def _extra_open(extraports: ET.Element) -> int:
    """Ports summarized by an ``<extraports state="open" count="n">`` (unlisted: no port numbers)."""
    count = extraports.get("count") or ""
    return int(count) if count.isascii() and count.isdigit() else 1


def _count_items(port_lists: list) -> int:
    """The items (open ports and their vulners entries) of a host that yields no row."""
    count = 0
    for port in _ports_of(port_lists):
        if port.tag == "extraports" and port.get("state") == "open":
            count += _extra_open(port)
        state = port.find("state") if port.tag == "port" else None
        if state is None or state.get("state") != "open":
            continue
        count += 1
        for script in port:
            if script.tag == "script" and script.get("id") == "vulners":
                count += len(_vulners_entries(script))
    return count


def _flag_completion(
    col: Collector, finished: ET.Element | None, n_up: int, timed_out: int, cuts: list[TruncatedXML]
) -> None:
    """Scan status from ``<runstats><finished>`` (read at the end of the file), host timeouts, truncation.

    ``exit="error"`` is ``failed`` when no host was up, else ``incomplete`` (detail: nmap's ``errormsg``);
    no ``<runstats>`` at all (a well-formed file that nmap did not finish writing) is ``incomplete``; a
    truncated file is ``incomplete`` with the truncation as detail (its missing ``<runstats>``, lost after
    the cut, is not reported again).
    """
    for cut in cuts:
        col.flag("incomplete", cut.detail)
    if finished is None:
        if not cuts:
            col.flag("incomplete", "no <runstats>: nmap did not finish the scan (interrupted)")
    elif finished.get("exit") == "error":
        msg = " ".join((finished.get("errormsg") or "").split()) or "nmap exited with an error"
        col.flag("failed" if n_up == 0 else "incomplete", f"nmap error: {msg}")
    if timed_out:
        col.flag("incomplete", f"{timed_out} host(s) not scanned: host timeout")


def _iter_hosts(path: str | Path, cuts: list) -> Iterator[ET.Element]:
    """Each complete ``<host>`` of an nmap file, in document order (also hosts nested in other elements),
    after the safe prolog check: :func:`~cyberobs_lib.scanners.xmlsafe.iter_records`, as the Qualys and
    OpenVAS readers. A truncated file ends the records normally, its :class:`TruncatedXML` in ``cuts``."""
    path = Path(path)
    stream, root_tag, root_line = open_xml(path)
    try:
        require_root(path, root_tag, root_line, ("nmaprun",))
        yield from iter_records(path, stream, root_tag, _RECORDS)
    except TruncatedXML as cut:
        cuts.append(cut)
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
    n_up = 0  # hosts up in the whole file (``col.hosts`` is reset at each chunk)
    timed_out = 0
    finished = None  # the <runstats><finished> element, when the file has one
    cuts: list[TruncatedXML] = []
    for el in _iter_hosts(path, cuts):
        if el.tag == "runstats":
            finished = el.find("finished")
            if finished is None:
                finished = el  # <runstats> without <finished>: nmap's summary is there, no exit status
            continue
        state = addr = name_fallback = None
        port_lists = []
        for c in el:
            t = c.tag
            if t == "status":
                state = c.get("state")
            elif t == "address":
                # addrtype defaults to "ipv4" (nmap.dtd: addrtype (ipv4|ipv6|mac) "ipv4")
                if addr is None and c.get("addrtype", "ipv4") in ("ipv4", "ipv6"):
                    addr = c.get("addr")
            elif t == "hostnames":
                hn = c.find("hostname")
                name_fallback = hn.get("name") if hn is not None else None
            elif t == "ports":
                port_lists.append(c)
        skip_host = None  # reason given to every item of a host that yields no row
        if el.get("timedout") == "true":
            timed_out += 1
            skip_host = "host_timeout"
        elif state is not None and state != "up":
            skip_host = "host_not_up"
        else:
            n_up += 1
            addr = addr or name_fallback
            if addr is None:
                skip_host = "no_host"
        if skip_host is not None:
            if port_lists:  # nmap writes no ports for these hosts; counted if a file has some
                count = _count_items(port_lists)
                if count:
                    skipped[skip_host] = skipped.get(skip_host, 0) + count
                    n += count
            continue
        hosts.add(addr)
        seen = epoch(el.get("starttime"))
        for port in _ports_of(port_lists):
            if port.tag != "port":
                if port.tag == "extraports" and port.get("state") == "open":
                    count = _extra_open(port)  # never written by nmap (open ports are always listed)
                    skipped["open_port_unlisted"] = skipped.get("open_port_unlisted", 0) + count
                    n += count
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
    _flag_completion(col, finished, n_up, timed_out, cuts)
    yield flush()
