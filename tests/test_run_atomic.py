"""A run's report folder holds the previous complete report or the new complete one, never a mix: runs
killed with SIGKILL, concurrent runs, reused folders, failed notebooks; unattended output; the workbook."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cyberobs_lib.cli import main
from cyberobs_lib.config import PROJECT_DIR
from cyberobs_lib.ingest import ingest_dataset, write_canonical
from cyberobs_lib.run_lock import RunFolders, recover, swap_in
from cyberobs_lib.run_plan import EXIT_LOCKED
from cyberobs_lib.runner import run_study, write_workbook


@pytest.fixture(autouse=True)
def _work_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store") / "demo"
    write_canonical(ingest_dataset(PROJECT_DIR / "data" / "demo", today="2026-01-01"), out)
    return out


@pytest.fixture(scope="module")
def nbs(fixtures_dir) -> Path:
    return fixtures_dir / "run_notebooks"


def _params(tmp_path: Path, *names: str, published: bool = False) -> Path:
    spec = {
        "run_name": "t",
        "data": "data/demo",
        "description": "Fixture run {year}",
        "published": published,
        "notebooks": [{"notebook": n} for n in names or ("year.ipynb",)],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def _command(params: Path, out: Path, store: Path, nbs: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cyberobs_lib.cli",
        "run",
        str(params),
        "--canonical",
        str(store),
        "--out",
        str(out),
        "--notebooks",
        str(nbs),
        "--demo",
        *extra,
    ]


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _tag(out: Path) -> str:
    return pd.read_csv(out / "tables" / "received_year.csv").set_index("key")["value"]["tag"]


def _wait_for(predicate, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _staged_table(out: Path) -> bool:
    return any(p.is_file() for p in out.parent.glob(f".{out.name}.staging-*/tables/received_year.csv"))


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CYBEROBS_WORK_DIR": str(tmp_path / "work")}


def test_sigkill_mid_notebook_leaves_the_previous_report_and_the_next_run_replaces_it_whole(
    tmp_path, store, nbs
):
    params, out = _params(tmp_path), tmp_path / "out"
    first = subprocess.run(_command(params, out, store, nbs, "-p", "tag=first"), env=_env(tmp_path))
    assert first.returncode == 0 and _tag(out) == "first" and (out / "tables" / "only_first.csv").is_file()
    before = _snapshot(out)

    run = subprocess.Popen(
        _command(params, out, store, nbs, "-p", "tag=second", "-p", "sleep=30"),
        env=_env(tmp_path),
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _staged_table(out))  # the second run is inside its notebook
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert _snapshot(out) == before  # the previous complete report, untouched
    assert list(tmp_path.glob(".out.staging-*"))  # what the killed run left (cleaned below)

    third = subprocess.run(
        _command(params, out, store, nbs, "-p", "tag=third"),
        env=_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert third.returncode == 0, third.stderr
    assert _tag(out) == "third"
    assert not (out / "tables" / "only_first.csv").exists()  # no stale file of an earlier run survives
    assert not list(tmp_path.glob(".out.staging-*")) and not list(tmp_path.glob(".out.old-*"))
    assert "left by an interrupted run" in third.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["command_line"]["tag"] == "third"


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_completes(tmp_path, store, nbs, capsys):
    params, out = _params(tmp_path), tmp_path / "out"
    first = subprocess.Popen(
        _command(params, out, store, nbs, "-p", "tag=first", "-p", "sleep=8"),
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _staged_table(out))
        code = main(_command(params, out, store, nbs, "-p", "tag=second")[3:])
        err = capsys.readouterr().err
        assert code == EXIT_LOCKED
        assert "another run is writing" in err and f"pid {first.pid}" in err
        _, first_err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_err
    assert _tag(out) == "first"
    # once the first has finished, the folder is free again
    assert main(_command(params, out, store, nbs, "-p", "tag=third", "--quiet")[3:]) == 0
    assert _tag(out) == "third"


def test_a_failed_notebook_leaves_the_report_and_a_failure_report_without_traceback(tmp_path, store, nbs):
    out = tmp_path / "out"
    assert run_study(_params(tmp_path), out=out, canonical=store, notebooks_dir=nbs, progress=False).ok
    before = _snapshot(out)
    result = run_study(
        _params(tmp_path, "year.ipynb", "fail.ipynb"),
        out=out,
        canonical=store,
        notebooks_dir=nbs,
        progress=False,
    )
    assert not result.ok and _snapshot(out) == before
    failed = tmp_path / "out.failed"
    assert result.failed_folder == failed
    page = (failed / "fail.html").read_text(encoding="utf-8")
    assert "Traceback" not in page and "SECRET-VALUE-123" not in page and "planted" not in page
    assert '<html lang="fr">' in page and "Ce carnet n&#x27;a pas pu être produit" in page
    assert "<title>Fixture run 2025 — Failing fixture</title>" in page
    assert "SECRET-VALUE-123" in (failed / "fail.ipynb").read_text(encoding="utf-8")  # kept for the team
    report = (failed / "FAILED.md").read_text(encoding="utf-8")
    assert "`fail.ipynb` stopped in cell 3 of the notebook" in report and "ValueError" in report
    assert str(out) in report and "not changed" in report
    # the good notebook's page is a real report page, without its check and remove-cell cells
    good = (failed / "year.html").read_text(encoding="utf-8")
    assert "visible output" in good and "CHECK-CELL-MARKER" not in good and "REMOVE-CELL-MARKER" not in good
    # a later successful run removes the stale failure report
    assert run_study(_params(tmp_path), out=out, canonical=store, notebooks_dir=nbs, progress=False).ok
    assert not failed.exists()


def test_unattended_output_one_line_per_notebook_no_carriage_return(tmp_path, store, nbs):
    params, out = _params(tmp_path, "year.ipynb", "year_too.ipynb"), tmp_path / "out"
    done = subprocess.run(
        _command(params, out, store, nbs, "-p", "lang=en"), env=_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "without encryption" not in done.stderr
    lines = done.stderr.splitlines()
    for name in ("year.ipynb", "year_too.ipynb"):
        assert sum(f"INFO cyberobs.run: start {name}" in line for line in lines) == 1
        assert sum(f"INFO cyberobs.run: end {name}: ok in" in line for line in lines) == 1
    page = (out / "year.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "<title>Fixture run 2025 — Year fixture</title>" in page
    quiet = subprocess.run(
        _command(params, out, store, nbs, "--quiet"), env=_env(tmp_path), capture_output=True, text=True
    )
    # --quiet: nothing of ours (a kernel's own libzmq message at shutdown, rare under load, is not ours)
    assert quiet.returncode == 0 and "cyberobs." not in quiet.stderr and "\r" not in quiet.stderr


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "cyberobs_lib.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip().startswith("cyberobs 0.")


def test_workbook_cells_are_text_never_formulas(tmp_path):
    from openpyxl import load_workbook

    tables = tmp_path / "tables"
    tables.mkdir()
    frame = pd.DataFrame(
        {
            "name": ['=HYPERLINK("http://x","y")', "+33 1 23", "@SUM(A1)", "-2+3", "bell\x07ring", "ok"],
            "code": ["0140", "2A", "75", "13", "01", "69"],
            "n": [1, 2, 3, 4, 5, 6],
            "share": [0.5, 0.25, None, 1.0, 0.0, 0.125],
        }
    )
    frame.to_csv(tables / "names.csv", index=False)
    (tables / ("x" * 40 + ".csv")).write_text("a\n1\n", encoding="utf-8")
    (tables / ("x" * 40 + "y.csv")).write_text("a\n2\n", encoding="utf-8")
    notes = write_workbook(tables, tmp_path / "tables.xlsx")
    assert notes == ["names.csv: row 5, column name: control character(s) removed"]
    wb = load_workbook(tmp_path / "tables.xlsx")
    assert len(wb.sheetnames) == 4 and "notes" in wb.sheetnames
    rows = list(wb["names"].iter_rows(min_row=2))
    assert all(r[0].data_type == "s" for r in rows)
    assert [r[0].quotePrefix for r in rows] == [True, True, True, True, False, False]
    from cyberobs_lib.disclosure import check_disclosure

    hits = check_disclosure(tmp_path, identifiers=None)  # the independent auditor: no live cell in the xlsx
    assert hits["rule"].str.contains("formula").any()  # ... while the raw CSV written here has some
    assert not hits[hits["file"] == "tables.xlsx"]["rule"].str.contains("formula").any()
    assert [r[0].value for r in rows] == [
        '=HYPERLINK("http://x","y")',
        "+33 1 23",
        "@SUM(A1)",
        "-2+3",
        "bellring",
        "ok",
    ]
    assert [r[1].value for r in rows][:2] == ["0140", "2A"]  # codes keep their text
    assert [r[2].value for r in rows] == [1, 2, 3, 4, 5, 6] and rows[2][3].value is None


def test_swap_without_exchange_and_recovery_between_the_two_renames(tmp_path, monkeypatch):
    import cyberobs_lib.run_lock as run_lock

    out = tmp_path / "out"
    folders = RunFolders(out)
    out.mkdir()
    (out / "manifest.json").write_text("old")
    staging = folders.staging()
    staging.mkdir()
    (staging / "manifest.json").write_text("new")
    assert swap_in(staging, folders).startswith("exchanged atomically")  # Linux renameat2
    assert (out / "manifest.json").read_text() == "new" and not staging.exists()

    monkeypatch.setattr(run_lock, "exchange", lambda a, b: False)
    staging.mkdir()
    (staging / "manifest.json").write_text("newer")
    assert swap_in(staging, folders).endswith("(two renames)")
    assert (out / "manifest.json").read_text() == "newer" and not folders.leftovers()
    # killed between the two renames: no report folder, the previous one set aside, a complete staging
    os.rename(out, folders.old(12345))
    (tmp_path / ".out.staging-12345").mkdir()
    actions = recover(folders)
    assert (out / "manifest.json").read_text() == "newer" and not folders.leftovers()
    assert any("restored the previous report" in a for a in actions)


def test_a_workbook_failure_fails_the_run_before_the_swap(tmp_path, store, nbs, monkeypatch):
    import cyberobs_lib.runner as runner

    def broken(tables_dir, path):
        raise OSError(28, "No space left on device", str(path))

    out = tmp_path / "out"
    monkeypatch.setattr(runner, "write_workbook", broken)
    result = run_study(_params(tmp_path), out=out, canonical=store, notebooks_dir=nbs, progress=False)
    assert not result.ok and all(o.ok for o in result.outcomes) and not out.exists()
    assert "No space left on device" in result.workbook_error
    report = (tmp_path / "out.failed" / "FAILED.md").read_text(encoding="utf-8")
    assert "tables.xlsx could not be written" in report and "Fix what stopped the workbook" in report
    manifest = json.loads((tmp_path / "out.failed" / "manifest.json").read_text())
    assert "No space left" in manifest["workbook_error"]
