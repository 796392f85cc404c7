"""Everything a run checks before its first notebook starts, each refusal naming what to fix.

In the order :func:`cyberobs_lib.runner.run_study` calls them:

1. :func:`check_values` — parameter values with a fixed domain (``lang`` in
   :data:`~cyberobs_lib.config.SUPPORTED_LANGS`, ``alpha``, ``pairing``, ``convention``, ``metrics`` …);
2. :func:`check_dataset_folder` — the ``--data`` folder is a dataset (not, e.g., the folder holding one);
3. :func:`check_key` — a published run has a pseudonymisation key (or runs in demo mode);
4. :func:`check_validation` — after the run's ingest, the dataset has no validation error (the violations
   are written to the run's working folder and the message says where);
5. :func:`check_against_data` — years and periods with complete audits, families and reference families
   that exist (codes or French/English names, :func:`cyberobs_lib.studies.families.resolve_families`).

Every refusal is a :class:`~cyberobs_lib.run_plan.RunError` (exit status 2) or, for the dataset,
:class:`~cyberobs_lib.run_plan.DatasetError` (exit status 3).
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from cyberobs_lib.batch import batch_establishments
from cyberobs_lib.config import DEMO_ENV_VAR, DEMO_KEY, SUPPORTED_LANGS
from cyberobs_lib.disclosure import MissingKeyError, load_key
from cyberobs_lib.run_plan import DatasetError, RunError, RunPlan
from cyberobs_lib.studies.data import load_study_data
from cyberobs_lib.studies.families import resolve_families
from cyberobs_lib.studies.indicators import COUNT_METRICS, PROPORTION_METRICS

#: Manifest wording of the key modes (never the key itself).
KEY_DEMO = "demo (public key, pseudonyms do not protect)"
KEY_SECRET = "secret"
KEY_NONE = "none (confidential run)"

#: Parameters whose value must be one of a fixed set.
CHOICES: dict[str, tuple[str, ...]] = {
    "lang": SUPPORTED_LANGS,
    "pairing": ("first_last", "consecutive"),
    "convention": ("midpoint", "lower", "upper"),
}


def _metrics() -> tuple[str, ...]:

    return (*PROPORTION_METRICS, *COUNT_METRICS)


def _where(plan: RunPlan, name: str) -> str:
    return f"{plan.params_file.name}: {name}"


def check_values(plan: RunPlan) -> None:
    """Refuse parameter values outside their domain, whatever set them (file, ``-p`` or default).

    ``lang`` in :data:`~cyberobs_lib.config.SUPPORTED_LANGS`; ``pairing`` and ``convention`` in
    :data:`CHOICES`; ``alpha`` strictly between 0 and 1; ``min_cell``, ``n_boot``, ``window_days`` at
    least 1; ``min_days`` at least 0; ``metrics`` among the study's metrics.
    """
    for name in [n for n, _ in plan.notebooks] + ([plan.batch[0]] if plan.batch else []):
        values = plan.received(name)
        for key, accepted in CHOICES.items():
            if key in values and values[key] not in accepted:
                raise RunError(
                    f"{_where(plan, name)}: {key}={values[key]!r} is not accepted; accepted values: "
                    f"{', '.join(accepted)}"
                )
        if "alpha" in values and not 0 < float(values["alpha"]) < 1:
            raise RunError(
                f"{_where(plan, name)}: alpha={values['alpha']} must be between 0 and 1 (excluded)"
            )
        for key, low in (("min_cell", 1), ("n_boot", 1), ("window_days", 1), ("min_days", 0)):
            if key in values and isinstance(values[key], int) and values[key] < low:
                raise RunError(f"{_where(plan, name)}: {key}={values[key]} must be at least {low}")
        if "metrics" in values and isinstance(values["metrics"], list):
            known = _metrics()
            unknown = [m for m in values["metrics"] if m not in known]
            if unknown:
                raise RunError(
                    f"{_where(plan, name)}: metrics: unknown metric {unknown[0]!r}; accepted values: "
                    f"{', '.join(known)}"
                )


def _dataset_like(folder: Path) -> bool:
    return (folder / "establishments.csv").is_file() or (folder / "audits.csv").is_file()


def check_dataset_folder(folder: Path) -> None:
    """Refuse a folder that is not a dataset (no ``establishments.csv``, ``audits.csv`` nor ``scans/``).

    The message names the folder, what a dataset holds, and the sub-folders that look like datasets.

    Examples
    --------
    >>> check_dataset_folder(Path("no/such/folder"))
    Traceback (most recent call last):
    ...
    cyberobs_lib.run_errors.DatasetError: --data no/such/folder: folder does not exist
    """
    if not folder.is_dir():
        raise DatasetError(f"--data {folder}: folder does not exist")
    if _dataset_like(folder) or (folder / "scans").is_dir():
        return
    inside = sorted(p.name for p in folder.iterdir() if p.is_dir() and _dataset_like(p))
    hint = (
        f"; these sub-folders are datasets: {', '.join(inside)} (e.g. --data {folder / inside[0]})"
        if inside
        else ""
    )
    if (folder / "ingest.json").is_file() or (folder / "_manifest.json").is_file():
        hint = f"; it is an ingested (canonical) folder: give it as --canonical {folder}"
    raise DatasetError(
        f"--data {folder}: not a dataset folder (no establishments.csv, no audits.csv, no scans/){hint}. A "
        "dataset folder holds establishments.csv, audits.csv and findings.csv or scans/ (README, 'Data "
        "contract'); nothing was run"
    )


def _load_key(demo: bool) -> bytes:
    """:func:`cyberobs_lib.disclosure.load_key` in demo mode or not (either of its signatures)."""
    if "demo" in inspect.signature(load_key).parameters:
        return load_key(demo=demo)
    return load_key(dataset_is_demo=demo)  # signature before the ``demo`` keyword


def demo_mode() -> bool:
    """True when ``$CYBEROBS_DEMO`` is ``1`` (set by ``cyberobs run --demo``, ``make lab``, the tests)."""
    return os.environ.get(DEMO_ENV_VAR, "").strip() == "1"


class demo_environment:  # noqa: N801 - used as a context manager, like contextlib's
    """Context manager: ``$CYBEROBS_DEMO=1`` while a ``--demo`` run lasts (its kernels inherit it), the
    environment as it was afterwards. Does nothing when ``demo`` is false (an inherited
    ``CYBEROBS_DEMO=1``, e.g. from ``make lab`` or the test session, is left as it is)."""

    def __init__(self, demo: bool):
        self.demo = demo
        self._before: str | None = None

    def __enter__(self) -> demo_environment:
        if self.demo:
            self._before = os.environ.get(DEMO_ENV_VAR)
            os.environ[DEMO_ENV_VAR] = "1"
        return self

    def __exit__(self, *exc) -> None:
        if self.demo:
            if self._before is None:
                os.environ.pop(DEMO_ENV_VAR, None)
            else:
                os.environ[DEMO_ENV_VAR] = self._before


def check_key(*, published: bool) -> str:
    """The key mode of a run for its manifest, or :class:`RunError` saying how to set a key.

    Demo mode is ``$CYBEROBS_DEMO=1`` (:func:`demo_mode`; ``cyberobs run --demo`` sets it). A key that
    is set is always used, demo mode or not; only with no key anywhere does demo mode fall back on the
    public demo key. A confidential run needs no key.
    """
    demo = demo_mode()
    try:
        key = _load_key(demo)
    except MissingKeyError as exc:  # the message says how to set a key
        if not published:
            return KEY_NONE
        hint = (
            ""
            if demo
            else "\nFor the bundled synthetic demo data only, `cyberobs run --demo` uses the public demo key."
        )
        raise RunError(f"{exc}{hint if '--demo' not in str(exc) else ''}") from exc
    return KEY_DEMO if key == DEMO_KEY.encode("utf-8") else KEY_SECRET


def check_validation(violations: pd.DataFrame, work: Path, *, dataset: str, strict: bool = False) -> dict:
    """Report a dataset's validation errors (rows ingest rejects, scanner files it cannot read); refuse it
    when ``strict``.

    ``violations``: ``cyberobs validate``'s table (``file, row, column, rule, severity, value, message``).
    They may hold identifying values: they are written to ``<work>/violations.csv`` (the run's working
    folder, never a report folder), and the one-line message says how many errors, of which rules, and
    where the list is. By default the run goes on without the rejected rows and unreadable files, as ingest
    does ("one bad file never aborts a batch": they are logged here, counted in ``00_data_quality`` and the
    manifest, and the audits of an unreadable scan are *failed* and left out of the indicators); a dataset
    ingest cannot use at all (a missing table or column) stops before this step. ``strict``
    (``--strict``): refuse a dataset with any validation error. Returns ``{"errors": n, "warnings": n}``.
    """
    errors = violations[violations["severity"].astype(str) == "error"] if len(violations) else violations
    counts = {"errors": int(len(errors)), "warnings": int(len(violations) - len(errors))}
    report = work / "violations.csv"
    if len(violations):
        work.mkdir(parents=True, exist_ok=True)
        violations.to_csv(report, index=False)
    elif report.exists():
        report.unlink()
    if len(errors):
        rules = errors["rule"].astype(str).value_counts()
        files = sorted(set(errors["file"].astype(str)))
        first = errors.iloc[0]
        row = "" if pd.isna(first["row"]) else f" row {first['row']}"
        what = (
            f"dataset {dataset} does not validate: {len(errors)} error(s) in {len(files)} file(s) ("
            + ", ".join(f"{rule}: {n}" for rule, n in rules.items())
            + f"; first: {first['file']}{row}: {first['message']})"
        )
        if strict:
            raise DatasetError(
                f"{what}. Nothing was run and the previous report is untouched (--strict). Fix the data and "
                f"run again: every violation is listed in {report} (or run `cyberobs validate DATASET`); "
                "without --strict the run goes on without the rejected rows"
            )
        logging.getLogger("cyberobs.run").warning(
            "%s. The run goes on without the rejected rows and unreadable files, which 00_data_quality counts; "
            "every violation is listed in %s (--strict refuses such a dataset)",
            what,
            report,
        )
    return counts


def _years_with_complete_audits(audits: pd.DataFrame) -> list[int]:
    complete = audits[audits["scan_status"].astype(str) == "complete"]
    return sorted({int(y) for y in pd.to_datetime(complete["audit_date"]).dt.year.dropna()})


def _resolve(values: list, available: list[str], lang: str | None, where: str, key: str) -> list[str]:

    try:
        return list(resolve_families(values, available, lang=lang, parameter=key))
    except ValueError as exc:
        raise RunError(f"{where}: {exc}") from exc


def check_against_data(plan: RunPlan, canonical: Path) -> dict[str, dict[str, Any]]:
    """Check the year, period and family parameters against the data; return the values to pass on.

    Only values the run sets (parameter file or ``-p``) are checked; notebook defaults are left to the
    notebooks. ``year`` (and ``period`` unless 0, meaning all years) must have complete audits; each of
    ``years`` audits or declarations; ``families`` and ``reference`` must be families of the data
    (audited establishments; establishments for 30_incidents), given as codes or French/English names —
    they are passed on as codes. Returns ``{notebook: {key: value}}`` of the values changed.
    """
    data = load_study_data(
        canonical,
        columns={
            "audits": ["audit_id", "finess", "audit_date", "scan_status"],
            "establishments": ["finess", "family"],
        },
    )
    audits, est = data.audits, data.establishments
    complete_years = _years_with_complete_audits(audits)
    audited = est[est["finess"].isin(set(audits["finess"]))]
    audited_families = sorted({str(f) for f in audited["family"].dropna()})
    all_families = sorted({str(f) for f in est["family"].dropna()})
    changes: dict[str, dict[str, Any]] = {}
    entries = list(plan.notebooks) + ([plan.batch] if plan.batch else [])
    for key in ("year", "period"):  # year first: -p year=Y also sets period (run_plan.YEAR_LINKS)
        for name, given in entries:
            value = given.get(key)
            if value is None or (key == "period" and value == 0):
                continue
            if value not in complete_years:
                origin = f" (set by -p {key}={plan.overrides[key]})" if key in plan.overrides else ""
                raise RunError(
                    f"{_where(plan, name)}: {key}={value}{origin}: no complete audit in {value}; years with "
                    f"complete audits: {', '.join(map(str, complete_years)) or 'none'}"
                    + (" (period=0: every year)" if key == "period" else "")
                )
    if plan.batch is not None:
        try:
            batch_establishments(canonical, plan.spec["batch"].get("establishments", "all"))
        except ValueError as exc:
            raise RunError(f"{plan.params_file.name}: batch: establishments: {exc}") from exc
    for name, given in entries:
        where = _where(plan, name)
        lang = plan.received(name).get("lang")
        if given.get("years"):
            incidents = load_study_data(canonical, columns={"incidents": ["declared_on"]}).incidents
            declared = pd.to_datetime(incidents["declared_on"], errors="coerce").dt.year.dropna()
            audit_years = pd.to_datetime(audits["audit_date"]).dt.year.dropna()
            present = sorted({int(y) for y in declared} | {int(y) for y in audit_years})
            missing = [y for y in given["years"] if y not in present]
            if missing:
                raise RunError(
                    f"{where}: years: {missing[0]} has neither audits nor incident declarations; years "
                    f"present: {', '.join(map(str, present)) or 'none'}"
                )
        available = all_families if name.startswith("30_") else audited_families
        if given.get("families"):
            resolved = _resolve(list(given["families"]), available, lang, where, "families")
            if resolved != list(given["families"]):
                changes.setdefault(name, {})["families"] = resolved
        if given.get("reference"):
            reference = _resolve([given["reference"]], audited_families, lang, where, "reference")[0]
            if reference != given["reference"]:
                changes.setdefault(name, {})["reference"] = reference
        changes_of_defaults = _defaults_against_data(plan, name, given, available, audited, lang)
        if changes_of_defaults:
            changes.setdefault(name, {}).update(changes_of_defaults)
    return changes


def _defaults_against_data(
    plan: RunPlan, name: str, given: dict, available: list[str], audited: pd.DataFrame, lang: str | None
) -> dict[str, Any]:
    """A notebook's own default ``families`` and ``reference`` fitted to a dataset that lacks some of them.

    The defaults describe the usual comparison (e.g. EHPAD, CH, CHU/CHR, private clinics, reference CH); a
    dataset without one of those families is not an error of the run's parameters: the families absent
    are left out (none left: every family), and an absent reference becomes the most audited family. Values
    the run sets itself are checked strictly (:func:`check_against_data`)."""
    received = plan.received(name)
    out: dict[str, Any] = {}
    if "families" in received and not given.get("families") and received["families"]:
        present = []
        for value in received["families"]:
            try:
                present += resolve_families([value], available, lang=lang)
            except ValueError:
                continue
        if present != list(received["families"]):
            out["families"] = present
    if "reference" in received and not given.get("reference") and received["reference"]:
        try:
            resolve_families(
                [received["reference"]], sorted(audited["family"].dropna().astype(str).unique()), lang=lang
            )
        except ValueError:
            most = audited["family"].dropna().astype(str).value_counts()
            if len(most):
                out["reference"] = str(most.index[0])
    return out


def apply_changes(plan: RunPlan, changes: dict[str, dict[str, Any]]) -> list[str]:
    """Put the resolved values into the plan; one sentence per change (for the log)."""
    notes = []
    for i, (name, params) in enumerate(plan.notebooks):
        if name in changes:
            plan.notebooks[i] = (name, {**params, **changes[name]})
    if plan.batch is not None and plan.batch[0] in changes:
        plan.batch = (plan.batch[0], {**plan.batch[1], **changes[plan.batch[0]]})
    for name, values in changes.items():
        for key, value in values.items():
            notes.append(f"{name}: {key} read as {value!r}")
    return notes
