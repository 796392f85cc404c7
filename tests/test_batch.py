"""Per-establishment reports in batch: one folder per establishment, failures isolated."""

from __future__ import annotations

import pytest

from cyberobs_lib.batch import batch_establishments, precompute_metrics, run_reports
from cyberobs_lib.ingest import ingest_dataset, write_canonical


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    out = tmp_path_factory.mktemp("canonical")
    write_canonical(ingest_dataset("data/demo"), out)
    precompute_metrics(out)
    return out


def test_selection(canonical):
    every = batch_establishments(canonical, "all")
    assert len(every) > 100 and every == sorted(every)
    assert batch_establishments(canonical, every[:2]) == every[:2]
    assert batch_establishments(canonical, [every[1], every[0], every[1]]) == [every[1], every[0]]
    with pytest.raises(ValueError, match="without any audit"):
        batch_establishments(canonical, ["750000010"])


@pytest.mark.slow
def test_reports_in_parallel_workers_with_one_failure_isolated(canonical, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    chosen = batch_establishments(canonical, "all")[:3]
    results = run_reports(
        "50_establishment_report.ipynb",
        chosen + ["000000000"],
        canonical=canonical,
        out=tmp_path,
        workers=2,
        progress=False,
    )
    by = {r["finess"]: r for r in results}
    assert all(by[f]["ok"] for f in chosen)
    assert not by["000000000"]["ok"] and "UnknownEstablishmentError" in by["000000000"]["error"]
    page = (tmp_path / "000000000" / "50_establishment_report.html").read_text(encoding="utf-8")
    assert "Traceback" not in page and "UnknownEstablishmentError" in page and "n&#x27;a pas pu" in page
    assert by["000000000"]["cell"] > 1
    for f in chosen:
        folder = tmp_path / f
        assert (folder / "50_establishment_report.html").is_file()
        assert (folder / "tables" / "audits.csv").is_file() and (
            folder / "figures" / "findings_by_audit.png"
        ).is_file()
        html = (folder / "50_establishment_report.html").read_text(encoding="utf-8")
        assert "data:image/png;base64" in html  # figures inline, whatever MPLBACKEND says
        assert f in html  # the confidential report names its own establishment ...
        others = set(chosen) - {f}
        assert not any(o in html for o in others)  # ... and no other (no state leaks between reports)
