"""Headline indicators of the cohort study: one row per audit, then shares, rates and medians per family.

The unit of analysis is the audit of an establishment in a period (calendar year of ``audit_date``): an
establishment counts once per period, through its first (or last) audit of that period. Every indicator
carries its confidence interval and states its method in ``ci_method`` (``indicators.csv`` vocabulary,
:data:`cyberobs_lib.schema.INDICATORS_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from cyberobs_lib.kernels.group_counts import sum_per_group
from cyberobs_lib.l10n import fmt_number, text, text_n
from cyberobs_lib.schema import INDICATORS_COLUMNS, Audits, Controls, Establishments
from cyberobs_lib.stats.proportions import wilson_interval
from cyberobs_lib.stats.rates import poisson_exact_interval
from cyberobs_lib.studies.cells import (
    ALL,
    GROUP,
    PERIOD,
    YEAR,
    AuditChoice,
    audit_order,
    in_text_order,
    rows_per_cell,
    stack_cells,
)
from cyberobs_lib.studies.finding_counts import as_mask, count_findings
from cyberobs_lib.studies.study_tables import LazyTables, StudyData

#: Protection-status column (boolean, NA = unknown) of the ``protection`` table.
NO_PROTECTION = "no_protection"
LOG_BEDS = "log_beds"
#: Binary indicators (shares, Wilson interval), and the numeric ones with their CI kind.
PROPORTION_METRICS = ("no_protection", "has_critical", "exposes_remote_admin", "has_kev")
COUNT_METRICS = ("findings_per_host", "n_crit_high", "n_findings", "n_critical", "n_kev")
#: Indicator names of :func:`compute_indicators` (the two numeric ones: a rate and a median).
INDICATORS = (*PROPORTION_METRICS, "findings_per_host", "median_crit_high")
METRICS_COLUMNS = (
    Audits.audit_id, Audits.finess, Establishments.family, Establishments.legal_status,
    Establishments.region, Establishments.beds, LOG_BEDS, Audits.audit_date, YEAR, Audits.hosts_in_scope,
    "n_findings", "n_critical", "n_high", "n_crit_high", "n_kev", "has_critical", "exposes_remote_admin",
    "has_kev", NO_PROTECTION, "findings_per_host",
)  # fmt: skip
#: Metrics that need the KEV catalog (CISA Known Exploited Vulnerabilities) at ingestion: without it they
#: are unknown (NA), never 0 — a finding not flagged is not known to be unexploited (data contract).
KEV_METRICS = ("n_kev", "has_kev")
#: Why a metric is unavailable: the ids kept in ``metrics.attrs["unavailable"]`` (and written in the
#: ``ci_method``/``variant`` of the rows that cannot be computed); the reader's sentence of each is the catalog
#: text ``st.unavailable.<id>`` (``cyberobs_lib/data/labels_studies.csv``, French and English).
UNAVAILABLE_REASONS = ("no_kev_catalog",)


def _table(data: object, name: str) -> pd.DataFrame | None:
    if isinstance(data, Mapping):
        return data.get(name)
    try:
        return getattr(data, name)
    except AttributeError:
        return None


def _columns(data: object, name: str, columns: Sequence[str]) -> pd.DataFrame | None:
    """Those of ``columns`` that table ``name`` has; from a study's folder, only they are read (rows in
    any order: the metrics are joined by key and sorted)."""
    tables = data.tables if isinstance(data, StudyData) else None
    if isinstance(tables, LazyTables):
        return tables.columns(name, columns, ordered=False) if name in tables else None
    table = _table(data, name)
    return None if table is None else table[[c for c in columns if c in table.columns]]


def kev_catalog_present(data: object) -> bool:
    """Whether the KEV catalog was given at ingestion, as the canonical tables record it.

    The ingest summary (``data.summary["catalogs"]["kev"]``, ``ingest.json``) decides when it is there;
    otherwise (tables given as a mapping) a ``known_exploited`` column of findings that is missing on
    every row means the enrichment had no catalog (:func:`cyberobs_lib.enrich.enrich_findings`); tables
    without that column (older canonical folders, hand-made tables) are taken as they are.

    >>> kev_catalog_present({"findings": pd.DataFrame({"known_exploited": pd.array([None], dtype="boolean")})})
    False
    >>> kev_catalog_present({"findings": pd.DataFrame({"category": ["other"]})})
    True
    """
    summary = getattr(data, "summary", None)
    catalogs = summary.get("catalogs") if isinstance(summary, dict) else None
    if isinstance(catalogs, dict):
        return bool(catalogs.get("kev"))
    findings = data.get("findings") if isinstance(data, Mapping) else None
    if findings is None or "known_exploited" not in findings.columns or findings.empty:
        return True
    return bool(findings["known_exploited"].notna().any())


def mark_unavailable(metrics: pd.DataFrame, data: object) -> pd.DataFrame:
    """``metrics`` with the metrics the dataset cannot measure set to missing (``Int64``/``boolean`` NA) and
    named in ``attrs["unavailable"]`` (metric → reason id of :data:`UNAVAILABLE_REASONS`).

    Today: without a KEV catalog, ``n_kev`` and ``has_kev`` are unknown, not 0 (a scanner's own
    ``known_exploited`` category is no substitute for the catalog: it would be read as a complete count).
    """
    out = metrics.copy(deep=False)
    unavailable = dict(out.attrs.get("unavailable", {}))
    if not kev_catalog_present(data):
        for col in KEV_METRICS:
            if col in out.columns:
                out[col] = pd.array(
                    [pd.NA] * len(out), dtype="boolean" if col.startswith("has_") else "Int64"
                )
            unavailable[col] = "no_kev_catalog"
    out.attrs = {**metrics.attrs, "unavailable": unavailable}
    return out


def unavailable_metrics(metrics: pd.DataFrame) -> dict[str, str]:
    """Metric → reason id (:data:`UNAVAILABLE_REASONS`) of the metrics that ``metrics`` cannot measure
    (``attrs["unavailable"]``, set by :func:`audit_metrics`).

    >>> m = pd.DataFrame({"n_kev": pd.array([None], dtype="Int64")})
    >>> m.attrs["unavailable"] = {"n_kev": "no_kev_catalog"}
    >>> unavailable_metrics(m)
    {'n_kev': 'no_kev_catalog'}
    """
    return dict(metrics.attrs.get("unavailable", {}))


def unavailable_reason(reason: str, lang: str = "fr") -> str:
    """The reader's sentence for an unavailable metric (an id of :data:`UNAVAILABLE_REASONS`; another id is
    quoted after "unavailable").

    >>> unavailable_reason("no_kev_catalog", "en")
    'unavailable: no KEV catalog in the dataset'
    >>> unavailable_reason("no_scanner", "fr")
    'non disponible : no_scanner'
    """
    if reason in UNAVAILABLE_REASONS:
        return text(f"st.unavailable.{reason}", lang)
    return text("st.unavailable.other", lang, reason=reason)


def positions(keys: pd.Series, values: pd.Series) -> np.ndarray:
    """Position in ``values`` of the first occurrence of each key (-1: absent; a missing key finds a
    missing value, as ``merge`` pairs them). Arrow's hash lookup (``index_in``) for text, pandas'
    ``get_indexer`` for anything else."""
    if not len(values):
        return np.full(len(keys), -1, dtype=np.intp)
    try:
        k, v = pa.array(keys, from_pandas=True), pa.array(values, from_pandas=True)
        k, v = (pc.cast(a, a.type.value_type) if pa.types.is_dictionary(a.type) else a for a in (k, v))
        text = all(pa.types.is_string(a.type) or pa.types.is_large_string(a.type) for a in (k, v))
        if text:
            found = pc.index_in(pc.cast(k, pa.large_string()), value_set=pc.cast(v, pa.large_string()))
            return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    first = ~values.duplicated().to_numpy()
    hit = pd.Index(values[first]).get_indexer(keys)
    return np.where(hit >= 0, np.flatnonzero(first)[hit], -1)


def _protection(data: object, audit_ids: pd.Series) -> pd.Series:
    """no_protection per audit: the ``protection`` table, else derived from ``controls``; NA = unknown."""
    aid = Audits.audit_id
    prot = _columns(data, "protection", [aid, NO_PROTECTION])
    if prot is not None and NO_PROTECTION in prot.columns:
        status = prot[NO_PROTECTION].astype("boolean").reset_index(drop=True)
        pos = positions(audit_ids, prot[aid])
    else:
        ctl = _columns(data, "controls", [Controls.audit_id, Controls.present])
        if ctl is None or ctl.empty:
            return pd.Series(pd.NA, index=audit_ids.index, dtype="boolean")
        present = ctl[Controls.present].astype("boolean").fillna(False)
        status = ~present.groupby(ctl[Controls.audit_id], observed=True).any()
        pos = positions(audit_ids, status.index.to_series())
        status = status.astype("boolean").reset_index(drop=True)
    found = pos >= 0
    out = pd.array(np.full(len(pos), pd.NA), dtype="boolean")
    if found.any():
        out[found] = status.to_numpy()[pos[found]]
    return pd.Series(out, index=audit_ids.index)


#: ``audits.scan_status`` (ingest): only ``complete`` audits enter the metrics unless asked otherwise
SCAN_STATUS = "scan_status"


def audit_metrics(data: object, *, include_incomplete: bool = False) -> pd.DataFrame:
    """One row per audit with the counts and flags that every cohort indicator and test is built from.

    Parameters
    ----------
    data : StudyData or mapping of table name -> DataFrame
        Canonical tables: ``establishments`` and ``audits`` (required), ``findings`` (optional; no
        findings means zero counts), ``protection`` (``audit_id``, ``no_protection``) or, failing it,
        ``controls`` (``audit_id``, ``control``, ``present``). Not mutated.
    include_incomplete : bool
        Keep the audits whose scans were incomplete or failed (``audits.scan_status`` other than
        ``complete``, see :func:`cyberobs_lib.ingest.audit_scan_status`). By default they are left out —
        an unfinished scan is no evidence of an establishment with nothing exposed — and counted, per
        status, in ``attrs["excluded_audits"]`` (state that number wherever the metrics are shown).

    Returns
    -------
    DataFrame, one row per audit whose establishment is known, sorted by ``finess, audit_date, audit_id``:
        ``audit_id``, ``finess``, ``family``, ``legal_status``, ``region``, ``beds``; ``log_beds`` = log(beds)
        (NaN when beds is missing or 0); ``audit_date``; ``year`` (calendar year of the audit);
        ``hosts_in_scope``; ``n_findings``, ``n_critical``, ``n_high``, ``n_crit_high`` (critical + high),
        ``n_kev`` (findings flagged ``known_exploited`` or of category ``known_exploited``; NA for every
        audit when the dataset has no KEV catalog, see :func:`mark_unavailable`); booleans
        ``has_critical`` (n_critical > 0), ``exposes_remote_admin`` (any finding of category
        ``exposed_remote_admin``), ``has_kev`` (n_kev > 0); ``no_protection`` (nullable boolean, NA when
        the protection status is unknown); ``findings_per_host`` = n_findings / hosts_in_scope (NaN when
        no host is in scope).

    Notes
    -----
    Findings are counted per audit by :func:`studies.finding_counts.count_findings`: from the Parquet
    store, batch by batch, when ``data`` was read from one and its findings are not in memory (they are
    then never read into pandas), else from the findings frame. An audit without any ``controls`` row
    has an unknown protection status, never "none" (data contract).

    Examples
    --------
    >>> est = pd.DataFrame({"finess": ["750000010"], "family": ["CH"], "legal_status": ["public"],
    ...                     "region": ["11"], "beds": [300]})
    >>> aud = pd.DataFrame({"audit_id": ["A1"], "finess": ["750000010"],
    ...                     "audit_date": pd.to_datetime(["2024-01-15"]), "hosts_in_scope": [4]})
    >>> fnd = pd.DataFrame({"audit_id": ["A1", "A1"], "severity": ["critical", "low"],
    ...                     "category": ["exposed_remote_admin", "other"]})
    >>> m = audit_metrics({"establishments": est, "audits": aud, "findings": fnd})
    >>> m[["n_findings", "n_crit_high", "has_critical", "exposes_remote_admin"]].to_dict("records")
    [{'n_findings': 2, 'n_crit_high': 1, 'has_critical': True, 'exposes_remote_admin': True}]
    """
    aid = Audits.audit_id
    est_cols = [Establishments.finess, Establishments.family, Establishments.legal_status,
                Establishments.region, Establishments.beds]  # fmt: skip
    aud_cols = [aid, Audits.finess, Audits.audit_date, Audits.hosts_in_scope]
    est = _columns(data, "establishments", est_cols)
    aud = _columns(data, "audits", [*aud_cols, SCAN_STATUS])
    if est is None or aud is None:
        raise ValueError("audit_metrics needs the 'establishments' and 'audits' tables")
    excluded: dict[str, int] = {}
    if SCAN_STATUS in aud.columns and not include_incomplete:
        status = aud[SCAN_STATUS].astype(object).where(aud[SCAN_STATUS].notna(), "complete")
        done = (status == "complete").to_numpy()
        excluded = {str(k): int(v) for k, v in status[~done].value_counts().sort_index().items()}
        aud = aud[done]
    counts = count_findings(data)

    est = est.reindex(columns=est_cols)
    aud = aud[aud_cols]
    aud = in_text_order(aud.assign(**{Audits.audit_date: pd.to_datetime(aud[Audits.audit_date])}))
    at = positions(aud[Audits.finess], est[Establishments.finess])  # inner join, many audits to one
    known = at >= 0
    out = aud[known].reset_index(drop=True)
    if out[Audits.finess].dtype != est[Establishments.finess].dtype:  # as merge: keys of two types -> object
        out[Audits.finess] = out[Audits.finess].astype(object)
    for col in est_cols[1:]:
        out[col] = est[col].take(at[known]).reset_index(drop=True)
    # Audit ids as text: Arrow-backed ids are looked up as they are (no Python string per id).
    ids = out[aid] if isinstance(out[aid].dtype, pd.StringDtype) else out[aid].astype(str)
    out[aid] = out[aid].astype(str)
    out[YEAR] = out[Audits.audit_date].dt.year.astype("Int64")
    beds = pd.to_numeric(out[Establishments.beds], errors="coerce").astype(float)
    out[LOG_BEDS] = np.log(beds.where(beds > 0))
    at = positions(ids, counts.index.to_series())
    found = at >= 0
    per_audit = {}
    for col in counts.columns:
        per_audit[col] = np.zeros(len(out), dtype=np.int64)
        per_audit[col][found] = counts[col].to_numpy()[at[found]]
    for col in ("n_findings", "n_critical", "n_high", "n_kev"):
        out[col] = per_audit[col]
    out["n_crit_high"] = out["n_critical"] + out["n_high"]
    out["has_critical"] = out["n_critical"] > 0
    out["exposes_remote_admin"] = per_audit["n_remote"] > 0
    out["has_kev"] = out["n_kev"] > 0
    out[NO_PROTECTION] = _protection(data, ids)
    hosts = pd.to_numeric(out[Audits.hosts_in_scope], errors="coerce").astype(float)
    out["findings_per_host"] = out["n_findings"] / hosts.where(hosts > 0)
    out = out.take(audit_order(out)).reset_index(drop=True)  # by finess, audit_date, audit_id
    out = out[list(METRICS_COLUMNS)]
    out.attrs["excluded_audits"] = excluded
    return mark_unavailable(out, data)


def excluded_note(metrics: pd.DataFrame, lang: str = "fr") -> str:
    """One sentence stating the audits :func:`audit_metrics` left out (scans incomplete or failed), or "".

    >>> m = pd.DataFrame(); m.attrs["excluded_audits"] = {"failed": 2, "incomplete": 1}
    >>> excluded_note(m, "en")
    '3 audits left out of the indicators: scans incomplete (1) or failed (2).'
    """
    excluded = metrics.attrs.get("excluded_audits") or {}
    n = sum(excluded.values())
    if not n:
        return ""
    inc, fail = excluded.get("incomplete", 0), excluded.get("failed", 0)
    return text_n(
        "st.excluded_audits", n, lang, incomplete=fmt_number(inc, lang), failed=fmt_number(fail, lang)
    )


def no_audits_note(metrics: pd.DataFrame, period: int | str | None, lang: str = "fr") -> str:
    """The sentence telling a reader that ``period`` (a calendar year) has no complete audit, or "" when it has
    some (or when ``period`` is empty/0: every year). The pages of such a year say so instead of crashing.

    >>> m = pd.DataFrame({"year": [2023, 2024]})
    >>> no_audits_note(m, 2024), no_audits_note(m, 0)
    ('', '')
    >>> print(no_audits_note(m, 2026, "en"))
    **No complete audit in 2026** in this dataset (years with complete audits: 2023, 2024): the figures of that year cannot be computed.
    """
    if not period or str(period) == ALL:
        return ""
    years = sorted({int(y) for y in metrics[YEAR].dropna()}) if YEAR in metrics.columns else []
    if int(period) in years:
        return ""
    listed = ", ".join(map(str, years)) if years else text("st.none", lang)
    return text("st.no_audits", lang, period=period, years=listed)


def select_audits(
    metrics: pd.DataFrame, *, period: int | None = None, audit_choice: AuditChoice = "first"
) -> pd.DataFrame:
    """Keep one audit per establishment (per calendar year when ``period`` is a year).

    Parameters
    ----------
    metrics : DataFrame
        Output of :func:`audit_metrics`.
    period : int, optional
        A calendar year: keep the audits of that year. None (or 0): all years, one audit per
        establishment over the whole span.
    audit_choice : {"first", "last"}
        The establishment's earliest or latest audit of the period (ties on date: by ``audit_id``).

    Returns
    -------
    DataFrame: the rows of ``metrics`` kept, same columns, sorted by ``finess``.

    Examples
    --------
    >>> m = pd.DataFrame({"finess": ["a", "a", "b"], "audit_id": ["1", "2", "3"], "year": [2023, 2024, 2024],
    ...                   "audit_date": pd.to_datetime(["2023-05-01", "2024-01-01", "2024-02-01"])})
    >>> select_audits(m, audit_choice="last")["audit_id"].tolist(), select_audits(m, period=2024)["audit_id"].tolist()
    (['2', '3'], ['2', '3'])
    """
    if audit_choice not in ("first", "last"):
        raise ValueError(f"audit_choice must be 'first' or 'last', got {audit_choice!r}")
    rows = metrics if not period else metrics[metrics[YEAR] == period]
    ordered = rows.take(audit_order(rows))  # sort_values(kind="stable"), one pass when already sorted
    keep = "first" if audit_choice == "first" else "last"
    return ordered.drop_duplicates(Audits.finess, keep=keep).reset_index(drop=True)


def median_interval(values: np.ndarray, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Sample median with its distribution-free (binomial order-statistic) confidence interval.

    Parameters
    ----------
    values : array
        Observations (NaN dropped).
    alpha : float
        1 - nominal confidence level; the interval's coverage is at least 1 - alpha.

    Returns
    -------
    (median, ci_low, ci_high); limits are NaN when n is too small for the level (n < 6 at 95 %).

    Notes
    -----
    With r the largest rank such that P(Bin(n, 1/2) <= r - 1) <= alpha/2, the interval is
    [x_(r), x_(n-r+1)] (order statistics, 1-based), whose exact coverage is 1 - 2 P(Bin(n, 1/2) <= r - 1).

    References
    ----------
    Conover WJ (1999) Practical Nonparametric Statistics, 3rd ed., §3.2 (quantile CI). Campbell MJ,
    Gardner MJ (2000), in Altman et al., Statistics with Confidence, 2nd ed., ch. 5 (n = 10: ranks 2 and 9).

    Examples
    --------
    >>> median_interval(np.arange(1.0, 11.0))
    (5.5, 2.0, 9.0)
    """
    x = np.sort(np.asarray(values, dtype=float))
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan
    r = int(stats.binom.ppf(alpha / 2, n, 0.5))  # smallest k with P(B <= k) >= alpha/2
    if stats.binom.cdf(r, n, 0.5) <= alpha / 2:
        r += 1
    med = float(np.median(x))
    if r < 1:
        return med, np.nan, np.nan
    return med, float(x[r - 1]), float(x[n - r])


