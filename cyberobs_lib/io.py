"""Readers and writers: the only module (with the scanner readers) that touches files.

* :func:`read_table_csv` reads a contract CSV the way real exports come, losing nothing silently: UTF-8
  with or without BOM, UTF-16 with BOM (Excel "Unicode text"), or a legacy 8-bit encoding (CP1252/Latin-1
  as French administrations export, chosen by charset_normalizer); LF, CRLF or CR-only line ends; ``,``,
  ``;``, tab or ``|`` separators, detected from the header line; header names case-insensitive
  (lower-cased and stripped; two names equal up to case are an error); every cell kept as text (typing
  is the validator's job, so that a bad cell is reported, never coerced away). The records are counted
  from the bytes by a quote-aware scan, independently of the parser, and the two must agree; a quote
  that runs away over lines that look like records rejects the file, naming the line where it opened.
  Undecodable bytes (U+FFFD) and control characters (removed) are warnings naming line and column.
* :func:`detect_encoding` / :func:`decode_bytes` are the package's one decoding helper (also used by
  :mod:`cyberobs_lib.scale.csv_stream`, :mod:`cyberobs_lib.scanners.tabular` and
  :mod:`cyberobs_lib.finess_extract`).
* :func:`write_parquet_atomic` / :func:`write_text_atomic` write to a temporary file in the target folder and
  rename it into place (``os.replace`` is atomic on POSIX), so a crash never leaves a half-written table
  that looks complete; a failure (a full disk) removes the temporary file and raises an OSError naming the
  target file. Parquet output is deterministic: no index, fixed row order, no timestamps.
"""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class InputFileError(ValueError):
    """A file that cannot be read at all; the message names the file, the line when known, and the rule.

    ``rule`` is the rule code of :data:`cyberobs_lib.checks.RULES` (``unreadable_file`` unless more precise:
    ``missing_file``, ``runaway_quote``, ``duplicate_column``, ``record_count``).
    """

    def __init__(
        self, path: Path | str, message: str, *, line: int | None = None, rule: str = "unreadable_file"
    ):
        self.path = Path(path)
        self.line = line
        self.rule = rule
        where = f"{self.path}" + (f": line {line}" if line else "")
        super().__init__(f"{where}: {message} [{rule}]")


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
    #: ``LF``, ``CRLF``, ``CR`` (old Mac Excel, read as line ends) or ``mixed``
    line_end: str = "LF"
    #: data records counted from the bytes by a quote-aware scan, independently of the parser, blank
    #: records left out: ``len(frame) == n_records`` always holds for a read that returns
    n_records: int = 0
    #: physical lines of the blank records (empty, whitespace or separators only), never in ``frame``
    blank_lines: list[int] = field(default_factory=list)
    #: warnings met while reading (``bad_encoding``, ``control_character``), one dict per cell or line:
    #: ``line, column, rule, severity, value, message``
    issues: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Bytes -> UTF-8: the one decoding helper (io, scale.csv_stream, scanners.tabular, finess_extract)
# --------------------------------------------------------------------------------------------------
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
#: the legacy encodings a French export may use, among which charset_normalizer chooses
_LEGACY = ["cp1252", "latin_1", "iso8859_15", "mac_roman", "cp850"]
READ_BLOCK = 1 << 24
_MAX_ISSUES = 1000  # per rule and file: details beyond are summarised in one line
_REPLACEMENT = "\ufffd".encode()


@dataclass
class Encoding:
    """What :func:`detect_encoding` found: the codec to use, the BOM, and the count of undecodable bytes."""

    name: str  #: Python codec name (``utf-8``, ``utf-8-sig``, ``utf-16``, ``cp1252``, ...)
    had_bom: bool = False
    bad_bytes: int = 0  #: bytes that are not valid in ``name`` (replaced by U+FFFD and reported)

    @property
    def is_utf8(self) -> bool:
        return self.name in ("utf-8", "utf-8-sig")


def _utf8_counts(block: bytes) -> tuple[int, int]:
    """(invalid bytes, valid non-ASCII characters) of ``block`` read as UTF-8."""
    text = block.decode("utf-8", "surrogateescape")
    bad = len(re.findall("[\udc80-\udcff]", text))
    good = len(re.findall("[^\x00-\x7f\udc80-\udcff]", text))
    return bad, good


def _blocks(source: bytes | Path) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    with Path(source).open("rb") as fh:
        while block := fh.read(READ_BLOCK):
            yield block


