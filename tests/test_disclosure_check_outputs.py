"""check-disclosure flags outputs unsafe to open: spreadsheet formulas and live markup from data.

OWASP "CSV Injection": a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is run by
spreadsheets unless neutralised (a leading ``'``, or the ``quotePrefix`` style of an xlsx cell). Live
markup: a ``<script>`` inside a notebook cell or output of an nbconvert page (the template's own scripts
sit in ``<head>``), an ``on*`` attribute, a ``javascript:`` URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import openpyxl
import pandas as pd
import pytest
from nbconvert import HTMLExporter

from cyberobs_lib.disclosure import check_disclosure


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def found(folder: Path, kind: str) -> list[tuple[str, str, str]]:
    hits = check_disclosure(folder)
    return sorted(
        hits.loc[hits["kind"] == kind, ["file", "location", "rule"]].itertuples(index=False, name=None)
    )


def test_csv_cells_a_spreadsheet_would_run(tmp_path):
    write(
        tmp_path,
        "tables/t.csv",
        "group,value,note\n"
        '"=HYPERLINK(""http://x"",""y"")",-0.5,ok\n'
        "CH,+0.25,@SUM(A1)\n"
        '\'=neutralised,-1e-05,"\tstarts with a tab"\n'
        "-,−0.5,+33 1 23 45 67 89\n",
    )
    assert found(tmp_path, "formula") == [
        ("tables/t.csv", "line 2, column group", "formula_text"),
        ("tables/t.csv", "line 3, column note", "formula_text"),
        ("tables/t.csv", "line 4, column note", "formula_text"),
        ("tables/t.csv", "line 5, column note", "formula_text"),
    ]


def test_xlsx_formula_cells_and_formula_text(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "indicators"
    sheet.append(["group", "value"])
    sheet.append(['=HYPERLINK("http://x","y")', 0.5])  # stored as a formula
    sheet.append(["CH", -0.5])  # a negative number: fine
    text = sheet.cell(4, 1, "@SUM(A1)")
    text.data_type = "s"  # text that starts like a formula, no quotePrefix
    quoted = sheet.cell(5, 1, "=1+1")
    quoted.data_type = "s"
    quoted.quotePrefix = True  # shown as text by spreadsheets
    book.save(tmp_path / "tables.xlsx")
    assert found(tmp_path, "formula") == [
        ("tables.xlsx", "sheet 'indicators' line 2, column group", "formula_cell"),
        ("tables.xlsx", "sheet 'indicators' line 4, column group", "formula_text"),
    ]


def test_pandas_workbook_of_neutralised_text_passes(tmp_path):
    frame = pd.DataFrame({"group": ["'=HYPERLINK(1)", "CH"], "value": [-0.5, 1.0]})
    frame.to_excel(tmp_path / "tables.xlsx", index=False)
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert check_disclosure(tmp_path).empty


def _page(outputs: list[dict], markdown: str = "# Title") -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), nbformat.v4.new_code_cell("x", outputs=outputs)]
    body, _ = HTMLExporter(template_name="lab", exclude_input=True).from_notebook_node(nb)
    return body


def _html_output(html: str) -> dict:
    return nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "x"})


@pytest.fixture(scope="module")
def clean_page() -> str:
    table = pd.DataFrame(
        {"group": ["CH", "<script>x</script>"], "n": [12, 30]}
    ).to_html()  # escaped by pandas
    return _page(
        [_html_output(table)], markdown="# Title\n\nA <b>bold</b> word and [a link](https://example.org)."
    )


def test_clean_nbconvert_page_passes(tmp_path, clean_page):
    assert "<script" in clean_page  # the template's own scripts
    write(tmp_path, "report.html", clean_page)
    assert check_disclosure(tmp_path).empty


@pytest.mark.parametrize(
    ("markup", "rule"),
    [
        ("<script>alert(1)</script>", "script_in_cell"),
        ('<img src="x" onerror="alert(1)">', "event_attribute"),
        ('<a href="javascript:alert(1)">x</a>', "script_url"),
        ('<iframe src="https://example.org"></iframe>', "active_element"),
    ],
)
def test_live_markup_in_an_output_area(tmp_path, markup, rule):
    page = _page([_html_output(f"<table><tr><td>{markup}</td></tr></table>")])
    write(tmp_path, "report.html", page)
    needle = "alert(1)" if "alert" in markup else "<iframe"
    line = next(i for i, text in enumerate(page.split("\n"), start=1) if needle in text)
    assert found(tmp_path, "live_markup") == [("report.html", f"line {line}", rule)]


def test_live_markup_in_notebooks_markdown_and_svg(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Family <span onmouseover='x()'>CH</span>"),
        nbformat.v4.new_code_cell(
            "x", outputs=[nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)"})]
        ),
    ]
    write(tmp_path, "nb.ipynb", json.dumps(nbformat.from_dict(nb)))
    write(
        tmp_path, "figures/f.svg", '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    )
    assert found(tmp_path, "live_markup") == [
        ("figures/f.svg", "line 1", "script_in_cell"),
        ("nb.ipynb", "cell 1 source line 1", "event_attribute"),
        ("nb.ipynb", "cell 2 output 1 application/javascript line 1", "script_output"),
    ]
