"""Tests of the synthetic dataset generator (cyberobs_lib.demo).

Expected values come from the generator's own planted parameters (truth.json), re-estimated here
straight from the CSV files with independent, deliberately naive code (no cyberobs reader), and from
published references where stated (Luhn: ISO/IEC 7812-1; CVSS: FIRST v3.1 via the `cvss` package;
KEV: CISA catalog in the corpus).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.config import DEMO_DATASET
from cyberobs_lib.demo import DemoScale, generate_dataset, load_catalog, sample_frame, synthetic_finess
from cyberobs_lib.schema import CONTROLS, FINDING_CATEGORIES, INPUT_FILES, SEVERITIES

TINY = DemoScale(
    establishments=60, years=(2024, 2025), audits_per_establishment=(1, 3), pilot_establishments=2
)
MEDIUM = DemoScale(
    establishments=3000,
    years=(2022, 2023, 2024, 2025),
    audits_per_establishment=(1, 4),
    chunk_establishments=700,
)
FILES = ("establishments", "audits", "hosts", "findings", "controls", "incidents")


def _read(d: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False)


def _hashes(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def _luhn_ok(number: str) -> bool:
    """Textbook Luhn (ISO/IEC 7812-1 Annex B), written independently of the library; A=1, B=2."""
    digits = [int({"A": "1", "B": "2"}.get(ch, ch)) for ch in number]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("medium")
    return d, generate_dataset(d, seed=7, scale=MEDIUM)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("tiny")
    return d, generate_dataset(d, seed=3, scale=TINY)


# ---------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes(tmp_path, tiny):
    d, _ = tiny
    generate_dataset(tmp_path / "again", seed=3, scale=TINY)
    assert _hashes(tmp_path / "again") == _hashes(d)
    assert len(_hashes(d)) == 10  # 6 CSV + truth.json + README.txt + reference/ KEV and EPSS catalogs


def test_different_seed_differs(tmp_path, tiny):
    d, _ = tiny
    generate_dataset(tmp_path / "other", seed=4, scale=TINY)
    a, b = _hashes(tmp_path / "other"), _hashes(d)
    assert all(a[f"{n}.csv"] != b[f"{n}.csv"] for n in FILES)


def test_truth_records_file_hashes_and_counts(tiny):
    d, truth = tiny
    assert json.loads((d / "truth.json").read_text(encoding="utf-8")) == truth
    for name in FILES:
        assert truth["sha256"][f"{name}.csv"] == hashlib.sha256((d / f"{name}.csv").read_bytes()).hexdigest()
        assert truth["counts"]["rows"][name] == len(_read(d, name))
    assert truth["seed"] == 3 and truth["scale"]["establishments"] == 60
    assert "SYNTHETIC" in (d / "README.txt").read_text(encoding="utf-8")


def test_committed_demo_is_current(tmp_path):
    """data/demo must be exactly what the generator gives today (regenerate and commit when it changes)."""
    if not (DEMO_DATASET / "truth.json").is_file():
        pytest.skip("data/demo not generated yet")
    generate_dataset(tmp_path, seed=2025, scale=DemoScale.small())
    assert _hashes(tmp_path) == _hashes(DEMO_DATASET)
    sizes = sum(p.stat().st_size for p in DEMO_DATASET.glob("*.csv"))
    assert sizes < 3_500_000  # 1,122 structures, ~3.2 MB of CSV


# ---------------------------------------------------------------------------------------------- contract
def test_files_follow_the_contract(tiny):
    d, _ = tiny
    for name in FILES:
        cols = list(_read(d, name).columns)
        spec = INPUT_FILES[name]
        assert set(spec["required"]) <= set(cols), name
        assert set(cols) <= set(spec["required"]) | set(spec["optional"]), name
    audits, est = _read(d, "audits"), _read(d, "establishments")
    assert audits["audit_id"].is_unique and est["finess"].is_unique
    assert set(audits["finess"]) <= set(est["finess"])
    f = _read(d, "findings")
    assert set(f["audit_id"]) <= set(audits["audit_id"])
    assert set(f["severity"]) <= set(SEVERITIES) | {""}
    assert (f["severity"] == "").any() and (f["severity"] != "").any()
    assert set(f["category"]) <= set(FINDING_CATEGORIES) | {""}
    assert set(f["protocol"]) <= {"tcp", "udp"}
    assert f["port"].astype(int).between(0, 65535).all()
    assert not f.duplicated(["audit_id", "host", "port", "protocol", "vuln_id"]).any()
    c = _read(d, "controls")
    assert set(c["control"]) <= set(CONTROLS) and set(c["present"]) == {"true", "false"}
    inc = _read(d, "incidents")
    assert inc["incident_id"].is_unique
    assert ((inc["finess"] != "") | (inc["category_code"] != "")).all()
    assert set(inc["nature"]) <= {"malicious", "accidental", "unknown"}


def test_hosts_of_findings_are_in_the_audit_perimeter(medium):
    d, _ = medium
    hosts, f, audits = _read(d, "hosts"), _read(d, "findings"), _read(d, "audits")
    perimeter = set(zip(hosts["audit_id"], hosts["host"], strict=True))
    assert set(zip(f["audit_id"], f["host"], strict=True)) <= perimeter
    n = hosts.groupby("audit_id").size()
    assert (
        audits.set_index("audit_id")["hosts_in_scope"].astype(int) == n.reindex(audits["audit_id"]).to_numpy()
    ).all()
    assert not hosts.duplicated().any()
    ip = hosts["host"].str.fullmatch(r"(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}")
    assert (ip | hosts["host"].str.endswith(".example")).all() and ip.any()


def test_dates_are_within_the_fixed_window(medium):
    d, truth = medium
    end = truth["end_date"]
    audits, inc = _read(d, "audits"), _read(d, "incidents")
    assert audits["audit_date"].max() <= end and audits["audit_date"].min() >= "2022-01-01"
    assert inc["declared_on"].max() <= end and inc["declared_on"].min() >= "2022-01-01"
    dates = pd.to_datetime(audits["audit_date"])
    gaps = dates.groupby(audits["finess"]).diff().dt.days.dropna()
    assert gaps.between(150, 400).all()


def test_pilot_audited_twice_six_months_apart(medium):
    d, truth = medium
    audits = _read(d, "audits")
    pilot = audits.loc[audits["finess"].isin(truth["establishments"]["pilot_finess"])]
    assert len(truth["establishments"]["pilot_finess"]) == MEDIUM.pilot_establishments
    days = (
        pd.to_datetime(pilot["audit_date"]).groupby(pilot["finess"]).agg(lambda s: (s.max() - s.min()).days)
    )
    assert (pilot.groupby("finess").size() == 2).all()
    assert days.between(175, 189).all()


# ---------------------------------------------------------------------------------------------- registry
def test_finess_have_a_department_prefix_and_a_luhn_key(medium):
    d, truth = medium
    est = _read(d, "establishments")
    ok = est["finess"].map(_luhn_ok)
    assert _luhn_ok("010000024") and _luhn_ok("2A0000212")  # published FINESS (open-data extract)
    assert sorted(est.loc[~ok, "finess"]) == truth["establishments"]["failing_key_finess"]
    assert 0.002 < (~ok).mean() < 0.02  # planted 1 %
    assert est["finess_ej"].map(_luhn_ok).all()
    over = est["finess"].str[:2].isin(["97", "98"])
    assert (
        (est.loc[over, "finess"].str[:4] + "|" + est.loc[over, "department"])
        .isin(["9701|971", "9702|972", "9703|973", "9704|974", "9805|976"])
        .all()
    )
    assert (est.loc[~over, "finess"].str[:2] == est.loc[~over, "department"]).all()
    assert est["finess"].str.fullmatch(r"[0-9][0-9AB][0-9]{7}").all()
    # the synthetic range: 9 right after the prefix (never there in the FINESS extraction of 2021)
    assert (est.loc[~over, "finess"].str[2] == "9").all() and est.loc[over, "finess"].str[4].isin(
        list("4789")
    ).all()
    assert set(est.loc[est["department"].isin(["2A", "2B"]), "region"]) == {"94"}


def test_family_mix_is_realistic():
    """A total is split in the frame's national proportions (largest remainder)."""
    frame = _frame_by_family()
    counts = DemoScale(establishments=10_000).family_counts()
    assert counts.sum() == 10_000
    exact = frame.reindex(counts.index) / frame.reindex(counts.index).sum() * 10_000
    assert (counts - exact).abs().max() < 1
    assert (
        counts["EHPAD"] == 3638 and counts["CH"] == 728 and counts["CHU/CHR"] == 181
    )  # 7501, 1501, 373 of 20617
    with pytest.raises(ValueError, match="unknown families"):
        DemoScale(establishments_per_family={"Hospital": 3}).family_counts()
    with pytest.raises(ValueError, match="audits_per_establishment"):
        generate_dataset(
            Path("/nonexistent/never"), scale=dataclasses.replace(TINY, audits_per_establishment=(3, 1))
        )


