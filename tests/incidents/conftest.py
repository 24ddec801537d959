"""Helpers for the incident tests: a clock origin and a maker of Alertmanager-like signals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tinysdlc_nb.cli import main
from tinysdlc_nb.incidents.engine import EngineSettings, apply_signals
from tinysdlc_nb.incidents.model import Event, Signal

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
# The read-only ../shared folder beside the checkout, as in tests/conftest.py.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "fixtures"


def minutes(count: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=count)


def alert(event: Event, fingerprint: str, at_minute: float, *, started_minute: float | None = None,
          severity: str | None = "P2", group: str = "group-1", title: str = "Disk full",
          source: str = "alertmanager") -> Signal:
    """An Alertmanager-style signal whose occurrence is fingerprint + start time."""
    started = minutes(at_minute if started_minute is None else started_minute)
    return Signal(
        source=source, incident_key=group, event=event, occurred_at=minutes(at_minute),
        dedup_key=f"{source}:{group}:{fingerprint}:{started.isoformat()}:{event}",
        alert_key=fingerprint, started_at=started, title=title, severity=severity,
        description=f"{title} on {fingerprint}",
    )


@pytest.fixture
def ingest(sqlite_store):
    """Apply signals to a fresh SQLite store and return the outcomes."""

    def apply(*signals: Signal, settings: EngineSettings | None = None):
        return apply_signals(sqlite_store, signals, settings or EngineSettings())

    apply.store = sqlite_store
    return apply


@pytest.fixture
def run(tmp_path, capsys):
    """Run the CLI in this process on a project in tmp_path; return (exit code, out, err)."""

    def invoke(*args: str):
        code = main([*args, "--project", str(tmp_path)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
