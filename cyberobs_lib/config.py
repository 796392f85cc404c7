"""Paths and constants, defined once (cookiecutter-data-science ``config.py``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_DATA = PACKAGE_DIR / "data"
PROJECT_DIR = PACKAGE_DIR.parent
DEMO_DATASET = PROJECT_DIR / "data" / "demo"
REPORTS_DIR = PROJECT_DIR / "reports"
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
PARAMETERS_DIR = PROJECT_DIR / "parameters"

#: Earliest audit date accepted by the contract.
MIN_AUDIT_DATE = "2000-01-01"

#: Environment variable holding the pseudonymisation key (HMAC-SHA256).
KEY_ENV_VAR = "CYBEROBS_KEY"
#: Environment variable naming a file that holds the key (outside the repository).
KEY_FILE_ENV_VAR = "CYBEROBS_KEY_FILE"
#: Documented key for the synthetic demo data only: never use it for real audits.
DEMO_KEY = "cyberobs-demo-key-not-secret"

#: Default remediation deadlines (days) per severity, as used by DefectDojo SLAs.
DEFAULT_DEADLINES = {"critical": 7, "high": 30, "medium": 90, "low": 120}

#: Default minimum number of establishments behind a published cell.
DEFAULT_MIN_CELL = 5
