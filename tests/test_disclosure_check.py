"""check-disclosure on doctored and clean report folders (cyberobs_lib.disclosure.check).

Every identifier planted here comes from the fictional dataset ``tests/fixtures/disclosure/dataset``
(see its README): FINESS keys computed with the Luhn rule (A=1, B=2) of domain.md, e.g. 759999907:
7 + 0 + 9 + (9·2→9) + 9 + (9·2→9) + 9 + (5·2→1) + 7 = 60 ≡ 0 mod 10; IP addresses from RFC 5737 /
RFC 3849 documentation ranges.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib.disclosure import (
    CHECK_COLUMNS,
    check_disclosure,
    identifiers_from_dataset,
    pseudonymize_columns,
)
from cyberobs_lib.disclosure._detectors import build_index, find_identifiers, finess_key_is_valid

IDENTIFYING = [
    "759999907",
    "2A9999901",
    "990000010",
    "339999906",
    "Clinique des Tilleuls Bleus",
    "vpn.clinique-tilleuls.example",
    "192.0.2.44",
    "198.51.100.7",
    "2001:db8:85a3::8a2e:370:7334",
]


@pytest.fixture(scope="module")
def identifiers(fixtures_dir) -> dict[str, set[str]]:
    return identifiers_from_dataset(fixtures_dir / "disclosure" / "dataset")


def png_bytes(*chunks: tuple[bytes, bytes]) -> bytes:
    """A valid 1×1 grey PNG with extra chunks before IDAT (PNG spec §5: length, type, data, CRC-32)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    body = b"".join(chunk(k, d) for k, d in chunks)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + body
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def notebook(cells: list[dict]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def write(folder: Path, relative: str, content: str | bytes) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def doctored(tmp_path) -> Path:
    """A report folder with one identifying value planted in each kind of file."""
    import openpyxl

    folder = tmp_path / "report"
    write(
        folder,
        "tables/indicators.csv",
        "indicator,group,period,n_establishments,n_audits,value,ci_low,ci_high,ci_method,suppressed\n"
        "no_protection,CH,2024,12,14,0.5,0.2,0.8,wilson,False\n"
        "no_protection,759999907,2024,1,1,1.0,,,wilson,False\n"  # FINESS in a group label, n = 1
        "no_protection,EHPAD,2024,,,,,,wilson,True\n",
    )  # suppressed and blank: fine
    write(
        folder, "tables/tests.csv", "test,group_a,group_b,n_a,n_b,statistic,p_value\nmw,CH,HAD,12,4,3.0,0.2\n"
    )
    write(
        folder,
        "overview.html",
        "<html><body><p>Worst: CLINIQUE DES TILLEULS&nbsp;BLEUS</p>"
        '<a href="https://vpn.clinique-tilleuls.example/login">portal</a></body></html>',
    )
    png_in_output = base64.b64encode(png_bytes((b"tEXt", b"Source\x00EJ 990000010"))).decode()
    write(
        folder,
        "cohort.ipynb",
        notebook(
            [
                {
                    "cell_type": "code",
                    "metadata": {},
                    "source": ["x = 1\n"],
                    "execution_count": 1,
                    "outputs": [
                        {
                            "output_type": "execute_result",
                            "execution_count": 1,
                            "metadata": {},
                            "data": {"text/plain": ["host   198.51.100.7\n"], "image/png": png_in_output},
                        }
                    ],
                },
            ]
        ),
    )
    write(
        folder,
        "figures/exposure.png",
        png_bytes(
            (b"tEXt", b"Comment\x00scanned 192.0.2.44"),
            (b"zTXt", b"Author\x00\x00" + zlib.compress(b"2A 999 990 1")),
        ),
    )
    write(folder, "manifest.json", json.dumps({"note": "gateway 2001:db8:85a3::8a2e:370:7334"}))
    write(folder, "figures/map.svg", '<svg><text x="0" y="0">Centre hospitalier de Fictiville</text></svg>')
    book = openpyxl.Workbook()
    book.active.title = "hosts"
    book.active.append(["group", "note"])
    book.active.append(["CH", "see mail.ch-fictiville.example"])
    book.properties.creator = "audit of 339999906"
    book.save(folder / "tables.xlsx")
    write(folder, "establishments/report_759999907.md", "confidential per-establishment summary\n")
    return folder


EXPECTED_HITS = {
    ("tables/indicators.csv", "finess"),
    ("tables/indicators.csv", "small_cell"),
    ("tables/tests.csv", "small_cell"),
    ("overview.html", "name"),
    ("overview.html", "hostname"),
    ("cohort.ipynb", "ip_address"),
    ("cohort.ipynb", "finess"),
    ("figures/exposure.png", "ip_address"),
    ("figures/exposure.png", "finess"),
    ("manifest.json", "ip_address"),
    ("figures/map.svg", "name"),
    ("tables.xlsx", "hostname"),
    ("tables.xlsx", "finess"),
    ("establishments/report_75….md", "finess"),
}


def test_doctored_folder_every_planted_value_found(doctored, identifiers):
    hits = check_disclosure(doctored, identifiers=identifiers)
    assert list(hits.columns) == list(CHECK_COLUMNS)
    assert set(hits[["file", "kind"]].itertuples(index=False, name=None)) == EXPECTED_HITS
    where = {(r.file, r.kind): r for r in hits.itertuples()}
    assert where[("tables/indicators.csv", "finess")].location == "line 3, column group"
    small = hits[hits["kind"] == "small_cell"]
    assert set(small.loc[small["file"] == "tables/indicators.csv", "value"]) == {
        "n_establishments=1",
        "n_audits=1",
    }
    assert where[("tables/tests.csv", "small_cell")].location == "line 2, column n_b"
    assert where[("figures/exposure.png", "ip_address")].location == "PNG tEXt 'Comment'"
    assert where[("figures/exposure.png", "finess")].location == "PNG zTXt 'Author'"
    assert where[("cohort.ipynb", "ip_address")].location.startswith("cell 1 output 1 text/plain")
    assert where[("cohort.ipynb", "finess")].location == "cell 1 output 1 PNG tEXt 'Source'"
    assert where[("tables.xlsx", "hostname")].location == "sheet 'hosts' line 2, column note"
    assert where[("establishments/report_75….md", "finess")].location == "file name"
    assert set(hits.loc[hits["kind"] == "ip_address", "rule"]) == {"ip_listed"}


def test_identifiers_never_printed_back(doctored, identifiers):
    hits = check_disclosure(doctored, identifiers=identifiers)
    text = hits.to_csv(index=False)
    for value in IDENTIFYING:
        assert value not in text
        assert value.upper() not in text
    assert hits.loc[hits["kind"] != "small_cell", "value"].str.fullmatch(r".{2}…").all()


def test_generic_patterns_without_identifiers(doctored):
    hits = check_disclosure(doctored)
    kinds = set(hits[["file", "kind"]].itertuples(index=False, name=None))
    # IPs and Luhn-valid FINESS are found by pattern alone; names and hostnames need the list;
    # 990000010 (department 99 does not exist) is found only when listed.
    assert ("figures/exposure.png", "ip_address") in kinds and ("manifest.json", "ip_address") in kinds
    assert ("tables/indicators.csv", "finess") in kinds and ("figures/exposure.png", "finess") in kinds
    assert ("cohort.ipynb", "finess") not in kinds
    assert not hits["kind"].isin(["name", "hostname"]).any()


def test_exclude_and_unreadable(doctored, identifiers):
    hits = check_disclosure(doctored, identifiers=identifiers, exclude=("figures", "tables/*.csv"))
    assert not hits["file"].str.startswith(("figures/", "tables/")).any()
    write(doctored, "broken.xlsx", b"not a zip")
    hits = check_disclosure(doctored, identifiers=identifiers)
    assert hits.loc[hits["file"] == "broken.xlsx", "kind"].tolist() == ["unreadable"]
    with pytest.raises(NotADirectoryError):
        check_disclosure(doctored / "nowhere")


def test_clean_folder_gives_zero_rows(tmp_path, identifiers):
    folder = tmp_path / "clean"
    # Two hidden groups: the margin gives their sum (8 establishments), not each of them.
    write(
        folder,
        "tables/indicators.csv",
        "indicator,group,period,n_establishments,n_audits,value,ci_low,ci_high,ci_method,suppressed\n"
        "no_protection,CH,2024,10,12,0.5,0.236593,0.763407,wilson,False\n"
        "no_protection,EHPAD,2024,,,,,,wilson,True\n"
        "no_protection,CHU,2024,,,,,,wilson,True\n"
        "no_protection,Private clinic,2024,7,7,0.428571,0.158219,0.749499,wilson,False\n"
        "no_protection,all,2024,25,30,0.44,0.266668,0.626693,wilson,False\n",
    )
    write(
        folder,
        "tables/tests.csv",
        "study,metric,test,group_a,group_b,n_a,n_b,statistic,p_value,effect_size,effect_size_kind\n"
        "cohorts,no_protection,fisher_exact,CH|Private clinic,,17,,,1,,\n"
        "cohorts,no_protection,fisher_exact,CH,Private clinic,10,7,,1,0.0714286,risk_difference\n"
        "cohorts,findings_per_host,mann_whitney,CH,Private clinic,10,7,-2.5,1.2e-05,-0.0833333,cliffs_delta\n",
    )
    key = b"test-key-0123456789abcdef"
    pseudonym = pseudonymize_columns(pd.DataFrame({"e": ["759999907"]}), ["e"], key=key)["e"].iloc[0]
    write(folder, "tables/notes.csv", f"year,note\n2024,outlier {pseudonym} left out\n2025,E1a2b3c4d5\n")
    write(
        folder,
        "notes.md",
        "Made with pandas 2.3.3, Python 3.11.2 and matplotlib v1.2.3.4; not an IP: 10.0.0.1.2.\n"
        "p = 0.759999907, SIRET 26010004500012, phone 0474454647, number 123456789, 2024-03-15 12:30:45\n"
        "MAC 00:1a:2b:3c:4d:5e, sha256 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\n"
        "localhost 127.0.0.1, any 0.0.0.0, mask 255.255.255.0, loopback ::1, EHPAD family, CH de la ville\n",
    )
    write(
        folder,
        "analysis.ipynb",
        notebook(
            [
                {
                    "cell_type": "code",
                    "metadata": {},
                    "source": "df.loc[::2]  # std::vector",
                    "execution_count": 1,
                    "outputs": [
                        {
                            "output_type": "stream",
                            "name": "stdout",
                            "text": "Software: Matplotlib version3.11.2",
                        }
                    ],
                },
            ]
        ),
    )
    write(
        folder,
        "figures/f.png",
        png_bytes((b"tEXt", b"Software\x00Matplotlib version3.11.2, https://matplotlib.org/")),
    )
    # SVG path data ("M1.4.1.9.1") looks like dotted numbers; real matplotlib figures (glyphs as paths).
    write(
        folder,
        "figures/icon.svg",
        '<svg viewBox="0 0 22 22"><path d="M20.2 11.8c-1.6 0 .4.1.9.1 1.3z"/></svg>',
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.bar(["CH", "EHPAD"], [0.5, 0.7])
    ax.set_title("Share without protection, 2024")
    fig.savefig(folder / "figures" / "bar.svg")
    fig.savefig(folder / "figures" / "bar.png")
    plt.close(fig)
    hits = check_disclosure(folder, identifiers=identifiers)
    assert hits.empty, hits.to_string()
    assert list(hits.columns) == list(CHECK_COLUMNS)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("pandas 2.3.3", []),
        ("10.0.0.1.2", []),
        ("version 1.10.100.2000", []),
        ("at 10.0.0.1.", ["10.0.0.1"]),
        ("ip=192.168.1.254,next", ["192.168.1.254"]),
        ("999.1.1.1 and 256.1.1.1", []),
        ("2001:db8::1:2", ["2001:db8::1:2"]),
        ("12:30:45", []),
    ],
)
def test_ip_patterns(text, found):
    hits = find_identifiers(text, build_index(None))
    assert [h.value for h in hits if h.kind == "ip_address"] == found


