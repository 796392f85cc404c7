"""Exposure and incidents side by side, and whether exposure seen in an audit precedes a declared incident.

Audit exposure comes from :func:`cyberobs_lib.studies.indicators.audit_metrics` (one row per audit with
``has_kev``, ``exposes_remote_admin``, ``no_protection``); incidents from
:func:`cyberobs_lib.incident_files.read_incidents` or ingestion. The association is estimated at
establishment level with a logistic regression (:func:`cyberobs_lib.stats.models.fit_logistic`) adjusted
for family and size; :func:`caveats` states what such an association can and cannot mean.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from cyberobs_lib.l10n import label, text
from cyberobs_lib.markup import escape_markdown
from cyberobs_lib.schema import Audits, Incidents
from cyberobs_lib.stats import make_tests_table
from cyberobs_lib.stats.models import SeparationWarning, fit_logistic, to_tests_table
from cyberobs_lib.studies.incidents import ALL, incident_indicators
from cyberobs_lib.studies.indicators import (
    UNAVAILABLE_REASONS,
    compute_indicators,
    select_audits,
    unavailable_metrics,
    unavailable_reason,
)

OUTCOME = "incident_in_window"
#: Exposure flags tested; ``kev_or_remote_admin`` is the union of the first two.
EXPOSURES = ("kev_or_remote_admin", "has_kev", "exposes_remote_admin", "no_protection")
SIDE_BY_SIDE_EXPOSURES = ("has_kev", "exposes_remote_admin", "no_protection")
#: Exposures that need the KEV catalog: not estimable without it (``indicators.unavailable_metrics``).
KEV_EXPOSURES = ("kev_or_remote_admin", "has_kev")
ODDS_RATIO_COLUMNS = (
    "exposure", "odds_ratio", "ci_low", "ci_high", "p_value", "crude_odds_ratio", "n", "n_exposed", "events",
    "events_exposed", "n_dropped_missing", "n_dropped_noninformative", "covariates", "window_days",
    "audit_choice", "separation", "model", "ci_method",
)  # fmt: skip


def audit_outcomes(
    metrics: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    window_days: int = 365,
    follow_up_end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per audit: its exposure flags and whether its establishment declared an incident afterwards.

    Parameters
    ----------
    metrics : DataFrame
        Output of :func:`~cyberobs_lib.studies.indicators.audit_metrics`; not mutated.
    incidents : DataFrame
        Contract incidents; only those with a FINESS can be linked to an audit.
    window_days : int
        Length of the window after the audit date.
    follow_up_end : date, optional
        Last day incident declarations are known for; default 31 December of the latest declaration year.

    Returns
    -------
    DataFrame: the columns of ``metrics`` plus ``kev_or_remote_admin`` (has_kev or exposes_remote_admin),
    ``incident_in_window`` (bool: an incident of the same FINESS declared in (audit_date, audit_date +
    window_days]), ``days_to_incident`` (days to the first such incident, NaN if none), ``window_complete``
    (bool: audit_date + window_days <= follow_up_end; otherwise the outcome is censored).

    Examples
    --------
    >>> m = pd.DataFrame({"audit_id": ["A", "B"], "finess": ["1", "2"], "has_kev": [True, False],
    ...                   "exposes_remote_admin": False, "audit_date": pd.to_datetime(["2023-01-01"] * 2)})
    >>> inc = pd.DataFrame({"finess": ["1", "2"], "declared_on": pd.to_datetime(["2023-06-01", "2024-06-01"])})
    >>> audit_outcomes(m, inc)[["incident_in_window", "days_to_incident", "window_complete"]].values.tolist()
    [[True, 151.0, True], [False, nan, True]]
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days}")
    out = metrics.copy()
    # unknown KEV status (no KEV catalog) makes the union unknown too (Kleene or: NA | True is True)
    out["kev_or_remote_admin"] = out["has_kev"].astype("boolean") | out["exposes_remote_admin"].astype(
        "boolean"
    )
    inc = incidents.loc[incidents[Incidents.finess].notna(), [Incidents.finess, Incidents.declared_on]]
    pairs = out[[Audits.audit_id, Audits.finess, Audits.audit_date]].merge(inc, on=Audits.finess)
    delay = (pairs[Incidents.declared_on] - pairs[Audits.audit_date]).dt.days
    first = delay[(delay > 0) & (delay <= window_days)].groupby(pairs[Audits.audit_id]).min()
    out["days_to_incident"] = out[Audits.audit_id].map(first).astype(float)
    out[OUTCOME] = out["days_to_incident"].notna()
    if follow_up_end is None or follow_up_end == "":
        last = incidents[Incidents.declared_on].max()
        follow_up_end = pd.Timestamp(f"{last.year}-12-31") if pd.notna(last) else out[Audits.audit_date].max()
    end = pd.Timestamp(follow_up_end)
    out["window_complete"] = out[Audits.audit_date] + pd.Timedelta(days=window_days) <= end
    return out


def _noninformative(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.Series:
    """Rows in a level of a categorical covariate whose outcomes are all equal (no information on the OR)."""
    drop = pd.Series(False, index=frame.index)
    for cov in covariates:
        col = frame[cov]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            continue
        share = frame.groupby(col.astype(str), sort=False)[OUTCOME].transform("mean")
        drop |= share.isin([0.0, 1.0])
    return drop


def exposure_incident_association(
    metrics: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    window_days: int = 365,
    covariates: Sequence[str] = ("family", "log_beds"),
    exposures: Sequence[str] = EXPOSURES,
    audit_choice: Literal["first", "last", "all"] = "first",
    follow_up_end: str | pd.Timestamp | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Odds ratio of an incident declared within ``window_days`` after an audit showing exposure, adjusted.

    Parameters
    ----------
    metrics : DataFrame
        Output of :func:`~cyberobs_lib.studies.indicators.audit_metrics`; not mutated.
    incidents : DataFrame
        Contract incidents (with ``finess``; others cannot be linked and are ignored).
    window_days : int
        Outcome window after the audit date.
    covariates : list of str
        Adjustment terms (columns of ``metrics``): by default family and log(beds).
    exposures : list of str
        Exposure flags, one model each (:data:`EXPOSURES`).
    audit_choice : {"first", "last", "all"}
        One audit per establishment (its first or last, so that units are independent) or every audit
        (then repeated audits of one establishment are treated as independent: intervals too narrow).
    follow_up_end : date, optional
        See :func:`audit_outcomes`; audits whose window ends after it are excluded (censored outcome).
    alpha : float
        1 - confidence level.

    Returns
    -------
    (tests, odds_ratios)
        ``tests``: ``tests.csv`` rows (:func:`cyberobs_lib.stats.models.to_tests_table`), one per exposure
        (the exposure coefficient; study ``incidents``, metric ``incident_within_<window_days>d``).
        ``odds_ratios``: one row per exposure, columns :data:`ODDS_RATIO_COLUMNS`: ``odds_ratio`` adjusted,
        ``ci_low``, ``ci_high`` (Wald), ``p_value``, ``crude_odds_ratio`` (same rows, no covariate), ``n``
        (audits in the model), ``n_exposed``, ``events``, ``events_exposed``, ``n_dropped_missing`` (a
        missing exposure or covariate, e.g. unknown protection status or beds), ``n_dropped_noninformative``
        (families whose establishments all had, or all lacked, an incident), ``covariates`` (those in the
        model: a covariate left with a single value is dropped),
        ``window_days``, ``audit_choice``, ``separation``, ``model``, ``ci_method``.

    Notes
    -----
    logit P(incident in (d, d + window]) = b0 + b1 exposure + family + c log(beds); OR = exp(b1) with Wald
    interval exp(b1 +/- z SE). Dropping a family whose outcomes are all equal leaves the other estimates
    unchanged: its dummy would go to -/+ infinity and those rows would contribute nothing (Agresti 2013,
    §6.5.1). An exposure that cannot be estimated (no event, a single exposure level) gives a NaN row; so
    does one the dataset cannot measure (``has_kev`` and ``kev_or_remote_admin`` without a KEV catalog: ``n``
    0, counts missing, ``model`` = ``not estimable: unavailable: ...``).

    References
    ----------
    Agresti A (2013) Categorical Data Analysis, 3rd ed., §5 and §6.5.1. Rothman KJ, Greenland S, Lash TL
    (2008) Modern Epidemiology, 3rd ed., ch. 15 and 20 (confounding by size and type).
    """
    if audit_choice not in ("first", "last", "all"):
        raise ValueError(f"audit_choice must be 'first', 'last' or 'all', got {audit_choice!r}")
    unknown = [e for e in exposures if e not in EXPOSURES]
    if unknown:
        raise ValueError(f"unknown exposures {unknown}; known: {EXPOSURES}")
    units = metrics if audit_choice == "all" else select_audits(metrics, audit_choice=audit_choice)
    o = audit_outcomes(units, incidents, window_days=window_days, follow_up_end=follow_up_end)
    o = o[o["window_complete"]].reset_index(drop=True)
    covariates = list(covariates)
    rows, tests = [], []
    missing = unavailable_metrics(metrics)
    for exposure in exposures:  # a handful of models
        needs = "has_kev" if exposure in KEV_EXPOSURES else exposure
        if needs in missing:  # unknown, not "never exposed": no model, the reason in ``model``
            rows.append({"exposure": exposure, "n": 0, "window_days": window_days, "audit_choice": audit_choice,
                         "model": f"not estimable: {unavailable_reason(missing[needs], 'en')}"})  # fmt: skip
            continue
        data = o[[OUTCOME, exposure, *covariates]]
        complete = data.notna().all(axis=1)
        data = data[complete].assign(**{exposure: data.loc[complete, exposure].astype(bool)})
        drop = _noninformative(data, covariates)
        data = data[~drop].assign(**{OUTCOME: lambda d: d[OUTCOME].astype(int)})
        row = {
            "exposure": exposure,
            "n": len(data),
            "n_exposed": int(data[exposure].sum()),
            "events": int(data[OUTCOME].sum()),
            "events_exposed": int(data.loc[data[exposure], OUTCOME].sum()),
            "n_dropped_missing": int((~complete).sum()),
            "n_dropped_noninformative": int(drop.sum()),
            "covariates": ", ".join(c for c in covariates if data[c].nunique() > 1),
            "window_days": window_days,
            "audit_choice": audit_choice,
            "separation": False,
            "model": "logistic",
            "ci_method": "wald",
        }
        terms = [c for c in covariates if data[c].nunique() > 1]  # a constant covariate adjusts nothing
        reference = {c: data[c].astype(str).mode().iloc[0] for c in terms if data[c].dtype == object}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SeparationWarning)
                fit = fit_logistic(data, outcome=OUTCOME, terms=[exposure, *terms], reference=reference)
                crude = fit_logistic(data, outcome=OUTCOME, terms=[exposure])
        except ValueError as exc:  # no event, one exposure level, one covariate level...
            rows.append(row | {"model": f"not estimable: {exc}"})
            continue
        coef = fit[fit["term"] == exposure]
        row |= {
            "odds_ratio": float(coef["odds_ratio"].iloc[0]),
            "ci_low": float(coef["ci_low"].iloc[0]),
            "ci_high": float(coef["ci_high"].iloc[0]),
            "p_value": float(coef["p_value"].iloc[0]),
            "crude_odds_ratio": float(crude["odds_ratio"].iloc[0]),
            "separation": bool(coef["separation"].iloc[0])
            or any(w.category is SeparationWarning for w in caught),
        }
        rows.append(row)
        tests.append(to_tests_table(coef, study="incidents", metric=f"incident_within_{window_days}d"))
    table = pd.DataFrame(rows).reindex(columns=list(ODDS_RATIO_COLUMNS))
    tests_table = pd.concat(tests, ignore_index=True) if tests else make_tests_table([])
    return tests_table, table


