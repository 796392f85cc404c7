"""Incident indicators in the registry frame: declarations, shares and rates per family and year, trends.

Incident declarations (read by :func:`cyberobs_lib.incident_files.read_incidents` or ingested from
``incidents.csv``) are placed in the same registry frame as the audits: an incident's family comes from its
establishment in the registry, else from its FINESS category code, else from the family it declares
(:func:`attach_family`). Rates are per 1,000 *eligible* establishments of the family (the registry frame)
per year, with exact Poisson (Garwood) intervals; shares carry Wilson intervals; every row states its
method in ``ci_method`` (``indicators.csv`` vocabulary). The exposure side (audits next to incidents,
exposure before an incident) is :mod:`cyberobs_lib.studies.incident_exposure`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib import registry
from cyberobs_lib.l10n import LOCALES, as_date, fmt_date, fmt_number, fmt_percent, fmt_range, text
from cyberobs_lib.markup import escape_markdown
from cyberobs_lib.reference import incident_series
from cyberobs_lib.schema import INDICATORS_COLUMNS, Establishments, Incidents
from cyberobs_lib.stats.models import fit_poisson_trend
from cyberobs_lib.stats.proportions import wilson_interval
from cyberobs_lib.stats.rates import poisson_exact_interval
from cyberobs_lib.ticks import number_axis, percent_axis

ALL, YEAR, FAMILY = "all", "year", "family"
#: Indicator names of :func:`incident_indicators`, in table order.
INCIDENT_INDICATORS = (
    "eligible_establishments",
    "declarations",
    "declaring_structures",
    "declaring_share",
    "incident_rate_per_1000",
    "malicious_share",
    "ransomware",
    "impact_on_care_share",
)
#: Impacts counted as an impact on patient care (CERT Santé: "mode dégradé" or interruption).
CARE_IMPACTS = ("degraded", "interrupted")
#: Columns of :func:`incident_trends` (also those of its empty table when there is no declaration).
TREND_COLUMNS = (
    "group",
    "rate_ratio_per_year",
    "ci_low",
    "ci_high",
    "p_value",
    "model",
    "dispersion",
    "n_years",
    "first_year",
    "last_year",
    "rate_first",
    "rate_last",
    "ci_method",
    "declaring_structures",
    "suppressed",
)
#: Columns of :func:`national_totals`.
TOTALS_COLUMNS = (
    YEAR,
    "declarations",
    "declaring_structures",
    "malicious",
    "malicious_share",
    "malicious_ci_low",
    "malicious_ci_high",
    "ransomware",
    "impact_on_care",
    "impact_on_care_share",
)


def no_incidents_note(incidents: pd.DataFrame, lang: str = "fr", *, summary: dict | None = None) -> str:
    """The reader's sentence saying that incident indicators cannot be computed, or "" when there are
    declarations. An empty incidents table means *unknown*, not zero: the declarations were not given, so no
    rate, trend or association is computed (the tables stay empty rather than showing 0 per 1,000).

    ``summary`` is the ingest summary (``StudyData.summary``): its ``inputs`` tell whether ``incidents.csv``
    was there at all.

    >>> print(no_incidents_note(pd.DataFrame({"incident_id": []}), "en", summary={"inputs": {}}))
    No incident declarations in this dataset (no incidents.csv): declared incidents, their rates, trends and their link with the exposure seen in audits cannot be computed.
    >>> no_incidents_note(pd.DataFrame({"incident_id": ["a"]}), "en")
    ''
    """
    if len(incidents):
        return ""
    inputs = (summary or {}).get("inputs")
    absent = isinstance(inputs, dict) and not any(Path(str(k)).name == "incidents.csv" for k in inputs)
    why = text("inc.no_incidents.absent" if absent else "inc.no_incidents.empty", lang)
    return text("inc.no_incidents", lang, why=why)


def _declared_on(incidents: pd.DataFrame) -> pd.Series:
    """``declared_on`` as datetimes (an empty table may carry it as text)."""
    col = incidents[Incidents.declared_on]
    return col if pd.api.types.is_datetime64_any_dtype(col) else pd.to_datetime(col, errors="coerce")


def attach_family(incidents: pd.DataFrame, establishments: pd.DataFrame) -> pd.DataFrame:
    """Give every incident a family: registry (by FINESS), else FINESS category code, else declared family.

    Parameters
    ----------
    incidents : DataFrame
        Contract columns ``finess``, ``category_code``, ``family`` (any may be absent or empty: absent
        optional contract columns are added empty); not mutated.
    establishments : DataFrame
        The registry frame: ``finess``, ``family``.

    Returns
    -------
    DataFrame
        A copy of ``incidents`` with ``family`` resolved (NA when nothing says it) and ``family_source``
        (``registry``, ``category_code``, ``declared`` or NA).

    Examples
    --------
    >>> reg = pd.DataFrame({"finess": ["750000010"], "family": ["CH"]})
    >>> inc = pd.DataFrame({"finess": ["750000010", None, None], "category_code": [None, "500", None],
    ...                     "family": [None, None, "US health plan"]})
    >>> attach_family(inc, reg)[["family", "family_source"]].values.tolist()
    [['CH', 'registry'], ['EHPAD', 'category_code'], ['US health plan', 'declared']]
    """
    out = incidents.copy()
    for col in (
        Incidents.finess,
        Incidents.category_code,
        Incidents.family,
        Incidents.type,
        Incidents.impact_on_care,
    ):
        if col not in out.columns:
            out[col] = pd.NA
    reg = establishments.drop_duplicates(Establishments.finess).set_index(Establishments.finess)[FAMILY]
    from_reg = out[Incidents.finess].map(reg)
    cats = registry.load_categories().set_index("category_code")[FAMILY]
    codes = out[Incidents.category_code].astype("string").str.strip().str.zfill(3)
    from_code = codes.map(cats)
    declared = out[Incidents.family].astype("string")
    out["family_source"] = np.select(
        [from_reg.notna(), from_code.notna(), declared.notna()],
        ["registry", "category_code", "declared"],
        None,
    )
    out[FAMILY] = from_reg.astype("string").fillna(from_code.astype("string")).fillna(declared)
    return out


def _years(incidents: pd.DataFrame, years: Sequence[int] | None) -> list[int]:
    present = _declared_on(incidents).dt.year.dropna().astype(int)
    return sorted(set(present)) if not years else sorted(int(y) for y in years)


def _cell_counts(inc: pd.DataFrame, *, years: list[int], groups: list[str], overall: bool) -> pd.DataFrame:
    """Counts per (period, group): declarations, structures, malicious, ransomware, care impact."""
    inc = inc.assign(
        period=inc[YEAR].astype(str),
        _mal=inc[Incidents.nature].eq("malicious").fillna(False).astype(int),
        _ran=inc[Incidents.type].eq("ransomware").fillna(False).astype(int),
        _imp=inc[Incidents.impact_on_care].isin(CARE_IMPACTS).fillna(False).astype(int),
        _anon=inc[Incidents.finess].isna().astype(int),
    )
    if overall:
        inc = pd.concat([inc, inc.assign(period=ALL)], ignore_index=True)
    inc = pd.concat([inc.assign(group=inc[FAMILY].astype(object)), inc.assign(group=ALL)], ignore_index=True)
    keys = ["period", "group"]
    agg = inc.groupby(keys, sort=False).agg(
        declarations=(Incidents.incident_id, "size"),
        named=(Incidents.finess, "nunique"),
        anonymous=("_anon", "sum"),
        malicious=("_mal", "sum"),
        ransomware=("_ran", "sum"),
        care_impact=("_imp", "sum"),
    )
    agg["structures"] = agg["named"] + agg["anonymous"]
    periods = [str(y) for y in years] + ([ALL] if overall else [])
    index = pd.MultiIndex.from_product([periods, [*groups, ALL]], names=keys)
    return agg.reindex(index, fill_value=0).drop(columns=["named", "anonymous"])


def incident_indicators(
    incidents: pd.DataFrame,
    establishments: pd.DataFrame,
    *,
    years: Sequence[int] | None = None,
    families: Sequence[str] | None = None,
    per: float = 1000.0,
    overall: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Incident indicators per family and year, with intervals, in the ``indicators.csv`` vocabulary.

    Parameters
    ----------
    incidents : DataFrame
        Contract incidents (``incident_id``, ``declared_on`` datetime, ``nature``, ``finess``,
        ``category_code``, ``family``, ``type``, ``impact_on_care``); not mutated.
    establishments : DataFrame
        The registry frame (``finess``, ``family``): the eligible establishments, the rate denominators.
    years : list of int, optional
        Calendar years of ``declared_on``; None or empty: every year present.
    families : list of str, optional
        Families reported (the group ``all`` always pools every incident of the years, whatever its family).
        None: every family of the registry.
    per : float
        Rate multiplier (1000: per 1,000 establishments per year).
    overall : bool
        Add the period ``all`` (every year pooled; rates per establishment-year).
    alpha : float
        1 - confidence level.

    Returns
    -------
    DataFrame (``indicator, group, period, n_establishments, n_audits, value, ci_low, ci_high, ci_method,
    suppressed``), one row per indicator × group × period, indicators in :data:`INCIDENT_INDICATORS` order:
        * ``eligible_establishments`` -- registry establishments of the group (no interval);
        * ``declarations`` -- incidents declared, exact Poisson (Garwood) interval of the count;
        * ``declaring_structures`` -- distinct declaring establishments (no interval);
        * ``declaring_share`` -- declaring structures / eligible, Wilson interval;
        * ``incident_rate_per_1000`` -- per × declarations / (eligible × years in the period), Garwood;
        * ``malicious_share`` -- malicious / declarations, Wilson;
        * ``ransomware`` -- declarations of type ransomware, Garwood;
        * ``impact_on_care_share`` -- declarations with a degraded or interrupted care / declarations, Wilson.
        ``n_establishments`` = declaring structures behind the value (the disclosure unit, for
        :func:`cyberobs_lib.disclosure.suppress_small_cells`), except the eligible row (eligible count);
        ``n_audits`` is NA (no audit behind an incident indicator); ``suppressed`` False.

    Notes
    -----
    Declarations are treated as Poisson given the eligible establishments (rare events; rate =
    count / exposure, Garwood limits ``chi2_{a/2}(2x)/2`` and ``chi2_{1-a/2}(2x+2)/2``). Shares use all
    declarations as denominator, as the CERT Santé reports do (``unknown`` natures included). A declaration
    without FINESS counts as one declaring structure of its own. Incidents with no family (nothing in the
    registry, code or declaration) enter the group ``all`` only. Eligibility has no dates in the contract,
    so the denominator is the same every year.

    References
    ----------
    Garwood F (1936) Biometrika 28:437-442. Wilson EB (1927) JASA 22:209-212. ANS / CERT Santé, Observatoire
    des incidents de sécurité des SI pour les secteurs santé et médico-social (yearly reports).

    Examples
    --------
    >>> reg = pd.DataFrame({"finess": [f"75000{i:04d}" for i in range(2000)], "family": "EHPAD"})
    >>> inc = pd.DataFrame({"incident_id": list("abcde"), "finess": reg["finess"][:5].tolist(),
    ...     "declared_on": pd.to_datetime(["2024-01-05"] * 5), "nature": "malicious", "type": "phishing",
    ...     "impact_on_care": "none"})
    >>> out = incident_indicators(inc, reg, overall=False)
    >>> out[(out.indicator == "incident_rate_per_1000") & (out.group == "EHPAD")][["value", "ci_low", "ci_high"]].round(3)
       value  ci_low  ci_high
    8    2.5   0.812    5.834
    """
    if incidents.empty:  # unknown, not zero: no row (see no_incidents_note)
        return pd.DataFrame(columns=list(INDICATORS_COLUMNS))
    inc = attach_family(incidents, establishments)
    inc[YEAR] = _declared_on(inc).dt.year
    yrs = _years(inc, years)
    inc = inc[inc[YEAR].isin(yrs)]
    eligible = establishments.drop_duplicates(Establishments.finess).groupby(FAMILY, sort=True).size()
    groups = [str(g) for g in (families if families is not None else eligible.index)]
    eligible = eligible.reindex(groups, fill_value=0)
    eligible[ALL] = establishments[Establishments.finess].nunique()
    c = _cell_counts(inc, years=yrs, groups=groups, overall=overall)
    period, group = c.index.get_level_values(0), c.index.get_level_values(1)
    n_years = np.where(period == ALL, max(len(yrs), 1), 1)
    e = eligible.reindex(group).to_numpy(dtype=float)
    base = pd.DataFrame({"group": group, "period": period})
    structures = c["structures"].to_numpy()

    def rows(name, value, low=np.nan, high=np.nan, method=None, n=structures) -> pd.DataFrame:
        return base.assign(
            indicator=name, n_establishments=n, value=value, ci_low=low, ci_high=high, ci_method=method
        )

    def garwood(count, exposure, scale=1.0):
        out = pd.DataFrame(np.nan, index=range(len(count)), columns=["value", "ci_low", "ci_high"])
        ok = np.asarray(exposure) > 0
        if ok.any():
            ci = poisson_exact_interval(np.asarray(count)[ok], np.asarray(exposure)[ok], alpha=alpha)
            out.loc[ok, ["value", "ci_low", "ci_high"]] = (
                ci[["value", "ci_low", "ci_high"]].to_numpy() * scale
            )
        return out

    def wilson(x, n):
        return wilson_interval(np.asarray(x, float), np.asarray(n, float), alpha=alpha)

    decl = c["declarations"].to_numpy()
    parts = [rows("eligible_establishments", e, n=e.astype("int64"))]
    g = garwood(decl, np.ones(len(decl)))
    parts.append(rows("declarations", decl, g["ci_low"], g["ci_high"], "garwood_exact"))
    parts.append(rows("declaring_structures", structures))
    w = wilson(np.minimum(structures, e), e)
    parts.append(rows("declaring_share", w["value"], w["ci_low"], w["ci_high"], "wilson"))
    g = garwood(decl, e * n_years, per)
    parts.append(rows("incident_rate_per_1000", g["value"], g["ci_low"], g["ci_high"], "garwood_exact"))
    w = wilson(c["malicious"], decl)
    parts.append(rows("malicious_share", w["value"], w["ci_low"], w["ci_high"], "wilson"))
    g = garwood(c["ransomware"], np.ones(len(decl)))
    parts.append(rows("ransomware", c["ransomware"].to_numpy(), g["ci_low"], g["ci_high"], "garwood_exact"))
    w = wilson(c["care_impact"], decl)
    parts.append(rows("impact_on_care_share", w["value"], w["ci_low"], w["ci_high"], "wilson"))
    out = pd.concat(parts, ignore_index=True)
    out["n_audits"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["suppressed"] = False
    out["value"] = out["value"].astype(float)
    out["n_establishments"] = out["n_establishments"].astype("int64")
    return out[list(INDICATORS_COLUMNS)]


def incident_trends(
    incidents: pd.DataFrame,
    establishments: pd.DataFrame,
    *,
    years: Sequence[int] | None = None,
    families: Sequence[str] | None = None,
    per: float = 1000.0,
    alpha: float = 0.05,
    min_cell: int | None = None,
) -> pd.DataFrame:
    """Year-over-year trend of the incident rate per family: rate ratio per year with its interval.

    Parameters
    ----------
    incidents, establishments, years, families, per, alpha
        As in :func:`incident_indicators` (years with no declaration count as zeros).
    min_cell : int, optional
        When given (published runs), the estimates and crude rates of a group whose declarations come from
        fewer than ``min_cell`` structures (over the years, 0 excepted) are blanked.

    Returns
    -------
    DataFrame, one row per family then ``all``: ``group``, ``rate_ratio_per_year``, ``ci_low``, ``ci_high``,
    ``p_value``, ``model`` (``poisson`` or ``quasi_poisson``), ``dispersion``, ``n_years``, ``first_year``,
    ``last_year``, ``rate_first``, ``rate_last`` (per ``per`` eligible establishments), ``ci_method``
    (``wald``), from :func:`cyberobs_lib.stats.models.fit_poisson_trend`; ``declaring_structures`` (over the
    years) and ``suppressed`` (bool).

    Notes
    -----
    log E[declarations] = log(eligible) + b0 + b1 (year - first year); rate ratio per year = exp(b1). When
    the Pearson dispersion exceeds 1.5 the standard errors are scaled (quasi-Poisson): a negative binomial
    is not identifiable from a handful of yearly points. A family without declarations, or with
    declarations in only its first or last year, has no finite estimate (NaN).

    Examples
    --------
    >>> reg = pd.DataFrame({"finess": [f"75000{i:04d}" for i in range(1000)], "family": "CH"})
    >>> inc = pd.DataFrame({"incident_id": [str(i) for i in range(30)], "finess": reg["finess"][:30].tolist(),
    ...     "declared_on": pd.to_datetime(["2022-06-01"] * 10 + ["2023-06-01"] * 20), "nature": "malicious"})
    >>> float(incident_trends(inc, reg).loc[0, "rate_ratio_per_year"].round(6))
    2.0
    """
    if incidents.empty:  # unknown, not zero: no row (see no_incidents_note)
        return pd.DataFrame(columns=list(TREND_COLUMNS))
    ind = incident_indicators(
        incidents, establishments, years=years, families=families, per=per, overall=False
    )
    wide = ind[ind["indicator"].isin(["declarations", "eligible_establishments"])].pivot_table(
        index=["group", "period"], columns="indicator", values="value", aggfunc="first", observed=True
    )
    wide = wide.reset_index().assign(year=lambda d: d["period"].astype(int))
    wide = wide[wide["eligible_establishments"] > 0]
    order = {g: i for i, g in enumerate(ind["group"].drop_duplicates())}
    trend = fit_poisson_trend(
        wide,
        count="declarations",
        exposure="eligible_establishments",
        year=YEAR,
        by="group",
        per=per,
        alpha=alpha,
    )
    trend = trend.sort_values("group", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    ind_all = incident_indicators(incidents, establishments, years=years, families=families, per=per)
    structures = ind_all[(ind_all["indicator"] == "declaring_structures") & (ind_all["period"] == ALL)]
    trend["declaring_structures"] = trend["group"].map(structures.set_index("group")["value"]).astype("int64")
    small = trend["declaring_structures"].between(1, (min_cell or 1) - 1)
    blank = ["rate_ratio_per_year", "ci_low", "ci_high", "p_value", "dispersion", "rate_first", "rate_last"]
    trend.loc[small, blank] = np.nan
    trend["suppressed"] = small
    return trend


def national_totals(
    incidents: pd.DataFrame, *, years: Sequence[int] | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Yearly national totals as the CERT Santé observatory publishes them.

    Parameters
    ----------
    incidents : DataFrame
        Contract incidents (no registry needed); not mutated.
    years : list of int, optional
        Calendar years of ``declared_on``; None or empty: every year present.
    alpha : float
        1 - confidence level of the share intervals.

    Returns
    -------
    DataFrame, one row per year: ``year``, ``declarations``, ``declaring_structures`` (distinct FINESS, a
    declaration without FINESS counting as its own structure), ``malicious``, ``malicious_share`` with
    ``malicious_ci_low``/``malicious_ci_high`` (Wilson), ``ransomware``, ``impact_on_care`` (degraded or
    interrupted care) and ``impact_on_care_share``.

    Notes
    -----
    Shares are over all declarations of the year, as in the published reports (e.g. 2023: 581
    declarations by 462 structures, 50 % malicious, 32 ransomware attacks; domain.md).

    Examples
    --------
    >>> inc = pd.DataFrame({"incident_id": list("abc"), "finess": ["750000010", "750000010", None],
    ...     "declared_on": pd.to_datetime(["2023-01-02", "2023-05-06", "2023-07-08"]),
    ...     "nature": ["malicious", "accidental", "malicious"], "type": ["ransomware", "outage", "phishing"]})
    >>> national_totals(inc)[["year", "declarations", "declaring_structures", "ransomware"]]
       year  declarations  declaring_structures  ransomware
    0  2023             3                     2           1
    """
    if incidents.empty:  # unknown, not zero: no row (see no_incidents_note)
        return pd.DataFrame(columns=list(TOTALS_COLUMNS))
    inc = incidents.copy()
    for col in (Incidents.finess, Incidents.type, Incidents.impact_on_care, FAMILY):
        if col not in inc.columns:
            inc[col] = pd.NA
    inc[YEAR] = _declared_on(inc).dt.year
    yrs = _years(inc, years)
    inc = inc[inc[YEAR].isin(yrs)]
    c = _cell_counts(inc, years=yrs, groups=[], overall=False).xs(ALL, level="group")
    w = wilson_interval(c["malicious"].astype(float), c["declarations"].astype(float), alpha=alpha)
    imp = wilson_interval(c["care_impact"].astype(float), c["declarations"].astype(float), alpha=alpha)
    out = pd.DataFrame(
        {
            YEAR: np.array(yrs, dtype="int64"),
            "declarations": c["declarations"].to_numpy(),
            "declaring_structures": c["structures"].to_numpy(),
            "malicious": c["malicious"].to_numpy(),
            "malicious_share": w["value"].to_numpy(),
            "malicious_ci_low": w["ci_low"].to_numpy(),
            "malicious_ci_high": w["ci_high"].to_numpy(),
            "ransomware": c["ransomware"].to_numpy(),
            "impact_on_care": c["care_impact"].to_numpy(),
            "impact_on_care_share": imp["value"].to_numpy(),
        }
    )
    return out


# --------------------------------------------------------------------------------------------------
# The national frame: the incident observatory's published series (cyberobs_lib.reference)
# --------------------------------------------------------------------------------------------------
#: Measures of the national series shown to readers, in order (:func:`cyberobs_lib.reference.incident_series`).
NATIONAL_MEASURES = ("incidents_declared", "structures_declaring", "share_malicious", "ransomware_count")
#: Columns of :func:`national_series` (the published table ``incidents_national_series``).
NATIONAL_SERIES_COLUMNS = ("period", "year", "period_start", "period_end", "measure", "value", "unit", "approx",
                           "value_as_published", "source_url", "source_type", "reference_date")  # fmt: skip
#: Kinds of source of a published figure (``source_type`` of the series), by the words that start it.
SOURCE_KINDS = (
    ("official", "official"),
    ("trade press", "trade_press"),
    ("press", "press"),
    ("blog", "blog"),
)


def national_series(reference=None) -> pd.DataFrame:
    """The observatory's published yearly figures as the report publishes them: one row per figure with its
    source (the long table of :func:`cyberobs_lib.reference.incident_series`, without the build's row numbers).

    Every value is a public figure as published (counts of declarations and of declaring structures, shares);
    ``source_url`` and ``source_type`` say where each comes from.

    >>> s = national_series()
    >>> s.loc[(s["period"] == "2023") & (s["measure"] == "incidents_declared"), "value"].tolist()
    [581.0]
    """
    series = incident_series(reference)
    return series[list(NATIONAL_SERIES_COLUMNS)].reset_index(drop=True)


def source_kind(source_type: object) -> str:
    """The kind of a published figure's source: ``official``, ``trade_press``, ``press``, ``blog`` or
    ``other`` (catalog texts ``inc.source.<kind>``).

    >>> source_kind("trade press quoting ANS"), source_kind("official (ANS)"), source_kind("press quoting ANS")
    ('trade_press', 'official', 'press')
    """
    value = str(source_type).strip().lower()
    return next((kind for start, kind in SOURCE_KINDS if value.startswith(start)), "other")


def period_words(period: object, start: object, end: object, lang: str = "fr") -> str:
    """A period of the national series in words: the year, or its months when it is not a calendar year
    ("oct. 2017 – sept. 2018").

    >>> period_words("2023", "2023-01-01", "2023-12-31", "fr"), period_words("2017-10..2018-09", "2017-10-01", "2018-09-30", "en")
    ('2023', 'Oct 2017 – Sept 2018')
    """
    from babel.dates import format_date

    first, last = as_date(start), as_date(end)
    if first is None or last is None or (first.month, first.day, last.month, last.day) == (1, 1, 12, 31):
        return str(period)
    months = [format_date(d, format="MMM y", locale=LOCALES[lang]) for d in (first, last)]
    return text("inc.period_span", lang, first=months[0], last=months[1])


#: A source address the report may link to: http(s), no blank, no character that starts Markdown or HTML
#: markup (``_`` between letters or digits is no emphasis in CommonMark).
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(/[A-Za-z0-9._%/?=&+:@!$,;'\-]*)?$")


def source_link(url: str) -> str:
    """A Markdown link to a published figure's source, the address as its text; an address that is not a plain
    http(s) URL is written as escaped text only (never markup).

    >>> source_link("https://www.ticsante.com/story_1?ID=5266")
    '[https://www.ticsante.com/story_1?ID=5266](https://www.ticsante.com/story_1?ID=5266)'
    >>> source_link("javascript:alert(1)"), source_link("https://x.fr/a*b*")
    ('javascript:alert(1)', 'https://x.fr/a\\\\*b\\\\*')
    """
    return f"[{url}]({url})" if _SAFE_URL.match(str(url)) else escape_markdown(url)


def national_sources(series: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """The distinct sources of a national series, numbered in order of first use: ``number``, ``url``,
    ``kind`` (the kind of source in words, :func:`source_kind`).

    >>> s = pd.DataFrame({"source_url": ["https://a.fr/x ; https://b.fr/y", "https://a.fr/x"],
    ...                   "source_type": ["trade press quoting ANS", "official (ANS)"]})
    >>> national_sources(s, "en").to_dict("records")
    [{'number': 1, 'url': 'https://a.fr/x', 'kind': 'trade press'}, {'number': 2, 'url': 'https://b.fr/y', 'kind': 'trade press'}]
    """
    rows: dict[str, str] = {}
    for urls, kind in zip(series["source_url"], series["source_type"], strict=True):
        for url in str(urls).split(" ; "):
            if url and url not in rows:
                rows[url] = text(f"inc.source.{source_kind(kind)}", lang)
    return pd.DataFrame(
        [{"number": i, "url": url, "kind": kind} for i, (url, kind) in enumerate(rows.items(), 1)],
        columns=["number", "url", "kind"],
    )


def national_series_view(
    series: pd.DataFrame, lang: str = "fr", *, dataset_share: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The national series as a reader's table: one row per published period, the four measures of
    :data:`NATIONAL_MEASURES` written for ``lang`` (empty where the period has no published figure; ``≈`` before
    an approximate one), the dataset's own declarations of the period (from
    :func:`cyberobs_lib.reference.dataset_share_of_national`, when given) and ``sources``: the numbers of the
    period's sources in :func:`national_sources`.

    >>> s = national_series()
    >>> view = national_series_view(s, "en")
    >>> view.loc[view["period"] == "2023", ["incidents_declared", "share_malicious", "sources"]].values.tolist()
    [['581', '50%', '[13], [14], [15]']]
    """
    sources = national_sources(series, lang)
    number = dict(zip(sources["url"], sources["number"], strict=True))
    shares = dataset_share.set_index("period") if dataset_share is not None else None
    out = []
    for period, rows in series.groupby("period", sort=False):
        first = rows.iloc[0]
        record = {"period": period_words(period, first["period_start"], first["period_end"], lang)}
        for measure in NATIONAL_MEASURES:
            hit = rows[rows["measure"] == measure]
            if hit.empty:
                record[measure] = ""
                continue
            r = hit.iloc[0]
            value = (
                fmt_percent(r["value"], lang, decimals=0)
                if r["unit"] == "share"
                else fmt_number(r["value"], lang)
            )
            record[measure] = ("≈\u00a0" if bool(r["approx"]) else "") + value
        if shares is not None:
            n = shares["dataset_declarations"].get(period, pd.NA) if period in shares.index else pd.NA
            record["dataset_declarations"] = "" if pd.isna(n) else fmt_number(n, lang)
        used = dict.fromkeys(
            number[u] for urls in rows["source_url"] for u in str(urls).split(" ; ") if u in number
        )
        record["sources"] = ", ".join(f"[{n}]" for n in sorted(used))
        out.append(record)
    return pd.DataFrame(out)


def _period_bounds(period: object) -> tuple[str, str]:
    """First and last day of a period of the national series (``2023``, ``2017-10..2018-09``).

    >>> _period_bounds("2017-10..2018-09"), _period_bounds("2023")
    (('2017-10-01', '2018-09-30'), ('2023-01-01', '2023-12-31'))
    """
    text_period = str(period)
    if ".." not in text_period:
        return f"{text_period}-01-01", f"{text_period}-12-31"
    first, last = text_period.split("..")
    end = (pd.Period(last, freq="M").end_time).date().isoformat()
    return f"{first}-01", end


def national_rates_view(rates: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """National rates per 1,000 eligible establishments (:func:`cyberobs_lib.reference.national_incident_rates`)
    as a reader's table: period, ``sector`` and ``measure`` in words, ``count`` (``≈`` before a count derived
    from a published share), ``denominator`` (number and its source in words), ``value`` and ``ci`` written
    for ``lang``.

    >>> from cyberobs_lib.reference import national_incident_rates
    >>> view = national_rates_view(national_incident_rates(), "en")
    >>> view.iloc[0][["sector", "count", "value", "ci"]].tolist()
    ['all establishments', '319', '15.4', '13.8–17.2']
    """
    out = []
    for r in rates.to_dict("records"):
        den_key = f"inc.denominator.{r['denominator_source']}"
        date = r["denominator_date"]
        try:
            when = fmt_date(date, lang)
        except ValueError:  # a date the source gives in words ("2021 report")
            when = str(date)
        out.append(
            {
                "period": period_words(r["period"], *_period_bounds(r["period"]), lang),
                "sector": text(f"inc.sector.{r['sector']}", lang),
                "measure": text(f"inc.rate_measure.{r['measure']}", lang),
                "count": ("≈\u00a0" if r["count_derived"] else "") + fmt_number(r["count"], lang),
                "denominator": text(den_key, lang, n=fmt_number(r["denominator"], lang), date=when),
                "value": fmt_number(r["value"], lang, decimals=1),
                "ci": fmt_range(r["ci_low"], r["ci_high"], lang, decimals=1),
            }
        )
    return pd.DataFrame(out, columns=["period", "sector", "measure", "count", "denominator", "value", "ci"])


def plot_national_series(series: pd.DataFrame, dataset_share: pd.DataFrame | None = None, *, axes=None,
                         lang: str = "fr"):  # fmt: skip
    """The national series in two panels: the counts per period (declarations, declaring structures,
    ransomware attacks, and the dataset's own declarations when ``dataset_share`` is given), and the share of
    malicious declarations. Periods are placed by their end; every word comes from the catalog in ``lang``.

    Returns the two Axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.6, 1]})
    left, right = axes
    periods = list(dict.fromkeys(series["period"]))
    firsts = series.drop_duplicates("period").set_index("period")
    names = [
        period_words(p, firsts.loc[p, "period_start"], firsts.loc[p, "period_end"], lang) for p in periods
    ]
    x = np.arange(len(periods))
    wide = series.pivot_table(index="period", columns="measure", values="value", aggfunc="first").reindex(
        periods
    )
    styles = {"incidents_declared": ("o", "-", "#4C72B0"), "structures_declaring": ("s", "--", "#55A868"),
              "ransomware_count": ("^", ":", "#C44E52")}  # fmt: skip
    for measure, (marker, line, color) in styles.items():
        if measure in wide.columns:
            ax_values = wide[measure].to_numpy(float)
            left.plot(
                x,
                ax_values,
                marker=marker,
                linestyle=line,
                color=color,
                label=text(f"inc.measure.{measure}", lang),
            )
    if dataset_share is not None and dataset_share["dataset_declarations"].notna().any():
        own = dataset_share.set_index("period")["dataset_declarations"].reindex(periods).astype("Float64")
        left.bar(x, own.fillna(0).to_numpy(float), width=0.5, color="0.75", hatch="//", edgecolor="0.4",
                 label=text("inc.measure.dataset_declarations", lang))  # fmt: skip
    left.set_xticks(x, names, rotation=30, ha="right")
    left.set_ylim(bottom=0)
    number_axis(left.yaxis, lang)
    left.set_ylabel(text("inc.fig.national.count_axis", lang))
    left.set_title(text("inc.fig.national.title", lang), loc="left")
    left.legend(frameon=False, fontsize="small", loc="upper left")
    left.grid(axis="y", alpha=0.3)
    if "share_malicious" in wide.columns:
        share = wide["share_malicious"].to_numpy(float)
        keep = ~np.isnan(share)
        right.plot(x[keep], share[keep], marker="o", color="#8172B3")
    right.set_xticks(x, names, rotation=30, ha="right")
    right.set_ylim(0, 1)
    percent_axis(right.yaxis, lang)
    right.set_ylabel(text("inc.measure.share_malicious", lang))
    right.set_title(text("inc.fig.national.malicious_title", lang), loc="left")
    right.grid(axis="y", alpha=0.3)
    return left, right


def family_rates_view(indicators: pd.DataFrame, period: object = ALL) -> pd.DataFrame:
    """The incident rates of one period per family as a reader's table: ``group``, ``eligible`` (registry
    establishments), ``declarations``, ``declaring_structures``, ``value`` (declarations per 1,000 eligible
    establishments per year), ``ci_low``, ``ci_high`` and ``suppressed``, from :func:`incident_indicators` (as
    published: a hidden cell keeps no number).

    >>> reg = pd.DataFrame({"finess": [f"75000{i:04d}" for i in range(2000)], "family": "EHPAD"})
    >>> inc = pd.DataFrame({"incident_id": list("abcde"), "finess": reg["finess"][:5].tolist(),
    ...     "declared_on": pd.to_datetime(["2024-01-05"] * 5), "nature": "malicious"})
    >>> family_rates_view(incident_indicators(inc, reg))[["group", "eligible", "declarations", "value"]].values.tolist()
    [['EHPAD', 2000, 5, 2.5], ['all', 2000, 5, 2.5]]
    """
    rows = indicators[indicators["period"].astype(str) == str(period)]

    def one(name: str, column: str = "value") -> pd.Series:
        return rows[rows["indicator"] == name].set_index("group")[column]

    rate = rows[rows["indicator"] == "incident_rate_per_1000"].set_index("group")
    out = pd.DataFrame({"group": list(dict.fromkeys(rows["group"]))})
    out["eligible"] = out["group"].map(one("eligible_establishments")).astype("Int64")
    out["declarations"] = out["group"].map(one("declarations")).astype("Int64")
    out["declaring_structures"] = out["group"].map(one("declaring_structures")).astype("Int64")
    for column in ("value", "ci_low", "ci_high"):
        out[column] = out["group"].map(rate[column]).astype(float)
    hidden = (
        rate["suppressed"].fillna(False).astype(bool)
        if "suppressed" in rate
        else pd.Series(False, index=rate.index)
    )
    out["suppressed"] = out["group"].map(hidden).fillna(False).astype(bool)
    return out
