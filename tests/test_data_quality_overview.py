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


def test_accounting_figure_groups_many_files_by_kind_named_in_words():
    """Above MAX_BARS files, one bar per kind of file, named in the reader's language with its file count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = dq.MAX_BARS + 5
    acc = pd.DataFrame({"source_file": [f"s{i}.nessus" for i in range(n)] + ["findings.csv"],
                        "table": ["scan:nessus_xml"] * n + ["findings"], "rows_read": 10, "kept": 9,
                        "rejected": 1, "duplicates": 0, "skipped": 0})  # fmt: skip
    ax = dq.plot_accounting(acc, lang="fr")
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == [f"exports de scanner (nessus_xml) ({n} fichiers)", "vulnérabilités relevées (1 fichier)"]
    assert ax.get_title(loc="left") == "Devenir des lignes lues, par fichier"
    assert dq.dataset_table_label("unknown_table", "en") == "unknown_table"
    assert dq.delimiter_label("\t", "fr") == "tabulation" and dq.delimiter_label("#", "en") == "#"
    plt.close("all")
