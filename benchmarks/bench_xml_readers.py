"""Throughput and peak memory of the XML scanner readers against a bare ``iterparse`` loop.

For each XML format (Nessus v2, OpenVAS/GVM, Nmap, Qualys SCAN) a synthetic export of ``--size-mb`` MB and
one of twice that size are generated in a temporary folder, then each measurement runs in a fresh Python
process (so that its peak RSS is its own):

* ``bare``   — ``xml.etree.ElementTree.iterparse`` over the file, clearing each record element (the
  textbook streaming loop: no field extraction, no safety check);
* ``stream`` — :func:`cyberobs_lib.scanners.iter_scan_file` (safe prolog check, extraction, severity
  mapping, chunks of 50,000 items discarded after use): the reader's own memory;
* ``read``   — :func:`cyberobs_lib.scanners.read_scan_file`: the same plus the whole findings table kept
  in memory (grows with the number of findings, by design: it is the output).

Record sizes follow the corpus (../shared/corpus): about 4 KB per Nessus ReportItem (pytenable_example:
6 KB, rubynessus_example_v3: 4.7 KB), 3 KB per GVM result (defectdojo_many_vuln.xml), 2.5 KB per Qualys
VULN; nmap hosts carry 4 open ports with banners and one vulners table. Smaller records mean more
elements per MB and a lower ratio (about 0.4 for 0.7 KB GVM results in our trials).

Each measurement is the fastest of ``--repeat`` runs (the machine is shared). Reported: seconds, MB/s, ratio of the reader's throughput to the bare loop's (target ≥ 0.5) and peak RSS
(MB). Usage::

    .venv/bin/python benchmarks/bench_xml_readers.py --size-mb 200
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

RECORD = {"nessus": "ReportItem", "openvas": "result", "nmap": "host", "qualys": "IP"}
SUFFIX = {"nessus": ".nessus", "openvas": ".xml", "nmap": ".xml", "qualys": ".xml"}
LOREM = (
    "The remote service accepts connections encrypted using a protocol or cipher that is considered "
    "weak by current standards; an attacker able to intercept traffic may decrypt or alter it. "
)


def _text(rng: random.Random, n: int) -> str:
    return (LOREM * (n // len(LOREM) + 1))[: n + rng.randrange(50)]


def gen_nessus(fh, target: int, rng: random.Random) -> None:
    fh.write('<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Policy><policyName>p</policyName></Policy>\n')
    fh.write('<Report name="bench">\n')
    h = 0
    while fh.tell() < target:
        h += 1
        fh.write(f'<ReportHost name="10.{h >> 16 & 255}.{h >> 8 & 255}.{h & 255}"><HostProperties>')
        fh.write('<tag name="HOST_START">Thu Mar 25 13:23:31 2021</tag></HostProperties>\n')
        for i in range(40):
            sev = rng.choice("00001123334")
            cves = "".join(
                f"<cve>CVE-20{rng.randrange(10, 24)}-{rng.randrange(1000, 40000)}</cve>" for _ in range(i % 3)
            )
            fh.write(
                f'<ReportItem port="{rng.choice((22, 80, 443, 3389, 0))}" svc_name="www" protocol="tcp" '
                f'severity="{sev}" pluginID="{10000 + i * 7}" pluginName="Plugin number {i}" pluginFamily="General">'
                f"<description>{_text(rng, 1800)}</description><solution>{_text(rng, 250)}</solution>"
                f"<synopsis>{_text(rng, 100)}</synopsis><risk_factor>Medium</risk_factor>"
                "<cvss3_base_score>6.5</cvss3_base_score>"
                "<cvss3_vector>CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N</cvss3_vector>"
                f"<see_also>https://www.example.org/advisory/{i}</see_also><plugin_publication_date>2020/01/01</plugin_publication_date>"
                f"{cves}<plugin_output>{_text(rng, 900)}</plugin_output></ReportItem>\n"
            )
        fh.write("</ReportHost>\n")
    fh.write("</Report>\n</NessusClientData_v2>\n")


def gen_openvas(fh, target: int, rng: random.Random) -> None:
    fh.write('<report id="r" format_id="x"><report id="r"><results start="1" max="-1">\n')
    i = 0
    while fh.tell() < target:
        i += 1
        threat, sev = rng.choice(
            (("High", "7.5"), ("Medium", "5.0"), ("Low", "2.6"), ("Log", "0.0"), ("Log", "0.0"))
        )
        fh.write(
            f'<result id="{i}"><name>NVT {i % 500}</name><creation_time>2024-02-01T10:00:00Z</creation_time>'
            f'<host>10.1.{i >> 8 & 255}.{i & 255}<asset asset_id=""/><hostname>h{i}</hostname></host>'
            f"<port>{rng.choice(('443/tcp', 'general/tcp', '22/tcp'))}</port>"
            f'<nvt oid="1.3.6.1.4.1.25623.1.0.{100000 + i % 500}"><type>nvt</type><name>NVT {i % 500}</name>'
            f"<cvss_base>{sev}</cvss_base><tags>cvss_base_vector=AV:N/AC:L/Au:N/C:P/I:N/A:N|summary={_text(rng, 400)}"
            f"|insight={_text(rng, 500)}|impact={_text(rng, 300)}|solution={_text(rng, 300)}</tags>"
            f'<refs><ref type="cve" id="CVE-2020-{i % 9000 + 1000}"/><ref type="url" id="https://example.org"/></refs></nvt>'
            f"<threat>{threat}</threat><severity>{sev}</severity><qod><value>80</value></qod>"
            f"<description>{_text(rng, 900)}</description></result>\n"
        )
    fh.write("</results>\n<host><ip>10.1.0.1</ip></host></report></report>\n")


def gen_nmap(fh, target: int, rng: random.Random) -> None:
    fh.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap" start="1700000000">\n'
    )
    h = 0
    services = (
        ("22", "ssh"),
        ("80", "http"),
        ("443", "https"),
        ("3389", "ms-wbt-server"),
        ("3306", "mysql"),
        ("8080", "http-proxy"),
    )
    while fh.tell() < target:
        h += 1
        state = "up" if h % 4 else "down"
        fh.write(
            f'<host starttime="1700000000" endtime="1700000100"><status state="{state}" reason="syn-ack"/>'
        )
        fh.write(f'<address addr="10.2.{h >> 8 & 255}.{h & 255}" addrtype="ipv4"/><hostnames/>')
        if state == "up":
            fh.write('<ports><extraports state="closed" count="990"/>')
            for port, svc in rng.sample(services, 4):
                fh.write(
                    f'<port protocol="tcp" portid="{port}"><state state="open" reason="syn-ack"/>'
                    f'<service name="{svc}" product="Product {svc}" version="1.{rng.randrange(9)}" method="probed" conf="10"/>'
                    f'<script id="banner" output="{_text(rng, 150)}"/>'
                )
                if svc == "ssh":
                    fh.write('<script id="vulners" output="x"><table key="cpe:/a:openbsd:openssh:7.4">')
                    for k in range(6):
                        vid = f"CVE-2018-{15000 + k}" if k % 2 == 0 else f"EDB-ID:{45000 + k}"
                        fh.write(
                            f'<table><elem key="cvss">{5 + k * 0.5}</elem><elem key="id">{vid}</elem><elem key="type">cve</elem></table>'
                        )
                    fh.write("</table></script>")
                fh.write("</port>")
            fh.write("</ports>")
        fh.write('<times srtt="1" rttvar="1" to="100"/></host>\n')
    fh.write('<runstats><finished time="1700000100"/></runstats>\n</nmaprun>\n')


def gen_qualys(fh, target: int, rng: random.Random) -> None:
    fh.write(
        '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE SCAN SYSTEM "https://qualysguard.qualys.com/scan-1.dtd">\n'
    )
    fh.write('<SCAN value="scan/1"><HEADER><KEY value="DATE">2023-05-04T12:00:00Z</KEY></HEADER>\n')
    h = 0
    while fh.tell() < target:
        h += 1
        fh.write(
            f'<IP value="10.3.{h >> 8 & 255}.{h & 255}" name="host{h}"><INFOS><CAT value="Information gathering">'
        )
        for i in range(10):
            fh.write(
                f'<INFO number="{i + 6}" severity="1"><TITLE><![CDATA[Info {i}]]></TITLE><RESULT>{_text(rng, 200)}</RESULT></INFO>'
            )
        fh.write('</CAT></INFOS><VULNS><CAT value="Web server" port="443" protocol="tcp">')
        for i in range(20):
            fh.write(
                f'<VULN number="{38000 + i}" severity="{rng.randrange(1, 6)}"><TITLE><![CDATA[Vuln {i}]]></TITLE>'
                "<CVSS_BASE>5</CVSS_BASE><CVSS3_BASE>6.5</CVSS3_BASE>"
                f"<CVE_ID_LIST><CVE_ID><ID><![CDATA[CVE-2021-{i + 1000}]]></ID></CVE_ID></CVE_ID_LIST>"
                f"<DIAGNOSIS>{_text(rng, 800)}</DIAGNOSIS><CONSEQUENCE>{_text(rng, 500)}</CONSEQUENCE>"
                f"<SOLUTION>{_text(rng, 400)}</SOLUTION><RESULT>{_text(rng, 300)}</RESULT></VULN>"
            )
        fh.write("</CAT></VULNS></IP>\n")
    fh.write("</SCAN>\n")


GENERATORS = {"nessus": gen_nessus, "openvas": gen_openvas, "nmap": gen_nmap, "qualys": gen_qualys}


def generate(fmt: str, path: Path, size_mb: float, seed: int = 0) -> None:
    """Write a synthetic ``fmt`` export of about ``size_mb`` MB."""
    with open(path, "w", encoding="utf-8") as fh:
        GENERATORS[fmt](fh, int(size_mb * 1e6), random.Random(seed))


def _worker(mode: str, fmt: str, path: str) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cyberobs_lib.scanners import iter_scan_file, read_scan_file  # imported before the clock starts

    start = time.perf_counter()
    n = 0
    if mode == "bare":
        record = RECORD[fmt]
        for _event, elem in ET.iterparse(path):
            if elem.tag == record:
                n += 1
                elem.clear()
    else:
        if mode == "stream":
            for chunk in iter_scan_file(path):
                n += chunk.accounting["items_read"]
        else:
            n = read_scan_file(path).accounting["items_read"]
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rss_mb": rss_mb, "n": n}


def _measure(mode: str, fmt: str, path: Path, repeat: int) -> dict:
    """Best (shortest) of ``repeat`` runs, each in a fresh process; peak RSS is the largest seen."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", mode, fmt, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout))
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "rss_mb": max(r["rss_mb"] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=200.0, help="size of the smaller generated file (MB)")
    ap.add_argument("--formats", default="nessus,openvas,nmap,qualys")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest is kept")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return
    print(
        f"{'format':8} {'MB':>6} {'mode':6} {'items':>9} {'s':>7} {'MB/s':>6} {'ratio':>6} {'peakRSS MB':>10}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_xml_") as tmp:
        for fmt in args.formats.split(","):
            for size in (args.size_mb, 2 * args.size_mb):
                path = Path(tmp) / f"{fmt}_{int(size)}{SUFFIX[fmt]}"
                generate(fmt, path, size)
                mb = path.stat().st_size / 1e6
                bare = _measure("bare", fmt, path, args.repeat)
                for mode in ("bare", "stream", "read"):
                    m = bare if mode == "bare" else _measure(mode, fmt, path, args.repeat)
                    ratio = bare["seconds"] / m["seconds"]
                    print(
                        f"{fmt:8} {mb:6.0f} {mode:6} {m['n']:9d} {m['seconds']:7.2f} {mb / m['seconds']:6.1f} "
                        f"{ratio:6.2f} {m['rss_mb']:10.0f}",
                        flush=True,
                    )
                path.unlink()


if __name__ == "__main__":
    main()
