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


class _Scan:
    """What reading one nmap file carries from host to host.

    The collector, the ``source_row`` counter (open ports and vulners entries, in file order), the items
    skipped since the last flush (by reason), the hosts up and timed out in the whole file (``col.hosts`` is
    reset at each chunk), the ``<runstats>`` summary, and the per-port classification (vuln id, title, scale,
    native value, skip reason, port number), memoised per distinct ``(service, port, protocol)``.
    """

    def __init__(self, col: Collector, include_info: bool) -> None:
        self.col = col
        self.include_info = include_info
        self.services = severity_keys("nmap", "service")
        self.port_keys = severity_keys("nmap", "port")
        self.dispositions = col._dispositions
        #: no CVSS band is listed today: vulners entries then skip the table lookup
        self.cvss_listed = any(key.startswith("cvss\x1f") for key in self.dispositions)
        self.kinds: dict[tuple, tuple] = {}
        self.skipped: dict[str, int] = {}
        self.n = 0
        self.n_up = 0
        self.timed_out = 0
        self.finished: ET.Element | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items read but not turned into rows."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def skip_reason(self, scale: str, native) -> str | None:
        """The skip reason :meth:`Collector.add` would give from the table (None: a finding)."""
        disp = self.dispositions.get(f"{scale}\x1f{str(native).strip().lower()}")
        if disp is not None and disp != "finding" and not (disp == "info" and self.include_info):
            return SKIP_REASONS[disp]
        return None

    def kind(self, name: str | None, portid: str | None, proto: str | None) -> tuple:
        """``(vuln_id, title, scale, native, skip, port number)`` of an open port (bounded memo)."""
        key = (name, portid, proto)
        k = self.kinds.get(key)
        if k is None:
            if len(self.kinds) >= 4096:  # bounded memo (a sweep of all 65,535 ports)
                self.kinds.clear()
            k = self.kinds[key] = self._classify(name, portid, proto)
        return k

    def _classify(self, name: str | None, portid: str | None, proto: str | None) -> tuple:
        if name and name.lower() in self.services:
            scale, native = "service", name
        elif portid in self.port_keys:
            scale, native = "port", portid
        else:
            scale, native = "port", "any"
        title = f"Open port {portid}/{proto}" + (f" ({name})" if name else "")
        # the port number as an int: the collector's to_numeric is 4x faster on ints than on digit strings
        number = int(portid) if portid and portid.isascii() and portid.isdigit() else portid
        return f"nmap:port/{portid}", title, scale, native, self.skip_reason(scale, native), number

    def flush(self) -> ScanResult:
        """The chunk collected so far, with its skipped counts (both then reset)."""
        for reason, count in self.skipped.items():
            self.col.skip(reason, count)
        self.skipped.clear()
        return self.col.flush()


def _finished_of(runstats: ET.Element) -> ET.Element:
    """The ``<finished>`` of a ``<runstats>``, else the ``<runstats>`` itself (summary without exit status)."""
    finished = runstats.find("finished")
    return runstats if finished is None else finished


def _read_host(host: ET.Element) -> tuple[str | None, str | None, list[ET.Element]]:
    """``(state, identity, ports blocks)`` of a ``<host>``.

    The identity is the first IPv4 / IPv6 ``<address>`` (``addrtype`` defaults to ``ipv4``, nmap.dtd), else
    the first hostname of ``<hostnames>``.
    """
    state = addr = name_fallback = None
    port_lists = []
    for c in host:
        t = c.tag
        if t == "status":
            state = c.get("state")
        elif t == "address":
            if addr is None and c.get("addrtype", "ipv4") in ("ipv4", "ipv6"):
                addr = c.get("addr")
        elif t == "hostnames":
            hn = c.find("hostname")
            name_fallback = hn.get("name") if hn is not None else None
        elif t == "ports":
            port_lists.append(c)
    return state, addr or name_fallback, port_lists


def _perimeter_skip(host: ET.Element, state: str | None, ident: str | None, scan: _Scan) -> str | None:
    """Why every item of a host is skipped (timed out, not up, no identity), else None; counts hosts up."""
    if host.get("timedout") == "true":
        scan.timed_out += 1
        return "host_timeout"
    if state is not None and state != "up":
        return "host_not_up"
    scan.n_up += 1
    return "no_host" if ident is None else None


def _skip_host_items(port_lists: list[ET.Element], reason: str, scan: _Scan) -> None:
    """Count the items of a host outside the perimeter (nmap writes no ports for those; a file may)."""
    if port_lists:
        count = _count_items(port_lists)
        if count:
            scan.skip(reason, count)
            scan.n += count


