"""The kubernetes adapter on ``kubectl get events -o json`` output written for these tests.

No public fixture of that output was available, so EVENT_LIST follows the core/v1 Event
fields (involvedObject, reason, message, source, firstTimestamp, lastTimestamp, count,
type, eventTime, series, reportingComponent, reportingInstance) as kubectl prints them.
"""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from tinysdlc_nb.errors import PayloadError
from tinysdlc_nb.incidents.adapters import kubernetes
from tinysdlc_nb.incidents.model import DEFAULT_SEVERITY_MAP, ActorKind, AdapterContext, Event

RECEIVED_AT = dt.datetime(2026, 1, 2, 4, 0, tzinfo=dt.UTC)
CONTEXT = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP, received_at=RECEIVED_AT)

POD = "kubernetes:shop/Pod/checkout-7d9c5b6f4-x2x8p"

EVENT_LIST = {
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "count": 7,
            "eventTime": None,
            "firstTimestamp": "2026-01-02T03:01:12Z",
            "involvedObject": {
                "apiVersion": "v1",
                "fieldPath": "spec.containers{checkout}",
                "kind": "Pod",
                "name": "checkout-7d9c5b6f4-x2x8p",
                "namespace": "shop",
                "resourceVersion": "918273",
                "uid": "5f0c2d7e-8a41-4c1b-9f3e-2b7d6a1c0e94",
            },
            "kind": "Event",
            "lastTimestamp": "2026-01-02T03:09:40Z",
            "message": "Back-off restarting failed container checkout in pod "
                       "checkout-7d9c5b6f4-x2x8p_shop(5f0c2d7e-8a41-4c1b-9f3e-2b7d6a1c0e94)",
            "metadata": {
                "creationTimestamp": "2026-01-02T03:01:12Z",
                "name": "checkout-7d9c5b6f4-x2x8p.181a2b3c4d5e6f70",
                "namespace": "shop",
                "resourceVersion": "918655",
                "uid": "0b6f3c1a-2d4e-4f5a-8b9c-7e6d5c4b3a21",
            },
            "reason": "BackOff",
            "reportingComponent": "kubelet",
            "reportingInstance": "node-b-3",
            "source": {"component": "kubelet", "host": "node-b-3"},
            "type": "Warning",
        },
        {
            "apiVersion": "v1",
            "count": 3,
            "eventTime": None,
            "firstTimestamp": "2026-01-02T03:00:58Z",
            "involvedObject": {
                "apiVersion": "v1",
                "fieldPath": "spec.containers{checkout}",
                "kind": "Pod",
                "name": "checkout-7d9c5b6f4-x2x8p",
                "namespace": "shop",
                "resourceVersion": "918273",
                "uid": "5f0c2d7e-8a41-4c1b-9f3e-2b7d6a1c0e94",
            },
            "kind": "Event",
            "lastTimestamp": "2026-01-02T03:04:30Z",
            "message": 'Container image "registry.example.com/shop/checkout:2.4.1" already '
                       "present on machine",
            "metadata": {
                "creationTimestamp": "2026-01-02T03:00:58Z",
                "name": "checkout-7d9c5b6f4-x2x8p.181a2b3b1f2e3d40",
                "namespace": "shop",
                "resourceVersion": "918402",
                "uid": "7c1d9e2f-3a4b-4c5d-9e8f-1a2b3c4d5e6f",
            },
            "reason": "Pulled",
            "reportingComponent": "kubelet",
            "reportingInstance": "node-b-3",
            "source": {"component": "kubelet", "host": "node-b-3"},
            "type": "Normal",
        },
        {
            "action": "Scheduling",
            "apiVersion": "v1",
            "eventTime": "2026-01-02T03:04:05.123456Z",
            "firstTimestamp": None,
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "report-worker-0",
                "namespace": "batch",
                "resourceVersion": "77120",
                "uid": "c3a1e2d4-5b6f-4a7c-8d9e-0f1a2b3c4d5e",
            },
            "kind": "Event",
            "lastTimestamp": None,
            "message": "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes "
                       "are available: 3 No preemption victims found for incoming pod.",
            "metadata": {
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "name": "report-worker-0.181a2b40aa11bb22",
                "namespace": "batch",
                "resourceVersion": "77131",
                "uid": "e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8",
            },
            "reason": "FailedScheduling",
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-control-plane-1",
            "source": {},
            "type": "Warning",
        },
        {
            "apiVersion": "v1",
            "count": 1,
            "eventTime": None,
            "firstTimestamp": "2026-01-02T02:58:00Z",
            "involvedObject": {"kind": "Node", "name": "node-b-3", "uid": "node-b-3"},
            "kind": "Event",
            "lastTimestamp": "2026-01-02T02:58:00Z",
            "message": "Node node-b-3 status is now: NodeHasDiskPressure",
            "metadata": {
                "creationTimestamp": "2026-01-02T02:58:00Z",
                "name": "node-b-3.181a2ae90c0d0e0f",
                "namespace": "default",
                "resourceVersion": "917001",
                "uid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            },
            "reason": "NodeHasDiskPressure",
            "reportingComponent": "kubelet",
            "reportingInstance": "node-b-3",
            "source": {"component": "kubelet", "host": "node-b-3"},
            "type": "Warning",
        },
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""},
}


