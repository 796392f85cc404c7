"""Orchestration: draw the world chunk by chunk, write the dataset folder and ``truth.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W
from cyberobs_lib.demo._audits import schedule, simulate
from cyberobs_lib.demo._outcomes import simulate_controls, simulate_incidents
from cyberobs_lib.schema import INPUT_FILES

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


class CsvWriter:
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


def generate_chunk(rng, est, catalog, scale, plant_remediation, writer, tally) -> None:
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


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent stream ``stream`` of ``seed`` (chunk ``i`` uses stream ``i + 1``)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))
