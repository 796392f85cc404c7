"""Regression models for counts, binary outcomes and repeated audits, as tidy frames of ratios.

Every model is fitted on an explicit design matrix built by one helper (:func:`build_design`):
categorical terms are treatment-coded against an explicit reference level (what the formula
``C(family, Treatment(reference="CH"))`` does), from the levels actually observed, so an unused
category never makes an all-zero column (notebook-stack.md, pitfall P7).

Every coefficient table is tidy: one row per coefficient, the ``Intercept`` first (its "ratio" is
exp(intercept), the rate or odds at the reference levels and zero numeric covariates, not a ratio),
the coefficient on the log scale (``estimate``, ``std_error``) next to its ratio, and the fit
statistics of the model repeated on every row (``deviance``, ``log_likelihood``, ``aic``,
``df_resid``, ``n``). A model the data cannot support is not a crash nor a silent NaN: its rows say
``model = "not estimable"`` and why (``estimable`` False). :func:`to_tests_table` turns any of them
into ``tests.csv`` rows (intercepts left out: they test no study question).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, special, stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from cyberobs_lib.stats._tidy import make_tests_table

INTERCEPT = "Intercept"
COEF_COLUMNS = ("term", "level", "reference")
#: Fit statistics repeated on every row of a model's table (NaN where the model has no likelihood).
FIT_COLUMNS = ("deviance", "log_likelihood", "aic", "df_resid")
NOT_ESTIMABLE = "not estimable"
#: Fewest residual degrees of freedom (n − number of coefficients) for which :func:`fit_count_model`
#: tests and estimates overdispersion: with fewer, the Pearson χ² and the negative binomial α rest on a
#: handful of residuals (α runs to the boundary without converging) and the model is not estimable.
MIN_DF_RESID = 10
#: Fewest clusters (establishments) for :func:`fit_trend_gee`: the sandwich variance is an average
#: over clusters, biased downwards below a few dozen even with the Mancl–DeRouen correction
#: (Mancl & DeRouen 2001 studied 10–40 clusters; Li & Redden 2015, Stat Med 34:281, recommend a
#: corrected sandwich below about 40–50). 20 is the floor below which no trend is reported.
MIN_CLUSTERS = 20
ML = "ML"
FIRTH = "Firth (separation)"
FIRTH_REQUESTED = "Firth"
WALD = "wald"
PROFILE = "profile penalised likelihood"


class SeparationWarning(UserWarning):
    """A logistic model has (quasi-)complete separation: some ML odds ratios are unbounded."""


# ---- design ---------------------------------------------------------------------------------------


def _is_numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col))


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
        if _is_numeric(col):
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


def _with_intercept(coefs: pd.DataFrame) -> pd.DataFrame:
    """The coefficient rows of :func:`build_design` with the intercept first (level and reference None)."""
    head = pd.DataFrame([(INTERCEPT, INTERCEPT, None, None)], columns=["column", *COEF_COLUMNS])
    return pd.concat([head, coefs], ignore_index=True)


def _complete_rows(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    sub = frame.loc[:, list(dict.fromkeys(columns))]
    keep = sub.notna().all(axis=1)
    return sub.loc[keep].copy(), int((~keep).sum())


def _ratio_table(
    coefs: pd.DataFrame,
    beta: np.ndarray,
    se: np.ndarray,
    *,
    ratio: str,
    alpha: float,
    df: float | None = None,
) -> pd.DataFrame:
    """exp(β) with Wald interval exp(β ± q·SE) and two-sided p: q normal, or Student t with ``df``."""
    beta, se = np.asarray(beta, float), np.asarray(se, float)
    dist = stats.norm if df is None else stats.t(df)
    q = dist.ppf(1 - alpha / 2)
    out = coefs[list(COEF_COLUMNS)].copy().reset_index(drop=True)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out[ratio] = np.exp(beta)
        out["ci_low"], out["ci_high"] = np.exp(beta - q * se), np.exp(beta + q * se)
        out["z"] = beta / se
    out["p_value"] = 2 * dist.sf(np.abs(out["z"]))
    out["estimate"], out["std_error"] = beta, se
    return out


def _not_estimable_table(coefs: pd.DataFrame, *, ratio: str) -> pd.DataFrame:
    """One row per coefficient with no estimate (the model could not be fitted)."""
    nan = np.full(len(coefs), np.nan)
    return _ratio_table(coefs, nan, nan, ratio=ratio, alpha=0.05)


def _fit_stats(deviance: float, llf: float, aic: float, df_resid: float) -> dict[str, float]:
    return dict(zip(FIT_COLUMNS, (float(deviance), float(llf), float(aic), float(df_resid)), strict=True))


NO_FIT = _fit_stats(np.nan, np.nan, np.nan, np.nan)


# ---- count models -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NegBinFit:
    alpha: float
    llf: float
    result: object  # statsmodels GLMResults at alpha (coefficients and Fisher-information SEs)
    converged: bool


def _negative_binomial(y: np.ndarray, X: pd.DataFrame, offset: np.ndarray) -> _NegBinFit:
    """NB2 by maximum likelihood: α maximises the profile log-likelihood of GLM fits at fixed α.

    This is the alternation of MASS ``glm.nb`` (θ = 1/α by ML, β by IRLS given θ) solved as a bounded
    one-dimensional search on log α; β and its standard errors are those of the GLM at α̂ (expected
    information given α, as ``glm.nb`` prints them). ``converged`` is False when the search stops at
    the upper bound (α ≥ e⁵: no finite maximum) or a GLM fit fails; α at the lower bound (e⁻²⁰) is
    the Poisson boundary, a legitimate answer.
    """

    def fit(log_alpha: float):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            family = sm.families.NegativeBinomial(alpha=float(np.exp(log_alpha)))
            return sm.GLM(y, X, family=family, offset=offset).fit()

    def negative_llf(log_alpha: float) -> float:
        value = fit(log_alpha).llf
        return -value if np.isfinite(value) else np.inf

    low, high = -20.0, 5.0
    search = optimize.minimize_scalar(
        negative_llf, bounds=(low, high), method="bounded", options={"xatol": 1e-7}
    )
    result = fit(search.x)
    finite = bool(
        np.isfinite(result.params).all() and np.isfinite(result.bse).all() and np.isfinite(result.llf)
    )
    converged = bool(search.success and finite and search.x < high - 1e-3)
    return _NegBinFit(float(np.exp(search.x)), float(result.llf), result, converged)


def _overdispersion_lr(llf_nb: float, llf_poisson: float) -> tuple[float, float]:
    """Likelihood-ratio test of α = 0 with the boundary correction p = ½·P(χ²₁ > LR) (p = 1 at LR = 0)."""
    lr = max(2.0 * (llf_nb - llf_poisson), 0.0)
    return lr, (0.5 * float(stats.chi2.sf(lr, 1)) if lr > 1e-8 else 1.0)


def fit_count_model(
    frame: pd.DataFrame,
    *,
    outcome: str,
    exposure: str,
    terms: list[str],
    reference: dict[str, str] | None = None,
    model: Literal["auto", "poisson", "negative_binomial"] = "auto",
    min_df_resid: int = MIN_DF_RESID,
    test_alpha: float = 0.05,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rate ratios from a Poisson or negative binomial GLM with a log-exposure offset, the model chosen by a test.

    Parameters
    ----------
    frame : DataFrame
        One row per unit (audit, establishment); rows with a missing value are dropped (counted).
    outcome, exposure : str
        Count column (non-negative integers) and exposure column (> 0, e.g. ``hosts_in_scope``).
    terms, reference
        Covariates and reference levels (see :func:`build_design`).
    model : {"auto", "poisson", "negative_binomial"}
        ``"auto"``: Poisson unless the likelihood-ratio test of α = 0 rejects it at ``test_alpha``,
        then negative binomial (NB2); or the model the caller names.
    min_df_resid : int
        Fewest residual degrees of freedom (n − coefficients) for ``"auto"`` and
        ``"negative_binomial"`` (default :data:`MIN_DF_RESID` = 10); below it every row says
        ``model = "not estimable"``. A Poisson model the caller asks for only needs df ≥ 0.
    test_alpha, alpha : float
        Level of the overdispersion test; 1 − confidence level of the intervals.

    Returns
    -------
    DataFrame
        One row per coefficient, the ``Intercept`` first: ``term``, ``level`` (None for a numeric
        term and the intercept), ``reference``, ``rate_ratio`` (exp(coefficient); for the intercept,
        the rate per exposure unit at the reference levels), ``ci_low``, ``ci_high``, ``z``,
        ``p_value``, ``model`` (``poisson``, ``negative_binomial`` or ``not estimable``),
        ``dispersion`` (Poisson Pearson χ²/df), ``n``, ``ci_method`` (``wald``), and
        ``estimate``/``std_error`` (log scale), ``model_choice`` (which model and why, in words),
        ``nb_alpha`` (NB2 α by ML; NaN when not fitted), ``overdispersion_lr`` and
        ``overdispersion_p`` (the test of α = 0), ``deviance``, ``log_likelihood``, ``aic``,
        ``df_resid`` (of the model reported), ``estimable`` (bool). ``attrs``: ``nb_alpha``,
        ``n_dropped`` (rows with missing values), ``outcome``, ``note`` (= ``model_choice``),
        ``converged``.

    Notes
    -----
    log E[y] = log(exposure) + Xβ; rate ratio = exp(β), Wald interval exp(β ± z·SE). The negative
    binomial is NB2 (Var = μ + αμ²) with α by maximum likelihood and β, SE as MASS ``glm.nb`` gives
    them (IRLS at α̂); α = 1/θ of ``glm.nb``, AIC = −2ℓ + 2(p + 1). The choice is the
    likelihood-ratio test of H₀: α = 0, LR = 2(ℓ_NB − ℓ_Poisson): α = 0 lies on the boundary of the
    parameter space, so LR follows ½χ²₀ + ½χ²₁ under H₀ and p = ½·P(χ²₁ > LR) (Cameron & Trivedi
    2013, §3.4). When the test rejects but the NB fit does not converge, the model is not
    estimable (a warning says "did not converge"); when it does not reject, an NB fit stuck at
    α → 0 is the boundary answer and the Poisson model is reported. With one binary covariate the
    Poisson MLE rate ratio equals the ratio of crude rates Σy₁/Σe₁ ÷ Σy₀/Σe₀, with SE(log RR) =
    √(1/Σy₁ + 1/Σy₀).

    References
    ----------
    McCullagh P., Nelder J.A. (1989) Generalized Linear Models, 2nd ed., ch. 6.
    Cameron A.C., Trivedi P.K. (2013) Regression Analysis of Count Data, 2nd ed., §3.4.
    Venables W.N., Ripley B.D. (2002) Modern Applied Statistics with S, 4th ed., §7.4 (``glm.nb``).

    Examples
    --------
    >>> df = pd.DataFrame({"y": [10, 12, 11, 13], "hosts": [10, 10, 10, 10],
    ...                    "family": ["CH", "CH", "EHPAD", "EHPAD"]})
    >>> fit = fit_count_model(df, outcome="y", exposure="hosts", terms=["family"], model="poisson")
    >>> float(round(fit.loc[1, "rate_ratio"], 4)), fit.loc[1, "model"]  # (11 + 13) / (10 + 12)
    (1.0909, 'poisson')
    """
    if model not in ("auto", "poisson", "negative_binomial"):
        raise ValueError(f"model must be 'auto', 'poisson' or 'negative_binomial', got {model!r}")
    data, n_dropped = _complete_rows(frame, [outcome, exposure, *terms])
    y = data[outcome].astype(float)
    if (y < 0).any() or (y != np.round(y)).any():
        raise ValueError(f"{outcome!r} must hold non-negative integer counts")
    if (data[exposure] <= 0).any():
        raise ValueError(f"{exposure!r} must be > 0 (log offset); drop zero-exposure rows first")
    X, coefs = build_design(data, terms=terms, reference=reference)
    coefs = _with_intercept(coefs)
    offset = np.log(data[exposure].astype(float)).to_numpy()
    df_resid = len(data) - X.shape[1]
    rank_ok = df_resid >= 0 and np.linalg.matrix_rank(X.to_numpy()) == X.shape[1]
    needs_test = model != "poisson"
    row = {"model": NOT_ESTIMABLE, "dispersion": np.nan, "nb_alpha": np.nan, "overdispersion_lr": np.nan,
           "overdispersion_p": np.nan, "converged": False, **NO_FIT}  # fmt: skip
    if not rank_ok:
        row["model_choice"] = (
            f"{NOT_ESTIMABLE}: the design is rank-deficient ({len(data)} rows, {X.shape[1]} coefficients)"
        )
    elif needs_test and df_resid < min_df_resid:
        row["model_choice"] = (
            f"{NOT_ESTIMABLE}: {df_resid} residual df < {min_df_resid} (overdispersion can be neither "
            "tested nor estimated)"
        )
    if "model_choice" in row:
        out = _not_estimable_table(coefs, ratio="rate_ratio")
        return _finish_count(out, row, data, n_dropped, outcome)
    with warnings.catch_warnings():  # a saturated fit is exact, not an error
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        poisson = sm.GLM(y.to_numpy(), X, family=sm.families.Poisson(), offset=offset).fit()
    dispersion = poisson.pearson_chi2 / df_resid if df_resid > 0 else np.nan
    row.update(dispersion=dispersion)
    chosen, fitted = "poisson", poisson
    if model == "poisson":
        row["model_choice"] = "poisson: requested by the caller"
    else:
        nb = _negative_binomial(y.to_numpy(), X, offset)
        lr, p = _overdispersion_lr(nb.llf, poisson.llf)
        row.update(overdispersion_lr=lr, overdispersion_p=p, nb_alpha=nb.alpha)
        test = f"LR test of alpha = 0: LR = {lr:.2f}, p = {p:.3g} (boundary-corrected, ½·P(χ²₁ > LR))"
        wants_nb = model == "negative_binomial" or p < test_alpha
        why = "requested by the caller" if model == "negative_binomial" else f"{test} < {test_alpha}"
        if wants_nb and not nb.converged:
            warnings.warn(f"negative binomial fit did not converge ({outcome})", stacklevel=2)
            row["model_choice"] = (
                f"{NOT_ESTIMABLE}: negative binomial needed ({why}) but its fit did not converge"
            )
            return _finish_count(
                _not_estimable_table(coefs, ratio="rate_ratio"), row, data, n_dropped, outcome
            )
        if wants_nb:
            chosen, fitted = "negative_binomial", nb.result
            row["model_choice"] = f"negative binomial (NB2, alpha by ML): {why}"
        else:
            row["model_choice"] = f"poisson: {test} ≥ {test_alpha}"
            row["nb_alpha"] = np.nan
    cols = coefs["column"].tolist()
    out = _ratio_table(coefs, fitted.params[cols], fitted.bse[cols], ratio="rate_ratio", alpha=alpha)
    k = X.shape[1] + (chosen == "negative_binomial")
    llf = poisson.llf if chosen == "poisson" else fitted.llf
    row.update(model=chosen, converged=True, **_fit_stats(fitted.deviance, llf, -2 * llf + 2 * k, df_resid))
    return _finish_count(out, row, data, n_dropped, outcome)


