"""Incident declarations from ``incidents.csv`` or a foreign layout, through a YAML mapping file.

A mapping file (``cyberobs_lib/data/incident_mappings/*.yaml``, documented in the README there) says which
source column feeds each contract column, how dates are written, and how source values map onto the
contract vocabularies (:data:`~cyberobs_lib.schema.INCIDENT_NATURES`, ``INCIDENT_TYPES``,
``IMPACTS_ON_CARE``). A new layout is a new mapping file, never a code change. Harmonisation follows the
Our World in Data ``etl`` habit: a source value missing from the mapping is an error that names the file
to extend, unless the mapping declares a ``default``.

Every row read ends either in the incidents frame or in the rejects frame (``rows_read = kept +
rejected``), with the contract's reason codes (:data:`cyberobs_lib.validate.RULES`).

A file reader, on the floor above ``validate`` (whose reason codes it uses) and below ``ingest`` and the
studies that read its frames (formerly ``cyberobs_lib.studies.incident_sources``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cyberobs_lib import registry
from cyberobs_lib import schema as S
from cyberobs_lib.config import PACKAGE_DATA
from cyberobs_lib.io import CsvRead, read_table_csv
from cyberobs_lib.text import fold, fold_series
from cyberobs_lib.validate import RULES

MAPPINGS_DIR = PACKAGE_DATA / "incident_mappings"
DEFAULT_MAPPING = "fr_cert_sante"
#: Contract columns of an incidents frame, in order, plus provenance.
INCIDENT_COLUMNS = S.INPUT_FILES["incidents"]["required"] + S.INPUT_FILES["incidents"]["optional"]
OUTPUT_COLUMNS = (*INCIDENT_COLUMNS, S.SOURCE_FILE, S.SOURCE_ROW)
_VOCABULARIES = {
    "nature": S.INCIDENT_NATURES,
    "type": S.INCIDENT_TYPES,
    "impact_on_care": S.IMPACTS_ON_CARE,
    "family": None,  # free labels (foreign layouts name their own families)
}
_FRAME = ("finess", "category_code", "family")


class MappingError(ValueError):
    """A mapping file that is invalid, or that does not cover a value met in the source."""


def mapping_path(mapping: str | Path | None) -> Path:
    """Resolve a mapping: None → the default (French) mapping, a bare name → the packaged file, else a path.

    >>> mapping_path("hhs_ocr_breach").name
    'hhs_ocr_breach.yaml'
    """
    if mapping is None:
        mapping = DEFAULT_MAPPING
    path = Path(mapping)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = MAPPINGS_DIR / f"{mapping}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
        raise MappingError(f"incident mapping {mapping!r} not found (packaged mappings: {known})")
    return path


def load_mapping(mapping: str | Path | None = None) -> dict:
    """Read and check a mapping file; return it with folded vocabulary keys and its ``path``.

    Parameters
    ----------
    mapping : str or Path, optional
        Packaged mapping name (``"hhs_ocr_breach"``), a path to a YAML file, or None (``fr_cert_sante``).

    Returns
    -------
    dict
        ``name``, ``path`` (str), ``columns`` (contract column → list of source names | ``{"constant": v}`` |
        ``{"row_id": template}``), ``date_formats`` (list), ``vocabularies`` (column → ``values`` dict keyed by
        folded source text, ``separator``, ``priority``, ``default``).

    Raises
    ------
    MappingError
        Unreadable YAML, unknown contract column, a vocabulary value outside the contract vocabulary, or a
        required contract column without a source.

    Examples
    --------
    >>> m = load_mapping("hhs_ocr_breach")
    >>> m["vocabularies"]["nature"]["values"]["hacking/it incident"], m["columns"]["impact_on_care"]
    ('malicious', {'constant': 'unknown'})
    """
    path = mapping_path(mapping)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: not a readable YAML mapping ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        raise MappingError(f"{path}: a mapping needs a 'columns' section (contract column: source column)")
    columns = {}
    for col, src in doc["columns"].items():
        if col not in INCIDENT_COLUMNS:
            raise MappingError(
                f"{path}: 'columns' names {col!r}, not an incidents.csv column {INCIDENT_COLUMNS}"
            )
        if isinstance(src, dict) and set(src) in ({"constant"}, {"row_id"}):
            columns[col] = src
        elif isinstance(src, str | list):
            columns[col] = [str(s).strip().lower() for s in ([src] if isinstance(src, str) else src)]
        elif src is not None:
            raise MappingError(
                f"{path}: column {col!r}: expected a name, a list, {{constant: v}} or {{row_id: t}}"
            )
    missing = [c for c in S.INPUT_FILES["incidents"]["required"] if c not in columns]
    if missing:
        raise MappingError(f"{path}: no source for the required contract column(s) {missing}")
    vocabularies = {}
    for col, spec in (doc.get("vocabularies") or {}).items():
        if col not in _VOCABULARIES or not isinstance(spec, dict):
            raise MappingError(f"{path}: vocabulary {col!r} not one of {sorted(_VOCABULARIES)}")
        allowed = _VOCABULARIES[col]
        values = {fold(k): str(v) for k, v in (spec.get("values") or {}).items()}
        targets = [*values.values(), *([spec["default"]] if "default" in spec else [])]
        bad = sorted({v for v in targets if allowed is not None and v not in allowed})
        if bad:
            raise MappingError(f"{path}: vocabulary {col!r} maps to {bad}, outside the contract {allowed}")
        priority = [str(p) for p in spec.get("priority", [])]
        vocabularies[col] = {
            "values": values,
            "separator": spec.get("separator"),
            "priority": priority,
            "default": spec.get("default"),
        }
    formats = list((doc.get("dates") or {}).get("formats") or ["%Y-%m-%d", "%d/%m/%Y"])
    return {
        "name": doc.get("name", path.stem),
        "path": str(path),
        "columns": columns,
        "date_formats": formats,
        "vocabularies": vocabularies,
    }


def _source(frame: pd.DataFrame, names: list[str]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def _map_vocabulary(raw: pd.Series, spec: dict, *, column: str, mapping: dict) -> pd.Series:
    """Map source text onto the contract vocabulary (vectorized over distinct values)."""
    text = raw.astype("string")
    uniq = text.dropna().unique()
    sep, priority, default = spec["separator"], spec["priority"], spec["default"]
    rank = {v: i for i, v in enumerate(priority)}
    resolved, unknown = {}, []
    for value in uniq:  # distinct source values: a few dozen, not data rows
        parts = [p for p in (value.split(sep) if sep else [value]) if p.strip()]
        mapped = [spec["values"].get(fold(p)) for p in parts]
        if any(m is None for m in mapped) and default is None:
            unknown.append(value)
            continue
        mapped = [m if m is not None else default for m in mapped]
        resolved[value] = min(mapped, key=lambda m: rank.get(m, len(rank))) if mapped else None
    if unknown:
        counts = text[text.isin(unknown)].value_counts()
        shown = ", ".join(f"{v!r} ({n} rows)" for v, n in counts.head(10).items())
        raise MappingError(
            f"{len(unknown)} value(s) of {column!r} are not in the mapping: {shown}. "
            f"Add them under vocabularies.{column}.values in {mapping['path']} "
            "(or give the vocabulary a 'default:')"
        )
    return text.map(resolved).astype("string")


def _parse_dates(raw: pd.Series, formats: list[str]) -> pd.Series:
    text = raw.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    for fmt in formats:
        out = out.fillna(pd.to_datetime(text, format=fmt, errors="coerce", exact=False))
    return out


def read_incidents(
    path: str | Path, *, mapping: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Read incident declarations into the contract vocabulary, with rejects and an accounting.

    Parameters
    ----------
    path : str or Path
        A CSV file: ``incidents.csv`` of the data contract, or a foreign export (UTF-8 with or without BOM,
        Latin-1; ``,``/``;`` separators: :func:`cyberobs_lib.io.read_table_csv`).
    mapping : str or Path, optional, keyword-only
        Mapping file (see :func:`load_mapping`); default ``fr_cert_sante`` (the contract columns and the French
        vocabulary variants).

    Returns
    -------
    (incidents, rejects, accounting)
        ``incidents``: one row per kept declaration: ``incident_id``, ``declared_on`` (datetime64),
        ``nature``, ``finess``, ``category_code``, ``family``, ``type``, ``impact_on_care`` (strings, NA when
        absent), ``source_file``, ``source_row`` (physical line of the record, header = 1).
        ``rejects``: ``source_file, row, column, reason, value, message`` (one row per rejected record, first
        reason only; reason codes of :data:`cyberobs_lib.validate.RULES`).
        ``accounting``: dict with ``source_file``, ``mapping`` (name), ``mapping_path``, ``rows_read``,
        ``kept``, ``rejected`` (``rows_read == kept + rejected``), ``rejected_by_reason`` (dict),
        ``unused_columns`` (source columns no contract column reads), ``encoding``.

    Raises
    ------
    MappingError
        The mapping is invalid, a source column it names is absent, or a source value is not covered by a
        vocabulary without ``default`` (the message names the mapping file to extend).
    cyberobs_lib.io.InputFileError
        The file cannot be read as CSV.

    Notes
    -----
    Row checks, in order (the first failing one is the reason): ``ragged_row``; ``required_value`` (empty
    ``incident_id``, ``declared_on`` or ``nature``); ``bad_date`` (no listed format parses);
    ``finess_format``; ``unknown_category`` (code absent from ``finess_categories.csv``);
    ``incident_without_frame`` (no finess, category_code nor family); ``duplicate_id`` (an id met earlier in
    the file). Multi-valued cells are split on the vocabulary ``separator``, each part mapped, and the first
    mapped value in ``priority`` order kept.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "inc.csv"
    >>> _ = p.write_text("identifiant;date_declaration;finess;origine;type_incident\\n"
    ...                  "I1;15/03/2023;750000010;Malveillante;Rançongiciel\\nI2;;750000010;accidentel;panne\\n",
    ...                  encoding="utf-8")
    >>> inc, rej, acc = read_incidents(p)
    >>> inc[["incident_id", "nature", "type"]].to_dict("records"), rej["reason"].tolist(), acc["rows_read"]
    ([{'incident_id': 'I1', 'nature': 'malicious', 'type': 'ransomware'}], ['required_value'], 2)
    """
    spec = load_mapping(mapping)
    read = read_table_csv(path)
    path = Path(path)
    lines = _record_lines(read)
    out, used = _contract_columns(read, spec, path)
    raw_dates = out["declared_on"]
    _map_vocabularies(out, spec)
    _require_contract_values(out, spec)
    _normalise_values(out, raw_dates, spec)
    reason, column = _first_failed_check(out, raw_dates, lines, read)
    bad = reason.notna()
    rejects = _rejects_frame(path.name, out, raw_dates, lines, reason, column)
    kept = out.loc[~bad].assign(**{S.SOURCE_FILE: path.name, S.SOURCE_ROW: lines[~bad].astype("int64")})
    kept = kept[list(OUTPUT_COLUMNS)].reset_index(drop=True)
    return kept, rejects, _accounting(path.name, spec, read, used, len(kept), reason[bad])


