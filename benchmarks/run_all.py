"""Run every benchmark, one after the other, printing their figures (``make bench``).

Usage: ``.venv/bin/python benchmarks/run_all.py [--full]``

The default sizes take minutes on a 2-core machine; ``--full`` uses the national sizes of the issues
(10^7 findings, 200 reports, XML files of hundreds of MB) and takes much longer. Each benchmark compares
itself with a baseline in the same run (a ratio), since timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUICK = [
    ("bench_pipeline.py", ["--establishments", "2000"]),
    ("bench_normalize.py", ["--n", "1000000"]),
    ("bench_lifecycle.py", ["--n", "1000000"]),
    ("bench_cohorts.py", ["--findings", "1000000", "--establishments", "5000"]),
    ("bench_xml_readers.py", ["--size-mb", "50"]),
    ("bench_batch.py", ["--n", "20"]),
    ("bench_scale.py", ["--sizes", "1e5,1e6"]),
    ("bench_kernels.py", ["--sizes", "1e5,1e6"]),
]
FULL = [
    ("bench_pipeline.py", []),
    ("bench_normalize.py", ["--n", "10000000"]),
    ("bench_lifecycle.py", ["--n", "10000000"]),
    ("bench_cohorts.py", []),
    ("bench_xml_readers.py", []),
    ("bench_batch.py", ["--n", "200"]),
    ("bench_scale.py", ["--sizes", "1e5,1e6,1e7"]),
    ("bench_kernels.py", ["--sizes", "1e5,1e6"]),  # the pandas references: 10^7 rows would take minutes
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="national sizes (long)")
    parser.add_argument("--only", help="comma-separated benchmark file names")
    args = parser.parse_args()
    plan = FULL if args.full else QUICK
    if args.only:
        wanted = set(args.only.split(","))
        plan = [p for p in plan if p[0] in wanted]
    failed = []
    for script, extra in plan:
        print(f"\n=== {script} {' '.join(extra)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *extra])
        print(f"=== {script}: exit {code}, {time.perf_counter() - start:.0f} s wall", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
