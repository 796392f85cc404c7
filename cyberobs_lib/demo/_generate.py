"""Orchestration: draw the world chunk by chunk, write the dataset folder and ``truth.json``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W
from cyberobs_lib.demo._audits import schedule, simulate
from cyberobs_lib.demo._outcomes import simulate_controls, simulate_incidents
from cyberobs_lib.schema import CONTRACT_VERSION, INPUT_FILES

FILES = ("establishments", "audits", "hosts", "findings", "controls", "incidents")
_CATALOG_CACHE: dict[str, pd.DataFrame] = {}


def load_catalog() -> pd.DataFrame:
    """The demo vulnerability catalog ``demo_cves.csv`` (strings; empty cells as ``""``)."""
    if "c" not in _CATALOG_CACHE:
        c = W.read_commented_csv(W.CATALOG_PATH)
        c["weight"] = c["weight"].astype(float)
        for col in ("kev", "ransomware", "remote_admin"):
            c[col] = c[col].eq("true")
        _CATALOG_CACHE["c"] = c
    return _CATALOG_CACHE["c"].copy()


#: Column order of each file (data-contract.md table order); every name is a contract column.
_ORDER = {
    "establishments": [
        "finess",
        "finess_ej",
        "name",
        "category_code",
        "legal_status",
        "department",
        "region",
        "beds",
        "family",
    ],
    "audits": ["audit_id", "finess", "audit_date", "hosts_in_scope", "scanner", "perimeter"],
    "hosts": ["audit_id", "host"],
    "findings": [
        "audit_id",
        "host",
        "port",
        "protocol",
        "service",
        "vuln_id",
        "cve",
        "title",
        "cvss_vector",
        "cvss_score",
        "severity",
        "category",
    ],
    "controls": ["audit_id", "control", "present"],
    "incidents": [
        "incident_id",
        "declared_on",
        "finess",
        "category_code",
        "family",
        "nature",
        "type",
        "impact_on_care",
    ],
}


def _columns(name: str) -> list[str]:
    spec = INPUT_FILES[name]
    known = set(spec["required"]) | set(spec["optional"])
    assert set(_ORDER[name]) <= known and set(spec["required"]) <= set(_ORDER[name]), name
    return _ORDER[name]


def _iso(d) -> np.ndarray:
    return np.datetime_as_string(np.asarray(d, dtype="datetime64[D]"), unit="D")


def host_names(est: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Host strings: RFC 5737 documentation addresses or fictitious FQDNs under ``.example``.

    Unique within an establishment: the address index ``(37 est + h) mod 762`` differs for every
    ``h < 762``; hosts ``h % 5 in {1, 3}`` and ``h >= 760`` are FQDNs ``srvNNN.etabNNNNNN.example``.
    """
    est = np.asarray(est, dtype=np.int64)
    h = np.asarray(h, dtype=np.int64)
    fq = np.isin(h % 5, (1, 3)) | (h >= 760)
    j = (est * 37 + h) % 762
    ranges = np.array(W.ADDRESS_RANGES, dtype=object)
    ip = pd.Series(ranges[j // 254]) + "." + pd.Series(j % 254 + 1).astype(str)
    fqdn = (
        "srv"
        + pd.Series(h).astype(str).str.zfill(3)
        + ".etab"
        + pd.Series(est).astype(str).str.zfill(6)
        + ".example"
    )
    return np.where(fq, fqdn.to_numpy(dtype=object), ip.to_numpy(dtype=object))


def _audit_ids(est, k) -> pd.Series:
    return (
        "A"
        + pd.Series(np.asarray(est)).astype(str).str.zfill(6)
        + "-"
        + pd.Series(np.asarray(k) + 1).astype(str).str.zfill(2)
    )


def _lookup(names: pd.Series, keys: np.ndarray) -> np.ndarray:
    """Strings for many rows from a small table of distinct keys (avoids per-row string building)."""
    return names.to_numpy(dtype=object)[names.index.get_indexer(keys)]


def _findings_frame(
    rng, f: pd.DataFrame, catalog: pd.DataFrame, ids: pd.Series, hostnames: pd.Series
) -> pd.DataFrame:
    c = catalog.iloc[f["item"].to_numpy()].reset_index(drop=True)
    n = len(f)
    has_vector = c["cvss_vector"].ne("").to_numpy()
    severity = c["severity"].where(~(has_vector & (rng.random(n) < W.BLANK_SEVERITY_SHARE)), "")
    score = c["cvss_score"].where(~(has_vector & (rng.random(n) < W.BLANK_SCORE_SHARE)), "")
    category = c["category"].where(rng.random(n) < W.CATEGORY_FILLED_SHARE, "")
    title = c["title"].where(~f["retitled"].to_numpy(dtype=bool), c["title"] + W.TITLE_VARIATION_SUFFIX)
    return pd.DataFrame(
        {
            "audit_id": _lookup(ids, f["est"].to_numpy(np.int64) * 100 + f["k"].to_numpy(np.int64)),
            "host": _lookup(hostnames, f["est"].to_numpy(np.int64) * 1_000_000 + f["h"].to_numpy(np.int64)),
            "port": c["port"],
            "protocol": c["protocol"],
            "service": c["service"],
            "vuln_id": c["vuln_id"],
            "cve": c["cve"],
            "title": title,
            "cvss_vector": c["cvss_vector"],
            "cvss_score": score,
            "severity": severity,
            "category": category,
        }
    )


class _Writer:
    """Append sorted chunks to the CSV files (header once, ``\\n`` line ends, no index)."""

    def __init__(self, out: Path):
        self.out = out
        self.rows = dict.fromkeys(FILES, 0)
        for name in FILES:
            pd.DataFrame(columns=_columns(name)).to_csv(out / f"{name}.csv", index=False, lineterminator="\n")

    def append(self, name: str, df: pd.DataFrame, sort: list[str]) -> None:
        df = df[_columns(name)].sort_values(sort, kind="stable")
        with open(self.out / f"{name}.csv", "a", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False, header=False, lineterminator="\n")
        self.rows[name] += len(df)


def _chunk(rng, est, catalog, scale, plant_remediation, writer, tally) -> None:
    audits = schedule(rng, est, scale)
    hosts, found = simulate(rng, est, audits, catalog, scale=scale, plant_remediation=plant_remediation)
    controls = simulate_controls(rng, est, audits)
    first = found.loc[found["k"] == 0]
    risky = (catalog["kev"] | catalog["remote_admin"]).to_numpy()
    exposed = pd.Series(risky[first["item"].to_numpy()], index=first["est"].to_numpy()).groupby(level=0).any()
    exposed = exposed.reindex(audits.loc[audits["k"] == 0, "est"], fill_value=False)
    incidents = simulate_incidents(rng, est, audits, exposed, years=scale.years, end_date=scale.end_date)
    e = est.set_index("est")
    n_hosts = hosts.groupby(["est", "k"]).size().rename("hosts_in_scope")
    a = audits.join(n_hosts, on=["est", "k"])
    ids = pd.Series(
        _audit_ids(a["est"], a["k"]).to_numpy(),
        index=a["est"].to_numpy(np.int64) * 100 + a["k"].to_numpy(np.int64),
    )
    uh = hosts[["est", "h"]].drop_duplicates()
    hostnames = pd.Series(
        host_names(uh["est"], uh["h"]),
        index=uh["est"].to_numpy(np.int64) * 1_000_000 + uh["h"].to_numpy(np.int64),
    )
    writer.append(
        "audits",
        pd.DataFrame(
            {
                "audit_id": ids.to_numpy(),
                "finess": e.loc[a["est"], "finess"].to_numpy(),
                "audit_date": _iso(a["date"]),
                "hosts_in_scope": a["hosts_in_scope"].to_numpy(),
                "scanner": "nessus",
                "perimeter": "internet",
            }
        ),
        ["audit_id"],
    )
    writer.append(
        "hosts",
        pd.DataFrame(
            {
                "audit_id": _lookup(
                    ids, hosts["est"].to_numpy(np.int64) * 100 + hosts["k"].to_numpy(np.int64)
                ),
                "host": _lookup(
                    hostnames, hosts["est"].to_numpy(np.int64) * 1_000_000 + hosts["h"].to_numpy(np.int64)
                ),
            }
        ),
        ["audit_id", "host"],
    )
    writer.append(
        "findings",
        _findings_frame(rng, found, catalog, ids, hostnames),
        ["audit_id", "host", "port", "vuln_id"],
    )
    writer.append(
        "controls",
        pd.DataFrame(
            {
                "audit_id": _lookup(
                    ids, controls["est"].to_numpy(np.int64) * 100 + controls["k"].to_numpy(np.int64)
                ),
                "control": controls["control"].to_numpy(),
                "present": np.where(controls["present"], "true", "false"),
            }
        ),
        ["audit_id", "control"],
    )
    rank = incidents.groupby("est").cumcount() + 1
    missing = incidents["finess_missing"].to_numpy()
    writer.append(
        "incidents",
        pd.DataFrame(
            {
                "incident_id": "INC-"
                + incidents["est"].astype(str).str.zfill(6)
                + "-"
                + rank.astype(str).str.zfill(2),
                "declared_on": _iso(incidents["declared_on"]),
                "nature": incidents["nature"].to_numpy(),
                "finess": np.where(missing, "", e.loc[incidents["est"], "finess"].to_numpy()),
                "category_code": np.where(missing, e.loc[incidents["est"], "category_code"].to_numpy(), ""),
                "family": "",
                "type": incidents["type"].to_numpy(),
                "impact_on_care": incidents["impact_on_care"].to_numpy(),
            }
        ),
        ["incident_id"],
    )
    # tallies for truth.json
    for s, v in found["status"].value_counts().items():
        tally["findings_by_status"][s] = tally["findings_by_status"].get(s, 0) + int(v)
    for s, v in found.attrs["transitions"].items():
        tally["transitions"][s] = tally["transitions"].get(s, 0) + int(v)
    known_first = controls.loc[controls["k"] == 0].groupby("est")["present"].any()
    fam_first = e.loc[known_first.index, "fam"]
    for fam, none in (~known_first).groupby(fam_first.to_numpy()):
        t = tally["first_audit_no_control"].setdefault(fam, [0, 0])
        t[0] += int(none.sum())
        t[1] += len(none)
    n_audits = len(audits)
    n_known = controls[["est", "k"]].drop_duplicates().shape[0]
    tally["audits_without_controls"] += n_audits - n_known
    tally["exposed_first_audits"] += int(exposed.sum())
    tally["first_audits"] += len(exposed)
    tally["window_incidents"] += int(incidents["window"].sum())
    tally["pilot_audits"] += int(audits["est"].isin(est.loc[est["pilot"], "est"]).sum())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent stream ``stream`` of ``seed`` (chunk ``i`` uses stream ``i + 1``)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def _truth(seed, scale, plant_remediation, est, writer, tally, out) -> dict:
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
            "category_weights": W.CATEGORY_WEIGHTS,
            "finess": "department prefix (2 characters, 4 overseas: 9701-9704, 9805) + random digits + Luhn key over the 9 characters (2A/2B: A=1, B=2); never real numbers, except by chance",
            "failing_key_share": W.FAILING_KEY_SHARE,
            "failing_key_finess": sorted(est.loc[~est["key_ok"], "finess"].tolist()),
            "chu_sites_per_legal_entity": 3,
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
            "catalog_sha256": _sha256(W.CATALOG_PATH),
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
                float((fam["share"] * fam["no_control"]).sum() / fam["share"].sum()), 4
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
        "sha256": {f"{name}.csv": _sha256(out / f"{name}.csv") for name in FILES},
    }
