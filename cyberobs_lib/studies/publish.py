"""Disclosure control applied by the studies before a table leaves the library for a published report.

* :func:`study_key` — the pseudonymisation key of a study: the key that is set (argument, environment or
  key file), else in demo mode only (``CYBEROBS_DEMO=1``, set by ``cyberobs run --demo``) the public demo
  key, else an error that says how to set one. Nothing is inferred from the dataset folder;
* :func:`pseudonymize_establishments` — FINESS and audit ids → keyed pseudonyms (same key, distinct
  prefixes ``E`` and ``A``) in the named columns;
* :func:`suppress_small_groups` — blank every row of a table about a group of fewer than ``min_cell``
  establishments, marked ``suppressed = True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cyberobs_lib.config import DEFAULT_MIN_CELL


def study_key(data: object = None) -> bytes:
    """The keyed-pseudonym secret of a study: ``load_key(demo=CYBEROBS_DEMO == "1")``.

    Parameters
    ----------
    data : object, optional
        The study data; not read (kept for the notebooks' calls). The key never depends on the dataset:
        a key that is set is always used, and the public demo key only in demo mode (INTERFACES §1).
    """
    from cyberobs_lib.disclosure import demo_mode, load_key

    return load_key(demo=demo_mode())


#: Join keys pseudonymised with the study key, and the prefix that tells their kind apart.
JOIN_KEY_PREFIXES = {"audit_id": "A", "audit_from": "A", "audit_to": "A", "host": "H", "scan_id": "S"}


def pseudonymize_establishments(
    table: pd.DataFrame,
    data: object = None,
    *,
    columns: Sequence[str] = ("establishment",),
    published: bool = True,
    join_keys: Sequence[str] = tuple(JOIN_KEY_PREFIXES),
) -> pd.DataFrame:
    """Replace FINESS numbers and join keys (audit ids, hosts) by keyed pseudonyms.

    Parameters
    ----------
    table : DataFrame
        Not modified.
    data : object, optional
        Unused (see :func:`study_key`).
    columns : sequence of str
        Columns holding FINESS numbers (prefix ``E``).
    published : bool
        False: the table is returned unchanged (confidential reports).
    join_keys : sequence of str
        Columns holding other join keys, pseudonymised with the same key and the prefix of
        :data:`JOIN_KEY_PREFIXES` (``A`` audit ids, ``H`` hosts, ``S`` scan ids): a raw audit id such as
        ``A000119-01`` or ``AUD014053177`` names an establishment and links releases (issue 16).

    Returns
    -------
    DataFrame
        The same rows; raw ``finess``, ``finess_ej`` and ``name`` columns not listed in ``columns`` dropped.
    """
    if not published:
        return table
    from cyberobs_lib.disclosure import pseudonymize

    key = study_key(data)
    out = table.copy()
    for col in columns:
        if col in out.columns:
            out[col] = pseudonymize(out[col].astype("string"), key=key)
    for col in join_keys:
        if col in out.columns and col not in columns:
            prefix = JOIN_KEY_PREFIXES.get(col, "K")
            out[col] = pseudonymize(out[col].astype("string"), key=key, prefix=prefix, length=12)
    return out.drop(
        columns=[c for c in ("finess", "finess_ej", "name") if c in out.columns and c not in columns]
    )


def suppress_small_groups(
    table: pd.DataFrame,
    n_establishments: pd.Series,
    *,
    group_col: str = "group",
    min_cell: int = DEFAULT_MIN_CELL,
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """Blank the values of rows whose group has fewer than ``min_cell`` establishments.

    Parameters
    ----------
    table
        A result table with a group column.
    n_establishments
        Number of distinct establishments behind each group (index = group).
    keep
        Columns never blanked (keys, labels); every other column is set to missing on suppressed rows.

    Returns
    -------
    DataFrame
        A copy with ``n_establishments`` and ``suppressed`` columns.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["A", "B"], "value": [1.0, 2.0]})
    >>> suppress_small_groups(t, pd.Series({"A": 10, "B": 2}), keep=("group",))["value"].tolist()
    [1.0, nan]
    """
    out = table.copy()
    n = out[group_col].map(n_establishments).astype("Int64")
    small = (n < min_cell).fillna(True).to_numpy(dtype=bool)
    keys = set(keep) | {group_col}
    for col in out.columns:
        if col not in keys and small.any():
            out[col] = (
                out[col].astype(object).where(~small, None)
                if out[col].dtype == object
                else out[col].where(~small)
            )
    out["n_establishments"] = n
    out["suppressed"] = small
    return out
