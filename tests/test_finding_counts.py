"""Findings counted per audit in the Parquet store (Arrow batches) equal the count of the findings frame.

``count_frame`` (one ``np.bincount`` per flag on the frame) is the reference: ``count_batches`` /
``count_store`` must give the same counts for every audit, whatever the batches' dictionaries, nulls and
missing columns; ``audit_metrics`` fed a store (findings never read into pandas, audits and protection
read column-selectively) must equal ``audit_metrics`` fed the in-memory tables of ``ingest_dataset``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cyberobs_lib.config import PROJECT_DIR
from cyberobs_lib.ingest import ingest_dataset
from cyberobs_lib.store import _compact_dictionaries, open_partitioned
from cyberobs_lib.studies.data import METRICS_FINDINGS, load_study_data
from cyberobs_lib.studies.finding_counts import COUNT_COLUMNS, count_batches, count_frame, count_store
from cyberobs_lib.studies.indicators import audit_metrics, positions

SEVERITIES = ["critical", "high", "medium", "low", "info", None]
CATEGORIES = ["exposed_remote_admin", "known_exploited", "outdated_software", "other", None]


def _sorted(counts: pd.DataFrame) -> pd.DataFrame:
    return counts.sort_index()


def _random_findings(seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.array([f"A{i:04d}" for i in range(120)] + [None], dtype=object)
    return pd.DataFrame({
        "audit_id": ids[rng.integers(0, len(ids), n)],
        "severity": np.array(SEVERITIES, dtype=object)[rng.integers(0, len(SEVERITIES), n)],
        "category": np.array(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)],
        "known_exploited": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
    })  # fmt: skip


def _batches(frame: pd.DataFrame, sizes: list[int], *, dictionary: bool) -> list[pa.RecordBatch]:
    """``frame`` cut into record batches of ``sizes`` rows, text dictionary-encoded per batch (each
    batch its own dictionary, as Parquet files give them) or plain."""
    out, start = [], 0
    for size in sizes:
        piece = pa.Table.from_pandas(frame.iloc[start : start + size], preserve_index=False)
        if dictionary:
            for i, name in enumerate(piece.column_names):
                if pa.types.is_string(piece.column(i).type):
                    piece = piece.set_column(i, name, piece.column(i).dictionary_encode())
        out.extend(piece.combine_chunks().to_batches())
        start += size
    return out


@pytest.mark.parametrize("dictionary", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_of_batches_equal_counts_of_the_frame(seed, dictionary):
    frame = _random_findings(seed)
    want = count_frame(frame)
    assert want["n_findings"].sum() == frame["audit_id"].notna().sum()  # missing ids are not counted
    got = count_batches(_batches(frame, [1, 999, 1200, 800], dictionary=dictionary))
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))


def test_counts_flag_each_rule():
    frame = pd.DataFrame({
        "audit_id": ["A", "A", "A", "A", "B", None],
        "severity": ["critical", "high", "high", None, "low", "critical"],
        "category": ["known_exploited", "exposed_remote_admin", None, "other", "other", "other"],
        "known_exploited": pd.array([None, True, False, True, None, True], dtype="boolean"),
    })  # fmt: skip
    got = count_batches(_batches(frame, [2, 4], dictionary=True))
    assert got.loc["A"].to_dict() == {
        "n_findings": 4,
        "n_critical": 1,
        "n_high": 2,
        "n_remote": 1,
        "n_kev": 3,
    }
    assert got.loc["B"].to_dict() == {
        "n_findings": 1,
        "n_critical": 0,
        "n_high": 0,
        "n_remote": 0,
        "n_kev": 0,
    }
    assert list(got.columns) == list(COUNT_COLUMNS) and len(got) == 2


@pytest.mark.parametrize("missing", ["severity", "category", "known_exploited"])
def test_counts_without_a_column_raise_no_flag_from_it(missing):
    frame = _random_findings(3).drop(columns=[missing])
    got = count_batches(_batches(frame, [1500, 1500], dictionary=True))
    pd.testing.assert_frame_equal(_sorted(got), _sorted(count_frame(frame)))


def test_no_batches_no_counts():
    assert count_batches([]).empty and list(count_batches([]).columns) == list(COUNT_COLUMNS)


@pytest.mark.parametrize("kind", ["flat", "partitioned"])
@pytest.mark.parametrize("years", [None, (2024,)])
def test_count_store_equals_count_of_the_findings_read(demo_stores, kind, years):
    findings = load_study_data(
        demo_stores[kind], years=years, columns={"findings": METRICS_FINDINGS}
    ).findings
    got = count_store(demo_stores[kind], years=years)
    if kind == "partitioned" or years is None:  # a flat file is counted whole (audit_metrics keeps the years)
        pd.testing.assert_frame_equal(_sorted(got), _sorted(count_frame(findings)))
    assert got["n_findings"].sum() >= len(findings) > 0


@pytest.fixture(scope="module")
def in_memory():
    return dict(ingest_dataset(PROJECT_DIR / "data" / "demo", today="2026-01-01").tables)


@pytest.mark.parametrize("kind", ["flat", "partitioned"])
@pytest.mark.parametrize("years", [None, (2023, 2025)])
def test_audit_metrics_from_a_store_equal_those_of_the_tables_in_memory(demo_stores, in_memory, kind, years):
    data = load_study_data(demo_stores[kind], years=years, columns={"findings": METRICS_FINDINGS})
    got = audit_metrics(data)
    assert data.tables.loaded() == []  # nothing read into pandas and kept: columns and counts only
    tables = in_memory
    if years is not None:
        keep = set(tables["audits"].loc[tables["audits"]["audit_date"].dt.year.isin(years), "audit_id"])
        tables = {k: v[v["audit_id"].isin(keep)] if "audit_id" in v.columns else v for k, v in tables.items()}
    want = audit_metrics(tables)
    assert len(got) == len(want) > 0
    for col in got.columns:  # text storage differs (store: Arrow-backed ``string``), values do not
        left, right = got[col], want[col]
        text = isinstance(left.dtype, pd.StringDtype) or left.dtype == object
        if text:
            left, right = left.astype(object), right.astype(object)
        pd.testing.assert_series_equal(left, right, check_dtype=not text)


def test_lazy_tables_answer_membership_and_columns_without_keeping_a_table(demo_stores):
    data = load_study_data(demo_stores["partitioned"])
    assert "findings" in data.tables and "nothing" not in data.tables
    two = data.tables.columns("audits", ["audit_id", "hosts_in_scope", "no_such_column"])
    assert list(two.columns) == ["audit_id", "hosts_in_scope"]
    assert data.tables.loaded() == []
    pd.testing.assert_frame_equal(two, data.audits[["audit_id", "hosts_in_scope"]])  # same rows, same order
    assert data.tables.loaded() == ["audits"]


def test_positions_find_first_occurrences_and_pair_missing_values():
    values = pd.Series(["b", "a", "b", None, "a"], dtype="string[pyarrow]")
    keys = pd.Series(["a", "b", "c", None], dtype=object)
    assert positions(keys, values).tolist() == [1, 0, -1, 3]
    assert positions(keys.astype("category"), values).tolist() == [1, 0, -1, 3]
    assert positions(pd.Series([3, 1, 7]), pd.Series([1, 2, 3, 1])).tolist() == [2, 0, -1]  # not text
    assert positions(keys, pd.Series([], dtype=object)).tolist() == [-1, -1, -1, -1]


def test_partitions_keep_only_the_dictionary_values_they_use(demo_stores):
    table = pa.table({
        "audit_id": pa.array(["x", "y", None, "x"] + [f"z{i}" for i in range(10)]).dictionary_encode(),
        "severity": pa.array(["high", "low"] * 7).dictionary_encode(),
    })  # fmt: skip
    piece = _compact_dictionaries(table.slice(0, 4))
    assert piece.column("audit_id").to_pylist() == ["x", "y", None, "x"]
    assert piece.column("audit_id").chunk(0).dictionary.to_pylist() == ["x", "y"]
    assert piece.column("severity").chunk(0).dictionary.to_pylist() == ["high", "low"]  # vocabulary: whole
    # In a store, a year's audits carry the ids of that year only.
    audits = open_partitioned(demo_stores["partitioned"], "audits").to_table(columns=["audit_id"])
    for chunk in audits.column("audit_id").chunks:
        assert len(chunk.dictionary) == len(pa.compute.unique(chunk.indices))
