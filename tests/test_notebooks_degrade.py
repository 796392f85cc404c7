"""What the notebooks rely on to degrade, never fall over, on data nobody here wrote: family names given as
labels, a dataset without a KEV catalog, a year without audits, and names that carry markup."""

from __future__ import annotations

import shutil

import mistune
import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.config import PROJECT_DIR
from cyberobs_lib.studies import annual, cohorts, longitudinal
from cyberobs_lib.studies.data import LIFECYCLE_FINDINGS, load_study_data
from cyberobs_lib.studies.families import resolve_families, resolve_family
from cyberobs_lib.studies.incident_exposure import exposure_incident_association, not_estimable_sentences
from cyberobs_lib.studies.indicators import audit_metrics, compute_indicators, no_audits_note
from cyberobs_lib.studies.markup import escape_markdown, has_live_markup
from cyberobs_lib.studies.methods import not_modelled_sentence

DEMO = PROJECT_DIR / "data" / "demo"
FAMILIES = ["Army", "CH", "CHU/CHR", "EHPAD", "Private clinic (MCO)", "Other social"]


# --- family names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["EHPAD"], ["EHPAD"]),
        (["ehpad", "ch"], ["EHPAD", "CH"]),
        (["hôpitaux des armées"], ["Army"]),
        (["HOPITAUX DES ARMEES"], ["Army"]),
        (["army hospitals"], ["Army"]),
        (["cliniques privées (MCO)", "Private clinic (MCO)"], ["Private clinic (MCO)"]),
        (["  autres   établissements sociaux "], ["Other social"]),
        ("CHU/CHR", ["CHU/CHR"]),
        ([], []),
    ],
)
def test_resolve_families_accepts_codes_and_labels(given, expected):
    assert resolve_families(given, FAMILIES) == expected


def test_resolve_families_names_the_bad_value_and_the_accepted_ones():
    with pytest.raises(ValueError) as err:
        resolve_families(["EHPAD", "Clinique"], FAMILIES, "fr")
    message = str(err.value)
    assert "'Clinique'" in message and "families:" in message
    assert "'EHPAD'" in message and "'hôpitaux des armées'" in message and "'army hospitals'" not in message


def test_resolve_families_refuses_a_family_absent_from_the_data():
    with pytest.raises(ValueError, match="unknown family 'Army'"):
        resolve_families(["Army"], ["CH", "EHPAD"])


def test_resolve_family_names_its_parameter():
    assert resolve_family("ch", FAMILIES) == "CH"
    with pytest.raises(ValueError, match=r"^reference: unknown family 'XX'"):
        resolve_family("XX", FAMILIES)


# --- the demo data, and a copy without KEV catalog --------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    return load_study_data(DEMO, columns={"findings": LIFECYCLE_FINDINGS})


@pytest.fixture(scope="module")
def no_kev(tmp_path_factory):
    folder = tmp_path_factory.mktemp("no_kev") / "demo"
    shutil.copytree(DEMO, folder)
    for pattern in ("*kev*", "known_exploited*"):
        for path in (folder / "reference").glob(pattern):
            path.unlink()
    return load_study_data(folder, columns={"findings": LIFECYCLE_FINDINGS})


@pytest.mark.parametrize("family", ["EHPAD", "Army", "CHU/CHR"])
def test_lifecycle_of_one_family_keeps_its_hosts(demo, family):
    pairs = longitudinal.lifecycle_table(demo, min_days=90, families=[family]).pairs
    est = demo.establishments.set_index("finess")["family"]
    assert set(est.reindex(pairs["establishment"]).dropna()) <= {family}
    episodes = longitudinal.remediation_episodes(demo, families=[family])
    assert set(episodes["family"]) <= {family}
    medians = longitudinal.interval_medians(episodes)
    assert list(medians.columns) == list(longitudinal.MEDIAN_COLUMNS)


def test_without_kev_catalog_kev_metrics_are_unknown_not_zero(demo, no_kev):
    with_kev = audit_metrics(demo)
    assert with_kev["n_kev"].notna().all() and with_kev.attrs["unavailable"] == {}
    m = audit_metrics(no_kev)
    assert m["n_kev"].isna().all() and m["has_kev"].isna().all()
    assert m.attrs["unavailable"] == {"n_kev": "no_kev_catalog", "has_kev": "no_kev_catalog"}
    assert m["n_findings"].equals(with_kev["n_findings"])  # nothing else changes

    ind = compute_indicators(m, n_boot=20)
    kev = ind[ind["indicator"] == "has_kev"]
    assert kev["value"].isna().all()
    # the cell's audited establishments are counted (its denominator is known), the share is not
    have = kev.set_index(["group", "period"])["n_establishments"]
    assert have[("all", "all")] == m["finess"].nunique()
    per_year = m.groupby("year")["finess"].nunique()
    assert all(have[("all", str(y))] == n for y, n in per_year.items())
    assert (kev["ci_method"] == "unavailable: no KEV catalog in the dataset").all()


