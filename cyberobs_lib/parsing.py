"""Cell parsers of the input contract, vectorized over a column: each returns the parsed values and a
mask of the non-empty cells it could not parse (so that the validator reports them, never coerces them away).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from cyberobs_lib import schema as S

_CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.IGNORECASE)
_CVSS2_RE = re.compile(r"^\(?AV:[LAN]/AC:[HML]/Au:[MSN]/C:[NPC]/I:[NPC]/A:[NPC](/.*)?\)?$")
_CVSS3_RE = re.compile(
    r"^CVSS:3\.[01]/AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[NLH]/I:[NLH]/A:[NLH](/.*)?$"
)
_CVSS4_RE = re.compile(
    r"^CVSS:4\.0/AV:[NALP]/AC:[LH]/AT:[NP]/PR:[NLH]/UI:[NPA]/VC:[HLN]/VI:[HLN]/VA:[HLN]/SC:[HLN]/SI:[HLN]/SA:[HLN](/.*)?$"
)


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


@per_distinct
def parse_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 (yyyy-mm-dd, optional time) and French dd/mm/yyyy dates.

    >>> d, bad = parse_dates(pd.Series(["2024-03-01", "15/06/2023", "2024-13-01", None]))
    >>> [str(x.date()) if pd.notna(x) else None for x in d], bad.tolist()
    (['2024-03-01', '2023-06-15', None, None], [False, False, True, False])
    """
    text = values.astype("string").str.strip()
    iso = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    fr = pd.to_datetime(text.str.slice(0, 10), format="%d/%m/%Y", errors="coerce")
    parsed = iso.fillna(fr)
    bad = text.notna() & parsed.isna()
    return parsed, bad.astype(bool)


@per_distinct
def parse_int(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse integers written as text ("12", "12.0"); returns (Int64 values, bad mask)."""
    num = pd.to_numeric(values, errors="coerce")
    ok = num.notna() & np.isfinite(num) & (num == np.floor(num))
    bad = values.notna() & ~ok
    return num.where(ok).astype("Int64"), bad.astype(bool)


@per_distinct
def parse_float(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse decimals, accepting a comma decimal separator (French exports)."""
    text = values.astype("string").str.replace(",", ".", regex=False)
    num = pd.to_numeric(text, errors="coerce").astype(float)
    bad = values.notna() & num.isna()
    return num, bad.astype(bool)


@per_distinct
def parse_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse booleans: true/false, 1/0, oui/non, yes/no, vrai/faux (case-insensitive)."""
    low = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[low.isin(S.TRUE_WORDS).fillna(False)] = True
    out[low.isin(S.FALSE_WORDS).fillna(False)] = False
    bad = values.notna() & out.isna()
    return out, bad.astype(bool)


def cvss_vector_ok(values: pd.Series) -> pd.Series:
    """True where a vector looks like CVSS v2/v3.0/v3.1/v4.0 (structure only; scoring is normalization's)."""
    text = values.astype("string").str.strip()
    ok = text.str.match(_CVSS3_RE) | text.str.match(_CVSS4_RE) | text.str.match(_CVSS2_RE)
    return ok.fillna(True).astype(bool)


def cve_list_ok(values: pd.Series) -> pd.Series:
    """True where every item of a ``;``/``,``/space-separated list is a CVE id (empty is fine)."""
    parts = values.astype("string").str.strip().str.split(r"[;,\s]+", regex=True).explode()
    parts = parts[parts.notna() & (parts != "")]
    bad_parts = ~parts.str.match(_CVE_RE).astype(bool)
    bad_rows = bad_parts.groupby(level=0).any()
    return ~bad_rows.reindex(values.index, fill_value=False)
