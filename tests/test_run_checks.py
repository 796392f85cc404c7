"""What a run checks before its first notebook: precedence of values, safety parameters, the dataset,
parameter values against the data, the output folder. Every refusal leaves no report folder behind."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cyberobs_lib.cli import main
from cyberobs_lib.config import PARAMETERS_DIR, POLICY_MIN_CELL, PROJECT_DIR
from cyberobs_lib.ingest import ingest_dataset, write_canonical
from cyberobs_lib.run_plan import (
    EXIT_INVALID_DATA,
    EXIT_REFUSED,
    DatasetError,
    RunError,
    load_plan,
)
from cyberobs_lib.runner import run_study

DEMO = PROJECT_DIR / "data" / "demo"


@pytest.fixture(autouse=True)
def _work_dir(tmp_path, monkeypatch):
    """Working folders of the runs under the test's folder, not the project's reports/.work."""
    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The demo data ingested once (flat canonical folder): runs use it with --canonical."""
    out = tmp_path_factory.mktemp("store") / "demo"
    write_canonical(ingest_dataset(DEMO, today="2026-01-01"), out)
    return out


@pytest.fixture(scope="module")
def store_army_unaudited(tmp_path_factory) -> Path:
    """The demo with the audits of the Army hospitals left out: a family of the registry never audited."""
    out = tmp_path_factory.mktemp("store") / "demo_no_army"
    result = ingest_dataset(DEMO, today="2026-01-01")
    t = result.tables
    army = set(t["establishments"].loc[t["establishments"]["family"] == "Army", "finess"])
    assert army
    t["audits"] = t["audits"][~t["audits"]["finess"].isin(army)].reset_index(drop=True)
    kept = set(t["audits"]["audit_id"])
    for name in ("hosts", "findings", "controls"):
        t[name] = t[name][t[name]["audit_id"].isin(kept)].reset_index(drop=True)
    write_canonical(result, out)
    return out


@pytest.fixture(scope="module")
def nbs(fixtures_dir) -> Path:
    return fixtures_dir / "run_notebooks"


