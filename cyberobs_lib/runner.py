"""Run a study described by a parameter file: check, ingest once, execute notebooks, publish whole.

A parameter file (``parameters/*.yaml``) has these keys (anything else is an error naming the key):

``run_name`` (str, required)
    Name of the report folder: ``reports/<run_name>/``.
``data`` (str, required)
    Dataset folder (relative to the repository root, or absolute); ``--data`` overrides it.
``description`` (str)
    One line shown in the manifest and in the title of every HTML page; ``{year}`` (any parameter with
    one value in the run) is replaced by its value.
``published`` (bool, default true)
    Published runs get disclosure control: keyed pseudonyms, small-cell suppression (never below
    :data:`~cyberobs_lib.config.POLICY_MIN_CELL`), and a ``check-disclosure`` scan that fails the run if
    anything identifying is found. ``-p published=false`` cannot make a published file confidential.
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

Precedence of parameter values: :mod:`cyberobs_lib.run_plan`. Checks made before the first notebook:
:mod:`cyberobs_lib.run_checks`. Folders, lock and atomic swap: :mod:`cyberobs_lib.run_lock`.

A run ingests its dataset once into its working folder (``reports/.work/<name>-<hash>/canonical``,
identifying tables never inside a report folder), or reads an already ingested folder (``--canonical``),
then writes everything into a staging folder beside the report folder: each executed notebook, its HTML
without code (and without cells tagged ``check`` or ``remove-cell``), ``tables/*.csv`` plus
``tables.xlsx``, ``figures/``, ``manifest.json``. Only a run where every notebook ran, the workbook was
written and the disclosure check passed replaces the report folder, whole; a failed run leaves it as it
was and moves the staging folder to ``<name>.failed/`` with ``FAILED.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cyberobs_lib import __version__
from cyberobs_lib.batch import run_batch
from cyberobs_lib.config import DEFAULT_MIN_CELL, NOTEBOOKS_DIR, POLICY_MIN_CELL, PROJECT_DIR
from cyberobs_lib.disclosure import check_disclosure, identifiers_from_dataset
from cyberobs_lib.io import sha256_file, write_bytes_atomic, write_text_atomic
from cyberobs_lib.run_canonical import ingest_for_run, ingest_summary, link_canonical
from cyberobs_lib.run_checks import (
    apply_changes,
    check_against_data,
    check_dataset_folder,
    check_key,
    check_validation,
    check_values,
    demo_environment,
)
from cyberobs_lib.run_lock import (
    OutputLock,
    RunFolders,
    check_output_location,
    recover,
    remove_tree,
    set_aside_failed,
    swap_in,
)
from cyberobs_lib.run_notebook import (  # noqa: F401 - re-exported (executing one notebook)
    HIDDEN_TAGS,
    KERNEL_ARGUMENTS,
    NotebookOutcome,
    describe_failure,
    execute_notebook,
    export_html,
    export_pdf,
    failing_cell,
    failure_page,
    notebook_title,
    page_title,
    scrub_paths,
)
from cyberobs_lib.run_plan import (
    DatasetError,
    RunError,
    RunLockedError,
    RunPlan,
    load_plan,
    notebook_parameters,
    parse_override,
)
from cyberobs_lib.studies.data import canonical_format, load_study_data

__all__ = [
    "DatasetError",
    "NotebookOutcome",
    "RunError",
    "RunLockedError",
    "RunPlan",
    "RunResult",
    "execute_notebook",
    "export_html",
    "failure_page",
    "load_plan",
    "notebook_parameters",
    "parse_override",
    "run_study",
    "write_workbook",
]

log = logging.getLogger("cyberobs.run")

#: Private folder of a run inside its staging folder (INTERFACES.md §2): deleted before publication.
RUN_PRIVATE = ".cyberobs"
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
    "openpyxl",
)


@dataclass
class RunResult:
    out: Path
    outcomes: list[NotebookOutcome] = field(default_factory=list)
    disclosure_hits: int = 0
    #: where a failed run's folder went (``<out>.failed``), None when the run succeeded.
    failed_folder: Path | None = None
    #: why ``tables.xlsx`` could not be written (a run failure), None when it was.
    workbook_error: str | None = None

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes) and self.disclosure_hits == 0 and self.workbook_error is None


# --------------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------------
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


def inputs_digest(inputs: dict[str, str]) -> str:
    """One SHA-256 for a dataset: over its ``relative path  sha256`` lines, sorted.

    >>> inputs_digest({"b.csv": "2", "a.csv": "1"}) == inputs_digest({"a.csv": "1", "b.csv": "2"})
    True
    """
    text = "".join(f"{name}  {digest}\n" for name, digest in sorted(inputs.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _public_path(path: Path) -> str:
    """A path for a published manifest: relative to the project, else the file name alone."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_DIR)) if path.is_relative_to(PROJECT_DIR) else path.name


