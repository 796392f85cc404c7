"""Shared preparation for lifecycle matching: input checks, audit ordering, integer encoding.

Everything downstream works on integer NumPy arrays (audit, host and identity codes) sorted once by
(identity, audit rank), so that "the same finding at the next audit" is the next row of the array and
the whole matching is a handful of vectorized comparisons, with no join over strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cyberobs_lib.lifecycle._linear import counting_argsort, factorize_text
from cyberobs_lib.schema import Audits, Findings, Hosts

#: Stable finding identity computed upstream by ``normalize_findings`` (not yet in ``schema``).
FINGERPRINT = "fingerprint"
#: KEV flag computed upstream by enrichment (not yet in ``schema``); may be absent.
KNOWN_EXPLOITED = "known_exploited"

#: Where the perimeter of an audit comes from (``perimeter_source`` column).
SOURCE_HOSTS = "hosts.csv"
SOURCE_FINDINGS = "findings"

FINDINGS_REQUIRED = (Findings.audit_id, Findings.host, FINGERPRINT)
_AUDITS_REQUIRED = (Audits.audit_id, Audits.finess, Audits.audit_date)


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], *, table: str) -> None:
    """Raise ``ValueError`` naming the table and every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing required column(s) {missing}; has {list(frame.columns)}")


def codes_in(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Positions of ``values`` in ``index`` (-1 when absent), fast path for categoricals.

    Text is factorized first and only its distinct values are looked up (``index.get_indexer`` on
    millions of strings hashes every one of them).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = index.get_indexer(values.cat.categories)
        codes = values.cat.codes.to_numpy()
        out = np.where(codes >= 0, lookup[codes], -1)
        return out.astype(np.int64, copy=False)
    if len(values) < 4 * len(index) or values.dtype.kind in "iufcbmM":
        return index.get_indexer(values).astype(np.int64, copy=False)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    out = index.get_indexer(uniques).astype(np.int64, copy=False)[codes]
    missing = codes < 0
    if missing.any():  # a missing value matches a missing value of the index, as get_indexer does
        out[missing] = index.get_indexer(values[missing])
    return out


def factorize(values: pd.Series, *, many: bool = False) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and uniques of a column (categorical codes reused as they are).

    ``many``: the column has millions of distinct values (fingerprints): text is factorized by
    :func:`~cyberobs_lib.lifecycle._linear.factorize_text` (same codes and uniques as
    ``pd.factorize``, in cache-sized blocks).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64), pd.Index(values.cat.categories)
    if many:
        done = factorize_text(values)
        if done is not None:
            return done
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
    ident: np.ndarray  # identity code: (establishment, fingerprint); equal for equal identities
    fp: np.ndarray  # fingerprint code (position in ``fingerprints``)
    scope_next: np.ndarray  # host in the perimeter of the next kept audit
    scope_prev: np.ndarray  # host in the perimeter of the previous kept audit
    per_row: np.ndarray  # position of the finding's (audit, host) in ``per_audit``/``per_host``
    per_audit: np.ndarray  # perimeter (audit, host) pairs, sorted: audit position
    per_host: np.ndarray  # ... and host code
    per_in_next: np.ndarray  # bool per perimeter pair: host also in the next kept audit's perimeter
    from_hosts_table: np.ndarray  # bool per audit: perimeter read from hosts.csv
    fingerprints: pd.Index
    hosts: pd.Index


def _sorted_contains(sorted_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, query)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return (sorted_keys[pos] == query) if len(sorted_keys) else np.zeros(len(query), dtype=bool)


def _in_neighbour(per_key: np.ndarray, neighbour: np.ndarray, per_host: np.ndarray, n_hosts: int):
    """For each perimeter pair, whether its host is in the perimeter of ``neighbour`` (-1: none)."""
    return (neighbour >= 0) & _sorted_contains(per_key, np.maximum(neighbour, 0) * n_hosts + per_host)


