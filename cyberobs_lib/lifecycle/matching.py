"""Finding-by-finding matching of consecutive audits: new, persistent, fixed, reopened."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cyberobs_lib.lifecycle._encode import (
    FINGERPRINT,
    SOURCE_FINDINGS,
    SOURCE_HOSTS,
    categorical,
    count_before_in_group,
    encode,
)
from cyberobs_lib.lifecycle.sequence import DATE_FROM, DATE_TO, PAIR_RANK, pairs_from_ordered
from cyberobs_lib.schema import LIFECYCLE_COLUMNS, Audits, Establishments, Findings

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
        ``audit_to`` row, or the ``audit_from`` row for fixed/out_of_scope_gone). ``finess``,
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
    enc = encode(findings, audits, hosts=hosts, min_days=min_days)
    ordered = enc.audits
    next_kept = ordered["next_kept"].to_numpy()
    prev_kept = ordered["prev_kept"].to_numpy()
    rank = ordered["rank"].to_numpy()
    key, a = enc.ident, enc.audit
    r = rank[a]

    cont = np.zeros(len(a), dtype=bool)  # row i is seen again at the next kept audit
    cont[:-1] = (key[1:] == key[:-1]) & (r[1:] == r[:-1] + 1)
    came = np.zeros(len(a), dtype=bool)  # row i was seen at the previous kept audit
    came[1:] = cont[:-1]
    leaves = (next_kept[a] >= 0) & ~cont
    fixed = leaves & enc.scope_next
    gone = leaves & ~enc.scope_next
    arrives = (prev_kept[a] >= 0) & ~came
    arrived = arrives & enc.scope_prev
    reopened = arrived & (count_before_in_group(fixed, key) > 0)
    new = arrived & ~reopened
    oos_new = arrives & ~enc.scope_prev

    # events: "from" side (persistent, fixed, gone) and "to" side (new, reopened, oos_new); a row can
    # carry both: its to-side event (about the pair ending at its audit) comes first. Merged by
    # position (a prefix sum), not by a sort.
    side_from = cont | fixed | gone
    side_to = new | reopened | oos_new
    n_ev = side_to.astype(np.int64) + side_from
    at = np.cumsum(n_ev) - n_ev  # first event position of each row
    idx_f, idx_t = np.flatnonzero(side_from), np.flatnonzero(side_to)
    at_f, at_t = at[idx_f] + side_to[idx_f], at[idx_t]
    idx = np.empty(len(idx_f) + len(idx_t), dtype=np.int64)
    st = np.empty(len(idx), dtype=np.int8)
    pos_from = np.empty(len(idx), dtype=np.int64)
    pos_to = np.empty(len(idx), dtype=np.int64)
    idx[at_f], idx[at_t] = idx_f, idx_t
    st[at_f] = np.select([cont[idx_f], fixed[idx_f]], [1, 2], 5)
    st[at_t] = np.select([new[idx_t], reopened[idx_t]], [0, 3], 4)
    pos_from[at_f], pos_from[at_t] = a[idx_f], prev_kept[a[idx_t]]
    pos_to[at_f], pos_to[at_t] = next_kept[a[idx_f]], a[idx_t]

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
        FINGERPRINT: enc.fingerprints.to_numpy()[enc.fp[idx]],
        Findings.host: enc.hosts.to_numpy()[enc.host[idx]],
        STATUS: categorical(st, STATUSES),
    }
    rows = enc.row[idx]
    for col in (Findings.severity, Findings.category):
        if col in findings.columns:
            # the event rows of the column, then as NumPy (a categorical: only those rows become objects)
            events[col] = findings[col].array.take(rows).to_numpy()
    events = pd.DataFrame(events, copy=False)  # no copy into one block of the object columns

    pairs = _pairs_table(enc, pos_from, st, establishments)
    return LifecycleResult(events=events, pairs=pairs)


def _pairs_table(enc, pos_from: np.ndarray, st: np.ndarray, establishments) -> pd.DataFrame:
    ordered = enc.audits
    n_audits = len(ordered)
    counts = np.bincount(pos_from * len(STATUSES) + st, minlength=n_audits * len(STATUSES))
    counts = counts.reshape(n_audits, len(STATUSES))

    in_next = enc.per_in_next
    size = np.bincount(enc.per_audit, minlength=n_audits)
    common_all = np.bincount(enc.per_audit[in_next], minlength=n_audits)

    base = pairs_from_ordered(ordered)
    f, t = base["from_pos"].to_numpy(), base["to_pos"].to_numpy()
    common = common_all[f]
    removed = size[f] - common
    added = size[t] - common
    union = common + added + removed
    from_table = enc.from_hosts_table[f] & enc.from_hosts_table[t]
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
