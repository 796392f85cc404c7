"""National-scale benchmark: the whole pipeline at 10^5, 10^6, 10^7 findings, each heavy stage vs DuckDB.

Usage: ``.venv/bin/python benchmarks/bench_scale.py --sizes 1e5,1e6,1e7 [--no-dask] [--work /tmp/cyberobs_scale]``

Per size, a synthetic dataset (:func:`cyberobs_lib.demo.generate_dataset`, national preset with
``size / 100`` structures; cached under ``--work``) goes through these stages, each in its own child
process; peak memory is the RSS of the child and all its descendants (Dask workers included), sampled
every 20 ms:

* ``ingest`` — :func:`cyberobs_lib.scale.ingest_large` (every contract rule, normalization, enrichment,
  year-partitioned Parquet) vs ``duckdb ingest`` (DuckDB reads the CSVs, joins audits, writes findings
  partitioned by year: no validation, no normalization — a floor);
* ``lifecycle`` — :func:`~cyberobs_lib.lifecycle.match_lifecycle` on the partitioned findings vs the
  same matching in SQL (``bench_lifecycle.DUCKDB_SQL``);
* ``indicators`` — :func:`~cyberobs_lib.studies.indicators.audit_metrics` + ``compute_indicators`` vs
  DuckDB per-audit counts;
* ``dask`` — on a 2-process ``LocalCluster``: :func:`~cyberobs_lib.scale.normalize_dask` (re-normalizing
  the canonical findings' input columns), :func:`~cyberobs_lib.scale.lifecycle_dask` and
  :func:`~cyberobs_lib.scale.audit_metrics_dask`; its lifecycle pairs and audit metrics are compared with
  the pandas stages' (must be identical).

Prints seconds, peak GB and findings/s per stage, the ratio to DuckDB, and the growth exponent of time
between sizes (log time ratio / log size ratio: 1 is linear).
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

TODAY = "2026-01-01"
DUCKDB_MEMORY = "6GB"


# ------------------------------------------------------------------------------------------ stages
def stage_generate(work: str, size: int) -> dict:
    from cyberobs_lib.demo import DemoScale, generate_dataset

    scale = DemoScale.national().with_overrides(establishments=max(size // 100, 50))
    truth = generate_dataset(Path(work) / "dataset", seed=2025, scale=scale)
    return {"findings": truth["counts"]["rows"]["findings"]}


def stage_ingest(work: str) -> dict:
    from cyberobs_lib.scale import ingest_large

    s = ingest_large(Path(work) / "dataset", Path(work) / "canonical", today=TODAY)
    return {"findings": s["rows"]["findings"], "phases": s["seconds"]}


def stage_duckdb_ingest(work: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'")
    d = Path(work) / "dataset"
    out = Path(work) / "duckdb_findings"
    con.execute(f"""COPY (SELECT f.*, a.finess, year(CAST(a.audit_date AS DATE)) AS year
                     FROM read_csv('{d}/findings.csv', all_varchar=true) f
                     JOIN read_csv('{d}/audits.csv', all_varchar=true) a USING (audit_id))
                    TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year), OVERWRITE_OR_IGNORE)""")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0]
    return {"findings": int(n)}


def _canonical(work: str, name: str, columns=None):
    from cyberobs_lib.scale import read_partitioned

    frame = read_partitioned(Path(work) / "canonical", name, columns=columns)
    return frame.drop(columns="year", errors="ignore")


def stage_lifecycle(work: str) -> dict:
    from cyberobs_lib.lifecycle import match_lifecycle

    f = _canonical(work, "findings", ["audit_id", "host", "fingerprint", "severity", "category"])
    res = match_lifecycle(
        f,
        _canonical(work, "audits"),
        hosts=_canonical(work, "hosts"),
        establishments=_canonical(work, "establishments"),
    )
    res.pairs.to_parquet(Path(work) / "pairs_pandas.parquet")
    return {"findings": len(f), "pairs": len(res.pairs), "events": len(res.events)}


def stage_duckdb_lifecycle(work: str) -> dict:
    import duckdb
    from bench_lifecycle import DUCKDB_SQL

    c = Path(work) / "canonical"
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'")
    for name, cols in (("findings", "audit_id, host, fingerprint"), ("audits", "audit_id, finess, audit_date"),
                       ("hosts", "audit_id, host")):  # fmt: skip
        con.execute(f"CREATE VIEW {name} AS SELECT {cols} FROM read_parquet('{c}/{name}/**/*.parquet')")
    out = con.sql(DUCKDB_SQL).to_arrow_table()
    return {
        "findings": int(con.execute("SELECT count(*) FROM findings").fetchone()[0]),
        "pairs": out.num_rows,
    }


def stage_indicators(work: str) -> dict:
    from cyberobs_lib.studies.indicators import audit_metrics, compute_indicators

    f = _canonical(work, "findings", ["audit_id", "severity", "category", "known_exploited"])
    tables = {n: _canonical(work, n) for n in ("establishments", "audits", "protection")}
    t = time.perf_counter()
    metrics = audit_metrics({**tables, "findings": f})
    phases = {"audit_metrics": time.perf_counter() - t}
    metrics.to_parquet(Path(work) / "metrics_pandas.parquet")
    t = time.perf_counter()
    ind = compute_indicators(metrics, n_boot=200)
    phases["compute_indicators"] = time.perf_counter() - t
    return {"findings": len(f), "audits": len(metrics), "indicators": len(ind), "phases": phases}


def stage_duckdb_indicators(work: str) -> dict:
    import duckdb

    c = Path(work) / "canonical"
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'")
    out = con.sql(f"""
      SELECT a.audit_id, a.finess, e.family, a.audit_date, a.hosts_in_scope,
             count(f.audit_id) AS n_findings,
             count(*) FILTER (WHERE f.severity = 'critical') AS n_critical,
             count(*) FILTER (WHERE f.severity = 'high') AS n_high,
             count(*) FILTER (WHERE f.category = 'known_exploited' OR f.known_exploited) AS n_kev,
             bool_or(f.category = 'exposed_remote_admin') AS exposes_remote_admin
      FROM read_parquet('{c}/audits/**/*.parquet') a
      JOIN read_parquet('{c}/establishments/**/*.parquet') e USING (finess)
      LEFT JOIN read_parquet('{c}/findings/**/*.parquet') f USING (audit_id)
      GROUP BY ALL""").to_arrow_table()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{c}/findings/**/*.parquet')").fetchone()[0]
    return {"findings": int(n), "audits": out.num_rows}


def stage_dask(work: str) -> dict:
    import dask
    import dask.dataframe as dd
    import pandas as pd

    from cyberobs_lib.enrich import read_epss, read_kev
    from cyberobs_lib.scale import audit_metrics_dask, client, lifecycle_dask, normalize_dask

    c = Path(work) / "canonical"
    ref = Path(work) / "dataset" / "reference"
    times = {}
    with client(memory_limit="3GB") as cl:
        t = time.perf_counter()
        small = {n: _canonical(work, n) for n in ("establishments", "audits", "hosts", "protection")}
        raw_cols = ["audit_id", "host", "port", "protocol", "service", "vuln_id", "cve", "title", "cvss_vector",
                    "cvss_score", "category", "first_seen", "source_file", "source_row"]  # fmt: skip
        raw = dd.read_parquet(str(c / "findings"), columns=raw_cols, dataset={"partitioning": "hive"})
        kev = read_kev(next(ref.glob("known_exploited_vulnerabilities*.json")))
        epss = read_epss(next(ref.glob("epss*.csv.gz")))
        aud = small["audits"][["audit_id", "finess", "audit_date"]]
        n = normalize_dask(raw, audits=aud, kev=kev, epss=epss).map_partitions(len).compute().sum()
        times["normalize"] = time.perf_counter() - t
        t = time.perf_counter()
        f = dd.read_parquet(str(c / "findings"), columns=["audit_id", "host", "fingerprint", "finess", "severity",
                                                           "category"])  # fmt: skip
        hosts = dd.from_pandas(small["hosts"], npartitions=8)
        events, pairs = lifecycle_dask(f, small["audits"], hosts=hosts,
                                       establishments=small["establishments"], buckets=16)  # fmt: skip
        n_events, pairs = dask.compute(events.map_partitions(len), pairs)
        times["lifecycle"] = time.perf_counter() - t
        t = time.perf_counter()
        fm = dd.read_parquet(
            str(c / "findings"), columns=["audit_id", "severity", "category", "known_exploited"]
        )
        tabs = {k: v for k, v in small.items() if k != "hosts"}
        metrics = audit_metrics_dask(fm, tabs)
        times["metrics"] = time.perf_counter() - t
        workers = len(cl.scheduler_info()["workers"])
    ref_pairs = pd.read_parquet(Path(work) / "pairs_pandas.parquet")
    ref_metrics = pd.read_parquet(Path(work) / "metrics_pandas.parquet")
    key = ["audit_from"]
    same_pairs = _same(pairs, ref_pairs, key)
    same_metrics = _same(metrics, ref_metrics, ["audit_id"])
    return {"findings": int(n), "events": int(n_events.sum()), "workers": workers, "phases": times,
            "pairs_identical": same_pairs, "metrics_identical": same_metrics}  # fmt: skip


def _same(a, b, keys) -> bool:
    def v(f):
        o = f.astype(object).where(f.notna(), None)
        return o.sort_values(keys).reset_index(drop=True)

    try:
        import pandas as pd

        pd.testing.assert_frame_equal(v(a), v(b[list(a.columns)]))
        return True
    except AssertionError as exc:
        print(f"    difference: {str(exc)[:300]}", flush=True)
        return False


# ------------------------------------------------------------------------------------------ harness
def _child(name: str, args: tuple, queue) -> None:
    try:
        import dask.dataframe  # noqa: F401  imports are not the stage's work: load them before the clock
        import duckdb  # noqa: F401

        import cyberobs_lib.lifecycle  # noqa: F401
        import cyberobs_lib.scale  # noqa: F401
        import cyberobs_lib.studies.indicators  # noqa: F401

        start = time.perf_counter()
        result = globals()[f"stage_{name}"](*args)
        queue.put(("ok", {**result, "seconds": time.perf_counter() - start}))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_stage(name: str, *args) -> tuple[float, float, dict]:
    """Run a stage in a spawned child: seconds of its work (imports excluded), peak GB of the child's
    process tree (imports included), its result."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, queue))
    proc.start()
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
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


