"""Streaming readers keep flat memory: a file twice as large does not double the tracemalloc peak.

Not timed. The generated files are written to tmp_path (a few MB); chunks are discarded as they come, so
what is measured is the reader's own working memory, which must not grow with the file (a reader that kept
cleared elements attached to their parent, or the whole tree, would roughly double its peak).
"""

from __future__ import annotations

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
