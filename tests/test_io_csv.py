"""Reading a contract CSV file is lossless and loud: every record kept, or an error naming file, line, rule.

Each test writes the odd bytes of one case (as spreadsheets and registries really write them) from the
small plain fixture ``tests/fixtures/csv/findings_40.csv`` (header + 40 records, a third with a quoted
title), and checks the in-memory reader (:func:`cyberobs_lib.io.read_table_csv`), the file-level rules
(:func:`cyberobs_lib.checks.open_table`) and, where it matters, the chunked reader of ``ingest --large``
(:func:`cyberobs_lib.scale.csv_stream.read_csv_chunks`), which must read the same files the same way.
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

import cyberobs_lib.io as io_mod
from cyberobs_lib.checks import RULES, open_table
from cyberobs_lib.io import InputFileError, decode_bytes, detect_encoding, read_table_csv
from cyberobs_lib.scale.csv_stream import read_arrow_chunks, read_csv_chunks
from cyberobs_lib.validate import check_dataset

TODAY = "2026-01-01"


@pytest.fixture(scope="module")
def base(fixtures_dir) -> str:
    return (fixtures_dir / "csv" / "findings_40.csv").read_text(encoding="utf-8")


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1]  # the fixture ends with a newline


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _chunked(path, chunk_rows=7):
    """The chunked reader's records (frame, lines) concatenated, as the in-memory reader returns them."""
    chunks = list(read_csv_chunks(path, chunk_rows=chunk_rows, group_by=None))
    frame = pd.concat([f for f, _, _ in chunks], ignore_index=True)
    lines = [int(x) for _, ls, _ in chunks for x in ls]
    return frame.astype(object).where(frame.notna(), None), lines


def _same_as_chunked(path, read):
    frame, lines = _chunked(path)
    pd.testing.assert_frame_equal(frame, read.frame, check_dtype=False)
    assert lines == read.lines.tolist()


def _error(path) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        read_table_csv(path)
    return info.value


# ------------------------------------------------------------------------------------------------------
# runaway quote
# ------------------------------------------------------------------------------------------------------
def test_runaway_quote_is_an_error_naming_the_line_where_it_opened(tmp_path, base):
    lines = _lines(base)
    # line 6 (record 5): the title opens a quote that is never closed on its line; the next quoted title
    # (line 8) "closes" it: 2 records would be swallowed into one cell, and the parity of every later
    # quote inverted. The file is rejected (documented choice), naming line 6 and the rule.
    lines[5] = 'A1,10.0.0.5,443,tcp,nessus:1005,"Title 5 unterminated,high'
    path = _write(tmp_path, "findings.csv", ("\n".join(lines) + "\n").encode())
    err = _error(path)
    assert err.rule == "runaway_quote" and err.line == 6
    assert str(err).startswith(f"{path}: line 6: a quote opens a cell") and "[runaway_quote]" in str(err)
    # the chunked reader raises the same error, before any chunk
    with pytest.raises(InputFileError, match="line 6: a quote opens") as info:
        _chunked(path)
    assert info.value.rule == "runaway_quote"
    # and the file-level check names file, line and rule
    check = open_table(tmp_path, "findings")
    v = pd.concat(check.violations)
    assert v[["file", "row", "rule"]].values.tolist() == [["findings.csv", 6, "runaway_quote"]]
    assert check.read is None and len(check.frame) == 0 and "runaway_quote" in RULES


def test_quote_open_at_end_of_file_is_an_error(tmp_path, base):
    lines = _lines(base)
    lines[38] = 'A2,10.0.0.38,443,tcp,nessus:1038,"never closed,high'  # line 39, then 2 plain lines
    path = _write(tmp_path, "f.csv", ("\n".join(lines) + "\n").encode())
    err = _error(path)
    assert (err.rule, err.line) == ("runaway_quote", 39) and "never closes" in str(err)


def test_quoted_cell_on_several_lines_is_kept_with_its_line(tmp_path, base):
    lines = _lines(base)
    lines[3] = 'A3,10.0.0.3,3389,tcp,nessus:1003,"two\nlines, really",high'  # legitimate multi-line cell
    path = _write(tmp_path, "f.csv", ("\n".join(lines) + "\n").encode())
    read = read_table_csv(path)
    assert len(read.frame) == read.n_records == 40
    assert read.frame.loc[2, "title"] == "two\nlines, really"
    assert read.lines.tolist()[:4] == [2, 3, 4, 6]  # the record after the cell starts one line later
    _same_as_chunked(path, read)