# --------------------------------------------------------------------------------------------------
# Workbook
# --------------------------------------------------------------------------------------------------
def _column_values(values: list[str]) -> list:
    """A CSV column for the workbook: numbers when every non-empty cell is one written plainly (no
    leading zero, so codes keep their text), else text."""
    import math

    out = []
    for v in values:
        if v == "":
            out.append(None)
            continue
        body = v.lstrip("-")
        if body[:1] == "0" and len(body) > 1 and body[1:2].isdigit():
            return list(values)
        try:
            number = float(v)
        except ValueError:
            return list(values)
        if math.isinf(number) or math.isnan(number):
            return list(values)
        out.append(int(v) if v.lstrip("-").isdigit() else number)
    return out


def _sheet_name(stem: str, used: set[str]) -> str:
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in stem)[:31] or "table"
    name, i = clean, 2
    while name.lower() in used:
        suffix = f"~{i}"
        name, i = clean[: 31 - len(suffix)] + suffix, i + 1
    used.add(name.lower())
    return name


#: First characters that make a spreadsheet read a typed text as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Rows of one worksheet (Excel's limit, header included).
XLSX_MAX_ROWS = 1_048_576


def write_workbook(tables_dir: Path, path: Path) -> list[str]:
    """One Excel workbook with a sheet per tidy CSV table; returns the notes about what was changed.

    Every text cell is written as text (``inlineStr``), and one starting like a formula (``=``, ``+``,
    ``-``, ``@``; OWASP "CSV injection") also gets the ``quotePrefix`` style, so it stays inert when opened
    and when edited; numbers written plainly stay numbers; characters XML forbids (control
    characters) are removed, each change noted in a ``notes`` sheet; sheet names are cut to 31
    characters and made unique. A table over Excel's row limit is left out with a note (its CSV is
    complete). Written atomically; nothing is written when there is no table.
    """
    import csv

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    csvs = sorted(tables_dir.glob("*.csv"))
    notes: list[str] = []
    if not csvs:
        return notes

    def write(tmp: Path) -> None:
        wb = Workbook(write_only=True)
        used: set[str] = set()
        for table in csvs:
            with table.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
            if not rows:
                continue
            if len(rows) > XLSX_MAX_ROWS:
                notes.append(
                    f"{table.name}: {len(rows) - 1} rows, over Excel's limit: left out (see the CSV)"
                )
                continue
            header, body = rows[0], rows[1:]
            width = max(len(r) for r in rows)
            columns = [_column_values([r[j] if j < len(r) else "" for r in body]) for j in range(width)]
            ws = wb.create_sheet(_sheet_name(table.stem, used))

            def cell(value, row: int, col: int, sheet=ws, name=table.name, head=header):
                if value is None or not isinstance(value, str):
                    return value
                clean = ILLEGAL_CHARACTERS_RE.sub("", value)
                if clean != value:
                    label = head[col] if col < len(head) else f"#{col + 1}"
                    notes.append(f"{name}: row {row}, column {label}: control character(s) removed")
                c = WriteOnlyCell(sheet, value=clean)
                c.data_type = "s"  # never a formula
                if clean.startswith(FORMULA_TRIGGERS):
                    c.quotePrefix = True  # shown as text, and stays text when the cell is edited
                return c

            ws.append([cell(h, 0, j) for j, h in enumerate(header)])
            for i in range(len(body)):
                ws.append([cell(columns[j][i], i + 1, j) for j in range(width)])
        if notes:
            ws = wb.create_sheet(_sheet_name("notes", used))
            ws.append([WriteOnlyCell(ws, value="note")])
            for note in notes:
                c = WriteOnlyCell(ws, value=note)
                c.data_type = "s"
                ws.append([c])
        wb.save(tmp)

    write_bytes_atomic(write, path)
    return notes


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
def _run_setting(plan: RunPlan, key: str, default):
    """The run's value of a parameter: the largest ``min_cell``; else the first notebook's value."""
    values = list(plan.values_of(key).values())
    if not values:
        return default
    return max(values) if key == "min_cell" else values[0]


