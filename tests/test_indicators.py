"""Tests of cyberobs_lib.studies.indicators on a hand-made registry of 7 establishments.

Every expected value below is counted by hand from the tables in ``_tables()`` (comments give the
arithmetic); interval limits come from the closed forms cited next to them (Wilson 1927; Garwood 1936 as
printed by R ``poisson.test``; binomial order statistics, Conover 1999 §3.2).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.disclosure import SecrecyRule, suppress_small_cells
from cyberobs_lib.schema import INDICATORS_COLUMNS
from cyberobs_lib.studies.indicators import (
    METRICS_COLUMNS,
    audit_metrics,
    compute_indicators,
    coverage,
    median_interval,
    select_audits,
)

Z = 1.959963984540054


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson (1927) score limits, written out (Newcombe 1998a, method 3)."""
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def _tables() -> dict[str, pd.DataFrame]:
    est = pd.DataFrame(
        {
            "finess": ["E1", "E2", "E3", "E4", "E5", "E6", "E7"],
            "family": ["CH", "CH", "CH", "EHPAD", "EHPAD", "EHPAD", "EHPAD"],
            "legal_status": ["public"] * 4 + ["private_forprofit"] * 3,
            "region": ["11", "11", "84", "84", "11", "84", "11"],
            "beds": [400, 200, 0, 80, 60, None, 90],
        }
    )
    aud = pd.DataFrame(
        {
            "audit_id": ["A1", "A1b", "A2", "A3", "A4", "A5", "A6", "A9"],
            "finess": ["E1", "E1", "E2", "E3", "E4", "E5", "E6", "NOT_IN_REGISTRY"],
            "audit_date": ["2024-01-10", "2024-06-10", "2024-02-01", "2024-03-01", "2024-01-05", "2024-04-01",
                           "2023-05-01", "2024-01-01"],
            "hosts_in_scope": [4, 4, 2, 0, 1, 3, 2, 5],
        }
    )  # fmt: skip
    fnd = pd.DataFrame(
        [
            ("A1", "critical", "exposed_remote_admin", False),
            ("A1", "high", "other", False),
            ("A1", "medium", "tls_certificate", False),
            ("A1b", "low", "other", False),
            ("A2", "high", "unpatched_software", True),  # KEV through the enrichment flag
            ("A2", "info", "other", False),
            ("A4", "critical", "known_exploited", False),  # KEV through the category
            ("A5", "medium", "other", False),
            ("A5", "medium", "other", False),
            ("A5", "medium", "other", False),
            ("A5", "high", "other", False),
            ("A6", "critical", "other", False),
            ("A6", "critical", "other", False),
            ("A9", "critical", "other", False),
        ],
        columns=["audit_id", "severity", "category", "known_exploited"],
    )
    prot = pd.DataFrame(
        {
            "audit_id": ["A1", "A1b", "A2", "A4", "A5", "A6"],  # A3 has no status: unknown
            "no_protection": pd.array([True, False, False, True, True, False], dtype="boolean"),
        }
    )
    return {"establishments": est, "audits": aud, "findings": fnd, "protection": prot}


@pytest.fixture
def metrics() -> pd.DataFrame:
    return audit_metrics(_tables())


def _row(table: pd.DataFrame, indicator: str, group: str, period: str) -> pd.Series:
    hit = table[(table.indicator == indicator) & (table.group == group) & (table.period == period)]
    assert len(hit) == 1, (indicator, group, period)
    return hit.iloc[0]


# --- audit_metrics -------------------------------------------------------------------------------------


def test_audit_metrics_counts_flags_and_denominators(metrics):
    assert list(metrics.columns) == list(METRICS_COLUMNS)
    m = metrics.set_index("audit_id")
    assert "A9" not in m.index  # audit of an establishment outside the registry
    assert m.loc["A1", ["n_findings", "n_critical", "n_high", "n_crit_high", "n_kev"]].tolist() == [
        3,
        1,
        1,
        2,
        0,
    ]
    assert m.loc["A1", "exposes_remote_admin"] and m.loc["A1", "has_critical"]
    assert m.loc["A2", "n_kev"] == 1 and m.loc["A2", "has_kev"]  # known_exploited flag
    assert m.loc["A4", "n_kev"] == 1 and m.loc["A4", "has_kev"]  # category known_exploited
    assert m.loc["A3", "n_findings"] == 0 and not m.loc["A3", "has_critical"]  # audit without findings
    assert np.isnan(m.loc["A3", "findings_per_host"])  # no host in scope
    assert m.loc["A5", "findings_per_host"] == pytest.approx(4 / 3)
    assert pd.isna(m.loc["A3", "no_protection"])  # no protection row: unknown, not "none"
    assert m.loc["A1", "no_protection"] and not m.loc["A2", "no_protection"]
    assert m.loc["A1", "year"] == 2024 and m.loc["A6", "year"] == 2023
    assert m.loc["A1", "log_beds"] == pytest.approx(math.log(400))
    assert np.isnan(m.loc["A3", "log_beds"]) and np.isnan(m.loc["A6", "log_beds"])  # 0 beds, unknown beds


