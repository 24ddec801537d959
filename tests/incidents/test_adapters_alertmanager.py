"""The alertmanager adapter on real webhook bodies and on edited copies of them."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json

import pytest
from incidentkit import FIXTURES as SHARED_FIXTURES

from tinysdlc_nb.errors import PayloadError
from tinysdlc_nb.incidents.adapters import alertmanager
from tinysdlc_nb.incidents.model import DEFAULT_SEVERITY_MAP, AdapterContext, Event

FIXTURES = SHARED_FIXTURES / "alerts" / "alertmanager"
RECEIVED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CONTEXT = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP, received_at=RECEIVED_AT)

FIRING, RESOLVED = Event.FIRING, Event.RESOLVED

# Per fixture file: (event, occurred_at in UTC, alert_key) of each alert, in payload order.
EXPECTED = {
    "alertmanager-exec-success.json": [
        (FIRING, "1970-01-01T00:00:00+00:00", "4ea129fd903f0e45"),
    ],
    "msteams-prom_post_request.json": [
        (FIRING, "2018-03-07T11:33:21.873077+00:00", None),
    ],
    "prom2teams-all_ok_multiple.json": [
        (RESOLVED, "2017-05-09T07:08:37.818000+00:00", None),
        (RESOLVED, "2017-05-09T07:08:37.818270+00:00", None),
    ],
    "prometheus_bot-production_example.json": [
        (FIRING, "2017-01-26T13:31:54.865000+00:00", None),
        (FIRING, "2017-01-26T13:14:46.804000+00:00", None),
        (FIRING, "2017-01-26T13:41:06.811000+00:00", None),
        (FIRING, "2017-01-26T13:29:09.806000+00:00", None),
        (FIRING, "2017-01-26T13:31:24.806000+00:00", None),
        (FIRING, "2017-01-26T13:30:54.806000+00:00", None),
        (FIRING, "2017-01-26T13:33:51.876000+00:00", None),
        (FIRING, "2017-01-26T13:30:00.811000+00:00", None),
        (FIRING, "2017-01-26T13:30:00.811000+00:00", None),
        (FIRING, "2017-01-26T13:30:00.811000+00:00", None),
    ],
    "zulip-alert.json": [
        (FIRING, "2020-02-06T00:17:58.432911+00:00", "a1bc48475b20e73d"),
        (FIRING, "2020-02-06T00:17:58.432911+00:00", "c2ea85182f28cbd9"),
    ],
    "zulip-single_alert.json": [
        (RESOLVED, "2026-03-01T12:00:00+00:00", "a1bc48475b20e73d"),
    ],
    "zulip-single_alert_no_url.json": [
        (FIRING, "2020-02-06T00:17:58.432911+00:00", "a1bc48475b20e73d"),
    ],
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def labels_hash(labels: dict) -> str:
    """The documented fallback fingerprint: SHA-256 of the sorted labels as JSON, 16 digits."""
    canonical = json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def test_every_fixture_has_expectations():
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.name)
def test_fixture_parses(path):
    payload = json.loads(path.read_text(encoding="utf-8"))

    signals = alertmanager.parse(payload, CONTEXT)

    got = [(signal.event, signal.occurred_at.isoformat()) for signal in signals]
    assert got == [(event, when) for event, when, _ in EXPECTED[path.name]]
    for signal, (_, _, alert_key) in zip(signals, EXPECTED[path.name], strict=True):
        assert signal.source == "alertmanager"
        assert signal.dedup_key.startswith("alertmanager:")
        assert signal.dedup_key.endswith(f":{signal.event.value}")
        if alert_key is not None:
            assert signal.alert_key == alert_key


def test_nanosecond_fraction_truncated():
    signal = alertmanager.parse(load("zulip-alert.json"), CONTEXT)[0]

    assert signal.occurred_at == dt.datetime(2020, 2, 6, 0, 17, 58, 432911, tzinfo=dt.UTC)
    assert signal.dedup_key == ("alertmanager:ops-zulip:{}/{}:{}:a1bc48475b20e73d:"
                                "2020-02-06T00:17:58.432911Z:firing")


def test_negative_offset_converted_to_utc():
    signal = alertmanager.parse(load("msteams-prom_post_request.json"), CONTEXT)[0]

    assert signal.occurred_at == dt.datetime(2018, 3, 7, 11, 33, 21, 873077, tzinfo=dt.UTC)
    assert signal.occurred_at.utcoffset() == dt.timedelta(0)


def test_zero_ends_at_is_firing():
    signals = alertmanager.parse(load("zulip-alert.json"), CONTEXT)

    assert [signal.event for signal in signals] == [FIRING, FIRING]
    assert signals[0].details["ends_at"] is None


def test_zero_ends_at_without_status_is_firing():
    payload = load("zulip-alert.json")
    del payload["status"]
    for alert in payload["alerts"]:
        del alert["status"]

    signals = alertmanager.parse(payload, CONTEXT)

    assert [signal.event for signal in signals] == [FIRING, FIRING]


def test_past_ends_at_without_status_is_resolved():
    payload = load("prom2teams-all_ok_multiple.json")
    del payload["status"]
    for alert in payload["alerts"]:
        del alert["status"]

    signals = alertmanager.parse(payload, CONTEXT)

    assert [signal.event for signal in signals] == [RESOLVED, RESOLVED]
    assert signals[0].occurred_at == dt.datetime(2017, 5, 9, 7, 8, 37, 818000, tzinfo=dt.UTC)


def test_future_ends_at_without_status_is_firing():
    payload = load("prom2teams-all_ok_multiple.json")
    del payload["status"]
    alert = payload["alerts"][0]
    del alert["status"]
    alert["endsAt"] = "2026-03-01T12:05:00Z"

    signal = alertmanager.parse(payload, CONTEXT)[0]

    assert signal.event is FIRING
    assert signal.occurred_at == dt.datetime(2017, 5, 9, 7, 1, 37, 803000, tzinfo=dt.UTC)


def test_resolved_with_zero_ends_at_estimates_end():
    signal = alertmanager.parse(load("zulip-single_alert.json"), CONTEXT)[0]

    assert signal.event is RESOLVED
    assert signal.occurred_at == RECEIVED_AT
    assert signal.details["end_time_estimated"] is True
    assert signal.dedup_key == ("alertmanager:ops-zulip:{}/{}:{}:a1bc48475b20e73d:"
                                "2020-02-06T00:17:58.432911Z:resolved")


def test_signals_carry_alert_start():
    firing = alertmanager.parse(load("zulip-alert.json"), CONTEXT)[0]
    resolved = alertmanager.parse(load("prom2teams-all_ok_multiple.json"), CONTEXT)[0]

    assert firing.started_at == firing.occurred_at
    assert resolved.started_at == dt.datetime(2017, 5, 9, 7, 1, 37, 803000, tzinfo=dt.UTC)


def test_real_ends_at_not_estimated():
    signal = alertmanager.parse(load("prom2teams-all_ok_multiple.json"), CONTEXT)[0]

    assert "end_time_estimated" not in signal.details
    assert signal.details["ends_at"] == "2017-05-09T07:08:37.818000Z"


def test_payload_status_used_when_alert_has_none():
    signals = alertmanager.parse(load("prometheus_bot-production_example.json"), CONTEXT)

    assert {signal.event for signal in signals} == {FIRING}


def test_numeric_group_key_zero():
    signals = alertmanager.parse(load("prometheus_bot-production_example.json"), CONTEXT)

    assert {signal.incident_key for signal in signals} == {"telegram_bot:0"}
    assert len({signal.alert_key for signal in signals}) == 10


def test_group_key_with_escaped_quotes():
    signal = alertmanager.parse(load("msteams-prom_post_request.json"), CONTEXT)[0]

    assert signal.incident_key == 'teams_proxy:{}:{alertname="high_memory_load"}'


def test_missing_fingerprint_hashed_from_labels():
    payload = load("msteams-prom_post_request.json")
    labels = payload["alerts"][0]["labels"]

    signal = alertmanager.parse(payload, CONTEXT)[0]

    assert signal.alert_key == labels_hash(labels)
    assert signal.alert_key == "ae308ab9ec2ef1a0"
    assert signal.details["fingerprint_computed"] is True


def test_missing_fingerprint_ignores_label_order():
    payload = load("msteams-prom_post_request.json")
    reordered = copy.deepcopy(payload)
    labels = reordered["alerts"][0]["labels"]
    reordered["alerts"][0]["labels"] = dict(reversed(list(labels.items())))

    first = alertmanager.parse(payload, CONTEXT)[0]
    second = alertmanager.parse(reordered, CONTEXT)[0]

    assert list(reordered["alerts"][0]["labels"]) != list(labels)
    assert second.alert_key == first.alert_key
    assert second.dedup_key == first.dedup_key


def test_missing_fingerprint_differs_per_labels():
    signals = alertmanager.parse(load("prom2teams-all_ok_multiple.json"), CONTEXT)

    assert signals[0].alert_key != signals[1].alert_key
    assert signals[0].alert_key == labels_hash(signals[0].details["labels"])


def test_identical_labels_keep_their_fingerprints():
    signals = alertmanager.parse(load("zulip-alert.json"), CONTEXT)

    assert signals[0].details["labels"] == signals[1].details["labels"]
    assert [signal.alert_key for signal in signals] == ["a1bc48475b20e73d", "c2ea85182f28cbd9"]
    assert signals[0].dedup_key != signals[1].dedup_key


def test_epoch_zero_starts_at():
    signal = alertmanager.parse(load("alertmanager-exec-success.json"), CONTEXT)[0]

    assert signal.occurred_at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert signal.dedup_key == "alertmanager::1:4ea129fd903f0e45:1970-01-01T00:00:00Z:firing"


def test_exec_payload_without_alertname():
    signal = alertmanager.parse(load("alertmanager-exec-success.json"), CONTEXT)[0]

    assert signal.incident_key == ":1"
    assert signal.title == '{Message="message"}'
    assert "generatorURL" not in signal.details


def test_no_group_fields_keys_by_alertname():
    signals = alertmanager.parse(load("prom2teams-all_ok_multiple.json"), CONTEXT)

    assert [signal.incident_key for signal in signals] == [
        'test_webhook:{alertname="DiskSpace"}', 'test_webhook:{alertname="DiskSpace"}']
    assert signals[0].title == "DiskSpace"


def test_group_labels_key_without_group_key():
    payload = load("msteams-prom_post_request.json")
    del payload["groupKey"]

    signal = alertmanager.parse(payload, CONTEXT)[0]

    assert signal.incident_key == 'teams_proxy:{alertname="high_memory_load"}'


def test_common_labels_key_without_group_labels():
    payload = load("prometheus_bot-production_example.json")
    del payload["groupKey"]
    payload["groupLabels"] = {}

    signals = alertmanager.parse(payload, CONTEXT)

    expected = 'telegram_bot:{scada_uuid="483b197c-7fe8-11e6-b772-acb57db47f23"}'
    assert {signal.incident_key for signal in signals} == {expected}


def test_receivers_do_not_merge():
    payload = load("zulip-alert.json")
    other = copy.deepcopy(payload)
    other["receiver"] = "ops-pager"

    first = alertmanager.parse(payload, CONTEXT)[0]
    second = alertmanager.parse(other, CONTEXT)[0]

    assert first.incident_key == "ops-zulip:{}/{}:{}"
    assert second.incident_key == "ops-pager:{}/{}:{}"
    assert first.dedup_key != second.dedup_key


def test_title_from_common_summary():
    signal = alertmanager.parse(load("zulip-alert.json"), CONTEXT)[0]

    assert signal.title == "High CPU core temperature"


def test_title_from_first_alertname_of_group():
    signals = alertmanager.parse(load("prometheus_bot-production_example.json"), CONTEXT)

    assert {signal.title for signal in signals} == {"LoadAverage_15MIN"}


def test_description_from_annotations():
    signals = alertmanager.parse(load("zulip-alert.json"), CONTEXT)

    assert signals[0].description == "High CPU core temperature\nCPU core temperature is 34.75C"
    assert signals[1].description == "High CPU core temperature\nCPU core temperature is 17.625C"


def test_service_from_job_then_instance():
    job = alertmanager.parse(load("msteams-prom_post_request.json"), CONTEXT)[0]
    instance = alertmanager.parse(load("prom2teams-all_ok_multiple.json"), CONTEXT)[0]
    neither = alertmanager.parse(load("zulip-alert.json"), CONTEXT)[0]

    assert job.service == "docker_nodes"
    assert instance.service == "cs30.evilcorp"
    assert neither.service == ""


def test_service_label_wins():
    payload = load("msteams-prom_post_request.json")
    payload["alerts"][0]["labels"]["service"] = "checkout"

    signal = alertmanager.parse(payload, CONTEXT)[0]

    assert signal.service == "checkout"


def test_severity_from_labels():
    disk = alertmanager.parse(load("prom2teams-all_ok_multiple.json"), CONTEXT)
    memory = alertmanager.parse(load("msteams-prom_post_request.json"), CONTEXT)[0]
    load_average = alertmanager.parse(load("prometheus_bot-production_example.json"), CONTEXT)
    unlabelled = alertmanager.parse(load("alertmanager-exec-success.json"), CONTEXT)[0]

    assert [signal.severity for signal in disk] == ["P1", "P0"]
    assert memory.severity == "P2"
    assert load_average[0].severity == "P0"
    assert load_average[1].severity == "P2"
    assert unlabelled.severity == "P2"


def test_details_keep_labels_and_url():
    signal = alertmanager.parse(load("prometheus_bot-production_example.json"), CONTEXT)[2]

    assert signal.details["labels"]["alertname"] == "CPU_Percentage_Worning"
    assert signal.details["annotations"]["name"] == "Heartbeat \u2764\ufe0f"
    assert signal.details["generatorURL"].endswith("%3E+60&g0.tab=0")


def test_no_generator_url_field():
    signal = alertmanager.parse(load("zulip-single_alert_no_url.json"), CONTEXT)[0]

    assert "generatorURL" not in signal.details
    assert signal.details["fingerprint"] == "a1bc48475b20e73d"


def test_same_payload_twice_same_keys():
    payload = load("prometheus_bot-production_example.json")

    first = [signal.dedup_key for signal in alertmanager.parse(payload, CONTEXT)]
    second = [signal.dedup_key for signal in alertmanager.parse(copy.deepcopy(payload), CONTEXT)]

    assert first == second
    assert len(set(first)) == 10


def test_repeat_notification_same_keys():
    payload = load("zulip-alert.json")
    repeat = copy.deepcopy(payload)
    repeat["truncatedAlerts"] = 0
    repeat["externalURL"] = "http://ops2:9093"
    repeat["alerts"].reverse()
    later = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP,
                           received_at=RECEIVED_AT + dt.timedelta(hours=4))

    first = {signal.dedup_key for signal in alertmanager.parse(payload, CONTEXT)}
    second = {signal.dedup_key for signal in alertmanager.parse(repeat, later)}

    assert first == second


def test_resolution_differs_from_firing():
    firing = alertmanager.parse(load("zulip-single_alert_no_url.json"), CONTEXT)[0]
    resolved = alertmanager.parse(load("zulip-single_alert.json"), CONTEXT)[0]

    assert firing.alert_key == resolved.alert_key
    assert firing.incident_key == resolved.incident_key
    assert firing.dedup_key != resolved.dedup_key


def test_refire_after_resolution_is_new():
    payload = load("zulip-single_alert_no_url.json")
    refire = copy.deepcopy(payload)
    refire["alerts"][0]["startsAt"] = "2020-02-06T01:00:00Z"

    first = alertmanager.parse(payload, CONTEXT)[0]
    second = alertmanager.parse(refire, CONTEXT)[0]

    assert second.alert_key == first.alert_key
    assert second.dedup_key != first.dedup_key


def test_text_payload_accepted():
    text = (FIXTURES / "alertmanager-exec-success.json").read_text(encoding="utf-8")

    signal = alertmanager.parse(text, CONTEXT)[0]

    assert signal.alert_key == "4ea129fd903f0e45"


def test_empty_alert_list_gives_nothing():
    payload = load("zulip-alert.json")
    payload["alerts"] = []

    assert alertmanager.parse(payload, CONTEXT) == []


@pytest.mark.parametrize("payload", [[], "[1, 2]", 7, None], ids=repr)
def test_non_object_rejected(payload):
    with pytest.raises(PayloadError, match="alertmanager payload is (a|null).*; "
                                           "expected a JSON object"):
        alertmanager.parse(payload, CONTEXT)


def test_invalid_json_text_rejected():
    with pytest.raises(PayloadError, match="alertmanager payload is not valid JSON"):
        alertmanager.parse('{"alerts": [', CONTEXT)


def test_missing_alerts_rejected():
    payload = load("zulip-alert.json")
    del payload["alerts"]

    with pytest.raises(PayloadError, match="alertmanager payload: alerts is missing; "
                                           "expected a list of alert objects"):
        alertmanager.parse(payload, CONTEXT)


def test_alerts_not_a_list_rejected():
    payload = load("zulip-alert.json")
    payload["alerts"] = {"status": "firing"}

    with pytest.raises(PayloadError, match="alerts is an object; expected a list"):
        alertmanager.parse(payload, CONTEXT)


def test_alert_not_an_object_rejected():
    payload = load("zulip-alert.json")
    payload["alerts"][1] = "firing"

    with pytest.raises(PayloadError, match=r"alerts\[1\] is not an object"):
        alertmanager.parse(payload, CONTEXT)


def test_unreadable_starts_at_rejected():
    payload = load("zulip-alert.json")
    payload["alerts"][1]["startsAt"] = "06/02/2020 00:17"

    with pytest.raises(PayloadError) as error:
        alertmanager.parse(payload, CONTEXT)

    assert "alerts[1].startsAt '06/02/2020 00:17' is not a valid time" in str(error.value)


def test_missing_starts_at_rejected():
    payload = load("zulip-alert.json")
    del payload["alerts"][0]["startsAt"]

    with pytest.raises(PayloadError, match=r"alerts\[0\]\.startsAt is missing"):
        alertmanager.parse(payload, CONTEXT)


def test_unreadable_ends_at_rejected():
    payload = load("prom2teams-all_ok_multiple.json")
    payload["alerts"][0]["endsAt"] = "soon"

    with pytest.raises(PayloadError, match=r"alerts\[0\]\.endsAt 'soon' is not a valid time"):
        alertmanager.parse(payload, CONTEXT)


def test_unknown_status_rejected():
    payload = load("zulip-alert.json")
    payload["alerts"][0]["status"] = "pending"

    with pytest.raises(PayloadError, match=r"alerts\[0\]\.status 'pending' is invalid; "
                                           r"expected firing or resolved"):
        alertmanager.parse(payload, CONTEXT)


def test_labels_not_an_object_rejected():
    payload = load("zulip-alert.json")
    payload["alerts"][0]["labels"] = ["alertname"]

    with pytest.raises(PayloadError, match=r"alerts\[0\]\.labels is a list; expected an object"):
        alertmanager.parse(payload, CONTEXT)
