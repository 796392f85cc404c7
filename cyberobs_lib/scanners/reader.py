"""Read one scanner export into the canonical findings table: :func:`read_scan_file`, :func:`iter_scan_file`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from cyberobs_lib import schema
from cyberobs_lib.scanners._core import (
    ScanError,
    ScanResult,
    empty_result,
    worst_status,
)
from cyberobs_lib.scanners.detect import detect_format
from cyberobs_lib.scanners.nessus import iter_nessus_xml, iter_tenable_csv
from cyberobs_lib.scanners.nmap import iter_nmap_xml
from cyberobs_lib.scanners.nuclei import iter_nuclei_json
from cyberobs_lib.scanners.openvas import iter_openvas_csv, iter_openvas_xml
from cyberobs_lib.scanners.qualys import iter_qualys_csv, iter_qualys_xml
from cyberobs_lib.scanners.tls import iter_sslyze_json, iter_testssl_csv, iter_testssl_json
from cyberobs_lib.scanners.unpack import unpacked

__all__ = ["read_scan_file", "iter_scan_file", "READERS", "DEFAULT_CHUNK_ROWS"]

DEFAULT_CHUNK_ROWS = 50_000
READERS: dict[str, Callable[..., Iterator[ScanResult]]] = {
    "nessus_xml": iter_nessus_xml,
    "tenable_csv": iter_tenable_csv,
    "openvas_xml": iter_openvas_xml,
    "openvas_csv": iter_openvas_csv,
    "nmap_xml": iter_nmap_xml,
    "qualys_xml": iter_qualys_xml,
    "qualys_csv": iter_qualys_csv,
    "nuclei_json": iter_nuclei_json,
    "testssl_csv": iter_testssl_csv,
    "testssl_json": iter_testssl_json,
    "sslyze_json": iter_sslyze_json,
}


def iter_scan_file(
    path: str | Path,
    *,
    audit_id: str | None = None,
    include_info: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fmt: str | None = None,
) -> Iterator[ScanResult]:
    """Stream a scanner export as partial :class:`ScanResult` chunks (flat memory for any file size).

    Parameters
    ----------
    path : path-like
        The export.
    audit_id : str, optional
        Written in the ``audit_id`` column.
    include_info : bool
        Keep informational items (default: counted as skipped, reason ``informational``).
    chunk_rows : int
        Items per chunk (XML and CSV readers; JSON readers yield one chunk).
    fmt : str, optional
        Skip detection (one of :data:`cyberobs_lib.scanners.detect.FORMATS`).

    Returns
    -------
    iterator of ScanResult
        Each chunk holds its own findings, hosts, controls and accounting; :func:`read_scan_file` merges
        them.

    Raises
    ------
    ScanError, ScanSecurityError
        See :func:`read_scan_file`; also a packed export beyond the limits of :mod:`.unpack`.

    Notes
    -----
    A gzip, single-file zip or UTF-16 export is first unpacked to a temporary file
    (:func:`cyberobs_lib.scanners.unpack.unpacked`, bounded, removed afterwards); its findings, controls
    and errors still name ``path`` (error lines are those of the unpacked content).
    """
    path = Path(path)
    if not path.is_file():
        raise ScanError(path, "no such file", expected="a scanner export file")
    with unpacked(path) as (inner, layers):
        if not layers:
            yield from _read(path, fmt, audit_id=audit_id, include_info=include_info, chunk_rows=chunk_rows)
            return
        try:
            for res in _read(inner, fmt, audit_id=audit_id, include_info=include_info, chunk_rows=chunk_rows):
                yield _renamed_result(res, path)
        except ScanError as err:
            raise _renamed_error(err, inner, path, layers) from None


def _read(path: Path, fmt: str | None, **options) -> Iterator[ScanResult]:
    fmt = fmt or detect_format(path)
    if fmt == "empty":
        yield empty_result("empty", path, audit_id=options["audit_id"])
        return
    yield from READERS[fmt](path, **options)


def _renamed_result(res: ScanResult, original: Path) -> ScanResult:
    """A chunk read from an unpacked temp file, attributed to the original file."""
    name = str(original)
    res.source_file = name
    res.findings[schema.SOURCE_FILE] = pd.Series(name, index=res.findings.index, dtype=object)
    res.controls[schema.SOURCE_FILE] = pd.Series(name, index=res.controls.index, dtype=object)
    return res


def _renamed_error(err: ScanError, inner: Path, original: Path, layers: list[str]) -> ScanError:
    """The same error about the original file (its unpacked content: lines are those of that content)."""
    if err.path != str(inner):
        return err
    where = " > ".join(layers)
    new = type(err)(
        original,
        f"{err.message} (in its {where}-unpacked content)",
        line=err.line,
        element=err.element,
        row=err.row,
        expected=err.expected,
    )
    for k, v in vars(err).items():  # extra attributes a reader may set
        if k not in vars(new):
            setattr(new, k, v)
    return new


def read_scan_file(
    path: str | Path, *, audit_id: str | None = None, include_info: bool = False
) -> ScanResult:
    """Read one scanner export (format detected by content) into the canonical findings table.

    Parameters
    ----------
    path : path-like
        A Nessus v2 XML, Tenable CSV, OpenVAS/GVM XML or CSV, Nmap XML, Qualys XML or CSV, nuclei JSON/JSONL,
        testssl.sh CSV or sslyze JSON export.
    audit_id : str, optional
        Written in the ``audit_id`` column of findings and controls.
    include_info : bool
        Keep informational items (Nessus severity 0, OpenVAS Log, Qualys severity 1 / information gathered,
        nuclei info, testssl INFO, open ports of non-exposure services) instead of skipping them.

    Returns
    -------
    ScanResult
        ``format``; ``findings`` with columns ``audit_id, host, port (Int32), protocol, service, vuln_id,
        cve, title, cvss_vector, cvss_score (float), severity, scanner_severity, scanner, first_seen
        (datetime64), source_file, source_row, evidence``; ``hosts`` (sorted perimeter, including hosts
        without findings); ``controls`` (``audit_id, host, control, present, source_file``);
        ``accounting`` ``{"items_read", "findings", "skipped": {reason: n}}`` with
        ``items_read == findings + sum(skipped.values())``.

    Raises
    ------
    ScanSecurityError
        XML with entity declarations or external entity references (refused, never expanded).
    ScanError
        Unknown format, wrong root element, malformed content (a truncated XML file is read up to the cut
        and its status is ``incomplete``): ``str(err)`` names the file,
        the line and what was expected.

    Notes
    -----
    Severity mapping and skip policy: ``cyberobs_lib/data/scanner_severity.csv``; vuln_id prefixes:
    ``cyberobs_lib/data/scanner_sources.csv``. Per-format policies are in each reader module's docstring.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text('"id","fqdn/ip","port","severity","finding","cve","cwe"\\n'
    ...                  '"SSLv3","a.example/192.0.2.1","443","HIGH","offered","CVE-2014-3566",""\\n'
    ...                  '"TLS1_2","a.example/192.0.2.1","443","OK","offered","",""\\n')
    >>> res = read_scan_file(p, audit_id="A1")
    >>> res.findings[["host", "vuln_id", "severity", "cve"]].values.tolist()
    [['192.0.2.1', 'testssl:SSLv3', 'high', 'CVE-2014-3566']]
    >>> res.accounting
    {'items_read': 2, 'findings': 1, 'skipped': {'check_passed': 1}}
    """
    chunks = list(iter_scan_file(path, audit_id=audit_id, include_info=include_info))
    return merge_results(chunks)


def merge_results(chunks: list[ScanResult]) -> ScanResult:
    """Concatenate the chunks of one file (or of several files, for a batch) into one result."""
    skipped: Counter = Counter()
    hosts: set[str] = set()
    for c in chunks:
        skipped.update(c.accounting["skipped"])
        hosts.update(c.hosts)
    findings = [c.findings for c in chunks if len(c.findings)]
    controls = [c.controls for c in chunks if len(c.controls)]
    first = chunks[0]
    details = dict.fromkeys(d for c in chunks for d in c.status_detail.split("; ") if d)
    problems = [c.cell_problems for c in chunks if len(c.cell_problems)]
    return ScanResult(
        format=first.format,
        findings=pd.concat(findings, ignore_index=True) if findings else first.findings.iloc[:0],
        hosts=sorted(hosts),
        controls=pd.concat(controls, ignore_index=True) if controls else first.controls.iloc[:0],
        accounting={
            "items_read": sum(c.accounting["items_read"] for c in chunks),
            "findings": sum(c.accounting["findings"] for c in chunks),
            "skipped": dict(sorted(skipped.items())),
        },
        source_file=first.source_file,
        status=worst_status(*(c.status for c in chunks)),
        status_detail="; ".join(details),
        cell_problems=pd.concat(problems, ignore_index=True) if problems else first.cell_problems,
    )