def _finish_count(
    out: pd.DataFrame, row: dict, data: pd.DataFrame, n_dropped: int, outcome: str
) -> pd.DataFrame:
    """Columns of :func:`fit_count_model` in their documented order, and its attrs."""
    out = out.assign(
        model=row["model"], dispersion=row["dispersion"], n=len(data), ci_method=WALD, model_choice=row["model_choice"],
        nb_alpha=row["nb_alpha"], overdispersion_lr=row["overdispersion_lr"], overdispersion_p=row["overdispersion_p"],
        **{c: row[c] for c in FIT_COLUMNS}, estimable=row["model"] != NOT_ESTIMABLE,
    )  # fmt: skip
    first = ["term", "level", "reference", "rate_ratio", "ci_low", "ci_high", "z", "p_value", "model",
             "dispersion", "n", "ci_method"]  # fmt: skip
    out = out[first + [c for c in out.columns if c not in first]]
    out.attrs.update(
        nb_alpha=row["nb_alpha"], n_dropped=n_dropped, outcome=outcome, note=row["model_choice"],
        converged=row["converged"],
    )  # fmt: skip
    return out


# ---- logistic models and separation ---------------------------------------------------------------------


def detect_separation(
    X: pd.DataFrame | np.ndarray, y: Sequence[float] | np.ndarray, *, tol: float = 1e-7
) -> bool:
    """Whether the ML logistic estimates are infinite: (quasi-)complete separation, by linear programming.

    Solves max Σᵢ sᵢxᵢᵀb subject to sᵢxᵢᵀb ≥ 0 and −1 ≤ b ≤ 1, with sᵢ = 2yᵢ − 1: a direction b
    that never decreases the log-likelihood exists, and the MLE is infinite along it, exactly when
    the optimum is positive (Konis 2007; the method of R ``detectseparation``).

    >>> detect_separation(np.array([[1, 0], [1, 0], [1, 1], [1, 1]]), [0, 1, 1, 1])
    True
    >>> detect_separation(np.array([[1, 0], [1, 0], [1, 1], [1, 1]]), [0, 1, 0, 1])
    False
    """
    A = np.asarray(X, float) * (2 * np.asarray(y, float) - 1)[:, None]
    scale = np.abs(A).max(axis=0)
    A = A / np.where(scale > 0, scale, 1.0)
    res = optimize.linprog(-A.sum(axis=0), A_ub=-A, b_ub=np.zeros(len(A)), bounds=(-1, 1), method="highs")
    return bool(res.status == 0 and -res.fun > tol * len(A))


