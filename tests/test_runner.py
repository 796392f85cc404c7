"""The runner: parameter files validated before anything runs; failures reported; deterministic tables."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from cyberobs_lib.cli import main
from cyberobs_lib.config import NOTEBOOKS_DIR, PARAMETERS_DIR
from cyberobs_lib.runner import RunError, load_plan, parse_override, run_study


def _write(tmp_path: Path, spec: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


BASE = {"run_name": "t", "data": "data/demo", "notebooks": [{"notebook": "00_data_quality.ipynb"}]}


@pytest.mark.parametrize("name", sorted(p.name for p in PARAMETERS_DIR.glob("*.yaml")))
def test_shipped_parameter_files_are_valid(name):
    """Every parameter file shipped in parameters/ passes validation against its notebooks."""
    plan = load_plan(PARAMETERS_DIR / name)
    assert plan.spec["run_name"] and (plan.notebooks or "batch" in plan.spec)


def test_typo_in_top_level_key_names_the_key(tmp_path):
    spec = dict(BASE, publised=True)
    with pytest.raises(RunError, match=r"unknown key 'publised'.*did you mean 'published'"):
        load_plan(_write(tmp_path, spec))


def test_typo_in_notebook_parameter_names_the_key_and_the_notebook(tmp_path):
    spec = dict(BASE, notebooks=[{"notebook": "10_longitudinal.ipynb", "parameters": {"min_dayz": 90}}])
    with pytest.raises(RunError, match=r"10_longitudinal.ipynb: unknown parameter 'min_dayz'"):
        load_plan(_write(tmp_path, spec))


def test_wrong_type_is_an_error(tmp_path):
    spec = dict(BASE, notebooks=[{"notebook": "10_longitudinal.ipynb", "parameters": {"min_days": "ninety"}}])
    with pytest.raises(RunError, match=r"'min_days' must be int"):
        load_plan(_write(tmp_path, spec))
    with pytest.raises(RunError, match=r"'published' must be true/false"):
        load_plan(_write(tmp_path, dict(BASE, published="yes")))


def test_pdf_is_a_boolean_of_a_notebook_entry(tmp_path):
    spec = dict(BASE, notebooks=[{"notebook": "00_data_quality.ipynb", "pdf": True}])
    assert load_plan(_write(tmp_path, spec)).pdf == {"00_data_quality.ipynb"}
    assert load_plan(_write(tmp_path, BASE)).pdf == frozenset()
    spec = dict(BASE, notebooks=[{"notebook": "00_data_quality.ipynb", "pdf": "yes"}])
    with pytest.raises(RunError, match=r"'pdf' must be"):
        load_plan(_write(tmp_path, spec))


def test_reader_page_is_self_contained_and_its_pdf_reads(tmp_path):
    """The exported page loads nothing from a CDN (pages on an intranet without internet), says its
    language and title; its PDF is written by WeasyPrint without network."""
    from cyberobs_lib.runner import export_html, export_pdf

    nb = new_notebook(cells=[new_code_cell("print('x')")])
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# Synthèse annuelle\n\nUn tiers des structures."))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="30,8 %\n")]
    src = tmp_path / "page.ipynb"
    nbformat.write(nb, src)
    html = export_html(src, tmp_path / "page.html", lang="fr")
    text = html.read_text(encoding="utf-8")
    assert '<html lang="fr">' in text and "<title>Synthèse annuelle</title>" in text
    assert "<script" not in text and "cdnjs" not in text and "print('x')" not in text
    pdf = export_pdf(html, tmp_path / "page.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]


def test_missing_required_key_and_unknown_common_key(tmp_path):
    with pytest.raises(RunError, match=r"required key 'data' is missing"):
        load_plan(_write(tmp_path, {"run_name": "t", "notebooks": []}))
    with pytest.raises(RunError, match=r"common parameter 'colour' is declared by none"):
        load_plan(_write(tmp_path, dict(BASE, common={"colour": "red"})))


def test_override_is_checked_too(tmp_path):
    with pytest.raises(RunError, match=r"-p lnag: no notebook of this run declares 'lnag'"):
        load_plan(_write(tmp_path, BASE), overrides=["lnag=en"])
    plan = load_plan(_write(tmp_path, BASE), overrides=["lang=en"])
    assert plan.notebooks[0][1]["lang"] == "en"
    assert parse_override("published=false") == ("published", False)


def test_batch_must_be_confidential(tmp_path):
    spec = {"run_name": "b", "data": "data/demo", "batch": {"notebook": "50_establishment_report.ipynb"}}
    with pytest.raises(RunError, match="confidential"):
        load_plan(_write(tmp_path, spec))


def test_cli_reports_a_typo_before_running(tmp_path, capsys):
    path = _write(tmp_path, dict(BASE, notebook=[]))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "unknown key 'notebook'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _failing_notebooks(tmp_path: Path) -> Path:
    """A notebooks folder with one notebook that fails in its second cell and one that works."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name, body in (("bad.ipynb", "raise ValueError('planted failure')"), ("good.ipynb", "x = 1")):
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = new_code_cell('data_dir: str = ""  # data\noutput_dir: str = ""  # out')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, new_code_cell(body)]
        nbformat.write(nb, folder / name)
    return folder


