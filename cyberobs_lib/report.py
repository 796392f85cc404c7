"""Presentation helpers for notebooks: save tidy tables and figures into a run folder, translate labels.

Only this module (and plotting functions) formats for readers; analysis functions return raw numbers.
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
    """Write a tidy table to ``<output_dir>/tables/<name>.csv``; does nothing when output_dir is empty."""
    if not output_dir:
        return None
    return write_csv_atomic(frame, Path(output_dir) / "tables" / f"{name}.csv")


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
