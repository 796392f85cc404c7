"""Synthetic dataset generator with planted truth (``cyberobs demo``).

:func:`generate_dataset` writes a dataset folder that follows the data contract (version 1):
``establishments.csv``, ``audits.csv``, ``hosts.csv``, ``findings.csv``, ``controls.csv``,
``incidents.csv``, plus ``truth.json`` (every planted parameter and the counts written) and
``README.txt``. Nothing in it is real except the FINESS category codes, department/region codes and
the CVE identifiers with their NVD CVSS vectors (``data/demo_cves.csv``).

The synthetic world (all parameters in :mod:`cyberobs_lib.demo._world` and in ``truth.json``):

* **Establishments** — sampled from the population frame ``demo_frame.csv`` (FINESS extraction of
  2021-01-08: geographic establishments per category code and department, counts only; built by
  ``scripts/build_demo_frame.py``), stratified by family: within a family the frame's establishments are
  drawn without replacement, so categories and departments (overseas 971–974 included, as in the frame)
  come in the real proportions. The committed demo (:meth:`DemoScale.small`) takes 5 % of every family
  and at least 30 structures (or the whole family) so that small families have published figures:
  CHU/CHR, HAD, Cancer centre, Army, Other elderly housing are oversampled — their sampling fractions
  and design weights (frame / drawn) are in ``truth.json`` (``establishments.sampling_by_family``) and
  README.txt; a scale given as a total (``DemoScale(establishments=N)``) splits it in the frame's national
  proportions. Synthetic FINESS = prefix (department, or ``9701``–``9704`` overseas) + a digit never
  there in a real number of the 2021 extraction (9 metropolitan; 4, 7, 8 or 9 overseas: no demo number
  is a real one) + random digits + Luhn key (``2A``/``2B`` count A = 1, B = 2); 1 % of numbers carry a wrong key on purpose (listed in
  truth.json). CHU/CHR sites of one department share a legal entity. Beds log-normal by family (CHU
  ~1500, CH ~300, EHPAD ~80). Legal status drawn by family (CH/CHU public, clinics mostly for-profit,
  EHPAD mixed). Names are ``Établissement fictif NNNNN``. 85 % of structures are audited (coverage).
* **Audits** — 1 to N per audited structure, 150–400 days apart, within the scale's years and never
  after its fixed ``end_date``; a pilot subset is audited exactly twice 182 ± 7 days apart.
* **Perimeter** — hosts in scope ~ Poisson-lognormal with mean 0.6·beds^0.5; between audits each host
  leaves with probability 0.08 and new ones arrive at the same expected rate (scope drift). Hosts are
  RFC 5737 documentation addresses or ``srvNNN.etabNNNNNN.example`` names.
* **Findings** — count per audit ~ negative binomial with mean hosts × 2.5 × RR[family] ×
  (beds/100)^0.3; the reference family is CH; CHU/CHR (and "Other health") have RR exactly 1.0 and differ
  from CH only through size. Items drawn from the catalog by weight (real CVEs with CVSS vectors and
  ports, KEV and ransomware flags, plus misconfigurations with scanner ids). 20 % of scored findings leave
  ``severity`` blank, 10 % leave ``cvss_score`` blank, 95 % leave ``category`` blank (derived by rules).
* **Lifecycle** — with ``plant_remediation=True`` an open finding is fixed by the next audit with
  probability 1 − exp(−ln2·gap/median), medians 45/90/180/365 days (critical/high/medium/low); new
  findings appear at 0.30 × the audit's mean count per year; a fixed finding reopens at the next audit
  with probability 0.10; 5 % of persisting findings change title wording. With
  ``plant_remediation=False`` nothing is fixed: 20 % of findings are replaced by another vulnerability on
  the same host, so baseline and follow-up have the same expected counts.
* **Controls** — at the first audit a structure has no protection mechanism with a family probability
  (national mix ≈ 0.70); otherwise each control is present with its own probability (at least one);
  at each follow-up an absent control is adopted with probability 0.05 and a present one lost with 0.02;
  3 % of audits have no controls rows (unknown status).
* **Incidents** — background Poisson per family and year (rate per 1000 structures); for the first audit
  of each audited structure, an incident within 365 days has odds ratio 2.5 when that audit showed
  exposure (a KEV-listed or remote-administration finding), family held fixed. Nature, type and impact
  drawn from fixed shares; 5 % of declarations carry only the category code.

Determinism: same seed and scale → byte-identical files (numpy ``default_rng`` on
``SeedSequence(seed, spawn_key=(stream,))``, one stream for the registry and one per chunk of
``chunk_establishments`` structures; rows sorted; fixed formatting; no wall clock). Memory is bounded by
the chunk: chunks are appended to the CSV files as they are generated.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W
from cyberobs_lib.demo._generate import CsvWriter, generate_chunk, load_catalog, stream_rng
from cyberobs_lib.demo._registry import luhn_key, make_establishments, sample_frame, synthetic_finess
from cyberobs_lib.demo._truth import build_truth
from cyberobs_lib.demo._world import DemoScale, frame_design, frame_family_counts, load_frame

__all__ = [
    "DemoScale",
    "frame_design",
    "frame_family_counts",
    "generate_dataset",
    "load_catalog",
    "load_frame",
    "luhn_key",
    "sample_frame",
    "synthetic_finess",
]

_README = """SYNTHETIC DATA - NOT REAL AUDITS