def side_by_side(
    metrics: pd.DataFrame,
    incidents: pd.DataFrame,
    establishments: pd.DataFrame,
    *,
    years: Sequence[int] | None = None,
    families: Sequence[str] | None = None,
    per: float = 1000.0,
    alpha: float = 0.05,
    min_cell: int | None = None,
) -> pd.DataFrame:
    """Family × year: audit exposure shares next to incident rates, each with its interval.

    Parameters
    ----------
    metrics, incidents, establishments
        Audit metrics (:func:`~cyberobs_lib.studies.indicators.audit_metrics`), contract incidents and the
        registry frame; not mutated.
    years : list of int, optional
        Calendar years (of audits and of declarations); None or empty: every year present in either.
    families : list of str, optional
        Families shown (plus ``all``); None: every family of the registry.
    per, alpha : float
        Rate multiplier and 1 - confidence level.
    min_cell : int, optional
        When given (published runs), exposure shares of fewer than ``min_cell`` audited establishments and
        incident rates built from fewer than ``min_cell`` declaring structures are blanked (0 stays shown).

    Returns
    -------
    DataFrame, one row per group × period (periods: the years, then ``all``): ``group``, ``period``,
    ``audited`` (establishments audited in the period, one audit each), for each of ``has_kev``,
    ``exposes_remote_admin``, ``no_protection``: the share (column named after the flag) and its Wilson
    limits ``<flag>_ci_low``/``<flag>_ci_high``; then ``eligible``, ``declarations``,
    ``incident_rate_per_1000`` with ``rate_ci_low``/``rate_ci_high`` (Garwood), ``suppressed`` (bool: a value
    of the row was blanked).

    Notes
    -----
    Descriptive only: the same family-year can show high exposure and a high rate without the exposed
    establishments being those that declared (ecological fallacy); see :func:`exposure_incident_association`.
    """
    audit_years = metrics["year"].dropna().astype(int).unique().tolist()
    inc_years = incidents[Incidents.declared_on].dt.year.dropna().astype(int).unique().tolist()
    yrs = sorted(int(y) for y in years) if years else sorted(set(audit_years) | set(inc_years))
    exp = compute_indicators(metrics, periods=yrs, groups=families, rate_ci="poisson_exact", alpha=alpha)
    exp = exp[exp["indicator"].isin(SIDE_BY_SIDE_EXPOSURES)]
    wide = exp.pivot_table(
        index=["group", "period"], columns="indicator", values=["value", "ci_low", "ci_high"], aggfunc="first"
    )
    wide.columns = [f if v == "value" else f"{f}_{v}" for v, f in wide.columns]
    # every audited establishment has a known remote-admin flag (counted from its findings); has_kev may be
    # unknown for all (no KEV catalog)
    audited = exp[exp["indicator"] == "exposes_remote_admin"].set_index(["group", "period"])[
        "n_establishments"
    ]
    inc = incident_indicators(incidents, establishments, years=yrs, families=families, per=per, alpha=alpha)
    inc = inc.set_index(["group", "period"])
    rate = inc[inc["indicator"] == "incident_rate_per_1000"]
    out = pd.DataFrame(
        {
            "eligible": inc.loc[inc["indicator"] == "eligible_establishments", "value"].astype("int64"),
            "declarations": inc.loc[inc["indicator"] == "declarations", "value"].astype("Int64"),
            "incident_rate_per_1000": rate["value"],
            "rate_ci_low": rate["ci_low"],
            "rate_ci_high": rate["ci_high"],
        }
    )
    out = out.join(audited.rename("audited")).join(wide)
    out["audited"] = out["audited"].fillna(0).astype("int64")
    out["suppressed"] = False
    if min_cell:
        structures = rate["n_establishments"].reindex(out.index)
        small_exp = out["audited"].between(1, min_cell - 1)
        small_rate = structures.between(1, min_cell - 1)
        shares = [f"{f}{s}" for f in SIDE_BY_SIDE_EXPOSURES for s in ("", "_ci_low", "_ci_high")]
        out.loc[small_exp, shares] = np.nan
        out.loc[small_rate, ["declarations", "incident_rate_per_1000", "rate_ci_low", "rate_ci_high"]] = pd.NA
        out["suppressed"] = small_exp | small_rate
    cols = ["audited"] + [f"{f}{s}" for f in SIDE_BY_SIDE_EXPOSURES for s in ("", "_ci_low", "_ci_high")]
    out = out.reindex(
        columns=[
            *cols,
            "eligible",
            "declarations",
            "incident_rate_per_1000",
            "rate_ci_low",
            "rate_ci_high",
            "suppressed",
        ]
    )
    out = out.reset_index()
    periods = {p: i for i, p in enumerate([*map(str, yrs), ALL])}
    out = out.assign(_p=out["period"].map(periods), _a=out["group"].eq(ALL))
    return (
        out.sort_values(["_p", "_a", "group"], kind="stable")
        .drop(columns=["_p", "_a"])
        .reset_index(drop=True)
    )


