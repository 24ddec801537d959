"""Fixtures for schedule tests: a project folder with its own home, config and store."""

from __future__ import annotations

import pytest
from schedulekit import write_config

from tinysdlc_nb.config import load_config
from tinysdlc_nb.store import open_store


@pytest.fixture
def project(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    home = tmp_path / "home"
    monkeypatch.setenv("TINYSDLC_NB_HOME", str(home))
    write_config(folder, home)
    return folder


@pytest.fixture
def config(project):
    return load_config(project)


@pytest.fixture
def store(config):
    opened = open_store(config.database_url)
    yield opened
    opened.close()
