"""Collect the identifying values of a dataset (FINESS, names, hosts) for :func:`check_disclosure`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from cyberobs_lib.disclosure._detectors import _ip_or_none

#: Which columns of which table hold which kind of identifier (data-contract.md, "confidential").
IDENTIFYING_COLUMNS: dict[str, dict[str, str]] = {
    "establishments": {"finess": "finess", "finess_ej": "finess", "name": "name"},
    "audits": {"finess": "finess"},
    "incidents": {"finess": "finess"},
    "hosts": {"host": "hostname"},
    "findings": {"host": "hostname"},
}
CHUNK_ROWS = 1_000_000


def _csv_columns(path: Path, wanted: Iterable[str]) -> Iterable[pd.DataFrame]:
    """Chunks of the wanted columns of an input CSV (case-insensitive names, ``,`` or ``;``, UTF-8 or Latin-1)."""
    raw = path.read_bytes()[:65536]
    encoding = "utf-8-sig"
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        encoding = "utf-8-sig" if error.start > len(raw) - 4 else "latin-1"
    header = raw.decode(encoding, "replace").splitlines()[0] if raw else ""
    sep = ";" if header.count(";") > header.count(",") else ","
    names = [h.strip().strip('"').lower() for h in header.split(sep)]
    keep = [n for n in names if n in set(wanted)]
    if not keep:
        return []
    return pd.read_csv(
        path,
        sep=sep,
        encoding=encoding,
        dtype=str,
        usecols=lambda c: c.strip().strip('"').lower() in keep,
        keep_default_na=False,
        chunksize=CHUNK_ROWS,
    )


def _parquet_columns(path: Path, wanted: Iterable[str]) -> Iterable[pd.DataFrame]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    keep = [c for c in parquet.schema_arrow.names if c.lower() in set(wanted)]
    if not keep:
        return []
    return (batch.to_pandas() for batch in parquet.iter_batches(columns=keep, batch_size=CHUNK_ROWS))


def _add(found: dict[str, set[str]], kind: str, values: pd.Series) -> None:
    values = values.dropna().astype(str).str.strip()
    values = values[values != ""].unique()
    if kind == "finess":
        found["finess"].update(v.upper() for v in values)
    elif kind == "name":
        found["name"].update(values)
    else:
        for value in values:
            found["ip_address" if _ip_or_none(value) is not None else "hostname"].add(value)


def identifiers_from_dataset(source: Path | str | Mapping[str, pd.DataFrame]) -> dict[str, set[str]]:
    """Collect FINESS numbers (ET and EJ), establishment names, hostnames and IP addresses of a dataset.

    Parameters
    ----------
    source : path or mapping
        A dataset folder of the input contract (``establishments.csv``, ``audits.csv``, ``hosts.csv``,
        ``findings.csv``, ``incidents.csv``), a folder of canonical tables (``<table>.parquet``), or a
        ``{table name: DataFrame}`` mapping of canonical tables.

    Returns
    -------
    dict
        ``{"finess": set, "name": set, "hostname": set, "ip_address": set}`` of distinct values
        (FINESS upper-cased, all stripped), ready for ``check_disclosure(identifiers=...)``.

    Notes
    -----
    Only the identifying columns are read (:data:`IDENTIFYING_COLUMNS`), in chunks of a million rows
    reduced to their distinct values, so memory follows the number of distinct hosts, not of findings.
    Hosts found only in raw ``scans/`` exports are not read here: pass the canonical tables (which hold
    every ingested finding) to cover them. Missing files are skipped.

    Examples
    --------
    >>> tables = {"establishments": pd.DataFrame({"finess": ["010000024"], "name": ["CH de Fleyriat"]}),
    ...           "hosts": pd.DataFrame({"audit_id": ["A1", "A1"], "host": ["10.0.0.1", "www.chu-x.fr"]})}
    >>> sorted((k, sorted(v)) for k, v in identifiers_from_dataset(tables).items())
    [('finess', ['010000024']), ('hostname', ['www.chu-x.fr']), ('ip_address', ['10.0.0.1']), ('name', ['CH de Fleyriat'])]
    """
    found: dict[str, set[str]] = {"finess": set(), "name": set(), "hostname": set(), "ip_address": set()}
    for table, columns in IDENTIFYING_COLUMNS.items():
        if isinstance(source, Mapping):
            chunks: Iterable[pd.DataFrame] = [source[table]] if table in source else []
        else:
            folder = Path(source)
            if not folder.is_dir():
                raise NotADirectoryError(f"dataset folder {folder} does not exist")
            csv_path, parquet_path = folder / f"{table}.csv", folder / f"{table}.parquet"
            if parquet_path.is_file():
                chunks = _parquet_columns(parquet_path, columns)
            elif csv_path.is_file():
                chunks = _csv_columns(csv_path, columns)
            else:
                chunks = []
        for chunk in chunks:
            lower = {str(c).strip().strip('"').lower(): c for c in chunk.columns}
            for column, kind in columns.items():
                if column in lower:
                    _add(found, kind, chunk[lower[column]])
    return found
