"""Tests for cyberobs_lib.lifecycle on the hand-written scenario of tests/fixtures/lifecycle/README.md.

Every expected value is derived by hand from the fixture rows; the derivation is in the comments.
Day counts: 2024 is a leap year, so 2024-01-01 → 04-01 = 31+29+31 = 91 d, 04-01 → 07-01 =
30+31+30 = 91 d, 07-01 → 10-01 = 31+31+30 = 92 d, 2023-10-01 → 2024-01-01 = 31+30+31 = 92 d,
2024-01-01 → 06-01 = 31+29+31+30+31 = 152 d.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.lifecycle import (
    STATUSES,
    audit_sequence,
    close_rate_monthly,
    establishment_evolution,
    match_lifecycle,
    remediation_intervals,
)
from cyberobs_lib.schema import LIFECYCLE_COLUMNS

E1, E2, E3 = "750000001", "750000002", "750000003"


@pytest.fixture(scope="module")
def data(fixtures_dir):
    d = fixtures_dir / "lifecycle"
    audits = pd.read_csv(d / "audits.csv", dtype={"finess": str}, parse_dates=["audit_date"])
    hosts = pd.read_csv(d / "hosts.csv")
    findings = pd.read_csv(d / "findings.csv", parse_dates=["first_seen"])
    findings["known_exploited"] = findings["known_exploited"].astype(bool)
    establishments = pd.read_csv(d / "establishments.csv", dtype={"finess": str})
    return {"findings": findings, "audits": audits, "hosts": hosts, "establishments": establishments}


def _events(result, finess=E1):
    ev = result.events[result.events["finess"] == finess]
    return {
        (str(f), str(a), str(s))
        for f, a, s in zip(ev["fingerprint"], ev["audit_from"], ev["status"], strict=True)
    }


def _pair(result, audit_from):
    return result.pairs.set_index("audit_from").loc[audit_from]


# ------------------------------------------------------------------------------------------ sequence
def test_audit_sequence_consecutive_sorted_by_date(data):
    seq = audit_sequence(data["audits"])
    e1 = seq[seq["finess"] == E1]
    # audits.csv lists a3 first: pairs follow dates, not file order
    assert e1[["audit_from", "audit_to"]].values.tolist() == [["a1", "a2"], ["a2", "a3"], ["a3", "a4"]]
    assert e1["days"].tolist() == [91, 91, 92]
    assert e1["pair_rank"].tolist() == [1, 2, 3]
    assert E2 not in set(seq["finess"])  # a single audit gives no pair
    e3 = seq[seq["finess"] == E3]
    assert e3["days"].tolist() == [9, 143]  # b1→b2 9 d, b2→b3 152 − 9 = 143 d


def test_audit_sequence_min_days_skips_rescan(data):
    seq = audit_sequence(data["audits"], min_days=30)
    e3 = seq[seq["finess"] == E3]
    assert e3[["audit_from", "audit_to", "days", "n_skipped"]].values.tolist() == [["b1", "b3", 152, 1]]
    # E1 audits are ≥ 91 d apart: nothing skipped
    assert (seq.loc[seq["finess"] == E1, "n_skipped"] == 0).all()
    assert len(seq[seq["finess"] == E1]) == 3


def test_audit_sequence_first_last(data):
    seq = audit_sequence(data["audits"], pairing="first_last")
    rows = seq.set_index("finess")[["audit_from", "audit_to", "days", "n_skipped"]]
    assert rows.loc[E1].tolist() == ["a1", "a4", 91 + 91 + 92, 2]
    assert rows.loc[E3].tolist() == ["b1", "b3", 152, 1]
    # first and last closer than min_days: no pair
    assert E3 not in set(audit_sequence(data["audits"], pairing="first_last", min_days=200)["finess"])


def test_audit_sequence_bad_options(data):
    with pytest.raises(ValueError, match="pairing"):
        audit_sequence(data["audits"], pairing="all")
    with pytest.raises(ValueError, match="min_days"):
        audit_sequence(data["audits"], min_days=-1)
    dup = pd.concat([data["audits"], data["audits"].iloc[[0]]])
    with pytest.raises(ValueError, match="unique"):
        audit_sequence(dup)
    bad = data["audits"].assign(
        audit_date=data["audits"]["audit_date"].astype(str).where(lambda s: s != "2024-01-10", "10/13/2024x")
    )
    with pytest.raises(ValueError, match="b2"):
        audit_sequence(bad)
    with pytest.raises(ValueError, match="audit_date"):
        audit_sequence(data["audits"].drop(columns="audit_date"))


# ------------------------------------------------------------------------------------------ matching
def test_match_events_with_hosts_table(data):
    res = match_lifecycle(data["findings"], data["audits"], hosts=data["hosts"])
    assert _events(res) == {
        # a1 → a2: h5 left (y, z not fixed); x fixed on h4 still scanned; s new
        ("p", "a1", "persistent"),
        ("t", "a1", "persistent"),
        ("q", "a1", "fixed"),
        ("r", "a1", "fixed"),
        ("x", "a1", "fixed"),
        ("s", "a1", "new"),
        ("y", "a1", "out_of_scope_gone"),
        ("z", "a1", "out_of_scope_gone"),
        # a2 → a3: h2 left (t not fixed), h3 and h5 added (u, y not new)
        ("p", "a2", "persistent"),
        ("s", "a2", "fixed"),
        ("t", "a2", "out_of_scope_gone"),
        ("u", "a2", "out_of_scope_new"),
        ("y", "a2", "out_of_scope_new"),
        # a3 → a4: r was fixed at a1 → a2, absent at a3 with h1 scanned, seen again: reopened
        ("p", "a3", "persistent"),
        ("u", "a3", "persistent"),
        ("r", "a3", "reopened"),
        ("y", "a3", "out_of_scope_gone"),
    }
    assert list(res.events["status"].cat.categories) == list(STATUSES)
    # severity travels with the event (r is critical in findings.csv)
    ev = res.events
    assert set(ev.loc[ev["fingerprint"] == "r", "severity"].astype(str)) == {"critical"}


def test_match_pairs_table_counts_and_drift(data):
    res = match_lifecycle(
        data["findings"], data["audits"], hosts=data["hosts"], establishments=data["establishments"]
    )
    pairs = res.pairs
    assert list(pairs.columns[: len(LIFECYCLE_COLUMNS)]) == list(LIFECYCLE_COLUMNS)
    cols = ["n_new", "n_persistent", "n_fixed", "n_reopened", "n_out_of_scope_new", "n_out_of_scope_gone"]
    # counts of the events listed in test_match_events_with_hosts_table
    assert _pair(res, "a1")[cols].tolist() == [1, 2, 3, 0, 0, 2]
    assert _pair(res, "a2")[cols].tolist() == [0, 1, 1, 0, 2, 1]
    assert _pair(res, "a3")[cols].tolist() == [0, 2, 0, 1, 0, 1]
    hosts_cols = ["common_hosts", "hosts_added", "hosts_removed"]
    # a1 {h1,h2,h4,h5} → a2 {h1,h2,h4}: common 3, removed h5; drift 1/4
    assert _pair(res, "a1")[hosts_cols].tolist() == [3, 0, 1]
    assert _pair(res, "a1")["scope_drift"] == pytest.approx(1 / 4)
    # a2 {h1,h2,h4} → a3 {h1,h3,h4,h5}: common 2, added h3 h5, removed h2; drift 3/5
    assert _pair(res, "a2")[hosts_cols].tolist() == [2, 2, 1]
    assert _pair(res, "a2")["scope_drift"] == pytest.approx(3 / 5)
    assert _pair(res, "a3")["scope_drift"] == pytest.approx(1 / 4)
    assert (pairs["perimeter_source"] == "hosts.csv").all()
    assert _pair(res, "a1")[["establishment", "finess", "family", "days"]].tolist() == [E1, E1, "CH", 91]
    assert _pair(res, "b1")["family"] == "CHU/CHR"


def test_host_drift_is_never_remediation(data):
    """Removing a host from the perimeter must not create fixes, adding one must not create new."""
    res = match_lifecycle(data["findings"], data["audits"], hosts=data["hosts"])
    ev = res.events
    # t (h2, removed after a2), y/z (h5 out at a2): never fixed; u (h3 added at a3): never new
    assert not ev[ev["fingerprint"].isin(["t", "y", "z"]) & (ev["status"] == "fixed")].shape[0]
    assert not ev[ev["fingerprint"].isin(["u", "y"]) & ev["status"].isin(["new", "reopened"])].shape[0]
    # dropping h2 and h5 everywhere from the later audits changes only out-of-scope counts
    n_fixed_before = res.pairs["n_fixed"].sum()
    shrunk = data["hosts"][~((data["hosts"]["host"] == "h4") & (data["hosts"]["audit_id"] == "a2"))]
    res2 = match_lifecycle(data["findings"], data["audits"], hosts=shrunk)
    # h4 no longer scanned at a2: x (h4) becomes out_of_scope_gone, not fixed
    assert res2.pairs["n_fixed"].sum() == n_fixed_before - 1
    assert _pair(res2, "a1")["n_out_of_scope_gone"] == 3


def test_match_without_hosts_table(data):
    res = match_lifecycle(data["findings"], data["audits"], hosts=None)
    pairs = res.pairs
    assert (pairs["perimeter_source"] == "findings").all()
    assert pairs["scope_drift"].isna().all()  # unknown, not 0
    cols = ["n_new", "n_persistent", "n_fixed", "n_reopened", "n_out_of_scope_new", "n_out_of_scope_gone"]
    # derived perimeters: a1 {h1,h2,h4,h5}, a2 {h1,h2}, a3 {h1,h3,h5}, a4 {h1,h3}; x on h4 (whole
    # host cleaned) is now out_of_scope_gone rather than fixed: the documented conservative reading
    assert _pair(res, "a1")[cols].tolist() == [1, 2, 2, 0, 0, 3]
    assert _pair(res, "a2")[cols].tolist() == [0, 1, 1, 0, 2, 1]
    assert _pair(res, "a3")[cols].tolist() == [0, 2, 0, 1, 0, 1]
    assert _pair(res, "a1")[["common_hosts", "hosts_added", "hosts_removed"]].tolist() == [2, 0, 2]
    assert pairs["family"].isna().all()  # no establishments table
    # an empty hosts table behaves as no table
    empty = data["hosts"].iloc[:0]
    pd.testing.assert_frame_equal(match_lifecycle(data["findings"], data["audits"], hosts=empty).pairs, pairs)


def test_mixed_perimeter_sources_give_unknown_drift(data):
    hosts = data["hosts"][data["hosts"]["audit_id"] != "a3"]  # a3's perimeter now from its findings
    pairs = match_lifecycle(data["findings"], data["audits"], hosts=hosts).pairs.set_index("audit_from")
    assert pairs.loc["a1", "perimeter_source"] == "hosts.csv"
    assert pairs.loc[["a2", "a3"], "perimeter_source"].tolist() == ["findings", "findings"]
    assert pairs.loc[["a2", "a3"], "scope_drift"].isna().all()


def test_min_days_skipped_audit_is_ignored(data):
    res0 = match_lifecycle(data["findings"], data["audits"], hosts=data["hosts"])
    # every audit: m fixed at b1 → b2 (k1 scanned, m absent), reopened at b2 → b3
    assert {e for e in _events(res0, E3)} == {("m", "b1", "fixed"), ("m", "b2", "reopened")}
    res30 = match_lifecycle(data["findings"], data["audits"], hosts=data["hosts"], min_days=30)
    assert _events(res30, E3) == {("m", "b1", "persistent")}
    assert _pair(res30, "b1")[["audit_to", "days"]].tolist() == ["b3", 152]


def test_no_findings_still_reports_perimeter(data):
    res = match_lifecycle(data["findings"].iloc[:0], data["audits"], hosts=data["hosts"])
    assert len(res.events) == 0
    assert (res.pairs[["n_new", "n_persistent", "n_fixed", "n_reopened"]] == 0).all().all()
    # drift comes from hosts.csv alone: same perimeters as in the full scenario
    assert res.pairs.set_index("audit_from").loc[["a1", "a2", "a3"], "scope_drift"].tolist() == pytest.approx(
        [1 / 4, 3 / 5, 1 / 4]
    )


def test_match_bad_input(data):
    f = data["findings"]
    with pytest.raises(ValueError, match="zz"):
        match_lifecycle(pd.concat([f, f.iloc[[0]].assign(audit_id="zz")]), data["audits"])
    with pytest.raises(ValueError, match="fingerprint"):
        match_lifecycle(f.drop(columns="fingerprint"), data["audits"])
    with pytest.raises(ValueError, match="must not be missing"):
        match_lifecycle(f.assign(fingerprint=f["fingerprint"].where(f.index != 3)), data["audits"])
    with pytest.raises(ValueError, match="hosts: audit_id not in audits"):
        match_lifecycle(f, data["audits"], hosts=pd.DataFrame({"audit_id": ["nope"], "host": ["h1"]}))


def test_fingerprint_shared_by_two_establishments_is_not_linked(data):
    audits = pd.DataFrame(
        {
            "audit_id": ["e1", "e2", "f1"],
            "finess": ["A", "A", "B"],
            "audit_date": pd.to_datetime(["2024-01-01", "2024-06-01", "2024-03-01"]),
        }
    )
    findings = pd.DataFrame({"audit_id": ["e1", "f1"], "host": ["h", "h"], "fingerprint": ["same", "same"]})
    hosts = pd.DataFrame({"audit_id": ["e1", "e2", "f1"], "host": ["h", "h", "h"]})
    res = match_lifecycle(findings, audits, hosts=hosts)
    assert res.pairs[["n_persistent", "n_fixed"]].values.tolist() == [[0, 1]]


def test_categorical_inputs_give_same_result(data):
    f = data["findings"].astype({"audit_id": "category", "host": "category", "fingerprint": "category"})
    a = match_lifecycle(f, data["audits"], hosts=data["hosts"]).pairs
    b = match_lifecycle(data["findings"], data["audits"], hosts=data["hosts"]).pairs
    pd.testing.assert_frame_equal(a, b)


def _reference_counts(findings, audits, hosts):
    """Naive set-based matching (loops), the definition written out, for the randomized check."""
    seq = audits.sort_values(["finess", "audit_date", "audit_id"])
    seen = {a: set(g["fingerprint"]) for a, g in findings.groupby("audit_id")}
    host_of = dict(zip(findings["fingerprint"], findings["host"], strict=True))
    per = {
        a: set(g["host"]) for a, g in pd.concat([hosts, findings[["audit_id", "host"]]]).groupby("audit_id")
    }
    out = {}
    for _, g in seq.groupby("finess"):
        ids = g["audit_id"].tolist()
        fixed_once = set()
        for x, y in pairwise(ids):
            common = per.get(x, set()) & per.get(y, set())
            fx = {f for f in seen.get(x, set()) if host_of[f] in common}
            fy = {f for f in seen.get(y, set()) if host_of[f] in common}
            arrived = fy - fx
            out[x] = [len(arrived - fixed_once), len(fx & fy), len(fx - fy), len(arrived & fixed_once)]
            fixed_once |= fx - fy
    return out


def test_randomized_against_set_reference():
    rng = np.random.default_rng(7)
    n_est, n_aud, n_host, n_fp = 6, 4, 4, 12
    audits = pd.DataFrame(
        {
            "audit_id": [f"A{e}{k}" for e in range(n_est) for k in range(n_aud)],
            "finess": [f"E{e}" for e in range(n_est) for _ in range(n_aud)],
            "audit_date": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.permutation(n_est * n_aud) * 20, "D"),
        }
    )
    hosts = pd.DataFrame(
        [(a, f"{a[:2]}h{h}") for a in audits["audit_id"] for h in range(n_host) if rng.random() < 0.7],
        columns=["audit_id", "host"],
    )
    rows = []
    for a in audits["audit_id"]:
        for j in range(n_fp):
            if rng.random() < 0.5:
                h = f"{a[:2]}h{j % n_host}"
                rows.append((a, h, f"{a[:2]}f{j}"))
    findings = pd.DataFrame(rows, columns=["audit_id", "host", "fingerprint"])
    res = match_lifecycle(findings, audits, hosts=hosts)
    got = res.pairs.set_index("audit_from")[["n_new", "n_persistent", "n_fixed", "n_reopened"]]
    ref = _reference_counts(findings, audits, hosts)
    assert {k: v.tolist() for k, v in got.iterrows()} == ref
    assert got["n_reopened"].sum() > 0 and got["n_fixed"].sum() > 0  # the draw exercises both


# ------------------------------------------------------------------------------------------ intervals
def _episodes(iv):
    return iv.set_index(["fingerprint", "episode"])


def test_remediation_intervals_midpoint(data):
    iv = _episodes(remediation_intervals(data["findings"], data["audits"], hosts=data["hosts"]))
    cols = ["observed", "duration_lower", "duration_upper", "duration_days"]
    assert iv.loc[("p", 1), cols].tolist() == [False, 274.0, 274.0, 274.0]  # open at a4: censored
    assert iv.loc[("q", 1), cols].tolist() == [True, 0.0, 91.0, 45.5]  # fixed in (a1, a2]
    assert iv.loc[("r", 1), cols].tolist() == [True, 0.0, 91.0, 45.5]
    assert iv.loc[("r", 2), cols].tolist() == [False, 0.0, 0.0, 0.0]  # reopened at a4, censored there
    assert iv.loc[("s", 1), cols].tolist() == [True, 0.0, 91.0, 45.5]  # a2 → fixed by a3
    # t: h2 leaves after a2 → censored at a2 (last audit covering h2), NOT fixed
    assert iv.loc[("t", 1), cols].tolist() == [False, 91.0, 91.0, 91.0]
    assert iv.loc[("u", 1), cols].tolist() == [False, 92.0, 92.0, 92.0]
    # y: seen a1, h5 not scanned at a2, seen a3: one episode; h5 not scanned at a4: censored at a3
    assert iv.loc[("y", 1), cols].tolist() == [False, 182.0, 182.0, 182.0]
    # z: seen a1; next audit covering h5 is a3, where z is absent: fixed in (a1, a3]
    assert iv.loc[("z", 1), cols].tolist() == [True, 0.0, 182.0, 91.0]
    assert iv.loc[("z", 1), "fixed_lower"] == pd.Timestamp("2024-01-01")
    assert iv.loc[("z", 1), "fixed_upper"] == pd.Timestamp("2024-07-01")
    assert pd.isna(iv.loc[("p", 1), "fixed_upper"])
    assert iv.loc[("r", 1), "severity"] == "critical" and bool(iv.loc[("r", 1), "known_exploited"])
    assert iv.loc[("y", 1), "n_audits_seen"] == 2
    # m (E3): seen b1, absent b2 (k1 scanned), seen b3: two episodes, the first fixed in (b1, b2]
    assert iv.loc[("m", 1), cols].tolist() == [True, 0.0, 9.0, 4.5]
    assert iv.loc[("m", 2), cols].tolist() == [False, 0.0, 0.0, 0.0]
    assert len(iv) == 13  # 11 fingerprints, r and m have two episodes each
    assert (iv["convention"] == "midpoint").all()


@pytest.mark.parametrize("convention, expected", [("lower", 0.0), ("upper", 182.0), ("midpoint", 91.0)])
def test_remediation_conventions(data, convention, expected):
    iv = _episodes(
        remediation_intervals(data["findings"], data["audits"], hosts=data["hosts"], convention=convention)
    )
    assert iv.loc[("z", 1), "duration_days"] == expected
    assert iv.loc[("p", 1), "duration_days"] == 274.0  # censored: same under every convention


def test_remediation_first_seen_origin(data):
    iv = _episodes(
        remediation_intervals(data["findings"], data["audits"], hosts=data["hosts"], use_first_seen=True)
    )
    # r: scanner first saw it 2023-10-01, 92 d before a1: fixed in (92, 92 + 91] days
    assert iv.loc[("r", 1), ["duration_lower", "duration_upper", "duration_days"]].tolist() == [
        92.0,
        183.0,
        137.5,
    ]
    assert iv.loc[("r", 1), "origin"] == pd.Timestamp("2023-10-01")
    assert iv.loc[("r", 2), "origin"] == pd.Timestamp("2024-10-01")  # reopened episode starts at its audit


def test_remediation_bad_convention(data):
    with pytest.raises(ValueError, match="convention"):
        remediation_intervals(data["findings"], data["audits"], convention="mean")


def test_close_rate_monthly_hand_computed(data):
    iv = remediation_intervals(data["findings"], data["audits"], hosts=data["hosts"], convention="upper")
    cr = close_rate_monthly(iv[iv["finess"] == E1]).set_index("month")
    # ends (upper): q r1 x fixed 04-01, t censored 04-01, s z fixed 07-01, y censored 07-01,
    # p u censored 10-01; r2 opens and ends 10-01 (never at risk). Open at start of Jan–Mar:
    # p q r1 t x y z = 7; March closes q r1 x (3/7), t censored. Apr–Jun: p s y z = 4; June closes
    # s z (2/4), y censored. Jul–Sep: p u = 2, both censored in September.
    assert cr.index.tolist() == list(pd.date_range("2024-01-01", "2024-09-01", freq="MS"))
    assert cr["n_open_start"].tolist() == [7, 7, 7, 4, 4, 4, 2, 2, 2]
    assert cr["n_closed"].tolist() == [0, 0, 3, 0, 0, 2, 0, 0, 0]
    assert cr["n_censored"].tolist() == [0, 0, 1, 0, 0, 1, 0, 0, 2]
    assert cr.loc["2024-03-01", "close_rate"] == pytest.approx(3 / 7)
    assert (cr["convention"] == "upper").all()
    by = close_rate_monthly(iv, by=["finess"])
    assert by.loc[by["finess"] == E1, "n_closed"].tolist() == cr["n_closed"].tolist()
    with pytest.raises(ValueError, match="origin"):
        close_rate_monthly(iv.drop(columns="origin"))


def test_optional_columns_absent_give_na(data):
    slim = data["findings"][["audit_id", "host", "fingerprint"]]
    iv = remediation_intervals(slim, data["audits"], hosts=data["hosts"], use_first_seen=True)
    assert iv["known_exploited"].isna().all() and iv["severity"].isna().all()
    # no first_seen column: the flag changes nothing, r starts at a1
    assert iv.loc[(iv["fingerprint"] == "r") & (iv["episode"] == 1), "duration_days"].item() == 45.5
    ev = establishment_evolution(slim, data["audits"])
    assert ev["n_kev"].isna().all()
    assert (ev["n_severity_missing"] == ev["n_findings"]).all()
    # known_exploited with missing values counts missing as not flagged
    kev = data["findings"].assign(known_exploited=pd.array([True] + [None] * 19, dtype="boolean"))
    assert establishment_evolution(kev, data["audits"]).set_index("audit_id").loc["a1", "n_kev"] == 1


# ------------------------------------------------------------------------------------------ evolution
def test_establishment_evolution(data):
    ev = establishment_evolution(data["findings"], data["audits"]).set_index("audit_id")
    # a1: p q r t x y z = 7 findings on h1 h2 h4 h5; severities high p x, medium q t z, critical r, low y
    a1 = ev.loc["a1"]
    assert a1[
        ["n_findings", "n_hosts_affected", "n_critical", "n_high", "n_medium", "n_low", "n_info"]
    ].tolist() == [7, 4, 1, 2, 3, 1, 0]
    assert a1[["n_cat_tls_certificate", "n_cat_other", "n_kev", "audit_rank"]].tolist() == [2, 2, 1, 1]
    assert a1["findings_per_host"] == pytest.approx(7 / 4)
    assert ev.loc["a2", "n_findings"] == 3  # p (listed twice, counted once), s, t
    assert ev.loc["b2", "n_findings"] == 0  # audit without findings is kept, with zeros
    assert ev.index.tolist()[:4] == ["a1", "a2", "a3", "a4"]
    bad = data["findings"].assign(severity="severe")
    with pytest.raises(ValueError, match="severe"):
        establishment_evolution(bad, data["audits"])


# ------------------------------------------------------------------------------------------ purity
def test_inputs_not_mutated(data):
    copies = {k: v.copy(deep=True) for k, v in data.items()}
    res = match_lifecycle(
        data["findings"],
        data["audits"],
        hosts=data["hosts"],
        establishments=data["establishments"],
        min_days=30,
    )
    iv = remediation_intervals(data["findings"], data["audits"], hosts=data["hosts"], use_first_seen=True)
    iv_copy = iv.copy(deep=True)
    close_rate_monthly(iv, by=["severity"])
    establishment_evolution(data["findings"], data["audits"])
    audit_sequence(data["audits"], min_days=30, pairing="first_last")
    for k, v in data.items():
        pd.testing.assert_frame_equal(v, copies[k])
    pd.testing.assert_frame_equal(iv, iv_copy)
    assert len(res.pairs)


# ------------------------------------------------------------------------------------------ linear helpers
@pytest.mark.parametrize(
    "n, n_groups, dtype",
    [(n, k, dtype) for n, k in [(0, 5), (1, 1), (50, 3), (20_000, 7), (20_000, 15_000)]
     for dtype in (np.int64, np.int32, np.int16, np.int8) if k <= np.iinfo(dtype).max],
)  # fmt: skip
def test_counting_argsort_is_a_stable_argsort(n, n_groups, dtype):
    from cyberobs_lib.lifecycle._linear import counting_argsort

    rng = np.random.default_rng(n + n_groups)
    codes = rng.integers(-1, n_groups, n).astype(dtype)  # -1: a missing value, sorts first
    order = counting_argsort(codes, n_groups)
    np.testing.assert_array_equal(order, np.argsort(codes, kind="stable"))


def _text_cases(n, rng):
    words = ["a", "bb", "ccc", "8bytes!!", "9 bytes!!", "x" * 30, "é", "", "hello world", "ñandú"]
    words += [f"s{i}" for i in range(40)]
    mixed = np.array(words, dtype=object)[rng.integers(0, len(words), n)]
    with_missing = mixed.copy()
    with_missing[rng.integers(0, max(n, 1), n // 10)] = None
    hexes = np.array([f"{x:032x}" for x in rng.integers(0, 2**62, n // 2 + 1)], dtype=object)
    hexes = hexes[rng.integers(0, n // 2 + 1, n)]
    return {
        "mixed": mixed,
        "with_missing": with_missing,
        "hex": hexes,
        "arrow": pd.Series(with_missing, dtype="string[pyarrow]"),
        "arrow_slice": pd.Series(mixed, dtype="string[pyarrow]").iloc[n // 3 :],
        "arrow_hex": pd.Series(hexes, dtype="string[pyarrow]"),
        "series": pd.Series(mixed),
    }


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 70_000])  # 70_000 rows: factorized in hash blocks
def test_factorize_text_equals_pandas(n):
    from cyberobs_lib.lifecycle._linear import factorize_text

    rng = np.random.default_rng(n)
    for name, values in _text_cases(n, rng).items():
        got = factorize_text(values)
        assert got is not None, name
        codes, uniques = pd.factorize(values)
        np.testing.assert_array_equal(got[0], codes, err_msg=name)
        pd.testing.assert_index_equal(got[1], pd.Index(uniques))


def test_factorize_text_declines_what_is_not_text():
    from cyberobs_lib.lifecycle._linear import factorize_text

    assert factorize_text(pd.Series([1, 2, 1])) is None
    assert factorize_text(np.array(["a", 1, "b"], dtype=object)) is None
    assert factorize_text(pd.Series(["a", "b"], dtype="category")) is None


def test_factorize_hashes_equals_pandas():
    from cyberobs_lib.lifecycle._linear import factorize_hashes

    rng = np.random.default_rng(3)
    for n, distinct in ((0, 1), (10, 3), (200_000, 50_000)):  # the last one in hash blocks
        h = rng.integers(0, 2**63, distinct, dtype=np.uint64)[rng.integers(0, distinct, n)]
        codes, first = factorize_hashes(h)
        expected, uniques = pd.factorize(h)
        np.testing.assert_array_equal(codes, expected)
        np.testing.assert_array_equal(h[first], uniques)
        np.testing.assert_array_equal(first, np.unique(codes, return_index=True)[1])  # first row per code


def test_factorize_text_falls_back_on_a_hash_collision(monkeypatch):
    from cyberobs_lib.lifecycle import _linear

    monkeypatch.setattr(_linear, "_hash_strings", lambda start, *args: np.zeros(len(start), np.uint64))
    assert _linear.factorize_text(np.array(["a", "b", "a"], dtype=object)) is None


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("rank_order", [True, False])
def test_identity_order_is_a_stable_lexsort(shared, rank_order):
    from cyberobs_lib.lifecycle._encode import _identity_order

    rng = np.random.default_rng(int(shared) * 2 + int(rank_order))
    n, n_est, n_fp, n_rank = 5000, 40, 900, 5
    f = rng.integers(0, n_fp, n)
    est = rng.integers(0, n_est, n) if shared else f % n_est  # shared: a fingerprint in several
    r = rng.integers(0, n_rank, n)
    if rank_order:  # rows in rank order within each identity, as the stores write them
        by = np.lexsort((r,))
        f, est, r = f[by], est[by], r[by]
    order, ident, f_sorted = _identity_order(est, f, r, n_fp, n_rank)
    np.testing.assert_array_equal(order, np.lexsort((r, est * n_fp + f)))
    np.testing.assert_array_equal(f_sorted, f[order])
    key = (est * n_fp + f)[order]
    np.testing.assert_array_equal(ident[1:] == ident[:-1], key[1:] == key[:-1])


def test_duplicate_findings_keep_the_first_row(data):
    f = pd.DataFrame(
        {
            "audit_id": ["a", "a", "b", "b"],
            "host": ["h", "h", "h", "h"],
            "fingerprint": ["p", "p", "p", "p"],
            "severity": ["low", "high", "medium", "critical"],
        }
    )
    audits = pd.DataFrame(
        {"audit_id": ["a", "b"], "finess": "E", "audit_date": pd.to_datetime(["2024-01-01", "2024-06-01"])}
    )
    res = match_lifecycle(f, audits)
    # a persistent event carries the row of its audit_from, the first of the duplicates of audit a
    assert res.events[["status", "severity"]].values.tolist() == [["persistent", "low"]]
    iv = remediation_intervals(f, audits)
    assert iv[["severity", "n_audits_seen"]].values.tolist() == [["low", 2]]


def test_text_and_categorical_and_arrow_columns_give_same_tables(data):
    base = match_lifecycle(data["findings"], data["audits"], hosts=data["hosts"])
    arrow = data["findings"].astype({c: "string[pyarrow]" for c in ("audit_id", "host", "fingerprint")})
    got = match_lifecycle(arrow, data["audits"], hosts=data["hosts"])
    pd.testing.assert_frame_equal(got.pairs, base.pairs)
    cols = ["finess", "audit_from", "audit_to", "status"]
    pd.testing.assert_frame_equal(got.events[cols], base.events[cols])
    assert got.events["fingerprint"].astype(str).tolist() == base.events["fingerprint"].tolist()
    iv = remediation_intervals(arrow, data["audits"], hosts=data["hosts"])
    iv_base = remediation_intervals(data["findings"], data["audits"], hosts=data["hosts"])
    pd.testing.assert_frame_equal(iv.drop(columns="fingerprint"), iv_base.drop(columns="fingerprint"))


def _random_store(rng, *, n_est=9, n_aud=4, n_host=4, n_fp=10):
    """Random findings of several establishments, rows in random order, with duplicate rows, hosts only
    in the hosts table, severity and category."""
    audits = pd.DataFrame(
        {
            "audit_id": [f"A{e}{k}" for e in range(n_est) for k in range(n_aud)],
            "finess": [f"E{(e * 7) % n_est}" for e in range(n_est) for _ in range(n_aud)],
            "audit_date": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.permutation(n_est * n_aud) * 20, "D"),
        }
    ).sample(frac=1, random_state=1)
    hosts = pd.DataFrame(
        [(a, f"{a[:2]}h{h}") for a in audits["audit_id"] for h in range(n_host + 1) if rng.random() < 0.7],
        columns=["audit_id", "host"],
    )
    rows = [
        (a, f"{a[:2]}h{j % n_host}", f"{a[:2]}f{j}")
        for a in audits["audit_id"]
        for j in range(n_fp)
        if rng.random() < 0.5
    ]
    findings = pd.DataFrame(rows, columns=["audit_id", "host", "fingerprint"])
    findings = pd.concat([findings, findings.sample(frac=0.1, random_state=2)], ignore_index=True)
    findings = findings.sample(frac=1, random_state=3).reset_index(drop=True)
    findings["severity"] = pd.Categorical(rng.choice(["low", "high"], len(findings)))
    findings["category"] = rng.choice(["x", "y", "z"], len(findings)).astype(object)
    return findings, audits, hosts


def _assert_same_result(a, b):
    for name in ("events", "pairs"):
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x, y, check_exact=True)
        assert x.attrs == y.attrs
        assert [type(x[c].array) for c in x] == [type(y[c].array) for c in y]


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("shared", ["none", "two_blocks", "one_block"])
def test_blocks_of_establishments_give_the_unblocked_tables(monkeypatch, shared, categorical):
    from cyberobs_lib.lifecycle import matching

    rng = np.random.default_rng(11)
    findings, audits, hosts = _random_store(rng)
    if shared != "none":
        # a hand-made fingerprint in two establishments: E0 and E8 (different blocks) or E0 and E1
        # (consecutive, one block when blocks are large enough)
        other = "E8" if shared == "two_blocks" else "E1"
        est = findings["audit_id"].map(audits.set_index("audit_id")["finess"])
        first = [findings.index[est == "E0"][0], findings.index[est == other][0]]
        findings.loc[first, "fingerprint"] = "shared"
    if categorical:
        findings = findings.astype({"fingerprint": "category", "host": "category", "audit_id": "category"})
    est = pd.DataFrame({"finess": ["E0", "E3", "E5"], "family": ["chu", "ch", "chu"]})
    block = 40 if shared != "one_block" else 2 * len(findings) // 9 + 1
    n_encoded = []
    encode_codes = matching.encode_codes

    def counted(*args):
        n_encoded.append(1)
        return encode_codes(*args)

    monkeypatch.setattr(matching, "encode_codes", counted)
    for min_days in (0, 50):
        for h in (hosts, None):
            monkeypatch.setattr(matching, "_BLOCK_FINDINGS", 10**9)
            monkeypatch.setattr(matching, "_BLOCKS_FROM", 0)
            whole = match_lifecycle(findings, audits, hosts=h, establishments=est, min_days=min_days)
            assert not n_encoded  # one block: the unblocked path
            monkeypatch.setattr(matching, "_BLOCK_FINDINGS", block)
            monkeypatch.setattr(matching, "_BLOCKS_FROM", 0)
            got = match_lifecycle(findings, audits, hosts=h, establishments=est, min_days=min_days)
            assert len(n_encoded) >= 4  # several blocks were matched
            # ... and used, unless a fingerprint is in two blocks (then the unblocked path is)
            used = matching._match_blocked(findings, audits, hosts=h, min_days=min_days) is not None
            assert used == (shared != "two_blocks")
            assert whole.pairs["n_persistent"].sum() > 0 and whole.pairs["n_reopened"].sum() >= 0
            _assert_same_result(got, whole)
            n_encoded.clear()
