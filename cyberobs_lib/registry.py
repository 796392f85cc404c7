"""The FINESS registry frame: number checks, departments and regions, categories, families, legal status.

Every mapping lives in a versioned CSV table in :mod:`cyberobs_lib.data` (source cited in its header):

* ``finess_categories.csv`` — FINESS category code → label, level-3 aggregate, family, sector;
* ``departments.csv`` — department → INSEE region, with the registry's own overseas codes (9A..9J);
* ``legal_status.csv`` — FINESS statut juridique codes (TRE_R72, also the SAE ``stj``) and labels →
  ``public`` / ``private_nonprofit`` / ``private_forprofit``.

Reading real FINESS extracts (open-data and SAE layouts) is :func:`cyberobs_lib.finess_extract.read_finess_extract`
(the floor above: it builds the registry with :func:`derive_establishments`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib import finess_key, text
from cyberobs_lib.config import PACKAGE_DATA

CATEGORIES_TABLE = PACKAGE_DATA / "finess_categories.csv"
DEPARTMENTS_TABLE = PACKAGE_DATA / "departments.csv"
LEGAL_STATUS_TABLE = PACKAGE_DATA / "legal_status.csv"

#: Letter values of the Corsican department letters in the check-key computation (domain.md).

__all__ = [
    "CATEGORIES_TABLE",
    "DEPARTMENTS_TABLE",
    "LEGAL_STATUS_TABLE",
    "UnknownCategoryError",
    "finess_key_ok",
    "finess_department",
    "finess_format_ok",
    "finess_lost_leading_zero",
    "load_categories",
    "load_departments",
    "load_legal_statuses",
    "department_region",
    "normalize_legal_status",
    "derive_establishments",
    "fold_text",
]


class UnknownCategoryError(ValueError):
    """Category codes (or labels) absent from the category table.

    Attributes
    ----------
    codes : list of str
        The unknown values, sorted.
    table_path : Path
        The table to extend.
    """

    def __init__(self, codes, table_path: Path | str = CATEGORIES_TABLE, *, what: str = "category code"):
        self.codes = sorted({str(c) for c in codes})
        self.table_path = Path(table_path)
        shown = ", ".join(self.codes[:20]) + (" …" if len(self.codes) > 20 else "")
        super().__init__(
            f"{len(self.codes)} unknown FINESS {what}(s): {shown}. "
            f"Add them to {self.table_path} (columns: category_code, label, aggregate_code, aggregate_label, "
            "family, sector), or give an explicit `family` column."
        )


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#", dtype=str, keep_default_na=False, encoding="utf-8")


def table_version(path: Path) -> str | None:
    """The ``# version: …`` line of a versioned mapping table's comment header (None without one)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            if line[1:].strip().lower().startswith("version:"):
                return line.split(":", 1)[1].strip()
    return None


@cache
def _cached(path: Path) -> pd.DataFrame:
    return _read_table(path)


def _load(path: Path) -> pd.DataFrame:
    out = _cached(path).copy()
    out.attrs["source_table"] = str(path)
    out.attrs["version"] = table_version(path)
    return out


def load_categories() -> pd.DataFrame:
    """Return the versioned FINESS category table shipped with the package.

    Returns
    -------
    pandas.DataFrame
        One row per category code: ``category_code`` (3-char str), ``label`` (official label as in the
        FINESS open-data extract), ``aggregate_code`` (level-3 aggregate, str, may be empty),
        ``aggregate_label``, ``family`` (cyberobs family), ``sector`` (``ES`` health establishment or
        ``ESMS`` social/medico-social). ``attrs["version"]`` holds the nomenclature version,
        ``attrs["source_table"]`` the file path.

    Notes
    -----
    Source and version are in the header comment of ``finess_categories.csv``. The frame is a copy:
    callers may modify it.

    Examples
    --------
    >>> cats = load_categories()
    >>> cats.set_index("category_code").loc["500", "family"]
    'EHPAD'
    """
    return _load(CATEGORIES_TABLE)


def load_departments() -> pd.DataFrame:
    """Return the department table: ``department``, ``name``, ``region_code``, ``region_name``,
    ``registry_code`` (FINESS's own code, e.g. ``9A``), ``finess_prefix`` (overseas number prefix).

    Examples
    --------
    >>> load_departments().set_index("department").loc["2A", "region_code"]
    '94'
    """
    return _load(DEPARTMENTS_TABLE)


def load_legal_statuses() -> pd.DataFrame:
    """Return the legal-status table: ``value``, ``legal_status`` (empty = unknown), ``kind``
    (``finess_code`` or ``label``), ``label``.

    Examples
    --------
    >>> t = load_legal_statuses().set_index("value")
    >>> t.loc["13", "legal_status"], t.loc["95", "legal_status"]
    ('public', 'private_forprofit')
    """
    return _load(LEGAL_STATUS_TABLE)


