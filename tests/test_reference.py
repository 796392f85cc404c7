"""National reference tables (cyberobs_lib.reference, scripts/build_reference.py, `cyberobs reference`).

Small sources written in tmp_path mimic the formats of ../shared/reference (never copied); tests against the
real folder skip cleanly when it is not beside the checkout (as tests/conftest.py does for ../shared/corpus).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from cyberobs_lib import reference as nref
from cyberobs_lib.cli import main as cli_main
from cyberobs_lib.finess_extract import ETALAB_FIELDS
from cyberobs_lib.io import sha256_file

REPO = Path(__file__).resolve().parents[1]
#: The real public sources, beside the checkout (``../shared/reference``); absent on most machines.
SHARED_REFERENCE = Path(os.environ.get("CYBEROBS_SHARED_REFERENCE", REPO.parent / "shared" / "reference"))

FLAT_HEADER = (
    "nofinesset,nofinessej,name,categetab,libcategetab,categagretab,libcategagretab,codesph,libsph,"
    "postal_code,city,dept_from_finess,datemaj,provenance"
)
#: (finess, name, category, label, aggregate, aggregate label, codesph, libsph, dept) of the tiny extraction.
FLAT_ROWS = [
    ("750000011", "SITE A", "101", "Centre Hospitalier Régional (C.H.R.)", "1101", "CHR", "1", "Etablissement public de santé", "75"),
    ("750000029", "SITE B", "101", "Centre Hospitalier Régional (C.H.R.)", "1101", "CHR", "1", "Etablissement public de santé", "75"),
    ("690000014", "SITE C", "101", "Centre Hospitalier Régional (C.H.R.)", "1101", "CHR", "1", "Etablissement public de santé", "69"),
    ("010000016", "SITE D", "355", "Centre Hospitalier (C.H.)", "1102", "CH", "1", "Etablissement public de santé", "01"),
    ("010000024", "SITE E", "106", "Centre hospitalier, ex Hôpital local", "1106", "HL", "1", "Etablissement public de santé", "01"),
    ("2A0000013", "SITE F", "500", "Etablissement d'hébergement pour personnes âgées dépendantes", "4401", "EPA", "", "", "2A"),
    ("2A0000021", "SITE G", "500", "Etablissement d'hébergement pour personnes âgées dépendantes", "4401", "EPA", "", "", "2A"),
    ("970100015", "SITE H", "500", "Etablissement d'hébergement pour personnes âgées dépendantes", "4401", "EPA", "", "", "971"),
    ("690000022", "SITE I", "365", "Etablissement de Soins Pluridisciplinaire", "1110", "AESP", "0", "Non concerné", "69"),
    ("690000030", "SITE J", "365", "Etablissement de Soins Pluridisciplinaire", "1110", "AESP", "6", "Etablissement de santé privé d'intérêt collectif", "69"),
    ("750000037", "PHARMACIE K", "620", "Pharmacie d'Officine", "3201", "Commerce", "", "", "75"),
]  # fmt: skip

SERIES = """year,incidents_declared,structures_declaring,share_malicious,ransomware_count,split_by_structure_type,share_structures_degraded_mode,provenance
2020-10..2021-09,100,,,,,,https://example.org/a
2021,10,8,40%,2,10% ES / 0% ESMS,,https://example.org/b ; https://example.org/c
2022,~592 (prelim. 588),,50%,,,39%,https://example.org/d
2023,581,422 (301 ES + 121 ESMS),50%,32,301 ES / 121 ESMS (structures),,https://example.org/e
"""
FIGURES = """year,figure,value,source_url,quote_location,source_type,note
2021,incidents declared,10,https://example.org/fig-2021,where,trade press quoting ANS,
2021,share malicious,40% (60% not),https://example.org/fig-mal,where,press,
2021,share declared by établissements de santé ; by médico-social,10% ; 0%,https://example.org/fig-split,where,press,
2022,incidents declared (preliminary),588,https://example.org/prelim,where,press,
2022,incidents declared (final),592,https://example.org/final,where,blog,final figure
2023,structures declaring >=1 incident,422 = 301 ES + 121 ESMS,https://example.org/fig-structures,where,press,
"""
DENOMINATORS = """year,figure,value,source_url,quote_location,source_type
2021 report,ES / ESMS subject to reporting obligation (observatoire denominators),1 000 ES (31/12/2018) ; ~2 000 ESMS,https://example.org/den,where,press quoting report
2020,hôpitaux publics / privés / total,10 / 20 / 30,https://example.org/drees,where,official stat
"""


def _flat_text(rows=FLAT_ROWS) -> str:
    lines = [FLAT_HEADER]
    for f, name, cat, lab, agr, agrlab, sph, libsph, dep in rows:
        lines.append(
            f'{f},{f},{name},{cat},"{lab}",{agr},{agrlab},{sph},{libsph},00000,CITY,{dep},2020-01-01,SRC1'
        )
    return "\n".join(lines) + "\n"


def _counts_text(rows=FLAT_ROWS, date: str = "2021-01-08") -> str:
    nat = pd.Series([r[2] for r in rows]).value_counts()
    lines = [
        "level,dept_code,category_code,category_label_finess,category_short,count,extraction_date,provenance"
    ]
    for code, n in sorted(nat.items()):
        lines.append(f"national,ALL,{code},x,x,{n},{date},SRC-TEST: tiny extraction")
    lines.append(f"national,ALL,ALL,all,all,{len(rows)},{date},SRC-TEST: tiny extraction")
    lines.append(f"department,75,101,x,x,2,{date},SRC-TEST: tiny extraction")
    lines.append(f"department,01,ALL,x,x,2,{date},SRC-TEST: tiny extraction")
    return "\n".join(lines) + "\n"


def make_sources(root: Path, *, flat: str | None = None, series: str = SERIES, counts: bool = True) -> Path:
    """A folder shaped like ../shared/reference with tiny synthetic files."""
    (root / "finess").mkdir(parents=True, exist_ok=True)
    (root / "incident_observatory").mkdir(parents=True, exist_ok=True)
    (root / "finess" / "finess_flat.csv").write_text(
        flat if flat is not None else _flat_text(), encoding="utf-8"
    )
    if counts:
        (root / "finess" / "finess_counts.csv").write_text(_counts_text(), encoding="utf-8")
    io_dir = root / "incident_observatory"
    (io_dir / "observatoire_annual_series.csv").write_text(series, encoding="utf-8")
    (io_dir / "observatoire_figures.csv").write_text(FIGURES, encoding="utf-8")
    (io_dir / "denominators_reference.csv").write_text(DENOMINATORS, encoding="utf-8")
    (root / "README.md").write_text("not a source\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def _no_user_reference(tmp_path, monkeypatch):
    """No test reads or writes the real user data folder."""
    monkeypatch.delenv(nref.REFERENCE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture()
def tiny(tmp_path) -> nref.Reference:
    src = make_sources(tmp_path / "src")
    nref.build_reference(src, tmp_path / "ref")
    return nref.load_reference(tmp_path / "ref")


@pytest.fixture(scope="module")
def shared_reference() -> Path:
    """The real ../shared/reference folder; skips the test cleanly when it is not there."""
    if not (SHARED_REFERENCE / "README.md").is_file():
        pytest.skip(f"shared reference sources not present at {SHARED_REFERENCE}")
    return SHARED_REFERENCE


# --------------------------------------------------------------------------------------------------
# Building from tiny sources
# --------------------------------------------------------------------------------------------------
def test_eligible_counts_by_family_department_region_status(tiny):
    fam = nref.eligible_counts("family", reference=tiny).set_index("family")["eligible"]
    # CHU/CHR: 3 sites of 101; CH: 355 + 106; EHPAD: 3; clinics 2; the pharmacy (620) is not eligible
    assert fam.to_dict() == {"CH": 2, "CHU/CHR": 3, "EHPAD": 3, "Private clinic (MCO)": 2}
    dep = nref.eligible_counts(("family", "department"), reference=tiny)
    assert dep.set_index(["family", "department"]).loc[("CHU/CHR", "75"), "eligible"] == 2
    assert dep.set_index(["family", "department"]).loc[("EHPAD", "971"), "department_name"] == "Guadeloupe"
    reg = nref.eligible_counts("region", reference=tiny).set_index("region")
    assert reg.loc["84", "eligible"] == 5  # 01 (2) and 69 (3) are Auvergne-Rhône-Alpes
    assert reg.loc["94", "region_name"] == "Corse"
    status = nref.eligible_counts(("family", "status"), reference=tiny).set_index(["family", "status"])[
        "eligible"
    ]
    assert status[("Private clinic (MCO)", "not_concerned")] == 1
    assert status[("Private clinic (MCO)", "private_nonprofit")] == 1
    assert status[("EHPAD", "unknown")] == 3  # empty codesph
    assert set(nref.eligible_counts("family", reference=tiny)["reference_date"]) == {"2021-01-08"}
    with pytest.raises(ValueError, match="group keys must be among"):
        nref.eligible_counts("name", reference=tiny)


def test_every_row_accounted_and_no_identifier_written(tiny):
    fin = tiny.metadata["sources"]["finess"]
    assert fin["rows_read"] == len(FLAT_ROWS) == fin["rows_eligible"] + fin["rows_other"]
    assert tiny.other_categories.set_index("category_code").loc["620", "count"] == 1
    assert "976" in fin["departments_absent"] and "75" not in fin["departments_absent"]
    assert fin["cross_checks"][0]["file"] == "finess_counts.csv"
    text = "".join(p.read_text(encoding="utf-8") for p in tiny.path.iterdir())
    for finess, name, *_ in FLAT_ROWS:
        assert finess not in text and name not in text
    assert set(tiny.eligible.columns) == set(nref.ELIGIBLE_COLUMNS)
    assert tiny.eligible["provenance"].str.contains("Licence Ouverte").all()


def test_metadata_dates_licence_hashes_and_caveats(tiny):
    m = tiny.metadata
    assert m["sources"]["finess"]["reference_date"] == "2021-01-08"  # from finess_counts.csv
    assert m["sources"]["finess"]["licence"].startswith("Licence Ouverte")
    assert m["sources"]["finess"]["provenance"] == "SRC-TEST: tiny extraction"
    for name, t in m["tables"].items():
        assert sha256_file(tiny.path / t["file"]) == t["sha256"], name
    ids = {c["id"] for c in m["caveats"]}
    assert {
        "geographic_sites",
        "under_declaration",
        "esms_obligation_2022",
        "press_quoted",
        "departments_absent",
    } <= ids
    assert "finess_2021_conversion_gaps" in ids  # flat layout dated 2021-01-08: the known conversion gaps
    info = nref.reference_info(tiny, lang="fr")
    assert "2021-01-08" in info["statement"] and info["statement"].startswith("Référence nationale")
    assert "La Réunion (974)" in info["caveats"]["finess_2021_conversion_gaps"]


def test_build_is_deterministic(tmp_path):
    src = make_sources(tmp_path / "src")
    nref.build_reference(src, tmp_path / "a")
    nref.build_reference(src, tmp_path / "b")
    for f in [*nref.TABLE_FILES.values(), "reference.json"]:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_incident_series_parsed_with_sources(tiny):
    s = tiny.incident_series.set_index(["period", "measure"])
    assert s.loc[("2021", "share_malicious"), "value"] == pytest.approx(0.40)
    assert s.loc[("2021", "share_malicious"), "source_url"] == "https://example.org/fig-mal"
    assert s.loc[("2021", "declarations_share_es"), "value"] == pytest.approx(0.10)
    assert s.loc[("2021", "declarations_share_esms"), "value"] == 0
    # "~592 (prelim. 588)": the value, approximate, the rest kept as a note; the source is the final figure
    row = s.loc[("2022", "incidents_declared")]
    assert (row["value"], row["approx"], row["value_as_published"]) == (592, True, "~592")
    assert row["source_url"] == "https://example.org/final" and "prelim. 588" in row["note"]
    assert s.loc[("2023", "structures_declaring_es"), "value"] == 301
    assert s.loc[("2023", "structures_declaring_esms"), "value"] == 121
    # no figure row for the 2023 ransomware count: the series row's provenance is its source
    assert s.loc[("2023", "ransomware_count"), "source_url"] == "https://example.org/e"
    assert pd.isna(s.loc[("2023", "ransomware_count"), "figure_row"])
    span = s.loc[("2020-10..2021-09", "incidents_declared")]
    assert (span["period_start"], span["period_end"], span["year"]) == ("2020-10-01", "2021-09-30", pd.NA)
    wide = nref.incident_series(tiny, wide=True).set_index("period")
    assert int(wide.loc["2023", "structures_declaring"]) == 422
    assert "https://example.org/fig-mal" in wide.loc["2021", "sources"]


def test_denominators_parsed(tiny):
    d = tiny.denominators
    es = d[(d["sector"] == "ES")].iloc[0]
    assert (es["value"], es["as_of"], es["approx"]) == (1000, "2018-12-31", False)
    esms = d[(d["sector"] == "ESMS")].iloc[0]
    assert (esms["value"], esms["approx"]) == (2000, True)
    assert d[d["label"] == "total"]["value"].tolist() == [30]


# --------------------------------------------------------------------------------------------------
# Malformed sources: clear errors naming file, row and rule
# --------------------------------------------------------------------------------------------------
def _build_error(tmp_path, **kwargs) -> str:
    src = make_sources(tmp_path / "src", **kwargs)
    with pytest.raises(nref.ReferenceSourceError) as exc:
        nref.build_reference(src, tmp_path / "out")
    assert not (tmp_path / "out" / "reference.json").exists()  # nothing written
    return str(exc.value)


def test_error_missing_column(tmp_path):
    msg = _build_error(tmp_path, flat=_flat_text().replace(",codesph,", ",code_sph,", 1))
    assert "finess_flat.csv" in msg and "missing column(s) codesph" in msg


def test_error_bad_category_code_names_row(tmp_path):
    rows = list(FLAT_ROWS)
    rows[3] = (*rows[3][:2], "35", *rows[3][3:])
    msg = _build_error(tmp_path, flat=_flat_text(rows), counts=False)
    assert "rows 4" in msg and "categetab" in msg and "3 digits" in msg


def test_error_bad_finess_prefix_and_duplicates(tmp_path):
    rows = list(FLAT_ROWS)
    rows[1] = ("200000017", *rows[1][1:])
    msg = _build_error(tmp_path / "a", flat=_flat_text(rows), counts=False)
    assert "rows 2" in msg and "department" in msg
    rows = list(FLAT_ROWS)
    rows[2] = (rows[0][0], *rows[2][1:])
    msg = _build_error(tmp_path / "b", flat=_flat_text(rows), counts=False)
    assert "rows 1, 3" in msg and "listed twice" in msg


def test_error_unknown_codesph_names_rule_table(tmp_path):
    rows = list(FLAT_ROWS)
    rows[0] = (*rows[0][:6], "8", "Nouveau statut", rows[0][8])
    msg = _build_error(tmp_path, flat=_flat_text(rows))
    assert "codesph 8" in msg and "sph_status.csv" in msg and "rows 1" in msg


def test_error_published_count_disagrees(tmp_path):
    src = make_sources(tmp_path / "src")
    counts = (src / "finess" / "finess_counts.csv").read_text(encoding="utf-8")
    (src / "finess" / "finess_counts.csv").write_text(
        counts.replace("department,75,101,x,x,2", "department,75,101,x,x,5")
    )
    with pytest.raises(
        nref.ReferenceSourceError, match=r"finess_counts.csv: data row \d+: published count '5'"
    ):
        nref.build_reference(src, tmp_path / "out")


def test_error_no_date(tmp_path):
    msg = _build_error(tmp_path, counts=False)
    assert "extraction date" in msg and "--date" in msg
    # given explicitly, it is used
    meta = nref.build_reference(tmp_path / "src", tmp_path / "ok", finess_date="2024-05-06")
    assert meta["sources"]["finess"]["reference_date"] == "2024-05-06"
    assert "finess_2021_conversion_gaps" not in {c["id"] for c in meta["caveats"]}


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (
            SERIES.replace(",40%,", ",40,"),
            r"data row 2: column share_malicious: '40' \(rule: a share_\* column",
        ),
        (SERIES.replace("2021,10,", "21,10,"), r"data row 2: period '21'"),
        (
            SERIES.replace("10% ES / 0% ESMS", "most from hospitals"),
            r"data row 2: column split_by_structure_type",
        ),
        (SERIES.replace("301 ES / 121 ESMS (structures)", "301 ES / 121 ESMS"), "must say what they count"),
    ],
)
def test_error_series_cells(tmp_path, series, expected):
    msg = _build_error(tmp_path, series=series)
    assert "observatoire_annual_series.csv" in msg
    assert re.search(expected, msg), msg


def test_etalab_stock_file_read(tmp_path):
    """The FINESS open-data stock layout (first line ``finess;etalab;…``, ``structureet`` lines, 32 fields)."""
    fields = list(ETALAB_FIELDS)
    lines = ["finess;etalab;95;2024-03-05"]
    for f, name, cat, lab, agr, agrlab, sph, libsph, dep in FLAT_ROWS:
        row = dict.fromkeys(fields, "")
        row.update(section="structureet", nofinesset=f, nofinessej=f, rs=name, categetab=cat, libcategetab=lab,
                   categagretab=agr, libcategagretab=agrlab, codesph=sph, libsph=libsph, departement=dep)  # fmt: skip
        lines.append(";".join(row[k] for k in fields))
    lines.append("geolocalisation;750000011;1;2;x;2024-01-01")
    path = tmp_path / "etalab-cs1100507-stock-20240305-0400.csv"
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    assert nref.detect_source_kind(path) == "finess"
    src = nref.read_finess_source(path)
    assert (src.layout, src.reference_date, len(src.frame)) == ("etalab", "2024-03-05", len(FLAT_ROWS))
    eligible, other, meta = nref.build_finess_tables(src)
    assert eligible.groupby("family")["count"].sum().to_dict() == {
        "CH": 2, "CHU/CHR": 3, "EHPAD": 3, "Private clinic (MCO)": 2,
    }  # fmt: skip
    assert meta["rows_read"] == meta["rows_eligible"] + meta["rows_other"]


# --------------------------------------------------------------------------------------------------
# Loading, overrides, updates, CLI
# --------------------------------------------------------------------------------------------------
def test_packaged_reference_loads_and_verifies():
    ref = nref.load_reference(nref.PACKAGED_REFERENCE)
    assert ref.origin == "package" and ref.finess_date == "2021-01-08"
    assert nref.reference_dir() == (nref.PACKAGED_REFERENCE, "package")  # no user folder in this test
    for t in ref.metadata["tables"].values():
        assert sha256_file(ref.path / t["file"]) == t["sha256"]


def test_modified_table_is_refused(tiny):
    path = tiny.path / nref.TABLE_FILES["eligible"]
    path.write_text(path.read_text(encoding="utf-8").replace(",2,FINESS", ",20,FINESS", 1), encoding="utf-8")
    with pytest.raises(nref.ReferenceSourceError, match="SHA-256 differs"):
        nref.load_reference(tiny.path)


def test_env_and_user_folders_override_the_package(tmp_path, monkeypatch, tiny, caplog):
    monkeypatch.setenv(nref.REFERENCE_ENV_VAR, str(tiny.path))
    ref = nref.load_reference()
    assert (ref.origin, ref.path) == ("environment", tiny.path)
    monkeypatch.setenv(nref.REFERENCE_ENV_VAR, str(tmp_path / "empty"))
    with caplog.at_level("WARNING", logger="cyberobs.reference"):
        assert nref.load_reference().origin == "package"
    assert "holds no reference.json" in caplog.text
    monkeypatch.delenv(nref.REFERENCE_ENV_VAR)
    user = nref.user_reference_dir()
    assert user == tmp_path / "xdg" / "cyberobs" / "reference"
    shutil.copytree(tiny.path, user)
    assert nref.load_reference().origin == "user"


def test_update_series_only_carries_finess_over(tmp_path):
    new_series = SERIES + "2025,800,600,45%,41,,,https://example.org/2025\n"
    src = make_sources(tmp_path / "src", series=new_series)
    target, meta = nref.update_reference(src / "incident_observatory", tmp_path / "user")
    ref = nref.load_reference(target)
    assert (
        ref.incident_series.query("period == '2025' and measure == 'incidents_declared'")["value"].item()
        == 800
    )
    assert ref.metadata["sources"]["incident_observatory"]["reference_date"] == "2025-12-31"
    # FINESS tables carried over from the packaged reference, unchanged
    pkg = nref.load_reference(nref.PACKAGED_REFERENCE)
    assert ref.finess_date == pkg.finess_date
    assert ref.metadata["tables"]["eligible"]["sha256"] == pkg.metadata["tables"]["eligible"]["sha256"]
    with pytest.raises(nref.ReferenceSourceError, match="not updated in place"):
        nref.update_reference(src, nref.PACKAGED_REFERENCE)


def test_update_needs_a_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(nref.ReferenceSourceError, match="nothing to update"):
        nref.update_reference(tmp_path / "empty", tmp_path / "user")


def test_cli_update_and_show(tmp_path, capsys):
    src = make_sources(tmp_path / "src")
    assert cli_main(["reference", "update", str(src), "--dir", str(tmp_path / "user")]) == 0
    out = capsys.readouterr().out
    assert "reference written to" in out and "README.md" in out  # ignored file named
    assert cli_main(["reference", "show", "--dir", str(tmp_path / "user")]) == 0
    out = capsys.readouterr().out
    assert "FINESS extraction 2021-01-08: 10 eligible establishments" in out
    assert cli_main(["reference", "show", "--dir", str(tmp_path / "user"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["finess_date"] == "2021-01-08"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    assert cli_main(["reference", "update", str(bad), "--dir", str(tmp_path / "user")]) == 1
    assert "bad.csv: not a reference source" in capsys.readouterr().err


def test_build_script_runs(tmp_path):
    src = make_sources(tmp_path / "src")
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_reference.py"), str(src), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "10 eligible" in out.stdout and (tmp_path / "o" / "reference.json").is_file()


# --------------------------------------------------------------------------------------------------
# Statistics on the national frame
# --------------------------------------------------------------------------------------------------
def test_national_coverage_clopper_pearson(tiny):
    est = pd.DataFrame(
        {"finess": ["750000099", "750000098", "010000099"], "category_code": ["101", "101", "355"]}
    )
    out = nref.national_coverage(est, reference=tiny).set_index("group")
    assert out.loc["CHU/CHR", ["audited", "eligible"]].tolist() == [2, 3]
    assert out.loc["EHPAD", "audited"] == 0 and out.loc["all", "eligible"] == 10
    a = 0.05
    # x = 0 of n: [0, 1 - (a/2)^(1/n)]; x = n: [(a/2)^(1/n), 1] (closed forms of the Clopper-Pearson limits)
    assert out.loc["EHPAD", "ci_high"] == pytest.approx(1 - (a / 2) ** (1 / 3))
    ch = out.loc["CH"]  # 1 of 2
    ref_ci = stats.binomtest(1, 2).proportion_ci(method="exact")
    assert (ch["ci_low"], ch["ci_high"]) == (pytest.approx(ref_ci.low), pytest.approx(ref_ci.high))
    assert (out["ci_method"] == "clopper_pearson").all() and (out["reference_date"] == "2021-01-08").all()
    assert out.attrs["statement"].startswith(
        "Eligible establishments: national FINESS reference of 2021-01-08"
    )
    full = nref.national_coverage(
        pd.DataFrame({"finess": ["750000099", "750000098", "750000097"], "category_code": ["101"] * 3}),
        families=["CHU/CHR"], reference=tiny,
    ).set_index("group")  # fmt: skip
    assert full.loc["CHU/CHR", "ci_low"] == pytest.approx((a / 2) ** (1 / 3))
    assert full.loc["CHU/CHR", "ci_high"] == 1


def test_national_coverage_notes_and_years(tiny):
    est = pd.DataFrame(
        {"finess": ["750000099", "750000098", "750000097", "750000096", "330000011"],
         "category_code": ["101", "101", "101", "101", "292"]}
    )  # fmt: skip
    out = nref.national_coverage(est, by=("family", "department"), reference=tiny).set_index("group")
    over = out.loc["CHU/CHR / 75"]  # 4 audited, 2 in the reference
    assert np.isnan(over["value"]) and over["note"] == "more audited establishments than the reference counts"
    psy = out.loc["Psychiatry / 33"]
    assert psy["eligible"] == 0 and psy["note"] == "group unknown to the national reference"
    audits = pd.DataFrame(
        {
            "finess": ["750000099", "750000099", "750000098"],
            "audit_date": ["2023-02-01", "2024-03-01", "2024-05-01"],
        }
    )
    yearly = nref.national_coverage(est, audits=audits, by_year=True, families=["CHU/CHR"], reference=tiny)
    got = yearly.set_index(["period", "group"])[["audited", "n_audits"]]
    assert got.loc[("2023", "CHU/CHR")].tolist() == [1, 1]
    assert got.loc[("2024", "CHU/CHR")].tolist() == [2, 2]
    assert got.loc[("all", "CHU/CHR")].tolist() == [2, 3]
    # audits carrying their own columns (a family, as the studies' audit tables do) count the same
    audits["family"] = "CH"
    again = nref.national_coverage(est, audits=audits, by_year=True, families=["CHU/CHR"], reference=tiny)
    assert again.set_index(["period", "group"])[["audited", "n_audits"]].equals(got)


def test_registry_scope():
    est = pd.DataFrame({"finess": ["a", "b"]})
    assert nref.registry_scope(est, pd.DataFrame({"finess": ["b", "a"]})) == "audited_only"
    assert nref.registry_scope(est, pd.DataFrame({"finess": ["a"]})) == "registry"


def test_compare_registry(tiny):
    reg = pd.DataFrame(
        {
            "finess": ["750000099", "750000098", "690000099", "010000099", "980500011", "750000097"],
            "category_code": ["101", "101", "101", "355", "355", "620"],
            "family": ["CHU", "", None, None, None, "Other"],
        }
    )
    c = nref.compare_registry(reg, reference=tiny)
    fam = c.by_family.set_index("family")
    assert fam.loc["CHU/CHR", ["dataset", "reference", "difference"]].tolist() == [3, 3, 0]
    assert fam.loc["CH", ["dataset", "reference", "differs"]].tolist() == [2, 2, False]
    assert "EHPAD" in c.families_differing and "CHU/CHR" not in c.families_differing
    assert c.unknown_counts.values.tolist() == [
        ["category_not_in_reference", "620", 1],
        ["department_not_in_reference", "976", 1],
    ]
    # "CHU" differs from its category's family; 620 has none, so its given family "Other" is used as is
    assert c.explicit_families == 1
    assert fam.loc["Other", ["dataset", "reference"]].tolist() == [1, 0]
    fd = c.by_family_department.set_index(["family", "department"])
    assert fd.loc[("CH", "976"), ["dataset", "reference"]].tolist() == [1, 0]


def test_national_incident_rates_exact_poisson(tiny):
    r = nref.national_incident_rates(reference=tiny)
    sites = r[r["denominator_source"] == "finess_sites"].set_index(["period", "sector", "measure"])
    es = sites.loc[("2021", "ES", "declarations")]
    # 10 % of 10 declarations = 1 over 7 eligible ES sites. Exact (Garwood) limits of one event, in closed
    # form: lower solves P(X >= 1 | mu) = 0.025 -> mu = -ln(0.975); upper solves P(X <= 1 | mu) = 0.025
    assert (es["count"], es["count_derived"], es["derivation"]) == (1, True, "round(0.1 × 10)")
    mu_hi = optimize.brentq(lambda m: math.exp(-m) * (1 + m) - 0.025, 1, 20)
    assert es["value"] == pytest.approx(1000 / 7)
    assert es["ci_low"] == pytest.approx(-math.log(0.975) * 1000 / 7)
    assert es["ci_high"] == pytest.approx(mu_hi * 1000 / 7)
    assert mu_hi == pytest.approx(5.5716, abs=1e-4)
    # 0 events: upper limit 3.689 (epitools pois.exact documentation: "When x = 0, for the upper confidence
    # limit pois.exact returns 3.689"; = -ln(0.025), as R poisson.test(0))
    esms = sites.loc[("2021", "ESMS", "declarations")]
    assert esms["count"] == 0 and esms["ci_low"] == 0
    assert esms["ci_high"] == pytest.approx(-math.log(0.025) * 1000 / 3) and -math.log(
        0.025
    ) == pytest.approx(3.689, abs=1e-3)
    assert "esms_obligation_2022" in esms["caveats"] and "derived_counts" in esms["caveats"]
    # structures: a share of establishments, Clopper-Pearson, scaled per 1,000
    st = sites.loc[("2021", "all", "structures_declaring")]
    ci = stats.binomtest(8, 10).proportion_ci(method="exact")
    assert (st["ci_low"], st["ci_high"]) == (pytest.approx(1000 * ci.low), pytest.approx(1000 * ci.high))
    # published denominators (1,000 ES; ~2,000 ESMS) beside the FINESS sites
    pub = r[r["denominator_source"] == "observatory_published"].set_index(["period", "sector", "measure"])
    assert pub.loc[("2021", "ES", "declarations"), "value"] == pytest.approx(1.0)
    assert pub.loc[("2023", "ESMS", "structures_declaring"), "denominator"] == 2000
    assert "under_declaration" in r.attrs["caveat_text"]
    # 2023 is after the decree: no obligation caveat
    assert "esms_obligation_2022" not in sites.loc[("2023", "all", "declarations"), "caveats"]


def test_dataset_share_of_national(tiny):
    inc = pd.DataFrame({"declared_on": ["2021-03-01", "2021-11-01", "2022-06-01"]})
    out = nref.dataset_share_of_national(inc, reference=tiny).set_index("period")
    assert out.loc["2021", ["dataset_declarations", "national_declarations"]].tolist() == [2, 10]
    assert out.loc["2020-10..2021-09", "dataset_declarations"] == 1
    ci = stats.binomtest(2, 10).proportion_ci(method="exact")
    assert out.loc["2021", "ci_low"] == pytest.approx(ci.low)
    assert pd.isna(out.loc["2023", "dataset_declarations"])  # after the dataset's last declaration
    assert out.loc["2023", "note"] == "outside the dataset's declarations"
    covered = nref.dataset_share_of_national(inc, reference=tiny, covered_only=True)
    assert covered["dataset_declarations"].notna().all() and "2023" not in set(covered["period"])
    assert covered.equals(
        out.reset_index()[out["dataset_declarations"].notna().to_numpy()].reset_index(drop=True)
    )


# --------------------------------------------------------------------------------------------------
# The real sources (../shared/reference), when present
# --------------------------------------------------------------------------------------------------
def test_packaged_tables_rebuild_identically(shared_reference, tmp_path):
    nref.build_reference(shared_reference, tmp_path / "rebuilt")
    for f in [*nref.TABLE_FILES.values(), "reference.json"]:
        assert (tmp_path / "rebuilt" / f).read_bytes() == (nref.PACKAGED_REFERENCE / f).read_bytes(), f


def test_national_counts_match_the_readme(shared_reference):
    """National counts of the main categories as stated in ../shared/reference/README.md."""
    ref = nref.load_reference(nref.PACKAGED_REFERENCE)
    by_code = nref.eligible_counts("category_code", reference=ref).set_index("category_code")["eligible"]
    readme = {"101": 373, "355": 1287, "106": 214, "292": 1460, "131": 30, "365": 454, "128": 116, "129": 67,
              "109": 730, "362": 594, "127": 146, "500": 7501}  # fmt: skip
    assert {c: int(by_code[c]) for c in readme} == readme
    fin = ref.metadata["sources"]["finess"]
    assert fin["rows_read"] == 95_333 == fin["rows_eligible"] + fin["rows_other"]
    assert {"975", "976"} <= set(fin["departments_absent"]) and "974" not in fin["departments_absent"]
    assert [c["rows_checked"] for c in fin["cross_checks"]] == [2020, 163, 42]


def test_every_series_figure_matches_its_source_rows(shared_reference):
    series_src = pd.read_csv(
        shared_reference / "incident_observatory" / "observatoire_annual_series.csv",
        dtype=str,
        keep_default_na=False,
    )
    figures = pd.read_csv(
        shared_reference / "incident_observatory" / "observatoire_figures.csv",
        dtype=str,
        keep_default_na=False,
    )
    s = nref.load_reference(nref.PACKAGED_REFERENCE).incident_series
    for r in s.itertuples():
        src = series_src.iloc[r.series_row - 1]
        assert src["year"] == r.period
        cell = (
            src["split_by_structure_type"]
            if r.measure.startswith(("declarations_share", "structures_declaring_"))
            else src[r.measure]
        )
        assert r.value_as_published in cell, (r.period, r.measure)
        number = float(r.value_as_published.split()[0].rstrip("%").lstrip("~"))
        assert number == pytest.approx(r.value * (100 if r.unit == "share" else 1))
        assert not pd.isna(r.figure_row), (r.period, r.measure)  # every figure has its own source row
        fig = figures.iloc[r.figure_row - 1]
        assert fig["year"] == r.period and fig["source_url"] == r.source_url
        assert r.value_as_published.split()[0].lstrip("~") in fig["value"]
    totals = s[s["measure"] == "incidents_declared"].set_index("period")["value"].astype(int).to_dict()
    assert totals == {"2017-10..2018-09": 319, "2018": 327, "2019": 392, "2020": 369, "2021": 733, "2022": 592,
                      "2023": 581, "2024": 749}  # fmt: skip
    assert (
        s.query("period == '2023' and measure == 'incidents_declared'")["source_type"].item()
        == "official (ANS)"
    )