def detect_encoding(source: bytes | Path) -> Encoding:
    """The encoding of a text file, decided on the whole file (a stray byte may come after any head).

    * a BOM decides: UTF-8 (``utf-8-sig``) or UTF-16 (Excel "Unicode text"); a UTF-8 BOM followed by
      bytes that are mostly not UTF-8 (a tool that prefixed a BOM to a Latin-1 file) is a legacy file;
    * UTF-8 without BOM when the file decodes as UTF-8;
    * a file that is mostly UTF-8 (at least as many valid non-ASCII characters as invalid bytes) is
      UTF-8 with ``bad_bytes`` reported, never re-decoded as CP1252 (``Ã‰tablissement``);
    * else a legacy 8-bit encoding chosen by :mod:`charset_normalizer` among CP1252, Latin-1,
      ISO-8859-15, Mac Roman and CP850 (CP1252 when it cannot tell).

    Examples
    --------
    >>> detect_encoding("Hôpital".encode("utf-8")).name, detect_encoding("Hôpital".encode("cp1252")).name
    ('utf-8', 'cp1252')
    >>> e = detect_encoding("École, Hôpital, é\\xff".encode("utf-8") + b"\\xff")
    >>> e.name, e.bad_bytes
    ('utf-8', 1)
    >>> detect_encoding("a\\tb".encode("utf-16")).name
    'utf-16'
    """
    if isinstance(source, bytes | bytearray | memoryview):
        head = bytes(source[:4])
    else:
        with Path(source).open("rb") as fh:
            head = fh.read(4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        bad = 0
        dec = codecs.getincrementaldecoder("utf-16")("replace")
        for block in _blocks(source):
            bad += dec.decode(block).count("\ufffd")
        bad += dec.decode(b"", final=True).count("\ufffd")
        return Encoding("utf-16", True, bad)
    bom = head.startswith(b"\xef\xbb\xbf")
    carry = b""
    for block in _blocks(source):
        block = carry + block
        cut = block.rfind(b"\n") + 1  # a newline never splits a UTF-8 sequence
        carry = block[cut:] if cut else block
        if cut and not _is_utf8(block[:cut]):
            break
    else:
        if _is_utf8(carry):
            return Encoding("utf-8-sig" if bom else "utf-8", bom, 0)
    bad = good = 0
    sample: list[bytes] = []
    size = 0
    for block in _blocks(source):
        b, g = _utf8_counts(block)
        bad, good = bad + b, good + g
        if size < (1 << 20):  # the lines with non-ASCII bytes, for the legacy detector
            for line in re.findall(rb"[^\n]*[\x80-\xff][^\n]*\n?", block)[:2000]:
                sample.append(line)
                size += len(line)
    if good >= bad:
        return Encoding("utf-8-sig" if bom else "utf-8", bom, bad)
    return Encoding(_legacy(b"".join(sample)), bom, 0)


def _is_utf8(data: bytes) -> bool:
    """True when ``data`` is valid UTF-8 (Arrow's SIMD validation: ten times faster than decoding)."""
    if data.isascii():
        return True
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


#: characters of French text outside ASCII: what a right guess among 8-bit code pages decodes to
_FRENCH = frozenset("àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ«»€°’")


def _legacy(sample: bytes) -> str:
    """The 8-bit code page of ``sample`` (its lines with non-ASCII bytes) among :data:`_LEGACY`.

    :mod:`charset_normalizer` ranks the candidates; on short samples (a name column whose only non-ASCII
    character is an initial ``É``) several come out equally clean — ``0xC9`` is ``É`` in CP1252 and
    ``…`` in Mac Roman — so the near-ties are decided by the French characters each decoding yields,
    then by the order of :data:`_LEGACY` (CP1252 first, the Windows default).
    """
    from charset_normalizer import from_bytes

    results = list(from_bytes(sample, cp_isolation=_LEGACY)) if sample else []
    if not results:
        return "cp1252"
    least = min(r.chaos for r in results)
    near = [r for r in results if r.chaos <= least + 0.05]

    def score(r) -> tuple[int, int]:
        french = sum(1 for ch in str(r) if ch in _FRENCH)
        rank = _LEGACY.index(r.encoding) if r.encoding in _LEGACY else len(_LEGACY)
        return french, -rank

    return max(near, key=score).encoding


class Transcoder:
    """Bytes of ``encoding`` -> UTF-8 bytes, block by block (undecodable bytes become U+FFFD)."""

    def __init__(self, enc: Encoding):
        self.enc = enc
        self.first = True
        self.dec = (
            None if enc.is_utf8 and not enc.bad_bytes else codecs.getincrementaldecoder(enc.name)("replace")
        )

    def feed(self, block: bytes, final: bool = False) -> bytes:
        if self.first and block.startswith(b"\xef\xbb\xbf"):
            block = block[3:]  # also the UTF-8 BOM of a legacy-content file (``had_bom`` says it)
        self.first = False
        if self.dec is None:
            return block
        return self.dec.decode(block, final).encode("utf-8")


class _Utf8Stream(io.RawIOBase):
    """A file read as UTF-8 bytes, transcoded block by block (see :func:`open_utf8`)."""

    def __init__(self, path: Path, enc: Encoding, block_size: int):
        self._fh = path.open("rb")
        self._transcoder = Transcoder(enc)
        self._block_size = block_size
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._eof:
            block = self._fh.read(self._block_size)
            self._eof = not block
            self._pending = self._transcoder.feed(block, final=self._eof)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_utf8(
    path: Path | str, enc: Encoding | None = None, *, block_size: int = 1 << 24
) -> io.BufferedReader:
    """The bytes of a text file as UTF-8, decoded as :func:`decode_bytes` decodes (by
    :func:`detect_encoding`'s choice over the whole file, BOM removed, bad bytes as U+FFFD), streamed:
    for readers that take a binary UTF-8 stream (pyarrow's CSV reader).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d, "t.csv")
    ...     _ = p.write_bytes("nom\\nHôpital d’Aulnay\\n".encode("cp1252"))
    ...     with open_utf8(p) as fh:
    ...         fh.read().decode()
    'nom\\nHôpital d’Aulnay\\n'
    """
    path = Path(path)
    return io.BufferedReader(_Utf8Stream(path, enc or detect_encoding(path), block_size))


def decode_bytes(raw: bytes, path: Path | str | None = None) -> tuple[str, Encoding]:
    """``raw`` as text by :func:`detect_encoding`'s choice (BOM removed, bad bytes as U+FFFD).

    The one decoding helper of the package: :func:`read_table_csv`, the chunked reader, the scanner
    readers and the FINESS extracts decode through it.

    Examples
    --------
    >>> decode_bytes(b"\\xef\\xbb\\xbfFINESS")[0], decode_bytes("Hôpital".encode("cp1252"))[1].name
    ('FINESS', 'cp1252')
    """
    enc = detect_encoding(raw)
    if enc.name == "utf-8-sig":
        return raw[3:].decode("utf-8", "replace"), enc
    if enc.had_bom and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode(enc.name, "replace"), enc


def read_regular_file(path: Path | str) -> bytes:
    """The bytes of ``path``, after checking that it is a regular file (a FIFO is never opened: it blocks).

    Raises
    ------
    InputFileError
        ``missing_file`` when absent; ``unreadable_file`` for a directory, FIFO, device, or an OS error.
    """
    path = Path(path)
    check_regular(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror})") from exc


