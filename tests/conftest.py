"""Shared pytest fixtures. Kernels started by nbval inherit PYTHONHASHSEED from here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYTHONHASHSEED", "0")

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
