"""The horizontal (longitudinal) study: each establishment over time, remediation measured and tested.

* :func:`lifecycle_table` — the ``lifecycle.csv`` table (new / persistent / fixed / reopened per pair of
  consecutive audits, on common hosts only, perimeter drift beside);
* :func:`paired_audits` and :func:`paired_tests` — baseline vs follow-up across establishments: Wilcoxon
  signed-rank (+ matched-pairs rank-biserial with CI) and sign test for counts and rates, McNemar (exact
  when discordant pairs are few) with the Newcombe paired difference for binary states;
* :func:`repeated_tests` — three or more audits: Friedman, Cochran's Q, and a GEE trend with the family
  as covariate;
* :func:`remediation_study` — time to fix with censoring: Kaplan–Meier by family and severity, medians
  with CIs, share open at 90/365 days, log-rank, monthly close rate, deadline compliance.

Conventions (stated in the outputs): a finding is *fixed* when its host is still in the perimeter and the
finding is absent; a fix happened between the last audit that saw it and the first that did not, and its
time is the midpoint of that interval by default (``convention``); a finding still open at the last audit
that covered its host is right-censored there; a host leaving the perimeter censors, never fixes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cyberobs_lib import lifecycle as lc
from cyberobs_lib.config import DEFAULT_DEADLINES
from cyberobs_lib.stats import paired, survival
from cyberobs_lib.stats.multiplicity import adjust_pvalues
from cyberobs_lib.stats.proportions import wilson_interval

STUDY = "longitudinal"
#: Count/rate metrics compared between baseline and follow-up (columns of ``audit_metrics``).
COUNT_METRICS = ("findings_per_host", "n_crit_high", "n_kev")
#: Binary states compared with McNemar.
BINARY_METRICS = ("no_protection", "has_critical", "exposes_remote_admin")


def complete_audits(
    audits: pd.DataFrame, findings: pd.DataFrame, hosts: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The audits whose scans are complete (``audits.scan_status``, see :func:`cyberobs_lib.ingest.audit_scan_status`)
    and their findings and hosts: an unfinished scan would make every finding it missed look fixed. The
    number left out is in ``audits.attrs["excluded_audits"]``. Tables without ``scan_status`` are kept whole.

    >>> a = pd.DataFrame({"audit_id": ["A", "B"], "scan_status": ["complete", "failed"]})
    >>> f = pd.DataFrame({"audit_id": ["A", "B", "B"]})
    >>> a2, f2, h2 = complete_audits(a, f, pd.DataFrame({"audit_id": []}))
    >>> a2["audit_id"].tolist(), len(f2), a2.attrs["excluded_audits"]
    (['A'], 1, 1)
    """
    if "scan_status" not in audits.columns:
        return audits, findings, hosts
    done = (audits["scan_status"].astype(object).fillna("complete") == "complete").to_numpy()
    if done.all():
        audits = audits.copy(deep=False)
        audits.attrs["excluded_audits"] = 0
        return audits, findings, hosts
    out = audits[done].copy()
    out.attrs["excluded_audits"] = int((~done).sum())
    dropped = set(audits.loc[~done, "audit_id"])
    findings = findings[~findings["audit_id"].isin(dropped)]
    hosts = hosts[~hosts["audit_id"].isin(dropped)] if len(hosts) else hosts
    return out, findings, hosts


def lifecycle_table(data, *, min_days: int = 0, families: Sequence[str] | None = None) -> lc.LifecycleResult:
    """Match findings between consecutive audits of each establishment (see :func:`lifecycle.match_lifecycle`).

    ``families`` restricts the establishments studied. The ``establishment`` column holds the FINESS:
    pseudonymize it before publishing (:func:`cyberobs_lib.disclosure.pseudonymize`).
    """
    est = data.establishments
    audits, findings, hosts = complete_audits(data.audits, data.findings, data.hosts)
    if families:
        keep = set(est.loc[est["family"].isin(families), "finess"])
        audits = audits[audits["finess"].isin(keep)]
        findings = findings[findings["audit_id"].isin(set(audits["audit_id"]))]
    hosts = hosts if len(hosts) else None
    return lc.match_lifecycle(findings, audits, hosts=hosts, establishments=est, min_days=min_days)