This folder was generated by cyberobs (cyberobs_lib.demo.generate_dataset, generator version {version})
with seed {seed} and scale "{label}". Every establishment, FINESS number, name, host, finding and incident
is fictitious: FINESS numbers are a real department prefix, a digit never at that place in a real
FINESS number (9; overseas 4, 7, 8 or 9) and random digits with a valid check key; hosts use the RFC 5737 documentation ranges and
the .example domain. Real items: FINESS category codes, department and INSEE region codes, the number of
establishments of each category in each department (the population frame), CVE identifiers with their
NVD CVSS vectors (cyberobs_lib/data/demo_cves.csv).

Population frame and sampling design. The establishments are a sample, stratified by family, of the
FINESS geographic establishments of January 2021 (cyberobs_lib/data/demo_frame.csv, counts per category
code and department): within a family, categories and departments are in the real proportions. Between
families the sample is NOT proportional where a family is oversampled so that it has published figures;
weight each establishment by its family's design weight (frame / drawn) to estimate national figures.

{design}

The effects planted in the data (family rate ratios, size effect, remediation, protection mechanisms,
incident rates and the exposure odds ratio) are written to truth.json, with the row counts and the
SHA-256 of every file. Regenerate with:

    from pathlib import Path
    from cyberobs_lib.demo import generate_dataset, DemoScale
    generate_dataset(Path("<this folder>"), seed={seed}, scale={scale})
