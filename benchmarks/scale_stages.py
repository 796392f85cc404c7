"""Pipeline stages of ``bench_scale`` (generate, ingest, lifecycle, indicators, Dask) and their DuckDB baselines.

Each ``stage_<name>(work, **options)`` runs in its own child process (``bench_scale.run_stage``) on the
folder ``work`` (``dataset/``, ``canonical/``) and returns a dict: ``findings`` (the size), optional
``phases`` (seconds), ``compare_seconds`` (the part of the stage its baseline does, when it does not do
all of it), ``untimed`` (seconds spent writing reference files for later comparisons, subtracted from the
stage time), ``skipped`` (reason: nothing measured) and stage-specific counts and checks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

TODAY = "2026-01-01"
DUCKDB_MEMORY = "6GB"
DUCKDB_THREADS = 2
HERE = Path(__file__).resolve().parent
#: Columns the indicators read (the rest of each table is never decoded).
EST_COLS = ["finess", "family", "legal_status", "region", "beds"]
FINDINGS_METRICS = ["audit_id", "severity", "category", "known_exploited"]


def _canonical(work: str, name: str, columns=None):
    from cyberobs_lib.scale import read_partitioned

    frame = read_partitioned(Path(work) / "canonical", name, columns=columns)
    return frame.drop(columns="year", errors="ignore")


def duck(*, threads: int = DUCKDB_THREADS):
    """A DuckDB connection with the benchmark's memory limit and threads (the machine's 2 cores)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'; SET threads={threads}")
    return con


def parquet(work: str, name: str) -> str:
    """``read_parquet`` of one canonical table (hive partitions: a ``year`` column is added)."""
    return f"read_parquet('{Path(work) / 'canonical' / name}/**/*.parquet', hive_partitioning=true)"


def create_metrics(con, work: str) -> None:
    """Table ``metrics``: what :func:`~cyberobs_lib.studies.indicators.audit_metrics` computes, in SQL.

    One row per audit of a known establishment: its establishment's family, status, region and log(beds),
    ``year`` of ``audit_date``, the finding counts and flags, ``no_protection`` (NULL: unknown) and
    ``findings_per_host`` (NULL without hosts in scope).
    """
    con.execute(f"""
      CREATE OR REPLACE TEMP TABLE metrics AS
      WITH counts AS (
        SELECT audit_id, count(*) AS n_findings,
               count(*) FILTER (WHERE severity = 'critical') AS n_critical,
               count(*) FILTER (WHERE severity = 'high') AS n_high,
               count(*) FILTER (WHERE category = 'known_exploited' OR coalesce(known_exploited, false)) AS n_kev,
               bool_or(category = 'exposed_remote_admin') AS remote
        FROM {parquet(work, "findings")} GROUP BY audit_id)
      SELECT a.audit_id, a.finess, e.family, e.legal_status, e.region, e.beds,
             CASE WHEN e.beds > 0 THEN ln(e.beds) END AS log_beds, a.audit_date,
             year(a.audit_date) AS year, a.hosts_in_scope,
             coalesce(c.n_findings, 0) AS n_findings, coalesce(c.n_critical, 0) AS n_critical,
             coalesce(c.n_high, 0) AS n_high, coalesce(c.n_critical, 0) + coalesce(c.n_high, 0) AS n_crit_high,
             coalesce(c.n_kev, 0) AS n_kev, coalesce(c.n_critical, 0) > 0 AS has_critical,
             coalesce(c.remote, false) AS exposes_remote_admin, coalesce(c.n_kev, 0) > 0 AS has_kev,
             p.no_protection,
             CASE WHEN a.hosts_in_scope > 0 THEN coalesce(c.n_findings, 0) / a.hosts_in_scope END
               AS findings_per_host
      FROM (SELECT audit_id, finess, audit_date, hosts_in_scope FROM {parquet(work, "audits")}) a
      JOIN (SELECT finess, family, legal_status, region, beds FROM {parquet(work, "establishments")}) e
        USING (finess)
      LEFT JOIN counts c USING (audit_id)
      LEFT JOIN (SELECT audit_id, no_protection FROM {parquet(work, "protection")}) p USING (audit_id)""")


#: One audit per establishment and period (its first), as ``select_audits`` per year and over all years.
CHOSEN_SQL = """
  SELECT CAST(year AS VARCHAR) AS period, * FROM metrics
  QUALIFY row_number() OVER (PARTITION BY finess, year ORDER BY audit_date, audit_id) = 1
  UNION ALL
  SELECT 'all' AS period, * FROM metrics
  QUALIFY row_number() OVER (PARTITION BY finess ORDER BY audit_date, audit_id) = 1"""
