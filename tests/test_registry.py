"""Tests of cyberobs_lib.registry and cyberobs_lib.finess_extract.

Expected values: Luhn sums worked by hand in comments; departments and regions from INSEE's code officiel
géographique; legal-status grouping from the ANS TRE_R72 nomenclature; corpus counts recomputed from the raw
files with the csv module, independently of the code under test.
"""

from __future__ import annotations

import csv
from collections import Counter

import pandas as pd
import pytest

from cyberobs_lib import registry as reg
from cyberobs_lib.finess_extract import FinessExtractError, detect_layout, read_finess_extract


def test_luhn_key_hand_computed():
    # 010000024: from the right 4, 2*2=4, 0, 0, 0, 0, 0, 1*2=2, 0 -> 10 -> valid.
    # 010000025: same with 5 -> 11 -> invalid.  2A0000212 (A=1): 2, 1*2=2, 2, 0, 0, 0, 0, 1*2=2, 2 -> 10 -> valid.
    # 2B0000212 (B=2): 2, 2, 2, 0, 0, 0, 0, 2*2=4, 2 -> 12 -> invalid.
    s = pd.Series(["010000024", "010000025", "2A0000212", "2B0000212", " 010000024 ", None, "ABC"])
    assert reg.finess_key_ok(s).tolist() == [True, False, True, False, True, False, False]
    assert reg.finess_key_ok(s).dtype == bool


def test_luhn_doubling_above_nine():
    # 010000057: from the right 7, 5*2=10 -> 1+0=1, 0, 0, 0, 0, 0, 1*2=2, 0 -> 10 -> valid
    # (without reducing 10 to 1 the sum would be 19: this checks the reduction). 010000058 -> 11 -> invalid.
    assert reg.finess_key_ok(pd.Series(["010000057", "010000058"])).tolist() == [True, False]


@pytest.mark.parametrize(
    ("finess", "department"),
    [
        ("010000024", "01"),
        ("950000000", "95"),
        ("2A0000212", "2A"),
        ("2b0000212", "2B"),
        ("970100384", "971"),
        ("970200000", "972"),
        ("970400000", "974"),
        ("980500011", "976"),
        ("200000000", None),
        ("960000000", None),
        ("000000000", None),
        ("970900000", None),
    ],
)
def test_finess_department(finess, department):
    got = reg.finess_department(pd.Series([finess])).iloc[0]
    assert (got is pd.NA and department is None) or got == department


def test_finess_format():
    s = pd.Series(["010000024", "01000002", "0100000245", "2C0000000", "01000002X", "9A0000000", pd.NA])
    assert reg.finess_format_ok(s).tolist() == [True, False, False, False, False, False, False]


def test_department_region_insee():
    deps = pd.Series(["01", "2A", "2B", "75", "13", "971", "9A", "9D", "976", "9F", "975", "3", "99", None])
    expected = ["84", "94", "94", "11", "93", "01", "01", "04", "06", "06", None, "84", None, None]
    got = reg.department_region(deps).tolist()
    assert [None if g is pd.NA else g for g in got] == expected


def test_departments_table_complete():
    deps = reg.load_departments()
    assert len(deps) == 96 + 7  # 94 numeric metropolitan (01-95 without 20) + 2A/2B + 7 overseas
    assert deps["department"].is_unique
    assert set(deps["registry_code"]) >= {"9A", "9B", "9C", "9D", "9E", "9F"}


def test_legal_status_codes_and_labels():
    vals = pd.Series(["13", 14, "1", "47", "60", "89", "73", "95", "90", "ESPIC", "établissement public de santé",
                      "private_forprofit", "Non concerné", "", None])  # fmt: skip
    expected = ["public", "public", "public", "private_nonprofit", "private_nonprofit", "private_nonprofit",
                "private_forprofit", "private_forprofit", None, "private_nonprofit", "public",
                "private_forprofit", None, None, None]  # fmt: skip
    got = reg.normalize_legal_status(vals).tolist()
    assert [None if g is pd.NA else g for g in got] == expected


def test_categories_table_versioned_and_unique():
    cats = reg.load_categories()
    assert cats.attrs["version"]
    assert cats["category_code"].str.fullmatch(r"\d{3}").all()
    assert cats["category_code"].is_unique
    assert cats.set_index("category_code").loc["101", "family"] == "CHU/CHR"
    assert "108" not in set(cats["category_code"])  # closed convalescence category, never "CHU" (domain.md)


def test_derive_establishments_family_override_and_no_mutation():
    est = pd.DataFrame({"finess": ["010000024", "2A0000212", "750100042"], "category_code": [355, "106", "101"],
                        "family": [None, "", "CHU"], "legal_status": ["13", None, "public"],
                        "department": [None, None, "75"]})  # fmt: skip
    before = est.copy()
    out = reg.derive_establishments(est)
    pd.testing.assert_frame_equal(est, before)
    assert out["family"].tolist() == ["CH", "CH", "CHU"]
    assert out["family_source"].tolist() == ["category", "category", "explicit"]
    assert out["department"].tolist() == ["01", "2A", "75"]
    assert out["region"].tolist() == ["84", "94", "11"]
    assert out["aggregate_code"].tolist() == ["1102", "1106", "1101"]
    # 750100042: 2, 4*2=8, 0, 0, 0, 1*2=2, 0, 5*2=10->1, 7 -> 20 -> valid
    assert out["finess_key_ok"].tolist() == [True, True, True]


