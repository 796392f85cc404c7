"""The contract's row rules in DuckDB SQL, table by table, in the order of :mod:`cyberobs_lib.validate`.

Each ``check_<table>`` builds ``chk_<table>`` from the cleaned view ``cln_<table>`` (``line``, ``ragged``,
cells trimmed, empty cells NULL): the normalized cells, ``dup`` (exact copy of an earlier row, compared
on the same normalized columns as ``validate``) and ``mask``, one bit per :class:`Rule` in check order.
A row is rejected when it has an error bit and is not an exact duplicate (``ingest._split``); its reason
is its first error rule. Vocabularies come from :mod:`cyberobs_lib.schema` and the package's mapping
tables, registered as DuckDB tables by :func:`register_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from duckdb_csv import ident, run, sql_str

from cyberobs_lib import registry
from cyberobs_lib import schema as S
from cyberobs_lib.config import MIN_AUDIT_DATE

#: ``parsing.cve_list_ok`` splits on ``[;,\s]+`` with Python's Unicode ``\s``; RE2's ``\s`` is ASCII only.
SEPARATORS = (
    r"[;,\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)


@dataclass(frozen=True)
class Rule:
    """One contract rule: its reason code, column, severity and SQL condition (NULL counts as false)."""

    code: str
    column: str
    cond: str
    severity: str = "error"


def mask_sql(rules: list[Rule]) -> str:
    """A BIGINT with bit ``i`` set where rule ``i`` holds."""
    if not rules:
        return "0::BIGINT"
    return " | ".join(f"(CASE WHEN {r.cond} THEN {1 << i} ELSE 0 END)::BIGINT" for i, r in enumerate(rules))


def error_bits(rules: list[Rule]) -> int:
    """The mask of the error rules (warnings never reject)."""
    return sum(1 << i for i, r in enumerate(rules) if r.severity == "error")


def register_reference(con, *, today: str) -> None:
    """Vocabularies, registry tables and cell-parsing macros used by the rules.

    Tables: ``vocab(kind, value)`` (schema vocabularies), ``nature_alias(alias, nature)``,
    ``ref_categories``, ``ref_metro``/``ref_overseas`` (FINESS prefixes), ``ref_region``,
    ``ref_registry_dep``, ``ref_legal`` (folded label → legal status).
    """
    vocab = [
        (kind, v)
        for kind, values in {
            "severity": S.SEVERITIES,
            "category": S.FINDING_CATEGORIES,
            "protocol": S.PROTOCOLS,
            "control": S.CONTROLS,
            "incident_type": S.INCIDENT_TYPES,
            "impact": S.IMPACTS_ON_CARE,
            "true": sorted(S.TRUE_WORDS),
            "false": sorted(S.FALSE_WORDS),
        }.items()
        for v in values
    ]
    deps = registry.load_departments()
    region = dict(zip(deps["department"], deps["region_code"], strict=True))
    region.update(dict(zip(deps["registry_code"], deps["region_code"], strict=True)))
    legal = registry.load_legal_statuses()
    cats = registry.load_categories()
    frames = {
        "vocab": pd.DataFrame(vocab, columns=["kind", "value"]),
        "nature_alias": pd.DataFrame(list(S.NATURE_ALIASES.items()), columns=["alias", "nature"]),
        "ref_categories": cats[["category_code", "family", "aggregate_code", "sector"]].astype(str),
        "ref_metro": deps.loc[deps["finess_prefix"] == "", ["department"]],
        "ref_overseas": deps.loc[deps["finess_prefix"] != "", ["finess_prefix", "department"]],
        "ref_region": pd.DataFrame(
            [(k, v) for k, v in region.items() if v], columns=["department", "region_code"]
        ),
        "ref_registry_dep": deps[["registry_code", "department"]],
        "ref_legal": pd.DataFrame(
            {"key": registry.fold_text(legal["value"]).astype(str), "legal_status": legal["legal_status"]}
        )
        .query("legal_status != ''")
        .drop_duplicates("key"),
    }
    for name, frame in frames.items():
        con.register(f"{name}_df", frame.astype(str))
        run(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    macros = [
        "num(x) AS CASE WHEN contains(x, '_') THEN NULL ELSE TRY_CAST(x AS DOUBLE) END",
        # validate.parse_int: an integer, possibly written 12.0 or 1e3; not inf/nan
        "int_val(x) AS CASE WHEN isfinite(num(x)) AND num(x) = floor(num(x)) THEN TRY_CAST(num(x) AS BIGINT) END",
        "int_bad(x) AS x IS NOT NULL AND int_val(x) IS NULL",
        # validate.parse_float: comma decimal separator accepted, NaN is not a number
        "flt_val(x) AS CASE WHEN isnan(num(replace(x, ',', '.'))) THEN NULL ELSE num(replace(x, ',', '.')) END",
        "flt_bad(x) AS x IS NOT NULL AND flt_val(x) IS NULL",
        # validate.parse_dates: first 10 characters, ISO then dd/mm/yyyy, within pandas' Timestamp range
        "date_raw(x) AS coalesce(try_strptime(left(x, 10), '%Y-%m-%d'), try_strptime(left(x, 10), '%d/%m/%Y'))",
        "date_val(x) AS CASE WHEN date_raw(x) BETWEEN TIMESTAMP '1677-09-22' AND TIMESTAMP '2262-04-11' "
        "THEN date_raw(x) END",
        "date_bad(x) AS x IS NOT NULL AND date_val(x) IS NULL",
        f"is_future(x) AS date_val(x) > TIMESTAMP {sql_str(today)}",
        f"too_early(x) AS date_val(x) < TIMESTAMP {sql_str(MIN_AUDIT_DATE)}",
        "zfill(x, n) AS CASE WHEN length(x) < n THEN lpad(x, n, '0') ELSE x END",
        "fin_norm(x) AS upper(replace(x, ' ', ''))",
        # registry.finess_format_ok (department from the prefix, 97x/98x by their four-character prefix)
        "fin_dep(f) AS CASE WHEN left(f, 2) IN ('97', '98') "
        "THEN (SELECT department FROM ref_overseas WHERE finess_prefix = left(f, 4)) "
        "ELSE (SELECT department FROM ref_metro WHERE department = left(f, 2)) END",
        "fin_fmt(f) AS coalesce(length(f) = 9 AND regexp_full_match(substr(f, 3), '[0-9]{7}') "
        "AND fin_dep(f) IS NOT NULL, false)",
        # registry.finess_key_ok: Luhn over the 9 characters, Corsican A=1, B=2
        "luhn_digits(f) AS replace(replace(left(f, 2), 'A', '1'), 'B', '2') || substr(f, 3)",
        "luhn_ok(f) AS list_sum(list_transform(range(1, 10), lambda i: CASE WHEN i % 2 = 0 "
        "THEN (2 * TRY_CAST(substr(luhn_digits(f), i, 1) AS INT)) - CASE WHEN TRY_CAST(substr(luhn_digits(f), i, 1) "
        "AS INT) >= 5 THEN 9 ELSE 0 END ELSE TRY_CAST(substr(luhn_digits(f), i, 1) AS INT) END)) % 10 = 0",
        "in_vocab(x, k) AS x IN (SELECT value FROM vocab WHERE kind = k)",
        # registry.fold_text: accents, case, apostrophes and runs of whitespace folded
        "fold(x) AS regexp_replace(trim(strip_accents(lower(replace(x, '’', '''')))), '\\s+', ' ', 'g')",
    ]
    for m in macros:
        run(con, f"CREATE OR REPLACE TEMP MACRO {m}")


def clean_view(con, name: str, file_columns: list[str]) -> list[str]:
    """``cln_<name>``: the cells of ``src_<name>`` (already trimmed, empty → NULL), contract columns absent
    from the file added as NULL, blank records dropped (not the ragged ones: ``load_csv`` decided).
    Returns the column list (file order, then added ones)."""
    spec = S.INPUT_FILES[name]
    columns = list(file_columns) + [c for c in spec["required"] + spec["optional"] if c not in file_columns]
    cells = ", ".join(ident(c) if c in file_columns else f"NULL::VARCHAR AS {ident(c)}" for c in columns)
    blank = " AND ".join(f"{ident(c)} IS NULL" for c in file_columns) or "true"
    run(
        con,
        f"CREATE OR REPLACE VIEW cln_{name} AS SELECT line, ragged, {cells} FROM src_{name} WHERE ragged OR NOT ({blank})",
    )
    return columns


def _head(name: str, present: list[str]) -> list[Rule]:
    """ragged_row, then required_value for each required column present in the header (``validate._open``)."""
    rules = [Rule("ragged_row", "*", "ragged")]
    rules += [
        Rule("required_value", c, f"{ident(c)} IS NULL")
        for c in S.INPUT_FILES[name]["required"]
        if c in present
    ]
    return rules


def _create(con, name: str, body: str, rules: list[Rule], *, drop: tuple[str, ...] = ()) -> None:
    keep = f"* EXCLUDE ({', '.join(drop)})" if drop else "*"
    run(con, f"CREATE OR REPLACE TEMP TABLE chk_{name} AS SELECT {keep} FROM (SELECT *, {mask_sql(rules)} AS mask "
        f"FROM ({body}))")  # fmt: skip


def _mark_duplicates(con, name: str, cols: list[str], bit: int) -> None:
    """Exact copies of an earlier row (same ``cols``): ``dup`` and the ``duplicate_row`` bit set afterwards.

    A GROUP BY on a 64-bit hash of the compared columns finds the candidate groups, a GROUP BY on the
    columns themselves (candidates only) confirms them; a window over every (wide) row would sort them all.
    """
    key = f"hash({', '.join(cols)})"
    run(con, f"CREATE OR REPLACE TEMP TABLE dupkey_{name} AS SELECT {key} AS h FROM chk_{name} GROUP BY h "
        "HAVING count(*) > 1")  # fmt: skip
    run(con, f"UPDATE chk_{name} SET dup = true, mask = mask | {bit} WHERE line IN (SELECT unnest(list(line "
        f"ORDER BY line)[2:]) FROM chk_{name} WHERE {key} IN (SELECT h FROM dupkey_{name}) "
        f"GROUP BY {', '.join(cols)} HAVING count(*) > 1)")  # fmt: skip


def _dup(cols: list[str]) -> str:
    return f"row_number() OVER (PARTITION BY {', '.join(cols)} ORDER BY line) > 1"


def check_establishments(con, present: list[str], columns: list[str], *, fatal: bool) -> list[Rule]:
    """``validate.check_establishments``."""
    rules = _head("establishments", present)
    raw = [ident(c) for c in columns if c != "finess"]
    body = f"""
        WITH n AS (SELECT *, fin_norm(finess) AS fin, zfill(category_code, 3) AS cat,
                          fold(CASE WHEN regexp_full_match(legal_status, '[0-9]') THEN '0' || legal_status
                               ELSE legal_status END) AS legal_key FROM cln_establishments),
        f AS (SELECT n.*, fin_fmt(fin) AS fmt_ok, l.legal_status AS legal_n, k.category_code IS NOT NULL AS cat_known
              FROM n LEFT JOIN ref_legal l ON n.legal_key = l.key LEFT JOIN ref_categories k ON n.cat = k.category_code),
        g AS (SELECT f.*, fmt_ok AND coalesce(luhn_ok(fin), false) AS key_ok, {_dup(["fin", *raw]) if not fatal else "false"} AS dup FROM f)
        SELECT g.*, NOT dup AND fin IS NOT NULL AND row_number() OVER (PARTITION BY fin, dup ORDER BY line) > 1 AS dup_id
        FROM g"""
    if not fatal:
        rules += [
            Rule("finess_format", "finess", "fin IS NOT NULL AND NOT fmt_ok"),
            Rule("finess_check_key", "finess", "fmt_ok AND NOT key_ok", "warning"),
            Rule("duplicate_row", "finess", "dup", "warning"),
            Rule("duplicate_id", "finess", "dup_id"),
            Rule("unknown_category", "category_code", "cat IS NOT NULL AND NOT cat_known"),
            Rule("unknown_legal_status", "legal_status", "legal_status IS NOT NULL AND legal_n IS NULL"),
            Rule("not_integer", "beds", "int_bad(beds)"),
            Rule("negative_count", "beds", "int_val(beds) < 0"),
        ]
    _create(con, "establishments", body, rules)
    return rules


def check_audits(con, present: list[str], columns: list[str], *, fatal: bool) -> list[Rule]:
    """``validate.check_audits`` (``est_ref``: the kept establishments' FINESS)."""
    rules = _head("audits", present)
    body = f"""
        WITH n AS (SELECT *, fin_norm(finess) AS fin, {_dup([ident(c) for c in columns]) if not fatal else "false"} AS dup
                   FROM cln_audits)
        SELECT n.*, NOT dup AND audit_id IS NOT NULL
                    AND row_number() OVER (PARTITION BY audit_id, dup ORDER BY line) > 1 AS dup_id,
               fin IN (SELECT finess FROM est_ref) AS fin_known
        FROM n"""
    if not fatal:
        rules += [
            Rule("duplicate_row", "audit_id", "dup", "warning"),
            Rule("duplicate_id", "audit_id", "dup_id"),
            Rule("unknown_finess", "finess", "fin IS NOT NULL AND NOT fin_known"),
            Rule("bad_date", "audit_date", "date_bad(audit_date)"),
            Rule("future_date", "audit_date", "is_future(audit_date)"),
            Rule("date_too_early", "audit_date", "too_early(audit_date)"),
            Rule("not_integer", "hosts_in_scope", "int_bad(hosts_in_scope)"),
            Rule("negative_count", "hosts_in_scope", "int_val(hosts_in_scope) < 0"),
        ]
    _create(con, "audits", body, rules)
    return rules


def check_hosts(con, present: list[str], columns: list[str], *, fatal: bool) -> list[Rule]:
    """``validate.check_hosts`` (``aud_ref``: the kept audits); exact copies counted, not reported."""
    rules = _head("hosts", present)
    others = [ident(c) for c in columns if c not in ("audit_id", "host")]
    body = f"""
        WITH n AS (SELECT *, lower(host) AS host_n FROM cln_hosts)
        SELECT n.*, {_dup(["audit_id", "host_n", *others]) if not fatal else "false"} AS dup,
               audit_id IN (SELECT audit_id FROM aud_ref) AS aud_known FROM n"""
    if not fatal:
        rules.append(Rule("unknown_audit", "audit_id", "audit_id IS NOT NULL AND NOT aud_known"))
    _create(con, "hosts", body, rules)
    return rules


def check_controls(con, present: list[str], columns: list[str], *, fatal: bool) -> list[Rule]:
    """``validate.check_controls``: vocabulary warning, booleans, one statement per (audit, control)."""
    rules = _head("controls", present)
    others = [ident(c) for c in columns if c not in ("audit_id", "control", "present")]
    body = f"""
        WITH n AS (SELECT *, lower(control) AS control_n,
                          CASE WHEN in_vocab(lower(present), 'true') THEN true
                               WHEN in_vocab(lower(present), 'false') THEN false END AS present_b
                   FROM cln_controls),
        w AS (SELECT n.*, {_dup(["audit_id", "control_n", "present_b", *others]) if not fatal else "false"} AS dup,
                     count(*) OVER (PARTITION BY audit_id, control_n) AS n_same,
                     row_number() OVER (PARTITION BY audit_id, control_n ORDER BY line) AS k_same,
                     audit_id IN (SELECT audit_id FROM aud_ref) AS aud_known
              FROM n)
        SELECT w.*, NOT dup AND n_same > 1 AND present_b IS NOT NULL AND k_same > 1 AS clash FROM w"""
    if not fatal:
        rules += [
            Rule("unknown_audit", "audit_id", "audit_id IS NOT NULL AND NOT aud_known"),
            Rule(
                "unknown_control",
                "control",
                "control_n IS NOT NULL AND NOT in_vocab(control_n, 'control')",
                "warning",
            ),
            Rule("bad_boolean", "present", "present IS NOT NULL AND present_b IS NULL"),
            Rule("duplicate_id", "control", "clash"),
        ]
    _create(con, "controls", body, rules)
    return rules


def check_incidents(con, present: list[str], columns: list[str], *, fatal: bool) -> list[Rule]:
    """``validate.check_incidents`` (``est_ref`` for the FINESS warning)."""
    rules = _head("incidents", present)
    lw = "lower({0})"
    body = f"""
        WITH n AS (SELECT *, fin_norm(finess) AS fin, zfill(category_code, 3) AS cat,
                          {lw.format("nature")} AS nature_l, {lw.format('"type"')} AS type_n,
                          {lw.format("impact_on_care")} AS impact_n,
                          {_dup([ident(c) for c in columns]) if not fatal else "false"} AS dup
                   FROM cln_incidents)
        SELECT n.*, NOT dup AND incident_id IS NOT NULL
                    AND row_number() OVER (PARTITION BY incident_id, dup ORDER BY line) > 1 AS dup_id,
               fin_fmt(fin) AS fmt_ok, fin IN (SELECT finess FROM est_ref) AS fin_known,
               cat IN (SELECT category_code FROM ref_categories) AS cat_known,
               (SELECT a.nature FROM nature_alias a WHERE a.alias = nature_l) AS nature_n
        FROM n"""
    if not fatal:
        rules += [
            Rule("duplicate_row", "incident_id", "dup", "warning"),
            Rule("duplicate_id", "incident_id", "dup_id"),
            Rule("bad_date", "declared_on", "date_bad(declared_on)"),
            Rule("future_date", "declared_on", "is_future(declared_on)"),
            Rule("date_too_early", "declared_on", "too_early(declared_on)"),
            Rule("finess_format", "finess", "fin IS NOT NULL AND NOT fmt_ok"),
            Rule("unknown_finess", "finess", "fin IS NOT NULL AND fmt_ok AND NOT fin_known", "warning"),
            Rule(
                "incident_without_frame", "finess", "fin IS NULL AND category_code IS NULL AND family IS NULL"
            ),
            Rule("unknown_category", "category_code", "cat IS NOT NULL AND NOT cat_known"),
            Rule("unknown_nature", "nature", "nature IS NOT NULL AND nature_n IS NULL"),
            Rule(
                "unknown_incident_type",
                "type",
                "type_n IS NOT NULL AND NOT in_vocab(type_n, 'incident_type')",
            ),
            Rule(
                "unknown_impact",
                "impact_on_care",
                "impact_n IS NOT NULL AND NOT in_vocab(impact_n, 'impact')",
            ),
        ]
    _create(con, "incidents", body, rules)
    return rules


def check_findings(con, present: list[str], columns: list[str], *, perimeter: bool) -> list[Rule]:
    """``scale.chunked.check_findings_chunk`` (the rules of ``validate.check_findings``), every row at once.

    ``aud_f`` holds the kept audits (``audit_id``, ``finess``, ``year``); with ``perimeter``,
    ``perim_audits`` and ``perim_keys`` (every hosts.csv row, as ``perimeter_index``) give the
    ``host_not_in_perimeter`` warning.
    """
    rules = _head("findings", present)
    norm = {"host": "host_n", "port": "port_i", "protocol": "protocol_n", "cvss_score": "score",
            "severity": "severity_n", "category": "category_n", "first_seen": "first_seen_d"}  # fmt: skip
    dup_cols = [norm.get(c, ident(c)) for c in columns]
    perim_join = (
        "LEFT JOIN perim_audits p ON n.audit_id = p.audit_id "
        "LEFT JOIN perim_keys h ON n.audit_id = h.audit_id AND n.host_n = h.host"
        if perimeter
        else ""
    )
    perim_cols = "p.audit_id IS NOT NULL AS perim_audit, h.audit_id IS NOT NULL AS perim_host" if perimeter else (
        "false AS perim_audit, false AS perim_host")  # fmt: skip
    body = f"""
        WITH n AS (SELECT *, lower(host) AS host_n, lower(protocol) AS protocol_n, lower(severity) AS severity_n,
                          lower(category) AS category_n, num(port) AS port_d,
                          num(replace(cvss_score, ',', '.')) AS score_d, date_val(first_seen) AS first_seen_d
                   FROM cln_findings),
        j AS (SELECT n.*, CASE WHEN isfinite(port_d) AND port_d = floor(port_d) AND port_d BETWEEN 0 AND 65535
                               THEN port_d::INTEGER END AS port_i,
                     CASE WHEN NOT isnan(score_d) AND score_d BETWEEN 0 AND 10 THEN score_d END AS score,
                     a.audit_id IS NOT NULL AS aud_known, a.finess AS a_finess, a.year, {perim_cols}
              FROM n LEFT JOIN aud_f a ON n.audit_id = a.audit_id {perim_join})
        SELECT j.*, false AS dup FROM j"""
    rx = _cvss_regex()
    sep = SEPARATORS
    cve_ok = rf"(?i){sep}*(CVE-\d{{4}}-\d{{4,}}({sep}+CVE-\d{{4}}-\d{{4,}})*)?{sep}*"
    rules += [
        Rule("unknown_audit", "audit_id", "audit_id IS NOT NULL AND NOT aud_known"),
        Rule("port_range", "port", "port IS NOT NULL AND port_i IS NULL"),
        Rule("unknown_protocol", "protocol", "protocol_n IS NOT NULL AND NOT in_vocab(protocol_n, 'protocol')"),
        Rule("cvss_score_range", "cvss_score", "cvss_score IS NOT NULL AND score IS NULL"),
        Rule("bad_cvss_vector", "cvss_vector", f"cvss_vector IS NOT NULL AND NOT regexp_full_match(cvss_vector, {sql_str(rx)})"),
        Rule("unknown_severity", "severity", "severity_n IS NOT NULL AND NOT in_vocab(severity_n, 'severity')"),
        Rule("unknown_category_label", "category", "category_n IS NOT NULL AND NOT in_vocab(category_n, 'category')"),
        Rule("bad_cve", "cve", f"cve IS NOT NULL AND NOT regexp_full_match(cve, {sql_str(cve_ok)})"),
        Rule("bad_date", "first_seen", "date_bad(first_seen)"),
        Rule("future_date", "first_seen", "is_future(first_seen)"),
        Rule("duplicate_row", "vuln_id", "dup", "warning"),
        Rule("host_not_in_perimeter", "host", "perim_audit AND NOT perim_host", "warning"),
    ]  # fmt: skip
    raw = [
        c
        for c in ("host", "port", "protocol", "cvss_score", "severity", "category", "first_seen")
        if c in columns
    ]
    _create(con, "findings", body, rules, drop=(*map(ident, raw), "port_d", "score_d", "aud_known", "perim_audit",
                                                "perim_host"))  # fmt: skip
    _mark_duplicates(con, "findings", dup_cols, 1 << [r.code for r in rules].index("duplicate_row"))
    return rules


def _cvss_regex() -> str:
    """``parsing.cvss_vector_ok``: the v3.x, v4.0 and v2 patterns as one RE2 alternation."""
    from cyberobs_lib import parsing

    parts = [
        p.pattern.removeprefix("^").removesuffix("$")
        for p in (parsing._CVSS3_RE, parsing._CVSS4_RE, parsing._CVSS2_RE)
    ]
    return "|".join(f"(?:{p})" for p in parts)
