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

from cyberobs_lib import __version__
from cyberobs_lib.config import NOTEBOOKS_DIR, PROJECT_DIR
from cyberobs_lib.io import sha256_file, write_bytes_atomic, write_text_atomic
from cyberobs_lib.run_canonical import ingest_for_run, ingest_summary, link_canonical
from cyberobs_lib.run_plan import (
    RunError,
    RunPlan,
    load_plan,
    notebook_parameters,
    parse_override,
)

__all__ = [
    "NotebookOutcome",
    "RunError",
    "RunPlan",
    "RunResult",
    "execute_notebook",
    "export_html",
    "load_plan",
    "notebook_parameters",
    "parse_override",
    "run_study",
]

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
    write_text_atomic(body, html)  # a full disk leaves no truncated page, and names it
    return html


def write_workbook(tables_dir: Path, path: Path) -> Path | None:
    """One Excel workbook with a sheet per tidy CSV table (sheet names cut to 31 characters)."""
    import pandas as pd

    csvs = sorted(tables_dir.glob("*.csv"))
    if not csvs:
        return None

    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xl:
            for csv in csvs:
                pd.read_csv(csv).to_excel(xl, sheet_name=csv.stem[:31], index=False)

    return write_bytes_atomic(write, path)


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
    # The canonical tables hold identifying data: they live beside the report folder, never inside it.
    canonical = out_dir.parent / ".work" / out_dir.name / "canonical"
    if given is not None:
        link_canonical(given, canonical)
        inputs = dict(summary.get("inputs", {}))
    else:
        summary = ingest_for_run(plan.data, canonical, storage=plan.storage, workers=workers)
        inputs = dict(summary.get("inputs", {}))  # the files ingest read (never a walk of the folder)
    # the report folder is made only once the data can be studied: a failed ingest publishes nothing
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
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
    write_text_atomic(json.dumps(manifest, indent=2, default=str) + "\n", out_dir / "manifest.json")
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
    write_text_atomic(json.dumps(manifest, indent=2, default=str) + "\n", out_dir / "manifest.json")
    failed = [o for o in result.outcomes if not o.ok]
    summary = (
        f"{len(result.outcomes) - len(failed)}/{len(result.outcomes)} notebooks ran; report in {out_dir}"
    )
    print(
        summary if not failed else summary + f"; FAILED: {', '.join(o.notebook for o in failed)}",
        file=sys.stderr,
    )
    return result