@dataclass(frozen=True, eq=False)
class _Run:
    """One run once every check passed: what its steps share (plan, folders, ingested data, settings)."""

    plan: RunPlan
    #: where everything is written; swapped in whole at the end, or set aside as ``failed_name``.
    staging: Path
    #: the canonical tables the notebooks read.
    canonical: Path
    #: the run's confidential working folder (never published).
    work: Path
    failed_name: str
    notebooks_dir: Path
    #: the ingest summary and the validation counts of the dataset.
    summary: dict
    validation: dict
    #: how pseudonyms are keyed (:func:`cyberobs_lib.run_checks.check_key`).
    key_mode: str
    #: what was changed or noted while checking the parameters against the data.
    notes: list[str]
    workers: int | None
    progress: bool

    @property
    def min_cell(self) -> int:
        """The run's smallest published cell: never below the policy floor in a published run."""
        min_cell = int(_run_setting(self.plan, "min_cell", DEFAULT_MIN_CELL))
        return max(min_cell, POLICY_MIN_CELL) if self.plan.published else min_cell

    @property
    def lang(self) -> str:
        """The run's language: the first notebook's ``lang``, French when none declares it."""
        return str(_run_setting(self.plan, "lang", "fr"))

    @property
    def private(self) -> Path:
        """The run's private folder in staging (marker, disclosure ledger), deleted before publication."""
        return self.staging / RUN_PRIVATE

    @property
    def show_bar(self) -> bool:
        """A progress bar only when asked for and standard error is a terminal."""
        return self.progress and sys.stderr.isatty()

    @property
    def scrub(self) -> list[tuple[str, str]]:
        """Local paths replaced in published pages, with what they are replaced by."""
        return [
            (str(self.staging), "<report folder>"),
            (str(self.canonical), "<canonical tables>"),
            (str(self.work), "<working folder>"),
            (str(self.notebooks_dir.resolve()), "notebooks"),
            (str(PROJECT_DIR), "<project>"),
        ]


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
    demo: bool = False,
    strict: bool = False,
) -> RunResult:
    """Run every notebook of a parameter file; a failing notebook does not stop the others.

    Every check is made before the first notebook starts (:mod:`cyberobs_lib.run_checks`); the report
    folder is replaced whole only when the run succeeded (:mod:`cyberobs_lib.run_lock`).

    ``canonical``: run on this already ingested folder (flat or partitioned) instead of ingesting the
    dataset; ``large``: ingest into a year-partitioned store (``storage: partitioned``); ``workers``:
    processes of the per-establishment batch and of the partitioned ingestion; ``demo``: demo mode
    (``$CYBEROBS_DEMO=1``: the public demo key when no key is set); ``strict``: refuse a dataset with
    validation errors (default: go on without the rejected rows, logged and counted); ``progress``: a progress bar, shown only when
    standard error is a terminal.

    Raises
    ------
    RunError
        Refused before anything ran (exit status 2); :class:`DatasetError` for the dataset (3),
        :class:`RunLockedError` when another run writes the same folder (4).
    """
    plan = load_plan(
        params_file,
        data=data,
        out=out,
        overrides=overrides,
        notebooks_dir=notebooks_dir,
        canonical=canonical,
        large=large,
    )
    folders = _check_plan(plan, Path(notebooks_dir))
    with demo_environment(demo), OutputLock(folders):
        run = _start(
            plan, folders, workers=workers, strict=strict, progress=progress, notebooks_dir=notebooks_dir
        )
        try:
            result = _execute(run)
            _finish(run, folders, result)
        except BaseException:
            remove_tree(run.staging)  # interrupted or crashed: the previous report stays as it was
            raise
    return result


def _check_plan(plan: RunPlan, notebooks_dir: Path) -> RunFolders:
    """The checks that need neither the lock nor the data: parameter values, the report folder's place
    (never inside the project, the notebooks or an input) and the dataset folder; the run's folders."""
    check_values(plan)
    folders = RunFolders(plan.out)
    source = plan.canonical if plan.canonical is not None else plan.data
    check_output_location(
        folders, published=plan.published, protected=[PROJECT_DIR, notebooks_dir], inputs=[source]
    )
    if plan.canonical is None:
        check_dataset_folder(plan.data)
    return folders


