"""Regression models for counts, binary outcomes and repeated audits, as tidy frames of ratios.

Every model is fitted on an explicit design matrix built by one helper (:func:`build_design`):
categorical terms are treatment-coded against an explicit reference level (what the formula
``C(family, Treatment(reference="CH"))`` does), from the levels actually observed, so an unused
category never makes an all-zero column (notebook-stack.md, pitfall P7).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from cyberobs_lib.stats._tidy import make_tests_table

INTERCEPT = "Intercept"
COEF_COLUMNS = ("term", "level", "reference")


class SeparationWarning(UserWarning):
    """A logistic model has (quasi-)complete separation: some odds ratios are unbounded."""


def build_design(
    frame: pd.DataFrame, *, terms: Sequence[str], reference: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Design matrix with an intercept and explicit treatment coding of categorical terms.

    Parameters
    ----------
    frame : DataFrame
        Rows already free of missing values in ``terms``.
    terms : list of str
        Columns; numeric ones enter as they are, text/categorical/boolean ones as dummies.
    reference : dict, optional
        Reference level per categorical term; default the first level (category order, else sorted).

    Returns
    -------
    (X, coefs)
        ``X``: float frame (``Intercept`` then one column per numeric term or non-reference level);
        ``coefs``: one row per column of ``X`` but the intercept, with ``column``, ``term``,
        ``level`` (None for numeric terms) and ``reference``.

    Examples
    --------
    >>> X, c = build_design(pd.DataFrame({"f": ["CH", "EHPAD", "CH"]}), terms=["f"],
    ...                     reference={"f": "CH"})
    >>> list(X.columns), c["level"].tolist()
    (['Intercept', 'f[EHPAD]'], ['EHPAD'])
    """
    reference = dict(reference or {})
    unknown = set(reference) - set(terms)
    if unknown:
        raise ValueError(f"reference given for terms not in the model: {sorted(unknown)}")
    parts, rows = [pd.Series(1.0, index=frame.index, name=INTERCEPT)], []
    for term in terms:
        col = frame[term]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            parts.append(col.astype(float).rename(term))
            rows.append((term, term, None, None))
            continue
        cat = col.astype("category").cat.remove_unused_categories()  # pitfall P7
        levels = list(cat.cat.categories)
        if pd.api.types.is_object_dtype(col) or pd.api.types.is_bool_dtype(col):
            levels = sorted(levels, key=str)
        ref = reference.get(term, levels[0] if levels else None)
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} of {term!r} not among observed {levels}")
        if len(levels) < 2:
            raise ValueError(f"term {term!r} has a single observed level {levels}")
        for level in (lv for lv in levels if lv != ref):
            name = f"{term}[{level}]"
            parts.append((cat == level).astype(float).rename(name))
            rows.append((name, term, str(level), str(ref)))
    coefs = pd.DataFrame(rows, columns=["column", *COEF_COLUMNS])
    return pd.concat(parts, axis=1), coefs


