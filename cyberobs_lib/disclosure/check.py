"""``cyberobs check-disclosure DIR``: scan a report folder for identifying values and small cells.

The runner calls :func:`check_disclosure` on every published run and fails the run when it returns a
row. Hits never print the identifier back: the ``value`` column keeps its first two characters.
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from cyberobs_lib.config import DEFAULT_MIN_CELL
from cyberobs_lib.disclosure._detectors import (
    CELL_BARRIER,
    IdentifierIndex,
    build_index,
    find_identifiers,
    redact,
)
from cyberobs_lib.disclosure._extract import file_segments, table_rows
from cyberobs_lib.disclosure._xlsx_rows import xlsx_rows

CHECK_COLUMNS = ("file", "location", "kind", "value", "rule")
#: Columns that count establishments behind a published cell (indicators.csv, tests.csv).
COUNT_COLUMNS = ("n_establishments", "n_a", "n_b")
TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".parquet")
MASK = "…"


def mask(value: str) -> str:
    """Keep the first two characters of an identifier: ``mask("010000024") == "01…"``."""
    return str(value)[:2] + MASK


def _small_cells(rows: list[list[str]], where: str, min_cell: int) -> list[tuple[str, str, str, str]]:
    """Non-suppressed rows with ``0 < n < min_cell`` in a count column."""
    if len(rows) < 2:
        return []
    header = [h.strip().lower() for h in rows[0]]
    counts = [(k, h) for k, h in enumerate(header) if h in COUNT_COLUMNS]
    if not counts:
        return []
    width = len(header)
    body = pd.DataFrame([(r + [""] * width)[:width] for r in rows[1:]])
    if "suppressed" in header:
        flag = body[header.index("suppressed")].astype(str).str.strip().str.lower()
        suppressed = flag.isin(["true", "1", "yes", "1.0"])
    else:
        suppressed = pd.Series(False, index=body.index)
    hits = []
    for k, name in counts:
        n = pd.to_numeric(body[k], errors="coerce")
        small = (n > 0) & (n < min_cell) & ~suppressed
        for i in small[small].index:
            hits.append(
                (
                    f"{where}line {i + 2}, column {rows[0][k]}",
                    "small_cell",
                    f"{name}={body.at[i, k]}",
                    f"{name}<{min_cell}",
                )
            )
    return hits


def _excluded(relative: str, exclude: Iterable[str]) -> bool:
    for pattern in exclude:
        pattern = pattern.strip("/")
        if relative == pattern or relative.startswith(pattern + "/") or fnmatch.fnmatch(relative, pattern):
            return True
    return False


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


def _scan_text(location: str, text: str, index: IdentifierIndex) -> list[tuple[str, str, str, str]]:
    """Identifiers in one segment; a ``{line}`` in ``location`` becomes the line of each hit."""
    hits = find_identifiers(text, index)
    if not hits:
        return []
    starts = _line_starts(text) if "{line}" in location else []
    return [
        (
            location.replace("{line}", str(bisect.bisect_right(starts, hit.start))),
            hit.kind,
            mask(hit.value),
            hit.rule,
        )
        for hit in hits
    ]


def _scan_rows(rows: list[list[str]], where: str, index: IdentifierIndex) -> list[tuple[str, str, str, str]]:
    """Identifiers in table cells, scanned at once (cells joined by a barrier no name can span)."""
    lines = [CELL_BARRIER.join(row) for row in rows]
    text = "\n".join(lines)
    hits = find_identifiers(text, index)
    if not hits:
        return []
    header = rows[0]
    starts = _line_starts(text)
    out = []
    for hit in hits:
        r = bisect.bisect_right(starts, hit.start) - 1
        offset = hit.start - starts[r]
        cell_starts = list(
            itertools.accumulate((len(c) + len(CELL_BARRIER) for c in rows[r][:-1]), initial=0)
        )
        k = bisect.bisect_right(cell_starts, offset) - 1
        column = header[k] if r > 0 and k < len(header) else f"#{k + 1}"
        out.append((f"{where}line {r + 1}, column {column}", hit.kind, mask(hit.value), hit.rule))
    return out


def _scan_file(
    path: Path, relative: str, index: IdentifierIndex, min_cell: int
) -> list[tuple[str, str, str, str]]:
    hits = _scan_text("file name", relative, index)
    for location, text in file_segments(path):
        hits.extend(_scan_text(location, text, index))
    if path.suffix.lower() in TABLE_SUFFIXES:
        # xlsx cells through a regular expression rather than an openpyxl object per cell (same rows).
        read = xlsx_rows if path.suffix.lower() == ".xlsx" else table_rows
        for sheet, rows in read(path):
            where = f"sheet {sheet!r} " if sheet else ""
            if rows:
                hits.extend(_scan_rows(rows, where, index))
                hits.extend(_small_cells(rows, where, min_cell))
    return hits


def check_disclosure(
    report_dir: Path,
    *,
    identifiers: Mapping[str, Iterable[str]] | None = None,
    min_cell: int = DEFAULT_MIN_CELL,
    exclude: Sequence[str] = (),
) -> pd.DataFrame:
    """Find identifying values and small cells in every file of a report folder.

    Parameters
    ----------
    report_dir : pathlib.Path
        The report folder; every file below it is read (sub-folders included).
    identifiers : mapping, optional
        ``{"finess", "ip_address", "hostname", "name"}`` → values of the input dataset, as returned
        by :func:`~cyberobs_lib.disclosure.identifiers_from_dataset`. Without it only the generic
        patterns (IP addresses, FINESS-like numbers) and small cells are looked for.
    min_cell : int, default 5
        Fewest establishments a published row may count.
    exclude : sequence of str
        Paths relative to ``report_dir`` (folders or glob patterns) that are not published and not
        read, e.g. ``("canonical",)``.

    Returns
    -------
    pandas.DataFrame
        One row per hit, empty when the folder is clean:

        * ``file`` -- path relative to ``report_dir`` (``/``-separated), identifiers in it masked;
        * ``location`` -- ``line N, column C`` (tables), ``sheet 'S' line N, column C`` (xlsx),
          ``cell I output J text/html line N`` (notebooks), ``PNG tEXt 'Comment'``, ``file name``...;
        * ``kind`` -- ``finess``, ``ip_address``, ``hostname``, ``name``, ``small_cell``, or
          ``unreadable`` (a file that could not be parsed, hence not verified);
        * ``value`` -- the first two characters of the identifier and ``…`` (never the identifier),
          or ``n_establishments=3`` for a small cell;
        * ``rule`` -- which rule fired (``ipv4_pattern``, ``ipv6_pattern``, ``ip_listed``,
          ``finess_listed``, ``finess_pattern_luhn``, ``finess_listed_without_leading_zero``,
          ``hostname_listed``, ``name_listed``, ``n_establishments<5``...).

    Notes
    -----
    Read: CSV/TSV, xlsx (cells, document properties, comments), Parquet, HTML, SVG, XML, notebooks
    (sources, every output MIME type, metadata, attachments), JSON, Markdown and text files, PNG text
    chunks (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``) including images embedded as ``data:`` URIs or notebook
    outputs, and the printable bytes of any other file. File names are checked too.

    IPv4: four octets ≤ 255, not inside a longer dotted number (``10.0.0.1.2``) and not the unspecified,
    loopback, multicast or reserved ranges (unless listed). IPv6: parsed by :mod:`ipaddress`, at least 3
    non-empty groups. FINESS-like: 9 characters, department prefix 01–95/2A/2B/97/98 and a valid
    Luhn key (A=1, B=2), not the fraction of a decimal; listed FINESS also in ``NN NNN NNN N`` form or
    without their leading zero. Hostnames: a listed host or any sub-domain of it, case-insensitive.
    Names: whole words, case- and accent-insensitive, hyphens as spaces. Small cells: rows of a table
    with a ``n_establishments``, ``n_a`` or ``n_b`` column where ``0 < n < min_cell`` and
    ``suppressed`` is not true.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.md").write_text("Scanned 192.168.10.12 with nmap 7.94 on pandas 2.3.3")
    >>> check_disclosure(folder)
           file location        kind value          rule
    0  notes.md   line 1  ip_address   19…  ipv4_pattern
    """
    report_dir = Path(report_dir)
    if not report_dir.is_dir():
        raise NotADirectoryError(f"report folder {report_dir} does not exist")
    index = build_index(identifiers)
    rows = []
    for path in sorted(p for p in report_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(report_dir).as_posix()
        if _excluded(relative, exclude):
            continue
        try:
            hits = _scan_file(path, relative, index, min_cell)
        except Exception as error:  # noqa: BLE001 -- any parse failure means "not verified"
            hits = [("whole file", "unreadable", "", type(error).__name__)]
        rows.extend((relative, *hit) for hit in hits)
    frame = pd.DataFrame(rows, columns=list(CHECK_COLUMNS)).astype(str)
    for col in ("file", "location"):  # a file or column name may itself be an identifier
        frame[col] = frame[col].map({v: redact(v, index, mask=mask) for v in frame[col].unique()})
    return frame.drop_duplicates(ignore_index=True)
