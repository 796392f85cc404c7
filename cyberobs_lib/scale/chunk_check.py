"""The contract rules of findings.csv applied to one chunk (:func:`check_findings_chunk`).

Called by the workers of :mod:`cyberobs_lib.scale.chunk_worker` for :func:`cyberobs_lib.scale.ingest_large`
(:mod:`cyberobs_lib.scale.chunked`), below both.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib import schema as S
from cyberobs_lib.checks import TableCheck
from cyberobs_lib.io import CsvRead
from cyberobs_lib.validate import findings_rules

FINDINGS = "findings"


def check_findings_chunk(
    frame: pd.DataFrame,
    lines: pd.Series,
    *,
    path: Path,
    known_audits: pd.Index,
    perimeter: tuple[pd.Index, pd.Index] | None,
    today: pd.Timestamp,
    ragged: list[tuple[int, str]] = (),
    delimiter: str = ",",
) -> TableCheck:
    """Apply the row rules of :func:`cyberobs_lib.validate.check_findings` to one chunk of findings.csv.

    Parameters
    ----------
    frame, lines : DataFrame, Series
        A chunk from :func:`read_csv_chunks` (text cells, physical lines). Not mutated.
    path : Path
        The findings file (named in violations and rejects).
    known_audits : Index
        audit_id values kept by the audits check (unique; others: ``unknown_audit``).
    perimeter : (Index, Index) or None
        :func:`perimeter_index` of hosts.csv, for the ``host_not_in_perimeter`` warning.
    today : Timestamp
        Reference date of the ``future_date`` rule.
    ragged : list of (int, str)
        Line and text of the records the reader skipped for a wrong number of cells: padded or cut to
        the header's width and rejected as ``ragged_row``, as ``read_table_csv`` does.
    delimiter : str
        The file's separator, to split the ragged records.

    Returns
    -------
    TableCheck
        As ``check_findings`` returns for the same rows: typed ``frame``, ``violations``, ``rejected``,
        ``duplicates``; ``ingest.split_file`` turns it into kept rows, rejects and accounting.

    Notes
    -----
    Same rules, same order, same reason codes (:data:`cyberobs_lib.validate.RULES`) as ``check_findings``;
    the CVSS-vector and CVE-list rules are evaluated once per distinct value. The equality with the
    in-memory path is asserted by ``tests/test_scale.py``.
    """
    spec = S.INPUT_FILES[FINDINGS]
    present = list(frame.columns)
    f = frame.copy()
    for col in spec["required"] + spec["optional"]:
        if col not in f.columns:
            f[col] = None
    is_ragged = np.zeros(len(f), dtype=bool)
    if ragged:  # records with a wrong number of cells (rare): padded or cut as read_table_csv does
        width = len(present)
        cells = [next(csv.reader([text], delimiter=delimiter)) for _, text in ragged]
        cells = [[(x.strip() or None) for x in (r[:width] + [""] * (width - len(r)))] for r in cells]
        pad = pd.DataFrame(cells, columns=present, dtype=object).reindex(columns=f.columns)
        f = pd.concat([f, pad], ignore_index=True)
        lines = pd.concat([lines, pd.Series([n for n, _ in ragged], dtype="int64")], ignore_index=True)
        order = np.argsort(lines.to_numpy(), kind="stable")
        is_ragged = np.r_[is_ragged, np.ones(len(ragged), dtype=bool)][order]
        f, lines = f.iloc[order].reset_index(drop=True), lines.iloc[order].reset_index(drop=True)
    read = CsvRead(frame=f, path=path, encoding="", delimiter="", had_bom=False, original_columns=present,
                   lines=pd.Series(lines.to_numpy(), index=f.index, dtype="int64"))  # fmt: skip
    c = TableCheck(FINDINGS, path, read, f)
    if ragged:
        c.add(pd.Series(is_ragged, index=f.index), "*", "ragged_row", values=pd.Series("", index=f.index))
    for col in spec["required"]:
        if col in present:
            c.add(f[col].isna(), col, "required_value")
    findings_rules(c, known_audits=known_audits, perimeter=perimeter, today=today)
    return c