def _write(tmp_path: Path, spec: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def _spec(**extra) -> dict:
    return {
        "run_name": "t",
        "data": "data/demo",
        "published": False,
        "notebooks": [{"notebook": "year.ipynb"}],
        **extra,
    }


# --------------------------------------------------------------------------------------------------
# Precedence
# --------------------------------------------------------------------------------------------------
def test_command_line_beats_every_level_of_the_parameter_file(tmp_path, nbs):
    spec = _spec(
        common={"year": 2023, "lang": "en"},
        notebooks=[
            {"notebook": "year.ipynb", "parameters": {"year": 2025}},
            {"notebook": "year_too.ipynb", "parameters": {"year": 2022, "lang": "fr"}},
            {"notebook": "period.ipynb", "parameters": {"period": 2025}},
        ],
    )
    path = _write(tmp_path, spec)
    plan = load_plan(path, notebooks_dir=nbs)
    got = dict(plan.notebooks)
    # without -p: the notebook's entry beats common, common beats the notebook's default
    assert got["year.ipynb"]["year"] == 2025 and got["year_too.ipynb"]["year"] == 2022
    assert got["year.ipynb"]["lang"] == "en" and got["year_too.ipynb"]["lang"] == "fr"
    assert plan.received("period.ipynb")["min_cell"] == 5  # default, nothing set it
    plan = load_plan(path, notebooks_dir=nbs, overrides=["year=2024", "lang=fr"])
    got = dict(plan.notebooks)
    assert {n: p["year"] for n, p in got.items() if "year" in p} == {
        "year.ipynb": 2024,
        "year_too.ipynb": 2024,
    }
    assert got["period.ipynb"]["period"] == 2024  # -p year also sets period where only period exists
    assert all(p["lang"] == "fr" for p in got.values())
    assert any("also sets period=2024 in period.ipynb" in n for n in plan.notes)
    # an explicit -p period wins over the link
    plan = load_plan(path, notebooks_dir=nbs, overrides=["year=2024", "period=2023"])
    assert dict(plan.notebooks)["period.ipynb"]["period"] == 2023
    assert dict(plan.notebooks)["year.ipynb"]["year"] == 2024
    # -p period alone sets year too, except period=0 (all years)
    plan = load_plan(path, notebooks_dir=nbs, overrides=["period=2023"])
    assert {n: p.get("year", p.get("period")) for n, p in plan.notebooks} == dict.fromkeys(got, 2023)
    plan = load_plan(path, notebooks_dir=nbs, overrides=["period=0"])
    assert dict(plan.notebooks)["year.ipynb"]["year"] == 2025 and not plan.notes


def test_unknown_command_line_key_names_the_accepted_keys(tmp_path, nbs):
    with pytest.raises(
        RunError, match=r"-p yaer: no notebook of this run declares 'yaer' \(did you mean 'year'\?\)"
    ):
        load_plan(_write(tmp_path, _spec()), notebooks_dir=nbs, overrides=["yaer=2024"])
    with pytest.raises(
        RunError, match=r"accepted keys: families, lang, min_cell, reference, sleep, tag, year"
    ):
        load_plan(_write(tmp_path, _spec()), notebooks_dir=nbs, overrides=["colour=red"])


@pytest.mark.parametrize("name", sorted(p.name for p in PARAMETERS_DIR.glob("*.yaml")))
def test_shipped_files_accept_a_year_for_every_notebook_that_has_one(name):
    plan = load_plan(PARAMETERS_DIR / name)
    years = [k for k in ("year", "period") if plan.values_of(k)]
    if not years:
        pytest.skip("no year parameter")
    plan = load_plan(PARAMETERS_DIR / name, overrides=["year=2024"] if "year" in years else ["period=2024"])
    for key in years:
        assert set(plan.values_of(key).values()) == {2024}, key


def test_received_values_are_in_the_manifest(tmp_path, nbs, store):
    spec = _spec(
        published=True,
        common={"year": 2023},
        notebooks=[
            {"notebook": "year.ipynb", "parameters": {"year": 2025, "tag": "file"}},
            {"notebook": "period.ipynb", "parameters": {"period": 2025}},
        ],
    )
    out = tmp_path / "out"
    result = run_study(
        _write(tmp_path, spec),
        out=out,
        overrides=["year=2024", "families=[ehpad, Cliniques privées (MCO)]", "min_cell=7"],
        canonical=store,
        notebooks_dir=nbs,
        progress=False,
        demo=True,
    )
    assert result.ok, result.outcomes
    manifest_text = (out / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(manifest_text)
    received = manifest["parameters"]["notebooks"]
    assert received["year.ipynb"]["year"] == 2024 and received["period.ipynb"]["period"] == 2024
    assert received["year.ipynb"]["tag"] == "file" and received["year.ipynb"]["published"] is True
    # family names are checked against the data and passed on as codes
    assert received["year.ipynb"]["families"] == ["EHPAD", "Private clinic (MCO)"]
    assert manifest["parameters"]["command_line"]["year"] == 2024
    table = pd.read_csv(out / "tables" / "received_year.csv").set_index("key")["value"]
    assert table["year"] == "2024" and table["families"] == "EHPAD|Private clinic (MCO)"
    marker = {"lang": "fr", "min_cell": 7, "published": True, "run_name": "t"}
    assert json.loads(table["marker"]) == marker  # written before the notebooks, removed after them
    assert pd.read_csv(out / "tables" / "received_period.csv").set_index("key")["value"]["period"] == "2024"
    # no absolute path of this machine in the manifest or in the published notebooks
    assert manifest["key"].startswith("demo") and manifest["data"]["dataset"] == "demo"
    assert len(manifest["data"]["inputs_sha256"]) == 64 and manifest["canonical"] == store.name
    for text in [manifest_text] + [p.read_text(encoding="utf-8") for p in out.glob("*.ipynb")]:
        assert str(tmp_path) not in text and str(PROJECT_DIR) not in text
    assert not (out / ".cyberobs").exists()  # the run's private marker is never published


# --------------------------------------------------------------------------------------------------
# Safety parameters (issue 16, item 4)
# --------------------------------------------------------------------------------------------------
def test_a_dataset_with_errors_runs_without_the_rejected_rows_by_default(tmp_path, fixtures_dir, caplog):
    """One bad file never aborts the study: the errors are logged with the path of their list, the run goes on."""
    spec = _spec(data=str(fixtures_dir / "datasets" / "violations"))
    with caplog.at_level("WARNING", logger="cyberobs.run"):
        result = run_study(
            _write(tmp_path, spec), out=tmp_path / "out", notebooks_dir=fixtures_dir / "run_notebooks"
        )
    assert result.ok and (tmp_path / "out" / "manifest.json").is_file()
    warned = [r.getMessage() for r in caplog.records if "does not validate" in r.getMessage()]
    assert len(warned) == 1 and "violations.csv" in warned[0] and "--strict" in warned[0]
    listed = list((tmp_path / "work").glob("*/violations.csv"))
    assert len(listed) == 1 and (pd.read_csv(listed[0])["severity"] == "error").any()


@pytest.mark.parametrize(
    "override, message",
    [
        ("published=false", "published parameter file"),
        ("min_cell=1", f"below the publication floor of {POLICY_MIN_CELL}"),
        ("data_dir=/tmp/x", "use --data DATASET"),
        ("output_dir=/tmp/x", "use --out DIR"),
    ],
)
def test_published_runs_refuse_unsafe_overrides(tmp_path, capsys, override, message):
    out = tmp_path / "out"
    code = main(
        ["run", str(PARAMETERS_DIR / "annual_2025.yaml"), "--out", str(out), "-p", override, "--demo"]
    )
    assert code == EXIT_REFUSED
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_min_cell_floor_applies_to_the_file_too_and_not_to_confidential_runs(tmp_path, nbs):
    low = {"notebook": "year.ipynb", "parameters": {"min_cell": 3}}
    with pytest.raises(RunError, match="its entry in the parameter file"):
        load_plan(_write(tmp_path, _spec(published=True, notebooks=[low])), notebooks_dir=nbs)
    with pytest.raises(RunError, match="common: min_cell"):
        load_plan(_write(tmp_path, _spec(published=True, common={"min_cell": 2})), notebooks_dir=nbs)
    assert (
        dict(load_plan(_write(tmp_path, _spec(notebooks=[low])), notebooks_dir=nbs).notebooks)["year.ipynb"][
            "min_cell"
        ]
        == 3
    )
    plan = load_plan(_write(tmp_path, _spec(published=True)), notebooks_dir=nbs, overrides=["min_cell=10"])
    assert dict(plan.notebooks)["year.ipynb"]["min_cell"] == 10  # raising it is always allowed
    with pytest.raises(RunError, match="set by the runner"):
        load_plan(_write(tmp_path, _spec(common={"published": False})), notebooks_dir=nbs)


def test_confidential_output_cannot_sit_inside_a_published_report_or_hold_one(tmp_path, nbs, store):
    published = tmp_path / "reports" / "annual"
    published.mkdir(parents=True)
    (published / "manifest.json").write_text(json.dumps({"run_name": "annual", "published": True}))
    path = _write(tmp_path, _spec())
    with pytest.raises(RunError, match="inside the published report folder"):
        run_study(path, out=published / "establishments", canonical=store, notebooks_dir=nbs, progress=False)
    outer = tmp_path / "reports"
    (outer / "manifest.json").write_text(json.dumps({"run_name": "outer", "published": False}))
    with pytest.raises(RunError, match=r"holds another report folder"):
        run_study(path, out=outer, canonical=store, notebooks_dir=nbs, progress=False)
    mine = tmp_path / "my_documents"
    mine.mkdir()
    (mine / "thesis.txt").write_text("not a report")
    with pytest.raises(RunError, match="not a report written by `cyberobs run`"):
        run_study(path, out=mine, canonical=store, notebooks_dir=nbs, progress=False)
    assert (mine / "thesis.txt").is_file() and not (published / "establishments").exists()


# --------------------------------------------------------------------------------------------------
# The dataset and the values against the data
# --------------------------------------------------------------------------------------------------
def test_a_folder_that_is_not_a_dataset_is_refused_first(tmp_path, capsys, monkeypatch):
    for var in ("CYBEROBS_KEY", "CYBEROBS_KEY_FILE", "CYBEROBS_DEMO"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "out"
    code = main(["run", str(PARAMETERS_DIR / "annual_2025.yaml"), "--data", "data", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_INVALID_DATA
    assert "not a dataset folder" in err and "--data" in err and "demo" in err and "key" not in err
    assert not out.exists()


def test_a_dataset_with_errors_is_refused_when_strict_with_one_message_naming_the_report(
    tmp_path, fixtures_dir
):
    spec = _spec(data=str(fixtures_dir / "datasets" / "violations"))
    with pytest.raises(DatasetError) as caught:
        run_study(
            _write(tmp_path, spec),
            out=tmp_path / "out",
            notebooks_dir=fixtures_dir / "run_notebooks",
            strict=True,
        )
    message = str(caught.value)
    report = tmp_path / "work"
    assert "does not validate" in message and "violations.csv" in message and "--strict" in message
    listed = list(report.glob("*/violations.csv"))
    assert len(listed) == 1 and str(listed[0]) in message
    assert (pd.read_csv(listed[0])["severity"] == "error").any()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("lang=de", "lang='de' is not accepted; accepted values: fr, en"),
        (
            "year=2019",
            "year=2019 (set by -p year=2019): no complete audit in 2019; years with complete audits: "
            "2023, 2024, 2025",
        ),
        ("families=[EHPAD, Martians]", "families: unknown family 'Martians'; accepted values"),
        ("reference=Army", "reference: unknown family 'Army'"),  # in the registry, never audited
    ],
)
def test_values_are_checked_against_the_data_before_any_notebook(
    tmp_path, nbs, store, override, message, request
):
    if override == "reference=Army":
        store = request.getfixturevalue("store_army_unaudited")
    spec = _spec(notebooks=[{"notebook": "year.ipynb"}, {"notebook": "period.ipynb"}])
    with pytest.raises(RunError) as caught:
        run_study(
            _write(tmp_path, spec),
            out=tmp_path / "out",
            canonical=store,
            overrides=[override],
            notebooks_dir=nbs,
            progress=False,
        )
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.staging*"))


def test_period_zero_means_every_year(tmp_path, nbs, store):
    from cyberobs_lib.run_checks import check_against_data

    plan = load_plan(
        _write(tmp_path, _spec(notebooks=[{"notebook": "period.ipynb", "parameters": {"period": 0}}])),
        notebooks_dir=nbs,
    )
    assert check_against_data(plan, store) == {}


def test_a_published_run_without_a_key_says_how_to_set_one(tmp_path, nbs, store, monkeypatch):
    for var in ("CYBEROBS_KEY", "CYBEROBS_KEY_FILE", "CYBEROBS_DEMO"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RunError, match=r"CYBEROBS_KEY[\s\S]*--demo"):
        run_study(
            _write(tmp_path, _spec(published=True)), out=tmp_path / "out", canonical=store, notebooks_dir=nbs
        )
    assert not (tmp_path / "out").exists()