def _ratio_bootstrap(y: np.ndarray, e: np.ndarray, *, n_boot: int, alpha: float, rng) -> tuple[float, float]:
    """Percentile CI of sum(y)/sum(e), resampling units (establishments) with replacement."""
    n = len(y)
    if n < 2 or n_boot <= 0:
        return np.nan, np.nan
    chunk = max(1, (1 << 18) // n)  # ~2 MB of indices: reused memory (fresh larger arrays page-fault)
    ratios = []
    for start in range(0, n_boot, chunk):  # chunks of replicates bound memory; same draws as one call
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        ratios.append(y[idx].sum(axis=1) / e[idx].sum(axis=1))
    lo, hi = np.quantile(np.concatenate(ratios), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def compute_indicators(
    metrics: pd.DataFrame,
    *,
    by: str = "family",
    groups: Sequence[str] | None = None,
    periods: Sequence[int] | None = None,
    overall: bool = True,
    audit_choice: AuditChoice = "first",
    rate_ci: Literal["bootstrap", "poisson_exact"] = "bootstrap",
    n_boot: int = 1000,
    seed: int = 2025,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Headline indicators per group and period, each with its confidence interval (``indicators.csv``).

    Parameters
    ----------
    metrics : DataFrame
        Output of :func:`audit_metrics`; not mutated.
    by : str
        Grouping column (``family``, ``legal_status``, ``region``...); a group ``"all"`` pools every row.
    groups : list of str, optional
        Groups to report (``"all"`` is always kept and still pools every row). None: every group.
    periods : list of int, optional
        Calendar years; None: every year present. ``overall`` adds the period ``"all"`` (all years,
        one audit per establishment over the span).
    audit_choice : {"first", "last"}
        Which audit of an establishment represents it in a period (:func:`select_audits`).
    rate_ci : {"bootstrap", "poisson_exact"}
        Interval of ``findings_per_host``: percentile bootstrap over establishments (default; robust to
        overdispersion) or the exact Poisson (Garwood) interval of the pooled count (too narrow when
        findings cluster within establishments).
    n_boot, seed : int
        Bootstrap replicates and seed (deterministic).
    alpha : float
        1 - confidence level.

    Returns
    -------
    DataFrame in the ``indicators.csv`` vocabulary, sorted by indicator, period, group:
        ``indicator`` (one of :data:`INDICATORS`), ``group``, ``period`` (year as text, or ``"all"``),
        ``n_establishments`` (establishments behind the value: for ``no_protection`` those with a known
        status; for ``findings_per_host`` those with hosts in scope), ``n_audits`` (audits of the group in
        the period before one is chosen per establishment), ``value``, ``ci_low``, ``ci_high``,
        ``ci_method`` (``unavailable: <reason>`` for an indicator the dataset cannot measure, e.g. ``has_kev``
        without a KEV catalog: no value; ``n_establishments`` counts the cell's establishments), ``suppressed`` (False: apply
        :func:`cyberobs_lib.disclosure.suppress_small_cells` before publication).

    Notes
    -----
    Shares: successes / establishments, Wilson score interval (``ci_method`` = ``wilson``).
    ``findings_per_host``: ratio of sums, sum(findings) / sum(hosts in scope). ``median_crit_high``:
    median number of critical + high findings per establishment, with the order-statistic interval of
    :func:`median_interval` (``ci_method`` = ``order_statistic (binomial, distribution-free)``).

    Examples
    --------
    >>> m = pd.DataFrame({"finess": list("abcd"), "audit_id": list("1234"), "family": ["CH", "CH", "EHPAD", "EHPAD"],
    ...     "year": 2024, "audit_date": pd.Timestamp("2024-03-01"), "hosts_in_scope": [2, 2, 1, 5],
    ...     "n_findings": [2, 4, 1, 3], "n_crit_high": [0, 1, 1, 2], "has_critical": [True, False, True, True],
    ...     "exposes_remote_admin": False, "has_kev": False, "no_protection": pd.array([True, None, True, False])})
    >>> out = compute_indicators(m, periods=[2024], overall=False, rate_ci="poisson_exact")
    >>> out[out.indicator == "no_protection"][["group", "n_establishments", "value"]].round(3)
       group  n_establishments  value
    0     CH                 1  1.000
    1  EHPAD                 2  0.500
    2    all                 3  0.667
    """
    if by not in metrics.columns:
        raise KeyError(f"grouping column {by!r} not in metrics")
    if rate_ci not in ("bootstrap", "poisson_exact"):
        raise ValueError(f"rate_ci must be 'bootstrap' or 'poisson_exact', got {rate_ci!r}")
    used = [*PROPORTION_METRICS, Audits.hosts_in_scope, "n_findings", "n_crit_high"]
    c = stack_cells(metrics, by=by, columns=used, periods=periods, overall=overall, audit_choice=audit_choice)
    keys, n_cells, parts = [PERIOD, GROUP], len(c.index), []
    for name in PROPORTION_METRICS:
        flag = c.rows[name].astype("boolean")
        known = flag.notna().to_numpy()
        n = sum_per_group(c.cell, n_cells, where=known)  # establishments whose flag is known
        hits = sum_per_group(c.cell, n_cells, where=known & as_mask(flag))
        ci = wilson_interval(hits.astype(float), n.astype(float), alpha=alpha).set_axis(c.index)
        parts.append(ci.assign(indicator=name, n_establishments=n))
    hosts = pd.to_numeric(c.rows[Audits.hosts_in_scope], errors="coerce")
    exposed = np.flatnonzero(as_mask(hosts > 0))
    ecell, cells = pd.factorize(c.cell[exposed])  # exposed cells, in order of first appearance
    found = c.rows["n_findings"].to_numpy(dtype=float, na_value=np.nan)[exposed]
    scope = hosts.to_numpy(dtype=float, na_value=np.nan)[exposed]
    counted = ~np.isnan(found)
    rate = poisson_exact_interval(
        sum_per_group(ecell, len(cells), weights=found, where=counted),  # findings
        sum_per_group(ecell, len(cells), weights=scope),  # hosts in scope
        alpha=alpha,
    ).set_axis(c.index[cells])
    rate = rate.assign(
        indicator="findings_per_host", n_establishments=sum_per_group(ecell, len(cells), where=counted)
    )
    if rate_ci == "bootstrap":
        rng = np.random.default_rng(seed)
        limits = [
            _ratio_bootstrap(found[i], scope[i], n_boot=n_boot, alpha=alpha, rng=rng)
            for i in rows_per_cell(ecell, len(cells))  # a few dozen cells, not data rows
        ]
        rate[["ci_low", "ci_high"]] = np.array(limits, dtype=float).reshape(-1, 2)
        rate["ci_method"] = f"bootstrap-percentile (establishments resampled, n_boot={n_boot}, seed={seed})"
    parts.append(rate)
    crit_high = c.rows["n_crit_high"].to_numpy(dtype=float, na_value=np.nan)
    med = [median_interval(crit_high[i], alpha=alpha) for i in rows_per_cell(c.cell, n_cells)]
    med_frame = pd.DataFrame(med, index=c.index, columns=["value", "ci_low", "ci_high"], dtype=float)
    med_frame["n_establishments"] = sum_per_group(c.cell, n_cells)
    parts.append(
        med_frame.assign(
            indicator="median_crit_high", ci_method="order_statistic (binomial, distribution-free)"
        )
    )
    out = pd.concat([p.reset_index() for p in parts], ignore_index=True)
    out["n_audits"] = c.n_audits.reindex(pd.MultiIndex.from_frame(out[keys])).to_numpy()
    out["suppressed"] = False
    every = pd.Series(sum_per_group(c.cell, n_cells), index=c.index)  # establishments of each cell
    for name, reason in unavailable_metrics(metrics).items():  # unknown, not 0: no value, the reason said
        if name in PROPORTION_METRICS:
            rows = out["indicator"] == name
            out.loc[rows, "ci_method"] = unavailable_reason(reason, "en")
            # the row describes the cell's establishments (its count is theirs, as for any indicator), not 0:
            # the publication policy then treats it like the other indicators of the same cell
            out.loc[rows, "n_establishments"] = every.reindex(
                pd.MultiIndex.from_frame(out.loc[rows, keys])
            ).to_numpy()
    if groups is not None:
        out = out[out[GROUP].isin([*groups, ALL])]
    order = {name: i for i, name in enumerate(INDICATORS)}
    out = out.assign(_o=out["indicator"].map(order), _a=out[GROUP].eq(ALL), _p=out[PERIOD].eq(ALL))
    out = out.sort_values(["_o", "_p", PERIOD, "_a", GROUP], kind="stable")
    out = out[list(INDICATORS_COLUMNS)].reset_index(drop=True)
    return out.astype({"n_establishments": "int64", "n_audits": "int64"})


def coverage(
    establishments: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    by: str = "family",
    groups: Sequence[str] | None = None,
    periods: Sequence[int] | None = None,
    overall: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Audit coverage: audited / eligible establishments per group and period, with Wilson intervals.

    Parameters
    ----------
    establishments : DataFrame
        The registry frame (every establishment that could be audited), with ``finess`` and ``by``.
    metrics : DataFrame
        Output of :func:`audit_metrics` (the audits).
    by, groups, periods, overall, alpha
        As in :func:`compute_indicators` (``"all"`` is always kept and pools the whole registry).

    Returns
    -------
    DataFrame in the ``indicators.csv`` vocabulary with ``indicator`` = ``audit_coverage``:
    ``n_establishments`` = eligible establishments (registry), ``n_audits`` = audits in the period,
    ``value`` = share of eligible establishments audited at least once in the period, Wilson interval.

    Notes
    -----
    Eligibility comes from the registry as given (no opening/closing dates in the contract), so the
    denominator is the same for every period. Audited establishments absent from the registry cannot
    occur (audits of unknown establishments are rejected at ingestion).

    Examples
    --------
    >>> reg = pd.DataFrame({"finess": list("abcd"), "family": ["CH", "CH", "CH", "EHPAD"]})
    >>> m = pd.DataFrame({"finess": ["a", "a", "d"], "year": [2024, 2024, 2024]})
    >>> coverage(reg, m, overall=False)[["group", "n_establishments", "n_audits", "value"]]
       group  n_establishments  n_audits     value
    0     CH                 3         2  0.333333
    1  EHPAD                 1         1  1.000000
    2    all                 4         3  0.500000
    """
    reg = establishments[[Establishments.finess, by]].drop_duplicates(Establishments.finess)
    reg = pd.concat([reg.assign(**{GROUP: reg[by].astype(object)}), reg.assign(**{GROUP: ALL})])
    eligible = reg.groupby(GROUP, sort=False).size()
    aud = metrics[[Audits.finess, YEAR]].merge(reg[[Establishments.finess, GROUP]], on=Audits.finess)
    years = sorted(metrics[YEAR].dropna().unique().tolist()) if periods is None else list(periods)
    rows = []
    for year in [*years, *([0] if overall else [])]:  # a few periods
        a = aud if not year else aud[aud[YEAR] == year]
        counts = pd.DataFrame(
            {
                "audited": a.groupby(GROUP)[Audits.finess].nunique().reindex(eligible.index, fill_value=0),
                "n_audits": a.groupby(GROUP).size().reindex(eligible.index, fill_value=0),
            }
        )
        ci = wilson_interval(counts["audited"].astype(float), eligible.astype(float), alpha=alpha)
        rows.append(ci.assign(n_audits=counts["n_audits"], period=str(year) if year else ALL))
    out = pd.concat(rows).rename_axis(GROUP).reset_index()
    out = out.assign(indicator="audit_coverage", n_establishments=out["n"].astype("int64"), suppressed=False)
    if groups is not None:
        out = out[out[GROUP].isin([*groups, ALL])]
    out = out.assign(_a=out[GROUP].eq(ALL), _p=out[PERIOD].eq(ALL)).sort_values(["_p", PERIOD, "_a", GROUP])
    return out[list(INDICATORS_COLUMNS)].reset_index(drop=True).astype({"n_audits": "int64"})
