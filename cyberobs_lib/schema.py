"""The column vocabulary, in one place: input contract, canonical tables and result tables.

Data contract version 1 (``../shared/design/data-contract.md``). Every other module takes column
names from here (``Findings.severity == "severity"``), so that a rename is a one-line change and a
contract version bump.

Input files are validated row by row by :mod:`cyberobs_lib.validate`, which reports every violation at
once. The canonical tables written by ``cyberobs ingest`` are checked against the pandera models
below at the edge (on write), lazily, so that every bad row is reported together.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

CONTRACT_VERSION = 1

# --------------------------------------------------------------------------------------------------
# Vocabularies (closed lists; extend here and in data-contract.md together)
# --------------------------------------------------------------------------------------------------
SEVERITIES = ("critical", "high", "medium", "low", "info")
#: Severity rank, higher is worse (for sorting and "at least high" filters).
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

FINDING_CATEGORIES = (
    "exposed_remote_admin",
    "unsupported_software",
    "known_exploited",
    "unpatched_software",
    "tls_certificate",
    "web_misconfiguration",
    "email_authentication",
    "information_leak",
    "other",
)

CONTROLS = (
    "waf",
    "ddos_protection",
    "tls_modern",
    "hsts",
    "dnssec",
    "spf",
    "dkim",
    "dmarc",
    "security_headers",
    "remote_access_mfa",
)

#: Findings columns that normalization and enrichment make categorical. A partitioned store keeps their
#: Arrow dictionary whole (the fixed vocabularies, e.g. :data:`SEVERITIES`, in order) and the studies read
#: them back as categoricals whose categories are that dictionary.
CATEGORICAL_FINDINGS = ("cve", "severity", "category", "cvss_version", "severity_cvss", "severity_scanner",
                        "severity_source", "vuln_key", "kev_catalog", "epss_catalog")  # fmt: skip
LEGAL_STATUSES = ("public", "private_nonprofit", "private_forprofit")
PROTOCOLS = ("tcp", "udp", "icmp")
INCIDENT_NATURES = ("malicious", "accidental", "unknown")
INCIDENT_TYPES = ("ransomware", "phishing", "compromise", "ddos", "data_leak", "outage", "other")
IMPACTS_ON_CARE = ("none", "degraded", "interrupted", "unknown")

#: French and English spellings accepted on input, mapped to the canonical value.
NATURE_ALIASES = {
    "malicious": "malicious",
    "malveillant": "malicious",
    "malveillante": "malicious",
    "accidental": "accidental",
    "accidentel": "accidental",
    "accidentelle": "accidental",
    "unknown": "unknown",
    "inconnu": "unknown",
    "inconnue": "unknown",
    "indéterminé": "unknown",
}

TRUE_WORDS = frozenset({"true", "1", "oui", "yes", "vrai", "o", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "non", "no", "faux", "n", "f"})

# --------------------------------------------------------------------------------------------------
# Input files of a dataset folder: name -> (required columns, optional columns)
# --------------------------------------------------------------------------------------------------
INPUT_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "establishments": {
        "required": ("finess", "category_code"),
        "optional": ("finess_ej", "name", "legal_status", "department", "region", "beds", "family"),
    },
    "audits": {
        "required": ("audit_id", "finess", "audit_date", "hosts_in_scope"),
        "optional": ("scanner", "perimeter"),
    },
    "hosts": {"required": ("audit_id", "host"), "optional": ()},
    "findings": {
        "required": ("audit_id", "host", "vuln_id", "title"),
        "optional": (
            "port",
            "protocol",
            "service",
            "cve",
            "cvss_vector",
            "cvss_score",
            "severity",
            "category",
            "first_seen",
        ),
    },
    "controls": {"required": ("audit_id", "control", "present"), "optional": ()},
    "incidents": {
        "required": ("incident_id", "declared_on", "nature"),
        "optional": ("finess", "category_code", "family", "type", "impact_on_care"),
    },
}
REQUIRED_FILES = ("establishments", "audits")

# Columns added to canonical tables by ingestion (provenance) -------------------------------------
SOURCE_FILE = "source_file"
SOURCE_ROW = (
    "source_row"  # 1-based data row number in the source file (header is row 0); element index for XML
)

# --------------------------------------------------------------------------------------------------
# Canonical tables (Parquet) as pandera models: the class attributes are the column names.
# --------------------------------------------------------------------------------------------------
_NULLABLE = {"nullable": True}


class Establishments(pa.DataFrameModel):
    finess: Series[str] = pa.Field(unique=True, str_length={"min_value": 9, "max_value": 9})
    finess_ej: Series[str] = pa.Field(**_NULLABLE)
    name: Series[str] = pa.Field(**_NULLABLE)
    category_code: Series[str] = pa.Field(str_length={"min_value": 3, "max_value": 3})
    legal_status: Series[str] = pa.Field(isin=list(LEGAL_STATUSES), **_NULLABLE)
    department: Series[str] = pa.Field(**_NULLABLE)
    region: Series[str] = pa.Field(**_NULLABLE)
    beds: Series[pa.Int64] = pa.Field(ge=0, **_NULLABLE)
    family: Series[str] = pa.Field()
    finess_key_ok: Series[bool] = pa.Field()

    class Config:
        strict = False
        coerce = True


class Audits(pa.DataFrameModel):
    audit_id: Series[str] = pa.Field(unique=True)
    finess: Series[str] = pa.Field()
    audit_date: Series[pa.DateTime] = pa.Field()
    hosts_in_scope: Series[pa.Int64] = pa.Field(ge=0)
    scanner: Series[str] = pa.Field(**_NULLABLE)
    perimeter: Series[str] = pa.Field(**_NULLABLE)

    class Config:
        strict = False
        coerce = True


class Hosts(pa.DataFrameModel):
    audit_id: Series[str] = pa.Field()
    host: Series[str] = pa.Field()

    class Config:
        strict = False
        coerce = True


class Findings(pa.DataFrameModel):
    audit_id: Series[str] = pa.Field()
    host: Series[str] = pa.Field()
    port: Series[pa.Int32] = pa.Field(ge=0, le=65535, **_NULLABLE)
    protocol: Series[str] = pa.Field(isin=list(PROTOCOLS), **_NULLABLE)
    service: Series[str] = pa.Field(**_NULLABLE)
    vuln_id: Series[str] = pa.Field()
    cve: Series[str] = pa.Field(**_NULLABLE)
    title: Series[str] = pa.Field()
    cvss_vector: Series[str] = pa.Field(**_NULLABLE)
    cvss_score: Series[float] = pa.Field(ge=0, le=10, **_NULLABLE)
    severity: Series[str] = pa.Field(isin=list(SEVERITIES), **_NULLABLE)
    category: Series[str] = pa.Field(isin=list(FINDING_CATEGORIES), **_NULLABLE)
    first_seen: Series[pa.DateTime] = pa.Field(**_NULLABLE)

    class Config:
        strict = False
        coerce = True


class Controls(pa.DataFrameModel):
    audit_id: Series[str] = pa.Field()
    control: Series[str] = pa.Field()
    present: Series[bool] = pa.Field()

    class Config:
        strict = False
        coerce = True


class Incidents(pa.DataFrameModel):
    incident_id: Series[str] = pa.Field(unique=True)
    declared_on: Series[pa.DateTime] = pa.Field()
    finess: Series[str] = pa.Field(**_NULLABLE)
    category_code: Series[str] = pa.Field(**_NULLABLE)
    family: Series[str] = pa.Field(**_NULLABLE)
    nature: Series[str] = pa.Field(isin=list(INCIDENT_NATURES))
    type: Series[str] = pa.Field(isin=list(INCIDENT_TYPES), **_NULLABLE)
    impact_on_care: Series[str] = pa.Field(isin=list(IMPACTS_ON_CARE), **_NULLABLE)

    class Config:
        strict = False
        coerce = True


CANONICAL_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "establishments": Establishments,
    "audits": Audits,
    "hosts": Hosts,
    "findings": Findings,
    "controls": Controls,
    "incidents": Incidents,
}

# Rejects and accounting tables -------------------------------------------------------------------
REJECTS_COLUMNS = ("source_file", "row", "column", "reason", "value", "message")
ACCOUNTING_COLUMNS = ("source_file", "table", "rows_read", "kept", "rejected", "duplicates", "skipped")

# --------------------------------------------------------------------------------------------------
# Result tables (fixed vocabulary; data-contract.md "Output: a report folder")
# --------------------------------------------------------------------------------------------------
TESTS_COLUMNS = (
    "study",
    "metric",
    "test",
    "variant",
    "group_a",
    "group_b",
    "n_a",
    "n_b",
    "statistic",
    "df",
    "p_value",
    "p_adjusted",
    "adjust_method",
    "effect_size",
    "effect_size_kind",
    "ci_low",
    "ci_high",
    "ci_method",
)
INDICATORS_COLUMNS = (
    "indicator",
    "group",
    "period",
    "n_establishments",
    "n_audits",
    "value",
    "ci_low",
    "ci_high",
    "ci_method",
    "suppressed",
)
LIFECYCLE_COLUMNS = (
    "establishment",
    "family",
    "audit_from",
    "audit_to",
    "days",
    "n_new",
    "n_persistent",
    "n_fixed",
    "n_reopened",
    "common_hosts",
    "scope_drift",
)
SURVIVAL_COLUMNS = ("group", "time_days", "survival", "ci_low", "ci_high", "at_risk", "events", "censored")
REMEDIATION_COLUMNS = (
    "group",
    "severity",
    "n",
    "median_days",
    "median_ci_low",
    "median_ci_high",
    "share_open_at_365d",
)