def test_audit_metrics_does_not_mutate_and_falls_back_to_controls():
    tables = _tables()
    before = {k: v.copy() for k, v in tables.items()}
    del tables["protection"]
    tables["controls"] = pd.DataFrame(
        {"audit_id": ["A1", "A1", "A2"], "control": ["waf", "hsts", "waf"], "present": [False, False, True]}
    )
    m = audit_metrics(tables).set_index("audit_id")
    assert bool(m.loc["A1", "no_protection"])  # nothing present
    assert not m.loc["A2", "no_protection"]  # a WAF is present
    assert pd.isna(m.loc["A4", "no_protection"])  # no controls row
    for name in ("establishments", "audits", "findings"):
        pd.testing.assert_frame_equal(tables[name], before[name])


def test_audit_metrics_without_findings_gives_zero_counts():
    tables = _tables()
    tables["findings"] = None
    m = audit_metrics(tables)
    assert (m["n_findings"] == 0).all() and not m["has_critical"].any()


def test_audit_metrics_needs_establishments_and_audits():
    with pytest.raises(ValueError, match="establishments"):
        audit_metrics({"audits": _tables()["audits"]})


# --- select_audits -------------------------------------------------------------------------------------


def test_select_audits_one_per_establishment(metrics):
    first = select_audits(metrics, period=2024)
    assert first["audit_id"].tolist() == ["A1", "A2", "A3", "A4", "A5"]  # A1 before A1b; A6 is 2023
    last = select_audits(metrics, period=2024, audit_choice="last")
    assert "A1b" in set(last["audit_id"]) and "A1" not in set(last["audit_id"])
    assert select_audits(metrics)["audit_id"].tolist() == ["A1", "A2", "A3", "A4", "A5", "A6"]
    with pytest.raises(ValueError, match="audit_choice"):
        select_audits(metrics, audit_choice="middle")


# --- compute_indicators --------------------------------------------------------------------------------


def test_indicator_shares_by_hand(metrics):
    out = compute_indicators(metrics, rate_ci="poisson_exact")
    assert list(out.columns) == list(INDICATORS_COLUMNS)
    # period 2024, first audits A1 A2 A3 (CH) and A4 A5 (EHPAD)
    expected = {  # (indicator, group): (successes, n)
        ("no_protection", "CH"): (1, 2),  # A1 yes, A2 no, A3 unknown (left out)
        ("no_protection", "EHPAD"): (2, 2),
        ("no_protection", "all"): (3, 4),
        ("has_critical", "CH"): (1, 3),  # A1
        ("has_critical", "EHPAD"): (1, 2),  # A4
        ("has_critical", "all"): (2, 5),
        ("exposes_remote_admin", "CH"): (1, 3),
        ("exposes_remote_admin", "EHPAD"): (0, 2),
        ("has_kev", "CH"): (1, 3),  # A2
        ("has_kev", "EHPAD"): (1, 2),  # A4
    }
    for (indicator, group), (x, n) in expected.items():
        row = _row(out, indicator, group, "2024")
        low, high = wilson(x, n)
        assert row.value == pytest.approx(x / n)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-9)
        assert row.n_establishments == n and row.ci_method == "wilson" and not row.suppressed
    # n_audits counts every audit of the period before one is chosen: CH has A1, A1b, A2, A3
    assert _row(out, "has_critical", "CH", "2024").n_audits == 4
    assert _row(out, "has_critical", "all", "2024").n_audits == 6
    # all years, first audit of each establishment: EHPAD gains A6 (2 criticals)
    assert _row(out, "has_critical", "EHPAD", "all").value == pytest.approx(2 / 3)
    assert _row(out, "has_critical", "EHPAD", "2023").value == 1.0


