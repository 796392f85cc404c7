"""Tests of the incident study: mapping-file reader, indicators, trends, national totals, exposure association.

Expected values come from: hand counts on the fixtures (tests/fixtures/incidents/README.md); R
``poisson.test`` (exact Garwood limits; R 4.x: ``poisson.test(5, 2000)$conf.int`` = 0.000812, 0.005834;
``poisson.test(10)$conf.int`` = 4.795389, 18.390356); Newcombe (1998) Table I (Wilson 81/263: 0.2553,
0.3662); the textbook 2x2 odds ratio with Woolf's interval (Woolf 1955; Rothman, Modern Epidemiology, 3rd
ed., ch. 14) and the two-rate ratio with SE(log) = sqrt(1/x1 + 1/x2) (same chapter); the ANS / CERT Santé
observatory 2023 totals (domain.md); and the demo generator's planted truth (truth.json).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib import registry
from cyberobs_lib.demo import DemoScale, generate_dataset, load_catalog
from cyberobs_lib.incident_files import MappingError, load_mapping, read_incidents
from cyberobs_lib.report import label
from cyberobs_lib.studies.incident_exposure import (
    EXPOSURES,
    audit_outcomes,
    caveats,
    exposure_incident_association,
    side_by_side,
)
from cyberobs_lib.studies.incidents import (
    INCIDENT_INDICATORS,
    attach_family,
    incident_indicators,
    incident_trends,
    national_totals,
)
from cyberobs_lib.studies.indicators import audit_metrics

FIX = Path(__file__).parent / "fixtures" / "incidents"


# ---------------------------------------------------------------------------------------------- reader
def test_hhs_like_fixture_is_mapped_row_by_row():
    inc, rej, acc = read_incidents(FIX / "hhs_like.csv", mapping="hhs_ocr_breach")
    assert acc["rows_read"] == 8 == acc["kept"] + acc["rejected"]  # 8 records (one spans two lines)
    assert acc["kept"] == 5 and acc["rejected"] == 3
    got = inc[["incident_id", "family", "nature", "type", "impact_on_care"]].values.tolist()
    assert got == [
        ["hhs_like:1", "US healthcare provider", "malicious", "compromise", "unknown"],
        ["hhs_like:2", "US health plan", "accidental", "data_leak", "unknown"],
        # "Theft, Unauthorized Access/Disclosure": malicious before accidental, data_leak before other
        ["hhs_like:3", "US business associate", "malicious", "data_leak", "unknown"],
        ["hhs_like:7", "US clearing house", "unknown", "other", "unknown"],
        ["hhs_like:8", "US healthcare provider", "accidental", "data_leak", "unknown"],
    ]
    assert [d.date().isoformat() for d in inc["declared_on"]] == [
        "2023-05-01", "2023-04-30", "2022-12-31", "2021-03-03", "2021-02-02",
    ]  # fmt: skip
    assert inc["source_row"].tolist() == [2, 3, 5, 9, 10]  # physical lines: row 2 spans lines 3-4
    assert rej[["row", "column", "reason"]].values.tolist() == [
        [6, "finess", "incident_without_frame"],  # empty Covered Entity Type
        [7, "declared_on", "required_value"],
        [8, "declared_on", "bad_date"],
    ]
    assert rej["value"].tolist() == [None, None, "2022-13-45"]
    assert "Web Description" in acc["unused_columns"] and acc["mapping"] == "hhs_ocr_breach"


def test_unknown_vocabulary_value_names_the_mapping_file():
    with pytest.raises(MappingError, match=r"'Ransomware' \(2 rows\).*hhs_ocr_breach\.yaml"):
        read_incidents(FIX / "hhs_unknown_type.csv", mapping="hhs_ocr_breach")


def test_default_in_the_mapping_absorbs_unknown_values():
    inc, rej, acc = read_incidents(FIX / "hhs_unknown_type.csv", mapping=FIX / "hhs_with_default.yaml")
    assert inc["nature"].tolist() == ["malicious", "unknown", "unknown"]
    assert inc["type"].tolist() == ["compromise", "other", "other"]
    assert inc["incident_id"].tolist() == ["t1", "t2", "t3"] and rej.empty
    assert acc["unused_columns"][-1] == "Year"


def test_french_export_variants_and_every_rejection_reason():
    inc, rej, acc = read_incidents(FIX / "fr_variants.csv")  # default mapping: fr_cert_sante
    assert acc["encoding"] == "cp1252" and acc["rows_read"] == 9 == acc["kept"] + acc["rejected"]
    assert inc[["incident_id", "nature", "type", "impact_on_care"]].fillna("-").values.tolist() == [
        ["D1", "malicious", "ransomware", "degraded"],
        ["D2", "accidental", "outage", "none"],
        ["D3", "unknown", "other", "-"],
    ]
    assert inc["category_code"].tolist()[1] == "500" and inc["family"].tolist()[2] == "CH"
    assert rej[["row", "reason"]].values.tolist() == [
        [5, "finess_format"],
        [6, "unknown_category"],
        [7, "incident_without_frame"],
        [8, "duplicate_id"],
        [9, "bad_date"],
        [10, "required_value"],
    ]
    assert rej["value"].tolist()[:2] == ["12345", "999"]


def test_mapping_file_errors(tmp_path):
    with pytest.raises(MappingError, match="outside the contract"):
        load_mapping(FIX / "bad_target.yaml")
    with pytest.raises(MappingError, match="not found"):
        load_mapping("no_such_layout")
    bad = tmp_path / "m.yaml"
    bad.write_text(
        "columns:\n  incident_id: id\n  declared_on: d\n  colour: c\n  nature: n\n", encoding="utf-8"
    )
    with pytest.raises(MappingError, match="'colour'"):
        load_mapping(bad)
    bad.write_text("columns:\n  incident_id: id\n  declared_on: d\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"required contract column\(s\) \['nature'\]"):
        load_mapping(bad)
    with pytest.raises(
        MappingError, match="breach submission date.*hhs_ocr_breach.yaml"
    ):  # a required source column is absent
        read_incidents(FIX / "fr_variants.csv", mapping="hhs_ocr_breach")


def test_hhs_corpus_files_every_row_accounted_for(corpus_dir):
    files = sorted((corpus_dir / "incidents").glob("hhs_ocr_breach_report_*.csv"))
    assert len(files) == 2
    for path in files:
        with open(path, encoding="utf-8-sig", newline="") as fh:  # independent count: csv module
            records = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
        n_rows = len(records) - 1
        inc, rej, acc = read_incidents(path, mapping="hhs_ocr_breach")
        assert acc["rows_read"] == n_rows == acc["kept"] + acc["rejected"] == len(inc) + len(rej)
        assert acc["kept"] > 0.99 * n_rows
        assert set(inc["nature"]) <= {"malicious", "accidental", "unknown"}
        assert inc["declared_on"].notna().all() and inc["incident_id"].is_unique
        hacking = sum(r[records[0].index("Type of Breach")] == "Hacking/IT Incident" for r in records[1:])
        assert (inc["type"] == "compromise").sum() >= hacking  # multi-valued cells with hacking add to it


# ---------------------------------------------------------------------------------------------- indicators
def _registry(n_ehpad: int = 2000, n_ch: int = 500) -> pd.DataFrame:
    fin = [f"75{k:07d}" for k in range(n_ehpad + n_ch)]
    return pd.DataFrame({"finess": fin, "family": ["EHPAD"] * n_ehpad + ["CH"] * n_ch})


def _incidents(finess, dates, nature="malicious", **cols) -> pd.DataFrame:
    n = len(finess)
    return pd.DataFrame(
        {"incident_id": [f"I{i}" for i in range(n)], "finess": finess, "declared_on": pd.to_datetime(dates),
         "nature": nature, **cols}
    )  # fmt: skip


def test_rates_and_shares_against_reference_values():
    reg = _registry()
    ch = reg.loc[reg.family == "CH", "finess"].tolist()
    eh = reg.loc[reg.family == "EHPAD", "finess"].tolist()
    # EHPAD 2024: 5 declarations by 5 structures; CH 2024: 263 declarations by 200 structures, 81 malicious
    fin = eh[:5] + ch[:200] + ch[:63]
    nature = ["accidental"] * 5 + ["malicious"] * 81 + ["accidental"] * 182
    inc = _incidents(fin, ["2024-02-01"] * len(fin), nature=nature, type="outage", impact_on_care="none")
    before = inc.copy()
    out = incident_indicators(inc, reg, years=[2024], overall=False).set_index(["indicator", "group"])
    pd.testing.assert_frame_equal(inc, before)  # input not mutated
    rate = out.loc[("incident_rate_per_1000", "EHPAD")]
    assert (rate["value"], round(rate["ci_low"], 3), round(rate["ci_high"], 3)) == (2.5, 0.812, 5.834)  # R
    share = out.loc[("malicious_share", "CH")]
    assert (round(share["ci_low"], 4), round(share["ci_high"], 4)) == (0.2553, 0.3662)  # Newcombe 1998
    assert out.loc[("declaring_structures", "CH"), "value"] == 200
    assert out.loc[("declaring_share", "CH"), "value"] == pytest.approx(200 / 500)
    assert out.loc[("eligible_establishments", "all"), "value"] == 2500
    assert out.loc[("declarations", "all"), "value"] == 268
    assert out.loc[("incident_rate_per_1000", "all"), "value"] == pytest.approx(1000 * 268 / 2500)
    assert list(dict.fromkeys(out.index.get_level_values(0))) == list(INCIDENT_INDICATORS)
    assert out.loc[("declarations", "CH"), "n_establishments"] == 200


def test_pooled_period_rate_is_per_establishment_year_and_counts_anonymous_declarants():
    reg = _registry(n_ehpad=1000, n_ch=0)
    eh = reg["finess"].tolist()
    inc = _incidents([eh[0], eh[0], None, eh[1]], ["2022-03-01", "2023-03-01", "2023-04-01", "2023-05-01"])
    inc["category_code"] = [None, None, "500", None]  # an EHPAD declared without FINESS
    out = incident_indicators(inc, reg).set_index(["indicator", "group", "period"])
    assert out.loc[("incident_rate_per_1000", "EHPAD", "all"), "value"] == pytest.approx(
        1000 * 4 / (1000 * 2)
    )
    g = out.loc[("declarations", "EHPAD", "2022")]
    assert (g["value"], round(g["ci_low"], 4), round(g["ci_high"], 4)) == (
        1,
        0.0253,
        5.5716,
    )  # R poisson.test(1)
    assert out.loc[("declaring_structures", "EHPAD", "all"), "value"] == 3  # eh0, eh1 + the anonymous one
    assert out.loc[("declaring_structures", "EHPAD", "2023"), "value"] == 3


def test_attach_family_precedence_registry_then_code_then_declared():
    reg = pd.DataFrame({"finess": ["750000010"], "family": ["CHU/CHR"]})
    inc = pd.DataFrame({"finess": ["750000010", "999999999", None], "category_code": ["500", "355", None],
                        "family": ["EHPAD", None, "Psychiatry"]})  # fmt: skip
    out = attach_family(inc, reg)
    assert out["family"].tolist() == ["CHU/CHR", "CH", "Psychiatry"]
    assert out["family_source"].tolist() == ["registry", "category_code", "declared"]
    assert inc["family"].tolist() == ["EHPAD", None, "Psychiatry"]


def test_trend_two_years_matches_the_ratio_of_rates():
    reg = _registry(n_ehpad=1000, n_ch=0)
    eh = reg["finess"].tolist()
    inc = _incidents(eh[:30], ["2022-06-01"] * 10 + ["2023-06-01"] * 20)
    t = incident_trends(inc, reg).set_index("group").loc["EHPAD"]
    se = math.sqrt(1 / 10 + 1 / 20)  # Rothman ch. 14: SE(log rate ratio)
    assert t["rate_ratio_per_year"] == pytest.approx(2.0)
    assert t["ci_low"] == pytest.approx(2 * math.exp(-1.959964 * se), rel=1e-5)
    assert t["ci_high"] == pytest.approx(2 * math.exp(1.959964 * se), rel=1e-5)
    small = incident_trends(inc, reg, min_cell=40).set_index("group").loc["EHPAD"]
    assert small["suppressed"] and np.isnan(small["rate_ratio_per_year"])  # 30 structures < 40


def test_national_totals_reproduce_the_published_2023_figures():
    inc, rej, acc = read_incidents(FIX / "cert_sante_2023.csv")
    assert acc["rows_read"] == 581 and rej.empty
    row = national_totals(inc).iloc[0]
    assert row["year"] == 2023 and row["declarations"] == 581 and row["declaring_structures"] == 462
    assert round(100 * row["malicious_share"]) == 50 and row["ransomware"] == 32  # ANS / CERT Santé 2023
    assert row["malicious_ci_low"] < 0.5 < row["malicious_ci_high"]


# ---------------------------------------------------------------------------------------------- exposure
def _metrics(exposed: list[bool], family: list[str] | str = "CH") -> pd.DataFrame:
    n = len(exposed)
    return pd.DataFrame(
        {"audit_id": [f"A{i}" for i in range(n)], "finess": [f"75{i:07d}" for i in range(n)],
         "family": family, "log_beds": 5.0, "audit_date": pd.Timestamp("2023-01-10"), "year": 2023,
         "has_kev": exposed, "exposes_remote_admin": False, "no_protection": pd.array(exposed, dtype="boolean"),
         "has_critical": False, "hosts_in_scope": 2, "n_findings": 1, "n_crit_high": 0}
    )  # fmt: skip


def test_odds_ratio_of_a_2x2_table_with_woolf_interval():
    exposed = [True] * 20 + [False] * 40
    m = _metrics(exposed)
    hit = m["finess"].iloc[list(range(8)) + list(range(20, 24))]  # 8/20 exposed, 4/40 unexposed
    inc = _incidents(hit.tolist(), ["2023-03-01"] * len(hit))
    tests, ors = exposure_incident_association(
        m, inc, covariates=(), exposures=["has_kev"], follow_up_end="2024-12-31"
    )
    row = ors.iloc[0]
    se = math.sqrt(1 / 8 + 1 / 12 + 1 / 4 + 1 / 36)  # Woolf (1955)
    assert row["odds_ratio"] == pytest.approx(8 * 36 / (12 * 4))
    assert row["ci_low"] == pytest.approx(6 * math.exp(-1.959964 * se), rel=1e-4)
    assert row["ci_high"] == pytest.approx(6 * math.exp(1.959964 * se), rel=1e-4)
    assert (row["n"], row["n_exposed"], row["events"], row["events_exposed"]) == (60, 20, 12, 8)
    assert tests.loc[0, "effect_size_kind"] == "odds_ratio" and tests.loc[0, "study"] == "incidents"


def test_window_bounds_and_incomplete_follow_up():
    m = _metrics([True, True, True, False]).assign(
        audit_date=pd.to_datetime(["2023-01-01", "2023-01-01", "2023-01-01", "2024-06-01"])
    )
    f = m["finess"]
    inc = _incidents([f[0], f[1], f[2]], ["2023-01-01", "2024-01-01", "2024-01-02"])  # day 0, 365, 366
    o = audit_outcomes(m, inc, follow_up_end="2024-12-31")
    assert o["incident_in_window"].tolist() == [False, True, False, False]
    assert o["window_complete"].tolist() == [True, True, True, False]  # 2024-06-01 + 365 > 2024-12-31
    assert audit_outcomes(m, inc)["window_complete"].tolist()[3] is False  # default end: 2024-12-31


def test_families_without_outcome_variation_are_dropped_without_changing_the_estimate():
    exposed = [True] * 20 + [False] * 40
    m = _metrics(exposed, family=["CH", "SSR", "SSR"] * 20)  # two informative families
    hit = m["finess"].iloc[list(range(8)) + list(range(20, 24))]
    inc = _incidents(hit.tolist(), ["2023-03-01"] * len(hit))
    quiet = _metrics([True, False] * 5, family="EHPAD").assign(
        audit_id=lambda d: "Q" + d["audit_id"], finess=lambda d: "33" + d["finess"].str[2:]
    )  # no EHPAD declared anything: its dummy would go to minus infinity
    opts = {"covariates": ("family",), "exposures": ["has_kev"], "follow_up_end": "2024-12-31"}
    base = exposure_incident_association(m, inc, **opts)[1].iloc[0]
    both = exposure_incident_association(pd.concat([m, quiet]), inc, **opts)[1].iloc[0]
    assert both["n_dropped_noninformative"] == 10 and base["n_dropped_noninformative"] == 0
    assert both["covariates"] == base["covariates"] == "family"
    assert np.isfinite(base["odds_ratio"]) and base["odds_ratio"] != pytest.approx(6.0)  # adjusted differs
    assert both["odds_ratio"] == pytest.approx(base["odds_ratio"], rel=1e-6)
    assert both["ci_high"] == pytest.approx(base["ci_high"], rel=1e-6) and both["n"] == base["n"] == 60


def test_association_not_estimable_gives_a_nan_row_and_bad_options_raise():
    m = _metrics([True, False] * 10)
    none = _incidents([], [])
    tests, ors = exposure_incident_association(
        m, none, covariates=(), exposures=["has_kev"], follow_up_end="2024-12-31"
    )
    assert ors.loc[0, "n"] == 20 and ors.loc[0, "events"] == 0
    assert ors.loc[0, "model"].startswith("not estimable") and np.isnan(ors.loc[0, "odds_ratio"])
    assert tests.empty
    with pytest.raises(ValueError, match="audit_choice"):
        exposure_incident_association(m, _incidents([], []), audit_choice="middle")
    with pytest.raises(ValueError, match="unknown exposures"):
        exposure_incident_association(m, _incidents([], []), exposures=["open_ports"])
    with pytest.raises(ValueError, match="lang"):
        caveats("de")


def test_side_by_side_puts_exposure_next_to_rates_and_hides_small_cells():
    reg = _registry(n_ehpad=10, n_ch=10)
    m = _metrics([True, False, False, False] + [True] * 6, family=["EHPAD"] * 4 + ["CH"] * 6)
    m["finess"] = reg["finess"].iloc[[0, 1, 2, 3, 10, 11, 12, 13, 14, 15]].to_numpy()
    inc = _incidents(reg["finess"].iloc[[10, 11, 12, 13, 14, 0]].tolist(), ["2023-05-01"] * 6)
    side = side_by_side(m, inc, reg, years=[2023]).set_index(["group", "period"])
    assert side.loc[("EHPAD", "2023"), "has_kev"] == 0.25 and side.loc[("CH", "2023"), "has_kev"] == 1.0
    assert side.loc[("CH", "2023"), "incident_rate_per_1000"] == 500.0  # 5 declarations / 10 eligible
    assert side.loc[("all", "all"), "audited"] == 10
    hidden = side_by_side(m, inc, reg, years=[2023], min_cell=5).set_index(["group", "period"])
    assert np.isnan(hidden.loc[("EHPAD", "2023"), "has_kev"])  # 4 audited < 5
    assert pd.isna(hidden.loc[("EHPAD", "2023"), "incident_rate_per_1000"])  # 1 declarant
    assert hidden.loc[("CH", "2023"), "incident_rate_per_1000"] == 500.0 and hidden["suppressed"].sum() == 2


# ---------------------------------------------------------------------------------------------- recovery
def _study_tables(d: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Registry, audit metrics and incidents of a generated dataset, exposure flags from the demo catalog.

    The catalog's ``kev`` / ``remote_admin`` flags stand in for KEV enrichment and category rules, so that
    the exposure is exactly the generator's (truth.json ``exposure_definition``).
    """
    est = pd.read_csv(d / "establishments.csv", dtype=str, keep_default_na=False)
    est["family"] = est["category_code"].map(registry.load_categories().set_index("category_code")["family"])
    est["beds"] = est["beds"].astype(int)
    aud = pd.read_csv(d / "audits.csv", dtype={"audit_id": str, "finess": str}, parse_dates=["audit_date"])
    f = pd.read_csv(d / "findings.csv", dtype=str, usecols=["audit_id", "vuln_id"])
    cat = load_catalog().set_index("vuln_id")
    f["known_exploited"] = f["vuln_id"].map(cat["kev"]).fillna(False).astype(bool)
    remote = f["vuln_id"].map(cat["remote_admin"]).fillna(False).astype(bool)
    f["category"] = np.where(remote, "exposed_remote_admin", "other")
    ctl = pd.read_csv(d / "controls.csv", dtype=str).assign(present=lambda c: c["present"].eq("true"))
    metrics = audit_metrics({"establishments": est, "audits": aud, "findings": f, "controls": ctl})
    incidents, rejects, _ = read_incidents(d / "incidents.csv")
    assert rejects.empty
    return est, metrics, incidents


