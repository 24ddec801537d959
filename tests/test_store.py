from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.migrate import current_revision, downgrade, head_revision, upgrade_to_head
from tinysdlc_nb.store.schema import metadata


def test_store_created_on_first_use(tmp_path):
    path = tmp_path / "nested" / "state.db"
    store = open_store(f"sqlite:///{path}")
    assert path.is_file()
    assert current_revision(store.engine) == head_revision()
    store.close()


def test_sqlite_store_uses_wal(tmp_path):
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_schema_matches_migrations(any_store):
    with any_store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_downgrade_removes_and_upgrade_restores(any_store):
    engine = any_store.engine
    downgrade(engine, "base")
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    assert current_revision(engine) is None

    upgrade_to_head(engine)
    assert {"gate_runs", "signoffs", "evidence", "incidents", "incident_keys",
            "timeline"} <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == head_revision()


def test_reopen_does_not_migrate_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()
    store = open_store(url)
    assert current_revision(store.engine) == head_revision()
    store.close()