def test_finess_patterns():
    # Luhn: 759999907 valid (see module docstring), 759999908 not; 2A9999901 valid with A = 1.
    assert finess_key_is_valid("759999907") and not finess_key_is_valid("759999908")
    assert finess_key_is_valid("2A9999901") and not finess_key_is_valid("75999990")
    index = build_index({"finess": ["339999906"]})
    cases = {
        "759999907": ["759999907"],  # pattern: valid department and key
        "759999908": [],  # bad key
        "009999999": [],  # department 00 does not exist
        "x0.759999907": [],  # fraction of a decimal
        "1759999907": [],  # inside a longer number
        "75 999 990 7": ["75 999 990 7"],  # display format NN NNN NNN N
        "39999906": [],  # 8 digits, and "039999906" is not listed
        "339999906.0": ["339999906"],  # listed, written as a float
    }
    for text, found in cases.items():
        assert [h.value for h in find_identifiers(text, index) if h.kind == "finess"] == found, text
    # A listed FINESS with a leading zero that a spreadsheet dropped.
    zero = build_index({"finess": ["010000024"]})
    assert [h.rule for h in find_identifiers("id 10000024", zero)] == ["finess_listed_without_leading_zero"]


def test_names_and_hostnames_matching_rules():
    index = build_index(
        {
            "name": ["EHPAD Les Glycines déjà vues", "CH", "EHPAD"],
            "hostname": ["Mail.CH-Fictiville.example.", "localhost"],
        }
    )
    found = lambda text: [h.kind for h in find_identifiers(text, index)]  # noqa: E731
    assert found("l'ehpad les glycines-deja VUES a été audité") == ["name"]  # case, accents, hyphens
    assert found("EHPAD les glycines") == []  # a part of a name is not the name
    assert found("CH and EHPAD families") == []  # too short / one generic word: ignored
    assert found("mx: smtp.mail.ch-fictiville.example") == ["hostname"]  # sub-domain of a listed host
    assert found("ch-fictiville.example") == []  # parent domain alone is not listed
    assert found("mail.ch-fictiville.examples") == []  # whole labels only
    assert found("localhost") == []
    with pytest.raises(KeyError, match="unknown identifier kinds"):
        build_index({"siret": ["1"]})


