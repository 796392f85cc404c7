"""Benchmark generating and ingesting a national-size dataset, against DuckDB loading the same CSVs.

Usage: ``.venv/bin/python benchmarks/bench_pipeline.py [--establishments 10000] [--years 2021,...,2025]``

Stages, each in its own child process so that its peak RSS (``ru_maxrss``) is its own:

1. ``generate`` — :func:`cyberobs_lib.demo.generate_dataset` (national preset by default: 10,000
   establishments over five years, about a million findings);
2. ``ingest`` — :func:`cyberobs_lib.ingest.ingest_dataset` + :func:`write_canonical`: tolerant reading,
   every contract rule, FINESS/category registry, CVSS scoring, CVE normalization, fingerprints,
   duplicate collapse, KEV/EPSS enrichment, protection status, atomic Parquet;
3. ``duckdb`` baseline — DuckDB reads the same six CSVs (``read_csv_auto``), joins findings to audits and
   writes them to Parquet: the floor of "CSV in, Parquet out" without any validation or normalization.

Prints seconds, peak RSS and findings per second per stage, and the ratio ingest / DuckDB.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _generate(out: str, establishments: int, years: tuple[int, ...], queue) -> None:
    from cyberobs_lib.demo import DemoScale, generate_dataset

    scale = DemoScale.national().with_overrides(establishments=establishments, years=years)
    start = time.perf_counter()
    truth = generate_dataset(Path(out), seed=2025, scale=scale)
    queue.put(
        (
            time.perf_counter() - start,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            truth["counts"]["rows"]["findings"],
        )
    )


def _ingest(dataset: str, out: str, queue) -> None:
    from cyberobs_lib.ingest import ingest_dataset, write_canonical

    start = time.perf_counter()
    result = ingest_dataset(Path(dataset), today="2026-01-01")
    write_canonical(result, Path(out))
    queue.put(
        (
            time.perf_counter() - start,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            len(result.tables["findings"]),
        )
    )


def _duckdb(dataset: str, out: str, queue) -> None:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    for name in ("establishments", "audits", "hosts", "findings", "controls", "incidents"):
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv_auto('{dataset}/{name}.csv', all_varchar=true)"
        )
    con.execute(f"""COPY (SELECT f.*, a.finess, a.audit_date FROM findings f JOIN audits a USING (audit_id))
                    TO '{out}/findings.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    n = con.execute("SELECT count(*) FROM findings").fetchone()[0]
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n))


def _run(target, *args) -> tuple[float, float, int]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    seconds, rss_kb, rows = queue.get()
    proc.join()
    return seconds, rss_kb / 1024**2, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=10_000)
    parser.add_argument("--years", default="2021,2022,2023,2024,2025")
    args = parser.parse_args()
    years = tuple(int(y) for y in args.years.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    dataset, canonical, duck = work / "dataset", work / "canonical", work / "duckdb"
    duck.mkdir()
    rows = {}
    for stage, target, params in (
        ("generate", _generate, (str(dataset), args.establishments, years)),
        ("ingest", _ingest, (str(dataset), str(canonical))),
        ("duckdb", _duckdb, (str(dataset), str(duck))),
    ):
        seconds, gb, n = _run(target, *params)
        rows[stage] = seconds
        print(
            f"{stage:9s} {seconds:8.1f} s  peak RSS {gb:5.2f} GB  {n:>10,} findings  {n / seconds:>10,.0f} findings/s",
            flush=True,
        )
    print(
        f"ratio ingest / duckdb load = {rows['ingest'] / rows['duckdb']:.1f}x "
        "(the baseline validates and normalizes nothing)"
    )


if __name__ == "__main__":
    main()
