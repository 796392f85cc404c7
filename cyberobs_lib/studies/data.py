"""Load what a study needs: canonical tables from an ingested folder, or a dataset folder ingested in memory.

Notebooks take one ``data_dir`` parameter, one of:

* a **dataset folder** following the data contract (the demo data, for interactive work and nbval),
  ingested in memory;
* a **canonical folder** written by ``cyberobs ingest`` (``ingest.json`` and one Parquet file per table);
* a **partitioned store** written by ``cyberobs ingest --large`` (:func:`cyberobs_lib.scale.ingest_large`:
  ``_manifest.json`` and one Parquet dataset per table, partitioned by audit year).

Whatever the source, :func:`load_study_data` gives the same tables (same rows in the same order, same
columns; text as pandas ``string``), so that a study gives the same results on each. Tables are read on
first access, only the audit years (``years``) and columns (``columns``) asked for: a notebook that never
touches the findings never reads them, and one that needs four of their thirty columns reads four.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cyberobs_lib.config import MIN_AUDIT_DATE
from cyberobs_lib.ingest import SORT_KEYS, ingest_dataset, read_canonical
from cyberobs_lib.kernels import arrow_frames
from cyberobs_lib.schema import CATEGORICAL_FINDINGS, INPUT_FILES
from cyberobs_lib.store import YEAR, open_partitioned, read_manifest, year_filter
from cyberobs_lib.studies.indicators import audit_metrics, mark_unavailable
from cyberobs_lib.studies.study_tables import (  # noqa: F401 - re-exported (a study's tables)
    DATASET,
    FLAT,
    PARTITIONED,
    LazyTables,
    StudyData,
    canonical_format,
)

TABLES = ("establishments", "audits", "hosts", "findings", "controls", "incidents", "protection")
#: Tables with one audit per row: what ``years`` filters (the others are read whole).
AUDIT_TABLES = ("audits", "hosts", "findings", "controls", "protection")
#: Columns of ``findings`` that :func:`cyberobs_lib.studies.indicators.audit_metrics` reads.
METRICS_FINDINGS = ("audit_id", "severity", "category", "known_exploited")
#: Columns of ``findings`` that the lifecycle studies read (``longitudinal.lifecycle_table``,
#: ``longitudinal.remediation_episodes``), plus those of :data:`METRICS_FINDINGS`.
LIFECYCLE_FINDINGS = ("audit_id", "host", "fingerprint", "severity", "category", "known_exploited")
#: Columns of ``findings`` that the establishment report reads (:mod:`cyberobs_lib.studies.establishment`).
REPORT_FINDINGS = (*LIFECYCLE_FINDINGS, "port", "title")
#: Text columns are read as pandas ``string`` backed by Arrow (compact: no Python object per cell).
TEXT = arrow_frames.TEXT
#: Canonical types that the store's Arrow types do not tell (otherwise: integers ``Int64``, booleans
#: ``boolean``, text :data:`TEXT`).
_TYPES = {"port": "Int32", "source_row": "int64", "finess_key_ok": "bool", "severity_mismatch": "bool"}


def years_until(year: int) -> range:
    """Audit years from the earliest the data contract accepts up to ``year`` (for ``years=``).

    >>> list(years_until(2002))
    [2000, 2001, 2002]
    """
    return range(pd.Timestamp(MIN_AUDIT_DATE).year, int(year) + 1)


def load_study_data(
    data_dir: str | Path,
    *,
    today: str | None = None,
    years: Iterable[int] | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> StudyData:
    """Canonical tables of a partitioned store, a canonical folder or a dataset folder (ingested in memory).

    Parameters
    ----------
    data_dir : path
        A partitioned store (``cyberobs ingest --large``, ``_manifest.json``), a canonical folder
        (``cyberobs ingest``, ``ingest.json``) or a dataset folder (data contract).
    today : str, optional
        Reference date for date checks when ingesting a dataset folder.
    years : iterable of int, optional
        Calendar years of ``audit_date`` to keep in the tables of :data:`AUDIT_TABLES` (rows of other
        audits, and of unknown audits, are left out); None: every year. A partitioned store reads only
        those year folders. ``establishments`` and ``incidents`` are always whole.
    columns : mapping of table name → list of str, optional
        Columns to read per table (e.g. ``{"findings": METRICS_FINDINGS}``); tables not named are read
        whole. A column the table does not have raises ``ValueError``.

    Returns
    -------
    StudyData
        Tables rows in the canonical order (``ingest.SORT_KEYS``), the ``year`` partition column
        dropped; ``summary`` is the ingest summary (``ingest.json``, or ``ingest`` of the store manifest).
        From a folder, each table is read on first access.

    Examples
    --------
    >>> data = load_study_data("data/demo", years=[2025], columns={"findings": METRICS_FINDINGS})
    >>> list(data.findings.columns), sorted(data.audits["audit_date"].dt.year.unique().tolist())
    (['audit_id', 'severity', 'category', 'known_exploited'], [2025])
    """
    folder = Path(data_dir)
    wanted = None if years is None else tuple(sorted({int(y) for y in years}))
    cols = {name: list(c) for name, c in (columns or {}).items()}
    unknown = sorted(set(cols) - set(TABLES))
    if unknown:
        raise ValueError(f"columns: unknown table(s) {unknown}; tables are {', '.join(TABLES)}")
    kind = canonical_format(folder)
    if kind == PARTITIONED:
        return _load_partitioned(folder, years=wanted, columns=cols)
    if kind == FLAT:
        audit_ids = _audit_ids_of_years(folder, wanted) if wanted is not None else None

        def read_flat(name: str, only: list[str] | None = None, ordered: bool = True) -> pd.DataFrame:
            path = folder / f"{name}.parquet"
            _check_columns(path, name, cols.get(name))
            wanted = cols.get(name)
            if only is not None:  # those of ``only`` the file has (and the table keeps), audit_id to filter
                import pyarrow.parquet as pq

                has = set(pq.read_schema(path).names) & set(wanted or only)
                keys = ["audit_id"] if audit_ids is not None and name in AUDIT_TABLES else []
                wanted = [c for c in dict.fromkeys([*only, *keys]) if c in has]
            frame = read_canonical(folder, tables=(name,), columns=None if wanted is None else {name: wanted})
            frame = _keep_audits(frame[name], name, audit_ids)
            return frame if only is None else frame[[c for c in only if c in frame.columns]]

        return StudyData(
            source=folder,
            tables=LazyTables(TABLES, read_flat, read_flat),
            rejects=pd.read_parquet(folder / "rejects.parquet"),
            accounting=pd.read_csv(folder / "accounting.csv"),
            violations=_read_violations(folder / "violations.csv"),
            summary=json.loads((folder / "ingest.json").read_text(encoding="utf-8")),
            years=wanted,
        )
    if (folder / "findings.parquet").is_file() or (folder / "_staging").exists():
        raise FileNotFoundError(
            f"{folder}: canonical tables without ingest.json (an interrupted ingest?); run "
            f"`cyberobs ingest DATASET --out {folder}` again"
        )
    result = ingest_dataset(folder, today=today)
    if result.fatal:
        raise ValueError(f"{folder} cannot be studied: " + "; ".join(result.fatal))
    tables = dict(result.tables)
    audit_ids = None
    if wanted is not None:
        audits = tables["audits"]
        audit_ids = set(audits.loc[audits["audit_date"].dt.year.isin(wanted), "audit_id"])
    for name in tables:
        if name in cols:
            missing = [c for c in cols[name] if c not in tables[name].columns]
            if missing:
                raise ValueError(f"{folder}: table {name!r} has no column(s) {missing}")
            tables[name] = tables[name][cols[name]]
        tables[name] = _keep_audits(tables[name], name, audit_ids)
    return StudyData(
        source=folder,
        tables=tables,
        rejects=result.rejects,
        accounting=result.accounting,
        violations=result.check.violations,
        summary=result.summary,
        years=wanted,
    )


def _read_violations(path: Path) -> pd.DataFrame:
    """``violations.csv`` with its cells as text (a FINESS ``084846257`` keeps its leading zero)."""
    frame = pd.read_csv(path, dtype=str)
    frame["row"] = pd.to_numeric(frame["row"]).astype("Int64")
    return frame


def _keep_audits(frame: pd.DataFrame, name: str, audit_ids: set | None) -> pd.DataFrame:
    """Rows of the audits in ``audit_ids`` (None: every row), for the tables of :data:`AUDIT_TABLES`."""
    if audit_ids is None or name not in AUDIT_TABLES or "audit_id" not in frame.columns:
        return frame
    return frame[frame["audit_id"].isin(audit_ids)].reset_index(drop=True)


def _audit_ids_of_years(folder: Path, years: tuple[int, ...]) -> set:
    audits = pd.read_parquet(folder / "audits.parquet", columns=["audit_id", "audit_date"])
    return set(audits.loc[pd.to_datetime(audits["audit_date"]).dt.year.isin(years), "audit_id"])


def _check_columns(path: Path, name: str, wanted: list[str] | None) -> None:
    import pyarrow.parquet as pq

    if wanted is not None:
        missing = [c for c in wanted if c not in pq.read_schema(path).names]
        if missing:
            raise ValueError(f"{path.parent}: table {name!r} has no column(s) {missing}")


# --------------------------------------------------------------------------------------------------
# Partitioned store (cyberobs_lib.store)
# --------------------------------------------------------------------------------------------------
def _load_partitioned(folder: Path, *, years: tuple[int, ...] | None, columns: dict) -> StudyData:
    manifest = read_manifest(folder)
    present = [n for n in TABLES if n in manifest["tables"]]
    accounting = (
        _contract_order(_read_store(folder, "accounting")) if "accounting" in manifest["tables"] else None
    )
    # Findings from scanner exports are appended after those of findings.csv: only then does the
    # canonical order need every sort key (otherwise the rows of one audit are already in order).
    mixed = accounting is not None and bool(
        (accounting["table"].astype(str).str.startswith("scan:") & (accounting["kept"] > 0)).any()
    )

    def read(name: str, only: list[str] | None = None, ordered: bool = True) -> pd.DataFrame:
        keys = SORT_KEYS["findings"] if (name == "findings" and mixed) else ["audit_id"]
        keys = keys if ordered else []
        wanted = columns.get(name)
        if only is not None:  # those of ``only`` the table has (and keeps)
            wanted = [c for c in only if wanted is None or c in wanted]
        return _read_store(
            folder, name, years=years, columns=wanted, sort_keys=keys, present_only=only is not None
        )

    def small(name: str) -> pd.DataFrame:
        return _read_store(folder, name) if name in manifest["tables"] else pd.DataFrame()

    return StudyData(
        source=folder,
        tables=LazyTables(present, read, read),
        rejects=small("rejects"),
        accounting=accounting if accounting is not None else pd.DataFrame(),
        violations=small("violations"),
        summary=dict(manifest.get("ingest", {})),
        years=years,
    )


def _contract_order(accounting: pd.DataFrame) -> pd.DataFrame:
    """Accounting rows in the order of the flat path: the contract's files, then scanner exports.

    (``ingest_large`` accounts for findings.csv last, after its chunks.)
    """
    rank = {name: i for i, name in enumerate(INPUT_FILES)}
    key = accounting["table"].astype(str).map(lambda t: rank.get(t, len(rank)))
    return accounting.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def _read_store(
    folder: Path,
    name: str,
    *,
    years: tuple[int, ...] | None = None,
    columns: list[str] | None = None,
    sort_keys: Sequence[str] = (),
    present_only: bool = False,
) -> pd.DataFrame:
    """One table of a partitioned store: only ``years`` and ``columns``, rows in canonical order.

    Rows of a partitioned table come back one year folder after the other; a stable sort on
    ``sort_keys`` (those the table has) restores the order of the flat canonical table. A column the
    table does not have raises ``ValueError``, or, with ``present_only``, is left out.
    """
    dataset = open_partitioned(folder, name)
    names = [c for c in dataset.schema.names if c != YEAR]
    wanted = names if columns is None else [c for c in columns if c in names or not present_only]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ValueError(f"{folder}: table {name!r} has no column(s) {missing}; it has {names}")
    partitioned = YEAR in dataset.schema.names
    keys = [k for k in sort_keys if k in names] if partitioned else []
    table = dataset.to_table(
        columns=list(dict.fromkeys(wanted + keys)), filter=year_filter(years) if partitioned else None
    )
    order = arrow_frames.stable_order(table, keys) if keys and table.num_rows else None
    if order is not None and bool((order[1:] > order[:-1]).all()):  # already in order (one year, …)
        order = None
    arrays = {column: table.column(column) for column in wanted}
    del table  # from here on, each column lives only in ``arrays`` until converted
    return arrow_frames.to_pandas(
        arrays,
        order=None if order is None else pa.array(order),
        categorical=CATEGORICAL_FINDINGS if name == "findings" else (),
        types=_TYPES,
        text=TEXT,
    )


def load_audit_metrics(data: StudyData) -> pd.DataFrame:
    """Per-audit metrics (:func:`studies.indicators.audit_metrics`), read from ``audit_metrics.parquet``
    when the canonical folder holds a precomputed copy (batch runs), computed otherwise (both limited
    to ``data.years``)."""
    cached = Path(data.source) / "audit_metrics.parquet"
    if cached.is_file():
        metrics = pd.read_parquet(cached)
        if data.years is not None:
            metrics = metrics[metrics["year"].isin(data.years)].reset_index(drop=True)
        return mark_unavailable(metrics, data)
    return audit_metrics(data)