def _read_port(port: ET.Element) -> tuple[bool, ET.Element | None, list[ET.Element] | None]:
    """``(open, <service>, vulners <script>s or None)`` of a ``<port>``."""
    open_ = False
    svc = scripts = None
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
    return open_, svc, scripts


def _service_of(svc: ET.Element | None) -> tuple[str | None, str]:
    """``(service name, "product version")``: ``http`` over SSL is ``https``."""
    if svc is None:
        return None, ""
    name = svc.get("name")
    if name == "http" and svc.get("tunnel") == "ssl":
        name = "https"
    return name, " ".join(filter(None, (svc.get("product"), svc.get("version"))))


def _host_rows(addr: str, seen: str | None, port_lists: list[ET.Element], scan: _Scan) -> None:
    """The rows of a host in the perimeter: its open ports, then unlisted open ports counted as skipped."""
    rows = scan.col.rows
    for port in _ports_of(port_lists):
        if port.tag == "port":
            _port_rows(port, addr, seen, rows, scan)
        elif port.tag == "extraports" and port.get("state") == "open":
            count = _extra_open(port)  # never written by nmap (open ports are always listed)
            scan.skip("open_port_unlisted", count)
            scan.n += count


def _port_rows(port: ET.Element, addr: str, seen: str | None, rows: list[tuple], scan: _Scan) -> None:
    """The exposure row of an open port (unless its kind is skipped), then the rows of its vulners CVEs."""
    open_, svc, scripts = _read_port(port)
    if not open_:
        return
    scan.n += 1
    portid, proto = port.get("portid"), port.get("protocol")
    name, product = _service_of(svc)
    vuln_id, title, scale, native, skip, number = scan.kind(name, portid, proto)
    evidence = product or None
    head = (addr, number, proto, name)
    if skip is None:
        rows.append(
            (*head, vuln_id, None, title, None, None, "open", seen, scan.n, evidence, scale, native, None)
        )
    else:
        scan.skip(skip)
    if scripts is not None:
        label = f" ({product or name or 'service'})"
        for script in scripts:
            _vulners_rows(script, head, label, seen, evidence, rows, scan)


def _vulners_rows(
    script: ET.Element,
    head: tuple,
    label: str,
    seen: str | None,
    evidence: str | None,
    rows: list,
    scan: _Scan,
) -> None:
    """One row per CVE of a vulners script (``head``: host, port, protocol, service of its port).

    Non-CVE entries (exploits, advisories) and a CVE repeated in the script (several CPEs) are counted as
    skipped.
    """
    done = set()
    for vid, cvss in _vulners_entries(script):
        scan.n += 1
        if not _CVE.match(vid):
            scan.skip("vulners_non_cve")  # no row
            continue
        if vid in done:
            scan.skip("duplicate")
            continue
        done.add(vid)
        if scan.cvss_listed and (reason := scan.skip_reason("cvss", cvss)) is not None:
            scan.skip(reason)
            continue
        rows.append(
            (*head, vid, vid, vid + label, None, cvss, cvss, seen, scan.n, evidence, "cvss", cvss, None)
        )


def iter_nmap_xml(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Stream an nmap ``-oX`` file as :class:`ScanResult` chunks (one ``<host>`` at a time).

    Each root record is the ``<runstats>`` summary (kept for the scan status) or a ``<host>``: a host
    outside the perimeter (timed out, not up, no identity) has its items counted as skipped, a host in it
    gives its rows (open ports, vulners CVEs). A chunk is yielded once it holds ``chunk_rows`` rows; the
    last one carries the scan status (module docstring: Policy).
    """
    col = Collector("nmap_xml", path, audit_id=audit_id, include_info=include_info)
    scan = _Scan(col, include_info)
    cuts: list[TruncatedXML] = []
    for el in _iter_hosts(path, cuts):
        if el.tag == "runstats":
            scan.finished = _finished_of(el)
            continue
        state, ident, port_lists = _read_host(el)
        reason = _perimeter_skip(el, state, ident, scan)
        if reason is not None:
            _skip_host_items(port_lists, reason, scan)
            continue
        col.hosts.add(ident)
        _host_rows(ident, _epoch(el.get("starttime")), port_lists, scan)
        if len(col.rows) >= chunk_rows:
            yield scan.flush()
    _flag_completion(col, scan.finished, scan.n_up, scan.timed_out, cuts)
    yield scan.flush()
