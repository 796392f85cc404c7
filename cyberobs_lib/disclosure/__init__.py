"""Disclosure control: keyed pseudonyms, small-cell suppression, and the check of a report folder.

Published outputs (everything but the per-establishment reports) carry keyed pseudonyms, never
FINESS numbers, names, hostnames or IP addresses, and no cell about fewer than ``min_cell``
establishments. Every result table has a declared kind (:mod:`~cyberobs_lib.disclosure.policy`); the
publish step (:func:`cyberobs_lib.report.publish_table`) applies it with one run-level ledger of
population cells (:mod:`~cyberobs_lib.disclosure.ledger`: primary and secondary suppression across every
table of the run). :func:`check_disclosure` independently verifies a report folder before it is published.
"""

from cyberobs_lib.disclosure.check import CHECK_COLUMNS, check_disclosure
from cyberobs_lib.disclosure.identifiers import identifiers_from_dataset
from cyberobs_lib.disclosure.ledger import DisclosureError, Ledger, hidden_intervals
from cyberobs_lib.disclosure.policy import (
    POLICIES,
    POLICY_MIN_CELL,
    IdentifyingColumnError,
    MinCellBelowFloorError,
    PerEstablishmentTableError,
    UnknownTableError,
    policy_for,
)
from cyberobs_lib.disclosure.pseudonyms import (
    MissingKeyError,
    PseudonymCollisionError,
    UnsafeKeyFileError,
    demo_mode,
    load_key,
    pseudonymize,
    pseudonymize_columns,
)
from cyberobs_lib.disclosure.suppression import (
    SecrecyRule,
    TableLayout,
    UnitContributions,
    suppress_small_cells,
    suppress_tests,
)
from cyberobs_lib.disclosure.tables import (
    apply_policy,
    forget_ledger,
    neutralise_formulas,
    published_groups,
    register_population,
)

__all__ = [
    "CHECK_COLUMNS",
    "POLICIES",
    "POLICY_MIN_CELL",
    "DisclosureError",
    "IdentifyingColumnError",
    "Ledger",
    "MinCellBelowFloorError",
    "PerEstablishmentTableError",
    "UnknownTableError",
    "apply_policy",
    "forget_ledger",
    "hidden_intervals",
    "neutralise_formulas",
    "policy_for",
    "published_groups",
    "register_population",
    "MissingKeyError",
    "PseudonymCollisionError",
    "SecrecyRule",
    "TableLayout",
    "UnitContributions",
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
