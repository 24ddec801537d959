"""The engine's rules: occurrences, group resolution, reopen window, late duplicates,
severity changes and escalation, on a real SQLite store (and PostgreSQL where shared)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from incidentkit import T0, alert, minutes
from sqlalchemy import func, select

from tinysdlc_nb.config import _default_sla
from tinysdlc_nb.incidents.engine import EngineSettings, apply_signals
from tinysdlc_nb.incidents.model import ActorKind, Event, Signal
from tinysdlc_nb.incidents.sla import SlaPolicy
from tinysdlc_nb.incidents.view import incident_detail, incident_rows
from tinysdlc_nb.store.schema import incidents, timeline

POLICY = SlaPolicy.from_config(_default_sla())


def detail(store, incident_id):
    return incident_detail(store, incident_id, POLICY, now=minutes(600))


def kinds(store, incident_id):
    return [row["kind"] for row in incident_rows(store, incident_id, raw=True)]


def count_rows(store, table=timeline):
    with store.begin() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar()


def test_first_firing_opens_incident(ingest):
    [outcome] = ingest(alert(Event.FIRING, "a", 0))

    assert outcome.action == "created"
    assert kinds(ingest.store, 1) == ["detected"]
    found = detail(ingest.store, 1)
    assert found["status"] == "open"
    assert found["severity"] == "P2"
    assert found["detected_at"] == "2026-03-02T09:00:00Z"
    assert found["title"] == "Disk full"


def test_repeat_notification_adds_nothing(ingest):
    ingest(alert(Event.FIRING, "a", 0))
    before = count_rows(ingest.store)

    [outcome] = ingest(alert(Event.FIRING, "a", 0))

    assert outcome.action == "unchanged"
    assert count_rows(ingest.store) == before


def test_group_resolves_only_when_every_alert_resolved(ingest):
    ingest(alert(Event.FIRING, "a", 0), alert(Event.FIRING, "b", 2))

    ingest(alert(Event.RESOLVED, "a", 10, started_minute=0))
    assert detail(ingest.store, 1)["status"] == "open"

    ingest(alert(Event.RESOLVED, "b", 7, started_minute=2))
    found = detail(ingest.store, 1)
    assert found["status"] == "resolved"
    # The group ends when its last alert ends, whatever order the notices came in.
    assert found["resolved_at"] == "2026-03-02T09:10:00Z"
    assert kinds(ingest.store, 1) == ["detected", "alert_fired", "alert_resolved",
                                      "alert_resolved", "resolved"]


def test_refire_within_window_reopens(ingest):
    ingest(alert(Event.FIRING, "a", 0), alert(Event.RESOLVED, "a", 5, started_minute=0))

    [outcome] = ingest(alert(Event.FIRING, "a", 30))

    assert outcome.action == "reopened"
    assert outcome.incident_id == 1
    found = detail(ingest.store, 1)
    assert found["status"] == "open"
    assert found["resolved_at"] is None


def test_refire_after_window_opens_new_incident(ingest):
    ingest(alert(Event.FIRING, "a", 0), alert(Event.RESOLVED, "a", 5, started_minute=0))

    [outcome] = ingest(alert(Event.FIRING, "a", 5 + 61))
    ingest(alert(Event.RESOLVED, "a", 80, started_minute=66))

    assert outcome.action == "created"
    assert outcome.incident_id == 2
    assert detail(ingest.store, 1)["status"] == "resolved"
    assert detail(ingest.store, 2)["resolved_at"] == "2026-03-02T10:20:00Z"


def test_reopen_window_is_configurable(ingest):
    settings = EngineSettings(reopen_window=dt.timedelta(minutes=10))
    ingest(alert(Event.FIRING, "a", 0), alert(Event.RESOLVED, "a", 5, started_minute=0),
           settings=settings)

    [outcome] = ingest(alert(Event.FIRING, "a", 20), settings=settings)

    assert outcome.action == "created"


def test_ha_duplicate_after_resolve_does_not_reopen(ingest):
    ingest(alert(Event.FIRING, "a", 0), alert(Event.RESOLVED, "a", 5, started_minute=0))

    # The second Alertmanager replica sends the same occurrence again, late.
    [outcome] = ingest(alert(Event.FIRING, "a", 0))

    assert outcome.action == "unchanged"
    assert detail(ingest.store, 1)["status"] == "resolved"


def test_late_alert_started_before_resolve_does_not_reopen(ingest):
    ingest(alert(Event.FIRING, "a", 0), alert(Event.RESOLVED, "a", 5, started_minute=0))

    [outcome] = ingest(alert(Event.FIRING, "b", 3))

    assert outcome.action == "unchanged"
    assert "before the incident was resolved" in outcome.reason
    assert detail(ingest.store, 1)["status"] == "resolved"


def test_resolved_first_opens_and_resolves(ingest):
    [outcome] = ingest(alert(Event.RESOLVED, "a", 7, started_minute=1))

    assert outcome.action == "created"
    found = detail(ingest.store, 1)
    assert found["detected_at"] == "2026-03-02T09:01:00Z"
    assert found["resolved_at"] == "2026-03-02T09:07:00Z"
    assert found["status"] == "resolved"


def test_stricter_alert_raises_severity_and_escalates(ingest):
    ingest(alert(Event.FIRING, "a", 0, severity="P2"))

    [outcome] = ingest(alert(Event.FIRING, "b", 3, severity="P0"))

    assert outcome.kinds == ["alert_fired", "severity", "escalated"]
    assert detail(ingest.store, 1)["severity"] == "P0"
    escalation = [row for row in incident_rows(ingest.store, 1) if row["kind"] == "escalated"]
    assert escalation[0]["details"]["to"] == "SE4H"
    assert escalation[0]["occurred_at"] == minutes(3)


def test_milder_alert_keeps_severity(ingest):
    ingest(alert(Event.FIRING, "a", 0, severity="P1"))

    [outcome] = ingest(alert(Event.FIRING, "b", 3, severity="P3"))

    assert outcome.kinds == ["alert_fired"]
    assert detail(ingest.store, 1)["severity"] == "P1"


def test_p1_opening_escalates_to_owner(ingest):
    [outcome] = ingest(alert(Event.FIRING, "a", 0, severity="P1"),
                       settings=EngineSettings(owner="dana"))

    assert outcome.kinds == ["detected", "escalated"]
    row = incident_rows(ingest.store, 1)[1]
    assert row["details"]["to"] == "dana"
    assert row["description"].startswith("P1 incident: escalation to dana recorded")


def pager(event: Event, at_minute: float, event_id: str, **extra) -> Signal:
    return Signal(source="pagerduty", incident_key="PQ1", event=event,
                  occurred_at=minutes(at_minute), dedup_key=f"pagerduty:{event_id}",
                  title="Checkout errors", **extra)


def test_incident_level_lifecycle(ingest):
    ingest(pager(Event.FIRING, 0, "e1", severity="P2"))
    ingest(pager(Event.ACKNOWLEDGED, 4, "e2", actor="Ann", actor_kind=ActorKind.HUMAN))
    assert detail(ingest.store, 1)["status"] == "acknowledged"

    ingest(pager(Event.UNACKNOWLEDGED, 34, "e3"))
    assert detail(ingest.store, 1)["status"] == "open"
    # The first human acknowledgement still counts for the time to acknowledge.
    assert detail(ingest.store, 1)["acknowledged_at"] == "2026-03-02T09:04:00Z"

    ingest(pager(Event.RESOLVED, 50, "e4"))
    assert detail(ingest.store, 1)["status"] == "resolved"
    ingest(pager(Event.REOPENED, 55, "e5"))
    assert detail(ingest.store, 1)["status"] == "open"


def test_system_acknowledgement_is_not_human(ingest):
    ingest(pager(Event.FIRING, 0, "e1"),
           pager(Event.ACKNOWLEDGED, 1, "e2", actor="auto-ack rule"))

    # Only a person's acknowledgement moves the status and starts the TTA clock.
    found = detail(ingest.store, 1)
    assert found["status"] == "open"
    assert found["acknowledged_at"] is None


def test_signal_without_problem_never_opens(ingest):
    [outcome] = ingest(pager(Event.RESOLVED, 0, "e9", opens_incident=False))

    assert outcome.action == "ignored"
    assert count_rows(ingest.store, incidents) == 0


def test_event_before_firing_opens_incident(ingest):
    [outcome] = ingest(pager(Event.ACKNOWLEDGED, 5, "e2", actor="Ann",
                             actor_kind=ActorKind.HUMAN, started_at=minutes(1)))

    assert outcome.action == "created"
    found = detail(ingest.store, 1)
    assert found["detected_at"] == "2026-03-02T09:01:00Z"
    assert found["acknowledged_at"] == "2026-03-02T09:05:00Z"


def test_priority_change_sets_severity(ingest):
    ingest(pager(Event.FIRING, 0, "e1", severity="P3"))

    ingest(pager(Event.SEVERITY, 2, "e2", severity="P1"))
    ingest(pager(Event.SEVERITY, 9, "e3", severity="P2"))

    assert kinds(ingest.store, 1) == ["detected", "severity", "escalated", "severity"]
    assert detail(ingest.store, 1)["severity"] == "P2"


def test_batch_twice_adds_nothing(ingest):
    batch = [alert(Event.FIRING, "a", 0), alert(Event.FIRING, "b", 1),
             alert(Event.RESOLVED, "a", 5, started_minute=0),
             pager(Event.FIRING, 0, "e1"), pager(Event.ACKNOWLEDGED, 3, "e2")]
    ingest(*batch)
    rows, opened = count_rows(ingest.store), count_rows(ingest.store, incidents)

    outcomes = ingest(*batch)

    assert {outcome.action for outcome in outcomes} == {"unchanged"}
    assert (count_rows(ingest.store), count_rows(ingest.store, incidents)) == (rows, opened)


def test_flapping_collapses_in_view(ingest):
    signals = [alert(Event.FIRING, "a", 0)]
    for start in (4, 8, 12):
        signals.append(alert(Event.RESOLVED, "a", start - 2, started_minute=start - 4))
        signals.append(alert(Event.FIRING, "a", start))
    ingest(*signals)

    shown = incident_rows(ingest.store, 1)
    flapping = [row for row in shown if row["kind"] == "flapping"]

    assert len(flapping) == 1
    assert flapping[0]["details"]["count"] == 6
    assert flapping[0]["details"]["final_state"] == "firing"
    assert [row["kind"] for row in shown] == ["detected", "flapping"]
    # The stored rows are all still there: each cycle is alert_resolved, resolved,
    # reopened and alert_fired.
    assert len(incident_rows(ingest.store, 1, raw=True)) == 1 + 3 * 4


def test_three_changes_are_not_flapping(ingest):
    ingest(alert(Event.FIRING, "a", 0), alert(Event.RESOLVED, "a", 2, started_minute=0),
           alert(Event.FIRING, "a", 4), alert(Event.RESOLVED, "a", 6, started_minute=4))

    assert "flapping" not in [row["kind"] for row in incident_rows(ingest.store, 1)]


def test_slow_changes_are_not_flapping(ingest):
    signals = [alert(Event.FIRING, "a", 0)]
    # A change every 12 minutes: any four of them span 36 minutes, more than the window.
    for start in (24, 48, 72):
        signals.append(alert(Event.RESOLVED, "a", start - 12, started_minute=start - 24))
        signals.append(alert(Event.FIRING, "a", start))
    ingest(*signals)

    assert "flapping" not in [row["kind"] for row in incident_rows(ingest.store, 1)]


@pytest.mark.postgres
def test_concurrent_writers_store_once(pg_url):
    from tinysdlc_nb.store import open_store

    stores = [open_store(pg_url) for _ in range(4)]
    batch = [alert(Event.FIRING, f"fp{index}", index) for index in range(20)]
    errors = []

    def write(store):
        try:
            apply_signals(store, batch, EngineSettings())
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with stores[0].begin() as connection:
        keys = connection.execute(select(timeline.c.dedup_key)).scalars().all()
    assert len(keys) == len(set(keys))
    assert len([key for key in keys if key]) == 20
    for store in stores:
        store.close()


def test_t0_is_monday():
    assert T0.weekday() == 0


def test_late_trigger_moves_detection_earlier(ingest):
    # PagerDuty does not promise order: the resolve may come before the trigger.
    ingest(pager(Event.RESOLVED, 30, "e4"))
    assert detail(ingest.store, 1)["detected_at"] == "2026-03-02T09:30:00Z"

    [outcome] = ingest(pager(Event.FIRING, 0, "e1"))

    found = detail(ingest.store, 1)
    assert outcome.incident_id == 1
    assert found["detected_at"] == "2026-03-02T09:00:00Z"
    assert found["status"] == "resolved"
    assert found["resolved_at"] == "2026-03-02T09:30:00Z"


def test_resolved_alert_with_earlier_start_moves_detection(ingest):
    ingest(alert(Event.FIRING, "b", 2))

    ingest(alert(Event.RESOLVED, "a", 5, started_minute=0))

    assert detail(ingest.store, 1)["detected_at"] == "2026-03-02T09:00:00Z"
    assert detail(ingest.store, 1)["status"] == "open"


def test_resolved_stricter_alert_raises_severity(ingest):
    ingest(alert(Event.FIRING, "a", 0, severity="P2"))

    [outcome] = ingest(alert(Event.RESOLVED, "b", 9, started_minute=3, severity="P0"))

    assert outcome.kinds[:3] == ["alert_resolved", "severity", "escalated"]
    severity = [row for row in incident_rows(ingest.store, 1) if row["kind"] == "severity"]
    assert severity[0]["occurred_at"] == minutes(3)


def test_many_alerts_in_one_group(ingest):
    signals = [alert(Event.FIRING, f"fp{index}", index / 10) for index in range(300)]
    signals += [alert(Event.RESOLVED, f"fp{index}", 60 + index / 10,
                      started_minute=index / 10) for index in range(300)]

    outcomes = ingest(*signals)

    assert [outcome.action for outcome in outcomes].count("created") == 1
    found = detail(ingest.store, 1)
    assert found["status"] == "resolved"
    assert found["resolved_at"] == "2026-03-02T10:29:54Z"
