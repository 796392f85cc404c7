"""National scale: partitioned Parquet storage, chunked ingestion and a Dask path (issue 9).

* :mod:`.storage` — :func:`write_partitioned`, :func:`read_partitioned`: canonical tables as Parquet
  datasets partitioned by audit year, compact types, atomic writes, partition pruning;
* :mod:`.chunked` — :func:`ingest_large`: ``findings.csv`` read in chunks with the contract rules,
  normalized, enriched and written chunk by chunk (memory flat in the number of chunks);
* :mod:`.dask_pipeline` — normalization, lifecycle matching and per-audit aggregation on Dask, giving
  the same tables as the pandas path (the single source of truth).
"""

from cyberobs_lib.scale.chunked import ingest_large
from cyberobs_lib.scale.dask_pipeline import audit_metrics_dask, client, lifecycle_dask, normalize_dask
from cyberobs_lib.scale.storage import (
    PartitionedWriter,
    open_partitioned,
    read_manifest,
    read_partitioned,
    write_partitioned,
)

__all__ = [
    "PartitionedWriter",
    "audit_metrics_dask",
    "client",
    "ingest_large",
    "lifecycle_dask",
    "normalize_dask",
    "open_partitioned",
    "read_manifest",
    "read_partitioned",
    "write_partitioned",
]
