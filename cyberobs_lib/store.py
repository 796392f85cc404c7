"""Canonical tables as Parquet datasets partitioned by audit year, read partition- and column-selectively.

Layout written by :func:`write_partitioned` (and, chunk by chunk, by :class:`PartitionedWriter`)::

    OUT/
      findings/year=2024/part-00000.parquet   hive layout, one folder per audit year
      audits/year=2024/part-00000.parquet
      hosts/…  controls/…  protection/…       every table with an ``audit_id``
      establishments/part-00000.parquet       tables without an audit are not partitioned
      _manifest.json                          written last: its presence marks a complete folder

The folder is built under a temporary sibling and renamed into place, so a crash never leaves a
half-written folder that looks complete. Text columns are dictionary-encoded (pandas categoricals on
read) except the high-cardinality identifiers of :data:`PLAIN_TEXT`; integer and boolean columns get
the compact types of :data:`COMPACT_TYPES`; rows keep the order they were given in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cyberobs_lib.schema import CATEGORICAL_FINDINGS, Audits

YEAR = "year"
MANIFEST = "_manifest.json"
#: Compact Arrow types of integer columns whose range the data contract bounds (port ≤ 65535, …).
COMPACT_TYPES: dict[str, pa.DataType] = {
    YEAR: pa.int16(),
    "port": pa.int32(),
    "hosts_in_scope": pa.int32(),
    "beds": pa.int32(),
    "n_duplicates": pa.int32(),
    "source_row": pa.int64(),
}
#: Text columns with about one value per row: plain strings (a dictionary would not be smaller).
PLAIN_TEXT = frozenset({"host", "fingerprint", "name", "message", "value", "incident_id"})
_DICT = pa.dictionary(pa.int32(), pa.string())
_READ_TYPES = {pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
               pa.bool_(): pd.BooleanDtype()}  # fmt: skip


def _target_type(name: str, col: pa.ChunkedArray) -> pa.DataType:
    """Storage type of one column: compact integers, dictionary or plain text, others unchanged."""
    t = col.type
    if name in COMPACT_TYPES and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        return COMPACT_TYPES[name]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return pa.string() if name in PLAIN_TEXT else _DICT
    if pa.types.is_dictionary(t):
        return pa.string() if name in PLAIN_TEXT else _DICT
    return t


def to_compact_arrow(frame: pd.DataFrame) -> pa.Table:
    """An Arrow table of ``frame`` with the storage types of this module (lossless; raises otherwise).

    Examples
    --------
    >>> t = to_compact_arrow(pd.DataFrame({"port": pd.array([443, None], dtype="Int64"), "scanner": ["n", "n"]}))
    >>> str(t.schema.field("port").type), str(t.schema.field("scanner").type)
    ('int32', 'dictionary<values=string, indices=int32, ordered=0>')
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, _target_type(f.name, table.column(f.name))) for f in table.schema]
    return table.cast(pa.schema(fields), safe=True)


def year_of_audits(audits: pd.DataFrame) -> pd.Series:
    dates = pd.to_datetime(audits[Audits.audit_date], errors="coerce")
    return pd.Series(dates.dt.year.to_numpy(), index=audits[Audits.audit_id].astype(str)).astype("Int16")


def add_year(frame: pd.DataFrame, *, years: pd.Series) -> pd.DataFrame:
    """A copy of ``frame`` with the ``year`` of its audit (``years``: audit_id → year); NA when unknown."""
    out = frame.copy()
    ids = out[Audits.audit_id].astype(str)
    out[YEAR] = pd.array(years.reindex(ids).to_numpy(), dtype="Int16")
    return out


