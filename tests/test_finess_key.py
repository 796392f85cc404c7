"""The one Luhn implementation (cyberobs_lib.finess_key) against a textbook Luhn written here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib import finess_key, registry
from cyberobs_lib.demo import luhn_key
from cyberobs_lib.disclosure._detectors import finess_key_is_valid


def _textbook_luhn(number: str) -> bool:
    """ISO/IEC 7812-1 Annex B, written independently of the library; A=1, B=2."""
    digits = [int({"A": "1", "B": "2"}.get(c, c)) for c in number]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


def _random_numbers(n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    prefixes = rng.choice(["01", "13", "2A", "2B", "75", "9701"], size=n)
    rest = rng.integers(0, 10**5, size=n)
    return [f"{p}{r:0{9 - len(p)}d}" for p, r in zip(prefixes, rest, strict=True)]


def test_every_use_agrees_with_a_textbook_luhn():
    numbers = _random_numbers(2000)
    expected = [_textbook_luhn(n) for n in numbers]
    assert 100 < sum(expected) < 400  # about one number in ten passes: both outcomes are exercised
    assert finess_key.key_ok(numbers).tolist() == expected
    assert [finess_key_is_valid(n) for n in numbers] == expected
    assert [finess_key_is_valid(n.lower()) for n in numbers] == expected
    assert registry.finess_key_ok(pd.Series(numbers)).tolist() == expected


def test_check_digits_complete_every_body():
    bodies = [n[:8] for n in _random_numbers(500, seed=11)]
    keys = luhn_key(pd.Series(bodies))
    assert all(_textbook_luhn(b + k) for b, k in zip(bodies, keys, strict=True))
    assert [sum(_textbook_luhn(b + str(d)) for d in range(10)) for b in bodies] == [1] * len(bodies)


def test_scalar_check_rejects_malformed_numbers():
    assert not finess_key_is_valid("01000002")  # 8 characters
    assert not finess_key_is_valid("0100000240")
    assert not finess_key_is_valid("01000002x")
    assert not finess_key_is_valid("0100000²4")  # a digit that is not decimal
    assert finess_key_is_valid("٠١٠٠٠٠٠٢٤")  # Arabic-Indic digits of 010000024, as a text pattern finds them


def test_empty_inputs():
    assert finess_key.key_ok([]).tolist() == []
    assert finess_key.check_digits([]).tolist() == []
    assert registry.finess_key_ok(pd.Series([], dtype="string")).tolist() == []
