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


def _pdf(stream_dict: bytes, payload: bytes) -> bytes:
    import zlib

    body = zlib.compress(payload)
    return (b"%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\n2 0 obj <<" + stream_dict
            + b"/Filter /FlateDecode/Length " + str(len(body)).encode() + b">> stream\n" + body
            + b"\nendstream endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n")  # fmt: skip


def test_image_pixels_that_spell_digits_are_not_text(tmp_path):
    """An image's pixels may read as a run of digits once inflated (grey levels 48-57 are '0'-'9'): image
    streams are pixels, not text (figures are checked as PNG apart); a false FINESS failed a real run.
    The same bytes in any other stream are read."""
    pixels = (FINESS.encode() + b"\x00") * 8
    image = b"/Type /XObject/Subtype /Image/Width 80/Height 1/ColorSpace /DeviceGray/BitsPerComponent 8"
    (tmp_path / "figure.pdf").write_bytes(_pdf(image, pixels))
    assert check_disclosure(tmp_path).empty
    (tmp_path / "figure.pdf").write_bytes(_pdf(b"/Type /EmbeddedFile", pixels))
    hits = check_disclosure(tmp_path)
    assert (hits["kind"] == "finess").any()
