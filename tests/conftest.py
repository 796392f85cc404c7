"""Shared pytest fixtures. Kernels started by nbval inherit PYTHONHASHSEED and CYBEROBS_DEMO from here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYTHONHASHSEED", "0")
# Demo mode for the test session (INTERFACES §1): with no key set, the public demo key is used, as
# `cyberobs run --demo` does; a test about real-data keys removes it with monkeypatch.
os.environ["CYBEROBS_DEMO"] = "1"

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The third-party corpus, beside the checkout (``../shared/corpus``); absent on most machines.
CORPUS = Path(os.environ.get("CYBEROBS_CORPUS", REPO.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus folder; skips the test cleanly when it is not there."""
    if not (CORPUS / "MANIFEST.md").is_file():
        pytest.skip(f"third-party corpus not present at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def demo_stores(tmp_path_factory) -> dict[str, Path]:
    """The bundled demo data ingested both ways (today = 2026-01-01): ``flat`` (``cyberobs ingest``, one
    file per table) and ``partitioned`` (``ingest_large``, by year, several chunks)."""
    from cyberobs_lib.config import PROJECT_DIR
    from cyberobs_lib.ingest import ingest_dataset, write_canonical
    from cyberobs_lib.scale import ingest_large

    demo, root = PROJECT_DIR / "data" / "demo", tmp_path_factory.mktemp("demo_stores")
    write_canonical(ingest_dataset(demo, today="2026-01-01"), root / "flat")
    ingest_large(demo, root / "partitioned", today="2026-01-01", chunk_rows=2000)
    return {"flat": root / "flat", "partitioned": root / "partitioned"}


#: Fixture notebooks (tests/fixtures/run_notebooks: one fails on purpose) are run by the tests that use
#: them, never collected by nbval as notebooks of the suite.
collect_ignore_glob = ["fixtures/*"]
