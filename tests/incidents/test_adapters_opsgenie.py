"""The opsgenie adapter on real webhook bodies, with their 19-digit nanosecond times."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from incidentkit import FIXTURES as SHARED_FIXTURES

from tinysdlc_nb.errors import PayloadError
from tinysdlc_nb.incidents.adapters import opsgenie
from tinysdlc_nb.incidents.model import DEFAULT_SEVERITY_MAP, ActorKind, AdapterContext, Event

FIXTURES = SHARED_FIXTURES / "alerts" / "opsgenie"
RECEIVED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CONTEXT = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP, received_at=RECEIVED_AT)

ACKNOWLEDGED_ALERT = "052652ac-5d1c-464a-812a-7dd18bbfba8c"

# Per fixture file: event, occurred_at in UTC, incident key and dedup key.
EXPECTED = {
    "create.json": (Event.FIRING, "2017-08-14T11:25:56.288000+00:00",
                    "ec03dad6-62c8-4c94-b38b-d88f398e900f",
                    "opsgenie:ec03dad6-62c8-4c94-b38b-d88f398e900f:Create:1502709956288000110"),
    "acknowledge.json": (Event.ACKNOWLEDGED, "2015-01-05T10:03:44.764002+00:00",
                         ACKNOWLEDGED_ALERT,
                         f"opsgenie:{ACKNOWLEDGED_ALERT}:Acknowledge:1420452224764002246"),
    "addnote.json": (Event.NOTE, "2015-01-05T10:04:35.002000+00:00", ACKNOWLEDGED_ALERT,
                     f"opsgenie:{ACKNOWLEDGED_ALERT}:AddNote:1420452275002000962"),
    "close.json": (Event.RESOLVED, "2015-01-05T10:06:14.669001+00:00", ACKNOWLEDGED_ALERT,
                   f"opsgenie:{ACKNOWLEDGED_ALERT}:Close:1420452374669001603"),
    "escalate.json": (Event.ESCALATED, "2026-03-01T12:00:00+00:00",
                      "7ba97e3a-d328-4b5e-8f9a-39e945a3869a", None),
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse_one(payload: dict, context: AdapterContext = CONTEXT):
    signals = opsgenie.parse(payload, context)
    assert len(signals) == 1
    return signals[0]


def test_every_fixture_has_expectations():
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.name)
def test_fixture_parses(path):
    payload = json.loads(path.read_text(encoding="utf-8"))

    signal = parse_one(payload)

    event, occurred_at, incident_key, dedup_key = EXPECTED[path.name]
    assert signal.event is event
    assert signal.occurred_at.isoformat() == occurred_at
    assert signal.incident_key == incident_key
    if dedup_key is not None:
        assert signal.dedup_key == dedup_key
    assert signal.source == "opsgenie"
    assert signal.alert_key is None


def test_nanosecond_epoch_read_exactly():
    signal = parse_one(load("close.json"))

    # As a double, 1420452374669001603 ns rounds to ...669002 us. Read as an integer, it
    # is ...669001 us.
    assert signal.occurred_at == dt.datetime(2015, 1, 5, 10, 6, 14, 669001, tzinfo=dt.UTC)
    assert signal.occurred_at.microsecond == 669001


def test_update_time_wins_over_creation():
    signal = parse_one(load("acknowledge.json"))

    assert signal.occurred_at == dt.datetime(2015, 1, 5, 10, 3, 44, 764002, tzinfo=dt.UTC)
    assert signal.started_at == dt.datetime(2015, 1, 5, 10, 3, 11, 104000, tzinfo=dt.UTC)


def test_creation_time_without_update_time():
    payload = load("acknowledge.json")
    del payload["alert"]["updatedAt"]

    signal = parse_one(payload)

    assert signal.occurred_at == dt.datetime(2015, 1, 5, 10, 3, 11, 104000, tzinfo=dt.UTC)
    assert signal.dedup_key == f"opsgenie:{ACKNOWLEDGED_ALERT}:Acknowledge:1420452191104"
    assert "time_estimated" not in signal.details


def test_escalation_without_times_estimated():
    signal = parse_one(load("escalate.json"))

    assert signal.occurred_at == RECEIVED_AT
    assert signal.details["time_estimated"] is True
    assert signal.started_at is None
    assert signal.dedup_key.startswith("opsgenie:7ba97e3a-d328-4b5e-8f9a-39e945a3869a:"
                                       "Escalate:sha256-")


def test_escalation_key_stable_across_deliveries():
    later = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP,
                           received_at=RECEIVED_AT + dt.timedelta(minutes=3))

    first = parse_one(load("escalate.json"))
    second = parse_one(load("escalate.json"), later)

    assert first.dedup_key == second.dedup_key
    assert second.occurred_at == RECEIVED_AT + dt.timedelta(minutes=3)


def test_repeated_escalation_is_new():
    payload = load("escalate.json")
    repeat = copy.deepcopy(payload)
    repeat["repeatCount"] = 1

    first = parse_one(payload)
    second = parse_one(repeat)

    assert first.dedup_key != second.dedup_key


def test_escalation_details():
    signal = parse_one(load("escalate.json"))

    assert signal.details["escalationName"] == "test_esc"
    assert signal.details["escalation_notify"] == "test@ifountain.com"
    assert signal.actor == ""
    assert signal.actor_kind is ActorKind.SYSTEM


def test_note_text_is_description():
    signal = parse_one(load("addnote.json"))

    assert signal.event is Event.NOTE
    assert signal.description == "note to test alert"


def test_create_fields():
    signal = parse_one(load("create.json"))

    assert signal.title == "another alert"
    assert signal.service == "Server"
    assert signal.details["tags"] == ["vip"]
    assert signal.details["alias"] == "alert-alias"
    assert signal.details["integrationName"] == "Webhook"


def test_numeric_priority_mapped():
    signal = parse_one(load("create.json"))

    # Opsgenie's P3 is the middle of its five priorities, P2 on this tool's scale.
    assert signal.severity == "P2"


@pytest.mark.parametrize(("priority", "severity"), [("P1", "P0"), ("P2", "P1"), (5, "P3"),
                                                    ("4", "P3")])
def test_priority_spellings(priority, severity):
    payload = load("create.json")
    payload["alert"]["priority"] = priority

    assert parse_one(payload).severity == severity


def test_no_priority_no_severity():
    signal = parse_one(load("close.json"))

    assert signal.severity is None


def test_user_is_human():
    signal = parse_one(load("acknowledge.json"))

    assert signal.actor == "fili@ifountain.com"
    assert signal.actor_kind is ActorKind.HUMAN


@pytest.mark.parametrize("username", ["System", "Alert API", "Integration1",
                                      "Datadog Integration"])
def test_system_users_are_system(username):
    payload = load("close.json")
    payload["alert"]["username"] = username

    signal = parse_one(payload)

    assert signal.actor == username
    assert signal.actor_kind is ActorKind.SYSTEM


def test_source_name_when_no_username():
    payload = load("create.json")
    del payload["alert"]["username"]

    signal = parse_one(payload)

    assert signal.actor == "web"
    assert signal.actor_kind is ActorKind.HUMAN


@pytest.mark.parametrize(("action", "event"), [
    ("UnAcknowledge", Event.UNACKNOWLEDGED), ("AssignOwnership", Event.ASSIGNED),
    ("UpdatePriority", Event.SEVERITY), ("AddTags", Event.NOTE), ("Delete", Event.NOTE),
])
def test_other_actions(action, event):
    payload = load("acknowledge.json")
    payload["action"] = action

    signal = parse_one(payload)

    assert signal.event is event
    assert signal.dedup_key == f"opsgenie:{ACKNOWLEDGED_ALERT}:{action}:1420452224764002246"


def test_same_payload_twice_same_key():
    payload = load("create.json")

    assert parse_one(payload).dedup_key == parse_one(copy.deepcopy(payload)).dedup_key


def test_actions_on_one_alert_differ():
    keys = {parse_one(load(name)).dedup_key
            for name in ("acknowledge.json", "addnote.json", "close.json")}

    assert len(keys) == 3


def test_missing_action_rejected():
    payload = load("create.json")
    del payload["action"]

    with pytest.raises(PayloadError, match="opsgenie payload: action is missing; expected an "
                                           "alert action such as Create or Close"):
        opsgenie.parse(payload, CONTEXT)


def test_missing_alert_id_rejected():
    payload = load("escalate.json")
    payload["alert"] = {}

    with pytest.raises(PayloadError, match="opsgenie payload: alert.alertId is missing"):
        opsgenie.parse(payload, CONTEXT)


def test_unreadable_update_time_rejected():
    payload = load("close.json")
    payload["alert"]["updatedAt"] = "yesterday"

    with pytest.raises(PayloadError, match="alert.updatedAt 'yesterday' is not a valid time"):
        opsgenie.parse(payload, CONTEXT)
