"""The incident tables are append-only in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from incidentkit import T0, alert
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from tinysdlc_nb.incidents.engine import EngineSettings, apply_signals
from tinysdlc_nb.incidents.model import Event


@pytest.mark.parametrize("statement", [
    "UPDATE timeline SET occurred_at = occurred_at",
    "DELETE FROM timeline",
    "UPDATE incidents SET title = 'calm'",
    "DELETE FROM incident_keys",
])
def test_incident_rows_cannot_change(any_store, statement):
    apply_signals(any_store, [alert(Event.FIRING, "a", 0)], EngineSettings())

    with pytest.raises(DatabaseError, match="append-only"):
        with any_store.begin() as connection:
            connection.execute(text(statement))

    with any_store.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM timeline")).scalar() == 1


def test_times_read_back_in_utc(any_store):
    apply_signals(any_store, [alert(Event.FIRING, "a", 0)], EngineSettings())

    frame = any_store.frame(text("SELECT occurred_at FROM timeline"))

    assert frame["occurred_at"][0] == T0
