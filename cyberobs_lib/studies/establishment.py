"""The confidential per-establishment report: one establishment's audits, changes, remediation, and rank.

This is the only output allowed to name the establishment and its hosts: it goes to the establishment's
security officer, never into a published report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cyberobs_lib import lifecycle as lc
from cyberobs_lib.schema import SEVERITY_RANK
from cyberobs_lib.studies.indicators import unavailable_metrics, unavailable_reason

#: Metrics compared with the family; for each, a higher value means more exposure.
RANK_METRICS = ("findings_per_host", "n_crit_high", "n_kev", "hosts_in_scope")


class UnknownEstablishmentError(KeyError):
    """The FINESS is not in the dataset, or has no audit."""


def finess_parameter(value: object) -> str:
    """A FINESS given as a notebook parameter: papermill's ``-p finess 014053177`` arrives as the integer
    14053177; give it back its 9 characters.

    >>> finess_parameter(14053177), finess_parameter("2A0000212"), finess_parameter("")
    ('014053177', '2A0000212', '')
    """
    text = str(value).strip().replace(" ", "")
    return text.zfill(9) if text.isdigit() and len(text) < 9 else text


def establishment_profile(data, finess: str) -> pd.Series:
    """Registry facts of one establishment (name, family, category, legal status, region, beds)."""
    est = data.establishments.set_index("finess")
    if finess not in est.index:
        known = ", ".join(sorted(data.establishments["finess"].astype(str))[:5])
        raise UnknownEstablishmentError(f"FINESS {finess} is not in the dataset (e.g. {known}, ...)")
    row = est.loc[finess]
    cols = [
        c
        for c in ("name", "family", "category_code", "legal_status", "region", "department", "beds")
        if c in est.columns
    ]
    return pd.concat([pd.Series({"finess": finess}), row[cols]])


def establishment_audits(metrics: pd.DataFrame, finess: str) -> pd.DataFrame:
    """Its audits over time: date, exposed hosts, findings by severity, KEV, protection."""
    mine = metrics[metrics["finess"] == finess].sort_values("audit_date")
    if mine.empty:
        raise UnknownEstablishmentError(f"FINESS {finess} has no audit in the dataset")
    cols = [
        "audit_id",
        "audit_date",
        "hosts_in_scope",
        "n_findings",
        "n_critical",
        "n_high",
        "n_kev",
        "findings_per_host",
        "no_protection",
        "exposes_remote_admin",
    ]
    return mine[[c for c in cols if c in mine.columns]].reset_index(drop=True)


def severity_by_audit(data, finess: str) -> pd.DataFrame:
    """Counts of findings per audit and severity (wide: one column per severity, worst first)."""
    audits = data.audits[data.audits["finess"] == finess][["audit_id", "audit_date"]]
    f = data.findings[data.findings["audit_id"].isin(audits["audit_id"])]
    wide = pd.crosstab(f["audit_id"], f["severity"]).reindex(audits["audit_id"], fill_value=0)
    order = sorted(wide.columns, key=lambda s: -SEVERITY_RANK.get(s, -1))
    wide = wide[order]
    wide.index = audits.set_index("audit_id").loc[wide.index, "audit_date"].dt.date
    return wide


def establishment_changes(data, finess: str, *, min_days: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lifecycle of its findings: the pairs table and the detail of the last pair (fixed, new, ...).

    Returns
    -------
    (pairs, detail)
        ``pairs``: its rows of ``lifecycle.csv`` (+ drift detail); ``detail``: one row per finding of the
        last pair of audits with ``status``, ``host``, ``port``, ``severity``, ``title``.
    """
    audits = data.audits[data.audits["finess"] == finess]
    findings = data.findings[data.findings["audit_id"].isin(audits["audit_id"])]
    hosts = data.hosts[data.hosts["audit_id"].isin(audits["audit_id"])] if len(data.hosts) else None
    result = lc.match_lifecycle(
        findings, audits, hosts=hosts, establishments=data.establishments, min_days=min_days
    )
    pairs = result.pairs
    if pairs.empty:
        return pairs, pd.DataFrame(columns=["status", "host", "port", "severity", "title"])
    last = pairs.iloc[-1]
    ev = result.events
    ev = ev[
        (ev["audit_from"].astype(str) == str(last["audit_from"]))
        & (ev["audit_to"].astype(str) == str(last["audit_to"]))
    ]
    info = findings.drop_duplicates("fingerprint").set_index("fingerprint")[["port", "title"]]
    detail = ev.join(info, on="fingerprint")
    detail = detail.assign(_rank=detail["severity"].map(SEVERITY_RANK).fillna(-1))
    detail = detail.sort_values(["status", "_rank", "host"], ascending=[True, False, True])
    cols = ["status", "host", "port", "severity", "category", "title"]
    return pairs, detail[[c for c in cols if c in detail.columns]].reset_index(drop=True)


