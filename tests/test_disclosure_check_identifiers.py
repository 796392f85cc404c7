"""check-disclosure finds the dataset's identifiers however they are written and wherever they are.

Every value planted here is fictional: FINESS numbers with a valid Luhn key (A=1, B=2; e.g. 014053177:
0+(1·2)+4+(0·2)+5+(3·2)+1+(7·2→5)+7 = 30), IP addresses of the RFC 5737 / RFC 3849 documentation ranges,
hosts under ``.example`` (RFC 2606). 192.0.2.44 is 3221226028 as a 32-bit integer (192·2^24 + 2·2^8 + 44)
and C000022C in hexadecimal.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.disclosure import check_disclosure

IDENTIFIERS = {
    "finess": {"014053177", "2A9999901"},
    "ip_address": {"192.0.2.44", "2001:db8:85a3::8a2e:370:7334"},
    "hostname": {"vpn.ch-fictiville.example"},
    "name": {"Clinique des Tilleuls Bleus"},
    "audit_id": {"A000119-01", "A000119-02", "AUD2A9999901"},
    "incident_id": {"INC-000007-01"},
}


def write(folder: Path, relative: str, content: str | bytes) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def hits_of(folder: Path) -> pd.DataFrame:
    return check_disclosure(folder, identifiers=IDENTIFIERS)


def only(hits: pd.DataFrame, file: str) -> list[tuple[str, str, str]]:
    """``(location, kind, rule)`` of the hits in one file."""
    part = hits[hits["file"] == file]
    return sorted(part[["location", "kind", "rule"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("014053177", "finess_listed"),
        ("01 40 53 17 7", "finess_listed_separated"),
        ("0140.53177", "finess_listed_separated"),
        ("01-40-53-17-7", "finess_listed_separated"),
        ("14 053 177", "finess_listed_separated"),
        ("14053177", "finess_listed_without_leading_zero"),
        ("0014053177", "finess_listed_zero_padded"),
        ("1.4053177E+07", "finess_listed_scientific"),
        ("AUD014053177", "finess_listed_in_token"),
        ("2a9999901", "finess_listed"),
    ],
)
def test_finess_in_any_notation(tmp_path, text, rule):
    write(tmp_path, "notes.txt", f"header\nsee {text} here\n")
    hits = hits_of(tmp_path)
    assert ("line 2", "finess", rule) in only(hits, "notes.txt")
    assert text not in hits.to_csv()


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("192.0.2.44", "ip_listed"),
        ("3221226028", "ip_listed_as_integer"),
        ("0xC000022C", "ip_listed_as_hex"),
        ("192.000.002.044", "ip_listed_other_notation"),
        ("0300.0.2.054", "ip_listed_other_notation"),  # octal octets, as inet_aton reads them
        ("192-0-2-44", "ip_listed_other_notation"),
        ("44.2.0.192.in-addr.arpa", "ip_listed_reversed"),
        ("::ffff:c000:22c", "ip_listed_in_ipv6"),
        ("2001:DB8:85A3:0:0:8A2E:370:7334", "ip_listed"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip_listed"),
    ],
)
def test_ip_addresses_in_any_notation(tmp_path, text, rule):
    write(tmp_path, "notes.txt", f"host {text}\n")
    assert ("line 1", "ip_address", rule) in only(hits_of(tmp_path), "notes.txt")


@pytest.mark.parametrize(
    ("text", "kind", "rule"),
    [
        ("VPN.CH-FICTIVILLE.EXAMPLE", "hostname", "hostname_listed"),
        ("smtp.vpn.ch-fictiville.example", "hostname", "hostname_listed"),
        ("vpn[.]ch-fictiville[.]example", "hostname", "hostname_listed"),
        ("A000119-01", "audit_id", "audit_id_listed"),
        ("a00011901", "audit_id", "audit_id_listed"),
        ("audit_A000119_02", "audit_id", "audit_id_listed"),
        ("A000119", "audit_id", "audit_id_stem_listed"),
        ("AUD2A9999901", "audit_id", "audit_id_listed"),
        ("inc-000007-01", "incident_id", "incident_id_listed"),
    ],
)
def test_hostnames_and_ids(tmp_path, text, kind, rule):
    write(tmp_path, "notes.txt", f"x {text} y\n")
    assert ("line 1", kind, rule) in only(hits_of(tmp_path), "notes.txt")


def test_tags_and_markdown_marks_between_the_characters(tmp_path):
    # A browser shows "014053177" and "Clinique des Tilleuls Bleus": the check reads what it shows.
    write(
        tmp_path,
        "page.html",
        "<html><body>\n<p>FINESS 0140<b></b>53177</p>\n<p>Clinique des <em>Tilleuls</em> Bl<span>eus</span></p>\n"
        "<p>vpn.ch-<!-- x -->fictiville.example</p>\n<p>19&#50;.0.2.44</p>\n</body></html>",
    )
    write(tmp_path, "notes.md", "# Title\n\n0140**53177** and Clinique des Tilleu<i></i>ls Bleus\n")
    write(
        tmp_path,
        "zero_width.txt",
        "0140\u200b53177\n0140\u00ad53177\nfull width \uff10\uff11\uff14\uff10\uff15\uff13\uff11\uff17\uff17\n",
    )
    hits = hits_of(tmp_path)
    page = only(hits, "page.html")
    assert ("line 2", "finess", "finess_listed") in page
    assert ("line 3", "name", "name_listed") in page
    assert ("line 4", "hostname", "hostname_listed") in page
    assert ("line 5", "ip_address", "ip_listed") in page
    notes = only(hits, "notes.md")
    assert ("line 3", "finess", "finess_listed") in notes and ("line 3", "name", "name_listed") in notes
    assert [(where, k) for where, k, _ in only(hits, "zero_width.txt")] == [
        ("line 1", "finess"),
        ("line 2", "finess"),
        ("line 3", "finess"),
    ]


def test_split_runs_encoded_urls_and_embedded_data(tmp_path):
    import base64

    # SVG text in runs, Word-like XML runs, a percent-encoded URL, a CSV embedded as a data: URI,
    # a FINESS inside a longer number.
    write(tmp_path, "figure.svg", "<svg><text><tspan>0140</tspan><tspan>53177</tspan></text></svg>\n")
    write(tmp_path, "document.xml", "<w:p><w:r><w:t>A0001</w:t></w:r><w:r><w:t>19-01</w:t></w:r></w:p>\n")
    write(tmp_path, "links.md", "[x](https://example.org/?q=%30%31%34%30%35%33%31%37%37)\n")
    table = base64.b64encode(b"group,host\nCH,vpn.ch-fictiville.example\n").decode()
    write(tmp_path, "page.html", f'<html><body><a href="data:text/csv;base64,{table}">csv</a></body></html>')
    write(tmp_path, "numbers.txt", "ref 99014053177\n")
    hits = hits_of(tmp_path)
    assert ("line 1", "finess", "finess_listed") in only(hits, "figure.svg")
    assert ("line 1", "audit_id", "audit_id_listed") in only(hits, "document.xml")
    assert ("line 1", "finess", "finess_listed") in only(hits, "links.md")
    assert only(hits, "page.html") == [
        ("embedded data 1: line 2, column host", "hostname", "hostname_listed")
    ]
    assert only(hits, "numbers.txt") == [("line 1", "finess", "finess_listed_in_number")]


def test_utf16_and_bom_text_files(tmp_path):
    write(tmp_path, "utf16.txt", "\ufeffsee 014053177\r\n".encode("utf-16-le"))
    write(tmp_path, "utf16be_nobom.csv", "group,note\nCH,192.0.2.44\n".encode("utf-16-be"))
    write(tmp_path, "bom.csv", "\ufeffgroup,note\nCH,A000119-01\n".encode())
    write(tmp_path, "blob.bin", b"\x00\x01" + "host 192.0.2.44".encode("utf-16-le") + b"\xff")
    hits = hits_of(tmp_path)
    assert only(hits, "utf16.txt") == [("line 1", "finess", "finess_listed")]
    assert only(hits, "utf16be_nobom.csv") == [("line 2, column note", "ip_address", "ip_listed")]
    assert only(hits, "bom.csv") == [("line 2, column note", "audit_id", "audit_id_listed")]
    assert only(hits, "blob.bin") == [("bytes", "ip_address", "ip_listed")]


def test_inside_archives(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deep/table.csv", "group,host\nCH,vpn.ch-fictiville.example\n")
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w:gz") as tar:
        data = inner.getvalue()
        info = tarfile.TarInfo("bundle/inner.zip")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    write(tmp_path, "export.tar.gz", outer.getvalue())
    write(tmp_path, "notes.txt.gz", gzip.compress("see 014053177\n".encode("utf-16")))
    write(tmp_path, "renamed.dat", inner.getvalue())  # a zip whatever its name
    hits = hits_of(tmp_path)
    assert only(hits, "export.tar.gz") == [
        (
            "member export.tar: member bundle/inner.zip: member deep/table.csv: line 2, column host",
            "hostname",
            "hostname_listed",
        )
    ]
    assert only(hits, "notes.txt.gz") == [("member notes.txt: line 1", "finess", "finess_listed")]
    assert ("member deep/table.csv: line 2, column host", "hostname", "hostname_listed") in only(
        hits, "renamed.dat"
    )


def test_archive_beyond_the_limits_is_not_verified(tmp_path):
    write(tmp_path, "bomb.gz", gzip.compress(b"0" * (3 << 20)))
    pd.DataFrame({"x": ["0" * 1000] * 3000}).to_excel(tmp_path / "big.xlsx", index=False)  # 3 MB of cells
    hits = check_disclosure(tmp_path, identifiers=IDENTIFIERS, archive_limit=1 << 20)
    assert hits[["file", "kind"]].values.tolist() == [["big.xlsx", "unreadable"], ["bomb.gz", "unreadable"]]
    assert hits["rule"].str.startswith("archive_limit").all()


def test_tables_of_every_format(tmp_path):
    frame = pd.DataFrame(
        {"group": ["CH", "EHPAD"], "note": ["ok", "A000119-02"], "n_establishments": [12, 30]}
    )
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.json", orient="records")
    with pd.ExcelWriter(tmp_path / "t.xlsx") as xl:
        frame.to_excel(xl, sheet_name="first", index=False)
        frame.assign(note=["3221226028", "x"]).to_excel(xl, sheet_name="second", index=False)
    cell = {
        "cell_type": "code",
        "metadata": {},
        "execution_count": 1,
        "source": "df",
        "outputs": [
            {
                "output_type": "execute_result",
                "execution_count": 1,
                "metadata": {},
                "data": {"text/html": frame.to_html(), "text/plain": "..."},
            }
        ],
    }
    write(
        tmp_path,
        "nb.ipynb",
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}),
    )
    hits = hits_of(tmp_path)
    assert ("line 3, column note", "audit_id", "audit_id_listed") in only(hits, "t.parquet")
    assert ("JSON $ line 3, column note", "audit_id", "audit_id_listed") in only(hits, "t.json")
    assert ("sheet 'first' line 3, column note", "audit_id", "audit_id_listed") in only(hits, "t.xlsx")
    assert ("sheet 'second' line 2, column note", "ip_address", "ip_listed_as_integer") in only(
        hits, "t.xlsx"
    )
    assert (
        "cell 1 output 1 text/html table 1 (line 1) line 3, column note",
        "audit_id",
        "audit_id_listed",
    ) in only(hits, "nb.ipynb")


def test_workbook_parts_outside_the_cells_and_unknown_files(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "t"
    sheet["A1"] = "link"
    sheet["A1"].hyperlink = "https://vpn.ch-fictiville.example/admin"  # a target in the sheet's .rels
    sheet.oddHeader.center.text = "audit A000119-01"  # a header printed on every page
    book.save(tmp_path / "book.xlsx")
    write(
        tmp_path,
        "export.dat",
        b"\x00\x01" + "Clinique des Tilleuls Bleus".replace("i", "\u00ef").encode() + b"\xff",
    )
    hits = hits_of(tmp_path)
    kinds = {(k, r) for _, k, r in only(hits, "book.xlsx")}
    assert {("hostname", "hostname_listed"), ("audit_id", "audit_id_listed")} <= kinds
    assert [k for _, k, _ in only(hits, "export.dat")] == ["name"]


def test_a_stem_shared_by_a_whole_campaign_is_not_an_identifier(tmp_path):
    campaign = {"audit_id": {f"AUD-2024-{i:04d}" for i in range(40)}}
    write(tmp_path, "notes.txt", "campaign AUD-2024, audit AUD-2024-0007\n")
    hits = check_disclosure(tmp_path, identifiers=campaign)
    assert hits[["location", "rule"]].values.tolist() == [["line 1", "audit_id_listed"]]
    # An establishment's stem with underscores is one (A000119 of A000119_01).
    write(tmp_path, "notes.txt", "establishment A000119 again\n")
    hits = check_disclosure(tmp_path, identifiers={"audit_id": {"A000119_01", "A000119_02"}})
    assert hits[["location", "rule"]].values.tolist() == [["line 1", "audit_id_stem_listed"]]


def test_identifiers_are_never_printed_back(tmp_path):
    write(tmp_path, "a.txt", "014053177 192.0.2.44 A000119-01 Clinique des Tilleuls Bleus INC-000007-01\n")
    write(tmp_path, "A000119-01.csv", "vpn.ch-fictiville.example,x\n1,2\n")
    text = hits_of(tmp_path).to_csv(index=False)
    for value in ("014053177", "192.0.2.44", "A000119-01", "Tilleuls", "INC-000007-01", "fictiville"):
        assert value not in text


def test_clean_text_passes(tmp_path):
    # Pseudonyms, p-values, years, negative numbers, dates, versions, numbers of the right length.
    write(
        tmp_path,
        "notes.md",
        "Pseudonyms E1a2b3c4d5 and Ed7bf7100db; p = 0.0140531770, 1.4e-07, -0.0833333; years 2023-2025;\n"
        "A000120-01 is not listed; 14053178 and 014053178 are not listed; 3221226029 is not an address we know;\n"
        "matplotlib v1.2.3.4 and v2.0.1.9, 2025-03-01T12:30:45, 10.5 %, 12 345 findings, IC 0.0714792 – 0.590725\n"
        "colour #c000022c (a CSS colour, not an address in hexadecimal)\n",
    )
    write(
        tmp_path,
        "tables/indicators.csv",
        "indicator,group,period,n_establishments,value,effect\nno_protection,CH,2025,8,0.25,-0.0833333\n",
    )
    assert hits_of(tmp_path).empty


def test_a_nine_digit_article_number_in_a_source_address_is_not_a_finess():
    """The national series cites https://www.lemagit.fr/actualites/366554855/… : a number that passes the
    FINESS key inside a web address is an article number; the same number in text, or a FINESS of the
    dataset's list inside an address, is still found."""
    from cyberobs_lib.disclosure._detectors import IdentifierIndex, _find_finess

    url = "https://www.lemagit.fr/actualites/366554855/Cybersecurite-en-sante"
    assert _find_finess(f"source: {url}", IdentifierIndex()) == []
    assert [h.rule for h in _find_finess(f"{url} ; 366554855", IdentifierIndex())] == ["finess_pattern_luhn"]
    listed = IdentifierIndex(finess=frozenset({"366554855"}))
    assert [h.rule for h in _find_finess(url, listed)] == ["finess_listed"]
