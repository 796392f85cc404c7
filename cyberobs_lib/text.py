"""Text folding for loose matching: the package's one implementation (lowest layer, imports nothing of it).

:func:`fold_case_accents` removes case and accents and keeps everything else (the disclosure detectors
map positions in the folded text back to the original); :func:`fold` also unifies apostrophes and
collapses blanks (labels, names, vocabulary keys); :func:`fold_series` is :func:`fold` on a column,
computed once per distinct value.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

__all__ = ["fold", "fold_case_accents", "fold_series"]

#: The blocks of combining diacritical marks (the accents NFKD splits off French letters), searched in one pass.
_COMBINING_BLOCKS_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")


def _drop_if_combining(match: re.Match[str]) -> str:
    ch = match.group()
    return "" if unicodedata.combining(ch) else ch


def fold_case_accents(text: str) -> str:
    """``text`` without case or accents: NFKD, combining marks removed, case-folded.

    Blanks and punctuation are kept; the length changes only where a character decomposes
    (``ﬁ`` → ``fi``, ``ß`` → ``ss``) or is a lone combining mark.

    Examples
    --------
    >>> fold_case_accents("Hôpital  d’ARMÉES ﬁ")
    'hopital  d’armees fi'
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = _COMBINING_BLOCKS_RE.sub(_drop_if_combining, decomposed)
    if any(unicodedata.combining(ch) for ch in _NON_ASCII_RE.findall(stripped)):  # marks of other scripts
        stripped = "".join(ch for ch in stripped if not unicodedata.combining(ch))
    return stripped.casefold()


def fold(text: object) -> str:
    """Case-, accent-, apostrophe- and blank-insensitive key of a label (``’`` read as ``'``).

    Examples
    --------
    >>> fold("  Hôpital  d’instruction des ARMÉES ")
    "hopital d'instruction des armees"
    """
    return " ".join(fold_case_accents(str(text)).replace("’", "'").split())


def fold_series(values: pd.Series) -> pd.Series:
    """:func:`fold` of every value of a column (computed once per distinct value; missing stays missing).

    Returns
    -------
    pandas.Series
        ``string`` dtype, same index.

    Examples
    --------
    >>> fold_series(pd.Series(["  Hôpital  des Armées ", None])).tolist()
    ['hopital des armees', <NA>]
    """
    s = pd.Series(values, copy=False).astype("string")
    mapping = {v: fold(v) for v in s.dropna().unique()}
    return s.map(mapping).astype("string")
