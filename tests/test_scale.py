"""Tests of cyberobs_lib.scale: partitioned storage, chunked ingestion, the Dask path.

Expected values come from the pandas path of the library itself (``ingest_dataset``,
``match_lifecycle``, ``audit_metrics``): the scale paths must reproduce it exactly, so the reference is
the single source of truth, never a pasted output. The small frames of the storage tests are
hand-written; their expected years and rows are read off the frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cyberobs_lib.demo import DemoScale, generate_dataset
from cyberobs_lib.ingest import SORT_KEYS, ingest_dataset
from cyberobs_lib.scale.chunked import ingest_large
from cyberobs_lib.scale.csv_stream import read_csv_chunks
from cyberobs_lib.store import (
    PartitionedWriter,
    open_partitioned,
    read_manifest,
    read_partitioned,
    write_partitioned,
    year_filter,
)

TODAY = "2026-01-01"


def _values(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Cells as plain Python values (categoricals by value, NA as None), rows sorted by ``keys``."""
    out = frame.astype(object).where(frame.notna(), None)
    order = out[keys].astype(str).apply(tuple, axis=1).argsort(kind="stable")
    return out.iloc[order].reset_index(drop=True)


def _tables() -> dict[str, pd.DataFrame]:
    audits = pd.DataFrame(
        {
            "audit_id": ["a1", "a2", "a3"],
            "finess": ["750000001", "750000001", "130000002"],
            "audit_date": pd.to_datetime(["2023-03-01", "2024-09-01", "2024-02-01"]),
            "hosts_in_scope": pd.array([2, 3, 1], dtype="Int64"),
        }
    )
    findings = pd.DataFrame(
        {
            "audit_id": ["a1", "a1", "a2", "a3", "a3"],
            "host": ["h1", "h2", "h1", "x9", "x9"],
            "port": pd.array([3389, None, 443, 22, 80], dtype="Int32"),
            "severity": pd.Categorical(["critical", "low", "high", None, "medium"]),
            "cvss_score": [9.8, 2.1, 7.5, np.nan, 5.0],
            "known_exploited": pd.array([True, False, None, False, False], dtype="boolean"),
            "fingerprint": ["f1", "f2", "f1", "f3", "f4"],
        }
    )
    establishments = pd.DataFrame({"finess": ["750000001", "130000002"], "family": ["CH", "EHPAD"]})
    return {"establishments": establishments, "audits": audits, "findings": findings}


# -------------------------------------------------------------------------------------------------
# storage
# -------------------------------------------------------------------------------------------------
def test_partitioned_round_trip_equals_input(tmp_path):
    tables = _tables()
    out = write_partitioned(tables, tmp_path / "canon")
    for name, frame in tables.items():
        back = read_partitioned(out, name)
        if name != "establishments":  # years read off the audit dates above: a1 2023, a2/a3 2024
            assert back.pop("year").tolist() == (
                [2023, 2024, 2024] if name == "audits" else [2023, 2023, 2024, 2024, 2024]
            )
        # rows come back grouped by year, in input order within a year (here the same order)
        pd.testing.assert_frame_equal(_values(back, ["audit_id"] if "audit_id" in back else ["finess"]),
                                      _values(frame, ["audit_id"] if "audit_id" in frame else ["finess"]))  # fmt: skip


def test_partitioned_compact_types_and_manifest(tmp_path):
    out = write_partitioned(_tables(), tmp_path / "canon")
    schema = open_partitioned(out, "findings").schema
    assert schema.field("port").type == pa.int32()
    assert pa.types.is_dictionary(schema.field("severity").type)
    assert schema.field("host").type == pa.string()  # high-cardinality text stays plain
    assert schema.field("known_exploited").type == pa.bool_()
    assert schema.field("year").type == pa.int16()
    manifest = read_manifest(out)
    assert manifest["tables"]["findings"]["rows"] == {"year=2023": 2, "year=2024": 3}
    assert all(p.startswith("findings/year=") for p in manifest["tables"]["findings"]["files"])