def check_regular(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputFileError(path, "cannot be read (no such file)", rule="missing_file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "not a regular file"
        )
        raise InputFileError(path, f"is {kind}; expected a CSV file")


# --------------------------------------------------------------------------------------------------
# Normalized UTF-8 stream: line ends, control characters, record scan
# --------------------------------------------------------------------------------------------------
#: C0 controls except tab/LF/CR, and DEL; C1 controls (U+0080-U+009F) are matched on UTF-8 bytes
_CONTROL = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
_C1 = re.compile(rb"\xc2[\x80-\x9f]")


#: Delimiters of the input contract, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(header_line: str, candidates: tuple[str, ...] = DELIMITERS) -> str:
    """The candidate found most often in ``header_line``; a tie goes to the earlier candidate, and a
    line with none of them gives the first candidate. The package's one delimiter sniffer.

    Examples
    --------
    >>> sniff_delimiter("a;b;c"), sniff_delimiter("a;b,c"), sniff_delimiter("abc")
    (';', ',', ',')
    >>> sniff_delimiter("a;b,c", candidates=(";", ",", "\\t"))  # FINESS extracts prefer ';'
    ';'
    """
    counts = [header_line.count(d) for d in candidates]
    return candidates[counts.index(max(counts))]


@dataclass
class _Scan:
    """What the quote-aware scan of the bytes found (see :class:`Normalizer`)."""

    record_lines: list[np.ndarray] = field(default_factory=list)  #: start line of every record
    blank: list[np.ndarray] = field(default_factory=list)  #: per record: empty/blank
    multiline: bool = False
    max_record: int = 0


class Normalizer:
    """UTF-8 bytes in blocks -> the normalized CSV bytes (LF line ends when the file has CR-only ends,
    control characters removed), cut at record boundaries, with a quote-aware count of the records.

    The in-memory reader feeds the whole file once; the chunked reader feeds 16 MiB blocks: both see
    the same records, the same line numbers, the same warnings and the same errors.
    """

    def __init__(self, path: Path, delimiter: str | None = None, encoding: Encoding | None = None):
        self.path = path
        self.delimiter = delimiter
        self.width = 0
        self.header: list[str] | None = None
        self.pending = b""
        self.line = 1  # physical line of the first byte of ``pending``
        self.crlf = self.lone_cr = self.lf = 0
        self.held_cr = False
        self.changed = False  #: bytes were changed (CR line ends, control characters removed)
        self.scan = _Scan()
        self.issues: list[dict] = []
        self._counts: dict[str, int] = {}
        if encoding is not None and encoding.had_bom and not encoding.is_utf8 and encoding.name != "utf-16":
            self._issue("bad_encoding", 1, None, None,
                        f"the file starts with a UTF-8 BOM but its bytes are {encoding.name}: read as "
                        f"{encoding.name}")  # fmt: skip

    # -- line ends ---------------------------------------------------------------------------------
    def _line_ends(self, data: bytes, final: bool) -> bytes:
        if self.held_cr:
            data, self.held_cr = b"\r" + data, False
        if not final and data.endswith(b"\r"):
            data, self.held_cr = data[:-1], True  # a CRLF split between two blocks
        if b"\r" not in data:
            self.lf += b"\n" in data  # presence is enough to name the line end
            return data
        crlf, cr, lf = data.count(b"\r\n"), data.count(b"\r"), data.count(b"\n")
        self.crlf, self.lone_cr, self.lf = self.crlf + crlf, self.lone_cr + cr - crlf, self.lf + lf - crlf
        if cr == crlf:
            return data  # CRLF: both parsers read it
        self.changed = True
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    @property
    def line_end(self) -> str:
        kinds = [k for k, n in (("LF", self.lf), ("CRLF", self.crlf), ("CR", self.lone_cr)) if n]
        return kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "LF")

    # -- feeding -----------------------------------------------------------------------------------
    def feed(self, data: bytes, final: bool = False) -> bytes:
        """Normalized bytes of the complete records available so far (all of them when ``final``)."""
        data = self.pending + self._line_ends(data, final)
        if self.header is None:
            end = data.find(b"\n")
            if end < 0 and not final:
                self.pending = data
                return b""
            self._read_header(data[: end if end >= 0 else len(data)])
        cut = len(data) if final else data.rfind(b"\n") + 1
        buf = np.frombuffer(data, dtype=np.uint8)[:cut]
        nl = np.flatnonzero(buf == 10)
        ends, inside = self._record_ends(buf, nl)
        if inside and not final:  # the last record goes on in the next block: cut after the one before
            cut = int(ends[-1]) + 1 if len(ends) else 0
            buf, nl, ends, inside = buf[:cut], nl[nl < cut], ends[ends < cut], False
        part, self.pending = data[:cut], data[cut:]
        if not part:
            return b""
        clean = self._controls(part, buf, nl)
        if clean is not part:  # bytes removed: positions change
            part = clean
            buf = np.frombuffer(part, dtype=np.uint8)
            nl = np.flatnonzero(buf == 10)
            ends, inside = self._record_ends(buf, nl)
        self._scan(part, buf, nl, ends, inside)
        self.line += len(nl)
        return part

    def _read_header(self, first: bytes) -> None:
        text = first.decode("utf-8", "replace").rstrip("\r")
        if self.delimiter is None:
            self.delimiter = sniff_delimiter(text)
        self.header = next(csv.reader([text], delimiter=self.delimiter), [])
        self.width = len(self.header)

    # -- control characters and undecodable bytes ---------------------------------------------------
    def _issue(self, rule: str, line: int, column: str | None, value: str | None, message: str) -> None:
        n = self._counts[rule] = self._counts.get(rule, 0) + 1
        if n <= _MAX_ISSUES:
            self.issues.append(
                {"line": line, "column": column, "rule": rule, "severity": "warning", "value": value,
                 "message": message}
            )  # fmt: skip

    def _locate(self, part: bytes, pos: int) -> tuple[int, str | None, str]:
        """Line, column name and the text of the cell prefix around byte ``pos`` of ``part``."""
        start = part.rfind(b"\n", 0, pos) + 1
        line = self.line + part.count(b"\n", 0, start)
        prefix = part[start:pos].decode("utf-8", "replace")
        fields = next(csv.reader([prefix], delimiter=self.delimiter), [""])
        k = max(len(fields) - 1, 0)
        column = self.header[k].strip().lower() if self.header and k < len(self.header) else f"#{k + 1}"
        return line, column, fields[-1][-40:] if fields else ""

    def _controls(self, part: bytes, buf: np.ndarray, nl: np.ndarray) -> bytes:
        if b"\xef" in part and _REPLACEMENT in part:
            for m in re.finditer(re.escape(_REPLACEMENT), part):
                line, column, value = self._locate(part, m.start())
                self._issue("bad_encoding", line, column, value,
                            "bytes not valid in the file's encoding, replaced by U+FFFD")  # fmt: skip
        found = _has_control(part, buf, len(nl))
        c1 = b"\xc2" in part and _C1.search(part) is not None
        if not (found or c1):
            return part
        for m in re.finditer(b"[" + re.escape(_CONTROL) + b"]|" + _C1.pattern, part):
            line, column, value = self._locate(part, m.start())
            code = m.group().decode("utf-8", "replace")
            self._issue("control_character", line, column, value,
                        f"control character U+{ord(code):04X} removed from the cell")  # fmt: skip
        part = part.translate(None, _CONTROL)
        self.changed = True
        return _C1.sub(b"", part) if c1 else part

    # -- quote-aware record scan ------------------------------------------------------------------
    def _record_ends(self, buf: np.ndarray, nl: np.ndarray) -> tuple[np.ndarray, bool]:
        """Positions of the newlines that end a record (outside quotes), RFC 4180 / csv-module grammar."""
        qp = np.flatnonzero(buf == 34)
        if not len(qp):
            return nl, False
        d = ord(self.delimiter)
        n = len(buf)
        prev = np.where(qp > 0, buf[np.maximum(qp - 1, 0)], 10)
        nxt = np.where(qp < n - 1, buf[np.minimum(qp + 1, n - 1)], 10)
        edge = (
            (prev == d) | (prev == 10) | (prev == 34) | (nxt == d) | (nxt == 10) | (nxt == 13) | (nxt == 34)
        )
        if edge.all():  # well-formed quotes: a newline ends a record when an even number of quotes precede it
            return nl[np.searchsorted(qp, nl) % 2 == 0], len(qp) % 2 == 1
        return self._record_ends_exact(buf, qp, nl, d)

    @staticmethod
    def _record_ends_exact(
        buf: np.ndarray, qp: np.ndarray, nl: np.ndarray, d: int
    ) -> tuple[np.ndarray, bool]:
        """The csv module's grammar, event by event (only for files with quotes inside unquoted cells)."""
        events = np.concatenate([qp, nl])
        events.sort(kind="stable")
        ends = []
        inside = False
        skip = -1
        n = len(buf)
        for p in events.tolist():
            if p == skip:
                continue
            if buf[p] == 10:
                if not inside:
                    ends.append(p)
            elif not inside:
                if p == 0 or buf[p - 1] in (d, 10):
                    inside = True
            elif p + 1 < n and buf[p + 1] == 34:
                skip = p + 1  # "" inside a quoted cell
            else:
                inside = False
        return np.asarray(ends, dtype=np.int64), inside

    def _scan(self, part: bytes, buf: np.ndarray, nl: np.ndarray, ends: np.ndarray, inside: bool) -> None:
        n = len(buf)
        if inside:  # a quote still open at the end of the file
            self._runaway(part, buf, nl, ends, int(ends[-1]) + 1 if len(ends) else 0, eof=True)
        multiline = len(ends) < len(nl)
        if not len(ends) or ends[-1] != n - 1:
            ends = np.append(ends, n)  # the last record has no newline: it ends at EOF
        starts = np.concatenate([[0], ends[:-1] + 1])
        if multiline:
            self.scan.multiline = True
            self._check_multiline(part, buf, nl, ends, starts)
        lines = self.line + np.searchsorted(nl, starts)
        length = ends - starts
        d = ord(self.delimiter)
        if len(starts):
            # blank records (whitespace, separators, quotes only) start with one of those bytes: only
            # those candidates are looked at byte by byte
            first = buf[np.minimum(starts, max(n - 1, 0))] if n else np.zeros(len(starts), np.uint8)
            cand = (length <= 0) | np.isin(first, [32, 9, 13, 10, d, 34])
            blank = length <= 0
            junk = b' \t\r\n"' + self.delimiter.encode()
            for k in np.flatnonzero(cand & ~blank).tolist():
                blank[k] = not part[int(starts[k]) : int(ends[k])].translate(None, junk)
            self.scan.max_record = max(self.scan.max_record, int(length.max()))
        else:
            blank = np.zeros(0, dtype=bool)
        self.scan.record_lines.append(lines.astype(np.int64))
        self.scan.blank.append(blank)

    def _check_multiline(self, part, buf, nl, ends, starts) -> None:
        """A quoted cell spanning lines is a runaway quote when the lines it swallows look like records:
        the record they make does not have the header's width, or every physical line of it holds a whole
        record's separators (a quote opened in one record and closed in a later one makes a record of the
        right width: Excel's ``"`` typed at the start of a cell swallows the lines between)."""
        inner = np.setdiff1d(nl, ends, assume_unique=True)
        d = self.delimiter.encode()
        seen = set()
        for p in inner.tolist():
            k = int(np.searchsorted(ends, p))
            if k in seen:
                continue
            stop = part.find(b"\n", p + 1)
            cont = part[p + 1 : stop if stop >= 0 else len(part)]
            if self.width < 2 or cont.count(d) < self.width - 1:
                continue
            seen.add(k)
            text = part[int(starts[k]) : int(ends[k])].decode("utf-8", "replace")
            csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
            cells = next(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter), [])
            record = part[int(starts[k]) : int(ends[k])].split(b"\n")
            if len(cells) != self.width or all(line.count(d) >= self.width - 1 for line in record):
                self._runaway(part, buf, nl, ends, int(starts[k]), eof=False)

    def _runaway(self, part, buf, nl, ends, start: int, *, eof: bool) -> None:
        first_inner = nl[np.searchsorted(nl, start)] if np.searchsorted(nl, start) < len(nl) else len(buf)
        quotes = np.flatnonzero(buf[start:first_inner] == 34)
        opener = start + int(quotes[-1]) if len(quotes) else start
        line = self.line + part.count(b"\n", 0, opener)
        swallowed = int(np.sum(nl >= first_inner))
        what = (
            "never closes: every line after it would be read as one cell"
            if eof
            else "closes only lines later: the lines between would be merged into one record"
        )
        raise InputFileError(
            self.path,
            f"a quote opens a cell here and {what} ({swallowed} line(s)); fix the quote "
            '(a literal quote inside a quoted cell is written ""); the file is rejected',
            line=line,
            rule="runaway_quote",
        )

    def finish(self) -> bytes:
        out = self.feed(b"", final=True)
        for rule, n in self._counts.items():
            if n > _MAX_ISSUES:
                self.issues.append(
                    {"line": None, "column": None, "rule": rule, "severity": "warning", "value": None,
                     "message": f"{n - _MAX_ISSUES} more {rule} warning(s) in this file not listed"}
                )  # fmt: skip
        return out

    # -- results -------------------------------------------------------------------------------------
    def records(self) -> tuple[np.ndarray, np.ndarray]:
        """(start line, blank) of every record after the header, empty lines included."""
        lines = np.concatenate(self.scan.record_lines) if self.scan.record_lines else np.zeros(0, np.int64)
        blank = np.concatenate(self.scan.blank) if self.scan.blank else np.zeros(0, bool)
        return lines[1:], blank[1:]


