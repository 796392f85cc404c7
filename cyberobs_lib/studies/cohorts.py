"""Vertical (cohort) study: families of establishments compared at one time, crude and adjusted.

Every function takes the per-audit frame of :func:`cyberobs_lib.studies.indicators.audit_metrics`, keeps
one audit per establishment (:func:`~cyberobs_lib.studies.indicators.select_audits`) and returns rows in
the fixed ``tests.csv`` vocabulary (:data:`cyberobs_lib.schema.TESTS_COLUMNS`), each stating its variant,
its interval method and its multiplicity adjustment.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from cyberobs_lib.schema import Audits, Establishments
from cyberobs_lib.stats import make_tests_table
from cyberobs_lib.stats.groups import compare_groups
from cyberobs_lib.stats.models import (
    INTERCEPT,
    MIN_DF_RESID,
    SeparationWarning,
    build_design,
    fit_count_model,
    fit_logistic,
    to_tests_table,
)
from cyberobs_lib.stats.multiplicity import adjust_pvalues
from cyberobs_lib.stats.power import sample_size_two_proportions
from cyberobs_lib.stats.proportions import cochran_armitage_trend, compare_proportions, newcombe_difference
from cyberobs_lib.studies.indicators import (
    COUNT_METRICS,
    PROPORTION_METRICS,
    YEAR,
    AuditChoice,
    select_audits,
    unavailable_metrics,
)

FAMILY = Establishments.family
STUDY = "cohorts"
DEFAULT_METRICS = (*PROPORTION_METRICS, "findings_per_host", "n_crit_high")
DEFAULT_COVARIATES = ("legal_status", "region", "log_beds")
BH = "fdr_bh across metrics"
HOLM = "holm within metric"


def _subset(
    frame: pd.DataFrame, *, families: Sequence[str] | None, period: int | None, audit_choice: AuditChoice
) -> pd.DataFrame:
    rows = select_audits(frame, period=period, audit_choice=audit_choice)
    rows = rows[rows[FAMILY].notna()]
    return rows if families is None else rows[rows[FAMILY].isin(list(families))]  # []: no family


def _stack(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate tests tables row-wise through records (no dtype guessing on all-empty columns)."""
    return make_tests_table([row for frame in frames for row in frame.to_dict("records")])


def _undefined(metric: str, test: str, reason: str, n: int) -> pd.DataFrame:
    return make_tests_table(
        [
            {
                "study": STUDY,
                "metric": metric,
                "test": test,
                "variant": f"undefined: {reason}",
                "group_a": "all",
                "n_a": n,
            }
        ]
    )


def _proportion_tests(sub: pd.DataFrame, metric: str, *, alpha: float, seed: int, reference: str | None):
    """Omnibus r x 2 test with Cramér's V, then every pair: 2 x 2 test and Newcombe difference (Holm)."""
    flag = sub[metric].astype("boolean")
    table = pd.crosstab(sub[FAMILY], flag).reindex(columns=[True, False], fill_value=0)
    try:
        omnibus = compare_proportions(table, alpha=alpha, seed=seed, study=STUDY, metric=metric)
    except ValueError as err:
        return _undefined(metric, "chi_square", str(err), len(sub))
    labels = "|".join(str(g) for g in table.index)  # one omnibus shape whatever the number of families
    omnibus = omnibus.assign(group_a=labels, group_b=None, n_a=int(table.to_numpy().sum()), n_b=pd.NA)
    pairs = []
    order = sorted(table.index, key=lambda g: (g == reference, g))
    for a, b in combinations(order, 2):
        pair = table.loc[[a, b]]
        diff = newcombe_difference(
            pair.iloc[0, 0], pair.iloc[0].sum(), pair.iloc[1, 0], pair.iloc[1].sum(), alpha=alpha
        )
        try:
            test = compare_proportions(pair, alpha=alpha, seed=seed, study=STUDY, metric=metric).iloc[0]
            name, variant, stat, p = test["test"], test["variant"], test["statistic"], test["p_value"]
            df = test["df"]  # 1 for a chi-square, none for Fisher's exact test
        except ValueError as err:  # both groups all-true or all-false: no test, the difference is 0
            name, variant, stat, p, df = "chi_square", f"undefined: {err}", np.nan, np.nan, np.nan
        pairs.append(
            {"study": STUDY, "metric": metric, "test": name, "variant": f"pairwise {variant}", "group_a": a,
             "group_b": b, "n_a": int(pair.iloc[0].sum()), "n_b": int(pair.iloc[1].sum()), "statistic": stat,
             "df": df, "p_value": p, "effect_size": diff.loc[0, "value"], "effect_size_kind": "risk_difference",
             "ci_low": diff.loc[0, "ci_low"], "ci_high": diff.loc[0, "ci_high"], "ci_method": diff.loc[0, "ci_method"]}
        )  # fmt: skip
    pairwise = adjust_pvalues(make_tests_table(pairs), method="holm") if pairs else make_tests_table([])
    return _stack([omnibus, pairwise.assign(adjust_method=HOLM)])


