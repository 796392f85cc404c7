"""Build the canonical tables of a dataset folder: read → validate → normalize → enrich → write.

``cyberobs ingest DATASET --out DIR`` writes, atomically and deterministically:

* ``establishments.parquet``, ``audits.parquet``, ``hosts.parquet``, ``findings.parquet``,
  ``controls.parquet``, ``incidents.parquet``, ``protection.parquet`` — the canonical tables;
* ``rejects.parquet`` and ``rejects.csv`` — one row per rejected input row (``source_file, row, column,
  reason, value, message``) and one row per scanner file that could not be read;
* ``accounting.csv`` — per input file: ``rows_read = kept + rejected + duplicates`` (and, for scanner
  exports, ``items_read = findings + skipped``);
* ``ingest.json`` — summary: contract version, input SHA-256, counts, catalog versions, warnings.

Nothing is silently dropped: every row of every input file is either in a canonical table, counted as an
exact duplicate, or listed in the rejects with a reason code from :data:`cyberobs_lib.validate.RULES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib import CONTRACT_VERSION, __version__, registry
from cyberobs_lib import schema as S
from cyberobs_lib.checks import FILE_RULES
from cyberobs_lib.enrich import enrich_findings, protection_status, read_epss, read_kev
from cyberobs_lib.io import sha256_file, write_csv_atomic, write_parquet_atomic, write_text_atomic
from cyberobs_lib.normalize import normalize_findings
from cyberobs_lib.rows import findings_rules, perimeter_index
from cyberobs_lib.scanners import read_scans_dir
from cyberobs_lib.validate import DatasetCheck, TableCheck, check_dataset

#: Sort keys giving each canonical table a deterministic row order.
SORT_KEYS = {
    "establishments": ["finess"],
    "audits": ["audit_id"],
    "hosts": ["audit_id", "host"],
    "findings": ["audit_id", "host", "port", "protocol", "vuln_id", "source_file", "source_row"],
    "controls": ["audit_id", "control"],
    "incidents": ["incident_id"],
}


@dataclass
class IngestResult:
    """Canonical tables in memory plus the rejects, the accounting and scanner errors."""

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    accounting: pd.DataFrame
    check: DatasetCheck
    scan_errors: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    #: one row per scanner file: ``source_file, audit_id, format, status, status_detail, error``
    scans: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SCANS_COLUMNS)))

    @property
    def fatal(self) -> list[str]:
        """Why nothing usable could be built (a required file unusable, no audit kept...): [] when fine."""
        return fatal_problems(self.check, self.tables)

    @property
    def ok(self) -> bool:
        """True when every row of every file was kept (or counted as a duplicate or skipped item) and every
        scanner file was read: the command line exits 0 only then (1 otherwise, tables still written)."""
        return not self.fatal and not self.scan_errors and len(self.rejects) == 0 and self.check.ok


#: Columns of ``scans.csv``: what became of each scanner file, and what the scanner says of its scan.
SCANS_COLUMNS = ("source_file", "audit_id", "format", "status", "status_detail", "error")
#: ``audits.scan_status`` values. ``complete``: every scanner file of the audit was read and its scanner
#: reports a finished scan, or the audit has no scanner file (its findings come from findings.csv);
#: ``incomplete``: a scan stopped early or reported errors, or some of its files were refused;
#: ``failed``: every scan failed or every file was refused. Only ``complete`` audits enter the indicators.
SCAN_STATUS_VALUES = ("complete", "incomplete", "failed")


class DatasetFatalError(ValueError):
    """A dataset that cannot be studied at all (see :func:`fatal_problems`): nothing is written."""


def fatal_problems(check: DatasetCheck, tables: dict[str, pd.DataFrame] | None = None) -> list[str]:
    """The problems that leave nothing to study: a required file missing or unreadable, no source of
    findings, no establishment or no audit kept, each as ``file: line n: message [rule]``.
    ``cyberobs run`` never publishes from such a dataset, and ``ingest`` writes nothing."""
    out = []
    for name, tc in check.tables.items():
        if tc.fatal and (name in S.REQUIRED_FILES or name == "findings"):
            v = pd.concat(tc.violations, ignore_index=True) if tc.violations else None
            rows = v[v["severity"] == "error"].head(3) if v is not None else []
            for r in rows.itertuples() if len(rows) else []:
                line = r.row if pd.notna(r.row) else (1 if r.rule == "missing_column" else None)
                where = f"line {int(line)}: " if line is not None else ""
                message = str(r.message)
                if not message.startswith(str(tc.path)) and not message.startswith(tc.path.name):
                    message = f"{tc.path.name}: {where}{message}"
                out.append(f"{message} [{r.rule}]")
            if not len(rows):
                out.append(f"{tc.path.name}: unusable [unreadable_file]")
    if tables is not None and not out:
        for name in ("establishments", "audits"):
            if name in tables and len(tables[name]) == 0 and check.tables[name].read is not None:
                errs = pd.concat(check.tables[name].violations, ignore_index=True)
                errs = errs[errs["severity"] == "error"]
                reasons = ", ".join(f"{k} ({n})" for k, n in errs["rule"].value_counts().items())
                out.append(
                    f"{name}.csv: no row kept, every row rejected: {reasons or 'see cyberobs validate'}"
                    " [no_row_kept]"
                )
    return out


def csv_layout(read) -> dict:
    """How a contract CSV was read (``ingest.json`` ``csv_files``, shown by the data-quality notebook):
    encoding, byte-order mark, delimiter, line ends, records counted from the bytes, blank lines."""
    return {
        "encoding": read.encoding,
        "bom": bool(read.had_bom),
        "delimiter": {"\t": "tab"}.get(read.delimiter, read.delimiter),
        "line_end": read.line_end,
        "records": int(read.n_records),
        "blank_lines": len(read.blank_lines),
    }


def type_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Give a contract table's canonical columns their dtypes and a deterministic row order."""
    spec = S.INPUT_FILES[name]
    out = frame.copy()
    for col in spec["required"] + spec["optional"]:
        if col not in out.columns:
            out[col] = None
    text_cols = [c for c in out.columns if out[c].dtype == object]
    for c in text_cols:
        out[c] = out[c].astype("string")
    keys = [k for k in SORT_KEYS.get(name, []) if k in out.columns]
    if keys and len(out):
        out = out.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    return out