def test_literal_quote_inside_an_unquoted_cell_is_not_a_runaway(tmp_path, base):
    lines = _lines(base)
    lines[2] = 'A2,10.0.0.2,443,tcp,nessus:1002,Apache 2.4" version,high'
    path = _write(tmp_path, "f.csv", ("\n".join(lines) + "\n").encode())
    read = read_table_csv(path)
    assert len(read.frame) == read.n_records == 40 and read.frame.loc[1, "title"] == 'Apache 2.4" version'
    _same_as_chunked(path, read)


# ------------------------------------------------------------------------------------------------------
# huge cell: no field-size limit below the file size
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("multiline", [False, True])
def test_cell_over_128_kib_is_kept(tmp_path, base, multiline):
    lines = _lines(base)
    big = "x" * (200 * 1024)
    lines[10] = f'A2,10.0.0.10,443,tcp,nessus:1010,"{big}",high'
    if multiline:  # forces the csv-module path (a quoted cell on two lines)
        lines[20] = 'A0,10.0.0.20,443,tcp,nessus:1020,"a\nb",high'
    path = _write(tmp_path, "f.csv", ("\n".join(lines) + "\n").encode())
    read = read_table_csv(path)
    assert len(read.frame) == 40 and len(read.frame.loc[9, "title"]) == len(big)
    _same_as_chunked(path, read)


# ------------------------------------------------------------------------------------------------------
# line ends and encodings
# ------------------------------------------------------------------------------------------------------
def test_cr_only_line_ends_old_mac_excel(tmp_path, base):
    path = _write(tmp_path, "f.csv", base.replace("\n", "\r").encode("mac_roman"))
    read = read_table_csv(path)
    assert read.line_end == "CR" and len(read.frame) == read.n_records == 40
    assert read.lines.tolist() == list(range(2, 42))
    _same_as_chunked(path, read)


def test_utf16_tab_separated_with_bom_excel_unicode_text(tmp_path, base):
    text = (
        base.replace(", with", " with")
        .replace('"', "")
        .replace(",", "\t")
        .replace("\n", "\r\n")
        .replace("Title 1\t", "Hôpital 1\t")
    )
    path = _write(tmp_path, "f.csv", b"\xff\xfe" + text.encode("utf-16-le"))
    read = read_table_csv(path)
    assert (read.encoding, read.delimiter, read.had_bom, read.line_end) == ("utf-16", "\t", True, "CRLF")
    assert len(read.frame) == 40 and read.frame.loc[1, "title"] == "Hôpital 1"
    assert read.frame.columns[0] == "audit_id"
    _same_as_chunked(path, read)


def test_utf8_bom_and_cp1252_are_detected_and_reported(tmp_path, base):
    text = base.replace("Title 2,", "Établissement œuvre 2,")
    bom = read_table_csv(_write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + text.encode("utf-8")))
    assert (bom.encoding, bom.had_bom, bom.frame.columns[0]) == ("utf-8-sig", True, "audit_id")
    assert bom.frame.loc[2, "title"] == "Établissement œuvre 2"
    _same_as_chunked(tmp_path / "bom.csv", bom)
    legacy = read_table_csv(_write(tmp_path, "cp.csv", text.encode("cp1252")))
    assert legacy.encoding == "cp1252" and legacy.frame.loc[2, "title"] == "Établissement œuvre 2"
    assert legacy.issues == []
    _same_as_chunked(tmp_path / "cp.csv", legacy)


def test_utf8_bom_followed_by_latin1_bytes_is_read_as_latin1(tmp_path, base):
    text = base.replace("Title 2,", "Hôpital Sainte-Thérèse 2,").replace("Title 4,", "Crèche 4,")
    path = _write(tmp_path, "f.csv", b"\xef\xbb\xbf" + text.encode("latin-1"))
    read = read_table_csv(path)  # no decode error naming no file: the bytes decide, the BOM is reported
    assert read.had_bom and read.encoding in {"cp1252", "latin_1", "iso8859_15"}
    assert [(i["line"], i["rule"]) for i in read.issues] == [(1, "bad_encoding")]
    assert "UTF-8 BOM" in read.issues[0]["message"]
    assert (
        read.frame.loc[2, "title"] == "Hôpital Sainte-Thérèse 2" and read.frame.loc[4, "title"] == "Crèche 4"
    )
    _same_as_chunked(path, read)