def _start(
    plan: RunPlan,
    folders: RunFolders,
    *,
    workers: int | None,
    strict: bool,
    progress: bool,
    notebooks_dir: Path,
) -> _Run:
    """Under the lock: the key, the recovery of an interrupted run, the canonical tables, the parameters
    checked against the data, and an empty staging folder."""
    key_mode = check_key(published=plan.published)
    for action in recover(folders):
        log.warning("%s: %s", plan.out.name, action)
    canonical, summary, validation = _prepare_canonical(plan, folders.work, workers, strict=strict)
    notes = plan.notes + apply_changes(plan, check_against_data(plan, canonical))
    for note in notes:
        log.info("%s", note)
    return _Run(
        plan,
        staging=_empty_staging(folders),
        canonical=canonical,
        work=folders.work,
        failed_name=folders.failed.name,
        notebooks_dir=Path(notebooks_dir),
        summary=summary,
        validation=validation,
        key_mode=key_mode,
        notes=notes,
        workers=workers,
        progress=progress,
    )


def _prepare_canonical(
    plan: RunPlan, work: Path, workers: int | None, *, strict: bool
) -> tuple[Path, dict, dict]:
    """The run's canonical folder (ingested, or a view of ``--canonical``), its ingest summary and its
    validation counts; :class:`DatasetError` when the dataset does not validate (checked before the
    tables are written for a flat ingest, after ``ingest_large`` for a partitioned one)."""
    canonical = work / "canonical"
    counts: dict = {}

    def validate(violations) -> None:
        counts.update(check_validation(violations, work, dataset=name, strict=strict))

    if plan.canonical is not None:
        link_canonical(plan.canonical, canonical)
        summary = ingest_summary(plan.canonical)
        name = str(summary.get("dataset") or plan.canonical.name)
        validate(load_study_data(canonical).violations)
        return canonical, summary, counts
    name = plan.data.name
    summary = ingest_for_run(
        plan.data, canonical, storage=plan.storage, workers=workers, before_write=validate
    )
    if not counts:  # partitioned: validated while ingesting, checked now
        validate(load_study_data(canonical).violations)
    return canonical, summary, counts


def _empty_staging(folders: RunFolders) -> Path:
    """The run's staging folder beside the report folder, emptied of what an earlier attempt left."""
    staging = folders.staging()
    remove_tree(staging)
    staging.mkdir(parents=True)
    return staging


def _execute(run: _Run) -> RunResult:
    """Notebooks, batch, workbook, manifest and disclosure check, all inside the staging folder."""
    started = dt.datetime.now(dt.UTC)
    _prepare_staging(run)
    result = RunResult(run.plan.out)
    _let_kernels_draw()
    result.outcomes.extend(_run_notebooks(run))
    result.outcomes.extend(_run_batch(run))
    remove_tree(run.private)  # the marker and the disclosure ledger are the run's, never published
    result.workbook_error = _write_tables_workbook(run.staging)
    manifest = _manifest(run, result, started)
    _write_manifest(manifest, run.staging)
    if run.plan.published:
        result.disclosure_hits = _check_disclosure(run)
        manifest["disclosure_problems"] = result.disclosure_hits
        _write_manifest(manifest, run.staging)
    return result


def _prepare_staging(run: _Run) -> None:
    """``tables/``, ``figures/`` and the private marker the notebooks read (published, min_cell, lang)."""
    (run.staging / "tables").mkdir()
    (run.staging / "figures").mkdir()
    run.private.mkdir()
    marker = {
        "published": run.plan.published,
        "min_cell": run.min_cell,
        "run_name": run.plan.run_name,
        "lang": run.lang,
    }
    write_text_atomic(json.dumps(marker, indent=2) + "\n", run.private / "run.json")


def _let_kernels_draw() -> None:
    """Kernels inherit the environment: a non-interactive MPLBACKEND (e.g. Agg) would keep every figure
    out of the executed notebooks and their HTML."""
    os.environ.pop("MPLBACKEND", None)


def _progress(items, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="notebook", disable=not enabled, file=sys.stderr)


def _run_notebooks(run: _Run) -> list[NotebookOutcome]:
    """Execute the plan's notebooks one after the other; a failure does not stop the next."""
    outcomes = []
    bar = _progress(run.plan.notebooks, run.plan.run_name, run.show_bar)
    for name, params in bar:
        bar.set_postfix_str(name)
        outcomes.append(_run_notebook(run, name, params))
    bar.close()
    return outcomes


