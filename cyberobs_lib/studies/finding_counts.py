"""Findings counted per audit: the counts and flags of :func:`studies.indicators.audit_metrics`.

Two ways to the same table. From a findings frame in memory (:func:`count_frame`): ``np.bincount`` on the
integer codes of ``audit_id``. From a canonical Parquet store (:func:`count_store`, flat or partitioned by
year): the findings are never turned into a DataFrame; each Arrow record batch is counted on the integer
codes of its dictionary-encoded columns (one ``np.bincount`` on ``audit code x 16 + flag bits``) and the
per-batch counts, keyed by audit id, are summed. A national store of 10^7 findings is counted this way in
about the time Arrow takes to decode the four columns.

Counted per audit (the columns of the result, indexed by the audit ids as text (:data:`TEXT`), audits with
at least one finding only; findings without an audit id are not counted):

* ``n_findings`` — findings;
* ``n_critical``, ``n_high`` — findings of that ``severity``;
* ``n_remote`` — findings of category ``exposed_remote_admin``;
* ``n_kev`` — findings flagged ``known_exploited`` or of category ``known_exploited``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cyberobs_lib.schema import Findings
from cyberobs_lib.store import MANIFEST, YEAR, open_partitioned, year_filter
from cyberobs_lib.studies.study_tables import FLAT, PARTITIONED, LazyTables, StudyData, canonical_format

#: Enrichment column flagging a finding listed in the CISA KEV catalog.
KNOWN_EXPLOITED = "known_exploited"
#: Audit ids (the index of the counts): pandas ``string`` backed by Arrow.
TEXT = pd.StringDtype("pyarrow")
#: Result columns, in order.
COUNT_COLUMNS = ("n_findings", "n_critical", "n_high", "n_remote", "n_kev")
#: Findings columns the counts are made from.
COUNTED_COLUMNS = (Findings.audit_id, Findings.severity, Findings.category, KNOWN_EXPLOITED)

# One bit per flag: a finding's flags are one number in 0..15.
_CRITICAL, _HIGH, _REMOTE, _KEV = 1, 2, 4, 8
_SEVERITY_BITS = {"critical": _CRITICAL, "high": _HIGH}
_CATEGORY_BITS = {"exposed_remote_admin": _REMOTE, "known_exploited": _KEV}
_FLAG_COLUMNS = {"n_critical": _CRITICAL, "n_high": _HIGH, "n_remote": _REMOTE, "n_kev": _KEV}


def as_mask(mask: pd.Series) -> np.ndarray:
    """A comparison's result as a numpy bool array (missing = False)."""
    return mask.to_numpy(dtype=bool, na_value=False)


def count_frame(findings: pd.DataFrame | None) -> pd.DataFrame:
    """Counts per audit of a findings frame (``audit_id``; ``severity``, ``category`` and
    ``known_exploited`` when present: a missing column raises no flag)."""
    aid = Findings.audit_id
    if findings is None or findings.empty:
        findings = pd.DataFrame({aid: pd.Series(dtype=object)})
    none = pd.Series(None, index=findings.index, dtype=object)
    sev = findings[Findings.severity] if Findings.severity in findings.columns else none
    cat = findings[Findings.category] if Findings.category in findings.columns else none
    kev = as_mask(cat == "known_exploited")
    if KNOWN_EXPLOITED in findings.columns:
        kev = kev | findings[KNOWN_EXPLOITED].astype("boolean").fillna(False).to_numpy(dtype=bool)
    flags = {
        "n_critical": as_mask(sev == "critical"),
        "n_high": as_mask(sev == "high"),
        "n_remote": as_mask(cat == "exposed_remote_admin"),
        "n_kev": kev,
    }
    ids = findings[aid]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes, uniques = ids.cat.codes.to_numpy(), ids.cat.categories
    else:
        codes, uniques = pd.factorize(ids)
    known = codes >= 0
    everything = bool(known.all())
    size = len(uniques)
    cols = {"n_findings": np.bincount(codes if everything else codes[known], minlength=size)}
    for name, flag in flags.items():
        cols[name] = np.bincount(codes[flag if everything else flag & known], minlength=size)
    seen = cols["n_findings"] > 0
    index = pd.Index(uniques[seen]).astype(str).astype(TEXT)
    return pd.DataFrame({k: cols[k][seen].astype("int64") for k in COUNT_COLUMNS}, index=index)