SPACE_BYTES = b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"


def _has_control(part: bytes, buf: np.ndarray, n_lf: int) -> bool:
    """True when ``part`` has a byte below 32 other than tab, LF, CR, or DEL (counts only, no copies)."""
    if b"\x7f" in part:
        return True
    low = int(np.count_nonzero(buf < 32))
    if low == n_lf:
        return False
    return low != n_lf + int(np.count_nonzero(buf == 13)) + int(np.count_nonzero(buf == 9))


def check_header(path: Path, header: list[str]) -> None:
    names = [h.strip().lower() for h in header]
    if not any(names):
        raise InputFileError(path, "has no header row", line=1)
    seen: dict[str, str] = {}
    for raw, name in zip(header, names, strict=True):
        if name and name in seen:
            raise InputFileError(
                path,
                f"columns '{seen[name].strip()}' and '{raw.strip()}' are the same column (names are "
                "case-insensitive); keep one",
                line=1,
                rule="duplicate_column",
            )
        seen[name] = raw


def normalize_csv_bytes(raw: bytes, path: Path) -> tuple[bytes, Encoding, Normalizer]:
    """The whole file ``raw`` as normalized UTF-8 CSV bytes, with its encoding and scan."""
    enc = detect_encoding(raw)
    data = Transcoder(enc).feed(raw, final=True)
    norm = Normalizer(path, encoding=enc)
    out = norm.feed(data, final=True)
    out += norm.finish()
    return out, enc, norm


