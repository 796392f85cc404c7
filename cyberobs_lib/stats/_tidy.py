"""One helper that turns result rows into the fixed ``tests.csv`` vocabulary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from cyberobs_lib.schema import TESTS_COLUMNS


def make_tests_table(rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Build a ``tests.csv``-shaped frame from dict rows; missing columns are NaN/empty.

    Unknown keys raise ``KeyError`` so that a typo never creates a new column silently.

    >>> make_tests_table([{"test": "wilcoxon", "p_value": 0.5}])[["test", "p_value"]]
           test  p_value
    0  wilcoxon      0.5
    """
    rows = list(rows)
    for row in rows:
        unknown = set(row) - set(TESTS_COLUMNS)
        if unknown:
            raise KeyError(f"not in the tests.csv vocabulary: {sorted(unknown)}")
    frame = pd.DataFrame(rows, columns=list(TESTS_COLUMNS))
    for col in ("n_a", "n_b"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    for col in ("statistic", "df", "p_value", "p_adjusted", "effect_size", "ci_low", "ci_high"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in (
        "study",
        "metric",
        "test",
        "variant",
        "group_a",
        "group_b",
        "adjust_method",
        "effect_size_kind",
        "ci_method",
    ):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def nan_if_none(x: object) -> float:
    return np.nan if x is None else float(x)


def median_of_known(values: pd.Series) -> float:
    """Median of the known values; NaN, without numpy's "Mean of empty slice" warning (it would be printed
    on a published page), when none is known (a metric nobody could measure).

    >>> median_of_known(pd.Series([3.0, None, 1.0])), median_of_known(pd.Series([None], dtype="Float64"))
    (2.0, nan)
    """
    known = values.dropna()
    return float(known.median()) if len(known) else np.nan
