"""Stream a large contract CSV as text chunks that never split an audit, with exact line numbers.

:func:`read_csv_chunks` reads with ``pyarrow.csv.open_csv`` (every cell as text), detecting encoding and
separator as :func:`cyberobs_lib.io.read_table_csv` does, so that the chunked ingestion sees the same
cells and the same physical line numbers as the in-memory reader.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cyberobs_lib import schema as S
from cyberobs_lib.io import InputFileError, _sniff_delimiter

_LINE = "__line"


def detect_csv(path: Path) -> tuple[str, str, list[str]]:
    """Encoding, delimiter and lower-cased header of a CSV, as :func:`cyberobs_lib.io.read_table_csv` does."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    if not head.strip():
        raise InputFileError(path, "is empty; expected a header row")
    try:
        (head if len(head) < (1 << 20) else head[: head.rfind(b"\n") + 1]).decode("utf-8")
        encoding = "utf8"
    except UnicodeDecodeError:
        encoding = "cp1252"
    text = head.decode("utf-8" if encoding == "utf8" else "cp1252", errors="replace").lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    delimiter = _sniff_delimiter(first)
    return encoding, delimiter, [c.strip() for c in first.split(delimiter)]


def _header(path: Path, encoding: str, delimiter: str) -> list[str]:
    """The header's cells as pyarrow names them (quotes removed, not stripped)."""
    with path.open(encoding="utf-8-sig" if encoding == "utf8" else "cp1252", newline="") as fh:
        return next(csv.reader(fh, delimiter=delimiter), [])


def read_csv_chunks(
    path: Path | str, *, chunk_rows: int = 1_000_000, group_by: str | None = S.Findings.audit_id
) -> Iterator[tuple[pd.DataFrame, pd.Series, list[tuple[int, str]]]]:
    """Stream a contract CSV as pandas text chunks of about ``chunk_rows`` records, never splitting a group.

    Parameters
    ----------
    path : path
        The CSV file (UTF-8 with or without BOM, or CP1252; ``,``/``;``/tab separators).
    chunk_rows : int
        Records per chunk (more when a group straddles the boundary: its rows move to the next chunk).
    group_by : str, optional
        Column whose consecutive equal values stay in one chunk (``audit_id``: exact duplicates and
        the per-audit duplicate collapse of normalization never cross a chunk boundary).

    Yields
    ------
    (frame, lines, ragged)
        ``frame``: lower-cased column names, stripped text cells, ``None`` for empty ones, blank records
        dropped (as :func:`~cyberobs_lib.io.read_table_csv`); ``lines``: physical line of each record
        (header is line 1); ``ragged``: line and text of the records with a wrong number of cells met
        so far in this chunk (to be rejected with ``ragged_row``).

    Notes
    -----
    One record per physical line is assumed (no line break inside a quoted cell); a record's line is
    its position in the stream plus the lines skipped before it. :func:`read_arrow_chunks` yields the
    same chunks as Arrow tables (cheap to send to another process).
    """
    for table, lines, ragged in read_arrow_chunks(path, chunk_rows=chunk_rows, group_by=group_by):
        yield table.to_pandas(), pd.Series(lines, dtype="int64"), ragged


def read_arrow_chunks(
    path: Path | str, *, chunk_rows: int = 1_000_000, group_by: str | None = S.Findings.audit_id
) -> Iterator[tuple[pa.Table, np.ndarray, list[tuple[int, str]]]]:
    """:func:`read_csv_chunks` as Arrow tables (string columns) and a numpy array of physical lines."""
    path = Path(path)
    encoding, delimiter, _ = detect_csv(path)
    skipped: list[int] = []
    texts: dict[int, str] = {}

    def _bad(row) -> str:
        skipped.append(int(row.number))  # every skipped line counts for the line numbers after it
        if row.text.strip():  # a whitespace-only line is blank (read_table_csv drops it), not ragged
            texts[int(row.number)] = row.text
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24, encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=_bad,
                                          ignore_empty_lines=False),
        # every column as text, never inferred from the first block: leading zeros kept, and a bad
        # cell after the first block is a rule violation, not a conversion error
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(_header(path, encoding, delimiter), pa.string()),
            strings_can_be_null=False, quoted_strings_can_be_null=False, auto_dict_encode=False,
        ),
    )  # fmt: skip
    names = [n.strip().lower() for n in reader.schema.names]
    delivered, used_skips = 0, 0
    buffer: list[pa.Table] = []
    buffered = 0
    carry: pa.Table | None = None
    null = pa.scalar(None, pa.string())

    def _table(batch: pa.RecordBatch, start: int) -> pa.Table:
        cols = {}
        for name, col in zip(names, batch.columns, strict=True):
            text = pc.utf8_trim_whitespace(col.cast(pa.string()))
            cols[name] = pc.if_else(pc.equal(text, ""), null, text)
        cols[_LINE] = pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64))
        table = pa.table(cols)
        blank = None  # blank records: skipped, never counted
        for name in names:
            blank = pc.is_null(table[name]) if blank is None else pc.and_(blank, pc.is_null(table[name]))
        if blank is not None and pc.any(blank).as_py():
            table = table.filter(pc.invert(blank))
        return table

    def _flush(final: bool) -> pa.Table | None:
        nonlocal carry, buffer, buffered
        parts = ([carry] if carry is not None else []) + buffer
        buffer, buffered = [], 0
        if not parts:
            return None
        table = pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
        carry = None
        if not final and group_by in table.column_names and table.num_rows:
            key = table[group_by]
            last = key[-1]
            same = pc.is_null(key) if not last.is_valid else pc.fill_null(pc.equal(key, last), False)
            same = same.to_numpy(zero_copy_only=False)
            run = int(np.argmin(same[::-1])) if not same.all() else table.num_rows
            cut = table.num_rows - run
            if cut == 0:
                carry = table
                return None
            carry, table = table.slice(cut), table.slice(0, cut)
        return table

    def _emit(table: pa.Table):
        nonlocal used_skips
        # physical line = stream position + 2 (header, 1-based) + skipped (ragged) lines before it
        s = np.sort(np.asarray(skipped, dtype=np.int64))
        adjusted = s - 2 - np.arange(len(s))
        pos = table[_LINE].to_numpy()
        lines = pos + 2 + np.searchsorted(adjusted, pos, side="right")
        last = int(lines.max()) if len(lines) else 0
        done = [int(x) for x in s[used_skips:] if x <= last]
        used_skips += len(done)
        ragged = [(x, texts.pop(x)) for x in done if x in texts]
        return table.drop_columns([_LINE]), lines.astype(np.int64), ragged

    for whole in reader:
        for offset in range(0, whole.num_rows, chunk_rows):
            batch = whole.slice(offset, chunk_rows)
            buffer.append(_table(batch, delivered))
            delivered += batch.num_rows
            buffered += batch.num_rows
            if buffered >= chunk_rows:
                table = _flush(final=False)
                if table is not None:
                    yield _emit(table)
    table = _flush(final=True)
    if table is not None:
        table, lines, ragged = _emit(table)
        ragged += [(x, texts.pop(x)) for x in sorted(skipped)[used_skips:] if x in texts]
        yield table, lines, ragged
    elif texts:
        empty = pa.table({n: pa.array([], pa.string()) for n in names})
        yield empty, np.zeros(0, dtype=np.int64), [(x, texts.pop(x)) for x in sorted(texts)]
