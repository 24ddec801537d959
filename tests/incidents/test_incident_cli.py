"""The `incident` commands end to end: output, JSON shapes, exit codes, and bad input that
stores nothing."""

from __future__ import annotations

import json

import pytest
from gate_projects import cli


def listed(run):
    code, out, _ = run("incident", "list", "--json")
    assert code == 0
    return json.loads(out)


def test_lifecycle_by_hand(run):
    assert run("incident", "open", "--title", "Checkout 500s", "--severity", "P1",
               "--service", "checkout", "--by", "ann", "--at", "2026-03-02T09:00:00Z")[0] == 0
    assert run("incident", "ack", "INC-1", "--by", "bob", "--at",
               "2026-03-02T10:10:00+01:00")[0] == 0
    assert run("incident", "log", "1", "feature flag off", "--kind", "contained", "--by", "bob",
               "--at", "2026-03-02T09:25:00Z")[0] == 0
    assert run("incident", "resolve", "inc-1", "--by", "bob", "--at", "2026-03-02T08:00",
               "--tz", "America/New_York")[0] == 0

    [item] = listed(run)
    assert item == {
        "id": "INC-1", "title": "Checkout 500s", "service": "checkout", "severity": "P1",
        "status": "resolved", "detected_at": "2026-03-02T09:00:00Z",
        "acknowledged_at": "2026-03-02T09:10:00Z", "contained_at": "2026-03-02T09:25:00Z",
        "resolved_at": "2026-03-02T13:00:00Z",
    }


def test_show_json_has_sla_and_timeline(run):
    run("incident", "open", "--title", "DB down", "--severity", "P0", "--by", "ann", "--at",
        "2026-03-02T09:00:00Z")
    run("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T09:07:00Z")

    code, out, _ = run("incident", "show", "INC-1", "--json")

    shown = json.loads(out)
    assert code == 0
    assert shown["sla"]["acknowledge"] == {"due": "2026-03-02T09:05:00Z", "status": "breached"}
    assert [row["kind"] for row in shown["timeline"]] == ["detected", "escalated",
                                                         "acknowledged"]
    assert shown["timeline"][1]["details"]["to"] == "SE4H"


def test_timeline_json_is_array_of_rows(run):
    run("incident", "open", "--title", "Slow search", "--by", "ann", "--at",
        "2026-03-02T09:00:00Z")
    run("incident", "log", "1", "cache cold after deploy", "--kind", "root_cause", "--by", "ann")
    run("incident", "log", "1", "warm the cache in deploy", "--kind", "action_item", "--owner",
        "bob", "--due", "2026-03-20", "--by", "ann")

    code, out, _ = run("incident", "timeline", "1", "--json")

    rows = json.loads(out)
    assert code == 0
    assert isinstance(rows, list)
    assert [row["kind"] for row in rows] == ["detected", "root_cause", "action_item"]
    assert rows[0]["occurred_at"] == "2026-03-02T09:00:00Z"
    assert rows[0]["severity"] == "P2"
    assert rows[0]["incident"] == "INC-1"
    assert rows[2]["details"] == {"owner": "bob", "due": "2026-03-20"}
    assert rows[1]["actor_kind"] == "human"


def test_metrics_json_shape(run):
    run("incident", "open", "--title", "x", "--severity", "P3", "--by", "ann", "--at",
        "2026-03-02T09:00:00Z")
    run("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T09:30:00Z")

    code, out, _ = run("incident", "metrics", "--json")

    rows = json.loads(out)
    assert code == 0
    assert [row["severity"] for row in rows] == ["P0", "P1", "P2", "P3"]
    assert set(rows[0]) == {"severity", "count", "open", "tta_median_s", "tta_p90_s",
                            "ttc_median_s", "ttr_median_s", "ttr_p90_s", "sla_breaches"}
    assert rows[3]["count"] == 1
    assert rows[3]["open"] == 1
    assert rows[3]["tta_median_s"] == 1800.0
    assert rows[3]["ttr_median_s"] is None
    assert rows[0]["tta_median_s"] is None


