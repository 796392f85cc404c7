"""One chunk of findings.csv from text to Parquet parts, in this process, in worker processes or on Dask.

:func:`process_chunk` is the whole per-chunk work of :func:`~cyberobs_lib.scale.ingest_large`: the
contract rules (:func:`~cyberobs_lib.scale.chunk_check.check_findings_chunk`), the split into kept rows,
rejects and accounting (``ingest.split_file``), normalization and enrichment, and the Parquet parts of the
kept rows (:func:`~cyberobs_lib.store.write_parts`). It depends only on its arguments, so the
chunks can run anywhere that sees the output folder; :class:`ChunkRunner` runs them

* in the calling process (``workers=1``),
* in a pool of local worker processes (``workers=N``: chunks of the stream are processed while the
  next ones are read), or
* on a Dask cluster (``client=``: any ``distributed.Client``; the workers must see the output folder,
  as with every Dask Parquet writer).

Results always come back in chunk order, and at most ``workers + 1`` chunks are in flight, so memory
stays bounded by the chunk size whatever the file size.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cyberobs_lib.enrich import enrich_findings
from cyberobs_lib.ingest import split_file, type_table
from cyberobs_lib.normalize import normalize_findings
from cyberobs_lib.scale.chunk_check import check_findings_chunk
from cyberobs_lib.store import add_year, to_compact_arrow, write_parts

FINDINGS = "findings"


@dataclass
class ChunkContext:
    """What every chunk needs, computed once from the small tables (sent once to each worker)."""

    path: Path
    delimiter: str
    known_audits: pd.Index
    perimeter: tuple[pd.Index, pd.Index] | None
    today: pd.Timestamp
    audits: pd.DataFrame  # audit_id, finess, audit_date (normalization)
    kev: pd.DataFrame | None
    epss: pd.DataFrame | None
    years: pd.Series  # audit_id -> year (partition)
    root: Path  # the writer's temporary folder
    #: columns the findings from scanner exports have (``evidence`` …): added empty to every chunk so that
    #: the store keeps them (the flat path's findings are the union of both sources' columns)
    extra_columns: dict[str, object] | None = None


@dataclass
class ChunkResult:
    """What a chunk sends back: small frames and counts (the kept rows are already on disk)."""

    number: int
    rejects: pd.DataFrame
    violations: pd.DataFrame | None
    accounting: dict
    kept: int
    parts: list[tuple[str, str, int]]
    schema: pa.Schema | None
    seconds: dict[str, float]


def process_chunk(ctx: ChunkContext, number: int, table: pa.Table, lines: np.ndarray, ragged) -> ChunkResult:
    """Check, split, normalize, enrich and write one chunk (an Arrow table of text cells).

    ``number`` orders the chunk's Parquet parts (``part-{number}``) and its results; ``lines`` are the
    physical lines of the rows, ``ragged`` the records skipped for a wrong number of cells.
    """
    t0 = time.perf_counter()
    frame = table.to_pandas()
    del table
    check = check_findings_chunk(
        frame,
        pd.Series(lines, dtype="int64"),
        path=ctx.path,
        known_audits=ctx.known_audits,
        perimeter=ctx.perimeter,
        today=ctx.today,
        ragged=ragged,
        delimiter=ctx.delimiter,
    )
    del frame
    kept, rejects, accounting = split_file(check)
    violations = pd.concat(check.violations, ignore_index=True) if check.violations else None
    del check
    t1 = time.perf_counter()
    parts, schema, t2 = [], None, t1
    if len(kept):
        n_checked = len(kept)
        kept = normalize_findings(kept, audits=ctx.audits, kev=ctx.kev)
        # rows of one audit and fingerprint collapsed: duplicates, as ingest.account counts them
        accounting["duplicates"] += n_checked - len(kept)
        accounting["kept"] = len(kept)
        kept = type_table(FINDINGS, enrich_findings(kept, kev=ctx.kev, epss=ctx.epss))
        for col, dtype in (ctx.extra_columns or {}).items():
            if col not in kept.columns:
                kept[col] = pd.Series(pd.NA, index=kept.index).astype(dtype)
        t2 = time.perf_counter()
        arrow = to_compact_arrow(add_year(kept, years=ctx.years))
        schema = arrow.schema
        parts = write_parts(ctx.root, FINDINGS, arrow, part=number)
    seconds = {"check": t1 - t0, "normalize": t2 - t1, "write": time.perf_counter() - t2}
    return ChunkResult(number, rejects, violations, accounting, len(kept), parts, schema, seconds)


_WORKER_CONTEXT: ChunkContext | None = None


def _init_worker(ctx: ChunkContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx
    pa.set_cpu_count(1)  # one process per core already: Arrow's own threads would only compete


def _in_worker(number: int, table: pa.Table, lines: np.ndarray, ragged) -> ChunkResult:
    return process_chunk(_WORKER_CONTEXT, number, table, lines, ragged)


class ChunkRunner:
    """Run :func:`process_chunk` over a stream of chunks; yields results in chunk order.

    Parameters
    ----------
    ctx : ChunkContext
    workers : int
        1: in this process. N > 1: N local worker processes (forked on Linux, spawned elsewhere; the
        context is inherited or sent once to each).
    client : distributed.Client, optional
        Run on this Dask cluster instead (the context is broadcast once to every worker).
    """

    def __init__(self, ctx: ChunkContext, *, workers: int = 1, client=None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.ctx, self.client = ctx, client
        self.workers = len(client.scheduler_info()["workers"]) if client is not None else workers
        self.pool = None
        self._ctx_future = None
        if client is not None:
            self._ctx_future = client.scatter(ctx, broadcast=True)
        elif workers > 1:
            # fork where there is one: no re-import of the caller's __main__ (scripts without a main guard
            # work) and the context is inherited, not pickled; the caller frees its big frames first
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=mp.get_context(method),
                initializer=_init_worker,
                initargs=(ctx,),
            )

    def __enter__(self) -> ChunkRunner:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, number: int, chunk: tuple):
        table, lines, ragged = chunk
        if self.client is not None:
            data = self.client.scatter(table)
            return self.client.submit(
                process_chunk, self._ctx_future, number, data, lines, ragged, pure=False
            )
        return self.pool.submit(_in_worker, number, table, lines, ragged)

    def map(self, chunks: Iterator[tuple[pa.Table, np.ndarray, list]]) -> Iterator[ChunkResult]:
        """Results of ``chunks`` in order, at most ``workers + 1`` in flight (memory bounded)."""
        if self.pool is None and self.client is None:
            for number, (table, lines, ragged) in enumerate(chunks):
                yield process_chunk(self.ctx, number, table, lines, ragged)
            return
        pending: deque = deque()
        for number, chunk in enumerate(chunks):
            pending.append(self._submit(number, chunk))
            del chunk
            while len(pending) > self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
