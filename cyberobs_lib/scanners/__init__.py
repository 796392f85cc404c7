"""Scanner-export readers: Nessus, Tenable CSV, OpenVAS/GVM, Nmap, Qualys, nuclei, testssl.sh, sslyze.

Formats are detected by content (:func:`detect_format`); each reader maps host, port, protocol, service,
scanner identifier, CVEs, CVSS vector and score, scanner severity, title and date into the findings
contract, lists the audited perimeter, reports protection-mechanism evidence, and accounts for every item
read (``items_read == findings + skipped``). XML is streamed safely (:mod:`.xmlsafe`). Severity scales and
skip policy: ``data/scanner_severity.csv``; identifier prefixes: ``data/scanner_sources.csv``.
"""

from cyberobs_lib.scanners._core import FINDING_COLUMNS, ScanError, ScanResult, ScanSecurityError
from cyberobs_lib.scanners.batch import ScanBatch, read_scans_dir
from cyberobs_lib.scanners.detect import FORMATS, detect_format
from cyberobs_lib.scanners.reader import iter_scan_file, read_scan_file

__all__ = [
    "FINDING_COLUMNS",
    "FORMATS",
    "ScanBatch",
    "ScanError",
    "ScanResult",
    "ScanSecurityError",
    "detect_format",
    "iter_scan_file",
    "read_scan_file",
    "read_scans_dir",
]
