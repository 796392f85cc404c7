"""Detect the format of a scanner export from its content (never from its file name).

Rules, in order:

1. Empty or whitespace-only file → ``"empty"`` (a valid scan with zero findings). A JSON ``[]`` too.
2. First significant byte ``<`` → XML. The prolog is security-checked first (:mod:`.xmlsafe`; an XXE or
   entity-expansion file raises :class:`ScanSecurityError` here), then the root element decides:
   ``NessusClientData*`` → ``nessus_xml``; ``report`` / ``get_reports_response`` / ``result`` (a GVM
   result fragment, refused by the reader) → ``openvas_xml``; ``nmaprun`` → ``nmap_xml``; ``SCAN``,
   ``ASSET_DATA_REPORT``, ``WAS_SCAN_REPORT``, ``HOST_LIST_VM_DETECTION_OUTPUT`` → ``qualys_xml``.
3. ``{`` or ``[`` → JSON: objects with ``server_scan_results`` → ``sslyze_json``; an object with
   ``scanResult`` (testssl.sh ``--jsonfile-pretty``) or an array of objects with ``id``, ``severity``,
   ``finding`` and ``ip`` (``--jsonfile``) → ``testssl_json``; objects with a nuclei template key
   (``template-id``, ``templateID``, ``template``) → ``nuclei_json`` (JSON Lines or array). Content that
   starts like JSON but does not parse is a :class:`ScanError` ``invalid JSON`` with the line and column
   of the parse error.
4. Otherwise a delimited text export, by header names: ``fqdn/ip`` + ``finding`` → ``testssl_csv``;
   ``nvt oid`` / ``nvt name`` → ``openvas_csv``; ``plugin id`` / ``definition.id`` → ``tenable_csv``;
   ``qid`` → ``qualys_csv`` (the header may follow report metadata lines).

Anything else raises :class:`ScanError` listing the supported formats. A gzip, zip or UTF-16 file is
detected by its unpacked content (:mod:`.unpack`).
"""

from __future__ import annotations

import json
from pathlib import Path

from cyberobs_lib.scanners._core import ScanError
from cyberobs_lib.scanners.nessus import is_tenable_header
from cyberobs_lib.scanners.tabular import sniff_header
from cyberobs_lib.scanners.unpack import packing, unpacked
from cyberobs_lib.scanners.xmlsafe import sniff_root

__all__ = ["detect_format", "FORMATS"]

FORMATS = (
    "nessus_xml",
    "tenable_csv",
    "openvas_xml",
    "openvas_csv",
    "nmap_xml",
    "qualys_xml",
    "qualys_csv",
    "nuclei_json",
    "testssl_csv",
    "testssl_json",
    "sslyze_json",
)
_XML_ROOTS = {
    "report": "openvas_xml",
    "get_reports_response": "openvas_xml",
    "result": "openvas_xml",
    "nmaprun": "nmap_xml",
    "SCAN": "qualys_xml",
    "ASSET_DATA_REPORT": "qualys_xml",
    "WAS_SCAN_REPORT": "qualys_xml",
    "HOST_LIST_VM_DETECTION_OUTPUT": "qualys_xml",
}
_NUCLEI_KEYS = {"template-id", "templateID", "template", "template-path"}


def _is_testssl(names: set[str]) -> bool:
    return {"id", "fqdn/ip", "severity", "finding"} <= names


def _is_openvas(names: set[str]) -> bool:
    return "nvt oid" in names or ("nvt name" in names and "ip" in names)


def _is_qualys(names: set[str]) -> bool:
    return "qid" in names and bool({"ip", "asset ipv4", "title", "vuln title"} & names)


def _is_testssl_json(obj: dict) -> bool:
    return "scanResult" in obj or (
        {"id", "severity", "finding"} <= set(obj) and ("ip" in obj or "port" in obj)
    )


