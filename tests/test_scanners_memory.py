"""Streaming readers keep flat memory: a file twice as large does not double the tracemalloc peak, and
hostile files (50 MB of nested tags, a record that never closes, an endless text) stop with an error at a
small, fixed peak RSS.

Not timed. The generated files are written to tmp_path (a few MB); chunks are discarded as they come, so
what is measured is the reader's own working memory, which must not grow with the file (a reader that kept
cleared elements attached to their parent, or the whole tree, would roughly double its peak).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from cyberobs_lib.scanners import iter_scan_file

ITEM = (
    '<ReportItem port="443" svc_name="www" protocol="tcp" severity="{sev}" pluginID="{pid}" '
    'pluginName="Plugin {pid}"><description>{text}</description><cve>CVE-2020-{pid}</cve>'
    "<plugin_output>{text}</plugin_output></ReportItem>\n"
)
RESULT = (
    '<result id="{i}"><name>NVT</name><host>10.0.{a}.{b}</host><port>443/tcp</port>'
    '<nvt oid="1.3.6.1.4.1.25623.1.0.{i}"><name>NVT {i}</name><tags>summary={text}</tags></nvt>'
    "<threat>Medium</threat><severity>5.0</severity><description>{text}</description></result>\n"
)
TEXT = "x" * 300


def _nessus(path, hosts: int) -> None:
    with open(path, "w") as fh:
        fh.write('<?xml version="1.0"?>\n<NessusClientData_v2><Report name="m">\n')
        for h in range(hosts):
            fh.write(f'<ReportHost name="10.0.{h // 250}.{h % 250}"><HostProperties/>\n')
            for i in range(20):
                fh.write(ITEM.format(sev=i % 5, pid=1000 + i, text=TEXT))
            fh.write("</ReportHost>\n")
        fh.write("</Report></NessusClientData_v2>\n")


def _openvas(path, results: int) -> None:
    with open(path, "w") as fh:
        fh.write('<report id="r"><report id="r"><results>\n')
        for i in range(results):
            fh.write(RESULT.format(i=i, a=i // 250 % 250, b=i % 250, text=TEXT))
        fh.write("</results></report></report>\n")


def _peak(path) -> int:
    tracemalloc.start()
    try:
        for chunk in iter_scan_file(path, chunk_rows=500):
            del chunk
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("writer", "n"), [(_nessus, 100), (_openvas, 2000)])
def test_twice_the_file_does_not_double_the_peak(tmp_path, writer, n):
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    writer(small, n)
    writer(large, 2 * n)
    _peak(small)  # warm caches (severity table, imports) outside the measurement
    p_small, p_large = _peak(small), _peak(large)
    assert large.stat().st_size > 1.9 * small.stat().st_size
    assert p_large < 1.25 * p_small, (p_small, p_large)


# --- hostile files: ~50 MB each, read in a child process whose peak RSS (VmHWM) is its own ------------

HEADS = {
    "nmap": (b'<?xml version="1.0"?>\n<nmaprun scanner="nmap">\n', b"<host>", ".xml"),
    "nessus": (
        b'<?xml version="1.0"?>\n<NessusClientData_v2><Report name="r">\n',
        b'<ReportHost name="192.0.2.1">',
        ".nessus",
    ),
}
BODIES = {  # (opening, repeated block)
    "nested": (b"", b"<a>" * 10_000),
    "wide": (b"@", b'<x a="1"/>\n' * 1_000),  # @: the record's start tag
    "text": (b"@<x>", b"ab\n" * 10_000),
}
EXPECTED = {
    "nested": "XML nesting deeper than 256 elements",
    "wide": "XML elements and attributes held open or unread at once",
    "text": "bytes of XML without a new element",
}
CHILD = """
import json, resource, sys
from cyberobs_lib.scanners import ScanError, read_scan_file
out = {}
for path in sys.argv[1:]:
    try:
        read_scan_file(path)
        out[path] = None
    except ScanError as err:
        out[path] = str(err)
# VmHWM: the peak RSS of this process's own memory. ru_maxrss is not: Linux keeps across exec the peak
# of the parent it was forked from (a test suite of 1 GB would be measured, not this reader).
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
out["maxrss_mb"] = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _write_hostile(path, fmt: str, kind: str, size: int = 50_000_000) -> None:
    head, record, _ = HEADS[fmt]
    opening, block = BODIES[kind]
    with open(path, "wb") as fh:
        fh.write(head + opening.replace(b"@", record))
        for _ in range(size // len(block)):
            fh.write(block)


@pytest.mark.parametrize("kind", ["nested", "wide", "text"])
def test_hostile_files_stop_early_with_flat_memory(tmp_path, kind):
    paths = []
    for fmt in HEADS:
        path = tmp_path / f"{kind}{HEADS[fmt][2]}"
        _write_hostile(path, fmt, kind)
        assert path.stat().st_size > 49_000_000
        paths.append(str(path))
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, check=True, timeout=600
    )
    out = json.loads(run.stdout)
    for path in paths:
        assert out[path] is not None and out[path].startswith(f"{path}: line "), out[path]
        assert EXPECTED[kind] in out[path]
    # the interpreter with pandas is ~125 MB; before the limits, "nested" took 2.1 GB at 20 MB of input
    assert out["maxrss_mb"] < 300, out
