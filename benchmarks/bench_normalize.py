"""Benchmark: normalize + enrich N synthetic findings, against a DuckDB baseline doing the same joins.

Usage::

    .venv/bin/python benchmarks/bench_normalize.py --n 10000000

Each side runs in its own child process on the same in-process synthetic data (same seed), so that peak RSS
is measured per side. Realistic cardinalities: ~40k audits (~250 findings each), ~20 hosts per audit, ~500
distinct CVSS vectors (v2/v3.0/v3.1/v4.0), ~5k distinct CVE lists, ~3k scanner ids, ~2 % duplicate rows.
Text columns are pandas categoricals, as pandas reads the dictionary-encoded columns of the canonical Parquet
tables (both sides get the same frames; DuckDB reads them as ENUMs).

The baseline does, in one DuckDB query over the same pandas frames and returning a pandas frame: audit ->
finess join, vector -> score/severity join (vectors scored once in Python with the ``cvss`` package, as the
library does), scanner-severity mapping join, CVE list -> (KEV any, ransomware any, EPSS max) join computed by
unnesting distinct lists, a fingerprint as ``md5`` of the ``|``-joined identity fields, a port/KEV category
CASE, and the duplicate collapse by GROUP BY (audit, fingerprint); the result is fetched as an Arrow table
(a pandas frame of 10 M rows of Python strings does not fit the 8 GB budget beside the inputs). It does less than the library (no regex
category rules, no CVE-text normalization, no severity precedence/mismatch bookkeeping), so the ratio is
conservative.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _vectors(rng: np.random.Generator, n: int) -> list[str]:
    out: set[str] = set()
    v3 = {"AV": "NALP", "AC": "LH", "PR": "NLH", "UI": "NR", "S": "UC", "C": "NLH", "I": "NLH", "A": "NLH"}
    v2 = {"AV": "NAL", "AC": "LMH", "Au": "NSM", "C": "NPC", "I": "NPC", "A": "NPC"}
    v4 = {"AV": "NALP", "AC": "LH", "AT": "NP", "PR": "NLH", "UI": "NPA", "VC": "HLN", "VI": "HLN", "VA": "HLN",
          "SC": "HLN", "SI": "HLN", "SA": "HLN"}  # fmt: skip
    while len(out) < n:
        kind = rng.integers(0, 4)
        if kind == 0:
            out.add("/".join(f"{k}:{rng.choice(list(v))}" for k, v in v2.items()))
        elif kind == 3:
            out.add("CVSS:4.0/" + "/".join(f"{k}:{rng.choice(list(v))}" for k, v in v4.items()))
        else:
            out.add(f"CVSS:3.{kind - 1}/" + "/".join(f"{k}:{rng.choice(list(v))}" for k, v in v3.items()))
    return sorted(out)


def make_data(n: int, seed: int = 20260101) -> dict[str, pd.DataFrame]:
    """Synthetic findings, audits, KEV and EPSS catalogs."""
    rng = np.random.default_rng(seed)
    n_audits = max(1, min(40_000, n // 250))
    audit_ids = np.array([f"AUD{i:06d}" for i in range(n_audits)], dtype=object)
    finess = np.array([f"{(i % 95) + 1:02d}{i:06d}{i % 10}" for i in range(n_audits)], dtype=object)
    audits = pd.DataFrame({"audit_id": audit_ids, "finess": finess})
    cves = np.array([f"CVE-{2010 + i % 15}-{1000 + i}" for i in range(30_000)], dtype=object)
    lists = [";".join(rng.choice(cves, size=rng.integers(1, 6), replace=False)) for _ in range(5_000)]
    lists = np.array(lists + [None] * 5_000, dtype=object)  # about half of the findings carry no CVE
    vectors = np.array(_vectors(rng, 500) + [None] * 100, dtype=object)
    vuln_ids = np.array([f"nessus:{100000 + i}" for i in range(3_000)], dtype=object)
    titles = np.array([f"Plugin {i} detection" for i in range(2_990)] + ["SSL Certificate Expired",
                      "TLS Version 1.0 Protocol Detection", "Remote Desktop Protocol", "HSTS missing",
                      "Apache end-of-life", "SMB signing", "DMARC missing", "Banner disclosure",
                      "Directory listing", "SSH password authentication"], dtype=object)  # fmt: skip
    hosts_per_audit = 20
    hosts = np.array([f"10.{h // 256}.{h % 256}.{(h * 7) % 256}" for h in range(n_audits * hosts_per_audit)],
                     dtype=object)  # fmt: skip
    ports = np.array([22, 25, 80, 443, 445, 3389, 8080, 8443, 3306, 21, 23, 53], dtype=np.int32)
    a = rng.integers(0, n_audits, n)
    v = rng.integers(0, len(vuln_ids), n)
    h = a * hosts_per_audit + rng.integers(0, hosts_per_audit, n)
    p = rng.integers(0, len(ports), n)
    dup = rng.random(n) < 0.02  # duplicates: copy identity of the previous row
    idx = np.arange(n)
    src = np.where(dup, np.maximum(idx - 1, 0), idx)
    a, v, h, p = a[src], v[src], h[src], p[src]

    def cat(values: np.ndarray, codes: np.ndarray) -> pd.Categorical:
        """Dictionary-encoded column, as pandas reads a Parquet dictionary column (missing values kept)."""
        uniq, inv = np.unique(np.array([v if v is not None else "\x00" for v in values], dtype=object),
                              return_inverse=True)  # fmt: skip
        c = inv[codes].astype(np.int32)
        miss = np.nonzero(uniq == "\x00")[0]
        if len(miss):
            c = np.where(c == miss[0], -1, c - (c > miss[0]))
            uniq = np.delete(uniq, miss[0])
        return pd.Categorical.from_codes(c, categories=pd.Index(uniq.astype(str)))

    findings = pd.DataFrame({
        "audit_id": cat(audit_ids, a),
        "host": cat(hosts, h),
        "port": ports[p],
        "protocol": cat(np.array(["tcp", "udp"], dtype=object), (p == 7).astype(np.int64)),
        "vuln_id": cat(vuln_ids, v),
        "title": cat(titles, v % len(titles)),
        "cve": cat(lists, v % len(lists)),
        "cvss_vector": cat(vectors, v % len(vectors)),
        "scanner": cat(np.array(["nessus"], dtype=object), np.zeros(n, dtype=np.int64)),
        "scanner_severity": cat(np.array(["0", "1", "2", "3", "4"], dtype=object), v % 5),
        "source_row": np.arange(1, n + 1),
    })  # fmt: skip
    kev = pd.DataFrame(
        {"cve": pd.array(cves[::20], dtype="string"), "ransomware_use": np.arange(1500) % 4 == 0}
    )
    kev.attrs["catalog"] = {"source": "CISA KEV", "version": "synthetic", "date": "2099-01-01"}
    epss = pd.DataFrame({"cve": pd.array(cves, dtype="string"), "epss": rng.random(len(cves)),
                         "percentile": rng.random(len(cves))})  # fmt: skip
    epss.attrs["catalog"] = {"source": "FIRST EPSS", "model_version": "synthetic", "score_date": "2099-01-01"}
    return {"findings": findings, "audits": audits, "kev": kev, "epss": epss}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_library(n: int) -> dict:
    from cyberobs_lib.enrich import enrich_findings
    from cyberobs_lib.normalize import normalize_findings

    d = make_data(n)
    gen_peak = _peak_mb()
    t0 = time.perf_counter()
    out = normalize_findings(d["findings"], audits=d["audits"], kev=d["kev"])
    t1 = time.perf_counter()
    out = enrich_findings(out, kev=d["kev"], epss=d["epss"])
    t2 = time.perf_counter()
    return {"side": "library", "rows_out": len(out), "normalize_s": t1 - t0, "enrich_s": t2 - t1,
            "seconds": t2 - t0, "gen_peak_mb": gen_peak, "peak_mb": _peak_mb(),
            "duplicates": int(out["n_duplicates"].sum())}  # fmt: skip


def run_duckdb(n: int) -> dict:
    import duckdb
    import pyarrow.compute as pc

    from cyberobs_lib.normalize.severity import cvss_severity

    d = make_data(n)
    gen_peak = _peak_mb()
    findings, audits, kev, epss = d["findings"], d["audits"], d["kev"], d["epss"]
    t0 = time.perf_counter()
    distinct = pd.Series(findings["cvss_vector"].dropna().unique().astype(object))
    scored = cvss_severity(distinct)
    vectors = pd.DataFrame(
        {"vector": distinct, "score": scored["cvss_score"], "sev": scored["severity"].astype(object)}
    )
    smap = pd.DataFrame({"scanner": "nessus", "value": ["0", "1", "2", "3", "4"],
                         "sev": ["info", "low", "medium", "high", "critical"]})  # fmt: skip
    kev_df = pd.DataFrame({"cve": kev["cve"].astype(object), "ransomware_use": kev["ransomware_use"]})
    epss_df = pd.DataFrame(
        {"cve": epss["cve"].astype(object), "epss": epss["epss"], "percentile": epss["percentile"]}
    )
    t_prep = time.perf_counter() - t0
    res = {"side": "duckdb", "gen_peak_mb": gen_peak}
    variants = ("pandas", "arrow") if n <= 2_000_000 else ("pandas",)  # Arrow copies the data: small n only
    for variant in variants:
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{2 if n > 2_000_000 else 4}GB'")  # spills beyond: keeps under 8 GB
        t_conv = time.perf_counter()
        frames = {"findings": findings, "audits": audits, "vectors": vectors, "smap": smap, "kev": kev_df,
                  "epss": epss_df}  # fmt: skip
        if variant == "arrow":  # inputs already columnar: conversion timed apart, not in the baseline
            import pyarrow as pa

            frames = {k: pa.Table.from_pandas(v, preserve_index=False) for k, v in frames.items()}
        conv = time.perf_counter() - t_conv
        for name, frame in frames.items():
            con.register(name, frame)
        t1 = time.perf_counter()
        out = _baseline_query(con)
        res[f"{variant}_s"] = t_prep + time.perf_counter() - t1
        res[f"{variant}_conversion_s"] = conv
        res["rows_out"], res["duplicates"] = out.num_rows, int(pc.sum(out["n_duplicates"]).as_py())
        del out, frames
        con.close()
    res["seconds"] = min(res[f"{v}_s"] for v in variants)
    res["peak_mb"] = _peak_mb()
    return res


def _baseline_query(con) -> pd.DataFrame:
    return con.execute("""
        WITH lists AS (
            SELECT cve AS cve_list, unnest(string_split(cve, ';')) AS cve_id
            FROM (SELECT DISTINCT cve FROM findings WHERE cve IS NOT NULL)
        ), list_agg AS (
            SELECT l.cve_list, bool_or(k.cve IS NOT NULL) AS known_exploited,
                   bool_or(coalesce(k.ransomware_use, false)) AS ransomware_use,
                   max(e.epss) AS epss, max(e.percentile) AS epss_percentile
            FROM lists l LEFT JOIN kev k ON k.cve = l.cve_id LEFT JOIN epss e ON e.cve = l.cve_id
            GROUP BY l.cve_list
        ), enriched AS (
            SELECT f.*, a.finess, v.score AS cvss_score, v.sev AS severity_cvss, m.sev AS severity_scanner,
                   coalesce(v.sev, m.sev) AS severity,
                   coalesce(la.known_exploited, false) AS known_exploited,
                   coalesce(la.ransomware_use, false) AS ransomware_use, la.epss, la.epss_percentile,
                   md5(concat_ws('|', a.finess, lower(f.host), CAST(f.port AS VARCHAR), lower(f.protocol),
                                 lower(f.vuln_id))) AS fingerprint
            FROM findings f
            LEFT JOIN audits a USING (audit_id)
            LEFT JOIN vectors v ON v.vector = f.cvss_vector
            LEFT JOIN smap m ON m.scanner = f.scanner AND m.value = f.scanner_severity
            LEFT JOIN list_agg la ON la.cve_list = f.cve
        )
        SELECT audit_id, fingerprint, count(*) - 1 AS n_duplicates,
               arg_min(COLUMNS(* EXCLUDE (audit_id, fingerprint)), source_row),
               CASE WHEN bool_or(known_exploited) THEN 'known_exploited'
                    WHEN arg_min(port, source_row) IN (3389, 445, 23, 3306) THEN 'exposed_remote_admin'
                    ELSE 'other' END AS category
        FROM enriched GROUP BY audit_id, fingerprint
    """).to_arrow_table()


def _wait(proc, q, max_gb: float):
    """Result of the child, or None after killing it when its RSS passes ``max_gb``."""
    import queue

    import psutil

    ps = psutil.Process(proc.pid)
    while True:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            if not proc.is_alive():
                return None
            try:
                if ps.memory_info().rss > max_gb * 2**30:
                    proc.kill()
                    return None
            except psutil.NoSuchProcess:
                return None


def _child(fn, n, q):
    q.put(fn(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="number of synthetic findings")
    parser.add_argument("--max-gb", type=float, default=7.5, help="kill a side whose RSS exceeds this (GB)")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = {}
    for fn in (run_duckdb, run_library):
        q = ctx.Queue()
        proc = ctx.Process(target=_child, args=(fn, args.n, q))
        proc.start()
        res = _wait(proc, q, args.max_gb)
        proc.join()
        if res is None:
            print(f"{fn.__name__}: failed or stopped (RSS above {args.max_gb} GB)", flush=True)
            return 1
        results[res["side"]] = res
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items()}, flush=True)
    lib, base = results["library"], results["duckdb"]
    print(f"n={args.n:,}  library {lib['seconds']:.1f} s (normalize {lib['normalize_s']:.1f} + enrich "
          f"{lib['enrich_s']:.1f}), peak RSS {lib['peak_mb']:.0f} MB (data alone {lib['gen_peak_mb']:.0f} MB)")  # fmt: skip
    arrow = (f"; over Arrow tables {base['arrow_s']:.1f} s + {base['arrow_conversion_s']:.1f} s conversion not counted"
             if "arrow_s" in base else "")  # fmt: skip
    print(f"          duckdb  {base['seconds']:.1f} s (over pandas frames {base['pandas_s']:.1f} s{arrow}), "
          f"peak RSS {base['peak_mb']:.0f} MB (data alone {base['gen_peak_mb']:.0f} MB)")  # fmt: skip
    print(
        f"ratio library/duckdb: time {lib['seconds'] / base['seconds']:.2f}x, "
        f"peak RSS {lib['peak_mb'] / base['peak_mb']:.2f}x; rows out {lib['rows_out']:,} vs {base['rows_out']:,}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