def paired_audits(metrics: pd.DataFrame, *, pairing: str = "first_last", min_days: int = 0) -> pd.DataFrame:
    """Baseline and follow-up audit of each establishment, side by side (suffixes ``_a``, ``_b``).

    Parameters
    ----------
    metrics
        One row per audit (``studies.indicators.audit_metrics``).
    pairing : {"first_last", "consecutive"}
        First vs last audit of each establishment, or every pair of consecutive audits.
    min_days
        Follow-ups closer than this to the baseline are skipped (the next one is used).

    Returns
    -------
    DataFrame
        ``finess, family, audit_a, audit_b, date_a, date_b, days`` and every metric with ``_a``/``_b``.
    """
    pairs = lc.audit_sequence(
        metrics[["audit_id", "finess", "audit_date"]], min_days=min_days, pairing=pairing
    )
    m = metrics.set_index("audit_id")
    a = m.loc[pairs["audit_from"]].reset_index(drop=True).add_suffix("_a")
    b = m.loc[pairs["audit_to"]].reset_index(drop=True).add_suffix("_b")
    out = pd.concat([pairs.reset_index(drop=True), a, b], axis=1)
    out["family"] = out["family_a"]
    return out


def paired_tests(
    metrics: pd.DataFrame,
    *,
    pairing: str = "first_last",
    min_days: int = 0,
    count_metrics: Sequence[str] = COUNT_METRICS,
    binary_metrics: Sequence[str] = BINARY_METRICS,
    alpha: float = 0.05,
    exact_threshold: int = 25,
) -> pd.DataFrame:
    """Baseline vs follow-up across establishments, one block of rows per metric (``tests.csv``).

    Counts and rates: Wilcoxon signed-rank (exact or normal approximation with continuity correction, as
    ``variant`` says) with the matched-pairs rank-biserial correlation and its CI, and the exact sign test.
    Binary states: McNemar (exact binomial when discordant pairs < ``exact_threshold``, else chi-square
    with continuity correction) with the paired difference of proportions (after − before) and its
    Newcombe CI. ``p_adjusted``: Benjamini–Hochberg across all rows of the study.
    """
    pairs = paired_audits(metrics, pairing=pairing, min_days=min_days)
    if pairing == "consecutive":
        # one pair per establishment for independence: its first pair
        pairs = pairs.sort_values(["finess", "date_from"]).drop_duplicates("finess")
    rows = []
    for metric in count_metrics:
        before, after = pairs[f"{metric}_a"].astype(float), pairs[f"{metric}_b"].astype(float)
        kw = {"study": STUDY, "metric": metric, "group_a": "baseline", "group_b": "follow-up"}
        rows.append(paired.wilcoxon_paired(before, after, alpha=alpha, **kw))
        rows.append(paired.sign_test(before, after, alpha=alpha, **kw))
    for metric in binary_metrics:
        ok = pairs[f"{metric}_a"].notna() & pairs[f"{metric}_b"].notna()
        before = pairs.loc[ok, f"{metric}_a"].astype(bool).to_numpy()
        after = pairs.loc[ok, f"{metric}_b"].astype(bool).to_numpy()
        rows.append(
            paired.mcnemar_test(
                before,
                after,
                exact_threshold=exact_threshold,
                alpha=alpha,
                study=STUDY,
                metric=metric,
                group_a="baseline",
                group_b="follow-up",
            )
        )
    tests = pd.concat(rows, ignore_index=True)
    return adjust_pvalues(tests, method="fdr_bh")


