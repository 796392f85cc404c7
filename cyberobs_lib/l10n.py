"""The reader's language: one catalog of every text a reader sees, and numbers and dates in the reader's locale.

How a report speaks French or English
-------------------------------------
**One catalog**, ``cyberobs_lib/data/labels.csv`` (columns ``key,fr,en``), holds every word a reader sees:
headings, paragraphs, sentences, table captions and headings, values (families, severities, statuses), figure
titles, axes and legends, notes. There is no other source of reader text and no branch on the language in
the code: a function that writes for a reader takes ``lang`` and asks the catalog.

* **Names of things of the data** have keys without a dot: column keys of the data contract
  (``n_establishments``), family codes (``Private clinic (MCO)``), severities, statuses. :func:`label` gives
  their text and falls back to the value itself when the catalog has no entry (a family that a future registry
  adds is shown by its name rather than crashing a scheduled run; the tests search the pages for raw names).
  The disclosure check reads the HTML tables' headings back to their keys through these labels
  (:mod:`cyberobs_lib.disclosure._tables`): a heading shown for a column is the label of its key.
* **Texts written by the project** have dotted keys (``annual.title``, ``dq.accounting.intro``, ``fig.…``):
  :func:`text` fills their ``{placeholders}`` (``str.format`` names) and raises :class:`MissingTextError` for an
  unknown key, always. Plural forms are two keys ``<key>.one`` / ``<key>.other`` chosen by the locale's rule
  (:func:`text_n`: French says "1 fichier", "0 fichier").
* **Notebook prose follows ``lang``** this way: a notebook holds no Markdown cell of prose. Each heading or
  paragraph is a code cell displaying Markdown from the catalog, ``md("annual.intro", lang, min_cell=5)`` or
  ``heading("annual.h1", lang)``; the reader's HTML hides the code and shows the text. Values put into a
  sentence are escaped (:func:`cyberobs_lib.studies.markup.escape_markdown`); markup belongs to the catalog.
* **Numbers, shares, p-values, intervals and dates** are written by the ``fmt_*`` functions (Babel, locales
  ``fr_FR`` and ``en_GB``): ``1 230`` with a narrow no-break space, ``30,8 %``, ``p < 0,001``,
  ``IC 95 % : 24 %–43 %``, ``12 mars 2025``. English pages group thousands with the same narrow no-break
  space (``1 230``, ``0.308``) rather than a comma: the SI Brochure (BIPM, 9th edition, 2019, §5.4.4) writes
  "numbers may be divided in groups of three in order to facilitate reading; neither dots nor commas are ever
  inserted in the spaces between groups", and a comma would read as a decimal sign to a French reader of the
  English twin (and to the disclosure check, which reads "1,250" as 1.25). Tables written to ``tables/`` keep
  full precision and raw codes; only what a reader sees is formatted (:func:`cyberobs_lib.report.show`).

``tests/test_l10n.py`` checks that every key written literally in the library and the converted notebooks
exists in both languages with the same placeholders, and renders the annual study in both languages to search
its pages for words of the other language, raw column names and Python-style numbers.

Adding a text: add a row ``key,fr,en`` to ``labels.csv`` (quote a cell holding a comma), call
``text(key, lang, …)`` or ``md(key, lang, …)``; run ``pytest tests/test_l10n.py``.

Converting a notebook (as 00, 40 and 50 were)
---------------------------------------------
1. Replace every Markdown cell by a code cell displaying catalog texts: ``display(heading("x.title", lang,
   level=1), md("x.intro", lang, min_cell=min_cell))`` (the title first, right after the parameters cell).
2. Tables: ``show(frame, lang, columns=[…at most 8…], caption=text(…), denominator=text(…), formats={…},
   mark_secret="value")``; two bounds as one column with ``with_interval``; the full table stays in
   ``tables/`` (``publish_table`` unchanged) and the page says so. A count column keeps its own key as heading
   (the disclosure check reads headings back to keys through ``labels.csv``).
3. Figures: plot functions take ``lang``, title every Axes, write numbers with ``fmt_*`` or
   :func:`cyberobs_lib.plots.percent_axis` / :func:`~cyberobs_lib.plots.number_axis`, show ``n``; the notebook
   calls ``save_figure`` then :func:`cyberobs_lib.report.show_figure` (alternative text) instead of
   ``plt.show()``.
4. Sentences built in modules: one catalog key per sentence with ``{placeholders}``, ``text_n`` for plurals;
   no ``fr``/``en`` tuples nor language branches.
5. No ``print`` on a reader's page (debug lines go to ``check`` cells, which the HTML drops).
6. Add the notebook to ``CONVERTED_NOTEBOOKS`` and its modules to ``CONVERTED_MODULES`` in
   ``tests/test_l10n.py``, and its page to the slow page test.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import string
from collections.abc import Iterable, Mapping
from functools import cache

import pandas as pd

from cyberobs_lib.config import PACKAGE_DATA
from cyberobs_lib.markup import escape_markdown

#: Languages of the reports and the Babel locale of each (British English: day month year, 24 h).
LOCALES: dict[str, str] = {"fr": "fr_FR", "en": "en_GB"}
LANGS = tuple(LOCALES)
#: What a missing number is written as in a sentence (en dash).
MISSING = "–"
#: Narrow no-break space: the thousands separator of both languages.
NNBSP = "\u202f"


class MissingTextError(KeyError):
    """A text key that the catalog does not hold (a typo, or a row to add to ``data/labels.csv``)."""


def check_lang(lang: str) -> str:
    """``lang`` itself when it is a report language; ``ValueError`` naming the accepted values otherwise.

    >>> check_lang("fr")
    'fr'
    """
    if lang not in LOCALES:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


#: The catalog: ``cyberobs_lib/data/labels.csv``, then one file per part of the suite (``labels_<part>.csv``, e.g.
#: ``labels_studies.csv`` for the studies 10, 20 and 30 and the statistical methods): one vocabulary, a key in
#: one file only.
CATALOG_FILES = ("labels.csv", "labels_*.csv")


def _read_catalog_file(path) -> dict[str, dict[str, str]]:
    table = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    if list(table.columns) != ["key", *LANGS]:
        raise ValueError(f"{path}: header must be key,{','.join(LANGS)}, got {','.join(table.columns)}")
    dup = table["key"][table["key"].duplicated()]
    if len(dup):
        raise ValueError(f"{path}: key {dup.iloc[0]!r} appears twice")
    return {r.key: {lang: getattr(r, lang) for lang in LANGS} for r in table.itertuples(index=False)}


def _load_catalog() -> dict[str, dict[str, str]]:

    catalog: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    paths = [PACKAGE_DATA / CATALOG_FILES[0], *sorted(PACKAGE_DATA.glob(CATALOG_FILES[1]))]
    for path in paths:
        for key, entry in _read_catalog_file(path).items():
            if key in catalog:
                raise ValueError(f"{path}: key {key!r} is also in {origin[key]} (a key is in one file only)")
            catalog[key], origin[key] = entry, path.name
    return catalog


#: key -> {"fr": ..., "en": ...}: the whole catalog (``cyberobs_lib/data/labels.csv``).
CATALOG: dict[str, dict[str, str]] = _load_catalog()


def has(key: str) -> bool:
    """Whether the catalog holds ``key``."""
    return key in CATALOG


def label(value: object, lang: str = "fr") -> str:
    """The reader's name of a thing of the data (a column key, a family, a severity); the value itself when
    the catalog has none.

    >>> label("rows_read", "fr"), label("rows_read", "en"), label("Not in the catalog", "fr")
    ('lignes lues', 'rows read', 'Not in the catalog')
    """
    check_lang(lang)
    entry = CATALOG.get(str(value))
    return entry[lang] if entry else str(value)


def text(key: str, lang: str = "fr", /, **fields: object) -> str:
    """A text of the project in ``lang``, its ``{placeholders}`` filled with ``fields``.

    Raises :class:`MissingTextError` when the catalog has no ``key`` and ``KeyError`` when a placeholder is
    not given.

    >>> text("fmt.ci", "en", level="95%", range="24%–43%")
    '95% CI: 24%–43%'
    """
    check_lang(lang)
    try:
        template = CATALOG[key][lang]
    except KeyError:
        raise MissingTextError(f"no text {key!r} in cyberobs_lib/data/labels.csv") from None
    return template.format_map(fields)


def plural_form(n: float, lang: str = "fr") -> str:
    """The CLDR plural category of ``n`` in ``lang`` (``one`` or ``other`` for French and English).

    >>> plural_form(0, "fr"), plural_form(0, "en"), plural_form(1, "en")
    ('one', 'other', 'one')
    """
    return _locale(lang).plural_form(abs(n))


def text_n(key: str, n: float, lang: str = "fr", /, **fields: object) -> str:
    """:func:`text` of ``<key>.one`` or ``<key>.other`` by the plural rule of ``lang`` for ``n``; ``{n}`` is
    ``n`` written by :func:`fmt_number`.

    >>> text_n("unit.file", 1, "fr"), text_n("unit.file", 3, "en")
    ('1 fichier', '3 files')
    """
    form = plural_form(n, lang)
    key_form = f"{key}.{form}" if has(f"{key}.{form}") else f"{key}.other"
    return text(key_form, lang, n=fmt_number(n, lang), **fields)


def placeholders(template: str) -> set[str]:
    """The ``{names}`` of a catalog text.

    >>> sorted(placeholders("{share} des {n} structures ({value}, {ci})"))
    ['ci', 'n', 'share', 'value']
    """
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# --------------------------------------------------------------------------------------------------
# Markdown for notebooks
# --------------------------------------------------------------------------------------------------
def md_text(key: str, lang: str = "fr", /, **fields: object) -> str:
    """:func:`text` as Markdown: every field is escaped (a family or file name is never markup); the markup
    of the catalog text itself is kept."""
    return text(key, lang, **{k: escape_markdown(v) for k, v in fields.items()})


def md(key: str, lang: str = "fr", /, **fields: object):
    """A Markdown display object of a catalog text (:func:`md_text`), for a notebook code cell."""
    from IPython.display import Markdown

    return Markdown(md_text(key, lang, **fields))


def heading(key: str, lang: str = "fr", /, level: int = 2, **fields: object):
    """A Markdown heading of ``level`` (1: the page title) from a catalog text.

    >>> heading("dq.title", "en", level=1).data
    '# Data quality'
    """
    from IPython.display import Markdown

    return Markdown("#" * level + " " + md_text(key, lang, **fields))


# --------------------------------------------------------------------------------------------------
# Numbers, shares, p-values, intervals, dates
# --------------------------------------------------------------------------------------------------
@cache
def _locale(lang: str):
    from babel import Locale

    return Locale.parse(LOCALES[check_lang(lang)])


def _missing(x: object) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _auto_decimals(x: float) -> int:
    """Decimals that show 3 significant digits, never more than 6 and none for numbers of 100 or more."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, min(6, 2 - math.floor(math.log10(abs(x)))))