def _record_lines(read: CsvRead) -> pd.Series:
    """The physical line of each record (header = 1): the reader's, else one line per record."""
    if read.lines is not None:
        return read.lines
    return pd.Series(np.arange(len(read.frame)) + 2, index=read.frame.index)


def _contract_columns(read: CsvRead, spec: dict, path: Path) -> tuple[pd.DataFrame, set]:
    """The contract columns (strings) of the records, as the mapping's ``columns`` section says.

    Each is a constant, a row id from a template, the first source column of the mapping's list found in the
    file, or NA. Returns the frame and the (folded) source column names used.

    Raises
    ------
    MappingError
        None of the source columns listed for a required contract column is in the file.
    """
    src = read.frame
    n = len(src)
    out = pd.DataFrame(index=src.index)
    used = set()
    for col in INCIDENT_COLUMNS:
        rule = spec["columns"].get(col)
        if rule is None:
            out[col] = pd.Series(pd.NA, index=src.index, dtype="string")
        elif isinstance(rule, dict) and "constant" in rule:
            out[col] = pd.Series(str(rule["constant"]), index=src.index, dtype="string")
        elif isinstance(rule, dict):
            rows = pd.Series(np.arange(1, n + 1), index=src.index).astype(str)
            out[col] = rows.map(lambda r, t=rule["row_id"]: t.format(file=path.stem, row=r)).astype("string")
        else:
            name = _source(src, rule)
            if name is None and col in S.INPUT_FILES["incidents"]["required"]:
                raise MappingError(
                    f"{path.name}: none of the columns {rule} (for {col!r}) is in the file; "
                    f"found {read.original_columns}. Fix the 'columns' section of {spec['path']}"
                )
            used.add(name)
            out[col] = (
                src[name].astype("string") if name else pd.Series(pd.NA, index=src.index, dtype="string")
            )
    return out, used


