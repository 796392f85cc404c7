"""Parameter files of the runner: their keys, checked against the notebooks before anything runs.

The keys are documented in :mod:`cyberobs_lib.runner`; :func:`load_plan` turns a parameter file (plus
``-p`` overrides and the command-line options) into a :class:`RunPlan`, or raises :class:`RunError` naming
the key, notebook or folder at fault (with a "did you mean" for near misses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cyberobs_lib.config import NOTEBOOKS_DIR, PROJECT_DIR, REPORTS_DIR
from cyberobs_lib.run_canonical import CanonicalFolderError, check_canonical_folder

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


class RunError(ValueError):
    """A parameter file or run that cannot start; the message names the key or file."""


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
