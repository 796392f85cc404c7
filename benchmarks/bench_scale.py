"""National-scale benchmark: the whole pipeline at 10^5, 10^6, 10^7 findings, each heavy stage vs DuckDB.

Usage: ``.venv/bin/python benchmarks/bench_scale.py --sizes 1e5,1e6,1e7 [--stages cohorts,longitudinal]
[--no-dask] [--work /tmp/cyberobs_scale] [--reuse-canonical 1e7] [--merge]``

Per size, a synthetic dataset (:func:`cyberobs_lib.demo.generate_dataset`, national preset with
``size / 100`` structures; cached under ``--work`` as ``n1e+06/dataset``: a symlink to a cached dataset
works) goes through these stages, each in its own child process; peak memory is the RSS of the child
and all its descendants (Dask workers, ingest workers, notebook kernels), sampled every 20 ms:

* ``ingest`` — :func:`cyberobs_lib.scale.ingest_large` (``--ingest-workers`` processes; every contract
  rule, normalization, enrichment, year-partitioned Parquet) vs ``duckdb_ingest_same``
  (``benchmarks/duckdb_ingest.py``: the same work in SQL) and ``duckdb_load`` (CSV → partitioned
  Parquet, no rule: a floor, its ratio printed beside);
* ``lifecycle`` — :func:`~cyberobs_lib.lifecycle.match_lifecycle` vs the same matching in SQL
  (``bench_lifecycle.DUCKDB_SQL``);
* ``indicators`` — ``audit_metrics`` + ``compute_indicators(n_boot=200)`` vs per-audit counts and the
  per-family / period shares with Wilson limits, rates, medians in SQL (no bootstrap: see
  :func:`scale_stages.stage_duckdb_indicators`); the shared values are compared;
* ``cohorts``, ``longitudinal`` — notebooks 20 and 10 (:mod:`scale_studies`); their DuckDB baselines do
  the data part (per-audit metrics, per-family counts, pairs, episodes), compared with the stages'
  ``data`` phases; the statistics are timed as their own phases;
* ``annual`` — ``cyberobs run parameters/annual_2025.yaml --canonical …`` as a subprocess (wall time,
  peak of the whole process tree; no baseline);
* ``dask`` — on a 2-process ``LocalCluster``: ``ingest_large(client=…)`` (store compared table by table), Dask lifecycle and metrics, compared with
  the pandas stages' tables (must be identical).

Prints seconds, peak GB and findings/s per stage, the ratio to DuckDB, the growth exponent of time
between sizes (log time ratio / log size ratio: 1 is linear), and a verdict table against issue 9
(peak < 8 GB, ratio <= 2, exponent 10^6 -> 10^7 <= 1.1). ``--merge`` adds the results already in
``<work>/bench_scale.json`` for the sizes and stages not run now (marked ``*``: another run, another load).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_stages  # noqa: E402
import scale_studies  # noqa: E402

#: Stage -> its baselines (the first does the same work; the others are printed beside it).
PLAN = {
    "ingest": ["duckdb_ingest_same", "duckdb_load"],
    "lifecycle": ["duckdb_lifecycle"],
    "indicators": ["duckdb_indicators"],
    "cohorts": ["duckdb_cohorts"],
    "longitudinal": ["duckdb_longitudinal"],
    "annual": [],
    "dask": [],
}
LIMITS = {"peak_gb": 8.0, "ratio": 2.0, "exponent": 1.1}


def _stage(name: str):
    for module in (scale_stages, scale_studies):
        if hasattr(module, f"stage_{name}"):
            return getattr(module, f"stage_{name}")
    raise KeyError(name)


# ------------------------------------------------------------------------------------------ harness
def _child(name: str, args: tuple, kwargs: dict, queue) -> None:
    try:
        import dask.dataframe  # noqa: F401  imports are not the stage's work: load them before the clock
        import duckdb  # noqa: F401

        import cyberobs_lib.lifecycle  # noqa: F401
        import cyberobs_lib.scale  # noqa: F401
        import cyberobs_lib.studies.cohorts  # noqa: F401
        import cyberobs_lib.studies.indicators  # noqa: F401
        import cyberobs_lib.studies.longitudinal  # noqa: F401

        start = time.perf_counter()
        result = _stage(name)(*args, **kwargs)
        queue.put(("ok", {**result, "seconds": time.perf_counter() - start - result.pop("untimed", 0.0)}))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_stage(name: str, *args, **kwargs) -> tuple[float, float, dict]:
    """Run a stage in a spawned child: seconds of its work (imports and reference writes excluded), peak
    GB of the child's process tree (imports included), its result."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, kwargs, queue))
    proc.start()
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = p.memory_info().rss
                for c in p.children(recursive=True):
                    try:
                        rss += c.memory_info().rss
                    except psutil.Error:  # a descendant that just ended
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    status, result = queue.get()
    done.set()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"stage {name} failed: {result}")
    return result.pop("seconds"), peak / 1024**3, result


