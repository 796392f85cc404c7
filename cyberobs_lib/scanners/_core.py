"""Shared machinery of the scanner readers: errors, result objects, the row collector, severity mapping.

Every reader appends one *item* per scanner record (a Nessus ``ReportItem``, an OpenVAS ``result``, an
open nmap port, a testssl row, ...) to a :class:`Collector`, with the scanner's native severity. The
collector turns its rows into the canonical findings frame in one vectorized step: the native severity is
looked up in ``cyberobs_lib/data/scanner_severity.csv`` (canonical severity + *disposition*), and the
disposition decides whether the item is kept or counted as skipped, and why. So the skip policy is data,
and the accounting identity ``items_read == findings + sum(skipped)`` holds by construction.
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib import schema
from cyberobs_lib.config import PACKAGE_DATA
from cyberobs_lib.severity_tables import cvss_bands, scanner_severity_table

F = schema.Findings
#: Columns of the findings frame returned by the readers, in order. ``scanner_severity``, ``scanner`` and
#: ``evidence`` are reader-level columns (not in the canonical contract yet).
SCANNER_SEVERITY = "scanner_severity"
SCANNER = "scanner"
EVIDENCE = "evidence"
FINDING_COLUMNS = (
    F.audit_id,
    F.host,
    F.port,
    F.protocol,
    F.service,
    F.vuln_id,
    F.cve,
    F.title,
    F.cvss_vector,
    F.cvss_score,
    F.severity,
    SCANNER_SEVERITY,
    SCANNER,
    F.first_seen,
    schema.SOURCE_FILE,
    schema.SOURCE_ROW,
    EVIDENCE,
)
CONTROL_COLUMNS = ("audit_id", "host", "control", "present", schema.SOURCE_FILE)
CELL_PROBLEM_COLUMNS = ("source_row", "column", "value", "rule")
_RAW = (
    "host",
    "port",
    "protocol",
    "service",
    "vuln_id",
    "cve",
    "title",
    "cvss_vector",
    "cvss_score",
    "scanner_severity",
    "first_seen",
    "source_row",
    "evidence",
    "scale",
    "native",
    "skip",
)
#: Skip reason per disposition of ``scanner_severity.csv`` (disposition ``finding`` is kept).
SKIP_REASONS = {
    "info": "informational",
    "pass": "check_passed",
    "scan_problem": "scan_problem",
    "false_positive": "false_positive",
}
EVIDENCE_MAX = 200
#: Completeness of one scan file, worst last: ``complete`` (the scanner says it finished, or says nothing
#: against it), ``incomplete`` (stopped early, interrupted, errors reported for part of the targets),
#: ``failed`` (the scanner reports that the scan itself failed: no target reached, fatal error).
SCAN_STATUSES = ("complete", "incomplete", "failed")


def worst_status(*statuses: str) -> str:
    """The worst of scan statuses (``failed`` > ``incomplete`` > ``complete``).

    >>> worst_status("complete", "incomplete"), worst_status()
    ('incomplete', 'complete')
    """
    return max(statuses, key=SCAN_STATUSES.index, default="complete")


class ScanError(ValueError):
    """A scanner export that cannot be read: names the file, the line and what was expected.

    ``str(err)`` is one line: ``"<file>: line <n>: <what is wrong>; expected <what>"``. Attributes:
    ``path``, ``line`` (1-based, or None when the problem is not tied to a line), ``element`` (XML tag) or
    ``row`` (data record), ``expected``, ``message``.

    Examples
    --------
    >>> str(ScanError("a.nessus", "wrong root element <x>", line=2, expected="<NessusClientData_v2>"))
    'a.nessus: line 2: wrong root element <x>; expected <NessusClientData_v2>'
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        element: str | None = None,
        row: int | None = None,
        expected: str = "",
    ) -> None:
        self.path = str(path)
        self.line = line
        self.element = element
        self.row = row
        self.expected = expected
        self.message = message
        where = f"line {line}: " if line is not None else ""
        tail = f"; expected {expected}" if expected else ""
        super().__init__(f"{self.path}: {where}{message}{tail}")


class ScanSecurityError(ScanError):
    """XML that declares entities, or references external resources: refused, never expanded or fetched."""


@dataclass
class ScanResult:
    """What one scanner export holds (see :func:`cyberobs_lib.scanners.read_scan_file`)."""

    format: str
    findings: pd.DataFrame
    hosts: list[str]
    controls: pd.DataFrame
    accounting: dict = field(default_factory=dict)
    source_file: str = ""
    #: one of :data:`SCAN_STATUSES`: what the scanner itself says of the scan (see each reader's policy)
    status: str = "complete"
    #: why the status is not ``complete`` (the scanner's words, ``; ``-separated), else ""
    status_detail: str = ""
    #: cells the reader could not convert (left empty): ``source_row, column, value, rule``; the ingest
    #: lists them as warnings, as the row rules do for findings.csv
    cell_problems: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(CELL_PROBLEM_COLUMNS))
    )