def test_metrics_since(run):
    run("incident", "open", "--title", "old", "--by", "ann", "--at", "2026-01-02T09:00:00Z")
    run("incident", "open", "--title", "new", "--by", "ann", "--at", "2026-03-02T09:00:00Z")

    code, out, _ = run("incident", "metrics", "--since", "2026-02-01", "--json")

    assert code == 0
    assert json.loads(out)[2]["count"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00"),
     "has no UTC offset"),
    (("incident", "open", "--title", "x", "--by", "ann", "--severity", "SEV1"),
     "severity 'SEV1' is invalid"),
    (("incident", "open", "--title", " ", "--by", "ann"), "--title is empty"),
    (("incident", "open", "--title", "x", "--by", "ann", "--at", "2099-01-01T00:00:00Z"),
     "is in the future"),
    (("incident", "open", "--title", "x", "--by", "ann", "--tz", "UTC"), "--tz only applies"),
    (("incident", "metrics", "--since", "2026-13-01"), "--since '2026-13-01' is not a date"),
])
def test_bad_input_exits_2_and_stores_nothing(run, args, message):
    code, _, err = run(*args)

    assert code == 2
    assert message in err
    assert listed(run) == []


@pytest.mark.parametrize(("args", "message"), [
    (("incident", "ack", "INC-9", "--by", "bob"), "incident INC-9 does not exist"),
    (("incident", "ack", "INC-x", "--by", "bob"), "incident id 'INC-x' is invalid"),
    (("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T08:59:00Z"),
     "before the incident was detected"),
    (("incident", "log", "1", "fix it", "--kind", "action_item", "--by", "bob"),
     "needs --owner NAME and --due"),
    (("incident", "log", "1", "fix it", "--kind", "action_item", "--owner", "bob", "--due",
      "soon", "--by", "bob"), "--due 'soon' is not a date"),
    (("incident", "severity", "1", "P2", "--by", "bob"), "already P2"),
    (("incident", "retract", "1", "99", "--by", "bob", "--reason", "typo"),
     "row 99 is not in the timeline of INC-1"),
    (("incident", "correct", "1", "1", "--by", "bob"), "needs --at, --text or both"),
])
def test_bad_updates_exit_2_and_change_nothing(run, args, message):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")
    before = run("incident", "timeline", "1", "--raw", "--json")[1]

    code, _, err = run(*args)

    assert code == 2
    assert message in err
    assert run("incident", "timeline", "1", "--raw", "--json")[1] == before


def test_retracted_row_cannot_be_retracted_again(run):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")
    run("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T09:03:00Z")
    assert run("incident", "retract", "1", "2", "--by", "ann", "--reason", "wrong one")[0] == 0

    code, _, err = run("incident", "retract", "1", "2", "--by", "ann", "--reason", "again")

    assert code == 2
    assert "already corrected or retracted" in err


def test_text_output_readable(run):
    run("incident", "open", "--title", "Queue backlog", "--severity", "P1", "--by", "ann",
        "--at", "2026-03-02T09:00:00Z")

    code, out, _ = run("incident", "show", "1")

    assert code == 0
    assert "INC-1  Queue backlog" in out
    assert "P1 incident: escalation to SE4H recorded" in out
    assert "SLA acknowledge" in out