def test_read_one_year_touches_only_its_partition(tmp_path):
    out = write_partitioned(_tables(), tmp_path / "canon")
    fragments = list(open_partitioned(out, "findings").get_fragments(filter=year_filter([2023])))
    assert [Path(f.path).parent.name for f in fragments] == ["year=2023"]
    # the other year's file is never opened: corrupting it does not disturb a 2023 read
    for p in (out / "findings" / "year=2024").iterdir():
        p.write_bytes(b"not parquet")
    with pytest.raises(pa.ArrowInvalid):
        read_partitioned(out, "findings", years=[2024])
    got = read_partitioned(out, "findings", years=[2023], columns=["audit_id", "severity"])
    assert list(got.columns) == ["audit_id", "severity"]
    assert got["severity"].tolist() == ["critical", "low"]


def test_partitioned_write_is_atomic(tmp_path):
    out = write_partitioned(_tables(), tmp_path / "canon")
    before = read_manifest(out)
    with pytest.raises(RuntimeError), PartitionedWriter(out) as writer:
        writer.append("audits", _tables()["audits"])
        raise RuntimeError("crash in the middle of a write")
    assert read_manifest(out) == before  # the complete folder is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["canon"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="_manifest.json"):
        read_partitioned(tmp_path, "findings")


def test_partitioned_rejects_lossy_and_bad_options(tmp_path):
    big = _tables()
    big["audits"]["hosts_in_scope"] = pd.array([2, 3, 2**40], dtype="Int64")  # beyond int32
    with pytest.raises(pa.ArrowInvalid):
        write_partitioned(big, tmp_path / "x")
    with pytest.raises(ValueError, match="partition_by"):
        write_partitioned(_tables(), tmp_path / "y", partition_by="region")
    with pytest.raises(ValueError, match="audits"):
        write_partitioned({"findings": _tables()["findings"]}, tmp_path / "z")
    assert not (tmp_path / "x").exists()


# -------------------------------------------------------------------------------------------------
# chunked ingestion
# -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory) -> Path:
    """About 100k findings over 1,000 structures (DemoScale.national shape, smaller)."""
    out = tmp_path_factory.mktemp("scale") / "dataset"
    generate_dataset(out, seed=7, scale=DemoScale.national().with_overrides(establishments=1000))
    return out


@pytest.fixture(scope="module")
def demo_reference(demo_dataset):
    return ingest_dataset(demo_dataset, today=TODAY)


def test_ingest_large_equals_ingest_dataset(demo_dataset, demo_reference, tmp_path):
    summary = ingest_large(demo_dataset, tmp_path / "large", chunk_rows=25_000, today=TODAY)
    assert summary["chunks"] >= 4  # several chunks really were used
    ref = demo_reference.tables["findings"]
    assert len(ref) > 90_000
    got = read_partitioned(tmp_path / "large", "findings").drop(columns="year")
    assert list(got.columns) == list(ref.columns)
    keys = ["source_row"]
    pd.testing.assert_frame_equal(_values(got, keys), _values(ref, keys))
    for name in ("audits", "hosts", "controls", "establishments"):
        back = read_partitioned(tmp_path / "large", name).drop(columns="year", errors="ignore")
        k = SORT_KEYS[name]
        pd.testing.assert_frame_equal(_values(back, k), _values(demo_reference.tables[name], k))
    assert summary["rows"]["findings"] == len(ref)


def _faulty_dataset(root: Path) -> Path:
    """A tiny generated dataset whose findings.csv gets one example of every row-level fault."""
    generate_dataset(root, seed=3, scale=DemoScale(establishments=30, years=(2024, 2025)))
    path = root / "findings.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    first = rows[0].split(",")
    bad_port = ",".join(first[:2] + ["99999"] + first[3:])
    bad_audit = ",".join(["NO-SUCH-AUDIT"] + first[1:])
    bad_sev = ",".join(first[:10] + ["grave"] + first[11:])
    faults = [rows[0], bad_port, "", "a,b,c", ",,,,,,,,,,,", bad_sev, rows[0]]
    path.write_text("\n".join([header, rows[0], *faults, *rows[1:], bad_audit]) + "\n", encoding="utf-8")
    return root


