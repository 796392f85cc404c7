"""Enrich normalized findings with the KEV catalog and EPSS scores; protection mechanisms per audit.

Catalog paths are parameters of the readers (:func:`read_kev`, :func:`read_epss`); the catalog version and
date travel with every output that uses them, as columns and in ``attrs["catalogs"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.enrich.controls import evidence_from_findings, protection_status
from cyberobs_lib.enrich.epss import read_epss
from cyberobs_lib.enrich.kev import CatalogError, read_kev
from cyberobs_lib.normalize.cve import explode_cves

__all__ = [
    "CatalogError",
    "enrich_findings",
    "evidence_from_findings",
    "protection_status",
    "read_epss",
    "read_kev",
]


def enrich_findings(
    findings: pd.DataFrame, *, kev: pd.DataFrame | None = None, epss: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Add KEV membership, ransomware use and EPSS scores to findings.

    Parameters
    ----------
    findings : pandas.DataFrame
        Normalized findings with a ``cve`` column (``CVE-…;CVE-…`` lists, :func:`normalize_cve`).
    kev : pandas.DataFrame, optional
        :func:`read_kev` output (``cve``, ``ransomware_use``; ``attrs["catalog"]``).
    epss : pandas.DataFrame, optional
        :func:`read_epss` output (``cve``, ``epss``, ``percentile``; ``attrs["catalog"]``).

    Returns
    -------
    pandas.DataFrame
        A copy with ``known_exploited`` and ``ransomware_use`` (``boolean``: True when any CVE of the
        finding is listed / flagged ``Known``; False when the catalog was given and none is; ``<NA>`` without
        a catalog — unknown, not false), ``epss`` and ``epss_percentile`` (float: maximum over the finding's
        CVEs; NaN when no CVE is scored or no EPSS file was given), ``kev_catalog`` and ``epss_catalog``
        (categorical constant: ``"<version> (<date>)"`` of the catalog used, ``<NA>`` when none).
        ``attrs["catalogs"]`` holds both catalogs' metadata.

    Notes
    -----
    The join runs on distinct CVE lists (thousands), then maps back by integer codes. Taking the maximum
    over a finding's CVEs follows FIRST's guidance to act on the most exploitable CVE of a finding.

    Examples
    --------
    >>> f = pd.DataFrame({"cve": ["CVE-2017-0144;CVE-2021-1", None, "CVE-2021-1"]})
    >>> kev = pd.DataFrame({"cve": ["CVE-2017-0144"], "ransomware_use": [True]})
    >>> kev.attrs["catalog"] = {"source": "CISA KEV", "version": "2025.08.25", "date": "2025-08-25"}
    >>> epss = pd.DataFrame({"cve": ["CVE-2017-0144", "CVE-2021-1"], "epss": [0.97, 0.01], "percentile": [1.0, 0.2]})
    >>> out = enrich_findings(f, kev=kev, epss=epss)
    >>> out[["known_exploited", "ransomware_use", "epss"]].values.tolist()
    [[True, True, 0.97], [False, False, nan], [False, False, 0.01]]
    >>> str(out["kev_catalog"].iloc[0]), bool(out["epss_catalog"].isna().all())
    ('2025.08.25 (2025-08-25)', False)
    """
    out = findings.copy()
    cve = (
        out["cve"].astype("string")
        if "cve" in out.columns
        else pd.Series(pd.NA, index=out.index, dtype="string")
    )
    codes, uniq = pd.factorize(cve, use_na_sentinel=True)
    n_u = len(uniq)
    pairs = explode_cves(pd.Series(uniq, dtype="string"))
    pos = pd.Series(np.arange(n_u), index=pd.Index(uniq, dtype="string"))
    pairs["pos"] = pos.reindex(pairs["cve_list"]).to_numpy()
    idx = np.where(codes < 0, n_u, codes)

    catalogs: dict[str, dict | None] = {"kev": None, "epss": None}
    if kev is not None:
        listed = pairs["cve_id"].isin(kev["cve"])
        ransom_set = kev.loc[kev["ransomware_use"].astype(bool), "cve"]
        ransom = pairs["cve_id"].isin(ransom_set)
        k_u = np.zeros(n_u + 1, dtype=bool)
        r_u = np.zeros(n_u + 1, dtype=bool)
        np.logical_or.at(k_u, pairs["pos"].to_numpy(dtype=np.int64), listed.to_numpy())
        np.logical_or.at(r_u, pairs["pos"].to_numpy(dtype=np.int64), ransom.to_numpy())
        out["known_exploited"] = pd.array(k_u[idx], dtype="boolean")
        out["ransomware_use"] = pd.array(r_u[idx], dtype="boolean")
        catalogs["kev"] = dict(kev.attrs.get("catalog", {}))
    else:
        out["known_exploited"] = pd.array([pd.NA] * len(out), dtype="boolean")
        out["ransomware_use"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if epss is not None:
        scored = pairs.merge(
            epss[["cve", "epss", "percentile"]], left_on="cve_id", right_on="cve", how="inner"
        )
        e_u = np.full(n_u + 1, np.nan)
        p_u = np.full(n_u + 1, np.nan)
        if len(scored):
            agg = scored.groupby("pos")[["epss", "percentile"]].max()
            e_u[agg.index.to_numpy(dtype=np.int64)] = agg["epss"].to_numpy()
            p_u[agg.index.to_numpy(dtype=np.int64)] = agg["percentile"].to_numpy()
        out["epss"] = e_u[idx]
        out["epss_percentile"] = p_u[idx]
        catalogs["epss"] = dict(epss.attrs.get("catalog", {}))
    else:
        out["epss"] = np.nan
        out["epss_percentile"] = np.nan

    def _label(meta: dict | None, version_key: str, date_key: str) -> pd.Categorical:
        text = None if meta is None else f"{meta.get(version_key)} ({meta.get(date_key)})"
        return pd.Categorical.from_codes(
            np.full(len(out), 0 if text else -1, dtype=np.int8), categories=[text or "-"]
        )

    out["kev_catalog"] = _label(catalogs["kev"], "version", "date")
    out["epss_catalog"] = _label(catalogs["epss"], "model_version", "score_date")
    out.attrs["catalogs"] = catalogs
    return out
