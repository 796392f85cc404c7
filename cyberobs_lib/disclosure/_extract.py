"""Text and tables out of the files of a report folder, each piece with a location for the reader.

Every file yields ``(location, text)`` segments: lines of text files, cells of tables (CSV, xlsx,
Parquet), cell sources and outputs of notebooks, PNG text chunks (``tEXt``, ``zTXt``, ``iTXt``,
``eXIf``), embedded ``data:`` images of HTML and notebook outputs; files of any other type are read as
the printable runs of their bytes, so that nothing is skipped unseen. Tables also come out whole,
for the small-cell check.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

#: ``(location, text)``; a ``{line}`` in the location is replaced by the line number of each hit.
Segment = tuple[str, str]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_SUFFIXES = {".md", ".txt", ".yaml", ".yml", ".log", ".tex", ".rst", ".py", ".toml", ".cfg", ".ini"}
_DATA_URI_RE = re.compile(r"data:image/(png|svg\+xml|jpeg|gif);base64,([A-Za-z0-9+/=\s]+)")
_PRINTABLE_RE = re.compile(rb"[\x20-\x7e]{4,}")
#: Numeric geometry of SVG/HTML elements: never text a reader sees.
_GEOMETRY_RE = re.compile(r"\b(d|points|viewBox|transform|path)=\"[^\"]*\"")


def read_text(path: Path) -> str:
    """Decode a file as UTF-8 (BOM accepted), falling back to Latin-1, which never fails."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lines(text: str, prefix: str = "") -> Iterator[Segment]:
    """The whole text as one segment; the caller turns offsets into ``line N`` (``{line}``)."""
    if text.strip():
        yield f"{prefix}line {{line}}", text


def _binary_strings(data: bytes, location: str) -> Iterator[Segment]:
    text = "\n".join(run.decode("ascii") for run in _PRINTABLE_RE.findall(data))
    if text:
        yield location, text


def png_text_chunks(data: bytes) -> Iterator[Segment]:
    """Text metadata of a PNG: ``tEXt``, ``zTXt``, ``iTXt`` (keyword and text) and raw ``eXIf``.

    Notes
    -----
    Chunk layout (PNG specification, W3C 2003, §5.3 and §11.3.4): 4-byte big-endian length, 4-byte
    type, data, 4-byte CRC. A truncated or corrupt file is read as far as it goes, then its printable
    bytes are scanned as a whole.
    """
    if not data.startswith(PNG_SIGNATURE):
        yield from _binary_strings(data, "bytes (not a valid PNG)")
        return
    pos = len(PNG_SIGNATURE)
    try:
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
            body = data[pos + 8 : pos + 8 + length]
            if len(body) < length:
                raise ValueError("truncated chunk")
            pos += 12 + length
            if ctype == b"tEXt":
                keyword, _, text = body.partition(b"\0")
                yield (
                    f"PNG tEXt {keyword.decode('latin-1')!r}",
                    keyword.decode("latin-1") + " " + text.decode("latin-1"),
                )
            elif ctype == b"zTXt":
                keyword, _, rest = body.partition(b"\0")
                text = zlib.decompress(rest[1:]).decode("latin-1")
                yield f"PNG zTXt {keyword.decode('latin-1')!r}", keyword.decode("latin-1") + " " + text
            elif ctype == b"iTXt":
                keyword, _, rest = body.partition(b"\0")
                compressed = rest[:1] == b"\1"
                _lang, _, rest = rest[2:].partition(b"\0")
                translated, _, text = rest.partition(b"\0")
                raw = zlib.decompress(text) if compressed else text
                yield (
                    f"PNG iTXt {keyword.decode('latin-1')!r}",
                    " ".join(
                        (
                            keyword.decode("latin-1"),
                            translated.decode("utf-8", "replace"),
                            raw.decode("utf-8", "replace"),
                        )
                    ),
                )
            elif ctype == b"eXIf":
                yield from _binary_strings(body, "PNG eXIf")
            elif ctype == b"IEND":
                break
    except (ValueError, struct.error, zlib.error):
        yield from _binary_strings(data, "bytes (corrupt PNG)")


def _embedded_images(text: str, prefix: str) -> tuple[str, list[Segment]]:
    """Take ``data:image/...;base64,`` URIs out of ``text``; scan their metadata instead."""
    segments: list[Segment] = []

    def decode(match: re.Match) -> str:
        kind, payload = match.group(1), match.group(2)
        placeholder = "[image]" + "\n" * payload.count("\n")  # keeps the line numbers that follow
        try:
            data = base64.b64decode(re.sub(r"\s+", "", payload), validate=False)
        except ValueError:
            return placeholder
        where = f"{prefix}embedded image {len(segments) + 1}: "
        if kind == "png":
            segments.extend((where + loc, txt) for loc, txt in png_text_chunks(data))
        elif kind == "svg+xml":
            segments.extend(
                (where + loc, html.unescape(txt))
                for loc, txt in _lines(_drop_geometry(data.decode("utf-8", "replace")))
            )
        else:
            segments.extend((where + loc, txt) for loc, txt in _binary_strings(data, "bytes"))
        return placeholder

    return _DATA_URI_RE.sub(decode, text), segments


