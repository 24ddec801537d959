"""Every real fixture through `tinysdlc-nb ingest`: the incidents and rows a person reading
the payload expects, idempotent re-ingestion, stdin, and bad input that stores nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil

import pytest
from incidentkit import FIXTURES

FORMAT_OF_FOLDER = {
    "alertmanager": "alertmanager",
    "grafana": "grafana",
    "pagerduty": "pagerduty",
    "opsgenie": "opsgenie",
}

# Per fixture: (status, severity, detected_at, resolved_at, timeline kinds) of the one
# incident it opens, or None when it opens none (a success, a queued job).
EXPECTED = [
    (
        "alerts/alertmanager/alertmanager-exec-success.json",
        ("open", "P2", "1970-01-01T00:00:00Z", None, ["detected"]),
    ),
    (
        "alerts/alertmanager/msteams-prom_post_request.json",
        ("open", "P2", "2018-03-07T11:33:21.873077Z", None, ["detected"]),
    ),
    (
        "alerts/alertmanager/prom2teams-all_ok_multiple.json",
        (
            "resolved",
            "P0",
            "2017-05-09T07:01:37.803000Z",
            "2017-05-09T07:08:37.818270Z",
            ["detected", "escalated", "severity", "escalated", "alert_resolved",
             "alert_resolved", "resolved"],
        ),
    ),
    (
        "alerts/alertmanager/prometheus_bot-production_example.json",
        (
            "open",
            "P0",
            "2017-01-26T13:14:46.804000Z",
            None,
            [
                "detected",
                "alert_fired",
                "alert_fired",
                "alert_fired",
                "alert_fired",
                "alert_fired",
                "alert_fired",
                "severity",
                "escalated",
                "alert_fired",
                "alert_fired",
                "alert_fired",
            ],
        ),
    ),
    (
        "alerts/alertmanager/zulip-alert.json",
        (
            "open",
            "P0",
            "2020-02-06T00:17:58.432911Z",
            None,
            ["detected", "escalated", "alert_fired"],
        ),
    ),
    (
        "alerts/alertmanager/zulip-single_alert_no_url.json",
        ("open", "P0", "2020-02-06T00:17:58.432911Z", None, ["detected", "escalated"]),
    ),
    (
        "alerts/grafana/alert-9-mixed.json",
        (
            "open",
            "P2",
            "2022-06-17T01:03:00.782137Z",
            None,
            ["detected", "alert_resolved", "alert_resolved"],
        ),
    ),
    (
        "alerts/grafana/alert-9-multiple.json",
        (
            "open",
            "P2",
            "2022-06-17T01:03:00.782137Z",
            None,
            ["detected", "alert_fired", "alert_fired"],
        ),
    ),
    (
        "alerts/grafana/alert-9-resolved.json",
        (
            "resolved",
            "P2",
            "2022-06-17T00:41:00.782137Z",
            "2022-06-17T00:51:24.067337Z",
            ["detected", "alert_resolved", "resolved"],
        ),
    ),
    (
        "alerts/grafana/alert_values_v11.json",
        ("open", "P2", "2024-03-01T02:09:00Z", None, ["detected"]),
    ),
    (
        "alerts/pagerduty/acknowledged_v3.json",
        (
            "acknowledged",
            "P1",
            "2021-06-04T13:55:30.394000Z",
            None,
            ["detected", "escalated", "acknowledged"],
        ),
    ),
    (
        "alerts/pagerduty/escalate_v3.json",
        ("open", "P1", "2026-04-01T02:07:30Z", None, ["detected", "escalated", "escalated"]),
    ),
    (
        "alerts/pagerduty/priority_updated_v3.json",
        ("open", "P2", "2026-04-01T02:07:30Z", None, ["detected", "note"]),
    ),
    (
        "alerts/pagerduty/reassigned_v3.json",
        ("open", "P1", "2021-06-04T10:17:54.838000Z", None, ["detected", "escalated", "assigned"]),
    ),
    (
        "alerts/pagerduty/reopened_v3.json",
        ("open", "P3", "2026-03-30T13:37:07Z", None, ["detected", "note"]),
    ),
    (
        "alerts/pagerduty/resolved_v3.json",
        (
            "resolved",
            "P1",
            "2021-06-04T13:16:53.816000Z",
            "2021-06-04T13:16:53.816000Z",
            ["detected", "escalated", "resolved"],
        ),
    ),
    (
        "alerts/pagerduty/triggered_v3.json",
        ("open", "P1", "2021-06-04T13:35:29.781000Z", None, ["detected", "escalated"]),
    ),
    (
        "alerts/pagerduty/unacknowledged_v3.json",
        (
            "open",
            "P1",
            "2021-06-04T13:54:23.185000Z",
            None,
            ["detected", "escalated", "unacknowledged"],
        ),
    ),
    (
        "alerts/opsgenie/acknowledge.json",
        ("acknowledged", "P2", "2015-01-05T10:03:11.104000Z", None, ["detected", "acknowledged"]),
    ),
    (
        "alerts/opsgenie/addnote.json",
        ("open", "P2", "2015-01-05T10:03:11.104000Z", None, ["detected", "note"]),
    ),
    (
        "alerts/opsgenie/close.json",
        (
            "resolved",
            "P2",
            "2015-01-05T10:03:11.104000Z",
            "2015-01-05T10:06:14.669001Z",
            ["detected", "resolved"],
        ),
    ),
    (
        "alerts/opsgenie/create.json",
        ("open", "P2", "2017-08-14T11:25:56.288000Z", None, ["detected"]),
    ),
    ("ci/github/check_run/completed.payload.json", None),
    ("ci/github/deployment_status/payload.json", None),
    (
        "ci/github/workflow_job/completed.failure.with-organization.payload.json",
        ("open", "P2", "2021-08-05T10:34:58Z", None, ["detected"]),
    ),
    ("ci/github/workflow_job/completed.success.with-organization.payload.json", None),
    ("ci/github/workflow_job/in_progress.payload.json", None),
    ("ci/github/workflow_job/queued.payload.json", None),
    ("ci/github/workflow_run/completed.payload.json", None),
    ("ci/github/workflow_run/requested.payload.json", None),
]


def format_of(relative: str) -> str:
    parts = relative.split("/")
    return "github" if parts[0] == "ci" else FORMAT_OF_FOLDER[parts[1]]


def incidents(run):
    return json.loads(run("incident", "list", "--json")[1])


def kinds_of(run, incident):
    return [row["kind"] for row in json.loads(run("incident", "timeline", incident, "--json")[1])]


def test_every_fixture_has_an_expectation():
    found = {
        str(path.relative_to(FIXTURES))
        for folder in ("alerts", "ci")
        for path in (FIXTURES / folder).rglob("*.json")
    }
    listed = {relative for relative, _ in EXPECTED} | {
        "alerts/alertmanager/zulip-single_alert.json",
        "alerts/opsgenie/escalate.json",
    }
    assert found == listed


@pytest.mark.parametrize(("relative", "expected"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_fixture_ingests_as_expected(run, relative, expected):
    code, out, err = run("ingest", format_of(relative), str(FIXTURES / relative))

    assert code == 0, err
    assert "signal(s)" in out
    found = incidents(run)
    if expected is None:
        assert found == []
        return
    status, severity, detected_at, resolved_at, kinds = expected
    [incident] = found
    assert (incident["status"], incident["severity"]) == (status, severity)
    assert (incident["detected_at"], incident["resolved_at"]) == (detected_at, resolved_at)
    assert kinds_of(run, "INC-1") == kinds


def test_resolved_alert_without_end_time(run):
    before = dt.datetime.now(dt.UTC)
    run("ingest", "alertmanager", str(FIXTURES / "alerts/alertmanager/zulip-single_alert.json"))

    [incident] = incidents(run)
    rows = json.loads(run("incident", "timeline", "1", "--json")[1])

    # The zero endsAt gives no end time, so the time the notice arrived is used instead.
    assert incident["status"] == "resolved"
    assert dt.datetime.fromisoformat(incident["resolved_at"]) >= before
    resolved = [row for row in rows if row["kind"] == "alert_resolved"][0]
    assert resolved["details"]["end_time_estimated"] is True


def test_escalation_of_unknown_alert_marks_estimated_time(run):
    run("ingest", "opsgenie", str(FIXTURES / "alerts/opsgenie/escalate.json"))

    [row, *_] = json.loads(run("incident", "timeline", "1", "--json")[1])

    assert row["kind"] == "detected"
    assert row["details"]["detected_time_estimated"] is True


def test_all_fixtures_twice_add_nothing(run):
    for relative, _ in EXPECTED:
        assert run("ingest", format_of(relative), str(FIXTURES / relative))[0] == 0
    first = incidents(run)
    rows = [kinds_of(run, item["id"]) for item in first]

    for relative, _ in EXPECTED:
        code, out, _ = run("ingest", format_of(relative), str(FIXTURES / relative), "--json")
        assert code == 0
        assert {entry["action"] for entry in json.loads(out)} <= {"unchanged", "ignored"}

    assert incidents(run) == first
    assert [kinds_of(run, item["id"]) for item in first] == rows


def test_fire_then_resolve_across_payloads(run, tmp_path):
    firing = json.loads((FIXTURES / "alerts/alertmanager/zulip-alert.json").read_text())
    resolved = json.loads(json.dumps(firing))
    resolved["status"] = "resolved"
    for number, alert in enumerate(resolved["alerts"]):
        alert["status"] = "resolved"
        alert["endsAt"] = f"2020-02-06T00:3{number}:00Z"
    (tmp_path / "firing.json").write_text(json.dumps(firing))
    (tmp_path / "resolved.json").write_text(json.dumps(resolved))

    run("ingest", "alertmanager", str(tmp_path / "firing.json"))
    run("ingest", "alertmanager", str(tmp_path / "firing.json"))
    run("ingest", "alertmanager", str(tmp_path / "resolved.json"))

    [incident] = incidents(run)
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == "2020-02-06T00:31:00Z"
    assert kinds_of(run, "1") == [
        "detected",
        "escalated",
        "alert_fired",
        "alert_resolved",
        "alert_resolved",
        "resolved",
    ]


def test_stdin_payload(run, monkeypatch):
    body = (FIXTURES / "alerts/pagerduty/triggered_v3.json").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body)))

    code, out, _ = run("ingest", "pagerduty", "-")

    assert code == 0
    assert "INC-1    created" in out
    assert incidents(run)[0]["title"] == "Test Incident 3"


def test_bad_file_among_good_stores_nothing(run, tmp_path):
    (tmp_path / "broken.json").write_text('{"alerts": [')

    code, _, err = run(
        "ingest",
        "alertmanager",
        str(FIXTURES / "alerts/alertmanager/zulip-alert.json"),
        str(tmp_path / "broken.json"),
    )

    assert code == 2
    assert "broken.json: invalid JSON" in err
    assert incidents(run) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "nagios", "x.json"), "format 'nagios' is unknown; known formats: alertmanager"),
        (("ingest", "alertmanager", "missing.json"), "payload file 'missing.json' does not exist"),
    ],
)
def test_bad_ingest_arguments(run, args, message):
    code, _, err = run(*args)

    assert code == 2
    assert message in err


def test_wrong_shape_names_the_field(run, tmp_path):
    shutil.copy(FIXTURES / "alerts/pagerduty/triggered_v3.json", tmp_path / "pd.json")

    code, _, err = run("ingest", "alertmanager", str(tmp_path / "pd.json"))

    assert code == 2
    assert "pd.json" in err
    assert "alerts" in err
    assert incidents(run) == []


def test_resolve_without_start_not_measured(run):
    run("ingest", "pagerduty", str(FIXTURES / "alerts/pagerduty/resolved_v3.json"))

    code, out, _ = run("incident", "metrics", "--json")

    p1 = json.loads(out)[1]
    assert code == 0
    assert p1["count"] == 1
    assert p1["open"] == 0
    # Detection was never reported, so a time to resolve would be made up.
    assert p1["ttr_median_s"] is None


def edited_alert(tmp_path, **fields):
    payload = json.loads((FIXTURES / "alerts/alertmanager/zulip-single_alert.json").read_text())
    payload["alerts"][0].update(fields)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(payload))
    return path


def test_future_start_rejected(run, tmp_path):
    path = edited_alert(tmp_path, status="firing", startsAt="2099-01-01T00:00:00Z")

    code, _, err = run("ingest", "alertmanager", str(path))

    assert code == 2
    assert "is in the future" in err
    assert incidents(run) == []


def test_ancient_start_rejected(run, tmp_path):
    path = edited_alert(tmp_path, status="firing", startsAt="1600-01-01T00:00:00Z")

    code, _, err = run("ingest", "alertmanager", str(path))

    assert code == 2
    assert "alerts[0].startsAt '1600-01-01T00:00:00Z' is out of range" in err
    assert incidents(run) == []


def test_end_before_start_moved_to_start(run, tmp_path):
    path = edited_alert(tmp_path, endsAt="2020-02-06T00:00:00Z")

    assert run("ingest", "alertmanager", str(path))[0] == 0

    [incident] = incidents(run)
    assert incident["resolved_at"] == incident["detected_at"]
    rows = json.loads(run("incident", "timeline", "1", "--json")[1])
    assert [row for row in rows if row["kind"] == "alert_resolved"][0]["details"][
        "end_before_start"] is True


@pytest.mark.parametrize(("body", "message"), [
    ('"just text"', "payload is a JSON str; expected a JSON object"),
    ("42", "payload is a JSON int; expected a JSON object"),
])
def test_non_object_payload(run, tmp_path, body, message):
    (tmp_path / "odd.json").write_text(body)

    code, _, err = run("ingest", "alertmanager", str(tmp_path / "odd.json"))

    assert code == 2
    assert message in err


def test_folder_and_double_stdin_rejected(run, tmp_path):
    assert "is a folder" in run("ingest", "alertmanager", str(tmp_path))[2]
    assert "more than once" in run("ingest", "alertmanager", "-", "-")[2]


@pytest.mark.parametrize(("body", "message"), [
    ('{"alerts": [{"startsAt": NaN}]}', "strict JSON has no NaN"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
])
def test_strict_json_only(run, tmp_path, body, message):
    (tmp_path / "odd.json").write_text(body)

    code, _, err = run("ingest", "alertmanager", str(tmp_path / "odd.json"))

    assert code == 2
    assert message in err
    assert "Traceback" not in err