#: The caveats of the incident study, in order: catalog texts ``inc.caveat.<id>`` (French and English).
CAVEATS = ("under_reporting", "not_random", "not_causal", "window", "audit_effect", "odds_ratios")


def caveats(lang: str = "fr") -> str:
    """What a careful reader needs before interpreting incident rates and the exposure association (Markdown).

    >>> caveats("en").splitlines()[0][:40]
    '* Declarations under-report incidents: d'
    """
    return "\n".join(f"* {text(f'inc.caveat.{c}', lang)}" for c in CAVEATS)


def not_estimable_sentences(odds_ratios: pd.DataFrame, lang: str = "fr") -> str:
    """Markdown bullets naming each exposure whose odds ratio could not be estimated, and why; "" when none.

    >>> t = pd.DataFrame({"exposure": ["has_kev"], "model": ["not estimable: unavailable: no KEV catalog in the dataset"]})
    >>> print(not_estimable_sentences(t, "en"))
    **Not estimated:**
    <BLANKLINE>
    - known exploited vulnerability (KEV): unavailable: no KEV catalog in the dataset.
    """
    if "model" not in odds_ratios.columns:
        return ""
    rows = odds_ratios[odds_ratios["model"].astype(str).str.startswith("not estimable")]
    if rows.empty:
        return ""
    # the model column quotes the English sentence of an unavailable metric: read back to its id
    sentences = {unavailable_reason(r, "en"): unavailable_reason(r, lang) for r in UNAVAILABLE_REASONS}
    lines = []
    for r in rows.itertuples(index=False):
        reason = str(r.model).removeprefix("not estimable:").strip()
        why = sentences.get(reason) or text("inc.not_estimable.other", lang)
        lines.append(text("inc.not_estimable.item", lang, exposure=escape_markdown(label(str(r.exposure), lang)),
                          why=escape_markdown(why)))  # fmt: skip
    return text("inc.not_estimable.head", lang) + "\n\n" + "\n".join(lines)
