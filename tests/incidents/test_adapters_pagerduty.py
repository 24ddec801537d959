"""The pagerduty adapter on real V3 webhook bodies and on edited copies of them."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from incidentkit import FIXTURES as SHARED_FIXTURES

from tinysdlc_nb.errors import PayloadError
from tinysdlc_nb.incidents.adapters import pagerduty
from tinysdlc_nb.incidents.model import DEFAULT_SEVERITY_MAP, ActorKind, AdapterContext, Event

FIXTURES = SHARED_FIXTURES / "alerts" / "pagerduty"
RECEIVED_AT = dt.datetime(2026, 4, 2, 9, 0, tzinfo=dt.UTC)
CONTEXT = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP, received_at=RECEIVED_AT)

# Per fixture file: event, occurred_at in UTC, incident key, dedup key and severity.
EXPECTED = {
    "triggered_v3.json": (Event.FIRING, "2021-06-04T13:35:29.781000+00:00", "PFQZPSY",
                          "pagerduty:01BZYIL05THJDFF2Y08X9SVMTU", "P1"),
    "acknowledged_v3.json": (Event.ACKNOWLEDGED, "2021-06-04T13:55:30.394000+00:00",
                             "PQ1K5C8", "pagerduty:01BZYK8N47N5JG55J1EEEHPEJI", "P1"),
    "unacknowledged_v3.json": (Event.UNACKNOWLEDGED, "2021-06-04T13:54:23.185000+00:00",
                               "PQ1K5C8", "pagerduty:01BZYK5B3WC0QI62S87MJX7FCD", "P1"),
    "resolved_v3.json": (Event.RESOLVED, "2021-06-04T13:16:53.816000+00:00", "PCPZE64",
                         "pagerduty:01BZYH1JJY09P9LEIST8HG2PMN", "P1"),
    "escalate_v3.json": (Event.ESCALATED, "2026-04-01T02:08:04.642000+00:00", "Q3B15VLMF3ASBD",
                         "pagerduty:01GI0JWUU28G8XE5M6IIT4BZ39", "P1"),
    "reassigned_v3.json": (Event.ASSIGNED, "2021-06-04T10:17:54.838000+00:00", "PIQUG8X",
                           "pagerduty:01BZY282OVDQMFPDC3VB98DR1L", "P1"),
    "reopened_v3.json": (Event.REOPENED, "2026-04-01T02:15:02.274000+00:00", "Q05XJA8GDXGOB3",
                         "pagerduty:01GI0KHLHVH4YZ44BJY1VLT6F2", "P3"),
    "priority_updated_v3.json": (Event.SEVERITY, "2026-04-01T02:15:36.315000+00:00",
                                 "Q3B15VLMF3ASBD", "pagerduty:01GI0KJAEAC3CFEOFSC8BIJF3O", "P2"),
}

# An incident.annotated event: ``data`` is the note, which references its incident.
ANNOTATED = {
    "event": {
        "id": "01DVQ3ZXN2C7K4M9P8A6R5T0YB",
        "event_type": "incident.annotated",
        "resource_type": "incident",
        "occurred_at": "2026-04-01T02:20:11.120Z",
        "agent": {"id": "PXRUEF2", "type": "user_reference", "summary": "Harsh Santwani",
                  "self": "https://api.pagerduty.com/users/PXRUEF2"},
        "client": None,
        "data": {
            "incident": {"id": "Q3B15VLMF3ASBD", "type": "incident_reference",
                         "summary": "Critical: Checkout API High Latency",
                         "self": "https://api.pagerduty.com/incidents/Q3B15VLMF3ASBD"},
            "id": "PN0TE42",
            "content": "Rolled back checkout to v2.3.1; latency back under 200 ms",
            "trimmed": False,
            "type": "incident_note",
        },
    }
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse_one(payload: dict, context: AdapterContext = CONTEXT):
    signals = pagerduty.parse(payload, context)
    assert len(signals) == 1
    return signals[0]


def test_every_fixture_has_expectations():
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.name)
def test_fixture_parses(path):
    payload = json.loads(path.read_text(encoding="utf-8"))

    signal = parse_one(payload)

    event, occurred_at, incident_key, dedup_key, severity = EXPECTED[path.name]
    assert signal.event is event
    assert signal.occurred_at.isoformat() == occurred_at
    assert signal.incident_key == incident_key
    assert signal.dedup_key == dedup_key
    assert signal.severity == severity
    assert signal.alert_key is None
    assert signal.source == "pagerduty"


def test_title_and_service():
    signal = parse_one(load("escalate_v3.json"))

    assert signal.title == "Critical: Checkout API High Latency"
    assert signal.service == "Default Service"


def test_incident_creation_is_start():
    escalated = parse_one(load("escalate_v3.json"))
    older_shape = parse_one(load("resolved_v3.json"))

    assert escalated.started_at == dt.datetime(2026, 4, 1, 2, 7, 30, tzinfo=dt.UTC)
    assert older_shape.started_at is None


def test_user_agent_is_human():
    signal = parse_one(load("acknowledged_v3.json"))

    assert signal.actor == "PIG 208"
    assert signal.actor_kind is ActorKind.HUMAN


def test_service_agent_is_system():
    payload = load("triggered_v3.json")
    payload["event"]["agent"] = {"id": "PA2P440", "type": "service_reference",
                                 "summary": "pig208"}

    signal = parse_one(payload)

    assert signal.actor == "pig208"
    assert signal.actor_kind is ActorKind.SYSTEM


def test_null_agent_is_system():
    payload = load("resolved_v3.json")
    payload["event"]["agent"] = None

    signal = parse_one(payload)

    assert signal.actor == ""
    assert signal.actor_kind is ActorKind.SYSTEM


def test_priority_wins_over_urgency():
    reopened = load("reopened_v3.json")
    reopened["event"]["data"]["urgency"] = "high"

    signal = parse_one(reopened)

    assert signal.severity == "P3"


def test_low_urgency_without_priority():
    payload = load("triggered_v3.json")
    payload["event"]["data"]["urgency"] = "low"

    signal = parse_one(payload)

    assert signal.severity == "P3"


def test_no_priority_or_urgency():
    payload = load("triggered_v3.json")
    del payload["event"]["data"]["urgency"]

    signal = parse_one(payload)

    assert signal.severity is None


def test_priority_mapped_through_config():
    context = AdapterContext(severity_map={**DEFAULT_SEVERITY_MAP, "pagerduty:p1": "P0"},
                             received_at=RECEIVED_AT)

    signal = parse_one(load("escalate_v3.json"), context)

    assert signal.severity == "P0"


def test_priority_update_described():
    signal = parse_one(load("priority_updated_v3.json"))

    assert signal.description == "priority P2"
    assert signal.details["priority"] == "P2"
    assert signal.details["escalation_policy"] == "APIs-ep"


def test_reassignment_names_assignee():
    signal = parse_one(load("reassigned_v3.json"))

    assert signal.description == "assigned to Test User"
    assert signal.details["assignees"] == ["Test User"]
    assert signal.actor == "PIG 208"


def test_ack_and_unack_share_incident():
    acknowledged = parse_one(load("acknowledged_v3.json"))
    unacknowledged = parse_one(load("unacknowledged_v3.json"))

    assert acknowledged.incident_key == unacknowledged.incident_key == "PQ1K5C8"
    assert unacknowledged.occurred_at < acknowledged.occurred_at
    assert acknowledged.dedup_key != unacknowledged.dedup_key


def test_details_keep_incident_fields():
    signal = parse_one(load("reopened_v3.json"))

    assert signal.details["event_type"] == "incident.reopened"
    assert signal.details["status"] == "triggered"
    assert signal.details["urgency"] == "low"
    assert signal.details["reopened_at"] == "2026-04-01T02:15:01Z"
    assert signal.details["incident_key"] == "07261e18031d41268a16c774c1892cae"
    assert signal.details["number"] == 4


def test_resolved_with_no_assignees():
    signal = parse_one(load("resolved_v3.json"))

    assert signal.details["assignees"] == []
    assert "resolve_reason" not in signal.details


def test_annotation_is_note_on_incident():
    signal = parse_one(ANNOTATED)

    assert signal.event is Event.NOTE
    assert signal.incident_key == "Q3B15VLMF3ASBD"
    assert signal.description == "Rolled back checkout to v2.3.1; latency back under 200 ms"
    assert signal.title == "Critical: Checkout API High Latency"
    assert signal.dedup_key == "pagerduty:01DVQ3ZXN2C7K4M9P8A6R5T0YB"


@pytest.mark.parametrize("event_type", ["incident.delegated", "incident.responder.added",
                                        "incident.status_update_published"])
def test_other_incident_events_are_notes(event_type):
    payload = load("triggered_v3.json")
    payload["event"]["event_type"] = event_type

    signal = parse_one(payload)

    assert signal.event is Event.NOTE
    assert signal.incident_key == "PFQZPSY"


def test_non_incident_event_ignored():
    payload = load("triggered_v3.json")
    payload["event"]["event_type"] = "service.updated"
    payload["event"]["resource_type"] = "service"

    assert pagerduty.parse(payload, CONTEXT) == []


def test_same_payload_twice_same_key():
    payload = load("triggered_v3.json")

    first = parse_one(payload)
    second = parse_one(copy.deepcopy(payload))

    assert first.dedup_key == second.dedup_key


def test_missing_event_rejected():
    with pytest.raises(PayloadError, match="pagerduty payload: event is missing; "
                                           "expected the V3 event object"):
        pagerduty.parse({"messages": []}, CONTEXT)


def test_missing_event_type_rejected():
    payload = load("triggered_v3.json")
    del payload["event"]["event_type"]

    with pytest.raises(PayloadError, match="pagerduty payload: event.event_type is missing; "
                                           "expected an event type such as incident.triggered"):
        pagerduty.parse(payload, CONTEXT)


def test_missing_incident_id_rejected():
    payload = load("triggered_v3.json")
    del payload["event"]["data"]["id"]

    with pytest.raises(PayloadError, match="pagerduty payload: event.data.id is missing"):
        pagerduty.parse(payload, CONTEXT)


def test_unreadable_occurred_at_rejected():
    payload = load("triggered_v3.json")
    payload["event"]["occurred_at"] = "2021-06-04 13:35"

    with pytest.raises(PayloadError, match="event.occurred_at '2021-06-04 13:35' is not a "
                                           "valid time"):
        pagerduty.parse(payload, CONTEXT)


def test_non_object_rejected():
    with pytest.raises(PayloadError, match="pagerduty payload is a list; expected a JSON object"):
        pagerduty.parse([load("triggered_v3.json")], CONTEXT)
