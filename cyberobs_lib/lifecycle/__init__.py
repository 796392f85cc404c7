"""Lifecycle of findings across audits of one establishment (the horizontal study).

* :func:`audit_sequence` — which audits are compared (consecutive or first/last, ``min_days``);
* :func:`match_lifecycle` — new / persistent / fixed / reopened per pair, on common hosts only,
  with perimeter drift reported beside (the ``lifecycle.csv`` table);
* :func:`remediation_intervals` — one row per finding episode, fix time interval-bounded by the two
  audits around it, right-censored when still open;
* :func:`close_rate_monthly` — monthly close rate of open findings;
* :func:`establishment_evolution` — per-establishment counts by audit, for its own report.
"""

from cyberobs_lib.lifecycle._encode import FINGERPRINT, KNOWN_EXPLOITED, SOURCE_FINDINGS, SOURCE_HOSTS
from cyberobs_lib.lifecycle.evolution import establishment_evolution
from cyberobs_lib.lifecycle.intervals import CONVENTIONS, close_rate_monthly, remediation_intervals
from cyberobs_lib.lifecycle.matching import STATUSES, LifecycleResult, match_lifecycle
from cyberobs_lib.lifecycle.sequence import audit_sequence

__all__ = [
    "CONVENTIONS",
    "FINGERPRINT",
    "KNOWN_EXPLOITED",
    "SOURCE_FINDINGS",
    "SOURCE_HOSTS",
    "STATUSES",
    "LifecycleResult",
    "audit_sequence",
    "close_rate_monthly",
    "establishment_evolution",
    "match_lifecycle",
    "remediation_intervals",
]
