"""Issue 15 as its reviewer judges it: datasets written the way spreadsheets and registries write them.

Each case copies a small subset of ``data/demo`` (30 establishments and their audits, hosts, findings,
controls and incidents) into ``tmp_path``, transforms it the way Excel, LibreOffice or a registry
extract writes it, and runs the real command line (``validate``, ``ingest``; ``ingest --large`` for a
few cases). The outcome must be one of:

* exit 0 with every record of every file kept (or counted as a duplicate) — the accounting identity
  ``records in the file = kept + rejected + duplicates`` checked against a count of the records made
  here, from the raw bytes, by the ``csv`` module (not the library's reader);
* exit 1 with rows rejected, each with a reason and a row number, the identity still holding;
* exit 1 with nothing written and a message naming the file, the line (when the fault has one) and
  the rule.

Never exit 0 with fewer rows than the file holds.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cyberobs_lib.cli import main

TODAY = "2026-01-01"
DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"
NBSP, NNBSP = "\u00a0", "\u202f"


# --------------------------------------------------------------------------------------------------
# The subset of the demo and how spreadsheets write it
# --------------------------------------------------------------------------------------------------
def _read_demo(name: str) -> pd.DataFrame:
    return pd.read_csv(DEMO / f"{name}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def subset() -> dict[str, pd.DataFrame]:
    return demo_subset()


def demo_subset() -> dict[str, pd.DataFrame]:
    """30 establishments (7 with over 1,000 beds, 20 FINESS with a leading zero, one of which fails its check
    key, 3 more) and their rows."""
    est = _read_demo("establishments")
    big = est["beds"].astype(int) >= 1000
    zero = est["finess"].str.startswith("0")
    keyed = est["finess"].map(
        lambda f: f.isdigit() and _luhn_ok(f)
    )  # one FINESS with a leading zero whose check key fails
    zeros = pd.concat([est[zero & ~big & ~keyed].head(1), est[zero & ~big & keyed].head(19)])
    pick = pd.concat([est[big].head(7), zeros, est[~(big | zero)].head(3)])
    assert len(pick) == 30
    finess = set(pick["finess"])
    audits = _read_demo("audits")
    audits = audits[audits["finess"].isin(finess)]
    ids = set(audits["audit_id"])
    tables = {"establishments": pick.reset_index(drop=True), "audits": audits.reset_index(drop=True)}
    for name in ("hosts", "findings", "controls"):
        t = _read_demo(name)
        tables[name] = t[t["audit_id"].isin(ids)].reset_index(drop=True)
    inc = _read_demo("incidents")
    tables["incidents"] = inc[inc["finess"].isin(finess)].reset_index(drop=True)
    assert len(tables["findings"]) > 500 and len(tables["incidents"]) > 0
    return tables


@dataclass
class Layout:
    """How a file is written: codec, separator, line end, BOM (as the application writes it)."""

    encoding: str = "utf-8"
    delimiter: str = ","
    line_end: str = "\n"
    bom: bool = False

    def text(self, frame: pd.DataFrame) -> str:
        buf = io.StringIO(newline="")
        w = csv.writer(buf, delimiter=self.delimiter, lineterminator=self.line_end)
        w.writerow(frame.columns)
        w.writerows(frame.itertuples(index=False, name=None))
        return buf.getvalue()

    def encode(self, text: str) -> bytes:
        if self.encoding == "utf-16-le":
            return b"\xff\xfe" + text.encode("utf-16-le")
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode(self.encoding)


UTF8 = Layout()
EXCEL_UNICODE_TEXT = Layout("utf-16-le", "\t", "\r\n", bom=True)
EXCEL_FR_CSV = Layout("cp1252", ";", "\r\n")
OLD_MAC = Layout("utf-8", ",", "\r")


def write_dataset(folder: Path, tables: dict[str, pd.DataFrame], layout: Layout = UTF8) -> dict[str, Layout]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        (folder / f"{name}.csv").write_bytes(layout.encode(layout.text(frame)))
    return dict.fromkeys(tables, layout)


def count_records(raw: bytes, layout: Layout) -> int:
    """The data records a file holds, counted here from its bytes (``csv`` module, no size limit).

    Blank records (empty, or separators and spaces only) are not records.
    """
    if layout.encoding == "utf-16-le":
        text = raw.decode("utf-16", "replace")
    else:
        text = raw.decode(layout.encoding, "replace").removeprefix("\ufeff")
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter))
    return sum(1 for r in rows[1:] if any(c.strip() for c in r))


# --------------------------------------------------------------------------------------------------
# Running the command line and judging the outcome
# --------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    code: int
    out: str
    err: str
    folder: Path

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("the command blocked (a FIFO opened?)")


def run_cli(argv: list[str], capsys, folder: Path | None = None, timeout: int = 120) -> Outcome:
    capsys.readouterr()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        code = main([str(a) for a in argv])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    cap = capsys.readouterr()
    return Outcome(code, cap.out, cap.err, folder or Path("."))


def _accounting(out: Path, large: bool) -> pd.DataFrame:
    if large:
        return pq.read_table(out / "accounting").to_pandas().set_index("source_file")
    return pd.read_csv(out / "accounting.csv").set_index("source_file")


def _rejects(out: Path, large: bool) -> pd.DataFrame:
    if large:
        return pq.read_table(out / "rejects").to_pandas()
    return pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)


def _table_rows(out: Path, name: str, large: bool) -> int:
    if large:
        return pq.read_table(out / name).num_rows
    return pq.read_metadata(out / f"{name}.parquet").num_rows


def check_written(
    ds: Path, out: Path, layouts: dict[str, Layout], *, large: bool = False, code: int
) -> pd.DataFrame:
    """Tables were written: the identity holds for every contract file, counted from its bytes."""
    acc = _accounting(out, large)
    rej = _rejects(out, large)
    for name, layout in layouts.items():
        path = ds / f"{name}.csv"
        if not path.is_file():
            continue
        held = count_records(path.read_bytes(), layout)
        row = acc.loc[f"{name}.csv"]
        assert row["kept"] + row["rejected"] + row["duplicates"] == held, (name, dict(row), held)
        assert row["rows_read"] == held, (name, dict(row), held)
        assert _table_rows(out, name, large) == row["kept"], name
        mine = rej[rej["source_file"] == f"{name}.csv"]
        assert len(mine) == row["rejected"], (name, len(mine), dict(row))
        assert (mine["reason"].astype(str).str.len() > 0).all()
        assert (mine["row"].astype(str).str.len() > 0).all()
    if code == 0:
        assert acc["rejected"].sum() == 0 and len(rej) == 0
    return acc


def nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def assert_names(outcome: Outcome, file: str, rule: str | None = None, line: int | None = None) -> None:
    """The message names the file, the rule and, when given, the line."""
    text = outcome.text
    assert file in text, text
    if rule is not None:
        assert f"[{rule}]" in text or f" {rule} " in text or f",{rule}," in text, text
    if line is not None:
        assert re.search(rf"\b(line|row) {line}\b", text), text


# --------------------------------------------------------------------------------------------------
# Fixtures: a dataset from the subset, transformed by a case
# --------------------------------------------------------------------------------------------------
Case = Callable[[Path, dict[str, pd.DataFrame]], dict[str, Layout]]


def build(tmp_path: Path, subset: dict[str, pd.DataFrame], case: Case) -> tuple[Path, dict[str, Layout]]:
    ds = tmp_path / "ds"
    tables = {k: v.copy() for k, v in subset.items()}
    layouts = case(ds, tables)
    return ds, layouts


def validate(ds: Path, capsys, *extra) -> Outcome:
    return run_cli(["validate", ds, "--today", TODAY, "--all", *extra], capsys)


def ingest(ds: Path, out: Path, capsys, *extra) -> Outcome:
    return run_cli(["ingest", ds, "--out", out, "--today", TODAY, *extra], capsys, out)


# ---- fatal cases: the file cannot be read; nothing is written ------------------------------------
def _quote_title(line: bytes, *, open_: bool) -> bytes:
    """A quote opening the title cell (field 8) of a findings line, or one closing it."""
    cells = line.split(b",")
    assert len(cells) == 12 and b'"' not in line
    cells[7] = b'"' + cells[7] if open_ else cells[7] + b'"'
    return b",".join(cells)


def _findings_unterminated_quote(ds, t):
    layouts = write_dataset(ds, t)
    lines = (ds / "findings.csv").read_bytes().split(b"\n")
    lines[101] = _quote_title(lines[101], open_=True)  # record on line 102
    (ds / "findings.csv").write_bytes(b"\n".join(lines))
    return layouts


def _findings_quote_closed_later(ds, t):
    layouts = write_dataset(ds, t)
    lines = (ds / "findings.csv").read_bytes().split(b"\n")
    lines[101] = _quote_title(lines[101], open_=True)
    lines[300] = _quote_title(lines[300], open_=False)
    (ds / "findings.csv").write_bytes(b"\n".join(lines))
    return layouts


def _findings_empty(ds, t):
    layouts = write_dataset(ds, t)
    (ds / "findings.csv").write_bytes(b"")
    return layouts


def _findings_directory(ds, t):
    layouts = write_dataset(ds, t)
    (ds / "findings.csv").unlink()
    (ds / "findings.csv").mkdir()
    return layouts


def _findings_absent(ds, t):
    layouts = write_dataset(ds, t)
    (ds / "findings.csv").unlink()
    assert not (ds / "scans").exists()
    return layouts


def _findings_fifo(ds, t):
    layouts = write_dataset(ds, t)
    (ds / "findings.csv").unlink()
    os.mkfifo(ds / "findings.csv")
    return layouts


def _duplicate_header(ds, t):
    layouts = write_dataset(ds, t)
    f = t["findings"].copy()
    f.insert(2, "host_2", f["host"])
    text = UTF8.text(f).replace("host_2", "host", 1)
    (ds / "findings.csv").write_text(text, encoding="utf-8")
    return layouts


def _case_variant_columns(ds, t):
    e = t["establishments"].copy()
    e["FINESS"] = e["finess"]
    t["establishments"] = e
    return write_dataset(ds, t)


def _findings_blank_lines_only(ds, t):
    layouts = write_dataset(ds, t)
    (ds / "findings.csv").write_bytes(b"\r\n \r\n\r\n")
    return layouts


def _establishments_absent(ds, t):
    layouts = write_dataset(ds, t)
    (ds / "establishments.csv").unlink()
    return layouts


def _required_column_dropped(ds, t):
    t["findings"] = t["findings"].drop(columns=["audit_id"])
    return write_dataset(ds, t)


FATAL = {
    # case: (builder, file, rule, line)
    "unterminated_quote": (_findings_unterminated_quote, "findings.csv", "runaway_quote", 102),
    "quote_closed_later": (_findings_quote_closed_later, "findings.csv", "runaway_quote", 102),
    "findings_empty": (_findings_empty, "findings.csv", "unreadable_file", None),
    "findings_directory": (_findings_directory, "findings.csv", "unreadable_file", None),
    "findings_absent_no_scans": (_findings_absent, "findings.csv", "missing_file", None),
    "findings_fifo": (_findings_fifo, "findings.csv", "unreadable_file", None),
    "findings_blank_lines_only": (_findings_blank_lines_only, "findings.csv", "unreadable_file", None),
    "establishments_absent": (_establishments_absent, "establishments.csv", "missing_file", None),
    "required_column_dropped": (_required_column_dropped, "findings.csv", "missing_column", None),
    "duplicated_header": (_duplicate_header, "findings.csv", "duplicate_column", 1),
    "finess_and_FINESS": (_case_variant_columns, "establishments.csv", "duplicate_column", 1),
}


def _fatal_params():
    for case in FATAL:
        yield pytest.param(case, id=case)


@pytest.mark.parametrize("case", list(_fatal_params()))
def test_fatal_file_exit_1_names_file_line_rule_and_writes_nothing(case, subset, tmp_path, capsys):
    builder, file, rule, line = FATAL[case]
    ds, _ = build(tmp_path, subset, builder)
    v = validate(ds, capsys)
    assert v.code == 1, v.text
    assert_names(v, file, rule, line)
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code == 1, r.text
    assert_names(r, file, rule, line)
    assert "Traceback" not in r.text
    assert nothing_written(out), sorted(p.name for p in out.iterdir())


def test_fatal_messages_name_both_duplicate_columns(subset, tmp_path, capsys):
    ds, _ = build(tmp_path, subset, _case_variant_columns)
    r = ingest(ds, tmp_path / "out", capsys)
    assert "'finess'" in r.err and "'FINESS'" in r.err, r.err


def test_every_establishment_rejected_exit_1_writes_nothing(subset, tmp_path, capsys):
    def case(ds, t):
        t["establishments"]["finess"] = "not-a-finess"
        return write_dataset(ds, t)

    ds, _ = build(tmp_path, subset, case)
    v = validate(ds, capsys)
    assert v.code == 1
    assert_names(v, "establishments.csv")
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code == 1, r.text
    assert "establishments" in r.err
    assert nothing_written(out)


def test_header_only_findings_is_not_a_silent_success(subset, tmp_path, capsys):
    """A findings.csv with its header and no record: no finding is lost, but audits with no finding at
    all are worth a word; whatever the exit status, the accounting says 0 records."""

    def case(ds, t):
        t["findings"] = t["findings"].iloc[:0]
        return write_dataset(ds, t)

    ds, layouts = build(tmp_path, subset, case)
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code in (0, 1), r.text
    if not nothing_written(out):
        check_written(ds, out, layouts, code=r.code)


# ---- files that must be read whole: exit 0, every record kept ------------------------------------
def _huge_cell(ds, t):
    f = t["findings"]
    output = "Plugin output:\n" + ("  TLSv1.0, RC4-SHA, weak cipher suite, line of the report\n" * 2600)
    assert len(output.encode()) > 128 * 1024
    f["title"] = f["title"].astype(object)
    f.loc[10, "title"] = f.loc[10, "title"] + " " + output
    return write_dataset(ds, t)


def _cr_only(ds, t):
    return write_dataset(ds, t, OLD_MAC)


def _utf16_tab(ds, t):
    return write_dataset(ds, t, EXCEL_UNICODE_TEXT)


def _cp1252_semicolon(ds, t):
    return write_dataset(ds, t, EXCEL_FR_CSV)


def _utf8_bom_semicolon(ds, t):
    return write_dataset(ds, t, Layout("utf-8", ";", "\r\n", bom=True))


def _bom_then_latin1(ds, t):
    layouts = write_dataset(ds, t)
    bad = Layout("latin-1", ",", "\n", bom=True)
    (ds / "establishments.csv").write_bytes(bad.encode(bad.text(t["establishments"])))
    layouts["establishments"] = bad
    return layouts


def _mixed_line_ends(ds, t):
    layouts = write_dataset(ds, t)
    raw = (ds / "findings.csv").read_bytes().split(b"\n")
    raw = [
        line + (b"\r\n" if i % 3 == 0 else b"\r" if i % 3 == 1 else b"\n") for i, line in enumerate(raw[:-1])
    ]
    (ds / "findings.csv").write_bytes(b"".join(raw))
    return layouts


def _excel_blank_rows(ds, t):
    """Excel writes the rows it formatted: lines of separators only at the end (and in the middle)."""
    layouts = write_dataset(ds, t, Layout("utf-8", ";", "\r\n", bom=True))
    raw = (ds / "audits.csv").read_bytes().split(b"\r\n")
    raw.insert(20, b";;;;;")
    raw[-1:] = [b";;;;;", b";;;;;", b""]
    (ds / "audits.csv").write_bytes(b"\r\n".join(raw))
    return layouts


def _quoted_newlines(ds, t):
    """A legitimate multi-line quoted cell (a title on two lines, CRLF inside) is one record."""
    f = t["findings"]
    f.loc[5, "title"] = f.loc[5, "title"] + "\r\nsecond line, with a comma"
    f.loc[6, "title"] = 'He said "hello", then\nleft'
    return write_dataset(ds, t)


def _beds_french(ds, t):
    e = t["establishments"]
    beds = e["beds"].astype(int)
    big = beds >= 1000
    seps = [" ", NBSP, NNBSP]
    e.loc[big, "beds"] = [f"{b // 1000}{seps[i % 3]}{b % 1000:03d}" for i, b in enumerate(beds[big].tolist())]
    assert e["beds"].str.contains(NBSP).any() and e["beds"].str.contains(NNBSP).any()
    return write_dataset(ds, t, Layout("utf-8", ";", "\r\n", bom=True))


def _mac_csv(ds, t):
    """Excel for Mac "CSV (Macintosh)": Mac Roman, CR line ends."""
    return write_dataset(ds, t, Layout("mac_roman", ",", "\r"))


def _no_final_newline(ds, t):
    layouts = write_dataset(ds, t, Layout("utf-8", ";", "\r\n", bom=True))
    for name in t:
        path = ds / f"{name}.csv"
        path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
    return layouts


def _french_dates_and_decimals(ds, t):
    """French Excel: dd/mm/yyyy dates, decimal commas, ``;``, CP1252."""
    a = t["audits"]
    a["audit_date"] = pd.to_datetime(a["audit_date"]).dt.strftime("%d/%m/%Y")
    f = t["findings"]
    f["cvss_vector"] = ""  # the score is then the file's own, read from "7,5"
    f["cvss_score"] = f["cvss_score"].str.replace(".", ",", regex=False)
    assert f["cvss_score"].str.contains(",").any()
    return write_dataset(ds, t, EXCEL_FR_CSV)


def _unknown_column(ds, t):
    t["establishments"]["Commentaire libre"] = "à revoir; «urgent»"
    return write_dataset(ds, t)


CLEAN = {
    "huge_cell_over_128KiB": _huge_cell,
    "cr_only_line_ends": _cr_only,
    "utf16le_bom_tab": _utf16_tab,
    "cp1252_semicolon": _cp1252_semicolon,
    "utf8_bom_semicolon_crlf": _utf8_bom_semicolon,
    "mixed_line_ends": _mixed_line_ends,
    "excel_blank_rows": _excel_blank_rows,
    "quoted_newlines": _quoted_newlines,
    "beds_french_thousands": _beds_french,
    "mac_roman_cr": _mac_csv,
    "no_final_newline": _no_final_newline,
    "french_dates_and_decimals": _french_dates_and_decimals,
    "unknown_column": _unknown_column,
}


@pytest.mark.parametrize("case", list(CLEAN))
def test_clean_layouts_keep_every_record(case, subset, tmp_path, capsys):
    ds, layouts = build(tmp_path, subset, CLEAN[case])
    v = validate(ds, capsys)
    assert v.code == 0, v.text
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code == 0, r.text
    check_written(ds, out, layouts, code=0)
    est = pd.read_parquet(out / "establishments.parquet")
    # accents read right whatever the encoding
    assert est["name"].str.startswith("Établissement").all(), est["name"].head()
    if case == "beds_french_thousands":
        expected = subset["establishments"].set_index("finess")["beds"].astype(int)
        got = est.set_index("finess")["beds"].astype(int)
        assert (got.reindex(expected.index) == expected).all()
    if case == "huge_cell_over_128KiB":
        f = pd.read_parquet(out / "findings.parquet", columns=["title"])
        assert f["title"].str.len().max() > 128 * 1024
    if case == "french_dates_and_decimals":
        # scores without a vector are the file's own (with a vector, the score is computed from it)
        f = pd.read_parquet(out / "findings.parquet", columns=["cvss_vector", "cvss_score"])
        expected = pd.to_numeric(subset["findings"]["cvss_score"].replace("", None)).dropna()
        got = f["cvss_score"].dropna()
        assert len(expected) > 0
        assert sorted(got.tolist()) == pytest.approx(sorted(expected.tolist()))
        a = pd.read_parquet(out / "audits.parquet").set_index("audit_id")["audit_date"]
        want = pd.to_datetime(subset["audits"].set_index("audit_id")["audit_date"])
        assert (pd.to_datetime(a).reindex(want.index) == want).all()
    if case == "quoted_newlines":
        f = pd.read_parquet(out / "findings.parquet", columns=["title"])
        assert f["title"].str.contains("second line, with a comma").any()


def test_bom_then_latin1_is_read_as_latin1_with_a_warning(subset, tmp_path, capsys):
    ds, layouts = build(tmp_path, subset, _bom_then_latin1)
    v = validate(ds, capsys)
    assert v.code == 0, v.text
    assert "establishments.csv" in v.out and "bad_encoding" in v.out
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code == 0, r.text
    check_written(ds, out, layouts, code=0)
    est = pd.read_parquet(out / "establishments.parquet")
    assert est["name"].str.startswith("Établissement").all()


def test_stray_0xff_in_utf8_stays_utf8_and_is_reported(subset, tmp_path, capsys):
    def case(ds, t):
        layouts = write_dataset(ds, t)
        raw = (ds / "establishments.csv").read_bytes().split(b"\n")
        raw[5] = raw[5].replace(b"fictif", b"fic\xfftif", 1)  # record on line 6
        (ds / "establishments.csv").write_bytes(b"\n".join(raw))
        return layouts

    ds, layouts = build(tmp_path, subset, case)
    v = validate(ds, capsys)
    assert v.code in (0, 1), v.text
    assert re.search(r"establishments\.csv\s+6\b.*bad_encoding", v.out), v.out
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code in (0, 1), r.text
    check_written(ds, out, layouts, code=r.code)
    est = pd.read_parquet(out / "establishments.parquet")
    names = est["name"].dropna()
    assert not names.str.contains("Ã").any()  # never re-decoded as cp1252
    assert names.str.startswith("Établissement").sum() >= len(subset["establishments"]) - 1


def test_nul_inside_a_host_name_is_never_kept(subset, tmp_path, capsys):
    def case(ds, t):
        t["hosts"].loc[3, "host"] = t["hosts"].loc[3, "host"][:4] + "\x00" + t["hosts"].loc[3, "host"][4:]
        h = t["findings"]["host"] == subset["hosts"].loc[3, "host"]
        h &= t["findings"]["audit_id"] == subset["hosts"].loc[3, "audit_id"]
        t["findings"].loc[h, "host"] = t["hosts"].loc[3, "host"]
        return write_dataset(ds, t)

    ds, layouts = build(tmp_path, subset, case)
    assert b"\x00" in (ds / "hosts.csv").read_bytes()
    v = validate(ds, capsys)
    assert v.code in (0, 1), v.text
    assert "hosts.csv" in v.out and "control_character" in v.out, v.out
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code in (0, 1), r.text
    check_written(ds, out, layouts, code=r.code)
    for name in ("hosts", "findings"):
        hosts = pd.read_parquet(out / f"{name}.parquet", columns=["host"])["host"].dropna()
        assert not hosts.str.contains("\x00").any(), name
    hosts = pd.read_parquet(out / "hosts.parquet")
    assert len(hosts) + len(_rejects(out, False).query("source_file == 'hosts.csv'")) == len(subset["hosts"])


# ---- rows rejected with a reason: exit 1, tables written, identity holds --------------------------
def test_date_with_trailing_garbage_rejects_that_audit(subset, tmp_path, capsys):
    def case(ds, t):
        t["audits"].loc[7, "audit_date"] = t["audits"].loc[7, "audit_date"] + "garbage"
        return write_dataset(ds, t)

    ds, layouts = build(tmp_path, subset, case)
    v = validate(ds, capsys)
    assert v.code == 1
    assert re.search(r"audits\.csv\s+9\s+audit_date\s+\w+\s+error", v.out), v.out  # record 8 is line 9
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code == 1, r.text
    check_written(ds, out, layouts, code=1)
    rej = _rejects(out, False)
    audit = rej[rej["source_file"] == "audits.csv"]
    assert len(audit) == 1 and audit["row"].astype(int).tolist() == [9]
    assert "garbage" in audit["value"].iloc[0]
    audit_id = subset["audits"].loc[7, "audit_id"]
    lost = (subset["findings"]["audit_id"] == audit_id).sum()
    assert (rej["source_file"] == "findings.csv").sum() == lost


def test_ragged_and_duplicated_records_are_accounted(subset, tmp_path, capsys):
    """A record with a cell missing and copy-pasted duplicate rows: each accounted for, none lost."""

    def case(ds, t):
        t["findings"] = pd.concat([t["findings"], t["findings"].iloc[40:45]], ignore_index=True)
        layouts = write_dataset(ds, t)
        lines = (ds / "findings.csv").read_bytes().split(b"\n")
        lines[30] = lines[30].rsplit(b",", 1)[0]  # record on line 31 has 11 cells
        (ds / "findings.csv").write_bytes(b"\n".join(lines))
        return layouts

    ds, layouts = build(tmp_path, subset, case)
    v = validate(ds, capsys)
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert v.code in (0, 1) and r.code in (0, 1), r.text
    acc = check_written(ds, out, layouts, code=r.code)
    assert acc.loc["findings.csv", "rows_read"] == len(subset["findings"]) + 5
    if r.code == 0:  # the short record kept (its missing cell empty), the copies counted as duplicates
        assert acc.loc["findings.csv", "duplicates"] == 5
    else:
        assert_names(r, "rejects.csv")


def _luhn_ok(number: str) -> bool:
    """The FINESS check key: Luhn over the 9 characters (written here, not taken from the library)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