def fold_text(values: pd.Series) -> pd.Series:
    """Case-, accent- and whitespace-insensitive key for label matching (:func:`cyberobs_lib.text.fold_series`).

    Examples
    --------
    >>> fold_text(pd.Series(["  Hôpital  des Armées "])).tolist()
    ['hopital des armees']
    """
    return text.fold_series(values)


# --------------------------------------------------------------------------------------------------
# FINESS numbers
# --------------------------------------------------------------------------------------------------
def _clean_finess(finess: pd.Series) -> pd.Series:
    return pd.Series(finess, copy=False).astype("string").str.strip().str.upper()


def finess_department(finess: pd.Series) -> pd.Series:
    """Department of a FINESS number, read from its prefix.

    Parameters
    ----------
    finess : pandas.Series
        FINESS numbers (str; surrounding spaces ignored; case-insensitive).

    Returns
    -------
    pandas.Series
        ``string`` dtype: ``"01"``..``"95"`` (not ``"20"``), ``"2A"``, ``"2B"``, or an overseas code from
        ``departments.csv`` (``"971"``..``"976"``, ``"975"`` and ``"986"`` being collectivities);
        ``<NA>`` when the prefix is not a valid department.

    Notes
    -----
    Metropolitan numbers start with the two-character department. Overseas numbers start with four
    characters that name the territory (``9701`` Guadeloupe … ``9704`` Réunion, ``9705``
    Saint-Pierre-et-Miquelon, ``9805`` Mayotte, ``9806`` Wallis-et-Futuna); the table column
    ``finess_prefix`` holds them. Only the prefix is read: use :func:`finess_format_ok` for the whole number.

    Examples
    --------
    >>> finess_department(pd.Series(["010000024", "2A0000156", "970100384", "980500011", "200000000"])).tolist()
    ['01', '2A', '971', '976', <NA>]
    """
    s = _clean_finess(finess)
    deps = load_departments()
    metro = set(deps.loc[deps["finess_prefix"] == "", "department"])
    overseas = dict(
        zip(
            deps.loc[deps["finess_prefix"] != "", "finess_prefix"],
            deps.loc[deps["finess_prefix"] != "", "department"],
            strict=True,
        )
    )
    p2 = s.str[:2]
    out = p2.where(p2.isin(metro))
    over = s.str[:4].map(overseas).astype("string")
    out = out.where(~s.str[:2].isin(["97", "98"]), over)
    return out.astype("string").rename(getattr(finess, "name", None))


def finess_format_ok(finess: pd.Series) -> pd.Series:
    """True when a FINESS number has 9 characters, a valid department prefix and digits elsewhere.

    Returns
    -------
    pandas.Series
        ``bool`` dtype; missing values give ``False``.

    Examples
    --------
    >>> finess_format_ok(pd.Series(["010000024", "01000002", "2B0000178", "9A0000000", None])).tolist()
    [True, False, True, False, False]
    """
    s = _clean_finess(finess)
    rest_digits = s.str[2:].str.fullmatch(r"[0-9]{7}")
    ok = (s.str.len() == 9) & rest_digits & finess_department(s).notna()
    return ok.fillna(False).astype(bool).rename(getattr(finess, "name", None))


def finess_lost_leading_zero(finess: pd.Series) -> pd.Series:
    """True where a FINESS number looks like one whose leading zero a spreadsheet dropped.

    An 8-digit number (``10000024``) whose zero-padded form (``010000024``) has a valid format, i.e. a
    number of departments 01 to 09 read as an integer by a spreadsheet and written back without its
    zero. Whether the padded number also passes :func:`finess_key_ok` is for the caller to check.

    Returns
    -------
    pandas.Series
        ``bool`` dtype; missing values give ``False``.

    Examples
    --------
    >>> finess_lost_leading_zero(pd.Series(["10000024", "010000024", "00000002", "1000002A", None])).tolist()
    [True, False, False, False, False]
    """
    s = _clean_finess(finess)
    lost = s.str.fullmatch(r"[0-9]{8}").fillna(False).astype(bool)
    lost &= finess_format_ok("0" + s.where(lost, ""))
    return lost.astype(bool).rename(getattr(finess, "name", None))


