"""Packaging: one list of dependencies, a wheel that carries everything `cyberobs run` needs, stripped notebooks.

The wheel is built here from a copy of the source tree (no stale ``build/``), through an sdist as
``python -m build`` does, without network (``--no-build-isolation --no-index``). The full user path (a fresh
virtual environment holding the wheel alone, then ``demo``/``validate``/``ingest``/``run``) is ``make
wheel-check``, run by ``.ci/run`` after the test suite.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import cyberobs_lib
from cyberobs_lib.cli import main
from cyberobs_lib.config import bundled_parameter_files, find_checkout, find_parameter_file

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
#: SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt (the text every Apache-2.0 project ships).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
#: What a source tree needs to build the package (everything else in the repository stays out of it).
SOURCE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "CITATION.cff")
SOURCE_FOLDERS = ("cyberobs_lib", "notebooks", "parameters")


# --------------------------------------------------------------------------------------------------
# One source of truth for dependencies and metadata
# --------------------------------------------------------------------------------------------------
def _declared_requirements() -> dict[str, list[Requirement]]:
    """``pyproject.toml`` requirements by group: ``runtime`` and each extra."""
    project = PYPROJECT["project"]
    groups = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    return {group: [Requirement(text) for text in texts] for group, texts in groups.items()}


def _locked_versions() -> dict[str, Version]:
    locked = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            locked[_canonical(name)] = Version(version)
    return locked


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_the_lock_pins_every_declared_dependency_within_its_bounds():
    locked = _locked_versions()
    problems = []
    for group, requirements in _declared_requirements().items():
        for req in requirements:
            version = locked.get(_canonical(req.name))
            if version is None:
                problems.append(f"{group}: {req.name} is not pinned in constraints.txt")
            elif not req.specifier.contains(version, prereleases=True):
                problems.append(
                    f"{group}: constraints.txt pins {req.name}=={version}, outside {req.specifier}"
                )
    assert not problems, "\n".join(problems)


def test_runtime_dependencies_leave_benchmark_and_cluster_tools_to_extras():
    groups = {g: {_canonical(r.name) for r in reqs} for g, reqs in _declared_requirements().items()}
    assert {"duckdb", "psutil", "dask", "distributed", "pytest"}.isdisjoint(groups["runtime"])
    assert {"duckdb", "psutil"} <= groups["bench"] and {"dask", "distributed"} <= groups["dask"]
    # imported by the library itself (runner, batch, report), not only through papermill
    assert {"nbformat", "nbclient", "jupyter-client", "ipython", "nbconvert"} <= groups["runtime"]
    scipy = next(r for r in _declared_requirements()["runtime"] if r.name == "scipy")
    assert not scipy.specifier.contains("1.14.1")  # fisher_exact(method=MonteCarloMethod(rng=...)) needs 1.15


def _imported_top_level_modules(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source`` (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party_imports() -> dict[str, set[str]]:
    """Third-party top-level module -> the library files and notebooks importing it."""
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO / "cyberobs_lib").rglob("*.py")}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        sources[path] = "\n".join(
            line for block in code for line in block.splitlines() if not line.startswith("%")
        )
    found: dict[str, set[str]] = {}
    for path, source in sources.items():
        for name in _imported_top_level_modules(source) - set(sys.stdlib_module_names) - {"cyberobs_lib"}:
            found.setdefault(name, set()).add(path.relative_to(REPO).as_posix())
    return found


def test_every_imported_package_is_a_declared_dependency():
    """A package the library or a notebook imports is a runtime dependency (the wheel installs it), or,
    for the Dask path only, the ``dask`` extra. Installed here by another route (a dev tool's dependency,
    a manual ``pip install``) is not enough: a user's ``pip install cyberobs`` would lack it."""
    groups = {g: {_canonical(r.name) for r in reqs} for g, reqs in _declared_requirements().items()}
    allowed = groups["runtime"] | groups["dask"]
    providers = importlib.metadata.packages_distributions()
    problems = []
    for module, users in sorted(_third_party_imports().items()):
        dists = {_canonical(d) for d in providers.get(module, [])}
        if not dists:
            problems.append(f"{module}: imported by {sorted(users)} and not installed")
        elif not dists & allowed:
            problems.append(
                f"{module} ({', '.join(sorted(dists))}): imported by {sorted(users)}, not declared"
            )
    assert not problems, "declare in pyproject.toml [project] dependencies:\n" + "\n".join(problems)


