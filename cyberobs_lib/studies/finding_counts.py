"""Findings counted per audit: the counts and flags of :func:`studies.indicators.audit_metrics`.

Two ways to the same table. From a findings frame in memory (:func:`count_frame`), or from a canonical
Parquet store (:func:`count_store`, flat or partitioned by year) batch by batch, the findings never turned
into a DataFrame (a national store of 10^7 findings is counted in about the time Arrow takes to decode
the four columns). How: :mod:`cyberobs_lib.kernels.flag_counts` (``np.bincount`` on integer codes, beside
its ``groupby`` reference).

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

from cyberobs_lib.kernels import flag_counts
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

#: What is counted per audit after ``n_findings``: column -> findings (column, value) raising it (any).
FLAGS = {
    "n_critical": [(Findings.severity, "critical")],
    "n_high": [(Findings.severity, "high")],
    "n_remote": [(Findings.category, "exposed_remote_admin")],
    "n_kev": [(Findings.category, "known_exploited"), (KNOWN_EXPLOITED, True)],
}


def as_mask(mask: pd.Series) -> np.ndarray:
    """A comparison's result as a numpy bool array (missing = False)."""
    return mask.to_numpy(dtype=bool, na_value=False)


def count_frame(findings: pd.DataFrame | None) -> pd.DataFrame:
    """Counts per audit of a findings frame (``audit_id``; ``severity``, ``category`` and
    ``known_exploited`` when present: a missing column raises no flag)."""
    aid = Findings.audit_id
    if findings is None or findings.empty:
        findings = pd.DataFrame({aid: pd.Series(dtype=object)})
    flags = flag_counts.flag_masks(findings, FLAGS)
    return flag_counts.count_by_key(findings[aid], flags, total=COUNT_COLUMNS[0], key_dtype=TEXT)


# --------------------------------------------------------------------------------------------------
# From Parquet, batch by batch
# --------------------------------------------------------------------------------------------------
def count_batches(batches: Iterable[pa.RecordBatch]) -> pd.DataFrame:
    """Counts per audit of findings given as Arrow record batches (summed over the batches); index: the
    audit ids as pandas ``string`` backed by Arrow."""
    return flag_counts.count_flags_batches(
        batches, key=Findings.audit_id, flags=FLAGS, total=COUNT_COLUMNS[0], key_dtype=TEXT
    )


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
