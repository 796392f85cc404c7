"""Readers and writers: the only module (with the scanner readers) that touches files.

* :func:`read_table_csv` reads a contract CSV the way real exports come: UTF-8 with or without BOM, or
  Latin-1/CP1252 as French administrations export; ``,``, ``;`` or tab separators, detected from the header
  line; header names case-insensitive (lower-cased and stripped); every cell kept as text (typing is the
  validator's job, so that a bad cell is reported, never coerced away).
* :func:`write_parquet_atomic` / :func:`write_text_atomic` write to a temporary file in the target folder and
  rename it into place (``os.replace`` is atomic on POSIX), so a crash never leaves a half-written table
  that looks complete. Parquet output is deterministic: no index, fixed row order, no timestamps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class InputFileError(ValueError):
    """A file that cannot be read at all; the message names the file and what was expected."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}" + (f": line {line}" if line else "")
        super().__init__(f"{where}: {message}")


@dataclass
class CsvRead:
    """A CSV file read as text, with what was detected about it."""

    frame: pd.DataFrame
    path: Path
    encoding: str
    delimiter: str
    had_bom: bool
    original_columns: list[str] = field(default_factory=list)
    #: 1-based physical line of each record's start in the file (header is line 1)
    lines: pd.Series | None = None


def _decode(raw: bytes, path: Path) -> tuple[str, str, bool]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict"), "utf-8-sig", True
    try:
        return raw.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        # CP1252 is a superset of Latin-1 for printable characters (œ, €, ’), what Windows exports use.
        try:
            return raw.decode("cp1252"), "cp1252", False
        except UnicodeDecodeError:
            return raw.decode("latin-1"), "latin-1", False


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def _read_fast(text: str, delimiter: str) -> tuple[pd.DataFrame, list[int], list[str]] | None:
    """Parse with pyarrow's C reader when every record is one physical line (the common case).

    Returns None — and the caller falls back to the :mod:`csv` module, which knows each record's line —
    when a quoted field spans lines, a record is ragged, or pyarrow refuses the text. Results are the same
    on both paths (tested): cells stripped, empty cells missing, all-blank records dropped.
    """
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    data = text.encode("utf-8")
    # every column as text: a column of digits must keep its leading zeros (FINESS 010000024)
    names = next(csv.reader([text.split("\n", 1)[0].rstrip("\r")], delimiter=delimiter), [])
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=False, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                auto_dict_encode=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    header = table.column_names
    if len(set(header)) != len(header):
        return None
    # physical lines that are not blank, after the header: one per record on this path
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts_pos = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [len(buf)]])
    length = stops - starts_pos
    cr_only = (length == 1) & (buf[np.minimum(starts_pos, len(buf) - 1)] == 13)
    nonblank = np.flatnonzero((length > 0) & ~cr_only)  # the lines pyarrow reads (it skips empty ones)
    if len(nonblank) - 1 != table.num_rows:
        return None
    if not all(pa.types.is_string(t) for t in table.schema.types):
        return None  # a header pyarrow names otherwise: the csv module reads it as text
    columns = {}
    for name in header:
        col = pc.utf8_trim_whitespace(table.column(name))
        columns[name.strip().lower()] = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    if not any(columns):
        return None
    frame = pa.table(columns).to_pandas(types_mapper=None)
    frame = frame.astype(object).where(frame.notna(), None)
    lines = np.asarray(nonblank[1:], dtype=np.int64) + 1
    keep = frame.notna().any(axis=1).to_numpy()
    frame = frame[keep].reset_index(drop=True)
    frame.attrs["ragged_rows"] = []
    return frame, lines[keep].tolist(), header


def read_table_csv(path: Path | str) -> CsvRead:
    """Read a contract CSV as text with tolerant encoding, separator and header detection.

    Parameters
    ----------
    path
        The CSV file.

    Returns
    -------
    CsvRead
        ``frame`` has lower-cased, stripped column names and string cells (``None`` for empty cells,
        surrounding whitespace removed); ``lines`` gives the physical line where each record starts.

    Raises
    ------
    InputFileError
        Empty file, no header, or a record that the CSV grammar cannot parse.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.csv"
    >>> _ = p.write_bytes("\\ufeffFINESS;Catégorie\\n010000024;355\\n".encode("utf-8"))
    >>> r = read_table_csv(p)
    >>> list(r.frame.columns), r.delimiter, r.had_bom
    (['finess', 'catégorie'], ';', True)
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror})") from exc
    text, encoding, had_bom = _decode(raw, path)
    if not text.strip():
        raise InputFileError(path, "is empty; expected a header row")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    delimiter = _sniff_delimiter(first_line)
    frame, starts, header = _read_fast(text, delimiter) or _read_with_csv_module(text, delimiter, path)
    return CsvRead(
        frame=frame,
        path=path,
        encoding=encoding,
        delimiter=delimiter,
        had_bom=had_bom,
        original_columns=[h.strip() for h in header],
        lines=pd.Series(starts, index=frame.index, dtype="int64"),
    )


def _read_with_csv_module(text: str, delimiter: str, path: Path) -> tuple[pd.DataFrame, list[int], list[str]]:
    """The records of ``text`` read by the ``csv`` module (what the Arrow reader cannot parse): the frame
    (ragged rows padded or cut to the header, their lines in ``attrs["ragged_rows"]``), the physical line
    where each record starts, the header cells."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[list[str]] = []
    starts: list[int] = []
    try:
        header = next(reader)
        line_no = reader.line_num + 1
        for record in reader:
            if record and any(cell.strip() for cell in record):
                records.append(record)
                starts.append(line_no)
            line_no = reader.line_num + 1
    except csv.Error as exc:
        raise InputFileError(path, f"not valid CSV ({exc})", line=reader.line_num) from exc
    columns = [h.strip().lower() for h in header]
    if not any(columns):
        raise InputFileError(path, "has no header row", line=1)
    width = len(columns)
    fixed = [r[:width] + [""] * (width - len(r)) if len(r) != width else r for r in records]
    frame = pd.DataFrame(fixed, columns=columns, dtype=object)
    frame = frame.apply(lambda s: s.str.strip()).replace({"": None})
    frame.attrs["ragged_rows"] = [starts[i] for i, r in enumerate(records) if len(r) != width]
    return frame, starts, header


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def write_parquet_atomic(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` to Parquet atomically and deterministically (no index, zstd, no stats timestamps)."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(text: str, path: Path | str) -> Path:
    """Write text atomically (UTF-8, ``\\n`` line ends)."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv_atomic(frame: pd.DataFrame, path: Path | str, *, float_format: str = "%.6g") -> Path:
    """Write a tidy table as CSV atomically, deterministically (fixed float format, no index)."""
    return write_text_atomic(frame.to_csv(index=False, float_format=float_format, lineterminator="\n"), path)


def sha256_file(path: Path | str) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (inputs of a run are recorded by their hash)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
