"""Cell parsers of the input contract, vectorized over a column: each returns the parsed values and a
mask of the non-empty cells it could not parse (so that the validator reports them, never coerces them away).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from cyberobs_lib import schema as S

_CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.IGNORECASE)


def distinct_probe(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes of ``values`` (missing → the last position) and its distinct values followed by ``None``,
    as an object Series named like ``values``: evaluate a rule on the probe, then ``result[codes]``."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    probe = pd.Series(np.append(np.asarray(uniques, dtype=object), None), dtype=object, name=values.name)
    return np.where(codes < 0, len(uniques), codes), probe


def per_distinct(parse):
    """Run a cell parser ``values -> (parsed, bad)`` once per distinct value and map back by codes.

    A column of millions of cells holds a few thousand distinct ports, scores, dates or booleans: the
    text work shrinks accordingly. Small or mostly distinct columns are parsed directly; either way the
    result equals ``parse(values)`` (tested), with ``values``'s index and name. The direct parser is
    ``wrapper.__wrapped__``.
    """

    @functools.wraps(parse)
    def wrapper(values: pd.Series) -> tuple[pd.Series, pd.Series]:
        values = pd.Series(values, copy=False)
        if len(values) < 1000:
            return parse(values)
        codes, probe = distinct_probe(values)
        if len(probe) - 1 > len(values) // 4:
            return parse(values)
        parsed, bad = parse(probe)
        return (
            pd.Series(parsed.array.take(codes), index=values.index, name=parsed.name),
            pd.Series(bad.to_numpy(dtype=bool)[codes], index=values.index),
        )

    return wrapper


#: ISO 8601 calendar date, optionally with a time (``T`` or a space, as RFC 3339 and spreadsheets write it),
#: seconds, a fraction of any precision (``.`` or ``,``) and an offset (``Z``, ``+hh:mm``, ``+hhmm``, ``+hh``).
_ISO_DATE_RE = (
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:(?P<time>[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)"
    r"(?P<tz>Z|(?P<sign>[+-])(?P<oh>[0-9]{2}):?(?P<om>[0-9]{2})?)?)?$"
)
#: French day-first dates as spreadsheets write them, optionally with hh:mm[:ss] (Excel's "jj/mm/aaaa hh:mm").
_FR_DATE_RE = r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?:\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?$"
#: Spaces a French number may carry between groups of three digits: space, NBSP (U+00A0), NNBSP (U+202F).
_GROUP_SEP = "[ \u00a0\u202f]"
_FR_NUMBER_RE = re.compile(rf"^[+-]?(?:\d{{1,3}}(?:{_GROUP_SEP}\d{{3}})+|\d+)?(?:[.,]\d*)?(?:[eE][+-]?\d+)?$")


@per_distinct
def parse_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse whole dates: ISO 8601 dates and date-times, and French ``dd/mm/yyyy`` (optionally ``hh:mm[:ss]``).

    Accepted (surrounding spaces ignored): ``2024-03-01``; ``2024-03-01T10:22[:33[.fraction]]`` with ``T``
    or a space, a fraction of any precision (nanoseconds kept, beyond truncated) and an optional offset
    ``Z``, ``+02:00``, ``+0200`` or ``+02`` (the time is converted to UTC, then made naive); ``01/03/2024``
    (day first; one-digit day or month accepted) and ``01/03/2024 10:22[:33]`` as Excel writes it.
    Nothing else: a cell must be a date as a whole (``2024-03-01garbage``, ``2024-03``, ``20240301``,
    ``03/01/24`` and impossible dates such as ``2023-02-29`` are bad).

    Returns
    -------
    tuple of pandas.Series
        The values as ``datetime64[ns]`` (always, whatever the precisions and offsets of the inputs;
        ``NaT`` for missing or bad cells) and the mask of the non-empty cells that are not such dates.

    Examples
    --------
    >>> d, bad = parse_dates(pd.Series(["2024-03-01", "15/06/2023", "2024-13-01", None, "2024-03-01garbage",
    ...                                 "2024-03-01T10:22:33.5+02:00", "01/03/2024 09:05"]))
    >>> [str(x) if pd.notna(x) else None for x in d], d.dtype
    (['2024-03-01 00:00:00', '2023-06-15 00:00:00', None, None, None, '2024-03-01 08:22:33.500000', '2024-03-01 09:05:00'], dtype('<M8[ns]'))
    >>> bad.tolist()
    [False, False, True, False, True, False, False]
    """
    # Arrow strings: the regular expressions run in C++ (RE2) over the whole column
    text = pd.Series(values, copy=False).astype("string[pyarrow]").str.strip()
    naive = text.where(text.str.fullmatch(_ISO_DATE_RE).fillna(False).astype(bool))
    # offsets are applied here, not by pandas: with format="ISO8601" it lends the offset of one cell to
    # the naive date-times after it (pandas 2.3). Extraction only on the few cells that need it.
    zoned = naive.str.slice(10).str.contains("[Z+-]").fillna(False).astype(bool)
    offset = None
    if zoned.any():
        parts = naive[zoned].astype(object).str.extract(_ISO_DATE_RE)
        naive = naive.mask(zoned, parts["date"] + parts["time"])
        oh, om = pd.to_numeric(parts["oh"]), pd.to_numeric(parts["om"]).fillna(0)
        minutes = (oh * 60 + om).where((oh <= 23) & (om <= 59)) * parts["sign"].map({"+": 1, "-": -1})
        minutes = minutes.mask(parts["tz"] == "Z", 0.0)  # NaN (hence NaT): an impossible offset
        offset = pd.to_timedelta(minutes.astype(float), unit="min")
    comma = naive.str.contains(",", regex=False).fillna(False).astype(bool)
    if comma.any():
        naive = naive.mask(comma, naive[comma].str.replace(",", ".", regex=False))
    slash = naive.isna() & text.str.contains("/", regex=False).fillna(False).astype(bool)
    if slash.any():
        f = text[slash].astype(object).str.extract(_FR_DATE_RE)
        f = f[f[0].notna()].fillna("")
        hm = (f[3].str.zfill(2) + ":" + f[4]).where(f[3] != "", "00:00")
        sec = f[5].where(f[5] != "", "00")
        day = f[2] + "-" + f[1].str.zfill(2) + "-" + f[0].str.zfill(2) + "T" + hm + ":" + sec
        naive = naive.mask(naive.index.isin(f.index), day.reindex(naive.index))
    parsed = pd.to_datetime(naive.astype(object), format="ISO8601", errors="coerce")
    parsed = pd.Series(parsed, index=text.index).astype("datetime64[ns]")
    if offset is not None:
        parsed.loc[zoned] = parsed[zoned] - offset
    bad = text.notna() & parsed.isna()
    return parsed.rename(values.name), bad.astype(bool)