@dataclass(frozen=True)
class FirthFit:
    """Firth's penalised-likelihood logistic regression (:func:`fit_firth_logistic`).

    ``params``, ``bse`` (from the inverse Fisher information at the estimate), ``ci_low``/``ci_high``
    (profile penalised likelihood; NaN for columns not profiled), ``chi2``/``p_values`` (penalised
    likelihood-ratio test of each coefficient = 0; NaN when not profiled): Series indexed by the
    columns of X. ``penalized_loglik`` ℓ*(β̂), ``loglik`` ℓ(β̂) (unpenalised), ``n_iter``, ``converged``.
    """

    params: pd.Series
    bse: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    chi2: pd.Series
    p_values: pd.Series
    penalized_loglik: float
    loglik: float
    n_iter: int
    converged: bool


def _firth_pieces(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """ℓ*(β) = ℓ(β) + ½ log|XᵀWX|, the modified score Xᵀ(y − π + h(½ − π)) and the information XᵀWX."""
    eta = X @ beta
    pi = special.expit(eta)
    w = pi * (1 - pi)
    info = X.T @ (X * w[:, None])
    sign, logdet = np.linalg.slogdet(info)
    loglik = float(np.sum(y * eta - np.logaddexp(0, eta)))
    if sign <= 0 or not np.isfinite(logdet):
        return -np.inf, np.zeros_like(beta), info
    hat = np.einsum("ij,ij->i", X @ np.linalg.inv(info), X) * w
    return loglik + 0.5 * logdet, X.T @ (y - pi + hat * (0.5 - pi)), info


def _firth_newton(
    X: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    free: np.ndarray,
    *,
    maxit: int = 100,
    maxstep: float = 5.0,
    maxhs: int = 30,
    tol: float = 1e-8,
) -> tuple[np.ndarray, float, int, bool]:
    """Newton–Raphson on the free coefficients (others held at ``start``), step ≤ ``maxstep``, step halving.

    Converged when the full Newton step is below ``tol`` in every coefficient (quadratic convergence:
    the estimate is then exact to far less than that); a step is halved while ℓ* decreases by more
    than its rounding error.
    """
    beta = start.astype(float).copy()
    pll, score, info = _firth_pieces(X, y, beta)
    if not free.any():  # every coefficient held: the penalised log-likelihood at start
        return beta, pll, 0, True
    for it in range(1, maxit + 1):
        step = np.zeros_like(beta)
        try:
            step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        except np.linalg.LinAlgError:
            return beta, pll, it, False
        if np.abs(step).max() < tol:
            return beta, pll, it, True
        if np.abs(step).max() > maxstep:
            step *= maxstep / np.abs(step).max()
        slack = 1e-10 * max(1.0, abs(pll)) if np.isfinite(pll) else np.inf
        for _ in range(maxhs):
            new = beta + step
            new_pll, new_score, new_info = _firth_pieces(X, y, new)
            if new_pll >= pll - slack:
                break
            step /= 2
        beta, pll, score, info = new, new_pll, new_score, new_info
    return beta, pll, maxit, False


def _profile_limit(
    X: np.ndarray, y: np.ndarray, beta: np.ndarray, pll: float, j: int, se: float, target: float, side: int
) -> float:
    """The value b of coefficient j (on ``side``) where 2(ℓ*(β̂) − max ℓ*(b, ·)) = ``target``."""
    free = np.ones(len(beta), bool)
    free[j] = False

    last = {"beta": beta}  # warm start: the previous profile maximum

    def excess(b: float) -> float:
        start = last["beta"].copy()
        start[j] = b
        fitted, profile_pll, _, _ = _firth_newton(X, y, start, free)
        if np.isfinite(profile_pll):
            last["beta"] = fitted
        return 2 * (pll - profile_pll) - target

    step = max(se, 1e-3)
    bound = beta[j] + side * step
    while excess(bound) < 0:
        step *= 2
        if step > 1e3:
            return side * np.inf
        bound = beta[j] + side * step

    def bracketed(b: float) -> float:  # at the estimate itself the excess is -target by definition
        return -target if b == beta[j] else excess(b)

    last["beta"] = beta  # warm starts from the estimate, not from the far end of the search
    try:
        return float(optimize.brentq(bracketed, *sorted((beta[j], bound)), xtol=1e-9, rtol=1e-12))
    except ValueError:  # the profile maximisation failed inside the bracket: no bound rather than a wrong one
        warnings.warn(
            f"profile penalised-likelihood limit of coefficient {j} not found; interval bound left empty",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")


def fit_firth_logistic(
    X: pd.DataFrame,
    y: Sequence[float] | pd.Series | np.ndarray,
    *,
    alpha: float = 0.05,
    profile: Sequence[str] | None = None,
) -> FirthFit:
    """Firth's bias-reduced (Jeffreys-penalised) logistic regression, as R ``logistf`` fits it.

    Parameters
    ----------
    X : DataFrame
        Design matrix with its intercept column (e.g. from :func:`build_design`), full column rank.
    y : array of 0/1
    alpha : float
        1 − confidence level of the profile intervals.
    profile : list of str, optional
        Columns given a profile penalised-likelihood interval and test (default: every column).

    Returns
    -------
    FirthFit

    Notes
    -----
    Maximises ℓ*(β) = ℓ(β) + ½ log|I(β)|, I = XᵀWX, W = diag(π(1 − π)), by Newton–Raphson on the
    modified score Uⱼ* = Σᵢ (yᵢ − πᵢ + hᵢ(½ − πᵢ)) xᵢⱼ (hᵢ the diagonal of the weighted hat matrix),
    each step at most 5 in any coefficient and halved until ℓ* does not decrease (the defaults of
    ``logistf.control``). The estimate is finite under separation. Interval for βⱼ: the values b with
    2(ℓ*(β̂) − maxℓ*(βⱼ = b)) ≤ χ²₁,₁₋α, the profile keeping the full model's penalty (Heinze &
    Schemper 2002); the test of βⱼ = 0 is the same penalised likelihood ratio.

    References
    ----------
    Firth D. (1993) Biometrika 80:27–38. Heinze G., Schemper M. (2002) Stat Med 21:2409–2419.
    Heinze G. et al., R package ``logistf`` (``logistf``, ``logistpl``).
    """
    Xa = np.asarray(X, float)
    ya = np.asarray(y, float)
    names = list(X.columns)
    p = Xa.shape[1]
    beta, pll, n_iter, converged = _firth_newton(Xa, ya, np.zeros(p), np.ones(p, bool))
    _, _, info = _firth_pieces(Xa, ya, beta)
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    low, high, chi2 = (np.full(p, np.nan) for _ in range(3))
    target = float(stats.chi2.ppf(1 - alpha, 1))
    for name in names if profile is None else profile:
        j = names.index(name)
        low[j] = _profile_limit(Xa, ya, beta, pll, j, se[j], target, -1)
        high[j] = _profile_limit(Xa, ya, beta, pll, j, se[j], target, +1)
        free = np.ones(p, bool)
        free[j] = False
        start = beta.copy()
        start[j] = 0.0
        chi2[j] = max(2 * (pll - _firth_newton(Xa, ya, start, free)[1]), 0.0)
    eta = Xa @ beta
    series = {k: pd.Series(v, index=names) for k, v in
              {"params": beta, "bse": se, "ci_low": low, "ci_high": high, "chi2": chi2}.items()}  # fmt: skip
    return FirthFit(
        **series,
        p_values=pd.Series(stats.chi2.sf(chi2, 1), index=names),
        penalized_loglik=float(pll),
        loglik=float(np.sum(ya * eta - np.logaddexp(0, eta))),
        n_iter=n_iter,
        converged=converged,
    )


def _separated_levels(
    data: pd.DataFrame, y: pd.Series, terms: Sequence[str], coefs: pd.DataFrame
) -> tuple[list[str], set[str], bool]:
    """Dummy columns of levels whose outcomes are all 0 or all 1; terms involved; whether a row drop fixes it.

    Dropping the rows of such a level leaves the other coefficients at the limit of the ML fit. That
    fails when the reference level itself is constant, or a numeric term splits the outcome.
    """
    columns, involved, droppable = [], set(), True
    for term in terms:
        col = data[term]
        if _is_numeric(col):
            x0, x1 = col[y == 0], col[y == 1]
            if len(x0) and len(x1) and (x0.max() <= x1.min() or x1.max() <= x0.min()):
                involved.add(term)
                droppable = False
            continue
        share = y.groupby(col.astype(str)).mean()
        constant = set(share.index[(share == 0) | (share == 1)])
        rows = coefs[coefs["term"] == term]
        if not constant:
            continue
        involved.add(term)
        if rows["reference"].iloc[0] in constant:
            droppable = False
        columns += rows.loc[rows["level"].isin(constant), "column"].tolist()
    return columns, involved, droppable


def fit_logistic(
    frame: pd.DataFrame,
    *,
    outcome: str,
    terms: list[str],
    reference: dict[str, str] | None = None,
    method: Literal["auto", "ml", "firth"] = "auto",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Odds ratios from a logistic regression: ML, and Firth's penalised likelihood where ML is infinite.

    Parameters
    ----------
    frame, outcome : DataFrame, str
        Data and its 0/1 or boolean outcome column.
    terms, reference, alpha
        Covariates, reference levels (see :func:`build_design`), 1 − confidence level.
    method : {"auto", "ml", "firth"}
        ``"auto"``: ML, with separation handled level by level (see Notes); ``"firth"``: the whole
        model by Firth's method with profile penalised-likelihood intervals (R ``logistf``);
        ``"ml"``: plain ML, raising ``ValueError`` under separation.

    Returns
    -------
    DataFrame
        One row per coefficient, the ``Intercept`` first: ``term``, ``level``, ``reference``,
        ``odds_ratio`` (for the intercept, the odds at the reference levels), ``ci_low``,
        ``ci_high``, ``z``, ``p_value``, ``model`` (``logistic``), ``n``, ``ci_method`` (``wald`` for
        ML rows, ``profile penalised likelihood`` for Firth rows), ``separation`` (bool: the ML
        estimate of this coefficient is infinite), ``estimation`` (``ML``, ``Firth (separation)``, or
        ``Firth`` when the caller asked for it without separation),
        ``estimate``/``std_error`` (log scale), ``deviance``, ``log_likelihood``, ``aic``, ``df_resid``,
        ``estimable`` (True). On Firth rows ``z`` is the signed square root of the penalised
        likelihood-ratio χ², so that ``p_value`` = 2Φ(−|z|) is that test's. ``attrs``: ``n_dropped``,
        ``outcome``, ``penalized_loglik`` (Firth fit, NaN when none).

    Notes
    -----
    Binomial GLM with logit link; OR = exp(β), Wald interval exp(β ± z·SE). For a 2×2 table this is
    OR = ad/bc with SE(log OR) = √(1/a + 1/b + 1/c + 1/d) (Woolf). Separation (detected by
    :func:`detect_separation`) makes some ML estimates infinite. With ``"auto"``, when it comes from
    levels of categorical terms whose outcomes are all 0 or all 1 (a family without any event), the
    other coefficients keep their ML estimates — the limit of the full ML fit, equal to the ML fit
    without those levels' rows — and each separated level gets the Firth estimate of the whole model
    with its profile penalised-likelihood interval and test (``estimation = "Firth (separation)"``).
    When the separation cannot be assigned to such levels (a numeric term splits the outcome, the
    reference level is constant, a combination of terms), the whole model is fitted by Firth's method.
    A :class:`SeparationWarning` names the separated terms. Fit statistics: those of the ML fit (its
    supremum under separation); under a whole-model Firth fit, ℓ at the Firth estimate.

    References
    ----------
    Agresti A. (2013) Categorical Data Analysis, 3rd ed., §3.1 and §6.5.1 (separation).
    Woolf B. (1955) Annals of Human Genetics 19:251–253.
    Heinze G., Schemper M. (2002) Stat Med 21:2409–2419 (Firth's method under separation).

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7, "f": ["A"] * 10 + ["B"] * 10})
    >>> float(round(fit_logistic(df, outcome="y", terms=["f"]).loc[1, "odds_ratio"], 4))  # 3*4/(7*6)
    0.2857
    """
    if method not in ("auto", "ml", "firth"):
        raise ValueError(f"method must be 'auto', 'ml' or 'firth', got {method!r}")
    data, n_dropped = _complete_rows(frame, [outcome, *terms])
    y = data[outcome]
    if not y.isin([0, 1, True, False]).all():
        raise ValueError(f"{outcome!r} must be 0/1 or boolean")
    y = y.astype(float)
    if y.nunique() < 2:
        raise ValueError(f"{outcome!r} has a single value: no odds ratio can be estimated")
    X, coefs = build_design(data, terms=terms, reference=reference)
    coefs = _with_intercept(coefs)
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise ValueError(f"the design of {terms} is rank-deficient: drop or merge a term")
    separated = detect_separation(X, y)
    columns, involved, droppable = (
        _separated_levels(data, y, terms, coefs) if separated else ([], set(), True)
    )
    if separated and method == "ml":
        raise ValueError(f"separation in {sorted(involved) or terms}: ML odds ratios are infinite")
    whole_firth = method == "firth"
    reduced = None
    if separated and not whole_firth:
        reduced = _reduced_ml(X, y, columns) if columns and droppable else None
        whole_firth = reduced is None
    if separated:
        which = sorted(involved) or list(terms)
        how = "the whole model by Firth's method" if whole_firth else f"Firth estimates for {columns}"
        warnings.warn(
            f"separation in {which}: ML odds ratios unbounded; {how} with profile penalised-likelihood intervals",
            SeparationWarning,
            stacklevel=2,
        )
    if whole_firth:
        firth = fit_firth_logistic(X, y, alpha=alpha)
        out = _firth_rows(coefs, firth, alpha=alpha, label=FIRTH if separated else FIRTH_REQUESTED)
        llf = firth.loglik
        fit_stats = _fit_stats(-2 * llf, llf, -2 * llf + 2 * X.shape[1], len(data) - X.shape[1])
        sep_cols = coefs["column"].isin(columns) | coefs["term"].isin(involved)
        if separated and not sep_cols.any():
            sep_cols = coefs["term"] != INTERCEPT  # a combination of terms separates: every coefficient
    else:
        ml = reduced if reduced is not None else _ml_logistic(X, y)
        out = _ratio_table(coefs, ml.params.reindex(coefs["column"]), ml.bse.reindex(coefs["column"]),
                           ratio="odds_ratio", alpha=alpha)  # fmt: skip
        out["estimation"], out["ci_method"] = ML, WALD
        firth = None
        if columns:
            firth = fit_firth_logistic(X, y, alpha=alpha, profile=columns)
            firth_part = _firth_rows(coefs, firth, alpha=alpha)
            rows = coefs["column"].isin(columns).to_numpy()
            for col in out.columns.drop(list(COEF_COLUMNS)):
                out.loc[rows, col] = firth_part.loc[rows, col]
        fit_stats = _fit_stats(ml.deviance, ml.llf, -2 * ml.llf + 2 * X.shape[1], len(data) - X.shape[1])
        sep_cols = coefs["column"].isin(columns)
    out = out.assign(
        model="logistic", n=len(data), separation=sep_cols.to_numpy(), **fit_stats, estimable=True
    )
    first = ["term", "level", "reference", "odds_ratio", "ci_low", "ci_high", "z", "p_value", "model", "n",
             "ci_method", "separation", "estimation", "estimate", "std_error"]  # fmt: skip
    out = out[first + [c for c in out.columns if c not in first]]
    out.attrs.update(
        n_dropped=n_dropped, outcome=outcome, penalized_loglik=firth.penalized_loglik if firth else np.nan
    )
    return out


def _ml_logistic(X: pd.DataFrame, y: pd.Series):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (PerfectSeparationWarning, ConvergenceWarning))
        return sm.GLM(y, X, family=sm.families.Binomial()).fit()


def _reduced_ml(X: pd.DataFrame, y: pd.Series, columns: list[str]):
    """ML fit without the rows and dummies of the separated levels, or None if it is still separated."""
    keep = (X[columns] == 0).all(axis=1)
    Xr, yr = X.loc[keep, [c for c in X.columns if c not in columns]], y[keep]
    if yr.nunique() < 2 or np.linalg.matrix_rank(Xr.to_numpy()) < Xr.shape[1] or detect_separation(Xr, yr):
        return None
    return _ml_logistic(Xr, yr)


def _firth_rows(coefs: pd.DataFrame, firth: FirthFit, *, alpha: float, label: str = FIRTH) -> pd.DataFrame:
    """Ratio rows of a Firth fit: profile interval and penalised-LR test where profiled, else Wald."""
    cols = coefs["column"]
    out = _ratio_table(coefs, firth.params[cols], firth.bse[cols], ratio="odds_ratio", alpha=alpha)
    profiled = firth.ci_low[cols].notna().to_numpy()
    beta = firth.params[cols].to_numpy()
    out.loc[profiled, "ci_low"] = np.exp(firth.ci_low[cols].to_numpy()[profiled])
    out.loc[profiled, "ci_high"] = np.exp(firth.ci_high[cols].to_numpy()[profiled])
    out.loc[profiled, "z"] = (np.sign(beta) * np.sqrt(firth.chi2[cols].to_numpy()))[profiled]
    out.loc[profiled, "p_value"] = firth.p_values[cols].to_numpy()[profiled]
    out["estimation"] = label
    out["ci_method"] = np.where(profiled, PROFILE, WALD)
    return out


# ---- repeated audits ------------------------------------------------------------------------------------

COVARIANCES = {
    "bias_reduced": "bias-reduced sandwich (Mancl-DeRouen)",
    "robust": "robust sandwich",
    "naive": "model-based (naive)",
}


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
    cov_type: Literal["bias_reduced", "robust", "naive"] = "bias_reduced",
    min_clusters: int = MIN_CLUSTERS,
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
    cov_type : {"bias_reduced", "robust", "naive"}
        Covariance of the estimates: Mancl–DeRouen bias-reduced sandwich (default), the plain robust
        sandwich (R ``geepack``/``gee``'s robust SE) or the model-based one.
    min_clusters : int
        Fewest clusters (default :data:`MIN_CLUSTERS` = 20); below, every row is ``not estimable``.

    Returns
    -------
    DataFrame
        One row per coefficient, the ``Intercept`` first: ``term`` (the ``time`` row is the trend),
        ``level``, ``reference``, ``rate_ratio`` (Poisson) or ``odds_ratio`` (binomial), ``ci_low``,
        ``ci_high``, ``z``, ``p_value``, ``model`` (``gee_poisson``/``gee_binomial``, or ``not
        estimable``), ``correlation`` (estimated exchangeable ρ), ``n``, ``n_clusters``, ``ci_method``
        (``wald, <covariance>``), and ``estimate``/``std_error``, ``covariance`` (in words),
        ``converged``, ``estimable``, ``note`` (why not estimable, else empty), ``df_resid`` (clusters
        − coefficients). ``attrs``: ``n_dropped``, ``outcome``, ``working_correlation``, ``converged``.

    Notes
    -----
    Marginal model g(E[y]) = Xβ (+ log exposure) fitted by generalized estimating equations with an
    exchangeable working correlation within establishments. The sandwich variance is consistent even
    if the working correlation is wrong but biased downwards with few clusters; the Mancl–DeRouen
    correction ((I − Hᵢ)⁻¹ on each cluster's residuals, statsmodels ``cov_type="bias_reduced"``)
    removes most of that bias. Intervals and tests are Wald with normal quantiles (as statsmodels and
    ``geepack``). With a covariate constant within clusters, equal cluster sizes and no time term, the
    Poisson estimating equations equal the independence ones, so the rate ratio is the ratio of group
    means.

    References
    ----------
    Liang K.-Y., Zeger S.L. (1986) Biometrika 73:13–22.
    Mancl L.A., DeRouen T.A. (2001) Biometrics 57:126–134.
    """
    if family not in ("poisson", "binomial"):
        raise ValueError(f"family must be 'poisson' or 'binomial', got {family!r}")
    if cov_type not in COVARIANCES:
        raise ValueError(f"cov_type must be one of {sorted(COVARIANCES)}, got {cov_type!r}")
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
    coefs = _with_intercept(coefs)
    ratio = "rate_ratio" if family == "poisson" else "odds_ratio"
    offset = None
    if exposure:
        if (data[exposure] <= 0).any():
            raise ValueError(f"{exposure!r} must be > 0 (log offset)")
        offset = np.log(data[exposure].astype(float))
    groups = pd.factorize(data[group_id])[0]
    n_clusters = int(groups.max() + 1) if len(groups) else 0
    row = {"model": f"gee_{family}", "correlation": np.nan, "covariance": COVARIANCES[cov_type], "note": "",
           "converged": False}  # fmt: skip
    if n_clusters < min_clusters:
        row.update(model=NOT_ESTIMABLE, note=f"{NOT_ESTIMABLE}: {n_clusters} clusters < {min_clusters}")
        out = _not_estimable_table(coefs, ratio=ratio)
    else:
        fam = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
        model = sm.GEE(
            y, X, groups=groups, family=fam, cov_struct=sm.cov_struct.Exchangeable(), offset=offset
        )
        with warnings.catch_warnings(record=True) as caught, np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("always", ConvergenceWarning)
            result = model.fit(cov_type=cov_type)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught) and bool(
            np.isfinite(result.params).all() and np.isfinite(result.bse).all()
        )
        row.update(correlation=float(model.cov_struct.dep_params), converged=converged)
        if not converged:
            warnings.warn(f"GEE did not converge ({outcome}): estimates unreliable or NaN", stacklevel=2)
            row.update(model=NOT_ESTIMABLE, note=f"{NOT_ESTIMABLE}: the GEE fit did not converge")
            out = _not_estimable_table(coefs, ratio=ratio)
        else:
            cols = coefs["column"].tolist()
            out = _ratio_table(coefs, result.params[cols], result.bse[cols], ratio=ratio, alpha=alpha)
    out = out.assign(
        model=row["model"], correlation=row["correlation"], n=len(data), n_clusters=n_clusters,
        ci_method=f"wald, {row['covariance']}", covariance=row["covariance"], converged=row["converged"],
        estimable=row["model"] != NOT_ESTIMABLE, note=row["note"], df_resid=n_clusters - X.shape[1],
    )  # fmt: skip
    first = ["term", "level", "reference", ratio, "ci_low", "ci_high", "z", "p_value", "model", "correlation", "n",
             "n_clusters", "ci_method"]  # fmt: skip
    out = out[first + [c for c in out.columns if c not in first]]
    out.attrs.update(
        n_dropped=n_dropped, outcome=outcome, working_correlation="exchangeable", converged=row["converged"]
    )
    return out


# ---- yearly trends --------------------------------------------------------------------------------------

TREND_COLUMNS = (
    "group", "rate_ratio_per_year", "ci_low", "ci_high", "p_value", "model", "dispersion", "n_years",
    "first_year", "last_year", "rate_first", "rate_last", "ci_method", "estimate", "std_error", "statistic",
    "df_resid", "scale", "deviance", "pearson_chi2", "intercept", "n", "model_choice",
)  # fmt: skip


def _trend_fit(g: pd.DataFrame, *, count: str, exposure: str, year: str, first: float, alpha: float) -> dict:
    """Quasi-Poisson (or, with no residual df, Poisson) trend of one group: the columns of the trend table."""
    X = sm.add_constant((g[year] - first).astype(float).to_numpy(), has_constant="add")
    off = np.log(g[exposure].astype(float).to_numpy())
    with warnings.catch_warnings():  # two years make a saturated fit: exact, not an error
        warnings.simplefilter("ignore", (PerfectSeparationWarning, RuntimeWarning))
        fit = sm.GLM(g[count].to_numpy(float), X, family=sm.families.Poisson(), offset=off).fit()
    df = int(fit.df_resid)
    quasi = df > 0
    scale = fit.pearson_chi2 / df if quasi else np.nan
    beta, se = float(fit.params[1]), float(fit.bse[1]) * (np.sqrt(scale) if quasi else 1.0)
    dist = stats.t(df) if quasi else stats.norm
    q = dist.ppf(1 - alpha / 2)
    choice = (
        f"quasi_poisson: scale = Pearson χ²/df = {scale:.3g} on {df} df, t quantiles"
        if quasi
        else "poisson: no residual df to estimate a quasi-Poisson scale (two years), normal quantiles"
    )
    return {
        "rate_ratio_per_year": np.exp(beta), "ci_low": np.exp(beta - q * se), "ci_high": np.exp(beta + q * se),
        "p_value": 2 * dist.sf(abs(beta / se)), "model": "quasi_poisson" if quasi else "poisson",
        "dispersion": scale, "ci_method": f"wald, t({df}), quasi-Poisson scale" if quasi else WALD,
        "estimate": beta, "std_error": se, "statistic": beta / se, "df_resid": df,
        "scale": scale if quasi else 1.0, "deviance": fit.deviance, "pearson_chi2": fit.pearson_chi2,
        "intercept": float(fit.params[0]), "model_choice": choice,
    }  # fmt: skip


def fit_poisson_trend(
    frame: pd.DataFrame,
    *,
    count: str,
    exposure: str,
    year: str,
    by: str | None = None,
    per: float = 1000.0,
    alpha: float = 0.05,
    aggregate: bool = True,
) -> pd.DataFrame:
    """Yearly trend rate ratio per group (quasi-Poisson), e.g. incidents per 1000 establishments per year.

    Parameters
    ----------
    frame : DataFrame
        One row per group × year (or finer).
    count, exposure, year, by : str
        Event count, exposure (> 0, e.g. establishments in the registry), numeric year and the
        group column (None: one trend labelled ``"all"``).
    per, alpha : float
        Crude rates are per ``per`` exposure units; 1 − confidence level.
    aggregate : bool
        True: rows are summed per group × year (one observation per year); False: every row is an
        observation (several per year allowed).

    Returns
    -------
    DataFrame
        One row per group, columns :data:`TREND_COLUMNS`: ``group``, ``rate_ratio_per_year``,
        ``ci_low``, ``ci_high``, ``p_value``, ``model`` (``quasi_poisson``; ``poisson`` with two
        years; ``not estimable``), ``dispersion`` (Pearson χ²/df), ``n_years``, ``first_year``,
        ``last_year``, ``rate_first``, ``rate_last`` (crude, per ``per``), ``ci_method``; and
        ``estimate``/``std_error`` (log rate ratio per year, SE scaled), ``statistic`` (t), ``df_resid``,
        ``scale`` (the quasi-Poisson φ used; 1 for Poisson), ``deviance``, ``pearson_chi2``,
        ``intercept`` (log rate per exposure unit in the first year, fitted), ``n`` (observations),
        ``model_choice`` (which model and why).

    Notes
    -----
    log E[count] = log(exposure) + β₀ + β₁ (year − first year); rate ratio per year = exp(β₁). As R
    ``glm(family = quasipoisson)``: the scale φ = Σ Pearson residual² / (n − 2) is always estimated
    and used, SE(β₁) = √φ × Poisson SE, and intervals and p-values use Student t with n − 2 df (a
    negative binomial is not identifiable from a handful of yearly points). With two years no df is
    left for φ: the Poisson model, whose rate ratio is that of the two crude rates with SE(log) =
    √(1/c₁ + 1/c₂), normal quantiles. A group observed in one year, without events, or with events
    only in its first or last year (no finite MLE) is ``not estimable`` (NaN estimates).

    References
    ----------
    McCullagh P., Nelder J.A. (1989) Generalized Linear Models, 2nd ed., §6.2 (overdispersion).
    Wedderburn R.W.M. (1974) Biometrika 61:439–447 (quasi-likelihood).

    Examples
    --------
    >>> df = pd.DataFrame({"year": [2022, 2023], "n": [10, 20], "estab": [1000, 1000]})
    >>> trend = fit_poisson_trend(df, count="n", exposure="estab", year="year")
    >>> float(round(trend.loc[0, "rate_ratio_per_year"], 6)), trend.loc[0, "model"]
    (2.0, 'poisson')
    """
    group_col = by if by is not None else "__all__"
    data = frame.assign(**({} if by is not None else {group_col: "all"}))
    data, _ = _complete_rows(data, [group_col, year, count, exposure])
    if aggregate:
        data = (
            data.groupby([group_col, year], observed=True, sort=True)[[count, exposure]].sum().reset_index()
        )
    data = data.sort_values([group_col, year], kind="stable")
    if (data[exposure] <= 0).any():
        raise ValueError(f"{exposure!r} must be > 0 in every group × year")
    rows = []
    for group, g in data.groupby(group_col, observed=True, sort=True):  # a few groups, not rows
        first_year, last_year = g[year].min(), g[year].max()
        at_first, at_last = g[g[year] == first_year], g[g[year] == last_year]
        row = {
            "group": group,
            "n_years": g[year].nunique(),
            "first_year": first_year,
            "last_year": last_year,
            "rate_first": at_first[count].sum() / at_first[exposure].sum() * per,
            "rate_last": at_last[count].sum() / at_last[exposure].sum() * per,
            "n": len(g),
        }
        positive_years = set(g.loc[g[count] > 0, year])
        if row["n_years"] < 2 or positive_years in (set(), {first_year}, {last_year}):
            reason = (
                "a single year"
                if row["n_years"] < 2
                else (
                    "no event"
                    if not positive_years
                    else "events only in the first or last year (no finite MLE)"
                )
            )
            rows.append(row | {"model": NOT_ESTIMABLE, "model_choice": f"{NOT_ESTIMABLE}: {reason}"})  # fmt: skip
            continue
        rows.append(
            row | _trend_fit(g, count=count, exposure=exposure, year=year, first=first_year, alpha=alpha)
        )
    return pd.DataFrame(rows).reindex(columns=list(TREND_COLUMNS))


# ---- tests table ----------------------------------------------------------------------------------------


def _variant(c: pd.DataFrame) -> pd.Series:
    """What each row of a coefficient frame is, in words (``tests.csv`` ``variant``)."""
    base = {
        "poisson": "GLM log link, log-exposure offset",
        "negative_binomial": "NB2, alpha by ML, log-exposure offset",
        "logistic": "GLM logit link",
    }
    variant = c["model"].map(base).fillna("exchangeable working correlation")
    if "model_choice" in c.columns:
        variant = variant + "; " + c["model_choice"].astype(str)
    if "estimation" in c.columns:
        variant = variant.where(
            c["estimation"] != FIRTH, "Firth penalised likelihood (separation), logit link"
        )
        variant = variant.where(c["estimation"] != FIRTH_REQUESTED, "Firth penalised likelihood, logit link")
    if "covariance" in c.columns:
        variant = variant + "; " + c["covariance"].astype(str)
    reason = c["model_choice"] if "model_choice" in c.columns else c.get("note", pd.Series("", index=c.index))
    return variant.where(c["model"] != NOT_ESTIMABLE, "undefined: " + reason.astype(str).str.removeprefix(
        f"{NOT_ESTIMABLE}: "))  # fmt: skip


def _undefined_test(c: pd.DataFrame, kind: str) -> str:
    if "covariance" in c.columns:
        return "gee"
    return "count_model" if kind == "rate_ratio" else "logistic"


def to_tests_table(coefficients: pd.DataFrame, *, study: str = "", metric: str | None = None) -> pd.DataFrame:
    """Turn a coefficient frame from this module into ``tests.csv`` rows (one per coefficient but the intercept).

    Parameters
    ----------
    coefficients : DataFrame
        Output of :func:`fit_count_model`, :func:`fit_logistic` or :func:`fit_trend_gee`.
    study, metric : str
        Copied into the rows (``metric`` defaults to the model's outcome).

    Returns
    -------
    DataFrame
        ``tests.csv`` vocabulary: ``test`` = the model, ``variant`` states the fit (and the model
        choice, the estimation or the covariance; ``undefined: <reason>`` for a model that is not
        estimable), ``group_a`` = ``term=level`` (or the numeric term), ``group_b`` = the reference
        level, ``n_a`` = n, ``statistic`` = Wald z (signed root of the penalised LR χ² on Firth rows),
        ``effect_size`` = the ratio, ``effect_size_kind`` = ``rate_ratio`` or ``odds_ratio``. Intercept
        rows are left out.
    """
    kind = next((c for c in ("rate_ratio", "odds_ratio") if c in coefficients.columns), None)
    if kind is None:
        raise ValueError("not a coefficient frame: no rate_ratio or odds_ratio column")
    c = coefficients[coefficients["term"] != INTERCEPT]
    group_a = np.where(c["level"].isna(), c["term"], c["term"] + "=" + c["level"].astype(str))
    rows = pd.DataFrame(
        {
            "study": study,
            "metric": metric if metric is not None else coefficients.attrs.get("outcome"),
            "test": c["model"].where(c["model"] != NOT_ESTIMABLE, _undefined_test(c, kind)),
            "variant": _variant(c),
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