# ---------------------------------------------------------------------------------------------- population frame
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "finess"
FRAME_FILE = Path(__file__).resolve().parents[1] / "cyberobs_lib" / "data" / "demo_frame.csv"


def _frame() -> pd.DataFrame:
    """demo_frame.csv read naively (comment lines skipped) with each category's family."""
    frame = pd.read_csv(FRAME_FILE, dtype=str, comment="#", keep_default_na=False)
    return frame.assign(count=frame["count"].astype(int), family=frame["category_code"].map(_families()))


def _frame_by_family() -> pd.Series:
    return _frame().groupby("family")["count"].sum()


def test_frame_holds_the_published_national_counts():
    """National counts of the main categories as the reference README states them (FINESS 2021-01-08:
    CHR 373, CH 1,287, ex-hôpital local 214, CHS 1,460, CLCC 30, clinics 454/116/67, SSR 730, long-stay 594,
    HAD 146, EHPAD 7,501)."""
    frame = _frame()
    by_code = frame.groupby("category_code")["count"].sum()
    published = {"101": 373, "355": 1287, "106": 214, "292": 1460, "131": 30, "365": 454, "128": 116,
                 "129": 67, "109": 730, "362": 594, "127": 146, "500": 7501}  # fmt: skip
    assert {c: int(by_code[c]) for c in published} == published
    assert not frame.duplicated(["category_code", "department"]).any() and (frame["count"] > 0).all()
    assert set(frame["category_code"]) <= set(_families())
    deps = set(frame["department"])
    assert {"2A", "2B", "971", "972", "973", "974"} <= deps and "976" not in deps and len(deps) == 100
    assert set(frame.columns) == {"category_code", "department", "count", "source", "family"}