SHARES = ("no_protection", "has_critical", "exposes_remote_admin", "has_kev")
Z = 1.959963984540054  # normal quantile 0.975


def _wilson(x: str, n: str, sign: str) -> str:
    """Wilson score limit of x successes in n, as a SQL expression (NULL when n = 0)."""
    p, z2 = f"({x}::DOUBLE / {n})", Z * Z
    return (f"CASE WHEN {n} > 0 THEN (({p} + {z2} / (2.0 * {n})) {sign} {Z} * sqrt({p} * (1 - {p}) / {n}"
            f" + {z2} / (4.0 * {n} * {n}))) / (1 + {z2} / {n}) END")  # fmt: skip


def indicators_sql() -> str:
    """Shares with Wilson limits, findings per host (ratio of sums) and median critical+high per (period,
    family) and pooled, with the audits per cell, from the table ``chosen`` (:data:`CHOSEN_SQL`):
    ``compute_indicators`` minus its bootstrap (:data:`BOOTSTRAP_SQL`) and exact (gamma / binomial
    quantile) limits."""
    shares = ",\n".join(f"count({s}) AS n_{s}, count(*) FILTER (WHERE {s}) AS x_{s}" for s in SHARES)
    grp = "CASE WHEN grouping(family) = 1 THEN 'all' ELSE family END"
    rows = [
        f"SELECT '{s}' AS indicator, period, grp, n_{s} AS n_establishments, "
        f"CASE WHEN n_{s} > 0 THEN x_{s}::DOUBLE / n_{s} END AS value, "
        f"{_wilson(f'x_{s}', f'n_{s}', '-')} AS ci_low, {_wilson(f'x_{s}', f'n_{s}', '+')} AS ci_high FROM cells"
        for s in SHARES
    ]
    rows.append("SELECT 'findings_per_host', period, grp, n_rate, findings::DOUBLE / hosts, NULL, NULL "
                "FROM cells WHERE n_rate > 0")  # fmt: skip
    rows.append("SELECT 'median_crit_high', period, grp, n, median_crit_high, NULL, NULL FROM cells")
    union = "\n  UNION ALL ".join(rows)
    return f"""
    WITH cells AS (
      SELECT period, {grp} AS grp, count(*) AS n, {shares},
             count(*) FILTER (WHERE hosts_in_scope > 0) AS n_rate,
             sum(n_findings) FILTER (WHERE hosts_in_scope > 0) AS findings,
             sum(hosts_in_scope) FILTER (WHERE hosts_in_scope > 0) AS hosts,
             median(n_crit_high) AS median_crit_high
      FROM chosen GROUP BY GROUPING SETS ((period, family), (period))
      HAVING grouping(family) = 1 OR family IS NOT NULL),
    audits_per_cell AS (
      SELECT CAST(year AS VARCHAR) AS period, {grp} AS grp, count(*) AS n_audits
      FROM metrics GROUP BY GROUPING SETS ((year, family), (year)) HAVING grouping(family) = 1 OR family IS NOT NULL
      UNION ALL
      SELECT 'all', {grp}, count(*) FROM metrics GROUP BY GROUPING SETS ((family), ())
      HAVING grouping(family) = 1 OR family IS NOT NULL)
    SELECT i.indicator, i.grp AS "group", i.period, i.n_establishments, c.n_audits, i.value, i.ci_low, i.ci_high
    FROM ({union}) i JOIN audits_per_cell c USING (period, grp)"""


#: Percentile bootstrap of findings per host per cell, as ``compute_indicators``: the establishments
#: with hosts in scope of a cell resampled with replacement 200 times (same work, other random numbers).
BOOTSTRAP_SQL = """
  WITH stacked AS (
    SELECT period, family AS grp, finess, n_findings, hosts_in_scope FROM chosen
    WHERE family IS NOT NULL AND hosts_in_scope > 0
    UNION ALL SELECT period, 'all', finess, n_findings, hosts_in_scope FROM chosen WHERE hosts_in_scope > 0),
  units AS (SELECT period, grp, n_findings AS y, hosts_in_scope AS e,
                   row_number() OVER (PARTITION BY period, grp ORDER BY finess) - 1 AS k,
                   count(*) OVER (PARTITION BY period, grp) AS n FROM stacked),
  cells AS (SELECT DISTINCT period, grp, n FROM units),
  draws AS (SELECT period, grp, n, b, floor(random() * n)::BIGINT AS k
            FROM cells, range(200) r(b), LATERAL (SELECT unnest(range(n)))),
  reps AS (SELECT d.period, d.grp, d.b, any_value(d.n) AS n, sum(u.y)::DOUBLE / sum(u.e) AS ratio
           FROM draws d JOIN units u USING (period, grp, k) GROUP BY ALL)
  SELECT period, grp AS "group", CASE WHEN any_value(n) >= 2 THEN quantile_cont(ratio, 0.025) END AS boot_low,
         CASE WHEN any_value(n) >= 2 THEN quantile_cont(ratio, 0.975) END AS boot_high
  FROM reps GROUP BY ALL"""


