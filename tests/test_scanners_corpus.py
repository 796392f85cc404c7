"""Conformance on the third-party corpus (../shared/corpus), against tests/corpus_expectations.csv.

The expectations were derived by reading the files (grep / csv / json counts, see the ``note`` column), not
from the reader's output. Skipped cleanly when the corpus is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.scanners import ScanError, ScanSecurityError, read_scan_file, read_scans_dir

EXPECTATIONS = pd.read_csv(
    Path(__file__).parent / "corpus_expectations.csv", comment="#", dtype=str, keep_default_na=False
)
SCANNER_DIRS = ("nessus", "openvas", "nmap", "qualys", "nuclei", "testssl", "sslyze")

pytestmark = pytest.mark.corpus


@pytest.mark.parametrize("row", EXPECTATIONS.to_dict("records"), ids=EXPECTATIONS["path"].tolist())
def test_corpus_file_matches_expectations(corpus_dir, row):
    path = corpus_dir / row["path"]
    if not path.is_file():
        pytest.skip(f"{row['path']} not in this corpus")
    if row["error"]:
        with pytest.raises(ScanError) as info:
            read_scan_file(path)
        err = info.value
        if row["error"] == "security":
            assert isinstance(err, ScanSecurityError)
        else:
            assert row["error"] in str(err)
        assert str(path) in str(err)
        if row["error_line"]:
            assert err.line == int(row["error_line"])
        return
    res = read_scan_file(path, audit_id="A")
    acc = res.accounting
    assert res.format == row["format"]
    assert len(res.hosts) == int(row["hosts"])
    assert acc["items_read"] == int(row["items_read"])
    assert acc["findings"] == int(row["findings"]) == len(res.findings)
    assert acc["items_read"] == acc["findings"] + sum(acc["skipped"].values())
    if len(res.findings):
        assert res.findings["host"].notna().all()
        assert res.findings["vuln_id"].notna().all()
        assert set(res.findings["host"]) <= set(res.hosts)


def test_every_corpus_scanner_file_has_an_expectation(corpus_dir):
    listed = set(EXPECTATIONS["path"])
    on_disk = {
        str(p.relative_to(corpus_dir))
        for d in SCANNER_DIRS
        if (corpus_dir / d).is_dir()
        for p in (corpus_dir / d).iterdir()
        if p.is_file()
    }
    assert on_disk - listed == set()


def test_batch_over_the_corpus_survives_its_broken_files(corpus_dir, tmp_path):
    # one audit folder per scanner folder, copied to a temporary folder (links that leave the dataset
    # folder are refused by design: a dataset never reads outside itself)
    for d in SCANNER_DIRS:
        if (corpus_dir / d).is_dir():
            shutil.copytree(corpus_dir / d, tmp_path / d)
    batch = read_scans_dir(tmp_path)
    n_errors = (EXPECTATIONS["error"] != "").sum()
    assert not batch.ok
    assert len(batch.errors) == n_errors
    ok_rows = EXPECTATIONS[EXPECTATIONS["error"] == ""]
    assert len(batch.findings) == ok_rows["findings"].astype(int).sum()
    assert batch.accounting["error"].notna().sum() == n_errors
    assert "failed" in batch.summary()
