"""Normalization and enrichment of the checked tables in DuckDB SQL (the DuckDB ingest baseline).

The canonical columns of :func:`cyberobs_lib.ingest.ingest_dataset` / ``ingest_large``, computed in SQL:

* small tables: ``registry.derive_establishments`` (family, department, region from the package's
  tables), typed audits/hosts/controls/incidents, ``enrich.protection_status`` (from controls.csv);
* findings: normalized CVE lists (``normalize.cve``), ``vuln_key``, KEV/EPSS joins (``enrich``),
  finding categories from ``category_rules.csv`` — each computed once per distinct value in
  ``cve_map`` / ``title_map`` and joined back, as the library does — CVSS vectors scored once per
  distinct vector *in Python with the project's* :func:`~cyberobs_lib.normalize.cvss_severity`
  (``cvss_map``), severity resolution, a fingerprint of the same identity fields (two DuckDB ``hash``
  values of ``finess, host, port, protocol, vuln_key`` in their canonical forms, written as 32 hex
  characters like the library's: not its BLAKE2b value), and the collapse of rows of one (audit,
  fingerprint).
"""

from __future__ import annotations

import pandas as pd
from duckdb_csv import ident, run, sql_str

from cyberobs_lib.normalize import cvss_severity
from cyberobs_lib.normalize.category import load_category_rules

#: Python's Unicode ``\s`` as an RE2 class body (RE2's ``\s`` is ASCII only).
_WS = r"\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
#: ``normalize.cve.CVE_PATTERN`` in RE2: no look-ahead, so the number takes every digit and ids longer
#: than 7 digits are dropped afterwards (the Python pattern fails on them).
CVE_RE = rf"(?i)CVE[{_WS}_\-\x{{2010}}-\x{{2015}}:]*(\d{{4}})[{_WS}_\-\x{{2010}}-\x{{2015}}:]*(\d+)"


def kept(rules_errors: int) -> str:
    """The kept-row predicate of a ``chk_`` table: not an exact copy, no error rule."""
    return f"NOT dup AND (mask & {rules_errors}) = 0"