def fmt_number(x: object, lang: str = "fr", *, decimals: int | None = None) -> str:
    """A number as the reader writes it: grouped thousands, the locale's decimal sign, never an exponent.

    ``decimals`` None: integers as integers, other numbers to 3 significant digits (trailing zeros dropped);
    an int: exactly that many decimals. Missing: an en dash.

    >>> fmt_number(1230, "fr"), fmt_number(1230, "en"), fmt_number(0.308, "fr"), fmt_number(7.43e-4, "en")
    ('1\\u202f230', '1\\u202f230', '0,308', '0.000743')
    >>> fmt_number(2.5, "fr", decimals=2), fmt_number(None, "fr")
    ('2,50', '–')
    """
    from babel.numbers import format_decimal

    if _missing(x):
        return MISSING
    value = float(x)
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞"
    if decimals is None:
        if value == round(value) and abs(value) < 1e15:
            pattern = "#,##0"
        else:
            pattern = "#,##0." + "#" * _auto_decimals(value) if _auto_decimals(value) else "#,##0"
    else:
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
    return _grouped(format_decimal(value, format=pattern, locale=_locale(lang)), lang)


#: Thousands separator of each language: a narrow no-break space in both (see the module's notes).
GROUP_SEPARATORS = {"fr": NNBSP, "en": NNBSP}


