"""SLA targets: defaults from the role, severity changes, at risk, next sprint, config."""

from __future__ import annotations

import datetime as dt

import pytest
from incidentkit import T0, minutes

from tinysdlc_nb.config import _default_sla, load_config
from tinysdlc_nb.errors import ConfigError
from tinysdlc_nb.incidents.actions import Actions
from tinysdlc_nb.incidents.sla import SlaPolicy
from tinysdlc_nb.incidents.view import incident_detail

POLICY = SlaPolicy.from_config(_default_sla())


@pytest.fixture
def actions(sqlite_store):
    return Actions(sqlite_store, owner="SE4H", agent_ids={"coder", "devops"})


def ack_sla(actions, incident_id, now_minute, policy=POLICY):
    found = incident_detail(actions.store, incident_id, policy, now=minutes(now_minute))
    return found["sla"]["acknowledge"]


@pytest.mark.parametrize(("severity", "ack_minute", "expected"), [
    ("P0", 4, "met"), ("P0", 5, "met"), ("P0", 6, "breached"),
    ("P1", 59, "met"), ("P1", 61, "breached"),
    ("P2", 239, "met"), ("P2", 241, "breached"),
])
def test_default_targets(actions, severity, ack_minute, expected):
    incident = actions.open(title="x", by="ann", severity=severity, at=T0)
    actions.acknowledge(incident, by="bob", at=minutes(ack_minute))

    assert ack_sla(actions, incident, 1000)["status"] == expected


@pytest.mark.parametrize(("now_minute", "expected"), [
    (30, "on track"), (44, "on track"), (46, "at risk"), (60, "at risk"), (61, "breached"),
])
def test_open_incident_status_over_time(actions, now_minute, expected):
    incident = actions.open(title="x", by="ann", severity="P1", at=T0)

    assert ack_sla(actions, incident, now_minute)["status"] == expected


def test_agent_ack_does_not_meet_target(actions):
    incident = actions.open(title="x", by="ann", severity="P0", at=T0)
    actions.acknowledge(incident, by="coder", at=minutes(1))

    assert ack_sla(actions, incident, 10)["status"] == "breached"


def test_raise_applies_stricter_target_from_change(actions):
    incident = actions.open(title="x", by="ann", severity="P2", at=T0)
    actions.change_severity(incident, "P0", by="ann", at=minutes(30))

    result = ack_sla(actions, incident, 33)
    assert result["due"] == "2026-03-02T09:35:00Z"
    assert result["status"] == "at risk"

    actions.acknowledge(incident, by="bob", at=minutes(40))
    assert ack_sla(actions, incident, 41)["status"] == "breached"


def test_raise_keeps_earlier_deadline(actions):
    incident = actions.open(title="x", by="ann", severity="P2", at=T0)
    actions.change_severity(incident, "P1", by="ann", at=minutes(200))

    assert ack_sla(actions, incident, 201)["due"] == "2026-03-02T13:00:00Z"


def test_raise_after_ack_changes_nothing(actions):
    incident = actions.open(title="x", by="ann", severity="P2", at=T0)
    actions.acknowledge(incident, by="bob", at=minutes(20))
    actions.change_severity(incident, "P0", by="ann", at=minutes(30))

    assert ack_sla(actions, incident, 60)["status"] == "met"


def test_lowering_before_breach_relaxes(actions):
    incident = actions.open(title="x", by="ann", severity="P0", at=T0)
    actions.change_severity(incident, "P2", by="ann", at=minutes(3))
    actions.acknowledge(incident, by="bob", at=minutes(60))

    result = ack_sla(actions, incident, 61)
    assert result["due"] == "2026-03-02T13:00:00Z"
    assert result["status"] == "met"


def test_lowering_after_breach_keeps_breach(actions):
    incident = actions.open(title="x", by="ann", severity="P0", at=T0)
    actions.change_severity(incident, "P2", by="ann", at=minutes(10))
    actions.acknowledge(incident, by="bob", at=minutes(20))

    assert ack_sla(actions, incident, 21)["status"] == "breached"