def finess_key_ok(finess: pd.Series) -> pd.Series:
    """True when the 9th character of a FINESS number satisfies the Luhn check.

    Parameters
    ----------
    finess : pandas.Series
        FINESS numbers.

    Returns
    -------
    pandas.Series
        ``bool`` dtype; ``False`` for numbers that fail :func:`finess_format_ok` or missing values.

    Notes
    -----
    Luhn mod 10 over the 9 characters, the rightmost being the key; Corsican letters count as ``A = 1``,
    ``B = 2`` (:mod:`cyberobs_lib.finess_key`, the package's one implementation of the rule; domain.md:
    this holds for all 4,619 numeric and 76 Corsican numbers of the FINESS hospital extract). No
    official algorithm is published, so callers treat ``False`` as a warning, not a rejection. Computed
    once per distinct well-formed number.

    References
    ----------
    ISO/IEC 7812-1 Annex B (Luhn formula).

    Examples
    --------
    >>> finess_key_ok(pd.Series(["010000024", "010000025", "2A0000212", "xx"])).tolist()
    [True, False, True, False]
    """
    s = _clean_finess(finess)
    fmt = finess_format_ok(s)
    uniq = pd.unique(s[fmt].to_numpy(dtype=object))
    ok_map = dict(zip(uniq, finess_key.key_ok(uniq), strict=True))
    result = s.map(ok_map).astype("boolean").fillna(False).astype(bool)
    return result.rename(getattr(finess, "name", None))


def department_region(department: pd.Series) -> pd.Series:
    """INSEE region code of a department.

    Parameters
    ----------
    department : pandas.Series
        Department codes: ``"01"``..``"95"``, ``"2A"``/``"2B"``, ``"971"``..``"976"``; also the FINESS
        registry's own codes ``"9A"``..``"9F"`` and one-digit metropolitan codes written without their
        leading zero (``"1"`` → ``"01"``).

    Returns
    -------
    pandas.Series
        ``string`` dtype, 2-digit INSEE region code (``"84"``, ``"94"``, ``"01"`` …), ``<NA>`` when the
        department is unknown or is a collectivity outside the regions (975, 986).

    Notes
    -----
    Regions as defined since 2016-01-01 (INSEE code officiel géographique), table ``departments.csv``.

    Examples
    --------
    >>> department_region(pd.Series(["01", "2B", "9D", "976", "7", "99", None])).tolist()
    ['84', '94', '04', '06', '84', <NA>, <NA>]
    """
    deps = load_departments()
    lookup = dict(zip(deps["department"], deps["region_code"], strict=True))
    lookup.update(dict(zip(deps["registry_code"], deps["region_code"], strict=True)))
    s = pd.Series(department, copy=False).astype("string").str.strip().str.upper()
    s = s.where(~s.str.fullmatch(r"[1-9]").fillna(False), "0" + s)
    out = s.map(lookup).astype("string")
    return out.where(out != "", pd.NA).rename(getattr(department, "name", None))


def normalize_legal_status(values: pd.Series) -> pd.Series:
    """Canonical legal status from canonical words, FINESS statut juridique codes, SAE ``stj`` codes or labels.

    Parameters
    ----------
    values : pandas.Series
        Free values: ``public`` / ``private_nonprofit`` / ``private_forprofit``; FINESS TRE_R72 codes
        (``"13"``, ``"60"``, ``"95"``; one-digit codes are zero-padded, integers accepted); labels of the
        FINESS open-data extract (``"Etablissement public de santé"``, ``"ESPIC"`` …).

    Returns
    -------
    pandas.Series
        ``string`` dtype with ``public``, ``private_nonprofit``, ``private_forprofit`` or ``<NA>`` (missing,
        unknown, ``Non concerné``, ``indéterminé``).

    Notes
    -----
    Mapping table ``legal_status.csv`` (TRE_R72 grouping, cross-checked against SAE ``stjr``). Matching is
    case-, accent- and whitespace-insensitive.

    Examples
    --------
    >>> normalize_legal_status(pd.Series(["13", "6", "61", "95", "Public", "ESPIC", "Non concerné", "zz"])).tolist()
    ['public', 'public', 'private_nonprofit', 'private_forprofit', 'public', 'private_nonprofit', <NA>, <NA>]
    """
    table = load_legal_statuses()
    lookup = dict(zip(fold_text(table["value"]), table["legal_status"], strict=True))
    s = pd.Series(values, copy=False)
    if pd.api.types.is_float_dtype(s):
        s = s.astype("Int64")
    s = s.astype("string").str.strip()
    s = s.where(~s.str.fullmatch(r"[0-9]").fillna(False), "0" + s)
    out = fold_text(s).map(lookup).astype("string")
    return out.where(out != "", pd.NA).rename(getattr(values, "name", None))


