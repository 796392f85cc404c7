"""A DuckDB baseline doing the work of :func:`cyberobs_lib.scale.ingest_large` (issue 9), in SQL.

:func:`duckdb_ingest` reads every table of a dataset folder (all cells as text), applies the contract's
row rules (:mod:`duckdb_rules`, same reason codes and order as :mod:`cyberobs_lib.validate`), rejects
rows with every rule they break (one reject per input row, physical line numbers: :mod:`duckdb_csv`),
collapses exact duplicates and duplicates of one (audit, fingerprint), normalizes and enriches
(:mod:`duckdb_normalize`), and writes the canonical tables as year-partitioned zstd Parquet with rejects,
accounting and violations. It is the "same work" baseline of ``bench_scale``'s ingest stage
(``scale_stages.stage_duckdb_ingest_same``); ``scale_stages.stage_duckdb_load`` (CSV → Parquet, no rule)
is a floor.

What differs from ``ingest_large`` (``tests/test_duckdb_baseline.py`` checks the rest):

* ``fingerprint`` is two DuckDB ``hash`` values of the same canonical identity fields, not the library's
  BLAKE2b/SplitMix value (same grouping, other hex string);
* exact duplicates are found over the whole file (``ingest_large``: within a chunk, which is the same
  for rows of known audits since an audit never straddles chunks); findings are sorted by
  ``ingest.SORT_KEYS`` over the whole table (``ingest_large``: within each chunk; the same order for a file
  sorted by audit, as generated ones are), and ``findings.csv`` need not be grouped by audit;
* CP1252 files are read as Latin-1 (they differ on 0x80-0x9F: €, œ, ’ …, text cells only);
* ``scanner_severity`` columns and scanner exports (``scans/``) are not read: every audit is
  ``scan_status`` ``complete``, as ``ingest.audit_scan_status`` says of an audit without scanner files;
* CVE ids and CVE-list checks, and French numbers, accept ASCII digits only (Python's ``\\d`` also takes
  other scripts' digits);
* date-times are kept to the microsecond (DuckDB ``TIMESTAMP``; ``parse_dates`` keeps nanoseconds).

The ingest policy is the library's: an optional cell that cannot be read is blanked with a warning and
the row kept; ``finess_leading_zero`` rejects an 8-digit FINESS (the default, no ``pad_finess``);
findings rows collapsed into another of their (audit, fingerprint) count as ``duplicates`` of their
file in the accounting, not ``kept``.

Usage (time and peak RSS of one run): ``.venv/bin/python benchmarks/duckdb_ingest.py DATASET OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
from duckdb_csv import empty_source, load_csv, run, sql_str  # noqa: E402
from duckdb_normalize import (  # noqa: E402
    audits_reference,
    canonical_small,
    findings_maps,
    findings_select,
    fingerprint_duplicates,
    kept,
)
from duckdb_rules import (  # noqa: E402
    check_audits,
    check_controls,
    check_establishments,
    check_findings,
    check_hosts,
    check_incidents,
    clean_view,
    error_bits,
    register_reference,
)

from cyberobs_lib import schema as S  # noqa: E402
from cyberobs_lib.ingest import reference_file  # noqa: E402

TABLES = ("establishments", "audits", "hosts", "findings", "controls", "incidents")
CHECKS = {"establishments": check_establishments, "audits": check_audits, "hosts": check_hosts,
          "controls": check_controls, "incidents": check_incidents}  # fmt: skip
PARTITIONED = ("audits", "hosts", "findings", "controls", "protection")


def _catalogs(dataset: Path):
    from cyberobs_lib.enrich import read_epss, read_kev

    kev_path = reference_file(
        dataset, ("known_exploited_vulnerabilities*.json", "known_exploited_vulnerabilities*.csv")
    )
    epss_path = reference_file(dataset, ("epss*.csv.gz", "epss*.csv"))
    kev = read_kev(kev_path) if kev_path else None
    epss = read_epss(epss_path) if epss_path else None
    kev_label = (
        None if kev is None else f"{kev.attrs['catalog'].get('version')} ({kev.attrs['catalog'].get('date')})"
    )
    epss_label = None if epss is None else (
        f"{epss.attrs['catalog'].get('model_version')} ({epss.attrs['catalog'].get('score_date')})")  # fmt: skip
    return kev, epss, kev_label, epss_label


def _file_violations(name: str, file_columns: list[str] | None) -> list[tuple]:
    """File-level violations: missing file, missing required column, unknown column (``validate._open``)."""
    spec = S.INPUT_FILES[name]
    file = f"{name}.csv"
    if file_columns is None:
        return [(file, None, None, "missing_file", "error")] if name in S.REQUIRED_FILES else []
    out = [(file, None, c, "missing_column", "error") for c in spec["required"] if c not in file_columns]
    known = set(spec["required"] + spec["optional"])
    return out + [(file, None, c, "unknown_column", "warning") for c in file_columns if c and c not in known]


def _rule_lists(rules) -> tuple[str, str, str]:
    return tuple(
        "[" + ", ".join(sql_str(getattr(r, a)) for r in rules) + "]" for a in ("code", "column", "severity")
    )


def _rejects_sql(name: str, rules, err: int, refused: str | None = None) -> str:
    """One row per rejected input row: its first error rule, and every error rule in check order; every row
    of a file missing the required column ``refused`` (``ingest.refused_file``)."""
    if refused is not None:
        return (
            f'SELECT \'{name}.csv\' AS source_file, line AS "row", {sql_str(refused)} AS "column", '
            f"'missing_column' AS reason, 'missing_column' AS rules FROM chk_{name}"
        )
    codes, cols, _ = _rule_lists(rules)
    return f"""
        WITH r AS (SELECT line, list_transform(list_filter(range({len(rules)}), lambda i: ((mask >> i) & 1) = 1
                          AND (({err} >> i) & 1) = 1), lambda i: i + 1) AS idx
                   FROM chk_{name} WHERE NOT dup AND (mask & {err}) <> 0),
        c AS (SELECT line, idx, list_transform(idx, lambda i: {codes}[i]) AS all_codes FROM r)
        SELECT '{name}.csv' AS source_file, line AS "row", {cols}[idx[1]] AS "column", {codes}[idx[1]] AS reason,
               array_to_string(list_filter(all_codes, lambda x, i: list_position(all_codes, x) = i), ';') AS rules
        FROM c"""


def _violations_sql(name: str, rules) -> str:
    codes, cols, sevs = _rule_lists(rules)
    return f"""
        SELECT '{name}.csv' AS file, line AS "row", {cols}[i] AS "column", {codes}[i] AS rule, {sevs}[i] AS severity
        FROM (SELECT line, unnest(list_transform(list_filter(range({len(rules)}), lambda i: ((mask >> i) & 1) = 1),
                                                 lambda i: i + 1)) AS i FROM chk_{name} WHERE mask <> 0)"""


def duckdb_ingest(
    dataset: Path, out: Path, *, today: str, memory_limit: str = "6GB", threads: int = 2
) -> dict:
    """Ingest a dataset folder with DuckDB SQL into a year-partitioned canonical folder.

    Parameters
    ----------
    dataset : Path
        Dataset folder following the data contract (CSV files; ``reference/`` catalogs used when present).
    out : Path
        Target folder, replaced as a whole: ``<table>/year=YYYY/*.parquet`` for the tables with an audit,
        ``<table>/part-0.parquet`` otherwise, plus ``rejects``, ``violations``, ``accounting`` and
        ``_manifest.json`` (written last, then the folder is renamed into place).
    today : str
        Reference date of the "not in the future" rules (ISO date).
    memory_limit, threads
        DuckDB settings (spilling goes to a folder next to ``out``).

    Returns
    -------
    dict
        ``rows`` (kept rows per canonical table), ``rejected`` (rejected rows per input table),
        ``seconds`` per phase (``read``: CSV into DuckDB with line numbers; ``check``: the rules;
        ``maps``: per-distinct-value normalization, CVSS scored in Python; ``findings``: normalization,
        duplicate collapse and write of the findings; ``write``: other tables, rejects, violations), and
        ``csv`` (per file: records, ragged, empty lines, multi-line records).
    """
    dataset, out = Path(dataset), Path(out)
    stage = out.with_name(f".{out.name}.duckdb-tmp")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    secs: dict[str, float] = {}
    t = time.perf_counter()
    con = duckdb.connect()
    for setting in (f"memory_limit='{memory_limit}'", f"threads={int(threads)}", "preserve_insertion_order=true",
                    f"temp_directory={sql_str(str(stage / '_spill'))}"):  # fmt: skip
        run(con, f"SET {setting}")
    register_reference(con, today=today)
    files: dict[str, list[str] | None] = {}
    csv_info = {}
    for name in TABLES:
        path = dataset / f"{name}.csv"
        if path.is_file():
            src = load_csv(con, name, path)
            files[name] = src.columns
            csv_info[name] = {k: getattr(src, k) for k in ("records", "ragged", "empty_lines", "multiline")}
        else:
            spec = S.INPUT_FILES[name]
            empty_source(con, name, list(spec["required"] + spec["optional"]))
            files[name] = None
    secs["read"] = time.perf_counter() - t

    t = time.perf_counter()
    rules, err, violations = {}, {}, []
    for name in TABLES:
        present = files[name] or []
        columns = clean_view(con, name, present)
        fatal = files[name] is not None and any(c not in present for c in S.INPUT_FILES[name]["required"])
        violations += _file_violations(name, files[name])
        if name == "findings":
            perimeter = files["hosts"] is not None and "hosts" in err and not _fatal(files["hosts"], "hosts")
            if perimeter:
                run(con, "CREATE OR REPLACE TEMP TABLE perim_keys AS SELECT DISTINCT audit_id, host_n AS host "
                    "FROM chk_hosts WHERE audit_id IS NOT NULL AND host_n IS NOT NULL")  # fmt: skip
                run(
                    con,
                    "CREATE OR REPLACE TEMP TABLE perim_audits AS SELECT DISTINCT audit_id FROM perim_keys",
                )
            rules[name] = check_findings(con, present, columns, perimeter=perimeter, today=today)
        else:
            rules[name] = CHECKS[name](con, present, columns, fatal=fatal)
        err[name] = error_bits(rules[name])
        if name == "establishments":
            run(con, f"CREATE OR REPLACE TEMP TABLE est_ref AS SELECT DISTINCT fin AS finess FROM chk_establishments "
                f"WHERE {kept(err[name])} AND fin IS NOT NULL {'AND false' if fatal else ''}")  # fmt: skip
        if name == "audits":
            audits_reference(con, err[name], fatal=fatal)
    violations += _hosts_disagree(con, files)
    findings_columns = clean_columns(con, "findings")
    for name in TABLES:  # the checked tables hold everything from now on: free the loaded cells
        run(
            con,
            f"DROP VIEW IF EXISTS cln_{name}; DROP VIEW IF EXISTS src_{name}; DROP TABLE IF EXISTS raw_{name}",
        )
    secs["check"] = time.perf_counter() - t

    t = time.perf_counter()
    kev, epss, kev_label, epss_label = _catalogs(dataset)
    kept_f = kept(err["findings"])
    maps = findings_maps(con, kept_f, findings_columns, kev=kev, epss=epss)
    fingerprint_duplicates(con, kept_f, maps["keys"])
    secs["maps"] = time.perf_counter() - t

    t = time.perf_counter()
    select = findings_select(kept_f, findings_columns, maps, kev_label=kev_label, epss_label=epss_label)
    _copy(con, select, stage / "findings", partitioned=True)
    secs["findings"] = time.perf_counter() - t

    t = time.perf_counter()
    present = [n for n in TABLES if files[n] is not None]
    refused = {n: _first_missing(files[n], n) for n in present}
    for name, select in canonical_small(err).items():
        if refused.get(name):  # a file missing a required column: none of its rows is kept
            select = f"SELECT * FROM ({select}) LIMIT 0"
        _copy(con, select, stage / name, partitioned=name in PARTITIONED)
    rejects = " UNION ALL ".join(
        f"SELECT * FROM ({_rejects_sql(n, rules[n], err[n], refused[n])})" for n in present
    )
    _copy(con, f'SELECT * FROM ({rejects}) ORDER BY source_file, "row"', stage / "rejects", partitioned=False)
    viol = [_violations_sql(n, rules[n]) for n in present]
    con.register("file_violations_df", _frame(violations))
    viol.append('SELECT file, "row"::BIGINT AS "row", "column", rule, severity FROM file_violations_df')
    viol = " UNION ALL ".join(viol)
    _copy(con, f'SELECT file, CAST("row" AS BIGINT) AS "row", "column", rule, severity FROM ({viol}) '
          'ORDER BY file, "row" NULLS FIRST, "column", rule', stage / "violations", partitioned=False)  # fmt: skip
    # findings rows collapsed into another of their (audit, fingerprint) count as duplicates, not kept
    collapsed = {n: "(SELECT count(*) FROM fp_dup WHERE nd < 0)" if n == "findings" else "0" for n in present}
    accounting = " UNION ALL ".join(
        f"""SELECT '{n}.csv' AS source_file, '{n}' AS "table", count(*) AS rows_read,
                   count(*) FILTER (WHERE {kept(err[n])} {"AND false" if refused[n] else ""}) - {collapsed[n]}
                     AS kept,
                   count(*) FILTER (WHERE {"true" if refused[n] else f"NOT dup AND (mask & {err[n]}) <> 0"})
                     AS rejected,
                   count(*) FILTER (WHERE dup {"AND false" if refused[n] else ""}) + {collapsed[n]} AS duplicates,
                   0 AS skipped FROM chk_{n}"""
        for n in present
    )
    acc = con.execute(accounting).df()
    _copy(con, accounting, stage / "accounting", partitioned=False)
    rows = {n: _count(con, stage / n) for n in (*TABLES, "protection")}
    secs["write"] = time.perf_counter() - t
    con.close()
    summary = {
        "rows": rows,
        "rejected": {r.table: int(r.rejected) for r in acc.itertuples()},
        "seconds": {k: round(v, 3) for k, v in secs.items()},
        "csv": csv_info,
        "cvss_vectors_scored": maps["vectors"],
    }
    shutil.rmtree(stage / "_spill", ignore_errors=True)
    (stage / "_manifest.json").write_text(
        json.dumps({"duckdb_ingest": summary}, indent=2, sort_keys=True) + "\n"
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(stage, out)
    return summary


def _count(con, folder: Path) -> int:
    """Rows written under ``folder`` (0 when a partitioned COPY of no row wrote nothing)."""
    if not any(folder.glob("**/*.parquet")):
        return 0
    return int(
        run(con, f"SELECT count(*) FROM read_parquet({sql_str(str(folder / '**' / '*.parquet'))})")[0][0]
    )


