"""Data-quality views: accounting that reconciles, rejects by reason, violations by rule."""

from __future__ import annotations

import pandas as pd

from cyberobs_lib.validate import RULES


def accounting_table(accounting: pd.DataFrame) -> pd.DataFrame:
    """Per input file: rows read, kept, rejected, duplicates, skipped, and whether they reconcile.

    Returns
    -------
    DataFrame
        The accounting with a ``balanced`` column: ``rows_read == kept + rejected + duplicates + skipped``.

    Examples
    --------
    >>> acc = pd.DataFrame({"source_file": ["a.csv"], "table": ["audits"], "rows_read": [3], "kept": [2],
    ...                     "rejected": [1], "duplicates": [0], "skipped": [0]})
    >>> bool(accounting_table(acc)["balanced"].iloc[0])
    True
    """
    out = accounting.copy()
    total = out["kept"] + out["rejected"] + out["duplicates"] + out["skipped"]
    out["balanced"] = out["rows_read"] == total
    return out.reset_index(drop=True)


def rejects_by_reason(rejects: pd.DataFrame) -> pd.DataFrame:
    """Count rejected rows per file and reason code, with the rule's description."""
    if rejects.empty:
        return pd.DataFrame(columns=["source_file", "reason", "rows", "rule"])
    out = (
        rejects.groupby(["source_file", "reason"], observed=True, dropna=False)
        .size()
        .rename("rows")
        .reset_index()
        .sort_values(["rows", "source_file", "reason"], ascending=[False, True, True], kind="stable")
    )
    out["rule"] = out["reason"].map(RULES).fillna("")
    return out.reset_index(drop=True)


def violations_by_rule(violations: pd.DataFrame) -> pd.DataFrame:
    """Count violations (errors and warnings) per file, rule and severity."""
    if violations.empty:
        return pd.DataFrame(columns=["file", "rule", "severity", "count"])
    return (
        violations.groupby(["file", "rule", "severity"], observed=True)
        .size()
        .rename("count")
        .reset_index()
        .sort_values(["severity", "count"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )


def table_overview(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows and columns of each canonical table."""
    return pd.DataFrame([{"table": n, "rows": len(t), "columns": t.shape[1]} for n, t in tables.items()])


def plot_accounting(accounting: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Horizontal stacked bars per input file: kept, rejected, duplicates, skipped (log-free counts).

    Returns the Axes; never shows or saves.
    """
    import matplotlib.pyplot as plt

    from cyberobs_lib.report import label

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    parts = ["kept", "rejected", "duplicates", "skipped"]
    colors = ["#4C72B0", "#C44E52", "#DD8452", "#8C8C8C"]
    frame = accounting.set_index("source_file")[parts].astype(float)
    share = frame.div(frame.sum(axis=1).where(lambda s: s > 0, 1), axis=0)
    left = pd.Series(0.0, index=share.index)
    for part, color in zip(parts, colors, strict=True):
        ax.barh(share.index, share[part], left=left, color=color, label=label(part, lang))
        left = left + share[part]
    ax.set_xlim(0, 1)
    ax.set_xlabel("part des lignes lues" if lang == "fr" else "share of rows read")
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False, fontsize="small")
    return ax
