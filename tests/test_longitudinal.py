"""Horizontal study on generated data: planted remediation recovered, no effect found where none planted,
perimeter drift never counted as remediation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.demo import DemoScale, generate_dataset
from cyberobs_lib.ingest import ingest_dataset
from cyberobs_lib.l10n import fmt_number
from cyberobs_lib.studies import longitudinal as L
from cyberobs_lib.studies.data import StudyData
from cyberobs_lib.studies.indicators import audit_metrics

SCALE = DemoScale(establishments=700, years=(2023, 2024, 2025), audits_per_establishment=(2, 3))


def _study(tmp_path_factory, *, remediation: bool, seed: int) -> tuple[StudyData, dict]:
    folder = tmp_path_factory.mktemp("remediation" if remediation else "none")
    truth = generate_dataset(folder, seed=seed, scale=SCALE, plant_remediation=remediation)
    result = ingest_dataset(folder, today="2026-01-01")
    data = StudyData(
        folder, result.tables, result.rejects, result.accounting, result.check.violations, result.summary
    )
    return data, truth


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _study(tmp_path_factory, remediation=True, seed=21)


@pytest.fixture(scope="module")
def unplanted(tmp_path_factory):
    return _study(tmp_path_factory, remediation=False, seed=22)


def test_planted_remediation_is_detected(planted):
    data, truth = planted
    tests = L.paired_tests(audit_metrics(data), pairing="first_last", min_days=90)
    wil = tests[(tests["test"] == "wilcoxon_signed_rank")].set_index("metric")
    assert wil.loc["findings_per_host", "p_adjusted"] < 1e-6
    # fewer findings at follow-up: the change follow-up − baseline is negative, and the row says so
    assert wil.loc["findings_per_host", "effect_size"] < -0.3
    assert wil.loc["findings_per_host", "effect_direction"] == "follow-up − baseline (negative: fewer)"
    assert truth["remediation"]["remediation_planted"] is True


def test_no_effect_where_none_was_planted(unplanted):
    data, truth = unplanted
    assert truth["remediation"]["remediation_planted"] is False
    tests = L.paired_tests(audit_metrics(data), pairing="first_last", min_days=90, binary_metrics=())
    wil = tests[tests["test"] == "wilcoxon_signed_rank"].set_index("metric")
    # findings per host: same expected count at baseline and follow-up; the CI of r covers 0
    row = wil.loc["findings_per_host"]
    assert row["ci_low"] <= 0 <= row["ci_high"], row
    assert row["p_value"] > 0.01


def test_planted_median_fix_times_recovered_within_intervals(planted):
    """Fix times are exponential with a planted median per severity (truth.json); the interval-censored
    estimate recovers them within its 95 % CI (or its bounds when the Weibull shape is not identifiable)."""
    data, truth = planted
    episodes = L.remediation_episodes(data)
    medians = L.interval_medians(episodes, by="severity").set_index("group")
    planted_days = truth["remediation"]["median_fix_days"]
    checked = 0
    for sev in ("high", "medium", "low"):
        row = medians.loc[sev]
        if np.isfinite(row["median_days"]):
            assert row["ci_low"] <= planted_days[sev] <= row["ci_high"], (sev, row.to_dict())
            checked += 1
        else:
            assert row["median_bound_low"] <= planted_days[sev] <= row["median_bound_high"]
    assert checked >= 2
    crit = medians.loc["critical"]
    assert crit["median_bound_low"] <= planted_days["critical"] <= crit["median_bound_high"]


def test_midpoint_kaplan_meier_states_its_convention(planted):
    data, _ = planted
    episodes = L.remediation_episodes(data, convention="upper")
    assert episodes.attrs["convention"] == "upper"
    out = L.remediation_study(episodes)
    assert set(out) == {"survival", "survival_severity", "remediation", "tests", "close_rate", "deadlines"}
    assert out["survival"]["survival"].between(0, 1).all()
    # longer deadlines are met by at least as large a share
    d = out["deadlines"].set_index("severity")["share_fixed_in_time"]
    assert d["low"] >= d["critical"]


def test_perimeter_drift_is_not_remediation():
    """A host dropped from the perimeter takes its findings with it: they are out of scope, not fixed."""
    est = pd.DataFrame({"finess": ["750000010"], "family": ["CH"]})
    audits = pd.DataFrame(
        {
            "audit_id": ["a1", "a2"],
            "finess": ["750000010"] * 2,
            "audit_date": pd.to_datetime(["2024-01-01", "2024-07-01"]),
            "hosts_in_scope": [2, 1],
        }
    )
    hosts = pd.DataFrame({"audit_id": ["a1", "a1", "a2"], "host": ["h1", "h2", "h1"]})
    findings = pd.DataFrame(
        {
            "audit_id": ["a1", "a1", "a1", "a2"],
            "host": ["h1", "h2", "h2", "h1"],
            "fingerprint": ["f1", "f2", "f3", "f1"],
            "severity": ["high"] * 4,
            "category": ["other"] * 4,
        }
    )
    data = StudyData(
        None,
        {"establishments": est, "audits": audits, "hosts": hosts, "findings": findings},
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
    )
    pairs = L.lifecycle_table(data).pairs
    assert int(pairs["n_fixed"].iloc[0]) == 0 and int(pairs["n_persistent"].iloc[0]) == 1
    assert int(pairs["n_out_of_scope_gone"].iloc[0]) == 2 and pairs["scope_drift"].iloc[0] == pytest.approx(
        0.5
    )


@pytest.mark.parametrize("families", [None, ["CH"], ["CH", "EHPAD", "no such family"]])
def test_remediation_episodes_equal_the_intervals_filtered(planted, families):
    """The episodes are the rows of ``remediation_intervals`` with their family, of the families asked
    for, followed by an audit covering their host (built in one pass, without the full table)."""
    from cyberobs_lib import lifecycle as lc

    data, _ = planted
    hosts = data.hosts if len(data.hosts) else None
    iv = lc.remediation_intervals(data.findings, data.audits, hosts=hosts, convention="upper")
    iv["family"] = iv["finess"].map(data.establishments.set_index("finess")["family"])
    if families:
        iv = iv[iv["family"].isin(families)]
    followed = iv["observed"] | (iv["duration_days"] > 0)
    expected = iv[followed].reset_index(drop=True)
    expected["event"] = expected["observed"].astype(int)
    got = L.remediation_episodes(data, convention="upper", families=families)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == {"not_followed": int((~followed).sum()), "convention": "upper"}
    assert len(got) and got.attrs["not_followed"] > 0


# --------------------------------------------------------------------------- one sign convention
def _improving_metrics(n_est: int = 12) -> pd.DataFrame:
    """Every establishment has fewer findings, fewer critical/high and KEV findings, and no worse binary
    state at its follow-up audit (200 days later) than at its baseline."""
    rows = []
    for e in range(n_est):
        for k, date in enumerate(("2024-01-10", "2024-07-28")):
            n = 20 + e - k * (5 + e % 4)
            rows.append(
                {
                    "audit_id": f"A{e}_{k}",
                    "finess": f"75{e:07d}",
                    "family": "CH" if e % 2 else "EHPAD",
                    "audit_date": pd.Timestamp(date),
                    "hosts_in_scope": 10,
                    "n_findings": n,
                    "findings_per_host": n / 10,
                    "n_crit_high": 6 + e % 3 - k * (1 + e % 2),
                    "n_kev": 3 - k * (1 + e % 3),
                    "no_protection": k == 0 or e < 2,
                    "has_critical": k == 0 or e % 5 == 0,
                    "exposes_remote_admin": k == 0 and e % 3 == 0,
                }
            )
    return pd.DataFrame(rows)


def test_every_effect_and_figure_agree_when_every_establishment_improved():
    """Issue 19: with every establishment improved, the summary's differences, every test's effect and
    interval, and the r printed on the paired-differences figure are all negative, and every table says
    follow-up − baseline in words (in the figure, in French and English)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cyberobs_lib.plots import longitudinal as plots

    metrics = _improving_metrics()
    summary = L.paired_summary(metrics, min_days=90)
    tests = L.paired_tests(metrics, min_days=90)
    assert (summary.loc[summary["statistic"] == "median", "median_difference"] < 0).all()
    assert (summary.loc[summary["statistic"] == "share", "share_difference"] < 0).all()
    assert not L.is_undefined(tests).any()
    assert (tests["effect_size"] < 0).all() and (tests["ci_high"] < 0).all(), tests
    assert set(tests["effect_direction"]) == {
        "follow-up − baseline (negative: fewer)",
        "share follow-up − share baseline (negative: fewer)",
    }
    assert set(summary["effect_direction"]) == set(tests["effect_direction"])
    mcnemar = tests[tests["test"] == "mcnemar"]
    assert mcnemar["variant"].str.startswith("midp;").all()
    pairs = L.paired_audits(metrics, min_days=90)
    words = {"fr": "différence suivi − initial (négative : moins au suivi)",
             "en": "difference follow-up − baseline (negative: fewer at follow-up)"}  # fmt: skip
    for lang, axis in words.items():
        fig, ax = plt.subplots()
        plots.plot_paired_differences(
            pairs, tests, ax=ax, lang=lang, show_points=True
        )  # a confidential report
        printed = [t.get_text() for t in ax.texts if t.get_text().startswith("r = ")]
        assert len(printed) == 3 and all(t.startswith("r = -") for t in printed), printed
        drawn = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections])
        assert (drawn < 0).all()  # the changes drawn are follow-up − baseline
        assert ax.get_xlabel() == axis
        plt.close(fig)
    fig, ax = plt.subplots()
    plots.plot_paired_differences(pairs, tests, ax=ax)  # published: no establishment's own change drawn
    assert len(ax.collections) == 0 and len(ax.lines) > 0
    plt.close(fig)
    # a table with the opposite convention is refused rather than drawn with an r of the wrong sign
    flipped = tests.assign(effect_direction="baseline − follow-up (positive: fewer)")
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="signs would disagree"):
        plots.plot_paired_differences(pairs, flipped, ax=ax)
    with pytest.raises(ValueError, match="without 'effect_direction'"):
        plots.plot_paired_differences(pairs, tests.drop(columns="effect_direction"), ax=ax)
    plt.close(fig)


