"""Read a contract CSV into DuckDB with the physical line of every record (for the DuckDB ingest baseline).

DuckDB's ``read_csv`` gives no line number. :func:`load_csv` recovers it exactly:

* the records are copied into a table in file order (``preserve_insertion_order``), so ``rowid`` is the
  record's rank among the records DuckDB kept;
* records with a wrong number of cells are not kept but stored by ``store_rejects`` with their *logical*
  line (DuckDB counts one line per record and per empty line, but one line for a record whose quoted
  cell spans several lines);
* empty lines, which the CSV reader skips silently, are found by a second scan of the file as single-cell
  lines (no quote, no delimiter): one row per physical line, empty ones NULL;
* records whose quoted cells hold line breaks (multi-line records) are detected by the line count
  (physical lines − header − records − empty lines > 0) and then located by the newlines in their cells.

From these few "special" lines (usually none: the fast path is ``line = rowid + 2``) a short walk in
Python builds segments ``(first rowid, offset)``, joined to the records with an ASOF join. Records with a
wrong number of cells are padded or cut to the header's width (as :func:`cyberobs_lib.io.read_table_csv`
and :func:`cyberobs_lib.scale.csv_stream.read_csv_chunks` do) and flagged ``ragged``.

The result is the view ``src_<name>``: ``line``, ``ragged``, then one VARCHAR column per header cell
(lower-cased names), cells trimmed of surrounding whitespace and NULL when empty, as the readers give them.
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.scale.csv_stream import detect_csv

#: Characters with the Unicode White_Space property: what the project's readers strip (pyarrow's
#: ``utf8_trim_whitespace``) around every cell.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_RAGGED = ("TOO MANY COLUMNS", "MISSING COLUMNS")
#: Python's ``str.isspace`` class minus the control separators: what pyarrow's ``utf8_trim_whitespace`` strips.
_WS_CLASS = r"[\s\x{0b}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_LINE_SCAN_DELIM = "\x1f"


def clean_sql(cell: str) -> str:
    """A cell as the project's readers give it: surrounding whitespace removed, empty → NULL (the costly
    ``trim`` with a character set only where a cheap regular expression sees whitespace at an end)."""
    rx = sql_str(f"^{_WS_CLASS}|{_WS_CLASS}$")
    return f"CASE WHEN regexp_matches({cell}, {rx}) THEN NULLIF(trim({cell}, {sql_str(WHITESPACE)}), '') ELSE {cell} END"


def sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def run(con, sql: str) -> list:
    """Execute a statement and fetch its whole result (DuckDB wants results consumed before the next call)."""
    return con.execute(sql).fetchall()


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class CsvSource:
    """What :func:`load_csv` found in one file."""

    name: str
    path: Path
    columns: list[str]
    records: int = 0  # records DuckDB parsed with the right width
    ragged: int = 0  # records with a wrong number of cells (padded, flagged)
    blank_ragged: int = 0  # whitespace-only lines of a wrong width, dropped (blank records)
    empty_lines: int = 0
    multiline: int = 0  # records spanning several physical lines
    special: dict = field(default_factory=dict)  # timings / counts of the line reconstruction


def _read_options(path: Path, delimiter: str, encoding: str) -> str:
    enc = "utf-8" if encoding == "utf8" else "latin-1"
    return f"{sql_str(str(path))}, delim={sql_str(delimiter)}, encoding={sql_str(enc)}, auto_detect=false"


def _segments(
    blanks: list[int], rejects: list[tuple[int, int]], multiline: dict[int, int], n_records: int
) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """Walk the special lines in file order: record segments ``(first rowid, line - rowid)`` and the
    physical line of each rejected record (keyed by its logical line).

    ``blanks``: physical lines that are empty; ``rejects``: ``(logical line, extra newlines)``, sorted;
    ``multiline``: rowid → extra newlines of a kept record.
    """
    phys, logical, r = 2, 2, 0
    segments: list[tuple[int, int]] = [(0, 2)]
    reject_phys: dict[int, int] = {}
    mrows = sorted(multiline)
    bi = ri = mi = 0
    while True:
        while bi < len(blanks) and blanks[bi] < phys:  # empty lines inside a multi-line cell
            bi += 1
        gaps = []
        if bi < len(blanks):
            gaps.append((blanks[bi] - phys, 0))
        if ri < len(rejects):
            gaps.append((rejects[ri][0] - logical, 1))
        if mi < len(mrows):
            gaps.append((mrows[mi] - r, 2))
        if not gaps:
            break
        gap, kind = min(gaps)
        gap = max(gap, 0)
        r, phys, logical = r + gap, phys + gap, logical + gap
        if kind == 0:
            phys, logical, bi = phys + 1, logical + 1, bi + 1
        elif kind == 1:
            reject_phys[rejects[ri][0]] = phys
            phys, logical, ri = phys + 1 + rejects[ri][1], logical + 1, ri + 1
        else:
            phys, logical, r, mi = phys + 1 + multiline[mrows[mi]], logical + 1, r + 1, mi + 1
        if r <= n_records and segments[-1][1] != phys - r:
            if segments[-1][0] == r:
                segments[-1] = (r, phys - r)
            else:
                segments.append((r, phys - r))
    return segments, reject_phys


def load_csv(con, name: str, path: Path, *, drop_blank_ragged: bool = True) -> CsvSource:
    """Load ``path`` into ``raw_<name>`` and define the view ``src_<name>`` (``line``, ``ragged``, cells).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection (``preserve_insertion_order`` must be on: it is DuckDB's default).
    name : str
        Table name (``findings`` …).
    path : Path
        The CSV file (UTF-8 with or without BOM, or CP1252 read as Latin-1; ``,``/``;``/tab separators).
    drop_blank_ragged : bool
        Whitespace-only lines with a wrong number of cells: dropped as blank records (True, as
        ``read_table_csv`` and ``read_csv_chunks``) or rejected as ragged (False).

    Returns
    -------
    CsvSource
        Counts of what was found (records, ragged, empty lines, multi-line records).

    Raises
    ------
    ValueError
        A CSV error other than a wrong number of cells (DuckDB names it; the baseline stops).
    """
    encoding, delimiter, header = detect_csv(path)
    columns = [h.strip().lower() for h in header]
    if len(set(columns)) != len(columns):
        raise ValueError(f"{path}: duplicate column names in the header {columns}")
    src = CsvSource(name, path, columns)
    blanks, wide, total, odd = _line_scan(con, name, path, delimiter, encoding, width=len(columns))
    spec = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
    cells = ", ".join(f"{clean_sql(ident(c))} AS {ident(c)}" for c in columns)
    if odd:  # a quoted cell may hold line breaks: count them before trimming
        raw = " || ".join(f"coalesce({ident(c)}, '')" for c in columns)
        cells += f", strlen({raw}) - strlen(replace({raw}, chr(10), '')) AS __nl"
    run(con, f"CREATE OR REPLACE TABLE raw_{name} AS SELECT {cells} FROM read_csv({_read_options(path, delimiter, encoding)}, "
        f"header=true, quote='\"', escape='\"', columns={spec}, store_rejects=true, rejects_table='rej_{name}', "
        f"rejects_scan='rejscan_{name}')")  # fmt: skip
    src.records = run(con, f"SELECT count(*) FROM raw_{name}")[0][0]
    has_rej = run(con, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rej_{name}'")[0][0]
    query = (
        f"SELECT line, any_value(error_type), any_value(csv_line) FROM rej_{name} GROUP BY line ORDER BY line"
    )
    rej = run(con, query) if has_rej else []
    bad = [(line, kind) for line, kind, _ in rej if kind not in _RAGGED]
    if bad:
        raise ValueError(f"{path}: line {bad[0][0]} (logical): {bad[0][1]}; the DuckDB baseline stops here")
    src.empty_lines = len(blanks)
    multiline: dict[int, int] = {}
    if odd and total - 1 - src.records - len(rej) - len(blanks) > 0:  # records spanning lines: where
        multiline = {
            int(r): int(n) for r, n in run(con, f"SELECT rowid, __nl FROM raw_{name} WHERE __nl > 0")
        }
    src.multiline = len(multiline)
    rejects = [(int(line), text.strip("\r\n").count("\n")) for line, _, text in rej]
    segments, reject_phys = _segments(blanks, rejects, multiline, src.records)
    src.special = {"segments": len(segments), "rejected_lines": len(rej), "wide_lines": len(wide)}
    # DuckDB keeps records with extra *empty* trailing cells ("a,b,c,,"): the readers call them ragged
    cut = _silently_cut(wide, delimiter, len(columns), segments, set(reject_phys.values()),
                        keep_blank=not drop_blank_ragged)  # fmt: skip
    ragged_rows = []  # records DuckDB rejected: padded or cut to the header's width, as the project's readers do
    for line, _, text in rej:
        cells = [
            c.strip(WHITESPACE) or None
            for c in next(csv.reader([text.strip("\r\n")], delimiter=delimiter), [])
        ]
        if not any(cells) and drop_blank_ragged:
            src.blank_ragged += 1
            continue
        ragged_rows.append([reject_phys[int(line)]] + (cells + [None] * len(columns))[: len(columns)])
    src.ragged = len(ragged_rows) + len(cut)
    _register(con, f"seg_{name}", pd.DataFrame(segments, columns=["rid", "off"]).astype("int64"))
    _register(con, f"cut_{name}", pd.DataFrame({"rid": pd.Series(sorted(cut), dtype="int64")}))
    rag = pd.DataFrame(ragged_rows, columns=["line", *columns]).astype({"line": "int64"})
    rag[columns] = rag[columns].astype(object)
    _register(con, f"rag_{name}", rag, casts={c: "VARCHAR" for c in columns})
    col_list = ", ".join(ident(c) for c in columns)
    cols_r = ", ".join("r." + ident(c) for c in columns)
    flag = f"r.rid IN (SELECT rid FROM cut_{name})" if cut else "false"
    if len(segments) == 1:
        line = f"r.rid + {segments[0][1]}"
        frm = f"(SELECT rowid AS rid, * FROM raw_{name}) r"
    else:
        line = "r.rid + s.off"
        frm = f"(SELECT rowid AS rid, * FROM raw_{name}) r ASOF JOIN seg_{name} s ON r.rid >= s.rid"
    run(con, f"CREATE OR REPLACE VIEW src_{name} AS SELECT {line} AS line, {flag} AS ragged, {cols_r} FROM {frm} "
        f"UNION ALL SELECT line, true AS ragged, {col_list} FROM rag_{name}")  # fmt: skip
    return src


def _line_scan(con, name: str, path: Path, delimiter: str, encoding: str, *, width: int):
    """One row per physical line (no quoting): the empty lines (which the CSV reader skips), the lines with
    more delimiters than the header (candidates for extra cells), the number of lines, and whether a line
    has an odd number of quotes (only then can a quoted cell span lines)."""
    scan = (f"read_csv({_read_options(path, _LINE_SCAN_DELIM, encoding)}, header=false, quote='', escape='', "
            "columns={'l': 'VARCHAR'}, strict_mode=false)")  # fmt: skip
    d = sql_str(delimiter)
    run(con, f"CREATE OR REPLACE TEMP TABLE lines_{name} AS SELECT l IS NULL AS e, CASE WHEN "
        f"strlen(l) - strlen(replace(l, {d}, '')) > {width - 1} THEN l END AS wide, "
        f"(strlen(l) - strlen(replace(l, '\"', ''))) % 2 = 1 AS odd FROM {scan}")  # fmt: skip
    total, odd = run(con, f"SELECT count(*), count(*) FILTER (WHERE odd) FROM lines_{name}")[0]
    blanks = [r[0] for r in run(con, f"SELECT rowid + 1 FROM lines_{name} WHERE e ORDER BY 1")]
    wide = run(
        con, f"SELECT rowid + 1, wide FROM lines_{name} WHERE wide IS NOT NULL AND rowid > 0 ORDER BY 1"
    )
    run(con, f"DROP TABLE lines_{name}")
    return blanks, wide, total, odd > 0


def _silently_cut(
    wide, delimiter: str, width: int, segments, rejected_lines: set[int], *, keep_blank: bool
) -> set[int]:
    """rowids of the kept records whose line has more cells than the header (all extra ones empty); blank
    ones only with ``keep_blank`` (otherwise they stay blank records, dropped by the clean view)."""
    starts = [s[0] + s[1] for s in segments]  # first line of each segment
    cut = set()
    for line, text in wide:
        if line in rejected_lines:
            continue
        try:
            cells = next(csv.reader([text.rstrip("\r")], delimiter=delimiter), [])
        except csv.Error:
            continue
        if len(cells) > width and (keep_blank or any(c.strip(WHITESPACE) for c in cells)):
            k = max(bisect.bisect_right(starts, line) - 1, 0)
            cut.add(line - segments[k][1])
    return cut


def _register(con, name: str, frame: pd.DataFrame, *, casts: dict[str, str] | None = None) -> None:
    """A temporary DuckDB table holding ``frame``."""
    con.register(f"{name}_df", frame)
    cols = ", ".join(f"CAST({ident(c)} AS {casts[c]}) AS {ident(c)}" if casts and c in casts else ident(c)
                     for c in frame.columns)  # fmt: skip
    run(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols} FROM {name}_df")
    con.unregister(f"{name}_df")


def empty_source(con, name: str, columns: list[str]) -> None:
    """Define ``src_<name>`` with no rows (a file absent from the dataset)."""
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in columns)
    run(
        con, f"CREATE OR REPLACE VIEW src_{name} AS SELECT 0::BIGINT AS line, false AS ragged, {cols} LIMIT 0"
    )
