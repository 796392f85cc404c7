"""Presentation helpers for notebooks: publish and save tidy tables and figures into a run folder,
translate labels.

:func:`publish_table` is the one way a notebook saves a result table: in a published run it applies the
table's declared publication policy (:mod:`cyberobs_lib.disclosure.policy`) with the run's disclosure
ledger; :func:`save_table` writes a table as given (confidential reports). Both neutralise text cells a
spreadsheet would read as formulas. Only this module (and plotting functions) formats for readers;
analysis functions return raw numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cyberobs_lib.io import write_csv_atomic


def _load_labels() -> dict[str, dict[str, str]]:
    from cyberobs_lib.config import PACKAGE_DATA

    table = pd.read_csv(PACKAGE_DATA / "labels.csv", comment="#", dtype=str, keep_default_na=False)
    return {r.key: {"fr": r.fr, "en": r.en} for r in table.itertuples(index=False)}


#: key -> {"fr": ..., "en": ...}, from ``cyberobs_lib/data/labels.csv`` (one table for every label).
LABELS: dict[str, dict[str, str]] = _load_labels()


def label(key: str, lang: str = "fr") -> str:
    """The reader-facing label of a column or concept; the key itself when untranslated.

    >>> label("rows_read", "fr"), label("rows_read", "en"), label("unknown_key")
    ('lignes lues', 'rows read', 'unknown_key')
    """
    if lang not in ("fr", "en"):
        raise ValueError(f"lang must be 'fr' or 'en', got {lang!r}")
    return LABELS.get(key, {}).get(lang, key)


def labelled(frame: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """A copy of ``frame`` with reader-facing column headings (for display only; saved tables keep keys)."""
    return frame.rename(columns={c: label(c, lang) for c in frame.columns})


def mask_values(frame: pd.DataFrame, columns: tuple[str, ...] = ("value",)) -> pd.DataFrame:
    """Blank cells that may hold identifying input values (FINESS, hosts) before publication."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].where(out[col].isna(), "(masqué)")
    return out


def save_table(frame: pd.DataFrame, name: str, output_dir: str | Path | None) -> Path | None:
    """Write a tidy table to ``<output_dir>/tables/<name>.csv`` as given (no disclosure control: confidential
    reports), text cells that a spreadsheet would read as formulas neutralised
    (:func:`~cyberobs_lib.disclosure.tables.neutralise_formulas`); does nothing when output_dir is empty."""
    from cyberobs_lib.disclosure.tables import neutralise_formulas

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
    from cyberobs_lib.disclosure.ledger import open_ledger
    from cyberobs_lib.disclosure.policy import policy_for
    from cyberobs_lib.disclosure.tables import apply_policy, run_settings

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
    from cyberobs_lib.disclosure.tables import published_groups as decide

    return decide(output_dir, population, dimension, period, counts, published=published, min_cell=min_cell)


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
    from cyberobs_lib.disclosure.tables import register_population as decide

    return decide(output_dir, population, dimension, cells, published=published, min_cell=min_cell, **columns)


def save_figure(fig, name: str, output_dir: str | Path | None, *, dpi: int = 144) -> Path | None:
    """Write a figure to ``<output_dir>/figures/<name>.png`` with no identifying metadata."""
    if not output_dir:
        return None
    path = Path(output_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


#: Columns whose values are names of things (families, severities, measures) shown by their label.
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
)


def show(frame: pd.DataFrame, lang: str = "fr", *, digits: int = 3, max_rows: int = 30):
    """A reader-facing view of a table: labelled headings, no index, numbers to ``digits`` significant
    digits, p-values in scientific notation when small, booleans as yes / no and the values of the
    columns of :data:`LABELLED_VALUES` (families, severities, measures) in ``lang``, at most ``max_rows``
    rows (display only). Cell text is HTML-escaped.

    >>> html = show(pd.DataFrame({"message": ["wrong root <script>alert(1)</script>"]}), "en").to_html()
    >>> "<script>" in html, "&lt;script&gt;" in html
    (False, True)
    """
    frame = frame.head(max_rows)
    named = {c: frame[c].map(lambda v: label(v, lang) if isinstance(v, str) else v)
             for c in LABELLED_VALUES if c in frame.columns}  # fmt: skip
    frame = frame.assign(**named) if named else frame
    shown = labelled(frame, lang)
    formats = {}
    yes, no = label("yes", lang), label("no", lang)
    for col, src in zip(shown.columns, frame.columns, strict=True):
        if pd.api.types.is_bool_dtype(frame[src]):
            formats[col] = lambda v: "" if pd.isna(v) else yes if v else no
        elif pd.api.types.is_float_dtype(frame[src]):
            formats[col] = lambda v: (
                "" if pd.isna(v) else f"{v:.2e}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}g}"
            )
    # escape="html": a cell's text (a scanner's message, a file name, a title) is shown, never run as markup
    styled = shown.style.hide(axis="index").format(na_rep="", escape="html")
    return styled.format(formats, na_rep="", escape="html") if formats else styled
