"""Paths and constants, defined once (cookiecutter-data-science ``config.py``)."""

from __future__ import annotations

import os
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
#: Environment variable switching demo mode on (``1``): with no key set, the public :data:`DEMO_KEY` is
#: used. ``cyberobs run --demo`` sets it for the run and its kernels; ``make study`` passes ``--demo`` and
#: ``make lab`` exports it. It is never inferred from the files of a dataset.
DEMO_ENV_VAR = "CYBEROBS_DEMO"

#: Default remediation deadlines (days) per severity, as used by DefectDojo SLAs.
DEFAULT_DEADLINES = {"critical": 7, "high": 30, "medium": 90, "low": 120}

#: Default minimum number of establishments behind a published cell.
DEFAULT_MIN_CELL = 5
#: Publication floor: a published run refuses any ``min_cell`` below it (``-p min_cell=1`` included).
#: Five establishments is the observatory's publication policy (issue 16), stricter than INSEE's business
#: statistics secrecy rule (at least 3 units, no unit above 85 % of the cell total), which stays available
#: in :func:`cyberobs_lib.disclosure.suppress_small_cells` for confidential work. Raising ``min_cell`` is
#: always allowed; confidential runs (``published: false``) may lower it.
POLICY_MIN_CELL = 5

#: Languages of the reports (labels, text, HTML ``lang`` attribute).
SUPPORTED_LANGS = ("fr", "en")

#: Environment variable naming the folder of the runs' confidential working tables (default below).
WORK_DIR_ENV_VAR = "CYBEROBS_WORK_DIR"


def work_root() -> Path:
    """Root of the runs' working folders (canonical tables, validation and disclosure reports).

    ``$CYBEROBS_WORK_DIR`` when set, else ``reports/.work`` of the project. Each run owns
    ``<root>/<output folder name>-<hash of its absolute path>/`` (see :mod:`cyberobs_lib.run_lock`).
    """
    value = os.environ.get(WORK_DIR_ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else REPORTS_DIR / ".work"