def test_ingest_large_rejects_like_ingest_dataset(tmp_path):
    dataset = _faulty_dataset(tmp_path / "faulty")
    ref = ingest_dataset(dataset, today=TODAY)
    ingest_large(dataset, tmp_path / "large", chunk_rows=40, today=TODAY)
    got = read_partitioned(tmp_path / "large", "rejects")
    want = ref.rejects
    # faults written in _faulty_dataset: ragged_row, unknown_audit reject their rows; port_range and
    # unknown_severity (optional cells) blank the cell with a warning, the finding is kept
    assert set(want["reason"]) >= {"ragged_row", "unknown_audit"}
    assert not set(want["reason"]) & {"port_range", "unknown_severity"}
    warned = set(ref.check.violations.query("severity == 'warning'")["rule"])
    assert {"port_range", "unknown_severity"} <= warned
    viol = read_partitioned(tmp_path / "large", "violations")
    assert {"port_range", "unknown_severity"} <= set(viol.loc[viol["severity"] == "warning", "rule"])
    pd.testing.assert_frame_equal(_values(got, ["source_file", "row"]), _values(want, ["source_file", "row"]))
    acc = read_partitioned(tmp_path / "large", "accounting").set_index("source_file")
    ref_acc = ref.accounting.set_index("source_file")
    for col in ("rows_read", "kept", "rejected", "duplicates"):
        assert int(acc.loc["findings.csv", col]) == int(ref_acc.loc["findings.csv", col]), col
    # rows[0] three times in total (2 exact copies), and the bad-severity copy of rows[0], kept once its
    # severity is blanked, has the same fingerprint (severity is not part of a finding's identity)
    assert int(acc.loc["findings.csv", "duplicates"]) == 3
    assert int(acc.loc["findings.csv", "kept"]) == len(read_partitioned(tmp_path / "large", "findings"))
    f_ref = ref.tables["findings"]
    f_got = read_partitioned(tmp_path / "large", "findings").drop(columns="year")
    pd.testing.assert_frame_equal(_values(f_got, ["source_row"]), _values(f_ref, ["source_row"]))


def _store_contents(folder: Path) -> dict[str, pa.Table]:
    """Every table of a partitioned folder, as read (files in manifest order)."""
    manifest = read_manifest(folder)
    return {name: open_partitioned(folder, name).to_table() for name in manifest["tables"]}


def test_ingest_large_in_worker_processes_equals_one_process(tmp_path):
    dataset = _faulty_dataset(tmp_path / "faulty")
    one = ingest_large(dataset, tmp_path / "one", chunk_rows=300, today=TODAY)
    two = ingest_large(dataset, tmp_path / "two", chunk_rows=300, workers=2, today=TODAY)
    assert one["chunks"] == two["chunks"] >= 3 and two["workers"] == 2
    a, b = _store_contents(tmp_path / "one"), _store_contents(tmp_path / "two")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equals(b[name]), name
    files = read_manifest(tmp_path / "two")["tables"]["findings"]["files"]
    assert files == read_manifest(tmp_path / "one")["tables"]["findings"]["files"]
    assert one["rows"] == two["rows"] and one["rejected"] == two["rejected"] > 0


def test_ingest_large_on_a_dask_cluster_equals_one_process(tmp_path):
    distributed = pytest.importorskip("distributed")
    dataset = _faulty_dataset(tmp_path / "faulty")
    ingest_large(dataset, tmp_path / "one", chunk_rows=300, today=TODAY)
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as cl:
        s = ingest_large(dataset, tmp_path / "dask", chunk_rows=300, client=cl, today=TODAY)
    assert s["workers"] == 2 and s["chunks"] >= 3
    a, b = _store_contents(tmp_path / "one"), _store_contents(tmp_path / "dask")
    for name in a:
        assert a[name].equals(b[name]), name