def _map_vocabularies(out: pd.DataFrame, spec: dict) -> None:
    """Map the columns the mapping has a vocabulary for onto the contract values (in place)."""
    for col, voc in spec["vocabularies"].items():
        out[col] = _map_vocabulary(out[col], voc, column=col, mapping=spec)


def _require_contract_values(out: pd.DataFrame, spec: dict) -> None:
    """``nature``, ``type``, ``impact_on_care`` without a vocabulary: contract values only (in place).

    Values are folded; ``nature`` also takes the aliases of :data:`cyberobs_lib.schema.NATURE_ALIASES`.

    Raises
    ------
    MappingError
        A value outside the contract vocabulary (the message names the mapping file to extend).
    """
    for col in ("nature", "type", "impact_on_care"):
        if col not in spec["vocabularies"]:
            folded = fold_series(out[col])
            table = S.NATURE_ALIASES if col == "nature" else {v: v for v in _VOCABULARIES[col]}
            mapped = folded.map(table).astype("string")
            bad = out[col].notna() & mapped.isna()
            if bad.any():
                shown = sorted(out.loc[bad, col].unique().tolist())[:10]
                raise MappingError(
                    f"values {shown} of {col!r} are not in the contract vocabulary; "
                    f"add a vocabularies.{col} section to {spec['path']}"
                )
            out[col] = mapped


