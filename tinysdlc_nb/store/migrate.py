"""Schema migrations through Alembic, with the scripts shipped inside the package."""

from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).with_name("migrations")
# Any fixed 64-bit number works; it only has to be the same in every process.
_PG_LOCK_KEY = 7_141_592_653


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    The check runs under the migration lock too. Two processes opening a new SQLite store
    at once would otherwise both connect while the first one turns on WAL mode, and the
    second fails with "database is locked".
    """
    with _migration_lock(engine):
        if current_revision(engine) == head_revision():
            return
        with engine.begin() as connection:
            config = _alembic_config(connection)
            log.info("migrating store to revision %s", head_revision())
            command.upgrade(config, "head")


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` removes every table)."""
    with _migration_lock(engine), engine.begin() as connection:
        log.info("downgrading store to revision %s", revision)
        command.downgrade(_alembic_config(connection), revision)


def _alembic_config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _migration_lock(engine: Engine):
    """Serialise migrations across processes: a file lock for SQLite, an advisory lock else."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock_path = Path(f"{engine.url.database}.migrate.lock")
        with lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": _PG_LOCK_KEY})
                connection.commit()
    else:
        yield
