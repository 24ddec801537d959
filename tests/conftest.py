"""Shared fixtures: stores on SQLite and PostgreSQL, and small projects to gate."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tinysdlc_nb.store import open_store

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PG_URL_ENV = "TINYSDLC_NB_TEST_PG_URL"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Keep every test away from the developer's own store and home folder."""
    monkeypatch.delenv("TINYSDLC_NB_DATABASE_URL", raising=False)
    monkeypatch.delenv("TINYSDLC_NB_HOME", raising=False)
    monkeypatch.delenv("TINYSDLC_NB_GATE_RUN", raising=False)


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test; .ci/run starts the server."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set; .ci/run starts PostgreSQL and sets it")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path):
    """The same test on the default SQLite store and on a shared PostgreSQL store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    store = open_store(url)
    yield store
    store.close()
