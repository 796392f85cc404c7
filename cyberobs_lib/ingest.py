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

from cyberobs_lib import CONTRACT_VERSION, __version__
from cyberobs_lib import schema as S
from cyberobs_lib.io import sha256_file, write_csv_atomic, write_parquet_atomic, write_text_atomic
from cyberobs_lib.validate import RULES, DatasetCheck, TableCheck, check_dataset

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

    @property
    def ok(self) -> bool:
        """False when any input file could not be read at all (the CLI then exits non-zero)."""
        fatal = any(t.fatal for n, t in self.check.tables.items() if n in S.REQUIRED_FILES)
        return not fatal and not self.scan_errors


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _split(check: TableCheck) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Kept rows, rejects and accounting of one checked file."""
    frame = check.frame
    rejected_idx = check.rejected.index.difference(check.duplicates)
    kept = frame.drop(index=check.rejected.index.union(check.duplicates))
    lines = check.read.lines if check.read is not None else pd.Series(dtype="int64")
    if len(rejected_idx):
        viol = pd.concat(check.violations, ignore_index=True)
        viol = viol[viol["severity"] == "error"]
        by_row = viol.groupby("row", sort=False).agg(
            column=("column", "first"),
            rule=("rule", "first"),
            value=("value", "first"),
            message=("message", lambda m: " | ".join(dict.fromkeys(m))),
            all_rules=("rule", lambda r: ";".join(dict.fromkeys(r))),
        )
        rows = lines.loc[rejected_idx].to_numpy()
        rej = by_row.reindex(rows).reset_index(names="row")
        rej.insert(0, "source_file", check.path.name)
        rej = rej.rename(columns={"rule": "reason"})
        rej["message"] = rej["message"] + " [rules: " + rej["all_rules"] + "]"
        rej = rej.drop(columns="all_rules")
    else:
        rej = pd.DataFrame(columns=list(S.REJECTS_COLUMNS))
    acc = {
        "source_file": check.path.name,
        "table": check.name,
        "rows_read": len(frame),
        "kept": len(kept),
        "rejected": len(rejected_idx),
        "duplicates": len(check.duplicates),
        "skipped": 0,
    }
    kept = kept.copy()
    kept[S.SOURCE_FILE] = check.path.name
    kept[S.SOURCE_ROW] = (
        lines.loc[kept.index].astype("int64").to_numpy() if len(lines) else pd.Series(dtype="int64")
    )
    return kept.reset_index(drop=True), rej, acc


def _typed(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Give canonical columns their dtypes and a deterministic order."""
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
    """Catalog version/date of an enrichment table, its path relative to the dataset when inside it."""
    if table is None:
        return None
    meta = dict(table.attrs.get("catalog") or {})
    path = Path(str(meta.get("path", "")))
    if path.is_absolute() and path.is_relative_to(dataset.resolve()):
        meta["path"] = str(path.relative_to(dataset.resolve()))
    elif path.is_relative_to(dataset):
        meta["path"] = str(path.relative_to(dataset))
    return meta


def _reference_file(dataset: Path, patterns: tuple[str, ...]) -> Path | None:
    """The catalog shipped in ``DATASET/reference/`` (first match, sorted), if any."""
    folder = dataset / "reference"
    for pattern in patterns:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[-1]
    return None


