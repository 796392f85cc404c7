"""Validate a dataset folder against the input data contract, reporting every violation at once.

Each rule is vectorized over a whole column and yields one violation row per offending cell:
``file, row, column, rule, severity, value, message``. ``row`` is the physical line of the record in the
file (the header is line 1); file-level problems (missing file or column) have an empty ``row``.
``severity`` is ``error`` (the row is rejected at ingestion) or ``warning`` (kept, reported).

Rules are identified by stable codes (see :data:`RULES`), used as reason codes in the rejects table.
Nothing here changes the input files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cyberobs_lib import registry
from cyberobs_lib import schema as S
from cyberobs_lib.checks import (  # noqa: F401 - RULES, TableCheck re-exported (public names of this module)
    RULES,
    VIOLATION_COLUMNS,
    TableCheck,
    _check_audit_ref,
    _check_date,
    _duplicates,
    _kept_values,
    _lower_strip,
    _on_distinct,
    _open,
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


def check_establishments(dataset: Path, *, today: pd.Timestamp) -> TableCheck:
    c = _open(dataset, "establishments")
    if c.fatal:
        return c
    f = c.frame
    f["finess"] = f["finess"].astype("string").str.upper().str.replace(" ", "", regex=False)
    fmt_ok = registry.finess_format_ok(f["finess"]).fillna(False).astype(bool)
    c.add(f["finess"].notna() & ~fmt_ok, "finess", "finess_format")
    key_ok = registry.finess_key_ok(f["finess"]).fillna(False).astype(bool)
    c.add(fmt_ok & ~key_ok, "finess", "finess_check_key", severity="warning")
    f["finess_key_ok"] = key_ok
    _duplicates(c, "finess")
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
        c.add(f["legal_status"].notna() & norm.isna(), "legal_status", "unknown_legal_status")
        f["legal_status"] = norm
    beds, bad = parse_int(f["beds"])
    c.add(bad, "beds", "not_integer")
    c.add(beds < 0, "beds", "negative_count")
    f["beds"] = beds
    if f["department"].notna().any():
        dep = f["department"].astype("string").str.upper().str.zfill(2)
        f["department"] = dep
    return c


def check_audits(dataset: Path, establishments: TableCheck, *, today: pd.Timestamp) -> TableCheck:
    c = _open(dataset, "audits")
    if c.fatal:
        return c
    f = c.frame
    _duplicates(c, "audit_id")
    f["finess"] = f["finess"].astype("string").str.upper().str.replace(" ", "", regex=False)
    kept = _kept_values(establishments, "finess")
    c.add(
        f["finess"].notna() & ~f["finess"].isin(kept),
        "finess",
        "unknown_finess",
        message="no such establishment in establishments.csv (or it was rejected): orphan audit",
    )
    f["audit_date"] = _check_date(c, "audit_date", today=today, not_before=MIN_AUDIT_DATE)
    hosts, bad = parse_int(f["hosts_in_scope"])
    c.add(bad, "hosts_in_scope", "not_integer")
    c.add(hosts < 0, "hosts_in_scope", "negative_count")
    f["hosts_in_scope"] = hosts
    return c


def check_hosts(dataset: Path, audits: TableCheck) -> TableCheck:
    c = _open(dataset, "hosts")
    if c.fatal or c.read is None:
        return c
    c.frame["host"] = _on_distinct(c.frame["host"], lambda u: u.str.lower())
    _check_audit_ref(c, audits)
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
    c = _open(dataset, "findings")
    if c.fatal or c.read is None:
        return c
    known = pd.Index(_kept_values(audits, "audit_id").unique())
    perimeter = perimeter_index(hosts.frame) if hosts.read is not None and not hosts.fatal else None
    findings_rules(c, known_audits=known, perimeter=perimeter, today=today)
    return c


def check_controls(dataset: Path, audits: TableCheck) -> TableCheck:
    c = _open(dataset, "controls")
    if c.fatal or c.read is None:
        return c
    f = c.frame
    _check_audit_ref(c, audits)
    f["control"] = _lower_strip(f["control"])
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


def check_incidents(dataset: Path, establishments: TableCheck, *, today: pd.Timestamp) -> TableCheck:
    c = _open(dataset, "incidents")
    if c.fatal or c.read is None:
        return c
    f = c.frame
    _duplicates(c, "incident_id")
    f["declared_on"] = _check_date(c, "declared_on", today=today, not_before=MIN_AUDIT_DATE)
    fin = f["finess"].astype("string").str.upper().str.replace(" ", "", regex=False)
    f["finess"] = fin
    fmt_ok = registry.finess_format_ok(fin).fillna(False).astype(bool)
    c.add(fin.notna() & ~fmt_ok, "finess", "finess_format")
    c.add(
        fin.notna() & fmt_ok & ~fin.isin(_kept_values(establishments, "finess")),
        "finess",
        "unknown_finess",
        severity="warning",
        message="incident of an establishment outside establishments.csv: kept, no family",
    )
    c.add(fin.isna() & f["category_code"].isna() & f["family"].isna(), "finess", "incident_without_frame")
    codes = f["category_code"].astype("string").str.strip().str.zfill(3)
    known = set(registry.load_categories()["category_code"].astype(str))
    c.add(codes.notna() & ~codes.isin(known), "category_code", "unknown_category")
    f["category_code"] = codes
    nature = f["nature"].astype("string").str.lower().str.strip().map(S.NATURE_ALIASES)
    c.add(f["nature"].notna() & nature.isna(), "nature", "unknown_nature")
    f["nature"] = nature
    typ = f["type"].astype("string").str.lower().str.strip()
    c.add(typ.notna() & ~typ.isin(S.INCIDENT_TYPES), "type", "unknown_incident_type")
    f["type"] = typ
    imp = f["impact_on_care"].astype("string").str.lower().str.strip()
    c.add(imp.notna() & ~imp.isin(S.IMPACTS_ON_CARE), "impact_on_care", "unknown_impact")
    f["impact_on_care"] = imp
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
    dataset: Path | str, *, today: str | pd.Timestamp | None = None, findings: bool = True
) -> DatasetCheck:
    """Check every file of a dataset folder against the contract; never raises on bad content.

    Parameters
    ----------
    dataset
        The dataset folder (``establishments.csv``, ``audits.csv``, ...).
    today
        Reference date for the "not in the future" rule (default: the current date).

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
    est = check_establishments(dataset, today=today)
    aud = check_audits(dataset, est, today=today)
    hosts = check_hosts(dataset, aud)
    tables = {
        "establishments": est,
        "audits": aud,
        "hosts": hosts,
        "findings": check_findings(dataset, aud, hosts, today=today)
        if findings
        else TableCheck("findings", dataset / "findings.csv", None, pd.DataFrame()),
        "controls": check_controls(dataset, aud),
        "incidents": check_incidents(dataset, est, today=today),
    }
    if findings and tables["findings"].read is None and not (dataset / "scans").is_dir():
        tables["findings"].add_file("missing_file", "the dataset needs findings.csv or a scans/ folder")
    return DatasetCheck(dataset, tables)
