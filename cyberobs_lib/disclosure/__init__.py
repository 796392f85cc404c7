"""Disclosure control: keyed pseudonyms, small-cell suppression, and the check of a report folder.

Published outputs (everything but the per-establishment reports) carry keyed pseudonyms, never
FINESS numbers, names, hostnames or IP addresses, and no cell about fewer than ``min_cell``
establishments. :func:`check_disclosure` verifies a report folder before it is published.
"""

from cyberobs_lib.disclosure.check import CHECK_COLUMNS, check_disclosure
from cyberobs_lib.disclosure.identifiers import identifiers_from_dataset
from cyberobs_lib.disclosure.pseudonyms import (
    MissingKeyError,
    PseudonymCollisionError,
    UnsafeKeyFileError,
    demo_mode,
    load_key,
    pseudonymize,
    pseudonymize_columns,
)
from cyberobs_lib.disclosure.suppression import suppress_small_cells, suppress_tests

__all__ = [
    "CHECK_COLUMNS",
    "MissingKeyError",
    "PseudonymCollisionError",
    "UnsafeKeyFileError",
    "check_disclosure",
    "demo_mode",
    "identifiers_from_dataset",
    "load_key",
    "pseudonymize",
    "pseudonymize_columns",
    "suppress_small_cells",
    "suppress_tests",
]
