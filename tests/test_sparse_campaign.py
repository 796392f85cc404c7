"""Sparse campaigns (scanner exports only: no controls, no incidents, establishments audited once or at short
intervals): the studies say what cannot be computed, as rows and sentences, instead of raising."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.lifecycle.intervals import INTERVAL_COLUMNS
from cyberobs_lib.studies import annual
from cyberobs_lib.studies import longitudinal as study
from cyberobs_lib.studies.incidents import (
    incident_indicators,
    incident_trends,
    national_totals,
    no_incidents_note,
)
from cyberobs_lib.studies.longitudinal import GEE_MIN_CLUSTERS


def _metrics(n_est: int = 8, audits_per_est: int = 1, days_apart: int = 200, protection=None) -> pd.DataFrame:
    """One row per audit, as ``audit_metrics`` gives it; ``no_protection`` unknown unless given."""
    rng = np.random.default_rng(7)
    rows = []
    for e in range(n_est):
        for k in range(audits_per_est):
            n = int(rng.integers(0, 9))
            rows.append(
                {
                    "audit_id": f"A{e}_{k}",
                    "finess": f"75000{e:04d}",
                    "family": "CH" if e % 2 else "EHPAD",
                    "audit_date": pd.Timestamp("2025-01-10") + pd.Timedelta(days=days_apart * k),
                    "hosts_in_scope": 10,
                    "n_findings": n,
                    "findings_per_host": n / 10,
                    "n_crit_high": int(rng.integers(0, 3)),
                    "n_kev": 0,
                    "no_protection": protection,
                    "has_critical": bool(rng.integers(0, 2)),
                    "exposes_remote_admin": bool(rng.integers(0, 2)),
                }
            )
    out = pd.DataFrame(rows)
    out["year"] = out["audit_date"].dt.year
    out["no_protection"] = out["no_protection"].astype("boolean")
    return out


def test_no_pairs_gives_one_undefined_row_per_test_and_says_why():
    metrics = _metrics(audits_per_est=1)
    tests = study.paired_tests(metrics, min_days=90)
    assert study.is_undefined(tests).all()
    assert tests["p_value"].isna().all() and tests["p_adjusted"].isna().all()
    assert set(tests["metric"]) == set(study.COUNT_METRICS) | set(study.BINARY_METRICS)
    assert (tests["variant"] == "undefined: no_pairs;min_days=90").all()
    text = study.undefined_sentences(tests, "en")
    assert "no establishment audited twice at least 90 days apart: no paired test" in text
    assert "aucun établissement audité deux fois à au moins 90 jours" in study.undefined_sentences(
        tests, "fr"
    )
    summary = study.paired_summary(metrics, min_days=90)
    assert (summary["n_pairs"] == 0).all()


def test_audits_closer_than_min_days_are_no_pair():
    tests = study.paired_tests(_metrics(audits_per_est=2, days_apart=30), min_days=90)
    assert (tests["variant"] == "undefined: no_pairs;min_days=90").all()


def test_unknown_protection_is_undefined_while_other_tests_are_computed():
    metrics = _metrics(audits_per_est=2)
    tests = study.paired_tests(metrics, min_days=90)
    undefined = study.is_undefined(tests)
    mcnemar = tests[tests["metric"] == "no_protection"]
    assert mcnemar["variant"].tolist() == ["undefined: no_complete_pair"]
    # n_kev is 0 at both audits: the stats layer's own "all differences zero"
    assert (
        tests.loc[tests["metric"] == "n_kev", "variant"]
        .str.startswith("undefined_all_differences_zero")
        .all()
    )
    computed = tests[~undefined]
    assert set(computed["metric"]) == {
        "findings_per_host",
        "n_crit_high",
        "has_critical",
        "exposes_remote_admin",
    }
    assert computed["p_value"].between(0, 1).all()
    text = study.undefined_sentences(tests, "en")
    assert "unknown at the baseline or the follow-up of every pair" in text
    assert "every difference is zero" in text


def test_statistics_functions_still_raise_on_empty_input():
    from cyberobs_lib.stats import paired

    with pytest.raises(ValueError, match="no complete pair"):
        paired.mcnemar_test(np.array([], dtype=bool), np.array([], dtype=bool))


def test_repeated_tests_without_enough_audits_say_why():
    repeated = study.repeated_tests(_metrics(audits_per_est=1))
    assert repeated["test"].tolist() == ["friedman", "cochran_q", "gee_trend"]
    assert study.is_undefined(repeated).all()
    text = study.undefined_sentences(repeated, "en")
    assert "fewer than two establishments audited at least 3 times" in text
    assert f"fewer than {GEE_MIN_CLUSTERS} establishments audited at least twice" in text


def test_repeated_tests_with_unknown_protection_keep_friedman_and_gee():
    repeated = study.repeated_tests(_metrics(audits_per_est=3))
    by_test = repeated.set_index("test")["variant"]
    assert not by_test["friedman"].startswith("undefined")
    assert by_test["cochran_q"] == "undefined: too_few_repeated_known;n_audits=3"


def _episodes(n: int = 0) -> pd.DataFrame:
    ep = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERVAL_COLUMNS})
    ep["family"] = pd.Series(dtype=object)
    ep["event"] = pd.Series(dtype=int)
    return ep


def test_remediation_without_followed_findings_gives_empty_tables_with_columns():
    out = study.remediation_study(_episodes(), min_cell=5)
    assert set(out) == {"survival", "survival_severity", "remediation", "tests", "close_rate", "deadlines"}
    for name, table in out.items():
        if name != "tests":
            assert table.empty and len(table.columns) > 0, name
    assert study.is_undefined(out["tests"]).all()
    assert "no finding followed by a later audit" in study.undefined_sentences(out["tests"], "en")
    assert study.interval_medians(_episodes()).empty


def test_remediation_of_small_families_only_says_secrecy():
    ep = pd.DataFrame(
        {
            "finess": ["a", "a", "b"],
            "family": ["CH", "CH", "EHPAD"],
            "severity": ["high", "low", "high"],
            "duration_days": [30.0, 60.0, 90.0],
            "event": [1, 0, 1],
            "observed": [True, False, True],
            "origin": pd.to_datetime(["2025-01-01"] * 3),
        }
    )
    out = study.remediation_study(ep, min_cell=5)
    assert out["survival"].empty and out["survival"].attrs["excluded_families"] == ["CH", "EHPAD"]
    assert "fewer than 5 establishments" in study.undefined_sentences(out["tests"], "en")
    # one family left: the family log-rank is undefined, the severity one is computed
    one = study.remediation_study(ep.assign(family="CH"))
    assert one["tests"].loc[one["tests"]["metric"] == "time_to_fix_by_family", "variant"].iloc[0] == (
        "undefined: fewer_than_two_groups"
    )
    assert not study.is_undefined(one["tests"][one["tests"]["metric"] == "time_to_fix_by_severity"]).any()


@pytest.fixture
def no_incidents():
    # an ingested dataset without incidents.csv: the canonical table is empty, its dates typed as text
    return pd.DataFrame(
        {c: pd.Series(dtype="string") for c in ("incident_id", "declared_on", "nature", "finess", "family")}
    )


def test_no_incidents_gives_empty_tables_not_zero_rates(no_incidents):
    reg = pd.DataFrame({"finess": ["750000010", "750000028"], "family": ["CH", "EHPAD"]})
    assert national_totals(no_incidents).empty
    assert "declarations" in national_totals(no_incidents).columns
    ind = incident_indicators(no_incidents, reg, years=[2025])
    assert ind.empty and "incident_rate_per_1000" not in set(ind["indicator"])
    assert incident_trends(no_incidents, reg, min_cell=5).empty
    note = no_incidents_note(no_incidents, "en", summary={"inputs": {"audits.csv": "x"}})
    assert note.startswith("No incident declarations in this dataset (no incidents.csv)")
    fr = no_incidents_note(no_incidents, "fr", summary={"inputs": {"incidents.csv": "x"}})
    assert fr.startswith("Aucune déclaration d'incident") and "incidents.csv sans déclaration" in fr


def test_text_dates_of_declarations_are_read(no_incidents):
    inc = pd.DataFrame(
        {
            "incident_id": ["a"],
            "declared_on": pd.array(["2025-03-01"], dtype="string"),
            "nature": ["malicious"],
        }
    )
    assert national_totals(inc)["declarations"].tolist() == [1]


def test_headline_without_kev_catalog_is_unavailable_not_zero():
    ind = pd.DataFrame(
        [
            {"indicator": k, "group": "all", "period": "2025", "value": 0.0, "ci_low": 0.0, "ci_high": 0.2,
             "n_establishments": 20, "ci_method": "wilson", "suppressed": False}
            for k in annual.HEADLINES
        ]
    )  # fmt: skip
    head = annual.headline_table(ind, year=2025, lang="en")
    text = annual.headline_sentences(
        head,
        year=2025,
        lang="en",
        unavailable=annual.unavailable_headlines({"catalogs": {"kev": None}}, "en"),
    )
    kev_line = next(line for line in text.splitlines() if "KEV" in line)
    assert "not available: no KEV catalog" in kev_line and "0 %" not in kev_line


def test_plots_draw_a_message_on_empty_tables():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cyberobs_lib.plots import incidents as iplots
    from cyberobs_lib.plots import longitudinal as lplots

    pairs = study.paired_audits(_metrics(audits_per_est=1), min_days=90)
    tests = study.paired_tests(_metrics(audits_per_est=1), min_days=90)
    for draw in (
        lambda ax: lplots.plot_slopes(pairs, ax=ax),
        lambda ax: lplots.plot_paired_differences(pairs, tests, ax=ax),
        lambda ax: lplots.plot_survival_curves(study.remediation_study(_episodes())["survival"], ax=ax),
        lambda ax: iplots.plot_incident_rates(pd.DataFrame(columns=["indicator", "period", "group"]), ax=ax),
    ):
        fig, ax = plt.subplots()
        draw(ax)
        assert any("aucune donnée" in t.get_text() for t in ax.texts)
        plt.close(fig)


def test_paired_summary_of_a_metric_nobody_measured_is_empty_without_warning():
    """Without a KEV catalogue every ``n_kev`` is unknown: its paired medians are NaN over 0 pairs, and no
    numpy "Mean of empty slice" warning reaches the published page (it did on the corpus as one dataset)."""
    import warnings

    m = _metrics(audits_per_est=2).assign(n_kev=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = study.paired_summary(m, pairing="first_last", min_days=90).set_index("metric")
    assert summary.loc["n_kev", "n_pairs"] == 0 and np.isnan(summary.loc["n_kev", "baseline"])
    assert summary.loc["findings_per_host", "n_pairs"] == 8 and not np.isnan(
        summary.loc["findings_per_host", "baseline"]
    )
