"""Data-quality views: accounting that reconciles, rejects by reason, violations by rule."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cyberobs_lib.l10n import fmt_number, fmt_percent, has, label, text, text_n
from cyberobs_lib.store import YEAR, open_partitioned, year_filter
from cyberobs_lib.studies.data import AUDIT_TABLES, FLAT, PARTITIONED, LazyTables, canonical_format
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


def csv_layouts(summary: dict) -> pd.DataFrame:
    """How each contract CSV was read (from the ingest summary's ``csv_files``): encoding, BOM,
    delimiter, line ends, records counted from the bytes and blank lines.

    >>> csv_layouts({"csv_files": {"audits.csv": {"encoding": "cp1252", "bom": False, "delimiter": ";",
    ...     "line_end": "CRLF", "records": 3, "blank_lines": 0}}}).values.tolist()
    [['audits.csv', 'cp1252', False, ';', 'CRLF', 3, 0]]
    """
    files = (summary or {}).get("csv_files") or {}
    cols = ["encoding", "bom", "delimiter", "line_end", "records", "blank_lines"]
    rows = [[name, *(info.get(c) for c in cols)] for name, info in files.items()]
    return pd.DataFrame(rows, columns=["source_file", *cols])


def scan_status_table(audits: pd.DataFrame, *, published: bool = True) -> pd.DataFrame:
    """Audits by ``scan_status`` (ingest: ``complete``, ``incomplete``, ``failed``), with whether they enter
    the indicators (only complete audits do, see :func:`cyberobs_lib.studies.indicators.audit_metrics`).

    Published runs get the counts only; otherwise one row per audit that is not complete, with the
    scanner's words (``scan_status_detail``), for the team that fixes the campaign.

    Examples
    --------
    >>> a = pd.DataFrame({"audit_id": ["A", "B", "C"], "scan_status": ["complete", "failed", "complete"],
    ...                   "scan_status_detail": [None, "x.xml: refused (truncated XML)", None]})
    >>> scan_status_table(a).values.tolist()
    [['complete', 2, True], ['failed', 1, False]]
    >>> scan_status_table(a, published=False)[["audit_id", "scan_status"]].values.tolist()
    [['B', 'failed']]
    """
    if "scan_status" not in audits.columns:
        status = pd.Series("complete", index=audits.index)
    else:
        status = audits["scan_status"].astype(object).where(audits["scan_status"].notna(), "complete")
    if not published:
        cols = [c for c in ("audit_id", "scan_status", "scan_status_detail") if c in audits.columns]
        rows = audits.loc[(status != "complete").to_numpy(), cols]
        return rows.sort_values("audit_id").reset_index(drop=True)
    counts = status.value_counts().reindex(["complete", "incomplete", "failed"]).dropna().astype("int64")
    out = counts.rename_axis("scan_status").reset_index(name="audits")
    out["in_indicators"] = out["scan_status"] == "complete"
    return out


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


def table_overview(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows and columns of each canonical table.

    For the lazy tables of :func:`~cyberobs_lib.studies.data.load_study_data` read from a partitioned
    store or a canonical folder, tables not read yet are counted from their Parquet metadata (row counts
    of the files, with the same year and column selection as the read), never read: the same table as
    ``len(frame)`` and ``frame.shape[1]``, without reading 10^7 findings to count them.
    """
    rows = []
    for name in tables:
        shape = _shape_without_reading(tables, name)
        if shape is None:
            frame = tables[name]
            shape = (len(frame), frame.shape[1])
        rows.append({"table": name, "rows": shape[0], "columns": shape[1]})
    return pd.DataFrame(rows)


def _shape_without_reading(tables: Mapping[str, pd.DataFrame], name: str) -> tuple[int, int] | None:
    """``(rows, columns)`` of a lazy table not read yet, from file metadata; None when it must be read.

    Knows the two readers of ``load_study_data`` (store: ``folder``, ``years``, ``columns``; flat folder:
    ``folder``, ``cols``, ``audit_ids``) through the variables of their ``read`` function; anything
    else (a plain dict, a table already read, a flat folder filtered by year) is counted from the frame.
    """
    if not isinstance(tables, LazyTables) or name in tables.loaded():
        return None
    try:
        found = inspect.getclosurevars(tables._read).nonlocals
    except (TypeError, AttributeError):
        return None
    folder = found.get("folder")
    if not isinstance(folder, Path):
        return None
    kind = canonical_format(folder)
    if kind == PARTITIONED and {"years", "columns"} <= found.keys():
        dataset = open_partitioned(folder, name)
        names = [c for c in dataset.schema.names if c != YEAR]
        wanted = found["columns"].get(name, names)
        if any(c not in names for c in wanted):
            return None  # the read raises the error
        years = found["years"] if YEAR in dataset.schema.names else None
        return dataset.count_rows(filter=year_filter(years)), len(wanted)
    if kind == FLAT and {"cols", "audit_ids"} <= found.keys():
        if found["audit_ids"] is not None and name in AUDIT_TABLES:
            return None  # rows of some years only: known after reading audit_id
        import pyarrow.parquet as pq

        meta = pq.read_metadata(folder / f"{name}.parquet")
        names = [c for c in meta.schema.to_arrow_schema().names if not c.startswith("__index_level_")]
        wanted = found["cols"].get(name, names)
        if any(c not in names for c in wanted):
            return None
        return meta.num_rows, len(wanted)
    return None


#: Above this many input files, :func:`plot_accounting` draws one bar per kind of file.
MAX_BARS = 25
#: The delimiters of CSV files, by the catalog key of their name (``delimiter.<name>``).
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def dataset_table_label(name: str, lang: str = "fr") -> str:
    """The reader's name of a table of the dataset (``findings`` → "vulnérabilités relevées"), scanner exports
    (``scan:nessus_xml``) named with their format; a table the catalog does not know keeps its name.

    >>> dataset_table_label("hosts", "fr"), dataset_table_label("scan:nessus_xml", "en")
    ('hôtes exposés', 'scanner exports (nessus_xml)')
    """
    if str(name).startswith("scan:"):
        return text("dataset_table.scan", lang, format=str(name)[5:])
    key = f"dataset_table.{name}"
    return text(key, lang) if has(key) else str(name)


def delimiter_label(delimiter: object, lang: str = "fr") -> str:
    """A CSV delimiter in words (``;`` → "point-virgule"); another character is shown as itself.

    >>> delimiter_label(";", "fr"), delimiter_label(",", "en")
    ('point-virgule', 'comma')
    """
    name = DELIMITERS.get(str(delimiter))
    return text(f"delimiter.{name}", lang) if name else str(delimiter)


#: Parts of the rows read, their colour and hatch (the bars stay apart in grey print).
ACCOUNTING_PARTS = (
    ("kept", "#4C72B0", ""),
    ("rejected", "#C44E52", "xxx"),
    ("duplicates", "#DD8452", "///"),
    ("skipped", "#BBBBBB", "..."),
)


def plot_accounting(accounting: pd.DataFrame, *, ax=None, lang: str = "fr"):
    """Horizontal stacked bars per input file: the shares of its rows kept, rejected, duplicated, skipped,
    its rows read written at the end of the bar; titled, in ``lang``, hatched so that grey print keeps the
    parts apart.

    Above ``MAX_BARS`` files (a campaign of scanner exports) the bars are per kind of file (the
    ``table`` column: ``findings``, ``scan:nessus_xml``...), summed, so that every label stays readable;
    the per-file figures are in the accounting table. Returns the Axes; never shows or saves.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    parts = [p for p, _, _ in ACCOUNTING_PARTS]
    by = "source_file" if len(accounting) <= MAX_BARS else "table"
    frame = accounting.groupby(by, sort=False)[parts].sum().astype(float)
    read = frame.sum(axis=1)
    if by == "table":
        n = accounting.groupby("table", sort=False).size()
        frame.index = [
            f"{dataset_table_label(t, lang)} ({text_n('unit.file', int(n[t]), lang)})" for t in frame.index
        ]
    share = frame.div(read.where(read > 0, 1).to_numpy(), axis=0)
    left = pd.Series(0.0, index=share.index)
    for part, color, hatch in ACCOUNTING_PARTS:
        ax.barh(share.index, share[part], left=left, color=color, hatch=hatch, edgecolor="white",
                linewidth=0.5, label=label(part, lang))  # fmt: skip
        left = left + share[part]
    for y, rows in enumerate(read.to_numpy()):
        ax.annotate(text("dq.accounting.fig.rows", lang, n=fmt_number(rows, lang)), (1.0, y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize="small")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: fmt_percent(v, lang, decimals=0)))
    ax.set_xlabel(text("dq.accounting.fig.axis", lang))
    ax.set_title(text("dq.accounting.fig.title", lang), loc="left", pad=24)
    ax.invert_yaxis()
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, frameon=False, fontsize="small")
    return ax