# --------------------------------------------------------------------------------------------------
# From Parquet, batch by batch
# --------------------------------------------------------------------------------------------------
def _codes(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (``intp``) of a column and its distinct values; nulls get the code ``len(values)``."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    indices, size = column.indices, len(column.dictionary)
    codes = (indices.fill_null(size) if indices.null_count else indices).to_numpy(zero_copy_only=False)
    return codes.astype(np.intp, copy=False), column.dictionary


def _bits(column: pa.Array, bits: Mapping[str, int]) -> np.ndarray:
    """Each row's flag bits from its value (``bits``: value -> bit; other values and nulls: 0)."""
    codes, values = _codes(column)
    per_value = np.zeros(len(values) + 1, dtype=np.uint8)
    for value, bit in bits.items():
        per_value[:-1][pc.equal(values, value).fill_null(False).to_numpy(zero_copy_only=False)] |= bit
    return per_value[codes]


# Column j of the result sums the flag combinations (0..15) counted in it: all of them for n_findings.
_SUMS = np.array([[1] * 16] + [[(combo & bit) > 0 for combo in range(16)] for bit in _FLAG_COLUMNS.values()],
                 dtype=np.float64).T  # fmt: skip


def _count_batch(batch: pa.RecordBatch) -> pa.Table:
    """Counts per audit id of one record batch (columns of :data:`COUNTED_COLUMNS` it has).

    The batch's audit codes are first made dense (a Parquet dictionary holds every audit of the file it
    comes from, most of them absent from a given batch); then one ``np.bincount`` of ``dense code x 16 +
    flag bits``, summed per audit by a (16 x 5) 0/1 matrix."""
    names = batch.schema.names
    codes, ids = _codes(batch.column(names.index(Findings.audit_id)))
    size = len(ids)  # code ``size``: no audit id, not counted
    seen = np.flatnonzero(np.bincount(codes, minlength=size + 1)[:size])
    if len(seen) < size:
        dense = np.full(size + 1, len(seen), dtype=np.intp)
        dense[seen] = np.arange(len(seen))
        key = dense[codes] << 4
    else:  # every value used (a store's partitions keep only those): the codes are dense already
        key = codes << 4
    for name, bits in ((Findings.severity, _SEVERITY_BITS), (Findings.category, _CATEGORY_BITS)):
        if name in names:
            key |= _bits(batch.column(names.index(name)), bits)
    if KNOWN_EXPLOITED in names:
        kev = pc.cast(batch.column(names.index(KNOWN_EXPLOITED)).fill_null(False), pa.uint8())
        key |= kev.to_numpy(zero_copy_only=False) << 3
    table = np.bincount(key, minlength=(len(seen) + 1) * 16).reshape(len(seen) + 1, 16)[:-1]
    sums = (table.astype(np.float64) @ _SUMS).astype(np.int64)  # exact: counts are far below 2^53
    ids = ids if len(seen) == size else ids.take(pa.array(seen))
    columns = {Findings.audit_id: ids.cast(pa.large_string())}
    return pa.table({**columns, **{name: sums[:, j] for j, name in enumerate(COUNT_COLUMNS)}})


def count_batches(batches: Iterable[pa.RecordBatch]) -> pd.DataFrame:
    """Counts per audit of findings given as Arrow record batches (summed over the batches); index: the
    audit ids as pandas ``string`` backed by Arrow."""
    parts = [_count_batch(b) for b in batches if b.num_rows]
    if not parts:
        return count_frame(None)
    total = pa.concat_tables(parts)
    ids = pc.dictionary_encode(total.column(Findings.audit_id)).combine_chunks()
    codes, size = ids.indices.to_numpy(zero_copy_only=False), len(ids.dictionary)
    columns = {c: np.bincount(codes, weights=total.column(c).to_numpy(), minlength=size).astype(np.int64)
               for c in COUNT_COLUMNS}  # fmt: skip
    return pd.DataFrame(columns, index=pd.Index(pd.array(ids.dictionary, dtype=TEXT)))


def count_store(folder: str | Path, *, years: Iterable[int] | None = None) -> pd.DataFrame:
    """Counts per audit of the findings of a canonical Parquet store, flat (``findings.parquet``) or
    partitioned by year (``years``: only those partitions; None: all). Only the four counted columns are
    read, by Arrow threads, batch by batch."""
    import pyarrow.dataset as ds

    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        dataset, where = open_partitioned(folder, "findings"), None
        if YEAR in dataset.schema.names:
            where = year_filter(years)
    else:
        dataset, where = ds.dataset(folder / "findings.parquet", format="parquet"), None
    columns = [c for c in COUNTED_COLUMNS if c in dataset.schema.names]
    return count_batches(dataset.to_batches(columns=columns, filter=where, batch_size=1 << 20))


def count_findings(data: object) -> pd.DataFrame:
    """Counts per audit of a study's findings: from the Parquet store when ``data`` is a
    :class:`~cyberobs_lib.studies.data.StudyData` read from one and its findings are not in memory yet
    (they are then never read into pandas), from the findings frame otherwise (``data``: a StudyData or
    a mapping of table name -> frame; no findings table: no counts)."""
    if isinstance(data, StudyData):
        tables = data.tables
        lazy = isinstance(tables, LazyTables) and "findings" in tables and "findings" not in tables.loaded()
        if lazy and canonical_format(data.source) in (FLAT, PARTITIONED):
            return count_store(data.source, years=data.years)
        return count_frame(tables.get("findings"))
    return count_frame(data.get("findings") if isinstance(data, Mapping) else getattr(data, "findings", None))
