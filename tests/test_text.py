"""The one text folding (cyberobs_lib.text) and its uses."""

from __future__ import annotations

import unicodedata

import pandas as pd

from cyberobs_lib import registry
from cyberobs_lib.disclosure._detectors import fold_text as detector_fold
from cyberobs_lib.disclosure._tables import canonical
from cyberobs_lib.text import fold, fold_case_accents, fold_series


def _reference_fold(text: str) -> str:
    """Written here from the definition: NFKD, combining marks dropped, case-folded, ’ as ', blanks collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().replace("’", "'").split())


SAMPLES = [
    "  Hôpital  d’instruction des ARMÉES ",
    "CENTRE HOSPITALIER DE L'AIGLE",
    "Œuvre ﬁnancière Straße",
    "e\u0301te\u0301",  # decomposed accents
    "Ἀθῆναι ᾳ ᴬ",  # Greek with a subscript iota, a modifier capital
    "שָׁלוֹם",  # Hebrew points (combining marks outside the Latin accent blocks)
    "\tÉcole\u00a0nationale\n",
]


def test_fold_matches_its_definition():
    assert [fold(s) for s in SAMPLES] == [_reference_fold(s) for s in SAMPLES]
    assert fold(SAMPLES[0]) == "hopital d'instruction des armees"


def test_fold_case_accents_keeps_blanks_and_punctuation():
    assert fold_case_accents("  Hôpital  d’ARMÉES ") == "  hopital  d’armees "
    for s in SAMPLES:
        assert " ".join(fold_case_accents(s).replace("’", "'").split()) == fold(s)


def test_uses_are_the_one_implementation():
    assert detector_fold is fold_case_accents
    values = pd.Series([*SAMPLES, None, SAMPLES[0]])
    expected = [*map(fold, SAMPLES), pd.NA, fold(SAMPLES[0])]
    assert fold_series(values).tolist() == expected
    assert registry.fold_text(values).tolist() == expected
    assert fold_series(values).dtype == "string"
    assert canonical("Établissements") == "n_establishments"
