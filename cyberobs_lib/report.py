"""Presentation helpers for notebooks: publish and save tidy tables and figures into a run folder, and show
them to readers in their language.

:func:`publish_table` is the one way a notebook saves a result table: in a published run it applies the
table's declared publication policy (:mod:`cyberobs_lib.disclosure.policy`) with the run's disclosure
ledger; :func:`save_table` writes a table as given (confidential reports). Both neutralise text cells a
spreadsheet would read as formulas; the written tables keep full precision and raw codes.

What a reader sees goes through :func:`show` (a captioned table of a few columns headed in words, values
and numbers in the reader's language and locale, HTML-escaped; :func:`with_interval` writes two bounds as one
column) and :func:`show_figure` (a figure with its title as alternative text). Words come from the catalog
(:mod:`cyberobs_lib.l10n`: :func:`label` for names of things, ``l10n.text`` for sentences); analysis
functions return raw numbers.
"""

from __future__ import annotations

import hashlib
from html import escape
from pathlib import Path

import pandas as pd

from cyberobs_lib.disclosure import tables as disclosure_tables
from cyberobs_lib.disclosure.ledger import open_ledger
from cyberobs_lib.disclosure.policy import policy_for
from cyberobs_lib.disclosure.tables import apply_policy, neutralise_formulas, run_settings
from cyberobs_lib.io import write_csv_atomic
from cyberobs_lib.l10n import (
    CATALOG,
    check_lang,
    fmt_date,
    fmt_number,
    fmt_percent,
    fmt_pvalue,
    text,
    with_interval,  # noqa: F401 - re-exported (a reader's interval column)
)
from cyberobs_lib.l10n import label as l10n_label

#: key -> {"fr": ..., "en": ...}: the catalog of every reader text (``cyberobs_lib/data/labels.csv``, read by
#: :mod:`cyberobs_lib.l10n`).
LABELS: dict[str, dict[str, str]] = CATALOG


def label(key: object, lang: str = "fr") -> str:
    """The reader-facing label of a column or a value (a family, a severity); the key itself when the catalog
    has none (:func:`cyberobs_lib.l10n.label`).

    >>> label("rows_read", "fr"), label("rows_read", "en"), label("unknown_key")
    ('lignes lues', 'rows read', 'unknown_key')
    """
    return l10n_label(key, lang)