def _first_missing(columns: list[str], name: str) -> str | None:
    """The first required column of file ``name`` that ``columns`` lacks (None: none is missing)."""
    return next((c for c in S.INPUT_FILES[name]["required"] if c not in columns), None)


def _fatal(columns: list[str], name: str) -> bool:
    return _first_missing(columns, name) is not None


def clean_columns(con, name: str) -> list[str]:
    """Columns of ``cln_<name>`` (file columns, then contract columns the file lacks)."""
    return [r[0] for r in con.execute(f"DESCRIBE cln_{name}").fetchall() if r[0] not in ("line", "ragged")]


def _frame(violations: list[tuple]):
    import pandas as pd

    return pd.DataFrame(violations, columns=["file", "row", "column", "rule", "severity"]).astype(
        {"file": object, "row": "Int64", "column": object, "rule": object, "severity": object}
    )


def _hosts_disagree(con, files) -> list[tuple]:
    """``hosts_disagree`` warnings: hosts.csv lists another number of hosts than ``hosts_in_scope``."""
    if files["hosts"] is None or _fatal(files["hosts"], "hosts") or files["audits"] is None:
        return []
    if _fatal(files["audits"], "audits"):
        return []
    rows = con.execute("""
        WITH listed AS (SELECT audit_id, count(*) AS n FROM chk_hosts WHERE NOT dup AND audit_id IS NOT NULL
                        GROUP BY audit_id),
        declared AS (SELECT audit_id, int_val(hosts_in_scope) AS d FROM chk_audits WHERE audit_id IS NOT NULL
                     QUALIFY row_number() OVER (PARTITION BY audit_id ORDER BY line) = 1)
        SELECT count(*) FROM listed JOIN declared USING (audit_id) WHERE d IS NOT NULL AND n <> d""").fetchall()
    return [("hosts.csv", None, "host", "hosts_disagree", "warning")] * int(rows[0][0])


def _copy(con, select: str, target: Path, *, partitioned: bool) -> None:
    if partitioned:
        run(
            con,
            f"COPY ({select}) TO {sql_str(str(target))} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year))",
        )
    else:
        target.mkdir(parents=True, exist_ok=True)
        run(
            con,
            f"COPY ({select}) TO {sql_str(str(target / 'part-0.parquet'))} (FORMAT parquet, COMPRESSION zstd)",
        )


def main(argv: list[str] | None = None) -> int:
    """Run the baseline once and print its summary, wall time and peak RSS (this process, DuckDB included)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--today", default="2026-01-01")
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    t = time.perf_counter()
    summary = duckdb_ingest(args.dataset, args.out, today=args.today, memory_limit=args.memory_limit,
                            threads=args.threads)  # fmt: skip
    summary["wall_seconds"] = round(time.perf_counter() - t, 2)
    summary["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    summary["load"] = os.getloadavg()
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