def compare_families(
    frame: pd.DataFrame,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    families: Sequence[str] | None = None,
    reference: str | None = None,
    period: int | None = None,
    audit_choice: AuditChoice = "first",
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 2025,
) -> pd.DataFrame:
    """Crude comparisons of families, metric by metric, with effect sizes and multiplicity control.

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`~cyberobs_lib.studies.indicators.audit_metrics`; not mutated.
    metrics : list of str
        Binary metrics (:data:`~cyberobs_lib.studies.indicators.PROPORTION_METRICS`) and numeric ones
        (:data:`~cyberobs_lib.studies.indicators.COUNT_METRICS`).
    families : list of str, optional
        Families compared (None: every family present).
    reference : str, optional
        Family put in ``group_b`` of each pair that includes it (effects read "family vs reference").
    period : int, optional
        Calendar year (None or 0: all years); one audit per establishment (``audit_choice``).
    alpha, n_boot, seed
        1 - confidence level; bootstrap replicates of the epsilon² interval and their seed.

    Returns
    -------
    DataFrame (tests vocabulary), for each metric in order:

    * numeric metric: one ``kruskal_wallis`` row (``effect_size`` epsilon² with bootstrap CI), then one
      row per pair (the pairwise test of :func:`~cyberobs_lib.stats.groups.compare_groups`, ``reference``
      in ``group_b``; ``effect_size`` Cliff's delta of group_a over group_b, Cliff CI);
    * binary metric: one omnibus row (``chi_square`` or ``fisher_exact`` on the families x outcome
      table, ``effect_size`` Cramér's V, noncentral chi-square CI), then one row per pair (2 x 2 test
      chosen by expected counts, ``effect_size`` = share_a - share_b with its Newcombe hybrid-score CI).

    ``p_adjusted``: omnibus rows are adjusted across metrics by Benjamini-Hochberg (``adjust_method`` =
    ``fdr_bh across metrics``); pairwise rows by Holm within the metric (``holm within metric``).

    Notes
    -----
    Tests are delegated to :func:`cyberobs_lib.stats.groups.compare_groups` and
    :func:`cyberobs_lib.stats.proportions.compare_proportions` (Cochran's rule: a 2 x 2 table with an
    expected count < 5, or a larger table with > 20 % of expected counts < 5, gets an exact test). Rows
    with a missing metric (e.g. unknown protection status) are left out of that metric only. A metric
    for which a test is undefined (a single family, a constant outcome) yields one row whose
    ``variant`` starts with ``undefined:``.

    References
    ----------
    Kruskal & Wallis (1952); Dunn (1964); Cliff (1993); Cochran (1954); Newcombe (1998) Stat Med
    17:873-890; Holm (1979); Benjamini & Hochberg (1995) JRSS B 57:289-300.
    """
    unknown = [m for m in metrics if m not in (*PROPORTION_METRICS, *COUNT_METRICS)]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; use {PROPORTION_METRICS + COUNT_METRICS}")
    rows = _subset(frame, families=families, period=period, audit_choice=audit_choice)
    parts = []
    missing = unavailable_metrics(frame)
    for metric in metrics:  # a handful of metrics
        sub = rows[[FAMILY, metric]].dropna()
        if metric in missing:  # unknown, not 0 (e.g. no KEV catalog): a row saying so
            test = "chi_square" if metric in PROPORTION_METRICS else "kruskal_wallis"
            parts.append(_undefined(metric, test, missing[metric], 0))
        elif sub[FAMILY].nunique() < 2:
            parts.append(_undefined(metric, "kruskal_wallis", "fewer than two families with data", len(sub)))
        elif metric in PROPORTION_METRICS:
            parts.append(_proportion_tests(sub, metric, alpha=alpha, seed=seed, reference=reference))
        else:
            try:
                res = compare_groups(
                    sub,
                    value=metric,
                    group=FAMILY,
                    alpha=alpha,
                    study=STUDY,
                    metric=metric,
                    n_boot=n_boot,
                    seed=seed,
                    reference=reference,  # pairs oriented "family vs reference" where they are computed
                )
            except ValueError as err:
                parts.append(_undefined(metric, "kruskal_wallis", str(err), len(sub)))
                continue
            res.loc[res["group_b"].notna(), "adjust_method"] = HOLM  # every pairwise row, whatever its test
            parts.append(res)
    out = _stack(parts)
    omnibus = out["adjust_method"].isna()  # pairwise rows already carry their Holm adjustment
    out.loc[omnibus, ["p_adjusted", "adjust_method"]] = adjust_pvalues(out.loc[omnibus], method="fdr_bh")[
        ["p_adjusted", "adjust_method"]
    ].assign(adjust_method=BH)
    return make_tests_table(out.to_dict("records"))