def ingest_dataset(
    dataset: Path | str,
    *,
    today: str | None = None,
    kev_path: Path | str | None = None,
    epss_path: Path | str | None = None,
    include_info: bool = False,
) -> IngestResult:
    """Read, validate, normalize and enrich a dataset folder into canonical tables (in memory).

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
    """
    from cyberobs_lib import registry
    from cyberobs_lib.enrich import enrich_findings, protection_status, read_epss, read_kev
    from cyberobs_lib.normalize import normalize_findings
    from cyberobs_lib.scanners import read_scans_dir

    dataset = Path(dataset)
    check = check_dataset(dataset, today=today)
    tables: dict[str, pd.DataFrame] = {}
    rejects, accounting = [], []
    for name, tc in check.tables.items():
        if tc.read is None:
            tables[name] = _typed(name, pd.DataFrame())
            continue
        kept, rej, acc = _split(tc)
        tables[name] = kept
        rejects.append(rej)
        accounting.append(acc)

    scan_errors: list = []
    scans_dir = dataset / "scans"
    scan_controls = pd.DataFrame(columns=["audit_id", "host", "control", "present", "source_file"])
    if scans_dir.is_dir():
        batch = read_scans_dir(scans_dir, include_info=include_info)
        scan_errors = list(batch.errors)
        known = set(tables["audits"]["audit_id"]) if len(tables["audits"]) else set()
        sf = batch.findings.copy()
        sf["source_file"] = sf["source_file"].map(lambda p: _relative(p, dataset))
        orphan = ~sf["audit_id"].isin(known)
        if orphan.any():
            rejects.append(
                pd.DataFrame(
                    {
                        "source_file": sf.loc[orphan, "source_file"].to_numpy(),
                        "row": sf.loc[orphan, "source_row"].to_numpy(),
                        "column": "audit_id",
                        "reason": "unknown_audit",
                        "value": sf.loc[orphan, "audit_id"].to_numpy(),
                        "message": RULES["unknown_audit"] + " (scans/<audit_id>/ folder name)",
                    }
                )
            )
        tables["findings"] = pd.concat([tables["findings"], sf[~orphan]], ignore_index=True)
        sh = batch.hosts[batch.hosts["audit_id"].isin(known)]
        tables["hosts"] = pd.concat([tables["hosts"], sh], ignore_index=True).drop_duplicates(
            ["audit_id", "host"]
        )
        scan_controls = batch.controls[batch.controls["audit_id"].isin(known)]
        acc = batch.accounting.copy()
        acc["source_file"] = acc["source_file"].map(lambda p: _relative(p, dataset))
        for row in acc.itertuples(index=False):
            n_orphan = int((orphan & (sf["source_file"] == row.source_file)).sum()) if len(sf) else 0
            accounting.append(
                {
                    "source_file": row.source_file,
                    "table": f"scan:{row.format}",
                    "rows_read": int(row.items_read),
                    "kept": int(row.findings) - n_orphan,
                    # a file that could not be read has no items: it is listed in the rejects (unreadable_scan)
                    "rejected": n_orphan,
                    "duplicates": 0,
                    "skipped": int(row.skipped),
                }
            )
        for err in scan_errors:
            rejects.append(
                pd.DataFrame(
                    [
                        {
                            "source_file": _relative(err.path, dataset),
                            "row": getattr(err, "line", None),
                            "column": None,
                            "reason": "unreadable_scan",
                            "value": None,
                            "message": str(err).replace(f"{dataset}/", ""),
                        }
                    ]
                )
            )

    # Normalize and enrich ----------------------------------------------------------------------
    est = tables["establishments"]
    if len(est):
        est = registry.derive_establishments(est)
    tables["establishments"] = est
    kev_path = kev_path or _reference_file(
        dataset, ("known_exploited_vulnerabilities*.json", "known_exploited_vulnerabilities*.csv")
    )
    epss_path = epss_path or _reference_file(dataset, ("epss*.csv.gz", "epss*.csv"))
    kev = read_kev(kev_path) if kev_path else None
    epss = read_epss(epss_path) if epss_path else None
    findings = tables["findings"]
    if len(findings):
        audits_for_norm = tables["audits"][["audit_id", "finess", "audit_date"]]
        findings = normalize_findings(findings, audits=audits_for_norm, kev=kev)
        findings = enrich_findings(findings, kev=kev, epss=epss)
    tables["findings"] = findings
    tables["protection"] = protection_status(
        tables["controls"], audits=tables["audits"], evidence=scan_controls if len(scan_controls) else None
    )

    for name in list(tables):
        if name in S.INPUT_FILES:
            tables[name] = _typed(name, tables[name])
    rej = (
        pd.concat([r for r in rejects if len(r)], ignore_index=True)
        if any(len(r) for r in rejects)
        else (pd.DataFrame(columns=list(S.REJECTS_COLUMNS)))
    )
    rej = rej[list(S.REJECTS_COLUMNS)].astype({"row": "Int64"})
    for c in ("source_file", "column", "reason", "value", "message"):
        rej[c] = rej[c].astype("string")
    rej = rej.sort_values(["source_file", "row"], kind="stable").reset_index(drop=True)
    acc = pd.DataFrame(accounting, columns=list(S.ACCOUNTING_COLUMNS))
    summary = {
        "contract_version": CONTRACT_VERSION,
        "cyberobs_version": __version__,
        "dataset": dataset.name,
        "inputs": {
            str(p.relative_to(dataset)): _sha256(p) for p in sorted(dataset.rglob("*")) if p.is_file()
        },
        "rows": {name: int(len(t)) for name, t in tables.items()},
        "rejected": int(len(rej)),
        "warnings": int((check.violations["severity"] == "warning").sum()),
        "scan_errors": [str(e) for e in scan_errors],
        "catalogs": {
            "kev": _catalog_meta(kev, dataset),
            "epss": _catalog_meta(epss, dataset),
        },
    }
    return IngestResult(
        tables=tables, rejects=rej, accounting=acc, check=check, scan_errors=scan_errors, summary=summary
    )


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
            cases = exc.failure_cases.drop_duplicates(["column", "check"]).head(20)
            problems += [
                f"{name}.{r.column}: {r.check} (e.g. {r.failure_case!r})" for r in cases.itertuples()
            ]
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
    for name, table in result.tables.items():
        write_parquet_atomic(table, out / f"{name}.parquet")
    write_parquet_atomic(result.rejects, out / "rejects.parquet")
    write_csv_atomic(result.rejects, out / "rejects.csv")
    write_csv_atomic(result.accounting, out / "accounting.csv")
    write_csv_atomic(result.check.violations, out / "violations.csv")
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
