"""``cyberobs check-disclosure DIR``: an independent audit of a report folder before it is published.

The runner calls :func:`check_disclosure` at the end of every published run and fails the run when it
returns a row. The check trusts nothing the run says about itself: it reads every file, finds every
table wherever it is, and looks for

* identifying values of the dataset however written (:mod:`~cyberobs_lib.disclosure._detectors`), and
  generic IP addresses and FINESS numbers;
* small cells: a count of establishments (or of units nested in them) ``0 < n < min_cell``, in any
  row, suppressed or not (:data:`~cyberobs_lib.disclosure._tables.COUNT_COLUMNS`);
* suppressed rows that still carry a count or a value;
* per-establishment tables (a column of establishments, FINESS, audits or keyed pseudonyms);
* hidden cells that the published numbers give back (:mod:`~cyberobs_lib.disclosure.recovery`);
* outputs unsafe to open: text a spreadsheet would run as a formula, formula cells in workbooks,
  live markup in HTML from data (:mod:`~cyberobs_lib.disclosure._html`).

Hits never print an identifier back: the ``value`` column keeps its first two characters.
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import re
import time
import unicodedata
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
from cyberobs_lib.disclosure._extract import Budget, read_content
from cyberobs_lib.disclosure._html import INVISIBLE_RE
from cyberobs_lib.disclosure._tables import (
    CONTEXT_COLUMNS,
    COUNT_COLUMNS,
    DIMENSION_COLUMNS,
    PER_ESTABLISHMENT_COLUMNS,
    PUBLIC_COUNT_COLUMNS,
    PUBLIC_INDICATORS,
    Table,
    canonical,
    parse_number,
    runs_as_formula,
)
from cyberobs_lib.disclosure.recovery import recover_hidden_cells

CHECK_COLUMNS = ("file", "location", "kind", "value", "rule", "detail")
MASK = "…"
#: Keyed pseudonyms of :func:`~cyberobs_lib.disclosure.pseudonymize` (prefix, then hexadecimal digits).
PSEUDONYM_RE = re.compile(r"[A-Z][0-9a-f]{8,16}")
#: Columns of life tables that count findings at one time, not establishments (``survival.csv``).
LIFE_TABLE_COUNTS = frozenset({"events", "at_risk", "censored"})

Hit = tuple[str, str, str, str, str]  # location, kind, value, rule, detail


def mask(value: str) -> str:
    """Keep the first two characters of an identifier: ``mask("010000024") == "01…"``."""
    return str(value)[:2] + MASK


def _excluded(relative: str, exclude: Iterable[str]) -> bool:
    for pattern in exclude:
        pattern = pattern.strip("/")
        if relative == pattern or relative.startswith(pattern + "/") or fnmatch.fnmatch(relative, pattern):
            return True
    return False


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


def normalize_text(text: str) -> str:
    """Text as a reader sees it: compatibility forms folded (full-width digits), invisible characters
    (zero-width spaces, soft hyphens) dropped. Line breaks are kept, so line numbers still hold."""
    if text.isascii():
        return text
    return INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", text))


_PERCENT_RE = re.compile(r"%([2-7][0-9A-Fa-f])")


def _scan_text(location: str, text: str, index: IdentifierIndex, *, patterns: bool = True) -> list[Hit]:
    """Identifiers in one segment; a ``{line}`` in ``location`` becomes the line of each hit.

    Percent-encoded printable characters (``%30%31%34...`` in a URL) are read decoded too.
    """
    text = normalize_text(text)
    hits = find_identifiers(text, index, patterns=patterns)
    if "%" in text and _PERCENT_RE.search(text):
        decoded = _PERCENT_RE.sub(lambda m: chr(int(m.group(1), 16)), text)  # no line break added
        hits = [*hits, *find_identifiers(decoded, index, patterns=patterns)]
    if not hits:
        return []
    starts = _line_starts(text) if "{line}" in location else []
    return [
        (
            location.replace("{line}", str(bisect.bisect_right(starts, hit.start))),
            hit.kind,
            mask(hit.value),
            hit.rule,
            "",
        )
        for hit in hits
    ]


def _scan_cells(table: Table, index: IdentifierIndex) -> list[Hit]:
    """Identifiers in the heading and cells of a table, scanned at once (cells joined by a barrier no
    name can span)."""
    rows = [table.labels, *table.rows]
    lines = [normalize_text(CELL_BARRIER.join(c.replace("\n", " ") for c in row)) for row in rows]
    text = "\n".join(lines)
    hits = find_identifiers(text, index)
    if not hits:
        return []
    starts = _line_starts(text)
    out = []
    for hit in hits:
        r = bisect.bisect_right(starts, hit.start) - 1
        offset = hit.start - starts[r]
        cells = lines[r].split(CELL_BARRIER)
        cell_starts = list(itertools.accumulate((len(c) + len(CELL_BARRIER) for c in cells[:-1]), initial=0))
        k = bisect.bisect_right(cell_starts, offset) - 1
        column = table.labels[k] if k < len(table.labels) else f"#{k + 1}"
        out.append(
            (f"{table.location}line {r + 1}, column {column}", hit.kind, mask(hit.value), hit.rule, "")
        )
    return out


def registry_counts(tables: Iterable[Table]) -> frozenset[tuple[str, str]]:
    """``(group, count)`` pairs the folder publishes as registry counts (public, never small cells).

    From ``eligible`` columns and the public counts of ``eligible_establishments``/``audit_coverage``
    rows (:data:`~cyberobs_lib.disclosure._tables.PUBLIC_INDICATORS`): a reader table that shows the same
    count for the same group without its indicator column shows the same public number.
    """
    found = set()
    for table in tables:
        group = next((table.column(g) for g in ("group", "family") if table.column(g) is not None), None)
        if group is None:
            continue
        for row, public in zip(table.rows, _public_columns(table), strict=True):
            for k, key in enumerate(table.header):
                number = parse_number(row[k])
                if number is not None and (key in public or key in PUBLIC_COUNT_COLUMNS):
                    found.add((canonical(row[group]), _fmt_count(number.value)))
    return frozenset(found)


def _fmt_count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _public_columns(table: Table, registry: frozenset[tuple[str, str]] = frozenset()) -> list[frozenset[str]]:
    """Per row, the columns holding registry counts (public): ``n_establishments`` of
    ``eligible_establishments`` and ``audit_coverage`` rows (:data:`~cyberobs_lib.disclosure._tables.PUBLIC_INDICATORS`),
    and an ``n_establishments`` equal to the registry count of the row's group (``registry``)."""
    k = table.column("indicator")
    if k is None:
        k = table.column("metric")
    out = [
        PUBLIC_INDICATORS.get(canonical(row[k]), frozenset()) if k is not None else frozenset()
        for row in table.rows
    ]
    group, count = table.column("group"), table.column("n_establishments")
    if registry and group is not None and count is not None:
        for i, row in enumerate(table.rows):
            number = parse_number(row[count])
            if number is not None and (canonical(row[group]), _fmt_count(number.value)) in registry:
                out[i] = out[i] | {"n_establishments"}
    return out