@pytest.mark.parametrize("pad", [False, True])
def test_finess_that_lost_its_leading_zero(pad, subset, tmp_path, capsys):
    def case(ds, t):
        for name in ("establishments", "audits", "incidents"):
            col = t[name]["finess"]
            t[name]["finess"] = col.where(~col.str.startswith("0"), col.str[1:])
        return write_dataset(ds, t)

    ds, layouts = build(tmp_path, subset, case)
    finess = subset["establishments"]["finess"]
    zero = finess[finess.str.startswith("0")]
    restorable = set(zero[zero.map(_luhn_ok)])
    assert 0 < len(restorable) < len(zero)  # the demo has one with a failing key (a warning when 9 digits)
    extra = ["--pad-finess"] if pad else []
    v = validate(ds, capsys, *extra)
    assert v.code == 1, v.text
    assert "finess_leading_zero" in v.out and "leading zero lost (spreadsheet?)" in v.out
    out = tmp_path / "out"
    r = ingest(ds, out, capsys, *extra)
    assert r.code == 1, r.text
    check_written(ds, out, layouts, code=r.code)
    est = pd.read_parquet(out / "establishments.parquet")
    rej = _rejects(out, False)
    e = rej[rej["source_file"] == "establishments.csv"]
    assert set(e["reason"]) == {"finess_leading_zero"}
    assert e["message"].str.contains("leading zero lost").all()
    if pad:  # restored with their zero; only the one whose padded number fails the key is rejected
        assert set(est["finess"]) == set(finess) - (set(zero) - restorable)
        assert len(e) == len(zero) - len(restorable)
        assert e["message"].str.contains("fails the check key").all()
    else:
        assert len(e) == len(zero)
        assert set(est["finess"]) == set(finess) - set(zero)


