"""The confidential per-establishment report: one establishment's audits, changes, remediation, and rank.

This is the only output allowed to name the establishment and its hosts: it goes to the establishment's
security officer, never into a published report. Every word comes from the catalog (:mod:`cyberobs_lib.l10n`)
in the report's language; registry codes are shown by their names (region, department, legal status).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cyberobs_lib import lifecycle as lc
from cyberobs_lib.l10n import as_date, fmt_date, fmt_number, has, label, text
from cyberobs_lib.registry import load_categories, load_departments
from cyberobs_lib.schema import SEVERITY_RANK
from cyberobs_lib.studies.indicators import unavailable_metrics, unavailable_reason
from cyberobs_lib.ticks import number_axis

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


def place_names(department: object, region: object, lang: str = "fr") -> tuple[str, str]:
    """The department and region of a registry row by their names: ``("Aisne (02)", "Hauts-de-France")``; a
    code the department table does not know is shown as itself.

    >>> place_names("02", "32")
    ('Aisne (02)', 'Hauts-de-France')
    """
    deps = load_departments()
    by_dep = deps.set_index("department")["name"]
    regions = dict(zip(deps["region_code"], deps["region_name"], strict=False))
    dep, reg = ("" if pd.isna(x) else str(x) for x in (department, region))
    dep_name = text("est.place", lang, name=by_dep[dep], code=dep) if dep in by_dep.index else dep
    return dep_name, regions.get(reg, reg)


def profile_view(profile: pd.Series, lang: str = "fr") -> pd.DataFrame:
    """The registry facts of :func:`establishment_profile` as a two-column reader's table (``item``,
    ``value``): name, FINESS, family, category (code and official FINESS name), legal status, region and
    department by name, beds.

    >>> p = pd.Series({"finess": "029844081", "name": "X", "family": "Home care", "category_code": "354",
    ...                "legal_status": "private_forprofit", "region": "32", "department": "02", "beds": 98})
    >>> profile_view(p, "fr")["value"].tolist()[2:]
    ['soins à domicile', '354 — Service de Soins Infirmiers A Domicile (S.S.I.A.D)', 'privé à but lucratif', 'Hauts-de-France', 'Aisne (02)', '98']
    """
    get = profile.get
    categories = load_categories().set_index("category_code")["label"]
    code = "" if pd.isna(get("category_code")) else str(get("category_code"))
    category = f"{code} — {categories[code]}" if code in categories.index else code
    department, region = place_names(get("department"), get("region"), lang)
    status = get("legal_status")
    rows = [
        ("est.name", get("name")),
        ("est.finess", get("finess")),
        ("family", label(get("family"), lang) if isinstance(get("family"), str) else ""),
        ("est.category", category),
        ("legal_status", label(f"legal_status.{status}", lang) if has(f"legal_status.{status}") else status),
        ("region", region),
        ("est.department", department),
        ("est.beds", "" if pd.isna(get("beds")) else fmt_number(get("beds"), lang)),
    ]
    return pd.DataFrame(
        [{"item": label(k, lang), "value": "" if v is None or v is pd.NA else str(v)} for k, v in rows]
    )


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


def changes_view(pairs: pd.DataFrame, audits: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """The pairs of :func:`establishment_changes` as a reader's table: the two audits by their dates, days
    between them, findings fixed, new, persistent and reopened, and the perimeter change (``+3 / −0``).

    ``audits`` is :func:`establishment_audits` (``audit_id``, ``audit_date``).
    """
    dates = dict(zip(audits["audit_id"].astype(str), audits["audit_date"], strict=True))
    out = pd.DataFrame(
        {
            "date_from": [fmt_date(dates.get(str(a)), lang) for a in pairs["audit_from"]],
            "date_to": [fmt_date(dates.get(str(a)), lang) for a in pairs["audit_to"]],
            "days": pairs["days"].to_numpy(),
            **{c: pairs[c].to_numpy() for c in ("n_fixed", "n_new", "n_persistent", "n_reopened")},
            "perimeter_change": [
                text("est.perimeter", lang, added=fmt_number(a, lang), removed=fmt_number(r, lang))
                for a, r in zip(pairs["hosts_added"], pairs["hosts_removed"], strict=True)
            ],
        }
    )
    return out


def family_percentiles(
    metrics: pd.DataFrame, finess: str, *, columns: Sequence[str] = RANK_METRICS, lang: str = "fr"
) -> pd.DataFrame:
    """Where it stands in its family: percentile of its latest audit in the family's latest audits.

    ``percentile`` is the mid-rank percentile (share of the family below, plus half the ties), in 0–100:
    a high percentile means more exposed than most of the family. A metric the dataset cannot measure
    (``n_kev`` without a KEV catalog) has no value nor percentile and says why in ``note`` (in ``lang``).

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
                "note": unavailable_reason(missing[col], lang) if col in missing else "",
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
    order = np.lexsort(
        (~out["observed"].to_numpy(bool), -out["severity"].map(SEVERITY_RANK).fillna(-1).to_numpy())
    )
    return out.iloc[order].drop(columns="observed").reset_index(drop=True)  # worst first, fixed then open


