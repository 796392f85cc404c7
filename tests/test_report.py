"""Reader-facing views: labelled headings, numbers and booleans written for the reader's language."""

from __future__ import annotations

import pandas as pd

from cyberobs_lib.report import label, show
from cyberobs_lib.studies.annual import family_label


def test_show_writes_booleans_and_headings_in_the_readers_language():
    frame = pd.DataFrame({"suppressed": [True, False], "value": [0.123456, 0.00001]})
    fr = show(frame, "fr").to_html()
    assert "secret" in fr and "oui" in fr and "non" in fr and "True" not in fr
    assert "0,123" in fr and "0,00001" in fr and "0.123" not in fr and "e-05" not in fr
    en = show(frame.assign(suppressed=pd.array([True, None], dtype="boolean")), "en").to_html()
    assert "yes" in en and "False" not in en and "<NA>" not in en
    assert label("yes", "fr") == "oui" and label("no", "en") == "no"


def test_family_names_and_other_named_values_are_in_the_readers_language():
    assert (
        family_label("Army", "fr") == "hôpitaux des armées" and family_label("Army", "en") == "army hospitals"
    )
    assert family_label("all", "fr") == "ensemble" and family_label("Not a family", "fr") == "Not a family"
    frame = pd.DataFrame({"group": ["Private clinic (MCO)", "all"], "severity": ["critical", "high"],
                          "metric": ["n_kev", "no such key"], "n": [3, 4]})  # fmt: skip
    fr = show(frame, "fr").to_html()
    for text in ("cliniques privées (MCO)", "ensemble", "critique", "élevée", "no such key", "gravité"):
        assert text in fr, text
    assert "Private clinic" not in fr and "critical" not in fr


def test_figures_name_families_in_the_readers_language():
    import matplotlib

    matplotlib.use("Agg")
    from cyberobs_lib.plots.cohorts import plot_rate_ratios

    ratios = pd.DataFrame({"term": ["family"] * 2, "level": ["Army", "EHPAD"], "reference": ["CH", "CH"],
                           "rate_ratio": [1.5, 0.8], "ci_low": [1.1, 0.5], "ci_high": [2.0, 1.2]})  # fmt: skip
    ax = plot_rate_ratios(ratios, lang="fr", name_reference=True)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "hôpitaux des armées vs CH" in ticks and "EHPAD vs CH" in ticks
    ax = plot_rate_ratios(ratios.assign(n_family=[12, 1230]), lang="en")  # one reference: said on the axis
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "army hospitals (n = 12)" in ticks and "nursing homes (EHPAD) (n = 1\u202f230)" in ticks
    assert "vs general hospitals (CH)" in ax.get_xlabel() and ax.get_title(loc="left")


def test_show_captions_chooses_columns_and_formats_numbers_for_the_locale():
    frame = pd.DataFrame({"group": ["Private clinic (MCO)", "CH"], "n_establishments": [1230, 7],
                          "value": [0.308, 0.5], "p_value": [7.43e-14, 0.0312],
                          "audit_date": pd.to_datetime(["2025-03-12", "2024-11-02"]), "extra": ["x", "y"]})  # fmt: skip
    cols = ["group", "n_establishments", "value", "p_value", "audit_date"]
    fr = show(
        frame, "fr", columns=cols, formats={"value": "percent"}, caption="Part <b>", denominator="structures"
    ).to_html()
    for expected in (
        "1\u202f230",
        "30,8\xa0%",
        "&lt; 0,001",
        "0,031",
        "12 mars 2025",
        "cliniques privées (MCO)",
        "Part &lt;b&gt;",
        "Dénominateur : structures",
        "établissements",
        "date de l'audit",
    ):
        assert expected in fr, expected
    assert "extra" not in fr and "00:00:00" not in fr and "n_establishments" not in fr
    en = show(frame, "en", columns=cols, formats={"value": "percent"}, caption="Share").to_html()
    for expected in ("1\u202f230", "30.8%", "&lt; 0.001", "12 March 2025", "private clinics (MCO)"):
        assert expected in en, expected
    assert (
        show(frame, "fr", columns=cols).to_html() == show(frame, "fr", columns=cols).to_html()
    )  # stable ids


def test_show_refuses_what_does_not_fit_a_page_and_unknown_columns():
    import pytest

    wide = pd.DataFrame({f"c{i}": [i] for i in range(9)})
    with pytest.raises(ValueError, match="do not fit a page"):
        show(wide, "fr", columns=list(wide.columns))
    with pytest.raises(KeyError, match="no column"):
        show(wide, "fr", columns=["nope"])
    long = pd.DataFrame({"n": range(40)})
    assert "30 premières lignes sur 40" in show(long, "fr", columns=["n"]).to_html()


def test_an_empty_table_says_so_in_its_caption():
    """Headings over no row read as a table that failed to print: the caption says nothing could be shown."""
    from cyberobs_lib.report import show

    empty = show(pd.DataFrame({"group": [], "value": []}), "fr", caption="Tendances").to_html()
    assert "rien n&#x27;a pu être calculé" in empty or "rien n'a pu être calculé" in empty
    full = show(pd.DataFrame({"group": ["CH"], "value": [0.5]}), "fr", caption="Tendances").to_html()
    assert "rien n" not in full
