"""CSV and JSON helpers shared by the scanner readers: encoding, delimiter and header sniffing, chunked reads.

Tolerance (data-contract.md): UTF-8 with or without BOM, UTF-16, legacy 8-bit (one decoding helper:
:func:`cyberobs_lib.io.detect_encoding`); ``,`` or ``;`` delimiters; report metadata lines before the header row (Qualys VMDR); blank lines; header-only files (zero rows, not an error).
Strictness: a row with more fields than the header is a :class:`ScanError` naming the line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib.io import detect_encoding as _detect
from cyberobs_lib.scanners._core import ScanError

__all__ = ["detect_encoding", "sniff_header", "iter_csv", "normalize_header"]

_HEAD_BYTES = 1 << 16
_MAX_HEADER_SEARCH = 30


def detect_encoding(path: str | Path) -> str:
    """The codec of a delimited export, by :func:`cyberobs_lib.io.detect_encoding` (the package's one
    decoding helper, over the whole file): ``"utf-8-sig"`` for UTF-8 with or without BOM (also when a few
    bytes are invalid: they are replaced, never re-decoded as CP1252), ``"utf-16"`` (BOM), else the legacy
    8-bit codec chosen by charset_normalizer (``"cp1252"`` ...)."""
    enc = _detect(Path(path))
    return "utf-8-sig" if enc.is_utf8 else enc.name


def normalize_header(name: str) -> str:
    """Lowercase, stripped column name (``" Plugin ID "`` -> ``"plugin id"``)."""
    return str(name).strip().strip('"').strip().lower()


def sniff_header(
    path: str | Path, is_header: Callable[[set[str]], bool], *, encoding: str | None = None
) -> tuple[str, str, int, list[str]] | None:
    """Find the header row of a delimited export.

    Parameters
    ----------
    path : path-like
    is_header : callable
        Called with the set of normalized names of a candidate row; True for the header.
    encoding : str, optional
        Known encoding (else sniffed from the head).

    Returns
    -------
    tuple or None
        ``(encoding, delimiter, lines_before_header, header)``; None when no row within the first
        30 records is a header.
    """
    with open(path, "rb") as fh:
        raw = fh.read(_HEAD_BYTES)
    if encoding is None:
        encoding = detect_encoding(path)  # the whole file: a Latin-1 byte may come after the head
    text = raw.decode(encoding, errors="ignore")
    lines = text.splitlines(keepends=True)
    if len(raw) == _HEAD_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    for sep in (",", ";", "\t"):
        reader = csv.reader(io.StringIO("".join(lines)), delimiter=sep)
        before = 0
        try:
            for i, rec in enumerate(reader):
                if i >= _MAX_HEADER_SEARCH:
                    break
                names = {normalize_header(x) for x in rec}
                if len(rec) >= 2 and is_header(names):
                    return encoding, sep, before, [str(x).strip() for x in rec]
                before = reader.line_num
        except csv.Error:
            continue
    return None


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def iter_csv(
    path: str | Path, *, encoding: str, sep: str, skip_lines: int, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """Read a delimited export in chunks of strings (empty cells ``""``), with a 1-based ``_row`` column.

    Raises
    ------
    ScanError
        A malformed row (more fields than the header), with its line number.
    """
    try:
        reader = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            encoding_errors="replace",  # a few invalid bytes in a UTF-8 export: U+FFFD, the rest kept
            skiprows=skip_lines,
            chunksize=chunk_rows,
            skip_blank_lines=True,
        )
        start = 0
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            chunk["_row"] = range(start + 1, start + len(chunk) + 1)
            start += len(chunk)
            yield chunk
    except pd.errors.EmptyDataError:
        return
    except pd.errors.ParserError as err:
        m = _FIELDS.search(str(err))
        if m:
            raise ScanError(
                path,
                f"row with {m.group(3)} fields",
                line=int(m.group(2)) + skip_lines,
                expected=f"{m.group(1)} fields as in the header",
            ) from None
        raise ScanError(path, f"malformed CSV: {err}", expected="a delimited export") from None


def pick(df: pd.DataFrame, *names: str) -> pd.Series:
    """The first column of ``df`` whose normalized name is in ``names``; empty strings become None.

    Examples
    --------
    >>> import pandas as pd
    >>> pick(pd.DataFrame({"Plugin ID": ["1", ""]}), "plugin", "plugin id").tolist()
    ['1', None]
    """
    lookup = {normalize_header(c): c for c in df.columns}
    for n in names:
        if n in lookup:
            s = df[lookup[n]].astype(object)
            return s.where(s.astype(str).str.strip() != "", None)
    return pd.Series(None, index=df.index, dtype=object)


def row_skip(df: pd.DataFrame, host: pd.Series) -> pd.Series:
    """Reader-level skip reason per row: ``empty_row`` (every cell empty), ``no_host``, else None.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": ["x", "", "y"], "_row": [1, 2, 3]})
    >>> row_skip(df, pd.Series(["h", None, None])).tolist()
    [None, 'empty_row', 'no_host']
    """
    cells = df.drop(columns=["_row"], errors="ignore").astype(str).apply(lambda c: c.str.strip())
    empty = (cells == "").all(axis=1)
    out = np.full(len(df), None, dtype=object)
    out[host.isna().to_numpy()] = "no_host"
    out[empty.to_numpy()] = "empty_row"
    return pd.Series(out, index=df.index, dtype=object)
