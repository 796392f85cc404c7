"""CVE identifiers: normalized case, separators and lists, computed once per distinct input string."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cyberobs_lib.normalize._unique import categorical_from, factorize_na, map_unique

#: A CVE id with any case and common separator damage (``cve_2021_44228``, ``CVE 2021-44228``, en dash).
CVE_PATTERN = re.compile(
    r"CVE[\s_\-\u2010-\u2015:]*(\d{4})[\s_\-\u2010-\u2015:]*(\d{1,7})(?!\d)", re.IGNORECASE
)


def _normalize_one(text: str) -> str | None:
    found = {(int(y), int(n)) for y, n in CVE_PATTERN.findall(text)}
    if not found:
        return None
    return ";".join(f"CVE-{y}-{n:04d}" for y, n in sorted(found))


def normalize_cve(values: pd.Series) -> pd.Series:
    """Normalize CVE identifiers and lists to ``"CVE-YYYY-NNNN;…"``, sorted and unique.

    Parameters
    ----------
    values : pandas.Series
        Free text holding zero or more CVE ids, in any case, separated by ``;``, ``,``, spaces, newlines
        or ``|``; underscores or dashes inside an id are accepted.

    Returns
    -------
    pandas.Series
        Categorical of str: canonical ids (upper case, ``-`` separators, the sequence number zero-padded to at
        least 4 digits as MITRE requires) joined by ``;``, sorted by year then number, duplicates removed;
        missing when the text holds no CVE id.

    Notes
    -----
    Sorting is numeric (``CVE-2021-9999`` before ``CVE-2021-10000``). Each distinct input string is parsed
    once, then mapped back (a few thousand distinct lists among millions of findings).

    References
    ----------
    MITRE CVE ID syntax (2014 change: 4 or more digits).

    Examples
    --------
    >>> normalize_cve(pd.Series(["cve-2021-44228, CVE_2017_0144", "CVE-2021-10000;CVE-2021-9999;cve-2021-9999",
    ...                          "none", None])).tolist()
    ['CVE-2017-0144;CVE-2021-44228', 'CVE-2021-9999;CVE-2021-10000', nan, nan]
    """
    s = pd.Series(values, copy=False)
    codes, uniques = factorize_na(s)
    mapped = np.array([None if u is None else _normalize_one(str(u)) for u in uniques], dtype=object)
    return categorical_from(codes, mapped, s.index).rename(getattr(values, "name", None))


def first_cve(cve_lists: pd.Series) -> pd.Series:
    """The smallest CVE of a normalized list (``"CVE-2017-0144;CVE-2021-44228"`` → ``"CVE-2017-0144"``).

    Examples
    --------
    >>> first_cve(pd.Series(["CVE-2017-0144;CVE-2021-44228", None])).tolist()
    ['CVE-2017-0144', nan]
    """
    return map_unique(cve_lists, lambda u: u.str.split(";", n=1).str[0])


def explode_cves(cve_lists: pd.Series) -> pd.DataFrame:
    """One row per (distinct list, CVE): columns ``cve_list`` and ``cve_id``, for joins against catalogs.

    Examples
    --------
    >>> explode_cves(pd.Series(["CVE-2017-0144;CVE-2021-44228", "CVE-2017-0144", None])).values.tolist()
    [['CVE-2017-0144;CVE-2021-44228', 'CVE-2017-0144'], ['CVE-2017-0144;CVE-2021-44228', 'CVE-2021-44228'], ['CVE-2017-0144', 'CVE-2017-0144']]
    """
    uniq = pd.Series(pd.Series(cve_lists, copy=False).dropna().unique(), dtype="string", name="cve_list")
    ex = uniq.str.split(";").explode()
    return pd.DataFrame({"cve_list": uniq.loc[ex.index].to_numpy(), "cve_id": ex.to_numpy()}).astype("string")