def severity_table() -> pd.DataFrame:
    """The native-severity mapping table ``scanner_severity.csv`` (cached; callers must not mutate it):
    :func:`cyberobs_lib.severity_tables.scanner_severity_table`."""
    return scanner_severity_table()


@functools.cache
def _cvss_lower_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower bounds, severities and dispositions of the CVSS v3.x bands of ``severity_bands.csv``."""
    bands = cvss_bands()
    bands = (
        bands.loc[bands["scale"] == "cvss3"]
        .assign(lo=lambda d: d["min_score"].astype(float))
        .sort_values("lo")
    )
    severity = bands["severity"].to_numpy(dtype=object)
    disposition = np.where(severity == "info", "info", "finding").astype(object)
    return bands["lo"].to_numpy(), severity, disposition


@functools.cache
def severity_keys(scanner: str, scale: str) -> frozenset[str]:
    """The native values listed for ``(scanner, scale)``, lowercase."""
    t = severity_table()
    return frozenset(t.loc[(t["scanner"] == scanner) & (t["scale"] == scale), "native"])


@functools.cache
def source_prefix(fmt: str) -> tuple[str, str]:
    """``(scanner, id_prefix)`` of a format, from ``scanner_sources.csv``."""
    t = pd.read_csv(PACKAGE_DATA / "scanner_sources.csv", comment="#", dtype=str, keep_default_na=False)
    row = t.loc[t["format"] == fmt].iloc[0]
    return row["scanner"], row["id_prefix"]


@functools.cache
def _lookup(scanner: str) -> tuple[dict[str, str | None], dict[str, str]]:
    """``"scale\\x1fnative"`` -> severity, and -> disposition, for one scanner (cached)."""
    t = severity_table()
    t = t.loc[t["scanner"] == scanner]
    keys = (t["scale"] + "\x1f" + t["native"]).tolist()
    sev = [v or None for v in t["severity"]]
    return dict(zip(keys, sev, strict=True)), dict(zip(keys, t["disposition"], strict=True))


def map_severity(scanner: str, scale: pd.Series, native: pd.Series) -> pd.DataFrame:
    """Canonical ``severity`` and ``disposition`` of native values, from ``scanner_severity.csv``.

    Parameters
    ----------
    scanner : str
        Scanner name (``nessus``, ``openvas``, ...).
    scale, native : pandas.Series
        Per item, the native scale (``severity``, ``threat``, ``cvss``, ...) and value.

    Returns
    -------
    pandas.DataFrame
        Same index; ``severity`` (canonical or None) and ``disposition`` (``finding`` for values not in the
        table, so that an unknown word never hides an item).

    Notes
    -----
    Scale ``cvss`` maps a numeric score by the CVSS v3.1 qualitative bands (``severity_bands.csv``, scale
    ``cvss3``; a score in the ``info`` band has disposition ``info``).

    Examples
    --------
    >>> import pandas as pd
    >>> map_severity("nessus", pd.Series(["severity", "risk"]), pd.Series(["0", "High"])).values.tolist()
    [['info', 'info'], ['high', 'finding']]
    >>> map_severity("nmap", pd.Series(["cvss"]), pd.Series(["9.8"])).values.tolist()
    [['critical', 'finding']]
    """
    out = pd.DataFrame({"severity": None, "disposition": "finding"}, index=native.index, dtype=object)
    key = native.astype("string").str.strip().str.lower()
    sev_of, disp_of = _lookup(scanner)
    joined = scale.astype("string").str.cat(key, sep="\x1f")
    found_sev = joined.map(sev_of)
    hit = joined.isin(disp_of.keys()).to_numpy()
    if hit.any():
        out.loc[hit, "severity"] = found_sev[hit].to_numpy()
        out.loc[hit, "disposition"] = joined[hit].map(disp_of).to_numpy()
    is_cvss = (scale == "cvss").to_numpy() & ~hit
    if is_cvss.any():
        lower, band_severity, band_disposition = _cvss_lower_bounds()
        score = pd.to_numeric(key[is_cvss], errors="coerce").to_numpy(dtype=float)
        pos = np.searchsorted(lower, score, side="right") - 1
        ok = (pos >= 0) & ~np.isnan(score)
        sev = np.where(ok, band_severity[np.clip(pos, 0, None)], None)
        dis = np.where(ok, band_disposition[np.clip(pos, 0, None)], "finding")
        out.loc[is_cvss, "severity"] = sev
        out.loc[is_cvss, "disposition"] = dis
    return out


def _none(values: pd.Series) -> pd.Series:
    """Object series with None (not NaN) for missing values."""
    values = values.astype(object)
    return values.where(values.notna(), None)


def _parse_dates(values: pd.Series) -> pd.Series:
    """Parse date strings (mixed formats) to tz-naive UTC datetimes; unique values parsed once."""
    uniq = values.dropna().unique()
    if len(uniq) == 0:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    with warnings.catch_warnings():  # "MST"-style abbreviations: dropped (documented), not an error
        warnings.simplefilter("ignore", FutureWarning)
        parsed = pd.to_datetime(pd.Series(uniq), format="mixed", errors="coerce", utc=True)
    parsed = parsed.dt.tz_localize(None)
    return values.map(dict(zip(uniq, parsed, strict=True))).astype("datetime64[ns]")


_RULE_OF = {"port": "port_range", "cvss_score": "cvss_score_range", "first_seen": "bad_date"}


def _cell_problems(raw: pd.DataFrame, converted: dict[str, pd.Series]) -> pd.DataFrame:
    """The cells given by the scanner that the conversion left empty (a port ``general``, a score
    ``n/a``, a date of no known format), or out of range (a port over 65535), as warnings to list."""
    parts = []
    for col, values in converted.items():
        given = raw[col]
        text = given.astype("string").str.strip()
        lost = (given.notna() & text.notna() & (text != "") & ~text.isin(["-", "'-"])).to_numpy()
        lost &= values.isna().to_numpy()
        if col == "port":
            lost |= (values.notna() & ((values < 0) | (values > 65535))).to_numpy()
        if lost.any():
            parts.append(
                pd.DataFrame(
                    {
                        "source_row": raw.loc[lost, "source_row"].astype("int64").to_numpy(),
                        "column": col,
                        "value": given[lost].astype(str).to_numpy(),
                        "rule": _RULE_OF[col],
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=list(CELL_PROBLEM_COLUMNS))
    return pd.concat(parts, ignore_index=True)


class Collector:
    """Accumulates the items of one file as column lists, then builds the findings frame in one go."""

    def __init__(self, fmt: str, path: str | Path, *, audit_id: str | None, include_info: bool) -> None:
        self.format = fmt
        self.scanner, self.prefix = source_prefix(fmt)
        self.path = str(path)
        self.audit_id = audit_id
        self.include_info = include_info
        self._dispositions = _lookup(self.scanner)[1]
        self.rows: list[tuple] = []
        self.hosts: set[str] = set()
        self.controls: list[tuple[str, str, bool]] = []
        self.extra_skipped: Counter = Counter()
        self.status = "complete"
        self.status_details: list[str] = []

    def flag(self, status: str, detail: str) -> None:
        """Record that the scan is ``incomplete`` or ``failed`` (kept across chunks: a file property)."""
        if status not in SCAN_STATUSES:
            raise ValueError(f"unknown scan status {status!r}; expected one of {SCAN_STATUSES}")
        self.status = worst_status(self.status, status)
        if detail and detail not in self.status_details:
            self.status_details.append(detail)

    def add(self, **row) -> None:
        """Append one item; missing fields are None. ``scale``/``native`` drive severity and disposition.

        An item that will be skipped anyway (a reader-level ``skip`` reason, or a native value whose
        disposition in the table is not kept) is counted at once instead of becoming a row: same
        accounting as the vectorized path, without the cost of a row for every informational item.
        """
        skip = row.get("skip")
        if skip is None:
            native = row.get("native")
            disp = self._dispositions.get(f"{row.get('scale')}\x1f{str(native).strip().lower()}")
            if disp is not None and disp != "finding" and not (disp == "info" and self.include_info):
                skip = SKIP_REASONS[disp]
        if skip is not None:
            self.extra_skipped[skip] += 1
            return
        self.rows.append(tuple(map(row.get, _RAW)))

    def add_block(self, n: int, **columns) -> None:
        """Append ``n`` items at once (vectorized readers); each column is a sequence of length ``n``."""
        cols = [[None] * n if columns.get(name) is None else list(columns[name]) for name in _RAW]
        self.rows.extend(zip(*cols, strict=True))

    def update_row(self, i: int, **changes) -> None:
        """Change fields of row ``i`` (values known only after the row, e.g. from a report glossary)."""
        row = dict(zip(_RAW, self.rows[i], strict=True))
        row.update(changes)
        self.rows[i] = tuple(row[c] for c in _RAW)

    def fill(self, name: str, start: int, value) -> None:
        """Set column ``name`` to ``value`` in rows ``start:`` (e.g. the host, known at the host's end)."""
        k = _RAW.index(name)
        rows = self.rows
        for i in range(start, len(rows)):
            row = rows[i]
            rows[i] = row[:k] + (value,) + row[k + 1 :]

    def field(self, i: int, name: str):
        """Field ``name`` of row ``i``."""
        return self.rows[i][_RAW.index(name)]

    def flush(self) -> ScanResult:
        """The result of the items collected since the last flush, and reset (streaming in chunks)."""
        res = self.result()
        self.rows = []
        self.hosts = set()
        self.controls = []
        self.extra_skipped = Counter()
        return res

    def __len__(self) -> int:
        return len(self.rows)

    def add_control(self, host: str, control: str, present: bool) -> None:
        self.controls.append((host, control, bool(present)))

    def skip(self, reason: str, n: int = 1) -> None:
        """Count items read but not turned into rows (e.g. a record without a host)."""
        self.extra_skipped[reason] += n

    def result(self) -> ScanResult:
        """The :class:`ScanResult` of the items collected so far (resets nothing)."""
        raw = (
            pd.DataFrame.from_records(self.rows, columns=list(_RAW))
            if self.rows
            else pd.DataFrame({c: pd.Series(dtype=object) for c in _RAW})
        )
        n_read = len(raw) + sum(self.extra_skipped.values())
        mapped = map_severity(self.scanner, raw["scale"], raw["native"])
        reason = raw["skip"].astype(object)
        by_disposition = mapped["disposition"].map(SKIP_REASONS)
        if self.include_info:
            by_disposition = by_disposition.where(mapped["disposition"] != "info")
        reason = reason.where(reason.notna(), by_disposition)
        keep = reason.isna().to_numpy()
        skipped = Counter(self.extra_skipped)
        skipped.update(reason[~keep].value_counts().to_dict())
        kept = raw.loc[keep]
        port = pd.to_numeric(kept["port"], errors="coerce")
        score = pd.to_numeric(kept["cvss_score"], errors="coerce")
        seen = _parse_dates(kept["first_seen"])
        problems = _cell_problems(kept, {"port": port, "cvss_score": score, "first_seen": seen})
        findings = pd.DataFrame(
            {
                F.audit_id: pd.Series(self.audit_id, index=kept.index, dtype=object),
                F.host: kept["host"],
                F.port: port.where((port >= 0) & (port <= 65535)).astype("Int32"),
                F.protocol: _none(kept["protocol"].astype("string").str.lower()),
                F.service: kept["service"],
                F.vuln_id: kept["vuln_id"],
                F.cve: kept["cve"],
                F.title: kept["title"],
                F.cvss_vector: kept["cvss_vector"],
                F.cvss_score: score.astype(float),
                F.severity: mapped.loc[keep, "severity"].astype(object),
                SCANNER_SEVERITY: kept["scanner_severity"],
                SCANNER: self.scanner,
                F.first_seen: seen,
                schema.SOURCE_FILE: self.path,
                schema.SOURCE_ROW: kept["source_row"].astype("int64"),
                EVIDENCE: _none(kept["evidence"].astype("string").str.slice(0, EVIDENCE_MAX)),
            },
            columns=list(FINDING_COLUMNS),
        ).reset_index(drop=True)
        controls = pd.DataFrame(self.controls, columns=["host", "control", "present"])
        controls.insert(0, "audit_id", self.audit_id)
        controls[schema.SOURCE_FILE] = self.path
        accounting = {
            "items_read": int(n_read),
            "findings": int(len(findings)),
            "skipped": {str(k): int(v) for k, v in sorted(skipped.items())},
        }
        return ScanResult(
            format=self.format,
            findings=findings,
            hosts=sorted(h for h in self.hosts if h),
            controls=controls.astype({"present": bool}),
            accounting=accounting,
            source_file=self.path,
            status=self.status,
            status_detail="; ".join(self.status_details),
            cell_problems=problems,
        )


def join_cves(values) -> str | None:
    """``"CVE-a;CVE-b"`` from an iterable of CVE strings (uppercased, de-duplicated, order kept), or None."""
    seen: dict[str, None] = {}
    for v in values:
        if not v:
            continue
        for part in str(v).replace(",", " ").replace(";", " ").split():
            part = part.strip().upper()
            if part.startswith("CVE-"):
                seen[part] = None
    return ";".join(seen) or None


def empty_result(fmt: str, path: str | Path, *, audit_id: str | None) -> ScanResult:
    """The result of a file with no items (an empty file, a report with zero results)."""
    res = Collector("nessus_xml", path, audit_id=audit_id, include_info=False).result()
    res.format = fmt
    res.findings[SCANNER] = res.findings[SCANNER].astype(object)
    return res
