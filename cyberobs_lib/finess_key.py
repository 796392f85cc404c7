"""The FINESS check key: the package's one implementation of the Luhn rule on FINESS numbers.

A FINESS number has 9 characters, the rightmost being a Luhn mod-10 key computed over the other 8;
the Corsican department letters count ``A = 1`` and ``B = 2`` (domain.md, "FINESS": this holds for all
4,619 numeric and 76 Corsican numbers of the FINESS hospital extract; no official algorithm is
published, so callers treat a failed key as a warning, not a rejection).

:func:`luhn_totals` is the rule, on a matrix of digits; :func:`key_ok` (many numbers),
:func:`finess_key_is_valid` (one number) and :func:`check_digits` (the key that completes a body) are
its uses. This module imports nothing of the package (lowest layer): :mod:`cyberobs_lib.registry`,
the disclosure detectors and the demo generator call it.

References
----------
ISO/IEC 7812-1 Annex B (Luhn formula).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["check_digits", "finess_key_is_valid", "key_ok", "luhn_totals"]

#: Corsican department letters as Luhn digits (``2A`` → ``21``, ``2B`` → ``22``).
_LETTER_DIGITS = str.maketrans({"A": "1", "B": "2"})


def _digit_matrix(numbers: Sequence[str], width: int) -> np.ndarray:
    """``numbers`` (each ``width`` characters of digits, ``A`` or ``B``) as an ``(n, width)`` int16 matrix."""
    joined = "".join(numbers).translate(_LETTER_DIGITS)
    mat = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, width)
    return mat.astype(np.int16) - ord("0")


def luhn_totals(digits: np.ndarray) -> np.ndarray:
    """Luhn sums of the rows of a digit matrix, the last column being the rightmost digit.

    Digits in even positions from the right (2nd, 4th, …) are doubled and reduced (``2d - 9`` above 9);
    the others are added as they are. A row passes the check when its total is ≡ 0 mod 10.

    Examples
    --------
    >>> luhn_totals(np.array([[0, 1, 0, 0, 0, 0, 0, 2, 4]])).tolist()  # 010000024
    [10]
    """
    doubled = digits[:, -2::-2] * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    return digits[:, ::-2].sum(axis=1) + doubled.sum(axis=1)


def key_ok(numbers: Sequence[str]) -> np.ndarray:
    """True for each 9-character FINESS number (digits, ``A``/``B`` upper-case) whose key holds.

    The caller checks the format first (:func:`cyberobs_lib.registry.finess_format_ok`).

    Examples
    --------
    >>> key_ok(["010000024", "010000025", "2A0000212"]).tolist()
    [True, False, True]
    """
    if len(numbers) == 0:
        return np.zeros(0, dtype=bool)
    return luhn_totals(_digit_matrix(numbers, 9)) % 10 == 0


def finess_key_is_valid(finess: str) -> bool:
    """True when ``finess`` (any case) has 9 characters, digits or ``A``/``B``, and its key holds.

    Examples
    --------
    >>> finess_key_is_valid("010000024"), finess_key_is_valid("010000025"), finess_key_is_valid("2a0000212")
    (True, False, True)
    """
    digits = finess.upper().translate(_LETTER_DIGITS)
    if len(digits) != 9 or not digits.isdecimal():
        return False
    if not digits.isascii():  # other scripts' decimal digits (``\d`` of a text pattern matches them)
        digits = "".join(str(unicodedata.decimal(ch)) for ch in digits)
    return bool(key_ok([digits])[0])


def check_digits(bodies: Sequence[str]) -> np.ndarray:
    """The key (``0``..``9``) that makes each 8-character body a valid FINESS number.

    Examples
    --------
    >>> check_digits(["01000002", "2A000021"]).tolist()  # published FINESS 010000024, 2A0000212
    [4, 2]
    """
    if len(bodies) == 0:
        return np.zeros(0, dtype=np.int64)
    mat = _digit_matrix(bodies, 8)
    with_zero = np.concatenate([mat, np.zeros((len(mat), 1), dtype=mat.dtype)], axis=1)
    return (10 - luhn_totals(with_zero) % 10) % 10