def json_error(path: str | Path, err: json.JSONDecodeError, expected: str) -> ScanError:
    """:class:`ScanError` ``invalid JSON: <what> at line L column C`` (``.line`` = L, ``.column`` = C).

    Examples
    --------
    >>> try:
    ...     json.loads('{"a": 1,\\n "b" 2}')
    ... except json.JSONDecodeError as e:
    ...     str(json_error("x.json", e, "a JSON report"))
    "x.json: line 2: invalid JSON: Expecting ':' delimiter at line 2 column 6; expected a JSON report"
    """
    out = ScanError(
        path,
        f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}",
        line=err.lineno,
        expected=expected,
    )
    out.column = err.colno
    return out


def detect_format(path: str | Path) -> str:
    """Name the format of a scanner export by reading its beginning.

    Parameters
    ----------
    path : path-like
        The export file.

    Returns
    -------
    str
        One of :data:`FORMATS`, or ``"empty"`` for a file with no content.

    Raises
    ------
    ScanSecurityError
        XML declaring entities or external references.
    ScanError
        Content of no supported format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "x.txt").write_text('"id","fqdn/ip","port","severity","finding","cve","cwe"\\n')
    >>> detect_format(d / "x.txt")
    'testssl_csv'
    >>> _ = (d / "y.bin").write_text('<?xml version="1.0"?><nmaprun scanner="nmap"></nmaprun>')
    >>> detect_format(d / "y.bin")
    'nmap_xml'
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if packing(head[:4]):
        return _packed_format(path)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        return "empty"
    if stripped[:1] == b"<":
        return _xml_format(path)
    if stripped[:1] in (b"{", b"["):
        return _json_format(path, _json_start(path, stripped))
    return _csv_format(path)


def _packed_format(path: Path) -> str:
    """The format of a gzip, zip or UTF-16 export's unpacked content; an error names ``path``."""
    with unpacked(path) as (inner, _layers):
        try:
            return detect_format(inner)
        except ScanError as err:
            err.path = str(path)
            err.args = (str(path) + str(err)[len(str(inner)) :],)
            raise


def _xml_format(path: Path) -> str:
    """The format named by the root element, after the prolog's security check (rule 2)."""
    root = sniff_root(path)
    if root.startswith("NessusClientData"):
        return "nessus_xml"
    if root in _XML_ROOTS:
        return _XML_ROOTS[root]
    raise ScanError(
        path,
        f"unknown XML root element <{root}>",
        line=None,
        expected="a Nessus, OpenVAS/GVM, Nmap or Qualys XML export",
    )


def _json_start(path: Path, stripped: bytes) -> object:
    """The first JSON value: the first line (JSON Lines: decided without reading the whole file), else the
    whole (pretty-printed) document; invalid JSON is a :class:`ScanError` with its line and column."""
    line = stripped.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        try:
            return json.loads(path.read_text(encoding="utf-8-sig", errors="replace"))
        except json.JSONDecodeError as err:
            raise json_error(path, err, "a JSON scanner export (nuclei, testssl.sh, sslyze)") from None


def _json_format(path: Path, obj: object) -> str:
    """The format of a JSON export from its first object (an array's first item; ``[]`` is empty)
    (rule 3)."""
    if isinstance(obj, list):
        if not obj:
            return "empty"
        obj = obj[0]
    if isinstance(obj, dict):
        if "server_scan_results" in obj or "sslyze_version" in obj:
            return "sslyze_json"
        if _is_testssl_json(obj):
            return "testssl_json"
        if _NUCLEI_KEYS & set(obj) or ("info" in obj and "matched-at" in obj):
            return "nuclei_json"
    raise ScanError(
        path,
        "JSON of no known scanner",
        line=1,
        expected="nuclei JSON/JSONL, testssl.sh JSON or sslyze JSON",
    )


def _csv_format(path: Path) -> str:
    """The format of a delimited text export from its header names (rule 4)."""
    for fmt, test in (
        ("testssl_csv", _is_testssl),
        ("openvas_csv", _is_openvas),
        ("tenable_csv", is_tenable_header),
        ("qualys_csv", _is_qualys),
    ):
        if sniff_header(path, test) is not None:
            return fmt
    raise ScanError(
        path,
        "unrecognized content",
        line=1,
        expected="a supported scanner export (" + ", ".join(FORMATS) + ")",
    )
