"""Finding-by-finding matching of consecutive audits: new, persistent, fixed, reopened.

What a status means is here (:func:`match_lifecycle`); how the events are found on integer codes, with
no join and no loop over findings, is :mod:`cyberobs_lib.kernels.matching` (beside its pandas
reference)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cyberobs_lib.kernels import matching as chains
from cyberobs_lib.lifecycle._encode import (
    FINDINGS_REQUIRED,
    FINGERPRINT,
    SOURCE_FINDINGS,
    SOURCE_HOSTS,
    audit_codes,
    categorical,
    encode,
    encode_codes,
    factorize,
    hosts_audit_codes,
    require_columns,
)
from cyberobs_lib.lifecycle._linear import counting_argsort, factorize_text_hashed
from cyberobs_lib.lifecycle.sequence import DATE_FROM, DATE_TO, PAIR_RANK, pairs_from_ordered
from cyberobs_lib.schema import LIFECYCLE_COLUMNS, Audits, Establishments, Findings, Hosts

(
    ESTABLISHMENT,
    FAMILY,
    AUDIT_FROM,
    AUDIT_TO,
    DAYS,
    N_NEW,
    N_PERSISTENT,
    N_FIXED,
    N_REOPENED,
    COMMON_HOSTS,
    SCOPE_DRIFT,
) = LIFECYCLE_COLUMNS

#: Findings per block of establishments in :func:`match_lifecycle` (a block's hash tables and sorts
#: stay in the processor cache) ...
_BLOCK_FINDINGS = 1 << 18
#: ... for inputs of more than this many findings; smaller ones are matched in one piece (faster
#: below: the blocks' own work, coding the audits and checking fingerprints across blocks, is saved).
_BLOCKS_FROM = 1 << 21

#: Event statuses, in code order. The last two are perimeter drift, never remediation.
STATUSES = ("new", "persistent", "fixed", "reopened", "out_of_scope_new", "out_of_scope_gone")
STATUS = "status"
PERIMETER_SOURCE = "perimeter_source"
#: Extra columns of ``LifecycleResult.pairs`` after the contract ones (not published as such).
PAIRS_EXTRA_COLUMNS = (
    Audits.finess,
    "hosts_added",
    "hosts_removed",
    "n_out_of_scope_new",
    "n_out_of_scope_gone",
    PERIMETER_SOURCE,
    DATE_FROM,
    DATE_TO,
    PAIR_RANK,
)


@dataclass(frozen=True)
class LifecycleResult:
    """Result of :func:`match_lifecycle`: per-finding ``events`` and the per-pair ``pairs`` table."""

    events: pd.DataFrame
    pairs: pd.DataFrame


def match_lifecycle(
    findings: pd.DataFrame,
    audits: pd.DataFrame,
    *,
    hosts: pd.DataFrame | None = None,
    establishments: pd.DataFrame | None = None,
    min_days: int = 0,
) -> LifecycleResult:
    """Match the findings of consecutive audits of each establishment on their stable identity.

    Parameters
    ----------
    findings : DataFrame
        Canonical findings: ``audit_id``, ``host``, ``fingerprint`` (stable identity of
        (establishment, host, port, protocol, vulnerability key) from ``normalize_findings``);
        ``severity`` and ``category`` are carried into the events when present. Duplicate
        (audit_id, fingerprint) rows count once.
    audits : DataFrame
        ``audit_id``, ``finess``, ``audit_date``.
    hosts : DataFrame or None, keyword-only
        The perimeter (``audit_id``, ``host``: every host scanned, with or without findings). ``None``
        or empty: the perimeter of an audit is the set of hosts with at least one finding.
    establishments : DataFrame or None, keyword-only
        ``finess``, ``family``; gives the ``family`` column (NA when absent).
    min_days : int, keyword-only
        Audits closer than this to the previous kept audit are skipped (see :func:`audit_sequence`);
        their findings are not used.

    Returns
    -------
    LifecycleResult
        ``events``: one row per (finding identity, audit pair) where something is said about it:
        ``finess``, ``audit_from``, ``audit_to``, ``fingerprint``, ``host``, ``status`` (one of
        ``new``, ``persistent``, ``fixed``, ``reopened``, ``out_of_scope_new``,
        ``out_of_scope_gone``), and ``severity``/``category`` when the findings have them (from the
        ``audit_from`` row for persistent, fixed and out_of_scope_gone, from the ``audit_to`` row for
        new, reopened and out_of_scope_new). ``finess``,
        ``audit_from``, ``audit_to`` and ``status`` are categorical. Order: by identity, then audit.

        ``pairs``: the ``lifecycle.csv`` table, one row per pair of consecutive kept audits:
        ``establishment`` (the raw FINESS: the caller pseudonymizes it before publishing),
        ``family``, ``audit_from``, ``audit_to``, ``days``, ``n_new``, ``n_persistent``,
        ``n_fixed``, ``n_reopened``, ``common_hosts`` (hosts in both perimeters), ``scope_drift``;
        then ``finess`` (raw, not for publication), ``hosts_added``, ``hosts_removed``,
        ``n_out_of_scope_new``, ``n_out_of_scope_gone``, ``perimeter_source`` (``"hosts.csv"`` when
        both perimeters come from the hosts table, else ``"findings"``), ``date_from``, ``date_to``,
        ``pair_rank``.

    Notes
    -----
    Only hosts in both perimeters are compared. For a pair (A, B) of consecutive kept audits and a
    finding identity *f* on host *h*:

    * *persistent*: *f* in A and in B;
    * *fixed*: *f* in A, not in B, and *h* in the perimeter of B (scanned, finding gone);
    * *new*: *f* in B, not in A, *h* in the perimeter of A, and *f* never *fixed* before;
    * *reopened*: as *new*, but *f* was *fixed* at an earlier pair of the establishment;
    * *out_of_scope_gone*: *f* in A, *h* not in the perimeter of B (host left: not a fix);
    * *out_of_scope_new*: *f* in B, *h* not in the perimeter of A (host added: not new).

    ``scope_drift = (hosts_added + hosts_removed) / |perimeter A ∪ perimeter B|`` (0: same
    perimeter; 1: disjoint; NaN when the union is empty). When a perimeter comes from the findings
    (no hosts table for that audit), drift cannot be told apart from remediation: ``scope_drift`` is
    NaN (unknown, not 0), and a host whose every finding was fixed leaves the derived perimeter, so
    its fixes count as ``out_of_scope_gone`` (a conservative under-count of fixes). With a hosts
    table, a host with findings is always part of its audit's perimeter even if the table misses it.

    Vectorized: identities are integer-coded and sorted by (identity, audit rank) once, so "same
    finding at the next audit" is the next array element; perimeter membership is a binary search on
    sorted (audit, host) codes. No join over strings, no loop over findings.

    References
    ----------
    CISA Cyber Hygiene: new / mitigated / re-detected vulnerabilities since the last report, identity
    (ip, port, protocol, source, plugin id). DefectDojo re-import: New / Closed / Reactivated /
    Untouched.

    Examples
    --------
    >>> audits = pd.DataFrame({"audit_id": ["a1", "a2"], "finess": "750000001",
    ...     "audit_date": pd.to_datetime(["2024-01-01", "2024-07-01"])})
    >>> hosts = pd.DataFrame({"audit_id": ["a1", "a1", "a2", "a2"], "host": ["h1", "h2", "h1", "h3"]})
    >>> findings = pd.DataFrame({"audit_id": ["a1", "a1", "a1", "a2", "a2"],
    ...     "host": ["h1", "h1", "h2", "h1", "h3"], "fingerprint": ["p", "q", "r", "p", "s"]})
    >>> res = match_lifecycle(findings, audits, hosts=hosts)
    >>> res.events[["fingerprint", "status"]]
      fingerprint             status
    0           p         persistent
    1           q              fixed
    2           r  out_of_scope_gone
    3           s   out_of_scope_new
    >>> res.pairs[["n_new", "n_persistent", "n_fixed", "common_hosts", "scope_drift"]]
       n_new  n_persistent  n_fixed  common_hosts  scope_drift
    0      0             1        1             1     0.666667
    """
    blocked = _match_blocked(findings, audits, hosts=hosts, min_days=min_days)
    if blocked is not None:
        ordered, (pos_from, pos_to, st, fingerprint, host, rows), per_audit = blocked
    else:
        enc = encode(findings, audits, hosts=hosts, min_days=min_days)
        ordered = enc.audits
        idx, st, pos_from, pos_to = _event_arrays(enc)
        fingerprint = enc.fingerprints.to_numpy()[enc.fp[idx]]
        host = enc.hosts.to_numpy()[enc.host[idx]]
        rows = enc.row[idx]
        per_audit = _per_audit(enc, pos_from, st)

    # audits and establishments as categoricals (few categories); fingerprint and host as object
    # arrays sharing the input's string objects: a pointer take, where a categorical of millions of
    # categories would cost seconds of pandas' uniqueness check
    audit_ids = ordered[Audits.audit_id]
    events = {
        Audits.finess: categorical(
            ordered["est"].to_numpy()[pos_to], ordered[Audits.finess].drop_duplicates()
        ),
        AUDIT_FROM: categorical(pos_from, audit_ids),
        AUDIT_TO: categorical(pos_to, audit_ids),
        FINGERPRINT: fingerprint,
        Findings.host: host,
        STATUS: categorical(st, STATUSES),
    }
    for col in (Findings.severity, Findings.category):
        if col in findings.columns:
            # the event rows of the column, then as NumPy (a categorical: only those rows become objects)
            events[col] = findings[col].array.take(rows).to_numpy()
    events = pd.DataFrame(events, copy=False)  # no copy into one block of the object columns

    pairs = _pairs_table(ordered, *per_audit, establishments)
    return LifecycleResult(events=events, pairs=pairs)


def _event_arrays(enc):
    """Events of an encoding: row of each event in ``enc``, status code, audit positions from/to.

    A finding identity is an item of :mod:`cyberobs_lib.kernels.matching`, an audit a position, a host
    in the perimeter of an audit watched there: the kernel's event kinds are the :data:`STATUSES`, in
    the same order."""
    ordered = enc.audits
    return chains.step_events(
        enc.ident,
        enc.audit,
        ordered["rank"].to_numpy(),
        ordered["prev_kept"].to_numpy(),
        ordered["next_kept"].to_numpy(),
        enc.scope_next,
        enc.scope_prev,
    )


def _per_audit(enc, pos_from: np.ndarray, st: np.ndarray):
    """Per audit of ``enc.audits``: event counts by status, perimeter size, hosts also in the next
    kept audit's perimeter, perimeter from the hosts table."""
    n_audits = len(enc.audits)
    counts = chains.count_table(pos_from, st, (n_audits, len(STATUSES)))
    size = np.bincount(enc.per_audit, minlength=n_audits)
    common_all = np.bincount(enc.per_audit[enc.per_in_next], minlength=n_audits)
    return counts, size, common_all, enc.from_hosts_table


