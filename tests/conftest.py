"""Shared fixtures; the helpers they use live in support.py (importable as `support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UET_RUN_ID", raising=False)
    yield Project(tmp_path)