def _run_notebook(run: _Run, name: str, params: dict) -> NotebookOutcome:
    """One notebook: the runner's paths it declares, then its own parameters; logged start and end."""
    runner_params = {
        "data_dir": str(run.canonical),
        "output_dir": str(run.staging),
        "published": run.plan.published,
    }
    injected = {k: v for k, v in runner_params.items() if k in run.plan.declared[name]}
    injected.update(params)
    lang = str(run.plan.received(name).get("lang", run.lang))
    log.info("start %s", name)
    outcome = execute_notebook(
        name,
        injected,
        run.staging,
        notebooks_dir=run.notebooks_dir,
        description=run.plan.description_in(lang),
        lang=lang,
        scrub=run.scrub,
        failed_folder=run.failed_name,
        pdf=name in run.plan.pdf,
    )
    if outcome.ok:
        log.info("end %s: ok in %.1f s", name, outcome.seconds)
    else:
        log.error("end %s: FAILED in %.1f s: %s", name, outcome.seconds, outcome.error)
    return outcome


def _run_batch(run: _Run) -> list[NotebookOutcome]:
    """The per-establishment reports of the plan's ``batch`` (none without one)."""
    if run.plan.batch is None:
        return []
    return run_batch(
        run.plan,
        canonical=run.canonical,
        out=run.staging,
        workers=run.workers,
        progress=run.show_bar,
        notebooks_dir=run.notebooks_dir,
        scrub=run.scrub,
    )


def _write_tables_workbook(staging: Path) -> str | None:
    """Write ``tables.xlsx``; why it could not be written (a run failure), None when it was."""
    try:
        for note in write_workbook(staging / "tables", staging / "tables.xlsx"):
            log.warning("tables.xlsx: %s", note)
    except Exception as exc:  # noqa: BLE001 - a workbook failure fails the run, reported like a notebook
        error = f"tables.xlsx could not be written: {type(exc).__name__}: {exc}"
        log.error("%s", error)
        return error
    return None


def _manifest(run: _Run, result: RunResult, started: dt.datetime) -> dict:
    """``manifest.json``: parameters, inputs and their digests, versions, times and outcomes of the run."""
    plan, summary, published = run.plan, run.summary, run.plan.published
    inputs = dict(summary.get("inputs", {}))  # relative to the dataset folder (ingest's summary)
    declared_all = [n for n, _ in plan.notebooks] + ([plan.batch[0]] if plan.batch else [])
    return {
        "run_name": plan.run_name,
        "description": plan.description,
        "parameter_file": _public_path(plan.params_file),
        "parameter_file_sha256": sha256_file(plan.params_file),
        "published": published,
        "key": run.key_mode,
        "min_cell": run.min_cell,
        "lang": run.lang,
        "parameters": {
            "common": plan.spec.get("common", {}),
            "command_line": plan.overrides,
            "notes": run.notes,
            "batch": plan.spec.get("batch"),
            # what each notebook received: its defaults, the file's values, -p (runner paths left out)
            "notebooks": {n: {**plan.received(n), "published": published} for n in declared_all},
        },
        "data": {"dataset": summary.get("dataset"), "inputs_sha256": inputs_digest(inputs)},
        "canonical": plan.canonical.name if plan.canonical is not None else None,
        "storage": canonical_format(run.canonical),
        "inputs": inputs,
        "rows": summary.get("rows"),
        "rejected_rows": summary.get("rejected"),
        "validation": run.validation,
        "catalogs": summary.get("catalogs"),
        "packages": _package_versions(),
        "code_version": _code_version(),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "notebooks": [o.__dict__ for o in result.outcomes],
        "workbook_error": result.workbook_error,
        "disclosure_problems": None if published else "not checked (confidential run)",
        "platform": f"{platform.system()} {platform.machine()}",
    }


def _write_manifest(manifest: dict, staging: Path) -> None:
    """Write ``manifest.json`` atomically (dates and paths as text)."""
    write_text_atomic(json.dumps(manifest, indent=2, default=str) + "\n", staging / "manifest.json")


def _check_disclosure(run: _Run) -> int:
    """Scan the staging folder (:func:`~cyberobs_lib.disclosure.check_disclosure`); the number of problems,
    listed in the working folder's ``disclosure_problems.csv`` (which quotes what it found)."""
    hits = check_disclosure(
        run.staging, identifiers=identifiers_from_dataset(run.canonical), min_cell=run.min_cell
    )
    problems = run.work / "disclosure_problems.csv"
    if len(hits):
        hits.to_csv(problems, index=False)
        log.error(
            "DISCLOSURE CHECK FAILED: %d problem(s), see %s; the report is not published",
            len(hits),
            problems,
        )
    elif problems.exists():
        problems.unlink()
    return len(hits)


