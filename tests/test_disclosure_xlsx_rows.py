"""The regular-expression xlsx reader of the disclosure check gives the rows openpyxl gives."""

from __future__ import annotations

import datetime as dt

import numpy as np
import openpyxl
import pandas as pd
import pytest

from cyberobs_lib.disclosure import _xlsx_rows
from cyberobs_lib.disclosure._extract import table_rows
from cyberobs_lib.disclosure._xlsx_rows import xlsx_rows


@pytest.fixture
def fallbacks(monkeypatch) -> list[str]:
    """Sheets the fast reader handed to openpyxl (reason of each)."""
    seen: list[str] = []
    original = _xlsx_rows._sheet_rows

    def spy(*args):
        try:
            return original(*args)
        except _xlsx_rows._Unsupported as error:
            seen.append(str(error))
            raise

    monkeypatch.setattr(_xlsx_rows, "_sheet_rows", spy)
    return seen


def test_pandas_workbook_same_rows_without_openpyxl(tmp_path, fallbacks):
    path = tmp_path / "tables.xlsx"
    frame = pd.DataFrame(
        {
            "finess": ["010000024", "2A0000012", None],
            "name": ["CH d'Ajaccio & Bastia <nord>", "Hôpital\r\nline two", ""],
            "n_establishments": [3, np.nan, 12],
            "share": [0.1, 1e-05, 123456789.125],
            "big": [10**15, -7, 0],
            "suppressed": [True, False, None],
        }
    )
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        frame.to_excel(xl, sheet_name="indicators", index=False)
        pd.DataFrame({"only": []}).to_excel(xl, sheet_name="empty", index=False)
        frame.iloc[:0].to_excel(xl, sheet_name="header only", index=False)
    assert list(xlsx_rows(path)) == list(table_rows(path))
    assert fallbacks == []


def test_shared_strings_gaps_and_formulas(tmp_path, fallbacks):
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "hand made"
    sheet["A1"], sheet["C1"] = "host", "n_a"
    sheet["B3"], sheet["C3"] = "vpn.chu-x.fr", 4
    sheet["A6"] = "=SUM(C1:C3)"  # no cached value: empty with data_only, as in openpyxl
    sheet["E2"] = False
    book.create_sheet("second")["B2"] = "10.1.2.3"
    book.save(path)
    rows = list(xlsx_rows(path))
    assert rows == list(table_rows(path))
    assert rows[0][1][2] == ["", "vpn.chu-x.fr", "4", "", ""]  # row 3, padded to column E
    assert fallbacks == []


def test_dates_and_rich_text_go_to_openpyxl(tmp_path, fallbacks):
    path = tmp_path / "dates.xlsx"
    frame = pd.DataFrame({"audit_date": [dt.datetime(2025, 3, 1), dt.datetime(2025, 4, 2)], "n": [1, 2]})
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        frame.to_excel(xl, sheet_name="dated", index=False)
        frame[["n"]].to_excel(xl, sheet_name="plain", index=False)
    rows = list(xlsx_rows(path))
    assert rows == list(table_rows(path))
    assert rows[0][1][1][0] == "2025-03-01 00:00:00"
    assert fallbacks == ["date style"]  # the dated sheet only
