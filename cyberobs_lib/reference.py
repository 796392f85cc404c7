"""The national frame: eligible establishments (FINESS) and the incident observatory's yearly series.

Two public sources are packaged as small versioned tables in ``cyberobs_lib/data/reference/`` (README.md
there), built by ``scripts/build_reference.py`` from the folder ``../shared/reference`` and replaceable
without code changes by ``cyberobs reference update FILE_OR_FOLDER`` (written to a user data folder, never
into the installed package):

* ``eligible_establishments.csv`` — FINESS geographic establishments (ET) counted per category code,
  department and public-hospital-service status (``codesph``), for the categories that
  ``finess_categories.csv`` maps to a cyberobs family (the eligible frame); counts only, no FINESS number
  or name;
* ``other_categories.csv`` — national counts of the FINESS categories outside the families (pharmacies,
  laboratories …), so that every row of the extraction is accounted for;
* ``incident_series.csv`` — the observatory's yearly figures (declarations, declaring structures, share
  malicious, ransomware, structure-type splits, degraded mode), one row per figure with its source;
* ``observatory_denominators.csv`` — establishment counts published by the observatory and by DREES;
* ``reference.json`` — per table: date, source, licence, row count, SHA-256; the caveats (en, fr).

Which folder is used (:func:`reference_dir`): an explicit ``path`` argument, else ``$CYBEROBS_REFERENCE_DIR``
when it holds a ``reference.json``, else the user data folder (``$XDG_DATA_HOME/cyberobs/reference``, by
default ``~/.local/share/cyberobs/reference``) when it holds one, else the packaged tables.
:func:`reference_info` says which, with the dates.

Statistics on the frame: :func:`national_coverage` (audited / national eligible, Clopper-Pearson),
:func:`compare_registry` (a dataset's registry against the nation), :func:`national_incident_rates`
(declarations per 1,000 eligible establishments, Garwood exact Poisson) and
:func:`dataset_share_of_national` (a dataset's declarations as a share of the national total).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from cyberobs_lib.config import PACKAGE_DATA
from cyberobs_lib.finess_extract import ETALAB_FIELDS
from cyberobs_lib.io import (
    InputFileError,
    decode_bytes,
    read_regular_file,
    sha256_file,
    sniff_delimiter,
    write_text_atomic,
)
from cyberobs_lib.registry import (
    department_region,
    finess_department,
    load_categories,
    load_departments,
    table_version,
)
from cyberobs_lib.stats.rates import rate_per_1000

log = logging.getLogger("cyberobs.reference")

__all__ = [
    "REFERENCE_ENV_VAR",
    "PACKAGED_REFERENCE",
    "SPH_STATUS_TABLE",
    "TABLE_FILES",
    "ELIGIBLE_COLUMNS",
    "SERIES_COLUMNS",
    "Reference",
    "ReferenceSourceError",
    "RegistryComparison",
    "FinessSource",
    "user_reference_dir",
    "reference_dir",
    "load_reference",
    "reference_info",
    "eligible_counts",
    "incident_series",
    "caveat_text",
    "national_coverage",
    "registry_scope",
    "compare_registry",
    "national_incident_rates",
    "dataset_share_of_national",
    "detect_source_kind",
    "read_finess_source",
    "read_incident_series",
    "read_observatory_denominators",
    "build_finess_tables",
    "build_reference",
    "update_reference",
]

#: Environment variable naming the user reference folder (read when it holds ``reference.json``; written by
#: ``cyberobs reference update``).
REFERENCE_ENV_VAR = "CYBEROBS_REFERENCE_DIR"
#: The packaged reference tables.
PACKAGED_REFERENCE = PACKAGE_DATA / "reference"
#: ``codesph`` -> status rule table (packaged, versioned).
SPH_STATUS_TABLE = PACKAGED_REFERENCE / "sph_status.csv"
METADATA_FILE = "reference.json"
FORMAT_VERSION = 1
#: Table name -> file name of a reference folder.
TABLE_FILES = {
    "eligible": "eligible_establishments.csv",
    "other_categories": "other_categories.csv",
    "incident_series": "incident_series.csv",
    "denominators": "observatory_denominators.csv",
}
ELIGIBLE_COLUMNS = (
    "reference_date",
    "category_code",
    "category_label",
    "family",
    "sector",
    "department",
    "region",
    "status",
    "codesph",
    "count",
    "source",
    "provenance",
)
OTHER_COLUMNS = (
    "reference_date",
    "category_code",
    "category_label",
    "aggregate_code",
    "aggregate_label",
    "count",
    "source",
    "provenance",
)
SERIES_COLUMNS = (
    "period",
    "year",
    "period_start",
    "period_end",
    "measure",
    "value",
    "unit",
    "approx",
    "value_as_published",
    "note",
    "source_url",
    "source_type",
    "series_row",
    "figure_row",
    "reference_date",
    "provenance",
)
DENOMINATOR_COLUMNS = (
    "as_of_label",
    "as_of",
    "figure",
    "label",
    "sector",
    "value",
    "approx",
    "value_as_published",
    "source_url",
    "source_type",
    "source_row",
)
#: Keys :func:`eligible_counts` groups by.
ELIGIBLE_KEYS = ("family", "sector", "category_code", "department", "region", "status", "codesph")
FINESS_LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"
FINESS_LICENCE_URL = "https://www.etalab.gouv.fr/licence-ouverte-open-licence"
SERIES_LICENCE = "facts (figures) from the cited publications; no text reproduced"
#: Date of the decree extending the declaration obligation to médico-social establishments (décret 2022-715).
ESMS_OBLIGATION_DATE = "2022-04-27"

#: Measures of the series in table order, with the words that identify their row in the figures file
#: (``observatoire_figures.csv``: a figure row is the source of a measure when its year is the period, one of
#: the words appears in its figure or value and its value holds the published number).
MEASURES = {
    "incidents_declared": ("incidents declared", "signalements received"),
    "structures_declaring": ("declaring",),
    "share_malicious": ("malicious",),
    "ransomware_count": ("ransomware",),
    "share_structures_degraded_mode": ("degraded mode",),
    "declarations_share_es": ("établissements de santé",),
    "declarations_share_esms": ("médico-social",),
    "structures_declaring_es": ("declaring",),
    "structures_declaring_esms": ("declaring",),
}
_SPLIT_COLUMN = "split_by_structure_type"
_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_CELL = re.compile(
    rf"^\s*(?P<approx>~|≈|>=|≥|>|<|about )?\s*(?P<num>{_NUMBER})\s*(?P<pct>%)?\s*(?P<rest>.*)$"
)


class ReferenceSourceError(ValueError):
    """A source file for the reference tables that cannot be used (the message names file, row and rule)."""


# --------------------------------------------------------------------------------------------------
# Caveats (en, fr)
# --------------------------------------------------------------------------------------------------
_CAVEATS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "geographic_sites": (
        ("eligible", "other_categories"),
        "Counts are of FINESS geographic establishments (ET: sites), not legal entities (EJ): a university "
        "hospital is one legal entity with many sites. Official statistics count about 3,000 health "
        "establishments (entities), far fewer than the sites counted here.",
        "Les effectifs sont des établissements géographiques FINESS (ET : sites), non des entités juridiques "
        "(EJ) : un CHU est une entité juridique à plusieurs sites. La statistique publique compte environ "
        "3 000 établissements de santé (entités), bien moins que les sites comptés ici.",
    ),
    "eligible_families": (
        ("eligible",),
        "Eligible establishments are those whose FINESS category is mapped to a cyberobs family "
        "(finess_categories.csv); the other categories are counted apart (other_categories.csv).",
        "Les établissements éligibles sont ceux dont la catégorie FINESS a une famille cyberobs "
        "(finess_categories.csv) ; les autres catégories sont comptées à part (other_categories.csv).",
    ),
    "sph_status": (
        ("eligible",),
        "The public/private status is FINESS's participation in the public hospital service (codesph): "
        "filled for health establishments only; most médico-social establishments have none (unknown).",
        "Le statut public/privé est la participation au service public hospitalier de FINESS (codesph) : "
        "renseigné pour les établissements de santé seulement ; la plupart des établissements "
        "médico-sociaux n'en ont pas (inconnu).",
    ),
    "press_quoted": (
        ("incident_series",),
        "Most yearly figures are trade-press quotations of the observatory's reports (the report files were "
        "not reachable); official figures are marked as such in source_type. Yearly totals are corroborated "
        "by several outlets; anything beyond them is indicative.",
        "La plupart des chiffres annuels sont des citations des rapports de l'observatoire par la presse "
        "spécialisée (les rapports n'étaient pas accessibles) ; les chiffres officiels sont signalés dans "
        "source_type. Les totaux annuels sont corroborés par plusieurs titres ; le reste est indicatif.",
    ),
    "under_declaration": (
        ("incident_series", "rates"),
        "Declarations are a floor, not a count of incidents: the first annual report estimated (method not "
        "disclosed) that only about 20 % of incidents were declared.",
        "Les déclarations sont un minimum, non un décompte des incidents : le premier rapport annuel "
        "estimait (sans dire comment) qu'environ 20 % seulement des incidents étaient déclarés.",
    ),
    "esms_obligation_2022": (
        ("incident_series", "rates"),
        "Médico-social establishments must declare only since the decree of 27 April 2022 (décret "
        "2022-715); before, their declarations were voluntary: médico-social and all-structure figures "
        "are not comparable across 2022.",
        "Les établissements médico-sociaux ne sont tenus de déclarer que depuis le décret du 27 avril 2022 "
        "(décret 2022-715) ; avant, leurs déclarations étaient volontaires : les chiffres médico-sociaux et "
        "tous établissements confondus ne sont pas comparables de part et d'autre de 2022.",
    ),
    "changing_splits": (
        ("incident_series", "rates"),
        "Splits by structure type are partial and use different categories from year to year (shares of "
        "declarations or counts of structures; a remainder of other structures): they are not comparable "
        "between years and need not add up to 100 %.",
        "Les répartitions par type de structure sont partielles et changent de catégories d'une année à "
        "l'autre (parts de déclarations ou nombres de structures ; un reste d'autres structures) : elles ne "
        "sont pas comparables d'une année à l'autre et ne totalisent pas forcément 100 %.",
    ),
    "sources_disagree": (
        ("incident_series",),
        "Some figures differ between sources (declaring structures in 2021 and 2022, ransomware counts "
        "depending on who counts); each figure carries its source and note.",
        "Certains chiffres diffèrent selon les sources (structures déclarantes en 2021 et 2022, "
        "rançongiciels selon qui compte) ; chaque chiffre porte sa source et sa note.",
    ),
    "denominator_published": (
        ("rates",),
        "The observatory's own denominators (about 3,300 health establishments at the end of 2018, about "
        "35,000 médico-social establishments) are quoted by the press from a report (one outlet prints 3,036) "
        "and are used for every year.",
        "Les dénominateurs de l'observatoire (environ 3 300 établissements de santé fin 2018, environ 35 000 "
        "établissements médico-sociaux) sont cités par la presse d'après un rapport (un titre imprime 3 036) "
        "et servent pour toutes les années.",
    ),
    "derived_counts": (
        ("rates",),
        "Declarations by structure type are derived from published rounded shares (share × total, "
        "rounded): about ±0.5 % of the total, small beside the Poisson interval.",
        "Les déclarations par type de structure sont déduites de parts publiées arrondies (part × total, "
        "arrondi) : environ ±0,5 % du total, peu devant l'intervalle de Poisson.",
    ),
    "denominator_sites": (
        ("rates",),
        "Rates per FINESS site of the cyberobs families: the declaration obligation covers health "
        "establishments as entities (about 3,300) and about 35,000 médico-social establishments, many "
        "outside these families; rates per published denominator are given beside them where published.",
        "Taux par site FINESS des familles cyberobs : l'obligation de déclaration porte sur les "
        "établissements de santé en tant qu'entités (environ 3 300) et sur environ 35 000 établissements "
        "médico-sociaux, dont beaucoup hors de ces familles ; les taux rapportés aux dénominateurs publiés "
        "sont donnés à côté lorsqu'ils existent.",
    ),
}

#: Defects known for a given source (layout, reference date), added to the caveats of tables built from it.
_KNOWN_SOURCE_ISSUES = (
    (
        ("flat", "2021-01-08"),
        "finess_2021_conversion_gaps",
        "208 of the 95,541 rows of the 2021-01-08 extraction were lost in its conversion (one at each "
        "10,000-row chunk boundary and the tail): La Réunion (974) is partial; all other departments with "
        "establishments are complete.",
        "208 des 95 541 lignes de l'extraction du 2021-01-08 ont été perdues à sa conversion (une à chaque "
        "frontière de bloc de 10 000 lignes et la fin) : La Réunion (974) est incomplète ; les autres "
        "départements présents sont complets.",
    ),
)


def _caveat(cid: str, applies: Sequence[str], en: str, fr: str) -> dict:
    return {"id": cid, "applies_to": list(applies), "en": en, "fr": fr}


# --------------------------------------------------------------------------------------------------
# Reading sources
# --------------------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        raw = read_regular_file(path)
    except InputFileError as exc:
        raise ReferenceSourceError(str(exc)) from exc
    if not raw.strip():
        raise ReferenceSourceError(f"{path}: empty file")
    return decode_bytes(raw, path)[0]


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].strip("\r").strip()


def _header(text: str) -> list[str]:
    first = _first_line(text)
    delim = sniff_delimiter(first, (",", ";"))
    return [h.strip().strip('"').lower() for h in next(csv.reader([first], delimiter=delim))]


def _read_csv_text(text: str) -> pd.DataFrame:
    first = _first_line(text)
    delim = sniff_delimiter(first, (",", ";"))
    frame = pd.read_csv(io.StringIO(text), sep=delim, dtype=str, keep_default_na=False)
    frame.columns = [c.strip().lower() for c in frame.columns]
    return frame


def _kind_of_header(first: str, header: Sequence[str], name: str) -> str | None:
    cols = set(header)
    if first.lower().startswith("finess;etalab") or first.startswith("structureet;"):
        return "finess"
    if "nofinesset" in cols and "categetab" in cols:
        return "finess"
    if {"level", "dept_code", "category_code", "count"} <= cols:
        return "finess_counts"
    if {"category_code", "codesph", "count"} <= cols:
        return "finess_sph"
    if {"category_code", "agr_code", "count"} <= cols:
        return "finess_category_totals"
    if {"year", "incidents_declared", "provenance"} <= cols:
        return "incident_series"
    if {"year", "figure", "value", "source_url"} <= cols:
        return "denominators" if "denominator" in name.lower() else "incident_figures"
    return None


def detect_source_kind(path: str | Path) -> str | None:
    """Tell what a source file is, from its first line (the file name only separates the two tables of
    published figures, which share their columns).

    Returns
    -------
    str or None
        ``finess`` (establishment-level extraction: the flat re-export with ``nofinesset``/``categetab`` or
        the etalab stock file), ``finess_counts``, ``finess_category_totals``, ``finess_sph`` (published
        counts used as cross-checks), ``incident_series`` (``year, incidents_declared, …, provenance``),
        ``incident_figures`` (``year, figure, value, source_url, …``), ``denominators`` (same columns, a
        file name containing ``denominator``); None for anything else.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise ReferenceSourceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head.strip():
        return None
    text = decode_bytes(head, path)[0]
    return _kind_of_header(_first_line(text), _header(text), path.name)


