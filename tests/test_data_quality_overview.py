"""``table_overview`` counts lazy tables from file metadata: same table as counting the read frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.config import PROJECT_DIR
from cyberobs_lib.studies import data_quality as dq
from cyberobs_lib.studies.data import LIFECYCLE_FINDINGS, load_study_data

DEMO = PROJECT_DIR / "data" / "demo"
TODAY = "2026-01-15"


@pytest.fixture(scope="module")
def stores(demo_stores) -> dict[str, Path]:
    """The demo data ingested both ways (``conftest.demo_stores``)."""
    return demo_stores


def _counted_from_frames(data) -> pd.DataFrame:
    return pd.DataFrame(
        [{"table": n, "rows": len(data.tables[n]), "columns": data.tables[n].shape[1]} for n in data.tables]
    )


@pytest.mark.parametrize("kind", ["flat", "partitioned"])
@pytest.mark.parametrize(
    "options",
    [{}, {"years": [2025]}, {"columns": {"findings": LIFECYCLE_FINDINGS}}, {"years": [2024, 2025]}],
)
def test_overview_without_reading_matches_the_frames(stores, kind, options):
    data = load_study_data(stores[kind], **options)
    overview = dq.table_overview(data.tables)
    if kind == "partitioned" or "years" not in options:
        assert data.tables.loaded() == []  # counted, not read
    expected = _counted_from_frames(load_study_data(stores[kind], **options))
    pd.testing.assert_frame_equal(overview, expected)
    assert overview.set_index("table").loc["findings", "rows"] > 0


def test_overview_of_tables_already_read_and_plain_dicts(stores):
    data = load_study_data(stores["partitioned"], years=[2025])
    findings = data.findings
    overview = dq.table_overview(data.tables).set_index("table")
    assert overview.loc["findings", "rows"] == len(findings)
    plain = dq.table_overview({"a": pd.DataFrame({"x": [1, 2, 3], "y": [4, 5, 6]})})
    assert plain.to_dict("records") == [{"table": "a", "rows": 3, "columns": 2}]


def test_overview_of_a_dataset_folder_counts_the_frames():
    data = load_study_data(DEMO, today=TODAY)
    pd.testing.assert_frame_equal(dq.table_overview(data.tables), _counted_from_frames(data))
