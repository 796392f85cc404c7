"""Severity: CVSS vectors scored with the ``cvss`` package, scanner-native scales mapped by a table.

Scoring is done once per distinct vector (a few hundred distinct vectors among millions of findings),
then mapped back with a categorical lookup.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from cyberobs_lib.normalize._unique import categorical_from, factorize_na, map_unique
from cyberobs_lib.parsing import score_cvss_vector
from cyberobs_lib.schema import SEVERITIES
from cyberobs_lib.severity_tables import CVSS_BANDS_TABLE, cvss_bands, scanner_severity_table

SEVERITY_TABLE = CVSS_BANDS_TABLE
#: Scales of ``scanner_severity.csv`` whose native values are severities (not item types, checks or ports).
NATIVE_SEVERITY_SCALES = ("severity", "risk", "threat")


@cache
def _native_lookup() -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """``(scanner, native) -> severity`` and ``any-scanner word -> severity`` from ``scanner_severity.csv``."""
    t = scanner_severity_table()
    rows = t.loc[t["scale"].isin(NATIVE_SEVERITY_SCALES) & (t["scanner"] != "any")]
    specific: dict[tuple[str, str], str] = {}
    for scanner, native, severity in rows[["scanner", "native", "severity"]].itertuples(index=False):
        if specific.setdefault((scanner, native), severity) != severity:
            raise ValueError(f"scanner_severity.csv: {scanner} {native!r} has two severities")
    words = t.loc[(t["scanner"] == "any") & (t["scale"] == "word")]
    return specific, dict(zip(words["native"], words["severity"], strict=True))


def load_severitycvss_bands() -> pd.DataFrame:
    """Return the CVSS band table (``kind``, ``scale``, ``value``, ``min_score``, ``max_score``, ``severity``).

    Examples
    --------
    >>> t = load_severitycvss_bands()
    >>> sorted(t.loc[t["kind"] == "band", "scale"].unique())
    ['cvss2', 'cvss3', 'cvss4']
    """
    return cvss_bands().copy()


def score_band(scores: pd.Series, *, scale: str | pd.Series = "cvss3") -> pd.Series:
    """Qualitative severity of CVSS base scores by the standard bands of ``severity_bands.csv``.

    Parameters
    ----------
    scores : pandas.Series
        Base scores 0–10 (NaN allowed).
    scale : str or pandas.Series, default "cvss3"
        ``cvss2``, ``cvss3`` or ``cvss4`` for every row, or a Series of them aligned with ``scores``.

    Returns
    -------
    pandas.Series
        ``string`` dtype, canonical severity or ``<NA>`` (missing score, unknown scale, out of range).

    Notes
    -----
    FIRST bands for v3.x and v4.0 (0.0 → ``info``); NVD bands for v2 (no critical: 7.0–10.0 is high).

    Examples
    --------
    >>> score_band(pd.Series([0.0, 3.9, 4.0, 8.9, 9.0, 9.8])).tolist()
    ['info', 'low', 'medium', 'high', 'critical', 'critical']
    >>> score_band(pd.Series([9.8]), scale="cvss2").tolist()
    ['high']
    """
    s = pd.Series(scores, copy=False).astype(float)
    scl = pd.Series(scale, index=s.index) if isinstance(scale, str) else pd.Series(scale, copy=False)
    out = pd.Series(pd.NA, index=s.index, dtype="string")
    bands = cvss_bands()
    bands = bands[bands["kind"] == "band"]
    rounded = s.round(1)
    for row in bands.itertuples(index=False):  # a dozen bands, each a vectorized comparison
        hit = (scl == row.scale) & (rounded >= float(row.min_score)) & (rounded <= float(row.max_score))
        out = out.mask(hit.fillna(False), row.severity)
    return out


def cvss_severity(vectors: pd.Series) -> pd.DataFrame:
    """Score CVSS v2, v3.0, v3.1 and v4.0 vectors and band the base score.

    Parameters
    ----------
    vectors : pandas.Series
        Vector strings: ``CVSS:4.0/…``, ``CVSS:3.1/…``, ``CVSS:3.0/…``, or a v2 vector (``AV:N/AC:L/…``,
        also with Nessus's ``CVSS2#`` prefix or NVD's parentheses). Missing values allowed.

    Returns
    -------
    pandas.DataFrame
        Same index: ``cvss_version`` (``"2.0"``, ``"3.0"``, ``"3.1"``, ``"4.0"`` or ``<NA>``), ``cvss_score``
        (float base score, NaN when missing/invalid), ``severity`` (band of the score: FIRST bands for v3/v4,
        NVD bands for v2), ``cvss_error`` (reason when a non-empty vector could not be scored, else ``<NA>``).

    Notes
    -----
    Scores come from :func:`cyberobs_lib.parsing.score_cvss_vector` (the ``cvss`` package, the same
    parsing that validation applies). Each distinct vector is scored once.

    References
    ----------
    FIRST, CVSS v3.1 Specification Document (section 7.4 examples); CVSS v4.0 Specification; NVD CVSS
    calculators (https://nvd.nist.gov/vuln-metrics/cvss).

    Examples
    --------
    >>> out = cvss_severity(pd.Series(["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    ...                                "AV:N/AC:L/Au:N/C:P/I:P/A:P", None, "garbage"]))
    >>> out[["cvss_version", "cvss_score", "severity"]].values.tolist()
    [['3.1', 9.8, 'critical'], ['2.0', 7.5, 'high'], [nan, nan, nan], [nan, nan, nan]]
    >>> out["cvss_error"].notna().tolist()
    [False, False, False, True]
    """
    s = pd.Series(vectors, copy=False)
    codes, uniques = factorize_na(s)
    scored = [
        (None, np.nan, None) if u is None or not str(u).strip() else score_cvss_vector(str(u))
        for u in uniques
    ]
    ver = np.array([x[0] for x in scored], dtype=object)
    score = np.array([x[1] for x in scored], dtype=float)
    err = np.array([x[2] for x in scored], dtype=object)
    scale = np.array(["cvss" + v[0] if v else None for v in ver], dtype=object)
    u_sev = score_band(pd.Series(score), scale=pd.Series(scale)).to_numpy(dtype=object, na_value=None)
    return pd.DataFrame(
        {
            "cvss_version": categorical_from(codes, ver, s.index),
            "cvss_score": score[codes],
            "severity": categorical_from(codes, u_sev, s.index).cat.set_categories(list(SEVERITIES)),
            "cvss_error": categorical_from(codes, err, s.index),
        },
        index=s.index,
    )


def scanner_severity(values: pd.Series, *, scanner: pd.Series | str | None = None) -> pd.Series:
    """Map scanner-native severities to the canonical scale with ``scanner_severity.csv`` (the table the
    scanner readers apply: scales ``severity``, ``risk``, ``threat``, then the ``any,word`` rows).

    Parameters
    ----------
    values : pandas.Series
        Native values (``"4"``, ``"High"``, ``"Urgent"``, ``"Log"`` …); integers accepted.
    scanner : pandas.Series or str, optional
        Scanner name per row (``nessus``, ``openvas``, ``qualys``, ``nuclei``, ``testssl``; anything after a
        ``:`` or space is ignored). Scanner-specific rows are tried first, then the any-scanner words.

    Returns
    -------
    pandas.Series
        Categorical canonical severity (categories ``schema.SEVERITIES``), missing when unmapped (e.g. ``WARN``, ``False Positive``,
        a bare digit without a scanner).

    Examples
    --------
    >>> scanner_severity(pd.Series(["4", "Urgent", "Log", "High", "critique", "7"]),
    ...                  scanner=pd.Series(["nessus", "qualys", "openvas", "nuclei", None, "nessus"])).tolist()
    ['critical', 'critical', 'info', 'high', 'critical', nan]
    """
    v = pd.Series(values, copy=False)
    if pd.api.types.is_float_dtype(v):
        v = v.astype("Int64")
    v = map_unique(v, lambda u: u.str.strip().str.lower())
    if scanner is None:
        sc = pd.Series(pd.NA, index=v.index, dtype="string")
    elif isinstance(scanner, str):
        sc = pd.Series(scanner, index=v.index, dtype="string")
    else:
        sc = pd.Series(scanner, copy=False)
    sc = map_unique(sc, lambda u: u.str.lower().str.extract(r"^\s*([a-z0-9_.-]+)", expand=False))
    specific, generic = _native_lookup()
    sc_codes, sc_u = factorize_na(sc)
    sc_u = ["" if x is None else x for x in sc_u]
    v_codes, v_u = pd.factorize(v, use_na_sentinel=True)
    key = sc_codes.astype(np.int64) * (len(v_u) + 1) + (v_codes + 1)
    ukeys, inverse = np.unique(key, return_inverse=True)

    def _one(k: int) -> object:
        s_name, vi = sc_u[k // (len(v_u) + 1)], k % (len(v_u) + 1) - 1
        if vi < 0:
            return None
        val = v_u[vi]
        if (s_name, val) in specific:
            return specific[(s_name, val)] or None
        return generic.get(val) or None

    mapped = np.array([_one(int(k)) for k in ukeys], dtype=object)
    return categorical_from(inverse.reshape(-1), mapped, v.index).cat.set_categories(list(SEVERITIES))


def resolve_severity(
    given: pd.Series, *, cvss: pd.Series, scanner: pd.Series
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Pick the canonical severity and say where it came from.

    Parameters
    ----------
    given : pandas.Series
        The input ``severity`` column (kept when it is a canonical word).
    cvss : pandas.Series
        Severity from the vector (:func:`cvss_severity`).
    scanner : pandas.Series
        Severity from the scanner's native scale (:func:`scanner_severity`).

    Returns
    -------
    tuple of pandas.Series
        ``severity`` (string), ``severity_source`` (``given`` | ``cvss`` | ``scanner`` | ``unknown``),
        ``severity_mismatch`` (bool: the vector's band differs from the scanner's own rating, which is the
        canonical given severity when there is one, else the mapped native value).

    Notes
    -----
    Precedence: a canonical given severity, then the vector's band, then the scanner's scale. The scanner's
    value and the vector's value are both kept by the caller; a disagreement is flagged, never resolved
    silently.

    Examples
    --------
    >>> sev, src, mis = resolve_severity(pd.Series([None, "LOW", None, None]),
    ...     cvss=pd.Series(["high", None, None, "critical"]), scanner=pd.Series(["high", "high", "medium", "high"]))
    >>> sev.tolist(), src.tolist(), mis.tolist()
    (['high', 'low', 'medium', 'critical'], ['cvss', 'given', 'scanner', 'cvss'], [False, False, False, True])
    >>> resolve_severity(pd.Series(["low"]), cvss=pd.Series(["high"]), scanner=pd.Series([None]))[2].tolist()
    [True]
    """
    g = pd.Series(given, copy=False)
    index = g.index
    gc = (
        map_unique(g, lambda u: u.str.strip().str.lower())
        .cat.set_categories(list(SEVERITIES))
        .cat.codes.to_numpy()
    )

    def _codes(x: pd.Series) -> np.ndarray:
        x = pd.Series(x, copy=False)
        if not isinstance(x.dtype, pd.CategoricalDtype):
            x = x.astype("category")
        return x.cat.set_categories(list(SEVERITIES)).cat.codes.to_numpy()

    cc, sc = _codes(cvss), _codes(scanner)
    sev = np.where(gc >= 0, gc, np.where(cc >= 0, cc, sc))
    src_codes = np.where(gc >= 0, 0, np.where(cc >= 0, 1, np.where(sc >= 0, 2, 3)))
    theirs = np.where(gc >= 0, gc, sc)
    mismatch = (cc >= 0) & (theirs >= 0) & (cc != theirs)
    severity = pd.Series(pd.Categorical.from_codes(sev, categories=list(SEVERITIES)), index=index)
    sources = ["given", "cvss", "scanner", "unknown"]
    source = pd.Series(pd.Categorical.from_codes(src_codes, categories=sources), index=index)
    return severity, source, pd.Series(mismatch, index=index)