def small_cells(table: Table, min_cell: int, registry: frozenset[tuple[str, str]] = frozenset()) -> list[Hit]:
    """Counts of establishments ``0 < n < min_cell`` in any row, suppressed or not.

    Count columns: :data:`~cyberobs_lib.disclosure._tables.COUNT_COLUMNS`; a count of units nested in
    establishments (audits, findings, pairs) below ``min_cell`` means fewer establishments behind the
    cell too. Registry counts (``eligible_establishments`` rows, ``eligible`` columns) are public. In life
    tables (a ``time_days`` or ``at_risk`` column) ``events`` counts findings at one time and is not read.
    """
    life_table = "time_days" in table.header or "at_risk" in table.header
    columns = [
        k
        for k, key in enumerate(table.header)
        if key in COUNT_COLUMNS and not (life_table and key in LIFE_TABLE_COUNTS)
    ]
    if not columns:
        return []
    public = _public_columns(table, registry)
    hits = []
    for i, row in enumerate(table.rows):
        for k in columns:
            if table.header[k] in public[i]:
                continue
            number = parse_number(row[k])
            if number is not None and 0 < number.value < min_cell:
                hits.append(
                    (
                        table.where(i, k),
                        "small_cell",
                        f"{table.header[k]}={row[k].strip()}",
                        f"{table.header[k]}<{min_cell}",
                        "",
                    )
                )
    return hits


