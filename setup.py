"""Build hook: the notebooks and the parameter files travel inside the package.

The repository keeps ``notebooks/`` and ``parameters/`` at the top level, where JupyterLab, papermill and
nbval use them. A wheel (or a non-editable ``pip install .``) also carries copies of them under
``cyberobs_lib/_resources/``, so that ``cyberobs run`` works from an installed package
(:mod:`cyberobs_lib.config` chooses the checkout's folders when there is one, else these). Everything else
is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Top-level folder -> the files of it shipped in ``cyberobs_lib/_resources/<folder>/``.
RESOURCES = {"notebooks": "*.ipynb", "parameters": "*.yaml"}
RESOURCES_PACKAGE_DIR = ("cyberobs_lib", "_resources")


def copy_resources(source_root: Path, target: Path) -> list[Path]:
    """Copy the shipped notebooks and parameter files from ``source_root`` into ``target`` (replaced whole).

    Raises
    ------
    FileNotFoundError
        When a folder has no file to ship (a build from an incomplete source tree must fail, not ship a
        package whose ``cyberobs run`` cannot work).
    """
    shutil.rmtree(target, ignore_errors=True)
    copied = []
    for folder, pattern in RESOURCES.items():
        files = sorted((source_root / folder).glob(pattern))
        if not files:
            raise FileNotFoundError(
                f"no {folder}/{pattern} under {source_root}: nothing to ship in the package"
            )
        (target / folder).mkdir(parents=True)
        for path in files:
            copied.append(Path(shutil.copy2(path, target / folder / path.name)))
    return copied


class BuildPyWithResources(build_py):
    """``build_py`` that also copies the notebooks and parameter files into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install uses the checkout's folders
            return
        self._resources = copy_resources(ROOT, Path(self.build_lib, *RESOURCES_PACKAGE_DIR))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *map(str, getattr(self, "_resources", []))]


setup(cmdclass={"build_py": BuildPyWithResources})