# ------------------------------------------------------------------------------------------ report
def _line(size: int, name: str, row: dict) -> str:
    if "skipped" in row:
        return f"[{size:.0e}] {name:20s} skipped: {row['skipped']}"
    s, gb, n = row["seconds"], row["peak_gb"], row["findings"]
    keys = (
        "same_as_pandas",
        "bootstrap_vs_pandas",
        "store_identical",
        "pairs_identical",
        "metrics_identical",
        "workers",
    )
    extra = [f"{k} {row[k]}" for k in keys
             if k in row]  # fmt: skip
    if "compare_seconds" in row:
        extra.append(f"data part {row['compare_seconds']:.1f} s")
    if "phases" in row:
        extra.append("phases " + ", ".join(f"{k} {v:.1f}" for k, v in row["phases"].items()))
    return (f"[{size:.0e}] {name:20s} {s:8.1f} s  peak {gb:5.2f} GB  {n:>11,} findings  {n / s:>10,.0f}/s  "
            + "; ".join(extra))  # fmt: skip


def ratio(rows: dict, ours: str) -> tuple[float | None, float | None, str]:
    """Time of ``ours`` (its data part when the baseline does only that) over its same-work baseline,
    the same without the bootstrap phase on both sides (when both have one), and the text of the ratio
    line (floor ratios beside)."""
    mine = rows.get(ours)
    bases = [b for b in PLAN[ours] if b in rows and "skipped" not in rows[b]]
    if not mine or "skipped" in mine or not bases:
        return None, None, ""
    t = mine.get("compare_seconds", mine["seconds"])
    same = PLAN[ours][0] in bases
    first = t / rows[bases[0]]["seconds"]
    text = f"{ours} / {bases[0]} = {first:.2f}" + (" (data part)" if "compare_seconds" in mine else "")
    text += "".join(f", / {b} (floor) = {t / rows[b]['seconds']:.2f}" for b in bases[1:])
    mp, bp = mine.get("phases", {}), rows[bases[0]].get("phases", {})
    without = None
    if same and "bootstrap" in mp and "bootstrap" in bp:  # the part numpy and SQL do very differently
        without = (t - mp["bootstrap"]) / (rows[bases[0]]["seconds"] - bp["bootstrap"])
        text += f"; without the bootstrap on both sides = {without:.2f}"
    if not same:
        text += f"  [no same-work baseline: {PLAN[ours][0]} missing]"
    return (first if same else None), without, text


def exponent(report: dict, sizes: list[int], name: str, i: int) -> float | None:
    """Growth exponent of the stage's time from ``sizes[i-1]`` to ``sizes[i]`` (None if not both)."""
    if i == 0:
        return None
    a, b = report.get(sizes[i - 1], {}).get(name), report.get(sizes[i], {}).get(name)
    if not a or not b or "skipped" in a or "skipped" in b or a["findings"] == b["findings"]:
        return None
    return math.log(b["seconds"] / a["seconds"]) / math.log(b["findings"] / a["findings"])


