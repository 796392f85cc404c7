"""Benchmark the per-establishment batch against running papermill once per establishment, in one run.

Usage: ``.venv/bin/python benchmarks/bench_batch.py --n 200 [--workers 2] [--data data/demo]``

Both paths produce the same confidential report (``notebooks/50_establishment_report.ipynb``) for the same
``n`` establishments, read from the same canonical folder (ingested once, not timed):

* **baseline** — a sequential loop calling ``papermill.execute_notebook`` once per establishment (a new
  kernel and the imports of the scientific stack each time; per-audit metrics recomputed in each report);
* **batch** — :func:`cyberobs_lib.batch.run_reports`: ``workers`` processes, each keeping one warm kernel
  (namespace reset between reports), per-audit metrics precomputed once (timed, included).

Prints wall time, seconds per report, the ratio baseline / batch and the machine's load average. When the
dataset has fewer audited establishments than ``n``, establishments are reused cyclically (each report
goes to its own folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cyberobs_lib.batch import batch_establishments, precompute_metrics, run_reports  # noqa: E402
from cyberobs_lib.config import NOTEBOOKS_DIR  # noqa: E402
from cyberobs_lib.ingest import ingest_dataset, write_canonical  # noqa: E402

NOTEBOOK = "50_establishment_report.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of reports")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")

    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    canonical = work / "canonical"
    write_canonical(ingest_dataset(args.data), canonical)
    every = batch_establishments(canonical, "all")
    chosen = [every[i % len(every)] for i in range(args.n)]
    print(
        f"{args.n} reports of {len(set(chosen))} distinct establishments; data {args.data}; "
        f"{os.cpu_count()} cores; load average before {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    start = time.perf_counter()
    precompute_metrics(canonical)
    results = run_reports(
        NOTEBOOK,
        sorted(set(chosen)) if args.n <= len(every) else chosen[: len(every)],
        canonical=canonical,
        out=work / "batch",
        workers=args.workers,
        progress=False,
    )
    if args.n > len(every):  # reuse establishments to reach n reports
        extra = chosen[len(every) :]
        results += run_reports(
            NOTEBOOK,
            extra,
            canonical=canonical,
            out=work / "batch_extra",
            workers=args.workers,
            progress=False,
        )
    batch_s = time.perf_counter() - start
    ok = sum(r["ok"] for r in results)
    print(
        f"batch    : {batch_s:8.1f} s  {batch_s / args.n:6.2f} s/report  ({ok}/{len(results)} ok, "
        f"{args.workers} workers, warm kernels)",
        flush=True,
    )
    (canonical / "audit_metrics.parquet").unlink()  # the baseline recomputes metrics in each report

    if args.skip_baseline:
        return
    import papermill as pm

    start = time.perf_counter()
    failures = 0
    for i, finess in enumerate(chosen):
        out = work / "baseline" / f"{i:04d}_{finess}"
        out.mkdir(parents=True, exist_ok=True)
        try:
            pm.execute_notebook(
                str(NOTEBOOKS_DIR / NOTEBOOK),
                str(out / NOTEBOOK),
                kernel_name="python3",
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
                parameters={"data_dir": str(canonical), "output_dir": str(out), "finess": finess},
            )
        except Exception:  # noqa: BLE001 - counted
            failures += 1
    base_s = time.perf_counter() - start
    print(
        f"baseline : {base_s:8.1f} s  {base_s / args.n:6.2f} s/report  ({args.n - failures}/{args.n} ok, "
        "sequential papermill loop)",
        flush=True,
    )
    print(f"ratio baseline / batch = {base_s / batch_s:.2f}x; load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