@dataclass(frozen=True)
class FinessSource:
    """An establishment-level FINESS extraction, reduced to the columns the reference needs.

    ``frame``: ``finess``, ``category_code``, ``category_label``, ``aggregate_code``, ``aggregate_label``,
    ``codesph``, ``libsph``, ``department`` (from the FINESS number's prefix), ``row`` (1-based data row).
    """

    frame: pd.DataFrame
    reference_date: str
    layout: str
    file_name: str
    sha256: str
    provenance: str


def _iso_date(value: str, what: str) -> str:
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError as exc:
        raise ReferenceSourceError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _date_in_name(name: str) -> str | None:
    for m in re.finditer(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)", name):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            continue
    return None


def _companion_date(companions: Iterable[Path]) -> tuple[str | None, str | None]:
    """Extraction date and provenance text written in a ``finess_counts.csv`` companion, if any."""
    for comp in companions:
        text = _read_text(comp)
        if _kind_of_header(_first_line(text), _header(text), comp.name) != "finess_counts":
            continue
        frame = _read_csv_text(text)
        dates = sorted(set(frame.get("extraction_date", pd.Series(dtype=str))) - {""})
        provs = sorted(set(frame.get("provenance", pd.Series(dtype=str))) - {""})
        if len(dates) > 1:
            raise ReferenceSourceError(f"{comp}: several extraction dates {dates}; expected one")
        return (dates[0] if dates else None), (provs[0] if len(provs) == 1 else None)
    return None, None


def _read_etalab_rows(text: str) -> pd.DataFrame:
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=";") if r and r[0] == "structureet"]
    width = len(ETALAB_FIELDS)
    return pd.DataFrame([(r + [""] * width)[:width] for r in rows], columns=list(ETALAB_FIELDS), dtype=str)


def _rows_named(mask: pd.Series, rows: pd.Series, limit: int = 10) -> str:
    bad = rows[mask.to_numpy()].astype(int).tolist()
    return ", ".join(map(str, bad[:limit])) + (f" … ({len(bad)} rows)" if len(bad) > limit else "")


def read_finess_source(
    path: str | Path, *, reference_date: str | None = None, companions: Sequence[str | Path] = ()
) -> FinessSource:
    """Read an establishment-level FINESS extraction (flat re-export or etalab stock file).

    Parameters
    ----------
    path : str or Path
        ``finess_2021_flat.csv``-like file (header with ``nofinesset``, ``categetab``, ``libcategetab``,
        ``categagretab``, ``libcategagretab``, ``codesph``, ``libsph``; optional ``dept_from_finess``,
        ``provenance``), or the FINESS open-data stock file (``finess;etalab;…`` then ``structureet`` lines).
    reference_date : str, optional
        Extraction date ``YYYY-MM-DD``. When absent: the date on the etalab file's first line, else the
        ``extraction_date`` of a ``finess_counts.csv`` companion, else an 8-digit date in the file name.
    companions : paths, optional
        Other files of the same source folder (a ``finess_counts.csv`` gives the date and provenance).

    Returns
    -------
    FinessSource

    Raises
    ------
    ReferenceSourceError
        Missing columns; a category code that is not 3 digits; a FINESS number whose prefix names no
        department (departments.csv); a number listed twice; a department column that disagrees with the
        number; no date found. Each message names the file, the rows (1-based data rows) and the rule.
    """
    path = Path(path)
    text = _read_text(path)
    first = _first_line(text)
    companions = [Path(c) for c in companions]
    comp_date, comp_prov = _companion_date(companions)
    if first.lower().startswith("finess;etalab") or first.startswith("structureet;"):
        layout = "etalab"
        raw = _read_etalab_rows(text)
        m = re.search(r"(20\d{2}-\d{2}-\d{2})", first)
        own_date = m[1] if m else None
    else:
        layout = "flat"
        raw = _read_csv_text(text)
        own_date = None
    need = ("nofinesset", "categetab", "libcategetab", "categagretab", "libcategagretab", "codesph", "libsph")
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ReferenceSourceError(
            f"{path}: missing column(s) {', '.join(missing)} (rule: a FINESS extraction has {', '.join(need)})"
        )
    if raw.empty:
        raise ReferenceSourceError(f"{path}: no establishment row")
    frame = pd.DataFrame(
        {
            "finess": raw["nofinesset"].str.strip().str.upper(),
            "category_code": raw["categetab"].str.strip(),
            "category_label": raw["libcategetab"].str.strip(),
            "aggregate_code": raw["categagretab"].str.strip(),
            "aggregate_label": raw["libcategagretab"].str.strip(),
            "codesph": raw["codesph"].str.strip(),
            "libsph": raw["libsph"].str.strip(),
        }
    )
    frame["row"] = np.arange(1, len(frame) + 1)
    bad_cat = ~frame["category_code"].str.fullmatch(r"\d{3}")
    if bad_cat.any():
        raise ReferenceSourceError(
            f"{path}: rows {_rows_named(bad_cat, frame['row'])}: category code (categetab) is not 3 digits"
        )
    frame["department"] = finess_department(frame["finess"]).astype(object)
    no_dep = frame["department"].isna() | (frame["finess"].str.len() != 9)
    if no_dep.any():
        raise ReferenceSourceError(
            f"{path}: rows {_rows_named(no_dep, frame['row'])}: FINESS number (nofinesset) is not 9 characters "
            "whose prefix names a department of departments.csv"
        )
    dup = frame["finess"].duplicated(keep=False)
    if dup.any():
        raise ReferenceSourceError(
            f"{path}: rows {_rows_named(dup, frame['row'])}: FINESS number listed twice "
            "(rule: one row per geographic establishment)"
        )
    if "dept_from_finess" in raw.columns:
        given = raw["dept_from_finess"].str.strip().str.upper()
        differ = given.ne("") & given.ne(frame["department"])
        if differ.any():
            raise ReferenceSourceError(
                f"{path}: rows {_rows_named(differ, frame['row'])}: dept_from_finess differs from the "
                "department of the FINESS number's prefix"
            )
    when = reference_date or own_date or comp_date or _date_in_name(path.name)
    if not when:
        raise ReferenceSourceError(
            f"{path}: cannot tell the extraction date (no date on the first line, no finess_counts.csv beside "
            "it, no YYYYMMDD in the file name): give it (--date YYYY-MM-DD)"
        )
    when = _iso_date(when, f"{path}: extraction date")
    sha = sha256_file(path)
    provenance = comp_prov or f"FINESS {layout} file {path.name} (sha256 {sha[:16]})"
    return FinessSource(frame, when, layout, path.name, sha, provenance)


def _load_sph_rules() -> pd.DataFrame:
    return pd.read_csv(SPH_STATUS_TABLE, comment="#", dtype=str, keep_default_na=False)


