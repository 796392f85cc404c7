"""Chunked ingestion of a national-size dataset: findings.csv streamed, checked, normalized, written.

:func:`ingest_large` gives the same canonical findings, rejects and accounting as
:func:`cyberobs_lib.ingest.ingest_dataset` (the single source of truth), with memory flat in the number
of chunks: ``findings.csv`` is read by ``pyarrow.csv.open_csv`` (every cell as text), each chunk goes
through the contract rules of :func:`cyberobs_lib.validate.check_findings` (its vectorized helpers and
reason codes), :func:`~cyberobs_lib.normalize.normalize_findings` and
:func:`~cyberobs_lib.enrich.enrich_findings`, and is appended to a year-partitioned Parquet folder
(:mod:`cyberobs_lib.store`). The small tables go through ``ingest_dataset`` itself.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from cyberobs_lib import schema as S
from cyberobs_lib.checks import RULES
from cyberobs_lib.enrich import read_epss, read_kev
from cyberobs_lib.ingest import (
    EPSS_FILES,
    KEV_FILES,
    SORT_KEYS,
    DatasetFatalError,
    ingest_dataset,
    reference_file,
)
from cyberobs_lib.io import InputFileError, sha256_file
from cyberobs_lib.scale.chunk_check import check_findings_chunk  # noqa: F401 - re-exported
from cyberobs_lib.scale.chunk_worker import ChunkContext, ChunkRunner
from cyberobs_lib.scale.csv_stream import detect_csv, read_arrow_chunks
from cyberobs_lib.store import PartitionedWriter, add_year, year_of_audits
from cyberobs_lib.validate import perimeter_index

FINDINGS = "findings"
#: Phases timed in the summary's ``seconds``: in this process (small, read, write_tables) or summed over
#: the chunks wherever they ran (check, normalize, write).
PHASES = ("small", "read", "check", "normalize", "write", "write_tables")
#: The findings.csv row of the accounting table.
ACCOUNTING_COUNTS = S.ACCOUNTING_COLUMNS[2:]  # rows_read, kept, rejected, duplicates, skipped


def _small_tables(dataset: Path, *, today: str | None, kev_path, epss_path, pad_finess: bool = False):
    """``ingest_dataset`` of everything but findings.csv (read in chunks by :func:`ingest_large`)."""
    return ingest_dataset(
        dataset,
        today=today,
        kev_path=kev_path,
        epss_path=epss_path,
        findings_csv=False,
        pad_finess=pad_finess,
    )


def ingest_large(
    dataset: Path | str,
    out: Path | str,
    *,
    chunk_rows: int = 500_000,
    workers: int = 1,
    client=None,
    today: str | None = None,
    kev_path: Path | str | None = None,
    epss_path: Path | str | None = None,
    pad_finess: bool = False,
) -> dict:
    """Ingest a dataset folder chunk by chunk into a year-partitioned canonical folder.

    Parameters
    ----------
    dataset : path
        Dataset folder following the data contract; ``findings.csv`` grouped by ``audit_id`` (every row
        of an audit on consecutive lines, as exports and ``cyberobs demo`` write it).
    out : path
        Target folder (:func:`cyberobs_lib.store.read_partitioned` reads it), written atomically.
    chunk_rows : int
        Findings per chunk: bounds memory (about 0.8 GB per 500,000 rows and per worker).
    workers : int
        Local worker processes checking, normalizing and writing chunks while this process reads the
        next ones (1: everything in this process). Same output whatever the number.
    client : distributed.Client, optional
        Run the chunks on this Dask cluster instead (workers must see ``out``'s parent folder).
    today, kev_path, epss_path
        As :func:`cyberobs_lib.ingest.ingest_dataset`.

    Returns
    -------
    dict
        The summary also stored in ``_manifest.json`` under ``ingest``: ``rows`` per table, ``rejected``,
        ``warnings``, ``inputs`` (SHA-256), ``catalogs``, ``chunks``, ``workers``, ``wall_seconds`` and
        ``seconds`` per phase (``small``, ``read``, ``write_tables`` in this process; ``check``,
        ``normalize``, ``write`` summed over the chunks, wherever they ran). Tables written: the
        canonical ones, ``rejects`` (``source_file, row, column, reason, value, message``),
        ``accounting``, ``violations``.

    Raises
    ------
    DatasetFatalError
        The dataset cannot be studied (:func:`cyberobs_lib.ingest.fatal_problems`, findings.csv absent
        without scans/ or unreadable): nothing is written.
    ValueError
        ``findings.csv`` is not grouped by audit (an audit seen again after a later one).

    Notes
    -----
    Exact duplicate rows and duplicates of one (audit, fingerprint) are collapsed within an audit; an
    audit never straddles two chunks (:func:`read_arrow_chunks`), so the result equals the in-memory path.
    Rows of unknown audits are rejected wherever they sit (only the grouping of known audits is
    required; an exact copy of such a row in another chunk is then counted as rejected, not duplicate).
    Findings rows are sorted by ``ingest.SORT_KEYS`` within each chunk; chunks follow the file.
    """
    dataset, out = Path(dataset), Path(out)
    tally = _Tally(t_start=time.perf_counter())
    small = _small_tables(dataset, today=today, kev_path=kev_path, epss_path=epss_path, pad_finess=pad_finess)
    path = dataset / f"{FINDINGS}.csv"
    present = _check_findings_source(dataset, path, small)
    known, perimeter = _chunk_frame(small, tally)
    tally.seconds["small"] = time.perf_counter() - tally.t_start
    with PartitionedWriter(out) as writer:
        audits, years, scan_findings = _write_small_tables(writer, small.tables, tally)
        if present:
            ctx = ChunkContext(
                path=path,
                delimiter=detect_csv(path)[1],
                known_audits=known,
                perimeter=perimeter,
                today=pd.Timestamp(today) if today is not None else pd.Timestamp.today().normalize(),
                audits=audits[["audit_id", "finess", "audit_date"]],
                kev=_load(kev_path or reference_file(dataset, KEV_FILES), "kev"),
                epss=_load(epss_path or reference_file(dataset, EPSS_FILES), "epss"),
                years=years,
                root=writer.tmp,
                extra_columns=dict(scan_findings.dtypes.items()) if len(scan_findings) else None,
            )
            _ingest_chunks(ctx, writer, tally, chunk_rows=chunk_rows, workers=workers, client=client)
        t = time.perf_counter()
        if len(scan_findings):  # findings read from scans/ by ingest_dataset, already normalized
            writer.append(FINDINGS, add_year(scan_findings, years=years))
            tally.findings += len(scan_findings)
        rejects, violations = _write_ledgers(writer, tally)
        summary = _summary(small.summary, path if present else None, tally, rejects, violations)
        tally.seconds["write_tables"] += time.perf_counter() - t
        summary["seconds"] = {k: round(v, 3) for k, v in tally.seconds.items()}
        summary["wall_seconds"] = round(time.perf_counter() - tally.t_start, 3)
        writer.commit({"ingest": summary, "rules": sorted(RULES)})
    return summary


@dataclass
class _Tally:
    """What an ingestion has gathered so far: ledgers, findings accounting, counts and timings."""

    t_start: float
    seconds: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    rejects: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    accounting: list = field(default_factory=list)
    findings_accounting: dict = field(default_factory=lambda: dict.fromkeys(ACCOUNTING_COUNTS, 0))
    read_report: dict = field(default_factory=dict)
    findings: int = 0
    chunks: int = 0
    workers: int = 1


def _check_findings_source(dataset: Path, path: Path, small) -> bool:
    """Whether ``findings.csv`` is there; raise :class:`DatasetFatalError` with every fatal problem
    (the small tables', a dataset with neither findings.csv nor scans/, an unreadable findings.csv)
    before anything is written."""
    present = path.exists() or path.is_symlink()  # a FIFO or a folder: the reader's error, never 0 rows
    fatal = list(small.fatal)
    if not present and not (dataset / "scans").is_dir():
        fatal.append(f"{path}: the dataset needs findings.csv or a scans/ folder [missing_file]")
    if present:
        try:
            detect_csv(path)  # unreadable, empty, no header, duplicated column: before anything is written
        except InputFileError as exc:
            fatal.append(f"{exc} [{getattr(exc, 'rule', None) or 'unreadable_file'}]")
    if fatal:
        raise DatasetFatalError(f"{dataset} cannot be ingested; nothing written:\n  " + "\n  ".join(fatal))
    return present


def _chunk_frame(small, tally: _Tally) -> tuple[pd.Index, object]:
    """The known audits and the declared perimeter the chunks are checked against; the small tables'
    ledgers start the tally, and their checked frames are freed."""
    tables = small.tables
    hosts_check = small.check.tables["hosts"]
    known = pd.Index(tables["audits"]["audit_id"].astype(str)) if len(tables["audits"]) else pd.Index([])
    perimeter = None
    if hosts_check.read is not None and not hosts_check.fatal:
        perimeter = perimeter_index(hosts_check.frame)
    tally.rejects.append(small.rejects)
    tally.violations.append(
        small.check.violations.query("not (file == 'findings.csv' and rule == 'missing_file')")
    )
    tally.accounting.extend(small.accounting.to_dict("records"))
    small.check = None  # the checked frames of hosts/controls are not needed any more: free them
    return known, perimeter


def _write_small_tables(writer: PartitionedWriter, tables: dict, tally: _Tally):
    """Write every table but findings first, so they leave memory before the chunks (and worker
    processes) start; return the audits, their years and the findings read from scans/."""
    t = time.perf_counter()
    audits, years = tables["audits"], _years(tables["audits"])
    for name in ("establishments", "audits", "hosts", "controls", "incidents", "protection"):
        frame = tables.pop(name)
        writer.append(name, add_year(frame, years=years) if "audit_id" in frame.columns else frame)
        del frame
    scan_findings = tables.pop(FINDINGS)
    gc.collect()
    tally.seconds["write_tables"] += time.perf_counter() - t
    return audits, years, scan_findings


def _ingest_chunks(
    ctx: ChunkContext, writer: PartitionedWriter, tally: _Tally, *, chunk_rows: int, workers: int, client
) -> None:
    """Read ``findings.csv`` in chunks of whole audits, run each through :class:`ChunkRunner` (checked,
    normalized, enriched, written as parts) and add its outcome to the tally; every record of the file
    must be accounted for."""
    path, acc = ctx.path, tally.findings_accounting
    with ChunkRunner(ctx, workers=workers, client=client) as runner:
        read = read_arrow_chunks(path, chunk_rows=chunk_rows, report=tally.read_report)
        for res in runner.map(_grouped(path, read, set(ctx.known_audits), tally.seconds)):
            tally.rejects.append(res.rejects)
            tally.violations.append(res.violations)
            for k in acc:
                acc[k] += res.accounting.get(k, 0)
            for k, v in res.seconds.items():
                tally.seconds[k] += v
            if res.parts:
                writer.register(FINDINGS, res.parts, res.schema)
            tally.findings += res.kept
            tally.chunks += 1
        tally.workers = runner.workers
    tally.accounting.append({"source_file": path.name, "table": FINDINGS, **acc})
    report = tally.read_report
    if report.get("issues"):  # the reader's warnings (bad_encoding, control_character)
        tally.violations.append(_reader_issues(path, report["issues"]))
    if "n_records" in report and report["n_records"] != acc["rows_read"]:
        raise AssertionError(f"{path}: {report['n_records']} records in the file, {acc['rows_read']} read")


def _write_ledgers(writer: PartitionedWriter, tally: _Tally) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the rejects (sorted by file and row), the accounting and the violations; return the first
    and the last."""
    rejects = pd.concat([r for r in tally.rejects if len(r)] or [tally.rejects[0]], ignore_index=True)
    rejects = rejects.sort_values(["source_file", "row"], kind="stable").reset_index(drop=True)
    writer.append("rejects", rejects.astype({"row": "Int64"}))
    writer.append("accounting", pd.DataFrame(tally.accounting, columns=list(S.ACCOUNTING_COLUMNS)))
    kept = [v for v in tally.violations if v is not None and len(v)] or [tally.violations[0]]
    violations = pd.concat(kept, ignore_index=True)
    writer.append("violations", violations.astype({"row": "Int64"}))
    return rejects, violations


def _summary(
    small_summary: dict, path: Path | None, tally: _Tally, rejects: pd.DataFrame, violations: pd.DataFrame
) -> dict:
    """The ingest summary: the small tables' one, completed with findings.csv (``path``, None when
    absent) read in chunks (hash, rows, CSV dialect, rejects, violations, chunks, workers)."""
    summary = dict(small_summary)
    summary["inputs"] = dict(summary.get("inputs", {}))
    if path is not None:
        summary["inputs"][path.name] = sha256_file(path)
    summary["rows"] = {**summary.get("rows", {}), FINDINGS: tally.findings}
    report = tally.read_report
    if report:
        summary["csv_files"] = {**summary.get("csv_files", {}), path.name: _csv_dialect(report)}
    severity = violations["severity"] if len(violations) else pd.Series(dtype=object)
    summary["rejected"] = len(rejects)
    summary["warnings"] = int((severity == "warning").sum())
    summary["errors"] = int((severity == "error").sum())
    summary["chunks"] = tally.chunks
    summary["workers"] = tally.workers
    summary["sort_keys"] = SORT_KEYS[FINDINGS]
    return summary


def _csv_dialect(report: dict) -> dict:
    """How findings.csv was written, as the chunked reader found it (the summary's ``csv_files`` entry)."""
    return {
        "encoding": report.get("encoding"),
        "bom": bool(report.get("bom", False)),
        "delimiter": {"\t": "tab"}.get(report.get("delimiter"), report.get("delimiter")),
        "line_end": report.get("line_end"),
        "records": int(report.get("n_records", 0)),
        "blank_lines": len(report.get("blank_lines", [])),
    }


def _reader_issues(path: Path, issues: list[dict]) -> pd.DataFrame:
    """The CSV reader's warnings as violations (file, line, column named), as ``checks.open_table`` lists them."""
    frame = pd.DataFrame(issues)
    return pd.DataFrame(
        {
            "file": path.name,
            "row": pd.array(frame["line"], dtype="Int64"),
            "column": frame["column"],
            "rule": frame["rule"],
            "severity": frame["severity"],
            "value": frame["value"],
            "message": frame["message"],
        }
    )


def _years(audits: pd.DataFrame) -> pd.Series:
    return year_of_audits(audits) if len(audits) else pd.Series(dtype="Int16")


def _grouped(path: Path, chunks, known: set, secs: dict):
    """Pass the chunks on, checking that no known audit comes back after another one; time the reading."""
    seen: set = set()
    t = time.perf_counter()
    for table, lines, ragged in chunks:
        secs["read"] += time.perf_counter() - t
        if "audit_id" in table.column_names:
            ids = set(pc.unique(table["audit_id"]).drop_null().to_pylist()) & known
            again = ids & seen
            if again:
                raise ValueError(f"{path}: not grouped by audit_id (audit {sorted(again)[0]} appears again "
                                 "after other audits); sort the file by audit_id or use ingest_dataset")  # fmt: skip
            seen |= ids
        yield table, lines, ragged
        t = time.perf_counter()


def _load(path, kind: str):
    if path is None:
        return None

    return read_kev(path) if kind == "kev" else read_epss(path)
