"""National scale: partitioned Parquet storage, chunked ingestion and a Dask path (issue 9).

* the store format itself (:func:`write_partitioned`, :func:`read_partitioned`: canonical tables as
  Parquet datasets partitioned by audit year) lives in :mod:`cyberobs_lib.store`, a lower floor that
  studies read; its names are re-exported here for compatibility;
* :mod:`.chunked` — :func:`ingest_large`: ``findings.csv`` read in chunks with the contract rules,
  normalized, enriched and written chunk by chunk (memory flat in the number of chunks);
* :mod:`.dask_pipeline` — normalization, lifecycle matching and per-audit aggregation on Dask, giving
  the same tables as the pandas path (the single source of truth).
"""

import importlib

#: Public name -> the submodule defining it. Imported on first use (PEP 562): reading a store
#: (``cyberobs_lib.store``) must not import Dask and the ingest machinery (over a second at start-up).
_EXPORTS = {
    "ingest_large": "chunked",
    "audit_metrics_dask": "dask_pipeline",
    "client": "dask_pipeline",
    "lifecycle_dask": "dask_pipeline",
    "normalize_dask": "dask_pipeline",
    "PartitionedWriter": "cyberobs_lib.store",
    "open_partitioned": "cyberobs_lib.store",
    "read_manifest": "cyberobs_lib.store",
    "read_partitioned": "cyberobs_lib.store",
    "write_partitioned": "cyberobs_lib.store",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        module = _EXPORTS[name]
        if "." not in module:
            module = f"cyberobs_lib.scale.{module}"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'cyberobs_lib.scale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
