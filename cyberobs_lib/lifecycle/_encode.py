"""Shared preparation for lifecycle matching: input checks, audit ordering, integer encoding.

Everything downstream works on integer NumPy arrays (audit, host and identity codes) sorted once by
(identity, audit rank), so that "the same finding at the next audit" is the next row of the array and
the whole matching is a handful of vectorized comparisons, with no join over strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cyberobs_lib.schema import Audits, Findings, Hosts

#: Stable finding identity computed upstream by ``normalize_findings`` (not yet in ``schema``).
FINGERPRINT = "fingerprint"
#: KEV flag computed upstream by enrichment (not yet in ``schema``); may be absent.
KNOWN_EXPLOITED = "known_exploited"

#: Where the perimeter of an audit comes from (``perimeter_source`` column).
SOURCE_HOSTS = "hosts.csv"
SOURCE_FINDINGS = "findings"

_FINDINGS_REQUIRED = (Findings.audit_id, Findings.host, FINGERPRINT)
_AUDITS_REQUIRED = (Audits.audit_id, Audits.finess, Audits.audit_date)


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], *, table: str) -> None:
    """Raise ``ValueError`` naming the table and every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing required column(s) {missing}; has {list(frame.columns)}")


def codes_in(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Positions of ``values`` in ``index`` (-1 when absent), fast path for categoricals."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = index.get_indexer(values.cat.categories)
        codes = values.cat.codes.to_numpy()
        out = np.where(codes >= 0, lookup[codes], -1)
        return out.astype(np.int64, copy=False)
    return index.get_indexer(values).astype(np.int64, copy=False)


def factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and uniques of a column (categorical codes reused as they are)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64), pd.Index(values.cat.categories)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def order_audits(audits: pd.DataFrame, *, min_days: int = 0) -> pd.DataFrame:
    """Audits sorted by (finess, audit_date, audit_id), with the kept chain after ``min_days`` skipping.

    Returns a new frame with the input columns plus ``est`` (int code of the establishment),
    ``raw_rank`` (0-based position among all its audits), ``kept`` (bool), ``rank`` (0-based position
    among kept audits, -1 if skipped), ``prev_kept``/``next_kept`` (row positions in the returned
    frame of the neighbouring kept audits, -1 if none) and ``n_skipped_before`` (audits skipped since
    the previous kept one). The first audit is always kept; a later audit is kept when it is at least
    ``min_days`` days after the last *kept* audit (greedy, in date order).
    """
    require_columns(audits, _AUDITS_REQUIRED, table="audits")
    if min_days < 0:
        raise ValueError(f"min_days must be >= 0, got {min_days}")
    if audits[Audits.audit_id].duplicated().any():
        dup = audits.loc[audits[Audits.audit_id].duplicated(), Audits.audit_id].unique()[:5]
        raise ValueError(f"audits: audit_id must be unique; duplicated: {list(dup)}")
    dates = pd.to_datetime(audits[Audits.audit_date], errors="coerce")
    if dates.isna().any():
        bad = audits.loc[dates.isna(), Audits.audit_id].head(5).tolist()
        raise ValueError(f"audits: audit_date missing or not a date for audit_id {bad}")
    out = audits.assign(**{Audits.audit_date: dates.to_numpy()})
    out = out.sort_values([Audits.finess, Audits.audit_date, Audits.audit_id], kind="stable")
    out = out.reset_index(drop=True)
    est, _ = pd.factorize(out[Audits.finess])
    out["est"] = est
    out["raw_rank"] = out.groupby("est", sort=False).cumcount().to_numpy()
    day = out[Audits.audit_date].to_numpy().astype("datetime64[D]").astype(np.int64)
    kept = np.zeros(len(out), dtype=bool)
    last_kept_day = np.full(est.max() + 1 if len(out) else 0, np.iinfo(np.int64).min // 2)
    raw_rank = out["raw_rank"].to_numpy()
    for k in range(int(raw_rank.max()) + 1 if len(out) else 0):  # loop over ranks, not rows
        rows = np.flatnonzero(raw_rank == k)
        ok = (k == 0) | (day[rows] - last_kept_day[est[rows]] >= min_days)
        kept[rows[ok]] = True
        last_kept_day[est[rows[ok]]] = day[rows[ok]]
    out["kept"] = kept
    rank = out.loc[kept].groupby("est", sort=False).cumcount()
    out["rank"] = rank.reindex(out.index, fill_value=-1).to_numpy()
    pos = np.arange(len(out))
    kpos = pos[kept]
    same_next = est[kpos][1:] == est[kpos][:-1]
    next_kept = np.full(len(out), -1)
    prev_kept = np.full(len(out), -1)
    next_kept[kpos[:-1][same_next]] = kpos[1:][same_next]
    prev_kept[kpos[1:][same_next]] = kpos[:-1][same_next]
    out["next_kept"] = next_kept
    out["prev_kept"] = prev_kept
    # audits skipped since the previous kept audit of the same establishment
    cum_skipped = np.cumsum(~kept)
    before = np.where(prev_kept >= 0, cum_skipped[np.maximum(prev_kept, 0)], 0)
    out["n_skipped_before"] = np.where(prev_kept >= 0, cum_skipped - before, 0)
    return out


@dataclass(frozen=True)
class Encoded:
    """Findings and perimeters of the kept audits as integer arrays (see :func:`encode`)."""

    audits: pd.DataFrame  # from order_audits
    row: np.ndarray  # position of the finding in the input frame
    audit: np.ndarray  # row position in ``audits``
    host: np.ndarray  # host code
    ident: np.ndarray  # identity code: (establishment, fingerprint)
    fp: np.ndarray  # fingerprint code (position in ``fingerprints``)
    scope_next: np.ndarray  # host in the perimeter of the next kept audit
    scope_prev: np.ndarray  # host in the perimeter of the previous kept audit
    per_audit: np.ndarray  # perimeter (audit, host) pairs: audit position
    per_host: np.ndarray  # ... and host code
    from_hosts_table: np.ndarray  # bool per audit: perimeter read from hosts.csv
    fingerprints: pd.Index
    hosts: pd.Index


def _sorted_contains(sorted_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, query)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return (sorted_keys[pos] == query) if len(sorted_keys) else np.zeros(len(query), dtype=bool)


def encode(
    findings: pd.DataFrame, audits: pd.DataFrame, *, hosts: pd.DataFrame | None, min_days: int
) -> Encoded:
    """Encode findings of kept audits, deduplicated by (audit, fingerprint), sorted by (identity, rank).

    The perimeter of an audit is its rows in ``hosts`` (when that table has any row for it) united with
    the hosts of its findings (a host with a finding was scanned). Identity is (establishment,
    fingerprint), so that a fingerprint reused by two establishments never links them.
    """
    require_columns(findings, _FINDINGS_REQUIRED, table="findings")
    ordered = order_audits(audits, min_days=min_days)
    audit_index = pd.Index(ordered[Audits.audit_id])
    audit = codes_in(findings[Findings.audit_id], audit_index)
    if (audit < 0).any():
        unknown = pd.unique(findings[Findings.audit_id].to_numpy()[audit < 0])[:5]
        raise ValueError(f"findings: audit_id not in audits: {list(unknown)}")
    host, host_index = factorize(findings[Findings.host])
    ident, fp_index = factorize(findings[FINGERPRINT])
    if (host < 0).any() or (ident < 0).any():  # factorize codes missing values as -1
        raise ValueError("findings: fingerprint and host must not be missing")

    n_audits = len(ordered)
    est_of_audit = ordered["est"].to_numpy()
    rank_of_audit = ordered["rank"].to_numpy()
    kept_audit = ordered["kept"].to_numpy()

    # perimeter: hosts table rows (new host names appended to the host index) + finding hosts
    from_table = np.zeros(n_audits, dtype=bool)
    per_a, per_h = audit, host
    if hosts is not None and len(hosts):
        require_columns(hosts, (Hosts.audit_id, Hosts.host), table="hosts")
        ha = codes_in(hosts[Hosts.audit_id], audit_index)
        if (ha < 0).any():
            unknown = pd.unique(hosts[Hosts.audit_id].to_numpy()[ha < 0])[:5]
            raise ValueError(f"hosts: audit_id not in audits: {list(unknown)}")
        hh = host_index.get_indexer(hosts[Hosts.host])
        if (hh < 0).any():
            extra, extra_index = pd.factorize(hosts[Hosts.host].to_numpy()[hh < 0])
            hh[hh < 0] = extra + len(host_index)
            host_index = host_index.append(pd.Index(extra_index))
        from_table[ha] = True
        per_a, per_h = np.concatenate([ha, audit]), np.concatenate([hh, host])
    n_hosts = max(len(host_index), 1)
    per_key = sorted_unique(per_a.astype(np.int64) * n_hosts + per_h)
    per_audit, per_host = per_key // n_hosts, per_key % n_hosts

    # findings of kept audits, sorted by (establishment, fingerprint, rank), deduplicated
    keep = kept_audit[audit]
    rows = np.flatnonzero(keep)
    a, h, f = audit[rows], host[rows], ident[rows]
    n_fp = max(len(fp_index), 1)
    n_rank = int(rank_of_audit.max()) + 1 if n_audits else 1
    key = est_of_audit[a].astype(np.int64) * n_fp + f
    if (est_of_audit.max(initial=0) + 1) * n_fp * n_rank >= 2**62:  # pragma: no cover - astronomically large
        order = np.lexsort((rank_of_audit[a], key))
    else:
        order = np.argsort(key * n_rank + rank_of_audit[a])
    rows, a, h, f, key = rows[order], a[order], h[order], f[order], key[order]
    dup = np.zeros(len(rows), dtype=bool)
    dup[1:] = (key[1:] == key[:-1]) & (a[1:] == a[:-1])
    rows, a, h, f, key = rows[~dup], a[~dup], h[~dup], f[~dup], key[~dup]

    nxt = ordered["next_kept"].to_numpy()[a]
    prv = ordered["prev_kept"].to_numpy()[a]
    scope_next = (nxt >= 0) & _sorted_contains(per_key, np.maximum(nxt, 0) * n_hosts + h)
    scope_prev = (prv >= 0) & _sorted_contains(per_key, np.maximum(prv, 0) * n_hosts + h)
    return Encoded(
        audits=ordered,
        row=rows,
        audit=a,
        host=h,
        ident=key,
        fp=f,
        scope_next=scope_next,
        scope_prev=scope_prev,
        per_audit=per_audit,
        per_host=per_host,
        from_hosts_table=from_table,
        fingerprints=fp_index,
        hosts=host_index,
    )


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int array (hash-based ``pd.unique``, then sort the few left)."""
    return np.sort(pd.unique(values))


def categorical(codes: np.ndarray, categories) -> pd.Categorical:
    """Categorical from codes and a short list of distinct categories (statuses)."""
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(categories)), validate=False)


def group_starts(key: np.ndarray) -> np.ndarray:
    """For each row of an array sorted by ``key``, the position of the first row of its group."""
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    return np.maximum.accumulate(np.where(start, np.arange(len(key)), 0))


def count_before_in_group(flag: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Number of earlier rows of the same group (array sorted by ``key``) where ``flag`` is true."""
    excl = np.cumsum(flag) - flag
    return excl - excl[group_starts(key)]
