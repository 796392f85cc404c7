"""Load what a study needs: canonical tables from an ingested folder, or a dataset folder ingested in memory.

Notebooks take one ``data_dir`` parameter: either a dataset folder following the data contract (the demo
data, for interactive work and nbval) or a canonical folder written by ``cyberobs ingest`` (what the runner
passes, so that a run ingests once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.ingest import ingest_dataset, read_canonical

TABLES = ("establishments", "audits", "hosts", "findings", "controls", "incidents", "protection")


@dataclass
class StudyData:
    """Canonical tables of one dataset, plus its rejects, accounting and violations."""

    source: Path
    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    accounting: pd.DataFrame
    violations: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)


def load_study_data(data_dir: str | Path, *, today: str | None = None) -> StudyData:
    """Read canonical tables (folder with ``ingest.json``) or ingest a dataset folder in memory.

    Parameters
    ----------
    data_dir
        A canonical folder (``cyberobs ingest`` output) or a dataset folder.
    today
        Reference date for date checks when ingesting a dataset folder.
    """
    import json

    folder = Path(data_dir)
    if (folder / "ingest.json").is_file():
        tables = read_canonical(folder, tables=TABLES)
        return StudyData(
            source=folder,
            tables=tables,
            rejects=pd.read_parquet(folder / "rejects.parquet"),
            accounting=pd.read_csv(folder / "accounting.csv"),
            violations=pd.read_csv(folder / "violations.csv", dtype={"row": "Int64"}),
            summary=json.loads((folder / "ingest.json").read_text(encoding="utf-8")),
        )
    result = ingest_dataset(folder, today=today)
    return StudyData(
        source=folder,
        tables=result.tables,
        rejects=result.rejects,
        accounting=result.accounting,
        violations=result.check.violations,
        summary=result.summary,
    )


def load_audit_metrics(data: StudyData) -> pd.DataFrame:
    """Per-audit metrics (:func:`studies.indicators.audit_metrics`), read from ``audit_metrics.parquet``
    when the canonical folder holds a precomputed copy (batch runs), computed otherwise."""
    from cyberobs_lib.studies.indicators import audit_metrics

    cached = Path(data.source) / "audit_metrics.parquet"
    if cached.is_file():
        return pd.read_parquet(cached)
    return audit_metrics(data)
