"""Text, tables and live markup out of the files of a report folder, each with a location for the reader.

:func:`read_content` turns the bytes of one file into

* text :class:`Segment` s, scanned for identifiers: lines of text files (UTF-8 with or without BOM,
  UTF-16 and UTF-32 with a BOM or recognised by their NUL bytes, Latin-1 otherwise), HTML and SVG as
  written *and* as a browser shows them (tags removed, :func:`~cyberobs_lib.disclosure._html.visible_text`),
  XML (office documents, SVG) also with every tag removed (words split in runs of elements; listed
  identifiers only), Markdown with its emphasis removed, notebook sources, metadata and every output
  MIME type, PNG text chunks (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``), ``data:`` URIs of any type (read
  as a file of that type), everything of a workbook but its cells (properties, comments, sheet and
  defined names, headers and footers, hyperlink targets), Parquet metadata, PDF streams (inflated);
  files of any other type as the printable runs of their bytes (UTF-8, ASCII and UTF-16);
* :class:`~cyberobs_lib.disclosure._tables.Table` s: CSV/TSV, every sheet of a workbook, Parquet, every
  ``<table>`` of an HTML page or notebook output, Markdown pipe tables, JSON record lists and pandas JSON
  layouts (``records``, ``columns``, ``split``, ``table``);
* problems found while reading: live markup, spreadsheet formulas, unreadable parts.

Archives (zip and the formats built on it, gzip, bzip2, xz, tar) are opened whatever their name, by their
first bytes, and their members read the same way, within the limits of :class:`Budget` (a member or
archive beyond them is a problem, not a silent skip).
"""

from __future__ import annotations

import base64
import bz2
import csv
import gzip
import html
import io
import json
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.disclosure._detectors import CELL_BARRIER
from cyberobs_lib.disclosure._html import merged_header, parse_html, visible_text
from cyberobs_lib.disclosure._tables import Table
from cyberobs_lib.disclosure._xlsx_rows import cell_position, unsafe_cells, xlsx_rows
from cyberobs_lib.io import decode_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_SUFFIXES = {".md", ".txt", ".yaml", ".yml", ".log", ".tex", ".rst", ".py", ".toml", ".cfg", ".ini"}
TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm", ".parquet"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
#: Suffixes of files that must be archives (a workbook is a zip archive too).
ARCHIVE_SUFFIXES = {".xlsx", ".xlsm", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".docx", ".odt", ".ods"}
_DATA_URI_RE = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[\w-]+=[\w.\"-]+)*;base64,([A-Za-z0-9+/=\s]+)")
#: Suffix under which the content of a ``data:`` URI of a given type is read.
_DATA_SUFFIXES = {"text/csv": ".csv", "text/html": ".html", "application/json": ".json", "text/markdown": ".md",
                  "image/svg+xml": ".svg", "image/png": ".png", "application/xml": ".xml", "text/xml": ".xml",
                  "text/plain": ".txt", "application/pdf": ".pdf"}  # fmt: skip
_PRINTABLE_RE = re.compile(rb"[\x20-\x7e]{4,}")
_UTF16LE_RE = re.compile(rb"(?:[\x20-\x7e]\x00){4,}")
#: Runs of printable text holding a non-ASCII character, in bytes decoded as UTF-8 (replacement
#: characters and controls end a run; ASCII runs are found by _PRINTABLE_RE).
_TEXT_CHAR = "[^\x00-\x08\x0b-\x1f\x7f\ufffd]"
_UTF8_RUN_RE = re.compile(f"{_TEXT_CHAR}*[^\x00-\x7f\ufffd]{_TEXT_CHAR}*")
_UTF16BE_RE = re.compile(rb"(?:\x00[\x20-\x7e]){4,}")
#: Numeric geometry of SVG/HTML elements: never text a reader sees.
_GEOMETRY_RE = re.compile(r"\b(d|points|viewBox|transform|path)=\"[^\"]*\"")
#: Emphasis, code and escape marks between two characters: ``0140**53177**`` renders ``014053177``
#: (an underscore inside a word is a literal underscore in CommonMark).
_MARKDOWN_EMPHASIS_RE = re.compile(r"(?<=[0-9A-Za-z])[*~`\\]+(?=[0-9A-Za-z])")
_PDF_STREAM_RE = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)


