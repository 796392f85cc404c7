"""The contract's row rules in DuckDB SQL, table by table, in the order of :mod:`cyberobs_lib.validate`.

Each ``check_<table>`` builds ``chk_<table>`` from the cleaned view ``cln_<table>`` (``line``, ``ragged``,
cells trimmed, empty cells NULL): the normalized cells, ``dup`` (exact copy of an earlier row, compared
on the same normalized columns as ``validate``) and ``mask``, one bit per :class:`Rule` in check order.
A row is rejected when it has an error bit and is not an exact duplicate (``ingest.split_file``); its reason
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
#: Python's Unicode ``\s`` as an RE2 class.
WS = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
#: ``parsing._FR_NUMBER_RE`` (ASCII digits) and its group separators.
GROUP_SEP = "[ \u00a0\u202f]"
FR_NUMBER = rf"[+-]?(?:[0-9]{{1,3}}(?:{GROUP_SEP}[0-9]{{3}})+|[0-9]+)?(?:[.,][0-9]*)?(?:[eE][+-]?[0-9]+)?"
#: ``parsing._ISO_DATE_RE`` and ``parsing._FR_DATE_RE`` (anchored by ``regexp_full_match``/``regexp_extract``).
ISO_DATE = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
    r"(Z|([+-])([0-9]{2}):?([0-9]{2})?)?)?$"
)
FR_DATE = (
    rf"^([0-9]{{1,2}})/([0-9]{{1,2}})/([0-9]{{4}})(?:{WS}+([0-9]{{1,2}}):([0-9]{{2}})(?::([0-9]{{2}}))?)?$"
)
#: ``rows._BARE_V3``: a CVSS v3 vector without its ``CVSS:3.x/`` prefix (read as CVSS:3.0, with a warning).
BARE_V3 = r"^AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[NLH]/I:[NLH]/A:[NLH]"


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
    iso = sql_str(ISO_DATE)
    fr = sql_str(FR_DATE)
    macros = [
        # parsing._french_number: digits with optional groups of three (space, NBSP, NNBSP), a decimal
        # point or comma, an exponent; nothing else (no inf/nan, no underscore, no thousands dot)
        f"num(x) AS CASE WHEN regexp_full_match(x, {sql_str(FR_NUMBER)}) AND regexp_matches(x, '[0-9]') "
        f"THEN TRY_CAST(replace(regexp_replace(x, {sql_str(GROUP_SEP)}, '', 'g'), ',', '.') AS DOUBLE) END",
        # parsing.parse_int: a whole finite number (12, 12.0, 1 804, 1804,0)
        "int_val(x) AS CASE WHEN isfinite(num(x)) AND num(x) = floor(num(x)) THEN TRY_CAST(num(x) AS BIGINT) END",
        "int_bad(x) AS x IS NOT NULL AND int_val(x) IS NULL",
        # parsing.parse_float
        "flt_val(x) AS num(x)",
        "flt_bad(x) AS x IS NOT NULL AND flt_val(x) IS NULL",
        # parsing.parse_dates: a whole ISO 8601 date or date-time (offset applied, then naive UTC) or a
        # French dd/mm/yyyy [hh:mm[:ss]]; impossible dates and times are bad
        "ts_of(d, h, mi, s) AS try_strptime(d || ' ' || coalesce(NULLIF(h, ''), '00') || ':' "
        "|| coalesce(NULLIF(mi, ''), '00') || ':' || coalesce(NULLIF(s, ''), '00'), '%Y-%m-%d %H:%M:%S')",
        "iso_parts(p) AS ts_of(p.d, p.h, p.mi, p.s) + to_microseconds(CASE WHEN p.f = '' THEN 0 "
        "ELSE rpad(left(p.f, 6), 6, '0')::BIGINT END) - CASE WHEN p.tz IN ('', 'Z') THEN INTERVAL 0 MINUTE "
        "WHEN p.oh::INT <= 23 AND coalesce(NULLIF(p.om, ''), '0')::INT <= 59 THEN to_minutes((CASE p.sg "
        "WHEN '-' THEN -1 ELSE 1 END) * (p.oh::INT * 60 + coalesce(NULLIF(p.om, ''), '0')::INT)) END",
        "fr_parts(p) AS ts_of(p.y || '-' || lpad(p.m, 2, '0') || '-' || lpad(p.d, 2, '0'), lpad(p.h, 2, '0'), "
        "p.mi, p.s)",
        f"date_raw(x) AS CASE WHEN regexp_full_match(x, {iso}) THEN iso_parts(regexp_extract(x, {iso}, "
        "['d', 'h', 'mi', 's', 'f', 'tz', 'sg', 'oh', 'om'])) "
        f"WHEN contains(x, '/') AND regexp_full_match(x, {fr}) THEN fr_parts(regexp_extract(x, {fr}, "
        "['d', 'm', 'y', 'h', 'mi', 's'])) END",
        "date_val(x) AS CASE WHEN date_raw(x) BETWEEN TIMESTAMP '1677-09-21 00:12:44' "
        "AND TIMESTAMP '2262-04-11 23:47:16' THEN date_raw(x) END",
        "date_bad(x) AS x IS NOT NULL AND date_val(x) IS NULL",
        # audit_date and declared_on: the (UTC) day of a date-time, after the date rules
        "day_val(x) AS date_trunc('day', date_val(x))",
        f"is_future(x) AS date_val(x) > TIMESTAMP {sql_str(today)}",
        f"too_early(x) AS date_val(x) < TIMESTAMP {sql_str(MIN_AUDIT_DATE)}",
        "zfill(x, n) AS CASE WHEN length(x) < n THEN lpad(x, n, '0') ELSE x END",
        # validate._clean_finess: upper-cased, every (Unicode) blank removed
        f"fin_norm(x) AS NULLIF(upper(regexp_replace(x, {sql_str(WS + '+')}, '', 'g')), '')",
        # registry.finess_format_ok (department from the prefix, 97x/98x by their four-character prefix)
        "fin_dep(f) AS CASE WHEN left(f, 2) IN ('97', '98') "
        "THEN (SELECT department FROM ref_overseas WHERE finess_prefix = left(f, 4)) "
        "ELSE (SELECT department FROM ref_metro WHERE department = left(f, 2)) END",
        "fin_fmt(f) AS coalesce(length(f) = 9 AND regexp_full_match(substr(f, 3), '[0-9]{7}') "
        "AND fin_dep(f) IS NOT NULL, false)",
        # registry.finess_lost_leading_zero: 8 digits, a valid format once zero-padded
        "fin_lost(f) AS coalesce(regexp_full_match(f, '[0-9]{8}') AND fin_fmt('0' || f), false)",
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


def _create(con, name: str, body: str, rules: list[Rule], *, drop: tuple[str, ...] = (),
            rename: dict[str, str] | None = None) -> None:  # fmt: skip
    """``chk_<name>``: ``body`` with its ``mask``, less the ``drop`` columns; ``rename``: computed columns
    that replace cells (the cell itself is dropped, the computed column takes its name)."""
    rename = rename or {}
    drop = (*drop, *rename, *(ident(c) for c in rename.values()))
    keep = f"* EXCLUDE ({', '.join(drop)})" if drop else "*"
    keep += "".join(f", {k} AS {ident(v)}" for k, v in rename.items())
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
                               ELSE legal_status END) AS legal_key, zfill(upper(department), 2) AS dep_l,
                          CASE WHEN regexp_full_match(region, '[0-9]') THEN '0' || region ELSE region END AS reg_l,
                          int_val(beds) AS beds_i
                   FROM cln_establishments),
        f AS (SELECT n.*, fin_fmt(fin) AS fmt_ok, fin_lost(fin) AS lost, l.legal_status AS legal_n,
                     k.category_code IS NOT NULL AS cat_known,
                     CASE WHEN dep_l IN (SELECT department FROM ref_registry_dep UNION SELECT registry_code
                                         FROM ref_registry_dep) THEN dep_l END AS dep_n,
                     CASE WHEN reg_l IN (SELECT region_code FROM ref_region) THEN reg_l END AS reg_n
              FROM n LEFT JOIN ref_legal l ON n.legal_key = l.key LEFT JOIN ref_categories k ON n.cat = k.category_code),
        g AS (SELECT f.*, fmt_ok AND coalesce(luhn_ok(fin), false) AS key_ok, {_dup(["fin", *raw]) if not fatal else "false"} AS dup FROM f)
        SELECT g.*, NOT dup AND fin IS NOT NULL AND row_number() OVER (PARTITION BY fin, dup ORDER BY line) > 1 AS dup_id
        FROM g"""
    if not fatal:
        rules += [
            Rule("finess_leading_zero", "finess", "lost"),
            Rule("finess_format", "finess", "fin IS NOT NULL AND NOT fmt_ok AND NOT lost"),
            Rule("finess_check_key", "finess", "fmt_ok AND NOT key_ok", "warning"),
            Rule("duplicate_row", "finess", "dup", "warning"),
            Rule("duplicate_id", "finess", "dup_id"),
            Rule("unknown_category", "category_code", "cat IS NOT NULL AND NOT cat_known"),
            # optional cells that cannot be read: blanked (in the canonical table), with a warning
            Rule(
                "unknown_legal_status",
                "legal_status",
                "legal_status IS NOT NULL AND legal_n IS NULL",
                "warning",
            ),
            Rule("not_integer", "beds", "beds IS NOT NULL AND beds_i IS NULL", "warning"),
            Rule("negative_count", "beds", "beds_i < 0", "warning"),
            Rule("unknown_department", "department", "dep_l IS NOT NULL AND dep_n IS NULL", "warning"),
            Rule("unknown_region", "region", "reg_l IS NOT NULL AND reg_n IS NULL", "warning"),
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
               fin IN (SELECT finess FROM est_ref) AS fin_known, fin_lost(fin) AS lost
        FROM n"""
    if not fatal:
        rules += [
            Rule("duplicate_row", "audit_id", "dup", "warning"),
            Rule("duplicate_id", "audit_id", "dup_id"),
            Rule("finess_leading_zero", "finess", "lost"),
            Rule("unknown_finess", "finess", "fin IS NOT NULL AND NOT lost AND NOT fin_known"),
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
    needed = "fin IS NULL AND family IS NULL"
    body = f"""
        WITH n AS (SELECT *, fin_norm(finess) AS fin, zfill(category_code, 3) AS cat,
                          {lw.format("nature")} AS nature_l, {lw.format('"type"')} AS type_l,
                          {lw.format("impact_on_care")} AS impact_l,
                          {_dup([ident(c) for c in columns]) if not fatal else "false"} AS dup
                   FROM cln_incidents)
        SELECT n.*, NOT dup AND incident_id IS NOT NULL
                    AND row_number() OVER (PARTITION BY incident_id, dup ORDER BY line) > 1 AS dup_id,
               fin_fmt(fin) AS fmt_ok, fin_lost(fin) AS lost, fin IN (SELECT finess FROM est_ref) AS fin_known,
               cat IN (SELECT category_code FROM ref_categories) AS cat_known,
               (SELECT a.nature FROM nature_alias a WHERE a.alias = nature_l) AS nature_n,
               CASE WHEN in_vocab(type_l, 'incident_type') THEN type_l END AS type_n,
               CASE WHEN in_vocab(impact_l, 'impact') THEN impact_l END AS impact_n
        FROM n"""
    if not fatal:
        rules += [
            Rule("duplicate_row", "incident_id", "dup", "warning"),
            Rule("duplicate_id", "incident_id", "dup_id"),
            Rule("bad_date", "declared_on", "date_bad(declared_on)"),
            Rule("future_date", "declared_on", "is_future(declared_on)"),
            Rule("date_too_early", "declared_on", "too_early(declared_on)"),
            Rule("finess_leading_zero", "finess", "lost"),
            Rule("finess_format", "finess", "fin IS NOT NULL AND NOT fmt_ok AND NOT lost"),
            Rule("unknown_finess", "finess", "fin IS NOT NULL AND fmt_ok AND NOT fin_known", "warning"),
            Rule(
                "incident_without_frame", "finess", "fin IS NULL AND category_code IS NULL AND family IS NULL"
            ),
            # an unknown category rejects the row only when it is its frame; otherwise it is blanked
            Rule("unknown_category", "category_code", "cat IS NOT NULL AND NOT cat_known AND " + needed),
            Rule(
                "unknown_category",
                "category_code",
                f"cat IS NOT NULL AND NOT cat_known AND NOT ({needed})",
                "warning",
            ),
            Rule("unknown_nature", "nature", "nature IS NOT NULL AND nature_n IS NULL"),
            Rule("unknown_incident_type", "type", "type_l IS NOT NULL AND type_n IS NULL", "warning"),
            Rule("unknown_impact", "impact_on_care", "impact_l IS NOT NULL AND impact_n IS NULL", "warning"),
        ]
    _create(con, "incidents", body, rules)
    return rules


def check_findings(con, present: list[str], columns: list[str], *, perimeter: bool, today: str) -> list[Rule]:
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
        "LEFT JOIN perim_audits p ON v.audit_id = p.audit_id "
        "LEFT JOIN perim_keys h ON v.audit_id = h.audit_id AND v.host_n = h.host"
        if perimeter
        else ""
    )
    perim_cols = "p.audit_id IS NOT NULL AS perim_audit, h.audit_id IS NOT NULL AS perim_host" if perimeter else (
        "false AS perim_audit, false AS perim_host")  # fmt: skip
    future = f"TIMESTAMP {sql_str(today)} + INTERVAL 1 DAY"  # rows.findings_rules: after today + 1 day
    rx = _cvss_regex()
    sep = SEPARATORS
    cve_ok = rf"(?i){sep}*(CVE-\d{{4}}-\d{{4,}}({sep}+CVE-\d{{4}}-\d{{4,}})*)?{sep}*"
    # rows._keep_cves: the well-formed ids of a bad list, upper-cased, ';'-joined
    keep_cves = (f"NULLIF(array_to_string(list_filter(regexp_split_to_array(upper(cve), {sql_str(sep + '+')}), "
                 "lambda i: regexp_full_match(i, 'CVE-[0-9]{4}-[0-9]{4,}')), ';'), '')")  # fmt: skip
    vocab = "CASE WHEN in_vocab({0}_l, '{1}') THEN {0}_l END AS {0}_n"
    body = f"""
        WITH n AS (SELECT *, lower(host) AS host_n, lower(protocol) AS protocol_l, lower(severity) AS severity_l,
                          lower(category) AS category_l, num(port) AS port_d, flt_val(cvss_score) AS score_d,
                          date_val(first_seen) AS first_seen_p,
                          coalesce(regexp_matches(cvss_vector, {sql_str(BARE_V3)}), false) AS vec_bare,
                          cve IS NOT NULL AND NOT regexp_full_match(cve, {sql_str(cve_ok)}) AS cve_bad
                   FROM cln_findings),
        v AS (SELECT n.*, CASE WHEN vec_bare THEN 'CVSS:3.0/' || cvss_vector ELSE cvss_vector END AS vec_p FROM n),
        j AS (SELECT v.*, CASE WHEN isfinite(port_d) AND port_d = floor(port_d) AND port_d BETWEEN 0 AND 65535
                               THEN port_d::INTEGER END AS port_i,
                     CASE WHEN score_d BETWEEN 0 AND 10 THEN score_d END AS score,
                     {vocab.format("protocol", "protocol")}, {vocab.format("severity", "severity")},
                     {vocab.format("category", "category")},
                     CASE WHEN regexp_full_match(vec_p, {sql_str(rx)}) THEN vec_p END AS vec_n,
                     CASE WHEN cve_bad THEN {keep_cves} ELSE cve END AS cve_n,
                     CASE WHEN first_seen_p > {future} THEN NULL ELSE first_seen_p END AS first_seen_d,
                     a.audit_id IS NOT NULL AS aud_known, a.finess AS a_finess, a.year, {perim_cols}
              FROM v LEFT JOIN aud_f a ON v.audit_id = a.audit_id {perim_join})
        SELECT j.*, false AS dup FROM j"""
    blank = "warning"  # an optional cell that cannot be read is blanked with a warning: it never rejects
    rules += [
        Rule("unknown_audit", "audit_id", "audit_id IS NOT NULL AND NOT aud_known"),
        Rule("port_range", "port", "port IS NOT NULL AND port_i IS NULL", blank),
        Rule("unknown_protocol", "protocol", "protocol_l IS NOT NULL AND protocol_n IS NULL", blank),
        Rule("cvss_score_range", "cvss_score", "cvss_score IS NOT NULL AND score IS NULL", blank),
        Rule("cvss_vector_prefix", "cvss_vector", "vec_bare", blank),
        Rule("bad_cvss_vector", "cvss_vector", "vec_p IS NOT NULL AND vec_n IS NULL", blank),
        Rule("unknown_severity", "severity", "severity_l IS NOT NULL AND severity_n IS NULL", blank),
        Rule("unknown_category_label", "category", "category_l IS NOT NULL AND category_n IS NULL", blank),
        Rule("bad_cve", "cve", "cve_bad", blank),
        Rule("bad_date", "first_seen", "date_bad(first_seen)", blank),
        Rule("future_date", "first_seen", f"first_seen_p > {future}", blank),
        Rule("duplicate_row", "vuln_id", "dup", "warning"),
        Rule("host_not_in_perimeter", "host", "perim_audit AND NOT perim_host", "warning"),
    ]
    raw = [
        c
        for c in ("host", "port", "protocol", "cvss_score", "severity", "category", "first_seen")
        if c in columns
    ]
    helpers = ("port_d", "score_d", "protocol_l", "severity_l", "category_l", "first_seen_p", "vec_bare", "cve_bad",
               "vec_p", "aud_known", "perim_audit", "perim_host")  # fmt: skip
    # the blanked vector and CVE list take the place of the cells (exact copies are compared on them)
    _create(con, "findings", body, rules, drop=(*map(ident, raw), *helpers),
            rename={"vec_n": "cvss_vector", "cve_n": "cve"})  # fmt: skip
    _mark_duplicates(con, "findings", dup_cols, 1 << [r.code for r in rules].index("duplicate_row"))
    return rules


#: Structural patterns of CVSS vectors (v3.x, v4.0, v2 with Nessus' ``CVSS2#`` prefix or brackets): SQL
#: cannot call the ``cvss`` library that validation uses (``parsing.score_cvss_vector``), so the baseline
#: checks the shape of a vector only, a close approximation on well-formed exports.
_CVSS_PATTERNS = (
    r"CVSS:3\.[01]/AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[NLH]/I:[NLH]/A:[NLH](/.*)?",
    r"CVSS:4\.0/AV:[NALP]/AC:[LH]/AT:[NP]/PR:[NLH]/UI:[NPA]/VC:[HLN]/VI:[HLN]/VA:[HLN]/SC:[HLN]/SI:[HLN]/SA:[HLN](/.*)?",
    r"(CVSS2#)?\(?AV:[LAN]/AC:[HML]/Au:[MSN]/C:[NPC]/I:[NPC]/A:[NPC](/.*)?\)?",
)


def _cvss_regex() -> str:
    """The CVSS patterns as one RE2 alternation."""
    return "|".join(f"(?:{p})" for p in _CVSS_PATTERNS)
