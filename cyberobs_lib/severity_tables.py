"""The two severity tables, each the one place of what it maps (lowest layer: imports only the config).

* ``data/scanner_severity.csv`` — scanner-native values (per scanner and native scale, plus words accepted
  from any scanner: ``any,word``) → canonical severity and disposition. The scanner readers apply it
  when they read an export (:func:`cyberobs_lib.scanners.map_severity`); normalisation applies the same
  table to native values that arrive without a canonical severity.
* ``data/severity_bands.csv`` — CVSS base-score bands (v2, v3.x, v4.0) → canonical severity, for scores
  computed from vectors (:func:`cyberobs_lib.normalize.severity.score_band`) and for the scanners that
  report only a score (the v3.x bands).

Both are read once per process (cached): callers must not mutate the returned frames.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from cyberobs_lib.config import PACKAGE_DATA

__all__ = ["CVSS_BANDS_TABLE", "SCANNER_SEVERITY_TABLE", "cvss_bands", "scanner_severity_table"]

SCANNER_SEVERITY_TABLE = PACKAGE_DATA / "scanner_severity.csv"
CVSS_BANDS_TABLE = PACKAGE_DATA / "severity_bands.csv"


@cache
def scanner_severity_table() -> pd.DataFrame:
    """``scanner``, ``scale``, ``native`` (stripped, lower-case), ``severity`` (``""`` = none), ``disposition``.

    Examples
    --------
    >>> t = scanner_severity_table()
    >>> t.loc[(t["scanner"] == "qualys") & (t["native"] == "urgent"), "severity"].tolist()
    ['critical']
    """
    table = pd.read_csv(SCANNER_SEVERITY_TABLE, comment="#", dtype=str, keep_default_na=False)
    table["native"] = table["native"].str.strip().str.lower()
    return table


@cache
def cvss_bands() -> pd.DataFrame:
    """``kind`` (``band``), ``scale`` (``cvss2``/``cvss3``/``cvss4``), ``value``, ``min_score``, ``max_score``,
    ``severity`` (strings, as written in the file).

    Examples
    --------
    >>> cvss_bands().query("scale == 'cvss3'")[["min_score", "severity"]].values.tolist()[-1]
    ['9.0', 'critical']
    """
    return pd.read_csv(CVSS_BANDS_TABLE, comment="#", dtype=str, keep_default_na=False)
