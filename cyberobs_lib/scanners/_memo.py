"""Per-value conversions shared by the streaming XML readers (one memo per file, bounded)."""

from __future__ import annotations

import re

import pandas as pd

from cyberobs_lib.scanners._core import SKIP_REASONS, join_cves, map_severity

_DECIMAL = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,4})?$")
_MEMO_MAX = 4096  # bound of the per-value memos (they are cleared when full)


def score_or_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if value and value not in ("-", "'-") else None


class ValueMemo(dict):
    """Per-distinct-value conversions of one file (bounded)."""

    def __init__(self, scanner: str, include_info: bool) -> None:
        super().__init__()
        self.scanner = scanner
        self.include_info = include_info
        self.kinds: dict = {}  # (entry tag, severity) -> (scale, native, skip reason): a handful per file

    def put(self, key, value):
        if len(self) >= _MEMO_MAX:
            self.clear()
        self[key] = value
        return value

    def skip_reason(self, scale: str, native: str | None) -> str | None:
        """The skip reason the collector would give a row of ``(scale, native)`` (None: kept)."""
        key = ("skip", scale, native)
        if key not in self:
            disp = map_severity(
                self.scanner, pd.Series([scale], dtype=object), pd.Series([native], dtype=object)
            )["disposition"].iloc[0]
            keep = disp not in SKIP_REASONS or (disp == "info" and self.include_info)
            self.put(key, None if keep else SKIP_REASONS[disp])
        return self[key]

    def port(self, value: str | None):
        """Digit strings as ints (same value once the collector converts the column)."""
        key = ("port", value)
        if key not in self:
            num = int(value) if value and len(value) < 10 and value.isascii() and value.isdigit() else value
            self.put(key, num)
        return self[key]

    def number(self, value: str | None):
        """``value`` as a float when it is a plain decimal (converted as the collector does), else as is."""
        key = ("number", value)
        if key not in self:
            num = value
            if value is not None and _DECIMAL.match(value):
                num = float(pd.to_numeric(pd.Series([value], dtype=object)).astype(float).iloc[0])
            self.put(key, num)
        return self[key]

    def score(self, value: str | None):
        """``score_or_none(value)`` (a score cell: blank or ``-`` is None) through :meth:`number`."""
        key = ("score", value)
        if key not in self:
            self.put(key, self.number(score_or_none(value)))
        return self[key]

    def cves(self, values: tuple) -> str | None:
        key = ("cve", values)
        if key not in self:
            self.put(key, join_cves(values))
        return self[key]