def test_identifiers_from_dataset_reads_latin1_semicolon_bom_and_parquet(fixtures_dir, tmp_path, identifiers):
    # establishments.csv is ;-separated Latin-1 with upper-case headers (see fixture README).
    # audits.csv (UTF-8 with BOM) adds 130000003.
    assert identifiers["finess"] == {"759999907", "990000010", "2A9999901", "339999906", "130000003"}
    assert "EHPAD Les Glycines déjà vues" in identifiers["name"]
    assert identifiers["hostname"] == {
        "vpn.clinique-tilleuls.example",
        "intranet.ch-fictiville.example",
        "mail.ch-fictiville.example",
    }
    assert identifiers["ip_address"] == {"192.0.2.44", "198.51.100.7", "2001:db8:85a3::8a2e:370:7334"}
    pd.DataFrame({"audit_id": ["A1"], "host": ["db.example.org"]}).to_parquet(tmp_path / "findings.parquet")
    assert identifiers_from_dataset(tmp_path)["hostname"] == {"db.example.org"}
    with pytest.raises(NotADirectoryError):
        identifiers_from_dataset(tmp_path / "missing")


def test_identifiers_from_dataset_latin1_byte_after_the_sniffed_block(tmp_path):
    # The encoding is guessed from the first 64 KiB; a Latin-1 byte further down must not be lost.
    rows = "".join(f"75{i:07d},Etablissement numero {i},500\n" for i in range(3000))  # ~100 KB of ASCII
    (tmp_path / "establishments.csv").write_bytes(
        ("finess,name,category_code\n" + rows).encode()
        + "339999906,Hôpital de Fictiville,355\n".encode("latin-1")
    )
    found = identifiers_from_dataset(tmp_path)
    assert "Hôpital de Fictiville" in found["name"] and len(found["finess"]) == 3001