def _relative(path: object, dataset: Path) -> str:
    """A scanner file's path relative to the dataset folder (stable across machines, no local paths)."""
    p = Path(str(path))
    for base in (dataset, dataset.resolve()):
        if p.is_relative_to(base):
            return str(p.relative_to(base))
    return str(p)


def _catalog_meta(table: pd.DataFrame | None, dataset: Path) -> dict | None:
    """Catalog version/date of an enrichment table, its path relative to the dataset when inside it
    (otherwise its file name only: no local path in the summary)."""
    if table is None:
        return None
    meta = dict(table.attrs.get("catalog") or {})
    path = Path(str(meta.get("path", "")))
    if path.is_absolute() and path.is_relative_to(dataset.resolve()):
        meta["path"] = str(path.relative_to(dataset.resolve()))
    elif path.is_relative_to(dataset):
        meta["path"] = str(path.relative_to(dataset))
    elif str(path):
        meta["path"] = path.name
    return meta


#: Catalog file patterns searched in ``DATASET/reference/``: the CISA KEV catalog and FIRST EPSS scores.
KEV_FILES = ("known_exploited_vulnerabilities*.json", "known_exploited_vulnerabilities*.csv")
EPSS_FILES = ("epss*.csv.gz", "epss*.csv")


def reference_file(dataset: Path, patterns: tuple[str, ...]) -> Path | None:
    """The catalog shipped in ``DATASET/reference/`` (first match, sorted), if any."""
    folder = dataset / "reference"
    for pattern in patterns:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[-1]
    return None


# --------------------------------------------------------------------------------------------------
# The named steps, shared by the flat (ingest_dataset), --large and Dask paths
# --------------------------------------------------------------------------------------------------
def read_tables(
    dataset: Path, *, today: str | None = None, findings: bool = True, pad_finess: bool = False
) -> DatasetCheck:
    """Step 1: read and check the contract CSV files (``findings=False``: leave findings.csv to a chunked
    reader). Never raises on bad content."""
    return check_dataset(dataset, today=today, findings=findings, pad_finess=pad_finess)


def read_scans(dataset: Path, *, include_info: bool = False):
    """Step 2: read every scanner export under ``DATASET/scans/`` (None when there is no such folder).

    Paths in the batch are made relative to the dataset folder (no local path leaves the machine)."""
    scans_dir = dataset / "scans"
    if not scans_dir.is_dir():
        return None
    batch = read_scans_dir(scans_dir, root=dataset, include_info=include_info)
    batch.findings["source_file"] = batch.findings["source_file"].map(lambda p: _relative(p, dataset))
    batch.accounting["source_file"] = batch.accounting["source_file"].map(lambda p: _relative(p, dataset))
    for col in ("error", "status_detail"):  # messages name files relative to the dataset folder too
        batch.accounting[col] = batch.accounting[col].map(lambda m: _strip_root(m, dataset))
    return batch


def _strip_root(message, dataset: Path):
    """``message`` with the dataset folder's path (as given and resolved) removed from the file names."""
    if not isinstance(message, str):
        return message
    for base in {str(dataset.resolve()), str(dataset)}:
        message = message.replace(base.rstrip("/") + "/", "")
    return message


