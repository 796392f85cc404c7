"""Cell values of an xlsx workbook as rows of strings: what ``openpyxl`` read-only gives, 3-4x sooner.

``openpyxl`` builds a Python object per XML element and per cell; on a workbook of 10^6 cells that is
most of the disclosure check. Here openpyxl still opens the workbook (sheet list, titles, shared
strings, sizes, date styles) but the cells of each sheet are read with one regular expression over its
XML, then laid out exactly as ``sheet.iter_rows(values_only=True)`` lays them out (missing rows and
cells as empty strings, rows cut or padded to the sheet's dimension).

Anything this reader does not reproduce exactly -- date-styled numbers, ISO dates (``t="d"``), rich text
runs, phonetic runs, namespace prefixes, single-quoted attributes, cells or rows without a reference --
sends the sheet to openpyxl itself: the result is the same either way, only the time differs.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from cyberobs_lib.disclosure._tables import FORMULA_TRIGGERS, runs_as_formula

#: One cell as openpyxl and Excel write it: reference, style, type, then an optional formula and the value
#: (``<v>``) or inline string (``<is><t>``). A cell written any other way is not matched, which the
#: count of ``<c`` tags reveals.
_CELL_RE = re.compile(
    r'<c r="([A-Z]{1,3})(\d+)"(?: s="(\d+)")?(?: t="(\w+)")?(?:\s*/>|>(?:<f\b[^>]*/>|<f\b[^>]*>[^<]*</f>)?'
    r"(?:<v>([^<]*)</v>|<v\s*/>|<is><t(?:\s[^>]*)?>([^<]*)</t></is>|<is><t(?:\s[^>]*)?/></is>)?</c>)"
)
_CELL_TAG_RE = re.compile(r"<c[\s/>]")
_ROW_TAG_RE = re.compile(r"<row\b([^>]*)>")
_ROW_NUMBER_RE = re.compile(r'\sr="(\d+)"')


class _Unsupported(Exception):
    """The sheet uses something this reader does not reproduce: read it with openpyxl."""


def _text(raw: str) -> str:
    """XML character data as the parser returns it: line ends normalised, then entities resolved."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return html.unescape(raw) if "&" in raw else raw


def _column(letters: str, cache: dict[str, int]) -> int:
    number = cache.get(letters)
    if number is None:
        number = 0
        for letter in letters:
            number = number * 26 + ord(letter) - 64
        cache[letters] = number
    return number


def _value(
    kind: str, style: str, raw: str | None, inline: str | None, shared: list, date_styles: set
) -> str | None:
    """The value openpyxl gives a cell (``data_only``), as ``str(value)``; None for an empty cell."""
    if kind == "inlineStr":
        return None if inline is None else _text(inline)
    if not raw:  # no <v>, or "<v></v>": None for openpyxl too
        return None
    if kind == "n":
        if style and int(style) in date_styles:
            raise _Unsupported("date style")
        raw = _text(raw)
        return str(float(raw) if ("." in raw or "E" in raw or "e" in raw) else int(raw))
    if kind == "s":
        return str(shared[int(raw)])
    if kind == "b":
        return str(bool(int(raw)))
    if kind in ("str", "e"):  # formula result, error code
        return _text(raw)
    raise _Unsupported(kind)  # "d" (ISO date) and anything unknown


def _parse_rows(xml: str, shared: list, date_styles: set) -> list[tuple[int, list[tuple[int, str | None]]]]:
    """``(row number, [(column, value), ...])`` per ``<row>`` element, as openpyxl's parser yields them."""
    start = xml.find("<sheetData")
    if start < 0:
        return []
    numbers = []
    for attrs in _ROW_TAG_RE.findall(xml, start):
        found = _ROW_NUMBER_RE.search(" " + attrs)
        if found is None:
            raise _Unsupported("row without a number")
        numbers.append(int(found.group(1)))
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        raise _Unsupported("rows out of order")
    cells: dict[int, list[tuple[int, str | None]]] = {}
    columns: dict[str, int] = {}
    matched = 0
    for letters, row, style, kind, raw, inline in _CELL_RE.findall(xml, start):
        matched += 1
        cells.setdefault(int(row), []).append(
            (
                _column(letters, columns),
                _value(kind or "n", style, raw if raw else None, inline, shared, date_styles),
            )
        )
    # Every cell matched, each inside a row element of its number (openpyxl places a cell by its row).
    if matched != len(_CELL_TAG_RE.findall(xml, start)) or not set(cells) <= set(numbers):
        raise _Unsupported("cells written otherwise")
    return [(number, cells.get(number, [])) for number in numbers]


def _layout(parsed, max_col: int | None, max_row: int | None) -> Iterator[list[str]]:
    """The rows of ``ReadOnlyWorksheet.iter_rows(values_only=True)`` (min row and column 1), as strings."""
    empty = [""] * max_col if max_col is not None else []
    counter, idx = 1, 1
    for idx, cells in parsed:
        if max_row is not None and idx > max_row:
            break
        for _ in range(counter, idx):  # missing rows
            counter += 1
            yield list(empty)
        if counter <= idx:
            if not cells and not max_col:
                yield []
            else:
                width = max_col or cells[-1][0]
                out = [""] * width
                for column, value in cells:
                    if 1 <= column <= width and value is not None:
                        out[column - 1] = value
                yield out
            counter += 1
    if max_row is not None and max_row < idx:
        for _ in range(counter, max_row + 1):
            yield list(empty)


