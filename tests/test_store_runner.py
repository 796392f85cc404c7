"""Studies and runner on the year-partitioned store: same tables, same results, as the flat canonical folder.

The reference is always the flat path of the library itself (``ingest_dataset`` + ``write_canonical``, read
back by ``load_study_data``): the store written by ``ingest_large`` and read by ``load_study_data`` must
give the same frames, the studies the same results and a run byte-identical tables. The data are the
committed demo data (``data/demo``, 6,855 findings over 2023-2025), ingested in chunks of 2,000 rows so
that every year folder holds several files and the read order has to be restored.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from cyberobs_lib.cli import main
from cyberobs_lib.config import PROJECT_DIR
from cyberobs_lib.ingest import ingest_dataset, write_canonical
from cyberobs_lib.run_canonical import link_canonical
from cyberobs_lib.runner import RunError, load_plan
from cyberobs_lib.scale import ingest_large, open_partitioned
from cyberobs_lib.studies.data import (
    LIFECYCLE_FINDINGS,
    METRICS_FINDINGS,
    TABLES,
    canonical_format,
    load_study_data,
)

DEMO = PROJECT_DIR / "data" / "demo"


def _demo_rows(name: str) -> int:
    """Rows of a demo CSV (the count every store must give back)."""
    return len(pd.read_csv(DEMO / f"{name}.csv", dtype=str, keep_default_na=False))


TODAY = "2026-01-01"


@pytest.fixture(scope="module")
def stores(demo_stores) -> dict[str, Path]:
    """The demo data ingested both ways (``conftest.demo_stores``)."""
    return demo_stores


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects (NA → None) whatever their storage; other columns unchanged."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype) or out[col].dtype == object:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def _assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(_comparable(left), _comparable(right), check_dtype=True)


def test_formats_are_told_apart(stores):
    assert canonical_format(stores["flat"]) == "flat"
    assert canonical_format(stores["partitioned"]) == "partitioned"
    assert canonical_format(DEMO) is None


def test_partitioned_store_reads_like_the_flat_folder(stores):
    """Same rows in the same order, same columns and types (categoricals with the same categories)."""
    flat, part = load_study_data(stores["flat"]), load_study_data(stores["partitioned"])
    for name in TABLES:
        _assert_same(flat.tables[name], part.tables[name])
        assert "year" not in part.tables[name].columns
    for name in ("rejects", "accounting", "violations"):
        left, right = getattr(flat, name), getattr(part, name)
        assert list(left.columns) == list(right.columns), name
        assert left.astype(str).values.tolist() == right.astype(str).values.tolist(), name
    manifest = json.loads((stores["partitioned"] / "_manifest.json").read_text())
    assert part.summary == manifest["ingest"] and part.summary["rows"] == flat.summary["rows"]


def test_findings_from_scanner_exports_keep_the_canonical_order(tmp_path):
    """One audit with rows in findings.csv and a Nessus export: ``ingest_large`` appends the scanner rows
    after the chunks, the reader sorts by every key and gives the flat order back."""
    dataset = tmp_path / "mixed"
    shutil.copytree(DEMO, dataset)
    audit = pd.read_csv(DEMO / "audits.csv", dtype=str)["audit_id"].iloc[0]
    (dataset / "scans" / audit).mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "tests" / "fixtures" / "scans" / "small.nessus", dataset / "scans" / audit)
    write_canonical(ingest_dataset(dataset, today=TODAY), tmp_path / "flat")
    ingest_large(dataset, tmp_path / "part", today=TODAY, chunk_rows=2000)
    flat = load_study_data(tmp_path / "flat").findings
    part = load_study_data(tmp_path / "part").findings
    scanned = flat["source_file"].astype(str).str.startswith("scans/")
    assert scanned.any() and (flat.loc[scanned, "audit_id"] == audit).all()
    assert set(part.columns) == set(flat.columns)  # the scanner-only columns (evidence …) are kept
    assert part.loc[scanned.to_numpy(), "evidence"].notna().any()
    _assert_same(flat, part[list(flat.columns)])


def test_tables_are_read_on_first_access_only(stores):
    data = load_study_data(stores["partitioned"], columns={"findings": METRICS_FINDINGS})
    assert data.tables.loaded() == []
    assert len(data.audits) == _demo_rows("audits")
    assert data.tables.loaded() == ["audits"]
    assert list(data.findings.columns) == list(METRICS_FINDINGS)
    assert data.tables.loaded() == ["audits", "findings"]


@pytest.mark.parametrize("source", ["flat", "partitioned", "dataset"])
def test_years_and_columns_keep_only_what_is_asked(stores, source):
    """Every source gives the rows of the 2024 audits, in the canonical order, with the columns asked for."""
    folder = DEMO if source == "dataset" else stores[source]
    data = load_study_data(folder, today=TODAY, years=[2024], columns={"findings": ["audit_id", "severity"]})
    full = load_study_data(stores["flat"])
    kept = set(full.audits.loc[full.audits["audit_date"].dt.year == 2024, "audit_id"])
    assert 0 < len(kept) < len(full.audits)
    for name in ("audits", "hosts", "findings", "controls", "protection"):
        want = full.tables[name][full.tables[name]["audit_id"].isin(kept)].reset_index(drop=True)
        if name == "findings":
            want = want[["audit_id", "severity"]]
        _assert_same(want, data.tables[name])
    assert len(data.establishments) == len(full.establishments)  # not keyed by audit: whole
    assert data.years == (2024,)


def test_partition_pruning_never_opens_other_years(stores, tmp_path):
    """With the 2024 and 2025 findings files of a copy overwritten by garbage, the 2023 findings still read."""
    copy = tmp_path / "store"
    shutil.copytree(stores["partitioned"], copy)
    for year in (2024, 2025):
        for part in (copy / "findings" / f"year={year}").glob("*.parquet"):
            part.write_bytes(b"not parquet")
    pruned = load_study_data(copy, years=[2023], columns={"findings": ["audit_id"]}).findings
    manifest = json.loads((copy / "_manifest.json").read_text())
    assert len(pruned) == manifest["tables"]["findings"]["rows"]["year=2023"] > 0
    reference = load_study_data(stores["partitioned"], years=[2023], columns={"findings": ["audit_id"]})
    _assert_same(reference.findings, pruned)
    with pytest.raises(pa.ArrowInvalid):  # every year asked for: the garbage is read
        _ = load_study_data(copy, columns={"findings": ["audit_id"]}).findings


def test_unknown_columns_and_tables_are_refused(stores):
    with pytest.raises(ValueError, match="no column"):
        _ = load_study_data(stores["partitioned"], columns={"findings": ["audit_id", "sevrity"]}).findings
    with pytest.raises(ValueError, match="no column"):
        _ = load_study_data(stores["flat"], columns={"findings": ["sevrity"]}).findings
    with pytest.raises(ValueError, match="unknown table"):
        load_study_data(stores["flat"], columns={"finding": ["audit_id"]})


def test_studies_give_the_same_results_on_both_formats(stores):
    """The functions notebooks 20 and 40 call, fed the store with only the columns the notebooks declare,
    equal the same functions fed every column of the flat folder. The per-audit metrics are compared
    first: every test computed from them alone (comparisons, rate ratios, paired tests) then follows;
    the run test below compares every published table."""
    from cyberobs_lib.studies import longitudinal
    from cyberobs_lib.studies.indicators import audit_metrics, compute_indicators, coverage

    flat = load_study_data(stores["flat"])
    part_metrics = load_study_data(stores["partitioned"], columns={"findings": METRICS_FINDINGS})
    part_life = load_study_data(stores["partitioned"], columns={"findings": LIFECYCLE_FINDINGS})
    m_flat, m_part = audit_metrics(flat), audit_metrics(part_metrics)
    _assert_same(m_flat, m_part)
    _assert_same(audit_metrics(part_life), m_part)

    def study(data, metrics):
        episodes = longitudinal.remediation_episodes(data)
        return {
            "indicators": compute_indicators(metrics, periods=[2024, 2025], n_boot=200, seed=1),
            "coverage": coverage(data.establishments, metrics, periods=[2025]),
            "lifecycle": longitudinal.lifecycle_table(data, min_days=90).pairs,
            "episodes": episodes,
            "medians": longitudinal.interval_medians(episodes, by="severity"),
        }

    left, right = study(flat, m_flat), study(part_life, m_part)
    for name in left:
        assert len(left[name]), name
        _assert_same(left[name], right[name])


def test_disclosure_identifiers_are_the_same_from_every_format(stores):
    from cyberobs_lib.disclosure import identifiers_from_dataset

    flat = identifiers_from_dataset(stores["flat"])
    assert flat["hostname"] and flat["finess"]
    assert identifiers_from_dataset(stores["partitioned"]) == flat == identifiers_from_dataset(DEMO)


def test_a_view_of_a_given_folder_takes_the_writes(stores, tmp_path):
    view = link_canonical(stores["partitioned"], tmp_path / "view")
    (view / "audit_metrics.parquet").write_bytes(b"x")
    assert not (stores["partitioned"] / "audit_metrics.parquet").exists()
    _assert_same(load_study_data(view).audits, load_study_data(stores["partitioned"]).audits)


# --------------------------------------------------------------------------------------------------
# Runner and command line
# --------------------------------------------------------------------------------------------------
def _params(tmp_path: Path, **extra) -> Path:
    spec = {
        "run_name": "s",
        "data": "data/demo",
        "published": True,
        "notebooks": [{"notebook": "20_cohorts.ipynb", "parameters": {"period": 2025}}],
        **extra,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_canonical_refusals(tmp_path, stores, capsys):
    params = _params(tmp_path)
    assert main(["run", str(params), "--canonical", str(tmp_path / "absent"), "--quiet"]) == 2
    assert "folder does not exist" in capsys.readouterr().err
    assert main(["run", str(params), "--canonical", str(DEMO), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not a canonical folder" in err and "give it as --data" in err
    (tmp_path / "empty").mkdir()
    assert main(["run", str(params), "--canonical", str(tmp_path / "empty"), "--quiet"]) == 2
    assert "cyberobs ingest DATASET" in capsys.readouterr().err
    with pytest.raises(RunError, match="already ingested"):
        load_plan(params, canonical=stores["flat"], large=True)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob("**/manifest.json"))


def test_storage_key_is_validated(tmp_path):
    with pytest.raises(RunError, match="did you mean 'partitioned'"):
        load_plan(_params(tmp_path, storage="partitoned"))
    assert load_plan(_params(tmp_path, storage="partitioned")).storage == "partitioned"
    assert load_plan(_params(tmp_path), large=True).storage == "partitioned"
    assert load_plan(_params(tmp_path)).storage == "flat"


def test_canonical_folder_needs_no_dataset(tmp_path, stores):
    plan = load_plan(_params(tmp_path, data="no/such/dataset"), canonical=stores["partitioned"])
    assert plan.canonical == stores["partitioned"].resolve()
    with pytest.raises(RunError, match="does not exist"):
        load_plan(_params(tmp_path, data="no/such/dataset"))


def test_ingest_large_command(tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["ingest", str(DEMO), "--out", str(out), "--large", "--today", TODAY]) == 0
    assert canonical_format(out) == "partitioned" and "partitioned by audit year" in capsys.readouterr().out
    assert main(["ingest", str(DEMO), "--out", str(tmp_path / "x"), "--workers", "2"]) == 2
    assert "--large" in capsys.readouterr().err


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "tables").glob("*.csv"))
    }


@pytest.fixture(autouse=True)
def _work_dir(tmp_path, monkeypatch):
    """Working folders of the runs under the test's folder, not the project's reports/.work."""
    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))


@pytest.mark.slow
def test_run_on_the_partitioned_store_gives_byte_identical_tables(tmp_path, stores):
    """Notebooks 20 and 40 through ``cyberobs run --canonical``: the store's tables equal the flat folder's,
    the manifest keeps input hashes, rows and rejects, and the disclosure check reads the store."""
    params = _params(
        tmp_path,
        notebooks=[
            {"notebook": "20_cohorts.ipynb", "parameters": {"period": 2025}},
            {"notebook": "40_annual_summary.ipynb", "parameters": {"year": 2025}},
        ],
    )
    outs = {}
    for kind in ("flat", "partitioned"):
        outs[kind] = tmp_path / kind
        code = main(
            [
                "run",
                str(params),
                "--canonical",
                str(stores[kind]),
                "--out",
                str(outs[kind]),
                "--quiet",
                "--demo",
            ]
        )
        assert code == 0, kind
    digests = {k: _digest(v) for k, v in outs.items()}
    assert len(digests["flat"]) >= 10 and digests["flat"] == digests["partitioned"]
    manifest = json.loads((outs["partitioned"] / "manifest.json").read_text())
    flat_summary = json.loads((stores["flat"] / "ingest.json").read_text())
    assert manifest["storage"] == "partitioned" and manifest["canonical"] == stores["partitioned"].name
    assert manifest["rows"] == flat_summary["rows"] and manifest["rejected_rows"] == flat_summary["rejected"]
    assert manifest["inputs"]["findings.csv"] == flat_summary["inputs"]["findings.csv"]
    assert manifest["disclosure_problems"] == 0
    assert not (stores["partitioned"] / "audit_metrics.parquet").exists()


@pytest.mark.slow
def test_ingest_large_command_on_a_local_dask_cluster(tmp_path, capsys):
    pytest.importorskip("distributed")
    out, ref = tmp_path / "dask", tmp_path / "local"
    assert main(["ingest", str(DEMO), "--out", str(out), "--large", "--dask", "local", "--today", TODAY]) == 0
    assert main(["ingest", str(DEMO), "--out", str(ref), "--large", "--today", TODAY]) == 0
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["ingest"]["workers"] == 2
    for name in ("findings", "rejects", "accounting", "audits"):
        assert open_partitioned(out, name).to_table().equals(open_partitioned(ref, name).to_table()), name
    assert main(["ingest", str(DEMO), "--out", str(out), "--dask", "local"]) == 2  # --dask needs --large
    assert "apply to --large ingestion only" in capsys.readouterr().err


def test_large_run_ingests_a_partitioned_store_in_the_work_folder(tmp_path):
    params = _params(tmp_path, notebooks=[{"notebook": "00_data_quality.ipynb"}])
    out = tmp_path / "run"
    assert main(["run", str(params), "--large", "--out", str(out), "--quiet", "--demo"]) == 0
    from cyberobs_lib.run_lock import RunFolders

    work = RunFolders(out.resolve()).work / "canonical"
    assert work.is_relative_to(tmp_path / "work")
    assert canonical_format(work) == "partitioned" and not (out / "canonical").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["storage"] == "partitioned" and manifest["rows"]["findings"] == _demo_rows("findings")
    assert len(manifest["inputs"]["establishments.csv"]) == 64
    accounting = pd.read_csv(out / "tables" / "accounting.csv")
    assert accounting["balanced"].all() and np.array_equal(
        accounting["table"], ["establishments", "audits", "hosts", "findings", "controls", "incidents"]
    )