def events() -> dict:
    return copy.deepcopy(EVENT_LIST)


def test_list_parses_into_signals():
    signals = kubernetes.parse(events(), CONTEXT)

    got = [(signal.event, signal.incident_key, signal.alert_key, signal.occurred_at.isoformat())
           for signal in signals]
    assert got == [
        (Event.FIRING, POD, "BackOff", "2026-01-02T03:01:12+00:00"),
        (Event.NOTE, POD, "Pulled", "2026-01-02T03:00:58+00:00"),
        (Event.FIRING, "kubernetes:batch/Pod/report-worker-0", "FailedScheduling",
         "2026-01-02T03:04:05.123456+00:00"),
        (Event.FIRING, "kubernetes:default/Node/node-b-3", "NodeHasDiskPressure",
         "2026-01-02T02:58:00+00:00"),
    ]
    assert {signal.source for signal in signals} == {"kubernetes"}


def test_warning_fields():
    signal = kubernetes.parse(events(), CONTEXT)[0]

    assert signal.title == "Pod shop/checkout-7d9c5b6f4-x2x8p: BackOff"
    assert signal.description.startswith("Back-off restarting failed container checkout")
    assert signal.service == "shop"
    assert signal.actor == "kubelet"
    assert signal.actor_kind is ActorKind.SYSTEM
    assert signal.started_at == signal.occurred_at
    assert signal.details["count"] == 7
    assert signal.details["last_timestamp"] == "2026-01-02T03:09:40Z"
    assert signal.details["host"] == "node-b-3"
    assert signal.details["involved_object"]["fieldPath"] == "spec.containers{checkout}"


def test_normal_event_is_note():
    signal = kubernetes.parse(events(), CONTEXT)[1]

    assert signal.event is Event.NOTE
    assert signal.severity is None
    assert signal.started_at is None


def test_warning_default_severity():
    signals = kubernetes.parse(events(), CONTEXT)

    assert [signal.severity for signal in signals] == ["P2", None, "P2", "P2"]


def test_reason_severity_from_map():
    context = AdapterContext(severity_map={**DEFAULT_SEVERITY_MAP, "kubernetes:backoff": "P1"},
                             received_at=RECEIVED_AT)

    signals = kubernetes.parse(events(), context)

    assert signals[0].severity == "P1"
    assert signals[2].severity == "P2"


def test_null_first_timestamp_uses_event_time():
    signal = kubernetes.parse(events(), CONTEXT)[2]

    assert signal.occurred_at == dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    assert signal.details["time_field"] == "eventTime"
    assert signal.actor == "default-scheduler"


def test_last_timestamp_when_no_first_or_event_time():
    payload = events()
    payload["items"][0]["firstTimestamp"] = None

    signal = kubernetes.parse(payload, CONTEXT)[0]

    assert signal.occurred_at == dt.datetime(2026, 1, 2, 3, 9, 40, tzinfo=dt.UTC)
    assert signal.details["time_field"] == "lastTimestamp"


def test_creation_time_as_last_resort():
    payload = events()
    item = payload["items"][0]
    item["firstTimestamp"] = item["lastTimestamp"] = None

    signal = kubernetes.parse(payload, CONTEXT)[0]

    assert signal.occurred_at == dt.datetime(2026, 1, 2, 3, 1, 12, tzinfo=dt.UTC)
    assert signal.details["time_field"] == "metadata.creationTimestamp"


