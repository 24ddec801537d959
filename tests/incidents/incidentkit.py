"""Shared values of the incident tests: a clock origin and a maker of Alertmanager-like
signals. Test modules import them from here, because a plain ``conftest`` import would
find whichever conftest.py was loaded first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