def test_planted_family_rates_inside_exact_poisson_intervals(tmp_path):
    # few audits: the planted exposure window (which adds incidents after exposed audits) barely acts,
    # so the declarations are the planted background Poisson rates per family and year
    scale = DemoScale(establishments=8000, years=(2022, 2023, 2024, 2025), audits_per_establishment=(1, 1),
                      audited_share=0.01, pilot_establishments=0, chunk_establishments=4000)  # fmt: skip
    truth = generate_dataset(tmp_path, seed=5, scale=scale)
    est, _, inc = _study_tables(tmp_path)
    planted = pd.Series(truth["incidents"]["rate_per_1000_per_year"])
    k = len(planted)
    out = incident_indicators(inc, est, alpha=0.05 / k)  # Bonferroni: 95 % simultaneous coverage
    rates = out[(out.indicator == "incident_rate_per_1000") & (out.period == "all") & (out.group != "all")]
    rates = rates.set_index("group").assign(planted=planted)
    inside = (rates["ci_low"] <= rates["planted"]) & (rates["planted"] <= rates["ci_high"])
    assert inside.all(), rates[~inside]
    plain = incident_indicators(inc, est).set_index(["indicator", "group", "period"])
    plain = plain.loc["incident_rate_per_1000"].xs("all", level="period").drop(index="all")
    planted = planted.reindex(plain.index)
    covered = ((plain["ci_low"] <= planted) & (planted <= plain["ci_high"])).sum()
    assert covered >= k - 2  # 95 % intervals: about 0.7 of 14 expected to miss
    # the intervals are informative: CHU/CHR (planted 300) and EHPAD (15) are told apart
    assert plain.loc["CHU/CHR", "ci_low"] > 5 * plain.loc["EHPAD", "ci_high"]


