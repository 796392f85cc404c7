"""Benchmark lifecycle matching against a DuckDB baseline doing the same match, in the same run.

Usage: ``.venv/bin/python benchmarks/bench_lifecycle.py --n 10000000`` (default 1e6).

Synthetic data with a realistic shape: ~``n / 250`` establishments with 2–4 audits (mean 3) 60–300
days apart, 10–30 hosts each, ~5 % of (host, audit) out of the perimeter (scope drift), findings that
follow a Markov chain (present at the first audit w.p. 0.55, persist w.p. 0.6, appear w.p. 0.25).
Timed stages: ``match_lifecycle`` (pandas/NumPy, one thread) and a DuckDB query (full outer join of
consecutive audits' fingerprint sets restricted to common hosts, with reopened = a fix at an earlier
pair, then counts per pair; DuckDB uses every core). Both read the same pandas frames. Peak RSS is
sampled by a psutil thread every 5 ms during each stage. Per-pair counts must be identical.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cyberobs_lib.lifecycle import match_lifecycle  # noqa: E402

SEVERITIES = np.array(["critical", "high", "medium", "low", "info"], dtype=object)
CATEGORIES = np.array(
    ["exposed_remote_admin", "tls_certificate", "web_misconfiguration", "other"], dtype=object
)

DUCKDB_SQL = """
WITH a AS (
  SELECT audit_id, finess, row_number() OVER (PARTITION BY finess ORDER BY audit_date, audit_id) AS r
  FROM audits),
p AS (SELECT x.audit_id AS af, y.audit_id AS at, y.r AS k
      FROM a x JOIN a y ON x.finess = y.finess AND y.r = x.r + 1),
per AS (SELECT DISTINCT audit_id, host FROM (SELECT audit_id, host FROM hosts
                                             UNION ALL SELECT audit_id, host FROM findings)),
common AS (SELECT p.af, p.at, p.k, x.host FROM p
           JOIN per x ON x.audit_id = p.af JOIN per y ON y.audit_id = p.at AND y.host = x.host),
f AS (SELECT DISTINCT audit_id, host, fingerprint FROM findings),
ff AS (SELECT c.af, c.k, f.fingerprint FROM common c JOIN f ON f.audit_id = c.af AND f.host = c.host),
ft AS (SELECT c.af, c.k, f.fingerprint FROM common c JOIN f ON f.audit_id = c.at AND f.host = c.host),
j AS (SELECT coalesce(ff.af, ft.af) AS af, coalesce(ff.k, ft.k) AS k,
             coalesce(ff.fingerprint, ft.fingerprint) AS fp,
             ff.fingerprint IS NOT NULL AS in_from, ft.fingerprint IS NOT NULL AS in_to
      FROM ff FULL OUTER JOIN ft ON ff.af = ft.af AND ff.fingerprint = ft.fingerprint),
fixes AS (SELECT fp, min(k) AS first_fix FROM j WHERE in_from AND NOT in_to GROUP BY fp)
SELECT j.af AS audit_from,
  count(*) FILTER (WHERE NOT in_from AND in_to AND (fx.first_fix IS NULL OR fx.first_fix >= j.k)) AS n_new,
  count(*) FILTER (WHERE in_from AND in_to) AS n_persistent,
  count(*) FILTER (WHERE in_from AND NOT in_to) AS n_fixed,
  count(*) FILTER (WHERE NOT in_from AND in_to AND fx.first_fix < j.k) AS n_reopened
