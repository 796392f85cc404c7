"""Benchmark of the whole cohort study, and the generator of canonical tables with planted effects.

Run: ``.venv/bin/python benchmarks/bench_cohorts.py --findings 10000000`` (one run; prints wall time and
peak resident memory of each step and of the whole study). The generator :func:`make_planted_tables`
is also used by ``tests/test_cohorts.py`` to check that adjusted rate ratios recover planted values.

Planted model (per audit): findings ~ Poisson(hosts x base x RR_family x RR_status x beds^beta x G),
G ~ Gamma(shape, 1/shape) (negative binomial overall). CHU/CHR has RR 1 but much larger beds: a crude
difference that is only a size effect.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

FAMILIES = {  # share of establishments, median beds, planted rate ratio vs CH, P(no protection)
    "CH": (0.25, 300, 1.0, 0.60),
    "CHU/CHR": (0.08, 1500, 1.0, 0.50),
    "EHPAD": (0.42, 80, 1.6, 0.80),
    "Private clinic (MCO)": (0.25, 150, 0.7, 0.65),
}
STATUS = {  # family -> (statuses, probabilities)
    "CH": (["public"], [1.0]),
    "CHU/CHR": (["public"], [1.0]),
    "EHPAD": (["public", "private_nonprofit", "private_forprofit"], [0.5, 0.3, 0.2]),
    "Private clinic (MCO)": (["private_nonprofit", "private_forprofit"], [0.25, 0.75]),
}
STATUS_RR = {"public": 1.0, "private_nonprofit": 1.0, "private_forprofit": 0.8}
REGIONS = ["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"]
BETA_LOG_BEDS = 0.25
SEVERITIES = (["critical", "high", "medium", "low"], [0.05, 0.15, 0.35, 0.45])
CATEGORIES = (
    ["exposed_remote_admin", "unpatched_software", "tls_certificate", "web_misconfiguration", "other"],
    [0.04, 0.30, 0.25, 0.25, 0.16],
)


def make_planted_tables(
    n_establishments: int,
    *,
    base_rate: float = 2.0,
    years: tuple[int, ...] = (2023, 2024, 2025),
    audit_probability: float = 0.7,
    shape: float = 4.0,
    seed: int = 2025,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Canonical tables (establishments, audits, findings, protection) and the planted truth.

    ``base_rate`` is the expected findings per host of a CH of e^0 beds scale-free: the rate of an audit
    is ``base_rate x RR_family x RR_status x (beds / 100)^beta`` per host.
    """
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    family = rng.choice(names, size=n_establishments, p=[FAMILIES[f][0] for f in names])
    median_beds = np.array([FAMILIES[f][1] for f in family], float)
    beds = np.maximum(5, np.round(median_beds * rng.lognormal(0, 0.35, n_establishments))).astype("int64")
    status = np.empty(n_establishments, dtype=object)
    for f in names:  # four families
        mask = family == f
        status[mask] = rng.choice(STATUS[f][0], size=mask.sum(), p=STATUS[f][1])
    finess = np.char.zfill(np.arange(1, n_establishments + 1).astype(str), 9)
    est = pd.DataFrame(
        {
            "finess": finess,
            "family": family,
            "legal_status": status,
            "region": rng.choice(REGIONS, size=n_establishments),
            "beds": beds,
        }
    )
    audited = rng.random((n_establishments, len(years))) < audit_probability
    e_idx, y_idx = np.nonzero(audited)
    n_audits = len(e_idx)
    year = np.asarray(years)[y_idx]
    day = rng.integers(0, 365, n_audits)
    dates = pd.to_datetime(year.astype(str), format="%Y") + pd.to_timedelta(day, unit="D")
    hosts = 1 + rng.poisson(3 * (beds[e_idx] / 100) ** 0.4)
    rr = (
        np.array([FAMILIES[f][2] for f in family])[e_idx]
        * np.array([STATUS_RR[s] for s in status])[e_idx]
        * (beds[e_idx] / 100.0) ** BETA_LOG_BEDS
    )
    mu = hosts * base_rate * rr * rng.gamma(shape, 1 / shape, n_audits)
    n_findings = rng.poisson(mu)
    audit_ids = np.char.add("AU", np.arange(n_audits).astype(str))
    aud = pd.DataFrame(
        {"audit_id": audit_ids, "finess": finess[e_idx], "audit_date": dates, "hosts_in_scope": hosts}
    )
    total = int(n_findings.sum())
    codes = np.repeat(np.arange(n_audits, dtype=np.int32), n_findings)
    fnd = pd.DataFrame(
        {
            "audit_id": pd.Categorical.from_codes(codes, categories=audit_ids),
            "severity": pd.Categorical.from_codes(
                rng.choice(len(SEVERITIES[0]), size=total, p=SEVERITIES[1]).astype(np.int8), SEVERITIES[0]
            ),
            "category": pd.Categorical.from_codes(
                rng.choice(len(CATEGORIES[0]), size=total, p=CATEGORIES[1]).astype(np.int8), CATEGORIES[0]
            ),
            "known_exploited": rng.random(total) < 0.01,
        }
    )
    p_none = np.array([FAMILIES[f][3] for f in family])[e_idx]
    no_protection = pd.array(rng.random(n_audits) < p_none, dtype="boolean")
    no_protection[rng.random(n_audits) < 0.1] = pd.NA
    prot = pd.DataFrame({"audit_id": audit_ids, "no_protection": no_protection})
    truth = {
        "reference": "CH",
        "rate_ratio": {f: FAMILIES[f][2] for f in names if f != "CH"},
        "rate_ratio_per_log_bed": float(np.exp(BETA_LOG_BEDS)),
        "size_only_family": "CHU/CHR",
    }
    tables = {"establishments": est, "audits": aud, "findings": fnd, "protection": prot}
    return tables, truth


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from cyberobs_lib.studies import cohorts, indicators

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=10_000_000, help="approximate number of findings")
    parser.add_argument("--establishments", type=int, default=35_000)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()
    # expected findings per audit ~ hosts (~5) x base x mean RR (~1.3): scale base_rate to the target
    audits = args.establishments * 3 * 0.7
    base = args.findings / (audits * 5.6 * 1.3) * 1.103  # calibrated: 9.07 M findings without the factor
    t0 = time.perf_counter()
    tables, _ = make_planted_tables(args.establishments, base_rate=base, seed=args.seed)
    print(f"generated {len(tables['findings']):,} findings, {len(tables['audits']):,} audits "
          f"in {time.perf_counter() - t0:.1f} s; peak RSS {_peak_rss_mb():,.0f} MB")  # fmt: skip
    steps = {}
    start = time.perf_counter()

    def step(name, fn):
        t = time.perf_counter()
        out = fn()
        steps[name] = time.perf_counter() - t
        print(f"{name:<24} {steps[name]:7.2f} s   peak RSS {_peak_rss_mb():,.0f} MB")
        return out

    m = step("audit_metrics", lambda: indicators.audit_metrics(tables))
    step("compute_indicators", lambda: indicators.compute_indicators(m))
    step("coverage", lambda: indicators.coverage(tables["establishments"], m))
    step("compare_families", lambda: cohorts.compare_families(m, reference="CH"))
    step("adjusted_rate_ratios", lambda: cohorts.adjusted_rate_ratios(m, reference="CH"))
    step("adjusted_odds_ratios", lambda: cohorts.adjusted_odds_ratios(m, reference="CH"))
    step("family_trends", lambda: cohorts.family_trends(m))
    print(f"whole cohort study: {time.perf_counter() - start:.1f} s; peak RSS {_peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
