"""Published tables as the disclosure check sees them: one vocabulary whatever file they came from.

A table read from a CSV, a sheet of a workbook, an HTML ``<table>`` of a notebook page (French or English
column headings), a Markdown table or a list of JSON records becomes a :class:`Table`: its header mapped
back to the column keys of the data contract (``établissements`` → ``n_establishments``, through
``cyberobs_lib/data/labels.csv``), its cells as strings. :func:`parse_number` reads the numbers as a
reader would (``0,25``, ``25 %``, ``1 234``, ``−0.5``) and says how precise they are.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

from cyberobs_lib.l10n import CATALOG as LABELS
from cyberobs_lib.text import fold

#: Columns counting establishments, or units nested in establishments (audits, findings, pairs): a value
#: ``0 < n < min_cell`` means fewer than ``min_cell`` establishments behind the cell (data-contract.md,
#: result tables; tests.csv ``n_a``/``n_b``; model tables ``n``, ``n_family``, ``n_reference``; incidents
#: tables ``declaring_structures``, ``events``; summaries ``n_pairs``).
COUNT_COLUMNS = frozenset(
    {
        "n_establishments",
        "n_a",
        "n_b",
        "n",
        "n_family",
        "n_reference",
        "n_exposed",
        "n_unexposed",
        "declaring_structures",
        "n_declaring",
        "n_audited",
        "audited",
        "n_pairs",
        "n_audits",
        "events",
        "events_exposed",
        "events_unexposed",
        "crude_n_known",
    }
)
#: Counts of the public FINESS registry (eligible establishments of a family): public, never small cells.
PUBLIC_COUNT_COLUMNS = frozenset({"eligible", "n_eligible", "n_establishments_all", "national_declarations"})
#: Indicators whose rows carry registry counts, and which columns hold them: eligible establishments of a
#: family (incidents tables), the eligible establishments behind an audit coverage share (the share itself
#: and the audits are not public).
PUBLIC_INDICATORS: dict[str, frozenset[str]] = {
    "eligible_establishments": frozenset({"n_establishments", "value"}),
    "eligible": frozenset({"n_establishments", "value"}),
    "audit_coverage": frozenset({"n_establishments"}),
}
#: Numbers that a suppressed row may keep: they describe the model, the test or the reference group,
#: not the hidden cell (``n`` of a model with ``n_family`` columns is handled by the caller).
CONTEXT_COLUMNS = frozenset(
    {
        "df",
        "dispersion",
        "n_reference",
        "n_years",
        "first_year",
        "last_year",
        "window_days",
        "deadline_days",
        "time_days",
        "period",
        "year",
        "month",
        "region",
        "alpha",
        "n_boot",
        "seed",
        *PUBLIC_COUNT_COLUMNS,
    }
)
#: Columns naming the group of a row (the dimension summed by margins).
GROUP_COLUMNS = ("group", "family", "level")
#: Group values that mean "every group" (a margin).
TOTAL_LABELS = frozenset(
    {"all", "all_years", "total", "ensemble", "overall", "national", "tous", "toutes", "france"}
)
#: Columns that identify one establishment (or one of its audits) per row.
PER_ESTABLISHMENT_COLUMNS = frozenset(
    {
        "establishment",
        "etablissement",
        "finess",
        "finess_ej",
        "audit_id",
        "audit_from",
        "audit_to",
        "pseudonym",
    }
)
#: Text columns that describe a row without identifying the cell it is about (not part of its key).
DESCRIPTIVE_COLUMNS = frozenset(
    {"ci_method", "note", "adjust_method", "separation", "suppressed", "covariates", "audit_choice", "title"}
)
#: Columns that say which cell a row is about (its key), never values of the cell.
DIMENSION_COLUMNS = frozenset(
    {
        "indicator",
        "metric",
        "outcome",
        "study",
        "test",
        "variant",
        "group",
        "family",
        "level",
        "reference",
        "term",
        "group_a",
        "group_b",
        "severity",
        "legal_status",
        "exposure",
        "model",
        "effect_size_kind",
        "effect_direction",
        "estimation",
        "model_choice",
        "scan_status",
        "source_file",
        "table",
        "file",
        "rule",
        "reason",
    }
)
#: Columns that are dimensions even when their values are numbers.
NUMERIC_DIMENSIONS = frozenset(
    {"period", "year", "region", "time_days", "month", "deadline_days", "window_days"}
)
SUPPRESSED_TRUE = frozenset({"true", "1", "1.0", "yes", "oui", "vrai", "x", "y", "t"})
#: Keys read as another key: the ``secret`` heading is the ``suppressed`` flag.
ALIASES = {"secret": "suppressed"}
#: Column keys that share a label; the first one wins when a heading is read back.
_PREFERRED_KEYS = ("n_establishments", "n_audits", "suppressed", "file", "open")

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SPACES_RE = re.compile(r"[\s\u00a0\u202f\u2009']")


def _column_key(key: str) -> str:
    """The contract key behind a catalog key: a page's column heading ``inc.col.dispersion`` labels the
    table column ``dispersion``."""
    return key.split(".col.", 1)[1] if ".col." in key else key


def _reverse_labels() -> dict[str, str]:
    reverse: dict[str, str] = {}
    # contract keys first (labels.csv), then the headings of the pages (``<page>.col.<column>``)
    keys = sorted(LABELS, key=lambda k: (".col." in k, k not in _PREFERRED_KEYS, k))
    for key in keys:
        for lang in ("fr", "en"):
            reverse.setdefault(fold(LABELS[key][lang]), _column_key(key))
    for key in keys:
        if ".col." not in key:
            reverse[fold(key)] = key  # a key is always itself
    return reverse


_REVERSE = _reverse_labels()


@functools.lru_cache(maxsize=1 << 16)
def canonical(text: str) -> str:
    """The contract key of a column heading or a labelled value (``"établissements"`` → ``n_establishments``).

    Headings and values not in ``labels.csv`` come back folded (lower case, no accents, single spaces).

    Examples
    --------
    >>> canonical("Établissements"), canonical("cliniques privées (MCO)"), canonical("Group")
    ('n_establishments', 'Private clinic (MCO)', 'group')
    """
    folded = fold(text)
    key = _REVERSE.get(folded, folded)
    return ALIASES.get(key, key)


def is_suppressed(text: str) -> bool:
    """A ``suppressed`` / ``secret`` flag cell that says yes (``True``, ``1``, ``oui``...)."""
    return fold(text) in SUPPRESSED_TRUE


def significant_digits(text: str) -> int:
    """Significant digits printed in a number (``"0.0714792"`` → 6, ``"1.5e-05"`` → 2, ``"24"`` → 2)."""
    mantissa = str(text).strip().lower().split("e", 1)[0].lstrip("+-\u2212")
    digits = "".join(ch for ch in mantissa if ch.isdigit()).lstrip("0")
    return max(len(digits), 1)


def rounding_error(value: float, digits: int) -> float:
    """Half a unit of the last of ``digits`` significant digits of ``value`` (0 for 0)."""
    if value == 0:
        return 0.0
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)


@dataclass(frozen=True)
class Number:
    """A number read from a cell: its value and the half-width of its last printed digit (rounding)."""

    value: float
    error: float


@functools.lru_cache(maxsize=1 << 17)
def parse_number(text: str) -> Number | None:
    """Read a published number as a reader would; None for text, blanks, ``nan`` and ``inf``.

    Accepts ``0,25`` (decimal comma), ``25 %`` (a share), ``1 234`` and ``1'234`` (thousands),
    ``−0.5`` (Unicode minus), ``1e-05``. The error is half a unit of the last digit shown
    (``0.311`` → 0.0005), zero for integers.

    Examples
    --------
    >>> parse_number("31,1 %"), parse_number("12"), parse_number("CH")
    (Number(value=0.311, error=0.0005), Number(value=12.0, error=0.0), None)
    """
    text = str(text).strip().replace("\u2212", "-")
    if not text or len(text) > 40:
        return None
    percent = text.endswith("%")
    if percent:
        text = text[:-1].rstrip()
    text = _SPACES_RE.sub("", text)
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    error = 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0)) if decimals or exponent else 0.0
    if percent:
        value, error = value / 100, error / 100
    return Number(value, error)


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def runs_as_formula(text: str) -> bool:
    """Whether a spreadsheet would run this text cell as a formula (OWASP CSV-injection guidance).

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, unless it is a plain
    number (``-0.5``, ``+3``, ``-1e-05``, ``-0,5``) or a lone sign; ``+33 1 23`` is not a plain number. A cell neutralised with a leading ``'`` is safe.

    Examples
    --------
    >>> [runs_as_formula(t) for t in ("=1+1", "-0.083", "@SUM(A1)", "'=1+1", "-", "CH")]
    [True, False, True, False, False, False]
    """
    return (
        bool(text)
        and text.startswith(FORMULA_TRIGGERS)
        and text.strip() not in ("-", "+")
        and not _NUMBER_RE.fullmatch(text.strip().replace(",", ".", 1))
    )


@dataclass
class Table:
    """One published table: where it is, its canonical header, its rows of strings.

    ``location`` prefixes the location of each cell (``"sheet 'x' "``, ``"table 2 (line 40) "``);
    ``header`` holds contract keys (:func:`canonical`), ``labels`` the headings as printed.
    """

    file: str
    location: str
    labels: list[str]
    rows: list[list[str]]
    #: Raw text a spreadsheet parses when it opens the file (CSV, TSV): text cells are checked for
    #: formulas here (workbook cells are checked in their XML, where formula cells show).
    spreadsheet: bool = False
    #: ``(row, column)`` of body cells a spreadsheet shows as text whatever they hold (xlsx ``quotePrefix``).
    quoted: frozenset[tuple[int, int]] = frozenset()
    header: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.header = [canonical(h) for h in self.labels]
        if "n_establishments" in self.header:  # "audits" beside establishments is the n_audits column
            self.header = ["n_audits" if h == "audits" else h for h in self.header]
        width = len(self.labels)
        self.rows = [(list(r) + [""] * width)[:width] if len(r) != width else list(r) for r in self.rows]

    @classmethod
    def from_rows(cls, file: str, location: str, rows: list[list[str]], **options) -> Table | None:
        """The first row is the header; None for a table without a header.

        Rows keep their place (a blank line is still a line), so that ``where`` names the line as
        the file shows it.
        """
        if not rows or not any(str(c).strip() for c in rows[0]):
            return None
        return cls(
            file,
            location,
            [str(c).strip() for c in rows[0]],
            [[str(c) for c in r] for r in rows[1:]],
            **options,
        )

    def where(self, row: int, column: int | None = None) -> str:
        """``"<location>line N, column C"``: N counts the header as line 1 (as in a CSV file)."""
        text = f"{self.location}line {row + 2}"
        return text if column is None else f"{text}, column {self.labels[column]}"

    def column(self, key: str) -> int | None:
        """Index of the column whose canonical key is ``key`` (first one), or None."""
        try:
            return self.header.index(key)
        except ValueError:
            return None

    def suppressed_rows(self) -> list[bool]:
        """Whether each row is flagged suppressed (``suppressed``/``secret`` column)."""
        k = self.column("suppressed")
        if k is None:
            return [False] * len(self.rows)
        return [is_suppressed(r[k]) for r in self.rows]