"""


def design_table(truth: dict) -> str:
    """The sampling design of ``truth.json`` as a fixed-width text table (one row per family)."""
    rows = truth["establishments"]["sampling_by_family"]
    head = f"{'family':<24}{'frame':>7}{'drawn':>7}{'fraction':>10}{'weight':>9}"
    lines = [head, "-" * len(head)]
    for family, r in rows.items():
        fraction = "" if r["sampling_fraction"] is None else f"{r['sampling_fraction']:.4f}"
        weight = "" if r["design_weight"] is None else f"{r['design_weight']:.2f}"
        lines.append(f"{family:<24}{r['frame']:>7}{r['drawn']:>7}{fraction:>10}{weight:>9}")
    left = truth["establishments"]["frame"]["families_not_drawn"]
    if left:
        lines.append(f"Families of the frame outside the demo (never drawn): {', '.join(left)}.")
    return "\n".join(lines)


def generate_dataset(
    out: Path,
    *,
    seed: int = 0,
    scale: DemoScale | None = None,
    plant_remediation: bool = True,
) -> dict:
    """Write a synthetic dataset folder with planted effects and return its truth.

    Parameters
    ----------
    out : pathlib.Path
        Folder to write (created if needed; the dataset files in it are overwritten, a stale ``scans/``
        folder is removed).
    seed : int, keyword-only
        Random seed: same seed and scale give byte-identical files.
    scale : DemoScale, keyword-only, optional
        Size of the dataset; default :meth:`DemoScale.small` (the committed demo).
    plant_remediation : bool, keyword-only
        When False no finding is ever fixed (findings are only replaced, expected counts stationary):
        paired tests must find no improvement.

    Returns
    -------
    dict
        The content of ``truth.json``: seed, scale, generator version, every planted parameter
        (``findings.rate_ratio``, ``findings.size_beta``, ``remediation.median_fix_days``,
        ``controls.no_control_first_audit_share``, ``incidents.incident_exposure_odds_ratio`` …),
        ``counts`` (rows per file and realized tallies) and ``sha256`` of each CSV.

    Notes
    -----
    The model is described in the module docstring. Files follow data-contract.md: dates ISO 8601,
    booleans ``true``/``false``, empty cells for missing values, rows sorted by their identifiers.

    Examples
    --------
    >>> import tempfile
    >>> tiny = DemoScale(establishments=40, years=(2024, 2025), audits_per_establishment=(1, 2))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     truth = generate_dataset(Path(d), seed=1, scale=tiny)
    ...     sorted(p.name for p in Path(d).iterdir())
    ['README.txt', 'audits.csv', 'controls.csv', 'establishments.csv', 'findings.csv', 'hosts.csv', 'incidents.csv', 'reference', 'truth.json']
    >>> truth["findings"]["rate_ratio"]["CHU/CHR"], truth["remediation"]["remediation_planted"]
    (1.0, True)
    """
    scale = (scale or DemoScale.small()).validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "scans").is_dir():
        shutil.rmtree(out / "scans")
    catalog = load_catalog()
    rng0 = stream_rng(seed, 0)
    est = make_establishments(rng0, scale)
    n = len(est)
    audited = rng0.random(n) < scale.audited_share
    pilot = rng0.permutation(np.flatnonzero(audited))[: scale.pilot_establishments]
    est = est.assign(audited=audited, pilot=np.isin(np.arange(n), pilot))
    writer = CsvWriter(out)
    writer.append("establishments", est.assign(beds=est["beds"].astype("int64")), ["finess"])
    tally = {
        "findings_by_status": {},
        "transitions": {},
        "first_audit_no_control": {},
        "audits_without_controls": 0,
        "exposed_first_audits": 0,
        "first_audits": 0,
        "window_incidents": 0,
        "pilot_audits": 0,
    }
    for i, start in enumerate(range(0, n, scale.chunk_establishments)):
        chunk = est.iloc[start : start + scale.chunk_establishments]
        generate_chunk(stream_rng(seed, i + 1), chunk, catalog, scale, plant_remediation, writer, tally)
    write_reference_catalogs(out / "reference", catalog, end_date=str(scale.end_date))
    truth = build_truth(seed, scale, plant_remediation, est, writer, tally, out)
    (out / "truth.json").write_text(
        json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "README.txt").write_text(
        _README.format(
            version=W.GENERATOR_VERSION,
            seed=seed,
            label=scale.label,
            design=design_table(truth),
            scale=f"DemoScale.{scale.label}()" if scale.label in ("small", "national") else repr(scale),
        ),
        encoding="utf-8",
    )
    return json.loads(json.dumps(truth))


def write_reference_catalogs(folder: Path, catalog: pd.DataFrame, *, end_date: str) -> None:
    """Write the demo's reference catalogs in their publishers' formats (deterministic bytes).

    * ``known_exploited_vulnerabilities.json`` — CISA KEV JSON layout, listing the catalog CVEs flagged
      ``kev`` (their real KEV membership, see ``demo_cves.csv``); ``catalogVersion`` says it is a demo subset.
    * ``epss_scores.csv.gz`` — FIRST EPSS daily layout (``#model_version…`` header, ``cve,epss,percentile``)
      with **synthetic** scores, a fixed function of the CVSS score and KEV flag (not FIRST's scores).
    """
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    rows = catalog.dropna(subset=["cve"]).copy()
    rows["cve"] = rows["cve"].astype(str).str.split(";")
    rows = rows.explode("cve")
    rows["cve"] = rows["cve"].str.strip().str.upper()
    rows = rows[rows["cve"].str.startswith("CVE-")].drop_duplicates("cve").sort_values("cve")
    kev_flag = rows["kev"].astype(str).str.lower().eq("true")
    ransom = rows["ransomware"].astype(str).str.lower().eq("true")
    vulns = [
        {
            "cveID": r.cve,
            "vendorProject": str(r.product).split(" ")[0],
            "product": str(r.product),
            "vulnerabilityName": str(r.title),
            "dateAdded": "2021-11-03",
            "shortDescription": "Demo subset of the CISA KEV catalog (cyberobs synthetic demo data).",
            "requiredAction": "Apply updates per vendor instructions.",
            "dueDate": "2021-11-17",
            "knownRansomwareCampaignUse": "Known" if rw else "Unknown",
            "notes": "",
        }
        for r, rw in zip(rows[kev_flag].itertuples(index=False), ransom[kev_flag], strict=True)
    ]
    kev = {
        "title": "CISA Catalog of Known Exploited Vulnerabilities (cyberobs demo subset)",
        "catalogVersion": f"demo-{end_date}",
        "dateReleased": f"{end_date}T00:00:00.000Z",
        "count": len(vulns),
        "vulnerabilities": vulns,
    }
    (folder / "known_exploited_vulnerabilities.json").write_text(
        json.dumps(kev, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    score = pd.to_numeric(rows["cvss_score"], errors="coerce").fillna(5.0).to_numpy()
    epss = np.where(kev_flag, 0.90 + 0.009 * (score - 9.0).clip(-9, 1), 0.0005 * np.exp(0.6 * score)).clip(
        0, 0.99
    )
    epss = np.round(epss, 5)
    pct = pd.Series(epss).rank(pct=True).round(5).to_numpy()
    lines = [f"#model_version:demo-synthetic,score_date:{end_date}T00:00:00+0000", "cve,epss,percentile"]
    lines += [f"{c},{e:.5f},{p:.5f}" for c, e, p in zip(rows["cve"], epss, pct, strict=True)]
    with (
        open(folder / "epss_scores.csv.gz", "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