def _identity_order(est: np.ndarray, f: np.ndarray, r: np.ndarray, n_fp: int, n_rank: int):
    """Stable order of rows by (establishment, fingerprint code, rank), identity and fingerprint codes.

    When every fingerprint belongs to one establishment (always so for ``normalize_findings``
    fingerprints, which hash the establishment), the identities are numbered in that order with a
    counting sort of the fingerprints by establishment, and the rows are counting-sorted by identity
    (a second counting sort by rank first only when rows of an identity are not in rank order): linear
    time. Otherwise (a fingerprint reused by two establishments) a comparison sort on the combined key.
    """
    n = len(f)
    est_of_f = np.full(n_fp, -1, dtype=np.int64)
    est_of_f[f] = est
    if n and (est_of_f[f] != est).any():  # a fingerprint in two establishments
        key = est.astype(np.int64) * n_fp + f
        if (int(est.max()) + 1) * n_fp * n_rank >= 2**62:  # pragma: no cover - astronomically large
            order = np.lexsort((r, key))
        else:
            order = np.argsort(key * n_rank + r, kind="stable")
        key = key[order]
        return order, key, key % n_fp
    n_est = int(est.max()) + 1 if n else 0
    f_in_order = counting_argsort(est_of_f, n_est)  # fingerprints by (establishment, code)
    ident_of_f = np.empty(n_fp, dtype=np.int64)
    ident_of_f[f_in_order] = np.arange(n_fp)
    ident = ident_of_f[f]
    order = counting_argsort(ident, n_fp)
    ident_sorted, r_sorted = ident[order], r[order]
    if ((ident_sorted[1:] == ident_sorted[:-1]) & (r_sorted[1:] < r_sorted[:-1])).any():
        by_rank = counting_argsort(r.astype(np.uint16) if n_rank < 2**16 else r, n_rank)
        order = by_rank[counting_argsort(ident[by_rank], n_fp)]
        ident_sorted = ident[order]
    return order, ident_sorted, f_in_order[ident_sorted]


def audit_codes(
    findings: pd.DataFrame, audits: pd.DataFrame, *, min_days: int
) -> tuple[pd.DataFrame, pd.Index, np.ndarray]:
    """The audits in matching order (:func:`order_audits`), their ids as an index, and each finding's
    position among them; ``ValueError`` naming up to five audit ids of findings not in ``audits``."""
    ordered = order_audits(audits, min_days=min_days)
    audit_index = pd.Index(ordered[Audits.audit_id])
    audit = codes_in(findings[Findings.audit_id], audit_index)
    if (audit < 0).any():
        unknown = pd.unique(findings[Findings.audit_id].to_numpy()[audit < 0])[:5]
        raise ValueError(f"findings: audit_id not in audits: {list(unknown)}")
    return ordered, audit_index, audit


def encode(
    findings: pd.DataFrame, audits: pd.DataFrame, *, hosts: pd.DataFrame | None, min_days: int
) -> Encoded:
    """Encode findings of kept audits, deduplicated by (audit, fingerprint), sorted by (identity, rank).

    The perimeter of an audit is its rows in ``hosts`` (when that table has any row for it) united with
    the hosts of its findings (a host with a finding was scanned). Identity is (establishment,
    fingerprint), so that a fingerprint reused by two establishments never links them. Rows are in
    (establishment, fingerprint code, rank) order, ties (duplicate findings) in input order: the first
    of duplicate (audit, fingerprint) rows is kept.

    Every pass over the findings is linear: fingerprints are factorized in cache-sized blocks, the
    perimeter lookups run in input order (rows of an audit together) and the sort is a counting sort.
    """
    require_columns(findings, FINDINGS_REQUIRED, table="findings")
    ordered, audit_index, audit = audit_codes(findings, audits, min_days=min_days)
    host, host_index = factorize(findings[Findings.host])
    fp, fp_index = factorize(findings[FINGERPRINT], many=True)
    if (host < 0).any() or (fp < 0).any():  # factorize codes missing values as -1
        raise ValueError("findings: fingerprint and host must not be missing")
    ha, hosts_host = None, None
    if hosts is not None and len(hosts):
        ha = hosts_audit_codes(hosts, audit_index)
        hosts_host = hosts[Hosts.host]
    return encode_codes(ordered, audit, host, host_index, fp, fp_index, ha, hosts_host)


