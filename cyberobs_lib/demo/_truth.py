"""truth.json: every planted parameter of the synthetic world and the counts actually written."""

from __future__ import annotations

from pathlib import Path

from cyberobs_lib.demo import _world as W
from cyberobs_lib.demo._generate import FILES
from cyberobs_lib.io import sha256_file
from cyberobs_lib.schema import CONTRACT_VERSION


def build_truth(seed, scale, plant_remediation, est, writer, tally, out: Path) -> dict:
    """The truth dict (JSON-ready) of a generated dataset folder ``out``."""
    fam = W.FAMILY_TABLE.set_index("family")
    counts = scale.family_counts()
    ref_beds = fam.loc[W.REFERENCE_FAMILY, "beds_median"]
    size_only = [
        f
        for f in fam.index
        if f != W.REFERENCE_FAMILY
        and fam.loc[f, "rate_ratio"] == 1.0
        and fam.loc[f, "beds_median"] != ref_beds
    ]
    none = tally["first_audit_no_control"]
    n_none, n_first = sum(v[0] for v in none.values()), sum(v[1] for v in none.values())
    weights = counts[counts > 0]
    frame = W.load_frame()
    national = W.frame_family_counts()
    fractions = scale.sampling_fractions()
    sampling = {
        f: {
            "frame": int(national[f]),
            "drawn": int(counts[f]),
            "sampling_fraction": round(float(fractions[f]), 4) if national[f] else None,
            "design_weight": round(float(national[f] / counts[f]), 3) if counts[f] else None,
        }
        for f in counts.index
    }
    return {
        "synthetic": True,
        "generator": "cyberobs_lib.demo.generate_dataset",
        "generator_version": W.GENERATOR_VERSION,
        "contract_version": CONTRACT_VERSION,
        "seed": seed,
        "random_streams": "numpy default_rng(SeedSequence(seed, spawn_key=(i,))): 0 registry, i+1 chunk i",
        "scale": scale.to_dict(),
        "end_date": scale.end_date,
        "establishments": {
            "family_parameters": W.FAMILY_TABLE.set_index("family")
            .drop(columns=["no_control", "incidents_per_1000", "rate_ratio"])
            .to_dict(orient="index"),
            "beds": "round(beds_median * exp(Normal(0, beds_sigma))), at least 5",
            "frame": {
                "file": f"cyberobs_lib/data/{W.FRAME_PATH.name}",
                "sha256": sha256_file(W.FRAME_PATH),
                "source": "FINESS open-data extraction of 2021-01-08: geographic establishments (ET) per category code and department (scripts/build_demo_frame.py)",
                "families_not_drawn": sorted(set(frame.loc[~frame["in_demo"], "family"])),
            },
            "sampling": "stratified by family: within a family, the frame's establishments are drawn without replacement (category and department in the frame's proportions); sampling_fraction = drawn / frame, design_weight = frame / drawn",
            "sampling_by_family": sampling,
            "departments_drawn": int(est["department"].nunique()),
            "finess": f"department prefix (2 characters, 4 overseas: 9701-9704) + a digit never at that place in a real FINESS number of the 2021 extraction ({W.SYNTHETIC_DIGITS['metropolitan']} metropolitan, one of {W.SYNTHETIC_DIGITS['overseas']} overseas) + random digits + Luhn key over the 9 characters (2A/2B: A=1, B=2)",
            "failing_key_share": W.FAILING_KEY_SHARE,
            "failing_key_count": "exactly max(1, round(failing_key_share * establishments))",
            "failing_key_finess": sorted(est.loc[~est["key_ok"], "finess"].tolist()),
            "chu_legal_entity": "CHU/CHR sites of one department share one legal entity (finess_ej)",
            "family_override": f"the first {W.FAMILY_OVERRIDE_ROWS} CHU/CHR rows carry family=CHU/CHR explicitly (same as derived); all other rows leave it empty",
            "audited_share": scale.audited_share,
            "audited": int(est["audited"].sum()),
            "pilot_finess": sorted(est.loc[est["pilot"], "finess"].tolist()),
        },
        "audits": {
            "audits_per_establishment": list(scale.audits_per_establishment),
            "gap_days_uniform": list(W.GAP_DAYS),
            "pilot_gap_days": [W.PILOT_GAP_DAYS - W.PILOT_GAP_JITTER, W.PILOT_GAP_DAYS + W.PILOT_GAP_JITTER],
            "schedule": "first audit uniform so that the planned audits fit; audits after end_date are dropped",
        },
        "hosts": {
            "hosts_in_scope": "max(1, Poisson(coef * beds**exponent * LogNormal(-sigma^2/2, sigma)))",
            "coef": W.HOSTS_COEF,
            "exponent": W.HOSTS_EXPONENT,
            "sigma": W.HOSTS_SIGMA,
            "removal_share": W.HOST_REMOVAL_SHARE,
            "addition_rate": W.HOST_ADDITION_RATE,
            "address_ranges": [r + ".0/24" for r in W.ADDRESS_RANGES],
            "fqdn_domain": ".example",
        },
        "findings": {
            "model": "NegBin2: count ~ NB(mean, dispersion); mean = hosts_in_scope * base_rate_per_host * rate_ratio[family] * (beds / size_reference_beds) ** size_beta * findings_per_host",
            "base_rate_per_host": W.BASE_RATE_PER_HOST,
            "reference_family": W.REFERENCE_FAMILY,
            "rate_ratio": fam["rate_ratio"].to_dict(),
            "size_beta": W.SIZE_BETA,
            "size_reference_beds": W.SIZE_REFERENCE_BEDS,
            "dispersion": W.DISPERSION,
            "size_only_families": size_only,
            "catalog": "cyberobs_lib/data/demo_cves.csv",
            "catalog_sha256": sha256_file(W.CATALOG_PATH),
            "duplicates": "a (host, vuln_id) drawn twice in one audit is written once",
            "blank_severity_share_of_scored": W.BLANK_SEVERITY_SHARE,
            "blank_score_share_of_scored": W.BLANK_SCORE_SHARE,
            "category_filled_share": W.CATEGORY_FILLED_SHARE,
        },
        "remediation": {
            "remediation_planted": plant_remediation,
            "fix_time": "exponential from first appearance; a finding open at one audit is fixed by the next with probability 1 - exp(-ln2 * gap / median)"
            if plant_remediation
            else "none: each finding is replaced (another vulnerability on the same host) with probability replacement_share, so expected counts are stationary",
            "median_fix_days": W.MEDIAN_FIX_DAYS if plant_remediation else None,
            "new_findings_per_year_relative": W.NEW_FINDINGS_PER_YEAR if plant_remediation else 0.0,
            "replacement_share": None if plant_remediation else W.REPLACEMENT_SHARE,
            "reopen_probability": W.REOPEN_PROBABILITY if plant_remediation else 0.0,
            "title_variation_share": W.TITLE_VARIATION_SHARE,
            "title_variation_suffix": W.TITLE_VARIATION_SUFFIX,
            "identity": "host, port, protocol, vuln_id are stable across audits; findings on hosts that leave the perimeter disappear without being fixed",
        },
        "controls": {
            "no_control_first_audit_share": fam["no_control"].to_dict(),
            "no_control_expected_overall": round(
                float((weights * fam.loc[weights.index, "no_control"]).sum() / weights.sum()), 4
            ),
            "no_control_national_mix": round(
                float((national * fam.loc[national.index, "no_control"]).sum() / national.sum()), 4
            ),
            "presence_when_any": W.CONTROL_PRESENCE,
            "adoption_per_followup": W.CONTROL_ADOPTION,
            "loss_per_followup": W.CONTROL_LOSS,
            "unknown_status_share": W.UNKNOWN_CONTROLS_SHARE,
            "audits_without_controls": tally["audits_without_controls"],
            "indicator": "no protection mechanism = every observed control absent; audits without rows are unknown",
        },
        "incidents": {
            "rate_per_1000_per_year": fam["incidents_per_1000"].to_dict(),
            "background": "Poisson(rate/1000) per establishment and year, dates uniform within the year",
            "incident_exposure_odds_ratio": W.INCIDENT_EXPOSURE_ODDS_RATIO,
            "exposure_definition": W.EXPOSURE_DEFINITION,
            "window_days": W.INCIDENT_WINDOW_DAYS,
            "unit": "first audit of each audited establishment: P(incident in (date, date+365]) has logit = logit(1 - exp(-rate/1000)) + log(OR) * exposed; background incidents in that window are removed; window incidents after end_date are dropped",
            "nature_shares": W.NATURE_SHARES,
            "type_shares": W.TYPE_SHARES,
            "impact_shares": W.IMPACT_SHARES,
            "finess_missing_share": W.INCIDENT_FINESS_MISSING_SHARE,
        },
        "counts": {
            "rows": dict(writer.rows),
            "findings_by_status": dict(sorted(tally["findings_by_status"].items())),
            "transitions": dict(sorted(tally["transitions"].items())),
            "first_audit_no_control": {k: {"none": v[0], "known": v[1]} for k, v in sorted(none.items())},
            "first_audit_no_control_share": round(n_none / n_first, 4) if n_first else None,
            "first_audits": tally["first_audits"],
            "exposed_first_audits": tally["exposed_first_audits"],
            "window_incidents": tally["window_incidents"],
            "pilot_audits": tally["pilot_audits"],
        },
        "sha256": {f"{name}.csv": sha256_file(out / f"{name}.csv") for name in FILES},
    }
