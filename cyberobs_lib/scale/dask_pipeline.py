"""The heavy stages on Dask: normalization, lifecycle matching and per-audit aggregation.

Each stage partitions the findings so that the library's pandas function sees whole units, then calls
that function per partition; nothing is reimplemented, so the Dask path gives the same tables as the
pandas path (asserted by ``tests/test_scale.py``):

* :func:`normalize_dask` — findings shuffled by ``audit_id`` (duplicates never cross an audit), then
  :func:`~cyberobs_lib.normalize.normalize_findings` + :func:`~cyberobs_lib.enrich.enrich_findings` per
  partition;
* :func:`lifecycle_dask` — findings and hosts partitioned by a hash of the establishment (``finess``),
  then :func:`~cyberobs_lib.lifecycle.match_lifecycle` per partition on that partition's audits;
* :func:`audit_metrics_dask` — :func:`~cyberobs_lib.studies.indicators.audit_metrics` counts per
  partition, summed per audit, on the small per-audit frame the indicators start from.

:func:`client` starts a local cluster (2 worker processes) or connects to any Dask cluster by address.
"""

from __future__ import annotations

try:
    import dask
    import dask.dataframe as dd
except ImportError as exc:  # an optional extra: the message says how to install it
    raise ModuleNotFoundError(  # still names the missing module (exc.name) for those who check it
        f'the Dask path needs dask and distributed ({exc}): pip install "cyberobs[dask]"', name=exc.name
    ) from exc
import numpy as np
import pandas as pd

from cyberobs_lib.enrich import enrich_findings
from cyberobs_lib.ingest import type_table
from cyberobs_lib.lifecycle import LifecycleResult, match_lifecycle
from cyberobs_lib.normalize import normalize_findings
from cyberobs_lib.schema import Audits, Findings
from cyberobs_lib.studies.indicators import audit_metrics

BUCKET = "_bucket"
#: audit_metrics columns that add up over disjoint sets of findings, and the flags that are "any".
_ADDITIVE = ("n_findings", "n_critical", "n_high", "n_kev")
_ANY = ("exposes_remote_admin",)


