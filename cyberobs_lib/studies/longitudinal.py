"""The horizontal (longitudinal) study: each establishment over time, remediation measured and tested.

* :func:`lifecycle_table` — the ``lifecycle.csv`` table (new / persistent / fixed / reopened per pair of
  consecutive audits, on common hosts only, perimeter drift beside);
* :func:`paired_audits` and :func:`paired_tests` — baseline vs follow-up across establishments: Wilcoxon
  signed-rank (+ matched-pairs rank-biserial with CI) and sign test for counts and rates, McNemar (mid-P by
  default, the variant chosen by the caller) with the Newcombe paired difference for binary states;
* :func:`repeated_tests` — three or more audits: Friedman, Cochran's Q, and a GEE trend with the family
  as covariate;
* :func:`remediation_study` — time to fix with censoring: Kaplan–Meier by family and severity, medians
  with CIs, share open at 90/365 days, log-rank, monthly close rate, deadline compliance.

Sign convention of the paired study (every table, figure and sentence): **change = follow-up − baseline**;
negative = fewer vulnerabilities (or fewer establishments in a bad state) at follow-up, an improvement. The
rank-biserial r, the sign-test effect, the McNemar difference of proportions, the summary's differences and
the paired-differences figure all follow it; each tests row says it in ``effect_direction``.

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
from cyberobs_lib.l10n import fmt_number, has, label, text
from cyberobs_lib.lifecycle.intervals import INTERVAL_COLUMNS, interval_columns
from cyberobs_lib.markup import escape_markdown
from cyberobs_lib.stats import median_of_known, paired, survival
from cyberobs_lib.stats.models import MIN_CLUSTERS, fit_trend_gee
from cyberobs_lib.stats.multiplicity import adjust_pvalues
from cyberobs_lib.stats.paired import DIRECTION_COLUMN, NO_DIRECTION, UNSIGNED_W, change_direction, tidy_tests
from cyberobs_lib.stats.proportions import wilson_interval
from cyberobs_lib.studies.annual import paired_view
from cyberobs_lib.studies.indicators import UNAVAILABLE_REASONS, unavailable_metrics, unavailable_reason
from cyberobs_lib.studies.methods import effect_text, interval_text, metric_words, secret

#: Establishments audited twice or more needed for the repeated-audit GEE trend (its small-sample
#: covariance needs enough clusters: :data:`cyberobs_lib.stats.models.MIN_CLUSTERS`).
GEE_MIN_CLUSTERS = MIN_CLUSTERS

STUDY = "longitudinal"
#: ``effect_direction`` of the GEE trend rows of :func:`repeated_tests`.
TREND_DIRECTION = "per later audit (rate ratio below 1: fewer)"
#: Count/rate metrics compared between baseline and follow-up (columns of ``audit_metrics``).
COUNT_METRICS = ("findings_per_host", "n_crit_high", "n_kev")
#: Binary states compared with McNemar.
BINARY_METRICS = ("no_protection", "has_critical", "exposes_remote_admin")
#: Why a test of this study could not be computed: the ids written in ``variant`` (``undefined: <id>;...``).
#: The reader's sentence of each is the catalog text ``st.undefined.<id>`` (French and English,
#: ``cyberobs_lib/data/labels_studies.csv``; :func:`undefined_sentences`), its ``{min_days}``, ``{n_audits}``…
#: filled from the facts that follow the id in ``variant``. The ids of
#: :data:`cyberobs_lib.studies.indicators.UNAVAILABLE_REASONS` (a metric the dataset cannot measure) are
#: understood too.
UNDEFINED_REASONS = (
    "no_pairs",
    "no_complete_pair",
    "undefined_all_differences_zero",
    "too_few_repeated",
    "too_few_repeated_known",
    "too_few_for_trend",
    "gee_not_estimable",
    "no_followed_findings",
    "small_families_only",
    "fewer_than_two_groups",
)
#: Facts of a variant that a sentence may quote, written "?" when the variant does not give them.
UNDEFINED_FACTS = ("min_days", "n_audits", "min_establishments", "min_cell")


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

    ``families`` (family codes, see :func:`cyberobs_lib.studies.families.resolve_families`) restricts the
    establishments studied: their audits, hosts and findings. The ``establishment`` column holds the FINESS:
    pseudonymize it before publishing (:func:`cyberobs_lib.disclosure.pseudonymize`).
    """
    est = data.establishments
    audits, findings, hosts = complete_audits(data.audits, data.findings, data.hosts)
    if families:  # every table of the audits kept: hosts and findings of other families would be orphans
        keep = set(est.loc[est["family"].isin(families), "finess"])
        audits = audits[audits["finess"].isin(keep)]
        kept_ids = set(audits["audit_id"])
        findings = findings[findings["audit_id"].isin(kept_ids)]
        hosts = hosts[hosts["audit_id"].isin(kept_ids)] if len(hosts) else hosts
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
    mcnemar_variant: str = "midp",
    wilcoxon_method: str = "auto",
    ci_method: str = "score",
) -> pd.DataFrame:
    """Baseline vs follow-up across establishments, one block of rows per metric (``tests.csv`` vocabulary
    plus ``effect_direction``).

    Every effect is a change **follow-up − baseline** (negative: fewer at follow-up, an improvement), said in
    words in ``effect_direction``. Counts and rates: Wilcoxon signed-rank (``wilcoxon_method``, see
    :func:`cyberobs_lib.stats.paired.wilcoxon_paired`: by default exact without ties or zeros, exact
    conditional for small samples with them, else normal approximation with continuity correction, as
    ``variant`` says) with the matched-pairs rank-biserial r and its interval (``ci_method``, Wilson-type
    score by default), and the exact sign test with (increases − decreases) / non-zero changes. Binary
    states: McNemar (``mcnemar_variant``: ``midp`` by default as Fagerland et al. 2013 recommend,
    ``exact``, ``asymptotic`` or ``asymptotic_cc``; never switched by the data) with the paired change of
    proportions (share at follow-up − share at baseline) and its Newcombe CI. ``p_adjusted``:
    Benjamini–Hochberg across all rows of the study.
    """
    pairs = paired_audits(metrics, pairing=pairing, min_days=min_days)
    if pairing == "consecutive":
        # one pair per establishment for independence: its first pair
        pairs = pairs.sort_values(["finess", "date_from"]).drop_duplicates("finess")
    rows = []
    missing = unavailable_metrics(metrics)

    def undefined(metric: str, test: str, ok: pd.Series) -> pd.DataFrame | None:
        """The row saying why ``test`` of ``metric`` cannot be computed, or None when it can."""
        kw = {"group_a": "baseline", "group_b": "follow-up"}
        kw["direction"] = change_direction(
            "baseline", "follow-up", of="shares" if test == "mcnemar" else "values"
        )
        if metric in missing:  # unknown, not 0 (e.g. n_kev without a KEV catalog)
            return _undefined(metric, test, missing[metric], 0, **kw)
        if ok.any():
            return None
        reason = f"no_pairs;min_days={min_days}" if pairs.empty else "no_complete_pair"
        return _undefined(metric, test, reason, int(ok.sum()), **kw)

    for metric in count_metrics:
        before, after = pairs[f"{metric}_a"].astype(float), pairs[f"{metric}_b"].astype(float)
        kw = {"study": STUDY, "metric": metric, "group_a": "baseline", "group_b": "follow-up"}
        ok = before.notna() & after.notna()
        rows.append(undefined(metric, "wilcoxon_signed_rank", ok))
        if rows[-1] is None:
            rows[-1] = paired.wilcoxon_paired(
                before, after, alpha=alpha, method=wilcoxon_method, ci_method=ci_method, **kw
            )
        rows.append(undefined(metric, "sign", ok))
        if rows[-1] is None:
            rows[-1] = paired.sign_test(before, after, alpha=alpha, **kw)
    for metric in binary_metrics:
        ok = pairs[f"{metric}_a"].notna() & pairs[f"{metric}_b"].notna()
        rows.append(undefined(metric, "mcnemar", ok))
        if rows[-1] is not None:
            continue
        before = pairs.loc[ok, f"{metric}_a"].astype(bool).to_numpy()
        after = pairs.loc[ok, f"{metric}_b"].astype(bool).to_numpy()
        rows[-1] = paired.mcnemar_test(
            before,
            after,
            variant=mcnemar_variant,
            alpha=alpha,
            study=STUDY,
            metric=metric,
            group_a="baseline",
            group_b="follow-up",
        )
    tests = _stack(rows)
    return adjust_pvalues(tests, method="fdr_bh")


