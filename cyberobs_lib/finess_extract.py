"""Read real FINESS extracts as the establishments source.

Three layouts are recognised from their columns (not from the file name):

* ``etalab`` — the FINESS open-data stock file (``etalab-cs1100507-stock-*.csv``): ``;``-separated, Latin-1
  or UTF-8, no header, a first metadata line ``finess;etalab;…``, establishment lines starting with
  ``structureet`` (32 fields: nofinesset, nofinessej, rs, rslongue, …, departement, libdepartement, …,
  categetab, libcategetab, categagretab, libcategagretab, siret, …) and geolocation lines that are skipped;
* ``opendata`` — a headered re-export using the open-data field names (``nofinesset``, ``nofinessej``,
  ``rs`` / ``rs_courte``, ``categetab`` and/or ``libcategetab`` / ``categorie_libelle``, ``departement`` /
  ``departement_code``, ``statut_juridique_lib`` …): category codes are recovered from labels through
  ``finess_categories.csv`` when only labels are present;
* ``sae`` — the DREES SAE survey table ``ID`` (``fi``, ``fi_ej``, ``rs``, ``stj``, ``cat``, ``dep``, ``reg``),
  ``;``-separated, Latin-1.

The delimiter (``;``, ``,``, tab) and the encoding (UTF-8 with or without BOM, UTF-16 with BOM, else
Latin-1/CP1252 chosen by charset_normalizer: :func:`cyberobs_lib.io.decode_bytes`) are detected.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from cyberobs_lib.io import InputFileError, decode_bytes, read_regular_file, sniff_delimiter
from cyberobs_lib.registry import (
    CATEGORIES_TABLE,
    UnknownCategoryError,
    derive_establishments,
    finess_department,
    fold_text,
    load_categories,
    load_departments,
)

#: Fields of an ``etalab`` ``structureet`` line, in order (FINESS open-data documentation, data.gouv.fr
#: "FINESS Extraction du Fichier des établissements", description of the stock file).
ETALAB_FIELDS = (
    "section", "nofinesset", "nofinessej", "rs", "rslongue", "complrs", "compldistrib", "numvoie",
    "typvoie", "voie", "compvoie", "lieuditbp", "commune", "departement", "libdepartement",
    "ligneacheminement", "telephone", "telecopie", "categetab", "libcategetab", "categagretab",
    "libcategagretab", "siret", "codeape", "codemft", "libmft", "codesph", "libsph", "dateouv",
    "dateautor", "datemaj", "numuai",
)  # fmt: skip

#: Column aliases of each layout -> contract column.
_ALIASES = {
    "opendata": {
        "finess": ("nofinesset",),
        "finess_ej": ("nofinessej",),
        "name": ("rs", "rs_courte", "rslongue", "rs_longue"),
        "category_code": ("categetab", "categorie_code", "categ_code"),
        "category_label": ("libcategetab", "categorie_libelle", "categ_lib"),
        "aggregate_label": ("libcategagretab", "categorie_groupe_libelle"),
        "department": ("departement", "departement_code"),
        "legal_status": ("statut_juridique", "statut_juridique_code", "statut_juridique_lib", "libsph"),
    },
    "sae": {
        "finess": ("fi",),
        "finess_ej": ("fi_ej",),
        "name": ("rs",),
        "category_code": ("cat",),
        "department": ("dep",),
        "region": ("reg",),
        "legal_status": ("stj",),
    },
}


class FinessExtractError(ValueError):
    """A file that is not a recognisable FINESS extract (message names the file and what was expected)."""


#: Delimiters of FINESS extracts, in order of preference on a tie (the open-data files use ';').
_DELIMITERS = (";", ",", "\t")


def _read_text(path: Path) -> str:
    try:
        raw = read_regular_file(path)  # a FIFO is never opened
    except InputFileError as exc:
        raise FinessExtractError(str(exc)) from exc
    if not raw.strip():
        raise FinessExtractError(f"{path}: empty file, expected a FINESS extract")
    return decode_bytes(raw)[0]  # UTF-8 with or without BOM, UTF-16 with BOM, else the detected code page


def _read_etalab(text: str) -> pd.DataFrame:
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=";") if r and r[0] == "structureet"]
    width = len(ETALAB_FIELDS)
    rows = [(r + [""] * width)[:width] for r in rows]
    frame = pd.DataFrame(rows, columns=list(ETALAB_FIELDS), dtype="string")
    return frame.rename(
        columns={
            "nofinesset": "finess",
            "nofinessej": "finess_ej",
            "categetab": "category_code",
            "libcategetab": "category_label",
            "libcategagretab": "aggregate_label",
            "departement": "department",
        }
    ).assign(name=lambda f: f["rs"])


def _pick(frame: pd.DataFrame, layout: str) -> pd.DataFrame:
    cols = {c.lower().strip(): c for c in frame.columns}
    out = {}
    for target, aliases in _ALIASES[layout].items():
        for a in aliases:
            if a in cols:
                out[target] = frame[cols[a]]
                break
    return pd.DataFrame(out, index=frame.index)


def _codes_from_labels(labels: pd.Series, path: Path) -> pd.Series:
    cats = load_categories()
    lookup = dict(zip(fold_text(cats["label"]), cats["category_code"], strict=True))
    codes = fold_text(labels).map(lookup).astype("string")
    unknown = labels[codes.isna() & labels.notna()]
    if len(unknown):
        raise UnknownCategoryError(unknown.unique(), CATEGORIES_TABLE, what="category label")
    return codes


def detect_layout(path: str | Path) -> str:
    """Name the layout of a FINESS extract: ``"etalab"``, ``"opendata"`` or ``"sae"``.

    Raises
    ------
    FinessExtractError
        For an empty or unreadable file, or one whose columns match no layout.
    """
    path = Path(path)
    text = _read_text(path)
    return _detect(text, path)[0]


def _detect(text: str, path: Path) -> tuple[str, str]:
    first = text.split("\n", 1)[0].strip("\r")
    if first.lower().startswith("finess;etalab") or first.startswith("structureet;"):
        return "etalab", ";"
    delim = sniff_delimiter(first, _DELIMITERS)
    header = {h.strip().strip('"').lower() for h in first.split(delim)}
    if "nofinesset" in header:
        return "opendata", delim
    if {"fi", "cat"} <= header:
        return "sae", delim
    raise FinessExtractError(
        f"{path}: line 1: not a FINESS extract; expected an etalab stock file (first line 'finess;etalab;…'), "
        "a header with 'nofinesset' (open-data layout) or with 'fi' and 'cat' (SAE layout); "
        f"got {first[:120]!r}"
    )


def read_finess_extract(
    path: str | Path, *, derive: bool = True, unknown_family: str | None = None
) -> pd.DataFrame:
    """Read a FINESS extract (etalab, open-data re-export or SAE layout) into an establishments frame.

    Parameters
    ----------
    path : str or Path
        The extract.
    derive : bool, default True
        Apply :func:`cyberobs_lib.registry.derive_establishments` (family, region, sector, key check …).
    unknown_family : str, optional
        Passed to ``derive_establishments``: family given to unknown category codes instead of raising.

    Returns
    -------
    pandas.DataFrame
        Contract columns ``finess``, ``finess_ej``, ``name``, ``category_code`` (3-char str; recovered from
        the label when the file has labels only), ``legal_status`` (canonical or ``<NA>``), ``department``
        (the registry's ``9A``.. codes translated; a value that is not a department, such as a phone
        number, is replaced by the one read from the FINESS number), ``region``; plus ``category_label``
        and ``aggregate_label`` when the file has them, ``source_file``, ``source_row`` (1-based data row),
        and with ``derive`` the columns added by ``derive_establishments``. ``attrs`` holds ``layout``
        and ``n_department_replaced``.

    Raises
    ------
    FinessExtractError
        Unreadable, empty or unrecognised file.
    UnknownCategoryError
        A category code or label absent from ``finess_categories.csv`` (lists them all).
    """
    path = Path(path)
    text = _read_text(path)
    layout, delim = _detect(text, path)
    if layout == "etalab":
        raw = _read_etalab(text)
        picked = raw[[c for c in ("finess", "finess_ej", "name", "category_code", "category_label",
                                  "aggregate_label", "department") if c in raw.columns]].copy()  # fmt: skip
    else:
        raw = pd.read_csv(io.StringIO(text), sep=delim, dtype="string", keep_default_na=False, na_values=[""])
        picked = _pick(raw, layout)
    if "finess" not in picked.columns:
        raise FinessExtractError(f"{path}: no FINESS number column found for layout {layout!r}")
    for col in picked.columns:
        picked[col] = picked[col].astype("string").str.strip().replace("", pd.NA)
    if "category_code" not in picked.columns:
        if "category_label" not in picked.columns:
            raise FinessExtractError(f"{path}: neither a category code nor a category label column")
        picked["category_code"] = _codes_from_labels(picked["category_label"], path)
    picked["category_code"] = picked["category_code"].str.zfill(3)

    deps = load_departments()
    valid = set(deps["department"]) | set(deps["registry_code"])
    from_number = finess_department(picked["finess"])
    n_replaced = 0
    if "department" in picked.columns:
        dep = picked["department"].str.upper()
        dep = dep.where(~dep.str.fullmatch(r"[1-9]").fillna(False), "0" + dep)
        bad = dep.notna() & ~dep.isin(valid)
        n_replaced = int(bad.sum())
        picked["department"] = dep.where(~bad, from_number)
    picked["source_file"] = str(path)
    picked["source_row"] = pd.RangeIndex(1, len(picked) + 1)
    out = derive_establishments(picked, unknown_family=unknown_family) if derive else picked
    out.attrs.update({"layout": layout, "n_department_replaced": n_replaced})
    return out
