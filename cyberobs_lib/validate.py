"""Validate a dataset folder against the input data contract, reporting every violation at once.

Each rule is vectorized over a whole column and yields one violation row per offending cell:
``file, row, column, rule, severity, value, message``. ``row`` is the physical line of the record in the
file (the header is line 1); file-level problems (missing file or column) have an empty ``row``.
``severity`` is ``error`` (the row is rejected at ingestion) or ``warning`` (kept, reported).

Rules are identified by stable codes (see :data:`RULES`), used as reason codes in the rejects table.
Nothing here changes the input files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cyberobs_lib import registry
from cyberobs_lib import schema as S
from cyberobs_lib.checks import (  # noqa: F401 - RULES, TableCheck re-exported (public names of this module)
    RULES,
    VIOLATION_COLUMNS,
    TableCheck,
    check_audit_ref,
    check_date,
    check_duplicates,
    kept_values,
    lower_strip,
    on_distinct,
    open_table,
)
from cyberobs_lib.config import MIN_AUDIT_DATE
from cyberobs_lib.io import InputFileError
from cyberobs_lib.parsing import (  # noqa: F401 - re-exported: the contract's cell parsers
    cve_list_ok,
    cvss_vector_ok,
    parse_bool,
    parse_dates,
    parse_float,
    parse_int,
)
from cyberobs_lib.rows import findings_rules, perimeter_index  # noqa: F401 - re-exported

#: The message of the ``finess_leading_zero`` rule (an 8-digit FINESS: a spreadsheet read it as a number).
LEADING_ZERO = "leading zero lost (spreadsheet?)"


def _clean_finess(values: pd.Series) -> pd.Series:
    """FINESS cells upper-cased without any blank (display format ``NN NNN NNN N``, NBSP included)."""
    return values.astype("string").str.upper().str.replace(r"\s+", "", regex=True).replace("", pd.NA)


def _check_finess(c: TableCheck, col: str, *, pad_finess: bool) -> pd.Series:
    """Clean the FINESS column ``col`` of ``c.frame`` in place and apply the ``finess_leading_zero`` rule.

    An 8-digit number that is valid once zero-padded (:func:`registry.finess_lost_leading_zero`) lost its
    leading zero in a spreadsheet: the row is rejected, the message giving the count in the file, unless
    ``pad_finess`` is true and the padded number passes the check key: the padded number is then kept,
    with a warning. Returns the mask of the rows so rejected (the other FINESS rules skip them).
    """
    fin = _clean_finess(c.frame[col])
    lost = registry.finess_lost_leading_zero(fin)
    rejected = pd.Series(False, index=fin.index)
    if lost.any():
        padded = ("0" + fin).where(lost)
        key = registry.finess_key_ok(padded) & lost
        found = f"{LEADING_ZERO}: {int(lost.sum())} FINESS number(s) of 8 digits in {c.path.name}"
        if pad_finess:
            c.add(
                key,
                col,
                "finess_leading_zero",
                severity="warning",
                message=f"{found}; restored with its zero (pad_finess=True: the padded number passes the check key)",
            )
            fin = fin.mask(key, padded)
        else:
            c.add(
                key,
                col,
                "finess_leading_zero",
                message=f"{found}; valid once zero-padded (check key holds): pad_finess=True keeps it, padded",
            )
        rejected = lost & ~key if pad_finess else lost
        c.add(
            lost & ~key,
            col,
            "finess_leading_zero",
            message=f"{found}; the zero-padded number fails the check key too: rejected, even with pad_finess=True",
        )
    c.frame[col] = fin
    return rejected


def _blank(c: TableCheck, mask: pd.Series, col: str, rule: str, **kwargs) -> pd.Series:
    """An optional cell that cannot be read: reported as a warning (with its value), the cell blanked."""
    mask = mask.fillna(False).astype(bool)
    c.add(mask, col, rule, severity="warning", **kwargs)
    return mask


def check_establishments(dataset: Path, *, today: pd.Timestamp, pad_finess: bool = False) -> TableCheck:
    """establishments.csv: ``finess`` and ``category_code`` reject the row; the optional cells (``beds``,
    ``legal_status``, ``department``, ``region``) that cannot be read are blanked with a warning."""
    c = open_table(dataset, "establishments")
    if c.fatal:
        return c
    f = c.frame
    lost = _check_finess(c, "finess", pad_finess=pad_finess)
    fmt_ok = registry.finess_format_ok(f["finess"]).fillna(False).astype(bool)
    c.add(f["finess"].notna() & ~fmt_ok & ~lost, "finess", "finess_format")
    key_ok = registry.finess_key_ok(f["finess"]).fillna(False).astype(bool)
    c.add(fmt_ok & ~key_ok, "finess", "finess_check_key", severity="warning")
    f["finess_key_ok"] = key_ok
    check_duplicates(c, "finess")
    codes = f["category_code"].astype("string").str.strip().str.zfill(3)
    f["category_code"] = codes
    known = set(registry.load_categories()["category_code"].astype(str))
    unknown = codes.notna() & ~codes.isin(known)
    if unknown.any():
        listed = ", ".join(sorted(codes[unknown].unique()))
        c.add(
            unknown,
            "category_code",
            "unknown_category",
            message=f"unknown FINESS category code(s) {listed}: extend cyberobs_lib/data/finess_categories.csv",
        )
    if f["legal_status"].notna().any():
        norm = registry.normalize_legal_status(f["legal_status"])
        _blank(c, f["legal_status"].notna() & norm.isna(), "legal_status", "unknown_legal_status")
        f["legal_status"] = norm
    beds, bad = parse_int(f["beds"])
    _blank(c, bad, "beds", "not_integer")
    negative = _blank(c, beds < 0, "beds", "negative_count")
    f["beds"] = beds.mask(negative)
    deps = registry.load_departments()
    if f["department"].notna().any():
        dep = f["department"].astype("string").str.strip().str.upper().replace("", pd.NA).str.zfill(2)
        unknown = _blank(
            c, dep.notna() & ~dep.isin(set(deps["department"]) | set(deps["registry_code"])), "department",
            "unknown_department",
        )  # fmt: skip
        f["department"] = dep.mask(unknown)
    if f["region"].notna().any():
        reg = f["region"].astype("string").str.strip().replace("", pd.NA)
        reg = reg.where(~reg.str.fullmatch(r"[0-9]").fillna(False).astype(bool), "0" + reg)
        regions = set(deps["region_code"]) - {""}
        unknown = _blank(c, reg.notna() & ~reg.isin(regions), "region", "unknown_region")
        f["region"] = reg.mask(unknown)
    return c


def check_audits(
    dataset: Path, establishments: TableCheck, *, today: pd.Timestamp, pad_finess: bool = False
) -> TableCheck:
    """audits.csv: every column but ``scanner`` and ``perimeter`` (free text) is required and rejects."""
    c = open_table(dataset, "audits")
    if c.fatal:
        return c
    f = c.frame
    check_duplicates(c, "audit_id")
    lost = _check_finess(c, "finess", pad_finess=pad_finess)
    kept = kept_values(establishments, "finess")
    c.add(
        f["finess"].notna() & ~lost & ~f["finess"].isin(kept),
        "finess",
        "unknown_finess",
        message="no such establishment in establishments.csv (or it was rejected): orphan audit",
    )
    # a date column: the day (in UTC) of a date-time, as the contract types it
    f["audit_date"] = check_date(c, "audit_date", today=today, not_before=MIN_AUDIT_DATE).dt.normalize()
    hosts, bad = parse_int(f["hosts_in_scope"])
    c.add(bad, "hosts_in_scope", "not_integer")
    c.add(hosts < 0, "hosts_in_scope", "negative_count")
    f["hosts_in_scope"] = hosts
    return c


def check_hosts(dataset: Path, audits: TableCheck) -> TableCheck:
    c = open_table(dataset, "hosts")
    if c.fatal or c.read is None:
        return c
    c.frame["host"] = on_distinct(c.frame["host"], lambda u: u.str.lower())
    check_audit_ref(c, audits)
    exact = c.frame.duplicated(keep="first")
    c.duplicates = c.frame.index[exact]
    if not audits.fatal:
        counts = c.frame[~exact].groupby("audit_id").size()
        declared = audits.frame.drop_duplicates("audit_id").set_index("audit_id")["hosts_in_scope"]
        both = pd.concat(
            [counts.rename("listed"), declared.rename("declared")], axis=1, join="inner"
        ).dropna()
        disagree = both[both["listed"] != both["declared"]]
        for audit_id, row in disagree.iterrows():
            c.add_file(
                "hosts_disagree",
                f"audit {audit_id}: hosts.csv lists {int(row['listed'])} hosts, "
                f"audits.csv says hosts_in_scope={int(row['declared'])}",
                column="host",
                severity="warning",
            )
    return c


def check_findings(
    dataset: Path, audits: TableCheck, hosts: TableCheck, *, today: pd.Timestamp
) -> TableCheck:
    c = open_table(dataset, "findings")
    if c.fatal or c.read is None:
        return c
    known = pd.Index(kept_values(audits, "audit_id").unique())
    perimeter = perimeter_index(hosts.frame) if hosts.read is not None and not hosts.fatal else None
    findings_rules(c, known_audits=known, perimeter=perimeter, today=today)
    return c


def check_controls(dataset: Path, audits: TableCheck) -> TableCheck:
    c = open_table(dataset, "controls")
    if c.fatal or c.read is None:
        return c
    f = c.frame
    check_audit_ref(c, audits)
    f["control"] = lower_strip(f["control"])
    c.add(
        f["control"].notna() & ~f["control"].isin(S.CONTROLS),
        "control",
        "unknown_control",
        severity="warning",
    )
    present, bad = parse_bool(f["present"])
    c.add(bad, "present", "bad_boolean")
    f["present"] = present
    exact = f.duplicated(keep="first")
    c.duplicates = f.index[exact]
    clash = ~exact & f.duplicated(subset=["audit_id", "control"], keep=False) & f["present"].notna()
    c.add(
        clash & f.duplicated(subset=["audit_id", "control"], keep="first"),
        "control",
        "duplicate_id",
        message="the same control is given twice for this audit with different values",
    )
    return c


def check_incidents(
    dataset: Path, establishments: TableCheck, *, today: pd.Timestamp, pad_finess: bool = False
) -> TableCheck:
    """incidents.csv: ``incident_id``, ``declared_on``, ``nature`` and a readable frame (``finess``, else
    ``category_code``, else ``family``) reject the row; an unreadable ``type`` or ``impact_on_care``, or a
    ``category_code`` the row does not need (it has a ``finess`` or a ``family``), is blanked with a warning.
    """
    c = open_table(dataset, "incidents")
    if c.fatal or c.read is None:
        return c
    f = c.frame
    check_duplicates(c, "incident_id")
    f["declared_on"] = check_date(c, "declared_on", today=today, not_before=MIN_AUDIT_DATE).dt.normalize()
    lost = _check_finess(c, "finess", pad_finess=pad_finess)
    fin = f["finess"]
    fmt_ok = registry.finess_format_ok(fin).fillna(False).astype(bool)
    c.add(fin.notna() & ~fmt_ok & ~lost, "finess", "finess_format")
    c.add(
        fin.notna() & fmt_ok & ~fin.isin(kept_values(establishments, "finess")),
        "finess",
        "unknown_finess",
        severity="warning",
        message="incident of an establishment outside establishments.csv: kept, no family",
    )
    c.add(fin.isna() & f["category_code"].isna() & f["family"].isna(), "finess", "incident_without_frame")
    codes = f["category_code"].astype("string").str.strip().str.zfill(3)
    known = set(registry.load_categories()["category_code"].astype(str))
    unknown = codes.notna() & ~codes.isin(known)
    needed = fin.isna() & f["family"].isna()
    c.add(unknown & needed, "category_code", "unknown_category")
    spare = _blank(
        c,
        unknown & ~needed,
        "category_code",
        "unknown_category",
        message=RULES["unknown_category"] + ": blanked, the row has a finess or a family",
    )
    f["category_code"] = codes.mask(spare)
    nature = f["nature"].astype("string").str.lower().str.strip().map(S.NATURE_ALIASES)
    c.add(f["nature"].notna() & nature.isna(), "nature", "unknown_nature")
    f["nature"] = nature
    typ = f["type"].astype("string").str.lower().str.strip()
    bad = _blank(c, typ.notna() & ~typ.isin(S.INCIDENT_TYPES), "type", "unknown_incident_type")
    f["type"] = typ.mask(bad)
    imp = f["impact_on_care"].astype("string").str.lower().str.strip()
    bad = _blank(c, imp.notna() & ~imp.isin(S.IMPACTS_ON_CARE), "impact_on_care", "unknown_impact")
    f["impact_on_care"] = imp.mask(bad)
    return c


@dataclass
class DatasetCheck:
    """All checks of a dataset folder; ``violations`` is the one table to show."""

    dataset: Path
    tables: dict[str, TableCheck]

    @property
    def violations(self) -> pd.DataFrame:
        parts = [v for t in self.tables.values() for v in t.violations]
        if not parts:
            return pd.DataFrame(columns=list(VIOLATION_COLUMNS)).astype({"row": "Int64"})
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values(
            ["file", "row", "column", "rule"], na_position="first", kind="stable"
        ).reset_index(drop=True)

    @property
    def errors(self) -> pd.DataFrame:
        v = self.violations
        return v[v["severity"] == "error"].reset_index(drop=True)

    @property
    def ok(self) -> bool:
        return self.errors.empty


def check_dataset(
    dataset: Path | str,
    *,
    today: str | pd.Timestamp | None = None,
    findings: bool = True,
    pad_finess: bool = False,
) -> DatasetCheck:
    """Check every file of a dataset folder against the contract; never raises on bad content.

    Parameters
    ----------
    dataset
        The dataset folder (``establishments.csv``, ``audits.csv``, ...).
    today
        Reference date for the "not in the future" rule (default: the current date).
    pad_finess
        Restore the leading zero of 8-digit FINESS numbers (``10000024`` → ``010000024``, as a spreadsheet
        writes numbers of departments 01-09) when the padded number passes the check key: the row is kept
        with a ``finess_leading_zero`` warning. Default ``False``: such rows are rejected
        (``finess_leading_zero``, message "leading zero lost (spreadsheet?)" with their count), as are,
        always, those whose padded number fails the key. Applies to establishments, audits and incidents.

    Returns
    -------
    DatasetCheck
        ``.violations``: one row per violation (``file, row, column, rule, severity, value, message``);
        ``.tables``: per file, the typed frame, the rejected rows and duplicates.
    """
    dataset = Path(dataset)
    today = pd.Timestamp(today) if today is not None else pd.Timestamp.today().normalize()
    if not dataset.is_dir():
        raise InputFileError(dataset, "is not a dataset folder")
    est = check_establishments(dataset, today=today, pad_finess=pad_finess)
    aud = check_audits(dataset, est, today=today, pad_finess=pad_finess)
    hosts = check_hosts(dataset, aud)
    tables = {
        "establishments": est,
        "audits": aud,
        "hosts": hosts,
        "findings": check_findings(dataset, aud, hosts, today=today)
        if findings
        else TableCheck("findings", dataset / "findings.csv", None, pd.DataFrame()),
        "controls": check_controls(dataset, aud),
        "incidents": check_incidents(dataset, est, today=today, pad_finess=pad_finess),
    }
    absent = not os.path.lexists(dataset / "findings.csv")  # present but unreadable: already an error
    if findings and absent and tables["findings"].read is None and not (dataset / "scans").is_dir():
        tables["findings"].add_file(
            "missing_file",
            f"{dataset / 'findings.csv'}: no such file; the dataset needs findings.csv or a scans/ folder "
            "[missing_file]",
        )
    return DatasetCheck(dataset, tables)