def scan_rows(findings: pd.DataFrame) -> pd.DataFrame:
    """Scanner findings as contract cells: the typed columns the readers give (port, score, date) written
    back as text, so that :func:`cyberobs_lib.rows.findings_rules` types every source the same way.

    >>> f = pd.DataFrame({"port": pd.array([443, None], dtype="Int32"), "cvss_score": [7.5, None],
    ...                   "first_seen": pd.to_datetime(["2024-03-01 10:00:00.123", None])})
    >>> scan_rows(f).values.tolist()
    [['443', '7.5', '2024-03-01T10:00:00.123000'], [None, None, None]]
    """
    out = findings.copy()
    if "port" in out:
        out["port"] = out["port"].astype("Int64").astype("string").astype(object)
    if "cvss_score" in out:
        score = pd.to_numeric(out["cvss_score"], errors="coerce")
        out["cvss_score"] = score.map(lambda v: None if pd.isna(v) else repr(float(v)))
    if "first_seen" in out:
        seen = pd.to_datetime(out["first_seen"], errors="coerce")
        out["first_seen"] = seen.map(lambda v: None if pd.isna(v) else v.isoformat())
    for c in out.columns:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def check_scan_rows(
    batch, *, known_audits: pd.Index, perimeter, today: pd.Timestamp, dataset: Path
) -> TableCheck:
    """Step 3: the findings row rules (:func:`cyberobs_lib.rows.findings_rules`, the same as findings.csv's)
    on the rows read from scanner exports; each violation names the scan file and the item number."""
    f = batch.findings
    files = f["source_file"].astype(object).reset_index(drop=True)
    rows = f["source_row"].astype("int64").reset_index(drop=True)
    frame = scan_rows(f.drop(columns=["source_file", "source_row"])).reset_index(drop=True)
    for col in S.INPUT_FILES["findings"]["required"] + S.INPUT_FILES["findings"]["optional"]:
        if col not in frame.columns:
            frame[col] = None
    c = TableCheck("findings", dataset / "scans", None, frame, files=files, rows=rows)
    for col in S.INPUT_FILES["findings"]["required"]:
        c.add(frame[col].isna(), col, "required_value")
    findings_rules(c, known_audits=known_audits, perimeter=perimeter, today=today)
    problems = getattr(batch, "cell_problems", None)
    if problems is not None and len(problems):
        c.violations.append(
            pd.DataFrame(
                {
                    "file": problems["source_file"].map(lambda p: _relative(p, dataset)).to_numpy(),
                    "row": pd.array(problems["source_row"].to_numpy(), dtype="Int64"),
                    "column": problems["column"].to_numpy(),
                    "rule": problems["rule"].to_numpy(),
                    "severity": "warning",
                    "value": problems["value"].to_numpy(),
                    "message": "the scanner's value cannot be read: left empty",
                }
            )
        )
    return c


def refused_file(check: TableCheck) -> pd.Series | None:
    """The first file-level violation of a table that cannot be used at all (a required column absent, its
    records unreadable: :attr:`TableCheck.fatal`), or None. Every row of such a file is rejected with it,
    never kept with an empty required cell."""
    if not check.fatal or not check.violations:
        return None
    viol = pd.concat(check.violations, ignore_index=True)
    return viol[viol["rule"].isin(FILE_RULES)].iloc[0]


