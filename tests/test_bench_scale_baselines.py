"""The DuckDB baselines of ``benchmarks/bench_scale.py`` do the work of the stages they are compared with.

The reference is the library: each pandas stage (``scale_stages`` / ``scale_studies``) runs on a
year-partitioned store of a generated dataset and writes what it computed; the DuckDB stage recomputes
it in SQL and compares (indicator cells: counts exactly, shares, Wilson limits, rates and medians to
1e-9; cohort shares per family; longitudinal pairs and remediation episodes: counts, days, durations).
No expected value is pasted here: the two paths must agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scale_stages  # noqa: E402
import scale_studies  # noqa: E402

from cyberobs_lib.demo import DemoScale, generate_dataset  # noqa: E402
from cyberobs_lib.scale.chunked import ingest_large  # noqa: E402


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("scale")
    generate_dataset(root / "dataset", seed=7, scale=DemoScale.national().with_overrides(establishments=300))
    ingest_large(root / "dataset", root / "canonical", today=scale_stages.TODAY)
    return str(root)


def test_indicators_baseline_computes_the_same_cells(work):
    mine = scale_stages.stage_indicators(work)
    base = scale_stages.stage_duckdb_indicators(work)
    assert base["same_as_pandas"] == "yes"
    assert base["indicators"] == mine["indicators"] and mine["findings"] == base["findings"] > 0
    assert base["bootstrap_vs_pandas"].startswith("max gap") or base["bootstrap_vs_pandas"] == ""


def test_cohorts_baseline_counts_the_same_establishments(work):
    mine = scale_studies.stage_cohorts(work)
    base = scale_studies.stage_duckdb_cohorts(work)
    assert base["same_as_pandas"] == "yes"
    assert base["establishments"] == mine["establishments"] > 0


def test_longitudinal_baseline_gives_the_same_pairs_and_episodes(work):
    mine = scale_studies.stage_longitudinal(work)
    base = scale_studies.stage_duckdb_longitudinal(work)
    assert base["same_as_pandas"] == "yes"
    assert (base["pairs"], base["episodes"]) == (mine["pairs"], mine["episodes"])
    assert mine["episodes"] > 0 and mine["pairs"] > 0


def test_a_baseline_without_its_reference_says_so(tmp_path, work):
    assert scale_studies._compare(str(tmp_path), "cohorts", {}).startswith("not compared")
    assert scale_stages.same_indicators(None, tmp_path / "none.parquet")[0].startswith("not compared")
