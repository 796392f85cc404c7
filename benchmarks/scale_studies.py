"""Study stages of ``bench_scale`` (cohorts, longitudinal, the annual run) and their DuckDB baselines.

Same conventions as :mod:`scale_stages`. The cohort and longitudinal stages run what notebooks 20 and 10
run, with their default parameters, on the canonical store (read as the notebooks read it:
:func:`cyberobs_lib.studies.data.load_study_data` with the findings columns they use). Each has two
phases: ``data`` (reading, per-audit metrics and the rows the statistics start from) and ``stats`` (the
tests, models and survival estimates, on per-establishment rows or per-episode rows). The DuckDB
baselines do the ``data`` part only, so the ratio compares ``data`` with them (``compare_seconds``); the
``stats`` phase is the same library code whatever produced its input, and is reported alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from scale_stages import create_metrics, duck, parquet

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ["EHPAD", "CH", "CHU/CHR", "Private clinic (MCO)"]  # notebook 20's defaults
SHARES = ["no_protection", "has_critical", "exposes_remote_admin", "has_kev"]
NUMERIC = ["findings_per_host", "n_crit_high"]
DEADLINES = {"critical": 7, "high": 30, "medium": 90, "low": 120}
MIN_DAYS = 90


def _timer():
    phases, last = {}, [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - last[0]
        last[0] = now

    return phases, lap


def _load(work: str, findings_columns, tables) -> tuple:
    """The study data as the notebooks load it, ``tables`` read now (the loader is lazy: the others are
    read when the study first needs them), and the number of findings (from the store's manifest)."""
    from cyberobs_lib.store import read_manifest
    from cyberobs_lib.studies.data import load_study_data

    data = load_study_data(Path(work) / "canonical", columns={"findings": list(findings_columns)})
    rows = {name: len(getattr(data, name)) for name in tables}
    rows["findings"] = sum(read_manifest(Path(work) / "canonical")["tables"]["findings"]["rows"].values())
    return data, rows


def _write(work: str, name: str, summary: dict) -> None:
    (Path(work) / f"{name}_pandas.json").write_text(json.dumps(summary, indent=1, default=float))


def _compare(work: str, name: str, mine: dict) -> str:
    """Compare a baseline's summary with the pandas stage's (integers exact, floats to 1e-9)."""
    ref = Path(work) / f"{name}_pandas.json"
    if not ref.is_file():
        return f"not compared (run the {name} stage first)"
    want = json.loads(ref.read_text())
    bad = [k for k in want if not _close(want[k], mine.get(k))]
    return (
        "yes"
        if not bad
        else f"no: {bad} (pandas {[want[k] for k in bad]}, duckdb {[mine.get(k) for k in bad]})"
    )


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


# ------------------------------------------------------------------------------------------ cohorts
def stage_cohorts(work: str) -> dict:
    """Notebook 20 (period 0: first audit of each establishment over all years; four families)."""
    from cyberobs_lib.studies import cohorts
    from cyberobs_lib.studies.data import METRICS_FINDINGS
    from cyberobs_lib.studies.indicators import audit_metrics, compute_indicators, coverage, select_audits

    phases, lap = _timer()
    # As notebook 20: audit_metrics reads the columns it needs of audits and protection, and counts the
    # findings in the store without reading them into pandas.
    data, rows = _load(work, METRICS_FINDINGS, ("establishments",))
    lap("read")
    m = audit_metrics(data)
    lap("audit_metrics")
    assert "findings" not in data.tables.loaded()
    chosen = select_audits(m)
    chosen = chosen[chosen["family"].isin(FAMILIES)]
    lap("select")
    kw = {"families": FAMILIES, "reference": "CH"}
    compute_indicators(m, groups=FAMILIES, n_boot=1000, seed=2025)
    coverage(data.establishments, m, groups=FAMILIES)
    lap("stats: indicators")
    cohorts.compare_families(m, metrics=[*SHARES, *NUMERIC], n_boot=1000, seed=2025, **kw)
    lap("stats: compare_families")
    cohorts.adjusted_rate_ratios(m, outcomes=("n_findings", "n_crit_high"), covariates=["legal_status", "region",
                                 "log_beds"], **kw)  # fmt: skip
    cohorts.adjusted_odds_ratios(m, outcomes=SHARES, covariates=["legal_status", "log_beds"], **kw)
    lap("stats: models")
    cohorts.family_trends(m, families=FAMILIES, proportions=SHARES)
    lap("stats: trends")
    t = time.perf_counter()
    summary = {"establishments": len(chosen)}
    for fam, g in chosen.groupby("family", observed=True):  # four families
        for s in SHARES:
            known = g[s].dropna().astype(bool)
            summary[f"{s}:{fam}"] = {"n": len(known), "x": int(known.sum())}
    _write(work, "cohorts", summary)
    data_part = phases["read"] + phases["audit_metrics"] + phases["select"]
    return {"findings": rows["findings"], "establishments": len(chosen), "compare_seconds": data_part,
            "phases": phases, "untimed": time.perf_counter() - t}  # fmt: skip


def stage_duckdb_cohorts(work: str) -> dict:
    """The data side of notebook 20 in DuckDB: per-audit metrics, the first audit of each establishment
    of the four families with its covariates (fetched as the frame the models would fit), and the
    per-family counts the tests start from: shares (successes / known), per-family rank sums of the
    numeric metrics (Kruskal–Wallis), per family and year counts (trends)."""
    con = duck()
    phases, lap = _timer()
    create_metrics(con, work)
    lap("audit_metrics")
    fams = ", ".join(f"'{f}'" for f in FAMILIES)
    con.execute(f"""CREATE TEMP TABLE chosen AS SELECT * FROM metrics WHERE family IN ({fams})
                    QUALIFY row_number() OVER (PARTITION BY finess ORDER BY audit_date, audit_id) = 1""")
    frame = con.sql("SELECT family, legal_status, region, log_beds, hosts_in_scope, n_findings, n_crit_high, "
                    f"findings_per_host, {', '.join(SHARES)} FROM chosen").df()  # fmt: skip
    shares = con.sql("SELECT family, " + ", ".join(
        f"count({s}) AS n_{s}, count(*) FILTER (WHERE {s}) AS x_{s}" for s in SHARES) + " FROM chosen GROUP BY family"
    ).df()  # fmt: skip
    for v in NUMERIC:  # average ranks (ties share the mean rank), summed per family
        con.sql(f"""SELECT family, count(*) AS n, sum(r) AS rank_sum FROM (
                      SELECT family, rank() OVER (ORDER BY {v}) + (count(*) OVER (PARTITION BY {v}) - 1) / 2.0 AS r
                      FROM chosen WHERE {v} IS NOT NULL) GROUP BY family""").fetchall()
    con.sql(f"""SELECT family, year, count(*) AS n, {', '.join(f'count(*) FILTER (WHERE {s}) AS x_{s}' for s in SHARES)},
                       sum(n_findings) FILTER (WHERE hosts_in_scope > 0), sum(hosts_in_scope) FILTER (WHERE hosts_in_scope > 0)
                FROM (SELECT * FROM metrics WHERE family IN ({fams})
                      QUALIFY row_number() OVER (PARTITION BY finess, year ORDER BY audit_date, audit_id) = 1)
                GROUP BY family, year""").fetchall()  # fmt: skip
    lap("select+counts")
    n = con.execute(f"SELECT count(*) FROM {parquet(work, 'findings')}").fetchall()[0][0]
    t = time.perf_counter()
    mine = {"establishments": len(frame), **{
        f"{s}:{r.family}": {"n": int(getattr(r, f"n_{s}")), "x": int(getattr(r, f"x_{s}"))}
        for s in SHARES for r in shares.itertuples()}}  # fmt: skip
    return {"findings": int(n), "establishments": len(frame), "phases": phases,
            "same_as_pandas": _compare(work, "cohorts", mine), "untimed": time.perf_counter() - t}  # fmt: skip


# ------------------------------------------------------------------------------------------ longitudinal
def stage_longitudinal(work: str) -> dict:
    """Notebook 10 without the lifecycle table (the ``lifecycle`` stage): paired baseline / follow-up
    tests (first vs last audit, 90 days apart), repeated-audit tests, remediation episodes and their
    survival analysis (Kaplan–Meier, log-rank, deadlines, close rate) and interval-censored medians."""
    from cyberobs_lib.studies import longitudinal as study
    from cyberobs_lib.studies.data import LIFECYCLE_FINDINGS
    from cyberobs_lib.studies.indicators import audit_metrics

    phases, lap = _timer()
    data, rows = _load(
        work, LIFECYCLE_FINDINGS, ("establishments", "audits", "hosts", "findings", "protection")
    )
    lap("read")
    m = audit_metrics(data)
    lap("audit_metrics")
    pairs = study.paired_audits(m, pairing="first_last", min_days=MIN_DAYS)
    lap("pairs")
    episodes = study.remediation_episodes(data, convention="midpoint")
    lap("episodes")
    study.paired_tests(m, pairing="first_last", min_days=MIN_DAYS)
    study.paired_summary(m, pairing="first_last", min_days=MIN_DAYS)
    lap("stats: paired")
    study.repeated_tests(m, reference_family="CH")
    lap("stats: repeated (GEE)")
    study.remediation_study(episodes, deadlines=DEADLINES, min_cell=5)
    lap("stats: survival")
    study.interval_medians(episodes, by="severity")
    lap("stats: interval medians")
    t = time.perf_counter()
    _write(work, "longitudinal", {
        "pairs": len(pairs), "pair_days": int(pairs["days"].sum()),
        "pair_findings_b": int(pairs["n_findings_b"].sum()),
        "episodes": len(episodes), "observed": int(episodes["observed"].sum()),
        "duration_days": float(episodes["duration_days"].sum()),
        "n_audits_seen": int(episodes["n_audits_seen"].sum())})  # fmt: skip
    data_part = sum(phases[k] for k in ("read", "audit_metrics", "pairs", "episodes"))
    return {"findings": rows["findings"], "pairs": len(pairs), "episodes": len(episodes),
            "compare_seconds": data_part, "phases": phases, "untimed": time.perf_counter() - t}  # fmt: skip


def pairs_sql(columns: list[str]) -> str:
    """First and last audit of each establishment when at least MIN_DAYS apart (``paired_audits``,
    ``first_last``), with both audits' metrics (``columns`` of ``metrics``, suffixes ``_a``, ``_b``)."""
    sides = ", ".join(f'{s}."{c}" AS "{c}_{s}"' for s in ("a", "b") for c in columns)
    return f"""
  WITH ranked AS (
    SELECT *, row_number() OVER (PARTITION BY finess ORDER BY audit_date, audit_id) AS r,
           count(*) OVER (PARTITION BY finess) AS n FROM metrics)
  SELECT a.finess, a.audit_id AS audit_from, b.audit_id AS audit_to,
         date_diff('day', a.audit_date, b.audit_date) AS days, {sides}
  FROM ranked a JOIN ranked b ON a.finess = b.finess AND a.r = 1 AND b.r = b.n
  WHERE b.n > 1 AND date_diff('day', a.audit_date, b.audit_date) >= {MIN_DAYS}"""


def episodes_sql(work: str) -> str:
    """Finding episodes (``remediation_intervals``, midpoint convention) in SQL: the audits of an
    establishment that cover a host (hosts table + finding hosts) in date order; a finding continues an
    episode when it was seen at the previous audit covering its host; an episode is fixed when a later
    audit covers the host (``fixed_upper`` = its date), censored otherwise. Followed episodes only."""
    return f"""
  WITH a AS (SELECT audit_id, finess, audit_date,
                    row_number() OVER (PARTITION BY finess ORDER BY audit_date, audit_id) AS r
             FROM (SELECT audit_id, finess, audit_date FROM {parquet(work, "audits")})),
  f AS (SELECT audit_id, host, fingerprint, severity FROM {parquet(work, "findings")}),
  per AS (SELECT DISTINCT audit_id, host FROM (
            SELECT audit_id, host FROM {parquet(work, "hosts")} UNION ALL SELECT audit_id, host FROM f)),
  cov AS (SELECT p.audit_id, p.host, lead(a.r) OVER w AS next_r, lead(a.audit_date) OVER w AS next_date
          FROM per p JOIN a USING (audit_id) WINDOW w AS (PARTITION BY a.finess, p.host ORDER BY a.r)),
  seen AS (SELECT a.finess, f.fingerprint, a.r, a.audit_date, c.next_r, c.next_date, f.severity
           FROM f JOIN a USING (audit_id) JOIN cov c ON c.audit_id = f.audit_id AND c.host = f.host),
  runs AS (SELECT *, CASE WHEN lag(next_r) OVER w = r THEN 0 ELSE 1 END AS starts
           FROM seen WINDOW w AS (PARTITION BY finess, fingerprint ORDER BY r)),
  ep AS (SELECT *, sum(starts) OVER (PARTITION BY finess, fingerprint ORDER BY r ROWS UNBOUNDED PRECEDING)
                   AS episode FROM runs),
  iv AS (SELECT finess, fingerprint, episode, min(audit_date) AS origin, max(audit_date) AS last_seen,
                arg_max_null(next_date, r) AS fixed_upper, count(*) AS n_audits_seen,
                arg_min(severity, r) AS severity
         FROM ep GROUP BY finess, fingerprint, episode),
  d AS (SELECT *, fixed_upper IS NOT NULL AS observed, date_diff('day', origin, last_seen) AS duration_lower,
               coalesce(date_diff('day', origin, fixed_upper), date_diff('day', origin, last_seen)) AS duration_upper
        FROM iv)
  SELECT d.*, (duration_lower + duration_upper) / 2.0 AS duration_days, e.family
  FROM d LEFT JOIN (SELECT finess, family FROM {parquet(work, "establishments")}) e USING (finess)
  WHERE observed OR duration_upper > 0"""


def stage_duckdb_longitudinal(work: str) -> dict:
    """The data side of notebook 10 in DuckDB: per-audit metrics, the per-establishment baseline /
    follow-up pairs with both audits' metrics, and the per-finding episodes with their open / fixed
    durations (fetched as Arrow tables, as the pandas stage holds them in memory)."""
    con = duck()
    phases, lap = _timer()
    create_metrics(con, work)
    lap("audit_metrics")
    columns = [r[0] for r in con.execute("DESCRIBE metrics").fetchall()]
    pairs = con.sql(pairs_sql(columns)).to_arrow_table()
    lap("pairs")
    episodes = con.sql(episodes_sql(work)).to_arrow_table()
    lap("episodes")
    n = con.execute(f"SELECT count(*) FROM {parquet(work, 'findings')}").fetchall()[0][0]
    t = time.perf_counter()
    con.register("p", pairs)
    con.register("e", episodes)
    p = con.execute("SELECT count(*), sum(days), sum(n_findings_b) FROM p").fetchall()[0]
    e = con.execute("SELECT count(*), count(*) FILTER (WHERE observed), sum(duration_days), sum(n_audits_seen) "
                    "FROM e").fetchall()[0]  # fmt: skip
    keys = ["pairs", "pair_days", "pair_findings_b", "episodes", "observed", "duration_days", "n_audits_seen"]
    mine = dict(zip(keys, [*p, *e], strict=True))
    return {"findings": int(n), "pairs": pairs.num_rows, "episodes": episodes.num_rows, "phases": phases,
            "same_as_pandas": _compare(work, "longitudinal", mine), "untimed": time.perf_counter() - t}  # fmt: skip


# ------------------------------------------------------------------------------------------ annual run
def stage_annual(work: str, params: str = "parameters/annual_2025.yaml") -> dict:
    """``cyberobs run parameters/annual_2025.yaml --canonical <store> --out <dir>`` as a subprocess (its
    notebooks' kernels are its descendants: the harness's peak covers them). No DuckDB baseline."""
    cli = [str(Path(sys.executable).with_name("cyberobs"))]
    helptext = subprocess.run([*cli, "run", "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    if "--canonical" not in helptext:
        return {"skipped": "runner has no --canonical"}
    manifest = json.loads((Path(work) / "canonical" / "_manifest.json").read_text())
    out = Path(work) / "annual_run"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    proc = subprocess.run([*cli, "run", params, "--canonical", str(Path(work) / "canonical"), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    seconds = time.perf_counter() - t
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"annual run exited {proc.returncode}: {' | '.join(tail)}")
    return {"findings": manifest["ingest"]["rows"]["findings"], "phases": {"run": seconds},
            "notebooks": len(list(out.glob("*.ipynb")))}  # fmt: skip