def _french_number(values: pd.Series) -> pd.Series:
    """Numbers written the French way (``1 804,5``; NBSP or NNBSP between groups) as floats, NaN if not.

    A comma or a dot is a decimal separator; spaces are allowed only between groups of three digits; an
    exponent is accepted (``1e3``). Everything else (``1.804,5``, ``1,804.5``, ``inf``, ``12 34``) is NaN.
    """
    text = pd.Series(values, copy=False).astype("string").str.strip()
    ok = text.str.fullmatch(_FR_NUMBER_RE).fillna(False).astype(bool) & text.str.contains(r"\d", regex=True)
    clean = text.where(ok).str.replace(_GROUP_SEP, "", regex=True).str.replace(",", ".", regex=False)
    return pd.to_numeric(clean, errors="coerce").astype(float)


@per_distinct
def parse_int(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse integers written as text, the French way included; returns (Int64 values, bad mask).

    Accepted: ``12``, ``12.0`` and ``1804,0`` (a whole number with a decimal part of zeros), ``1 804`` with
    a space, NBSP (U+00A0) or NNBSP (U+202F) between groups of three digits. A dot or a comma is always a
    decimal separator, never a thousands separator: ``1.804`` (or the English ``1,804``) is 1.804, not an
    integer, hence bad and reported with its value, never silently read as 1804 or 1.

    Examples
    --------
    >>> n, bad = parse_int(pd.Series(["1 804", "1\u00a0804", "1\u202f804", "1804,0", "1.804", "12 34", None]))
    >>> n.tolist(), bad.tolist()
    ([1804, 1804, 1804, 1804, <NA>, <NA>, <NA>], [False, False, False, False, True, True, False])
    """
    num = _french_number(values)
    ok = num.notna() & np.isfinite(num) & (num == np.floor(num))
    bad = values.notna() & ~ok
    return num.where(ok).astype("Int64").rename(values.name), bad.astype(bool)


@per_distinct
def parse_float(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse decimals, the French way included: ``3,5``, ``1 804,5`` (space, NBSP or NNBSP between groups of
    three digits); a dot is a decimal point too (``1.804`` is 1.804).

    Examples
    --------
    >>> x, bad = parse_float(pd.Series(["3,5", "1\u202f804,5", "1.804", "7", "1.804,5", None]))
    >>> x.tolist()[:4], bad.tolist()
    ([3.5, 1804.5, 1.804, 7.0], [False, False, False, False, True, False])
    """
    num = _french_number(values)
    bad = values.notna() & num.isna()
    return num.rename(values.name), bad.astype(bool)


@per_distinct
def parse_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse booleans: true/false, 1/0, oui/non, yes/no, vrai/faux (case-insensitive)."""
    low = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[low.isin(S.TRUE_WORDS).fillna(False)] = True
    out[low.isin(S.FALSE_WORDS).fillna(False)] = False
    bad = values.notna() & out.isna()
    return out, bad.astype(bool)


@functools.lru_cache(maxsize=1 << 16)
def score_cvss_vector(vector: str) -> tuple[str | None, float, str | None]:
    """Parse one CVSS vector with the ``cvss`` package: ``(version, base score, error reason)``.

    The package's one CVSS parser: :func:`cvss_vector_ok` (validation) and
    :func:`cyberobs_lib.normalize.severity.cvss_severity` (normalisation) both call it, so a vector is
    valid exactly when it can be scored. Accepted: ``CVSS:4.0/…``, ``CVSS:3.0/…``, ``CVSS:3.1/…`` and v2
    vectors (``AV:N/AC:L/…``, also with Nessus's ``CVSS2#`` prefix or NVD's parentheses). Cached per
    distinct value.

    Returns
    -------
    tuple
        ``version`` (``"2.0"``, ``"3.0"``, ``"3.1"``, ``"4.0"``, or ``None`` when invalid), the base score
        (NaN when invalid), and the reason when invalid (else ``None``).

    Notes
    -----
    ``CVSS3.scores()[0]`` (base), ``CVSS4.base_score`` (v4.0 MacroVector lookup), ``CVSS2.scores()[0]``
    (Red Hat Product Security's ``cvss`` package, never hand-written formulas).

    Examples
    --------
    >>> score_cvss_vector("CVSS2#AV:N/AC:L/Au:N/C:P/I:P/A:P")
    ('2.0', 7.5, None)
    >>> score_cvss_vector("CVSS:3.1/AV:N")[0] is None
    True
    """
    v = vector.strip()
    try:
        if v.upper().startswith("CVSS:4.0/"):
            c = CVSS4(v)
            return "4.0", float(c.base_score), None
        if v.upper().startswith(("CVSS:3.0/", "CVSS:3.1/")):
            c = CVSS3(v)
            return v[5:8], float(c.scores()[0]), None
        if v.upper().startswith("CVSS:"):
            return None, np.nan, f"unsupported CVSS version prefix {v.split('/')[0]!r}"
        v2 = v.split("#", 1)[1] if v.upper().startswith("CVSS2#") else v
        v2 = v2[1:-1] if v2.startswith("(") and v2.endswith(")") else v2
        c = CVSS2(v2)
        return "2.0", float(c.scores()[0]), None
    except CVSSError as exc:
        return None, np.nan, f"invalid vector: {exc}"
    except Exception as exc:  # the cvss package raises plain errors on some malformed input
        return None, np.nan, f"invalid vector: {type(exc).__name__}: {exc}"


def cvss_vector_ok(values: pd.Series) -> pd.Series:
    """True where a vector can be scored by :func:`score_cvss_vector` (missing values are fine).

    Examples
    --------
    >>> cvss_vector_ok(pd.Series(["CVSS2#AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS:3.1/AV:X", None])).tolist()
    [True, False, True]
    """
    text = values.astype("string").str.strip()
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    ok = np.array([score_cvss_vector(u)[2] is None for u in uniques] + [True], dtype=bool)
    return pd.Series(ok[codes], index=values.index)


def cve_list_ok(values: pd.Series) -> pd.Series:
    """True where every item of a ``;``/``,``/space-separated list is a CVE id (empty is fine)."""
    parts = values.astype("string").str.strip().str.split(r"[;,\s]+", regex=True).explode()
    parts = parts[parts.notna() & (parts != "")]
    bad_parts = ~parts.str.match(_CVE_RE).astype(bool)
    bad_rows = bad_parts.groupby(level=0).any()
    return ~bad_rows.reindex(values.index, fill_value=False)