def test_paired_tests_pass_the_variants_through():
    """The McNemar variant, the Wilcoxon method and the interval of r are the caller's."""
    metrics = _improving_metrics()
    tests = L.paired_tests(
        metrics, min_days=90, mcnemar_variant="exact", wilcoxon_method="asymptotic", ci_method="fisher_z"
    )
    assert tests.loc[tests["test"] == "mcnemar", "variant"].str.startswith("exact;").all()
    wil = tests[tests["test"] == "wilcoxon_signed_rank"]
    assert wil["variant"].str.startswith("asymptotic+cc;method=asymptotic").all()
    assert (wil["ci_method"] == "fisher_z").all()


def test_survival_figure_shows_the_number_at_risk(planted):
    """The Kaplan–Meier figure writes, under its axis, the ``at_risk`` of each curve at each tick (first
    row of the curve at or after the tick), headed in the report's language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cyberobs_lib.plots import longitudinal as plots

    data, _ = planted
    km = L.remediation_study(L.remediation_episodes(data))["survival_severity"]
    for lang, head in (("fr", "Effectifs à risque"), ("en", "Number at risk")):
        fig, ax = plt.subplots()
        plots.plot_survival_curves(km, ax=ax, lang=lang)
        texts = [t.get_text() for t in ax.texts]
        assert head in texts
        ticks = list(ax.get_xticks())
        counts = plots.at_risk_counts(km, ticks)
        first = counts[counts["time_days"] == ticks[0]].set_index("group")["at_risk"]
        starts = km[km["time_days"] == 0].set_index("group")["at_risk"]
        assert ticks[0] == 0 and first.to_dict() == starts.to_dict()  # everyone is at risk at day 0
        assert all(fmt_number(int(v), lang) in texts for v in counts["at_risk"])  # "1 230" in French
        assert (counts.groupby("group")["at_risk"].apply(lambda s: s.is_monotonic_decreasing)).all()
        plt.close(fig)