#: Colour and hatch of each severity in the figures (apart in grey print; the light "low" has a dark edge).
SEVERITY_STYLES = {
    "critical": ("#67000D", ""),
    "high": ("#C44E52", "///"),
    "medium": ("#DD8452", "..."),
    "low": ("#E8D98B", "xx"),
    "info": ("#BBBBBB", ""),
}
SEVERITY_COLORS = {sev: color for sev, (color, _) in SEVERITY_STYLES.items()}


def plot_findings_by_audit(by_severity: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Stacked bars of findings per audit by severity, worst at the bottom, each audit's total on top and its
    date in words (an audit with no finding shows an empty bar); titled, legend in ``lang``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    x = [fmt_date(as_date(d), lang, style="medium") for d in by_severity.index]
    positions = np.arange(len(x))
    bottom = np.zeros(len(by_severity))
    for sev in by_severity.columns:
        color, hatch = SEVERITY_STYLES.get(sev, ("grey", ""))
        ax.bar(positions, by_severity[sev].to_numpy(), bottom=bottom, color=color, hatch=hatch, edgecolor="0.25",
               linewidth=0.6, label=label(sev, lang))  # fmt: skip
        bottom += by_severity[sev].to_numpy()
    for pos, total in zip(positions, bottom, strict=True):
        ax.annotate(fmt_number(total, lang), (pos, total), xytext=(0, 3), textcoords="offset points", ha="center",
                    fontsize="small")  # fmt: skip
    if not len(by_severity.columns):
        ax.text(0.5, 0.5, text("est.fig.no_finding", lang), transform=ax.transAxes, ha="center")
    ax.set_xticks(positions, x)
    ax.set_xlabel(label("audit_date", lang))
    ax.set_ylabel(text("est.fig.findings.axis", lang))
    ax.set_ylim(0, max(1.0, float(bottom.max()) * 1.15) if len(bottom) else 1.0)
    ax.yaxis.get_major_locator().set_params(integer=True)  # counts
    number_axis(ax.yaxis, lang)
    ax.set_title(text("est.fig.findings.title", lang), loc="left")
    if len(by_severity.columns):
        ax.legend(frameon=False, fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


def plot_family_percentiles(ranks: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Bars of its rank in its family (0–100) for each measure named in words, the family median at 50 and
    the axis ends said in words; a measure without rank (unavailable) is left blank."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.8))
    names = [label(m, lang) for m in ranks["metric"]]
    y = np.arange(len(ranks))[::-1]
    ax.barh(y, ranks["percentile"].fillna(0).to_numpy(float), color="#2F4B7C", edgecolor="0.2")
    for yy, pct in zip(y, ranks["percentile"], strict=True):
        if pd.notna(pct):
            ax.annotate(fmt_number(pct, lang, decimals=0), (pct, yy), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize="small")  # fmt: skip
    ax.axvline(50, color="0.35", linestyle="--", linewidth=1)
    ax.annotate(text("est.fig.rank.median", lang), (50, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                textcoords="offset points", va="top", fontsize="small", color="0.3")  # fmt: skip
    ax.set_yticks(y, names)
    ax.set_xlim(0, 105)
    ax.set_xticks([0, 25, 50, 75, 100], [text("est.fig.rank.least", lang), "25", "50", "75",
                                         text("est.fig.rank.most", lang)])  # fmt: skip
    ax.set_xlabel(text("est.fig.rank.axis", lang))
    family = ranks["family"].iloc[0] if len(ranks) else ""
    ax.set_title(text("est.fig.rank.title", lang, family=label(family, lang)), loc="left")
    return ax
