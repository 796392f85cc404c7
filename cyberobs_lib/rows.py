"""The row rules of findings, one rule set for every source: ``findings.csv`` (in memory and in chunks) and
the rows read from scanner exports (``scans/<audit_id>/*``).

A rule either rejects the row (required cells and keys: ``audit_id``, ``host``, ``vuln_id``, ``title``) or,
for an optional cell that cannot be read, blanks that cell with a warning: an optional column never costs
a finding. Every violation names its file, its row (physical line of a CSV, item number of a scanner
export), its column, its rule code (:data:`cyberobs_lib.checks.RULES`) and the offending value.
"""

from __future__ import annotations

import re

import pandas as pd

from cyberobs_lib import schema as S
from cyberobs_lib.checks import RULES, TableCheck, lower_strip, on_distinct
from cyberobs_lib.parsing import cve_list_ok, cvss_vector_ok, parse_dates, parse_float, parse_int


def perimeter_index(hosts: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    """Audits listed in hosts.csv and their ``audit_id\\x00host`` keys (built once, probed per chunk)."""
    perim = hosts[["audit_id", "host"]].dropna().drop_duplicates()
    keys = perim["audit_id"].astype(str) + "\x00" + perim["host"].astype(str)
    return pd.Index(perim["audit_id"].unique()), pd.Index(keys.unique())


_BARE_V3 = r"^AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[NLH]/I:[NLH]/A:[NLH]"
_CVE_ITEM = r"^CVE-\d{4}-\d{4,}$"


def findings_rules(
    c: TableCheck, *, known_audits: pd.Index, perimeter: tuple[pd.Index, pd.Index] | None, today: pd.Timestamp
) -> None:
    """The row rules of findings on ``c.frame`` (typed in place), for every source: findings.csv in memory
    and in chunks, and the rows read from scanner exports.

    Required cells and keys reject the row (``required_value`` is the caller's: it knows its header;
    ``unknown_audit`` here). Optional cells that cannot be read are blanked with a warning, so that an
    optional column never costs a finding: ``port_range``, ``unknown_protocol``, ``cvss_score_range``,
    ``bad_cvss_vector``, ``unknown_severity``, ``unknown_category_label``, ``bad_date``, ``future_date``;
    ``bad_cve`` keeps the well-formed CVE ids of the list. A CVSS v3 vector written without its
    ``CVSS:3.x/`` prefix (some Tenable exports) is read as CVSS:3.0, with a warning.

    ``known_audits``: unique audit_id values kept by the audits check; ``perimeter``: :func:`perimeter_index`
    of hosts.csv (None: no perimeter warning). Index lookups reuse the hash table each Index built once.
    """
    f = c.frame
    warn = "warning"
    blank = "; left empty (an optional cell never rejects a finding)"
    c.add(f["audit_id"].notna() & (known_audits.get_indexer(f["audit_id"]) < 0), "audit_id", "unknown_audit")
    f["host"] = lower_strip(f["host"])
    port, bad = parse_int(f["port"])
    bad = _mask(bad | (port < 0) | (port > 65535))
    c.add(bad, "port", "port_range", severity=warn, message=RULES["port_range"] + blank)
    f["port"] = port.where(~bad.to_numpy()).astype("Int32")
    proto = on_distinct(f["protocol"], lambda u: u.str.strip().str.lower())
    bad = _mask(proto.notna() & ~proto.isin(S.PROTOCOLS))
    c.add(bad, "protocol", "unknown_protocol", severity=warn, message=RULES["unknown_protocol"] + blank)
    f["protocol"] = proto.mask(bad)
    score, bad = parse_float(f["cvss_score"])
    bad = _mask(bad | (score < 0) | (score > 10))
    c.add(bad, "cvss_score", "cvss_score_range", severity=warn, message=RULES["cvss_score_range"] + blank)
    f["cvss_score"] = score.mask(bad.to_numpy())
    vector = on_distinct(f["cvss_vector"], lambda u: u.str.strip())
    bare = on_distinct(
        vector, lambda u: u.astype("string").str.match(_BARE_V3).fillna(False).astype(bool), text=False
    )
    if bare.any():
        c.add(bare, "cvss_vector", "cvss_vector_prefix", severity=warn)
        vector = vector.mask(bare, "CVSS:3.0/" + vector.astype("string"))
    bad = ~on_distinct(vector, cvss_vector_ok, text=False)
    c.add(bad, "cvss_vector", "bad_cvss_vector", severity=warn, message=RULES["bad_cvss_vector"] + blank)
    f["cvss_vector"] = vector.mask(bad).astype(object).where(lambda v: v.notna(), None)
    sev = lower_strip(f["severity"])
    bad = _mask(sev.notna() & ~sev.isin(S.SEVERITIES))
    c.add(bad, "severity", "unknown_severity", severity=warn, message=RULES["unknown_severity"] + blank)
    f["severity"] = sev.mask(bad)
    cat = lower_strip(f["category"])
    bad = _mask(cat.notna() & ~cat.isin(S.FINDING_CATEGORIES))
    c.add(
        bad,
        "category",
        "unknown_category_label",
        severity=warn,
        message=RULES["unknown_category_label"] + "; derived by the category rules instead",
    )
    f["category"] = cat.mask(bad)
    bad = ~on_distinct(f["cve"], cve_list_ok, text=False)
    if bad.any():
        c.add(
            bad, "cve", "bad_cve", severity=warn, message=RULES["bad_cve"] + "; the well-formed ids are kept"
        )
        f["cve"] = f["cve"].where(~bad, on_distinct(f["cve"].where(bad), _keep_cves))
    parsed, bad = parse_dates(f["first_seen"])
    c.add(bad, "first_seen", "bad_date", severity=warn, message=RULES["bad_date"] + blank)
    future = _mask(parsed > today + pd.Timedelta(days=1))
    c.add(
        future,
        "first_seen",
        "future_date",
        severity=warn,
        message=f"date after today ({today.date()})" + blank,
    )
    f["first_seen"] = parsed.mask(future.to_numpy())
    _duplicates_findings(c)
    if perimeter is not None:
        audited, keys = perimeter
        inside = keys.get_indexer(f["audit_id"].astype(str) + "\x00" + f["host"].astype(str)) >= 0
        outside = pd.Series((audited.get_indexer(f["audit_id"]) >= 0) & ~inside, index=f.index)
        c.add(outside, "host", "host_not_in_perimeter", severity="warning")


def _mask(values: pd.Series) -> pd.Series:
    """A plain boolean mask (missing is False)."""
    return values.fillna(False).astype(bool)


def _keep_cves(values: pd.Series) -> pd.Series:
    """The well-formed CVE ids of each ``;``/``,``/space-separated list, ``;``-joined (None if none).

    >>> _keep_cves(pd.Series(["cve-2021-44228;foo", "bar", None], dtype="string")).tolist()
    ['CVE-2021-44228', <NA>, <NA>]
    """
    ok = re.compile(_CVE_ITEM)

    def keep(text):
        if not isinstance(text, str):
            return None
        return ";".join(i for i in re.split(r"[;,\s]+", text.upper()) if ok.match(i)) or None

    return values.map(keep, na_action="ignore").astype("string")


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