def labelled(frame: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """A copy of ``frame`` with reader-facing column headings (for display only; saved tables keep keys)."""
    return frame.rename(columns={c: label(c, lang) for c in frame.columns})


def mask_values(frame: pd.DataFrame, columns: tuple[str, ...] = ("value",), lang: str = "fr") -> pd.DataFrame:
    """Blank cells that may hold identifying input values (FINESS, hosts) before publication: the word
    "(masqué)" / "(masked)" in ``lang`` instead."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].where(out[col].isna(), text("table.masked", lang))
    return out


def save_table(frame: pd.DataFrame, name: str, output_dir: str | Path | None) -> Path | None:
    """Write a tidy table to ``<output_dir>/tables/<name>.csv`` as given (no disclosure control: confidential
    reports), text cells that a spreadsheet would read as formulas neutralised
    (:func:`~cyberobs_lib.disclosure.tables.neutralise_formulas`); does nothing when output_dir is empty."""
    if not output_dir:
        return None
    return write_csv_atomic(neutralise_formulas(frame), Path(output_dir) / "tables" / f"{name}.csv")


def publish_table(
    frame: pd.DataFrame,
    name: str,
    output_dir: str | Path | None,
    *,
    published: bool,
    min_cell: int,
    lang: str = "fr",
    write: bool = True,
) -> pd.DataFrame:
    """Apply the publication policy of table ``name``, write ``tables/<name>.csv`` and return it as published.

    Parameters
    ----------
    frame : DataFrame
        The table as computed; not modified.
    name : str
        Its name (``tables/<name>.csv``), declared in :data:`cyberobs_lib.disclosure.policy.POLICIES` for a
        published run.
    output_dir : path or None
        The run's output folder; empty: nothing written (the policy still applies, with an in-memory
        ledger, so that an interactive session shows what a run would publish).
    published : bool
        A published run: the policy applies. The run marker ``<output_dir>/.cyberobs/run.json`` written
        by the runner wins when it says ``published: true``, and its ``min_cell`` when larger.
    min_cell : int
        Fewest establishments behind a published cell; a published run refuses one below
        :data:`~cyberobs_lib.disclosure.policy.POLICY_MIN_CELL`.
    lang : str
        Language of the run (``fr`` or ``en``); the written table keeps its keys and codes.
    write : bool, default True
        False: apply the policy and return the table without writing it (to show part of a table that
        a later cell publishes whole).

    Returns
    -------
    DataFrame
        Confidential run: ``frame`` unchanged. Published run: the same rows, ``suppressed`` True where a
        hidden population cell (primary or secondary, decided once for the whole run) is described, its
        counts and values empty, statistics over hidden groups withheld. Show and plot this table.

    Raises
    ------
    UnknownTableError
        A published run saves a table of undeclared kind.
    PerEstablishmentTableError, IdentifyingColumnError
        A published run saves rows per establishment or an identifying column.
    MinCellBelowFloorError
        A published run with ``min_cell`` below the floor.
    DisclosureError
        A hidden cell could only be protected by un-publishing a cell an earlier table published.

    Examples
    --------
    >>> t = pd.DataFrame({"indicator": "has_kev", "group": ["CH", "CHU/CHR", "EHPAD", "all"], "period": "2025",
    ...                   "n_establishments": [9, 3, 46, 58], "n_audits": [10, 4, 56, 70],
    ...                   "value": [0.9, 1.0, 0.5, 0.57], "ci_low": 0.1, "ci_high": 0.9, "ci_method": "wilson"})
    >>> publish_table(t, "indicators", "", published=True, min_cell=5)[["group", "n_establishments", "suppressed"]]
         group  n_establishments  suppressed
    0       CH              <NA>        True
    1  CHU/CHR              <NA>        True
    2    EHPAD                46       False
    3      all                58       False
    >>> from cyberobs_lib.disclosure import forget_ledger; forget_ledger("")
    """
    if lang not in ("fr", "en"):
        raise ValueError(f"lang must be 'fr' or 'en', got {lang!r}")
    published, min_cell = run_settings(output_dir, published=published, min_cell=min_cell)
    out = frame
    if published:
        policy = policy_for(name)
        ledger = open_ledger(output_dir, min_cell=min_cell)
        out = apply_policy(frame, policy, ledger, min_cell=min_cell, name=name)
        ledger.save()
    if write:
        save_table(out, name, output_dir)
    return out


def published_groups(
    output_dir: str | Path | None,
    population: str,
    dimension: str,
    period: object,
    counts,
    *,
    published: bool = True,
    min_cell: int | None = None,
    lang: str = "fr",
) -> list[str]:
    """The groups of a population a published table may show, decided for the whole run (see
    :func:`cyberobs_lib.disclosure.tables.published_groups`): compute global tests and models over them.
    ``lang`` is accepted (unused) so that one dict of keywords serves this and :func:`publish_table`."""
    return disclosure_tables.published_groups(
        output_dir, population, dimension, period, counts, published=published, min_cell=min_cell
    )


def register_population(
    output_dir: str | Path | None,
    population: str,
    dimension: str,
    cells: pd.DataFrame,
    *,
    published: bool = True,
    min_cell: int | None = None,
    lang: str = "fr",
    **columns: str,
) -> pd.DataFrame:
    """Every cell of a population (groups × periods) decided at once for the run (see
    :func:`cyberobs_lib.disclosure.tables.register_population`; ``columns``: ``group``, ``period``, ``count``,
    ``additive``). ``lang`` is accepted (unused), as in :func:`published_groups`."""
    return disclosure_tables.register_population(
        output_dir, population, dimension, cells, published=published, min_cell=min_cell, **columns
    )


def save_figure(fig, name: str, output_dir: str | Path | None, *, dpi: int = 144) -> Path | None:
    """Write a figure to ``<output_dir>/figures/<name>.png`` with no identifying metadata."""
    if not output_dir:
        return None
    path = Path(output_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


def figure_text(fig) -> str:
    """The words of a figure a screen reader should say: its titles (suptitle, then each Axes' titles), else
    its axis labels."""
    parts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        parts += [ax.get_title(loc) for loc in ("left", "center", "right")]
    parts = [p for p in parts if p]
    if not parts:
        parts = [t for ax in fig.axes for t in (ax.get_ylabel(), ax.get_xlabel()) if t]
    return " ; ".join(dict.fromkeys(" ".join(p.split()) for p in parts))


def full_table(name: str, lang: str = "fr") -> str:
    """The caption line pointing to the full version of a published table in ``tables/``.

    >>> full_table("tests_cohorts", "en")
    'Full table (every column): tables/tests_cohorts.csv'
    """
    return text("table.full", lang, file=f"tables/{name}.csv")


def show_figure(fig, alt: str | None = None) -> None:
    """Display a figure in a notebook as a PNG with its alternative text (``alt``, default: its titles, in the
    figure's language: what a screen reader says instead of an English default), then close it.

    The output holds the PNG three ways: ``text/html`` (an ``<img>`` with its escaped ``alt``: what the HTML
    export and the PDF show, instead of nbconvert's English "No description has been provided for this
    image"), ``image/png`` with ``alt`` in its metadata (JupyterLab, the notebook's readers) and ``text/plain``
    (the alternative text itself).
    """
    import base64
    import io

    import matplotlib.pyplot as plt
    from IPython.display import display

    alt = alt or figure_text(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    tag = f'<img src="data:image/png;base64,{png}" alt="{escape(alt, quote=True)}" style="max-width: 100%;">'
    display(
        {"text/html": tag, "image/png": png, "text/plain": alt},
        raw=True,
        metadata={"image/png": {"alt": alt}},
    )


#: Columns whose values are names of things (families, severities, measures, statuses) shown by their label.
LABELLED_VALUES = (
    "group",
    "family",
    "level",
    "reference",
    "severity",
    "metric",
    "statistic",
    "outcome",
    "test",
    "scan_status",
    "indicator",
    "state",
    "status",
    "term",
)
#: Columns holding p-values (written ``< 0,001`` / ``0,031``).
PVALUE_COLUMNS = ("p_value", "p_adjusted", "overdispersion_p", "p")
#: Columns of intervals written by :func:`with_interval` (aligned and kept on one line as numbers).
INTERVAL_COLUMNS = ("ci",)
#: Most columns :func:`show` puts in a reader's table when they are chosen (``columns=``): a wider table does
#: not fit a page (A4 portrait, 62 rem on screen); the full table is in ``tables/``.
MAX_COLUMNS = 8

#: What :func:`show` accepts as a column format (``formats={"value": "percent"}``); ``number:2``: 2 decimals,
#: ``percent:0``: no decimal, ``label:<prefix>``: the catalog label of ``<prefix><value>``.
FORMATS = ("number", "int", "percent", "pvalue", "date", "bool", "label", "text")


def format_value(value: object, spec: str, lang: str = "fr") -> str:
    """One cell written for the reader by a format of :data:`FORMATS` (missing values: empty).

    >>> format_value(0.308, "percent", "fr"), format_value(1230, "number", "en"), format_value(True, "bool", "fr")
    ('30,8\xa0%', '1\u202f230', 'oui')
    >>> format_value(3e-9, "pvalue", "en"), format_value("critical", "label", "fr"), format_value("x", "text")
    ('< 0.001', 'critique', 'x')
    """
    kind, _, arg = spec.partition(":")
    if kind not in FORMATS:
        raise ValueError(f"unknown format {spec!r}: one of {', '.join(FORMATS)} (with ':<argument>')")
    try:
        missing = value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        missing = False
    if missing:
        return ""
    if kind == "number":
        return fmt_number(value, lang, decimals=int(arg) if arg else None)
    if kind == "int":
        return fmt_number(round(float(value)), lang)
    if kind == "percent":
        return fmt_percent(value, lang, decimals=int(arg) if arg else 1)
    if kind == "pvalue":
        return fmt_pvalue(value, lang, prefix=False)
    if kind == "date":
        return fmt_date(value, lang)
    if kind == "bool":
        return label("yes" if bool(value) else "no", lang)
    if kind == "label":
        prefixed = f"{arg}{value}"
        return label(prefixed, lang) if arg and prefixed in LABELS else label(value, lang)
    return str(value)


def _auto_format(column: str, values: pd.Series) -> str:
    """The format :func:`show` gives a column not named in ``formats``."""
    if column in PVALUE_COLUMNS:
        return "pvalue"
    if column in LABELLED_VALUES:
        return "label"
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    known = values.dropna()
    if len(known) and all(isinstance(v, bool) for v in known):
        return "bool"
    return "text"


def show(
    frame: pd.DataFrame,
    lang: str = "fr",
    *,
    columns=None,
    caption: str | None = None,
    denominator: str | None = None,
    note: str | None = None,
    formats: dict | None = None,
    mark_secret: str | None = None,
    max_rows: int = 30,
    max_columns: int = MAX_COLUMNS,
    digits: int | None = None,
):
    """A table for a reader: a caption saying what it is and its denominator, few columns headed in words,
    values in the reader's language and numbers in the reader's locale. Cell text is HTML-escaped.

    Parameters
    ----------
    frame : DataFrame
        The table as computed (or as published); not modified.
    lang : str
        ``fr`` or ``en``.
    columns : list of str, or dict of column -> heading key, optional
        The columns shown, in order (at most ``max_columns``); a dict gives the catalog key of a heading
        (None: the column's own label). Default: every column, headed by its label (tables of the notebooks
        not converted yet; prefer choosing the columns: the full table is in ``tables/``).
    caption : str, optional
        What the table is (already in ``lang``, e.g. from :func:`cyberobs_lib.l10n.text`).
    denominator : str, optional
        What the counts and shares are out of; shown under the caption as "Dénominateur : …".
    note : str, optional
        A last line of the caption (a pointer to the full table in ``tables/``, a remark).
    formats : dict of column -> format, optional
        A format of :data:`FORMATS` (``"percent"``, ``"number:1"``, ``"label:rule."``…) or a function of the
        value giving its text. Default per column: p-values (:data:`PVALUE_COLUMNS`), labels of named values
        (:data:`LABELLED_VALUES`), yes / no for booleans, dates without time, locale numbers (3 significant
        digits).
    mark_secret : str, optional
        A shown column that says "secret statistique" in the rows the publication policy suppressed
        (``suppressed`` true), whose numbers are blank.
    max_rows : int
        Rows shown; the caption says when rows are left out.
    max_columns : int
        Most columns when ``columns`` is given (:data:`MAX_COLUMNS`).
    digits : int, optional
        Ignored (numbers have 3 significant digits unless a format says otherwise); kept for old calls.

    Returns
    -------
    pandas Styler (displayed by the notebook; ``.to_html()`` for a page).

    Examples
    --------
    >>> html = show(pd.DataFrame({"message": ["wrong root <script>alert(1)</script>"]}), "en").to_html()
    >>> "<script>" in html, "&lt;script&gt;" in html
    (False, True)
    >>> t = pd.DataFrame({"group": ["CH"], "value": [0.308], "n_establishments": [1230]})
    >>> html = show(t, "fr", columns=["group", "n_establishments", "value"], formats={"value": "percent"},
    ...             caption="Part", denominator="structures auditées").to_html()
    >>> "30,8\xa0%" in html and "1\u202f230" in html and "Dénominateur : structures auditées" in html
    True
    """
    check_lang(lang)
    if columns is None:
        chosen = {c: None for c in frame.columns}
    else:
        chosen = dict(columns) if isinstance(columns, dict) else {c: None for c in columns}
        missing = [c for c in chosen if c not in frame.columns]
        if missing:
            raise KeyError(f"show: no column {missing} in the table (columns: {list(frame.columns)})")
        if len(chosen) > max_columns:
            raise ValueError(
                f"show: {len(chosen)} columns do not fit a page (at most {max_columns}); show fewer and point "
                "to the full table in tables/"
            )
    total = len(frame)
    part = frame.head(max_rows)[list(chosen)]
    formats = dict(formats or {})
    cells = {}
    numeric = []
    for col in chosen:
        spec = formats.get(col) or _auto_format(col, part[col])
        if callable(spec):
            cells[col] = [("" if _is_missing(v) else str(spec(v))) for v in part[col]]
            continue
        cells[col] = [format_value(v, spec, lang) for v in part[col]]
        if spec.split(":")[0] in ("number", "int", "percent", "pvalue") or col in INTERVAL_COLUMNS:
            numeric.append(col)
    if mark_secret is not None and mark_secret not in cells:
        raise KeyError(f"show: mark_secret {mark_secret!r} is not a shown column")
    if mark_secret is not None and "suppressed" in frame.columns:
        hidden = frame["suppressed"].head(max_rows).astype("boolean").fillna(False).astype(bool).to_numpy()
        cells[mark_secret] = [
            text("fig.secret", lang) if h else v for h, v in zip(hidden, cells[mark_secret], strict=True)
        ]
    headings = [label(key or col, lang) for col, key in chosen.items()]
    shown = pd.DataFrame(cells, columns=list(chosen))
    shown.columns = headings
    styled = shown.style.hide(axis="index").format(na_rep="", escape="html")
    right = {h for h, c in zip(headings, chosen, strict=True) if c in numeric}
    left = [h for h in headings if h not in right]
    if right:
        styled = styled.set_properties(
            subset=sorted(right), **{"text-align": "right", "white-space": "nowrap"}
        )
    if left:
        styled = styled.set_properties(subset=left, **{"text-align": "left"})
    styled = styled.map_index(
        lambda h: f"text-align: {'right' if h in right else 'left'}; vertical-align: bottom;", axis="columns"
    )
    styled = styled.set_table_styles(
        [
            {
                "selector": "caption",
                "props": "caption-side: top; text-align: left; padding: 0.4em 0; font-weight: normal;",
            },
            {"selector": "", "props": "min-width: 30em; margin-bottom: 1em;"},
        ],
        overwrite=False,
    )
    lines = [f"<strong>{escape(caption)}</strong>"] if caption else []
    if denominator:
        lines.append(escape(text("table.denominator", lang, denominator=denominator)))
    if total > max_rows:
        lines.append(escape(text("table.first_rows", lang, shown=fmt_number(max_rows, lang),
                                 total=fmt_number(total, lang))))  # fmt: skip
    if total == 0:  # headings alone would read as a table that failed to print
        lines.append(escape(text("table.no_rows", lang)))
    if note:
        lines.append(escape(note))
    if lines:
        styled = styled.set_caption("<br>".join(lines))
    return styled.set_uuid(_table_id(headings, caption))


def _is_missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _table_id(headings: list[str], caption: str | None) -> str:
    """A stable id for a shown table's CSS (the same page for the same table, run after run)."""
    digest = hashlib.sha256("\x1f".join([caption or "", *headings]).encode("utf-8")).hexdigest()
    return f"cyberobs_{digest[:10]}"
