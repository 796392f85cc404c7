"""Pairs of audits of one establishment to compare: consecutive, or first against last."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.lifecycle._encode import order_audits
from cyberobs_lib.schema import LIFECYCLE_COLUMNS, Audits

AUDIT_FROM, AUDIT_TO, DAYS = LIFECYCLE_COLUMNS[2], LIFECYCLE_COLUMNS[3], LIFECYCLE_COLUMNS[4]
DATE_FROM, DATE_TO = "date_from", "date_to"
PAIR_RANK, N_SKIPPED = "pair_rank", "n_skipped"
PAIRINGS = ("consecutive", "first_last")
SEQUENCE_COLUMNS = (Audits.finess, AUDIT_FROM, AUDIT_TO, DATE_FROM, DATE_TO, DAYS, PAIR_RANK, N_SKIPPED)


def pairs_from_ordered(ordered: pd.DataFrame) -> pd.DataFrame:
    """Consecutive kept pairs of a frame made by ``order_audits``, with ``from_pos``/``to_pos``."""
    from_pos = np.flatnonzero(ordered["next_kept"].to_numpy() >= 0)
    to_pos = ordered["next_kept"].to_numpy()[from_pos]
    return _pair_frame(
        ordered,
        from_pos,
        to_pos,
        ordered["rank"].to_numpy()[to_pos],
        ordered["n_skipped_before"].to_numpy()[to_pos],
    )


def _pair_frame(ordered: pd.DataFrame, from_pos, to_pos, pair_rank, n_skipped) -> pd.DataFrame:
    ids = ordered[Audits.audit_id].to_numpy()
    dates = ordered[Audits.audit_date].to_numpy()
    days = (dates[to_pos] - dates[from_pos]) // np.timedelta64(1, "D")
    return pd.DataFrame(
        {
            Audits.finess: ordered[Audits.finess].to_numpy()[from_pos],
            AUDIT_FROM: ids[from_pos],
            AUDIT_TO: ids[to_pos],
            DATE_FROM: dates[from_pos],
            DATE_TO: dates[to_pos],
            DAYS: days.astype(np.int64),
            PAIR_RANK: np.asarray(pair_rank, dtype=np.int64),
            N_SKIPPED: np.asarray(n_skipped, dtype=np.int64),
            "from_pos": from_pos,
            "to_pos": to_pos,
        }
    )


def audit_sequence(audits: pd.DataFrame, *, min_days: int = 0, pairing: str = "consecutive") -> pd.DataFrame:
    """Pairs of audits of each establishment to compare, in date order.

    Parameters
    ----------
    audits : DataFrame
        Canonical audits: ``audit_id`` (unique), ``finess``, ``audit_date``.
    min_days : int, keyword-only
        Audits closer than this many days to the previous *kept* audit of the same establishment are
        skipped (a re-scan a few days later is not a follow-up). 0 keeps every audit.
    pairing : {"consecutive", "first_last"}, keyword-only
        ``consecutive``: each kept audit against the next kept one. ``first_last``: the first audit
        against the last one, when they are at least ``min_days`` apart.

    Returns
    -------
    DataFrame
        One row per pair, sorted by (finess, date_from): ``finess``; ``audit_from``, ``audit_to``
        (audit ids); ``date_from``, ``date_to``; ``days`` (whole days between them); ``pair_rank``
        (1 for the first pair of the establishment, 2 for the next...); ``n_skipped`` (audits of the
        establishment strictly between the two that are not compared: skipped by ``min_days`` or, for
        ``first_last``, every intermediate audit). Establishments with fewer than two kept audits
        have no row.

    Notes
    -----
    Audits are ordered by (finess, audit_date, audit_id); ties on the date are broken by audit id, so
    the order is deterministic. Skipping is greedy in date order: the first audit is kept, then each
    audit at least ``min_days`` after the last kept audit is kept. The loop runs over audit *ranks*
    (at most the number of audits of one establishment), never over rows.

    References
    ----------
    CISA Cyber Hygiene reports compare each report with the previous one ("changes since last
    report"); DefectDojo re-imports compare each scan with the previous state.

    Examples
    --------
    >>> audits = pd.DataFrame({"audit_id": ["a1", "a2", "a3"], "finess": "750000001",
    ...     "audit_date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-07-01"])})
    >>> audit_sequence(audits)[["audit_from", "audit_to", "days", "n_skipped"]]
      audit_from audit_to  days  n_skipped
    0         a1       a2     4          0
    1         a2       a3   178          0
    >>> audit_sequence(audits, min_days=30)[["audit_from", "audit_to", "days", "n_skipped"]]
      audit_from audit_to  days  n_skipped
    0         a1       a3   182          1
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    ordered = order_audits(audits, min_days=min_days)
    if pairing == "consecutive":
        frame = pairs_from_ordered(ordered)
    else:
        first = np.flatnonzero(ordered["raw_rank"].to_numpy() == 0)
        last = np.r_[first[1:] - 1, len(ordered) - 1] if len(first) else first
        dates = ordered[Audits.audit_date].to_numpy()
        ok = (last > first) & ((dates[last] - dates[first]) >= np.timedelta64(min_days, "D"))
        first, last = first[ok], last[ok]
        frame = _pair_frame(ordered, first, last, np.ones(len(first)), last - first - 1)
    return frame.drop(columns=["from_pos", "to_pos"]).reset_index(drop=True)