def _usable_covariates(
    rows: pd.DataFrame, base: list[str], covariates: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Covariates that exist, vary, and keep the design of full rank (dropped from the end otherwise)."""
    kept = [c for c in covariates if c in rows.columns and rows[c].dropna().nunique() > 1]
    while True:
        data = rows[[*base, *kept]].dropna()
        X, _ = build_design(data, terms=[FAMILY, *kept], reference=None)
        if not kept or np.linalg.matrix_rank(X.to_numpy()) == X.shape[1]:
            return kept, [c for c in covariates if c not in kept]
        kept = kept[:-1]


def _sized(fit: pd.DataFrame, used: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add establishments per family level (``n_family``) and in the reference (``n_reference``).

    Covariate and intercept rows get the model's n, so that small-cell suppression on ``n_family`` only
    ever hides the families that are too small; the tests rows (no intercept) carry the same sizes in
    ``n_a``/``n_b``.
    """
    sizes = used[FAMILY].value_counts()
    is_family = (fit["term"] == FAMILY).to_numpy()
    n_family = np.where(is_family, fit["level"].map(sizes), fit["n"]).astype("int64")
    n_reference = pd.array(np.where(is_family, fit["reference"].map(sizes), np.nan), dtype="Int64")
    fit = fit.assign(n_family=n_family, n_reference=n_reference)
    tests = to_tests_table(fit, study=STUDY, metric=fit.attrs.get("outcome", fit["outcome"].iloc[0]))
    coef = (fit["term"] != INTERCEPT).to_numpy()  # the rows to_tests_table keeps, in order
    return fit, tests.assign(n_a=pd.array(n_family[coef], dtype="Int64"), n_b=n_reference[coef])


def _with_p_adjusted(
    fits: Sequence[pd.DataFrame], test_table: pd.DataFrame, columns: Sequence[str]
) -> pd.DataFrame:
    """Stack the model tables, the documented columns first, with the tests' adjusted p-values (none on
    intercepts, which have no test row)."""
    table = pd.concat(fits, ignore_index=True)
    table["p_adjusted"] = np.nan
    table.loc[(table["term"] != INTERCEPT).to_numpy(), "p_adjusted"] = test_table["p_adjusted"].to_numpy()
    return table[[*columns, *(c for c in table.columns if c not in columns)]]


def _family_rows_bh(tests: pd.DataFrame) -> pd.DataFrame:
    """BH across the family coefficients of every outcome; covariate rows are not the study question."""
    out = tests.copy()
    is_family = out["group_a"].astype(str).str.startswith(f"{FAMILY}=")
    if is_family.any():
        adj = adjust_pvalues(out.loc[is_family], method="fdr_bh")
        out.loc[is_family, "p_adjusted"] = adj["p_adjusted"]
        out.loc[is_family, "adjust_method"] = BH
    return out


def adjusted_rate_ratios(
    frame: pd.DataFrame,
    *,
    reference: str,
    outcomes: Sequence[str] = ("n_findings",),
    exposure: str = Audits.hosts_in_scope,
    families: Sequence[str] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    period: int | None = None,
    audit_choice: AuditChoice = "first",
    count_model: Literal["auto", "poisson", "negative_binomial"] = "auto",
    min_df_resid: int = MIN_DF_RESID,
    alpha: float = 0.05,
    on_error: Literal["raise", "row"] = "raise",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rate ratios of families against a reference, adjusted for legal status, region and size.

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`~cyberobs_lib.studies.indicators.audit_metrics`; not mutated.
    reference : str
        Reference family (rate ratio 1).
    outcomes : list of str
        Count columns (``n_findings``, ``n_crit_high``...), one model each.
    exposure : str
        Exposure of the log offset (exposed hosts); audits with no host in scope are left out.
    families, covariates, period, audit_choice
        Families kept; adjustment covariates (numeric ones enter linearly, e.g. ``log_beds``, so that
        its rate ratio is per e-fold of beds); period and audit choice as in :func:`compare_families`.
    count_model, min_df_resid, alpha
        Model (``"auto"``: Poisson unless the boundary-corrected likelihood-ratio test of the negative
        binomial α rejects it), fewest residual df (below: rows ``model = "not estimable"``, said by
        :func:`~cyberobs_lib.studies.methods.not_modelled_sentence`), 1 - confidence level; see
        :func:`cyberobs_lib.stats.models.fit_count_model`.
    on_error : {"raise", "row"}
        What a model the data cannot support does (no audit of the reference family with hosts in scope,
        e.g. a year without audits; a fit that fails): raise ``ValueError``, or give one row per outcome
        with ``model`` = ``not modelled`` and the reason in ``note`` (and an ``undefined:`` test row), for
        pages that must say it in words (:func:`cyberobs_lib.studies.methods.not_modelled_sentence`).

    Returns
    -------
    (rate_ratios, tests)
        ``rate_ratios``: one row per outcome and coefficient (the intercept first), columns
        :data:`RATE_RATIO_COLUMNS`: those of :func:`cyberobs_lib.stats.models.fit_count_model` (``term``,
        ``level``, ``reference``, ``rate_ratio``, ``ci_low``, ``ci_high``, ``z``, ``p_value``, ``model``,
        ``dispersion``, ``n``, ``ci_method``, ``model_choice``, ``nb_alpha``, the overdispersion test and
        the fit statistics...) plus ``outcome``, ``covariates`` (those kept), ``note`` (the model choice
        and the dropped covariates), ``n_family`` (establishments of that family in the model; the
        model's n on covariate and intercept rows), ``n_reference`` and ``p_adjusted`` (none on
        intercepts). ``tests``: the same in the tests vocabulary, intercepts left out (``n_a``/``n_b`` =
        family and reference sizes); family rows carry Benjamini-Hochberg p-values across outcomes
        (``fdr_bh across metrics``).

    Notes
    -----
    log E[count] = log(hosts) + family + covariates; Poisson GLM, or NB2 when the likelihood-ratio test
    of its α (boundary-corrected) rejects the Poisson model (McCullagh & Nelder 1989; Cameron & Trivedi
    2013, §3.4); fewer than ``min_df_resid`` residual df: ``not estimable`` rows. A covariate
    that is absent, constant, or makes the design rank-deficient (e.g. legal status when every family
    kept has a single status) is dropped and named in ``note``. A family difference that only reflects
    size shows a rate ratio near 1 once ``log_beds`` is in the model.
    """
    rows = _subset(frame, families=families, period=period, audit_choice=audit_choice)
    rows = rows[pd.to_numeric(rows[exposure], errors="coerce") > 0]
    if on_error not in ("raise", "row"):
        raise ValueError(f"on_error must be 'raise' or 'row', got {on_error!r}")
    if rows[FAMILY].nunique() < 2:  # checked first: no family given at all is not a missing reference
        reason = f"fewer than two families with audits with hosts in scope{f' in {period}' if period else ''}"
        if on_error == "raise":
            raise ValueError(reason)
        return _not_modelled(outcomes, reference, reason)
    if reference not in set(rows[FAMILY]):
        reason = f"reference family {reference!r} has no audit with hosts in scope"
        if period:
            reason += f" in {period}"
        if on_error == "raise":
            raise ValueError(reason)
        return _not_modelled(outcomes, reference, reason)
    fits, tests = [], []
    for outcome in outcomes:  # one model per outcome
        try:
            kept, dropped = _usable_covariates(rows, [FAMILY, outcome, exposure], covariates)
            fit = fit_count_model(
                rows, outcome=outcome, exposure=exposure, terms=[FAMILY, *kept], reference={FAMILY: reference},
                model=count_model, min_df_resid=min_df_resid, alpha=alpha,
            )  # fmt: skip
        except ValueError as err:
            if on_error == "raise":
                raise
            return _not_modelled(
                outcomes, reference, f"the count model of {outcome} could not be fitted: {err}"
            )
        note = fit.attrs["note"] + (f"; dropped covariates {dropped}" if dropped else "")
        used = rows[[FAMILY, outcome, exposure, *kept]].dropna()
        fit, test = _sized(fit.assign(outcome=outcome, covariates=",".join(kept), note=note), used)
        fits.append(fit)
        tests.append(test)
    test_table = _family_rows_bh(_stack(tests))
    table = _with_p_adjusted(fits, test_table, RATE_RATIO_COLUMNS)
    return table, make_tests_table(test_table.to_dict("records"))


#: Columns of the rate ratios table of :func:`adjusted_rate_ratios`.
RATE_RATIO_COLUMNS = (
    "term", "level", "reference", "rate_ratio", "ci_low", "ci_high", "z", "p_value", "model", "dispersion", "n",
    "ci_method", "outcome", "covariates", "note", "n_family", "n_reference", "p_adjusted",
    "estimate", "std_error", "model_choice", "nb_alpha", "overdispersion_lr", "overdispersion_p", "deviance",
    "log_likelihood", "aic", "df_resid", "estimable",
)  # fmt: skip
#: Columns of the odds ratios table of :func:`adjusted_odds_ratios`.
ODDS_RATIO_COLUMNS = (
    "term", "level", "reference", "odds_ratio", "ci_low", "ci_high", "z", "p_value", "model", "n", "ci_method",
    "separation", "outcome", "covariates", "note", "n_family", "n_reference", "p_adjusted", "estimation",
    "estimate", "std_error", "deviance", "log_likelihood", "aic", "df_resid", "estimable",
)  # fmt: skip
NOT_MODELLED = "not modelled"


def _not_modelled(outcomes: Sequence[str], reference: str, reason: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rate ratios and tests of :func:`adjusted_rate_ratios` when no model can be fitted: one row per outcome
    saying why (``model`` = ``not modelled``, ``note`` = the reason), no ratio."""
    table = pd.DataFrame(
        [
            {
                "term": FAMILY,
                "reference": reference,
                "model": NOT_MODELLED,
                "n": 0,
                "outcome": o,
                "note": reason,
                "n_family": 0,
                "n_reference": 0,
                "estimable": False,
            }
            for o in outcomes
        ],  # fmt: skip
        columns=list(RATE_RATIO_COLUMNS),
    )
    tests = _stack([_undefined(o, "count_model", reason, 0) for o in outcomes])
    return table, tests


def adjusted_odds_ratios(
    frame: pd.DataFrame,
    *,
    reference: str,
    outcomes: Sequence[str] = PROPORTION_METRICS,
    families: Sequence[str] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    period: int | None = None,
    audit_choice: AuditChoice = "first",
    alpha: float = 0.05,
    on_error: Literal["raise", "row"] = "raise",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Odds ratios of families for each binary indicator, adjusted like :func:`adjusted_rate_ratios`.

    Returns
    -------
    (odds_ratios, tests)
        ``odds_ratios``: columns of :func:`cyberobs_lib.stats.models.fit_logistic` (``odds_ratio``,
        ``ci_low``, ``ci_high``, ``separation``, ``estimation``, the intercept row and the fit
        statistics...) plus ``outcome``, ``p_adjusted`` (none on intercepts), ``covariates``, ``note``,
        ``n_family``, ``n_reference`` (as in :func:`adjusted_rate_ratios`), columns
        :data:`ODDS_RATIO_COLUMNS` first; ``tests`` in the tests vocabulary (BH across outcomes on the
        family rows; no intercept row). An outcome
        with a single observed value, or that the dataset cannot measure (``has_kev`` without a KEV
        catalog, :func:`~cyberobs_lib.studies.indicators.unavailable_metrics`), is skipped, listed in
        ``attrs["skipped"]`` and given an ``undefined:`` row in ``tests``. When no outcome could be
        modelled: ``ValueError`` (``on_error="raise"``, unless some were unavailable), or (``"row"``) an empty
        table and the ``undefined:`` rows saying why.

    Notes
    -----
    Logistic regression (Agresti 2013, §3.1). Under (quasi-)separation, e.g. a family without any event,
    the other families keep their maximum likelihood odds ratios and the separated levels get Firth's
    penalised-likelihood estimate with its profile interval, ``separation = True`` and ``estimation`` =
    ``Firth (separation)`` (:func:`cyberobs_lib.stats.models.fit_logistic`; the warning is recorded in
    ``note`` instead of being raised): no term is left blank. When the
    rarer outcome has fewer than 10 events per estimated coefficient, ``note`` says so: maximum
    likelihood odds ratios are then biased away from 1 and their Wald intervals unreliable (Peduzzi et
    al. 1996, J Clin Epidemiol 49:1373-1379); drop covariates (e.g. region) or pool families.
    """
    rows = _subset(frame, families=families, period=period, audit_choice=audit_choice)
    fits, tests, skipped, undefined = [], [], [], []
    missing = unavailable_metrics(frame)
    for outcome in outcomes:
        if outcome in missing:  # unknown, not 0 (e.g. no KEV catalog)
            skipped.append(outcome)
            undefined.append(_undefined(outcome, "logistic", missing[outcome], 0))
            continue
        data = rows[rows[outcome].notna()].assign(**{outcome: rows[outcome].astype(float)})
        if data[outcome].nunique() < 2 or reference not in set(data[FAMILY]) or data[FAMILY].nunique() < 2:
            skipped.append(outcome)
            reason = (
                "fewer than two families"
                if data[FAMILY].nunique() < 2
                else f"no {reference} audit"
                if reference not in set(data[FAMILY])
                else "a single observed value"
            )
            undefined.append(_undefined(outcome, "logistic", reason, len(data)))
            continue
        kept, dropped = _usable_covariates(data, [FAMILY, outcome], covariates)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SeparationWarning)
            fit = fit_logistic(
                data, outcome=outcome, terms=[FAMILY, *kept], reference={FAMILY: reference}, alpha=alpha
            )
        used = data[[FAMILY, outcome, *kept]].dropna()
        epv = min(used[outcome].sum(), len(used) - used[outcome].sum()) / int(
            (fit["term"] != INTERCEPT).sum()
        )
        notes = [str(w.message) for w in caught] + ([f"dropped covariates {dropped}"] if dropped else [])
        if epv < 10:
            notes.append(f"{epv:.1f} events per parameter (< 10): odds ratios may be biased away from 1")
        note = "; ".join(notes)
        fit, test = _sized(fit.assign(outcome=outcome, covariates=",".join(kept), note=note), used)
        fits.append(fit)
        tests.append(test)
    if not fits and not missing and on_error == "raise":
        raise ValueError(
            f"no binary outcome could be modelled (constant or without the reference): {skipped}"
        )
    if not fits:  # every outcome unavailable or constant: the rows saying why, no odds ratio
        table = pd.DataFrame(columns=list(ODDS_RATIO_COLUMNS))
        table.attrs["skipped"] = skipped
        return table, _stack(undefined)
    test_table = _family_rows_bh(_stack(tests))
    table = _with_p_adjusted(fits, test_table, ODDS_RATIO_COLUMNS)
    table.attrs["skipped"] = skipped
    return table, _stack([make_tests_table(test_table.to_dict("records")), *undefined])


def family_trends(
    frame: pd.DataFrame,
    *,
    families: Sequence[str] | None = None,
    proportions: Sequence[str] = PROPORTION_METRICS,
    count: str = "n_findings",
    exposure: str = Audits.hosts_in_scope,
    audit_choice: AuditChoice = "first",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Trends across calendar years within each family: Cochran-Armitage for shares, count model for rates.

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`~cyberobs_lib.studies.indicators.audit_metrics`; one audit per establishment
        and year is kept.
    families, proportions, count, exposure, audit_choice, alpha
        Families; binary metrics tested for a linear trend; count and exposure of the rate model.

    Returns
    -------
    DataFrame (tests vocabulary), per family: one ``cochran_armitage_trend`` row per binary metric
    (scores = calendar years; ``effect_size`` = slope of the share per year) and one count-model row
    (``metric`` = ``<count> per year``, ``effect_size`` = rate ratio per year with its Wald CI, from
    :func:`~cyberobs_lib.stats.models.fit_count_model` with year as a numeric covariate and the exposure
    offset; year enters as years since the first year of the data). ``group_a`` = the family. A family observed in a single year, or a constant outcome, gets a
    row whose ``variant`` starts with ``undefined:``. ``p_adjusted``: BH across all rows.

    References
    ----------
    Cochran WG (1954) Biometrics 10:417-451; Armitage P (1955) Biometrics 11:375-386.
    """
    years = sorted(frame[YEAR].dropna().unique().tolist())
    per_year = pd.concat([select_audits(frame, period=y, audit_choice=audit_choice) for y in years])
    per_year = per_year[per_year[FAMILY].notna()]
    if families is not None:
        per_year = per_year[per_year[FAMILY].isin(list(families))]
    parts = []
    missing = unavailable_metrics(frame)
    for family, rows in per_year.groupby(FAMILY, sort=True):  # a few families
        for metric in proportions:
            if metric in missing:  # unknown, not 0 (e.g. no KEV catalog)
                parts.append(
                    _undefined(metric, "cochran_armitage_trend", missing[metric], 0).assign(group_a=family)
                )
                continue
            sub = rows[rows[metric].notna()]
            agg = sub[metric].astype(bool).groupby(sub[YEAR]).agg(["sum", "count"])
            try:
                res = cochran_armitage_trend(
                    agg["sum"], agg["count"], agg.index.to_numpy(float), study=STUDY, metric=metric
                )
            except ValueError as err:
                res = _undefined(metric, "cochran_armitage_trend", str(err), len(sub))
            parts.append(res.assign(group_a=family, variant=res["variant"] + "; scores = calendar years"))
        sub = rows[pd.to_numeric(rows[exposure], errors="coerce") > 0]
        sub = sub.assign(**{YEAR: (sub[YEAR] - years[0]).astype(float)})  # centred: the NB fit converges
        metric = f"{count} per year"
        if sub[YEAR].nunique() < 2:
            parts.append(_undefined(metric, "poisson", "a single year", len(sub)).assign(group_a=family))
            continue
        with warnings.catch_warnings():  # two years make a saturated fit: exact, not an error
            warnings.simplefilter("ignore", PerfectSeparationWarning)
            fit = fit_count_model(sub, outcome=count, exposure=exposure, terms=[YEAR], alpha=alpha)
        res = to_tests_table(fit, study=STUDY, metric=metric)
        parts.append(res.assign(group_a=family, variant=res["variant"] + "; year numeric covariate"))
    out = _stack(parts)
    return make_tests_table(adjust_pvalues(out, method="fdr_bh").assign(adjust_method=BH).to_dict("records"))


def plan_sample_size(
    p_a: float | Sequence[float], p_b: float | Sequence[float], *, alpha: float = 0.05, power: float = 0.8
) -> pd.DataFrame:
    """Establishments to audit per family to detect a difference between two shares.

    Parameters
    ----------
    p_a, p_b : float or array
        Expected shares in the two families (broadcast against each other).
    alpha, power : float, keyword-only
        Two-sided significance level and the power wanted.

    Returns
    -------
    DataFrame: ``p_a``, ``p_b``, ``difference``, ``alpha``, ``power``, ``n_exact`` (real-valued
    solution), ``n_per_family`` (rounded up), ``method``.

    Notes
    -----
    One row per pair of shares from :func:`cyberobs_lib.stats.power.sample_size_two_proportions`
    (equal group sizes): the normal approximation of R ``power.prop.test``, which neglects the far
    tail (``strict = FALSE``).

    References
    ----------
    Fleiss JL, Levin B, Paik MC (2003) Statistical Methods for Rates and Proportions, 3rd ed., §4.2.
    R Core Team, ``power.prop.test``: p1 = 0.5, p2 = 0.75, power = 0.9 gives n = 76.7.

    Examples
    --------
    >>> plan_sample_size(0.5, 0.75, power=0.9)[["n_exact", "n_per_family"]].round(2)
       n_exact  n_per_family
    0    76.71            77
    """
    a, b = np.broadcast_arrays(np.atleast_1d(np.asarray(p_a, float)), np.atleast_1d(np.asarray(p_b, float)))
    if np.any((a <= 0) | (a >= 1) | (b <= 0) | (b >= 1)) or np.any(a == b):
        raise ValueError("shares must lie strictly between 0 and 1 and differ")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie strictly between 0 and 1")
    n = np.array(
        [
            sample_size_two_proportions(x, y, alpha=alpha, power=power)["n_per_group"].iloc[0]
            for x, y in zip(a, b, strict=True)
        ]
    )  # a handful of scenarios
    return pd.DataFrame(
        {
            "p_a": a,
            "p_b": b,
            "difference": a - b,
            "alpha": alpha,
            "power": power,
            "n_exact": n,
            "n_per_family": np.ceil(n - 1e-9).astype("int64"),
            "method": "normal approximation, two-sided (R power.prop.test)",
        }
    )
