"""Reading a scans folder is contained and bounded: links, loops, FIFOs, depth, counts and sizes.

Every case builds a small dataset in tmp_path (``<dataset>/scans/<audit>/...``) and checks that nothing
outside the dataset folder is read or listed, that each refusal is an accounting row (``refused``) and a
ScanError, and that the walk ends (no timing: a walk that followed the loops would not end at all).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cyberobs_lib.scanners import ScanError, read_scans_dir
from cyberobs_lib.scanners import batch as batch_mod


@pytest.fixture
def dataset(tmp_path, fixtures_dir) -> Path:
    """``<tmp>/ds/scans/A1/`` holding ``testssl.csv`` and ``small.nessus``."""
    scans = tmp_path / "ds" / "scans"
    (scans / "A1").mkdir(parents=True)
    shutil.copy(fixtures_dir / "scans" / "testssl.csv", scans / "A1" / "testssl.csv")
    shutil.copy(fixtures_dir / "scans" / "small.nessus", scans / "A1" / "small.nessus")
    return tmp_path / "ds"


def _names(batch) -> list[str]:
    return [Path(p).name for p in batch.accounting["source_file"]]


def _row(batch, name: str):
    acc = batch.accounting
    rows = acc[acc["source_file"].map(lambda p: Path(p).name) == name]
    assert len(rows) == 1, (name, acc["source_file"].tolist())
    return rows.iloc[0]


def _reconciles(batch) -> None:
    acc = batch.accounting
    refused = acc[acc["status"] == "refused"]
    assert len(refused) == len(batch.errors)
    assert refused["error"].tolist() == [str(e) for e in batch.errors]
    assert all(isinstance(e, ScanError) for e in batch.errors)
    assert (acc["items_read"] == acc["findings"] + acc["skipped"]).all()


def _text(batch) -> str:
    """Everything the batch says about files, as text (to look for names that must not appear)."""
    acc = batch.accounting
    parts = acc["source_file"].tolist() + acc["error"].dropna().tolist() + [batch.summary()]
    parts += batch.findings["source_file"].tolist() + batch.controls["source_file"].tolist()
    parts += [str(e) for e in batch.errors] + list(batch.ignored)
    return "\n".join(parts)


def test_plain_folder_reads_everything(dataset):
    b = read_scans_dir(dataset / "scans")
    assert b.ok and _names(b) == ["small.nessus", "testssl.csv"]
    assert set(b.accounting["audit_id"]) == {"A1"}


def test_link_to_parent_is_a_loop_reported_once(dataset):
    (dataset / "scans" / "A1" / "up").symlink_to("..")
    b = read_scans_dir(dataset / "scans")
    assert _names(b) == ["small.nessus", "testssl.csv", "up"]
    up = _row(b, "up")
    assert up["status"] == "refused" and "already walked" in up["error"] and "loop" in up["error"]
    assert len(b.errors) == 1
    _reconciles(b)


def test_two_links_to_parent_do_not_multiply_the_walk(dataset):
    a1 = dataset / "scans" / "A1"
    (a1 / "l1").symlink_to("..")
    (a1 / "l2").symlink_to("..")
    (a1 / "sub").mkdir()
    (a1 / "sub" / "l3").symlink_to("../..")
    b = read_scans_dir(dataset / "scans")
    # each file once, each link reported once (os.walk(followlinks=True) walked 2^40 paths here)
    assert _names(b) == ["l1", "l2", "small.nessus", "l3", "testssl.csv"]
    assert (b.accounting["status"] == "refused").sum() == 3 == len(b.errors)
    _reconciles(b)


def test_link_to_the_dataset_folder_is_a_loop(dataset):
    (dataset / "scans" / "A1" / "top").symlink_to("../..")
    (dataset / "audits.csv").write_text("audit_id\nA1\n")
    b = read_scans_dir(dataset / "scans")
    assert "already walked" in _row(b, "top")["error"]
    assert "audits.csv" not in _text(b)


def test_folder_linked_to_etc_is_refused_and_never_listed(dataset):
    (dataset / "scans" / "A1" / "conf").symlink_to("/etc")
    (dataset / "scans" / "A2").symlink_to("/etc")
    (dataset / "scans" / "A1" / "pw").symlink_to("/etc/passwd")
    (dataset / "scans" / "A1" / "rel").symlink_to("../../../../../../../../../../etc")
    b = read_scans_dir(dataset / "scans")
    for name in ("conf", "A2", "pw", "rel"):
        row = _row(b, name)
        assert row["status"] == "refused"
        assert "symbolic link leaves the dataset folder" in row["error"]
    assert len(b.errors) == 4
    text = _text(b)
    assert "/etc" not in text
    for name in os.listdir("/etc"):
        assert f"/{name}" not in text, name
    _reconciles(b)


def test_root_bounds_the_walk(dataset, tmp_path, fixtures_dir):
    # a link to a sibling of the dataset is outside it, even though it is in the same tmp folder
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(fixtures_dir / "scans" / "testssl.csv", other / "x.csv")
    (dataset / "scans" / "A3").symlink_to(other)
    b = read_scans_dir(dataset / "scans")
    assert "leaves the dataset folder" in _row(b, "A3")["error"]
    # with root = tmp_path, the same link is inside: followed, its audit id is the link's name
    b = read_scans_dir(dataset / "scans", root=tmp_path)
    assert b.ok
    assert _row(b, "x.csv")["audit_id"] == "A3"


def test_file_link_inside_the_dataset_is_read_under_its_link(dataset, fixtures_dir):
    (dataset / "raw").mkdir()
    shutil.copy(fixtures_dir / "scans" / "nmap_bom_comment.xml", dataset / "raw" / "n.xml")
    (dataset / "scans" / "A2").mkdir()
    (dataset / "scans" / "A2" / "nmap.xml").symlink_to("../../raw/n.xml")
    (dataset / "scans" / "A4").symlink_to("../raw")
    b = read_scans_dir(dataset / "scans")
    row = _row(b, "nmap.xml")
    assert row["audit_id"] == "A2" and row["format"] == "nmap_xml" and row["findings"] == 4
    assert row["source_file"] == str(dataset / "scans" / "A2" / "nmap.xml")
    # the folder link A4 reaches the same file again: read once, the second path reported
    assert len(b.errors) == 1
    assert f"same file as {dataset / 'scans' / 'A2' / 'nmap.xml'}" in _row(b, "n.xml")["error"]
    assert set(b.findings["audit_id"]) == {"A1", "A2"}
    _reconciles(b)


def test_link_to_a_file_in_the_same_folder_is_read_once(dataset):
    a1 = dataset / "scans" / "A1"
    (a1 / "zz_copy.csv").symlink_to("testssl.csv")
    (a1 / "aa_copy.csv").symlink_to("testssl.csv")
    os.link(a1 / "small.nessus", a1 / "hard.nessus")
    b = read_scans_dir(dataset / "scans")
    # the real file is read (links are resolved after the real entries), each other path is reported
    assert _row(b, "testssl.csv")["status"] != "refused"
    for name in ("zz_copy.csv", "aa_copy.csv"):
        assert f"same file as {a1 / 'testssl.csv'}" in _row(b, name)["error"]
    assert f"same file as {a1 / 'hard.nessus'}" in _row(b, "small.nessus")["error"]
    assert b.accounting["findings"].sum() == len(b.findings)
    assert len(b.errors) == 3
    _reconciles(b)


def test_link_to_another_audit_folder_keeps_the_real_audit_id(dataset):
    (dataset / "scans" / "A0").symlink_to("A1")  # sorts first, but real folders are walked first
    b = read_scans_dir(dataset / "scans")
    assert set(b.findings["audit_id"]) == {"A1"}
    assert "already walked" in _row(b, "A0")["error"]


def test_broken_and_looping_links(dataset):
    a1 = dataset / "scans" / "A1"
    (a1 / "dangling").symlink_to("nothere")
    (a1 / "self").symlink_to("self")
    (a1 / "ping").symlink_to("pong")
    (a1 / "pong").symlink_to("ping")
    b = read_scans_dir(dataset / "scans")
    assert "target is missing" in _row(b, "dangling")["error"]
    for name in ("self", "ping", "pong"):
        assert "loop of links" in _row(b, name)["error"]
    _reconciles(b)


def test_fifo_is_refused_without_opening(dataset):
    os.mkfifo(dataset / "scans" / "A1" / "pipe.xml")  # opening it would block: the test would not end
    (dataset / "scans" / "A1" / "pipe_link.xml").symlink_to("pipe.xml")
    b = read_scans_dir(dataset / "scans")
    for name in ("pipe.xml", "pipe_link.xml"):
        row = _row(b, name)
        assert row["status"] == "refused" and "not a regular file (a FIFO)" in row["error"]
    assert _row(b, "testssl.csv")["status"] != "refused"
    _reconciles(b)


def test_too_deep_folders_are_refused_naming_the_limit(dataset, fixtures_dir):
    deep = dataset / "scans" / "A1"
    for i in range(batch_mod.MAX_DEPTH + 3):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    shutil.copy(fixtures_dir / "scans" / "testssl.csv", deep / "deep.csv")
    ok_level = dataset / "scans" / "A1" / "/".join(f"d{i}" for i in range(batch_mod.MAX_DEPTH - 1))
    shutil.copy(fixtures_dir / "scans" / "testssl.csv", ok_level / "level16.csv")
    b = read_scans_dir(dataset / "scans")
    assert "deep.csv" not in _text(b)
    assert _row(b, "level16.csv")["status"] != "refused"  # scans/A1/d0/.../d14 is level 16
    err = _row(b, f"d{batch_mod.MAX_DEPTH - 1}")["error"]
    assert f"folder nested deeper than {batch_mod.MAX_DEPTH} levels" in err and "MAX_DEPTH" in err
    assert len(b.errors) == 1
    b = read_scans_dir(dataset / "scans", max_depth=1)  # A1 is level 1: its files are read, not d0
    assert _names(b) == ["d0", "small.nessus", "testssl.csv"] and len(b.errors) == 1
    b = read_scans_dir(dataset / "scans", max_depth=0)
    assert "deeper than 0 levels" in _row(b, "A1")["error"]


def test_walk_stops_after_max_files(dataset):
    for i in range(10):
        (dataset / "scans" / "A1" / f"f{i}.csv").write_text("")
    b = read_scans_dir(dataset / "scans", max_files=5)
    errs = [e for e in b.errors if "walk stopped" in str(e)]
    assert len(errs) == 1 and "more than 5 files and folders" in str(errs[0]) and "MAX_FILES" in str(errs[0])
    assert len(b.accounting) == 5  # 4 files of the 5 entries (A1 is one) + the error row
    assert batch_mod.MAX_FILES == 100_000


def test_file_over_the_byte_cap_is_refused_before_reading(dataset, monkeypatch):
    calls = []
    real = batch_mod.read_scan_file
    monkeypatch.setattr(
        batch_mod, "read_scan_file", lambda p, **kw: calls.append(Path(p).name) or real(p, **kw)
    )
    size = (dataset / "scans" / "A1" / "small.nessus").stat().st_size
    b = read_scans_dir(dataset / "scans", max_file_bytes=size - 1)
    err = _row(b, "small.nessus")["error"]
    assert f"file of {size:,} bytes, over the cap of {size - 1:,} bytes per scan file" in err
    assert "MAX_FILE_BYTES" in err
    assert calls == ["testssl.csv"]  # never opened by a reader
    assert batch_mod.MAX_FILE_BYTES == 4 << 30
    b = read_scans_dir(dataset / "scans", max_file_bytes=1 << 20)
    assert b.ok


def test_hidden_entries_are_listed_not_read(dataset):
    (dataset / "scans" / ".git").mkdir()
    (dataset / "scans" / ".git" / "config").write_text("x")
    (dataset / "scans" / "A1" / ".DS_Store").write_text("x")
    b = read_scans_dir(dataset / "scans")
    assert b.ok and [Path(p).name for p in b.ignored] == [".git", ".DS_Store"]
    assert "2 hidden files or folders (.*) ignored" in b.summary()
    assert "config" not in _text(b).replace(".git", "")


def test_scans_folder_outside_root(dataset, tmp_path):
    b = read_scans_dir(dataset / "scans", root=tmp_path / "elsewhere")
    assert not b.ok and "lies outside the dataset folder" in str(b.errors[0])
    assert len(b.accounting) == 1
    assert read_scans_dir(tmp_path / "missing").accounting.empty