def suppressed_values(table: Table, registry: frozenset[tuple[str, str]] = frozenset()) -> list[Hit]:
    """Suppressed rows that still carry a count or a value (data-contract.md: suppressed cells carry
    ``suppressed = true`` and an empty value).

    Allowed in a suppressed row: the cell's key (:data:`~cyberobs_lib.disclosure._tables.DIMENSION_COLUMNS`),
    text, and numbers about something else than the hidden cell
    (:data:`~cyberobs_lib.disclosure._tables.CONTEXT_COLUMNS`: degrees of freedom, the reference group's
    count, the model's dispersion; ``n`` when the table has ``n_family``: the model's size). Rows of
    registry counts are public.
    """
    flags = table.suppressed_rows()
    if not any(flags):
        return []
    # n of a model (beside n_family) or of a 2×2 table (beside n_exposed): the analysis, not the cell.
    model_table = "n_family" in table.header or "n_exposed" in table.header
    allowed = {
        k
        for k, key in enumerate(table.header)
        if key in CONTEXT_COLUMNS
        or key in DIMENSION_COLUMNS
        or key == "suppressed"
        or (key == "n" and model_table)
    }
    public = _public_columns(table, registry)
    hits = []
    for i, row in enumerate(table.rows):
        if not flags[i]:
            continue
        for k, cell in enumerate(row):
            if k not in allowed and table.header[k] not in public[i] and parse_number(cell) is not None:
                hits.append(
                    (
                        table.where(i, k),
                        "suppressed_value",
                        f"{table.header[k]}={cell.strip()}",
                        "suppressed_row_keeps_value",
                        "",
                    )
                )
    return hits


def per_establishment_rows(table: Table) -> list[Hit]:
    """A table with one row per establishment (or audit): a column of establishments, FINESS, audit
    ids, or keyed pseudonyms. Such rows never leave confidential reports (issue 16)."""
    for k, key in enumerate(table.header):
        values = [row[k].strip() for row in table.rows if row[k].strip()]
        by_name = key in PER_ESTABLISHMENT_COLUMNS
        pseudonyms = len(set(values)) >= 2 and sum(
            bool(PSEUDONYM_RE.fullmatch(v)) for v in values
        ) >= 0.9 * len(values)
        if values and (by_name or pseudonyms):
            return [
                (
                    f"{table.location}line 1, column {table.labels[k]}",
                    "per_establishment_rows",
                    f"{len(table.rows)} rows",
                    "per_establishment_column" if by_name else "pseudonym_column",
                    f"{len(set(values))} distinct values",
                )
            ]
    return []


def formula_cells(table: Table) -> list[Hit]:
    """Text cells of a CSV/TSV that a spreadsheet would run (OWASP CSV-injection guidance; xlsx cells are
    read from the workbook XML by the extractor, formula cells included)."""
    if not table.spreadsheet:
        return []
    hits = []
    for i, row in enumerate([table.labels, *table.rows]):
        for k, cell in enumerate(row):
            if runs_as_formula(cell):
                column = table.labels[k] if k < len(table.labels) else f"#{k + 1}"
                hits.append(
                    (
                        f"{table.location}line {i + 1}, column {column}",
                        "formula",
                        mask(cell),
                        "formula_text",
                        "",
                    )
                )
    return hits


def table_findings(
    table: Table, index: IdentifierIndex, min_cell: int, registry: frozenset[tuple[str, str]] = frozenset()
) -> list[Hit]:
    """Everything the check finds in one table's cells (``registry``: :func:`registry_counts`)."""
    return [
        *_scan_cells(table, index),
        *small_cells(table, min_cell, registry),
        *suppressed_values(table, registry),
        *per_establishment_rows(table),
        *formula_cells(table),
    ]


def _file_findings(
    path: Path, relative: str, index: IdentifierIndex, archive_limit: int
) -> tuple[list[Hit], list[Table]]:
    budget = Budget(bytes_left=archive_limit)
    content = read_content(path.name, path.read_bytes(), file=relative, budget=budget)
    hits = _scan_text("file name", relative, index)
    for segment in content.segments:
        hits.extend(_scan_text(segment.location, segment.text, index, patterns=segment.patterns))
    hits.extend((p.location, p.kind, p.value, p.rule, "") for p in content.problems)
    return hits, content.tables