FROM j LEFT JOIN fixes fx ON fx.fp = j.fp
GROUP BY j.af
"""

DUCKDB_THREADS = os.cpu_count()  # DuckDB's default: every core
COUNTS = ["n_new", "n_persistent", "n_fixed", "n_reopened"]


def _hex16(ids: np.ndarray) -> np.ndarray:
    """16-hex-digit strings of uint64 ids (a stand-in for upstream fingerprint hashes), vectorized."""
    table = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
    scrambled = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)).astype(">u8")
    digits = table[scrambled.view(np.uint8).reshape(-1, 8)]
    return np.ascontiguousarray(digits).view("S16").ravel().astype(str).astype(object)


def generate(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Findings, audits and hosts tables with about ``n`` findings."""
    rng = np.random.default_rng(seed)
    n_est = max(n // 250, 2)
    n_aud = rng.choice([2, 3, 4], size=n_est, p=[0.25, 0.5, 0.25])
    n_host = rng.integers(10, 31, size=n_est)
    est_of_audit = np.repeat(np.arange(n_est), n_aud)
    rank = np.arange(len(est_of_audit)) - np.repeat(np.cumsum(n_aud) - n_aud, n_aud)
    gaps = np.where(rank == 0, rng.integers(0, 365, len(rank)), rng.integers(60, 301, len(rank)))
    start = pd.Series(gaps).groupby(est_of_audit).cumsum().to_numpy()
    finess = pd.Series(np.arange(n_est)).map("{:09d}".format).to_numpy(dtype=object)
    audit_ids = pd.Series(np.arange(len(rank))).map("A{:08d}".format).to_numpy(dtype=object)
    audits = pd.DataFrame(
        {
            "audit_id": audit_ids,
            "finess": finess[est_of_audit],
            "audit_date": pd.Timestamp("2022-01-01") + pd.to_timedelta(start, unit="D"),
            "hosts_in_scope": n_host[est_of_audit],
        }
    )
    audit_start = np.cumsum(n_aud) - n_aud
    host_start = np.cumsum(n_host) - n_host
    host_names = (
        pd.Series(np.arange(n_host.sum()))
        .map(lambda i: f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        .to_numpy(dtype=object)
    )
    # perimeter: every (host, audit) of an establishment, 5 % left out
    h_est = np.repeat(np.arange(n_est), n_host)
    pa_est = np.repeat(h_est, n_aud[h_est])
    pa_host = np.repeat(np.arange(n_host.sum()), n_aud[h_est])
    pa_rank = np.arange(len(pa_host)) - np.repeat(np.cumsum(n_aud[h_est]) - n_aud[h_est], n_aud[h_est])
    in_scope = rng.random(len(pa_host)) > 0.05
    pa_audit = audit_start[pa_est] + pa_rank
    scope = np.zeros((n_host.sum(), 4), dtype=bool)
    scope[pa_host, pa_rank] = in_scope
    hosts = pd.DataFrame({"audit_id": audit_ids[pa_audit[in_scope]], "host": host_names[pa_host[in_scope]]})
    # potential findings: Markov chain over audit ranks
    k_e = rng.poisson(n / n_est / 1.35, size=n_est) + 1  # ~1.35 findings per potential over ~3 audits
    p_est = np.repeat(np.arange(n_est), k_e)
    p_host = host_start[p_est] + (rng.random(len(p_est)) * n_host[p_est]).astype(np.int64)
    present = np.zeros((len(p_est), 4), dtype=bool)
    present[:, 0] = rng.random(len(p_est)) < 0.55
    for k in range(1, 4):
        u = rng.random(len(p_est))
        present[:, k] = np.where(present[:, k - 1], u < 0.6, u < 0.25)
    present &= np.arange(4)[None, :] < n_aud[p_est][:, None]
    present &= scope[p_host]
    p_idx, f_rank = np.nonzero(present)
    fingerprints = _hex16(np.arange(len(p_est)))
    severity = SEVERITIES[rng.integers(0, 5, len(p_est))]
    category = CATEGORIES[rng.integers(0, 4, len(p_est))]
    findings = pd.DataFrame(
        {
            "audit_id": audit_ids[audit_start[p_est[p_idx]] + f_rank],
            "host": host_names[p_host[p_idx]],
            "fingerprint": fingerprints[p_idx],
            "severity": severity[p_idx],
            "category": category[p_idx],
        }
    )
    return findings, audits, hosts


class PeakRSS:
    """Peak resident set size of this process during a ``with`` block (sampled every 5 ms)."""

    def __enter__(self):
        self.proc = psutil.Process(os.getpid())
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_duckdb(findings: pd.DataFrame, audits: pd.DataFrame, hosts: pd.DataFrame) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("findings", findings[["audit_id", "host", "fingerprint"]])
    con.register("audits", audits[["audit_id", "finess", "audit_date"]])
    con.register("hosts", hosts)
    out = con.execute(DUCKDB_SQL).df()
    con.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e6, help="approximate number of findings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    findings, audits, hosts = generate(int(args.n), seed=args.seed)
    print(
        f"generated {len(findings):,} findings, {len(audits):,} audits, "
        f"{audits['finess'].nunique():,} establishments, {len(hosts):,} host rows "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    gc.collect()
    with PeakRSS() as m_pd:
        result = match_lifecycle(findings, audits, hosts=hosts)
    pairs = result.pairs
    del result
    gc.collect()
    with PeakRSS() as m_db:
        db = run_duckdb(findings, audits, hosts)
    gc.collect()

    ours = pairs.set_index("audit_from")[COUNTS].astype(np.int64)
    theirs = db.set_index("audit_from")[COUNTS].reindex(ours.index).fillna(0).astype(np.int64)
    extra = set(db["audit_from"]) - set(ours.index)
    identical = ours.equals(theirs) and not extra
    gib = 2.0**30
    for name, m in (("match_lifecycle", m_pd), ("duckdb baseline", m_db)):
        print(
            f"{name:16s} {m.seconds:8.2f} s   peak RSS {m.peak / gib:6.2f} GiB "
            f"(+{(m.peak - m.start) / gib:5.2f} GiB over the start of the stage)"
        )
    print(f"time ratio match_lifecycle / duckdb = {m_pd.seconds / m_db.seconds:.2f} (target <= 2)")
    growth = (m_pd.peak - m_pd.start) / max(m_db.peak - m_db.start, 1)
    print(f"memory growth ratio match_lifecycle / duckdb = {growth:.2f}")
    print(f"duckdb {duckdb.__version__}, threads {DUCKDB_THREADS}; load average {os.getloadavg()}")
    print(f"pairs: {len(ours):,}; totals {ours.sum().to_dict()}")
    print(f"per-pair counts identical: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