# --------------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------------
def _read_fast(
    data: bytes, delimiter: str, header: list[str], max_record: int
) -> tuple[pd.DataFrame, list[str]] | None:
    """Parse with pyarrow's C reader when every record is one physical line (the common case).

    Returns None — and the caller falls back to the :mod:`csv` module — when a record is ragged or
    pyarrow refuses the text. Results are the same on both paths (tested): cells stripped, empty cells
    missing; the frame keeps one row per non-empty line (blank records are dropped by the caller).
    """
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=False, use_threads=True, block_size=max(1 << 20, 2 * max_record + 2)
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                auto_dict_encode=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    names = table.column_names
    if names != header or not all(pa.types.is_string(t) for t in table.schema.types):
        return None  # a header pyarrow names otherwise: the csv module reads it as text
    columns = {}
    for name in names:
        col = pc.utf8_trim_whitespace(table.column(name))
        columns[name.strip().lower()] = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    frame = pa.table(columns).to_pandas(types_mapper=None)
    frame = frame.astype(object).where(frame.notna(), None)
    frame.attrs["ragged_rows"] = []
    return frame, names


def read_table_csv(path: Path | str) -> CsvRead:
    """Read a contract CSV as text, losing nothing: every record kept, or an error naming file and line.

    Parameters
    ----------
    path
        The CSV file: UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text"), or a legacy
        8-bit encoding (CP1252/Latin-1, chosen by :mod:`charset_normalizer`); LF, CRLF or CR line ends;
        ``,``, ``;``, tab or ``|`` separators (detected from the header line).

    Returns
    -------
    CsvRead
        ``frame`` has lower-cased, stripped column names and string cells (``None`` for empty cells,
        surrounding whitespace removed); ``lines`` gives the physical line where each record starts;
        ``n_records`` the records counted from the bytes (``== len(frame)``), ``blank_lines`` the blank
        records left out, ``issues`` the warnings (``bad_encoding``: bytes not valid in the file's
        encoding, replaced by U+FFFD; ``control_character``: NUL and other control characters removed
        from a cell), ``encoding``/``line_end``/``delimiter`` what was detected.

    Raises
    ------
    InputFileError
        With ``rule``: ``missing_file``; ``unreadable_file`` (not a regular file — a FIFO is never
        opened —, empty, no header); ``duplicate_column`` (two columns with the same name up to case);
        ``runaway_quote`` (a quote that never closes, or closes lines later so that the lines between
        look like records: the whole file is rejected, naming the line where the quote opened — merging
        records silently is never an option, guessing where the cell should have ended neither);
        ``record_count`` (the parser and the byte scan disagree on the records).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.csv"
    >>> _ = p.write_bytes("\\ufeffFINESS;Catégorie\\r010000024;355\\r".encode("utf-8"))
    >>> r = read_table_csv(p)
    >>> list(r.frame.columns), r.delimiter, r.had_bom, r.line_end, r.n_records
    (['finess', 'catégorie'], ';', True, 'CR', 1)
    """
    path = Path(path)
    raw = read_regular_file(path)
    if not raw[:4096].strip(SPACE_BYTES) and not raw.strip(SPACE_BYTES):
        raise InputFileError(path, "is empty; expected a header row", line=1)
    data, enc, norm = normalize_csv_bytes(raw, path)
    header = norm.header or []
    check_header(path, header)
    delimiter = norm.delimiter
    starts, blank = norm.records()
    frame_header = None
    got = None
    if not norm.scan.multiline:
        got = _read_fast(data, delimiter, header, norm.scan.max_record)
    if got is not None:
        frame, frame_header = got
        # pyarrow skips empty lines only: its rows are the records of length > 0, in order
        lengths_ok = _nonempty(data, norm)
        if len(frame) != int(lengths_ok.sum()):
            got = None
        else:
            frame_lines = starts[lengths_ok]
            keep = frame.notna().any(axis=1).to_numpy()
            frame = frame[keep].reset_index(drop=True)
            lines = frame_lines[keep]
    if got is None:
        frame, lines, frame_header = _read_with_csv_module(data.decode("utf-8"), delimiter, path, starts)
    n_records = int((~blank).sum())
    if len(frame) != n_records:
        scan_lines = starts[~blank]
        diff = np.flatnonzero(scan_lines[: len(lines)] != np.asarray(lines)[: len(scan_lines)])
        at = int(scan_lines[diff[0]]) if len(diff) else int(scan_lines[min(len(lines), len(scan_lines) - 1)])
        raise InputFileError(
            path,
            f"the CSV parser returned {len(frame)} records where the bytes hold {n_records}; "
            "the file is rejected rather than read with records lost or merged",
            line=at,
            rule="record_count",
        )
    return CsvRead(
        frame=frame,
        path=path,
        encoding=enc.name,
        delimiter=delimiter,
        had_bom=enc.had_bom,
        original_columns=[h.strip() for h in frame_header],
        lines=pd.Series(np.asarray(lines, dtype=np.int64), index=frame.index, dtype="int64"),
        line_end=norm.line_end,
        n_records=n_records,
        blank_lines=[int(x) for x in starts[blank]],
        issues=norm.issues,
    )