@dataclass(frozen=True)
class Segment:
    """A piece of text and where it is; ``{line}`` in the location becomes the line of each hit.

    ``patterns=False`` looks only for the listed identifiers of the dataset (text joined from XML
    elements, where generic patterns would fire on numbers of adjacent elements).
    """

    location: str
    text: str
    patterns: bool = True


@dataclass
class Problem:
    """Something found while reading: ``(location, kind, value, rule)`` as the check reports it."""

    location: str
    kind: str
    value: str
    rule: str


@dataclass
class Content:
    """What one file holds for the check."""

    segments: list[Segment] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def extend(self, other: Content) -> None:
        self.segments.extend(other.segments)
        self.tables.extend(other.tables)
        self.problems.extend(other.problems)


@dataclass
class Budget:
    """Limits on what archives may unpack (against decompression bombs), shared by one file's members.

    ``bytes_left`` counts uncompressed bytes of every member read; ``depth`` is how many archives
    deep a member may sit; ``members_left`` counts members.
    """

    bytes_left: int = 512 << 20
    max_depth: int = 4
    members_left: int = 20_000


def decode_text(data: bytes) -> str:
    """Decode text as a viewer would: the package's decoding (:func:`cyberobs_lib.io.decode_bytes`: UTF-8
    with or without BOM, UTF-16 with BOM, else the legacy code page it detects), after two cases a
    viewer also reads: a UTF-32 BOM, and UTF-16 without a BOM.

    UTF-16 without a BOM is recognised by NUL bytes in every other position of the first 4 KiB
    (one side more than 40 % NUL, the other none).

    Examples
    --------
    >>> decode_text("Hôpital".encode("utf-16-be")), decode_text("Hôpital".encode("cp1252"))
    ('Hôpital', 'Hôpital')
    """
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, "replace")
    head = data[:4096]
    if len(head) >= 8 and not head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.4 * len(odd) and not even.count(0):
            return data.decode("utf-16-le", "replace")
        if even.count(0) > 0.4 * len(even) and not odd.count(0):
            return data.decode("utf-16-be", "replace")
    return decode_bytes(data)[0]


def read_text(path: Path) -> str:
    """The text of a file, decoded by :func:`decode_text`."""
    return decode_text(path.read_bytes())


def _lines(text: str, prefix: str = "", *, patterns: bool = True) -> Iterator[Segment]:
    """The whole text as one segment; the caller turns offsets into ``line N`` (``{line}``)."""
    if text.strip():
        yield Segment(f"{prefix}line {{line}}", text, patterns)


def binary_strings(data: bytes, location: str) -> Iterator[Segment]:
    """Printable runs of 4+ characters, as UTF-8 (accented names whole), ASCII and UTF-16 (little and
    big endian)."""
    runs = _UTF8_RUN_RE.findall(data.decode("utf-8", "replace"))
    runs += [run.decode("ascii") for run in _PRINTABLE_RE.findall(data)]
    runs += [run.decode("utf-16-le") for run in _UTF16LE_RE.findall(data)]
    runs += [run.decode("utf-16-be") for run in _UTF16BE_RE.findall(data)]
    if runs:
        yield Segment(location, "\n".join(runs))


def png_text_chunks(data: bytes) -> Iterator[tuple[str, str]]:
    """Text metadata of a PNG as ``(location, text)``: ``tEXt``, ``zTXt``, ``iTXt`` and raw ``eXIf``.

    Notes
    -----
    Chunk layout (PNG specification, W3C 2003, §5.3 and §11.3.4): 4-byte big-endian length, 4-byte
    type, data, 4-byte CRC. A truncated or corrupt file is read as far as it goes, then its printable
    bytes are scanned as a whole.
    """
    for segment in _png_segments(data):
        yield segment.location, segment.text