def test_a_failing_notebook_is_reported_and_the_others_still_run(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))
    nbs = _failing_notebooks(tmp_path)
    spec = {
        "run_name": "f",
        "data": "data/demo",
        "published": False,
        "notebooks": [{"notebook": "bad.ipynb"}, {"notebook": "good.ipynb"}],
    }
    result = run_study(_write(tmp_path, spec), out=tmp_path / "out", progress=False, notebooks_dir=nbs)
    assert not result.ok
    bad, good = result.outcomes
    assert not bad.ok and "ValueError" in bad.error and "planted failure" in bad.error and "cell" in bad.error
    assert bad.cell == 2 and bad.ename == "ValueError"
    failed = tmp_path / "out.failed"
    assert good.ok and (failed / "good.html").is_file() and not (tmp_path / "out").exists()
    assert any("end bad.ipynb: FAILED" in r.getMessage() for r in caplog.records)
    manifest = json.loads((failed / "manifest.json").read_text())
    assert {n["notebook"] for n in manifest["notebooks"]} == {"bad.ipynb", "good.ipynb"}


@pytest.mark.slow
def test_same_inputs_same_tables_and_a_complete_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as in a headless shell: figures must still reach the report
    spec = dict(BASE, run_name="d")
    params = _write(tmp_path, spec)
    outs = [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))
    for out in outs:
        assert run_study(params, out=out, progress=False, demo=True).ok

    def digest(folder):
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "tables").glob("*.csv"))
        }

    assert digest(outs[0]) == digest(outs[1]) and digest(outs[0])
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    for key in ("parameters", "inputs", "rows", "packages", "code_version", "started", "finished"):
        assert manifest[key], key
    assert manifest["disclosure_problems"] == 0
    assert "establishments.csv" in manifest["inputs"] and len(manifest["inputs"]["establishments.csv"]) == 64
    assert (outs[0] / "tables.xlsx").is_file() and (outs[0] / "00_data_quality.html").is_file()
    assert not (outs[0] / "canonical").exists()  # identifying tables never inside the published folder
    assert len(list((tmp_path / "work").glob("*/canonical"))) == 2  # one working folder per --out
    executed = nbformat.read(outs[0] / "00_data_quality.ipynb", as_version=4)
    images = [o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the accounting figure is missing from the executed notebook"
    assert "data:image/png;base64" in (outs[0] / "00_data_quality.html").read_text(encoding="utf-8")


def test_real_data_without_a_key_refuses_to_start(tmp_path, fixtures_dir, monkeypatch):
    monkeypatch.delenv("CYBEROBS_KEY", raising=False)
    monkeypatch.delenv("CYBEROBS_KEY_FILE", raising=False)
    monkeypatch.delenv("CYBEROBS_DEMO", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = dict(BASE, data=str(fixtures_dir / "datasets" / "clean"))
    with pytest.raises(RunError, match="CYBEROBS_KEY"):
        run_study(_write(tmp_path, spec), out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_notebooks_declare_the_runner_parameters():
    """Every study notebook accepts data_dir and output_dir (papermill inspection of the parameters cell)."""
    from cyberobs_lib.runner import notebook_parameters

    for nb in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        declared = notebook_parameters(nb)
        assert {"data_dir", "output_dir", "lang"} <= set(declared), nb.name
        assert declared["data_dir"]["default"].strip("'\"") == "../data/demo", nb.name


@pytest.mark.slow
def test_annual_study_runs_clean_and_a_doctored_copy_is_caught(tmp_path, monkeypatch):
    """The whole annual study on the demo data: every notebook runs, the published folder holds no
    identifying value; planting one FINESS, one host and one name in a copy is caught by check-disclosure."""
    import shutil

    import pandas as pd

    from cyberobs_lib.disclosure import check_disclosure, identifiers_from_dataset

    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))
    out = tmp_path / "annual"
    result = run_study(PARAMETERS_DIR / "annual_2025.yaml", out=out, progress=False, demo=True)
    assert result.ok, [o for o in result.outcomes if not o.ok]
    assert result.disclosure_hits == 0
    for name in (
        "indicators",
        "tests_cohorts",
        "lifecycle_by_family",
        "survival",
        "remediation",
        "incidents_indicators",
    ):
        assert (out / "tables" / f"{name}.csv").is_file(), name
    for page in out.glob("*.html"):  # pages as documents: their language, a title, nothing external
        text = page.read_text(encoding="utf-8")
        assert '<html lang="fr">' in text and "<title>Notebook</title>" not in text, page.name
        assert not re.search(
            r"<script[^>]+src=|<link[^>]+href=\"?https?:|@import\s+url\(\s*['\"]?https?:", text
        )
    pdf = (out / "40_annual_summary.pdf").read_bytes()  # pdf: true in the parameter file
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000
    est = pd.read_csv("data/demo/establishments.csv", dtype=str)
    assert not (out / "tables" / "lifecycle.csv").exists()  # per-establishment rows stay confidential
    for table in (out / "tables").glob("*.csv"):  # no FINESS number in any published table
        cells = set(pd.read_csv(table, dtype=str).stack())
        assert not cells & set(est["finess"]), table.name

    doctored = tmp_path / "doctored"
    shutil.copytree(out, doctored)
    hosts = pd.read_csv("data/demo/hosts.csv", dtype=str)
    planted = {"finess": est["finess"].iloc[3], "host": hosts["host"].iloc[0], "name": est["name"].iloc[5]}
    (doctored / "tables" / "extra.csv").write_text(f"who,value\n{planted['finess']},1\n", encoding="utf-8")
    html = doctored / "40_annual_summary.html"
    html.write_text(
        html.read_text(encoding="utf-8") + f"<p>{planted['host']} — {planted['name']}</p>", encoding="utf-8"
    )
    hits = check_disclosure(doctored, identifiers=identifiers_from_dataset(Path("data/demo")))
    assert {"finess", "name"} <= set(hits["kind"]) and hits["kind"].isin(["ip_address", "hostname"]).any()
    assert set(hits["file"]) >= {"tables/extra.csv", "40_annual_summary.html"}


def test_description_per_language_titles_the_pages_of_each_run(tmp_path):
    """A parameter file may describe its run in each report language; each run takes its own."""
    spec = dict(BASE, description={"fr": "Étude {lang}", "en": "Study {lang}"}, common={"lang": "en"})
    plan = load_plan(_write(tmp_path, spec))
    assert plan.description_in("en") == "Study en" and plan.description_in("fr") == "Étude en"
    with pytest.raises(RunError, match=r"description must be a text or a mapping of report languages"):
        load_plan(_write(tmp_path, dict(BASE, description={"de": "Studie"})))


def test_page_title_reads_the_heading_a_code_cell_displays():
    from cyberobs_lib.runner import notebook_title

    nb = new_notebook(cells=[new_code_cell("heading('annual.title', lang)")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "# Synthèse annuelle"})
    ]
    assert notebook_title(nb) == "Synthèse annuelle"