def split_rows(check: TableCheck) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Step 4: kept rows (with ``source_file``, ``source_row``), rejects (one row per rejected input row:
    first failing rule, all rules in the message) and per-file counts ``rows_read, kept, rejected,
    duplicates`` of one checked table, whether its rows come from one file or from many."""
    frame = check.frame
    if check.files is not None:
        files, rows = check.files, check.rows
    else:
        files = pd.Series(check.path.name, index=frame.index, dtype=object)
        rows = check.read.lines if check.read is not None else pd.Series(dtype="int64")
    refused = refused_file(check)
    dup = pd.Index([]) if refused is not None else pd.Index(check.duplicates)
    rejected_idx = frame.index if refused is not None else check.rejected.index.difference(dup)
    kept = frame.drop(index=rejected_idx.union(dup))
    if refused is not None and len(rejected_idx):  # a refused file: every row is rejected with its rule
        rej = pd.DataFrame(
            {
                "source_file": files.loc[rejected_idx].to_numpy(),
                "row": rows.loc[rejected_idx].astype("int64").to_numpy(),
                "column": refused["column"],
                "reason": refused["rule"],
                "value": None,
                "message": f"file refused: {refused['message']} [rules: {refused['rule']}]",
            },
            columns=list(S.REJECTS_COLUMNS),
        )
    elif len(rejected_idx):
        viol = pd.concat(check.violations, ignore_index=True)
        viol = viol[viol["severity"] == "error"]
        by_row = viol.groupby(["file", "row"], sort=False).agg(
            column=("column", "first"),
            rule=("rule", "first"),
            value=("value", "first"),
            message=("message", lambda m: " | ".join(dict.fromkeys(m))),
            all_rules=("rule", lambda r: ";".join(dict.fromkeys(r))),
        )
        keys = pd.MultiIndex.from_arrays(
            [files.loc[rejected_idx].to_numpy(), rows.loc[rejected_idx].astype("int64").to_numpy()],
            names=["file", "row"],
        )
        rej = by_row.reindex(keys).reset_index().rename(columns={"file": "source_file", "rule": "reason"})
        rej["message"] = rej["message"] + " [rules: " + rej["all_rules"] + "]"
        rej = rej.drop(columns="all_rules")[list(S.REJECTS_COLUMNS)]
    else:
        rej = pd.DataFrame(columns=list(S.REJECTS_COLUMNS))
    status = pd.Series("kept", index=frame.index, dtype=object)
    status.loc[rejected_idx] = "rejected"
    status.loc[dup] = "duplicates"
    counts = pd.crosstab(files, status) if len(frame) else pd.DataFrame()
    for col in ("kept", "rejected", "duplicates"):
        if col not in counts.columns:
            counts[col] = 0
    counts = counts[["kept", "rejected", "duplicates"]].astype("int64")
    counts.insert(0, "rows_read", counts.sum(axis=1))
    if check.files is None and check.read is not None and not len(counts):
        counts = pd.DataFrame(
            {"rows_read": [0], "kept": [0], "rejected": [0], "duplicates": [0]}, index=[check.path.name]
        )
    counts.index.name = "source_file"
    kept = kept.copy()
    kept[S.SOURCE_FILE] = files.loc[kept.index].to_numpy()
    kept[S.SOURCE_ROW] = rows.loc[kept.index].astype("int64").to_numpy() if len(rows) else []
    return kept.reset_index(drop=True), rej, counts.reset_index()


def split_file(check: TableCheck) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`split_rows` of a one-file table, its accounting as one dict (the chunked path's form)."""
    kept, rej, counts = split_rows(check)
    acc = {"source_file": check.path.name, "table": check.name, "skipped": 0}
    acc.update({k: int(counts[k].sum()) for k in ("rows_read", "kept", "rejected", "duplicates")})
    return kept, rej, acc