def _block_of_rows(est: np.ndarray, n_est: int) -> tuple[np.ndarray, int]:
    """Block of each establishment: contiguous ranges of establishment codes of about
    ``_BLOCK_FINDINGS`` rows (``est``: the establishment code of each finding)."""
    return chains.blocks_of_groups(est, n_est, _BLOCK_FINDINGS)


def _match_blocked(findings, audits, *, hosts, min_days):
    """Events arrays and per-audit aggregates computed block of establishments by block, or None.

    The establishments, in the order of the output, are cut into contiguous ranges of about
    ``_BLOCK_FINDINGS`` findings (a counting sort of the rows by block); each block is encoded and
    matched on its own (its hash tables and sorts stay in the processor cache) and the blocks'
    events concatenated: the global order, with no global sort. Identical to the unblocked path when
    no fingerprint occurs in two blocks: the fingerprint codes of a block are then in the same
    relative order as the global ones (order of first appearance). None (use the unblocked path)
    for at most ``_BLOCKS_FROM`` findings or a single block, a fingerprint column that is neither
    text nor categorical, text that cannot be hashed, a fingerprint found in two blocks (or a 64-bit
    hash equal across blocks).
    """
    require_columns(findings, FINDINGS_REQUIRED, table="findings")
    if len(findings) <= max(_BLOCKS_FROM, _BLOCK_FINDINGS):
        return None
    fp_col, host_col = findings[FINGERPRINT], findings[Findings.host]
    fp_categorical = isinstance(fp_col.dtype, pd.CategoricalDtype)
    if not fp_categorical and fp_col.dtype != object:
        return None
    ordered, audit_index, audit = audit_codes(findings, audits, min_days=min_days)
    est_of_audit = ordered["est"].to_numpy()
    n_est = int(est_of_audit.max()) + 1 if len(ordered) else 0
    block_of_est, n_blocks = _block_of_rows(est_of_audit[audit], n_est)
    if n_blocks < 2 or n_blocks >= 2**15:
        return None
    ha, hosts_error = None, None
    if hosts is not None and len(hosts):
        try:
            ha = hosts_audit_codes(hosts, audit_index)
        except ValueError as err:  # raised after the findings' own checks, as the unblocked path does
            hosts_error = err

    block_of_audit = block_of_est[est_of_audit].astype(np.int16)
    block_of_row = block_of_audit[audit]
    order = counting_argsort(block_of_row, n_blocks)  # stable: input order within a block
    bounds = np.searchsorted(block_of_row[order], np.arange(n_blocks + 1))
    del block_of_row
    audit_bounds = np.searchsorted(block_of_audit, np.arange(n_blocks + 1))  # audits are in est order
    if ha is not None:
        h_order = counting_argsort(block_of_audit[ha], n_blocks)
        h_bounds = np.searchsorted(block_of_audit[ha][h_order], np.arange(n_blocks + 1))
        hosts_host = hosts[Hosts.host]
    fp_values = fp_col.cat.codes.to_numpy() if fp_categorical else fp_col.to_numpy()
    fp_categories = pd.Index(fp_col.cat.categories) if fp_categorical else None
    host_values = host_col.array
    # the kept-audit chain of a block: the global one, positions counted from the block's first audit
    chain = ordered[["est", "rank", "kept", "prev_kept", "next_kept"]]

    parts, keys = [], []
    n_audits = len(ordered)
    counts = np.zeros((n_audits, len(STATUSES)), dtype=np.int64)
    size = np.zeros(n_audits, dtype=np.int64)
    common_all = np.zeros(n_audits, dtype=np.int64)
    from_table = np.zeros(n_audits, dtype=bool)
    missing = False
    for b in range(n_blocks):
        lo, hi = audit_bounds[b], audit_bounds[b + 1]
        rows = order[bounds[b] : bounds[b + 1]]
        sub = chain.iloc[lo:hi].reset_index(drop=True)
        sub["est"] -= est_of_audit[lo] if hi > lo else 0
        for col in ("prev_kept", "next_kept"):
            sub[col] = np.where(sub[col] >= 0, sub[col] - lo, -1)
        if fp_categorical:
            fp = fp_values[rows].astype(np.int64)
            fp_index = fp_categories
            keys.append(pd.unique(fp).astype(np.uint64))
        else:
            done = factorize_text_hashed(fp_values[rows])
            if done is None:
                return None
            fp, fp_index, hashes = done
            keys.append(hashes)
        host, host_index = factorize(pd.Series(host_values.take(rows), copy=False))
        if (host < 0).any() or (fp < 0).any():
            missing = True
            break
        if ha is None:
            b_ha = b_host = None
        else:
            h_rows = h_order[h_bounds[b] : h_bounds[b + 1]]
            b_ha, b_host = ha[h_rows] - lo, hosts_host.iloc[h_rows]
        enc = encode_codes(sub, audit[rows] - lo, host, host_index, fp, fp_index, b_ha, b_host)
        idx, st, pos_from, pos_to = _event_arrays(enc)
        c, s, common, ft = _per_audit(enc, pos_from, st)
        counts[lo:hi], size[lo:hi], common_all[lo:hi], from_table[lo:hi] = c, s, common, ft
        pos_from += lo
        pos_to += lo
        fp_of_event, host_of_event = enc.fp[idx], enc.host[idx]
        rows = rows[enc.row[idx]]
        parts.append((pos_from, pos_to, st, rows, fp_of_event, enc.fingerprints, host_of_event, enc.hosts))
    if missing:  # factorize codes missing values as -1
        raise ValueError("findings: fingerprint and host must not be missing")
    if hosts_error is not None:
        raise hosts_error
    keys = np.sort(np.concatenate(keys))
    if (keys[1:] == keys[:-1]).any():  # a fingerprint (or a hash) in two blocks: not provably the same
        return None
    arrays = [np.concatenate([p[k] for p in parts]) for k in range(4)]
    # the text columns: taken from each block's uniques straight into the output (one pointer copy)
    for codes_at, index_at in ((4, 5), (6, 7)):
        arrays.append(
            chains.take_concat([p[codes_at] for p in parts], [p[index_at].to_numpy() for p in parts])
        )
    pos_from, pos_to, st, rows, fingerprint, host = arrays
    return ordered, (pos_from, pos_to, st, fingerprint, host, rows), (counts, size, common_all, from_table)