def paired_summary(
    metrics: pd.DataFrame,
    *,
    pairing: str = "first_last",
    min_days: int = 0,
    count_metrics: Sequence[str] = COUNT_METRICS,
    binary_metrics: Sequence[str] = BINARY_METRICS,
) -> pd.DataFrame:
    """Descriptive companion of :func:`paired_tests`: medians (counts) or shares (binary) before and after."""
    pairs = paired_audits(metrics, pairing=pairing, min_days=min_days)
    if pairing == "consecutive":
        pairs = pairs.sort_values(["finess", "date_from"]).drop_duplicates("finess")
    rows = []
    for metric in count_metrics:
        a, b = pairs[f"{metric}_a"].astype(float), pairs[f"{metric}_b"].astype(float)
        rows.append(
            {
                "metric": metric,
                "statistic": "median",
                "n_pairs": int((a.notna() & b.notna()).sum()),
                "baseline": a.median(),
                "follow_up": b.median(),
                "median_difference": (b - a).median(),
            }
        )
    for metric in binary_metrics:
        ok = pairs[f"{metric}_a"].notna() & pairs[f"{metric}_b"].notna()
        a, b = pairs.loc[ok, f"{metric}_a"].astype(float), pairs.loc[ok, f"{metric}_b"].astype(float)
        rows.append(
            {
                "metric": metric,
                "statistic": "share",
                "n_pairs": int(ok.sum()),
                "baseline": a.mean(),
                "follow_up": b.mean(),
                "median_difference": np.nan,
            }
        )
    return pd.DataFrame(rows)


def repeated_tests(
    metrics: pd.DataFrame,
    *,
    n_audits: int = 3,
    count_metric: str = "findings_per_host",
    binary_metric: str = "no_protection",
    trend_outcome: str = "n_findings",
    reference_family: str | None = None,
) -> pd.DataFrame:
    """Establishments with at least ``n_audits`` audits: Friedman (counts), Cochran's Q (binary) on their
    first ``n_audits`` audits, and a Poisson GEE of ``trend_outcome`` on audit rank + family with the
    exposed hosts as exposure (exchangeable correlation within establishment).
    """
    from cyberobs_lib.stats.models import fit_trend_gee

    m = metrics.sort_values(["finess", "audit_date"]).copy()
    m["rank"] = m.groupby("finess").cumcount() + 1
    counts = m.groupby("finess")["rank"].transform("max")
    rows = []
    eligible = m[(counts >= n_audits) & (m["rank"] <= n_audits)]
    if eligible["finess"].nunique() >= 2:
        wide = eligible.pivot(index="finess", columns="rank", values=count_metric).astype(float)
        rows.append(paired.friedman_test(wide, study=STUDY, metric=count_metric))
        wide_b = eligible.pivot(index="finess", columns="rank", values=binary_metric)
        wide_b = wide_b.dropna().astype(bool)
        if len(wide_b) >= 2:
            rows.append(paired.cochran_q(wide_b, study=STUDY, metric=binary_metric))
    multi = m[counts >= 2].copy()
    multi = multi[multi["hosts_in_scope"] > 0]
    if multi["finess"].nunique() >= 5 and multi["family"].nunique() >= 1:
        multi["audit_rank"] = multi["rank"] - 1
        terms = ["family"] if multi["family"].nunique() > 1 else []
        ref = {"family": reference_family} if reference_family and terms else None
        coef = fit_trend_gee(
            multi,
            outcome=trend_outcome,
            time="audit_rank",
            group_id="finess",
            terms=terms,
            family="poisson",
            exposure="hosts_in_scope",
            reference=ref,
        )
        trend = coef[coef["term"] == "audit_rank"]
        for r in trend.itertuples(index=False):
            rows.append(
                pd.DataFrame(
                    [
                        {
                            "study": STUDY,
                            "metric": trend_outcome,
                            "test": "gee_trend",
                            "variant": "poisson;exchangeable;offset=log(hosts_in_scope);covariates="
                            + ("family" if terms else "none"),
                            "group_a": "audit_rank",
                            "group_b": None,
                            "n_a": int(multi["finess"].nunique()),
                            "n_b": int(len(multi)),
                            "statistic": np.nan,
                            "df": np.nan,
                            "p_value": getattr(r, "p_value", np.nan),
                            "p_adjusted": np.nan,
                            "adjust_method": None,
                            "effect_size": getattr(r, "rate_ratio", np.nan),
                            "effect_size_kind": "rate_ratio_per_audit",
                            "ci_low": getattr(r, "ci_low", np.nan),
                            "ci_high": getattr(r, "ci_high", np.nan),
                            "ci_method": "wald (robust sandwich)",
                        }
                    ]
                )
            )
    if not rows:
        return pd.DataFrame()
    return pd.concat(rows, ignore_index=True)