def _grouped(number: str, lang: str) -> str:
    """``number`` as Babel wrote it, its locale's thousands separator replaced by :data:`GROUP_SEPARATORS`."""
    symbol = _locale(lang).number_symbols["latn"]["group"]
    return number.replace(symbol, GROUP_SEPARATORS[lang])


def _percent_pattern(lang: str, decimals: int) -> str:
    base = _locale(lang).percent_formats[None].pattern  # fr: '#,##0\u00a0%', en: '#,##0%'
    return re.sub(r"0(?=[^0#,.]*$)", "0." + "0" * decimals, base, count=1) if decimals else base


def fmt_percent(x: object, lang: str = "fr", *, decimals: int = 1) -> str:
    """A share (0–1) in percent with ``decimals`` decimals, as the locale writes it.

    >>> fmt_percent(0.308, "fr"), fmt_percent(0.308, "en"), fmt_percent(0.333, "fr", decimals=0)
    ('30,8\\xa0%', '30.8%', '33\\xa0%')
    """
    from babel.numbers import format_percent

    if _missing(x):
        return MISSING
    return _grouped(
        format_percent(float(x), format=_percent_pattern(lang, decimals), locale=_locale(lang)), lang
    )


def fmt_pvalue(p: object, lang: str = "fr", *, prefix: bool = True, threshold: float = 0.001) -> str:
    """A p-value as journals print it: ``p < 0,001`` below ``threshold``, else 3 decimals.

    ``prefix`` False: without ``p`` (for a table column headed "p").

    >>> fmt_pvalue(7.43e-14, "fr"), fmt_pvalue(0.0312, "fr"), fmt_pvalue(0.0312, "en", prefix=False)
    ('p < 0,001', 'p = 0,031', '0.031')
    """
    if _missing(p):
        return MISSING
    p = float(p)
    if p < threshold:
        value = "< " + fmt_number(threshold, lang, decimals=max(0, -math.floor(math.log10(threshold))))
    else:
        value = ("" if not prefix else "= ") + fmt_number(min(p, 1.0), lang, decimals=3)
    return f"p {value}" if prefix else value


