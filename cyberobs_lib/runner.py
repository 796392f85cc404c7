"""Run a study described by a parameter file: validate, ingest once, execute notebooks, publish.

A parameter file (``parameters/*.yaml``) has these keys (anything else is an error naming the key):

``run_name`` (str, required)
    Name of the report folder: ``reports/<run_name>/``.
``data`` (str, required)
    Dataset folder (relative to the repository root, or absolute); ``--data`` overrides it.
``description`` (str)
    One line shown in the manifest.
``published`` (bool, default true)
    Published runs get disclosure control: keyed pseudonyms, small-cell suppression, and a
    ``check-disclosure`` scan that fails the run if anything identifying is found.
``common`` (mapping)
    Parameters given to every notebook that declares them (each key must be declared by at least one).
``notebooks`` (list, required)
    Items ``{notebook: NAME.ipynb, parameters: {...}}``; each parameter must be declared in that
    notebook's ``parameters`` cell, with a value of the declared type.
``batch`` (mapping)
    Per-establishment reports: ``{notebook: 50_establishment_report.ipynb, establishments: all | [FINESS, ...],
    workers: 2, parameters: {...}}``. Batch runs are confidential (``published`` must be false).
``storage`` (str, default ``flat``)
    How the run ingests its dataset: ``flat`` (:func:`cyberobs_lib.ingest.ingest_dataset` in memory, one
    Parquet file per table) or ``partitioned`` (:func:`cyberobs_lib.scale.ingest_large`: findings.csv in
    chunks into a year-partitioned store, for national-size datasets); ``--large`` sets ``partitioned``.

The run ingests its dataset once into ``reports/.work/<run>/canonical`` (identifying tables stay outside the
published folder), or reads an already ingested folder (``--canonical``, either format) without
re-ingesting. The report folder receives each executed notebook, its HTML without code cells,
``tables/*.csv`` plus ``tables.xlsx``, ``figures/``, ``manifest.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cyberobs_lib import __version__
from cyberobs_lib.config import NOTEBOOKS_DIR, PROJECT_DIR, REPORTS_DIR
from cyberobs_lib.io import sha256_file
from cyberobs_lib.run_canonical import (
    CanonicalFolderError,
    check_canonical_folder,
    ingest_for_run,
    ingest_summary,
    link_canonical,
)

TOP_LEVEL_KEYS: dict[str, tuple[type, ...]] = {
    "run_name": (str,),
    "data": (str,),
    "description": (str,),
    "published": (bool,),
    "common": (dict,),
    "notebooks": (list,),
    "batch": (dict,),
    "storage": (str,),
}
#: Values of ``storage``: how a run ingests its dataset.
STORAGE_FORMATS = ("flat", "partitioned")
REQUIRED_KEYS = ("run_name", "data")
NOTEBOOK_ITEM_KEYS = {"notebook": (str,), "parameters": (dict,)}
BATCH_KEYS = {"notebook": (str,), "establishments": (str, list), "workers": (int,), "parameters": (dict,)}
#: Parameters the runner injects itself into every notebook that declares them.
RUNNER_PARAMETERS = ("data_dir", "output_dir", "published")
PACKAGES = (
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "lifelines",
    "scikit-posthocs",
    "seaborn",
    "matplotlib",
    "papermill",
    "pyarrow",
    "pandera",
    "cvss",
    "defusedxml",
)


class RunError(ValueError):
    """A parameter file or run that cannot start; the message names the key or file."""


@dataclass
class NotebookOutcome:
    notebook: str
    ok: bool
    seconds: float
    error: str | None = None


@dataclass
class RunResult:
    out: Path
    outcomes: list[NotebookOutcome] = field(default_factory=list)
    disclosure_hits: int = 0

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes) and self.disclosure_hits == 0


# --------------------------------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------------------------------
def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(
        {str: "text", bool: "true/false", int: "integer", float: "number", list: "list", dict: "mapping"}[t]
        for t in types
    )


def _check_keys(mapping: dict, allowed: dict[str, tuple[type, ...]], where: str) -> None:
    for key, value in mapping.items():
        if key not in allowed:
            raise RunError(
                f"{where}: unknown key '{key}'{_hint(key, allowed)}; allowed: {', '.join(allowed)}"
            )
        types = allowed[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise RunError(f"{where}: key '{key}' must be {_type_name(types)}, got {value!r}")


def _hint(value: str, allowed) -> str:
    close = [k for k in allowed if _similar(k, value)]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` with YAML typing (``year=2024`` → int, ``published=false`` → bool).

    >>> parse_override("year=2024"), parse_override("families=[EHPAD, CH]")
    (('year', 2024), ('families', ['EHPAD', 'CH']))
    """
    if "=" not in text:
        raise RunError(f"-p {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value) if value.strip() else ""


def notebook_parameters(path: Path) -> dict[str, dict]:
    """Declared parameters of a notebook (papermill's inspection of its ``parameters`` cell)."""
    import papermill as pm

    if not path.is_file():
        raise RunError(f"notebook {path} does not exist")
    return pm.inspect_notebook(str(path))


_PY_TYPES = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _check_value(nb: str, key: str, value: Any, declared: dict) -> None:
    tname = (declared.get("inferred_type_name") or "").split("[")[0].strip()
    types = _PY_TYPES.get(tname)
    if types is None:
        return
    if isinstance(value, bool) and bool not in types:
        raise RunError(f"{nb}: parameter '{key}' must be {tname}, got {value!r}")
    if not isinstance(value, types):
        raise RunError(f"{nb}: parameter '{key}' must be {tname}, got {value!r}")


@dataclass
class RunPlan:
    params_file: Path
    spec: dict
    data: Path
    out: Path
    notebooks: list[tuple[str, dict]]
    storage: str = "flat"
    canonical: Path | None = None


def load_plan(
    params_file: Path,
    *,
    data: Path | str | None = None,
    out: Path | str | None = None,
    overrides: list[str] | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    canonical: Path | str | None = None,
    large: bool = False,
) -> RunPlan:
    """Validate a parameter file (and ``-p`` overrides) against the notebooks; nothing runs yet.

    ``canonical``: an already ingested folder (``cyberobs ingest [--large]`` output) to run on, checked
    here; the dataset folder is then not needed. ``large``: ingest with ``storage: partitioned``.
    """
    params_file = Path(params_file)
    if not params_file.is_file():
        raise RunError(f"parameter file {params_file} does not exist")
    try:
        spec = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RunError(f"{params_file}: not valid YAML ({exc})") from exc
    if not isinstance(spec, dict):
        raise RunError(f"{params_file}: expected a mapping of keys at the top level")
    where = params_file.name
    _check_keys(spec, TOP_LEVEL_KEYS, where)
    for key in REQUIRED_KEYS:
        if key not in spec:
            raise RunError(f"{where}: required key '{key}' is missing")
    if "notebooks" not in spec and "batch" not in spec:
        raise RunError(f"{where}: give 'notebooks' or 'batch'")
    storage = "partitioned" if large else spec.get("storage", "flat")
    if storage not in STORAGE_FORMATS:
        raise RunError(
            f"{where}: storage '{storage}' is not known{_hint(storage, STORAGE_FORMATS)}; "
            f"use one of: {', '.join(STORAGE_FORMATS)}"
        )
    items = []
    for i, item in enumerate(spec.get("notebooks", [])):
        if not isinstance(item, dict) or "notebook" not in item:
            raise RunError(f"{where}: notebooks[{i}] must be a mapping with a 'notebook' key")
        _check_keys(item, NOTEBOOK_ITEM_KEYS, f"{where}: notebooks[{i}]")
        items.append((item["notebook"], dict(item.get("parameters") or {})))
    if "batch" in spec:
        _check_keys(spec["batch"], BATCH_KEYS, f"{where}: batch")
        if "notebook" not in spec["batch"]:
            raise RunError(f"{where}: batch: required key 'notebook' is missing")
        if spec.get("published", True):
            raise RunError(
                f"{where}: per-establishment batch reports are confidential: set 'published: false'"
            )
    common = dict(spec.get("common") or {})
    for text in overrides or []:
        key, value = parse_override(text)
        common[key] = value
    declared_all: set[str] = set()
    nb_names = [n for n, _ in items] + ([spec["batch"]["notebook"]] if "batch" in spec else [])
    declared_by = {n: notebook_parameters(notebooks_dir / n) for n in nb_names}
    for name, params in items + (
        [(spec["batch"]["notebook"], dict(spec["batch"].get("parameters") or {}))] if "batch" in spec else []
    ):
        declared = declared_by[name]
        declared_all |= set(declared)
        for key, value in params.items():
            if key not in declared:
                raise RunError(
                    f"{where}: {name}: unknown parameter '{key}'; the notebook declares: "
                    f"{', '.join(sorted(declared))}"
                )
            _check_value(f"{where}: {name}", key, value, declared[key])
    for key, value in common.items():
        if key not in declared_all:
            raise RunError(
                f"{where}: common parameter '{key}' is declared by none of the notebooks "
                f"({', '.join(nb_names)})"
            )
        for name in nb_names:
            if key in declared_by[name]:
                _check_value(f"{where}: {name}", key, value, declared_by[name][key])
    data_path = Path(data or spec["data"])
    if not data_path.is_absolute():
        data_path = (PROJECT_DIR / data_path) if not data_path.exists() else data_path.resolve()
    if canonical is not None and (large or data is not None):
        raise RunError(
            f"--canonical {canonical}: the tables are already ingested; --data and --large apply to a run "
            "that ingests its dataset"
        )
    try:
        canonical_path = check_canonical_folder(canonical) if canonical is not None else None
    except CanonicalFolderError as exc:
        raise RunError(str(exc)) from exc
    if canonical_path is None and not data_path.is_dir():
        raise RunError(f"{where}: dataset folder {data_path} does not exist")
    out_path = Path(out) if out else REPORTS_DIR / spec["run_name"]
    merged = []
    for name, params in items:
        p = {k: v for k, v in common.items() if k in declared_by[name]}
        p.update(params)
        merged.append((name, p))
    spec = dict(spec, common=common)
    return RunPlan(
        params_file, spec, data_path.resolve(), out_path.resolve(), merged, storage, canonical_path
    )


# --------------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return sha256_file(path)


def _code_version() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if rev.returncode == 0:
            return f"{__version__}+{rev.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def describe_failure(exc: BaseException) -> str:
    """One clear line for a failed notebook: which cell, which error."""
    cell = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell [{cell}]" if cell is not None else "the notebook"
    return f"{where} raised {ename}: {str(evalue).strip().splitlines()[-1] if evalue else ''}"


def execute_notebook(
    name: str,
    params: dict,
    out_dir: Path,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
) -> NotebookOutcome:
    """Execute one notebook with papermill into ``out_dir`` and export its HTML without code."""
    import time

    import papermill as pm

    start = time.perf_counter()
    target = out_dir / name
    error = None
    try:
        pm.execute_notebook(
            str(notebooks_dir / name),
            str(target),
            parameters=params,
            kernel_name="python3",
            cwd=str(notebooks_dir),
            progress_bar=False,
            log_output=False,
        )
    except Exception as exc:  # noqa: BLE001 - any notebook failure is reported, the run goes on
        error = describe_failure(exc)
    if target.exists():
        export_html(target, target.with_suffix(".html"))
    return NotebookOutcome(name, error is None, time.perf_counter() - start, error)


def export_html(notebook: Path, html: Path) -> Path:
    """HTML for readers: no code cells, no prompts, no papermill parameter cells."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [
        c
        for c in nb.cells
        if "injected-parameters" not in c.metadata.get("tags", [])
        and "parameters" not in c.metadata.get("tags", [])
    ]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    html.write_text(body, encoding="utf-8")
    return html


def write_workbook(tables_dir: Path, path: Path) -> Path | None:
    """One Excel workbook with a sheet per tidy CSV table (sheet names cut to 31 characters)."""
    import pandas as pd

    csvs = sorted(tables_dir.glob("*.csv"))
    if not csvs:
        return None
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        for csv in csvs:
            pd.read_csv(csv).to_excel(xl, sheet_name=csv.stem[:31], index=False)
    return path


def run_study(
    params_file: Path,
    *,
    data: Path | str | None = None,
    out: Path | str | None = None,
    overrides: list[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    canonical: Path | str | None = None,
    large: bool = False,
) -> RunResult:
    """Run every notebook of a parameter file; a failing notebook does not stop the others.

    ``canonical``: run on this already ingested folder (flat or partitioned) instead of ingesting the
    dataset; ``large``: ingest into a year-partitioned store (``storage: partitioned``); ``workers``:
    processes of the per-establishment batch and of the partitioned ingestion.
    """
    from tqdm import tqdm

    from cyberobs_lib.studies.data import canonical_format

    plan = load_plan(
        params_file,
        data=data,
        out=out,
        overrides=overrides,
        notebooks_dir=notebooks_dir,
        canonical=canonical,
        large=large,
    )
    spec = plan.spec
    published = bool(spec.get("published", True))
    given = plan.canonical
    summary = ingest_summary(given) if given is not None else None
    if published:
        from cyberobs_lib.disclosure import load_key

        if given is not None:
            is_demo = "truth.json" in summary.get("inputs", {})
        else:
            is_demo = (plan.data / "truth.json").is_file()
        try:
            load_key(dataset_is_demo=is_demo)
        except Exception as exc:  # MissingKeyError
            raise RunError(str(exc)) from exc
    started = dt.datetime.now(dt.UTC)
    out_dir = plan.out
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    # The canonical tables hold identifying data: they live beside the report folder, never inside it.
    canonical = out_dir.parent / ".work" / out_dir.name / "canonical"
    if given is not None:
        link_canonical(given, canonical)
        inputs = dict(summary.get("inputs", {}))
    else:
        summary = ingest_for_run(plan.data, canonical, storage=plan.storage, workers=workers)
        inputs = {
            str(p.relative_to(plan.data)): _sha256(p) for p in sorted(plan.data.rglob("*")) if p.is_file()
        }
    result = RunResult(out_dir)
    runner_params = {"data_dir": str(canonical), "output_dir": str(out_dir), "published": published}
    # Kernels inherit the environment: a non-interactive MPLBACKEND (e.g. Agg) would keep every figure
    # out of the executed notebooks and their HTML.
    os.environ.pop("MPLBACKEND", None)
    bar = tqdm(plan.notebooks, desc=spec["run_name"], unit="notebook", disable=not progress, file=sys.stderr)
    for name, params in bar:
        bar.set_postfix_str(name)
        declared = notebook_parameters(notebooks_dir / name)
        injected = {k: v for k, v in runner_params.items() if k in declared}
        injected.update(params)
        outcome = execute_notebook(name, injected, out_dir, notebooks_dir=notebooks_dir)
        result.outcomes.append(outcome)
        if not outcome.ok:
            tqdm.write(f"FAILED {name}: {outcome.error} (see {out_dir / name})", file=sys.stderr)
    if "batch" in spec:
        from cyberobs_lib.batch import run_batch

        result.outcomes.extend(
            run_batch(
                plan, canonical=canonical, workers=workers, progress=progress, notebooks_dir=notebooks_dir
            )
        )
    write_workbook(out_dir / "tables", out_dir / "tables.xlsx")
    manifest = {
        "run_name": spec["run_name"],
        "description": spec.get("description", ""),
        "parameter_file": str(plan.params_file),
        "parameters": {
            "common": spec.get("common", {}),
            "notebooks": dict(plan.notebooks),
            "batch": spec.get("batch"),
        },
        "published": published,
        "data": str(plan.data) if given is None else summary.get("dataset"),
        "canonical": str(given) if given is not None else None,
        "storage": canonical_format(canonical),
        "inputs": inputs,
        "rows": summary["rows"],
        "rejected_rows": summary["rejected"],
        "catalogs": summary.get("catalogs"),
        "packages": _package_versions(),
        "code_version": _code_version(),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "notebooks": [o.__dict__ for o in result.outcomes],
        "disclosure_problems": None if published else "not checked (confidential run)",
        "platform": f"{platform.system()} {platform.machine()}",
        "pid": os.getpid(),
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if published:
        from cyberobs_lib.disclosure import check_disclosure, identifiers_from_dataset

        hits = check_disclosure(
            out_dir,
            identifiers=identifiers_from_dataset(canonical),
            min_cell=int(spec.get("common", {}).get("min_cell", 5)),
        )
        result.disclosure_hits = len(hits)
        if len(hits):
            hits.to_csv(out_dir.parent / ".work" / out_dir.name / "disclosure_problems.csv", index=False)
            tqdm.write(
                f"DISCLOSURE CHECK FAILED: {len(hits)} problem(s), see "
                f"{out_dir.parent / '.work' / out_dir.name / 'disclosure_problems.csv'}; the report folder "
                "must not be published as it is",
                file=sys.stderr,
            )
        manifest["disclosure_problems"] = result.disclosure_hits
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8"
    )
    failed = [o for o in result.outcomes if not o.ok]
    summary = (
        f"{len(result.outcomes) - len(failed)}/{len(result.outcomes)} notebooks ran; report in {out_dir}"
    )
    print(
        summary if not failed else summary + f"; FAILED: {', '.join(o.notebook for o in failed)}",
        file=sys.stderr,
    )
    return result