def test_resolved_before_due_needs_no_ack(actions):
    incident = actions.open(title="x", by="ann", severity="P1", at=T0)
    actions.resolve(incident, by="bob", at=minutes(20))

    assert ack_sla(actions, incident, 300)["status"] == "met"


@pytest.mark.parametrize(("detected", "due"), [
    (dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), "2026-03-30T00:00:00Z"),
    (dt.datetime(2026, 3, 1, 23, tzinfo=dt.UTC), "2026-03-16T00:00:00Z"),
    (dt.datetime(2026, 1, 5, 0, tzinfo=dt.UTC), "2026-02-02T00:00:00Z"),
])
def test_p3_due_end_of_next_sprint(actions, detected, due):
    incident = actions.open(title="x", by="ann", severity="P3", at=detected)

    assert ack_sla(actions, incident, 1)["due"] == due


def test_resolve_target_from_config(actions):
    policy = SlaPolicy.from_config({**_default_sla(), "p1_resolve": "2h"})
    incident = actions.open(title="x", by="ann", severity="P1", at=T0)
    actions.acknowledge(incident, by="bob", at=minutes(5))
    actions.resolve(incident, by="bob", at=minutes(150))

    found = incident_detail(actions.store, incident, policy, now=minutes(200))
    assert found["sla"]["resolve"] == {"due": "2026-03-02T11:00:00Z", "status": "breached"}


def test_no_resolve_target_by_default(actions):
    incident = actions.open(title="x", by="ann", severity="P1", at=T0)

    found = incident_detail(actions.store, incident, POLICY, now=minutes(1))
    assert found["sla"]["resolve"] == {"due": None, "status": None}


def test_sla_config_parsed(tmp_path):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(
        '[sla]\np0_acknowledge = "2m"\nsprint_days = 7\n')

    config = load_config(tmp_path)

    policy = SlaPolicy.from_config(config.sla)
    assert policy.deadline("P0", "acknowledge", T0) == minutes(2)
    assert policy.sprint == dt.timedelta(days=7)


@pytest.mark.parametrize(("line", "message"), [
    ('p1_acknowledge = "soon"', "duration 'soon' is invalid"),
    ('sprint_start = "next monday"', "sla.sprint_start 'next monday' is not an ISO date"),
    ("at_risk_fraction = 1.5", "between 0 and 1"),
    ("p9_acknowledge = \"1h\"", "unknown setting 'sla.p9_acknowledge'"),
])
def test_bad_sla_config_rejected(tmp_path, line, message):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(f"[sla]\n{line}\n")

    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)


def test_bad_severity_map_rejected(tmp_path):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(
        '[incidents.severity_map]\nsev1 = "critical"\n')

    with pytest.raises(ConfigError, match="severity_map.sev1 = 'critical' is invalid"):
        load_config(tmp_path)


def test_severity_map_merges_over_defaults(tmp_path):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(
        '[incidents.severity_map]\nSev1 = "P0"\n"warning" = "P3"\n')

    mapping = load_config(tmp_path).incidents["severity_map"]

    assert mapping["sev1"] == "P0"
    assert mapping["warning"] == "P3"
    assert mapping["critical"] == "P0"


@pytest.mark.parametrize(("owner", "message"), [
    ('""', "incidents.owner is empty"),
    ('"coder"', "incidents.owner 'coder' is an agent"),
])
def test_bad_owner_rejected(tmp_path, owner, message):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(f"[incidents]\nowner = {owner}\n")

    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)


@pytest.mark.parametrize("value", ["0m", "99999999999w"])
def test_target_out_of_range(tmp_path, value):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(f'[sla]\np1_resolve = "{value}"\n')

    with pytest.raises(ConfigError, match="out of range"):
        load_config(tmp_path)


def test_due_after_breach_stays_missed_deadline(actions):
    incident = actions.open(title="x", by="ann", severity="P1", at=T0)
    actions.change_severity(incident, "P2", by="ann", at=minutes(90))
    actions.acknowledge(incident, by="bob", at=minutes(120))

    assert ack_sla(actions, incident, 121) == {"due": "2026-03-02T10:00:00Z",
                                               "status": "breached"}