# --------------------------------------------------------------------------------------------------
# The establishments frame
# --------------------------------------------------------------------------------------------------
def derive_establishments(
    est: pd.DataFrame, *, categories: pd.DataFrame | None = None, unknown_family: str | None = None
) -> pd.DataFrame:
    """Add derived registry columns to an establishments frame.

    Parameters
    ----------
    est : pandas.DataFrame
        At least ``finess`` and ``category_code``; optional ``legal_status``, ``department``, ``region``,
        ``family`` (explicit override), other columns kept.
    categories : pandas.DataFrame, optional
        A category table shaped like :func:`load_categories` (default: the packaged one).
    unknown_family : str, optional
        When given, rows whose category code is unknown (and have no explicit family) get this family
        instead of raising; their codes are listed in ``attrs["unknown_categories"]``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``est`` with ``category_code`` as 3-char ``string`` (integers zero-padded), and:

        * ``department`` — given value kept (registry codes ``9A``.. translated to ``971``..), else derived
          from ``finess`` (:func:`finess_department`);
        * ``region`` — given value kept, else :func:`department_region`;
        * ``family`` — explicit non-empty value wins, else the category table's family;
        * ``family_source`` — ``"explicit"``, ``"category"`` or ``"unknown"`` (``unknown_family`` used);
        * ``aggregate_code``, ``sector`` — from the category table;
        * ``legal_status`` — :func:`normalize_legal_status` of the given column (``<NA>`` when absent);
        * ``finess_key_ok`` — :func:`finess_key_ok` (a warning flag, never a rejection).

        ``attrs["categories_version"]`` records the nomenclature version used.

    Raises
    ------
    UnknownCategoryError
        When a category code is not in the table and the row has no explicit family; lists the codes and
        the table path.
    KeyError
        When ``finess`` or ``category_code`` is missing.

    Examples
    --------
    >>> est = pd.DataFrame({"finess": ["010000024", "750100042"], "category_code": [355, "101"],
    ...                     "family": [None, "CHU"]})
    >>> out = derive_establishments(est)
    >>> out[["category_code", "department", "region", "family", "aggregate_code"]].values.tolist()
    [['355', '01', '84', 'CH', '1102'], ['101', '75', '11', 'CHU', '1101']]
    """
    missing = [c for c in ("finess", "category_code") if c not in est.columns]
    if missing:
        raise KeyError(f"establishments frame lacks required column(s): {', '.join(missing)}")
    cats = load_categories() if categories is None else categories
    out = est.copy()
    code = out["category_code"]
    if pd.api.types.is_float_dtype(code):
        code = code.astype("Int64")
    code = code.astype("string").str.strip().str.zfill(3)
    out["category_code"] = code
    by_code = cats.set_index("category_code")
    known = code.isin(by_code.index)

    explicit = (
        out["family"].astype("string").str.strip().replace("", pd.NA)
        if "family" in out.columns
        else pd.Series(pd.NA, index=out.index, dtype="string")
    )
    bad = ~known & explicit.isna()
    unknown_codes = sorted(code[bad].fillna("<missing>").unique().tolist())
    if bad.any() and unknown_family is not None:
        explicit = explicit.mask(bad, unknown_family)
    elif bad.any():
        raise UnknownCategoryError(
            code[bad].fillna("<missing>").unique(), cats.attrs.get("source_table", CATEGORIES_TABLE)
        )

    derived_family = code.map(by_code["family"]).astype("string")
    out["family"] = explicit.fillna(derived_family)
    source = np.where(bad, "unknown", np.where(explicit.notna(), "explicit", "category"))
    out["family_source"] = pd.Series(source, index=out.index, dtype="string")
    out["aggregate_code"] = code.map(by_code["aggregate_code"]).astype("string").replace("", pd.NA)
    out["sector"] = code.map(by_code["sector"]).astype("string")

    derived_dep = finess_department(out["finess"])
    if "department" in out.columns:
        given = out["department"].astype("string").str.strip().replace("", pd.NA)
        deps = load_departments()
        given = given.replace(dict(zip(deps["registry_code"], deps["department"], strict=True)))
        out["department"] = given.fillna(derived_dep)
    else:
        out["department"] = derived_dep
    derived_reg = department_region(out["department"])
    if "region" in out.columns:
        out["region"] = out["region"].astype("string").str.strip().replace("", pd.NA).fillna(derived_reg)
    else:
        out["region"] = derived_reg
    if "legal_status" in out.columns:
        out["legal_status"] = normalize_legal_status(out["legal_status"])
    else:
        out["legal_status"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["finess_key_ok"] = finess_key_ok(out["finess"])
    out.attrs["categories_version"] = cats.attrs.get("version")
    out.attrs["unknown_categories"] = unknown_codes
    return out
