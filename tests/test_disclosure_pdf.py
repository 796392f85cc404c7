"""check-disclosure reads a published PDF as its reader does: the text of its pages.

WeasyPrint (the annual summary's PDF) sets text in subset fonts: the raw content streams hold glyph
ids, not characters, so a FINESS number printed on a page is found only through text extraction.
"""

from __future__ import annotations

import pytest

from cyberobs_lib.disclosure import check_disclosure

pytest.importorskip("weasyprint")

#: a FINESS-shaped number with a valid check key (Luhn over its 9 digits), department 01
FINESS = "014000012"


def test_a_finess_printed_in_a_pdf_page_is_found(tmp_path):
    from weasyprint import HTML

    number = FINESS
    page = f'<html lang="fr"><body><h1>Synthèse</h1><p>Établissement {number} exposé.</p></body></html>'
    raw = HTML(string=page).write_pdf()
    assert number.encode() not in raw  # not findable in the bytes: glyph ids in a subset font
    (tmp_path / "summary.pdf").write_bytes(raw)
    hits = check_disclosure(tmp_path)
    found = hits[(hits["kind"] == "finess") & (hits["file"] == "summary.pdf")]
    assert not found.empty and found["location"].str.contains("page 1").any()


def test_a_clean_pdf_passes_and_a_damaged_one_is_not_a_crash(tmp_path):
    from weasyprint import HTML

    (tmp_path / "ok.pdf").write_bytes(HTML(string="<p>Un tiers des structures (33 %).</p>").write_pdf())
    assert check_disclosure(tmp_path).empty
    (tmp_path / "ok.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> trailer garbage")
    check_disclosure(tmp_path)  # read as bytes; no exception
