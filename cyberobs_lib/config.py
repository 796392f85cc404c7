"""Paths and constants, defined once (cookiecutter-data-science ``config.py``).

Where the notebooks and parameter files are: the package runs either from a source checkout (the
repository, an editable install) or installed from a wheel.

* From a checkout (:data:`CHECKOUT_DIR`): the checkout's ``notebooks/`` and ``parameters/``.
* Installed: the copies shipped inside the package, ``cyberobs_lib/_resources/`` (``setup.py`` copies them
  at build time).

Reports go to ``./reports`` under the current folder in both cases (``cyberobs run --out`` elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_DATA = PACKAGE_DIR / "data"
#: Notebooks and parameter files shipped inside an installed package (absent in a checkout).
RESOURCES_DIR = PACKAGE_DIR / "_resources"


def find_checkout(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source checkout that holds the package, or None when the package is installed from a wheel.

    A checkout is the package's parent folder when it has the project's ``pyproject.toml``, ``notebooks/``
    and ``parameters/`` (an installed package's parent is ``site-packages``, which has none of them).

    >>> find_checkout(Path("/nonexistent/site-packages/cyberobs_lib")) is None
    True
    """
    root = package_dir.parent
    markers = (root / "pyproject.toml", root / "notebooks", root / "parameters")
    return root if markers[0].is_file() and markers[1].is_dir() and markers[2].is_dir() else None


#: The source checkout the package runs from, or None when it is installed.
CHECKOUT_DIR = find_checkout()
#: The project's folder: the checkout, else the installed package's resources (notebooks/, parameters/).
PROJECT_DIR = CHECKOUT_DIR if CHECKOUT_DIR is not None else RESOURCES_DIR
#: The bundled demo dataset (a checkout only; ``cyberobs demo --out DIR --seed 2025`` makes it anywhere).
DEMO_DATASET = PROJECT_DIR / "data" / "demo"
#: Default folder of the reports: ``reports/`` under the current folder when the process started.
REPORTS_DIR = Path.cwd() / "reports"
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
PARAMETERS_DIR = PROJECT_DIR / "parameters"
#: Suffixes tried after a bare parameter-file name (``cyberobs run annual_2025``).
PARAMETER_SUFFIXES = (".yaml", ".yml")


def bundled_parameter_files(parameters_dir: Path = PARAMETERS_DIR) -> list[str]:
    """Names (without suffix) of the parameter files of the project, sorted."""
    return sorted(p.stem for p in parameters_dir.glob("*") if p.suffix in PARAMETER_SUFFIXES)


def find_parameter_file(name: str | Path, *, parameters_dir: Path = PARAMETERS_DIR) -> Path:
    """The parameter file named on the command line: a path, or the bare name of a project's file.

    Tried in order: ``name`` as a path (relative to the current folder); then, for a relative path, the
    same path under the project (``parameters/annual_2025.yaml`` from any folder); then a bare name
    (no folder) in ``parameters_dir``, with ``.yaml`` or ``.yml`` added when it has no suffix
    (``annual_2025``).

    Raises
    ------
    FileNotFoundError
        When none exists; the message lists the project's parameter files.
    """
    path = Path(name).expanduser()
    candidates = [path]
    if not path.is_absolute():
        candidates.append(parameters_dir.parent / path)
        if path.parent == Path("."):
            candidates.append(parameters_dir / path.name)
            if path.suffix not in PARAMETER_SUFFIXES:
                candidates += [parameters_dir / f"{path.name}{s}" for s in PARAMETER_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    available = ", ".join(bundled_parameter_files(parameters_dir)) or "none"
    raise FileNotFoundError(
        f"parameter file {name} not found: not a file here, nor a parameter file of the project "
        f"({parameters_dir}); project parameter files: {available}"
    )


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

    ``$CYBEROBS_WORK_DIR`` when set, else ``.work`` in :data:`REPORTS_DIR` (``./reports/.work``). Each run owns
    ``<root>/<output folder name>-<hash of its absolute path>/`` (see :mod:`cyberobs_lib.run_lock`).
    """
    value = os.environ.get(WORK_DIR_ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else REPORTS_DIR / ".work"