def test_ingest_large_refuses_zero_workers(tmp_path):
    dataset = _faulty_dataset(tmp_path / "faulty")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        ingest_large(dataset, tmp_path / "out", workers=0, today=TODAY)
    assert not (tmp_path / "out").exists()


def test_read_csv_chunks_keeps_audits_whole_and_lines_exact(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("Audit_ID;host\na1;h1\na1;h2\n\na2;h1\na2;h2;extra\na2;h3\na3;h1\n", encoding="utf-8")
    chunks = list(read_csv_chunks(path, chunk_rows=1))
    ids = [c[0]["audit_id"].tolist() for c in chunks]
    # physical lines read off the text above: a1 at 2-3, blank 4, a2 at 5, ragged 6, a2 at 7, a3 at 8
    assert [c[1].tolist() for c in chunks] == [[2, 3], [5, 7], [8]]
    assert ids == [["a1", "a1"], ["a2", "a2"], ["a3"]]
    assert [c[2] for c in chunks] == [[], [(6, "a2;h2;extra")], []]


def test_read_csv_chunks_reads_every_cell_as_text_and_blank_lines_as_blank(tmp_path):
    path = tmp_path / "f.csv"
    # a column of digits with leading zeros, then a whitespace-only line (blank, not ragged) before line 5
    path.write_text("audit_id,port,host\n007,0443,h1\n007,0022,h2\n   \n008,abc,h3\n", encoding="utf-8")
    (frame, lines, ragged), *rest = list(read_csv_chunks(path, chunk_rows=10))
    assert rest == [] and ragged == []
    assert frame["audit_id"].tolist() == ["007", "007", "008"]
    assert frame["port"].tolist() == ["0443", "0022", "abc"]
    assert lines.tolist() == [2, 3, 5]


def test_read_table_csv_keeps_leading_zeros_of_digit_columns(tmp_path):
    from cyberobs_lib.io import read_table_csv

    path = tmp_path / "establishments.csv"
    path.write_text("finess,beds\n010000024,0012\n750000001,30\n", encoding="utf-8")
    read = read_table_csv(path)
    assert read.frame["finess"].tolist() == ["010000024", "750000001"]
    assert read.frame["beds"].tolist() == ["0012", "30"]


def test_ingest_large_refuses_ungrouped_findings(tmp_path):
    dataset = tmp_path / "d"
    generate_dataset(dataset, seed=3, scale=DemoScale(establishments=30, years=(2024, 2025)))
    path = dataset / "findings.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], *lines[2:], lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not grouped by audit_id"):
        ingest_large(dataset, tmp_path / "out", chunk_rows=5, today=TODAY)
    assert not (tmp_path / "out").exists()


# -------------------------------------------------------------------------------------------------
# Dask path (synchronous scheduler here; the benchmark runs it on a 2-process LocalCluster)
# -------------------------------------------------------------------------------------------------
@pytest.fixture()
def sync_dask():
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        yield dask