def test_without_kev_catalog_tests_are_rows_saying_so(no_kev):
    m = audit_metrics(no_kev)
    paired = longitudinal.paired_tests(m, min_days=90)
    kev = paired[paired["metric"] == "n_kev"]
    assert len(kev) == 2 and kev["p_value"].isna().all()
    assert (kev["variant"] == "undefined: no_kev_catalog").all()
    assert "pas de catalogue KEV" in longitudinal.undefined_sentences(paired, "fr")
    defined = paired[~longitudinal.is_undefined(paired)]
    assert defined["p_value"].between(0, 1).all() and len(defined) == 7

    crude = cohorts.compare_families(m, metrics=["has_kev", "no_protection"], reference="CH", n_boot=20)
    assert crude.loc[crude["metric"] == "has_kev", "variant"].tolist() == ["undefined: no_kev_catalog"]
    odds, odds_tests = cohorts.adjusted_odds_ratios(m, reference="CH", outcomes=["has_kev"], covariates=[])
    assert odds.empty and odds_tests["variant"].tolist() == ["undefined: no_kev_catalog"]
    trends = cohorts.family_trends(m, families=["CH"], proportions=["has_kev"])
    assert trends.loc[trends["metric"] == "has_kev", "p_value"].isna().all()

    _, ors = exposure_incident_association(m, no_kev.incidents)
    kev_rows = ors[ors["exposure"].isin(["has_kev", "kev_or_remote_admin"])]
    assert kev_rows["odds_ratio"].isna().all() and (kev_rows["n"] == 0).all()
    assert kev_rows["model"].str.contains("no KEV catalog").all()
    assert ors.loc[ors["exposure"] == "exposes_remote_admin", "odds_ratio"].notna().all()
    assert "catalogue KEV" in not_estimable_sentences(ors, "fr")


# --- a year without audits -----------------------------------------------------------------------------


def test_a_year_without_audits_is_said_in_words(demo):
    m = audit_metrics(demo)
    assert no_audits_note(m, 2025, "fr") == "" and no_audits_note(m, 0, "fr") == ""
    note = no_audits_note(m, 2031, "fr")
    assert "Aucun audit complet en 2031" in note and "2023, 2024, 2025" in note
    ind = compute_indicators(m, periods=[2025], n_boot=20)
    headlines = annual.headline_table(ind, year=2031)
    assert headlines.empty and "suppressed" in headlines.columns
    ratios, tests = cohorts.adjusted_rate_ratios(m, reference="CH", period=2031, on_error="row")
    assert ratios["rate_ratio"].isna().all() and (ratios["model"] == "not modelled").all()
    assert tests["variant"].str.startswith("undefined").all()
    assert "2031" in not_modelled_sentence(ratios, "en")
    with pytest.raises(ValueError, match="fewer than two families .* in 2031"):  # no audit at all that year
        cohorts.adjusted_rate_ratios(m, reference="CH", period=2031)


# --- names carrying markup -------------------------------------------------------------------------------

EVIL = ['<script>alert("x")</script>', '=HYPERLINK("http://x.example","y")', "[clic](http://x.example)"]


@pytest.mark.parametrize("name", EVIL)
def test_escaped_markdown_renders_as_text(name):
    rendered = mistune.html(f"- **{escape_markdown(name)}**: text")
    assert not has_live_markup(rendered)
    assert "HYPERLINK" not in name or "=HYPERLINK" in rendered


def _evil_metrics(name: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 12
    return pd.DataFrame(
        {
            "audit_id": [f"A{i}" for i in range(n)],
            "finess": [f"{i:09d}" for i in range(n)],
            "family": [name] * 6 + ["CH"] * 6,
            "audit_date": pd.Timestamp("2024-03-01"),
            "year": 2024,
            "hosts_in_scope": rng.integers(1, 6, n),
            "n_findings": rng.integers(0, 9, n),
            "legal_status": "public",
            "region": "11",
            "log_beds": np.log(rng.integers(10, 500, n)),
        }
    )


@pytest.mark.parametrize("name", EVIL)
def test_study_sentences_quoting_names_have_no_live_markup(name):
    m = _evil_metrics(name)
    ratios, tests = cohorts.adjusted_rate_ratios(m, reference=name, period=2031, on_error="row")
    sentences = [
        not_modelled_sentence(ratios, "fr"),
        longitudinal.undefined_sentences(tests, "en"),
        annual.headline_sentences(
            pd.DataFrame(
                [
                    {
                        "indicator": "x",
                        "label": name,
                        "value": 0.5,
                        "ci_low": 0.4,
                        "ci_high": 0.6,
                        "n_establishments": 10,
                        "ci_method": "wilson",
                        "suppressed": False,
                    }
                ]
            ),  # fmt: skip
            year=2024,
            lang="en",
        ),
        annual.headline_sentences(
            annual.headline_table(pd.DataFrame(columns=["indicator", "group", "period"]), year=2024),
            year=2024,
            unavailable={"has_kev": name},
        ),
    ]
    assert name in "".join(sentences).replace("\\", "").replace("&lt;", "<").replace("&gt;", ">")
    for text in sentences:
        assert not has_live_markup(mistune.html(text)), text