def test_indicator_last_audit_choice(metrics):
    out = compute_indicators(metrics, periods=[2024], overall=False, audit_choice="last")
    assert _row(out, "has_critical", "CH", "2024").value == 0.0  # A1b (one low finding) replaces A1
    assert _row(out, "no_protection", "CH", "2024").value == 0.0  # A1b: protected, A2: protected


def test_findings_per_host_rate_and_garwood_interval(metrics):
    out = compute_indicators(metrics, periods=[2024], overall=False, rate_ci="poisson_exact")
    ch = _row(out, "findings_per_host", "CH", "2024")
    assert ch.value == pytest.approx(5 / 6) and ch.n_establishments == 2  # (3 + 2) / (4 + 2); A3 has no host
    assert _row(out, "findings_per_host", "EHPAD", "2024").value == pytest.approx(5 / 4)  # (1 + 4) / (1 + 3)
    pooled = _row(out, "findings_per_host", "all", "2024")  # 10 findings over 10 hosts
    # R: poisson.test(10)$conf.int = 4.795389 18.390356 (Garwood), divided by the 10 hosts
    assert (pooled.value, pooled.ci_low, pooled.ci_high) == pytest.approx(
        (1.0, 0.4795389, 1.8390356), abs=1e-6
    )
    assert pooled.ci_method == "garwood_exact"


def test_findings_per_host_bootstrap_is_seeded(metrics):
    a = compute_indicators(metrics, periods=[2024], overall=False, n_boot=500, seed=1)
    b = compute_indicators(metrics, periods=[2024], overall=False, n_boot=500, seed=1)
    pd.testing.assert_frame_equal(a, b)
    row = _row(a, "findings_per_host", "all", "2024")
    # units with hosts: 3/4, 2/2, 1/1, 4/3; a resampled ratio of sums lies between the extreme unit ratios
    assert 0.75 <= row.ci_low <= row.value <= row.ci_high <= 4 / 3
    assert row.ci_method.startswith("bootstrap-percentile") and "seed=1" in row.ci_method


def test_median_crit_high(metrics):
    out = compute_indicators(metrics, periods=[2024], overall=False, rate_ci="poisson_exact")
    row = _row(out, "median_crit_high", "all", "2024")  # crit+high of A1..A5: 2, 1, 0, 1, 1
    assert row.value == 1.0 and np.isnan(row.ci_low)  # n = 5 < 6: no 95 % distribution-free interval
    assert row.ci_method.startswith("order_statistic")


def test_median_interval_reference_values():
    # Campbell & Gardner (Statistics with Confidence, table 18.4): n = 10 -> ranks 2 and 9; n = 6 -> 1 and 6
    assert median_interval(np.arange(1.0, 11.0)) == (5.5, 2.0, 9.0)
    assert median_interval(np.array([6.0, 1, 5, 2, 4, 3])) == (3.5, 1.0, 6.0)
    # n = 20: P(Bin(20, .5) <= 5) = 0.0207 <= 0.025 -> ranks 6 and 15
    assert median_interval(np.arange(1.0, 21.0))[1:] == (6.0, 15.0)
    med, low, high = median_interval(np.array([1.0, 2.0, np.nan]))
    assert med == 1.5 and np.isnan(low) and np.isnan(high)
    assert all(np.isnan(median_interval(np.array([]))))


def test_groups_filter_keeps_all_and_rejects_bad_options(metrics):
    out = compute_indicators(metrics, groups=["EHPAD"], n_boot=50)
    assert set(out.group) == {"EHPAD", "all"}
    assert _row(out, "has_critical", "all", "2024").n_establishments == 5  # "all" still pools CH
    with pytest.raises(KeyError, match="nope"):
        compute_indicators(metrics, by="nope")
    with pytest.raises(ValueError, match="rate_ci"):
        compute_indicators(metrics, rate_ci="normal")


def test_indicators_pass_through_small_cell_suppression(metrics):
    out = compute_indicators(metrics, periods=[2024], overall=False, rate_ci="poisson_exact")
    published = suppress_small_cells(out, rule=SecrecyRule(min_cell=3))
    ehpad = published[(published.group == "EHPAD") & (published.indicator == "has_critical")].iloc[0]
    assert ehpad.suppressed and np.isnan(ehpad.value)  # 2 establishments < 3
    ch = published[(published.group == "CH") & (published.indicator == "has_critical")].iloc[0]
    assert ch.suppressed  # secondary: CH = all - EHPAD would give EHPAD back


# --- coverage ------------------------------------------------------------------------------------------