def _undefined(
    metric: str,
    test: str,
    reason: str,
    n: int,
    *,
    group_a: str | None = None,
    group_b: str | None = None,
    direction: str | None = None,
) -> pd.DataFrame:
    """One ``tests.csv`` row saying that ``test`` of ``metric`` cannot be computed: ``variant`` is
    ``undefined: <reason>`` (a key of :data:`UNDEFINED_REASONS`, then ``;key=value`` facts), no statistic;
    ``effect_direction`` the sign convention the test would have had."""
    row = {"study": STUDY, "metric": metric, "test": test, "variant": f"undefined: {reason}", "n_a": n}
    row |= {"n_b": n, "group_a": group_a, "group_b": group_b, DIRECTION_COLUMN: direction}
    return tidy_tests([row])


def _stack(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate tests tables row-wise through records (no dtype guessing on all-empty columns), keeping
    ``effect_direction``."""
    return tidy_tests([row for frame in frames for row in frame.to_dict("records")])


def is_undefined(tests: pd.DataFrame) -> pd.Series:
    """Rows of a tests table that could not be computed (``variant`` starting ``undefined``).

    >>> t = tidy_tests([{"variant": "undefined: no_pairs;min_days=90"}, {"variant": "exact"}])
    >>> is_undefined(t).tolist()
    [True, False]
    """
    if "variant" not in tests.columns:
        return pd.Series(False, index=tests.index)
    return tests["variant"].astype("string").str.startswith("undefined").fillna(False).astype(bool)


def undefined_reason(variant: str, lang: str = "fr") -> str:
    """The reader's sentence for the ``variant`` of a test that could not be computed.

    >>> undefined_reason("undefined: no_pairs;min_days=90", "en")
    'no establishment audited twice at least 90 days apart: no paired test'
    >>> undefined_reason("undefined_all_differences_zero;zero_method=wilcox;zeros=4", "fr")[:28]
    'aucune différence entre prem'
    >>> undefined_reason("undefined: no_kev_catalog", "en")
    'unavailable: no KEV catalog in the dataset'
    >>> undefined_reason("undefined: a model that did not converge", "en")
    'not computed on these data'
    """
    reason = str(variant).removeprefix("undefined").lstrip(":_ ").strip()
    key, *facts = reason.split(";")
    if str(variant).startswith("undefined_all_differences_zero"):
        key = "undefined_all_differences_zero"
    if key in UNAVAILABLE_REASONS:
        return unavailable_reason(key, lang)
    if key not in UNDEFINED_REASONS:
        return text("st.undefined.other", lang)  # a reason in the statistics' own words: said generically
    values = dict(f.split("=", 1) for f in facts if "=" in f)
    shown = {k: fmt_number(values[k], lang) if values.get(k, "").isdigit() else values.get(k, "?")
             for k in UNDEFINED_FACTS}  # fmt: skip
    return text(f"st.undefined.{key}", lang, **shown)


def undefined_sentences(tests: pd.DataFrame, lang: str = "fr") -> str:
    """Markdown bullets naming each test of ``tests`` that could not be computed, and why; "" when none.

    Tests sharing a reason are named together (e.g. every paired test when no establishment was audited
    twice).

    >>> t = tidy_tests([{"metric": "n_kev", "test": "wilcoxon_signed_rank",
    ...                        "variant": "undefined: no_pairs;min_days=90"}])
    >>> print(undefined_sentences(t, "en"))
    **Not computed:**
    <BLANKLINE>
    - no establishment audited twice at least 90 days apart: no paired test (known exploited (KEV) findings — Wilcoxon signed-rank).
    """
    rows = tests[is_undefined(tests)]
    if rows.empty:
        return ""
    lines = []
    reasons = rows["variant"].map(lambda v: undefined_reason(v, lang))
    for reason, sub in rows.groupby(reasons, sort=False):  # reasons and names may quote data: escaped
        what = ", ".join(
            text("st.undefined.what", lang, metric=metric_words(r.metric, lang),
                 test=text(f"st.test.{r.test}", lang) if has(f"st.test.{r.test}") else label(str(r.test), lang))
            for r in sub.itertuples(index=False)
        )  # fmt: skip
        lines.append(
            text("st.undefined.item", lang, reason=escape_markdown(reason), what=escape_markdown(what))
        )
    return text("st.undefined.head", lang) + "\n\n" + "\n".join(lines)


#: Columns of :func:`paired_summary`.
PAIRED_SUMMARY_COLUMNS = ("metric", "statistic", "n_pairs", "baseline", "follow_up", "median_difference",
                          "share_difference", DIRECTION_COLUMN)  # fmt: skip


def paired_summary(
    metrics: pd.DataFrame,
    *,
    pairing: str = "first_last",
    min_days: int = 0,
    count_metrics: Sequence[str] = COUNT_METRICS,
    binary_metrics: Sequence[str] = BINARY_METRICS,
) -> pd.DataFrame:
    """Descriptive companion of :func:`paired_tests`: medians (counts) or shares (binary) before and after.

    One row per metric: ``metric``, ``statistic`` (``median`` or ``share``), ``n_pairs``, ``baseline``,
    ``follow_up``, ``median_difference`` (median of the paired changes follow-up − baseline; counts),
    ``share_difference`` (share at follow-up − share at baseline; binary states) and ``effect_direction``
    (the sign convention in words: negative = fewer at follow-up, as in :func:`paired_tests`).
    """
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
                "baseline": median_of_known(a),
                "follow_up": median_of_known(b),
                "median_difference": median_of_known(b - a),
                "share_difference": np.nan,
                DIRECTION_COLUMN: change_direction("baseline", "follow-up"),
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
                "share_difference": b.mean() - a.mean(),
                DIRECTION_COLUMN: change_direction("baseline", "follow-up", of="shares"),
            }
        )
    return pd.DataFrame(rows, columns=list(PAIRED_SUMMARY_COLUMNS))


#: Columns of :func:`paired_for_readers`, in order.
PAIRED_READER_COLUMNS = ("metric", "n_pairs", "baseline", "follow_up", "change", "effect_size", "ci", "p_adjusted",
                         "suppressed")  # fmt: skip


def paired_for_readers(summary: pd.DataFrame, tests: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """Baseline versus follow-up as a reader's table: per measure, the pairs, the values at baseline and at
    follow-up, the change follow-up − baseline, its effect size with its interval and the adjusted p-value.

    ``summary`` and ``tests`` are the published :func:`paired_summary` and :func:`paired_tests`. Counts and
    rates: medians and the median change, the matched-pairs rank-biserial r of the Wilcoxon test; binary
    states: shares and the change in percentage points, its Newcombe interval (McNemar). Every number
    follows the study's sign convention (negative: fewer at follow-up). The first columns are those of
    :func:`cyberobs_lib.studies.annual.paired_view` (the annual summary shows the same comparison).

    >>> s = pd.DataFrame({"metric": ["no_protection"], "statistic": ["share"], "n_pairs": [120],
    ...                   "baseline": [0.5], "follow_up": [0.4], "median_difference": [None],
    ...                   "share_difference": [-0.1], "suppressed": [False]})
    >>> t = pd.DataFrame({"metric": ["no_protection"], "test": ["mcnemar"], "p_adjusted": [0.0312],
    ...                   "effect_size": [-0.1], "ci_low": [-0.16], "ci_high": [-0.04],
    ...                   "effect_size_kind": ["paired_difference_of_proportions"], "variant": ["midp"]})
    >>> paired_for_readers(s, t, "en")[["change", "effect_size", "ci", "p_adjusted"]].iloc[0].tolist()
    ['-10 points', '-10.0\xa0points', '-16.0\xa0to\xa0-4.0', '0.031']
    """
    view = paired_view(summary, tests, lang)
    main = tests[tests["test"].isin(["wilcoxon_signed_rank", "mcnemar"])] if len(tests) else tests
    by_metric = {r["metric"]: r for r in main.to_dict("records")}
    effects, intervals = [], []
    for metric, hidden in zip(view["metric"], view["suppressed"], strict=True):
        r = by_metric.get(metric, {})
        shown = not hidden and r and not str(r.get("variant", "")).startswith("undefined")
        effects.append(effect_text(r.get("effect_size"), r.get("effect_size_kind"), lang) if shown else "")
        intervals.append(interval_text(r.get("ci_low"), r.get("ci_high"), r.get("effect_size_kind"), lang)
                         if shown else "")  # fmt: skip
    out = view.assign(effect_size=effects, ci=intervals)
    return out[list(PAIRED_READER_COLUMNS)]


def repeated_tests(
    metrics: pd.DataFrame,
    *,
    n_audits: int = 3,
    count_metric: str = "findings_per_host",
    binary_metric: str = "no_protection",
    trend_outcome: str = "n_findings",
    reference_family: str | None = None,
    min_establishments: int = GEE_MIN_CLUSTERS,
) -> pd.DataFrame:
    """Establishments with at least ``n_audits`` audits: Friedman (counts), Cochran's Q (binary) on their
    first ``n_audits`` audits, and a Poisson GEE of ``trend_outcome`` on audit rank + family with the
    exposed hosts as exposure (exchangeable correlation within establishment), fitted when at least
    ``min_establishments`` establishments were audited twice or more.

    A test the data cannot support (too few establishments audited often enough, a measure never known) is
    a row whose ``variant`` starts ``undefined:`` (see :data:`UNDEFINED_REASONS`).
    """
    m = metrics.sort_values(["finess", "audit_date"]).copy()
    m["rank"] = m.groupby("finess").cumcount() + 1
    counts = m.groupby("finess")["rank"].transform("max")
    rows = []
    eligible = m[(counts >= n_audits) & (m["rank"] <= n_audits)]
    n_eligible = int(eligible["finess"].nunique())
    if n_eligible >= 2:
        wide = eligible.pivot(index="finess", columns="rank", values=count_metric).astype(float)
        rows.append(paired.friedman_test(wide, study=STUDY, metric=count_metric))
        wide_b = eligible.pivot(index="finess", columns="rank", values=binary_metric)
        wide_b = wide_b.dropna().astype(bool)
        if len(wide_b) >= 2:
            rows.append(paired.cochran_q(wide_b, study=STUDY, metric=binary_metric))
        else:
            reason = f"too_few_repeated_known;n_audits={n_audits}"
            rows.append(_undefined(binary_metric, "cochran_q", reason, len(wide_b), direction=NO_DIRECTION))
    else:
        reason = f"too_few_repeated;n_audits={n_audits}"
        rows.append(_undefined(count_metric, "friedman", reason, n_eligible, direction=UNSIGNED_W))
        rows.append(_undefined(binary_metric, "cochran_q", reason, n_eligible, direction=NO_DIRECTION))
    multi = m[counts >= 2].copy()
    multi = multi[multi["hosts_in_scope"] > 0]
    if multi["finess"].nunique() >= min_establishments and multi["family"].nunique() >= 1:
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
        if "estimable" in trend.columns and not trend["estimable"].fillna(False).astype(bool).all():
            reason = f"too_few_for_trend;min_establishments={max(min_establishments, GEE_MIN_CLUSTERS)}"
            rows.append(_undefined(trend_outcome, "gee_trend", reason, int(multi["finess"].nunique()),
                                   direction=TREND_DIRECTION))  # fmt: skip
            trend = trend.iloc[0:0]
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
                            "ci_method": "wald, " + str(getattr(r, "covariance", "robust sandwich")),
                            DIRECTION_COLUMN: TREND_DIRECTION,
                        }
                    ]
                )
            )
    else:
        reason = f"too_few_for_trend;min_establishments={min_establishments}"
        n_multi = int(multi["finess"].nunique())
        rows.append(_undefined(trend_outcome, "gee_trend", reason, n_multi, direction=TREND_DIRECTION))
    return _stack(rows)


def remediation_episodes(
    data, *, convention: str = "midpoint", families: Sequence[str] | None = None
) -> pd.DataFrame:
    """Finding episodes with their time to fix (observed) or to censoring, with family and severity.

    Episodes never followed by an audit covering their host (seen only at the last audit) carry no
    information on time to fix and are left out (counted in ``attrs["not_followed"]``).
    """
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


#: Columns of :func:`interval_medians`.
MEDIAN_COLUMNS = ("group", "n", "median_days", "ci_low", "ci_high", "lambda_", "rho_", "model", "ci_method",
                  "median_bound_low", "median_bound_high")  # fmt: skip


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
    if not rows:  # no fix observed: the same columns, no row (the notebooks say why in words)
        return pd.DataFrame(columns=list(MEDIAN_COLUMNS))
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
    if ep.empty:
        reason = f"small_families_only;min_cell={min_cell}" if small else "no_followed_findings"
        out = _empty_remediation(alpha=alpha, deadlines=deadlines, reason=reason)
        for table in out.values():
            table.attrs["excluded_families"] = small
        return out
    surv_family = survival.kaplan_meier(
        ep, duration="duration_days", event="event", group="family", alpha=alpha
    )
    surv_sev = survival.kaplan_meier(
        ep, duration="duration_days", event="event", group="severity", alpha=alpha
    )
    remediation = survival.remediation_table(
        ep, duration="duration_days", event="event", group="family", severity="severity", alpha=alpha
    )
    tests = _stack([_logrank(ep, "family"), _logrank(ep, "severity")])
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


#: Severities of :func:`remediation_by_family`'s columns, in order.
SEVERITY_COLUMNS = ("critical", "high", "medium", "low", "info")


def remediation_by_family(remediation: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """The median time to fix of each family by severity, one row per family: a reader's view of the
    ``remediation`` table (family × severity, as published).

    Returns ``group``, ``n_establishments`` (of the family), one column per severity present
    (:data:`SEVERITY_COLUMNS` order) holding the median days as text ("" where the family has no finding of
    that severity or the median is not reached, "secret" where the cell is covered by statistical secrecy)
    and ``suppressed`` (every cell of the family is).

    >>> t = pd.DataFrame({"group": ["CH", "CH", "EHPAD"], "severity": ["high", "critical", "high"],
    ...                   "median_days": [120.0, 90.0, None], "n_establishments": [40, 40, None],
    ...                   "suppressed": [False, True, True]})
    >>> remediation_by_family(t, "en").to_dict("records")
    [{'group': 'CH', 'n_establishments': 40.0, 'critical': 'suppressed', 'high': '120', 'suppressed': False}, {'group': 'EHPAD', 'n_establishments': nan, 'critical': '', 'high': 'suppressed', 'suppressed': True}]
    """
    if remediation.empty:
        return pd.DataFrame(columns=["group", "n_establishments", "suppressed"])

    hidden = secret(remediation)
    cell = [
        text("st.secret_cell", lang) if h else ("" if pd.isna(d) else fmt_number(d, lang, decimals=0))
        for d, h in zip(remediation["median_days"], hidden, strict=True)
    ]
    table = remediation.assign(_cell=cell, _hidden=hidden)
    order = list(dict.fromkeys(table["group"]))
    severities = [c for c in SEVERITY_COLUMNS if c in set(table["severity"].dropna())]
    wide = table.pivot_table(index="group", columns="severity", values="_cell", aggfunc="first")
    wide = wide.reindex(index=order, columns=severities).fillna("")
    out = wide.reset_index()
    out.columns.name = None
    n = pd.to_numeric(table["n_establishments"], errors="coerce").groupby(table["group"], sort=False).max()
    out.insert(1, "n_establishments", out["group"].map(n).astype(float))
    out["suppressed"] = out["group"].map(table.groupby("group", sort=False)["_hidden"].all()).astype(bool)
    return out


def by_severity(table: pd.DataFrame, column: str = "group") -> pd.DataFrame:
    """``table`` with its rows in severity order (critical first; other values after, in table order).

    >>> by_severity(pd.DataFrame({"group": ["low", "critical", "medium"]}))["group"].tolist()
    ['critical', 'medium', 'low']
    """
    rank = {s: i for i, s in enumerate(SEVERITY_COLUMNS)}
    return table.sort_values(column, key=lambda s: s.map(rank).fillna(len(rank)), kind="stable")


def curves_shown(survival: pd.DataFrame, published: pd.DataFrame, column: str = "group") -> pd.DataFrame:
    """The survival curves a published page may draw: those of the groups whose row of the ``published``
    table (e.g. the medians by severity) is not covered by statistical secrecy. A curve of a hidden group
    would give its median back (read where it crosses 50 %). Groups absent from ``published`` are not
    drawn; in a confidential run (no ``suppressed`` column) every group present is.

    >>> km = pd.DataFrame({"group": ["high", "high", "medium"], "survival": [1.0, 0.4, 1.0]})
    >>> medians = pd.DataFrame({"group": ["high", "medium"], "suppressed": [False, True]})
    >>> curves_shown(km, medians)["group"].tolist()
    ['high', 'high']
    """
    drawn = set(published.loc[~secret(published), column])
    return survival[survival["group"].isin(drawn)]


def _logrank(ep: pd.DataFrame, group: str) -> pd.DataFrame:
    """Log-rank test of the time to fix across the values of ``group``; an ``undefined`` row with fewer
    than two of them."""
    metric = f"time_to_fix_by_{group}"
    if ep[group].nunique() < 2:
        reason = "no_followed_findings" if ep.empty else "fewer_than_two_groups"
        return _undefined(metric, "logrank", reason, len(ep), group_a="all", direction=NO_DIRECTION)
    tests = survival.logrank(
        ep, duration="duration_days", event="event", group=group, study=STUDY, metric=metric
    )
    return _stack([tests.assign(**{DIRECTION_COLUMN: NO_DIRECTION})])


def _empty_remediation(
    *, alpha: float, deadlines: dict[str, int] | None, reason: str = "no_followed_findings"
) -> dict[str, pd.DataFrame]:
    """The tables of :func:`remediation_study` without rows (no followed finding), with their columns: those
    the same computations give on two made-up episodes, so that they never drift apart."""
    made_up = pd.DataFrame(
        {
            "finess": ["a", "b"],
            "family": ["F1", "F2"],
            "severity": ["critical", "low"],
            "duration_days": [10.0, 20.0],
            "event": [1, 0],
            "observed": [True, False],
            "origin": pd.to_datetime(["2025-01-01", "2025-01-01"]),
        }
    )
    tables = remediation_study(made_up, alpha=alpha, deadlines=deadlines)
    out = {name: table.iloc[0:0].copy() for name, table in tables.items()}
    out["tests"] = _stack(
        [
            _undefined(f"time_to_fix_by_{g}", "logrank", reason, 0, group_a="all", direction=NO_DIRECTION)
            for g in ("family", "severity")
        ]
    )
    return out