def test_stray_byte_in_utf8_file_stays_utf8_with_a_warning(tmp_path, base):
    text = base.replace("Title 1,", "Établissement 1,").replace("Title 7,", "Clinique Hélène 7,")
    data = text.encode("utf-8").replace(b"Title 5,", b"Title\xff 5,")  # line 7
    path = _write(tmp_path, "f.csv", data)
    read = read_table_csv(path)
    assert read.encoding == "utf-8"  # never re-decoded as cp1252 ("Ã‰tablissement")
    assert (
        read.frame.loc[1, "title"] == "Établissement 1" and read.frame.loc[7, "title"] == "Clinique Hélène 7"
    )
    assert read.frame.loc[5, "title"] == "Title\ufffd 5" and len(read.frame) == 40
    assert [(i["line"], i["column"], i["rule"]) for i in read.issues] == [(7, "title", "bad_encoding")]
    (tmp_path / "ds").mkdir()
    _write(tmp_path / "ds", "findings.csv", data)
    v = pd.concat(open_table(tmp_path / "ds", "findings").violations)
    hit = v[v["rule"] == "bad_encoding"]
    assert hit[["file", "row", "column", "severity"]].values.tolist() == [
        ["findings.csv", 7, "title", "warning"]
    ]
    _same_as_chunked(path, read)


def test_one_decoding_helper(tmp_path):
    from cyberobs_lib.disclosure._extract import decode_text
    from cyberobs_lib.scanners.tabular import detect_encoding as scanner_encoding

    data = "Établissement;é\n".encode() + b"\xff\n"
    assert detect_encoding(data).name == "utf-8" and decode_bytes(data)[0].startswith("Établissement")
    assert decode_text(data) == decode_bytes(data)[0]  # mostly UTF-8: one bad byte, not Latin-1 mojibake
    assert scanner_encoding(_write(tmp_path, "s.csv", data)) == "utf-8-sig"
    utf16 = "a\tb\r\nHôpital\té\r\n"
    assert decode_bytes(utf16.encode("utf-16"))[0] == decode_text(utf16.encode("utf-16")) == utf16
    legacy = "Hôpital d’Aulnay – Œuvre\n".encode("cp1252")
    assert decode_text(legacy) == decode_bytes(legacy)[0] == "Hôpital d’Aulnay – Œuvre\n"
    for codec in ("utf-16-le", "utf-16-be", "utf-32"):  # what a viewer also reads (disclosure check only)
        assert decode_text(utf16.encode(codec)) == utf16


# ------------------------------------------------------------------------------------------------------
# header
# ------------------------------------------------------------------------------------------------------
def test_duplicated_column_is_an_error_naming_both(tmp_path):
    path = _write(tmp_path, "establishments.csv", b"finess,category_code,FINESS\n010000024,355,010000032\n")
    err = _error(path)
    assert err.rule == "duplicate_column" and err.line == 1
    assert "'finess' and 'FINESS'" in str(err) and str(path) in str(err)
    check = open_table(tmp_path, "establishments")
    v = pd.concat(check.violations)
    assert v[["file", "row", "rule"]].values.tolist() == [["establishments.csv", 1, "duplicate_column"]]
    assert "duplicate_column" in RULES
    with pytest.raises(InputFileError, match="duplicate_column"):
        _chunked(path)


# ------------------------------------------------------------------------------------------------------
# control characters
# ------------------------------------------------------------------------------------------------------
def test_nul_and_control_characters_are_removed_with_a_warning(tmp_path, base):
    data = base.encode().replace(b"10.0.0.3,", b"10.0.\x000.3,").replace(b"Title 8,", b"Title\x07 8,")
    (tmp_path / "ds").mkdir()
    path = _write(tmp_path / "ds", "findings.csv", data)
    read = read_table_csv(path)
    assert read.frame.loc[3, "host"] == "10.0.0.3" and read.frame.loc[8, "title"] == "Title 8"
    assert not read.frame.map(lambda x: isinstance(x, str) and ("\x00" in x or "\x07" in x)).any().any()
    got = [(i["line"], i["column"], i["rule"]) for i in read.issues]
    assert got == [(5, "host", "control_character"), (10, "title", "control_character")]
    v = pd.concat(open_table(path.parent, "findings").violations)
    hit = v[v["rule"] == "control_character"]
    assert hit[["file", "row", "column"]].values.tolist() == [
        ["findings.csv", 5, "host"],
        ["findings.csv", 10, "title"],
    ]
    assert set(hit["severity"]) == {"warning"} and "U+0000" in hit["message"].iloc[0]
    report: dict = {}
    list(read_arrow_chunks(path, group_by=None, report=report))
    assert [(i["line"], i["rule"]) for i in report["issues"]] == [
        (5, "control_character"),
        (10, "control_character"),
    ]
    _same_as_chunked(path, read)


# ------------------------------------------------------------------------------------------------------
# files that are not readable CSV files
# ------------------------------------------------------------------------------------------------------
@pytest.fixture
def dataset(tmp_path, fixtures_dir):
    folder = tmp_path / "ds"
    shutil.copytree(fixtures_dir / "datasets" / "clean", folder)
    return folder