def _bound(x: object, lang: str, kind: str, decimals: int | None) -> str:
    if kind == "percent":
        return fmt_percent(x, lang, decimals=0 if decimals is None else decimals)
    if kind == "number":
        return fmt_number(x, lang, decimals=decimals)
    raise ValueError(f"kind must be 'percent' or 'number', got {kind!r}")


def fmt_range(low: object, high: object, lang: str = "fr", *, kind: str = "number", decimals=None) -> str:
    """Two bounds joined by an en dash (``24 %–43 %``), or by "à"/"to" when one is negative (a dash would read
    as a minus sign). Missing bounds: an en dash alone.

    >>> fmt_range(-0.5, 0.25, "fr", decimals=2), fmt_range(1.1, 2, "en", decimals=2)
    ('-0,50 à 0,25', '1.10–2.00')
    """
    if _missing(low) or _missing(high):
        return MISSING
    lo, hi = _bound(low, lang, kind, decimals), _bound(high, lang, kind, decimals)
    key = "fmt.range_signed" if float(low) < 0 or float(high) < 0 else "fmt.range"
    return text(key, lang, low=lo, high=hi)


def with_interval(
    frame: pd.DataFrame,
    lang: str = "fr",
    *,
    low: str = "ci_low",
    high: str = "ci_high",
    name: str = "ci",
    kind: str = "percent",
    decimals: int | None = None,
) -> pd.DataFrame:
    """``frame`` with its two bounds written as one reader's column ``name`` (``24 %–43 %``), for :func:`cyberobs_lib.report.show`
    (heading: the label of ``name``, "IC 95 %"). The bounds stay in the frame (and in ``tables/``).

    >>> with_interval(pd.DataFrame({"ci_low": [0.24], "ci_high": [0.43]}), "en")["ci"].tolist()
    ['24%–43%']
    """
    bounds = [
        "" if pd.isna(lo) or pd.isna(hi) else fmt_range(lo, hi, lang, kind=kind, decimals=decimals)
        for lo, hi in zip(frame[low], frame[high], strict=True)
    ]
    return frame.assign(**{name: bounds})