def _sheet_rows(archive: zipfile.ZipFile, sheet, shared: list, date_styles: set) -> list[list[str]]:
    xml = archive.read(sheet._worksheet_path).decode("utf-8")
    parsed = _parse_rows(xml, shared, date_styles)
    if sheet._current_row == 0:  # as iter_rows() of an empty sheet
        return []
    return list(_layout(parsed, sheet.max_column, sheet.max_row))


def _opened(source: Path | bytes):
    """A path, or a fresh in-memory file over the bytes (openpyxl and zipfile each get their own)."""
    return io.BytesIO(source) if isinstance(source, bytes) else source


def xlsx_rows(source: Path | bytes) -> Iterator[tuple[str, list[list[str]]]]:
    """``(sheet title, rows of strings)`` per worksheet, as ``table_rows`` gives them through openpyxl."""
    import openpyxl  # imported here: only report folders with spreadsheets need it

    book = openpyxl.load_workbook(_opened(source), read_only=True, data_only=True)
    try:
        shared = list(book.shared_strings)
        date_styles = set(book._date_formats) | set(book._timedelta_formats)
        with zipfile.ZipFile(_opened(source)) as archive:
            for sheet in book.worksheets:
                try:
                    rows = _sheet_rows(archive, sheet, shared, date_styles)
                except (_Unsupported, ValueError, IndexError, KeyError, UnicodeDecodeError):
                    rows = [
                        ["" if v is None else str(v) for v in row]
                        for row in sheet.iter_rows(values_only=True)
                    ]
                yield sheet.title, rows
    finally:
        book.close()


_LOOSE_CELL_RE = re.compile(r"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_ATTR_RE = re.compile(r"\b([rst])=[\"']([^\"']*)[\"']")
_FORMULA_RE = re.compile(r"<(?:\w+:)?f\b")
_VALUE_RE = re.compile(r"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_INLINE_RE = re.compile(r"<(?:\w+:)?t\b[^>]*>([^<]*)</(?:\w+:)?t>")
_CELL_XFS_RE = re.compile(r"<(?:\w+:)?cellXfs\b[^>]*>(.*?)</(?:\w+:)?cellXfs>", re.S)
_XF_RE = re.compile(r"<(?:\w+:)?xf\b([^>]*?)(?:/>|>.*?</(?:\w+:)?xf>)", re.S)
_REF_RE = re.compile(r"([A-Z]{1,3})(\d+)")


def quote_prefix_styles(archive: zipfile.ZipFile) -> set[int]:
    """Indices of the cell formats (``cellXfs``) with ``quotePrefix``: their text is never a formula."""
    try:
        styles = archive.read("xl/styles.xml").decode("utf-8", "replace")
    except KeyError:
        return set()
    block = _CELL_XFS_RE.search(styles)
    if block is None:
        return set()
    return {
        i
        for i, match in enumerate(_XF_RE.finditer(block.group(1)))
        if re.search(r"quotePrefix=[\"'](1|true)[\"']", match.group(1))
    }


def cell_position(ref: str) -> tuple[int, int]:
    """``"B7"`` → ``(7, 2)`` (row and column, 1-based)."""
    letters, row = _REF_RE.fullmatch(ref).groups()
    column = 0
    for letter in letters:
        column = column * 26 + ord(letter) - 64
    return int(row), column


def unsafe_cells(source: Path | bytes) -> Iterator[tuple[str, str, str, str]]:
    """Cells a spreadsheet would run: ``(sheet title, cell reference, rule, text)``.

    Rules: ``formula_cell`` (the cell is stored as a formula, whatever its cached value) and
    ``formula_text`` (a text cell that starts like a formula, see
    :func:`~cyberobs_lib.disclosure._tables.runs_as_formula`, without the ``quotePrefix`` style that
    makes spreadsheets show it as text). Reads the sheet XML directly (any attribute order, namespace
    prefixes), so it does not depend on how the workbook was written.
    """
    import openpyxl

    book = openpyxl.load_workbook(_opened(source), read_only=True, data_only=True)
    try:
        shared = list(book.shared_strings)
        risky_shared = any(str(s).startswith(FORMULA_TRIGGERS) for s in shared)
        with zipfile.ZipFile(_opened(source)) as archive:
            quoted = quote_prefix_styles(archive)
            for sheet in book.worksheets:
                xml = archive.read(sheet._worksheet_path).decode("utf-8", "replace")
                if not (
                    _FORMULA_RE.search(xml)
                    or risky_shared
                    or re.search(r"<(?:\w+:)?t\b[^>]*>[=+\-@\t\r]", xml)
                ):
                    continue
                for match in _LOOSE_CELL_RE.finditer(xml):
                    attrs = dict(_ATTR_RE.findall(match.group(1)))
                    body = match.group(2) or ""
                    ref = attrs.get("r", "?")
                    if _FORMULA_RE.search(body):
                        yield sheet.title, ref, "formula_cell", ""
                        continue
                    kind = attrs.get("t", "n")
                    if kind == "s":
                        value = _VALUE_RE.search(body)
                        text = str(shared[int(value.group(1))]) if value and value.group(1).isdigit() else ""
                    elif kind in ("inlineStr", "str"):
                        found = _INLINE_RE.findall(body) if kind == "inlineStr" else _VALUE_RE.findall(body)
                        text = html.unescape("".join(found))
                    else:
                        continue
                    style = attrs.get("s", "0")
                    if runs_as_formula(text) and not (style.isdigit() and int(style) in quoted):
                        yield sheet.title, ref, "formula_text", text
    finally:
        book.close()
