"""Publication policy and run-level suppression (issue 16): each attack of the issue, reproduced on small
tables, must fail against what publish_table writes; an independent linear-recovery check (scipy linprog)
bounds every hidden count from the published equations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from cyberobs_lib.disclosure import (
    DisclosureError,
    IdentifyingColumnError,
    MinCellBelowFloorError,
    PerEstablishmentTableError,
    UnknownTableError,
    forget_ledger,
    published_groups,
    suppress_small_cells,
    suppress_tests,
)
from cyberobs_lib.disclosure.ledger import Ledger, Observation
from cyberobs_lib.report import publish_table, save_table

CLINIC = "Private clinic (MCO)"


@pytest.fixture
def run(tmp_path):
    """A published run's output folder with its run marker (as the runner writes it)."""
    out = tmp_path / "run"
    (out / ".cyberobs").mkdir(parents=True)
    (out / ".cyberobs" / "run.json").write_text(json.dumps({"published": True, "min_cell": 5, "run_name": "t",
                                                             "lang": "fr"}))  # fmt: skip
    return out


def publish(frame, name, out, **kw):
    return publish_table(
        frame, name, out, published=kw.pop("published", True), min_cell=kw.pop("min_cell", 5)
    )


def indicators(counts: dict[str, int], *, period="2025", names=("has_critical", "median_crit_high"), seed=0):
    """An indicators.csv frame: one row per indicator x group (+ 'all' = sum), shares drawn at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        for group, n in [*counts.items(), ("all", sum(counts.values()))]:
            rows.append({"indicator": name, "group": group, "period": period, "n_establishments": n,
                         "n_audits": n + 1, "value": round(float(rng.uniform()), 3), "ci_low": 0.0,
                         "ci_high": 1.0, "ci_method": "wilson", "suppressed": False})  # fmt: skip
    return pd.DataFrame(rows)


def published_csv(out, name):
    return pd.read_csv(out / "tables" / f"{name}.csv", keep_default_na=True)


# ---- independent linear-recovery check ---------------------------------------------------------------


def recovery_intervals(tables: list[pd.DataFrame], count="n_establishments", lower=1.0):
    """Bounds a reader gets on each blanked count from the published tables alone.

    One unknown per (indicator, group, period) across all tables (a value published in any table fixes
    it); one equation per (indicator, period) with an 'all' row: all = sum of every group shown by any
    table (the reader takes the union of the tables' groups as the whole partition). Hidden
    counts are at least ``lower`` (0 is always published). Returns {key: (low, high)} for hidden keys.
    """
    known: dict[tuple, float] = {}
    hidden: set[tuple] = set()
    groups: dict[tuple, set] = {}  # (indicator, period) -> every group any table shows
    for t in tables:
        for _, r in t.iterrows():
            key = (r["indicator"], r["group"], str(r["period"]))
            groups.setdefault(key[::2], set()).add(r["group"])
            if pd.isna(r[count]):
                hidden.add(key)
            else:
                known[key] = float(r[count])
    equations = [
        [((ind, g, period), -1.0 if g == "all" else 1.0) for g in sorted(shown)]
        for (ind, period), shown in groups.items()
        if "all" in shown
    ]
    hidden -= set(known)
    order = sorted(hidden)
    if not order:
        return {}
    a_eq, b_eq = [], []
    for eq in equations:
        row, rhs = np.zeros(len(order)), 0.0
        for key, sign in eq:
            if key in known:
                rhs -= sign * known[key]
            else:
                row[order.index(key)] += sign
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    out = {}
    for i, key in enumerate(order):
        c = np.zeros(len(order))
        c[i] = 1.0
        if not a_eq:
            out[key] = (lower, math.inf)
            continue
        lo = linprog(c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=[(lower, None)] * len(order), method="highs")
        hi = linprog(-c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=[(lower, None)] * len(order), method="highs")
        assert lo.status == 0, "the published equations have no solution"
        out[key] = (lo.x[i], math.inf if hi.status == 3 else hi.x[i])
    return out


def assert_not_recoverable(tables, **kw):
    intervals = recovery_intervals(tables, **kw)
    for key, (lo, hi) in intervals.items():
        assert math.floor(hi + 1e-9) > math.ceil(lo - 1e-9), f"{key} recoverable: [{lo}, {hi}]"
    return intervals


# ---- attacks of issue 16 -----------------------------------------------------------------------------


def test_hidden_cell_is_not_recovered_from_total_minus_others(run):
    table = indicators({"CH": 9, "CHU/CHR": 3, "EHPAD": 46, CLINIC: 7})
    # before: a per-table call hides CHU/CHR and one complement, but a second indicator chose differently
    # in the old notebooks; the new step decides once per population cell, the same in every indicator
    out = publish(table, "indicators", run)
    hidden = out.loc[out["suppressed"], ["indicator", "group"]]
    assert set(hidden["group"]) == {"CHU/CHR", CLINIC}  # CHU/CHR (3) and the smallest complement (7)
    assert len(hidden) == 4  # the same two groups in both indicators
    assert out.loc[out["suppressed"], ["n_establishments", "n_audits", "value"]].isna().all().all()
    intervals = assert_not_recoverable([published_csv(run, "indicators")])
    assert intervals[("has_critical", "CHU/CHR", "2025")] == pytest.approx((1.0, 9.0))


def test_recovery_check_catches_the_old_single_suppression():
    """The independent check is not vacuous: a table with one hidden cell is recoverable."""
    table = indicators({"CH": 9, "CHU/CHR": 3, "EHPAD": 46}, names=("has_critical",))
    leaky = table.assign(n_establishments=table["n_establishments"].where(table["group"] != "CHU/CHR"))
    with pytest.raises(AssertionError, match="recoverable"):
        assert_not_recoverable([leaky])


def test_same_cell_never_hidden_in_one_table_and_published_in_another(run):
    """Issue 16: 'Private clinic (MCO) 2025' suppressed in indicators.csv, published in annual_indicators.csv."""
    four = {"CH": 9, "CHU/CHR": 3, "EHPAD": 46, CLINIC: 7}
    every = four | {"Army": 0, "Dialysis": 6, "SSR": 12, "Psychiatry": 2}
    cohort = indicators(four) .assign(n_establishments=lambda t: t["n_establishments"].where(
        t["group"] != "all", sum(every.values())))  # fmt: skip  # 'all' pools every family
    annual = indicators(every, seed=1)
    # before: each table suppressed on its own
    old_cohort = suppress_small_cells(cohort)
    old_annual = suppress_small_cells(annual)
    clinic = (cohort["group"] == CLINIC) & (cohort["indicator"] == "has_critical")
    clinic_a = (annual["group"] == CLINIC) & (annual["indicator"] == "has_critical")
    assert old_cohort.loc[clinic, "suppressed"].item() != old_annual.loc[clinic_a, "suppressed"].item()
    # after: one ledger for the run
    first = publish(cohort, "indicators", run)
    second = publish(annual, "annual_indicators", run)
    both = pd.concat([first, second])
    for group, sub in both.groupby("group"):
        assert sub["suppressed"].nunique() == 1, group
    assert_not_recoverable([published_csv(run, "indicators"), published_csv(run, "annual_indicators")])


def test_army_declarations_one_of_two(run):
    """Issue 16: `declarations,Army,2025,1,…,True` said that one of the two army hospitals declared."""
    rows = []
    for group, eligible, declaring in [("Army", 2, 1), ("CH", 24, 6), ("EHPAD", 96, 9), ("SSR", 12, 0),
                                       ("all", 134, 16)]:  # fmt: skip
        rows += [
            {"indicator": "eligible_establishments", "group": group, "period": "2025", "n_establishments": eligible,
             "value": eligible},
            {"indicator": "declarations", "group": group, "period": "2025", "n_establishments": declaring,
             "value": declaring},
            {"indicator": "declaring_share", "group": group, "period": "2025", "n_establishments": declaring,
             "value": declaring / eligible},
        ]  # fmt: skip
    table = pd.DataFrame(rows).assign(
        n_audits=np.nan, ci_low=np.nan, ci_high=np.nan, ci_method="", suppressed=False
    )
    before = suppress_small_cells(table)
    army_before = before[(before["group"] == "Army") & (before["indicator"] == "declarations")]
    assert army_before["n_establishments"].item() == 1  # the leak: the count survives suppression
    out = publish(table, "incidents_indicators", run)
    army = out[out["group"] == "Army"].set_index("indicator")
    assert army.loc["eligible_establishments", "n_establishments"] == 2  # public registry count kept
    assert not army.loc["eligible_establishments", "suppressed"]
    assert army.loc[["declarations", "declaring_share"], ["n_establishments", "value"]].isna().all().all()
    # Army hidden (1), so one more declaring cell is hidden: 16 - 6 - 9 - 0 would give it back
    hidden = set(out.loc[out["suppressed"], "group"])
    assert "Army" in hidden and len(hidden - {"Army"}) >= 1 and "SSR" not in hidden  # a zero is never chosen
    assert_not_recoverable(
        [published_csv(run, "incidents_indicators").query("indicator != 'eligible_establishments'")]
    )


def test_declaring_structures_blank_on_suppressed_trend_rows(run):
    """Issue 16: incidents_trends.csv kept declaring_structures = 1 on suppressed rows."""
    ledger_rows = []
    for year, counts in {
        "2024": {"Army": 0, "CH": 6, "EHPAD": 8},
        "2025": {"Army": 1, "CH": 1, "EHPAD": 9},
    }.items():
        for group, n in [*counts.items(), ("all", sum(counts.values()))]:
            ledger_rows.append({"indicator": "declarations", "group": group, "period": year, "n_establishments": n,
                                "value": n})  # fmt: skip
    for group, n in {"Army": 1, "CH": 6, "EHPAD": 14, "all": 21}.items():
        ledger_rows.append({"indicator": "declarations", "group": group, "period": "all", "n_establishments": n,
                            "value": n})  # fmt: skip
    publish(pd.DataFrame(ledger_rows).assign(ci_method="", suppressed=False), "incidents_indicators", run)
    trends = pd.DataFrame({
        "group": ["Army", "CH", "EHPAD", "all"], "rate_ratio_per_year": [2.0, 0.2, 1.1, 0.9],
        "ci_low": 0.1, "ci_high": 3.0, "p_value": 0.5, "model": "poisson", "dispersion": 1.0, "n_years": 2,
        "first_year": 2024, "last_year": 2025, "rate_first": [0.0, 250.0, 83.3, 60.0],
        "rate_last": [500.0, 41.7, 93.8, 70.0], "ci_method": "wald", "declaring_structures": [1, 6, 14, 21],
        "suppressed": [True, False, False, False]})  # fmt: skip
    out = publish(trends, "incidents_trends", run).set_index("group")
    assert pd.isna(out.loc["Army", "declaring_structures"])
    # CH has 6 structures over the years, but its 2025 cell (1 structure) is hidden: rate_last = 1/24 gave it
    assert out.loc["CH", "suppressed"] and pd.isna(out.loc["CH", "rate_last"])
    assert not out.loc["all", "suppressed"] and out.loc["all", "declaring_structures"] == 21


def test_risk_difference_and_global_test_over_a_hidden_group(run):
    """Issue 16: EHPAD − clinic risk difference gave the hidden clinic share back; the global Fisher test
    (n = 62, V = 0.171) included a hidden 3-establishment cell."""
    counts = {"CH": 8, "CHU/CHR": 3, "EHPAD": 45, CLINIC: 6}
    publish(indicators(counts), "indicators", run)
    tests = pd.DataFrame([
        {"study": "cohorts", "metric": "no_protection", "test": "fisher_exact", "variant": "ffh",
         "group_a": "CH|CHU/CHR|EHPAD|Private clinic (MCO)", "group_b": None, "n_a": 62, "n_b": None,
         "statistic": None, "df": 3, "p_value": 0.82, "p_adjusted": 0.82, "adjust_method": "fdr_bh across metrics",
         "effect_size": 0.171, "effect_size_kind": "cramers_v", "ci_low": 0.0, "ci_high": 0.35},
        {"study": "cohorts", "metric": "no_protection", "test": "fisher_exact", "variant": "pairwise",
         "group_a": "EHPAD", "group_b": CLINIC, "n_a": 45, "n_b": 6, "statistic": None, "df": 1, "p_value": 0.66,
         "p_adjusted": 1.0, "adjust_method": "holm within metric", "effect_size": 0.144,
         "effect_size_kind": "risk_difference", "ci_low": -0.27, "ci_high": 0.34},
        {"study": "cohorts", "metric": "no_protection", "test": "fisher_exact", "variant": "pairwise",
         "group_a": "EHPAD", "group_b": "CH", "n_a": 45, "n_b": 8, "statistic": None, "df": 1, "p_value": 0.01,
         "p_adjusted": 0.03, "adjust_method": "holm within metric", "effect_size": 0.06,
         "effect_size_kind": "risk_difference", "ci_low": -0.3, "ci_high": 0.29},
    ]).assign(period="2025")  # fmt: skip
    before = suppress_tests(tests)
    assert before.loc[0, "effect_size"] == 0.171 and before.loc[1, "effect_size"] == 0.144  # the leaks
    out = publish(tests, "tests_cohorts", run)
    assert out.loc[0, "suppressed"] and pd.isna(out.loc[0, "effect_size"]) and pd.isna(out.loc[0, "n_a"])
    assert out.loc[1, "suppressed"] and pd.isna(out.loc[1, "effect_size"])  # the clinic is a complement
    assert not out.loc[2, "suppressed"] and out.loc[2, "effect_size"] == 0.06
    # Holm over the one published pairwise test: p_adjusted = p_value (the withheld one gave nothing away)
    assert out.loc[2, "p_adjusted"] == pytest.approx(0.01) and "recomputed" in out.loc[2, "adjust_method"]
    # a global test recomputed over the published groups only is published
    groups = published_groups(run, "audited", "family", "2025", counts)
    assert groups == ["CH", "EHPAD"]
    recomputed = tests.iloc[[0]].assign(group_a="|".join(groups), n_a=53)
    assert not publish(recomputed, "tests_cohorts", run)["suppressed"].item()


def test_global_test_over_all_covers_the_pairwise_groups(run):
    publish(indicators({"CH": 8, "CHU/CHR": 3, "EHPAD": 45, CLINIC: 6}), "indicators", run)
    rows = [("all", None, "kruskal_wallis"), ("EHPAD", "CH", "dunn"), ("CHU/CHR", "CH", "dunn")]
    tests = pd.DataFrame([{"study": "cohorts", "metric": "findings_per_host", "test": t, "variant": "", "group_a": a,
                           "group_b": b, "n_a": 62, "n_b": None, "p_value": 0.01, "effect_size": 0.3,
                           "period": "2025"} for a, b, t in rows])  # fmt: skip
    out = publish(tests, "tests_cohorts", run)
    assert out["suppressed"].tolist() == [True, False, True]


def test_odds_ratio_table_total_minus_exposed(run):
    """Issue 16: in the incidents odds-ratio table, total − exposed left one unexposed establishment with an
    incident."""
    odds = pd.DataFrame({
        "exposure": ["kev_or_remote_admin", "has_kev"], "odds_ratio": [3.7, 1.5], "ci_low": 0.3, "ci_high": 40.0,
        "p_value": 0.3, "crude_odds_ratio": [3.2, 1.7], "n": 93, "n_exposed": [62, 50], "events": [7, 12],
        "events_exposed": [6, 6], "n_dropped_missing": 0, "covariates": "family", "window_days": 365,
        "audit_choice": "first", "separation": False, "model": "logistic", "ci_method": "wald"})  # fmt: skip
    odds = pd.concat(
        [
            odds,
            odds.iloc[[1]].assign(exposure="no_protection", n_exposed=90),
            odds.iloc[[1]].assign(exposure="exposes_remote_admin", events_exposed=4),
        ],
        ignore_index=True,
    )
    out = publish(odds, "incidents_odds_ratios", run).set_index("exposure")
    # 6 / 56 / 1 / 30: the interior counts and the crude ratio go (events - events_exposed = 1 unexposed)
    kev = out.loc["kev_or_remote_admin"]
    assert kev[["events_exposed", "crude_odds_ratio"]].isna().all() and not kev["suppressed"]
    assert kev["odds_ratio"] == 3.7 and kev["n_exposed"] == 62 and kev["events"] == 7  # margins of 62/31/7/86
    assert not out.loc["has_kev", "suppressed"] and out.loc["has_kev", "events_exposed"] == 6  # 6/44/6/37
    # 4 exposed establishments with an incident: an interior cell, not a margin: the model's ratio stays
    remote = out.loc["exposes_remote_admin"]
    assert not remote["suppressed"] and pd.isna(remote["events_exposed"]) and remote["odds_ratio"] == 1.5
    # 90 exposed of 93: 3 unexposed establishments, a margin below 5: the whole row is withheld
    assert (
        out.loc["no_protection", "suppressed"]
        and out.loc["no_protection", ["odds_ratio", "n_exposed"]].isna().all()
    )
    tests = pd.DataFrame({"study": "incidents", "metric": "incident_within_365d", "test": "logistic",
                          "variant": "", "group_a": ["kev_or_remote_admin=True", "has_kev=True", "no_protection=True",
                                                     "exposes_remote_admin=True"],
                          "group_b": "False", "n_a": 93, "statistic": 1.0, "p_value": 0.3,
                          "effect_size": [3.7, 1.5, 2.0, 1.5]})  # fmt: skip
    out_tests = publish(tests, "incidents_tests", run)
    assert out_tests["suppressed"].tolist() == [False, False, True, False]  # as in the odds-ratio table


def test_per_establishment_rows_refused_in_published_runs(run, tmp_path):
    """Issue 16: lifecycle.csv had one row per establishment of families of 2-4 establishments."""
    lifecycle = pd.DataFrame({"establishment": ["E1", "E2"], "family": ["Army", "Army"], "audit_from": ["a", "b"],
                              "audit_to": ["c", "d"], "days": [200, 300], "n_new": [1, 2]})  # fmt: skip
    with pytest.raises(PerEstablishmentTableError, match="lifecycle_by_family"):
        publish(lifecycle, "lifecycle", run)
    assert not (run / "tables" / "lifecycle.csv").exists()
    # any other table carrying an identifier is refused too
    with pytest.raises(IdentifyingColumnError, match="finess"):
        publish(indicators({"CH": 9}).assign(finess="014053177"), "indicators", run)
    # a confidential report keeps them
    confidential = tmp_path / "confidential"
    kept = publish_table(lifecycle, "lifecycle", confidential, published=False, min_cell=1)
    assert kept.equals(lifecycle) and (confidential / "tables" / "lifecycle.csv").is_file()


def test_lifecycle_aggregate_per_family(run):
    table = pd.DataFrame({"family": ["Army", "CH", "EHPAD", "all"], "n_establishments": [2, 10, 40, 52],
                          "n_pairs": [3, 15, 60, 78], "n_new": [5, 30, 90, 125]})  # fmt: skip
    out = publish(table, "lifecycle_by_family", run).set_index("family")
    assert out["suppressed"].tolist() == [True, True, False, False]
    assert out.loc[["Army", "CH"], ["n_establishments", "n_pairs", "n_new"]].isna().all().all()


def test_formula_cells_neutralised_in_every_csv(run, tmp_path):
    """Issue 16: a family or establishment name `=HYPERLINK("http://x","y")` became a live formula."""
    evil = '=HYPERLINK("http://x","y")'
    table = indicators({"CH": 9, evil: 12, "EHPAD": 40}).assign(
        ci_low=lambda t: -t["value"], ci_method=lambda t: np.where(t["group"] == "CH", "@SUM(A1)", "+1")
    )
    publish(table, "indicators", run)
    text = (run / "tables" / "indicators.csv").read_text()
    back = published_csv(run, "indicators")
    assert f"'{evil}".replace('"', '""') in text and "\n" + evil not in text and "," + evil not in text
    assert set(back["ci_method"]) == {"'@SUM(A1)", "'+1"}
    assert (pd.to_numeric(back["ci_low"]) <= 0).all()  # negative numbers stay numbers
    # the confidential path (establishment report) too
    save_table(pd.DataFrame({"name": ["-cmd|' /C calc'!A0", "CH X"], "delta": [-3, 2]}), "audits", tmp_path)
    saved = pd.read_csv(tmp_path / "tables" / "audits.csv")
    assert saved["name"].tolist() == ["'-cmd|' /C calc'!A0", "CH X"] and saved["delta"].tolist() == [-3, 2]


def test_min_cell_floor_and_run_marker_win(run, tmp_path):
    """Issue 16: `-p min_cell=1` published single-establishment cells; `-p published=false` on a published
    parameter file wrote raw values while the manifest said published."""
    table = indicators({"CH": 9, "CHU/CHR": 1, "EHPAD": 46})
    with pytest.raises(MinCellBelowFloorError, match="floor of 5"):
        publish_table(table, "indicators", tmp_path / "x", published=True, min_cell=1)
    # the run marker says published: an argument published=False does not switch the policy off
    out = publish_table(table, "indicators", run, published=False, min_cell=5)
    assert out.loc[out["group"] == "CHU/CHR", "suppressed"].all()
    # nor can a lower min_cell lower the run's: the larger wins
    out = publish_table(table, "indicators", run, published=True, min_cell=1)
    assert out.loc[out["group"] == "CHU/CHR", "suppressed"].all()
    marker = run / ".cyberobs" / "run.json"
    marker.write_text(json.dumps({"published": True, "min_cell": 10}))
    forget_ledger(run)
    (run / ".cyberobs" / "ledger.json").unlink()
    out = publish_table(
        indicators({"CH": 9, "EHPAD": 46, "SSR": 12}), "indicators", run, published=True, min_cell=5
    )
    assert out.loc[out["group"] == "CH", "suppressed"].all()  # 9 < 10


def test_unknown_table_refused_only_when_published(run, tmp_path):
    with pytest.raises(UnknownTableError, match="no declared publication policy"):
        publish(pd.DataFrame({"group": ["CH"], "n": [3]}), "brand_new_table", run)
    out = publish_table(pd.DataFrame({"n": [3]}), "brand_new_table", tmp_path, published=False, min_cell=5)
    assert out["n"].tolist() == [3]


def test_registry_counts_are_not_over_suppressed(run):
    """The public registry count of CHU/CHR (from the public FINESS) is published; the audited part is not."""
    coverage = pd.DataFrame({"indicator": "audit_coverage", "group": ["CH", "CHU/CHR", "EHPAD", "SSR", "all"],
                             "period": "2025", "n_establishments": [24, 6, 96, 12, 138],
                             "n_audits": [10, 4, 56, 8, 78], "value": [9 / 24, 3 / 6, 46 / 96, 7 / 12, 65 / 138],
                             "ci_low": 0.1, "ci_high": 0.9, "ci_method": "wilson"})  # fmt: skip
    out = publish(coverage, "indicators", run).set_index("group")
    assert out["n_establishments"].tolist() == [24, 6, 96, 12, 138]  # never blanked
    assert out.loc["CHU/CHR", "suppressed"] and pd.isna(out.loc["CHU/CHR", "value"])  # 3 audited
    assert out.loc["SSR", "suppressed"]  # the complement (7 audited) in the audited population
    assert not out.loc["EHPAD", "suppressed"] and out.loc["EHPAD", "value"] == pytest.approx(46 / 96)


def test_model_terms_over_hidden_levels(run):
    publish(indicators({"CH": 9, "CHU/CHR": 3, "EHPAD": 46, CLINIC: 7}), "indicators", run)
    published_groups(run, "cohort_model", "region", "2025", {"11": 30, "53": 2, "84": 33})
    ratios = pd.DataFrame({
        "term": ["family", "family", "family", "region", "region", "log_beds"],
        "level": ["CHU/CHR", "EHPAD", CLINIC, "53", "84", None], "reference": ["CH", "CH", "CH", "11", "11", None],
        "rate_ratio": [2.0, 1.3, 0.6, 1.1, 0.9, 1.5], "p_value": [0.1, 0.4, 0.1, 0.5, 0.6, 0.01],
        "n": 65, "n_family": [3, 46, 7, None, None, None], "n_reference": [9, 9, 9, None, None, None],
        "outcome": "n_findings", "p_adjusted": [0.2, 0.4, 0.2, None, None, None], "period": "2025"})  # fmt: skip
    out = publish(ratios, "rate_ratios", run)
    assert out["suppressed"].tolist() == [True, False, True, True, True, False]  # region 53 (2) hides 84 too
    assert out["n"].isna().all()  # n = 65 minus the published levels would give the hidden ones back
    assert out.loc[1, "rate_ratio"] == 1.3 and out.loc[1, "p_adjusted"] == pytest.approx(0.4)


# ---- ledger ------------------------------------------------------------------------------------------


def test_ledger_persists_in_the_run_and_decisions_are_final(run):
    publish(indicators({"CH": 9, "CHU/CHR": 3, "EHPAD": 46, CLINIC: 7}), "indicators", run)
    saved = json.loads((run / ".cyberobs" / "ledger.json").read_text())
    status = {tuple(c["key"]): (c["status"], c["reason"]) for c in saved["cells"]}
    assert status[("audited", "family", "CHU/CHR", "2025")] == ("hidden", "primary")
    assert status[("audited", "family", CLINIC, "2025")] == ("hidden", "secondary")
    forget_ledger(run)  # another notebook (another kernel) reads the file
    again = publish(
        indicators({"CH": 9, "CHU/CHR": 3, "EHPAD": 46, CLINIC: 7}, seed=3), "annual_indicators", run
    )
    assert set(again.loc[again["suppressed"], "group"]) == {"CHU/CHR", CLINIC}


def test_ledger_refuses_to_leave_a_pinned_cell():
    ledger = Ledger(5)
    ledger.decide(
        [Observation(("a", "family", g, "2025"), n) for g, n in {"CH": 9, "EHPAD": 46, "all": 58}.items()]
    )
    # a later table shows the missing group (3): total - published groups = 3, and nothing left to hide
    with pytest.raises(DisclosureError, match="published_groups"):
        ledger.decide([Observation(("a", "family", "CHU/CHR", "2025"), 3)])


def test_all_ones_are_pinned_too():
    """Two hidden cells adding up to 2 are both 1 (hidden counts are at least 1): a third one is hidden."""
    ledger = Ledger(5)
    counts = {"A": 1, "B": 1, "C": 20, "D": 30, "E": 8, "all": 60}
    ledger.decide([Observation(("p", "family", g, "all"), n) for g, n in counts.items()])
    assert {g for g in counts if ledger.status(("p", "family", g, "all")) == "hidden"} == {"A", "B", "E"}


def test_unknown_population_cells_are_withheld_with_a_warning(run):
    medians = pd.DataFrame({"group": ["critical", "high"], "n": [280, 586], "median_days": [37.0, 79.0],
                            "model": "weibull", "ci_method": "delta"})  # fmt: skip
    with pytest.warns(UserWarning, match="withheld"):
        out = publish(medians, "remediation_interval_medians", run)
    assert out["suppressed"].all() and out["median_days"].isna().all()
    published_groups(run, "followed", "family", "all", {"CH": 10, "EHPAD": 64})
    out = publish(medians, "remediation_interval_medians", run)
    assert not out["suppressed"].any()


def test_hidden_cells_together_must_not_be_a_small_cell():
    """Hiding 1 and 2 establishments publishes their union (total - the others = 3 establishments)."""
    ledger = Ledger(5)
    counts = {"A": 1, "B": 2, "C": 20, "D": 30, "all": 53}
    ledger.decide([Observation(("p", "family", g, "all"), n) for g, n in counts.items()])
    hidden = {g for g in counts if ledger.status(("p", "family", g, "all")) == "hidden"}
    assert hidden == {"A", "B", "C"}


def test_hidden_groups_of_life_tables_keep_one_row_without_times(run):
    """The times of a hidden family's survival curve are the days its findings were fixed."""
    published_groups(run, "followed", "family", "all", {"CH": 10, "EHPAD": 64, "Army": 2, "SSR": 6})
    survival = pd.DataFrame({"group": ["CH", "CH", "Army", "Army", "Army", "SSR"], "time_days": [0, 76, 0, 13, 41, 5],
                             "survival": [1, 0.9, 1, 0.5, 0.2, 0.8], "at_risk": [50, 45, 3, 2, 1, 9],
                             "events": [0, 5, 0, 1, 1, 1], "censored": 0,
                             "n_establishments": [10, 10, 2, 2, 2, 6]})  # fmt: skip
    out = publish(survival, "survival", run)
    assert out["group"].tolist() == ["CH", "CH", "Army", "SSR"]  # one row for each hidden family
    assert out.loc[out["group"] == "Army", ["time_days", "survival", "n_establishments"]].isna().all().all()
    assert not out.loc[out["group"] == "CH", "suppressed"].any() and out["time_days"].iloc[1] == 76


def test_summarise_by_group_then_publish(run):
    from cyberobs_lib.studies.publish import summarise_by_group

    pairs = pd.DataFrame({"establishment": [f"E{i}" for i in range(12)], "family": ["Army"] * 2 + ["CH"] * 10,
                          "n_new": 1, "n_fixed": 2, "days": 200})  # fmt: skip
    table = summarise_by_group(pairs, sums=["n_new", "n_fixed"], medians=["days"])
    out = publish(table, "lifecycle_by_family", run).set_index("family")
    # Army (2) hidden, and CH as its complement: CH alone = all - Army
    assert out["suppressed"].tolist() == [True, True, False]
    assert out.loc["all", "n_fixed"] == 24 and "establishment" not in out.columns


def test_summarise_by_group_median_of_nothing_known_is_nan_without_a_warning():
    """A metric nobody measured (the corpus campaign's scope drift) gives an empty median, not a numpy
    "Mean of empty slice" warning printed on the published page."""
    import warnings

    from cyberobs_lib.studies.publish import summarise_by_group

    pairs = pd.DataFrame({"establishment": ["E1", "E2", "E3"], "family": ["CH", "CH", "SSR"], "n_new": 1,
                          "days": [10.0, 30.0, np.nan], "scope_drift": pd.array([None] * 3, dtype="Float64")})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = summarise_by_group(pairs, sums=["n_new"], medians=["days", "scope_drift"]).set_index("family")
    assert table["median_scope_drift"].isna().all()
    assert table.loc["CH", "median_days"] == 20.0 and np.isnan(table.loc["SSR", "median_days"])
    assert table.loc["all", "median_days"] == 20.0


def test_side_by_side_rows_hide_each_population_apart(run):
    """Exposure shares (audited) and declaration rates (declaring) of one row are two cells: a hidden one
    does not blank the other, which another table publishes anyway."""
    published_groups(run, "audited", "family", "2025", {"CH": 3, "EHPAD": 40, "SSR": 12})
    published_groups(run, "declaring", "family", "2025", {"CH": 9, "EHPAD": 2, "SSR": 3})
    side = pd.DataFrame({"group": ["CH", "EHPAD", "SSR", "all"], "period": "2025", "audited": [3, 40, 12, 55],
                         "has_kev": [0.3, 0.5, 0.6, 0.5], "eligible": [24, 96, 12, 132],
                         "declarations": [9, 2, 3, 14], "incident_rate_per_1000": [375.0, 20.8, 250.0, 106.1]})  # fmt: skip
    out = publish(side, "incidents_side_by_side", run).set_index("group")
    assert pd.isna(out.loc["CH", "has_kev"]) and out.loc["CH", "declarations"] == 9
    assert out.loc["CH", "suppressed_part"] == "audited" and not out.loc["CH", "suppressed"]
    assert pd.isna(out.loc["EHPAD", "declarations"]) and out.loc["EHPAD", "has_kev"] == 0.5
    assert out["eligible"].tolist() == [24, 96, 12, 132]  # the registry counts stay


def test_zero_event_counts_are_published_on_hidden_populations(run):
    """A national count of 0 ransomware attacks gives every family's 0: those zeros are empty cells."""
    rows = [{"indicator": ind, "group": g, "period": "2025", "n_establishments": n, "value": v}
            for ind in ("declarations", "ransomware")
            for g, n, v0 in [("CH", 2, 3), ("EHPAD", 9, 9), ("SSR", 1, 1), ("all", 12, 13)]
            for v in [v0 if ind == "declarations" else 0]]  # fmt: skip
    out = publish(pd.DataFrame(rows).assign(ci_method="garwood_exact"), "incidents_indicators", run)
    ransomware = out[out["indicator"] == "ransomware"].set_index("group")
    assert (ransomware["value"] == 0).all() and not ransomware["suppressed"].any()
    assert (
        ransomware.loc[["CH", "SSR"], "n_establishments"].isna().all()
    )  # the declaring structures stay hidden
    declarations = out[out["indicator"] == "declarations"].set_index("group")
    assert declarations.loc[["CH", "SSR"], "value"].isna().all() and declarations.loc["CH", "suppressed"]
    # a total of 1: the zeros of the other hidden groups would pin the one with the attack, they stay hidden
    again = pd.DataFrame(rows).assign(ci_method="garwood_exact", period="2024")
    again.loc[(again["indicator"] == "ransomware") & again["group"].isin(["SSR", "all"]), "value"] = 1
    out = publish(again, "incidents_indicators", run)
    ransomware = out[out["indicator"] == "ransomware"].set_index("group")
    assert (
        ransomware.loc[["CH", "SSR"], "value"].isna().all()
        and ransomware.loc[["CH", "SSR"], "suppressed"].all()
    )


def test_zero_over_every_year_gives_zero_over_all_years(run):
    """Army: 0 attacks shown in 2024 (a total of 0) and in 2025 (no declaring structure): its 'all' is 0."""
    counts = {"2024": {"Army": 1, "CH": 9, "all": 10}, "2025": {"Army": 0, "CH": 8, "all": 8},
              "all": {"Army": 1, "CH": 12, "all": 13}}  # fmt: skip
    attacks = {"2024": {"Army": 0, "CH": 0, "all": 0}, "2025": {"Army": 0, "CH": 2, "all": 2},
               "all": {"Army": 0, "CH": 2, "all": 2}}  # fmt: skip
    rows = [{"indicator": ind, "group": g, "period": per, "n_establishments": n,
             "value": n if ind == "declarations" else attacks[per][g]}
            for per, by_group in counts.items() for ind in ("declarations", "ransomware")
            for g, n in by_group.items()]  # fmt: skip
    out = publish(pd.DataFrame(rows).assign(ci_method="garwood_exact"), "incidents_indicators", run)
    army = out[(out["indicator"] == "ransomware") & (out["group"] == "Army")].set_index("period")
    assert (army["value"] == 0).all() and not army["suppressed"].any()
    assert pd.isna(army.loc["all", "n_establishments"])  # Army's declaring structure stays hidden


def test_zero_over_all_years_gives_zero_every_year(run):
    """CH: 0 attacks over all years (published, 6 structures): its hidden year is 0 as well, shown as such."""
    counts = {"2024": {"CH": 2, "EHPAD": 9, "all": 11}, "all": {"CH": 6, "EHPAD": 12, "all": 18}}
    attacks = {"2024": {"CH": 0, "EHPAD": 2, "all": 2}, "all": {"CH": 0, "EHPAD": 2, "all": 2}}
    rows = [{"indicator": ind, "group": g, "period": per, "n_establishments": n,
             "value": n if ind == "declarations" else attacks[per][g]}
            for per, by_group in counts.items() for ind in ("declarations", "ransomware")
            for g, n in by_group.items()]  # fmt: skip
    out = publish(pd.DataFrame(rows).assign(ci_method="garwood_exact"), "incidents_indicators", run)
    ch = out[(out["indicator"] == "ransomware") & (out["group"] == "CH")].set_index("period")
    assert ch.loc["2024", "value"] == 0 and pd.isna(ch.loc["2024", "n_establishments"])
    ehpad = out[(out["indicator"] == "ransomware") & (out["group"] == "EHPAD")].set_index("period")
    assert pd.isna(ehpad.loc["2024", "value"])  # the complement of CH 2024 stays hidden: its 2 attacks


def test_sub_counts_of_hidden_cells_may_be_zero_and_small():
    """Counts of establishments *with a property* (a known status) inside hidden cells: a hidden cell may
    hold none (bound 0, not 1), and 1 such establishment in a hidden union of 7 is not a small cell. Before,
    the ledger read {CH: 0, clinic: 1, all: 1} as pinning both hidden cells and refused the table
    (DisclosureError on the corpus dataset)."""
    from cyberobs_lib.disclosure.ledger import hidden_intervals, pinned_cells

    counts = {"CH": 0, "EHPAD": 0, "clinic": 1, "all": 1}
    hidden = {"CH", "clinic"}
    assert hidden_intervals(counts, hidden, at_least_one=False) == {"CH": (0.0, 1.0), "clinic": (0.0, 1.0)}
    assert pinned_cells(counts, hidden, complete=True, at_least_one=False) == set()
    # population counts: a hidden cell holds at least one establishment, so one hidden cell is pinned
    assert pinned_cells({"CH": 2, "EHPAD": 13, "all": 15}, {"CH"}, complete=True) == {"CH"}


def _share_rows(
    shares: dict[str, tuple[int, float]], indicator: str = "exposes_remote_admin"
) -> pd.DataFrame:
    rows = [{"indicator": indicator, "group": g, "period": "2025", "n_establishments": n, "n_audits": n,
             "value": v, "ci_low": max(v - 0.1, 0), "ci_high": min(v + 0.1, 1), "ci_method": "wilson"}
            for g, (n, v) in shares.items()]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("hidden_share", [0.0, 1.0])
def test_hidden_shares_the_published_rows_give_are_published_without_their_size(run, hidden_share):
    """Army (2) and SSR (3) hidden: the total's 16 (or 21) establishments with the property minus the
    published groups' 16 leaves 0 (or all 5) in the hidden groups, so each hidden share is 0 (or 1): a reader
    recomputes it. It is published; the count and the interval (which would give the size) stay hidden."""
    n_with = 16 + round(hidden_share * 5)
    frame = _share_rows({"CH": (30, 0.2), "EHPAD": (40, 0.25), "Army": (2, hidden_share),
                         "SSR": (3, hidden_share), "all": (75, n_with / 75)})  # fmt: skip
    out = publish(frame, "indicators", run).set_index("group")
    assert out.loc[["Army", "SSR"], "value"].tolist() == [hidden_share, hidden_share]
    hidden = out.loc[["Army", "SSR"], ["n_establishments", "n_audits", "ci_low", "ci_high"]]
    assert hidden.isna().all().all() and not out.loc[["Army", "SSR"], "suppressed"].any()


def test_hidden_shares_not_implied_stay_hidden(run):
    """One of the 5 hidden establishments has the property: Army's share (0 or 0.5) and SSR's are unknown."""
    frame = _share_rows({"CH": (30, 0.2), "EHPAD": (40, 0.25), "Army": (2, 0.5), "SSR": (3, 0.0),
                         "all": (75, 17 / 75)})  # fmt: skip
    out = publish(frame, "indicators", run).set_index("group")
    assert out.loc[["Army", "SSR"], "value"].isna().all()
    # not a share: a median is never implied by the margins
    medians = _share_rows({"CH": (30, 2.0), "EHPAD": (40, 1.0), "Army": (2, 0.0), "SSR": (3, 0.0),
                           "all": (75, 1.0)}, indicator="median_crit_high").assign(ci_method="order_statistic")  # fmt: skip
    out = publish(medians, "indicators", run).set_index("group")
    assert out.loc[["Army", "SSR"], "value"].isna().all()


def test_zero_events_left_for_the_hidden_groups_are_published(run):
    """4 attacks in all, 4 in the published groups: the hidden groups (Army, SSR) had none."""
    groups = [("CH", 12, 3), ("EHPAD", 20, 1), ("Army", 2, 0), ("SSR", 3, 0), ("all", 37, 4)]
    rows = [{"indicator": ind, "group": g, "period": "2025", "n_establishments": n,
             "value": (n if ind == "declarations" else k)} for ind in ("declarations", "ransomware")
            for g, n, k in groups]  # fmt: skip
    out = publish(pd.DataFrame(rows).assign(ci_method="garwood_exact"), "incidents_indicators", run)
    ransomware = out[out["indicator"] == "ransomware"].set_index("group")
    assert (ransomware.loc[["Army", "SSR"], "value"] == 0).all()
    assert ransomware.loc[["Army", "SSR"], "n_establishments"].isna().all()


def test_national_coverage_publishes_the_public_count_and_hides_a_small_audited_cell(run):
    """Coverage against the nation: the FINESS count is public; the audited count is the dataset's cell."""
    frame = pd.DataFrame({"indicator": "national_coverage", "group": ["CH", "Army", "EHPAD", "all"],
                          "family": ["CH", "Army", "EHPAD", "all"], "period": "2025",
                          "n_establishments": [1501, 11, 7501, 9013], "n_audits": [60, 3, 90, 153],
                          "value": [40 / 1501, 2 / 11, 80 / 7501, 122 / 9013], "ci_low": 0.0, "ci_high": 0.5,
                          "ci_method": "clopper_pearson", "audited": [40, 2, 80, 122],
                          "eligible": [1501, 11, 7501, 9013], "reference_date": "2021-01-08",
                          "reference_source": "FINESS", "note": ""})  # fmt: skip
    out = publish(frame, "cohorts_national_coverage", run).set_index("group")
    assert out["eligible"].tolist() == [1501, 11, 7501, 9013]  # public counts stay
    assert out.loc[["Army"], ["audited", "value", "n_audits"]].isna().all().all()
    # Army alone would be all - CH - EHPAD: a complement is hidden too
    assert out.loc[["CH", "EHPAD"], "audited"].isna().sum() == 1


def test_a_sub_count_whose_total_row_is_withheld_pins_nothing(run):
    """The corpus as one dataset (20 establishments): the protection status is known for one audited
    establishment only. The rows of that indicator say 1 for its family and for ``all``, 0 elsewhere; the
    small-count rule withholds both 1s, so no total is published to subtract from, and the zeros of the
    hidden families pin nothing. The table used to raise DisclosureError."""
    counts = {"CH": 2, "EHPAD": 4, "HAD": 1, "Psychiatry": 6, "Other health": 3, "SSR": 7}
    published_groups(run, "audited", "family", "2025", counts)
    frame = indicators(counts, names=("has_critical",))
    known = indicators({g: int(g == "Psychiatry") for g in counts}, names=("no_protection",))
    out = publish(pd.concat([frame, known], ignore_index=True), "indicators", run)
    rows = out[out["indicator"] == "no_protection"].set_index("group")
    assert rows.loc["all", "suppressed"] and pd.isna(rows.loc["all", "n_establishments"])
    assert rows.loc["Psychiatry", "suppressed"] and pd.isna(rows.loc["Psychiatry", "value"])
    crit = out[out["indicator"] == "has_critical"].set_index("group")
    assert not crit.loc["all", "suppressed"] and crit.loc["all", "n_establishments"] == 23
    assert crit.loc[["CH", "EHPAD", "HAD", "Other health"], "suppressed"].all()
