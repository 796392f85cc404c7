"""Disclosure control applied by the studies before a table leaves the library for a published report.

* :func:`study_key` — the pseudonymisation key of a study: the key that is set (argument, environment or
  key file), else in demo mode only (``CYBEROBS_DEMO=1``, set by ``cyberobs run --demo``) the public demo
  key, else an error that says how to set one. Nothing is inferred from the dataset folder;
* :func:`pseudonymize_establishments` — FINESS and audit ids → keyed pseudonyms (same key, distinct
  prefixes ``E`` and ``A``) in the named columns;
* :func:`summarise_by_group` — a per-establishment table summed per family, the form a published run shows
  (small cells and their complements are then hidden by :func:`cyberobs_lib.report.publish_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cyberobs_lib.disclosure import demo_mode, load_key, pseudonymize
from cyberobs_lib.stats import median_of_known
from cyberobs_lib.studies.indicators import select_audits


def study_key(data: object = None) -> bytes:
    """The keyed-pseudonym secret of a study: ``load_key(demo=CYBEROBS_DEMO == "1")``.

    Parameters
    ----------
    data : object, optional
        The study data; not read (kept for the notebooks' calls). The key never depends on the dataset:
        a key that is set is always used, and the public demo key only in demo mode (INTERFACES §1).
    """
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


def summarise_by_group(
    table: pd.DataFrame,
    *,
    by: str = "family",
    unit: str = "establishment",
    sums: Sequence[str] = ("n_new", "n_persistent", "n_fixed", "n_reopened", "common_hosts"),
    medians: Sequence[str] = ("days", "scope_drift"),
    total: str = "all",
) -> pd.DataFrame:
    """One row per group (and the total ``all``) of a per-establishment table: what a published run may show.

    Parameters
    ----------
    table : DataFrame
        Rows per establishment or per pair of its audits (``lifecycle.csv``), with ``by`` and ``unit``.
    by, unit : str
        Grouping column and the column naming the establishment.
    sums, medians : sequence of str
        Columns summed, and columns summarised by their median, over the rows of each group.
    total : str
        Label of the row pooling every group.

    Returns
    -------
    DataFrame
        ``by``, ``n_establishments`` (distinct ``unit``), ``n_pairs`` (rows), the sums and
        ``median_<column>``; sorted by group, the total last. The publication policy then hides the groups
        of fewer than ``min_cell`` establishments (:func:`cyberobs_lib.report.publish_table`).

    Examples
    --------
    >>> t = pd.DataFrame({"establishment": ["a", "a", "b", "c"], "family": ["CH", "CH", "CH", "EHPAD"],
    ...                   "n_new": [1, 2, 3, 4], "days": [100, 200, 300, 400]})
    >>> summarise_by_group(t, sums=["n_new"], medians=["days"])
      family  n_establishments  n_pairs  n_new  median_days
    0     CH                 2        3      6        200.0
    1  EHPAD                 1        1      4        400.0
    2    all                 3        4     10        250.0
    """
    sums = [c for c in sums if c in table.columns]
    medians = [c for c in medians if c in table.columns]

    def summary(rows: pd.DataFrame) -> dict:
        out = {"n_establishments": rows[unit].nunique(), "n_pairs": len(rows)}
        out.update({c: rows[c].sum() for c in sums})
        out.update({f"median_{c}": median_of_known(rows[c]) for c in medians})
        return out

    groups = [{by: g, **summary(rows)} for g, rows in table.groupby(by, sort=True, observed=True)]
    columns = [by, "n_establishments", "n_pairs", *sums, *(f"median_{c}" for c in medians)]
    out = pd.DataFrame([*groups, {by: total, **summary(table)}], columns=columns)
    return out.astype({"n_establishments": "int64", "n_pairs": "int64"})


def audited_cells(
    metrics: pd.DataFrame, *, by: str = "family", years: Sequence[int] | None = None
) -> pd.DataFrame:
    """The audited population of every group and period, as the publication ledger registers it.

    Parameters
    ----------
    metrics : DataFrame
        :func:`cyberobs_lib.studies.indicators.audit_metrics` (one row per complete audit, with ``year``).
    by : str
        Grouping column (``family``).
    years : sequence of int, optional
        Years to describe (None: every year present); the period ``all`` pools them.

    Returns
    -------
    DataFrame
        ``group``, ``period`` (year as text, or ``all``), ``n`` (establishments audited in the period:
        one per establishment, :func:`~cyberobs_lib.studies.indicators.select_audits`), ``n_audits`` (the
        audits of the period, which add up over the years: the ledger keeps a hidden year from coming
        back as ``all`` minus the others); a row ``all`` per period pools the groups.

    Examples
    --------
    >>> m = pd.DataFrame({"finess": ["a", "a", "b"], "family": ["CH", "CH", "EHPAD"], "year": [2024, 2025, 2025],
    ...                   "audit_date": pd.to_datetime(["2024-01-01", "2025-01-01", "2025-02-01"]),
    ...                   "audit_id": ["1", "2", "3"]})
    >>> audited_cells(m).to_dict("records")[:3]
    [{'group': 'CH', 'period': '2024', 'n': 1, 'n_audits': 1}, {'group': 'all', 'period': '2024', 'n': 1, 'n_audits': 1}, {'group': 'CH', 'period': '2025', 'n': 1, 'n_audits': 1}]
    """
    present = sorted(int(y) for y in metrics["year"].dropna().unique())
    chosen = [y for y in present if years is None or y in set(years)]
    rows = []
    for year in [*chosen, 0]:
        audits = metrics if not year else metrics[metrics["year"] == year]
        if year == 0 and years is not None:
            audits = metrics[metrics["year"].isin(chosen)]
        first = select_audits(audits)
        n = first.groupby(by, observed=True).size()
        n_audits = audits.groupby(by, observed=True).size()
        period = str(year) if year else "all"
        for group in n.index:
            rows.append(
                {"group": str(group), "period": period, "n": int(n[group]), "n_audits": int(n_audits[group])}
            )
        rows.append({"group": "all", "period": period, "n": int(len(first)), "n_audits": int(len(audits))})
    return pd.DataFrame(rows, columns=["group", "period", "n", "n_audits"])