def _file_rules(check, name):
    v = check.violations
    return v.loc[v["file"] == name, ["rule", "severity"]].values.tolist(), v.loc[v["file"] == name, "message"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_unreadable_and_never_opened(dataset):
    (dataset / "findings.csv").unlink()
    os.mkfifo(dataset / "findings.csv")  # opening it would block forever
    rules, messages = _file_rules(check_dataset(dataset, today=TODAY), "findings.csv")
    assert ["unreadable_file", "error"] in rules and messages.str.contains("FIFO").any()
    with pytest.raises(InputFileError, match="FIFO"):
        _chunked(dataset / "findings.csv")


def test_empty_file_and_directory_are_unreadable(dataset):
    (dataset / "hosts.csv").write_bytes(b"")
    (dataset / "findings.csv").unlink()
    (dataset / "findings.csv").mkdir()
    check = check_dataset(dataset, today=TODAY)
    rules, messages = _file_rules(check, "hosts.csv")
    assert (
        rules == [["unreadable_file", "error"]] and messages.str.contains("hosts.csv: line 1: is empty").all()
    )
    rules, messages = _file_rules(check, "findings.csv")
    assert ["unreadable_file", "error"] in rules and messages.str.contains("is a directory").any()


def test_missing_findings_and_no_scans_folder(dataset):
    (dataset / "findings.csv").unlink()
    assert not (dataset / "scans").exists()
    rules, messages = _file_rules(check_dataset(dataset, today=TODAY), "findings.csv")
    assert rules == [["missing_file", "error"]] and messages.str.contains("findings.csv or a scans/").all()
    with pytest.raises(InputFileError) as info:
        read_table_csv(dataset / "findings.csv")
    assert info.value.rule == "missing_file" and "findings.csv" in str(info.value)


# ------------------------------------------------------------------------------------------------------
# accounting: records counted from the bytes, independently of the parser
# ------------------------------------------------------------------------------------------------------
def test_records_counted_from_the_bytes_blank_lines_listed(tmp_path, base):
    lines = _lines(base)
    lines[4:4] = ["", "  ", ",,,,,,", '"",""']  # blank records: lines 5-8; and an empty last line
    lines[12] = 'A3,10.0.0.9,3389,tcp,nessus:1009,"multi\nline",high'
    path = _write(tmp_path, "f.csv", ("\n".join(lines) + "\n\n").encode())
    read = read_table_csv(path)
    assert read.n_records == len(read.frame) == 40
    assert read.blank_lines == [5, 6, 7, 8, 47]
    _same_as_chunked(path, read)


def test_parser_losing_a_record_is_an_error(tmp_path, base, monkeypatch):
    path = _write(tmp_path, "f.csv", base.encode())
    real = io_mod._read_fast

    def lossy(*args, **kwargs):
        got = real(*args, **kwargs)
        return None if got is None else (got[0].drop(index=18).reset_index(drop=True), got[1])

    monkeypatch.setattr(io_mod, "_read_fast", lossy)
    monkeypatch.setattr(io_mod, "_read_with_csv_module", _lossy_csv(io_mod._read_with_csv_module))
    err = _error(path)
    assert (
        err.rule == "record_count"
        and err.line == 20
        and "returned 39 records where the bytes hold 40" in str(err)
    )


def _lossy_csv(real):
    def lossy(*args, **kwargs):
        frame, starts, header = real(*args, **kwargs)
        return frame.drop(index=18).reset_index(drop=True), starts[:18] + starts[19:], header

    return lossy


def test_one_delimiter_sniffer_keeps_both_tie_rules():
    """io.sniff_delimiter decides as the ingest reader and the FINESS extract reader did before it."""
    import itertools

    from cyberobs_lib.io import sniff_delimiter

    def ingest_rule(line: str) -> str:  # most frequent; ',' wins a tie; none -> ','
        counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
        best = max(counts, key=lambda d: (counts[d], d == ","))
        return best if counts[best] > 0 else ","

    def finess_rule(line: str) -> str:  # most frequent, ';' then ',' then tab on a tie
        counts = {d: line.count(d) for d in (";", ",", "\t")}
        return max(counts, key=counts.get)

    lines = ["".join(p) for n in range(4) for p in itertools.product("a,;\t|", repeat=n)]
    assert len(lines) == 156
    assert [sniff_delimiter(x) for x in lines] == [ingest_rule(x) for x in lines]
    assert [sniff_delimiter(x, (";", ",", "\t")) for x in lines] == [finess_rule(x) for x in lines]
