"""Disclosure control applied by the studies before a table leaves the library for a published report.

* :func:`study_key` — the pseudonymisation key of a dataset: the documented demo key for the synthetic demo
  data (recognised by its ``truth.json``), otherwise the secret key (environment or key file), or an error
  that says how to set one;
* :func:`pseudonymize_establishments` — FINESS → keyed pseudonym in the named columns;
* :func:`suppress_small_groups` — blank every row of a table about a group of fewer than ``min_cell``
  establishments, marked ``suppressed = True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cyberobs_lib.config import DEFAULT_MIN_CELL


def is_demo(data) -> bool:
    """True for the synthetic demo data (its dataset folder holds ``truth.json``)."""
    return "truth.json" in (getattr(data, "summary", {}) or {}).get("inputs", {})


def study_key(data) -> bytes:
    """The keyed-pseudonym secret for this dataset (see :func:`cyberobs_lib.disclosure.load_key`)."""
    from cyberobs_lib.disclosure import load_key

    return load_key(dataset_is_demo=is_demo(data))


def pseudonymize_establishments(
    table: pd.DataFrame, data, *, columns: Sequence[str] = ("establishment",), published: bool = True
) -> pd.DataFrame:
    """Replace FINESS numbers by keyed pseudonyms in ``columns`` (drop a raw ``finess`` column too)."""
    if not published:
        return table
    from cyberobs_lib.disclosure import pseudonymize

    key = study_key(data)
    out = table.copy()
    for col in columns:
        if col in out.columns:
            out[col] = pseudonymize(out[col].astype("string"), key=key)
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