def build_finess_tables(src: FinessSource) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Count an extraction into the eligible table and the table of other categories.

    Parameters
    ----------
    src : FinessSource
        From :func:`read_finess_source`.

    Returns
    -------
    eligible : DataFrame
        :data:`ELIGIBLE_COLUMNS`, one row per category × department × ``codesph`` with at least one site,
        for the categories of ``finess_categories.csv`` (family and sector from it, label from the source).
    other : DataFrame
        National counts of the other categories (``OTHER_COLUMNS``).
    meta : dict
        Row counts (read = eligible + other), the departments of departments.csv without any row, the
        eligible categories without any site, the nomenclature versions used.

    Raises
    ------
    ReferenceSourceError
        A ``codesph`` absent from ``sph_status.csv`` (names the codes, their rows and the table).
    """
    f = src.frame
    cats = load_categories()
    rules = _load_sph_rules()
    unknown_sph = f["codesph"].ne("") & ~f["codesph"].isin(rules["codesph"])
    if unknown_sph.any():
        codes = sorted(f.loc[unknown_sph, "codesph"].unique())
        raise ReferenceSourceError(
            f"{src.file_name}: rows {_rows_named(unknown_sph, f['row'])}: codesph {', '.join(codes)} not in "
            f"{SPH_STATUS_TABLE} (rule: every codesph has a status; add it there)"
        )
    status = f["codesph"].map(dict(zip(rules["codesph"], rules["status"], strict=True))).fillna("unknown")
    source = f"FINESS {src.reference_date}"
    provenance = "FINESS open data (data.gouv.fr), Licence Ouverte 2.0"
    by_code = cats.set_index("category_code")
    eligible_mask = f["category_code"].isin(by_code.index)
    e = f[eligible_mask].assign(status=status[eligible_mask])
    labels = f.groupby("category_code")["category_label"].agg(lambda s: s.value_counts().index[0])
    counts = (
        e.groupby(["category_code", "department", "codesph", "status"]).size().rename("count").reset_index()
    )
    counts["category_label"] = counts["category_code"].map(labels)
    counts["family"] = counts["category_code"].map(by_code["family"])
    counts["sector"] = counts["category_code"].map(by_code["sector"])
    counts["region"] = department_region(counts["department"]).fillna("").astype(str)
    deps = load_departments()
    dep_order = {d: i for i, d in enumerate(deps["department"])}
    counts = counts.assign(_d=counts["department"].map(dep_order)).sort_values(
        ["category_code", "_d", "codesph"], kind="stable"
    )
    eligible = counts.assign(reference_date=src.reference_date, source=source, provenance=provenance)[
        list(ELIGIBLE_COLUMNS)
    ].reset_index(drop=True)

    o = f[~eligible_mask]
    other = (
        o.groupby("category_code")
        .agg(
            category_label=("category_label", lambda s: s.value_counts().index[0]),
            aggregate_code=("aggregate_code", lambda s: s.value_counts().index[0]),
            aggregate_label=("aggregate_label", lambda s: s.value_counts().index[0]),
            count=("finess", "size"),
        )
        .reset_index()
        .sort_values("category_code")
    )
    other = other.assign(reference_date=src.reference_date, source=source, provenance=provenance)[
        list(OTHER_COLUMNS)
    ].reset_index(drop=True)
    present = set(f["department"])
    meta = {
        "rows_read": len(f),
        "rows_eligible": int(eligible["count"].sum()),
        "rows_other": int(other["count"].sum()),
        "departments_absent": [d for d in deps["department"] if d not in present],
        "eligible_categories_absent": sorted(set(by_code.index) - set(e["category_code"])),
        "categories_version": cats.attrs.get("version"),
        "departments_version": deps.attrs.get("version"),
        "sph_status_version": table_version(SPH_STATUS_TABLE),
    }
    return eligible, other, meta


def _cross_check(src: FinessSource, path: Path, kind: str) -> dict:
    """Compare a published count table with the counts of the extraction (every row must agree)."""
    frame = _read_csv_text(_read_text(path))
    f = src.frame
    if kind == "finess_counts":  # category ALL = every category; dept_code ALL = the nation
        nat = f.groupby("category_code").size()
        dep = f.groupby(["department", "category_code"]).size()
        dep_all = f.groupby("department").size()

        def _expected(level: str, dept: str, code: str) -> int:
            if level == "national":
                return len(f) if code == "ALL" else int(nat.get(code, 0))
            return int(dep_all.get(dept, 0)) if code == "ALL" else int(dep.get((dept, code), 0))

        expected = [
            _expected(lv, d, c)
            for lv, d, c in zip(frame["level"], frame["dept_code"], frame["category_code"], strict=True)
        ]
    elif kind == "finess_category_totals":
        nat = f.groupby("category_code").size()
        expected = [nat.get(c, 0) for c in frame["category_code"]]
    else:  # finess_sph
        sph = f.groupby(["category_code", "codesph"]).size()
        expected = [sph.get((c, s), 0) for c, s in zip(frame["category_code"], frame["codesph"], strict=True)]
    got = pd.to_numeric(frame["count"], errors="coerce")
    differ = got.ne(pd.Series(expected, index=frame.index, dtype=float))
    if differ.any():
        i = int(np.flatnonzero(differ.to_numpy())[0])
        raise ReferenceSourceError(
            f"{path}: data row {i + 1}: published count {frame['count'].iloc[i]!r} differs from the "
            f"{expected[i]} establishments of {src.file_name} ({int(differ.sum())} row(s) differ; rule: the "
            "published counts and the extraction are the same data)"
        )
    return {"file": path.name, "sha256": sha256_file(path), "rows_checked": len(frame)}


def _parse_period(label: str, where: str) -> tuple[str, int | None, str, str]:
    label = label.strip()
    m = re.fullmatch(r"(\d{4})", label)
    if m:
        y = int(m[1])
        return label, y, f"{y}-01-01", f"{y}-12-31"
    m = re.fullmatch(r"(\d{4})-(\d{2})\.\.(\d{4})-(\d{2})", label)
    if m:
        end = pd.Timestamp(int(m[3]), int(m[4]), 1) + pd.offsets.MonthEnd(0)
        return label, None, f"{m[1]}-{m[2]}-01", end.date().isoformat()
    raise ReferenceSourceError(
        f"{where}: period {label!r} is neither a year (2023) nor a span (2017-10..2018-09)"
    )


def _to_number(num: str) -> float:
    return float(re.sub(r"[ \u00a0\u202f]", "", num).replace(",", "."))


def _parse_cell(cell: str, column: str, where: str) -> tuple[float, bool, str, str]:
    """``(value, approx, published number text, note)`` of a cell such as ``592 (prelim. 588)`` or ``41%``."""
    m = _CELL.match(cell)
    if not m:
        raise ReferenceSourceError(f"{where}: column {column}: {cell!r} does not start with a number")
    share = column.startswith("share_")
    if share != bool(m["pct"]):
        rule = "a share_* column holds percentages (41%)" if share else "a count column holds no percentage"
        raise ReferenceSourceError(f"{where}: column {column}: {cell!r} (rule: {rule})")
    value = _to_number(m["num"]) / (100 if share else 1)
    published = cell[: m.end("pct") if m["pct"] else m.end("num")].strip()
    note = m["rest"].strip().removeprefix("(").removesuffix(")").strip()
    return value, bool(m["approx"]), published, note


def _parse_split(cell: str, where: str) -> list[tuple[str, float, str]]:
    """Measures of a structure-type split: shares of declarations (``65% ES / 25% ESMS``) or counts of
    structures (``301 ES / 121 ESMS (structures)``)."""
    out = []
    for m in re.finditer(r"(\d+(?:[.,]\d+)?)\s*%\s*(ESMS|ES)\b", cell):
        measure = "declarations_share_esms" if m[2] == "ESMS" else "declarations_share_es"
        if measure not in [o[0] for o in out]:
            out.append((measure, _to_number(m[1]) / 100, m[0]))
    counts = list(re.finditer(r"(?<![\d.,%])(\d+)\s+(ESMS|ES)\b", cell))
    if counts:
        low = cell.lower()
        if "structure" not in low:
            raise ReferenceSourceError(
                f"{where}: column {_SPLIT_COLUMN}: {cell!r}: counts without % must say what they count "
                "('(structures)')"
            )
        for m in counts:
            measure = "structures_declaring_esms" if m[2] == "ESMS" else "structures_declaring_es"
            out.append((measure, _to_number(m[1]), m[0]))
    if not out:
        raise ReferenceSourceError(
            f"{where}: column {_SPLIT_COLUMN}: {cell!r} holds no share ('65% ES') nor count ('301 ES … "
            "(structures)')"
        )
    return out


def _number_pattern(value: float, unit: str) -> re.Pattern:
    if unit == "share":
        pct = f"{value * 100:g}"
        return re.compile(rf"(?<![\d.,]){re.escape(pct)}\s*%")
    n = f"{value:g}"
    return re.compile(rf"(?<![\d.,]){re.escape(n)}(?![\d.,%])")


def _match_figure(figures: pd.DataFrame | None, period: str, measure: str, value: float, unit: str):
    if figures is None:
        return None
    words = MEASURES.get(measure, (measure.replace("_", " "),))
    pattern = _number_pattern(value, unit)
    rows = figures[figures["year"].str.strip() == period]
    for i, r in rows.iterrows():
        text = f"{r['figure']} {r['value']}".lower()
        if any(w in text for w in words) and pattern.search(r["value"]):
            return i
    return None


def read_incident_series(path: str | Path, *, figures: str | Path | None = None) -> pd.DataFrame:
    """Read the observatory's yearly series into one row per published figure.

    Parameters
    ----------
    path : str or Path
        ``observatoire_annual_series.csv``-like: ``year`` (``2023`` or a span ``2017-10..2018-09``),
        ``incidents_declared``, optional ``structures_declaring``, ``share_*`` (percentages),
        ``ransomware_count``, ``split_by_structure_type`` (``65% ES / 25% ESMS`` or ``301 ES / 121 ESMS
        (structures)``), any other count column, and ``provenance`` (the sources). A cell is a number, optionally
        ``~``, then free text kept as the note (``592 (prelim. 588)``).
    figures : str or Path, optional
        ``observatoire_figures.csv``-like (``year, figure, value, source_url, source_type, note``): the source
        of each figure is the row of the same period naming the measure and holding the same number;
        without it (or without a match), the row's ``provenance``.

    Returns
    -------
    DataFrame
        :data:`SERIES_COLUMNS`: ``value`` (counts, or shares in [0, 1] with ``unit`` = ``share``), ``approx``,
        ``value_as_published`` (the number as written), ``note``, ``source_url``, ``source_type`` (empty
        when no figure row matched), ``series_row`` / ``figure_row`` (1-based data rows of the two files),
        ``reference_date`` (the period's end), ``provenance`` (the series row's sources).

    Raises
    ------
    ReferenceSourceError
        Missing columns, a period or a cell that cannot be read, a share without % (or a count with one):
        the message names the file, the row and the column.
    """
    path = Path(path)
    frame = _read_csv_text(_read_text(path))
    missing = [c for c in ("year", "incidents_declared", "provenance") if c not in frame.columns]
    if missing:
        raise ReferenceSourceError(f"{path}: missing column(s) {', '.join(missing)}")
    fig = None
    fig_name = ""
    if figures is not None:
        fig_path = Path(figures)
        fig = _read_csv_text(_read_text(fig_path))
        need = [c for c in ("year", "figure", "value", "source_url") if c not in fig.columns]
        if need:
            raise ReferenceSourceError(f"{fig_path}: missing column(s) {', '.join(need)}")
        fig = fig.reset_index(drop=True)
        fig_name = fig_path.name
    value_cols = [c for c in frame.columns if c not in ("year", "provenance", _SPLIT_COLUMN)]
    order = {m: i for i, m in enumerate(MEASURES)}
    rows = []
    for i, r in frame.reset_index(drop=True).iterrows():
        where = f"{path}: data row {i + 1}"
        period, year, start, end = _parse_period(r["year"], where)
        found: list[tuple[str, float, bool, str, str]] = []
        for col in value_cols:
            cell = r[col].strip()
            if cell:
                value, approx, published, note = _parse_cell(cell, col, where)
                found.append((col, value, approx, published, note))
        split = r.get(_SPLIT_COLUMN, "").strip()
        if split:
            for measure, value, published in _parse_split(split, where):
                found.append((measure, value, False, published, split))
        for measure, value, approx, published, note in found:
            unit = "share" if measure.startswith(("share_", "declarations_share")) else "count"
            j = _match_figure(fig, period, measure, value, unit)
            src_url = str(fig.loc[j, "source_url"]) if j is not None else r["provenance"]
            src_type = (
                str(fig.loc[j, "source_type"]) if j is not None and "source_type" in fig.columns else ""
            )
            fig_note = str(fig.loc[j, "note"]).strip() if j is not None and "note" in fig.columns else ""
            rows.append(
                {
                    "period": period,
                    "year": year,
                    "period_start": start,
                    "period_end": end,
                    "measure": measure,
                    "value": value,
                    "unit": unit,
                    "approx": approx,
                    "value_as_published": published,
                    "note": " | ".join(x for x in (note, fig_note) if x),
                    "source_url": src_url,
                    "source_type": src_type,
                    "series_row": i + 1,
                    "figure_row": (j + 1) if j is not None else None,
                    "reference_date": end,
                    "provenance": r["provenance"],
                    "_o": order.get(measure, len(order)),
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        raise ReferenceSourceError(f"{path}: no figure found")
    out = out.sort_values(["series_row", "_o"], kind="stable").drop(columns="_o")
    out["year"] = out["year"].astype("Int64")
    out["figure_row"] = out["figure_row"].astype("Int64")
    out.attrs.update({"file": path.name, "figures_file": fig_name})
    return out[list(SERIES_COLUMNS)].reset_index(drop=True)


def read_observatory_denominators(path: str | Path) -> pd.DataFrame:
    """Read published establishment counts (``denominators_reference.csv``-like) into one row per number.

    A value such as ``1342 / 667 / 974 / 2983`` is split on `` / `` (or `` ; ``) and each part labelled by the
    matching part of the figure (``hôpitaux publics / … / total``); ``sector`` is ``ES`` or ``ESMS`` when the
    part names it (``3 306 ES (31/12/2018)``), with its ``as_of`` date when written ``dd/mm/yyyy``.

    Raises
    ------
    ReferenceSourceError
        Missing columns, or a part without a number (names the file and row).
    """
    path = Path(path)
    frame = _read_csv_text(_read_text(path))
    need = [c for c in ("year", "figure", "value", "source_url") if c not in frame.columns]
    if need:
        raise ReferenceSourceError(f"{path}: missing column(s) {', '.join(need)}")
    rows = []
    for i, r in frame.reset_index(drop=True).iterrows():
        parts = [p.strip() for p in re.split(r"\s+/\s+|\s*;\s*", r["value"]) if p.strip()]
        labels = [p.strip() for p in r["figure"].split(" / ")]
        if len(labels) != len(parts):
            labels = [r["figure"].strip()] * len(parts)
        for part, label in zip(parts, labels, strict=True):
            m = re.search(rf"(~|≈)?\s*({_NUMBER})", part)
            if not m:
                raise ReferenceSourceError(f"{path}: data row {i + 1}: {part!r} holds no number")
            sector = re.search(r"\b(ESMS|ES)\b", part)
            label = sector[1] if sector else label
            when = re.search(r"(\d{2})/(\d{2})/(\d{4})", part)
            rows.append(
                {
                    "as_of_label": r["year"].strip(),
                    "as_of": f"{when[3]}-{when[2]}-{when[1]}" if when else "",
                    "figure": r["figure"].strip(),
                    "label": label,
                    "sector": sector[1] if sector else "",
                    "value": _to_number(m[2]),
                    "approx": bool(m[1]),
                    "value_as_published": part,
                    "source_url": r["source_url"].strip(),
                    "source_type": r.get("source_type", "").strip(),
                    "source_row": i + 1,
                }
            )
    return pd.DataFrame(rows, columns=list(DENOMINATOR_COLUMNS))


# --------------------------------------------------------------------------------------------------
# Building and writing a reference folder
# --------------------------------------------------------------------------------------------------
def _collect(inputs: str | Path | Sequence[str | Path]) -> tuple[dict[str, list[Path]], list[Path]]:
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    kinds: dict[str, list[Path]] = {}
    ignored: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and not p.name.startswith("."))
            for p in files:
                kind = detect_source_kind(p) if p.suffix.lower() in (".csv", ".txt") else None
                (kinds.setdefault(kind, []) if kind else ignored).append(p)
        elif item.is_file():
            kind = detect_source_kind(item)
            if kind is None:
                raise ReferenceSourceError(
                    f"{item}: not a reference source (expected a FINESS extraction with nofinesset/categetab, "
                    "an etalab stock file, or an observatory table with year/incidents_declared/provenance "
                    "or year/figure/value/source_url)"
                )
            kinds.setdefault(kind, []).append(item)
        else:
            raise ReferenceSourceError(f"{item}: no such file or folder")
    for kind in ("finess", "incident_series", "incident_figures", "denominators"):
        if len(kinds.get(kind, [])) > 1:
            names = ", ".join(str(p) for p in kinds[kind])
            raise ReferenceSourceError(f"several {kind} sources given ({names}): give one")
    return kinds, ignored


def _hash_table(frame: pd.DataFrame) -> str:
    return hashlib.sha256(_csv_text(frame).encode("utf-8")).hexdigest()


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def build_reference(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    finess_date: str | None = None,
    base: str | Path | None = None,
) -> dict:
    """Build the reference tables from source files or folders and write them to ``out_dir``.

    Parameters
    ----------
    inputs : path or paths
        Files or folders (searched recursively; kinds told by :func:`detect_source_kind`). A FINESS
        extraction rebuilds the eligible tables (cross-checked against ``finess_counts.csv``,
        ``finess_category_totals_all.csv`` and ``finess_hospital_cats_by_sph.csv`` when given); an
        observatory series rebuilds the series (sources from an ``observatoire_figures.csv`` given with it);
        a denominators file rebuilds that table.
    out_dir : path
        Written: the four tables and ``reference.json`` (other files left alone). Everything is computed
        before anything is written.
    finess_date : str, optional
        Extraction date when the files do not tell it.
    base : path, optional
        A reference folder whose tables are kept for the parts not rebuilt (``cyberobs reference update``).
        Without it, a FINESS extraction and a series are both required.

    Returns
    -------
    dict
        The metadata written to ``reference.json``, plus ``ignored`` (files of the folders that are no
        source; not written).
    """
    kinds, ignored = _collect(inputs)
    old = load_reference(base, verify=True) if base is not None else None
    _check_sources(kinds, inputs, rebuild_all=old is None)
    meta, tables, caveats = _start_from(old)
    if kinds.get("finess"):
        _rebuild_finess(kinds, finess_date, meta, tables, caveats)
    if kinds.get("incident_series"):
        _rebuild_incident_series(kinds, meta, tables)
    if kinds.get("denominators"):
        _rebuild_denominators(kinds["denominators"][0], meta, tables)
    elif "denominators" not in tables:
        tables["denominators"] = pd.DataFrame(columns=list(DENOMINATOR_COLUMNS))
        meta["sources"].setdefault("denominators", {"title": "none given", "input_file": None})
    texts = {name: _csv_text(tables[name]) for name in TABLE_FILES}
    _describe_tables(meta, texts, tables, caveats)
    _write_reference(Path(out_dir), texts, meta)
    return {**meta, "ignored": [str(p) for p in ignored]}


def _check_sources(kinds: dict, inputs, *, rebuild_all: bool) -> None:
    """Raise :class:`ReferenceSourceError` when the sources cannot build (``rebuild_all``: a new reference
    needs a FINESS extraction and a series) or update (at least one of the three rebuildable kinds)."""
    if rebuild_all and not (kinds.get("finess") and kinds.get("incident_series")):
        raise ReferenceSourceError(
            "a new reference needs a FINESS extraction and an observatory series; found: "
            + (", ".join(f"{k} ({len(v)})" for k, v in kinds.items()) or "nothing usable")
        )
    if not any(kinds.get(k) for k in ("finess", "incident_series", "denominators")):
        raise ReferenceSourceError(
            "nothing to update: no FINESS extraction, observatory series or denominators file among "
            + ", ".join(str(p) for p in map(Path, [inputs] if isinstance(inputs, str | Path) else inputs))
        )


def _start_from(old: Reference | None) -> tuple[dict, dict[str, pd.DataFrame], dict]:
    """The metadata, tables and caveats a build starts from: ``old``'s (an update) or empty ones; the
    packaged caveats always in their current wording."""
    meta = json.loads(json.dumps(old.metadata)) if old is not None else {"sources": {}, "tables": {}}
    tables: dict[str, pd.DataFrame] = {}
    if old is not None:
        tables = {
            "eligible": old.eligible,
            "other_categories": old.other_categories,
            "incident_series": old.incident_series,
            "denominators": old.denominators,
        }
    caveats = {c["id"]: c for c in meta.get("caveats", [])}
    for cid, (applies, en, fr) in _CAVEATS.items():
        caveats[cid] = _caveat(cid, applies, en, fr)
    return meta, tables, caveats


def _rebuild_finess(kinds: dict, finess_date: str | None, meta: dict, tables: dict, caveats: dict) -> None:
    """The eligible and other-category tables from the FINESS extraction, cross-checked against the
    published counts given with it; its caveats (known source issues, departments without establishment)
    and its source entry replace the old ones."""
    companions = [
        p for k in ("finess_counts", "finess_category_totals", "finess_sph") for p in kinds.get(k, [])
    ]
    src = read_finess_source(kinds["finess"][0], reference_date=finess_date, companions=companions)
    eligible, other, fmeta = build_finess_tables(src)
    checks = [
        _cross_check(src, p, k)
        for k in ("finess_counts", "finess_category_totals", "finess_sph")
        for p in kinds.get(k, [])
    ]
    tables["eligible"], tables["other_categories"] = eligible, other
    for cid in [c for c in caveats if c.startswith(("finess_", "departments_absent"))]:
        del caveats[cid]
    for (layout, when), cid, en, fr in _KNOWN_SOURCE_ISSUES:
        if (src.layout, src.reference_date) == (layout, when):
            caveats[cid] = _caveat(cid, ("eligible", "other_categories"), en, fr)
    if fmeta["departments_absent"]:
        names = load_departments().set_index("department")["name"]
        listed = ", ".join(f"{d} {names.get(d, '')}".strip() for d in fmeta["departments_absent"])
        caveats["departments_absent"] = _caveat(
            "departments_absent",
            ("eligible",),
            f"No establishment of the extraction in: {listed}.",
            f"Aucun établissement de l'extraction dans : {listed}.",
        )
    meta["sources"]["finess"] = {
        "title": "FINESS, Extraction du Fichier des établissements (geographic establishments, ET)",
        "publisher": "Ministère chargé de la santé (FINESS), on data.gouv.fr",
        "reference_date": src.reference_date,
        "licence": FINESS_LICENCE,
        "licence_url": FINESS_LICENCE_URL,
        "provenance": src.provenance,
        "input_file": src.file_name,
        "input_sha256": src.sha256,
        "layout": src.layout,
        "cross_checks": checks,
        **fmeta,
    }


def _rebuild_incident_series(kinds: dict, meta: dict, tables: dict) -> None:
    """The observatory's yearly series (its figures matched to the published figure rows when given)."""
    series_path = kinds["incident_series"][0]
    fig_path = (kinds.get("incident_figures") or [None])[0]
    series = read_incident_series(series_path, figures=fig_path)
    tables["incident_series"] = series
    meta["sources"]["incident_observatory"] = {
        "title": "Observatoire des incidents de sécurité des SI des structures de santé (ANS / CERT Santé)",
        "reference_date": str(series["period_end"].max()),
        "periods": list(dict.fromkeys(series["period"])),
        "licence": SERIES_LICENCE,
        "input_file": series_path.name,
        "input_sha256": sha256_file(series_path),
        "figures_file": fig_path.name if fig_path else None,
        "figures_sha256": sha256_file(fig_path) if fig_path else None,
        "figures_matched": int(series["figure_row"].notna().sum()),
        "figures_total": len(series),
    }