def hosts_audit_codes(hosts: pd.DataFrame, audit_index: pd.Index) -> np.ndarray:
    """Positions of the hosts table's audits in ``audit_index`` (checked: every one is there)."""
    require_columns(hosts, (Hosts.audit_id, Hosts.host), table="hosts")
    ha = codes_in(hosts[Hosts.audit_id], audit_index)
    if (ha < 0).any():
        unknown = pd.unique(hosts[Hosts.audit_id].to_numpy()[ha < 0])[:5]
        raise ValueError(f"hosts: audit_id not in audits: {list(unknown)}")
    return ha


def encode_codes(ordered, audit, host, host_index, fp, fp_index, ha, hosts_host) -> Encoded:
    """:func:`encode` once the audits are ordered and the findings' columns coded.

    ``audit``: row positions in ``ordered``; ``host``/``fp``: codes in ``host_index``/``fp_index``;
    ``ha``: audit positions of the hosts table rows and ``hosts_host`` their hosts (None: no table).
    """
    n_audits = len(ordered)
    est_of_audit = ordered["est"].to_numpy()
    rank_of_audit = ordered["rank"].to_numpy()
    kept_audit = ordered["kept"].to_numpy()

    # perimeter: hosts table rows (new host names appended to the host index) + finding hosts
    from_table = np.zeros(n_audits, dtype=bool)
    extra_a, extra_h = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if ha is not None:
        hh = host_index.get_indexer(hosts_host)
        if (hh < 0).any():
            extra, extra_index = pd.factorize(hosts_host.to_numpy()[hh < 0])
            hh[hh < 0] = extra + len(host_index)
            host_index = host_index.append(pd.Index(extra_index))
        from_table[ha] = True
        extra_a, extra_h = ha, hh
    n_hosts = max(len(host_index), 1)
    # finding (audit, host) pairs: rows of an audit come together, so drop repeats of the previous
    # row before the hash-based unique
    find_key = audit * n_hosts + host
    repeat = np.zeros(len(find_key), dtype=bool)
    repeat[1:] = find_key[1:] == find_key[:-1]
    per_key = sorted_unique(np.concatenate([extra_a.astype(np.int64) * n_hosts + extra_h, find_key[~repeat]]))
    per_audit, per_host = per_key // n_hosts, per_key % n_hosts
    per_in_next = _in_neighbour(per_key, ordered["next_kept"].to_numpy()[per_audit], per_host, n_hosts)
    per_in_prev = _in_neighbour(per_key, ordered["prev_kept"].to_numpy()[per_audit], per_host, n_hosts)

    # findings of kept audits, sorted by (establishment, fingerprint, rank), deduplicated
    keep = kept_audit[audit]
    if keep.all():
        rows, a, f = np.arange(len(audit)), audit, fp
    else:
        rows = np.flatnonzero(keep)
        a, f, find_key = audit[rows], fp[rows], find_key[rows]
    per_idx = np.searchsorted(per_key, find_key)  # in input order: queries of an audit are together
    n_fp = max(len(fp_index), 1)
    n_rank = int(rank_of_audit.max()) + 1 if n_audits else 1
    order, key, f = _identity_order(est_of_audit[a], f, rank_of_audit[a], n_fp, n_rank)
    rows, per_row = rows[order], per_idx[order]
    a = per_audit[per_row]
    dup = np.zeros(len(rows), dtype=bool)
    dup[1:] = (key[1:] == key[:-1]) & (a[1:] == a[:-1])
    if dup.any():
        rows, a, f, key, per_row = rows[~dup], a[~dup], f[~dup], key[~dup], per_row[~dup]
    return Encoded(
        audits=ordered,
        row=rows,
        audit=a,
        host=per_host[per_row],
        ident=key,
        fp=f,
        scope_next=per_in_next[per_row],
        scope_prev=per_in_prev[per_row],
        per_row=per_row,
        per_audit=per_audit,
        per_host=per_host,
        per_in_next=per_in_next,
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