def test_console_script_runs(tmp_path):
    result = cli("incident", "list", "--json", "--project", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(("args", "message"), [
    (("incident", "correct", "1", "2", "--by", "ann", "--at", "2026-03-02T08:00:00Z"),
     "before the incident was detected"),
    (("incident", "correct", "1", "1", "--by", "ann", "--at", "2026-03-02T09:30:00Z"),
     "after the incident's first milestone"),
    (("incident", "correct", "1", "1", "--by", " ", "--text", "x"), "--by is empty"),
    (("incident", "show", "99999999999999999999"), "is invalid"),
    (("incident", "retract", "99", "1", "--by", "ann", "--reason", "x"),
     "incident INC-99 does not exist"),
])
def test_bad_corrections_rejected(run, args, message):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")
    run("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T09:10:00Z")
    before = run("incident", "timeline", "1", "--raw", "--json")[1]

    code, _, err = run(*args)

    assert code == 2
    assert message in err
    assert run("incident", "timeline", "1", "--raw", "--json")[1] == before


def test_detection_corrected_earlier(run):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")
    run("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T09:10:00Z")

    assert run("incident", "correct", "1", "1", "--by", "ann", "--at",
               "2026-03-02T08:50:00Z")[0] == 0

    [item] = listed(run)
    assert item["detected_at"] == "2026-03-02T08:50:00Z"


def test_closed_incident_keeps_severity(run):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")
    run("incident", "close", "1", "--by", "ann")

    code, _, err = run("incident", "severity", "1", "P0", "--by", "ann")

    assert code == 2
    assert "INC-1 is closed" in err


def test_close_before_resolve_keeps_resolve_time(run):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")
    run("incident", "resolve", "1", "--by", "ann", "--at", "2026-03-02T09:30:00Z")
    run("incident", "close", "1", "--by", "ann", "--at", "2026-03-02T09:05:00Z")

    [item] = listed(run)
    assert item["status"] == "closed"
    assert item["resolved_at"] == "2026-03-02T09:30:00Z"


def test_control_characters_shown_escaped(run):
    run("incident", "open", "--title", "evil\x1b[2Jtitle\nINC-9 P0 fake", "--by", "ann",
        "--at", "2026-03-02T09:00:00Z")

    out = run("incident", "list")[1]

    assert "\x1b" not in out
    assert "evil\\x1b[2Jtitle / INC-9 P0 fake" in out
    assert len(out.strip().splitlines()) == 2


def test_metrics_since_with_zone(run):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")

    late = json.loads(run("incident", "metrics", "--since", "2026-03-02T10:30", "--tz",
                          "Europe/Berlin", "--json")[1])
    early = json.loads(run("incident", "metrics", "--since", "2026-03-02T09:30", "--tz",
                           "Europe/Berlin", "--json")[1])

    # 10:30 in Berlin is 09:30 UTC, after the detection; 09:30 in Berlin is 08:30 UTC.
    assert late[2]["count"] == 0
    assert early[2]["count"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (("incident", "ack", "1", "--by", "bob", "--at", "2026-03-02T12:00:00Z"),
     "INC-1 is already resolved"),
    (("incident", "resolve", "1", "--by", "bob"), "INC-1 is already resolved"),
    (("incident", "retract", "1", "1", "--by", "bob", "--reason", "false alarm"),
     "cannot be withdrawn"),
])
def test_resolved_incident_rejects_repeats(run, args, message):
    run("incident", "open", "--title", "x", "--severity", "P1", "--by", "ann", "--at",
        "2026-03-02T10:00:00Z")
    run("incident", "resolve", "1", "--by", "bob", "--at", "2026-03-02T10:30:00Z")

    code, _, err = run(*args)

    assert code == 2
    assert message in err


def test_backfilled_severity_uses_severity_at_that_time(run):
    run("incident", "open", "--title", "x", "--severity", "P2", "--by", "ann", "--at",
        "2026-03-02T10:00:00Z")
    run("incident", "severity", "1", "P0", "--by", "ann", "--at", "2026-03-02T11:00:00Z")

    code, _, err = run("incident", "severity", "1", "P1", "--by", "ann", "--at",
                       "2026-03-02T10:30:00Z")

    assert code == 0, err
    rows = json.loads(run("incident", "timeline", "1", "--json")[1])
    backfilled = [row for row in rows if row["occurred_at"] == "2026-03-02T10:30:00Z"]
    assert [row["kind"] for row in backfilled] == ["severity", "escalated"]
    assert backfilled[0]["details"] == {"from": "P2", "to": "P1"}
    assert listed(run)[0]["severity"] == "P0"


def test_timeline_text_keeps_indentation(run):
    run("incident", "open", "--title", "x", "--by", "ann", "--at", "2026-03-02T09:00:00Z")

    out = run("incident", "timeline", "1")[1]

    assert out.splitlines()[1].startswith("       1  2026-03-02 09:00:00 UTC  detected")