def _rebuild_denominators(path: Path, meta: dict, tables: dict) -> None:
    """The published counts of establishments (observatory reports, DREES)."""
    tables["denominators"] = read_observatory_denominators(path)
    meta["sources"]["denominators"] = {
        "title": "Published counts of establishments (observatory reports, DREES, others)",
        "licence": SERIES_LICENCE,
        "input_file": path.name,
        "input_sha256": sha256_file(path),
    }


#: The source entry of ``reference.json`` each table comes from.
_TABLE_SOURCE = {
    "eligible": "finess",
    "other_categories": "finess",
    "incident_series": "incident_observatory",
    "denominators": "denominators",
}


def _describe_tables(meta: dict, texts: dict[str, str], tables: dict, caveats: dict) -> None:
    """Each table's entry in ``reference.json`` (file, rows, hash of its CSV text, reference date, source,
    caveats), the caveats, the format version and the content hash over the tables."""
    dates = {
        "eligible": meta["sources"]["finess"]["reference_date"],
        "other_categories": meta["sources"]["finess"]["reference_date"],
        "incident_series": meta["sources"]["incident_observatory"]["reference_date"],
        "denominators": "",
    }
    meta["tables"] = {
        name: {
            "file": TABLE_FILES[name],
            "rows": len(tables[name]),
            "sha256": hashlib.sha256(texts[name].encode("utf-8")).hexdigest(),
            "reference_date": dates[name],
            "source": _TABLE_SOURCE[name],
            "caveats": sorted(c for c, v in caveats.items() if name in v["applies_to"]),
        }
        for name in TABLE_FILES
    }
    meta["caveats"] = [caveats[c] for c in sorted(caveats)]
    meta["format_version"] = FORMAT_VERSION
    meta["content_hash"] = hashlib.sha256(
        "".join(meta["tables"][n]["sha256"] for n in TABLE_FILES).encode()
    ).hexdigest()
    meta["built_with"] = (
        "cyberobs_lib.reference.build_reference (scripts/build_reference.py, cyberobs reference update)"
    )