def test_requirement_files_install_the_project_under_the_lock():
    """requirements*.txt hold no list of their own: the project (pyproject.toml) under constraints.txt."""
    for name, target in (("requirements.txt", "-e ."), ("requirements-dev.txt", "-e .[dev,bench,dask]")):
        lines = [
            line.strip()
            for line in (REPO / name).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines == ["-c constraints.txt", target], name


def test_one_version_everywhere(capsys):
    citation = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert f'version: "{cyberobs_lib.__version__}"' in citation
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cyberobs_lib.__version__"}
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"cyberobs {cyberobs_lib.__version__}"


def test_license_is_apache_2_everywhere():
    assert hashlib.sha256((REPO / "LICENSE").read_bytes()).hexdigest() == APACHE_2_SHA256
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    citation = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert "cff-version: 1.2.0" in citation and "license: Apache-2.0" in citation
    assert "cyberobs contributors" in citation


# --------------------------------------------------------------------------------------------------
# Notebooks are committed stripped
# --------------------------------------------------------------------------------------------------
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    """Outputs and execution counts are never committed (``nbstripout notebooks/*.ipynb`` removes them):
    nbval then runs every cell and compares none, so the notebooks are checked by their assertions, and an
    ``NBVAL_CHECK_OUTPUT`` marker, which would compare nothing, is refused too (README, "Tests")."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if cell.get("outputs"):
            problems.append(f"cell {i}: has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i}: has an execution count")
        tags = cell.get("metadata", {}).get("tags", [])
        if "NBVAL_CHECK_OUTPUT" in source or "nbval-check-output" in tags:
            problems.append(f"cell {i}: NBVAL_CHECK_OUTPUT marker (compares nothing on a stripped notebook)")
    hint = "strip outputs: nbstripout notebooks/*.ipynb; state checks as assert statements in the cell"
    assert not problems, f"{path.name}: " + "; ".join(problems) + f" ({hint})"


def test_every_notebook_is_collected():
    assert len(NOTEBOOKS) >= 6 and all(p.stat().st_size > 0 for p in NOTEBOOKS)


# --------------------------------------------------------------------------------------------------
# Where notebooks, parameter files and reports are found
# --------------------------------------------------------------------------------------------------
def test_the_checkout_is_recognised_and_an_installed_package_is_not(tmp_path):
    assert find_checkout(REPO / "cyberobs_lib") == REPO
    site = tmp_path / "site-packages"
    (site / "cyberobs_lib").mkdir(parents=True)
    assert find_checkout(site / "cyberobs_lib") is None
    (site / "notebooks").mkdir()  # another distribution's folder is not a checkout without the rest
    assert find_checkout(site / "cyberobs_lib") is None


def test_parameter_file_by_path_or_by_bare_name(tmp_path, monkeypatch):
    params = tmp_path / "project" / "parameters"
    params.mkdir(parents=True)
    (params / "annual_2025.yaml").write_text("run_name: a\n")
    (params / "other.yml").write_text("run_name: o\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = params / "annual_2025.yaml"
    assert find_parameter_file("annual_2025", parameters_dir=params) == found
    assert find_parameter_file("annual_2025.yaml", parameters_dir=params) == found
    assert find_parameter_file("parameters/annual_2025.yaml", parameters_dir=params) == found
    assert find_parameter_file("other", parameters_dir=params) == params / "other.yml"
    assert find_parameter_file(str(found), parameters_dir=params) == found
    (elsewhere / "annual_2025.yaml").write_text("run_name: mine\n")  # a file of the current folder wins
    assert find_parameter_file("annual_2025.yaml", parameters_dir=params) == Path("annual_2025.yaml")
    assert bundled_parameter_files(params) == ["annual_2025", "other"]
    with pytest.raises(FileNotFoundError, match=r"annual_2052 not found.*annual_2025, other"):
        find_parameter_file("annual_2052", parameters_dir=params)
    with pytest.raises(FileNotFoundError):  # a name inside another folder is a path, never looked up
        find_parameter_file("sub/annual_2025", parameters_dir=params)


def test_cli_run_names_the_parameter_files_when_one_is_unknown(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "annual_2052"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "annual_2052 not found" in err and "annual_2025" in err


def test_cli_run_refuses_a_notebooks_folder_that_does_not_exist(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "annual_2025", "--notebooks", str(tmp_path / "absent")])
    assert stop.value.code == 2 and "is not a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# The wheel
# --------------------------------------------------------------------------------------------------
def _copy_source_tree(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "_resources")
    for name in SOURCE_FILES:
        shutil.copy2(REPO / name, target / name)
    for name in SOURCE_FOLDERS:
        shutil.copytree(REPO / name, target / name, ignore=ignore)
    return target


def _run(args: list[str], cwd: Path, **env: str) -> str:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{output}"
    return output


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path | str]:
    """An sdist built from a copy of the source tree, and the wheel built from that sdist (offline)."""
    pytest.importorskip("setuptools", minversion="77", reason="setuptools>=77 (extra dev) builds the wheel")
    root = tmp_path_factory.mktemp("packaging")
    (root / "source").mkdir()
    source = _copy_source_tree(root / "source")
    dist = root / "dist"
    build_sdist = "from setuptools import build_meta as b; import sys; print(b.build_sdist(sys.argv[1]))"
    log = _run([sys.executable, "-c", build_sdist, str(dist)], cwd=source)
    sdist = next(dist.glob("cyberobs-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(root / "unpacked", filter="data")
    unpacked = next((root / "unpacked").iterdir())
    log += _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--wheel-dir", str(dist), str(unpacked)],
        cwd=root,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return {"sdist": sdist, "wheel": next(dist.glob("cyberobs-*.whl")), "log": log, "root": root}


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_the_wheel_carries_notebooks_parameter_files_and_every_data_file(built):
    names = _wheel_names(built["wheel"])
    expected = {f"cyberobs_lib/_resources/notebooks/{p.name}" for p in NOTEBOOKS}
    expected |= {f"cyberobs_lib/_resources/parameters/{p.name}" for p in (REPO / "parameters").glob("*.yaml")}
    data = REPO / "cyberobs_lib" / "data"
    expected |= {
        f"cyberobs_lib/data/{p.relative_to(data).as_posix()}"
        for p in data.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert any(n.startswith("cyberobs_lib/data/incident_mappings/") for n in expected)
    assert not expected - names, sorted(expected - names)
    modules = {
        f"cyberobs_lib/{p.relative_to(REPO / 'cyberobs_lib').as_posix()}"
        for p in (REPO / "cyberobs_lib").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert not modules - names, sorted(modules - names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "notebooks/", "data/"))]


@pytest.mark.slow
def test_the_wheel_metadata_is_the_pyproject_one(built):
    with zipfile.ZipFile(built["wheel"]) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        names = archive.namelist()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert f"Version: {cyberobs_lib.__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    declared = {str(Requirement(r)) for r in PYPROJECT["project"]["dependencies"]}
    runtime = {
        line.removeprefix("Requires-Dist: ")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert {str(Requirement(r)) for r in runtime} == declared
    assert "cyberobs = cyberobs_lib.cli:main" in entry_points


@pytest.mark.slow
def test_the_build_prints_no_setuptools_warning(built):
    log = "\n".join(line for line in built["log"].splitlines() if "is ignored: it is neither" not in line)
    assert "Warning" not in log and "deprecated" not in log.lower(), log


@pytest.mark.slow
def test_the_sdist_carries_what_the_build_copies(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f"notebooks/{p.name}" for p in NOTEBOOKS} <= names
    assert {"LICENSE", "CITATION.cff", "setup.py", "parameters/annual_2025.yaml"} <= names


@pytest.mark.slow
def test_the_installed_package_finds_its_notebooks_and_parameters(built, tmp_path):
    """The wheel unpacked (a pure-Python wheel installs by unpacking) and imported from an empty folder:
    notebooks and parameter files from the package, reports under the current folder, every bundled
    parameter file valid against the bundled notebooks."""
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(built["wheel"]) as archive:
        archive.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    probe = """
import json
from pathlib import Path
import cyberobs_lib
from cyberobs_lib import config
from cyberobs_lib.run_plan import load_plan
plans = {}
for name in config.bundled_parameter_files():
    path = config.find_parameter_file(name)
    plan = load_plan(path, data=".")
    plans[name] = [n for n, _ in plan.notebooks]
print(json.dumps({
    "package": cyberobs_lib.__file__, "checkout": str(config.CHECKOUT_DIR), "project": str(config.PROJECT_DIR),
    "notebooks": sorted(p.name for p in config.NOTEBOOKS_DIR.glob("*.ipynb")),
    "reports": str(config.REPORTS_DIR), "plans": plans,
}))
"""
    out = _run([sys.executable, "-c", probe], cwd=work, PYTHONPATH=str(site))
    found = json.loads(out.strip().splitlines()[-1])
    resources = site / "cyberobs_lib" / "_resources"
    assert Path(found["package"]).is_relative_to(site)
    assert found["checkout"] == "None" and found["project"] == str(resources)
    assert found["notebooks"] == [p.name for p in NOTEBOOKS]
    assert found["reports"] == str(work / "reports")
    assert set(found["plans"]) == {p.stem for p in (REPO / "parameters").glob("*.yaml")}
    assert found["plans"]["annual_2025"][0] == "00_data_quality.ipynb"