def _nonempty(data: bytes, norm: Normalizer) -> np.ndarray:
    """Per record after the header: True when it has at least one byte other than CR (pyarrow reads it)."""
    starts, blank = norm.records()
    # a record is one line on the fast path: its length is the gap to the next record's start
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    pos = np.concatenate([[0], nl + 1])[starts - 1]  # byte offset of each record's line
    stop = np.concatenate([nl, [len(buf)]])[starts - 1]
    length = stop - pos
    cr_only = (length == 1) & (buf[np.minimum(pos, max(len(buf) - 1, 0))] == 13)
    return (length > 0) & ~cr_only


def _read_with_csv_module(
    text: str, delimiter: str, path: Path, scan_starts: np.ndarray
) -> tuple[pd.DataFrame, list[int], list[str]]:
    """The records of ``text`` read by the ``csv`` module (what the Arrow reader cannot parse): the frame
    (ragged rows padded or cut to the header, their lines in ``attrs["ragged_rows"]``), the physical line
    where each record starts, the header cells. No field-size limit below the text's size."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
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
    width = len(columns)
    fixed = [r[:width] + [""] * (width - len(r)) if len(r) != width else r for r in records]
    frame = pd.DataFrame(fixed, columns=columns, dtype=object)
    if len(frame):
        frame = frame.apply(lambda s: s.str.strip()).replace({"": None})
    frame.attrs["ragged_rows"] = [starts[i] for i, r in enumerate(records) if len(r) != width]
    return frame, starts, header


def _atomic_target(path: Path) -> tuple[int, str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` as an OSError that names ``path`` (``[Errno 28] No space left on device: '.../x.parquet'``).

    pyarrow and the text layer raise errors that name a temporary file, or no file at all; the error a
    user reads must name the file that could not be written. Same errno (so the same OSError subclass)."""
    if exc.filename == str(path):
        return exc
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno is None and "No space left" in reason:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return OSError(exc.errno, f"{reason} (writing failed)" if exc.errno is None else reason, str(path))