def canonical_small(err: dict[str, int]) -> dict[str, str]:
    """SELECTs of the small canonical tables (kept rows, ingest's columns and sort order)."""
    return {
        "establishments": f"""
            SELECT fin AS finess, finess_ej, name, cat AS category_code, legal_n AS legal_status, dep AS department,
                   coalesce(reg_n, (SELECT r.region_code FROM ref_region r WHERE r.department =
                       CASE WHEN regexp_full_match(dep, '[1-9]') THEN '0' || dep ELSE upper(dep) END)) AS region,
                   CASE WHEN beds_i >= 0 THEN beds_i END AS beds, coalesce(e.family, k.family) AS family, key_ok AS finess_key_ok,
                   'establishments.csv' AS source_file, line AS source_row,
                   CASE WHEN e.family IS NOT NULL THEN 'explicit' ELSE 'category' END AS family_source,
                   NULLIF(k.aggregate_code, '') AS aggregate_code, k.sector
            FROM (SELECT c.*, coalesce((SELECT d.department FROM ref_registry_dep d WHERE d.registry_code = c.dep_n),
                                       c.dep_n, fin_dep(c.fin)) AS dep
                  FROM chk_establishments c WHERE {kept(err["establishments"])}) e
            LEFT JOIN ref_categories k ON e.cat = k.category_code
            ORDER BY finess""",
        "audits": """
            SELECT audit_id, finess, audit_date, hosts_in_scope, scanner, perimeter,
                   'audits.csv' AS source_file, source_row,
                   -- ingest.audit_scan_status: no scanner file read (scans/ is not), every audit complete
                   'complete' AS scan_status, NULL::VARCHAR AS scan_status_detail, year
            FROM aud_f ORDER BY audit_id""",
        "hosts": f"""
            SELECT h.audit_id, host_n AS host, 'hosts.csv' AS source_file, line AS source_row, a.year
            FROM chk_hosts h LEFT JOIN aud_f a ON h.audit_id = a.audit_id
            WHERE {kept(err["hosts"])} ORDER BY h.audit_id, host""",
        "controls": f"""
            SELECT c.audit_id, control_n AS control, present_b AS present, 'controls.csv' AS source_file,
                   line AS source_row, a.year
            FROM chk_controls c LEFT JOIN aud_f a ON c.audit_id = a.audit_id
            WHERE {kept(err["controls"])} ORDER BY c.audit_id, control""",
        "incidents": f"""
            SELECT incident_id, day_val(declared_on) AS declared_on, fin AS finess,
                   CASE WHEN cat_known THEN cat END AS category_code,
                   family, nature_n AS nature, type_n AS "type", impact_n AS impact_on_care,
                   'incidents.csv' AS source_file, line AS source_row
            FROM chk_incidents WHERE {kept(err["incidents"])} ORDER BY incident_id""",
        # enrich.protection_status from controls.csv alone (a CSV dataset has no scanner evidence)
        "protection": f"""
            WITH per AS (SELECT audit_id, control_n AS control, bool_or(present_b) AS present
                         FROM chk_controls WHERE {kept(err["controls"])} AND present_b IS NOT NULL GROUP BY ALL),
            agg AS (SELECT audit_id, count(*) AS n_obs, count(*) FILTER (WHERE present) AS n_present,
                           string_agg(control, ';' ORDER BY control) FILTER (WHERE present) AS cp
                    FROM per GROUP BY audit_id)
            SELECT a.audit_id, coalesce(n_obs, 0) AS n_controls_observed, coalesce(n_present, 0) AS n_present,
                   coalesce(cp, '') AS controls_present,
                   CASE WHEN n_obs > 0 THEN n_present = 0 END AS no_protection,
                   CASE WHEN n_obs > 0 THEN 'controls' ELSE 'none' END AS source, a.year
            FROM aud_f a LEFT JOIN agg ON a.audit_id = agg.audit_id ORDER BY a.audit_id""",
    }


def audits_reference(con, err: int, *, fatal: bool) -> None:
    """``aud_f`` (kept audits, typed, with their year: what ``ingest_large`` joins findings to) and
    ``aud_ref`` (the audit ids other tables may cite: none when audits.csv is unusable, as ``validate``)."""
    run(con, f"""CREATE OR REPLACE TEMP TABLE aud_f AS
        SELECT audit_id, fin AS finess, day_val(audit_date) AS audit_date, int_val(hosts_in_scope) AS hosts_in_scope,
               scanner, perimeter, line AS source_row, year(day_val(audit_date))::SMALLINT AS year
        FROM chk_audits WHERE {kept(err)}""")  # fmt: skip
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE aud_ref AS SELECT audit_id FROM aud_f {'LIMIT 0' if fatal else ''}",
    )


def _rules() -> pd.DataFrame:
    rules = load_category_rules()
    if rules["priority"].duplicated().any():
        raise ValueError("category_rules.csv: the baseline needs distinct priorities")
    return rules


def _prio_case(rules: pd.DataFrame, field: str, value_sql: str) -> str:
    """Smallest priority of the ``field`` rules matching ``value_sql`` (NULL when none)."""
    parts = []
    for r in rules[rules["field"] == field].itertuples():
        if field == "port":
            parts.append(f"WHEN {value_sql} = {float(r.pattern)} THEN {r.priority}")
        elif field == "service":
            parts.append(f"WHEN lower(trim({value_sql})) = {sql_str(r.pattern.lower())} THEN {r.priority}")
        else:
            parts.append(f"WHEN regexp_matches({value_sql}, {sql_str('(?i)' + r.pattern)}) THEN {r.priority}")
    return f"CASE {' '.join(parts)} END" if parts else "NULL::INTEGER"


