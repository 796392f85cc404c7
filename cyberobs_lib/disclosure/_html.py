"""HTML as a reader's browser sees it: visible text, tables, and markup that would run.

* :func:`visible_text` removes tags the way a browser joins text: inline elements (``<b>``, ``<span>``,
  comments...) vanish, so ``0140<b></b>53177`` reads ``014053177``; block elements and table cells become
  a barrier no identifier can span.
* :func:`parse_html` reads every ``<table>`` (header from ``<thead>``/``<th>``, ``colspan`` repeated) and
  every piece of live markup: ``<script>`` inside a notebook cell or output (the nbconvert template's own
  scripts sit in ``<head>``, outside any cell), any ``on*`` event attribute, ``javascript:``/``vbscript:``/
  ``data:text/html`` URLs, and ``<iframe>``, ``<object>``, ``<embed>``, ``<base>``, ``<form>``,
  ``<meta http-equiv=refresh>`` inside cells. In a fragment (a notebook output, Markdown) everything is
  inside a cell. Standard library :mod:`html.parser` only (no lxml or BeautifulSoup needed).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from cyberobs_lib.disclosure._detectors import CELL_BARRIER

#: Elements a browser renders inline: removing them joins the text on either side.
INLINE_TAGS = frozenset(
    "a abbr b bdi bdo cite code data del dfn em font i ins kbd mark q s samp small span strike strong sub "
    "sup time tt u var wbr nobr tspan textpath".split()
)
#: Elements whose content is not text a reader sees.
HIDDEN_CONTENT_TAGS = frozenset({"script", "style", "template", "noscript"})
VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
#: Class names of notebook cells and outputs (JupyterLab and classic nbconvert templates).
CELL_CLASSES = (
    "jp-Cell",
    "jp-OutputArea",
    "jp-RenderedHTMLCommon",
    "jp-MarkdownOutput",
    "output_area",
    "output_subarea",
    "rendered_html",
    "text_cell_render",
    "cell",
)
#: Elements that load or run something when they come from data.
ACTIVE_TAGS = frozenset(
    {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "form", "portal"}
)
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "xlink:href", "background", "poster", "data", "srcdoc", "lowsrc"}
)
_DANGEROUS_URL_RE = re.compile(r"^\s*(javascript|vbscript|livescript)\s*:|^\s*data\s*:\s*text/html", re.I)
_HIDDEN_BLOCK_RE = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TAG_RE = re.compile(r"<!--.*?-->|<(/?)([A-Za-z][A-Za-z0-9:-]*)\b[^>]*>", re.S)
#: Characters that render as nothing (zero-width spaces and joiners, soft hyphen, BOM).
INVISIBLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff]")


def visible_text(markup: str) -> str:
    """Text of an HTML document or fragment with tags removed, newlines kept in place.

    Inline tags and comments are removed (their newlines kept), other tags become
    :data:`~cyberobs_lib.disclosure._detectors.CELL_BARRIER`; entities are decoded, invisible
    characters dropped.

    Examples
    --------
    >>> visible_text("<td>0140<b></b>53177</td><td>CH&nbsp;X</td>").split("\\x1e")
    ['', '014053177', '', 'CH\\xa0X', '']
    """

    def replace(match: re.Match) -> str:
        newlines = "\n" * match.group(0).count("\n")
        name = (match.group(2) or "").lower().rsplit(":", 1)[-1]  # svg:tspan, w:r...
        if match.group(0).startswith("<!--") or name in INLINE_TAGS:
            return newlines
        return CELL_BARRIER + newlines

    # Style sheets and scripts are not shown (the text as written, scanned too, still holds them).
    markup = _HIDDEN_BLOCK_RE.sub(lambda m: CELL_BARRIER + "\n" * m.group(0).count("\n"), markup)
    return INVISIBLE_RE.sub("", html.unescape(_TAG_RE.sub(replace, markup)))


@dataclass
class HtmlTable:
    """Rows of one ``<table>`` (header first) and the source line where it starts."""

    line: int
    rows: list[list[str]] = field(default_factory=list)
    header_rows: int = 0


@dataclass
class Markup:
    """One piece of live markup: source line, rule (``script_in_cell``...) and what it is."""

    line: int
    rule: str
    detail: str


class _Parser(HTMLParser):
    def __init__(self, *, fragment: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.fragment = fragment
        self.tables: list[HtmlTable] = []
        self.markup: list[Markup] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, inside a cell)
        self._open_tables: list[dict] = []
        self._hidden = 0

    # -- element stack ------------------------------------------------------------------------------
    def _in_cell(self) -> bool:
        return self.fragment or (bool(self._stack) and self._stack[-1][1])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        classes = next((v or "" for k, v in attrs if k == "class"), "")
        in_cell = self._in_cell() or any(c in classes.split() for c in CELL_CLASSES)
        self._check_markup(tag, attrs, line, in_cell)
        if tag in HIDDEN_CONTENT_TAGS:
            self._hidden += 1
        if tag not in VOID_TAGS:
            self._stack.append((tag, in_cell))
        self._table_start(tag, attrs, line)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        classes = next((v or "" for k, v in attrs if k == "class"), "")
        in_cell = self._in_cell() or any(c in classes.split() for c in CELL_CLASSES)
        self._check_markup(tag, attrs, line, in_cell)
        self._table_start(tag, attrs, line)
        self._table_end(tag)

    def handle_endtag(self, tag: str) -> None:
        if any(t == tag for t, _ in self._stack):
            while self._stack:
                top, _ = self._stack.pop()
                if top in HIDDEN_CONTENT_TAGS:
                    self._hidden = max(0, self._hidden - 1)
                if top == tag:
                    break
        self._table_end(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden or not self._open_tables:
            return
        state = self._open_tables[-1]
        if state["cell"] is not None:
            state["cell"].append(data)

    # -- live markup --------------------------------------------------------------------------------
    def _check_markup(self, tag: str, attrs: list[tuple[str, str | None]], line: int, in_cell: bool) -> None:
        if tag == "script" and in_cell:
            self.markup.append(Markup(line, "script_in_cell", "<script> element"))
        if in_cell and (
            tag in ACTIVE_TAGS
            or (tag == "meta" and any(k == "http-equiv" and (v or "").lower() == "refresh" for k, v in attrs))
        ):
            self.markup.append(Markup(line, "active_element", f"<{tag}> element"))
        for name, value in attrs:
            if name.startswith("on"):
                self.markup.append(Markup(line, "event_attribute", f"<{tag} {name}=...>"))
            elif name in URL_ATTRIBUTES and value and _DANGEROUS_URL_RE.match(INVISIBLE_RE.sub("", value)):
                scheme = value.strip().split(":", 1)[0].lower()
                self.markup.append(Markup(line, "script_url", f"<{tag} {name}={scheme}:...>"))

    # -- tables -------------------------------------------------------------------------------------
    def _close_cell(self, state: dict) -> None:
        if state["cell"] is not None and state["row"] is not None:
            text = " ".join(INVISIBLE_RE.sub("", "".join(state["cell"])).split())
            extra = text if state["header_cell"] else ""  # a spanning heading names every column
            state["row"].extend([text] + [extra] * (state["span"] - 1))
        state["cell"] = None

    def _close_row(self, state: dict) -> None:
        self._close_cell(state)
        if state["row"] is not None:
            table: HtmlTable = state["table"]
            if state["in_head"] or (not table.rows and state["all_th"] and state["row"]):
                if len(table.rows) == table.header_rows:
                    table.header_rows += 1
            table.rows.append(state["row"])
        state["row"] = None

    def _table_start(self, tag: str, attrs: list[tuple[str, str | None]], line: int) -> None:
        if tag == "table":
            self._open_tables.append(
                {
                    "table": HtmlTable(line),
                    "row": None,
                    "cell": None,
                    "in_head": False,
                    "all_th": True,
                    "header_cell": False,
                    "span": 1,
                }
            )
            return
        if not self._open_tables:
            return
        state = self._open_tables[-1]
        if tag == "thead":
            state["in_head"] = True
        elif tag in ("tbody", "tfoot"):
            self._close_row(state)
            state["in_head"] = False
        elif tag == "tr":
            self._close_row(state)
            state["row"], state["all_th"] = [], True
        elif tag in ("td", "th"):
            if state["row"] is None:
                state["row"], state["all_th"] = [], True
            self._close_cell(state)
            state["cell"], state["header_cell"] = [], tag == "th"
            state["all_th"] = state["all_th"] and tag == "th"
            span = next((v for k, v in attrs if k == "colspan"), "1") or "1"
            state["span"] = min(int(span), 1000) if span.strip().isdigit() else 1
        elif tag == "br" and state["cell"] is not None:
            state["cell"].append(" ")

    def finish(self) -> None:
        """Close the parser and any table left open (an unclosed table still counts)."""
        self.close()
        while self._open_tables:
            self._table_end("table")

    def _table_end(self, tag: str) -> None:
        if not self._open_tables:
            return
        state = self._open_tables[-1]
        if tag in ("td", "th"):
            self._close_cell(state)
        elif tag == "tr":
            self._close_row(state)
        elif tag == "thead":
            self._close_row(state)
            state["in_head"] = False
        elif tag == "table":
            self._close_row(state)
            self._open_tables.pop()
            if state["table"].rows:
                self.tables.append(state["table"])


def merged_header(table: HtmlTable) -> list[list[str]]:
    """Rows of a table with its header rows merged into one (last non-empty heading of each column).

    pandas writes the column names in the first header row and the index name in a second one;
    a Styler writes one header row. Tables without a header keep their first row as the header.
    """
    if table.header_rows <= 1:
        return table.rows
    heads = table.rows[: table.header_rows]
    width = max(len(r) for r in heads)
    header = [""] * width
    for row in heads:
        for k, text in enumerate(row):
            if text:
                header[k] = text
    return [header, *table.rows[table.header_rows :]]


def parse_html(markup: str, *, fragment: bool = False) -> tuple[list[HtmlTable], list[Markup]]:
    """Tables and live markup of an HTML page (``fragment=False``) or of a piece of HTML from data.

    In a page, ``<script>`` and active elements count only inside notebook cells and outputs
    (:data:`CELL_CLASSES`); event attributes and script URLs count everywhere. In a fragment, everything
    counts.
    """
    parser = _Parser(fragment=fragment)
    parser.feed(markup)
    parser.finish()
    return sorted(parser.tables, key=lambda t: t.line), parser.markup