def _replace_or_discard(write, path: Path) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place; on any error
    the temporary file is removed and an OSError names ``path`` (a full disk leaves the old file, or none,
    never a truncated one)."""
    fd, tmp = _atomic_target(path)
    try:
        write(fd, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet_atomic(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` to Parquet atomically and deterministically (no index, zstd, no stats timestamps).

    Raises
    ------
    OSError
        Naming ``path`` (``[Errno 28] No space left on device: '.../findings.parquet'``); no temporary
        file is left behind and ``path`` is untouched.
    """

    def write(fd: int, tmp: str) -> None:
        os.close(fd)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)

    return _replace_or_discard(write, Path(path))


def write_text_atomic(text: str, path: Path | str) -> Path:
    """Write text atomically (UTF-8, ``\\n`` line ends); an OSError names ``path``, as
    :func:`write_parquet_atomic`'s."""

    def write(fd: int, tmp: str) -> None:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)

    return _replace_or_discard(write, Path(path))


def write_bytes_atomic(write, path: Path | str) -> Path:
    """``write(tmp_path)`` fills a temporary file beside ``path`` (a workbook, a figure), which is then
    renamed into place; an OSError names ``path``, as :func:`write_parquet_atomic`'s."""

    def _write(fd: int, tmp: str) -> None:
        os.close(fd)
        write(Path(tmp))

    return _replace_or_discard(_write, Path(path))


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