# ---- ingest --large: the same files read the same way --------------------------------------------
@pytest.mark.parametrize("case", ["unterminated_quote", "huge_cell_over_128KiB", "utf16le_bom_tab"])
def test_large_ingest_same_outcome(case, subset, tmp_path, capsys):
    out = tmp_path / "out"
    if case in FATAL:
        builder, file, rule, line = FATAL[case]
        ds, _ = build(tmp_path, subset, builder)
        r = run_cli(["ingest", "--large", ds, "--out", out, "--today", TODAY], capsys, out)
        assert r.code == 1, r.text
        assert_names(r, file, rule, line)
        assert "Traceback" not in r.text
        assert nothing_written(out) or not (out / "findings").exists()
        return
    ds, layouts = build(tmp_path, subset, CLEAN[case])
    r = run_cli(["ingest", "--large", ds, "--out", out, "--today", TODAY], capsys, out)
    assert r.code == 0, r.text
    check_written(ds, out, layouts, large=True, code=0)


def test_large_ingest_fatal_dataset_writes_nothing(subset, tmp_path, capsys):
    ds, _ = build(tmp_path, subset, _findings_absent)
    out = tmp_path / "out"
    r = run_cli(["ingest", "--large", ds, "--out", out, "--today", TODAY], capsys, out)
    assert r.code == 1, r.text
    assert "findings.csv" in r.text
    assert nothing_written(out), sorted(p.name for p in out.iterdir())
    assert_names(r, "findings.csv", "missing_file")