def family_percentiles(
    metrics: pd.DataFrame, finess: str, *, columns: Sequence[str] = RANK_METRICS
) -> pd.DataFrame:
    """Where it stands in its family: percentile of its latest audit in the family's latest audits.

    ``percentile`` is the mid-rank percentile (share of the family below, plus half the ties), in 0–100:
    a high percentile means more exposed than most of the family. A metric the dataset cannot measure
    (``n_kev`` without a KEV catalog) has no value nor percentile and says why in ``note``.

    Examples
    --------
    >>> m = pd.DataFrame({"finess": list("abcd"), "family": ["X"] * 4, "audit_date": pd.Timestamp("2024-01-01"),
    ...                   "findings_per_host": [1.0, 2.0, 3.0, 4.0]})
    >>> float(family_percentiles(m, "c", columns=["findings_per_host"])["percentile"].iloc[0])
    62.5
    """
    latest = metrics.sort_values("audit_date").groupby("finess", sort=False).tail(1)
    mine = latest[latest["finess"] == finess]
    if mine.empty:
        raise UnknownEstablishmentError(f"FINESS {finess} has no audit in the dataset")
    family = mine["family"].iloc[0]
    peers = latest[latest["family"] == family]
    rows = []
    missing = unavailable_metrics(metrics)
    for col in columns:
        if col not in peers.columns:
            continue
        values = peers[col].astype(float).dropna().to_numpy()
        v = float(mine[col].astype(float).iloc[0])  # NaN: unknown (e.g. n_kev without a KEV catalog)
        known = len(values) and not np.isnan(v)
        pct = 100 * (np.sum(values < v) + 0.5 * np.sum(values == v)) / len(values) if known else np.nan
        rows.append(
            {
                "metric": col,
                "value": v,
                "family": family,
                "family_median": float(np.median(values)) if len(values) else np.nan,
                "family_q1": float(np.quantile(values, 0.25)) if len(values) else np.nan,
                "family_q3": float(np.quantile(values, 0.75)) if len(values) else np.nan,
                "n_family": len(values),
                "percentile": pct,
                "note": unavailable_reason(missing[col], "en") if col in missing else "",
            }
        )
    return pd.DataFrame(rows)


def establishment_remediation(data, finess: str) -> pd.DataFrame:
    """Its fixed and still-open findings with their time open (days; open ones censored at the last audit)."""
    audits = data.audits[data.audits["finess"] == finess]
    findings = data.findings[data.findings["audit_id"].isin(audits["audit_id"])]
    hosts = data.hosts[data.hosts["audit_id"].isin(audits["audit_id"])] if len(data.hosts) else None
    iv = lc.remediation_intervals(findings, audits, hosts=hosts)
    out = (
        iv.groupby(["severity", "observed"], observed=True)
        .agg(
            n=("fingerprint", "size"),
            median_days=("duration_days", "median"),
            max_days=("duration_days", "max"),
        )
        .reset_index()
    )
    out["state"] = np.where(out["observed"], "fixed", "still open")
    return out.drop(columns="observed")


SEVERITY_COLORS = {
    "critical": "#8B0000",
    "high": "#C44E52",
    "medium": "#DD8452",
    "low": "#CCB974",
    "info": "#8C8C8C",
}


def plot_findings_by_audit(by_severity: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Stacked bars of findings per audit by severity (an audit with no finding shows an empty bar)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    x = [str(d) for d in by_severity.index]
    bottom = np.zeros(len(by_severity))
    for sev in by_severity.columns:
        ax.bar(
            x, by_severity[sev].to_numpy(), bottom=bottom, color=SEVERITY_COLORS.get(sev, "grey"), label=sev
        )
        bottom += by_severity[sev].to_numpy()
    if not len(by_severity.columns):
        ax.text(
            0.5, 0.5, "aucun constat" if lang == "fr" else "no finding", transform=ax.transAxes, ha="center"
        )
    ax.set_xlabel("date de l'audit" if lang == "fr" else "audit date")
    ax.set_ylabel("constats" if lang == "fr" else "findings")
    if len(by_severity.columns):
        ax.legend(frameon=False, fontsize="small")
    return ax