def findings_maps(con, kept_sql: str, columns: list[str], *, kev: pd.DataFrame | None,
                  epss: pd.DataFrame | None) -> dict:  # fmt: skip
    """``cvss_map``, ``cve_map`` and ``title_map``: the per-distinct-value work of normalize and enrich."""
    vectors = con.execute(
        f"SELECT DISTINCT cvss_vector FROM chk_findings WHERE {kept_sql} AND cvss_vector IS NOT NULL"
    ).df()["cvss_vector"]
    cv = cvss_severity(vectors)
    cmap = pd.DataFrame({
        "vector": vectors.astype(str).to_numpy(),
        "cvss_version": cv["cvss_version"].astype(object).where(cv["cvss_version"].notna(), None).to_numpy(),
        "cvss_score": pd.array(cv["cvss_score"], dtype="Float64"),
        "severity_cvss": cv["severity"].astype(object).where(cv["severity"].notna(), None).to_numpy(),
        "cvss_error": cv["cvss_error"].astype(object).where(cv["cvss_error"].notna(), None).to_numpy(),
    })  # fmt: skip
    con.register("cvss_map_df", cmap)
    run(con, "CREATE OR REPLACE TEMP TABLE cvss_map AS SELECT vector::VARCHAR AS vector, cvss_version::VARCHAR AS "
        "cvss_version, cvss_score::DOUBLE AS cvss_score, severity_cvss::VARCHAR AS severity_cvss, "
        "cvss_error::VARCHAR AS cvss_error FROM cvss_map_df")  # fmt: skip
    con.unregister("cvss_map_df")
    for name, frame, cols in (
        ("kev", kev, ["cve", "ransomware_use"]),
        ("epss", epss, ["cve", "epss", "percentile"]),
    ):
        data = frame[cols] if frame is not None else pd.DataFrame(columns=cols)
        con.register(f"{name}_df", data.astype({"cve": str}))
        run(con, f"CREATE OR REPLACE TEMP TABLE ref_{name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    rules = _rules()
    has_scanner = "scanner" in columns
    keys = ["cve", "vuln_id"] + (["scanner"] if has_scanner else [])
    kev_prio = rules.loc[rules["field"] == "kev", "priority"]
    kev_case = (
        f"CASE WHEN kev_hit THEN {int(kev_prio.iloc[0])} END" if kev is not None and len(kev_prio) else "NULL"
    )
    ckeys = ("list_distinct(list_filter(list_transform(range(1, len({y}) + 1), lambda i: CASE WHEN length({n}[i]) <= 7 "
             "THEN CAST({y}[i] AS BIGINT) * 100000000 + CAST({n}[i] AS BIGINT) END), lambda k: k IS NOT NULL))")  # fmt: skip
    fmt = "lambda k: 'CVE-' || (k // 100000000)::VARCHAR || '-' || printf('%04d', k % 100000000)"
    scanner = "coalesce(lower(trim(scanner)), 'unknown')" if has_scanner else "'unknown'"
    run(con, f"""CREATE OR REPLACE TEMP TABLE cve_map AS
        WITH d AS (SELECT DISTINCT {", ".join(keys)} FROM chk_findings WHERE {kept_sql}),
        x AS (SELECT d.*, row_number() OVER () AS mid,
                     coalesce(regexp_extract_all(cve, {sql_str(CVE_RE)}, 1), []) AS cy,
                     coalesce(regexp_extract_all(cve, {sql_str(CVE_RE)}, 2), []) AS cn,
                     coalesce(regexp_extract_all(vuln_id, {sql_str(CVE_RE)}, 1), []) AS vy,
                     coalesce(regexp_extract_all(vuln_id, {sql_str(CVE_RE)}, 2), []) AS vn FROM d),
        k AS (SELECT x.*, {ckeys.format(y="cy", n="cn")} AS ck, {ckeys.format(y="vy", n="vn")} AS vk FROM x),
        f AS (SELECT k.*, list_transform(list_sort(list_distinct(list_concat(ck, vk))), {fmt}) AS ids,
                     list_transform(vk, {fmt}) AS vids FROM k),
        e AS (SELECT mid, bool_or(r.cve IS NOT NULL) AS kev_hit, bool_or(coalesce(r.ransomware_use, false)) AS ransom,
                     max(p.epss) AS epss, max(p.percentile) AS pct
              FROM (SELECT mid, unnest(ids) AS cid FROM f) u
              LEFT JOIN ref_kev r ON u.cid = r.cve LEFT JOIN ref_epss p ON u.cid = p.cve GROUP BY mid),
        g AS (SELECT f.*, CASE WHEN len(ids) > 0 THEN array_to_string(ids, ';') END AS cve_out,
                     coalesce(e.kev_hit, false) AS kev_hit, coalesce(e.ransom, false) AS ransom, e.epss, e.pct
              FROM f LEFT JOIN e ON f.mid = e.mid)
        SELECT {", ".join(keys)}, cve_out, kev_hit, ransom, epss, pct,
               CASE WHEN vuln_id IS NULL THEN lower(ids[1]) WHEN len(vids) = 1 THEN lower(vids[1])
                    WHEN contains(vuln_id, ':') THEN lower(vuln_id)
                    ELSE {scanner} || ':' || lower(vuln_id) END AS vuln_key,
               least({kev_case}, {_prio_case(rules, "cve", "cve_out")}, {_prio_case(rules, "vuln_id", "vuln_id")}) AS prio
        FROM g""")  # fmt: skip
    regex_fields = [f for f in ("title", "cwe") if f in columns]
    for field in regex_fields:
        run(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {field}_map AS
            SELECT {ident(field)} AS v, {_prio_case(rules, field, ident(field))} AS prio
            FROM (SELECT DISTINCT {ident(field)} FROM chk_findings WHERE {kept_sql} AND {ident(field)} IS NOT NULL)""",
        )
    return {"keys": keys, "regex_fields": regex_fields, "rules": rules, "vectors": len(vectors)}


def _parts(alias: str = "") -> list[str]:
    """The canonical identity fields of ``normalize.fingerprint.canonical_parts`` (missing → '')."""
    a = alias
    return [f"coalesce(upper(trim({a}a_finess)), '')", f"coalesce(rtrim({a}host_n, '.'), '')",
            f"coalesce({a}port_i::VARCHAR, '')", f"coalesce(trim({a}protocol_n), '')",
            f"coalesce(trim({a}vuln_key), '')"]  # fmt: skip


def _hashes(alias: str = "") -> str:
    parts = ", ".join(_parts(alias))
    return f"hash({parts}) AS h1, hash('cyberobs-fp', {parts}) AS h2"


def fingerprint_duplicates(con, kept_sql: str, keys: list[str]) -> None:
    """``fp_dup``: the rows of the (audit, fingerprint) groups met more than once — ``nd`` = rows collapsed
    into the first one (kept), -1 for the others (dropped). A GROUP BY on the narrow keys, not a window
    over the wide rows."""
    on = " AND ".join(f"k.{c} IS NOT DISTINCT FROM cm.{c}" for c in keys)
    run(con, f"""CREATE OR REPLACE TEMP TABLE fp_dup AS
        WITH g AS (SELECT list(line ORDER BY line) AS lines
                   FROM (SELECT k.line, k.audit_id, {_hashes("k.").replace("k.vuln_key", "cm.vuln_key")}
                         FROM chk_findings k LEFT JOIN cve_map cm ON {on} WHERE {kept_sql})
                   GROUP BY audit_id, h1, h2 HAVING count(*) > 1)
        SELECT lines[1] AS line, len(lines) - 1 AS nd FROM g
        UNION ALL SELECT unnest(lines[2:]) AS line, -1 AS nd FROM g""")  # fmt: skip


def findings_select(kept_sql: str, columns: list[str], maps: dict, *, kev_label: str | None,
                    epss_label: str | None) -> str:  # fmt: skip
    """The canonical findings: joins to the maps, severity, category, fingerprint, duplicates collapsed."""
    rules = maps["rules"]
    cats = " ".join(f"WHEN {r.priority} THEN {sql_str(r.category)}" for r in rules.itertuples())
    prio = ["cm.prio", _prio_case(rules, "port", "port_i"), _prio_case(rules, "service", "service")]
    joins = [f"LEFT JOIN {f}_map {f[0]}m ON k.{ident(f)} = {f[0]}m.v" for f in maps["regex_fields"]]
    prio += [f"{f[0]}m.prio" for f in maps["regex_fields"]]
    on = " AND ".join(f"k.{c} IS NOT DISTINCT FROM cm.{c}" for c in maps["keys"])
    known = "cm.kev_hit" if kev_label is not None else "NULL::BOOLEAN"
    ransom = "cm.ransom" if kev_label is not None else "NULL::BOOLEAN"
    epss, pct = ("cm.epss", "cm.pct") if epss_label is not None else ("NULL::DOUBLE", "NULL::DOUBLE")
    contract = ("audit_id", "host", "port", "protocol", "service", "vuln_id", "cve", "title", "cvss_vector",
                "cvss_score", "severity", "category", "first_seen", "scanner", "scanner_severity", "cwe")  # fmt: skip
    extra = "".join(f", {ident(c)}" for c in columns if c not in contract)
    return f"""
        WITH k AS (SELECT * FROM chk_findings WHERE {kept_sql}),
        m AS (SELECT k.*, cv.cvss_version, cv.cvss_score AS vec_score, cv.severity_cvss, cv.cvss_error,
                     cm.cve_out, cm.vuln_key, {known} AS known_exploited, {ransom} AS ransomware_use,
                     {epss} AS epss, {pct} AS epss_percentile,
                     coalesce(category_n, CASE least({", ".join(prio)}) {cats} END, 'other') AS category_c
              FROM k LEFT JOIN cvss_map cv ON k.cvss_vector = cv.vector
              LEFT JOIN cve_map cm ON {on} {" ".join(joins)}),
        f AS (SELECT m.*, {_hashes()} FROM m),
        d AS (SELECT f.*, coalesce(fp.nd, 0) AS n_duplicates FROM f LEFT JOIN fp_dup fp ON f.line = fp.line
              WHERE fp.line IS NULL OR fp.nd >= 0)
        SELECT audit_id, host_n AS host, port_i AS port, protocol_n AS protocol, service, vuln_id, cve_out AS cve,
               title, cvss_vector, coalesce(vec_score, score) AS cvss_score,
               coalesce(severity_n, severity_cvss) AS severity, category_c AS category, first_seen_d AS first_seen,
               'findings.csv' AS source_file, line AS source_row{extra},
               {"scanner" if "scanner" in columns else "NULL::VARCHAR"} AS scanner,
               NULL::VARCHAR AS scanner_severity, {"cwe" if "cwe" in columns else "NULL::VARCHAR"} AS cwe,
               a_finess AS finess, cvss_version, cvss_error, severity_cvss, NULL::VARCHAR AS severity_scanner,
               CASE WHEN severity_n IS NOT NULL THEN 'given' WHEN severity_cvss IS NOT NULL THEN 'cvss'
                    ELSE 'unknown' END AS severity_source,
               coalesce(severity_cvss IS NOT NULL AND severity_n IS NOT NULL AND severity_cvss <> severity_n, false)
                   AS severity_mismatch,
               vuln_key, lower(lpad(to_hex(h1), 16, '0') || lpad(to_hex(h2), 16, '0')) AS fingerprint,
               n_duplicates::INTEGER AS n_duplicates, known_exploited, ransomware_use,
               epss, epss_percentile, {sql_str(kev_label) if kev_label else "NULL::VARCHAR"} AS kev_catalog,
               {sql_str(epss_label) if epss_label else "NULL::VARCHAR"} AS epss_catalog, year
        FROM d
        ORDER BY audit_id, host, port, protocol, vuln_id, source_row"""