# ---- a full disk ---------------------------------------------------------------------------------
def test_full_disk_names_the_file_and_leaves_no_partial_report(subset, tmp_path, capsys, monkeypatch):
    import pyarrow.parquet as pq_mod

    ds, _ = build(tmp_path, subset, lambda ds, t: write_dataset(ds, t))
    real = pq_mod.write_table
    calls = {"n": 0}

    def full(table, where, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *a, **k)

    monkeypatch.setattr(pq_mod, "write_table", full)
    out = tmp_path / "out"
    r = ingest(ds, out, capsys)
    assert r.code == 1
    assert "Traceback" not in r.text
    assert re.search(
        r"error: .*No space left on device.*\.parquet|error: .*\.parquet.*No space left", r.err
    ), r.err
    assert not (out / "ingest.json").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_full_disk_in_text_writer(tmp_path, monkeypatch):
    import cyberobs_lib.io as io_mod

    class Full(io.StringIO):
        def write(self, s):
            raise OSError(errno.ENOSPC, "No space left on device")

    real_fdopen = os.fdopen

    def fdopen(fd, *a, **k):
        real_fdopen(fd).close()
        return Full()

    monkeypatch.setattr(io_mod.os, "fdopen", fdopen)
    target = tmp_path / "report" / "table.csv"
    with pytest.raises(OSError) as info:
        io_mod.write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    assert info.value.errno == errno.ENOSPC
    assert str(target) in str(info.value)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