def test_line_numbers_wrapped_names_and_cell_barrier(tmp_path, identifiers):
    folder = tmp_path / "r"
    # A name wrapped over two lines of Markdown is found, on the line where it starts.
    write(folder, "a.md", "# Title\n\nThe worst score went to Clinique des\nTilleuls Bleus this year.\n")
    # Two adjacent cells that together spell a name are not a name; each cell is located.
    write(
        folder,
        "t.csv",
        "left,right,host\nClinique des,Tilleuls Bleus,ok\nx,y,smtp.mail.ch-fictiville.example\n",
    )
    hits = check_disclosure(folder, identifiers=identifiers)
    assert hits[["file", "location", "kind"]].values.tolist() == [
        ["a.md", "line 3", "name"],
        ["t.csv", "line 3, column host", "hostname"],
    ]


@pytest.mark.parametrize(
    ("codec", "tail"),
    [
        ("cp1252", b""),  # a legacy file: ’ is 0x92 in CP1252, a C1 control in Latin-1
        ("utf-16", b""),  # Excel "Unicode text"
        ("utf-8", b"339999914;Bad \xff byte;355\n"),  # mostly UTF-8: one bad byte, not a Latin-1 re-read
    ],
)
def test_identifiers_from_dataset_decode_as_ingest_does(tmp_path, codec, tail):
    from cyberobs_lib.io import read_table_csv

    text = "finess;name;category_code\n759999907;Hôpital d’Aulnay;355\n"
    path = tmp_path / "establishments.csv"
    path.write_bytes(text.encode(codec) + tail)
    names = identifiers_from_dataset(tmp_path)["name"]
    assert "Hôpital d’Aulnay" in names
    assert names == set(read_table_csv(path).frame["name"].dropna())