def _complete_rows(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    sub = frame.loc[:, list(dict.fromkeys(columns))]
    keep = sub.notna().all(axis=1)
    return sub.loc[keep].copy(), int((~keep).sum())


def _tidy(result, coefs: pd.DataFrame, *, ratio: str, alpha: float, **extra) -> pd.DataFrame:
    """exp(coefficient) with Wald interval and p-value for each non-intercept column."""
    cols = coefs["column"].tolist()
    beta, se = np.asarray(result.params[cols], float), np.asarray(result.bse[cols], float)
    z = stats.norm.ppf(1 - alpha / 2)
    out = coefs[list(COEF_COLUMNS)].copy()
    out[ratio] = np.exp(beta)
    with np.errstate(over="ignore"):  # separated terms: overflow, then reported as NaN
        out["ci_low"], out["ci_high"] = np.exp(beta - z * se), np.exp(beta + z * se)
    out["z"] = beta / se
    out["p_value"] = 2 * stats.norm.sf(np.abs(out["z"]))
    for key, value in extra.items():
        out[key] = value
    return out.reset_index(drop=True)


def fit_count_model(
    frame: pd.DataFrame,
    *,
    outcome: str,
    exposure: str,
    terms: list[str],
    reference: dict[str, str] | None = None,
    dispersion_threshold: float = 1.5,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rate ratios from a Poisson GLM with a log-exposure offset, or negative binomial if overdispersed.

    Parameters
    ----------
    frame : DataFrame
        One row per unit (audit, establishment); rows with a missing value are dropped (counted).
    outcome, exposure : str
        Count column (non-negative integers) and exposure column (> 0, e.g. ``hosts_in_scope``).
    terms, reference
        Covariates and reference levels (see :func:`build_design`).
    dispersion_threshold, alpha : float
        Pearson dispersion above which the negative binomial is fitted; 1 − confidence level.

    Returns
    -------
    DataFrame
        One row per coefficient: ``term``, ``level`` (None for a numeric term), ``reference``,
        ``rate_ratio``, ``ci_low``, ``ci_high``, ``z``, ``p_value``, ``model`` (``poisson`` or
        ``negative_binomial``), ``dispersion`` (Poisson Pearson χ²/df), ``n``, ``ci_method``
        (``wald``). ``attrs``: ``nb_alpha``, ``n_dropped`` (rows with missing values),
        ``outcome``, ``note``.

    Notes
    -----
    log E[y] = log(exposure) + Xβ; rate ratio = exp(β), Wald interval exp(β ± z·SE). Dispersion
    = Σ Pearson residual² / (n − p) of the Poisson fit. Above the threshold, statsmodels'
    ``NegativeBinomial`` (NB2, Var = μ + αμ², α by maximum likelihood) is fitted with the same
    offset, and ``note`` says so. With one binary covariate the Poisson MLE rate ratio equals the
    ratio of crude rates Σy₁/Σe₁ ÷ Σy₀/Σe₀, with SE(log RR) = √(1/Σy₁ + 1/Σy₀).

    References
    ----------
    McCullagh P., Nelder J.A. (1989) Generalized Linear Models, 2nd ed., ch. 6.
    Cameron A.C., Trivedi P.K. (2013) Regression Analysis of Count Data, 2nd ed., ch. 3.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [10, 12, 11, 13], "hosts": [10, 10, 10, 10],
    ...                    "family": ["CH", "CH", "EHPAD", "EHPAD"]})
    >>> fit = fit_count_model(df, outcome="y", exposure="hosts", terms=["family"])
    >>> float(round(fit.loc[0, "rate_ratio"], 4)), fit.loc[0, "model"]  # (11 + 13) / (10 + 12)
    (1.0909, 'poisson')
    """
    data, n_dropped = _complete_rows(frame, [outcome, exposure, *terms])
    y = data[outcome].astype(float)
    if (y < 0).any() or (y != np.round(y)).any():
        raise ValueError(f"{outcome!r} must hold non-negative integer counts")
    if (data[exposure] <= 0).any():
        raise ValueError(f"{exposure!r} must be > 0 (log offset); drop zero-exposure rows first")
    X, coefs = build_design(data, terms=terms, reference=reference)
    offset = np.log(data[exposure].astype(float))
    poisson = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit()
    dispersion = poisson.pearson_chi2 / poisson.df_resid if poisson.df_resid > 0 else np.nan
    result, model, nb_alpha, note = poisson, "poisson", np.nan, "Poisson GLM"
    if dispersion > dispersion_threshold:
        result = sm.NegativeBinomial(y, X, loglike_method="nb2", offset=offset).fit(disp=0, maxiter=200)
        model, nb_alpha = "negative_binomial", float(result.params["alpha"])
        note = (
            f"Pearson dispersion {dispersion:.2f} > {dispersion_threshold}: "
            "refitted as negative binomial (NB2, alpha by ML)"
        )
        if not result.mle_retvals.get("converged", True):
            warnings.warn(f"negative binomial fit did not converge ({outcome})", stacklevel=2)
    out = _tidy(
        result,
        coefs,
        ratio="rate_ratio",
        alpha=alpha,
        model=model,
        dispersion=dispersion,
        n=len(data),
        ci_method="wald",
    )
    out.attrs.update(nb_alpha=nb_alpha, n_dropped=n_dropped, outcome=outcome, note=note)
    return out


def _separated_terms(data: pd.DataFrame, y: pd.Series, terms: Sequence[str]) -> set[str]:
    """Terms with a level whose outcomes are all 0 or all 1, or a numeric term that splits y."""
    flagged = set()
    for term in terms:
        col = data[term]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x0, x1 = col[y == 0], col[y == 1]
            if len(x0) and len(x1) and (x0.max() < x1.min() or x1.max() < x0.min()):
                flagged.add(term)
        else:
            share = y.groupby(col.astype(str)).mean()
            if ((share == 0) | (share == 1)).any():
                flagged.add(term)
    return flagged


def fit_logistic(
    frame: pd.DataFrame,
    *,
    outcome: str,
    terms: list[str],
    reference: dict[str, str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Odds ratios with Wald intervals from a logistic regression, flagging separation.

    Parameters
    ----------
    frame, outcome : DataFrame, str
        Data and its 0/1 or boolean outcome column.
    terms, reference, alpha
        Covariates, reference levels (see :func:`build_design`), 1 − confidence level.

    Returns
    -------
    DataFrame
        ``term``, ``level``, ``reference``, ``odds_ratio``, ``ci_low``, ``ci_high``, ``z``,
        ``p_value``, ``model`` (``logistic``), ``n``, ``ci_method`` (``wald``), ``separation``
        (bool). Rows of a separated term carry NaN estimates. ``attrs["n_dropped"]``.

    Notes
    -----
    Binomial GLM with logit link; OR = exp(β), Wald interval exp(β ± z·SE). For a 2×2 table this
    is OR = ad/bc with SE(log OR) = √(1/a + 1/b + 1/c + 1/d) (Woolf). Separation — a level of a
    categorical term whose outcomes are all 0 or all 1, a numeric term that splits the outcome,
    or statsmodels' perfect-prediction check — makes the MLE infinite: those rows are NaN with
    ``separation = True`` and a :class:`SeparationWarning` is raised (consider merging levels,
    exact or Firth-penalised logistic regression).

    References
    ----------
    Agresti A. (2013) Categorical Data Analysis, 3rd ed., §3.1 and §6.5.1 (separation).
    Woolf B. (1955) Annals of Human Genetics 19:251–253.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7, "f": ["A"] * 10 + ["B"] * 10})
    >>> float(round(fit_logistic(df, outcome="y", terms=["f"]).loc[0, "odds_ratio"], 4))  # 3*4/(7*6)
    0.2857
    """
    data, n_dropped = _complete_rows(frame, [outcome, *terms])
    y = data[outcome]
    if not y.isin([0, 1, True, False]).all():
        raise ValueError(f"{outcome!r} must be 0/1 or boolean")
    y = y.astype(float)
    if y.nunique() < 2:
        raise ValueError(f"{outcome!r} has a single value: no odds ratio can be estimated")
    X, coefs = build_design(data, terms=terms, reference=reference)
    flagged = _separated_terms(data, y, terms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PerfectSeparationWarning)
        result = sm.GLM(y, X, family=sm.families.Binomial()).fit()
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught) and not flagged:
        flagged = set(terms)  # statsmodels saw perfect prediction from a combination of terms
    out = _tidy(
        result, coefs, ratio="odds_ratio", alpha=alpha, model="logistic", n=len(data), ci_method="wald"
    )
    out["separation"] = out["term"].isin(flagged)
    if flagged:
        out.loc[out["separation"], ["odds_ratio", "ci_low", "ci_high", "z", "p_value"]] = np.nan
        warnings.warn(
            f"separation in {sorted(flagged)}: odds ratios unbounded, reported as NaN",
            SeparationWarning,
            stacklevel=2,
        )
    out.attrs.update(n_dropped=n_dropped, outcome=outcome)
    return out


