"""The row rules of findings, one rule set for every source: ``findings.csv`` (in memory and in chunks) and
the rows read from scanner exports (``scans/<audit_id>/*``).

A rule either rejects the row (required cells and keys: ``audit_id``, ``host``, ``vuln_id``, ``title``) or,
for an optional cell that cannot be read, blanks that cell with a warning: an optional column never costs
a finding. Every violation names its file, its row (physical line of a CSV, item number of a scanner
export), its column, its rule code (:data:`cyberobs_lib.checks.RULES`) and the offending value.
"""

from __future__ import annotations

import pandas as pd

from cyberobs_lib import schema as S
from cyberobs_lib.checks import TableCheck, _check_date, _lower_strip, _on_distinct
from cyberobs_lib.parsing import cve_list_ok, cvss_vector_ok, parse_float, parse_int


def perimeter_index(hosts: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    """Audits listed in hosts.csv and their ``audit_id\\x00host`` keys (built once, probed per chunk)."""
    perim = hosts[["audit_id", "host"]].dropna().drop_duplicates()
    keys = perim["audit_id"].astype(str) + "\x00" + perim["host"].astype(str)
    return pd.Index(perim["audit_id"].unique()), pd.Index(keys.unique())


def findings_rules(
    c: TableCheck, *, known_audits: pd.Index, perimeter: tuple[pd.Index, pd.Index] | None, today: pd.Timestamp
) -> None:
    """The row rules of findings.csv on ``c.frame`` (typed in place), shared by the in-memory and chunked paths.

    ``known_audits``: unique audit_id values kept by the audits check; ``perimeter``: :func:`perimeter_index`
    of hosts.csv (None: no perimeter warning). Index lookups reuse the hash table each Index built once.
    """
    f = c.frame
    c.add(f["audit_id"].notna() & (known_audits.get_indexer(f["audit_id"]) < 0), "audit_id", "unknown_audit")
    f["host"] = _lower_strip(f["host"])
    port, bad = parse_int(f["port"])
    c.add(bad | (port < 0) | (port > 65535), "port", "port_range")
    f["port"] = port.where((port >= 0) & (port <= 65535)).astype("Int32")
    proto = _on_distinct(f["protocol"], lambda u: u.str.lower())
    c.add(proto.notna() & ~proto.isin(S.PROTOCOLS), "protocol", "unknown_protocol")
    f["protocol"] = proto
    score, bad = parse_float(f["cvss_score"])
    c.add(bad | (score < 0) | (score > 10), "cvss_score", "cvss_score_range")
    f["cvss_score"] = score.where((score >= 0) & (score <= 10))
    c.add(~_on_distinct(f["cvss_vector"], cvss_vector_ok, text=False), "cvss_vector", "bad_cvss_vector")
    sev = _lower_strip(f["severity"])
    c.add(sev.notna() & ~sev.isin(S.SEVERITIES), "severity", "unknown_severity")
    f["severity"] = sev
    cat = _lower_strip(f["category"])
    c.add(cat.notna() & ~cat.isin(S.FINDING_CATEGORIES), "category", "unknown_category_label")
    f["category"] = cat
    c.add(~_on_distinct(f["cve"], cve_list_ok, text=False), "cve", "bad_cve")
    f["first_seen"] = _check_date(c, "first_seen", today=today)
    _duplicates_findings(c)
    if perimeter is not None:
        audited, keys = perimeter
        inside = keys.get_indexer(f["audit_id"].astype(str) + "\x00" + f["host"].astype(str)) >= 0
        outside = pd.Series((audited.get_indexer(f["audit_id"]) >= 0) & ~inside, index=f.index)
        c.add(outside, "host", "host_not_in_perimeter", severity="warning")


def _duplicates_findings(c: TableCheck) -> None:
    exact = c.frame.duplicated(keep="first")
    c.duplicates = c.frame.index[exact]
    if exact.any():
        c.add(
            exact,
            "vuln_id",
            "duplicate_row",
            severity="warning",
            message="exact copy of an earlier finding row; counted once",
        )
