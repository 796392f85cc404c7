"""Finding categories from a rules table (ports and services, scanner ids and titles, CWE, CVE, KEV)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import numpy as np
import pandas as pd

from cyberobs_lib.config import PACKAGE_DATA
from cyberobs_lib.normalize._unique import map_unique
from cyberobs_lib.schema import FINDING_CATEGORIES

CATEGORY_RULES_TABLE = PACKAGE_DATA / "category_rules.csv"
RULE_FIELDS = ("kev", "cve", "port", "service", "vuln_id", "title", "cwe")


class CategoryRulesError(ValueError):
    """The rules table names an unknown field or category, or holds an invalid regular expression."""


@cache
def _rules() -> pd.DataFrame:
    t = pd.read_csv(CATEGORY_RULES_TABLE, comment="#", dtype=str, keep_default_na=False)
    return t


def load_category_rules() -> pd.DataFrame:
    """Return the rules table sorted by priority: ``priority`` (int), ``field``, ``pattern``, ``category``, ``note``.

    Examples
    --------
    >>> load_category_rules().iloc[0][["field", "category"]].tolist()
    ['kev', 'known_exploited']
    """
    t = _rules().copy()
    t["priority"] = t["priority"].astype(int)
    return t.sort_values("priority", kind="stable").reset_index(drop=True)


def _check(rules: pd.DataFrame) -> None:
    bad_field = sorted(set(rules["field"]) - set(RULE_FIELDS))
    bad_cat = sorted(set(rules["category"]) - set(FINDING_CATEGORIES))
    if bad_field or bad_cat:
        raise CategoryRulesError(
            f"category rules: unknown field(s) {bad_field} (allowed {list(RULE_FIELDS)}), "
            f"unknown category(ies) {bad_cat} (allowed {list(FINDING_CATEGORIES)})"
        )
    for p in rules.loc[~rules["field"].isin(["kev", "port"]), "pattern"]:
        try:
            re.compile(p)
        except re.error as exc:
            raise CategoryRulesError(f"category rules: invalid regular expression {p!r}: {exc}") from exc


def _factorized(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes), pd.Series(uniques, dtype=object).astype("string")


def _unique_hits(u: pd.Series, field: str, pattern: str) -> np.ndarray:
    """Boolean per distinct value (plus a trailing False for missing values)."""
    if field == "port":
        hit = (pd.to_numeric(u, errors="coerce") == float(pattern)).to_numpy()
    elif field == "service":
        hit = (u.str.strip().str.lower() == pattern.lower()).fillna(False).to_numpy()
    else:
        rx = re.compile(pattern, re.IGNORECASE)
        hit = np.array([bool(rx.search(v)) for v in u.fillna("")], dtype=bool)
    return np.append(np.asarray(hit, dtype=bool), False)


def categorize_findings(
    frame: pd.DataFrame, *, kev_cves: Iterable[str] | None = None, rules: pd.DataFrame | None = None
) -> pd.Series:
    """Category of each finding from the rules table; a valid given ``category`` is kept.

    Parameters
    ----------
    frame : pandas.DataFrame
        Findings with any of ``port``, ``service``, ``vuln_id``, ``title``, ``cwe``, ``cve`` (normalized list,
        see :func:`~cyberobs_lib.normalize.cve.normalize_cve`) and ``category``; missing columns never match.
    kev_cves : iterable of str, optional
        CVE ids of the KEV catalog; without it the ``kev`` rule never matches (membership unknown).
    rules : pandas.DataFrame, optional
        A rules table shaped like :func:`load_category_rules` (default: ``category_rules.csv``).

    Returns
    -------
    pandas.Series
        Categorical (categories ``schema.FINDING_CATEGORIES``; ``other`` when no rule matches).

    Raises
    ------
    CategoryRulesError
        When the rules table is invalid.

    Notes
    -----
    Rules are tried by ascending priority and the first match wins, so KEV listing (priority 10) beats an
    exposed-port rule. Each rule is evaluated on the distinct values of its field only.

    Examples
    --------
    >>> f = pd.DataFrame({"port": [3389, 443, 80, 3389, 8080], "title": ["RDP", "SSL Certificate Expired",
    ...     "Apache 2.2 end-of-life", "BlueKeep", "Web Server"], "cve": [None, None, None, "CVE-2019-0708", None]})
    >>> categorize_findings(f, kev_cves=["CVE-2019-0708"]).tolist()
    ['exposed_remote_admin', 'tls_certificate', 'unsupported_software', 'known_exploited', 'other']
    """
    table = load_category_rules() if rules is None else rules.sort_values("priority", kind="stable")
    _check(table)
    n = len(frame)
    cats = list(FINDING_CATEGORIES)
    out = np.full(n, -1, dtype=np.int8)  # category codes; -1 = not decided yet
    if "category" in frame.columns:
        given = map_unique(frame["category"], lambda u: u.str.strip().str.lower())
        out = given.cat.set_categories(cats).cat.codes.to_numpy().astype(np.int8)
    kev_hit = None
    if kev_cves is not None and "cve" in frame.columns:
        kev_set = frozenset(kev_cves)
        codes, uniques = pd.factorize(frame["cve"], use_na_sentinel=True)
        hit_u = np.array(
            [any(c in kev_set for c in str(u).split(";")) for u in uniques] + [False], dtype=bool
        )
        kev_hit = hit_u[np.where(codes < 0, len(uniques), codes)]
    fields: dict[str, tuple[np.ndarray, pd.Series]] = {}
    for rule in table.itertuples(index=False):
        if rule.field == "kev":
            if kev_hit is None:
                continue
            hit = kev_hit
        elif rule.field not in frame.columns:
            continue
        else:
            if rule.field not in fields:
                fields[rule.field] = _factorized(frame[rule.field])
            codes, uniq = fields[rule.field]
            hit = _unique_hits(uniq, rule.field, rule.pattern)[codes]
        todo = (out < 0) & hit
        if todo.any():
            out[todo] = cats.index(rule.category)
    out[out < 0] = cats.index("other")
    return pd.Series(pd.Categorical.from_codes(out, categories=cats), index=frame.index, name="category")