def _drop_geometry(text: str) -> str:
    """Empty SVG geometry attributes (path data "M1.2.3.4.5" reads like an IP), keeping line breaks."""
    return _GEOMETRY_RE.sub(lambda m: f'{m.group(1)}=""' + "\n" * m.group(0).count("\n"), text)


def _text_with_images(text: str, prefix: str = "") -> Iterator[Segment]:
    text, images = _embedded_images(text, prefix)
    yield from _lines(html.unescape(_drop_geometry(text)), prefix)
    yield from images


def _notebook(path: Path) -> Iterator[Segment]:
    try:
        nb = json.loads(read_text(path))
    except json.JSONDecodeError:
        yield from _lines(read_text(path))
        return
    yield "notebook metadata", json.dumps(nb.get("metadata", {}), ensure_ascii=False)
    for i, cell in enumerate(nb.get("cells", []), start=1):
        source = cell.get("source", "")
        yield from _text_with_images(
            "".join(source) if isinstance(source, list) else str(source), f"cell {i} source "
        )
        yield f"cell {i} metadata", json.dumps(cell.get("metadata", {}), ensure_ascii=False)
        for j, output in enumerate(cell.get("outputs", []), start=1):
            where = f"cell {i} output {j} "
            pieces = {
                "text": output.get("text"),
                "ename": output.get("ename"),
                "evalue": output.get("evalue"),
                "traceback": output.get("traceback"),
            }
            pieces.update(output.get("data", {}))
            for mime, content in pieces.items():
                if content is None:
                    continue
                text = "".join(content) if isinstance(content, list) else content
                if mime == "image/png":
                    try:
                        data = base64.b64decode(re.sub(r"\s+", "", str(text)))
                    except ValueError:
                        continue
                    yield from ((where + loc, txt) for loc, txt in png_text_chunks(data))
                elif mime.startswith("image/") and mime != "image/svg+xml":
                    continue
                else:
                    if not isinstance(text, str):
                        text = json.dumps(text, ensure_ascii=False)
                    yield from _text_with_images(text, f"{where}{mime} ")
        for name, payload in (cell.get("attachments") or {}).items():
            if "image/png" in payload:
                data = base64.b64decode(payload["image/png"])
                yield from ((f"cell {i} attachment {name} {loc}", txt) for loc, txt in png_text_chunks(data))


def _json(path: Path) -> Iterator[Segment]:
    text = read_text(path)
    if "\\u" in text:
        try:
            # Re-dump so that "\u00e9"-escaped names read as written (line numbers then follow the re-dump).
            text = json.dumps(json.loads(text), ensure_ascii=False, indent=1)
        except json.JSONDecodeError:
            pass
    yield from _lines(text)


def _csv_rows(path: Path) -> list[list[str]]:
    text = read_text(path)
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def table_rows(path: Path) -> Iterator[tuple[str, list[list[str]]]]:
    """``(sheet name, rows of strings)`` of a CSV/TSV, xlsx or Parquet file; first row is the header."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield "", _csv_rows(path)
    elif suffix == ".xlsx":
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
        frame = pd.read_parquet(path).astype("string").fillna("")
        yield "", [list(map(str, frame.columns)), *frame.to_numpy().tolist()]


def _xlsx_extras(path: Path) -> Iterator[Segment]:
    """Document properties, comments and drawings of an xlsx (everything but the cell values)."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".xml") and not member.startswith(("xl/worksheets/", "xl/sharedStrings")):
                xml = archive.read(member).decode("utf-8", "replace")
                yield from (
                    (f"{member} {loc}", html.unescape(txt))
                    for loc, txt in _lines(re.sub(r">\s*<", ">\n<", xml))
                )


def file_segments(path: Path) -> Iterator[Segment]:
    """All ``(location, text)`` pieces of one file of a report folder (see module docstring).

    For tables (CSV, TSV, xlsx, Parquet) only what lies outside the cells is yielded (xlsx document
    properties, comments); their cells come from :func:`table_rows`.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".xlsx", ".parquet"):
        # Cell values come from table_rows (scanned row by row by the caller); here only the rest.
        if suffix == ".xlsx":
            yield from _xlsx_extras(path)
    elif suffix == ".ipynb":
        yield from _notebook(path)
    elif suffix == ".json":
        yield from _json(path)
    elif suffix in (".html", ".htm", ".svg", ".xml"):
        yield from _text_with_images(read_text(path))
    elif suffix in TEXT_SUFFIXES:
        yield from _lines(read_text(path))
    elif suffix == ".png":
        yield from png_text_chunks(path.read_bytes())
    else:
        yield from _binary_strings(path.read_bytes(), "bytes")