class PartitionedWriter:
    """Write tables chunk by chunk into a partitioned folder, atomically (``commit`` renames it into place).

    Each :meth:`append` writes one Parquet file per year present in the chunk; the Arrow schema of a
    table is fixed by its first chunk, later chunks are cast to it (a lossy cast raises). Without
    :meth:`commit` (an exception in a ``with`` block), the temporary folder is removed and ``out`` is
    left as it was.
    """

    def __init__(self, out: Path | str, *, partition_by: str | None = YEAR):
        if partition_by not in (YEAR, None):
            raise ValueError(f"partition_by must be 'year' or None, got {partition_by!r}")
        self.out = Path(out)
        self.partition_by = partition_by
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=self.out.parent))
        self.files: dict[str, list[str]] = {}
        self.rows: dict[str, dict[str, int]] = {}
        self.schemas: dict[str, pa.Schema] = {}

    def __enter__(self) -> PartitionedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def append(self, name: str, frame: pd.DataFrame) -> None:
        """Append ``frame`` to table ``name`` (partitioned by its ``year`` column when it has one)."""
        table = to_compact_arrow(frame)
        if name in self.schemas:
            table = table.select(self.schemas[name].names).cast(self.schemas[name], safe=True)
        parts = write_parts(self.tmp, name, table, part=len(self.files.get(name, [])),
                            partition_by=self.partition_by)  # fmt: skip
        self.register(name, parts, table.schema)

    def register(self, name: str, parts: list[tuple[str, str, int]], schema: pa.Schema) -> None:
        """Record files written under :attr:`tmp` by :func:`write_parts` (possibly in another process).

        The first schema of a table is its schema; a part written with another one is rewritten cast to
        it (a lossy cast raises). Parts are listed in the order registered: the read order.
        """
        if name not in self.schemas:
            self.schemas[name] = schema
        elif not schema.equals(self.schemas[name]):
            for rel, _, _ in parts:
                table = pq.read_table(self.tmp / rel).select(self.schemas[name].names)
                pq.write_table(table.cast(self.schemas[name], safe=True), self.tmp / rel,
                               compression="zstd", write_statistics=True)  # fmt: skip
        files, rows = self.files.setdefault(name, []), self.rows.setdefault(name, {})
        for rel, folder, n in parts:
            files.append(rel)
            rows[folder or "all"] = rows.get(folder or "all", 0) + n

    def commit(self, extra: dict | None = None) -> Path:
        """Write the manifest last, then swap the temporary folder into ``out``."""
        manifest = {
            "format": "cyberobs-partitioned/1",
            "partition_by": self.partition_by,
            "tables": {
                n: {"files": self.files[n], "rows": self.rows[n], "columns": self.schemas[n].names}
                for n in self.files
            },  # fmt: skip
            **(extra or {}),
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
        (self.tmp / MANIFEST).write_text(text, encoding="utf-8")
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out


def _compact_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column holding only the values its rows use (same values, row for row)."""
    chunks = []
    for chunk in column.chunks:
        size = len(chunk.dictionary)
        codes = chunk.indices.fill_null(size).to_numpy(zero_copy_only=False)
        used = np.flatnonzero(np.bincount(codes, minlength=size + 1)[:size])
        if 2 * len(used) > size:  # little to gain
            chunks.append(chunk)
            continue
        new = np.zeros(size + 1, dtype=np.int32)
        new[used] = np.arange(len(used), dtype=np.int32)
        indices = pa.array(new[codes], mask=chunk.indices.is_null().to_numpy(zero_copy_only=False))
        chunks.append(pa.DictionaryArray.from_arrays(indices, chunk.dictionary.take(pa.array(used))))
    return pa.chunked_array(chunks, type=column.type)


def _compact_dictionaries(piece: pa.Table) -> pa.Table:
    """``piece`` (one partition of a table) with each dictionary column holding only the values the
    partition uses, except the vocabularies of :data:`~cyberobs_lib.schema.CATEGORICAL_FINDINGS`, kept
    whole: a partition of one year of audits would otherwise carry the ids of every year."""
    for i, name in enumerate(piece.column_names):
        column = piece.column(i)
        if pa.types.is_dictionary(column.type) and name not in CATEGORICAL_FINDINGS:
            piece = piece.set_column(i, name, _compact_dictionary(column))
    return piece


def write_parts(
    root: Path, name: str, table: pa.Table, *, part: int, partition_by: str | None = YEAR
) -> list[tuple[str, str, int]]:
    """Write ``table`` under ``root/name/`` as one Parquet file per partition value, named ``part-{part}``.

    Returns ``(relative path, partition folder, rows)`` per file written, for
    :meth:`PartitionedWriter.register`. Callable in a worker process (it writes only new files).
    """
    if partition_by and partition_by in table.column_names:
        key = table.column(partition_by).to_numpy(zero_copy_only=False)
        key = np.where(pd.isna(key), -1, key).astype(np.int64)
        groups = [(f"{partition_by}={v}" if v >= 0 else f"{partition_by}=__HIVE_DEFAULT_PARTITION__", key == v)
                  for v in np.unique(key)]  # fmt: skip
    else:
        groups = [("", None)]
    written = []
    for folder, mask in groups:
        piece = table if mask is None else _compact_dictionaries(table.filter(pa.array(mask)))
        if partition_by in piece.column_names and folder:
            piece = piece.drop_columns([partition_by])
        rel = f"{name}/{folder}/part-{part:05d}.parquet".replace("//", "/")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(piece, root / rel, compression="zstd", write_statistics=True)
        written.append((rel, folder, piece.num_rows))
    return written


def write_partitioned(
    tables: dict[str, pd.DataFrame], out: Path | str, *, partition_by: str | None = YEAR
) -> Path:
    """Write canonical tables as Parquet datasets partitioned by audit year, atomically.

    Parameters
    ----------
    tables : dict of str → DataFrame
        Canonical tables (``IngestResult.tables``); must include ``audits`` when partitioning.
        Tables with an ``audit_id`` column get the ``year`` of their audit; others are written whole.
    out : path
        Target folder (replaced as a whole when it exists).
    partition_by : {"year", None}
        ``"year"``: hive folders ``year=YYYY/`` (audit year); ``None``: no partitioning.

    Returns
    -------
    pathlib.Path
        ``out``; ``out/_manifest.json`` lists every file with its row counts per partition.

    Notes
    -----
    Compact, lossless storage types (:func:`to_compact_arrow`); row order within a partition is the
    input order (canonical tables are sorted by ``ingest.SORT_KEYS``). Rows whose audit is unknown go
    to ``year=__HIVE_DEFAULT_PARTITION__`` (read as NA).

    Examples
    --------
    >>> import tempfile
    >>> aud = pd.DataFrame({"audit_id": ["a1", "a2"], "finess": ["1", "1"],
    ...                     "audit_date": pd.to_datetime(["2023-05-01", "2024-05-01"])})
    >>> fnd = pd.DataFrame({"audit_id": ["a1", "a2", "a2"], "severity": ["high", "low", "high"]})
    >>> out = write_partitioned({"audits": aud, "findings": fnd}, Path(tempfile.mkdtemp()) / "canon")
    >>> read_partitioned(out, "findings", years=[2024])["severity"].tolist()
    ['low', 'high']
    """
    years = year_of_audits(tables["audits"]) if partition_by and "audits" in tables else None
    if partition_by and years is None:
        raise ValueError("partitioning by year needs the 'audits' table (audit_id, audit_date)")
    with PartitionedWriter(out, partition_by=partition_by) as writer:
        for name, frame in tables.items():
            if years is not None and Audits.audit_id in frame.columns:
                frame = add_year(frame, years=years)
            writer.append(name, frame)
        return writer.commit()


def read_manifest(folder: Path | str) -> dict:
    """The manifest of a partitioned folder; ``FileNotFoundError`` when it is absent (incomplete folder)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {MANIFEST}; not a complete partitioned folder")
    return json.loads(path.read_text(encoding="utf-8"))


def open_partitioned(folder: Path | str, table: str) -> ds.Dataset:
    """The ``pyarrow.dataset`` of one table (files in manifest order, hive ``year`` as int16)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if table not in manifest["tables"]:
        raise KeyError(f"{folder}: no table {table!r}; has {sorted(manifest['tables'])}")
    files = [str(folder / f) for f in manifest["tables"][table]["files"]]
    schema = pq.read_schema(files[0])
    part = None
    if manifest["partition_by"] and any(f"/{YEAR}=" in f for f in files):
        part = ds.partitioning(pa.schema([(YEAR, pa.int16())]), flavor="hive")
        schema = schema.append(pa.field(YEAR, pa.int16()))
    return ds.dataset(files, schema=schema, format="parquet", partitioning=part,
                      partition_base_dir=str(folder / table))  # fmt: skip


def year_filter(years) -> ds.Expression | None:
    """The partition filter keeping ``years`` (None: every year)."""
    return None if years is None else ds.field(YEAR).isin([int(y) for y in years])


def read_partitioned(
    folder: Path | str, table: str, *, years=None, columns: list[str] | None = None
) -> pd.DataFrame:
    """Read one table of a partitioned folder, only the partitions and columns asked for.

    Parameters
    ----------
    folder : path
        Written by :func:`write_partitioned` or ``ingest_large``.
    table : str
        Table name (``findings``, ``audits``, …).
    years : iterable of int, optional
        Audit years to read (partition pruning: other folders are never opened). None: all. Ignored
        for tables that are not partitioned (establishments, incidents, rejects, accounting).
    columns : list of str, optional
        Columns to read (projection); None: all, with ``year`` last for partitioned tables.

    Returns
    -------
    DataFrame
        Dictionary columns as categoricals, integers as nullable ``Int16/32/64``, booleans as
        ``boolean``; rows in write order.
    """
    dataset = open_partitioned(folder, table)
    tab = dataset.to_table(
        columns=columns, filter=year_filter(years) if YEAR in dataset.schema.names else None
    )
    return tab.to_pandas(types_mapper=_READ_TYPES.get)