def test_coverage_against_registry(metrics):
    reg = _tables()["establishments"]
    out = coverage(reg, metrics)
    assert list(out.columns) == list(INDICATORS_COLUMNS)
    ehpad = _row(out, "audit_coverage", "EHPAD", "2024")  # E4, E5 audited of E4..E7
    assert (ehpad.value, ehpad.n_establishments, ehpad.n_audits) == (0.5, 4, 2)
    assert (ehpad.ci_low, ehpad.ci_high) == pytest.approx(wilson(2, 4), abs=1e-9)
    assert _row(out, "audit_coverage", "CH", "2024").value == 1.0  # E1, E2, E3
    assert _row(out, "audit_coverage", "all", "2024").value == pytest.approx(5 / 7)
    assert _row(out, "audit_coverage", "EHPAD", "all").value == 0.75  # E6 audited in 2023
    assert _row(out, "audit_coverage", "EHPAD", "2023").n_audits == 1
    only = coverage(reg, metrics, groups=["CH"], overall=False)
    assert (
        set(only.group) == {"CH", "all"} and _row(only, "audit_coverage", "all", "2024").n_establishments == 7
    )


# --- the same results whatever the representation -----------------------------------------------------


def test_audit_metrics_same_with_categorical_audit_ids():
    # Parquet-read tables hold categorical ids, with categories of audits absent from the findings and
    # rows without an id; the counts per audit are those of the plain-text tables.
    tables = _tables()
    fnd = tables["findings"]
    ids = pd.Categorical([*fnd["audit_id"], None], categories=["A0", *sorted(set(fnd["audit_id"]))])
    cat = pd.concat([fnd, fnd.iloc[[0]]], ignore_index=True).assign(audit_id=ids)
    got = audit_metrics({**tables, "findings": cat})
    pd.testing.assert_frame_equal(got, audit_metrics(tables))


def test_bootstrap_draws_are_those_of_one_call_per_cell(metrics):
    # One family and one period: cells (2024, CH) then (2024, all), same units (A1 = first audit of E1:
    # 3 findings, 4 hosts; A2: 2, 2; A3 has no host). Each cell's replicates are one
    # rng.integers(0, n, (n_boot, n)) draw, in order, whatever the chunking inside.
    ch = metrics[metrics.family == "CH"]
    out = compute_indicators(ch, periods=[2024], overall=False, n_boot=300, seed=5)
    y, e = np.array([3.0, 2.0]), np.array([4.0, 2.0])  # findings, hosts of A1 and A2 (A3: 0 hosts)
    rng = np.random.default_rng(5)
    for group in ("CH", "all"):
        idx = rng.integers(0, 2, size=(300, 2))
        want = np.quantile(y[idx].sum(axis=1) / e[idx].sum(axis=1), [0.025, 0.975])
        row = _row(out, "findings_per_host", group, "2024")
        assert (row.ci_low, row.ci_high) == tuple(want)


def test_a_missing_group_counts_in_all_only(metrics):
    m = metrics.assign(family=metrics.family.astype(object).where(metrics.audit_id != "A4", None))
    out = compute_indicators(m, periods=[2024], overall=False, rate_ci="poisson_exact")
    assert _row(out, "has_critical", "EHPAD", "2024").n_establishments == 1  # E5 (E4's audit has no group)
    assert _row(out, "has_critical", "all", "2024").n_establishments == 5
    assert _row(out, "has_critical", "EHPAD", "2024").n_audits == 1
    assert _row(out, "has_critical", "all", "2024").n_audits == 6  # A1, A1b, A2, A3, A4, A5


def test_audit_metrics_same_order_with_categorical_establishments_and_same_day_audits():
    # Parquet gives categorical FINESS whose categories are not in text order; two audits of E1 on the
    # same day are ordered by audit id ("A1b" < "A1c"), whatever the input order.
    tables = _tables()
    aud = pd.concat([tables["audits"], tables["audits"].iloc[[1]].assign(audit_id="A1c")], ignore_index=True)
    aud = aud.iloc[::-1].reset_index(drop=True)
    want = audit_metrics({**tables, "audits": aud})
    cats = aud.assign(
        finess=pd.Categorical(aud["finess"], categories=sorted(set(aud["finess"]), reverse=True))
    )
    got = audit_metrics({**tables, "audits": cats})
    pd.testing.assert_frame_equal(got, want)
    assert got["audit_id"].tolist()[:3] == ["A1", "A1b", "A1c"]
