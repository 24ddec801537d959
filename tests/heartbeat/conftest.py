"""Fixtures of the heartbeat tests: a health server, a project folder and its store."""

from __future__ import annotations

import pytest
from beatkit import HealthServer, write_project

from tinysdlc_nb.config import load_config
from tinysdlc_nb.store import open_store


@pytest.fixture
def health():
    with HealthServer() as server:
        yield server


@pytest.fixture
def project(tmp_path):
    return write_project(tmp_path / "shop")


@pytest.fixture
def config(project):
    return load_config(project)


@pytest.fixture
def store(config):
    opened = open_store(config.database_url)
    yield opened
    opened.close()