def _finish(run: _Run, folders: RunFolders, result: RunResult) -> None:
    """Swap a successful run in as the report folder; set a failed one aside with ``FAILED.md``."""
    if result.ok:
        _publish(run, folders, result)
    else:
        _set_aside(run, folders, result)


def _publish(run: _Run, folders: RunFolders, result: RunResult) -> None:
    """Swap the staging folder in as the report folder, delete a stale ``.failed`` folder, log it."""
    plan = run.plan
    how = swap_in(run.staging, folders)
    remove_tree(folders.failed)  # a stale failure report would contradict the new report
    log.info(
        "%s: %d/%d notebooks ran; report in %s (%s)",
        plan.run_name,
        len(result.outcomes),
        len(result.outcomes),
        plan.out,
        how,
    )


def _set_aside(run: _Run, folders: RunFolders, result: RunResult) -> None:
    """Write ``FAILED.md`` into the staging folder, move it to ``<name>.failed``, log what failed."""
    plan, work = run.plan, run.work
    failed = [o for o in result.outcomes if not o.ok]
    extra = [result.workbook_error] if result.workbook_error else []
    if result.disclosure_hits:
        extra.append(
            f"the disclosure check found {result.disclosure_hits} problem(s) in the report; their list (which "
            f"quotes the identifying values found) is `{work / 'disclosure_problems.csv'}`"
        )
    _write_failed_md(run.staging, plan, result, work, extra)
    result.failed_folder = set_aside_failed(run.staging, folders)
    log.error(
        "%s: %d/%d notebooks ran%s%s; the report folder %s was NOT changed; failure report: %s",
        plan.run_name,
        len(result.outcomes) - len(failed),
        len(result.outcomes),
        f"; FAILED: {', '.join(o.notebook for o in failed)}" if failed else "",
        f"; disclosure check: {result.disclosure_hits} problem(s)" if result.disclosure_hits else "",
        plan.out,
        result.failed_folder / "FAILED.md",
    )


def _write_failed_md(folder: Path, plan: RunPlan, result: RunResult, work: Path, extra: list[str]) -> None:
    """``FAILED.md``: what failed (each notebook, then ``extra``), what to do, where the working files are."""
    lines = [
        f"# Run {plan.run_name} FAILED: the report folder was not changed",
        "",
        f"The report folder `{plan.out}` still holds the previous complete report (if there was one). This",
        "folder holds what the failed run produced, for the team running it: do not publish it.",
        "",
        "## What failed",
        "",
    ]
    for o in result.outcomes:
        if not o.ok:
            where = f"cell {o.cell} of the notebook" if o.cell else "before its end"
            count = f" (execution count [{o.exec_count}])" if o.exec_count is not None else ""
            what = (o.error or "").split(" raised ", 1)[-1]
            path = o.notebook
            if o.notebook.endswith("]") and "[" in o.notebook:  # a batch report: name[FINESS]
                name, finess = o.notebook[:-1].split("[", 1)
                path = f"establishments/{finess}/{name}"
            lines.append(
                f"* `{o.notebook}` stopped in {where}{count} with {what}. The executed notebook, with the full "
                f"error, is `{path}` in this folder; its HTML page here is a failure page."
            )
    lines += [f"* {e}" for e in extra]
    todo = []
    if any(not o.ok for o in result.outcomes):
        todo.append("open each executed notebook named above at its failing cell and fix the cause (data,")
        todo.append("parameter or code);")
    if result.disclosure_hits:
        todo.append("read the disclosure problems (file named above) and fix the tables or notebooks that")
        todo.append("publish them (the publication policy of each table, cyberobs_lib.report.publish_table);")
    if result.workbook_error:
        todo.append("fix what stopped the workbook (the error above names it);")
    lines += [
        "",
        "## What to do",
        "",
        *[line[:1].upper() + line[1:] if i == 0 else line for i, line in enumerate(todo)],
        f"then run again: the next successful run replaces `{plan.out.name}` whole and deletes this folder.",
        f"Confidential working files of the run (canonical tables, reports naming establishments): `{work}`.",
        "",
    ]
    write_text_atomic("\n".join(lines), folder / "FAILED.md")
