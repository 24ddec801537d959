"""The store: SQLAlchemy Core over SQLite (default) or PostgreSQL (shared).

``open_store`` creates the database on first use and migrates it to the newest schema.
DataFrames are views over it (``Store.frame``), never a second copy of the data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from ..errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class Store:
    """An open store: one engine and the helpers every module uses to read and write."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """Open a transaction that commits on success and rolls back on any error."""
        with self.engine.begin() as connection:
            yield connection

    def frame(self, query, **params) -> pd.DataFrame:
        """Run ``query`` and return the rows as a DataFrame, with times in UTC."""
        import pandas as pd  # imported here so that kernels running runbook steps start faster

        with self.engine.connect() as connection:
            frame = pd.read_sql(query, connection, params=params or None)
        for column in frame.columns:
            if column.endswith("_at"):
                frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def close(self) -> None:
        self.engine.dispose()

    def relax_durability(self) -> None:
        """Commit without waiting for the disk on SQLite (``PRAGMA synchronous=NORMAL``).

        In WAL mode this keeps every commit through a crash of the process, but the newest
        commits may be lost when the machine itself loses power. The queue worker uses it:
        a flush to disk per commit would otherwise cap it near 100 messages per second.
        PostgreSQL is left as it is.
        """
        if self.dialect != "sqlite":
            return

        @event.listens_for(self.engine, "connect")
        def _relax(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at ``url``, creating and migrating it unless ``migrate`` is False."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"database URL is invalid ({error}); expected sqlite:///PATH or "
                         f"postgresql+psycopg://USER@HOST/DB") from error

    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_pre_ping=True)
    else:
        raise StoreError(f"database backend '{parsed.get_backend_name()}' is not supported; "
                         f"use sqlite or postgresql")

    store = Store(engine)
    if migrate:
        try:
            from .migrate import upgrade_to_head  # Alembic loads only when migrating

            upgrade_to_head(store.engine)
        except OperationalError as error:
            raise StoreError(f"cannot open the store at {parsed.render_as_string()}: "
                             f"{error.orig}") from error
    return store


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` as an aware UTC time; SQLite hands back naive times stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