PLAN = [
    ("ingest", "duckdb_ingest"),
    ("lifecycle", "duckdb_lifecycle"),
    ("indicators", "duckdb_indicators"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--work", default="/tmp/cyberobs_scale")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument(
        "--reuse-canonical",
        default="",
        help="sizes (e.g. 1e7) whose canonical folder, already written by ingest_large, is reused: "
        "the ingest stage is not re-run (its figures come from the manifest, peak not measured)",
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GB; load {os.getloadavg()}")
    report: dict[int, dict] = {}
    for size in sizes:
        work = str(Path(args.work) / f"n{size:.0e}")
        Path(work).mkdir(parents=True, exist_ok=True)
        if not (Path(work) / "dataset" / "truth.json").is_file():
            s, gb, r = run_stage("generate", work, size)
            print(f"[{size:.0e}] generated {r['findings']:,} findings in {s:.0f} s", flush=True)
        rows = report.setdefault(size, {})
        reuse = {int(float(x)) for x in args.reuse_canonical.split(",") if x}
        for ours, base in PLAN:
            for name in (ours, base):
                manifest = Path(work) / "canonical" / "_manifest.json"
                if name == "ingest" and size in reuse and manifest.is_file():
                    ing = json.loads(manifest.read_text())["ingest"]
                    s, gb, r = sum(ing["seconds"].values()), float("nan"), {"findings": ing["rows"]["findings"],
                                                                            "phases": ing["seconds"]}  # fmt: skip
                else:
                    s, gb, r = run_stage(name, work)
                rows[name] = {"seconds": s, "peak_gb": gb, **r}
                extra = f" phases {r['phases']}" if "phases" in r else ""
                print(f"[{size:.0e}] {name:18s} {s:8.1f} s  peak {gb:5.2f} GB  {r['findings']:>11,} findings"
                      f"  {r['findings'] / s:>10,.0f}/s{extra}", flush=True)  # fmt: skip
            print(
                f"[{size:.0e}] {ours} / duckdb = {rows[ours]['seconds'] / rows[base]['seconds']:.2f}",
                flush=True,
            )
        if not args.no_dask:
            s, gb, r = run_stage("dask", work)
            rows["dask"] = {"seconds": s, "peak_gb": gb, **r}
            print(f"[{size:.0e}] dask ({r['workers']} workers) {s:8.1f} s  peak {gb:5.2f} GB (all processes)  "
                  f"phases { {k: round(v, 1) for k, v in r['phases'].items()} }  pairs identical "
                  f"{r['pairs_identical']}, metrics identical {r['metrics_identical']}", flush=True)  # fmt: skip
    print("\nsummary (seconds, peak GB; growth exponent of time vs the previous size: 1 = linear)")
    prev = None
    for size in sizes:
        line = [f"{size:>10.0e}"]
        for name, row in report[size].items():
            n = row["findings"]
            growth = ""
            if prev is not None and name in report[prev]:
                p = report[prev][name]
                growth = f" x^{math.log(row['seconds'] / p['seconds']) / math.log(n / p['findings']):.2f}"
            line.append(f"{name} {row['seconds']:.1f}s {row['peak_gb']:.2f}GB{growth}")
        print(" | ".join(line))
        prev = size
    out = Path(args.work) / "bench_scale.json"
    out.write_text(json.dumps({str(k): v for k, v in report.items()}, indent=2, default=str))
    print(f"written {out}")


if __name__ == "__main__":
    main()