def test_frame_rebuilds_identically_from_the_sources(tmp_path):
    """scripts/build_demo_frame.py on ../shared/reference/finess gives the committed file byte for byte."""
    if not (REFERENCE / "finess_counts.csv").is_file() or not (REFERENCE / "finess_2021_flat.csv").is_file():
        pytest.skip("FINESS reference files absent")
    import subprocess
    import sys

    out = tmp_path / "frame.csv"
    script = FRAME_FILE.parents[2] / "scripts" / "build_demo_frame.py"
    done = subprocess.run(
        [sys.executable, str(script), "--reference", str(REFERENCE), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == FRAME_FILE.read_bytes()
    bad = subprocess.run(
        [
            sys.executable,
            str(script),
            "--reference",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "x.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "finess_counts.csv not found" in bad.stderr


def _chi2_p(observed: pd.Series, expected_share: pd.Series) -> float:
    """Pearson goodness of fit, cells of expected count below 5 pooled (Agresti, Categorical Data
    Analysis, 3rd ed., sec. 1.5)."""
    from scipy import stats

    expected = expected_share / expected_share.sum() * observed.sum()
    observed = observed.reindex(expected.index, fill_value=0)
    small = expected < 5
    obs = np.append(observed[~small].to_numpy(), observed[small].sum())
    exp = np.append(expected[~small].to_numpy(), expected[small].sum())
    keep = exp > 0
    if keep.sum() < 2:  # one cell (EHPAD has one category): nothing to fit, every unit is in it
        return 1.0 if obs[keep].sum() == observed.sum() else 0.0
    return float(stats.chisquare(obs[keep], exp[keep]).pvalue)


def test_departments_and_categories_follow_the_frame(medium):
    """Within each family, departments and categories are in the frame's proportions (within sampling
    error: simple random sampling without replacement is less variable than the multinomial the test assumes)."""
    d, truth = medium
    est = _read(d, "establishments").assign(family=lambda x: x["category_code"].map(_families()))
    frame = _frame()
    drawn = est.groupby("family").size()
    assert drawn.sum() == MEDIUM.establishments
    for family in ("EHPAD", "Psychiatry", "Other health", "Home care", "CH"):
        cells = frame.loc[frame["family"] == family]
        got = est.loc[est["family"] == family]
        assert drawn[family] > 200, family
        for key in ("department", "category_code"):
            p = _chi2_p(got.groupby(key).size(), cells.groupby(key)["count"].sum())
            assert p > 0.001, (family, key, p)
        assert set(got["department"]) <= set(cells["department"])
    from cyberobs_lib.registry import load_departments

    region = load_departments().set_index("department")["region_code"]
    assert (est["region"] == est["department"].map(region)).all()
    sampling = truth["establishments"]["sampling_by_family"]
    assert {f: v["drawn"] for f, v in sampling.items() if v["drawn"]} == drawn.to_dict()


def test_small_demo_sample_never_exceeds_the_frame():
    """The committed design: hypergeometric cells (at most the frame's count), whole families taken whole."""
    counts = DemoScale.small().family_counts()
    frame = _frame_by_family()
    fractions = DemoScale.small().sampling_fractions()
    assert (counts <= frame.reindex(counts.index)).all()
    assert counts["Cancer centre"] == 30 and counts["Army"] == 11 and fractions["Army"] == 1.0
    assert counts["EHPAD"] == 375 and abs(fractions["EHPAD"] - 0.05) < 1e-4
    assert (counts >= 11).all() and int(counts.sum()) == 1122
    drawn = sample_frame(np.random.default_rng(0), counts)
    cells = _frame().groupby(["category_code", "department"])["count"].sum()
    got = drawn.groupby(["category_code", "department"]).size()
    assert (got <= cells.reindex(got.index)).all()
    whole = _frame().loc[lambda f: f["family"].isin(["Cancer centre", "Army"])]
    got_whole = (
        drawn.loc[drawn["fam"].isin(["Cancer centre", "Army"])]
        .groupby(["category_code", "department"])
        .size()
    )
    assert got_whole.to_dict() == whole.set_index(["category_code", "department"])["count"].to_dict()
    more = sample_frame(np.random.default_rng(0), pd.Series({"Army": 25}))
    assert more.groupby("department").size().min() >= 2  # two whole copies of the 11 sites, then 3 more
    with pytest.raises(ValueError, match="frame"):
        sample_frame(np.random.default_rng(0), pd.Series({"Nowhere": 2}))


def test_synthetic_finess_are_never_real_numbers(medium):
    """No generated number (ET or EJ) is in the real FINESS extraction of 2021 (skipped when it is absent)."""
    d, _ = medium
    real_file = REFERENCE / "finess_2021_flat.csv"
    if not real_file.is_file():
        pytest.skip("FINESS extraction absent")
    real = pd.read_csv(real_file, dtype=str, usecols=["nofinesset", "nofinessej"], keep_default_na=False)
    real = set(real["nofinesset"]) | set(real["nofinessej"])
    assert "010000024" in real  # the extraction is read as strings (leading zeros kept)
    folders = [d] + ([DEMO_DATASET] if (DEMO_DATASET / "establishments.csv").is_file() else [])
    for folder in folders:
        est = _read(folder, "establishments")
        generated = set(est["finess"]) | set(est["finess_ej"])
        assert not generated & real, folder
        inc = _read(folder, "incidents")
        assert not set(inc["finess"]) & real, folder
        assert not est["name"].isin(pd.read_csv(real_file, dtype=str, usecols=["name"])["name"]).any()


def test_synthetic_finess_range_and_capacity():
    numbers = synthetic_finess(np.random.default_rng(1), pd.Series(["01", "2A", "9704"] * 50))
    assert numbers.is_unique and numbers.map(_luhn_ok).all()
    assert (numbers.str[2] == "9").sum() == 100 and numbers[numbers.str[:4] == "9704"].str[4].isin(
        list("4789")
    ).all()
    with pytest.raises(ValueError, match="too many synthetic FINESS numbers"):
        synthetic_finess(np.random.default_rng(1), pd.Series(["9701"] * 4001))
    assert synthetic_finess(np.random.default_rng(1), pd.Series(["9701"] * 4000)).is_unique  # the whole range


# ---------------------------------------------------------------------------------------------- planted effects
def _first_audits(d: Path) -> pd.DataFrame:
    audits = _read(d, "audits").sort_values(["finess", "audit_date"])
    est = _read(d, "establishments")
    return audits.drop_duplicates("finess").merge(est, on="finess")


def test_no_protection_share_at_first_audit(medium):
    d, truth = medium
    first = _first_audits(d)
    c = _read(d, "controls")
    c = c.loc[c["audit_id"].isin(first["audit_id"])]
    none = ~c.assign(p=c["present"] == "true").groupby("audit_id")["p"].any()
    expected = truth["controls"]["no_control_expected_overall"]
    se = np.sqrt(expected * (1 - expected) / len(none))
    assert abs(none.mean() - expected) < 3.5 * se
    assert 0.60 < expected < 0.75
    unknown = len(_read(d, "audits")) - _read(d, "controls")["audit_id"].nunique()
    assert unknown == truth["controls"]["audits_without_controls"] > 0


def test_findings_per_host_by_family_recover_rate_ratios(medium):
    d, truth = medium
    first = _first_audits(d)
    f = _read(d, "findings")
    n = f.loc[f["audit_id"].isin(first["audit_id"])].groupby("audit_id").size()
    first = first.assign(
        n=n.reindex(first["audit_id"], fill_value=0).to_numpy(), hosts=first["hosts_in_scope"].astype(int)
    )
    fam = first["category_code"].map(_families())
    beta = truth["findings"]["size_beta"]
    exposure = first["hosts"] * (first["beds"].astype(int) / truth["findings"]["size_reference_beds"]) ** beta
    crude = first.groupby(fam)["n"].sum() / first.groupby(fam)["hosts"].sum()
    adjusted = first.groupby(fam)["n"].sum() / exposure.groupby(fam).sum()
    rr = adjusted / adjusted["CH"]
    planted = truth["findings"]["rate_ratio"]
    # the families of MEDIUM with more than 250 structures (3,000 split in the frame's proportions)
    for family in ("EHPAD", "Psychiatry", "Home care", "Other health"):
        assert (fam == family).sum() > 200, family
        assert rr[family] == pytest.approx(planted[family], rel=0.15), family
    # CHU/CHR differs from CH only through size: crude per-host rate higher, adjusted ratio near 1
    assert "CHU/CHR" in truth["findings"]["size_only_families"]
    # raw findings per audit: more hosts (beds**0.5) and more findings per host ((beds/100)**0.3)
    per_audit = first.groupby(fam)["n"].mean()
    assert per_audit["CHU/CHR"] / per_audit["CH"] > 2.0
    assert crude["CHU/CHR"] > crude["CH"]
    # only ~54 CHU sites, and repeated draws on dense hosts are deduplicated (a few % fewer findings)
    assert rr["CHU/CHR"] == pytest.approx(1.0, abs=0.35)
    assert rr["EHPAD"] > rr["Psychiatry"] > rr["CH"]


def _families() -> dict[str, str]:
    from cyberobs_lib.demo._world import CATEGORIES_PATH, read_commented_csv

    t = read_commented_csv(CATEGORIES_PATH)
    return dict(zip(t["category_code"], t["family"], strict=True))


def _transitions(d: Path) -> pd.DataFrame:
    """Findings of each audit matched to the next audit of the same establishment (naive, from files)."""
    audits = _read(d, "audits").sort_values(["finess", "audit_date"])
    audits["next"] = audits.groupby("finess")["audit_id"].shift(-1)
    audits["gap"] = (
        pd.to_datetime(audits.groupby("finess")["audit_date"].shift(-1))
        - pd.to_datetime(audits["audit_date"])
    ).dt.days
    f = _read(d, "findings")
    key = ["host", "port", "protocol", "vuln_id"]
    cur = f.merge(audits[["audit_id", "next", "gap"]], on="audit_id").dropna(subset=["next"])
    hosts = _read(d, "hosts").rename(columns={"audit_id": "next"}).assign(in_scope=True)
    cur = cur.merge(hosts, on=["next", "host"], how="left")
    cur["in_scope"] = cur["in_scope"].eq(True)
    nxt = f[["audit_id", *key]].rename(columns={"audit_id": "next"}).assign(seen=True)
    cur = cur.merge(nxt, on=["next", *key], how="left")
    cur["seen"] = cur["seen"].eq(True)
    cat = load_catalog().set_index("vuln_id")["severity"]
    return cur.assign(sev=cur["vuln_id"].map(cat))


def test_remediation_is_faster_for_critical_than_low(medium):
    d, truth = medium
    t = _transitions(d)
    t = t.loc[t["in_scope"]]
    fixed = (~t["seen"]).groupby(t["sev"]).mean()
    assert fixed["critical"] > fixed["high"] > fixed["medium"] > fixed["low"]
    # exponential fix times: P(fixed by next audit) = 1 - exp(-ln2 gap / median), minus reopenings/redraws
    med = truth["remediation"]["median_fix_days"]
    for sev in ("medium", "low"):
        g = t.loc[t["sev"] == sev, "gap"]
        expected = (1 - np.exp(-np.log(2) * g / med[sev])).mean()
        assert fixed[sev] == pytest.approx(expected, abs=0.05), sev
    counts = truth["counts"]["findings_by_status"]
    assert counts["reopened"] > 0 and counts["persistent"] > 0
    assert _read(d, "findings")["title"].str.endswith(truth["remediation"]["title_variation_suffix"]).any()


def _paired_counts(d: Path) -> pd.Series:
    audits = _read(d, "audits").sort_values(["finess", "audit_date"])
    n = _read(d, "findings").groupby("audit_id").size().reindex(audits["audit_id"], fill_value=0).to_numpy()
    audits = audits.assign(n=n, rank=audits.groupby("finess").cumcount())
    wide = audits.pivot(index="finess", columns="rank", values="n").dropna(subset=[1])
    return wide[1] - wide[0]


def test_paired_counts_improve_only_when_remediation_is_planted(tmp_path, medium):
    d, _ = medium
    diff = _paired_counts(d)
    assert diff.mean() < -3 * diff.std() / np.sqrt(len(diff))  # clear improvement
    truth = generate_dataset(tmp_path, seed=7, scale=MEDIUM, plant_remediation=False)
    assert truth["remediation"]["remediation_planted"] is False
    diff0 = _paired_counts(tmp_path)
    assert abs(diff0.mean()) < 3 * diff0.std() / np.sqrt(len(diff0))  # no improvement, no drift
    assert truth["counts"]["findings_by_status"].get("reopened", 0) == 0


def test_incident_odds_ratio_after_exposed_first_audit(medium):
    d, truth = medium
    first = _first_audits(d)
    end = pd.Timestamp(truth["end_date"])
    first = first.assign(date=pd.to_datetime(first["audit_date"]))
    first = first.loc[first["date"] + pd.Timedelta(days=365) <= end]
    cat = load_catalog()
    risky = set(cat.loc[cat["kev"] | cat["remote_admin"], "vuln_id"])
    f = _read(d, "findings")
    exposed_ids = set(f.loc[f["vuln_id"].isin(risky), "audit_id"])
    inc = _read(d, "incidents")
    inc = inc.loc[inc["finess"] != ""].assign(day=lambda x: pd.to_datetime(x["declared_on"]))
    m = first[["finess", "date", "category_code"]].merge(inc[["finess", "day"]], on="finess", how="left")
    hit = (
        ((m["day"] > m["date"]) & (m["day"] <= m["date"] + pd.Timedelta(days=365))).groupby(m["finess"]).any()
    )
    first = first.assign(y=hit.reindex(first["finess"]).to_numpy(), x=first["audit_id"].isin(exposed_ids))
    first = first.assign(fam=first["category_code"].map(_families()))
    # Mantel-Haenszel odds ratio over families (Rothman, Modern Epidemiology, ch. 15)
    num = den = 0.0
    for _, g in first.groupby("fam"):
        a = (g["x"] & g["y"]).sum()
        b = (g["x"] & ~g["y"]).sum()
        c = (~g["x"] & g["y"]).sum()
        dd = (~g["x"] & ~g["y"]).sum()
        num += a * dd / len(g)
        den += b * c / len(g)
    planted = truth["incidents"]["incident_exposure_odds_ratio"]
    assert planted == 2.5
    assert 1.5 < num / den < 4.5
    assert 0.3 < first["x"].mean() < 0.95  # exposure is neither rare nor universal


# ---------------------------------------------------------------------------------------------- catalog
def test_catalog_scores_match_their_vectors():
    import cvss

    cat = load_catalog()
    assert cat["vuln_id"].is_unique and 40 <= len(cat) <= 90
    scored = cat.loc[cat["cvss_vector"] != ""]
    for vector, score, severity in zip(
        scored["cvss_vector"], scored["cvss_score"], scored["severity"], strict=True
    ):
        v = cvss.CVSS3(vector)  # FIRST CVSS v3.1 specification
        assert v.scores()[0] == float(score), vector
        assert v.severities()[0].lower() == severity, vector
    assert set(cat["severity"]) <= set(SEVERITIES) and set(cat["category"]) <= set(FINDING_CATEGORIES)
    assert cat.loc[cat["cve"] != "", "cve"].str.fullmatch(r"CVE-\d{4}-\d{4,}(;CVE-\d{4}-\d{4,})*").all()
    assert (cat["cve"] == "").sum() >= 15  # plain misconfigurations


@pytest.mark.corpus
def test_catalog_kev_flags_match_the_cisa_catalog(corpus_dir):
    kev = json.loads(
        (corpus_dir / "kev" / "known_exploited_vulnerabilities.json").read_text(encoding="utf-8")
    )
    listed = {v["cveID"]: v["knownRansomwareCampaignUse"] == "Known" for v in kev["vulnerabilities"]}
    cat = load_catalog()
    cat = cat.loc[cat["cve"] != ""]
    ids = cat["cve"].str.split(";")
    assert (ids.map(lambda c: any(i in listed for i in c)) == cat["kev"]).all()
    assert (ids.map(lambda c: any(listed.get(i, False) for i in c)) == cat["ransomware"]).all()