def remediation_episodes(
    data, *, convention: str = "midpoint", families: Sequence[str] | None = None
) -> pd.DataFrame:
    """Finding episodes with their time to fix (observed) or to censoring, with family and severity.

    Episodes never followed by an audit covering their host (seen only at the last audit) carry no
    information on time to fix and are left out (counted in ``attrs["not_followed"]``).
    """
    from cyberobs_lib.lifecycle.intervals import INTERVAL_COLUMNS, interval_columns

    audits, findings, hosts = complete_audits(data.audits, data.findings, data.hosts)
    hosts = hosts if len(hosts) else None
    fam = data.establishments.set_index("finess")["family"]
    kept = {}

    def select(finess_of_est, est, observed, duration):
        # family looked up once per establishment, then spread to its episodes by code
        family = pd.Series(finess_of_est).map(fam)
        in_family = family.isin(families).to_numpy()[est] if families else np.ones(len(est), dtype=bool)
        followed = observed | (duration > 0)
        kept["not_followed"] = int((in_family & ~followed).sum())
        keep = in_family & followed
        kept["family"] = family.array.take(est[keep])
        return keep

    cols, _ = interval_columns(findings, audits, hosts=hosts, convention=convention, select=select)
    cols["family"] = kept["family"]
    out = pd.DataFrame(cols, columns=[*INTERVAL_COLUMNS, "family"], copy=False)
    out.attrs["not_followed"] = kept["not_followed"]
    out.attrs["convention"] = convention
    out["event"] = out["observed"].astype(int)
    return out


def interval_medians(episodes: pd.DataFrame, *, by: str = "severity", alpha: float = 0.05) -> pd.DataFrame:
    """Median time to fix per group from the fix *intervals* (Weibull, interval-censored likelihood).

    The Kaplan–Meier curves use one point per fix (``convention``); this estimate uses each interval
    (last audit that saw the finding, first audit where it was gone] as it is, which removes the bias of
    the midpoint convention when audits are months apart. ``ci_method``: delta method on the log scale.
    """
    import warnings

    from lifelines.exceptions import ApproximationWarning

    rows = []
    for group, sub in episodes.groupby(by, observed=True, sort=True):
        if not sub["observed"].any():
            continue
        upper = sub["duration_upper"].where(sub["observed"], np.inf)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ApproximationWarning)
            est = survival.interval_censored_median(
                sub["duration_lower"], upper, sub["observed"], alpha=alpha
            )
        if any(issubclass(w.category, ApproximationWarning) for w in caught):
            # Not identifiable: nearly every fix falls inside the first audit interval, so the data only
            # bound the median. Report the bounds, no point estimate.
            est = pd.DataFrame(
                [
                    {
                        "n": len(sub),
                        "median_days": np.nan,
                        "ci_low": np.nan,
                        "ci_high": np.nan,
                        "lambda_": np.nan,
                        "rho_": np.nan,
                        "model": "not identifiable (fixes within the first interval)",
                        "ci_method": None,
                    }
                ]
            )
        lower_km = survival.median_survival(
            sub.assign(_d=sub["duration_lower"]), duration="_d", event="event"
        )
        upper_km = survival.median_survival(
            sub.assign(_d=sub["duration_upper"].where(sub["observed"], sub["duration_days"])),
            duration="_d",
            event="event",
        )
        est["median_bound_low"] = float(lower_km["median_days"].iloc[0])
        est["median_bound_high"] = float(upper_km["median_days"].iloc[0])
        rows.append(est.assign(**{"group": group}))
    if not rows:
        return pd.DataFrame(columns=["group", "n", "median_days", "ci_low", "ci_high"])
    out = pd.concat(rows, ignore_index=True)
    return out[["group"] + [c for c in out.columns if c != "group"]]