def check_disclosure(
    report_dir: Path,
    *,
    identifiers: Mapping[str, Iterable[str]] | None = None,
    min_cell: int = DEFAULT_MIN_CELL,
    exclude: Sequence[str] = (),
    recover: bool = True,
    archive_limit: int = 512 << 20,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Audit every file of a report folder: identifiers, small cells, recoverable hidden cells, unsafe outputs.

    Parameters
    ----------
    report_dir : pathlib.Path
        The report folder; every file below it is read (sub-folders and archives included).
    identifiers : mapping, optional
        ``{"finess", "ip_address", "hostname", "name", "audit_id", "incident_id"}`` → values of the input
        dataset, as returned by :func:`~cyberobs_lib.disclosure.identifiers_from_dataset`. Without it
        only the generic patterns (IP addresses, FINESS-like numbers), cells and markup are checked.
    min_cell : int, default 5
        Fewest establishments a published cell may count.
    exclude : sequence of str
        Paths relative to ``report_dir`` (folders or glob patterns) that are not published and not
        read, e.g. ``("canonical",)``.
    recover : bool, default True
        Try to recompute every hidden cell from the published numbers of all tables
        (:func:`~cyberobs_lib.disclosure.recovery.recover_hidden_cells`).
    archive_limit : int, default 512 MiB
        Most bytes the members of one archive may unpack to (against decompression bombs); an archive
        beyond it, or nested more than 4 deep, is reported ``unreadable``.
    timings : dict, optional
        Filled with the seconds spent reading and scanning (``"read"``) and recovering (``"recovery"``).

    Returns
    -------
    pandas.DataFrame
        One row per finding, empty when the folder is clean (columns :data:`CHECK_COLUMNS`):

        * ``file`` -- path relative to ``report_dir`` (``/``-separated), identifiers in it masked;
        * ``location`` -- ``line N, column C`` (tables), ``sheet 'S' line N, column C`` (xlsx),
          ``table 2 (line 40) line 3, column C`` (HTML tables), ``cell I output J text/html line N``
          (notebooks), ``member a/b.csv: line N`` (archives), ``PNG tEXt 'Comment'``, ``file name``...;
        * ``kind`` -- ``finess``, ``ip_address``, ``hostname``, ``name``, ``audit_id``, ``incident_id``,
          ``small_cell``, ``suppressed_value``, ``per_establishment_rows``, ``recovered_cell``,
          ``formula``, ``live_markup``, or ``unreadable`` (not verified, e.g. an archive beyond the limits);
        * ``value`` -- the first two characters of an identifier and ``…`` (never the identifier), or
          ``n_establishments=3`` for a cell;
        * ``rule`` -- which rule fired (``ip_listed_as_integer``, ``finess_listed_separated``,
          ``n_a<5``, ``suppressed_row_keeps_value``, ``margin``, ``same_cell_published``,
          ``formula_cell``, ``script_in_cell``...);
        * ``detail`` -- for recovered cells, the tables and rows used and the value recovered.

    Notes
    -----
    What is read, and how identifiers are matched, is described in :mod:`~cyberobs_lib.disclosure._extract`
    and :mod:`~cyberobs_lib.disclosure._detectors`; which relations between published numbers are
    audited (and which are not) in :mod:`~cyberobs_lib.disclosure.recovery`. Every part of a file that
    cannot be parsed is reported ``unreadable``: the check fails rather than pass a file it did not read.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.md").write_text("Scanned 192.168.10.12 with nmap 7.94 on pandas 2.3.3")
    >>> check_disclosure(folder)[["file", "location", "kind", "value", "rule"]]
           file location        kind value          rule
    0  notes.md   line 1  ip_address   19…  ipv4_pattern
    """
    report_dir = Path(report_dir)
    if not report_dir.is_dir():
        raise NotADirectoryError(f"report folder {report_dir} does not exist")
    started = time.perf_counter()
    index = build_index(identifiers)
    rows: list[tuple[str, ...]] = []
    tables: list[Table] = []
    for path in sorted(p for p in report_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(report_dir).as_posix()
        if _excluded(relative, exclude):
            continue
        try:
            hits, found = _file_findings(path, relative, index, archive_limit)
        except Exception as error:  # noqa: BLE001 -- any parse failure means "not verified"
            hits, found = [("whole file", "unreadable", "", type(error).__name__, str(error)[:200])], []
        rows.extend((relative, *hit) for hit in hits)
        tables.extend(found)
    registry = registry_counts(tables)
    for table in tables:
        rows.extend((table.file, *hit) for hit in table_findings(table, index, min_cell, registry))
    read_done = time.perf_counter()
    if recover:
        rows.extend(recover_hidden_cells(tables, min_cell=min_cell))
    if timings is not None:
        timings["read"] = read_done - started
        timings["recovery"] = time.perf_counter() - read_done
    frame = pd.DataFrame(rows, columns=list(CHECK_COLUMNS)).astype(str)
    for col in ("file", "location", "detail"):  # a file or column name may itself be an identifier
        frame[col] = frame[col].map({v: redact(v, index, mask=mask) for v in frame[col].unique()})
    frame = frame.sort_values("file", kind="stable")  # a file's findings together, in reading order
    return frame.drop_duplicates(ignore_index=True)