def _png_segments(data: bytes) -> Iterator[Segment]:
    if not data.startswith(PNG_SIGNATURE):
        yield from binary_strings(data, "bytes (not a valid PNG)")
        return
    pos = len(PNG_SIGNATURE)
    try:
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
            body = data[pos + 8 : pos + 8 + length]
            if len(body) < length:
                raise ValueError("truncated chunk")
            pos += 12 + length
            if ctype in (b"tEXt", b"zTXt", b"iTXt"):
                keyword, _, rest = body.partition(b"\0")
                name = keyword.decode("latin-1")
                if ctype == b"tEXt":
                    text = rest.decode("latin-1")
                elif ctype == b"zTXt":
                    text = zlib.decompress(rest[1:]).decode("latin-1")
                else:
                    compressed = rest[:1] == b"\1"
                    _lang, _, rest = rest[2:].partition(b"\0")
                    translated, _, raw = rest.partition(b"\0")
                    raw = zlib.decompress(raw) if compressed else raw
                    text = translated.decode("utf-8", "replace") + " " + raw.decode("utf-8", "replace")
                yield Segment(f"PNG {ctype.decode()} {name!r}", name + " " + text)
            elif ctype == b"eXIf":
                yield from binary_strings(body, "PNG eXIf")
            elif ctype == b"IEND":
                break
    except (ValueError, struct.error, zlib.error):
        yield from binary_strings(data, "bytes (corrupt PNG)")


def _drop_geometry(text: str) -> str:
    """Empty SVG geometry attributes (path data "M1.2.3.4.5" reads like an IP), keeping line breaks."""
    return _GEOMETRY_RE.sub(lambda m: f'{m.group(1)}=""' + "\n" * m.group(0).count("\n"), text)


def _embedded_images(text: str, prefix: str, file: str) -> tuple[str, Content]:
    """Take ``data:<type>;base64,`` URIs out of ``text`` (images, but also text, tables, archives a page
    may embed); read their content instead, as a file of that type."""
    found = Content()
    count = 0

    def decode(match: re.Match) -> str:
        nonlocal count
        kind, payload = match.group(1).lower(), match.group(2)
        placeholder = "[data]" + "\n" * payload.count("\n")  # keeps the line numbers that follow
        try:
            data = base64.b64decode(re.sub(r"\s+", "", payload), validate=False)
        except ValueError:
            return placeholder
        count += 1
        where = f"{prefix}embedded {'image' if kind.startswith('image/') else 'data'} {count}: "
        suffix = _DATA_SUFFIXES.get(kind, ".bin")
        found.extend(read_content(f"embedded{suffix}", data, file=file, prefix=where, budget=Budget()))
        return placeholder

    return _DATA_URI_RE.sub(decode, text), found


def _html_tables(markup: str, prefix: str, file: str, *, fragment: bool) -> Content:
    tables, live = parse_html(markup, fragment=fragment)
    content = Content()
    for i, table in enumerate(tables, start=1):
        rows = merged_header(table)
        parsed = Table.from_rows(file, f"{prefix}table {i} (line {table.line}) ", rows)
        if parsed is not None:
            content.tables.append(parsed)
    content.problems.extend(Problem(f"{prefix}line {m.line}", "live_markup", m.detail, m.rule) for m in live)
    return content


def _markup_content(text: str, prefix: str, file: str, *, page: bool) -> Content:
    """An HTML page (``page=True``) or a piece of HTML/SVG from data: text as written and as shown,
    tables, live markup and embedded images."""
    text, content = _embedded_images(text, prefix, file)
    text = _drop_geometry(text)
    content.segments.append(Segment(f"{prefix}line {{line}}", html.unescape(text)))
    content.segments.extend(_lines(visible_text(text), prefix))
    if not page:
        # XML (office documents, SVG) splits words into runs of elements (<w:t>0140</w:t><w:t>53177</w:t>):
        # joined without any tag, only the listed identifiers are looked for.
        joined = html.unescape(re.sub(r"<[^>]*>", lambda m: "\n" * m.group(0).count("\n"), text))
        content.segments.extend(_lines(joined, prefix, patterns=False))
    content.extend(_html_tables(text, prefix, file, fragment=not page))
    return content


def markdown_visible(text: str) -> str:
    """Markdown as rendered: inline HTML tags and emphasis markers between characters removed."""
    return _MARKDOWN_EMPHASIS_RE.sub("", visible_text(text))


def markdown_tables(text: str) -> Iterator[tuple[int, list[list[str]]]]:
    """Pipe tables of a Markdown text: ``(first line, rows)`` with the delimiter row dropped."""
    lines = text.split("\n")
    i = 0
    while i < len(lines) - 1:
        head, rule = lines[i].strip(), lines[i + 1].strip()
        if "|" in head and re.fullmatch(r"\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?", rule):
            rows, start = [_pipe_cells(head)], i + 1
            i += 2
            while i < len(lines) and "|" in lines[i]:
                rows.append(_pipe_cells(lines[i].strip()))
                i += 1
            yield start, rows
        else:
            i += 1