def test_cluster_object_uses_event_namespace():
    signal = kubernetes.parse(events(), CONTEXT)[3]

    assert signal.incident_key == "kubernetes:default/Node/node-b-3"
    assert signal.title == "Node default/node-b-3: NodeHasDiskPressure"


def test_dedup_key_from_uid_and_first_time():
    signals = kubernetes.parse(events(), CONTEXT)

    assert signals[0].dedup_key == ("kubernetes:0b6f3c1a-2d4e-4f5a-8b9c-7e6d5c4b3a21:"
                                    "2026-01-02T03:01:12+00:00")
    assert signals[2].dedup_key == ("kubernetes:e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8:"
                                    "2026-01-02T03:04:05.123456+00:00")


def test_same_list_twice_same_keys():
    first = [signal.dedup_key for signal in kubernetes.parse(events(), CONTEXT)]
    second = [signal.dedup_key for signal in kubernetes.parse(events(), CONTEXT)]

    assert first == second
    assert len(set(first)) == 4


def test_repeat_of_event_is_same_occurrence():
    later = events()
    later["items"][0]["count"] = 8
    later["items"][0]["lastTimestamp"] = "2026-01-02T03:14:52Z"

    before = kubernetes.parse(events(), CONTEXT)[0]
    after = kubernetes.parse(later, CONTEXT)[0]

    # Polling again while the event repeats must not add a row per poll.
    assert after.dedup_key == before.dedup_key
    assert after.details["count"] == 8
    assert after.occurred_at == before.occurred_at


def test_normal_event_never_opens_incident():
    signals = kubernetes.parse(events(), CONTEXT)

    assert [signal.opens_incident for signal in signals] == [
        signal.event is Event.FIRING for signal in signals]


def test_name_identifies_event_without_uid():
    payload = events()
    del payload["items"][0]["metadata"]["uid"]

    signal = kubernetes.parse(payload, CONTEXT)[0]

    assert signal.dedup_key == ("kubernetes:shop/checkout-7d9c5b6f4-x2x8p.181a2b3c4d5e6f70:"
                                "2026-01-02T03:01:12+00:00")


def test_single_event_object():
    event = events()["items"][0]

    signals = kubernetes.parse(event, CONTEXT)

    assert len(signals) == 1
    assert signals[0].incident_key == POD
    assert signals[0].event is Event.FIRING


def test_event_list_kind_accepted():
    payload = events()
    payload["kind"] = "EventList"

    assert len(kubernetes.parse(payload, CONTEXT)) == 4


def test_empty_list_gives_nothing():
    assert kubernetes.parse({"apiVersion": "v1", "items": [], "kind": "List",
                             "metadata": {"resourceVersion": ""}}, CONTEXT) == []


def test_list_without_items_rejected():
    with pytest.raises(PayloadError, match="kubernetes payload: items is missing; expected a "
                                           "list of Event objects"):
        kubernetes.parse({"apiVersion": "v1", "kind": "List"}, CONTEXT)


def test_other_kind_rejected():
    payload = events()
    payload["items"][1]["kind"] = "Pod"

    with pytest.raises(PayloadError, match=r"items\[1\]\.kind is 'Pod'; expected an Event"):
        kubernetes.parse(payload, CONTEXT)


def test_missing_involved_object_rejected():
    payload = events()
    del payload["items"][2]["involvedObject"]

    with pytest.raises(PayloadError, match=r"kubernetes payload: items\[2\]\.involvedObject "
                                           r"is missing; expected the object the event is about"):
        kubernetes.parse(payload, CONTEXT)


def test_event_without_any_time_rejected():
    payload = events()
    item = payload["items"][0]
    item["firstTimestamp"] = item["lastTimestamp"] = None
    del item["metadata"]["creationTimestamp"]

    with pytest.raises(PayloadError, match=r"items\[0\]\.firstTimestamp is missing and so are "
                                           r"eventTime, lastTimestamp"):
        kubernetes.parse(payload, CONTEXT)


def test_unreadable_time_rejected():
    payload = events()
    payload["items"][0]["firstTimestamp"] = "2026-01-02 03:01"

    with pytest.raises(PayloadError, match=r"items\[0\]\.firstTimestamp '2026-01-02 03:01' is "
                                           r"not a valid time"):
        kubernetes.parse(payload, CONTEXT)