def summary(report: dict, merged: set) -> None:
    sizes = sorted(report)
    print("\nsummary (seconds, peak GB; growth exponent of time vs the previous size: 1 = linear;"
          " * = from an earlier run)")  # fmt: skip
    for i, size in enumerate(sizes):
        line = [f"{size:>10.0e}"]
        for name, row in report[size].items():
            if "skipped" in row:
                continue
            g = exponent(report, sizes, name, i)
            mark = "*" if (size, name) in merged else ""
            line.append(f"{name}{mark} {row['seconds']:.1f}s {row['peak_gb']:.2f}GB"
                        + (f" x^{g:.2f}" if g is not None else ""))  # fmt: skip
        print(" | ".join(line))
    big = sizes[-1]
    print(f"\nverdict at {big:.0e} (issue 9: peak < {LIMITS['peak_gb']:.0f} GB, ratio to DuckDB <= "
          f"{LIMITS['ratio']:.0f}, exponent {sizes[-2] if len(sizes) > 1 else big:.0e} -> {big:.0e} <= "
          f"{LIMITS['exponent']})")  # fmt: skip
    head = ("stage", "seconds", "peak GB", "ok", "ratio", "ok", "no boot", "ok", "exponent", "ok")
    print("{:14s} {:>8s} {:>8s} {:>3s} {:>6s} {:>3s} {:>7s} {:>3s} {:>8s} {:>3s}".format(*head))
    for name in PLAN:
        row = report[big].get(name)
        if not row or "skipped" in row:
            continue
        r, nb, _ = ratio(report[big], name)
        g = exponent(report, sizes, name, len(sizes) - 1)

        def ok(value, limit, strict=False):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return "-"
            return "yes" if (value < limit if strict else value <= limit) else "NO"

        fmt = lambda v, f: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, f)  # noqa: E731
        print(f"{name:14s} {row['seconds']:8.1f} {fmt(row['peak_gb'], '.2f'):>8s} "
              f"{ok(row['peak_gb'], LIMITS['peak_gb'], True):>3s} {fmt(r, '.2f'):>6s} {ok(r, LIMITS['ratio']):>3s} "
              f"{fmt(nb, '.2f'):>7s} {ok(nb, LIMITS['ratio']):>3s} {fmt(g, '.2f'):>8s} {ok(g, LIMITS['exponent']):>3s}")  # fmt: skip


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--work", default="/tmp/cyberobs_scale")
    parser.add_argument("--stages", default=",".join(PLAN), help=f"stages to run, of {','.join(PLAN)}")
    parser.add_argument("--no-dask", action="store_true", help="leave the dask stage out")
    parser.add_argument("--ingest-workers", type=int, default=2, help="ingest_large worker processes")
    parser.add_argument(
        "--reuse-canonical",
        default="",
        help="sizes (e.g. 1e7) whose canonical folder, already written by ingest_large, is reused: "
        "the ingest stage is not re-run (its figures come from the manifest, peak not measured)",
    )
    parser.add_argument("--merge", action="store_true", help="add earlier results of <work>/bench_scale.json")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    stages = [s for s in args.stages.split(",") if s and not (s == "dask" and args.no_dask)]
    unknown = [s for s in stages if s not in PLAN]
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {list(PLAN)}")
    reuse = {int(float(x)) for x in args.reuse_canonical.split(",") if x}
    print(f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GB; load {os.getloadavg()}")
    out = Path(args.work) / "bench_scale.json"
    report: dict[int, dict] = {}
    merged: set = set()
    if args.merge and out.is_file():
        for size, rows in json.loads(out.read_text()).items():
            report[int(size)] = rows
            merged.update((int(size), name) for name in rows)
    for size in sizes:
        work = str(Path(args.work) / f"n{size:.0e}")
        Path(work).mkdir(parents=True, exist_ok=True)
        if not (Path(work) / "dataset" / "truth.json").is_file():
            s, gb, r = run_stage("generate", work, size)
            print(f"[{size:.0e}] generated {r['findings']:,} findings in {s:.0f} s", flush=True)
        rows = report.setdefault(size, {})
        for ours in stages:
            for name in (ours, *PLAN[ours]):
                if name == "ingest" and size in reuse and scale_stages.manifest_ingest(work):
                    s, gb, r = float("nan"), float("nan"), scale_stages.manifest_ingest(work)
                    s = sum(r["phases"].values())
                else:
                    try:
                        kw = {"workers": args.ingest_workers} if name == "ingest" else {}
                        s, gb, r = run_stage(name, work, **kw)
                    except RuntimeError as exc:  # one failed stage does not stop the others
                        s, gb, r = 0.0, 0.0, {"skipped": str(exc)[:400]}
                rows[name] = r if "skipped" in r else {"seconds": s, "peak_gb": gb, **r}
                merged.discard((size, name))
                print(_line(size, name, rows[name]), flush=True)
            text = ratio(rows, ours)[2]
            if text:
                print(f"[{size:.0e}] {text}", flush=True)
            out.write_text(json.dumps({str(k): v for k, v in report.items()}, indent=2, default=str))
    summary(report, merged)
    print(f"load {os.getloadavg()}; written {out}")


if __name__ == "__main__":
    main()