def _pipe_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [" ".join(markdown_visible(c).replace(CELL_BARRIER, " ").split()) for c in cells]


def _markdown_content(text: str, prefix: str, file: str) -> Content:
    text, content = _embedded_images(text, prefix, file)
    content.segments.append(Segment(f"{prefix}line {{line}}", html.unescape(text)))
    content.segments.extend(_lines(markdown_visible(text), prefix))
    for i, (line, rows) in enumerate(markdown_tables(text), start=1):
        table = Table.from_rows(file, f"{prefix}Markdown table {i} (line {line}) ", rows)
        if table is not None:
            content.tables.append(table)
    _, live = parse_html(text, fragment=True)
    content.problems.extend(Problem(f"{prefix}line {m.line}", "live_markup", m.detail, m.rule) for m in live)
    return content


# -- JSON ----------------------------------------------------------------------------------------------
def _scalar(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def json_tables(value, path: str = "$") -> Iterator[tuple[str, list[list[str]]]]:
    """Tables in a JSON document: ``(JSON path, rows)``.

    Found anywhere in the tree: a list of objects with scalar values (``records``, the ``data`` of
    ``table``), ``{"columns": [...], "data": [[...]]}`` (``split``), and an object of objects sharing
    their keys (``columns``: ``{"col": {"0": v}}``).
    """
    if isinstance(value, list):
        records = [v for v in value if isinstance(v, dict)]
        if (
            records
            and len(records) == len(value)
            and all(all(_scalar(x) for x in r.values()) for r in records)
        ):
            header = list(dict.fromkeys(k for r in records for k in r))
            yield path, [header, *[[_cell(r.get(k)) for k in header] for r in records]]
            return
        for i, item in enumerate(value):
            yield from json_tables(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        columns, data = value.get("columns"), value.get("data")
        if isinstance(columns, list) and isinstance(data, list) and all(isinstance(r, list) for r in data):
            yield path, [[_cell(c) for c in columns], *[[_cell(x) for x in r] for r in data]]
            return
        inner = list(value.values())
        if inner and all(isinstance(v, dict) and v and all(_scalar(x) for x in v.values()) for v in inner):
            index = list(dict.fromkeys(k for v in inner for k in v))
            if all(set(v) <= set(index) for v in inner) and len(inner) > 1:
                header = list(value)
                yield path, [header, *[[_cell(value[c].get(i)) for c in header] for i in index]]
                return
        for key, item in value.items():
            yield from json_tables(item, f"{path}.{key}")


def _json_content(text: str, prefix: str, file: str) -> Content:
    content = Content()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        content.segments.extend(_lines(text, prefix))
        return content
    if "\\u" in text:  # "\u00e9"-escaped names read as written (line numbers then follow the re-dump)
        text = json.dumps(document, ensure_ascii=False, indent=1)
    content.segments.extend(_lines(text, prefix))
    for where, rows in json_tables(document):
        table = Table.from_rows(file, f"{prefix}JSON {where} ", rows)
        if table is not None:
            content.tables.append(table)
    return content


# -- notebooks -----------------------------------------------------------------------------------------
def _joined(content) -> str:
    return "".join(content) if isinstance(content, list) else str(content)


def _notebook(text: str, prefix: str, file: str) -> Content:
    content = Content()
    try:
        nb = json.loads(text)
    except json.JSONDecodeError:
        content.segments.extend(_lines(text, prefix))
        return content
    content.segments.append(
        Segment(f"{prefix}notebook metadata", json.dumps(nb.get("metadata", {}), ensure_ascii=False))
    )
    for i, cell in enumerate(nb.get("cells", []), start=1):
        where = f"{prefix}cell {i} "
        source = _joined(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            content.extend(_markdown_content(source, f"{where}source ", file))
        else:
            text_, images = _embedded_images(source, f"{where}source ", file)
            content.extend(images)
            content.segments.extend(_lines(text_, f"{where}source "))
        content.segments.append(
            Segment(f"{where}metadata", json.dumps(cell.get("metadata", {}), ensure_ascii=False))
        )
        for j, output in enumerate(cell.get("outputs", []), start=1):
            content.extend(_notebook_output(output, f"{where}output {j} ", file))
        for name, payload in (cell.get("attachments") or {}).items():
            for mime, data in payload.items():
                content.extend(_mime_content(mime, data, f"{where}attachment {name} ", file))
    return content


def _notebook_output(output: dict, prefix: str, file: str) -> Content:
    content = Content()
    pieces = {
        "text": output.get("text"),
        "ename": output.get("ename"),
        "evalue": output.get("evalue"),
        "traceback": output.get("traceback"),
    }
    pieces.update(output.get("data", {}))
    for mime, data in pieces.items():
        if data is not None:
            content.extend(_mime_content(mime, data, prefix, file))
    if output.get("metadata"):
        content.segments.append(
            Segment(f"{prefix}metadata", json.dumps(output["metadata"], ensure_ascii=False))
        )
    return content


def _mime_content(mime: str, data, prefix: str, file: str) -> Content:
    content = Content()
    if mime.startswith("image/") and mime != "image/svg+xml":
        try:
            raw = base64.b64decode(re.sub(r"\s+", "", _joined(data)))
        except ValueError:
            return content
        found = _png_segments(raw) if mime == "image/png" else binary_strings(raw, "bytes")
        content.segments.extend(Segment(prefix + s.location, s.text) for s in found)
        return content
    if not isinstance(data, str | list):
        text = json.dumps(data, ensure_ascii=False)
        content.segments.extend(_lines(text, f"{prefix}{mime} "))
        for where, rows in json_tables(data):
            table = Table.from_rows(file, f"{prefix}{mime} JSON {where} ", rows)
            if table is not None:
                content.tables.append(table)
        return content
    text = _joined(data)
    where = f"{prefix}{mime} "
    if mime in ("text/html", "image/svg+xml"):
        content.extend(_markup_content(text, where, file, page=False))
    elif mime == "text/markdown":
        content.extend(_markdown_content(text, where, file))
    elif mime in ("application/javascript", "text/javascript"):
        content.problems.append(
            Problem(f"{where}line 1", "live_markup", "JavaScript output", "script_output")
        )
        content.segments.extend(_lines(text, where))
    else:
        content.segments.extend(_lines(text, where))
    return content


# -- tables --------------------------------------------------------------------------------------------
def _csv_rows(text: str) -> list[list[str]]:
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def table_rows(path: Path) -> Iterator[tuple[str, list[list[str]]]]:
    """``(sheet name, rows of strings)`` of a CSV/TSV, xlsx (through openpyxl) or Parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield "", _csv_rows(read_text(path))
    elif suffix in (".xlsx", ".xlsm"):
        import openpyxl  # imported here: only report folders with spreadsheets need it

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for sheet in book.worksheets:
                rows = [
                    ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
                ]
                yield sheet.title, rows
        finally:
            book.close()
    elif suffix == ".parquet":
        yield "", _parquet_rows(path.read_bytes())


def _parquet_rows(data: bytes) -> list[list[str]]:
    frame = pd.read_parquet(io.BytesIO(data)).astype("string").fillna("")
    return [list(map(str, frame.columns)), *frame.to_numpy().tolist()]


def _xlsx_extras(data: bytes, prefix: str) -> Iterator[Segment]:
    """Everything of an xlsx but its cell values: document properties, comments, drawings, sheet names,
    defined names, and in each worksheet its headers and footers, hyperlinks and validations (the
    sheet's XML without ``<sheetData>``), relationship targets (``.rels``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.namelist():
            if not member.endswith((".xml", ".rels")) or member.startswith("xl/sharedStrings"):
                continue
            xml = archive.read(member).decode("utf-8", "replace")
            if member.startswith("xl/worksheets/") and member.endswith(".xml"):
                xml = _SHEET_DATA_RE.sub(lambda m: "\n" * m.group(0).count("\n"), xml)
            yield from _lines(html.unescape(re.sub(r">\s*<", ">\n<", xml)), f"{prefix}{member} ")


_SHEET_DATA_RE = re.compile(r"<(?:\w+:)?sheetData\b.*?</(?:\w+:)?sheetData>|<(?:\w+:)?sheetData\s*/>", re.S)


def _xlsx_content(data: bytes, prefix: str, file: str) -> Content:
    content = Content(segments=list(_xlsx_extras(data, prefix)))
    unsafe: dict[str, list[tuple[str, str, str]]] = {}
    for sheet, ref, rule, text in unsafe_cells(data):
        unsafe.setdefault(sheet, []).append((ref, rule, text))
    for sheet, rows in xlsx_rows(data):
        where = f"{prefix}sheet {sheet!r} "
        for ref, rule, text in unsafe.get(sheet, []):
            row, column = cell_position(ref) if ref != "?" else (0, 0)
            heading = rows[0][column - 1] if rows and 0 < column <= len(rows[0]) else f"#{column}"
            content.problems.append(
                Problem(f"{where}line {row}, column {heading}", "formula", text[:2] + "…", rule)
            )
        table = Table.from_rows(file, where, rows)
        if table is not None:
            content.tables.append(table)
    return content


def _parquet_content(data: bytes, prefix: str, file: str) -> Content:
    import pyarrow.parquet as pq

    content = Content()
    metadata = pq.ParquetFile(io.BytesIO(data)).schema_arrow.metadata or {}
    text = "\n".join(v.decode("utf-8", "replace") for v in metadata.values())
    content.segments.extend(_lines(text, f"{prefix}Parquet metadata "))
    table = Table.from_rows(file, prefix, _parquet_rows(data))
    if table is not None:
        content.tables.append(table)
    return content


# -- archives ------------------------------------------------------------------------------------------
def _archive_kind(data: bytes) -> str | None:
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "zip"
    if data.startswith(b"\x1f\x8b"):
        return "gzip"
    if data.startswith(b"BZh"):
        return "bzip2"
    if data.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "tar"
    return None


def _limited(stream, limit: int) -> bytes:
    return stream.read(limit + 1)


def _members(data: bytes, kind: str, name: str, budget: Budget) -> Iterator[tuple[str, bytes | None, str]]:
    """``(member name, bytes or None, problem)`` of an archive; bytes is None when a limit stopped it."""
    stem = re.sub(r"\.(gz|tgz|bz2|tbz2?|xz|txz)$", "", name, flags=re.I)
    if name.lower().endswith((".tgz", ".tbz", ".tbz2", ".txz")):
        stem += ".tar"
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if info.file_size > budget.bytes_left:
                    yield info.filename, None, f"archive_limit: {info.file_size} bytes unpacked"
                    continue
                with archive.open(info) as stream:
                    yield info.filename, _limited(stream, budget.bytes_left), ""
    elif kind == "tar":
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive:
                if not member.isfile():
                    continue
                if member.size > budget.bytes_left:
                    yield member.name, None, f"archive_limit: {member.size} bytes unpacked"
                    continue
                yield member.name, _limited(archive.extractfile(member), budget.bytes_left), ""
    else:
        opener = {"gzip": gzip.GzipFile, "bzip2": bz2.BZ2File, "xz": lzma.LZMAFile}[kind]
        with opener(fileobj=io.BytesIO(data)) as stream:
            yield stem, _limited(stream, budget.bytes_left), ""


def _archive_content(
    data: bytes, kind: str, name: str, prefix: str, file: str, budget: Budget, depth: int
) -> Content:
    content = Content()
    if depth >= budget.max_depth:
        content.problems.append(
            Problem(f"{prefix}whole archive", "unreadable", "", "archive_limit: nested too deep")
        )
        return content
    for member, payload, problem in _members(data, kind, name, budget):
        where = f"{prefix}member {member}: "
        budget.members_left -= 1
        if budget.members_left < 0:
            content.problems.append(
                Problem(f"{prefix}whole archive", "unreadable", "", "archive_limit: too many members")
            )
            break
        if payload is None or len(payload) > budget.bytes_left:
            content.problems.append(
                Problem(
                    where.rstrip(": "), "unreadable", "", problem or "archive_limit: too many bytes unpacked"
                )
            )
            continue
        budget.bytes_left -= len(payload)
        content.segments.append(Segment(f"{where}name", member))
        try:
            content.extend(
                read_content(member, payload, file=file, prefix=where, budget=budget, depth=depth + 1)
            )
        except Exception as error:  # noqa: BLE001 -- a member that cannot be parsed is not verified
            content.problems.append(Problem(where.rstrip(": "), "unreadable", "", type(error).__name__))
    return content


# -- dispatch ------------------------------------------------------------------------------------------
def read_content(
    name: str, data: bytes, *, file: str, prefix: str = "", budget: Budget | None = None, depth: int = 0
) -> Content:
    """Everything the check reads in one file (or archive member) named ``name`` holding ``data``.

    ``file`` is the report file the content belongs to (the archive for a member); ``prefix`` starts
    every location. Archives are recognised by their first bytes, then the name's suffix decides.
    """
    budget = budget or Budget()
    suffix = Path(name).suffix.lower()
    archive = _archive_kind(data)
    if archive == "zip" and suffix in (".xlsx", ".xlsm"):
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            unpacked = sum(info.file_size for info in book.infolist())
        if unpacked > budget.bytes_left:
            return Content(
                problems=[
                    Problem("whole file", "unreadable", "", f"archive_limit: {unpacked} bytes unpacked")
                ]
            )
        return _xlsx_content(data, prefix, file)
    if archive is None and suffix in ARCHIVE_SUFFIXES:
        raise ValueError(f"{name}: not a {suffix[1:]} file (its first bytes say otherwise)")
    if archive is not None:
        return _archive_content(data, archive, name, prefix, file, budget, depth)
    if suffix in (".csv", ".tsv"):
        table = Table.from_rows(file, prefix, _csv_rows(decode_text(data)), spreadsheet=True)
        return Content(tables=[table] if table is not None else [])
    if suffix == ".parquet":
        return _parquet_content(data, prefix, file)
    if suffix == ".ipynb":
        return _notebook(decode_text(data), prefix, file)
    if suffix == ".json":
        return _json_content(decode_text(data), prefix, file)
    if suffix in HTML_SUFFIXES:
        return _markup_content(decode_text(data), prefix, file, page=True)
    if suffix in (".svg", ".xml"):
        return _markup_content(decode_text(data), prefix, file, page=False)
    if suffix in MARKDOWN_SUFFIXES:
        return _markdown_content(decode_text(data), prefix, file)
    if suffix in TEXT_SUFFIXES:
        return Content(segments=list(_lines(decode_text(data), prefix)))
    if data.startswith(PNG_SIGNATURE) or suffix == ".png":
        return Content(
            segments=[Segment(prefix + s.location, s.text, s.patterns) for s in _png_segments(data)]
        )
    if data.startswith(b"%PDF"):
        return _pdf_content(data, prefix)
    return Content(segments=list(binary_strings(data, f"{prefix}bytes")))


def _pdf_content(data: bytes, prefix: str) -> Content:
    """The text of a PDF as a reader sees it (pypdf's extraction, page by page: the text of a page set in
    subset fonts is glyph ids, not characters, in the raw streams), plus the printable bytes of the file
    and of its Flate-compressed streams (figure text, metadata)."""
    content = Content(segments=list(_pdf_pages(data, prefix)))
    content.segments.extend(binary_strings(data, f"{prefix}bytes"))
    for i, match in enumerate(_PDF_STREAM_RE.finditer(data), start=1):
        if _pdf_image_stream(data, match.start()):
            continue  # pixels, not text: runs of digits in them are no identifier (the PNGs are read apart)
        try:
            raw = zlib.decompressobj().decompress(match.group(1), 64 << 20)
        except zlib.error:
            continue
        content.segments.extend(binary_strings(raw, f"{prefix}stream {i}"))
    return content


def _pdf_image_stream(data: bytes, start: int) -> bool:
    """Whether the stream starting at ``start`` belongs to an image XObject (its dictionary, between the
    object's ``obj`` keyword and ``stream``, says ``/Subtype /Image``)."""
    head = data[max(0, start - 4096) : start]
    head = head[head.rfind(b" obj") :] if b" obj" in head else head
    return re.search(rb"/Subtype\s*/Image\b", head) is not None


def _pdf_pages(data: bytes, prefix: str) -> Iterator[Segment]:
    """One segment per page of extracted text; a PDF pypdf cannot read is left to the byte scan (and said
    in a segment, so that the report shows it was not read as text)."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        for number, page in enumerate(reader.pages, start=1):
            for line in (page.extract_text() or "").splitlines():
                yield Segment(f"{prefix}page {number}", line)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on damaged files
        yield Segment(f"{prefix}pdf", f"[text not extracted: {type(exc).__name__}]")


def file_segments(path: Path) -> Iterator[tuple[str, str]]:
    """``(location, text)`` pieces of one file outside its table cells (kept for callers of version 1)."""
    for segment in read_content(path.name, path.read_bytes(), file=path.name).segments:
        yield segment.location, segment.text
