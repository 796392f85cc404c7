"""The machinery of the contract checks: rule codes, the per-file check record, shared row rules.

:class:`TableCheck` collects the violations of one input file (``file, row, column, rule, severity,
value, message``; ``row`` is the physical line, the header being line 1) and the rows they reject;
:func:`open_table` reads a contract file and applies the file-level rules (missing file or column, ragged
records, required values). The per-table rules live in :mod:`cyberobs_lib.validate` and, for
findings.csv, are shared with the chunked ingestion of :mod:`cyberobs_lib.scale`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib import schema as S
from cyberobs_lib.config import MIN_AUDIT_DATE
from cyberobs_lib.io import CsvRead, InputFileError, read_table_csv
from cyberobs_lib.parsing import distinct_probe, parse_dates

#: Rule code → one-line description (the rules table shown in the README and the data-quality notebook).
RULES: dict[str, str] = {
    "missing_file": "a required file of the dataset folder is absent",
    "unreadable_file": "the file cannot be read as CSV",
    "runaway_quote": "a quote opens a cell that never closes, or closes lines later: the file is rejected",
    "duplicate_column": "two columns of the header have the same name (case-insensitive): the file is rejected",
    "record_count": "the CSV parser and the byte scan disagree on the number of records: the file is rejected",
    "bad_encoding": "bytes not valid in the file's encoding, replaced by U+FFFD (warning)",
    "control_character": "a NUL or other control character inside a cell, removed (warning)",
    "missing_column": "a required column is absent from the header",
    "unknown_column": "a column outside the contract (kept, reported)",
    "ragged_row": "the record has more or fewer cells than the header",
    "required_value": "a required cell is empty",
    "finess_format": "FINESS must be 9 characters with a valid department prefix (01-95, 2A, 2B, 97x, 98x)",
    "finess_check_key": "the FINESS check key (Luhn over the 9 characters) fails (warning only)",
    "finess_leading_zero": "leading zero lost (spreadsheet?): an 8-digit FINESS (rejected; kept zero-padded "
    "with a warning when pad_finess=True and the padded number passes the check key)",
    "unknown_department": "department not in the department table (cyberobs_lib/data/departments.csv): "
    "blanked, derived from the FINESS (warning)",
    "unknown_region": "region not an INSEE region code of the department table: blanked, derived (warning)",
    "duplicate_id": "an identifier that must be unique appears again with different content",
    "duplicate_row": "an exact copy of an earlier row (counted as duplicate, not kept twice)",
    "unknown_category": "category_code not in the FINESS category table (cyberobs_lib/data/finess_categories.csv)",
    "unknown_legal_status": "legal_status not public/private_nonprofit/private_forprofit nor a FINESS code",
    "unknown_finess": "the FINESS number does not exist in establishments.csv",
    "unknown_audit": "the audit_id does not exist in audits.csv (or its audit was rejected)",
    "bad_date": "not a date (ISO 8601 yyyy-mm-dd or dd/mm/yyyy expected)",
    "future_date": "a date in the future",
    "date_too_early": f"a date before {MIN_AUDIT_DATE}",
    "not_integer": "an integer is expected",
    "negative_count": "a count must be >= 0",
    "port_range": "port must be an integer in 0-65535",
    "unknown_protocol": "protocol must be tcp, udp or icmp",
    "cvss_score_range": "cvss_score must be a number in 0-10",
    "bad_cvss_vector": "not a CVSS v2, v3.0, v3.1 or v4.0 vector",
    "cvss_vector_prefix": "a CVSS v3 vector without its CVSS:3.x/ prefix: read as CVSS:3.0 (warning)",
    "unknown_severity": "severity must be critical, high, medium, low or info",
    "unknown_category_label": "category not in the finding taxonomy",
    "bad_cve": "CVE identifiers must look like CVE-YYYY-NNNN (several separated by ';')",
    "unknown_control": "control outside the contract vocabulary (kept, reported)",
    "bad_boolean": "a boolean is expected (true/false, 1/0, oui/non, yes/no)",
    "unknown_nature": "nature must be malicious, accidental or unknown (malveillant/accidentel accepted)",
    "unknown_incident_type": "type outside the incident vocabulary",
    "unknown_impact": "impact_on_care must be none, degraded, interrupted or unknown",
    "incident_without_frame": "an incident needs finess, category_code or family",
    "hosts_disagree": "hosts.csv lists a different number of hosts than hosts_in_scope",
    "host_not_in_perimeter": "a finding on a host absent from that audit's hosts.csv perimeter",
    "unreadable_scan": "a scanner file that cannot be read or was refused (format, syntax, limits, links)",
    "incomplete_scan": "the scanner reports a scan stopped early, interrupted or failed: the audit is flagged",
}


VIOLATION_COLUMNS = ("file", "row", "column", "rule", "severity", "value", "message")
#: Rules that make a whole file unusable (the file is rejected, none of its rows is read).
FILE_RULES = (
    "missing_file",
    "unreadable_file",
    "missing_column",
    "runaway_quote",
    "duplicate_column",
    "record_count",
)


@dataclass
class TableCheck:
    """Result of checking one input file: its typed frame, the per-row error mask and violations."""

    name: str
    path: Path
    read: CsvRead | None
    frame: pd.DataFrame
    violations: list[pd.DataFrame] = field(default_factory=list)
    #: rows (index labels of ``frame``) that carry at least one error, with the first reason
    rejected: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    duplicates: pd.Index = field(default_factory=lambda: pd.Index([]))
    #: rows gathered from several files (scanner exports): per row, its file and its row in that file
    #: (item number); they replace ``path.name`` and ``read.lines`` in the violations
    files: pd.Series | None = None
    rows: pd.Series | None = None

    def add(
        self,
        mask: pd.Series,
        column: str,
        rule: str,
        *,
        severity: str = "error",
        message: str | None = None,
        values: pd.Series | None = None,
    ) -> None:
        """Record a violation for every row where ``mask`` is true."""
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        idx = mask[mask].index
        vals = (
            values if values is not None else self.frame.get(column, pd.Series(None, index=self.frame.index))
        )
        if self.rows is not None:
            rows = self.rows.loc[idx]
        elif self.read is not None and self.read.lines is not None:
            rows = self.read.lines.loc[idx]
        else:
            rows = idx + 2
        self.violations.append(
            pd.DataFrame(
                {
                    "file": self.path.name if self.files is None else self.files.loc[idx].to_numpy(),
                    "row": pd.array(np.asarray(rows), dtype="Int64"),
                    "column": column,
                    "rule": rule,
                    "severity": severity,
                    "value": vals.loc[idx].astype(object).where(vals.loc[idx].notna(), None).to_numpy(),
                    "message": message or RULES[rule],
                }
            )
        )
        if severity == "error":
            new = idx.difference(self.rejected.index)
            self.rejected = pd.concat([self.rejected, pd.Series(rule, index=new, dtype=object)])

    def add_file(
        self, rule: str, message: str, *, column: str | None = None, severity: str = "error"
    ) -> None:
        self.violations.append(
            pd.DataFrame(
                [
                    {
                        "file": self.path.name,
                        "row": pd.NA,
                        "column": column,
                        "rule": rule,
                        "severity": severity,
                        "value": None,
                        "message": message,
                    }
                ],
            ).astype({"row": "Int64"})
        )

    @property
    def fatal(self) -> bool:
        """True when the file cannot be used at all (missing, unreadable, its records not recoverable, or a
        required column missing)."""
        return any((v["rule"].isin(FILE_RULES)).any() for v in self.violations)


# --------------------------------------------------------------------------------------------------
# Per-file checks
# --------------------------------------------------------------------------------------------------
def open_table(dataset: Path, name: str) -> TableCheck:
    path = dataset / f"{name}.csv"
    spec = S.INPUT_FILES[name]
    empty = pd.DataFrame(columns=list(spec["required"] + spec["optional"]), dtype=object)
    if not path.exists() and not path.is_symlink():
        check = TableCheck(name, path, None, empty)
        if name in S.REQUIRED_FILES:
            check.add_file("missing_file", f"{path.name} is required in the dataset folder {dataset}")
        return check
    try:
        read = read_table_csv(path)  # a directory, FIFO or dangling link: unreadable_file, never opened
    except InputFileError as exc:
        check = TableCheck(name, path, None, empty)
        rule = exc.rule if exc.rule in RULES else "unreadable_file"
        check.violations.append(
            pd.DataFrame(
                {
                    "file": [path.name],
                    "row": pd.array([exc.line], dtype="Int64"),
                    "column": [None],
                    "rule": [rule],
                    "severity": ["error"],
                    "value": [None],
                    "message": [str(exc)],
                }
            )
        )
        return check
    if read.issues:  # reader warnings (bad_encoding, control_character): file, line, column named
        issues = pd.DataFrame(read.issues)
        check_issues = pd.DataFrame(
            {
                "file": path.name,
                "row": pd.array(issues["line"], dtype="Int64"),
                "column": issues["column"],
                "rule": issues["rule"],
                "severity": issues["severity"],
                "value": issues["value"],
                "message": issues["message"],
            }
        )
    else:
        check_issues = None
    frame = read.frame
    present = [c.lower() for c in read.original_columns]
    for col in spec["required"] + spec["optional"]:
        if col not in frame.columns:
            frame[col] = None
    check = TableCheck(name, path, read, frame)
    if check_issues is not None:
        check.violations.append(check_issues)
    for col in spec["required"]:
        if col not in present:
            check.add_file(
                "missing_column", f"required column '{col}' is absent from {path.name}", column=col
            )
    known = set(spec["required"] + spec["optional"])
    for col in present:
        if col and col not in known:
            check.add_file(
                "unknown_column",
                f"column '{col}' is not in the contract; kept and ignored",
                column=col,
                severity="warning",
            )
    ragged = read.frame.attrs.get("ragged_rows", [])
    if ragged:
        mask = read.lines.isin(ragged)
        check.add(mask, "*", "ragged_row", values=pd.Series("", index=frame.index))
    for col in spec["required"]:
        if col in present:
            check.add(frame[col].isna(), col, "required_value")
    return check


def check_duplicates(check: TableCheck, key: str) -> None:
    """Exact duplicate rows are counted as duplicates; same key with other content is an error."""
    frame = check.frame
    exact = frame.duplicated(keep="first")
    check.duplicates = frame.index[exact]
    if exact.any():
        check.add(
            exact,
            key,
            "duplicate_row",
            severity="warning",
            message="exact copy of an earlier row; counted once",
        )
    rest = frame[~exact]
    clash = rest[key].notna() & rest.duplicated(subset=[key], keep="first")
    check.add(
        clash.reindex(frame.index, fill_value=False),
        key,
        "duplicate_id",
        message=f"{key} already used by an earlier row with different content",
    )


def check_date(
    check: TableCheck, col: str, *, today: pd.Timestamp, not_before: str | None = None
) -> pd.Series:
    parsed, bad = parse_dates(check.frame[col])
    check.add(bad, col, "bad_date")
    check.add(parsed > today, col, "future_date", message=f"date after today ({today.date()})")
    if not_before:
        check.add(parsed < pd.Timestamp(not_before), col, "date_too_early")
    return parsed


def kept_values(check: TableCheck, col: str) -> pd.Series:
    if check.fatal:
        return pd.Series([], dtype="string")
    ok = check.frame.index.difference(check.rejected.index).difference(check.duplicates)
    return check.frame.loc[ok, col].dropna()


def check_audit_ref(c: TableCheck, audits: TableCheck) -> None:
    kept = kept_values(audits, "audit_id")
    c.add(c.frame["audit_id"].notna() & ~c.frame["audit_id"].isin(kept), "audit_id", "unknown_audit")


def on_distinct(values: pd.Series, func, *, text: bool = True) -> pd.Series:
    """``func`` evaluated once per distinct value of ``values`` and mapped back by integer codes.

    ``text``: the distinct values are given as a ``string`` Series (``<NA>`` for missing) and the result
    keeps ``func``'s dtype; otherwise as an object Series (``None`` for missing), for the boolean rules.
    Millions of cells share a few thousand values (hosts: one in six), so the string work shrinks.

    Examples
    --------
    >>> on_distinct(pd.Series([" TCP", "udp", None, " TCP"]), lambda u: u.str.strip().str.lower()).tolist()
    ['tcp', 'udp', <NA>, 'tcp']
    """
    codes, probe = distinct_probe(values)
    result = func(probe.astype("string") if text else probe)
    if text:
        return pd.Series(result.array.take(codes), index=values.index)
    return pd.Series(result.to_numpy(dtype=bool)[codes], index=values.index)


def lower_strip(values: pd.Series) -> pd.Series:
    return on_distinct(values, lambda u: u.str.strip().str.lower())
