"""The whole third-party corpus (../shared/corpus) ingested as ONE dataset, one audit per scanner file.

A campaign mixes every scanner, in every version found in the field, with broken and hostile files among
them: ingest must write its tables, name each refused file, flag the audits whose scans failed, and
reconcile the accounting of every file. The expected refusals come from ``tests/corpus_expectations.csv``
(the files whose ``error`` column is set: derived by reading the files, not from the readers). Skipped
cleanly when the corpus is absent; its files are copied to a temporary folder, never into the project.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.ingest import check_canonical, ingest_dataset, validate_dataset, write_canonical

pytestmark = pytest.mark.corpus

SCANNER_DIRS = ("nessus", "openvas", "nmap", "qualys", "nuclei", "testssl", "sslyze")
EXPECTATIONS = pd.read_csv(
    Path(__file__).parent / "corpus_expectations.csv", comment="#", dtype=str, keep_default_na=False
)
TODAY = "2026-12-01"


@pytest.fixture(scope="module")
def campaign(corpus_dir, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A dataset folder: 3 establishments, one audit per corpus scanner file (``scans/Cnnn/<file>``)."""
    root = tmp_path_factory.mktemp("corpus_campaign")
    (root / "establishments.csv").write_text(
        "finess,category_code,legal_status\n010000024,355,public\n750000010,500,private_nonprofit\n"
        "130000011,365,private_forprofit\n",
        encoding="utf-8",
    )
    files = sorted(p for d in SCANNER_DIRS if (corpus_dir / d).is_dir() for p in (corpus_dir / d).iterdir())
    audit_of: dict[str, str] = {}
    with (root / "audits.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["audit_id", "finess", "audit_date", "hosts_in_scope"])
        for i, path in enumerate(files):
            aid = f"C{i:03d}"
            (root / "scans" / aid).mkdir(parents=True)
            shutil.copyfile(path, root / "scans" / aid / path.name)
            audit_of[str(path.relative_to(corpus_dir))] = aid
            w.writerow([aid, ("010000024", "750000010", "130000011")[i % 3], f"2025-{1 + i % 12:02d}-15", 5])
    return root, audit_of


@pytest.fixture(scope="module")
def ingested(campaign):
    root, _ = campaign
    return ingest_dataset(root, today=TODAY)


def test_the_whole_corpus_ingests_as_one_dataset(ingested, campaign, tmp_path):
    root, audit_of = campaign
    check_canonical(ingested.tables)  # the canonical schema holds whatever the mix of sources
    out = write_canonical(ingested, tmp_path / "canonical")
    assert (out / "ingest.json").is_file() and (out / "findings.parquet").is_file()
    f = ingested.tables["findings"]
    assert len(f) > 500
    assert str(f["first_seen"].dtype) == "datetime64[ns]" and str(f["port"].dtype) == "Int32"
    assert f["cvss_score"].dropna().between(0, 10).all()
    assert set(f["protocol"].dropna()) <= {"tcp", "udp", "icmp"}
    assert f["vuln_id"].notna().all() and f["host"].notna().all()
    assert len(set(f["scanner"].dropna())) >= 6  # every scanner family contributes findings


def test_every_broken_file_is_named_and_its_audit_flagged(ingested, campaign):
    root, audit_of = campaign
    broken = EXPECTATIONS.loc[EXPECTATIONS["error"] != "", "path"]
    broken = [p for p in broken if p in audit_of]
    assert broken, "the corpus has broken files"
    scans = ingested.scans.set_index("source_file")
    audits = ingested.tables["audits"].set_index("audit_id")
    refused = set(ingested.rejects.loc[ingested.rejects["reason"] == "unreadable_scan", "source_file"])
    for path in broken:
        rel = f"scans/{audit_of[path]}/{Path(path).name}"
        assert scans.loc[rel, "status"] == "refused", rel
        assert rel in refused, rel
        assert audits.loc[audit_of[path], "scan_status"] == "failed", rel
    assert not ingested.ok  # refused files: exit status 1, tables written all the same
    # an interrupted scan (truncated nmap, MANIFEST) is read up to the cut and flagged, not refused
    trunc = "nmap/libnmap_1_hosts_incomplete.xml"
    if trunc in audit_of:
        assert audits.loc[audit_of[trunc], "scan_status"] == "incomplete"
        assert scans.loc[f"scans/{audit_of[trunc]}/{Path(trunc).name}", "status"] == "incomplete"
    # the sslyze target that could not be reached, and testssl's single FATAL row: failed scans
    for path in ("sslyze/securecodebox_unavailable-host.json", "testssl/defectdojo_failed_target.csv"):
        if path in audit_of:
            assert audits.loc[audit_of[path], "scan_status"] == "failed", path


def test_accounting_reconciles_for_every_file(ingested, campaign):
    root, audit_of = campaign
    acc = ingested.accounting
    total = acc["kept"] + acc["rejected"] + acc["duplicates"] + acc["skipped"]
    assert (acc["rows_read"] == total).all()
    scan_rows = acc[acc["table"].str.startswith("scan:")]
    assert int(scan_rows["kept"].sum()) == len(ingested.tables["findings"])
    listed = set(acc["source_file"])
    for aid, path in ((a, p) for p, a in audit_of.items()):
        assert f"scans/{aid}/{Path(path).name}" in listed  # every file accounted for, refused ones too
    # what each readable file holds, counted independently (corpus_expectations.csv), is what was read
    exp = EXPECTATIONS[(EXPECTATIONS["error"] == "") & EXPECTATIONS["path"].isin(audit_of)]
    by_file = acc.set_index("source_file")
    for row in exp.itertuples():
        rel = f"scans/{audit_of[row.path]}/{Path(row.path).name}"
        assert int(by_file.loc[rel, "rows_read"]) == int(row.items_read), rel


def test_validate_reports_what_ingest_meets(campaign):
    root, audit_of = campaign
    v = validate_dataset(root, today=TODAY).violations
    refused = v[v["rule"] == "unreadable_scan"]
    broken = [p for p in EXPECTATIONS.loc[EXPECTATIONS["error"] != "", "path"] if p in audit_of]
    assert len(refused) == len(broken)
    assert refused["file"].str.startswith("scans/").all()


@pytest.mark.slow
def test_annual_study_publishes_on_the_corpus_campaign(corpus_dir, tmp_path, monkeypatch):
    """The annual study, published, on the corpus as one campaign of 20 establishments of 8 families, the
    registry holding only them: every notebook runs (the protection status known for one establishment used
    to raise a DisclosureError in the summary), the check passes, and coverage is said to be national."""
    from cyberobs_lib.config import PARAMETERS_DIR, PROJECT_DIR
    from cyberobs_lib.runner import run_study

    root = tmp_path / "campaign"
    demo = pd.read_csv(PROJECT_DIR / "data" / "demo" / "establishments.csv", dtype=str, keep_default_na=False)
    est = demo.head(20)  # 8 families, CH (the reference family of the parameter file) among them
    root.mkdir()
    est.to_csv(root / "establishments.csv", index=False)
    files = sorted(p for d in SCANNER_DIRS if (corpus_dir / d).is_dir() for p in (corpus_dir / d).iterdir())
    rows = []
    for i, path in enumerate(files):
        aid = f"C{i:03d}"
        (root / "scans" / aid).mkdir(parents=True)
        shutil.copyfile(path, root / "scans" / aid / path.name)
        rows.append([aid, est["finess"].iloc[i % len(est)], f"2025-{1 + i % 9:02d}-15", 10])
    pd.DataFrame(rows, columns=["audit_id", "finess", "audit_date", "hosts_in_scope"]).to_csv(
        root / "audits.csv", index=False
    )
    monkeypatch.setenv("CYBEROBS_KEY", "0123456789abcdef" * 4)
    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "annual"
    result = run_study(PARAMETERS_DIR / "annual_2025.yaml", data=root, out=out, progress=False)
    assert [o.notebook for o in result.outcomes if not o.ok] == []
    assert out.is_dir() and not out.with_name("annual.failed").exists()  # published: the check passed
    page00 = (out / "00_data_quality.html").read_text(encoding="utf-8")
    assert "ne liste que les établissements audités" in page00
    assert not (out / "tables" / "registry_vs_reference.csv").exists()
    printed = {  # metrics nobody measured on this campaign (scope drift, KEV) must not print numpy warnings
        page.name: re.findall(
            r"\b[A-Z]\w*(?:Warning|Error): [^<\n]*|Traceback \(most recent", page.read_text("utf-8")
        )
        for page in sorted(out.glob("*.html"))
    }
    assert {name: found for name, found in printed.items() if found} == {}