def _pairs_table(ordered, counts, size, common_all, from_hosts_table, establishments) -> pd.DataFrame:
    base = pairs_from_ordered(ordered)
    f, t = base["from_pos"].to_numpy(), base["to_pos"].to_numpy()
    common = common_all[f]
    removed = size[f] - common
    added = size[t] - common
    union = common + added + removed
    from_table = from_hosts_table[f] & from_hosts_table[t]
    with np.errstate(invalid="ignore", divide="ignore"):
        drift = np.where(from_table & (union > 0), (added + removed) / np.maximum(union, 1), np.nan)
    family = pd.Series(pd.NA, index=base.index, dtype="object")
    if establishments is not None and len(establishments):
        fam = establishments.drop_duplicates(Establishments.finess).set_index(Establishments.finess)
        family = base[Audits.finess].map(fam[Establishments.family])
    c = counts[f]
    out = pd.DataFrame(
        {
            ESTABLISHMENT: base[Audits.finess].to_numpy(),
            FAMILY: family.to_numpy(),
            AUDIT_FROM: base[AUDIT_FROM].to_numpy(),
            AUDIT_TO: base[AUDIT_TO].to_numpy(),
            DAYS: base[DAYS].to_numpy(),
            N_NEW: c[:, 0],
            N_PERSISTENT: c[:, 1],
            N_FIXED: c[:, 2],
            N_REOPENED: c[:, 3],
            COMMON_HOSTS: common,
            SCOPE_DRIFT: drift,
            Audits.finess: base[Audits.finess].to_numpy(),
            "hosts_added": added,
            "hosts_removed": removed,
            "n_out_of_scope_new": c[:, 4],
            "n_out_of_scope_gone": c[:, 5],
            PERIMETER_SOURCE: np.where(from_table, SOURCE_HOSTS, SOURCE_FINDINGS),
            DATE_FROM: base[DATE_FROM].to_numpy(),
            DATE_TO: base[DATE_TO].to_numpy(),
            PAIR_RANK: base[PAIR_RANK].to_numpy(),
        }
    )
    return out