def client(
    address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1, memory_limit: str = "5GB"
):
    """A ``distributed.Client``: a new local cluster of worker processes, or the cluster at ``address``.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``) of an existing cluster; None starts a ``LocalCluster``.
    n_workers, threads_per_worker, memory_limit
        Local cluster only: 2 single-threaded processes with 5 GB each fit a 2-core, 24 GB machine with
        room for the client process (Dask spills to disk at 60 % of the limit, pauses at 80 %).

    Returns
    -------
    distributed.Client
        Close it (``client.close(); client.cluster.close()``) or use it as a context manager.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ModuleNotFoundError(
            f'a Dask cluster needs distributed ({exc}): pip install "cyberobs[dask]"', name=exc.name
        ) from exc

    if address is not None:
        return Client(address)
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        processes=True,
        dashboard_address=None,
    )
    return Client(cluster)


def bucket_of(finess: pd.Series, *, buckets: int) -> np.ndarray:
    """Stable bucket (0 … buckets-1) of each FINESS: the same in every process and on every run."""
    values = pd.Series(finess, copy=False).astype(str).to_numpy(dtype=object)
    return (pd.util.hash_array(values) % np.uint64(buckets)).astype(np.int64)


def _normalize_part(part: pd.DataFrame, audits: pd.DataFrame, kev, epss) -> pd.DataFrame:
    order = [c for c in (Findings.audit_id, "source_file", "source_row") if c in part.columns]
    part = part.sort_values(order, kind="stable") if order else part  # back to input order per audit
    if part.empty:
        return part
    out = enrich_findings(normalize_findings(part, audits=audits, kev=kev), kev=kev, epss=epss)
    out = type_table("findings", out)
    out.attrs = {}
    return out


def normalize_dask(
    findings: dd.DataFrame,
    *,
    audits: pd.DataFrame,
    kev: pd.DataFrame | None = None,
    epss: pd.DataFrame | None = None,
    npartitions: int | None = None,
) -> dd.DataFrame:
    """Normalize and enrich checked findings on Dask, one audit never split across partitions.

    Parameters
    ----------
    findings : dask DataFrame
        Findings kept by the contract checks (what ``ingest.split_file`` returns: text cells typed, with
        ``source_file``/``source_row``).
    audits : DataFrame
        ``audit_id, finess, audit_date`` (small; shipped once to every worker).
    kev, epss : DataFrame, optional
        Catalogs, as :func:`~cyberobs_lib.enrich.enrich_findings`.
    npartitions : int, optional
        Partitions after the shuffle by ``audit_id`` (default: as many as the input).

    Returns
    -------
    dask DataFrame
        The columns of ``normalize_findings`` + ``enrich_findings``; within a partition, rows sorted by
        ``ingest.SORT_KEYS``. Same rows and values as the pandas functions over the whole table.

    Notes
    -----
    The duplicate collapse of ``normalize_findings`` keeps the first row of each (audit, fingerprint) in
    input order: partitions are shuffled on ``audit_id`` and re-sorted by ``source_row`` before the call.
    """
    shuffled = findings.shuffle(on=Findings.audit_id, npartitions=npartitions or findings.npartitions)
    sample = findings.head(200, npartitions=1)
    if sample.empty:  # a first partition without rows: look further
        sample = findings.head(200, npartitions=-1)
    meta = _normalize_part(sample, audits, kev, epss).iloc[:0]
    aud = dask.delayed(audits, pure=True)
    return shuffled.map_partitions(_normalize_part, aud, kev, epss, meta=meta, align_dataframes=False)


def _match_part(findings: pd.DataFrame, hosts: pd.DataFrame, audits: pd.DataFrame, est, *, bucket: int,
                min_days: int) -> LifecycleResult:  # fmt: skip
    aud = audits[audits[BUCKET] == bucket].drop(columns=BUCKET)
    f = findings.reset_index(drop=True).drop(columns=BUCKET, errors="ignore")
    h = None if hosts is None else hosts.reset_index(drop=True).drop(columns=BUCKET, errors="ignore")
    return match_lifecycle(f, aud, hosts=h, establishments=est, min_days=min_days)


def _by_bucket(frame: dd.DataFrame, finess_of_audit: pd.Series | None, buckets: int) -> dd.DataFrame:
    """Index a frame by the establishment bucket, partition ``i`` holding bucket ``i`` exactly."""

    def _assign(part: pd.DataFrame, fin) -> pd.DataFrame:
        fin_values = part[Audits.finess] if fin is None else part[Audits.audit_id].astype(str).map(fin)
        return part.assign(**{BUCKET: bucket_of(fin_values, buckets=buckets)})

    fin = None if finess_of_audit is None else dask.delayed(finess_of_audit, pure=True)
    with_bucket = frame.map_partitions(_assign, fin, meta=frame._meta.assign(**{BUCKET: np.int64(0)}))
    return with_bucket.set_index(BUCKET, divisions=list(range(buckets)) + [buckets], shuffle_method="tasks")


def lifecycle_dask(
    findings: dd.DataFrame,
    audits: pd.DataFrame,
    *,
    hosts: dd.DataFrame | None = None,
    establishments: pd.DataFrame | None = None,
    min_days: int = 0,
    buckets: int = 8,
) -> tuple[dd.DataFrame, dd.DataFrame]:
    """Lifecycle matching on Dask: each establishment's findings and perimeter in one partition.

    Parameters
    ----------
    findings : dask DataFrame
        ``audit_id``, ``host``, ``fingerprint``, ``finess`` (normalized findings), optionally
        ``severity``, ``category``.
    audits, establishments : DataFrame
        As :func:`~cyberobs_lib.lifecycle.match_lifecycle` (small, pandas).
    hosts : dask DataFrame, optional
        The perimeter (``audit_id``, ``host``).
    min_days : int
        As ``match_lifecycle``.
    buckets : int
        Number of establishment buckets (= partitions); an establishment lands in
        :func:`bucket_of` its FINESS.

    Returns
    -------
    (events, pairs) : dask DataFrames
        The ``events`` and ``pairs`` tables of ``match_lifecycle``, one partition per bucket; compute
        both with one ``dask.compute`` so matching runs once. Row order differs from the pandas path
        (bucket by bucket); values are identical.

    Notes
    -----
    Matching only ever compares audits of one establishment (the finding identity includes it), so the
    union over buckets of per-bucket results is the result over the whole table.
    """
    aud = audits.assign(**{BUCKET: bucket_of(audits[Audits.finess], buckets=buckets)})
    finess_of_audit = audits.drop_duplicates(Audits.audit_id).set_index(
        audits[Audits.audit_id].drop_duplicates().astype(str)
    )[Audits.finess]
    f_parts = _by_bucket(findings, None, buckets).to_delayed()
    h_parts = (
        _by_bucket(hosts, finess_of_audit, buckets).to_delayed() if hosts is not None else [None] * buckets
    )
    a, e = dask.delayed(aud, pure=True), dask.delayed(establishments, pure=True)
    match = dask.delayed(_match_part, nout=None, pure=True)
    results = [match(f, h, a, e, bucket=i, min_days=min_days) for i, (f, h) in
               enumerate(zip(f_parts, h_parts, strict=True))]  # fmt: skip
    meta = _match_part(
        findings._meta.assign(**{BUCKET: np.int64(0)}).drop(columns=BUCKET),
        None if hosts is None else hosts._meta,
        aud.iloc[:0],
        establishments,
        bucket=-1,
        min_days=min_days,
    )
    events = dd.from_delayed([r.events for r in results], meta=meta.events, verify_meta=False)
    pairs = dd.from_delayed([r.pairs for r in results], meta=meta.pairs, verify_meta=False)
    return events, pairs


def _partial_metrics(part: pd.DataFrame, establishments: pd.DataFrame, audits: pd.DataFrame) -> pd.DataFrame:
    ids = part[Audits.audit_id].astype(str).unique()
    aud = audits[audits[Audits.audit_id].astype(str).isin(ids)]
    m = audit_metrics({"establishments": establishments, "audits": aud, "findings": part})
    return m[[Audits.audit_id, *_ADDITIVE, *_ANY]]


def audit_metrics_dask(findings: dd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`~cyberobs_lib.studies.indicators.audit_metrics` with the findings on Dask.

    Parameters
    ----------
    findings : dask DataFrame
        ``audit_id`` and ``severity``, ``category``, ``known_exploited`` (only these are read).
    tables : dict
        The small canonical tables: ``establishments``, ``audits``, and ``protection`` or ``controls``.

    Returns
    -------
    DataFrame
        Exactly ``audit_metrics({**tables, "findings": <all findings>})``: one row per audit, same columns,
        dtypes and order.

    Notes
    -----
    ``audit_metrics`` runs on each partition (restricted to the audits present in it); its counts add
    up and its flag ``exposes_remote_admin`` is an "any" over partitions. The per-audit sums (a few
    hundred thousand rows) come back to pandas, where ``audit_metrics`` without findings gives every
    other column and the derived flags are recomputed from the summed counts as it defines them.
    """
    cols = [c for c in (Audits.audit_id, Findings.severity, Findings.category, "known_exploited")
            if c in findings.columns]  # fmt: skip
    est = dask.delayed(tables["establishments"], pure=True)
    aud = dask.delayed(tables["audits"], pure=True)
    meta = pd.DataFrame({Audits.audit_id: pd.Series(dtype=object), **{c: pd.Series(dtype="int64") for c in _ADDITIVE},
                         **{c: pd.Series(dtype=bool) for c in _ANY}})  # fmt: skip
    partial = findings[cols].map_partitions(_partial_metrics, est, aud, meta=meta)
    sums = partial.groupby(Audits.audit_id).agg(
        {**dict.fromkeys(_ADDITIVE, "sum"), **dict.fromkeys(_ANY, "max")}
    )
    sums = sums.compute()
    base = audit_metrics({k: v for k, v in tables.items() if k != "findings"})
    got = sums.reindex(base[Audits.audit_id].astype(str))
    for col in _ADDITIVE:
        base[col] = got[col].fillna(0).astype("int64").to_numpy()
    base["exposes_remote_admin"] = got["exposes_remote_admin"].astype("boolean").fillna(False).to_numpy(bool)
    base["n_crit_high"] = base["n_critical"] + base["n_high"]
    base["has_critical"] = base["n_critical"] > 0
    base["has_kev"] = base["n_kev"] > 0
    hosts = pd.to_numeric(base[Audits.hosts_in_scope], errors="coerce").astype(float)
    base["findings_per_host"] = base["n_findings"] / hosts.where(hosts > 0)
    return base