def fit_trend_gee(
    frame: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group_id: str,
    terms: list[str],
    family: str = "poisson",
    exposure: str | None = None,
    reference: dict[str, str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """GEE trend over repeated audits of the same establishment (exchangeable working correlation).

    Parameters
    ----------
    frame, outcome : DataFrame, str
        One row per audit; count (``family="poisson"``) or 0/1 (``"binomial"``) outcome.
    time, group_id : str
        Numeric time (e.g. years since the first audit: the trend is its coefficient) and the
        cluster (the establishment pseudonym, audited repeatedly).
    terms, reference, family, exposure, alpha
        Other covariates and reference levels (see :func:`build_design`); ``"poisson"`` or
        ``"binomial"``; optional exposure column for a log offset (Poisson only); 1 − level.

    Returns
    -------
    DataFrame
        ``term`` (the ``time`` row is the trend), ``level``, ``reference``, ``rate_ratio`` (Poisson)
        or ``odds_ratio`` (binomial), ``ci_low``, ``ci_high``, ``z``, ``p_value``, ``model``
        (``gee_poisson``/``gee_binomial``), ``correlation`` (estimated exchangeable ρ), ``n``,
        ``n_clusters``, ``ci_method`` (``wald, robust sandwich``).

    Notes
    -----
    Marginal model g(E[y]) = Xβ (+ log exposure) fitted by generalized estimating equations with
    an exchangeable working correlation within establishments; standard errors are the robust
    (sandwich) ones, valid even if the working correlation is wrong. With a covariate constant
    within clusters, equal cluster sizes and no time term, the Poisson estimating equations equal
    the independence ones, so the rate ratio is the ratio of group means.

    References
    ----------
    Liang K.-Y., Zeger S.L. (1986) Biometrika 73:13–22.
    """
    if family not in ("poisson", "binomial"):
        raise ValueError(f"family must be 'poisson' or 'binomial', got {family!r}")
    if exposure is not None and family != "poisson":
        raise ValueError("an exposure offset only makes sense with family='poisson'")
    columns = [outcome, time, group_id, *terms, *([exposure] if exposure else [])]
    data, n_dropped = _complete_rows(frame, columns)
    data = data.sort_values([group_id, time], kind="stable")
    if not pd.api.types.is_numeric_dtype(data[time]):
        raise ValueError(f"{time!r} must be numeric (e.g. years since the first audit)")
    y = data[outcome].astype(float)
    if family == "binomial" and not y.isin([0.0, 1.0]).all():
        raise ValueError(f"{outcome!r} must be 0/1 for family='binomial'")
    X, coefs = build_design(data, terms=[time, *terms], reference=reference)
    offset = None
    if exposure:
        if (data[exposure] <= 0).any():
            raise ValueError(f"{exposure!r} must be > 0 (log offset)")
        offset = np.log(data[exposure].astype(float))
    fam = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
    groups = pd.factorize(data[group_id])[0]
    model = sm.GEE(y, X, groups=groups, family=fam, cov_struct=sm.cov_struct.Exchangeable(), offset=offset)
    with warnings.catch_warnings(record=True) as caught, np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("always", ConvergenceWarning)
        result = model.fit()
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught) and bool(
        np.isfinite(result.params).all()
    )
    if not converged:
        warnings.warn(f"GEE did not converge ({outcome}): estimates unreliable or NaN", stacklevel=2)
    out = _tidy(
        result,
        coefs,
        ratio="rate_ratio" if family == "poisson" else "odds_ratio",
        alpha=alpha,
        model=f"gee_{family}",
        correlation=float(model.cov_struct.dep_params),
        n=len(data),
        n_clusters=int(groups.max() + 1),
        ci_method="wald, robust sandwich",
    )
    out.attrs.update(
        n_dropped=n_dropped, outcome=outcome, working_correlation="exchangeable", converged=converged
    )
    return out


def fit_poisson_trend(
    frame: pd.DataFrame,
    *,
    count: str,
    exposure: str,
    year: str,
    by: str | None = None,
    per: float = 1000.0,
    dispersion_threshold: float = 1.5,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Yearly trend rate ratio per group, e.g. incidents per 1000 establishments per year.

    Parameters
    ----------
    frame : DataFrame
        One row per group × year (or finer: rows are summed per group × year).
    count, exposure, year, by : str
        Event count, exposure (> 0, e.g. establishments in the registry), numeric year and the
        group column (None: one trend labelled ``"all"``).
    per, dispersion_threshold, alpha : float
        Crude rates are per ``per`` exposure units; quasi-Poisson threshold; 1 − level.

    Returns
    -------
    DataFrame
        One row per group: ``group``, ``rate_ratio_per_year``, ``ci_low``, ``ci_high``,
        ``p_value``, ``model`` (``poisson`` or ``quasi_poisson``), ``dispersion``, ``n_years``,
        ``first_year``, ``last_year``, ``rate_first``, ``rate_last`` (crude, per ``per``),
        ``ci_method`` (``wald``).

    Notes
    -----
    log E[count] = log(exposure) + β₀ + β₁ (year − first year); rate ratio per year = exp(β₁).
    With two years it is the ratio of the two crude rates, with SE(log) = √(1/c₁ + 1/c₂). When the
    Pearson dispersion exceeds the threshold, the standard errors are scaled by √dispersion
    (quasi-Poisson): a negative binomial is not identifiable from a handful of yearly points.
    A group observed in one year, without events, or with events only in its first or last year
    (no finite MLE) gets NaN estimates.

    References
    ----------
    McCullagh P., Nelder J.A. (1989) Generalized Linear Models, 2nd ed., §6.2 (overdispersion).

    Examples
    --------
    >>> df = pd.DataFrame({"year": [2022, 2023], "n": [10, 20], "estab": [1000, 1000]})
    >>> trend = fit_poisson_trend(df, count="n", exposure="estab", year="year")
    >>> float(round(trend.loc[0, "rate_ratio_per_year"], 6))
    2.0
    """
    group_col = by if by is not None else "__all__"
    data = frame.assign(**({} if by is not None else {group_col: "all"}))
    data, _ = _complete_rows(data, [group_col, year, count, exposure])
    agg = data.groupby([group_col, year], observed=True, sort=True)[[count, exposure]].sum().reset_index()
    if (agg[exposure] <= 0).any():
        raise ValueError(f"{exposure!r} must be > 0 in every group × year")
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for group, g in agg.groupby(group_col, observed=True, sort=True):  # a few groups, not rows
        first, last = g.iloc[0], g.iloc[-1]
        row = {
            "group": group,
            "n_years": len(g),
            "first_year": first[year],
            "last_year": last[year],
            "rate_first": first[count] / first[exposure] * per,
            "rate_last": last[count] / last[exposure] * per,
        }
        positive_years = set(g.loc[g[count] > 0, year])
        if len(g) < 2 or positive_years in (set(), {first[year]}, {last[year]}):
            rows.append(row)  # no finite MLE: no events, one year, or events only at one end
            continue
        X = sm.add_constant((g[year] - first[year]).astype(float).to_numpy())
        off = np.log(g[exposure].astype(float).to_numpy())
        with warnings.catch_warnings():  # two years make a saturated fit: exact, not an error
            warnings.simplefilter("ignore", (PerfectSeparationWarning, RuntimeWarning))
            fit = sm.GLM(g[count].to_numpy(float), X, family=sm.families.Poisson(), offset=off).fit()
        dispersion = fit.pearson_chi2 / fit.df_resid if fit.df_resid > 0 else np.nan
        scale = dispersion if dispersion > dispersion_threshold else 1.0
        beta, se = fit.params[1], fit.bse[1] * np.sqrt(scale)
        row.update(
            rate_ratio_per_year=np.exp(beta),
            ci_low=np.exp(beta - z * se),
            ci_high=np.exp(beta + z * se),
            p_value=2 * stats.norm.sf(abs(beta / se)),
            model="quasi_poisson" if scale > 1 else "poisson",
            dispersion=dispersion,
        )
        rows.append(row)
    columns = ["group", "rate_ratio_per_year", "ci_low", "ci_high", "p_value", "model", "dispersion"]
    columns += ["n_years", "first_year", "last_year", "rate_first", "rate_last"]
    out = pd.DataFrame(rows).reindex(columns=columns)
    out["ci_method"] = "wald"
    return out


def to_tests_table(coefficients: pd.DataFrame, *, study: str = "", metric: str | None = None) -> pd.DataFrame:
    """Turn a coefficient frame from this module into ``tests.csv`` rows (one per coefficient).

    Parameters
    ----------
    coefficients : DataFrame
        Output of :func:`fit_count_model`, :func:`fit_logistic` or :func:`fit_trend_gee`.
    study, metric : str
        Copied into the rows (``metric`` defaults to the model's outcome).

    Returns
    -------
    DataFrame
        ``tests.csv`` vocabulary: ``test`` = the model, ``variant`` states the fit, ``group_a`` =
        ``term=level`` (or the numeric term), ``group_b`` = the reference level, ``n_a`` = n,
        ``statistic`` = Wald z, ``effect_size`` = the ratio, ``effect_size_kind`` = ``rate_ratio``
        or ``odds_ratio``.
    """
    kind = next((c for c in ("rate_ratio", "odds_ratio") if c in coefficients.columns), None)
    if kind is None:
        raise ValueError("not a coefficient frame: no rate_ratio or odds_ratio column")
    c = coefficients
    group_a = np.where(c["level"].isna(), c["term"], c["term"] + "=" + c["level"].astype(str))
    variant = {
        "poisson": "GLM log link, log-exposure offset",
        "negative_binomial": "NB2, alpha by ML, log-exposure offset",
        "logistic": "GLM logit link",
    }
    rows = pd.DataFrame(
        {
            "study": study,
            "metric": metric if metric is not None else c.attrs.get("outcome"),
            "test": c["model"],
            "variant": c["model"].map(variant).fillna("exchangeable working correlation"),
            "group_a": group_a,
            "group_b": c["reference"],
            "n_a": c["n"],
            "statistic": c["z"],
            "p_value": c["p_value"],
            "effect_size": c[kind],
            "effect_size_kind": kind,
            "ci_low": c["ci_low"],
            "ci_high": c["ci_high"],
            "ci_method": c["ci_method"],
        }
    )
    return make_tests_table(rows.to_dict("records"))