def _write_reference(out: Path, texts: dict[str, str], meta: dict) -> None:
    """Write the tables and ``reference.json`` (each atomically, world-readable) and forget cached loads."""
    out.mkdir(parents=True, exist_ok=True)
    for name, file in TABLE_FILES.items():
        os.chmod(write_text_atomic(texts[name], out / file), 0o644)
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    os.chmod(write_text_atomic(meta_text, out / METADATA_FILE), 0o644)
    _load_cached.cache_clear()


def update_reference(
    inputs: str | Path | Sequence[str | Path],
    target: str | Path | None = None,
    *,
    finess_date: str | None = None,
) -> tuple[Path, dict]:
    """Replace the reference in use by newer sources, in a user folder (never in the installed package).

    Parameters
    ----------
    inputs : path or paths
        A FINESS extraction, an observatory series (with its figures file), a denominators file, or a folder
        holding some of them (same formats as ``../shared/reference``).
    target : path, optional
        Folder written; default :func:`user_reference_dir` (``$CYBEROBS_REFERENCE_DIR`` or
        ``~/.local/share/cyberobs/reference``). Tables not rebuilt are carried over from the reference in
        use (the target's own, else the packaged one).
    finess_date : str, optional
        Extraction date when the FINESS file does not tell it.

    Returns
    -------
    (Path, dict)
        The folder written and its metadata (``ignored`` lists the files of a folder that are no source).
    """
    target = Path(target) if target is not None else user_reference_dir()
    if target.resolve() == PACKAGED_REFERENCE.resolve():
        raise ReferenceSourceError(
            f"{target}: the packaged reference is rebuilt by scripts/build_reference.py, not updated in place"
        )
    base = target if (target / METADATA_FILE).is_file() else PACKAGED_REFERENCE
    meta = build_reference(inputs, target, finess_date=finess_date, base=base)
    return target, meta


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def user_reference_dir() -> Path:
    """The user reference folder: ``$CYBEROBS_REFERENCE_DIR``, else ``$XDG_DATA_HOME/cyberobs/reference``
    (``~/.local/share/cyberobs/reference`` when ``XDG_DATA_HOME`` is unset)."""
    value = os.environ.get(REFERENCE_ENV_VAR, "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    root = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return root / "cyberobs" / "reference"


def reference_dir(path: str | Path | None = None) -> tuple[Path, str]:
    """The folder of the reference in use and why: ``(folder, origin)``.

    ``origin`` is ``argument`` (``path`` given: it must hold ``reference.json``), ``environment``
    (``$CYBEROBS_REFERENCE_DIR`` holds one), ``user`` (the user data folder holds one) or ``package``.
    A ``$CYBEROBS_REFERENCE_DIR`` without ``reference.json`` is logged as a warning and the packaged
    tables are used.
    """
    if path is not None:
        p = Path(path)
        if not (p / METADATA_FILE).is_file():
            raise ReferenceSourceError(f"{p}: not a reference folder (no {METADATA_FILE})")
        return p, "package" if p.resolve() == PACKAGED_REFERENCE.resolve() else "argument"
    env = os.environ.get(REFERENCE_ENV_VAR, "").strip()
    if env:
        p = Path(env).expanduser()
        if (p / METADATA_FILE).is_file():
            return p, "environment"
        log.warning(
            "%s=%s holds no %s: the packaged reference is used", REFERENCE_ENV_VAR, env, METADATA_FILE
        )
        return PACKAGED_REFERENCE, "package"
    user = user_reference_dir()
    if (user / METADATA_FILE).is_file():
        return user, "user"
    return PACKAGED_REFERENCE, "package"


@dataclass(frozen=True)
class Reference:
    """A loaded reference folder: its tables and metadata (``reference.json``)."""

    path: Path
    origin: str
    metadata: dict
    eligible: pd.DataFrame
    other_categories: pd.DataFrame
    incident_series: pd.DataFrame
    denominators: pd.DataFrame

    @property
    def finess_date(self) -> str:
        """Extraction date of the FINESS counts (``YYYY-MM-DD``)."""
        return self.metadata["sources"]["finess"]["reference_date"]

    @property
    def series_date(self) -> str:
        """End of the last period of the incident series."""
        return self.metadata["sources"]["incident_observatory"]["reference_date"]


def _read_table(path: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if name == "eligible":
        frame["count"] = frame["count"].astype("int64")
    elif name == "other_categories":
        frame["count"] = frame["count"].astype("int64")
    elif name == "incident_series":
        frame["value"] = frame["value"].astype(float)
        frame["approx"] = frame["approx"].eq("True")
        for col in ("year", "series_row", "figure_row"):
            frame[col] = pd.to_numeric(frame[col].replace("", None)).astype("Int64")
    elif name == "denominators":
        frame["value"] = pd.to_numeric(frame["value"]).astype(float)
        frame["approx"] = frame["approx"].eq("True")
        frame["source_row"] = pd.to_numeric(frame["source_row"]).astype("Int64")
    return frame


@lru_cache(maxsize=8)
def _load_cached(path: Path, stamp: tuple, verify: bool) -> tuple[dict, dict[str, pd.DataFrame]]:
    meta = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ReferenceSourceError(
            f"{path / METADATA_FILE}: format_version {meta.get('format_version')!r}, this cyberobs reads "
            f"{FORMAT_VERSION}: rebuild the folder with `cyberobs reference update`"
        )
    tables = {}
    for name, file in TABLE_FILES.items():
        p = path / file
        if not p.is_file():
            raise ReferenceSourceError(f"{p}: missing table of the reference folder {path}")
        if verify and sha256_file(p) != meta["tables"][name]["sha256"]:
            raise ReferenceSourceError(
                f"{p}: SHA-256 differs from {METADATA_FILE} (the table was changed after it was built): rebuild "
                "with `cyberobs reference update` or scripts/build_reference.py, never edit the tables by hand"
            )
        tables[name] = _read_table(p, name)
    return meta, tables


def load_reference(path: str | Path | None = None, *, verify: bool = True) -> Reference:
    """Load the reference tables in use (see :func:`reference_dir`).

    Parameters
    ----------
    path : str or Path, optional
        A reference folder (e.g. written by ``cyberobs reference update``); default: resolution order of
        :func:`reference_dir`.
    verify : bool
        Check each table's SHA-256 against ``reference.json`` (default).

    Returns
    -------
    Reference
        Copies of the tables (callers may modify them).

    Raises
    ------
    ReferenceSourceError
        No ``reference.json``, another format version, a missing or modified table.

    Examples
    --------
    >>> ref = load_reference(PACKAGED_REFERENCE)
    >>> ref.finess_date, ref.origin
    ('2021-01-08', 'package')
    """
    folder, origin = reference_dir(path)
    stamp = tuple(
        (st.st_mtime_ns, st.st_size, st.st_ino)
        for st in (
            p.stat() if p.exists() else os.stat_result((0,) * 10)
            for p in [folder / METADATA_FILE, *(folder / f for f in TABLE_FILES.values())]
        )
    )  # any change of any file reloads (and re-verifies) the folder
    meta, tables = _load_cached(folder.resolve(), stamp, verify)
    return Reference(
        path=folder,
        origin=origin,
        metadata=json.loads(json.dumps(meta)),
        **{name: frame.copy() for name, frame in tables.items()},
    )


def _ref(reference: Reference | str | Path | None) -> Reference:
    return reference if isinstance(reference, Reference) else load_reference(reference)


def caveat_text(
    ids: str | Iterable[str], lang: str = "en", reference: Reference | str | Path | None = None
) -> list[str]:
    """Texts of caveats by id (``;``-separated string or list), in ``lang`` (``en`` or ``fr``).

    Examples
    --------
    >>> caveat_text("under_declaration", "en", PACKAGED_REFERENCE)[0][:37]
    'Declarations are a floor, not a count'
    """
    ref = _ref(reference)
    if isinstance(ids, str):
        ids = [i for i in ids.split(";") if i]
    by_id = {c["id"]: c for c in ref.metadata["caveats"]}
    return [by_id[i][lang] for i in ids if i in by_id]


def reference_info(reference: Reference | str | Path | None = None, lang: str = "en") -> dict:
    """What the reference in use is: folder, origin, dates, sources, licences, caveats.

    Returns
    -------
    dict
        ``path``, ``origin``, ``finess_date``, ``finess_source`` (provenance), ``finess_licence``,
        ``series_periods``, ``series_date``, ``content_hash``, ``tables`` (file, rows, date, sha256 per
        table), ``caveats`` (id -> text in ``lang``) and ``statement``: one sentence to print beside any
        figure that uses the reference.

    Examples
    --------
    >>> info = reference_info(PACKAGED_REFERENCE)
    >>> info["statement"][:51]
    'National reference: FINESS extraction of 2021-01-08'
    """
    ref = _ref(reference)
    m = ref.metadata
    fin, ser = m["sources"]["finess"], m["sources"]["incident_observatory"]
    periods = ser.get("periods", [])
    s = ref.incident_series
    span = f"{str(s['period_start'].min())[:7]} to {str(s['period_end'].max())[:7]}" if len(s) else ""
    if lang == "fr":
        span = span.replace(" to ", " à ")
    if lang == "fr":
        statement = (
            f"Référence nationale : extraction FINESS du {fin['reference_date']} (établissements géographiques, "
            f"{FINESS_LICENCE}) ; observatoire des incidents (ANS / CERT Santé), {span}, chiffres tels que "
            "publiés (sources citées par chiffre)."
        )
    else:
        statement = (
            f"National reference: FINESS extraction of {fin['reference_date']} (geographic establishments, "
            f"{FINESS_LICENCE}); incident observatory (ANS / CERT Santé), {span}, figures as published "
            "(source cited per figure)."
        )
    return {
        "path": str(ref.path),
        "origin": ref.origin,
        "finess_date": fin["reference_date"],
        "finess_source": fin.get("provenance"),
        "finess_licence": fin.get("licence"),
        "series_periods": periods,
        "series_date": ser["reference_date"],
        "content_hash": m.get("content_hash"),
        "tables": {
            n: {k: t[k] for k in ("file", "rows", "reference_date", "sha256")} for n, t in m["tables"].items()
        },
        "caveats": {c["id"]: c[lang] for c in m["caveats"]},
        "statement": statement,
    }


# --------------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------------
def _by(by: str | Sequence[str], allowed: Sequence[str]) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by)
    bad = [k for k in keys if k not in allowed]
    if bad or not keys:
        raise ValueError(f"by={by!r}: group keys must be among {', '.join(allowed)}")
    return keys


def _add_names(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    deps = load_departments()
    if "department" in keys:
        frame.insert(
            list(frame.columns).index("department") + 1,
            "department_name",
            frame["department"].map(dict(zip(deps["department"], deps["name"], strict=True))).fillna(""),
        )
    if "region" in keys:
        regions = dict(zip(deps["region_code"], deps["region_name"], strict=False))
        frame.insert(
            list(frame.columns).index("region") + 1, "region_name", frame["region"].map(regions).fillna("")
        )
    return frame


def eligible_counts(
    by: str | Sequence[str] = ("family",),
    *,
    reference: Reference | str | Path | None = None,
    families: Sequence[str] | None = None,
) -> pd.DataFrame:
    """National eligible establishments (FINESS sites) per group.

    Parameters
    ----------
    by : str or sequence of str
        Among ``family``, ``sector`` (``ES`` / ``ESMS``), ``category_code``, ``department``, ``region``
        (INSEE code), ``status`` (``public``, ``private_nonprofit``, ``not_concerned``, ``unknown``:
        sph_status.csv) and ``codesph``.
    reference : Reference or path, optional
        Default: :func:`load_reference`.
    families : sequence of str, optional
        Keep these families only.

    Returns
    -------
    DataFrame
        The ``by`` columns (with ``department_name`` / ``region_name`` after them), ``eligible``,
        ``reference_date``, ``source``; only groups with at least one site.

    Examples
    --------
    >>> t = eligible_counts("family", reference=PACKAGED_REFERENCE).set_index("family")
    >>> int(t.loc["CHU/CHR", "eligible"]), int(t.loc["EHPAD", "eligible"])
    (373, 7501)
    """
    ref = _ref(reference)
    keys = _by(by, ELIGIBLE_KEYS)
    e = ref.eligible
    if families is not None:
        e = e[e["family"].isin(list(families))]
    out = e.groupby(keys, sort=True)["count"].sum().rename("eligible").reset_index()
    out["reference_date"] = ref.finess_date
    out["source"] = f"FINESS {ref.finess_date}"
    return _add_names(out, keys)


def incident_series(reference: Reference | str | Path | None = None, *, wide: bool = False) -> pd.DataFrame:
    """The observatory's published yearly figures.

    Parameters
    ----------
    reference : Reference or path, optional
    wide : bool
        False (default): the long table (:data:`SERIES_COLUMNS`, one row per figure with its source). True:
        one row per period with a column per measure and ``sources`` (the distinct source URLs of the
        period's figures, `` ; ``-separated) and ``source_types``.

    Examples
    --------
    >>> w = incident_series(PACKAGED_REFERENCE, wide=True).set_index("period")
    >>> int(w.loc["2023", "incidents_declared"]), float(w.loc["2023", "share_malicious"])
    (581, 0.5)
    """
    s = _ref(reference).incident_series
    if not wide:
        return s
    keys = ["period", "year", "period_start", "period_end"]
    values = s.pivot(index="period", columns="measure", values="value")
    measures = [m for m in dict.fromkeys(s["measure"])]
    first = s.drop_duplicates("period").set_index("period")[keys[1:]]

    def _join(x: pd.Series) -> str:
        return " ; ".join(dict.fromkeys(u for v in x for u in str(v).split(" ; ") if u))

    src = s.groupby("period", sort=False).agg(
        sources=("source_url", _join), source_types=("source_type", _join)
    )
    out = first.join(values[measures]).join(src).reset_index()
    out = out.set_index("period").loc[list(dict.fromkeys(s["period"]))].reset_index()
    for m in measures:
        if not m.startswith(("share_", "declarations_share")):
            out[m] = out[m].astype("Int64")
    return out


# --------------------------------------------------------------------------------------------------
# Statistics on the national frame
# --------------------------------------------------------------------------------------------------
def _clopper_pearson(x: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval (Clopper & Pearson 1934, Biometrika 26:404-413) by beta quantiles:
    ``low = B(alpha/2; x, n-x+1)`` (0 when x = 0), ``high = B(1-alpha/2; x+1, n-x)`` (1 when x = n); the
    interval of R ``binom.test``. NaN where ``n <= 0`` or ``x > n``."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = (n > 0) & (x >= 0) & (x <= n)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, stats.beta.ppf(alpha / 2, np.maximum(x, 1e-300), n - x + 1), 0.0)
        high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1e-300)), 1.0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def _reference_keys(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The dataset's establishments with the reference's grouping columns (family and sector from the category
    code by the package's table; department from the frame or the FINESS number; region from the department)."""
    if "finess" not in frame.columns:
        raise KeyError("the establishments frame needs a `finess` column")
    est = frame.drop_duplicates("finess").copy()
    cats = load_categories().set_index("category_code")
    if "category_code" in est.columns:
        code = est["category_code"].astype("string").str.strip().str.zfill(3)
        est["category_code"] = code
        est["_family"] = code.map(cats["family"]).astype("string")
        est["_sector"] = code.map(cats["sector"]).astype("string")
        if "family" in est.columns:
            est["_family"] = est["_family"].fillna(est["family"].astype("string"))
    elif "family" in est.columns:
        est["_family"] = est["family"].astype("string")
        sector = cats.drop_duplicates("family").set_index("family")["sector"]
        est["_sector"] = est["_family"].map(sector).astype("string")
    else:
        raise KeyError("the establishments frame needs `category_code` or `family`")
    dep = (
        est["department"].astype("string")
        if "department" in est.columns
        else pd.Series(pd.NA, index=est.index)
    )
    dep = dep.where(dep.notna() & dep.ne(""), finess_department(est["finess"]))
    est["_department"] = dep.astype("string")
    reg = est["region"].astype("string") if "region" in est.columns else pd.Series(pd.NA, index=est.index)
    est["_region"] = reg.where(reg.notna() & reg.ne(""), department_region(est["_department"])).astype(
        "string"
    )
    for k in keys:
        if k in ("family", "sector", "department", "region"):
            est[k] = est[f"_{k}"]
        elif k not in est.columns:
            raise KeyError(f"by={k!r}: the establishments frame has no `{k}` column")
    return est


def national_coverage(
    establishments: pd.DataFrame,
    by: str | Sequence[str] = ("family",),
    *,
    audits: pd.DataFrame | None = None,
    by_year: bool = False,
    families: Sequence[str] | None = None,
    reference: Reference | str | Path | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Audited establishments as a share of the national eligible establishments (FINESS), per group.

    For datasets whose registry holds only the audited establishments (the usual case): the denominators come
    from the national reference, stated with its date in every row.

    Parameters
    ----------
    establishments : DataFrame
        The dataset's establishments: ``finess`` and ``category_code`` (or ``family``); ``department`` /
        ``region`` used when given, else derived from the FINESS number. Family and sector are those of the
        category code in the package's table (the reference's mapping; an explicit family such as ``CHU``
        is not in the reference), else the given family.
    by : str or sequence
        Among ``family``, ``sector``, ``category_code``, ``department``, ``region`` (``status`` when the frame
        has a ``status`` column in the reference's vocabulary).
    audits : DataFrame, optional
        ``finess`` (and ``audit_date`` for ``by_year``): an establishment counts as audited when it has an
        audit. Default: every establishment of the frame is audited (a registry of audited establishments).
    by_year : bool
        Also one block per calendar year of ``audit_date`` (``period``); ``period`` = ``all`` otherwise.
    families : sequence of str, optional
        Restrict both sides to these families (e.g. those the audit service offers audits to).
    reference : Reference or path, optional
    alpha : float
        1 - confidence level.

    Returns
    -------
    DataFrame
        ``indicators.csv`` vocabulary first — ``indicator`` (``national_coverage``), ``group`` (the ``by``
        values joined by `` / ``; ``all`` for the total), ``period``, ``n_establishments`` (national
        eligible), ``n_audits`` (audits, <NA> without ``audits``), ``value`` (audited / eligible),
        ``ci_low``, ``ci_high``, ``ci_method`` (``clopper_pearson``), ``suppressed`` (False) — then the ``by``
        columns (with ``department_name`` / ``region_name`` after them), ``audited``, ``eligible``, ``reference_date``, ``reference_source`` and ``note``: why a share
        is missing (a group unknown to the reference, or more audited establishments than the reference
        counts: a dataset family or department that the reference groups differently, or a reference older
        than the dataset). ``attrs["statement"]`` says where the denominators come from.

    Notes
    -----
    Exact binomial (Clopper-Pearson) intervals: the audited establishments are treated as a draw among the
    eligible ones; the reference counts geographic sites (see :func:`reference_info`).

    Examples
    --------
    >>> est = pd.DataFrame({"finess": ["750000001", "750000002", "690000001"], "category_code": ["101", "101", "355"]})
    >>> out = national_coverage(est, families=["CH", "CHU/CHR"], reference=PACKAGED_REFERENCE)
    >>> out[["group", "audited", "eligible"]].values.tolist()
    [['CH', 1, 1501], ['CHU/CHR', 2, 373], ['all', 3, 1874]]
    """
    ref = _ref(reference)
    keys = _by(by, ("family", "sector", "category_code", "department", "region", "status"))
    est = _reference_keys(establishments, keys)
    if families is not None:
        est = est[est["_family"].isin(list(families))]
    elig = eligible_counts(keys, reference=ref, families=families)[[*keys, "eligible"]]
    in_ref = est["_family"].isin(set(ref.eligible["family"]) if families is None else set(families)) & est[
        "_department"
    ].isin(set(ref.eligible["department"]))
    est = est.assign(_in_reference=in_ref)
    aud = _audits_of(audits, est, by_year=by_year)
    blocks = [("all", None)]
    if by_year:
        blocks += [(str(int(y)), int(y)) for y in sorted(aud["_year"].dropna().unique())]
    out = pd.concat(
        [_coverage_block(est, aud, elig, keys, period=period, year=year) for period, year in blocks],
        ignore_index=True,
    )
    out = _coverage_shares(out, keys, alpha=alpha, reference_date=ref.finess_date)
    out.attrs["statement"] = (
        f"Eligible establishments: national FINESS reference of {ref.finess_date} (geographic "
        "establishments), not the dataset's registry."
    )
    return out.reset_index(drop=True)


def _audits_of(audits: pd.DataFrame | None, est: pd.DataFrame, *, by_year: bool) -> pd.DataFrame | None:
    """The audits of the establishments ``est`` (with ``_year`` for ``by_year``); None without audits.
    Raise KeyError or ValueError when a column ``national_coverage`` needs is missing."""
    if audits is None:
        if by_year:
            raise ValueError("by_year needs the audits")
        return None
    if "finess" not in audits.columns:
        raise KeyError("audits need a `finess` column")
    aud = audits[audits["finess"].isin(est["finess"])].copy()
    if by_year:
        if "audit_date" not in aud.columns:
            raise KeyError("by_year needs `audit_date` in audits")
        aud["_year"] = pd.to_datetime(aud["audit_date"]).dt.year
    return aud


def _coverage_block(
    est: pd.DataFrame, aud: pd.DataFrame | None, elig: pd.DataFrame, keys: list[str], *, period: str, year
) -> pd.DataFrame:
    """Audited and eligible establishments (and audits) per group for one period (``year`` None: all),
    plus the ``all`` row, whose audited count keeps only establishments the reference can place."""
    if aud is None:
        audited_est, n_aud = est, None
    else:
        a = aud if year is None else aud[aud["_year"] == year]
        audited_est = est[est["finess"].isin(a["finess"])]
        n_aud = a[["finess"]].merge(est[["finess", *keys]], on="finess")
    got = audited_est.groupby(keys, dropna=False).size().rename("audited").reset_index()
    merged = elig.merge(got, on=keys, how="outer")
    merged["audited"] = merged["audited"].fillna(0).astype("int64")
    merged["eligible"] = merged["eligible"].fillna(0).astype("int64")
    if n_aud is not None:
        na = n_aud.groupby(keys, dropna=False).size().rename("n_audits").reset_index()
        merged = merged.merge(na, on=keys, how="left")
        merged["n_audits"] = merged["n_audits"].fillna(0).astype("Int64")
    else:
        merged["n_audits"] = pd.Series(pd.NA, index=merged.index, dtype="Int64")
    in_ref = audited_est["_in_reference"]
    total = pd.DataFrame(
        {
            **{k: ["all"] for k in keys},
            "audited": [int(in_ref.sum())],
            "eligible": [int(elig["eligible"].sum())],
            "n_audits": pd.array(
                [
                    pd.NA
                    if n_aud is None
                    else int(n_aud["finess"].isin(audited_est.loc[in_ref, "finess"]).sum())
                ],
                dtype="Int64",
            ),
        }
    )
    block = pd.concat([merged.sort_values(keys, na_position="last"), total], ignore_index=True)
    block["period"] = period
    return block


def _coverage_shares(
    out: pd.DataFrame, keys: list[str], *, alpha: float, reference_date: str
) -> pd.DataFrame:
    """Audited / eligible with exact (Clopper-Pearson) intervals, a note where no share can be given, and
    the ``indicators.csv`` vocabulary first."""
    for k in keys:
        out[k] = out[k].astype("string").fillna("unknown")
    x, n = out["audited"].to_numpy(float), out["eligible"].to_numpy(float)
    low, high = _clopper_pearson(x, n, alpha)
    share_ok = (n > 0) & (x <= n)
    out["value"] = np.where(share_ok, x / np.where(n > 0, n, 1), np.nan)
    out["ci_low"], out["ci_high"] = low, high
    out["note"] = np.select(
        [n == 0, x > n],
        ["group unknown to the national reference", "more audited establishments than the reference counts"],
        "",
    )
    out["ci_method"] = "clopper_pearson"
    out["indicator"] = "national_coverage"
    out["group"] = out[keys].agg(" / ".join, axis=1).where(~out[keys].eq("all").all(axis=1), "all")
    out["n_establishments"] = out["eligible"]
    out["suppressed"] = False
    out["reference_date"] = reference_date
    out["reference_source"] = f"FINESS {reference_date} (national, geographic establishments)"
    cols = [
        "indicator", "group", "period", "n_establishments", "n_audits", "value", "ci_low", "ci_high",
        "ci_method", "suppressed", *keys, "audited", "eligible", "reference_date", "reference_source", "note",
    ]  # fmt: skip
    return _add_names(out[cols].copy(), keys)


def registry_scope(establishments: pd.DataFrame, audits: pd.DataFrame) -> str:
    """``audited_only`` when every establishment of the registry has an audit (the registry is the list of
    audited establishments, so coverage needs the national reference), else ``registry`` (the dataset
    brings a registry of its own, which wins; compare it with :func:`compare_registry`).

    Examples
    --------
    >>> est = pd.DataFrame({"finess": ["a", "b"]})
    >>> registry_scope(est, pd.DataFrame({"finess": ["a", "b", "a"]})), registry_scope(est, pd.DataFrame({"finess": ["a"]}))
    ('audited_only', 'registry')
    """
    audited = set(audits["finess"].dropna())
    return "audited_only" if set(establishments["finess"].dropna()) <= audited else "registry"


@dataclass
class RegistryComparison:
    """A dataset's registry against the national reference (:func:`compare_registry`).

    Attributes
    ----------
    by_family, by_family_department : DataFrame
        ``family`` (and ``department``), ``dataset``, ``reference``, ``difference`` (dataset - reference),
        ``ratio`` (dataset / reference), ``differs``.
    unknown : DataFrame
        Establishments the reference cannot place: ``finess``, ``category_code``, ``department``,
        ``reason`` (``category_not_in_reference``, ``department_not_in_reference``,
        ``department_unknown``). Confidential (FINESS numbers): publish :attr:`unknown_counts`.
    unknown_counts : DataFrame
        ``reason``, ``value`` (the code or department), ``n``.
    reference_date : str
    """

    by_family: pd.DataFrame
    by_family_department: pd.DataFrame
    unknown: pd.DataFrame
    unknown_counts: pd.DataFrame
    reference_date: str
    explicit_families: int = 0
    families_differing: list[str] = field(default_factory=list)


def _compare(ds: pd.DataFrame, rf: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    m = ds.merge(rf, on=keys, how="outer")
    m["dataset"] = m["dataset"].fillna(0).astype("int64")
    m["reference"] = m["reference"].fillna(0).astype("int64")
    m["difference"] = m["dataset"] - m["reference"]
    m["ratio"] = np.where(
        m["reference"] > 0, m["dataset"] / m["reference"].where(m["reference"] > 0, 1), np.nan
    )
    m["differs"] = m["difference"].ne(0)
    return m.sort_values(keys).reset_index(drop=True)


def compare_registry(
    dataset_registry: pd.DataFrame, *, reference: Reference | str | Path | None = None
) -> RegistryComparison:
    """Compare a dataset's own registry with the national reference, per family and per family × department.

    Parameters
    ----------
    dataset_registry : DataFrame
        ``finess``, ``category_code`` (family from it, as the reference; an explicit ``family`` that differs
        is counted in ``explicit_families``), optional ``department`` (else from the FINESS number).
    reference : Reference or path, optional

    Returns
    -------
    RegistryComparison
        ``families_differing`` lists the families whose counts differ from the reference.

    Examples
    --------
    >>> reg = pd.DataFrame({"finess": ["750000001", "980500011"], "category_code": ["101", "101"]})
    >>> c = compare_registry(reg, reference=PACKAGED_REFERENCE)
    >>> c.unknown_counts.values.tolist()
    [['department_not_in_reference', '976', 1]]
    """
    ref = _ref(reference)
    est = _reference_keys(dataset_registry, ["family", "department"])
    ref_codes = set(ref.eligible["category_code"])
    ref_deps = set(ref.eligible["department"])
    codes = est["category_code"] if "category_code" in est.columns else pd.Series(pd.NA, index=est.index)
    reason = np.select(
        [
            codes.notna().to_numpy() & ~codes.isin(ref_codes).to_numpy(),
            est["_department"].isna().to_numpy(),
            ~est["_department"].isin(ref_deps).to_numpy(),
        ],
        ["category_not_in_reference", "department_unknown", "department_not_in_reference"],
        "",
    )
    unknown = pd.DataFrame(
        {
            "finess": est["finess"].to_numpy(),
            "category_code": codes.to_numpy(),
            "department": est["_department"].to_numpy(),
            "reason": reason,
        }
    )
    unknown = unknown[unknown["reason"] != ""].reset_index(drop=True)
    value = np.where(
        unknown["reason"] == "category_not_in_reference", unknown["category_code"], unknown["department"]
    )
    counts = (
        unknown.assign(value=pd.Series(value, dtype="string").fillna("<missing>"))
        .groupby(["reason", "value"])
        .size()
        .rename("n")
        .reset_index()
    )
    fam_ds = est.groupby("family").size().rename("dataset").reset_index()
    fam_rf = ref.eligible.groupby("family")["count"].sum().rename("reference").reset_index()
    by_family = _compare(fam_ds, fam_rf, ["family"])
    fd_ds = (
        est.dropna(subset=["department"])
        .groupby(["family", "department"])
        .size()
        .rename("dataset")
        .reset_index()
    )
    fd_rf = ref.eligible.groupby(["family", "department"])["count"].sum().rename("reference").reset_index()
    by_fd = _compare(fd_ds, fd_rf, ["family", "department"])
    explicit = 0
    if "family" in dataset_registry.columns and "category_code" in est.columns:
        given = (
            dataset_registry.drop_duplicates("finess")["family"]
            .astype("string")
            .str.strip()
            .replace("", pd.NA)
        )
        derived = est["_family"].astype("string").fillna("")
        explicit = int((given.notna() & given.fillna("").ne(derived.to_numpy())).sum())
    return RegistryComparison(
        by_family=by_family,
        by_family_department=by_fd,
        unknown=unknown,
        unknown_counts=counts,
        reference_date=ref.finess_date,
        explicit_families=explicit,
        families_differing=by_family.loc[by_family["differs"], "family"].tolist(),
    )


RATE_COLUMNS = (
    "period",
    "year",
    "sector",
    "measure",
    "count",
    "count_derived",
    "derivation",
    "denominator",
    "denominator_source",
    "denominator_date",
    "per",
    "value",
    "ci_low",
    "ci_high",
    "ci_method",
    "source_url",
    "caveats",
)


def national_incident_rates(
    series: pd.DataFrame | None = None,
    eligible: pd.DataFrame | None = None,
    *,
    reference: Reference | str | Path | None = None,
    per: float = 1000.0,
    alpha: float = 0.05,
    published_denominators: bool = True,
    lang: str = "en",
) -> pd.DataFrame:
    """National declarations (and declaring structures) per 1,000 eligible establishments, with exact intervals.

    Parameters
    ----------
    series : DataFrame, optional
        The long series (:func:`incident_series`); default the reference's.
    eligible : DataFrame, optional
        Eligible establishments with ``sector`` (``ES``/``ESMS``) and ``eligible``
        (``eligible_counts("sector")``, the default).
    reference : Reference or path, optional
    per : float
        Multiplier (1,000).
    alpha : float
    published_denominators : bool
        Also rate the ES and ESMS figures per the observatory's own published denominators (entities subject
        to the obligation: ``observatory_denominators.csv`` rows naming the reporting obligation), where
        published.
    lang : str
        Language of ``attrs["caveat_text"]``.

    Returns
    -------
    DataFrame
        :data:`RATE_COLUMNS`, one row per period × sector (``all``, ``ES``, ``ESMS``) × measure × denominator:

        * ``declarations``: Poisson counts, Garwood exact interval (:func:`cyberobs_lib.stats.rates.rate_per_1000`,
          the interval of R ``poisson.test``); ES/ESMS counts are derived from the published shares
          (``count_derived``, ``derivation`` = ``round(0.65 × 733)``);
        * ``structures_declaring``: a share of establishments, Clopper-Pearson interval (R ``binom.test``),
          scaled by ``per``.

        ``all`` uses every eligible establishment (ES + ESMS families); ES and ESMS rows exist only where the
        published split allows them. ``caveats`` lists caveat ids (``;``), their texts in
        ``attrs["caveat_text"]``.

    Examples
    --------
    >>> r = national_incident_rates(reference=PACKAGED_REFERENCE)
    >>> row = r[(r["period"] == "2021") & (r["sector"] == "ES") & (r["measure"] == "declarations")
    ...         & (r["denominator_source"] == "finess_sites")].iloc[0]
    >>> int(row["count"]), row["derivation"]
    (476, 'round(0.65 × 733)')
    """
    ref = _ref(reference)
    s = ref.incident_series if series is None else series
    e = eligible_counts("sector", reference=ref) if eligible is None else eligible
    if not {"sector", "eligible"} <= set(e.columns):
        raise KeyError("eligible needs `sector` and `eligible` columns (eligible_counts('sector'))")
    sites = e.groupby("sector")["eligible"].sum().to_dict()
    sites["all"] = float(sum(sites.values()))
    pub = _published_denominators(ref) if published_denominators else {}
    rows = []
    for period, g in s.groupby("period", sort=False):
        first = g.iloc[0]
        base = {"period": period, "year": first["year"]}
        pre_obligation = str(first["period_start"]) < ESMS_OBLIGATION_DATE
        for c in _period_counts(g):
            dens = [(sites.get(c.sector, 0.0), "finess_sites", ref.finess_date)]
            if c.sector in pub:
                dens.append((pub[c.sector][0], "observatory_published", pub[c.sector][1]))
            for den, den_source, den_date in dens:
                rate = _rate(c.measure, c.count, den, per=per, alpha=alpha)
                rows.append(
                    {
                        **base,
                        "sector": c.sector,
                        "measure": c.measure,
                        "count": int(c.count),
                        "count_derived": c.derived,
                        "derivation": c.derivation,
                        "denominator": den,
                        "denominator_source": den_source,
                        "denominator_date": den_date,
                        "per": per,
                        **rate,
                        "source_url": c.url,
                        "caveats": ";".join(_rate_caveats(c, den_source, pre_obligation=pre_obligation)),
                    }
                )
    out = pd.DataFrame(rows, columns=list(RATE_COLUMNS))
    out["year"] = out["year"].astype("Int64")
    ids = sorted({c for cs in out["caveats"] for c in cs.split(";") if c})
    out.attrs["caveat_text"] = dict(zip(ids, caveat_text(ids, lang, ref), strict=True))
    return out


class _PeriodCount(NamedTuple):
    """One national figure of a period to rate: sector, measure, count and where it comes from."""

    sector: str
    measure: str
    count: float
    derived: bool
    derivation: str
    url: str


def _published_denominators(ref: Reference) -> dict[str, tuple[float, str, bool]]:
    """The observatory's own published denominators per sector (ES, ESMS): entities subject to the
    reporting obligation, as (value, as-of date or label, approximate); the first row of a sector wins."""
    pub: dict[str, tuple[float, str, bool]] = {}
    if len(ref.denominators):
        d = ref.denominators
        obl = d[d["figure"].str.contains("obligation", case=False) & d["sector"].isin(["ES", "ESMS"])]
        for _, r in obl.iterrows():
            pub.setdefault(
                r["sector"], (float(r["value"]), r["as_of"] or r["as_of_label"], bool(r["approx"]))
            )
    return pub


def _period_counts(g: pd.DataFrame) -> list[_PeriodCount]:
    """The figures of one period of the long series: declarations (all, and ES/ESMS derived from the
    published shares, rounded) and declaring structures (all, ES, ESMS), those published only."""
    v = dict(zip(g["measure"], g["value"], strict=True))
    src = dict(zip(g["measure"], g["source_url"], strict=True))
    counts: list[_PeriodCount] = []
    total = v.get("incidents_declared")
    if total is not None and not np.isnan(total):
        counts.append(_PeriodCount("all", "declarations", total, False, "", src["incidents_declared"]))
        for sector, key in (("ES", "declarations_share_es"), ("ESMS", "declarations_share_esms")):
            if key in v and not np.isnan(v[key]):
                counts.append(
                    _PeriodCount(
                        sector,
                        "declarations",
                        round(v[key] * total),
                        True,
                        f"round({v[key]:g} × {total:g})",
                        f"{src[key]} ; {src['incidents_declared']}",
                    )
                )
    for sector, key in (
        ("all", "structures_declaring"),
        ("ES", "structures_declaring_es"),
        ("ESMS", "structures_declaring_esms"),
    ):
        if key in v and not np.isnan(v[key]):
            counts.append(_PeriodCount(sector, "structures_declaring", v[key], False, "", src[key]))
    return counts


def _rate(measure: str, count: float, den: float, *, per: float, alpha: float) -> dict:
    """``value``, ``ci_low``, ``ci_high``, ``ci_method`` of a count over a denominator: a Poisson rate
    (Garwood exact) for declarations, a Clopper-Pearson share for declaring structures, scaled by ``per``."""
    if den <= 0:
        return {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ci_method": "no denominator"}
    if measure == "declarations":
        r = rate_per_1000(count, den, per=per, alpha=alpha).iloc[0]
        return {
            "value": r["value"],
            "ci_low": r["ci_low"],
            "ci_high": r["ci_high"],
            "ci_method": r["ci_method"],
        }
    lo, hi = _clopper_pearson(np.array([count]), np.array([den]), alpha)
    return {
        "value": per * count / den,
        "ci_low": per * lo[0],
        "ci_high": per * hi[0],
        "ci_method": "clopper_pearson",
    }


def _rate_caveats(c: _PeriodCount, den_source: str, *, pre_obligation: bool) -> list[str]:
    """Caveat ids of a rate: ESMS obligation (before 2022), derived counts, the kind of denominator,
    under-declaration (declarations)."""
    cav = []
    if c.sector in ("all", "ESMS") and pre_obligation:
        cav.append("esms_obligation_2022")
    if c.derived:
        cav.append("derived_counts")
    cav.append("denominator_sites" if den_source == "finess_sites" else "denominator_published")
    cav += ["under_declaration"] if c.measure == "declarations" else []
    return cav


def dataset_share_of_national(
    incidents: pd.DataFrame,
    *,
    series: pd.DataFrame | None = None,
    reference: Reference | str | Path | None = None,
    alpha: float = 0.05,
    covered_only: bool = False,
) -> pd.DataFrame:
    """The dataset's declarations as a share of the national declarations of each published period.

    Parameters
    ----------
    incidents : DataFrame
        Contract incidents (``declared_on``).
    series : DataFrame, optional
        Long series; default the reference's.
    covered_only : bool
        Keep only the periods the dataset's declarations cover (a published table: the other periods
        hold nothing of the dataset, and the national series is published on its own).

    Returns
    -------
    DataFrame
        ``period``, ``year``, ``dataset_declarations`` (declarations with ``declared_on`` in the period;
        <NA> for periods outside the dataset's first and last declaration), ``national_declarations``,
        ``share``, ``ci_low``, ``ci_high`` (Clopper-Pearson: the dataset's declarations as a draw among the
        national ones), ``ci_method``, ``source_url``, ``note`` (a dataset with more declarations than the
        national total is not a subset of the observatory's declarations).

    Examples
    --------
    >>> inc = pd.DataFrame({"declared_on": pd.to_datetime(["2023-03-01", "2023-06-01"])})
    >>> out = dataset_share_of_national(inc, reference=PACKAGED_REFERENCE)
    >>> out.loc[out["period"] == "2023", ["dataset_declarations", "national_declarations"]].values.tolist()
    [[2, 581]]
    """
    s = _ref(reference).incident_series if series is None else series
    nat = s[s["measure"] == "incidents_declared"]
    when = pd.to_datetime(incidents["declared_on"], errors="coerce").dropna()
    lo_d, hi_d = (when.min(), when.max()) if len(when) else (None, None)
    rows = []
    for _, r in nat.iterrows():
        start, end = pd.Timestamp(r["period_start"]), pd.Timestamp(r["period_end"]) + pd.Timedelta(days=1)
        covered = lo_d is not None and lo_d < end and hi_d >= start
        n = int(((when >= start) & (when < end)).sum()) if covered else pd.NA
        rows.append((r["period"], r["year"], n, int(r["value"]), r["source_url"]))
    out = pd.DataFrame(
        rows, columns=["period", "year", "dataset_declarations", "national_declarations", "source_url"]
    )
    out["dataset_declarations"] = out["dataset_declarations"].astype("Int64")
    x = out["dataset_declarations"].astype("Float64").fillna(np.nan).to_numpy(float)
    n = out["national_declarations"].to_numpy(float)
    low, high = _clopper_pearson(np.nan_to_num(x, nan=-1), n, alpha)
    ok = ~np.isnan(x) & (x <= n)
    out["share"] = np.where(ok, x / n, np.nan)
    out["ci_low"], out["ci_high"] = np.where(ok, low, np.nan), np.where(ok, high, np.nan)
    out["ci_method"] = "clopper_pearson"
    out["note"] = np.select(
        [np.isnan(x), x > n],
        ["outside the dataset's declarations", "more declarations than the national total"],
        "",
    )
    out["year"] = out["year"].astype("Int64")
    if covered_only:
        out = out[out["dataset_declarations"].notna()].reset_index(drop=True)
    return out[
        ["period", "year", "dataset_declarations", "national_declarations", "share", "ci_low", "ci_high",
         "ci_method", "source_url", "note"]
    ]  # fmt: skip
