"""Normalize canonical findings: CVE lists, CVSS severity, stable identity, categories, duplicates.

``normalize_findings`` is the stage entry point; the helpers live in one module per concept:
:mod:`.severity`, :mod:`.cve`, :mod:`.fingerprint`, :mod:`.category`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.normalize._unique import assign_categorical, map_unique
from cyberobs_lib.normalize.category import categorize_findings, load_category_rules
from cyberobs_lib.normalize.cve import normalize_cve
from cyberobs_lib.normalize.fingerprint import (
    finding_fingerprint,
    fingerprint_lanes,
    lanes_to_hex,
)
from cyberobs_lib.normalize.severity import cvss_severity, resolve_severity, scanner_severity

__all__ = [
    "normalize_findings",
    "vuln_key",
    "cvss_severity",
    "scanner_severity",
    "resolve_severity",
    "normalize_cve",
    "finding_fingerprint",
    "categorize_findings",
    "load_category_rules",
]

_OPTIONAL = ("port", "protocol", "service", "cve", "cvss_vector", "cvss_score", "severity", "category",
             "scanner", "scanner_severity", "title", "cwe")  # fmt: skip


def _take(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.append(values, None)[np.where(codes < 0, len(values), codes)]


def vuln_key(
    vuln_id: pd.Series, *, scanner: pd.Series | None = None, cve: pd.Series | None = None
) -> pd.Series:
    """Stable vulnerability key of a finding (one part of its fingerprint).

    Parameters
    ----------
    vuln_id : pandas.Series
        Scanner identifier, prefixed (``nessus:19506``) or not, or a CVE id.
    scanner : pandas.Series, optional
        Scanner name, used to prefix an unprefixed identifier.
    cve : pandas.Series, optional
        Normalized CVE lists, used when ``vuln_id`` is missing.

    Returns
    -------
    pandas.Series
        Categorical of str, lower case; missing when nothing identifies the vulnerability.

    Notes
    -----
    Rule, in order: (1) a ``vuln_id`` that is a CVE id → the normalized id (``cve-2021-44228``), so the same
    CVE reported by two scanners keeps one identity; (2) a prefixed ``vuln_id`` (``scanner:id``) → itself;
    (3) an unprefixed ``vuln_id`` → ``<scanner>:<id>`` (``unknown:<id>`` without scanner); (4) no ``vuln_id``
    → the smallest CVE of the finding's list. The scanner id is preferred to the CVE list because scanners
    add CVEs to a plugin over time, which would change the key; titles and outputs are never used.

    Examples
    --------
    >>> vuln_key(pd.Series(["Nessus:19506", "cve_2021_44228", "10940", None, None]),
    ...          scanner=pd.Series(["nessus", "nuclei", "nessus", "nessus", None]),
    ...          cve=pd.Series([None, None, None, "CVE-2017-0144;CVE-2017-0145", None])).tolist()
    ['nessus:19506', 'cve-2021-44228', 'nessus:10940', 'cve-2017-0144', nan]
    """
    v = pd.Series(vuln_id, copy=False)
    sc = (
        pd.Series(scanner, copy=False)
        if scanner is not None
        else pd.Series(None, index=v.index, dtype=object)
    )

    def _keys(u: pd.Series) -> pd.Series:
        t = u.str.strip()
        as_cve = normalize_cve(t).astype("string")
        single = as_cve.notna() & ~as_cve.str.contains(";", regex=False).fillna(False)
        k = t.str.lower().where(t.str.contains(":", regex=False).fillna(False))
        k = as_cve.str.lower().where(single, k)
        return k.where(t != "", pd.NA)

    key = map_unique(v, _keys)
    stripped = map_unique(v, lambda u: u.str.strip())
    blank = (stripped.isna() | (stripped == "")).to_numpy(dtype=bool)
    extra = np.full(len(v), None, dtype=object)
    unprefixed = key.isna().to_numpy() & ~blank
    if unprefixed.any():
        prefix = sc[unprefixed].astype(object).where(sc[unprefixed].notna(), "unknown").astype(str)
        ids = v[unprefixed].astype(str).str.strip().str.lower()
        extra[unprefixed] = (prefix.str.strip().str.lower() + ":" + ids).to_numpy()
    if cve is not None:
        missing = key.isna().to_numpy() & ~unprefixed
        if missing.any():
            first = pd.Series(cve, copy=False)[missing].astype(object)
            extra[missing] = [None if pd.isna(x) else str(x).split(";", 1)[0].lower() for x in first]
    fill = pd.notna(extra)
    if fill.any():
        key = assign_categorical(key, fill, extra[fill])
    return key


def _scanner_rating(findings: pd.DataFrame) -> pd.Series:
    """The scanner's own rating of each finding, on the canonical scale: ``scanner_severity.csv`` applied once.

    A row read from a scanner export (``scanner`` set) already carries in ``severity`` the reader's mapping
    of its native value (which knows the native scale: item type, check, port); other rows with a native
    value are mapped here by :func:`~cyberobs_lib.normalize.severity.scanner_severity`.
    """
    mapped = scanner_severity(findings["scanner_severity"], scanner=findings["scanner"])
    given = map_unique(findings["severity"], lambda u: u.str.strip().str.lower()).cat.set_categories(
        list(mapped.cat.categories)
    )
    from_reader = (findings["scanner"].notna() & given.notna()).to_numpy()
    if not from_reader.any():
        return mapped
    return mapped.where(~from_reader, given)


def normalize_findings(
    findings: pd.DataFrame, *, audits: pd.DataFrame, kev: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Normalize canonical findings: CVEs, CVSS and severity, identity, category, duplicates collapsed.

    Parameters
    ----------
    findings : pandas.DataFrame
        Canonical findings (``schema.Findings`` columns, optional ones may be absent) plus optionally
        ``scanner``, ``scanner_severity`` (native value), ``source_file``, ``source_row``, ``cwe``.
    audits : pandas.DataFrame
        ``audit_id`` and ``finess``, to attach the establishment (part of the identity).
    kev : pandas.DataFrame, optional
        The KEV catalog (:func:`cyberobs_lib.enrich.kev.read_kev`, column ``cve``) for the ``known_exploited``
        category rule; without it, that rule is skipped.

    Returns
    -------
    pandas.DataFrame
        One row per distinct (audit, fingerprint), the first row in input order kept, with the input columns
        and (text outputs are pandas categoricals of str: few distinct values among millions of rows): ``finess``; ``cve`` (normalized list ``CVE-YYYY-N;…``, sorted, unique, including a CVE given as
        ``vuln_id``); ``cvss_version``, ``cvss_score`` (computed from a valid vector, else the given score),
        ``cvss_error``; ``severity_cvss`` (band of the vector), ``severity_scanner`` (the scanner's rating:
        the canonical severity a scanner reader mapped, else the native value mapped by
        ``scanner_severity.csv``),
        ``severity`` (canonical), ``severity_source`` (``given`` | ``cvss`` | ``scanner`` | ``unknown``),
        ``severity_mismatch`` (bool); ``vuln_key`` (:func:`vuln_key`); ``fingerprint`` (32 hex,
        :func:`~cyberobs_lib.normalize.fingerprint.finding_fingerprint`); ``category``; ``n_duplicates``
        (Int64, rows of the same audit and fingerprint collapsed into this one; 0 when unique).
        ``attrs["normalize"]`` counts ``rows_read``, ``rows_kept``, ``duplicates``, ``unknown_audit``,
        ``cvss_invalid``, ``severity_mismatch``, ``severity_unknown``, ``missing_vuln_key``.

    Notes
    -----
    Vectors are scored once per distinct vector, CVE strings parsed once per distinct string, fingerprints
    hashed per distinct part, categories evaluated per distinct field value: cost grows with the number of
    rows only through vectorized numpy/pandas passes. The input is never modified.

    Examples
    --------
    >>> audits = pd.DataFrame({"audit_id": ["a1"], "finess": ["010000024"]})
    >>> f = pd.DataFrame({"audit_id": ["a1", "a1", "a1"], "host": ["10.0.0.1", "10.0.0.1", "10.0.0.2"],
    ...     "port": [3389, 3389, 443], "protocol": ["tcp"] * 3, "vuln_id": ["nessus:10940"] * 2 + ["nessus:51192"],
    ...     "title": ["RDP", "RDP (again)", "SSL Certificate Cannot Be Trusted"],
    ...     "cvss_vector": [None, None, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"]})
    >>> out = normalize_findings(f, audits=audits)
    >>> out[["category", "severity", "n_duplicates"]].values.tolist()
    [['exposed_remote_admin', nan, 1], ['tls_certificate', 'medium', 0]]
    """
    out = findings.copy()
    for col in _OPTIONAL:
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="string")
    n_read = len(out)

    amap = audits.drop_duplicates("audit_id").set_index("audit_id")["finess"]
    acodes = pd.Categorical(out["audit_id"], categories=amap.index).codes
    out["finess"] = pd.array(_take(amap.to_numpy(dtype=object, na_value=None), acodes), dtype="string")

    cve = normalize_cve(out["cve"])
    from_id = normalize_cve(out["vuln_id"])
    has_id = from_id.notna().to_numpy()
    if has_id.any():
        pair = pd.Series(cve[has_id].astype(object)).fillna("") + ";" + from_id[has_id].astype(object)
        cve = assign_categorical(cve, has_id, normalize_cve(pair).astype(object).to_numpy())
    out["cve"] = cve

    cv = cvss_severity(out["cvss_vector"])
    given_score = pd.to_numeric(out["cvss_score"], errors="coerce")
    out["cvss_version"] = cv["cvss_version"]
    out["cvss_score"] = cv["cvss_score"].where(cv["cvss_score"].notna(), given_score)
    out["cvss_error"] = cv["cvss_error"]
    out["severity_cvss"] = cv["severity"]
    out["severity_scanner"] = _scanner_rating(out)
    sev, src, mismatch = resolve_severity(
        out["severity"], cvss=cv["severity"], scanner=out["severity_scanner"]
    )
    out["severity"], out["severity_source"], out["severity_mismatch"] = sev, src, mismatch

    out["vuln_key"] = vuln_key(out["vuln_id"], scanner=out["scanner"], cve=out["cve"])
    lane0, lane1 = fingerprint_lanes(out)
    kev_cves = None if kev is None else kev["cve"].astype("string").dropna().unique()
    out["category"] = categorize_findings(out, kev_cves=kev_cves)

    fp_codes, _ = pd.factorize(lane0)
    group = acodes.astype(np.int64) * (int(fp_codes.max()) + 2 if len(fp_codes) else 1) + fp_codes
    _, first, inverse, counts = np.unique(group, return_index=True, return_inverse=True, return_counts=True)
    keep = np.sort(first)
    out = out.iloc[keep].copy()
    out["fingerprint"] = pd.array(lanes_to_hex(lane0[keep], lane1[keep]), dtype="string")
    out["n_duplicates"] = pd.array(counts[inverse.reshape(-1)[keep]] - 1, dtype="Int64")
    out.attrs["normalize"] = {
        "rows_read": n_read,
        "rows_kept": len(out),
        "duplicates": n_read - len(out),
        "unknown_audit": int((acodes < 0).sum()),
        "cvss_invalid": int(cv["cvss_error"].notna().sum()),
        "severity_mismatch": int(mismatch.sum()),
        "severity_unknown": int((src == "unknown").sum()),
        "missing_vuln_key": int(out["vuln_key"].isna().sum()),
    }
    return out