def fmt_ci(
    low: object,
    high: object,
    *,
    kind: str = "percent",
    lang: str = "fr",
    level: float = 0.95,
    decimals: int | None = None,
) -> str:
    """A confidence interval as a reader reads it: ``IC 95 % : 24 %–43 %`` / ``95% CI: 24%–43%``.

    ``kind``: ``percent`` (shares, 0 decimals by default) or ``number`` (3 significant digits by default).

    >>> fmt_ci(0.24, 0.43, kind="percent", lang="fr")
    'IC 95\\xa0% : 24\\xa0%–43\\xa0%'
    >>> fmt_ci(0.24, 0.43, kind="percent", lang="en"), fmt_ci(1.1, 2.0, kind="number", lang="en", decimals=2)
    ('95% CI: 24%–43%', '95% CI: 1.10–2.00')
    """
    bounds = fmt_range(low, high, lang, kind=kind, decimals=decimals)
    return text("fmt.ci", lang, level=fmt_percent(level, lang, decimals=0), range=bounds)


def as_date(value: object) -> _dt.date | None:
    """``value`` (ISO text, date, datetime, Timestamp) as a date; None when missing."""
    if _missing(value):
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    return pd.Timestamp(str(value)).date()


def fmt_date(value: object, lang: str = "fr", *, style: str = "long") -> str:
    """A date as the reader writes it (no time of day): ``12 mars 2025`` / ``12 March 2025``; ``style``
    ``short``: ``12/03/2025``. Missing: an en dash.

    >>> fmt_date("2025-03-12", "fr"), fmt_date(pd.Timestamp("2025-03-12 00:00:00"), "en")
    ('12 mars 2025', '12 March 2025')
    """
    from babel.dates import format_date

    day = as_date(value)
    if day is None:
        return MISSING
    return format_date(day, format=style, locale=_locale(lang))


def fmt_list(items: Iterable[object], lang: str = "fr") -> str:
    """Items joined as a sentence does: ``a, b et c`` / ``a, b and c``.

    >>> fmt_list(["CH", "EHPAD", "SSR"], "fr"), fmt_list(["CH"], "en")
    ('CH, EHPAD et SSR', 'CH')
    """
    from babel.lists import format_list

    return format_list([str(i) for i in items], locale=_locale(lang))


#: Simple fractions a sentence may use for a share, from the catalog (``share.<name>``), by value.
FRACTIONS: Mapping[str, float] = {
    "tenth": 0.1,
    "fifth": 0.2,
    "quarter": 0.25,
    "third": 1 / 3,
    "half": 0.5,
    "two_thirds": 2 / 3,
    "three_quarters": 0.75,
    "four_fifths": 0.8,
    "nine_tenths": 0.9,
}


def share_in_words(x: float, lang: str = "fr") -> str:
    """The start of a sentence naming a share in words, from the nearest simple fraction: "Un tiers"
    (within 1.5 points), "Près d'un tiers" (up to 5 points below), "Plus d'un tiers" (up to 5 points above);
    the percentage itself when no fraction is that close or at 0 and 100 %.

    >>> share_in_words(0.33, "fr"), share_in_words(0.45, "fr"), share_in_words(0.70, "en")
    ('Un tiers', 'Près de la moitié', 'More than two thirds')
    >>> share_in_words(0.04, "fr")
    '4\\xa0%'
    """
    if _missing(x):
        return MISSING
    name, frac = min(FRACTIONS.items(), key=lambda kv: abs(kv[1] - x))
    gap = x - frac
    if 0 < x < 1 and abs(gap) <= 0.015:
        return text(f"share.{name}", lang)
    if 0 < x < 1 and -0.05 <= gap < 0:
        return text(f"share.nearly.{name}", lang)
    if 0 < x < 1 and 0 < gap <= 0.05:
        return text(f"share.more.{name}", lang)
    return fmt_percent(x, lang, decimals=0)