# ------------------------------------------------------------------------------------------ stages
def stage_generate(work: str, size: int) -> dict:
    from cyberobs_lib.demo import DemoScale, generate_dataset

    scale = DemoScale.national().with_overrides(establishments=max(size // 100, 50))
    truth = generate_dataset(Path(work) / "dataset", seed=2025, scale=scale)
    return {"findings": truth["counts"]["rows"]["findings"]}


def stage_ingest(work: str, workers: int = 2) -> dict:
    from cyberobs_lib.scale import ingest_large

    s = ingest_large(Path(work) / "dataset", Path(work) / "canonical", today=TODAY, workers=workers)
    return {"findings": s["rows"]["findings"], "phases": s["seconds"], "workers": workers}


def stage_duckdb_ingest_same(work: str) -> dict:
    """``benchmarks/duckdb_ingest.py`` (same work as ``ingest_large``: rules, rejects, normalization,
    KEV/EPSS joins, partitioned Parquet); skipped while that file does not exist."""
    if not (HERE / "duckdb_ingest.py").is_file():
        return {"skipped": "benchmarks/duckdb_ingest.py not there yet"}
    from duckdb_ingest import duckdb_ingest

    s = duckdb_ingest(Path(work) / "dataset", Path(work) / "duckdb_canonical", today=TODAY,
                      memory_limit=DUCKDB_MEMORY, threads=DUCKDB_THREADS)  # fmt: skip
    return {"findings": s["rows"]["findings"], "phases": s["seconds"]}


def stage_duckdb_load(work: str) -> dict:
    """The floor: DuckDB reads the CSVs, joins audits, writes findings partitioned by year (no rule)."""
    con = duck()
    d = Path(work) / "dataset"
    out = Path(work) / "duckdb_findings"
    con.execute(f"""COPY (SELECT f.*, a.finess, year(CAST(a.audit_date AS DATE)) AS year
                     FROM read_csv('{d}/findings.csv', all_varchar=true) f
                     JOIN read_csv('{d}/audits.csv', all_varchar=true) a USING (audit_id))
                    TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year), OVERWRITE_OR_IGNORE)""")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchall()[0][0]
    return {"findings": int(n)}


def stage_lifecycle(work: str) -> dict:
    from cyberobs_lib.lifecycle import match_lifecycle

    f = _canonical(work, "findings", ["audit_id", "host", "fingerprint", "severity", "category"])
    res = match_lifecycle(
        f,
        _canonical(work, "audits", ["audit_id", "finess", "audit_date"]),
        hosts=_canonical(work, "hosts", ["audit_id", "host"]),
        establishments=_canonical(work, "establishments", EST_COLS),
    )
    t = time.perf_counter()
    res.pairs.to_parquet(Path(work) / "pairs_pandas.parquet")
    return {"findings": len(f), "pairs": len(res.pairs), "events": len(res.events),
            "untimed": time.perf_counter() - t}  # fmt: skip


def stage_duckdb_lifecycle(work: str) -> dict:
    from bench_lifecycle import DUCKDB_SQL

    con = duck()
    for name, cols in (("findings", "audit_id, host, fingerprint"), ("audits", "audit_id, finess, audit_date"),
                       ("hosts", "audit_id, host")):  # fmt: skip
        con.execute(f"CREATE VIEW {name} AS SELECT {cols} FROM {parquet(work, name)}")
    out = con.sql(DUCKDB_SQL).to_arrow_table()
    return {
        "findings": int(con.execute("SELECT count(*) FROM findings").fetchall()[0][0]),
        "pairs": out.num_rows,
    }


def stage_indicators(work: str) -> dict:
    """``audit_metrics`` + ``compute_indicators(n_boot=200)`` on the store as the notebooks read it; the bootstrap
    (the library's ``_ratio_bootstrap`` calls, timed through a wrapper) is its own phase."""
    from cyberobs_lib.store import read_manifest
    from cyberobs_lib.studies import indicators
    from cyberobs_lib.studies.data import METRICS_FINDINGS, load_study_data
    from cyberobs_lib.studies.indicators import audit_metrics, compute_indicators

    phases, boot, inner = {}, [0.0], indicators._ratio_bootstrap

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = inner(*args, **kwargs)
        boot[0] += time.perf_counter() - start
        return out

    t = time.perf_counter()
    # As the notebooks: the store opened lazily; audit_metrics reads the columns it needs of the small
    # tables and counts the findings in the store (they are never read into pandas).
    data = load_study_data(Path(work) / "canonical", columns={"findings": list(METRICS_FINDINGS)})
    phases["read"] = time.perf_counter() - t
    t = time.perf_counter()
    metrics = audit_metrics(data)
    phases["audit_metrics"] = time.perf_counter() - t
    assert "findings" not in data.tables.loaded()
    t = time.perf_counter()
    indicators._ratio_bootstrap = timed
    try:
        ind = compute_indicators(metrics, n_boot=200)
    finally:
        indicators._ratio_bootstrap = inner
    phases["indicators"] = time.perf_counter() - t - boot[0]
    phases["bootstrap"] = boot[0]
    t = time.perf_counter()
    metrics.to_parquet(Path(work) / "metrics_pandas.parquet")
    ind.to_parquet(Path(work) / "indicators_pandas.parquet")
    n = sum(read_manifest(Path(work) / "canonical")["tables"]["findings"]["rows"].values())
    return {"findings": n, "audits": len(metrics), "indicators": len(ind),
            "phases": phases, "untimed": time.perf_counter() - t}  # fmt: skip


def stage_duckdb_indicators(work: str) -> dict:
    """Per-audit counts and flags (``create_metrics``); the first audit of each establishment per
    period (``chosen``); per (period, family) and pooled: the four shares with Wilson limits, findings
    per host, the median of critical+high, audits per cell; then the percentile bootstrap of findings
    per host (200 resamples of establishments per cell, its own phase).

    Not in the baseline: the exact Poisson and order-statistic limits (no gamma / binomial quantile in
    DuckDB). The values it shares with the pandas stage are compared with ``indicators_pandas.parquet``
    (bootstrap limits: other random numbers, so within 5 %).
    """
    con = duck()
    t = time.perf_counter()
    create_metrics(con, work)
    phases = {"audit_metrics": time.perf_counter() - t}
    t = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE chosen AS {CHOSEN_SQL}")
    out = con.sql(indicators_sql()).df()
    phases["indicators"] = time.perf_counter() - t
    t = time.perf_counter()
    con.execute("SELECT setseed(0.2025)").fetchall()
    boot = con.sql(BOOTSTRAP_SQL).df()
    phases["bootstrap"] = time.perf_counter() - t
    n = con.execute(f"SELECT count(*) FROM {parquet(work, 'findings')}").fetchall()[0][0]
    t = time.perf_counter()
    out = out.merge(
        boot.assign(indicator="findings_per_host"), on=["indicator", "period", "group"], how="left"
    )
    rate = out["indicator"] == "findings_per_host"
    out.loc[rate, "ci_low"], out.loc[rate, "ci_high"] = out.loc[rate, "boot_low"], out.loc[rate, "boot_high"]
    same, gap = same_indicators(
        out.drop(columns=["boot_low", "boot_high"]), Path(work) / "indicators_pandas.parquet"
    )
    return {"findings": int(n), "indicators": len(out), "phases": phases, "same_as_pandas": same,
            "bootstrap_vs_pandas": gap, "untimed": time.perf_counter() - t}  # fmt: skip


def same_indicators(duck_out, reference: Path) -> tuple[str, str]:
    """Compare the baseline's cells with the pandas stage's: counts exactly, values and Wilson limits to
    1e-9 (``"yes"`` or what differs); the bootstrap limits (other random numbers) as the largest gap
    between the two runs' limits over the pandas interval's half-width, in cells of 30 establishments
    or more (Monte Carlo noise of 200 replicates: a few tenths)."""
    import numpy as np
    import pandas as pd

    if not reference.is_file():
        return "not compared (run the indicators stage first)", ""
    ref = pd.read_parquet(reference)
    keys = ["indicator", "group", "period"]
    m = ref.merge(duck_out, on=keys, how="outer", suffixes=("", "_duck"), indicator=True)
    if not (m["_merge"] == "both").all():
        return f"different cells: {int((m['_merge'] != 'both').sum())}", ""
    bad = [col for col in ("n_establishments", "n_audits") if not (m[col] == m[f"{col}_duck"]).all()]
    wilson = m["ci_method"] == "wilson"
    for col, rows in (("value", slice(None)), ("ci_low", wilson), ("ci_high", wilson)):
        a, b = m.loc[rows, col].astype(float), m.loc[rows, f"{col}_duck"].astype(float)
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
            bad.append(col)
    boot = m[m["ci_method"].str.startswith("bootstrap")]
    if not (boot["ci_low"].isna() == boot["ci_low_duck"].isna()).all():
        bad.append("bootstrap limits defined for other cells")
    big = boot[boot["n_establishments"] >= 30]
    half = (big["ci_high"] - big["ci_low"]) / 2
    gap = np.maximum((big["ci_low"] - big["ci_low_duck"]).abs(), (big["ci_high"] - big["ci_high_duck"]).abs())
    worst = f"max gap {float((gap / half).max()):.2f} half-widths over {len(big)} cells" if len(big) else ""
    return ("yes" if not bad else f"no: {bad}"), worst


def stage_dask(work: str) -> dict:
    """The Dask path on a 2-process ``LocalCluster``: ``ingest_large(client=…)`` (rules, normalization,
    enrichment, Parquet written by the workers) compared table by table with the pandas stage's store,
    then :func:`lifecycle_dask` and :func:`audit_metrics_dask` on the Dask store compared with the pandas
    lifecycle pairs and audit metrics. (:func:`normalize_dask` alone, on a frame already in Dask, is tested
    equal in ``tests/test_scale.py``; the ingest covers normalization here.)"""
    import dask
    import dask.dataframe as dd

    from cyberobs_lib.scale import audit_metrics_dask, client, ingest_large, lifecycle_dask, read_manifest
    from cyberobs_lib.store import open_partitioned, read_partitioned

    c = Path(work) / "canonical_dask"
    times = {}
    with client(memory_limit="3GB") as cl:
        t = time.perf_counter()
        s = ingest_large(Path(work) / "dataset", c, client=cl, today=TODAY)
        n = s["rows"]["findings"]
        times["ingest"] = time.perf_counter() - t
        same_store = "not compared (run the ingest stage first)"
        pandas_store = Path(work) / "canonical"
        if (pandas_store / "_manifest.json").is_file():
            names = read_manifest(pandas_store)["tables"]
            differ = [
                x
                for x in names
                if not open_partitioned(pandas_store, x).to_table().equals(open_partitioned(c, x).to_table())
            ]
            same_store = "yes" if not differ else f"NO: {differ}"  # fmt: skip
        t = time.perf_counter()

        def small(name):
            return read_partitioned(c, name).drop(columns="year", errors="ignore")

        tabs = {n_: small(n_) for n_ in ("establishments", "audits", "hosts", "protection")}
        f = dd.read_parquet(str(c / "findings"), columns=["audit_id", "host", "fingerprint", "finess", "severity",
                                                           "category"])  # fmt: skip
        hosts = dd.from_pandas(tabs["hosts"], npartitions=8)
        events, pairs = lifecycle_dask(f, tabs["audits"], hosts=hosts,
                                       establishments=tabs["establishments"], buckets=16)  # fmt: skip
        n_events, pairs = dask.compute(events.map_partitions(len), pairs)
        times["lifecycle"] = time.perf_counter() - t
        t = time.perf_counter()
        fm = dd.read_parquet(str(c / "findings"), columns=FINDINGS_METRICS)
        metrics = audit_metrics_dask(fm, {k: v for k, v in tabs.items() if k != "hosts"})
        times["metrics"] = time.perf_counter() - t
        workers = len(cl.scheduler_info()["workers"])
    return {"findings": int(n), "events": int(n_events.sum()), "workers": workers, "phases": times,
            "store_identical": same_store,
            "pairs_identical": _same(pairs, Path(work) / "pairs_pandas.parquet", ["audit_from"]),
            "metrics_identical": _same(metrics, Path(work) / "metrics_pandas.parquet", ["audit_id"])}  # fmt: skip


def _same(a, reference: Path, keys) -> str:
    import pandas as pd

    if not reference.is_file():
        return "not compared (run lifecycle and indicators first)"
    b = pd.read_parquet(reference)

    def v(f):
        o = f.astype(object).where(f.notna(), None)
        return o.sort_values(keys).reset_index(drop=True)

    try:
        pd.testing.assert_frame_equal(v(a), v(b[list(a.columns)]))
        return "yes"
    except AssertionError as exc:
        return f"no: {str(exc)[:300]}"


def manifest_ingest(work: str) -> dict | None:
    """Figures of the ingest that wrote ``canonical/`` (``--reuse-canonical``), from its manifest."""
    manifest = Path(work) / "canonical" / "_manifest.json"
    if not manifest.is_file():
        return None
    ing = json.loads(manifest.read_text())["ingest"]
    return {"findings": ing["rows"]["findings"], "phases": ing["seconds"]}