def deadline_compliance(
    episodes: pd.DataFrame, *, deadlines: dict[str, int] | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Share of findings fixed within the remediation deadline of their severity.

    Estimated as 1 − S(deadline) from the Kaplan–Meier curve of each severity (censoring-aware), with
    the Greenwood log(−log) interval; plus the crude share among findings whose fate at the deadline
    is known (fixed before it, or still open after it), with a Wilson interval.
    """
    deadlines = deadlines or DEFAULT_DEADLINES
    rows = []
    for sev, days in deadlines.items():
        sub = episodes[episodes["severity"] == sev]
        if sub.empty:
            continue
        km = survival.kaplan_meier(sub, duration="duration_days", event="event", alpha=alpha)
        before = km[km["time_days"] <= days]
        s = float(before["survival"].iloc[-1]) if len(before) else 1.0
        lo = float(before["ci_low"].iloc[-1]) if len(before) else 1.0
        hi = float(before["ci_high"].iloc[-1]) if len(before) else 1.0
        known = sub[(sub["observed"] & (sub["duration_days"] <= days)) | (sub["duration_days"] > days)]
        fixed_in_time = int((known["observed"] & (known["duration_days"] <= days)).sum())
        w = wilson_interval(fixed_in_time, len(known), alpha=alpha).iloc[0]
        rows.append(
            {
                "severity": sev,
                "deadline_days": days,
                "n": len(sub),
                "share_fixed_in_time": 1 - s,
                "ci_low": 1 - hi,
                "ci_high": 1 - lo,
                "ci_method": "kaplan-meier greenwood log(-log)",
                "crude_share": w["value"],
                "crude_ci_low": w["ci_low"],
                "crude_ci_high": w["ci_high"],
                "crude_n_known": len(known),
            }
        )
    return pd.DataFrame(rows)


def remediation_study(
    episodes: pd.DataFrame,
    *,
    alpha: float = 0.05,
    deadlines: dict[str, int] | None = None,
    min_cell: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Survival curves, remediation table, log-rank tests, close rate and deadline compliance.

    Returns a dict of tables: ``survival`` (by family), ``survival_severity``, ``remediation`` (family ×
    severity), ``tests`` (log-rank across families and severities, pairwise Holm), ``close_rate``,
    ``deadlines``. With ``min_cell``, families of fewer establishments are left out of every table
    (published runs); their names are in ``attrs["excluded_families"]`` of each table.
    """
    ep = episodes.dropna(subset=["family"])
    small: list[str] = []
    if min_cell:
        n_est = ep.groupby("family")["finess"].nunique()
        small = sorted(n_est[n_est < min_cell].index)
        ep = ep[~ep["family"].isin(small)]
    surv_family = survival.kaplan_meier(
        ep, duration="duration_days", event="event", group="family", alpha=alpha
    )
    surv_sev = survival.kaplan_meier(
        ep, duration="duration_days", event="event", group="severity", alpha=alpha
    )
    remediation = survival.remediation_table(
        ep, duration="duration_days", event="event", group="family", severity="severity", alpha=alpha
    )
    tests = pd.concat(
        [
            survival.logrank(
                ep,
                duration="duration_days",
                event="event",
                group="family",
                study=STUDY,
                metric="time_to_fix_by_family",
            ),
            survival.logrank(
                ep,
                duration="duration_days",
                event="event",
                group="severity",
                study=STUDY,
                metric="time_to_fix_by_severity",
            ),
        ],
        ignore_index=True,
    )
    opened = ep["origin"]
    closed = ep["origin"] + pd.to_timedelta(ep["duration_days"].where(ep["observed"]), unit="D")
    close = survival.monthly_close_rate(
        ep.assign(opened=opened, closed=closed), opened="opened", closed="closed"
    )
    out = {
        "survival": surv_family,
        "survival_severity": surv_sev,
        "remediation": remediation,
        "tests": tests,
        "close_rate": close,
        "deadlines": deadline_compliance(ep, deadlines=deadlines, alpha=alpha),
    }
    for table in out.values():
        table.attrs["excluded_families"] = small
    return out
