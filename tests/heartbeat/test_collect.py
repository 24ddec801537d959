"""The store collectors against real records: incidents, sign-offs, dead messages, gates."""

from __future__ import annotations

import datetime as dt

import pytest
from beatkit import add_dead_message, add_gate_run

from tinysdlc_nb import approvals
from tinysdlc_nb.heartbeat.collect import (
    dead_message_findings,
    gate_findings,
    incident_findings,
    signoff_findings,
)
from tinysdlc_nb.incidents.actions import Actions
from tinysdlc_nb.store import utc_now

NOW = utc_now().replace(microsecond=0)


def actions(store, config):
    return Actions(store, owner=config.incidents["owner"], agent_ids=config.agent_ids())


def sign(store, config, role, signer, version="1.4.0"):
    approvals.record_signoff(store, project="shop", gate="g3", version=version, role=role,
                             signer=signer, approve=True, comment="", tier=config.tier,
                             agent_ids=config.agent_ids())


# Incidents with their SLA state.

def test_incident_p1_unacknowledged_breached(store, config):
    actions(store, config).open(title="Checkout returns 500", by="Pat Oncall", severity="P1",
                                at=NOW - dt.timedelta(hours=2))
    [finding] = incident_findings(config, store, NOW)
    assert finding.subject == "INC-1"
    assert "acknowledge breached" in finding.state
    assert finding.needs_person is True


def test_incident_p1_fresh_on_track(store, config):
    actions(store, config).open(title="Checkout slow", by="Pat Oncall", severity="P1",
                                at=NOW - dt.timedelta(minutes=5))
    [finding] = incident_findings(config, store, NOW)
    assert "acknowledge on track" in finding.state
    assert finding.needs_person is False


def test_incident_at_risk_needs_person(store, config):
    actions(store, config).open(title="Checkout slow", by="Pat Oncall", severity="P1",
                                at=NOW - dt.timedelta(minutes=50))
    [finding] = incident_findings(config, store, NOW)
    assert "acknowledge at risk" in finding.state
    assert finding.needs_person is True


def test_incident_resolved_not_listed(store, config):
    recorder = actions(store, config)
    incident = recorder.open(title="Checkout down", by="Pat Oncall", severity="P1",
                             at=NOW - dt.timedelta(hours=2))
    recorder.resolve(incident, by="Pat Oncall")
    assert incident_findings(config, store, NOW) == []


# Gates waiting for sign-off.

def test_signoff_overdue_names_missing(store, config):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=30))
    [finding] = signoff_findings(config, store, NOW)
    assert finding.subject == "shop G3 1.4.0"
    assert finding.state == "overdue; missing reviewer, tester"
    assert finding.needs_person is True
    assert finding.detail["missing_roles"] == ["reviewer", "tester"]


def test_signoff_young_wait_no_person(store, config):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=2))
    [finding] = signoff_findings(config, store, NOW)
    assert finding.state.startswith("waiting")
    assert finding.needs_person is False


def test_signoff_partial_names_rest(store, config):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=30))
    sign(store, config, "reviewer", "Rita Gomez")
    [finding] = signoff_findings(config, store, NOW)
    assert finding.state == "overdue; missing tester"


def test_signoff_later_pass_clears(store, config):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=30))
    add_gate_run(store, "r2", gate="g3", verdict="PASSED", started=NOW - dt.timedelta(hours=1))
    assert signoff_findings(config, store, NOW) == []


def test_signoff_age_from_first_wait(store, config):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=30))
    add_gate_run(store, "r2", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=1))
    [finding] = signoff_findings(config, store, NOW)
    assert finding.needs_person is True


def test_signoff_other_version_separate(store, config):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL",
                 started=NOW - dt.timedelta(hours=30))
    add_gate_run(store, "r2", gate="g3", version="1.5.0", verdict="PASSED",
                 started=NOW - dt.timedelta(hours=1))
    [finding] = signoff_findings(config, store, NOW)
    assert finding.subject == "shop G3 1.4.0"


# Dead messages and last gate verdicts, on SQLite and PostgreSQL.

def test_dead_messages_none(any_store):
    [finding] = dead_message_findings(any_store)
    assert finding.state == "none"
    assert finding.needs_person is False


def test_dead_messages_counted(any_store):
    add_dead_message(any_store)
    newest = add_dead_message(any_store, "rollback 1.3.9")
    [finding] = dead_message_findings(any_store)
    assert finding.state == f"2 dead, newest #{newest}"
    assert finding.needs_person is True
    assert finding.detail["ids"][0] == newest


@pytest.mark.parametrize("verdict, needs_person", [("FAILED", True), ("INCOMPLETE", True),
                                                   ("PASSED", False),
                                                   ("AWAITING_APPROVAL", False)])
def test_gate_last_verdict(store, verdict, needs_person):
    add_gate_run(store, "r1", verdict="FAILED", started=NOW - dt.timedelta(hours=3))
    add_gate_run(store, "r2", verdict=verdict, version="1.4.1",
                 started=NOW - dt.timedelta(hours=1))
    [finding] = gate_findings(store)
    assert finding.state == f"{verdict} 1.4.1"
    assert finding.needs_person is needs_person


def test_gate_per_project_and_gate(any_store):
    add_gate_run(any_store, "r1", gate="g3", verdict="PASSED")
    add_gate_run(any_store, "r2", gate="g4", verdict="FAILED")
    add_gate_run(any_store, "r3", gate="g4", verdict="PASSED", project="billing")
    findings = gate_findings(any_store)
    assert [finding.subject for finding in findings] == ["billing G4", "shop G3", "shop G4"]
    assert [finding.needs_person for finding in findings] == [False, False, True]