def _normalise_values(out: pd.DataFrame, raw_dates: pd.Series, spec: dict) -> None:
    """Dates parsed with the mapping's formats, FINESS upper-cased without spaces, category codes on 3
    digits (in place)."""
    out["declared_on"] = _parse_dates(raw_dates, spec["date_formats"])
    out["finess"] = out["finess"].str.upper().str.replace(" ", "", regex=False)
    out["category_code"] = out["category_code"].str.strip().str.zfill(3)


def _first_failed_check(
    out: pd.DataFrame, raw_dates: pd.Series, lines: pd.Series, read: CsvRead
) -> tuple[pd.Series, pd.Series]:
    """``(reason, column)`` of each record: its first failing row check (read_incidents, Notes), else NA."""
    index = out.index
    fin, codes = out["finess"], out["category_code"]
    known_codes = set(registry.load_categories()["category_code"].astype(str))
    checks = [
        ("*", "ragged_row", pd.Series(lines.isin(read.frame.attrs.get("ragged_rows", [])), index=index)),
        ("incident_id", "required_value", out["incident_id"].isna()),
        ("declared_on", "required_value", raw_dates.isna()),
        ("nature", "required_value", out["nature"].isna()),
        ("declared_on", "bad_date", raw_dates.notna() & out["declared_on"].isna()),
        ("finess", "finess_format", fin.notna() & ~registry.finess_format_ok(fin).fillna(False).astype(bool)),
        ("category_code", "unknown_category", codes.notna() & ~codes.isin(known_codes)),
        ("finess", "incident_without_frame", out[list(_FRAME)].isna().all(axis=1)),
        ("incident_id", "duplicate_id", out["incident_id"].notna() & out["incident_id"].duplicated()),
    ]
    reason = pd.Series(pd.NA, index=index, dtype="object")
    column = pd.Series(pd.NA, index=index, dtype="object")
    for col, rule, mask in reversed(checks):  # the first failing check wins
        mask = mask.fillna(False).astype(bool)
        reason, column = reason.mask(mask, rule), column.mask(mask, col)
    return reason, column


def _rejects_frame(
    source_file: str,
    out: pd.DataFrame,
    raw_dates: pd.Series,
    lines: pd.Series,
    reason: pd.Series,
    column: pd.Series,
) -> pd.DataFrame:
    """One reject per record with a reason (``S.REJECTS_COLUMNS``); its value is the source text for a
    date, the mapped value otherwise, none for a ragged row."""
    bad = reason.notna()
    value_src = {"declared_on": raw_dates}
    values = pd.Series(
        [
            None if c == "*" else value_src.get(c, out.get(c)).loc[i]
            for i, c in zip(out.index[bad], column[bad], strict=True)  # rejected rows only
        ],
        dtype="object",
    )
    return pd.DataFrame(
        {
            "source_file": source_file,
            "row": pd.array(lines[bad].to_numpy(), dtype="Int64"),
            "column": column[bad].to_numpy(),
            "reason": reason[bad].to_numpy(),
            "value": values.where(values.notna(), None).to_numpy(),
            "message": reason[bad].map(RULES).to_numpy(),
        },
        columns=list(S.REJECTS_COLUMNS),
    )


def _accounting(
    source_file: str, spec: dict, read: CsvRead, used: set, kept: int, rejected: pd.Series
) -> dict:
    """The accounting of a read (``rows_read == kept + rejected``); ``rejected``: the reasons of the rejects."""
    return {
        "source_file": source_file,
        "mapping": spec["name"],
        "mapping_path": spec["path"],
        "rows_read": int(len(read.frame)),
        "kept": int(kept),
        "rejected": int(len(rejected)),
        "rejected_by_reason": {str(k): int(v) for k, v in rejected.value_counts().sort_index().items()},
        "unused_columns": [
            c for c, low in zip(read.original_columns, read.frame.columns, strict=True) if low not in used
        ],
        "encoding": read.encoding,
    }