def test_normalize_dask_equals_pandas(demo_dataset, demo_reference, sync_dask):
    import dask.dataframe as dd

    from cyberobs_lib.enrich import read_epss, read_kev
    from cyberobs_lib.ingest import split_file
    from cyberobs_lib.scale.dask_pipeline import normalize_dask

    kept, _, _ = split_file(demo_reference.check.tables["findings"])  # checked rows, before normalization
    ref_dir = demo_dataset / "reference"
    kev = read_kev(ref_dir / "known_exploited_vulnerabilities.json")
    epss = read_epss(ref_dir / "epss_scores.csv.gz")
    audits = demo_reference.tables["audits"][["audit_id", "finess", "audit_date"]]
    # re-reported findings (same identity, other wording, later rows): the collapse must keep the first
    again = kept.iloc[::1000].assign(
        title=lambda d: d["title"] + " (again)", source_row=lambda d: d["source_row"] + 10**7
    )
    rows = pd.concat([kept, again], ignore_index=True)
    got = normalize_dask(dd.from_pandas(rows, npartitions=4), audits=audits, kev=kev, epss=epss).compute()
    from cyberobs_lib.enrich import enrich_findings
    from cyberobs_lib.ingest import type_table
    from cyberobs_lib.normalize import normalize_findings

    want = type_table(
        "findings", enrich_findings(normalize_findings(rows, audits=audits, kev=kev), kev=kev, epss=epss)
    )
    assert int(want["n_duplicates"].sum()) == len(again)
    pd.testing.assert_frame_equal(_values(got, ["source_row"]), _values(want, ["source_row"]))
    # and without the copies it is the canonical table of ingest_dataset
    assert len(want) == len(demo_reference.tables["findings"])


def test_lifecycle_dask_equals_match_lifecycle(demo_reference, sync_dask):
    import dask.dataframe as dd

    from cyberobs_lib.lifecycle import match_lifecycle
    from cyberobs_lib.scale.dask_pipeline import lifecycle_dask

    t = demo_reference.tables
    events, pairs = lifecycle_dask(
        dd.from_pandas(t["findings"], npartitions=3),
        t["audits"],
        hosts=dd.from_pandas(t["hosts"], npartitions=2),
        establishments=t["establishments"],
        buckets=4,
    )
    events, pairs = sync_dask.compute(events, pairs)
    ref = match_lifecycle(t["findings"], t["audits"], hosts=t["hosts"], establishments=t["establishments"])
    assert len(ref.pairs) > 1000 and ref.pairs["n_fixed"].sum() > 0
    pd.testing.assert_frame_equal(_values(pairs, ["audit_from"]), _values(ref.pairs, ["audit_from"]))
    keys = ["audit_from", "fingerprint", "status"]
    pd.testing.assert_frame_equal(_values(events, keys), _values(ref.events, keys))


def test_audit_metrics_dask_equals_audit_metrics(demo_reference, sync_dask):
    import dask.dataframe as dd

    from cyberobs_lib.scale.dask_pipeline import audit_metrics_dask
    from cyberobs_lib.studies.indicators import audit_metrics

    t = demo_reference.tables
    got = audit_metrics_dask(dd.from_pandas(t["findings"], npartitions=5), t)
    want = audit_metrics(t)
    assert want["has_kev"].any() and want["exposes_remote_admin"].any()
    pd.testing.assert_frame_equal(got, want)  # same columns, dtypes, order and values


def test_bucket_of_is_stable_and_bounded():
    from cyberobs_lib.scale.dask_pipeline import bucket_of

    finess = pd.Series(["750000001", "130000002", "750000001", "2A0000015"])
    b = bucket_of(finess, buckets=4)
    assert b[0] == b[2] and ((b >= 0) & (b < 4)).all()
    assert (bucket_of(finess.astype("category"), buckets=4) == b).all()  # dtype does not move a FINESS


def test_dask_path_without_dask_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    """dask is an extra (``cyberobs[dask]``): without it the module and the CLI name the extra, no traceback."""
    import sys

    from cyberobs_lib import cli

    for name in [m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "cyberobs_lib.scale.dask_pipeline", raising=False)
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask -> ImportError
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "cyberobs\[dask\]"') as caught:
        import cyberobs_lib.scale.dask_pipeline  # noqa: F401
    assert caught.value.name == "dask"  # .ci/wheel-check tells a missing extra by the module's name
    dataset = _faulty_dataset(tmp_path / "faulty")
    rc = cli.main(["ingest", str(dataset), "--large", "--dask", "local", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and 'pip install "cyberobs[dask]"' in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
