"""Parameter files of the runner: their keys, checked against the notebooks before anything runs.

The keys are documented in :mod:`cyberobs_lib.runner`; :func:`load_plan` turns a parameter file (plus
``-p`` overrides and the command-line options) into a :class:`RunPlan`, or raises :class:`RunError` naming
the key, notebook or folder at fault (with a "did you mean" for near misses).

Precedence of a notebook parameter, lowest first:

1. the notebook's own default (its ``parameters`` cell);
2. the parameter file's ``common`` mapping (for every notebook that declares the key);
3. the parameter file's entry for that notebook (``notebooks[i].parameters``);
4. the command line, ``-p KEY=VALUE``: given to **every** notebook of the run that declares ``KEY``; a key
   that no notebook of the run declares is an error naming the accepted keys.

``-p year=Y`` also sets ``period`` to ``Y`` in the notebooks that declare ``period`` but not ``year``
(``20_cohorts`` calls the study year ``period``), and ``-p period=Y`` sets ``year`` likewise (``Y`` not
0, which means "all years" for ``period``), unless both are given: a scheduled run that passes only the
year gets one coherent report (see :data:`YEAR_LINKS`).

Parameters that decide publication safety cannot be set this way: ``data_dir`` and ``output_dir`` are
the runner's (``--data``, ``--canonical``, ``--out``); ``published`` is the file's top-level key, and
``-p published=false`` on a published file is refused; a published run refuses a ``min_cell`` below
:data:`~cyberobs_lib.config.POLICY_MIN_CELL` wherever it is set.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cyberobs_lib.config import NOTEBOOKS_DIR, POLICY_MIN_CELL, PROJECT_DIR, REPORTS_DIR
from cyberobs_lib.l10n import LANGS
from cyberobs_lib.run_canonical import CanonicalFolderError, check_canonical_folder
from cyberobs_lib.run_errors import (  # noqa: F401 - re-exported: the run's errors and exit statuses
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID_DATA,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REFUSED,
    DatasetError,
    RunError,
    RunLockedError,
)

TOP_LEVEL_KEYS: dict[str, tuple[type, ...]] = {
    "run_name": (str,),
    "data": (str,),
    "description": (str, dict),  # one text, or one per report language: {fr: ..., en: ...}
    "published": (bool,),
    "common": (dict,),
    "notebooks": (list,),
    "batch": (dict,),
    "storage": (str,),
}
#: Values of ``storage``: how a run ingests its dataset.
STORAGE_FORMATS = ("flat", "partitioned")
REQUIRED_KEYS = ("run_name", "data")
#: ``pdf: true``: the notebook's reader page is also written as a PDF beside its HTML.
NOTEBOOK_ITEM_KEYS = {"notebook": (str,), "parameters": (dict,), "pdf": (bool,)}
BATCH_KEYS = {
    "notebook": (str,),
    "establishments": (str, list),
    "workers": (int,),
    "parameters": (dict,),
    "pdf": (bool,),
}
#: Parameters the runner gives every notebook that declares them; never set by a parameter file or ``-p``.
RUNNER_PARAMETERS = ("data_dir", "output_dir", "published")
#: ``-p`` key -> parameters it also sets, in notebooks that declare those but not the key itself, unless
#: they are given on the command line too. ``year`` (40_annual_summary) and ``period`` (20_cohorts) are
#: both the study year of an annual run (``period=0``, all years, is not passed on).
YEAR_LINKS: dict[str, tuple[str, ...]] = {"year": ("period",), "period": ("year",)}


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
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise RunError(f"-p {text!r}: the value is not valid YAML ({exc})") from exc
    return key.strip(), parsed


def notebook_parameters(path: Path) -> dict[str, dict]:
    """Declared parameters of a notebook (papermill's inspection of its ``parameters`` cell)."""
    import papermill as pm

    if not path.is_file():
        raise RunError(f"notebook {path} does not exist")
    return pm.inspect_notebook(str(path))


def declared_default(declared: dict) -> Any:
    """The default value of a declared parameter as a Python value (its source text when not a literal)."""
    import ast

    text = declared.get("default", "")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


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
    """A checked parameter file: what each notebook receives (file and ``-p`` values, runner's excluded)."""

    params_file: Path
    spec: dict
    data: Path
    out: Path
    notebooks: list[tuple[str, dict]]
    storage: str = "flat"
    canonical: Path | None = None
    published: bool = True
    #: ``-p`` values as given (after the safety checks), key -> value.
    overrides: dict = field(default_factory=dict)
    #: notebook -> its declared parameters (papermill inspection).
    declared: dict = field(default_factory=dict)
    #: the batch notebook and its parameters (common, batch entry, ``-p``), or None.
    batch: tuple[str, dict] | None = None
    #: sentences saying what a ``-p`` also set (``year`` -> ``period``).
    notes: list[str] = field(default_factory=list)
    #: notebooks whose reader page is also written as a PDF (``pdf: true`` in their entry).
    pdf: frozenset[str] = frozenset()

    @property
    def description(self) -> str:
        """The description in the first language given (French first), for the manifest."""
        return self.description_in("fr")

    def description_in(self, lang: str) -> str:
        """The description in ``lang`` when the parameter file gives one per language, else its one text."""
        text = self.spec.get("description", "")
        if isinstance(text, dict):
            return str(text.get(lang) or next(iter(text.values()), ""))
        return str(text)

    @property
    def run_name(self) -> str:
        return str(self.spec["run_name"])

    def received(self, name: str) -> dict:
        """Every declared parameter of notebook ``name`` with the value it gets (defaults included,
        runner parameters left out)."""
        declared = self.declared[name]
        given = dict(self.notebooks).get(name)
        if given is None and self.batch is not None and self.batch[0] == name:
            given = self.batch[1]
        values = {k: declared_default(d) for k, d in declared.items() if k not in RUNNER_PARAMETERS}
        values.update(given or {})
        return values

    def values_of(self, key: str) -> dict[str, Any]:
        """Notebook -> the value ``key`` has there, for every notebook of the run that declares it."""
        names = [n for n, _ in self.notebooks] + ([self.batch[0]] if self.batch else [])
        return {n: self.received(n)[key] for n in names if key in self.declared[n]}


def _read_spec(params_file: Path) -> dict:
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
    return spec


def _refuse_runner_keys(mapping: dict, where: str) -> None:
    """``data_dir``, ``output_dir`` and ``published`` are the runner's: never set in a parameter mapping."""
    for key in RUNNER_PARAMETERS:
        if key in mapping:
            how = (
                "the top-level key 'published'"
                if key == "published"
                else "--data DATASET or --canonical DIR"
                if key == "data_dir"
                else "--out DIR"
            )
            raise RunError(f"{where}: '{key}' is set by the runner, not by a parameter; use {how}")


def _apply_safety_overrides(overrides: dict, spec: dict, where: str) -> bool:
    """Check the ``-p`` keys that decide publication safety; return whether the run is published."""
    published = bool(spec.get("published", True))
    for key in ("data_dir", "output_dir"):
        if key in overrides:
            flag = "--data DATASET (or --canonical DIR)" if key == "data_dir" else "--out DIR"
            raise RunError(
                f"-p {key}: the runner sets {key} itself and it cannot be overridden with -p; use {flag}"
            )
    if "published" in overrides:
        value = overrides.pop("published")
        if not isinstance(value, bool):
            raise RunError(f"-p published={value!r}: must be true or false")
        if published and not value:
            raise RunError(
                f"-p published=false: {where} is a published parameter file, and a published run cannot be "
                "made confidential from the command line (it would write identifying values under a "
                "published name); write a confidential parameter file (published: false) with its own "
                "run_name and --out instead"
            )
        published = value
    return published


def _check_min_cell(name: str, params: dict, declared: dict, published: bool, origin: str) -> None:
    if not published or "min_cell" not in declared:
        return
    value = params.get("min_cell", declared_default(declared["min_cell"]))
    if isinstance(value, int) and not isinstance(value, bool) and value < POLICY_MIN_CELL:
        raise RunError(
            f"{name}: min_cell={value} ({origin}) is below the publication floor of {POLICY_MIN_CELL} "
            "establishments (POLICY_MIN_CELL): a published run may raise min_cell, never lower it below "
            f"{POLICY_MIN_CELL}; use a confidential parameter file (published: false) for smaller cells"
        )


def _origin_of(key: str, overrides: dict, common: dict, item: dict) -> str:
    if key in overrides:
        return f"-p {key}"
    if key in item:
        return "its entry in the parameter file"
    if key in common:
        return f"common: {key}"
    return "the notebook's default"


def format_description(text: str, plan_values: dict[str, Any], where: str) -> str:
    """Fill ``{key}`` fields of the description with the run's parameter values (``{year}``).

    >>> format_description("Étude annuelle {year}", {"year": 2024}, "p.yaml")
    'Étude annuelle 2024'
    """
    fields = [f for _, f, _, _ in string.Formatter().parse(text) if f]
    missing = [f for f in fields if f not in plan_values]
    if missing:
        raise RunError(
            f"{where}: description field '{{{missing[0]}}}' is not a parameter of this run with one value "
            f"across its notebooks; fields available: {', '.join(sorted(plan_values)) or 'none'}"
        )
    return text.format_map(plan_values) if fields else text


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
    The values are checked against the data later (:mod:`cyberobs_lib.run_checks`).
    """
    params_file = Path(params_file)
    spec = _read_spec(params_file)
    where = params_file.name
    storage = _storage_of(spec, large=large, where=where)
    items, batch_item, pdf = _notebook_items(spec, where)
    common = dict(spec.get("common") or {})
    _refuse_runner_keys(common, f"{where}: common")
    given = dict(parse_override(text) for text in overrides or [])
    published = _apply_safety_overrides(given, spec, where)
    if batch_item is not None and published:
        raise RunError(f"{where}: per-establishment batch reports are confidential: set 'published: false'")
    entries = items + ([batch_item] if batch_item else [])
    declared_by = {n: notebook_parameters(notebooks_dir / n) for n, _ in entries}
    _check_accepted(common, given, entries, declared_by, where)
    notes: list[str] = []
    merged = [
        (
            name,
            _notebook_parameters(
                name, item_params, declared_by[name], common, given, published, where, notes
            ),
        )
        for name, item_params in entries
    ]
    data_path, canonical_path = _dataset_paths(spec, data=data, canonical=canonical, large=large, where=where)
    out_path = Path(out) if out else REPORTS_DIR / spec["run_name"]
    plan = RunPlan(
        params_file,
        dict(spec, published=published),
        data_path.resolve(),
        out_path.expanduser().resolve(),
        merged[: len(items)],
        storage,
        canonical_path,
        published=published,
        overrides=given,
        declared=declared_by,
        batch=merged[len(items)] if batch_item else None,
        notes=notes,
        pdf=frozenset(pdf),
    )
    if "description" in spec:
        plan.spec["description"] = _description(spec["description"], _single_values(plan), where)
    return plan


def _storage_of(spec: dict, *, large: bool, where: str) -> str:
    """The run's storage format: ``partitioned`` with ``--large``, else the file's ``storage`` (flat)."""
    storage = "partitioned" if large else spec.get("storage", "flat")
    if storage not in STORAGE_FORMATS:
        raise RunError(
            f"{where}: storage '{storage}' is not known{_hint(storage, STORAGE_FORMATS)}; "
            f"use one of: {', '.join(STORAGE_FORMATS)}"
        )
    return storage


def _notebook_items(
    spec: dict, where: str
) -> tuple[list[tuple[str, dict]], tuple[str, dict] | None, set[str]]:
    """The notebooks of the file as (name, parameters), its batch notebook (or None) and the notebooks
    exported to PDF; each item's keys checked, runner keys refused."""
    items, pdf = [], set()
    for i, item in enumerate(spec.get("notebooks", [])):
        if not isinstance(item, dict) or "notebook" not in item:
            raise RunError(f"{where}: notebooks[{i}] must be a mapping with a 'notebook' key")
        _check_keys(item, NOTEBOOK_ITEM_KEYS, f"{where}: notebooks[{i}]")
        params = dict(item.get("parameters") or {})
        _refuse_runner_keys(params, f"{where}: {item['notebook']}")
        items.append((item["notebook"], params))
        if item.get("pdf"):
            pdf.add(item["notebook"])
    batch_item = None
    if "batch" in spec:
        _check_keys(spec["batch"], BATCH_KEYS, f"{where}: batch")
        if "notebook" not in spec["batch"]:
            raise RunError(f"{where}: batch: required key 'notebook' is missing")
        batch_params = dict(spec["batch"].get("parameters") or {})
        _refuse_runner_keys(batch_params, f"{where}: batch")
        batch_item = (spec["batch"]["notebook"], batch_params)
        if spec["batch"].get("pdf"):
            pdf.add(batch_item[0])
    return items, batch_item, pdf


def _check_accepted(common: dict, given: dict, entries: list, declared_by: dict, where: str) -> None:
    """Refuse a ``common`` parameter or a ``-p`` override that no notebook of the run declares."""
    accepted = sorted({k for d in declared_by.values() for k in d} - set(RUNNER_PARAMETERS))
    for key in common:
        if key not in accepted:
            raise RunError(
                f"{where}: common parameter '{key}' is declared by none of the notebooks "
                f"({', '.join(n for n, _ in entries)}){_hint(key, accepted)}; accepted: {', '.join(accepted)}"
            )
    for key in given:
        if key not in accepted:
            raise RunError(
                f"-p {key}: no notebook of this run declares '{key}'{_hint(key, accepted)}; accepted keys: "
                f"{', '.join(accepted)} (or data_dir/output_dir/published through --data, --out and the "
                "parameter file)"
            )


def _notebook_parameters(
    name: str,
    item_params: dict,
    declared: dict,
    common: dict,
    given: dict,
    published: bool,
    where: str,
    notes: list[str],
) -> dict:
    """One notebook's parameters: ``common``, then its own, then the ``-p`` overrides it declares (a year
    override also setting the linked year parameters, noted in ``notes``); each value checked against the
    notebook's declaration, ``min_cell`` against the publication rule."""
    for key in item_params:
        if key not in declared:
            raise RunError(
                f"{where}: {name}: unknown parameter '{key}'{_hint(key, declared)}; the notebook "
                f"declares: {', '.join(sorted(declared))}"
            )
    params = {k: v for k, v in common.items() if k in declared}
    params.update(item_params)
    params.update({k: v for k, v in given.items() if k in declared})
    for key, linked in YEAR_LINKS.items():
        if key not in given or key in declared or given[key] == 0:
            continue
        for other in linked:
            if other in declared and other not in given:
                params[other] = given[key]
                notes.append(f"-p {key}={given[key]} also sets {other}={given[key]} in {name}")
    for key, value in params.items():
        _check_value(f"{where}: {name}", key, value, declared[key])
    origin = _origin_of("min_cell", given, common, item_params)
    _check_min_cell(f"{where}: {name}", params, declared, published, origin)
    return params


def _dataset_paths(
    spec: dict, *, data: Path | str | None, canonical: Path | str | None, large: bool, where: str
) -> tuple[Path, Path | None]:
    """The dataset folder (``--data`` or the file's ``data``, relative to the project when it does not
    exist here) and the checked ``--canonical`` folder (None: the run ingests the dataset)."""
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
        raise DatasetError(f"{where}: dataset folder {data_path} does not exist")
    return data_path, canonical_path


def _description(text: str | dict, values: dict, where: str) -> str | dict:
    """The run's description with the run's single values filled in: a text, or one text per report
    language."""
    if isinstance(text, dict):
        wrong = [k for k, v in text.items() if k not in LANGS or not isinstance(v, str)]
        if wrong or not text:
            raise RunError(
                f"{where}: description must be a text or a mapping of report languages "
                f"({', '.join(LANGS)}) to texts; got {wrong[0] if wrong else 'an empty mapping'!r}"
            )
        return {k: format_description(v, values, where) for k, v in text.items()}
    return format_description(text, values, where)


def _single_values(plan: RunPlan) -> dict[str, Any]:
    """Parameter -> value, for each parameter that has one value in every notebook declaring it."""
    keys = {k for d in plan.declared.values() for k in d} - set(RUNNER_PARAMETERS)
    out = {}
    for key in keys:
        values = list(plan.values_of(key).values())
        if values and all(v == values[0] for v in values):
            out[key] = values[0]
    return out
