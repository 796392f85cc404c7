"""The canonical folder a run reads: check one given to it, or ingest its dataset into one.

A run reads its tables from ``<working folder>/canonical`` (identifying data, outside any report folder;
see :mod:`cyberobs_lib.run_lock`). Either the run ingests its dataset there (:func:`ingest_for_run`, in the parameter file's
``storage`` format), or it is given an already ingested folder (``cyberobs run --canonical PATH``), checked
by :func:`check_canonical_folder` and seen through a folder of links (:func:`link_canonical`) so that what
the run writes beside the tables never lands in a folder it was only given to read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cyberobs_lib.ingest import ingest_dataset, write_canonical
from cyberobs_lib.run_errors import DatasetError
from cyberobs_lib.scale.chunked import ingest_large
from cyberobs_lib.store import read_manifest
from cyberobs_lib.studies.data import PARTITIONED, canonical_format


class CanonicalFolderError(ValueError):
    """A folder given as canonical tables is missing or is not one; the message says what to do."""


def check_canonical_folder(folder: Path | str) -> Path:
    """The resolved path of an already ingested folder (either format), or :class:`CanonicalFolderError`.

    Examples
    --------
    >>> check_canonical_folder("no/such/folder")
    Traceback (most recent call last):
    ...
    cyberobs_lib.run_canonical.CanonicalFolderError: --canonical no/such/folder: folder does not exist
    """
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise CanonicalFolderError(f"--canonical {folder}: folder does not exist")
    if canonical_format(path) is None:
        hint = (
            "; it looks like a dataset folder: give it as --data" if (path / "audits.csv").is_file() else ""
        )
        raise CanonicalFolderError(
            f"--canonical {folder}: not a canonical folder (neither ingest.json nor _manifest.json{hint}); "
            f"write one with `cyberobs ingest DATASET --out {folder} [--large]`"
        )
    return path


def ingest_summary(canonical: Path | str) -> dict:
    """The ingest summary of a canonical folder: ``ingest.json``, or ``ingest`` in the store manifest.

    It holds the input SHA-256 (``inputs``), ``rows`` per table and ``rejected`` rows.
    """
    canonical = Path(canonical)
    if canonical_format(canonical) == PARTITIONED:
        return dict(read_manifest(canonical).get("ingest", {}))
    return json.loads((canonical / "ingest.json").read_text(encoding="utf-8"))


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def link_canonical(source: Path | str, view: Path | str) -> Path:
    """Make ``view`` a folder of symbolic links to the entries of the canonical folder ``source``.

    Readers see the same tables; what a run writes beside them (``audit_metrics.parquet`` of a batch)
    goes into ``view``. A previous ``view`` is replaced.
    """
    source, view = Path(source).resolve(), Path(view)
    _remove(view)
    view.mkdir(parents=True)
    for entry in sorted(source.iterdir()):
        if entry.name != "audit_metrics.parquet":  # computed by the run itself
            (view / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    return view


def ingest_for_run(
    dataset: Path,
    canonical: Path,
    *,
    storage: str,
    workers: int | None = None,
    before_write: Callable[[pd.DataFrame], None] | None = None,
) -> dict:
    """Ingest ``dataset`` into ``canonical`` (replaced as a whole) and return the ingest summary.

    Parameters
    ----------
    dataset : Path
        Dataset folder (data contract).
    canonical : Path
        Target folder.
    storage : {"flat", "partitioned"}
        ``flat``: :func:`cyberobs_lib.ingest.ingest_dataset` in memory then ``write_canonical``;
        ``partitioned``: :func:`cyberobs_lib.scale.ingest_large` (chunked, year-partitioned store).
    workers : int, optional
        Worker processes of ``ingest_large`` (default 1).
    before_write : callable, optional
        ``flat`` only: called with the validation violations (``cyberobs validate``'s table) before
        anything is written; it raises to stop the run (:func:`cyberobs_lib.run_checks.check_validation`).
    """
    _remove(canonical)  # a stale store of the other format must not be read instead
    if storage == "partitioned":
        summary = ingest_large(dataset, canonical, workers=workers or 1)
        if summary.get("fatal"):
            raise DatasetError(
                f"dataset {dataset.name} cannot be studied (nothing was run, the previous report is untouched): "
                + "; ".join(summary["fatal"])
            )
        return summary
    if storage != "flat":
        raise ValueError(f"storage must be 'flat' or 'partitioned', got {storage!r}")

    result = ingest_dataset(dataset)
    if result.fatal:
        raise DatasetError(
            f"dataset {dataset.name} cannot be studied (nothing was run, the previous report is untouched): "
            + "; ".join(result.fatal)
        )
    if before_write is not None:
        before_write(result.check.violations)
    write_canonical(result, canonical)
    return result.summary