def test_unknown_category_error_lists_codes_and_table():
    est = pd.DataFrame({"finess": ["010000024"] * 3, "category_code": ["998", "355", "997"]})
    with pytest.raises(reg.UnknownCategoryError) as info:
        reg.derive_establishments(est)
    assert info.value.codes == ["997", "998"]
    assert info.value.table_path.name == "finess_categories.csv"
    assert "997" in str(info.value) and "finess_categories.csv" in str(info.value)
    ok = reg.derive_establishments(est.assign(family=["Other", None, "Other"]))
    assert ok["family"].tolist() == ["Other", "CH", "Other"]
    kept = reg.derive_establishments(est, unknown_family="Unknown")
    assert kept.attrs["unknown_categories"] == ["997", "998"]


def test_derive_requires_columns():
    with pytest.raises(KeyError, match="category_code"):
        reg.derive_establishments(pd.DataFrame({"finess": ["010000024"]}))


def test_read_etalab_layout(fixtures_dir):
    out = read_finess_extract(fixtures_dir / "normalize" / "finess_etalab.csv")
    assert out.attrs["layout"] == "etalab"
    assert out["finess"].tolist() == ["010000024", "2A0000212"]  # geolocation line skipped
    assert out["family"].tolist() == ["CH", "CH"]
    assert out["category_code"].tolist() == ["355", "106"]
    assert out["region"].tolist() == ["84", "94"]


def test_read_opendata_layout_labels_only(fixtures_dir):
    out = read_finess_extract(fixtures_dir / "normalize" / "finess_opendata.csv")
    assert out.attrs["layout"] == "opendata"
    assert out["category_code"].tolist() == ["355", "101", "292"]  # label matched case/accent-insensitively
    assert out["department"].tolist() == ["01", "971", "01"]  # 9A translated; phone number replaced
    assert out.attrs["n_department_replaced"] == 1
    assert out["legal_status"].tolist() == ["public", "public", "private_nonprofit"]
    assert out["source_row"].tolist() == [1, 2, 3]


def test_read_sae_layout_latin1(fixtures_dir):
    path = fixtures_dir / "normalize" / "finess_sae.csv"
    with pytest.raises(reg.UnknownCategoryError, match="999"):
        read_finess_extract(path)
    out = read_finess_extract(path, unknown_family="Unknown")
    assert out.attrs["layout"] == "sae"
    assert out["family"].tolist() == ["CH", "Private clinic (MCO)", "Unknown"]
    assert out["legal_status"].tolist() == ["public", "private_forprofit", "private_nonprofit"]
    assert out["name"].tolist()[1] == "CLINIQUE FICTIVE"


def test_reader_failure_paths(fixtures_dir, tmp_path):
    with pytest.raises(FinessExtractError, match="not a FINESS extract"):
        detect_layout(fixtures_dir / "normalize" / "not_finess.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FinessExtractError, match="empty file"):
        read_finess_extract(empty)
    with pytest.raises(FinessExtractError, match="cannot be read"):
        read_finess_extract(tmp_path / "missing.csv")
    with pytest.raises(reg.UnknownCategoryError, match="Etablissement invent"):
        read_finess_extract(fixtures_dir / "normalize" / "finess_unknown_label.csv")


# ---- the two real extracts (skipped when the corpus is absent) -----------------------------------------------
def test_corpus_fhoff_family_counts(corpus_dir):
    path = corpus_dir / "finess" / "finess_hospitals_subset_fhoff.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        labels = Counter(row["categorie_libelle"] for row in csv.DictReader(fh))
    cats = reg.load_categories()
    label_family = dict(zip(reg.fold_text(cats["label"]), cats["family"], strict=True))
    expected = Counter()
    for label, n in labels.items():
        expected[label_family[reg.fold_text(pd.Series([label]))[0]]] += n
    out = read_finess_extract(path)
    assert len(out) == sum(labels.values()) == 4657
    assert out["family"].value_counts().to_dict() == dict(expected)
    assert out["finess_key_ok"].all()  # domain.md: Luhn holds for every number of this extract
    assert out["finess"].is_unique


def test_corpus_sae_family_counts(corpus_dir):
    path = corpus_dir / "finess" / "sae_2022_ID_establishments.csv"
    with open(path, encoding="latin-1", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    cat_counts = Counter(r["cat"] for r in rows)
    fam = reg.load_categories().set_index("category_code")["family"].to_dict()
    expected = Counter()
    for code, n in cat_counts.items():
        expected[fam.get(code, "Unknown")] += n
    out = read_finess_extract(path, unknown_family="Unknown")
    assert out["family"].value_counts().to_dict() == dict(expected)
    assert out.attrs["unknown_categories"] == ["999"]
    # the survey's own region and grouped legal status agree with ours
    assert (out["region"].to_numpy() == [r["reg"] for r in rows]).all()
    stjr = pd.Series([r["stjr"] for r in rows]).map(
        {"1": "public", "2": "private_forprofit", "3": "private_nonprofit"}
    )
    assert (out["legal_status"].to_numpy() == stjr.to_numpy()).all()
