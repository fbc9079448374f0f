"""Data-test setup: no test may write into the user's real cache directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Point the corpus cache at a fresh temporary folder for every test."""
    monkeypatch.setenv("MINITRANSFORMER_CACHE", str(tmp_path / "cache"))