def test_planted_exposure_odds_ratio_inside_the_interval(tmp_path):
    scale = DemoScale(establishments=4000, years=(2022, 2023, 2024, 2025), audits_per_establishment=(1, 2),
                      pilot_establishments=0, chunk_establishments=4000)  # fmt: skip
    truth = generate_dataset(tmp_path, seed=11, scale=scale)
    _, metrics, inc = _study_tables(tmp_path)
    tests, ors = exposure_incident_association(metrics, inc, window_days=truth["incidents"]["window_days"],
                                               follow_up_end=truth["end_date"])  # fmt: skip
    row = ors.set_index("exposure").loc["kev_or_remote_admin"]
    planted = truth["incidents"]["incident_exposure_odds_ratio"]
    assert row["ci_low"] <= planted <= row["ci_high"], row
    assert row["ci_low"] > 1.0  # the association is detected, not only covered
    assert ors["exposure"].tolist() == list(EXPOSURES) and len(tests) == len(EXPOSURES)
    nop = ors.set_index("exposure").loc["no_protection"]  # not planted: interval covers 1
    assert nop["ci_low"] <= 1.0 <= nop["ci_high"]


# ---------------------------------------------------------------------------------------------- figures
def test_figures_draw_one_mark_per_published_cell():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cyberobs_lib.disclosure import SecrecyRule, suppress_small_cells
    from cyberobs_lib.plots import incidents as plots

    reg = _registry(n_ehpad=1000, n_ch=200)
    reg.loc[1100:, "family"] = "SSR"
    ch, ssr, eh = (
        reg["finess"].iloc[1000:1100].tolist(),
        reg["finess"].iloc[1100:].tolist(),
        reg["finess"].tolist(),
    )
    inc = _incidents(ch[:12] + ssr[:6] + eh[:2], ["2023-03-01"] * 6 + ["2024-03-01"] * 14)
    ind = suppress_small_cells(incident_indicators(inc, reg), rule=SecrecyRule(min_cell=5))
    ax = plots.plot_incident_rates(ind, period="all", lang="en")
    points = ax.lines[0].get_xdata()
    # EHPAD (2 declarants) is secret, and SSR too (secondary suppression: all - CH would reveal EHPAD)
    assert sorted(np.round(points, 3)) == [round(1000 * 20 / (1200 * 2), 3), 1000 * 12 / (100 * 2)]
    assert sum("suppressed" in t.get_text() for t in ax.texts) == 2
    ax = plots.plot_incident_trends(ind, top=3, lang="fr")
    # yearly: EHPAD never published; 2024 hides CH as the secondary cell (tie with SSR, first in order)
    assert [line.get_label() for line in ax.lines] == [label("CH", "fr"), label("SSR", "fr"), "ensemble"]
    assert [len(line.get_xdata()) for line in ax.lines] == [1, 2, 2]  # SSR 2023 is a published zero
    m = _metrics([True] * 20 + [False] * 40)
    ors = exposure_incident_association(m, inc, covariates=(), exposures=["has_kev"])[1]
    ax = plots.plot_odds_ratios(ors, planted=2.5, lang="en")
    assert ax.get_xscale() == "log" and len(ax.get_yticklabels()) == 1
    with pytest.raises(ValueError, match="lang"):
        plots.incident_label("x", "de")
    plt.close("all")
