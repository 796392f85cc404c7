"""Reader-facing views: labelled headings, numbers and booleans written for the reader's language."""

from __future__ import annotations

import pandas as pd

from cyberobs_lib.report import label, show
from cyberobs_lib.studies.annual import family_label


def test_show_writes_booleans_and_headings_in_the_readers_language():
    frame = pd.DataFrame({"suppressed": [True, False], "value": [0.123456, 0.00001]})
    fr = show(frame, "fr").to_html()
    assert "secret" in fr and "oui" in fr and "non" in fr and "True" not in fr
    assert "0.123" in fr and "1.00e-05" in fr
    en = show(frame.assign(suppressed=pd.array([True, None], dtype="boolean")), "en").to_html()
    assert "yes" in en and "False" not in en and "<NA>" not in en
    assert label("yes", "fr") == "oui" and label("no", "en") == "no"


def test_family_names_are_french_in_french_reports():
    assert family_label("Army", "fr") == "hôpitaux des armées"
    assert family_label("all", "fr") == "ensemble" and family_label("Army", "en") == "Army"
