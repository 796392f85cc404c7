"""Stream a large contract CSV as text chunks that never split an audit, with exact line numbers.

:func:`read_csv_chunks` reads with ``pyarrow.csv.open_csv`` (every cell as text) after one streaming pass
of the file through the normalizer of :func:`cyberobs_lib.io.read_table_csv` (same encoding detection,
same line ends, same control-character removal, same record scan and errors), so that the chunked
ingestion sees the same cells and the same physical line numbers as the in-memory reader.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cyberobs_lib import schema as S
from cyberobs_lib.io import (
    READ_BLOCK,
    SPACE_BYTES,
    Encoding,
    InputFileError,
    Normalizer,
    Transcoder,
    check_header,
    check_regular,
    detect_encoding,
)

_LINE = "__line"


def detect_csv(path: Path) -> tuple[str, str, list[str]]:
    """Encoding (``utf8`` or the Python codec name), delimiter and header of a CSV, as
    :func:`cyberobs_lib.io.read_table_csv` detects them (same helper, :func:`cyberobs_lib.io.detect_encoding`).

    Raises
    ------
    InputFileError
        Missing, not a regular file (a FIFO is never opened), empty, no header, duplicated column.
    """
    path = Path(path)
    check_regular(path)
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    if not head.strip(SPACE_BYTES):
        raise InputFileError(path, "is empty; expected a header row", line=1)
    enc = detect_encoding(path)
    norm = Normalizer(path)
    norm.feed(Transcoder(enc).feed(head), final=len(head) < (1 << 20))
    if norm.header is None:  # a header line longer than the head
        norm = _prepare(path, enc)
    check_header(path, norm.header)
    return ("utf8" if enc.is_utf8 else enc.name), norm.delimiter, [c.strip() for c in norm.header]


def _prepare(path: Path, enc: Encoding, out=None) -> Normalizer:
    """One streaming pass of the file through the reader's normalizer (the code of the in-memory reader,
    fed 16 MiB blocks): the normalized UTF-8 bytes written to ``out`` when given; the reader's errors
    (``runaway_quote`` ...) raised."""
    tr, norm = Transcoder(enc), Normalizer(path, encoding=enc)
    with path.open("rb") as fh:
        while block := fh.read(READ_BLOCK):
            part = norm.feed(tr.feed(block))
            if out is not None:
                out.write(part)
    part = norm.feed(tr.feed(b"", final=True), final=True) + norm.finish()
    if out is not None:
        out.write(part)
    return norm


def read_csv_chunks(
    path: Path | str, *, chunk_rows: int = 1_000_000, group_by: str | None = S.Findings.audit_id
) -> Iterator[tuple[pd.DataFrame, pd.Series, list[tuple[int, str]]]]:
    """Stream a contract CSV as pandas text chunks of about ``chunk_rows`` records, never splitting a group.

    Parameters
    ----------
    path : path
        The CSV file (as :func:`~cyberobs_lib.io.read_table_csv` reads: UTF-8 with or without BOM,
        UTF-16 with BOM, CP1252/Latin-1; LF, CRLF or CR; ``,``/``;``/tab separators).
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

    Raises
    ------
    InputFileError
        As :func:`~cyberobs_lib.io.read_table_csv`, before the first chunk.

    Notes
    -----
    A record's line comes from the byte scan of the normalizer (a quoted cell may span lines).
    :func:`read_arrow_chunks` yields the same chunks as Arrow tables (cheap to send to another process).
    """
    for table, lines, ragged in read_arrow_chunks(path, chunk_rows=chunk_rows, group_by=group_by):
        yield table.to_pandas(), pd.Series(lines, dtype="int64"), ragged


def read_arrow_chunks(
    path: Path | str,
    *,
    chunk_rows: int = 1_000_000,
    group_by: str | None = S.Findings.audit_id,
    report: dict | None = None,
) -> Iterator[tuple[pa.Table, np.ndarray, list[tuple[int, str]]]]:
    """:func:`read_csv_chunks` as Arrow tables (string columns) and a numpy array of physical lines.

    The file goes first through the in-memory reader's normalizer, streamed (flat memory but for one
    line number per record): same encoding detection, same CR/LF handling, control characters removed,
    records counted from the bytes, and the same errors (:class:`~cyberobs_lib.io.InputFileError` with
    ``runaway_quote``, ``duplicate_column`` ...) raised before the first chunk. A file that needs changes
    (not UTF-8, CR line ends, control characters, bad bytes) is then read from a normalized UTF-8 copy
    in the temporary folder, else from the file itself. ``report``, when given, receives ``encoding,
    delimiter, line_end, n_records, blank_lines, issues`` (the reader's warnings: ``bad_encoding``,
    ``control_character``, as :class:`~cyberobs_lib.io.CsvRead` has them).
    """
    path = Path(path)
    check_regular(path)
    with path.open("rb") as fh:
        if not fh.read(1 << 16).strip(SPACE_BYTES) and not path.read_bytes().strip(SPACE_BYTES):
            raise InputFileError(path, "is empty; expected a header row", line=1)
    enc = detect_encoding(path)
    norm = _prepare(path, enc)  # errors (runaway quote, ...) before the first chunk
    check_header(path, norm.header or [])
    if report is not None:
        _, blank = norm.records()
        report.update(
            encoding=enc.name, delimiter=norm.delimiter, line_end=norm.line_end, n_records=int((~blank).sum()),
            blank_lines=norm.records()[0][blank].tolist(), issues=list(norm.issues),
        )  # fmt: skip
    tmp = None
    if norm.changed or not enc.is_utf8 or enc.bad_bytes:
        fd, tmp = tempfile.mkstemp(prefix=".cyberobs_csv_", suffix=".csv")
        with os.fdopen(fd, "wb") as out:
            _prepare(path, enc, out)
    try:
        yield from _arrow_chunks(Path(tmp) if tmp else path, norm, chunk_rows, group_by)
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def _arrow_chunks(source: Path, norm: Normalizer, chunk_rows: int, group_by: str | None):
    """The chunks of ``source`` (see :class:`_RecordStream`)."""
    yield from _RecordStream(source, norm, chunk_rows, group_by)


class _RecordStream:
    """The records of a normalised CSV file as Arrow tables of about ``chunk_rows`` rows, never cutting a
    run of equal ``group_by`` values, each with the physical line of its records and the ragged records
    (a wrong number of cells: skipped by the parser) met before its end.

    Iterating gives ``(table, lines, ragged)``: text cells trimmed (empty: null), blank records dropped;
    ``lines`` the physical line of each row (a quoted cell may span lines); ``ragged`` (line, text) pairs.
    """

    def __init__(self, source: Path, norm: Normalizer, chunk_rows: int, group_by: str | None):
        self.source, self.norm, self.chunk_rows, self.group_by = source, norm, chunk_rows, group_by
        self.record_lines, _ = norm.records()  # physical line of every record after the header (blank too)
        self.skipped: list[int] = []  # indexes of the records the parser skipped (ragged or blank)
        self.texts: dict[int, str] = {}  # line -> text of the ragged records not yet reported
        self.used_skips = 0  # skipped records already placed before an emitted chunk
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.carry: pa.Table | None = None  # the last group of the previous cut, waiting for its end
        self.names: list[str] = []

    def __iter__(self):
        reader = self._open()
        self.names = [n.strip().lower() for n in reader.schema.names]
        delivered = 0
        for whole in reader:
            for offset in range(0, whole.num_rows, self.chunk_rows):
                batch = whole.slice(offset, self.chunk_rows)
                self.buffer.append(self._text_table(batch, delivered))
                delivered += batch.num_rows
                self.buffered += batch.num_rows
                if self.buffered >= self.chunk_rows:
                    table = self._take(final=False)
                    if table is not None:
                        yield self._with_lines(table)
        table = self._take(final=True)
        if table is not None:
            table, lines, ragged = self._with_lines(table)
            rest = (int(self.record_lines[k]) for k in sorted(self.skipped)[self.used_skips :])
            ragged += [(x, self.texts.pop(x)) for x in rest if x in self.texts]
            yield table, lines, ragged
        elif self.texts:
            empty = pa.table({n: pa.array([], pa.string()) for n in self.names})
            yield empty, np.zeros(0, dtype=np.int64), [(x, self.texts.pop(x)) for x in sorted(self.texts)]

    def _skip(self, row) -> str:
        """pyarrow's invalid-row handler: note the skipped record (and its text when it is not blank)."""
        k = int(row.number) - 2  # pyarrow numbers the records, the header being 1: the record's index
        self.skipped.append(k)  # every skipped record counts for the positions after it
        if row.text.strip():  # a whitespace-only line is blank (read_table_csv drops it), not ragged
            self.texts[int(self.record_lines[k])] = row.text
        return "skip"

    def _open(self):
        """A streaming pyarrow CSV reader: every column as text, ragged rows to :meth:`_skip`."""
        norm = self.norm
        return pacsv.open_csv(
            self.source,
            read_options=pacsv.ReadOptions(use_threads=False, encoding="utf8",
                                           block_size=max(1 << 24, 2 * norm.scan.max_record + 2)),
            parse_options=pacsv.ParseOptions(delimiter=norm.delimiter, invalid_row_handler=self._skip,
                                             ignore_empty_lines=False, newlines_in_values=norm.scan.multiline),
            # every column as text, never inferred from the first block: leading zeros kept, and a bad
            # cell after the first block is a rule violation, not a conversion error
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(norm.header, pa.string()),
                strings_can_be_null=False, quoted_strings_can_be_null=False, auto_dict_encode=False,
            ),
        )  # fmt: skip

    def _text_table(self, batch: pa.RecordBatch, start: int) -> pa.Table:
        """The batch with lower-cased names, trimmed cells (empty: null) and its stream positions; blank
        records (every cell empty) dropped: skipped, never counted."""
        null = pa.scalar(None, pa.string())
        cols = {}
        for name, col in zip(self.names, batch.columns, strict=True):
            text = pc.utf8_trim_whitespace(col.cast(pa.string()))
            cols[name] = pc.if_else(pc.equal(text, ""), null, text)
        cols[_LINE] = pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64))
        table = pa.table(cols)
        blank = None
        for name in self.names:
            blank = pc.is_null(table[name]) if blank is None else pc.and_(blank, pc.is_null(table[name]))
        if blank is not None and pc.any(blank).as_py():
            table = table.filter(pc.invert(blank))
        return table

    def _take(self, final: bool) -> pa.Table | None:
        """The buffered rows (after the carried group) up to the start of the last run of equal
        ``group_by`` values, which is carried to the next chunk (``final``: everything)."""
        parts = ([self.carry] if self.carry is not None else []) + self.buffer
        self.buffer, self.buffered = [], 0
        if not parts:
            return None
        table = pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
        self.carry = None
        if not final and self.group_by in table.column_names and table.num_rows:
            key = table[self.group_by]
            last = key[-1]
            same = pc.is_null(key) if not last.is_valid else pc.fill_null(pc.equal(key, last), False)
            same = same.to_numpy(zero_copy_only=False)
            run = int(np.argmin(same[::-1])) if not same.all() else table.num_rows
            cut = table.num_rows - run
            if cut == 0:
                self.carry = table
                return None
            self.carry, table = table.slice(cut), table.slice(0, cut)
        return table

    def _with_lines(self, table: pa.Table) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
        """The chunk, the physical line of each of its records and the ragged records before its end."""
        # record index = stream position + skipped (ragged) records before it; its physical line from
        # the byte scan (a quoted cell may span lines)
        s = np.sort(np.asarray(self.skipped, dtype=np.int64))
        adjusted = s - np.arange(len(s))
        pos = table[_LINE].to_numpy()
        index = pos + np.searchsorted(adjusted, pos, side="right")
        lines = self.record_lines[index] if len(index) else np.zeros(0, dtype=np.int64)
        last = int(index.max()) if len(index) else -1
        done = [int(self.record_lines[x]) for x in s[self.used_skips :] if x <= last]
        self.used_skips += len(done)
        ragged = [(x, self.texts.pop(x)) for x in done if x in self.texts]
        return table.drop_columns([_LINE]), lines.astype(np.int64), ragged