def audit_scan_status(audits: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    """Step 5a: ``scan_status`` and ``scan_status_detail`` of each audit from its scanner files.

    >>> a = pd.DataFrame({"audit_id": ["A", "B", "C", "D"]})
    >>> s = pd.DataFrame({"source_file": ["scans/A/x", "scans/B/x", "scans/B/y", "scans/C/x"],
    ...     "audit_id": ["A", "B", "B", "C"], "status": ["complete", "complete", "refused", "refused"],
    ...     "status_detail": ["", "", "truncated XML", "not XML"]})
    >>> audit_scan_status(a, s)[["audit_id", "scan_status"]].values.tolist()
    [['A', 'complete'], ['B', 'incomplete'], ['C', 'failed'], ['D', 'complete']]
    """
    out = audits.copy()
    status = pd.Series("complete", index=out.index, dtype=object)
    detail = pd.Series(None, index=out.index, dtype=object)
    if len(scans) and len(out):
        rank = {"complete": 0, "incomplete": 1, "failed": 2, "refused": 2}
        s = scans[scans["audit_id"].notna()]
        for audit_id, g in s.groupby("audit_id", sort=False):
            ranks = g["status"].map(rank).fillna(2)
            if (ranks == 0).all():
                continue
            worst = "failed" if (ranks == 2).all() else "incomplete"
            bad = g[ranks > 0]
            text = "; ".join(
                f"{f.rsplit('/', 1)[-1]}: {st}" + (f" ({d})" if d else "")
                for f, st, d in zip(
                    bad["source_file"], bad["status"], bad["status_detail"].fillna(""), strict=True
                )
            )
            hit = (out["audit_id"] == audit_id).to_numpy()
            status[hit] = worst
            detail[hit] = text
    out["scan_status"] = status
    out["scan_status_detail"] = detail
    return out


def normalize_and_enrich(
    tables: dict[str, pd.DataFrame],
    *,
    kev: pd.DataFrame | None,
    epss: pd.DataFrame | None,
    scan_controls: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Step 5: establishments derived (family, region...), findings normalized (duplicates of one audit and
    fingerprint collapsed, ``n_duplicates``) and enriched (KEV, EPSS), protection status per audit."""
    est = tables["establishments"]
    tables["establishments"] = registry.derive_establishments(est) if len(est) else est
    findings = tables["findings"]
    if len(findings):
        audits_for_norm = tables["audits"][["audit_id", "finess", "audit_date"]]
        findings = normalize_findings(findings, audits=audits_for_norm, kev=kev)
        findings = enrich_findings(findings, kev=kev, epss=epss)
    tables["findings"] = findings
    evidence = scan_controls if scan_controls is not None and len(scan_controls) else None
    tables["protection"] = protection_status(tables["controls"], audits=tables["audits"], evidence=evidence)
    return tables


def finalize(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Step 6: canonical dtypes and deterministic row order of every contract table."""
    return {name: (type_table(name, t) if name in S.INPUT_FILES else t) for name, t in tables.items()}


def account(
    counts: list[pd.DataFrame], findings: pd.DataFrame, *, scan_accounting: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Step 7: the accounting table, reconciled with what is written.

    ``counts``: per-file ``source_file, table, rows_read, kept, rejected, duplicates`` of the row checks.
    Findings rows collapsed by normalization (same audit and fingerprint) move from ``kept`` to
    ``duplicates`` of their own file, so that ``kept`` is what the findings table holds from each file.
    For scanner files ``rows_read`` is the number of items read, ``skipped`` the items that are not
    findings by policy (informational, passed checks, ...), and
    ``rows_read = kept + rejected + duplicates + skipped`` holds for every file.

    Raises
    ------
    AssertionError
        The identity fails: a bug of the pipeline, never of the input (the message names the files).
    """
    parts = [c for c in counts if len(c)]
    acc = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(S.ACCOUNTING_COLUMNS))
    acc["skipped"] = 0
    if scan_accounting is not None and len(scan_accounting):
        sa = scan_accounting.drop_duplicates("source_file").set_index("source_file")
        is_scan = (acc["table"] == "scan").to_numpy()
        files = acc.loc[is_scan, "source_file"]
        acc.loc[is_scan, "skipped"] = files.map(sa["skipped"]).fillna(0).astype("int64").to_numpy()
        acc.loc[is_scan, "rows_read"] = files.map(sa["items_read"]).fillna(0).astype("int64").to_numpy()
        missing = sa.index.difference(pd.Index(files))
        if len(missing):  # files with no finding row: nothing kept, everything skipped (or refused)
            extra = sa.loc[missing].reset_index()
            add = pd.DataFrame(
                {
                    "source_file": extra["source_file"],
                    "table": "scan",
                    "rows_read": extra["items_read"].astype("int64"),
                    "kept": 0,
                    "rejected": 0,
                    "duplicates": 0,
                    "skipped": extra["skipped"].astype("int64"),
                }
            )
            acc = pd.concat([acc, add], ignore_index=True) if len(acc) else add
        fmt = acc["source_file"].map(sa["format"]).fillna("unreadable").astype(str)
        is_scan = (acc["table"] == "scan").to_numpy()
        acc.loc[is_scan, "table"] = "scan:" + fmt[is_scan]
    for col in ("rows_read", "kept", "rejected", "duplicates", "skipped"):
        acc[col] = acc[col].astype("int64")
    written = findings["source_file"].value_counts() if len(findings) else pd.Series(dtype="int64")
    is_f = (acc["table"].astype(str).str.startswith("scan:") | (acc["table"] == "findings")).to_numpy()
    before = acc.loc[is_f, "kept"]
    after = acc.loc[is_f, "source_file"].map(written).fillna(0).astype("int64")
    acc.loc[is_f, "duplicates"] = acc.loc[is_f, "duplicates"] + (before - after)
    acc.loc[is_f, "kept"] = after
    total = acc["kept"] + acc["rejected"] + acc["duplicates"] + acc["skipped"]
    bad = acc[acc["rows_read"] != total]
    if len(bad):
        raise AssertionError(f"accounting does not reconcile for {bad['source_file'].tolist()[:5]}")
    if int(acc.loc[is_f, "kept"].sum()) != len(findings):
        raise AssertionError(
            f"findings written ({len(findings)}) differ from the kept rows ({int(acc.loc[is_f, 'kept'].sum())})"
        )
    return acc[list(S.ACCOUNTING_COLUMNS)].reset_index(drop=True)


def _scans_table(batch) -> pd.DataFrame:
    if batch is None:
        return pd.DataFrame(columns=list(SCANS_COLUMNS))
    return batch.accounting.reindex(columns=list(SCANS_COLUMNS)).reset_index(drop=True)


def _scan_rejects(batch) -> pd.DataFrame:
    """One reject row per scanner file that could not be read (or was refused), naming the file and why."""
    if batch is None or not batch.errors:
        return pd.DataFrame(columns=list(S.REJECTS_COLUMNS))
    acc = batch.accounting
    bad = acc[acc["status"] == "refused"]
    return pd.DataFrame(
        {
            "source_file": bad["source_file"].to_numpy(),
            "row": None,
            "column": None,
            "reason": "unreadable_scan",
            "value": None,
            "message": bad["error"].fillna(bad["status_detail"]).to_numpy(),
        }
    )


def scan_file_violations(batch) -> list[pd.DataFrame]:
    """File-level violations of a scan batch: ``unreadable_scan`` (error) per refused file and
    ``incomplete_scan`` (warning) per file whose scanner reports an unfinished or failed scan."""
    acc = batch.accounting
    refused = acc[acc["status"] == "refused"]
    unfinished = acc[acc["status"].isin(["incomplete", "failed"])]
    parts = [
        (refused, "unreadable_scan", "error", None, refused["error"].fillna(refused["status_detail"])),
        (
            unfinished,
            "incomplete_scan",
            "warning",
            unfinished["status"],
            "the scanner reports an unfinished or failed scan: " + unfinished["status_detail"].fillna(""),
        ),
    ]
    return [
        pd.DataFrame(
            {
                "file": rows["source_file"].to_numpy(),
                "row": pd.array([None] * len(rows), dtype="Int64"),
                "column": None,
                "rule": rule,
                "severity": severity,
                "value": None if value is None else value.to_numpy(),
                "message": message.astype(str).to_numpy(),
            }
        )
        for rows, rule, severity, value, message in parts
        if len(rows)
    ]


def validate_dataset(
    dataset: Path | str, *, today: str | None = None, include_info: bool = False, pad_finess: bool = False
) -> DatasetCheck:
    """Every problem ingest would meet, writing nothing: the contract files' rules (:func:`read_tables`)
    and the scanner exports of ``scans/`` opened as ingest opens them (detection, parsing, the findings
    row rules, files refused), each violation naming its file and its row or item.

    The returned check has an extra table ``scans`` when the dataset has a ``scans/`` folder; its
    ``violations`` include one ``unreadable_scan`` error per refused scanner file.
    """
    dataset = Path(dataset)
    today_ts = pd.Timestamp(today) if today is not None else pd.Timestamp.today().normalize()
    check = read_tables(dataset, today=today, pad_finess=pad_finess)
    batch = read_scans(dataset, include_info=include_info)
    if batch is None:
        return check
    audits = check.tables["audits"]
    known = pd.Index([])
    if audits.read is not None and not audits.fatal:
        ok = audits.frame.index.difference(audits.rejected.index).difference(audits.duplicates)
        known = pd.Index(audits.frame.loc[ok, "audit_id"].dropna().unique())
    hosts_check = check.tables["hosts"]
    perimeter = None
    if hosts_check.read is not None and not hosts_check.fatal:
        perimeter = perimeter_index(hosts_check.frame)
    scan_check = check_scan_rows(
        batch, known_audits=known, perimeter=perimeter, today=today_ts, dataset=dataset
    )
    scan_check.violations += scan_file_violations(batch)
    check.tables["scans"] = scan_check
    return check


def ingest_dataset(
    dataset: Path | str,
    *,
    today: str | None = None,
    kev_path: Path | str | None = None,
    epss_path: Path | str | None = None,
    include_info: bool = False,
    findings_csv: bool = True,
    pad_finess: bool = False,
) -> IngestResult:
    """Read, validate, normalize and enrich a dataset folder into canonical tables (in memory).

    The named steps, in order: :func:`read_tables`, :func:`read_scans`, :func:`check_scan_rows` (the
    same row rules as findings.csv), :func:`split_rows`, :func:`audit_scan_status`,
    :func:`normalize_and_enrich`, :func:`finalize`, :func:`account`.

    Parameters
    ----------
    dataset
        Dataset folder following the data contract.
    today
        Reference date for "not in the future" (default: the current date).
    kev_path, epss_path
        CISA KEV catalog (JSON/CSV) and FIRST EPSS daily CSV (``.csv`` or ``.csv.gz``). Default: the
        files of the dataset's optional ``reference/`` folder (``known_exploited_vulnerabilities*.json``,
        ``epss*.csv.gz``); without a catalog, ``known_exploited``/``epss`` stay unknown (NA).
    include_info
        Keep informational scanner items (skipped and counted by default).
    findings_csv
        False: leave ``findings.csv`` out (the chunked ``--large`` path reads it itself).
    pad_finess
        Accept an 8-digit FINESS whose zero-padded form passes the check key (a leading zero lost in a
        spreadsheet), zero-padded, with a warning; by default such rows are rejected
        (``finess_leading_zero``).
    """
    dataset = Path(dataset)
    today_ts = pd.Timestamp(today) if today is not None else pd.Timestamp.today().normalize()
    check = read_tables(dataset, today=today, findings=findings_csv, pad_finess=pad_finess)
    tables, rejects, counts, layouts = _split_tables(check)
    batch = read_scans(dataset, include_info=include_info)
    scan_controls = None
    if batch is not None:
        scan_controls = _add_scan_rows(batch, tables, check, rejects, counts, today=today_ts, dataset=dataset)
    scans = _scans_table(batch)
    if len(tables["audits"]):
        tables["audits"] = audit_scan_status(tables["audits"], scans)
    kev_path = kev_path or reference_file(dataset, KEV_FILES)
    epss_path = epss_path or reference_file(dataset, EPSS_FILES)
    kev = read_kev(kev_path) if kev_path else None
    epss = read_epss(epss_path) if epss_path else None
    tables = finalize(normalize_and_enrich(tables, kev=kev, epss=epss, scan_controls=scan_controls))
    acc = account(counts, tables["findings"], scan_accounting=None if batch is None else batch.accounting)
    rej = _rejects_table(rejects)
    scan_errors = list(batch.errors) if batch is not None else []
    inputs = _input_files(dataset, check, scans if batch is not None else None, (kev_path, epss_path))
    status_counts = tables["audits"]["scan_status"].value_counts() if len(tables["audits"]) else {}
    summary = {
        "contract_version": CONTRACT_VERSION,
        "cyberobs_version": __version__,
        "dataset": dataset.name,
        "inputs": {_relative(p, dataset): sha256_file(p) for p in inputs},
        "rows": {name: int(len(t)) for name, t in tables.items()},
        "rejected": int(len(rej)),
        "errors": int((check.violations["severity"] == "error").sum()),
        "warnings": int((check.violations["severity"] == "warning").sum()),
        "scan_errors": [_strip_root(str(e), dataset) for e in scan_errors],
        "scan_status": {str(k): int(v) for k, v in dict(status_counts).items()},
        "csv_files": layouts,
        "fatal": fatal_problems(check, tables),
        "catalogs": {
            "kev": _catalog_meta(kev, dataset),
            "epss": _catalog_meta(epss, dataset),
        },
    }
    return IngestResult(
        tables=tables,
        rejects=rej,
        accounting=acc,
        check=check,
        scan_errors=scan_errors,
        summary=summary,
        scans=scans,
    )


def _split_tables(check: DatasetCheck) -> tuple[dict[str, pd.DataFrame], list, list, dict[str, dict]]:
    """Each contract table read split into kept rows and rejects (:func:`split_rows`), with its counts and
    its CSV layout; a table not read is empty with its canonical columns. Every record of a file must have
    been read."""
    tables: dict[str, pd.DataFrame] = {}
    rejects, counts = [], []
    layouts: dict[str, dict] = {}
    for name, tc in check.tables.items():
        if tc.read is None:
            tables[name] = type_table(name, pd.DataFrame())
            continue
        layouts[tc.path.name] = csv_layout(tc.read)
        if len(tc.frame) != tc.read.n_records and tc.read.n_records:
            raise AssertionError(f"{tc.path}: {tc.read.n_records} records in the file, {len(tc.frame)} read")
        kept, rej, cnt = split_rows(tc)
        cnt.insert(1, "table", name)
        tables[name] = kept
        rejects.append(rej)
        counts.append(cnt)
    return tables, rejects, counts, layouts


def _add_scan_rows(
    batch,
    tables: dict,
    check: DatasetCheck,
    rejects: list,
    counts: list,
    *,
    today: pd.Timestamp,
    dataset: Path,
) -> pd.DataFrame:
    """The scanner rows checked by the findings rules (against the known audits and their declared
    perimeter) and added to the findings, their hosts to the hosts, their rejects and counts to the
    ledgers; return the scanners' control observations of known audits."""
    known = pd.Index(tables["audits"]["audit_id"].unique()) if len(tables["audits"]) else pd.Index([])
    hosts_check = check.tables["hosts"]
    perimeter = None
    if hosts_check.read is not None and not hosts_check.fatal:
        perimeter = perimeter_index(hosts_check.frame)
    scan_check = check_scan_rows(batch, known_audits=known, perimeter=perimeter, today=today, dataset=dataset)
    kept, rej, cnt = split_rows(scan_check)
    scan_check.violations += scan_file_violations(batch)
    check.tables["scans"] = scan_check
    cnt.insert(1, "table", "scan")
    rejects += [rej, _scan_rejects(batch)]
    counts.append(cnt)
    tables["findings"] = pd.concat(
        [t for t in (tables["findings"], kept) if len(t)] or [tables["findings"]], ignore_index=True
    )
    sh = batch.hosts[batch.hosts["audit_id"].isin(known)]
    tables["hosts"] = pd.concat(
        [t for t in (tables["hosts"], sh) if len(t)] or [tables["hosts"]], ignore_index=True
    ).drop_duplicates(["audit_id", "host"])
    return batch.controls[batch.controls["audit_id"].isin(known)]


def _rejects_table(rejects: list[pd.DataFrame]) -> pd.DataFrame:
    """Every rejected row in the contract's rejects layout, sorted by file and row."""
    parts = [r for r in rejects if len(r)]
    rej = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(S.REJECTS_COLUMNS))
    rej = rej[list(S.REJECTS_COLUMNS)].astype({"row": "Int64"})
    for c in ("source_file", "column", "reason", "value", "message"):
        rej[c] = rej[c].astype("string")
    return rej.sort_values(["source_file", "row"], kind="stable").reset_index(drop=True)


def _input_files(dataset: Path, check: DatasetCheck, scans: pd.DataFrame | None, catalogs) -> list[Path]:
    """The files an ingestion read, sorted (hashed in the summary): the contract tables, the scanner exports
    not refused (``scans`` None: no scans/ folder), the catalogs, and the other regular files at the top of
    the folder (truth.json, a README...; no walk, no symbolic link)."""
    inputs = [dataset / f"{n}.csv" for n, t in check.tables.items() if t.read is not None and n != "scans"]
    if scans is not None:
        inputs += [
            dataset / f
            for f, st in zip(scans["source_file"], scans["status"], strict=True)
            if st != "refused"
        ]
    inputs += [Path(p) for p in catalogs if p]
    inputs += [e for e in dataset.iterdir() if e.is_file() and not e.is_symlink() and e.suffix != ".csv"]
    return [p for p in sorted(set(inputs)) if p.is_file()]


class CanonicalSchemaError(ValueError):
    """A canonical table breaks its pandera model: a defect of the pipeline, never of the input."""


def check_canonical(tables: dict[str, pd.DataFrame]) -> None:
    """Check every canonical table against its pandera model (:data:`schema.CANONICAL_MODELS`), lazily,
    so that every failing column and check is listed at once."""
    import pandera.pandas as pa

    problems = []
    for name, model in S.CANONICAL_MODELS.items():
        if name not in tables or tables[name].empty:
            continue
        try:
            model.validate(tables[name], lazy=True)
        except pa.errors.SchemaErrors as exc:
            fc = exc.failure_cases
            table = tables[name]
            for (column, chk), group in list(fc.groupby(["column", "check"], sort=False, dropna=False))[:20]:
                idx = [i for i in group["index"].dropna().tolist() if i in table.index]
                files = (
                    sorted(set(table.loc[idx, "source_file"].dropna().astype(str)))[:5]
                    if "source_file" in table.columns
                    else []
                )
                where = f" in {', '.join(files)}" if files else ""
                problems.append(f"{name}.{column}: {chk} (e.g. {group['failure_case'].iloc[0]!r}){where}")
    if problems:
        raise CanonicalSchemaError("canonical tables break the schema:\n  " + "\n  ".join(problems))


def write_canonical(result: IngestResult, out: Path | str, *, check_schema: bool = True) -> Path:
    """Write the canonical tables, rejects, accounting and summary atomically into ``out``.

    ``ingest.json`` is written last: its presence marks a complete set of tables. The tables are first
    checked against the pandera models of :mod:`cyberobs_lib.schema` (``check_schema``).
    """
    out = Path(out)
    if check_schema:
        check_canonical(result.tables)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").unlink(missing_ok=True)
    for stale in out.glob(".*.tmp"):  # staging files of an interrupted ingest
        stale.unlink(missing_ok=True)
    for name, table in result.tables.items():
        write_parquet_atomic(table, out / f"{name}.parquet")
    write_parquet_atomic(result.rejects, out / "rejects.parquet")
    write_csv_atomic(result.rejects, out / "rejects.csv")
    write_csv_atomic(result.accounting, out / "accounting.csv")
    write_csv_atomic(result.check.violations, out / "violations.csv")
    write_csv_atomic(result.scans, out / "scans.csv")
    write_text_atomic(
        json.dumps(result.summary, indent=2, sort_keys=True, default=str) + "\n", out / "ingest.json"
    )
    return out


def read_canonical(
    folder: Path | str, *, tables: tuple[str, ...] | None = None, columns: dict[str, list[str]] | None = None
) -> dict[str, pd.DataFrame]:
    """Read canonical tables written by :func:`write_canonical` (column-selectively when asked).

    Raises ``FileNotFoundError`` when the folder has no ``ingest.json`` (an incomplete or foreign folder).
    """
    folder = Path(folder)
    if not (folder / "ingest.json").is_file():
        raise FileNotFoundError(
            f"{folder}: no ingest.json; run `cyberobs ingest DATASET --out {folder}` first"
        )
    names = tables or ("establishments", "audits", "hosts", "findings", "controls", "incidents", "protection")
    columns = columns or {}
    return {n: pd.read_parquet(folder / f"{n}.parquet", columns=columns.get(n)) for n in names}
