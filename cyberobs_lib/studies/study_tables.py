"""What a study reads: :class:`StudyData` (canonical tables, rejects, accounting), its :class:`LazyTables`,
and the format of a canonical folder (:func:`canonical_format`).

Below :mod:`cyberobs_lib.studies.data` (which loads them, and re-exports these names) and the modules that
compute from them (:mod:`cyberobs_lib.studies.indicators`, :mod:`cyberobs_lib.studies.finding_counts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.store import MANIFEST

PARTITIONED, FLAT, DATASET = "partitioned", "flat", "dataset"


class LazyTables(Mapping):
    """Tables read on first access (``read(name)``), then kept; iterating lists the names only.

    ``read_columns(name, columns, ordered)``, when given, reads some columns of a table without keeping
    them (:meth:`columns`)."""

    def __init__(
        self,
        names: Iterable[str],
        read: Callable[[str], pd.DataFrame],
        read_columns: Callable[[str, list[str], bool], pd.DataFrame] | None = None,
    ):
        self._names = tuple(names)
        self._read = read
        self._read_columns = read_columns
        self._loaded: dict[str, pd.DataFrame] = {}

    def columns(self, name: str, columns: Sequence[str], *, ordered: bool = True) -> pd.DataFrame:
        """The ``columns`` of table ``name`` that it has (in that order): from the table if it is in
        memory, else read from the folder and not kept (a study needing four columns of a table does not
        read the others, nor keep them for later). Rows in canonical order, or, with ``ordered=False``,
        in any order (a partitioned table is then not re-sorted: for callers that sort or join anyway)."""
        if name not in self._names:
            raise KeyError(name)
        if name in self._loaded or self._read_columns is None:
            table = self[name]
            return table[[c for c in columns if c in table.columns]]
        return self._read_columns(name, list(columns), ordered)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._loaded:
            self._loaded[name] = self._read(name)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:  # Mapping's would read the table
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def loaded(self) -> list[str]:
        """Names of the tables read so far."""
        return list(self._loaded)


@dataclass
class StudyData:
    """Canonical tables of one dataset, plus its rejects, accounting and violations.

    ``tables`` maps a table name to its frame (a :class:`LazyTables` when read from a folder: each table
    is read on first access); ``data.findings`` is ``data.tables["findings"]``. ``years`` is the audit
    years kept (None: all).
    """

    source: Path
    tables: Mapping[str, pd.DataFrame]
    rejects: pd.DataFrame
    accounting: pd.DataFrame
    violations: pd.DataFrame
    summary: dict = field(default_factory=dict)
    years: tuple[int, ...] | None = None

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)


def canonical_format(folder: str | Path) -> str | None:
    """``"partitioned"`` (``_manifest.json``), ``"flat"`` (``ingest.json``), or None (anything else)."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return PARTITIONED
    if (folder / "ingest.json").is_file():
        return FLAT
    return None