# ---- cyberobs run on a fatal dataset publishes nothing -------------------------------------------
@pytest.mark.slow
def test_run_on_fatal_dataset_publishes_nothing(subset, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CYBEROBS_KEY", "5e" * 32)  # a test key: the copy is not the demo (no truth.json)
    ds, _ = build(tmp_path, subset, _findings_unterminated_quote)
    out = tmp_path / "report"
    params = Path(__file__).resolve().parent.parent / "parameters" / "annual_2025.yaml"
    r = run_cli(["run", params, "--data", ds, "--out", out, "--quiet"], capsys, out, timeout=600)
    assert r.code != 0, r.text
    assert "findings.csv" in r.text and "runaway_quote" in r.text, r.text
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))  # not even empty folders


def test_full_disk_during_run_is_one_clean_error(subset, tmp_path, capsys, monkeypatch):
    """``cyberobs run``: the disk fills while ingest writes the canonical tables: one line naming the file,
    exit 1, no report folder."""
    import pyarrow.parquet as pq_mod

    monkeypatch.setenv("CYBEROBS_KEY", "5e" * 32)
    ds, _ = build(tmp_path, subset, lambda ds, t: write_dataset(ds, t))

    def full(table, where, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq_mod, "write_table", full)
    out = tmp_path / "report"
    params = Path(__file__).resolve().parent.parent / "parameters" / "annual_2025.yaml"
    r = run_cli(["run", params, "--data", ds, "--out", out, "--quiet"], capsys, out, timeout=600)
    assert r.code == 1, r.text
    assert "Traceback" not in r.text
    assert re.search(r"error: \[Errno 28\] No space left on device: '.*\.parquet'", r.err), r.err
    assert not out.exists()
    work = tmp_path / ".work"
    assert not [p for p in work.rglob("*") if p.name.endswith(".tmp")] if work.exists() else True
