"""Per establishment × audit counts, for an establishment's own report (its audits over time)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.lifecycle._encode import (
    FINGERPRINT,
    KNOWN_EXPLOITED,
    codes_in,
    order_audits,
    require_columns,
)
from cyberobs_lib.schema import FINDING_CATEGORIES, SEVERITIES, Audits, Findings

SEVERITY_COLUMNS = tuple(f"n_{s}" for s in SEVERITIES)
CATEGORY_COLUMNS = tuple(f"n_cat_{c}" for c in FINDING_CATEGORIES)


def _count_matrix(
    audit: np.ndarray, values: pd.Series, vocabulary: tuple[str, ...], n_audits: int, name: str
):
    """Counts per audit × vocabulary value, plus a column of missing values; unknown values raise."""
    code = pd.Index(vocabulary).get_indexer(values)
    unknown = (code < 0) & values.notna().to_numpy()
    if unknown.any():
        bad = sorted(pd.unique(values[unknown].astype(str)))[:5]
        raise ValueError(f"findings: {name} outside the vocabulary {vocabulary}: {bad}")
    code = np.where(code < 0, len(vocabulary), code)
    width = len(vocabulary) + 1
    return np.bincount(audit * width + code, minlength=n_audits * width).reshape(n_audits, width)


def establishment_evolution(findings: pd.DataFrame, audits: pd.DataFrame) -> pd.DataFrame:
    """Counts of findings per establishment and audit, by severity and category, in date order.

    Parameters
    ----------
    findings : DataFrame
        ``audit_id``, ``host``; optional ``fingerprint`` (duplicate (audit_id, fingerprint) rows
        count once), ``severity``, ``category``, ``known_exploited``.
    audits : DataFrame
        ``audit_id``, ``finess``, ``audit_date``; optional ``hosts_in_scope``.

    Returns
    -------
    DataFrame
        One row per audit (audits without findings included, with zeros), sorted by (finess,
        audit_date): ``finess``, ``audit_id``, ``audit_date``, ``audit_rank`` (1 = first audit of the
        establishment), ``hosts_in_scope`` (NA when absent), ``n_findings``, ``n_hosts_affected``
        (distinct hosts with a finding), ``n_critical`` … ``n_info`` and ``n_severity_missing``,
        ``n_cat_<category>`` for each category of the taxonomy and ``n_category_missing``, ``n_kev``
        (findings flagged known-exploited; NA when the flag is absent), ``findings_per_host``
        (``n_findings / hosts_in_scope``; NaN when the perimeter size is 0 or unknown).

    Notes
    -----
    ``n_kev`` counts the ``known_exploited`` flag (KEV catalog), whereas ``n_cat_known_exploited``
    counts the taxonomy category; a finding can be flagged without carrying that category. The
    exposure denominator is ``hosts_in_scope`` of the audit (the contract's), not the hosts with a
    finding. Severity or category values outside the vocabulary of :mod:`cyberobs_lib.schema` raise
    ``ValueError``.

    References
    ----------
    CISA Cyber Hygiene report: per-organisation vulnerability counts by severity over time.

    Examples
    --------
    >>> audits = pd.DataFrame({"audit_id": ["a1", "a2"], "finess": "750000001",
    ...     "audit_date": pd.to_datetime(["2024-01-01", "2024-07-01"]), "hosts_in_scope": [4, 4]})
    >>> findings = pd.DataFrame({"audit_id": ["a1", "a1", "a2"], "host": ["h1", "h2", "h1"],
    ...     "severity": ["high", "low", "high"]})
    >>> establishment_evolution(findings, audits)[["audit_id", "n_findings", "n_high", "findings_per_host"]]
      audit_id  n_findings  n_high  findings_per_host
    0       a1           2       1               0.50
    1       a2           1       1               0.25
    """
    require_columns(findings, (Findings.audit_id, Findings.host), table="findings")
    ordered = order_audits(audits, min_days=0)
    n_audits = len(ordered)
    audit = codes_in(findings[Findings.audit_id], pd.Index(ordered[Audits.audit_id]))
    if (audit < 0).any():
        unknown = pd.unique(findings[Findings.audit_id].to_numpy()[audit < 0])[:5]
        raise ValueError(f"findings: audit_id not in audits: {list(unknown)}")
    keep = np.ones(len(findings), dtype=bool)
    if FINGERPRINT in findings.columns:
        keep = ~pd.DataFrame({"a": audit, "f": findings[FINGERPRINT].to_numpy()}).duplicated().to_numpy()
    rows = np.flatnonzero(keep)
    audit = audit[rows]
    sub = findings.iloc[rows]

    out = pd.DataFrame(
        {
            Audits.finess: ordered[Audits.finess].to_numpy(),
            Audits.audit_id: ordered[Audits.audit_id].to_numpy(),
            Audits.audit_date: ordered[Audits.audit_date].to_numpy(),
            "audit_rank": ordered["raw_rank"].to_numpy() + 1,
        }
    )
    if Audits.hosts_in_scope in ordered.columns:
        out[Audits.hosts_in_scope] = pd.array(ordered[Audits.hosts_in_scope], dtype="Int64")
    else:
        out[Audits.hosts_in_scope] = pd.array([pd.NA] * n_audits, dtype="Int64")
    out["n_findings"] = np.bincount(audit, minlength=n_audits)
    host_pairs = pd.DataFrame({"a": audit, "h": sub[Findings.host].to_numpy()}).drop_duplicates()
    out["n_hosts_affected"] = np.bincount(host_pairs["a"].to_numpy(), minlength=n_audits)
    for col, vocab, names, missing in (
        (Findings.severity, SEVERITIES, SEVERITY_COLUMNS, "n_severity_missing"),
        (Findings.category, FINDING_CATEGORIES, CATEGORY_COLUMNS, "n_category_missing"),
    ):
        values = sub[col] if col in sub.columns else pd.Series([None] * len(sub), dtype=object)
        counts = _count_matrix(audit, values.reset_index(drop=True), vocab, n_audits, col)
        for j, name in enumerate((*names, missing)):
            out[name] = counts[:, j]
    if KNOWN_EXPLOITED in sub.columns:
        kev = pd.array(sub[KNOWN_EXPLOITED], dtype="boolean").fillna(False).to_numpy(dtype=bool)
        out["n_kev"] = pd.array(
            np.bincount(audit, weights=kev, minlength=n_audits).astype(np.int64), dtype="Int64"
        )
    else:
        out["n_kev"] = pd.array([pd.NA] * n_audits, dtype="Int64")
    denom = out[Audits.hosts_in_scope].astype("Float64")
    out["findings_per_host"] = (out["n_findings"] / denom.where(denom > 0)).astype(float)
    return out
