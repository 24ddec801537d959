"""The grafana adapter on real Grafana 9 and 11 unified alerting webhook bodies."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from incidentkit import FIXTURES as SHARED_FIXTURES

from tinysdlc_nb.errors import PayloadError
from tinysdlc_nb.incidents.adapters import alertmanager, grafana
from tinysdlc_nb.incidents.model import DEFAULT_SEVERITY_MAP, AdapterContext, Event

FIXTURES = SHARED_FIXTURES / "alerts" / "grafana"
RECEIVED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CONTEXT = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP, received_at=RECEIVED_AT)

FIRING, RESOLVED = Event.FIRING, Event.RESOLVED
GROUP = 'Webhook test:{}/{test="true"}:{}'

# Per fixture file: (event, occurred_at in UTC, alert_key) of each alert, firing alerts
# first and otherwise in payload order.
EXPECTED = {
    "alert-9-mixed.json": [
        (FIRING, "2022-06-17T01:03:00.782137+00:00", "6f9cd313db421ef1"),
        (RESOLVED, "2022-06-17T01:08:28.652747+00:00", "aaafafe0953f0962"),
        (RESOLVED, "2022-06-17T01:08:28.652747+00:00", "fb31814ac93dbe7d"),
    ],
    "alert-9-multiple.json": [
        (FIRING, "2022-06-17T01:11:00.782137+00:00", "aaafafe0953f0962"),
        (FIRING, "2022-06-17T01:11:00.782137+00:00", "fb31814ac93dbe7d"),
        (FIRING, "2022-06-17T01:03:00.782137+00:00", "6f9cd313db421ef1"),
    ],
    "alert-9-resolved.json": [
        (RESOLVED, "2022-06-17T00:51:24.067337+00:00", "d8a21484c9c25a60"),
    ],
    "alert_values_v11.json": [
        (FIRING, "2024-03-01T02:09:00+00:00", "e6349a25f5ef0e9e"),
    ],
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_every_fixture_has_expectations():
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.name)
def test_fixture_parses(path):
    payload = json.loads(path.read_text(encoding="utf-8"))

    signals = grafana.parse(payload, CONTEXT)

    got = [(signal.event, signal.occurred_at.isoformat(), signal.alert_key) for signal in signals]
    assert got == EXPECTED[path.name]
    assert {signal.source for signal in signals} == {"grafana"}
    assert all(signal.dedup_key.startswith("grafana:") for signal in signals)


def test_mixed_statuses_per_alert():
    signals = grafana.parse(load("alert-9-mixed.json"), CONTEXT)

    assert sorted(signal.event.value for signal in signals) == ["firing", "resolved",
                                                                 "resolved"]
    assert {signal.incident_key for signal in signals} == {GROUP}
    assert signals[0].dedup_key == (f"grafana:{GROUP}:6f9cd313db421ef1:"
                                    f"2022-06-17T01:03:00.782137Z:firing")


def test_mixed_firing_alert_comes_first():
    signals = grafana.parse(load("alert-9-mixed.json"), CONTEXT)

    # The payload lists the firing alert last. Applied in that order, the two resolved
    # alerts would resolve the incident although one of its alerts still fires.
    assert [signal.event for signal in signals] == [FIRING, RESOLVED, RESOLVED]
    assert [signal.alert_key for signal in signals[1:]] == ["aaafafe0953f0962",
                                                            "fb31814ac93dbe7d"]


def test_mixed_resolution_matches_earlier_firing():
    firing = grafana.parse(load("alert-9-multiple.json"), CONTEXT)
    mixed = grafana.parse(load("alert-9-mixed.json"), CONTEXT)

    # The still-firing alert has the same startsAt in both notifications.
    assert mixed[0].dedup_key == firing[2].dedup_key
    # The resolved alerts started at 01:04, an occurrence before the one firing at 01:11.
    assert mixed[1].alert_key == firing[0].alert_key
    assert mixed[1].dedup_key != firing[0].dedup_key


def test_no_value_summary_skipped_for_title():
    signal = grafana.parse(load("alert-9-resolved.json"), CONTEXT)[0]

    assert signal.title == "Test alert"
    assert signal.description.startswith("This is a summary field, failure on <no value>\n")


def test_title_from_first_alert_without_common_name():
    signals = grafana.parse(load("alert-9-mixed.json"), CONTEXT)

    assert {signal.title for signal in signals} == {"Test alert"}


def test_title_from_common_summary():
    signal = grafana.parse(load("alert_values_v11.json"), CONTEXT)[0]

    assert signal.title == "High memory usage"
    assert signal.incident_key == ('Debug webhook:{}/{debug="true"}:'
                                   '{alertname="Memory (copy)", grafana_folder="device"}')


def test_grafana_extras_in_details():
    signal = grafana.parse(load("alert_values_v11.json"), CONTEXT)[0]

    assert signal.details["values"] == {"A": 2473545728, "B": 0, "C": 1, "minute": 9}
    assert signal.details["imageURL"] == "https://grafana.com/assets/img/blog/mixed_styles.png"
    assert signal.details["panelURL"] == ("https://play.grafana.org/d/"
                                          "ece9fb32-7f71-4be9-bd94-2f23608ae5b9?orgId=1"
                                          "&viewPanel=2")
    assert "&matcher=debug%3Dtrue&" in signal.details["silenceURL"]
    assert signal.details["valueString"].startswith("[ var='A' labels={instance=")


def test_notification_fields_in_details():
    signal = grafana.parse(load("alert-9-resolved.json"), CONTEXT)[0]

    notification = signal.details["notification"]
    assert notification["orgId"] == 1
    assert notification["state"] == "ok"
    assert notification["title"] == "[RESOLVED]  (Test alert true)"
    assert notification["message"].startswith("**Resolved**\n")


def test_empty_grafana_urls_left_out():
    signal = grafana.parse(load("alert-9-mixed.json"), CONTEXT)[1]

    assert "dashboardURL" not in signal.details
    assert "panelURL" not in signal.details
    assert signal.details["silenceURL"].startswith("https://grafana.example.com/alerting/")


def test_markdown_kept_as_is():
    signal = grafana.parse(load("alert-9-multiple.json"), CONTEXT)[2]

    assert signal.description == "Testing **another** failing alert\nDescription **here**"


def test_severity_default_without_label():
    signals = grafana.parse(load("alert-9-multiple.json"), CONTEXT)

    assert {signal.severity for signal in signals} == {"P2"}


def test_severity_label_mapped_for_grafana():
    payload = load("alert_values_v11.json")
    payload["alerts"][0]["labels"]["severity"] = "critical"
    context = AdapterContext(severity_map={**DEFAULT_SEVERITY_MAP, "grafana:critical": "P1"},
                             received_at=RECEIVED_AT)

    signal = grafana.parse(payload, context)[0]

    assert signal.severity == "P1"


def test_alertmanager_keys_stay_separate():
    payload = load("alert-9-multiple.json")

    from_grafana = grafana.parse(payload, CONTEXT)[0]
    from_alertmanager = alertmanager.parse(payload, CONTEXT)[0]

    assert from_grafana.dedup_key.removeprefix("grafana:") == (
        from_alertmanager.dedup_key.removeprefix("alertmanager:"))
    assert "silenceURL" not in from_alertmanager.details


def test_repeat_notification_same_keys():
    payload = load("alert-9-multiple.json")
    repeat = copy.deepcopy(payload)
    repeat["truncatedAlerts"] = 2
    repeat["title"] = "[FIRING:3]  (true) again"

    first = [signal.dedup_key for signal in grafana.parse(payload, CONTEXT)]
    second = [signal.dedup_key for signal in grafana.parse(repeat, CONTEXT)]

    assert first == second


def test_missing_alerts_rejected():
    payload = load("alert-9-resolved.json")
    del payload["alerts"]

    with pytest.raises(PayloadError, match="grafana payload: alerts is missing"):
        grafana.parse(payload, CONTEXT)


def test_unreadable_ends_at_rejected():
    payload = load("alert-9-mixed.json")
    payload["alerts"][0]["endsAt"] = "2022-06-17 01:08"

    with pytest.raises(PayloadError, match=r"grafana payload: alerts\[0\]\.endsAt "
                                           r"'2022-06-17 01:08' is not a valid time"):
        grafana.parse(payload, CONTEXT)
