"""Fixtures for runbook tests: a project folder with its own home and store."""

from __future__ import annotations

import pytest


@pytest.fixture
def project(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.setenv("TINYSDLC_NB_HOME", str(tmp_path / "home"))
    return folder
