"""The offline protocol agent, replying from a real store filled through the project's code."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, insert, select

from tinysdlc_nb import approvals
from tinysdlc_nb.config import load_config
from tinysdlc_nb.incidents.actions import Actions
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import findings, gate_items, gate_runs, signoffs
from tinysdlc_nb.team.agents import state
from tinysdlc_nb.team.agents.protocol import ProtocolAgent
from tinysdlc_nb.team.model import AgentContext, AgentRequest
from tinysdlc_nb.team.routing import compose_message, route
from tinysdlc_nb.team.settings import parse_team_settings
from tinysdlc_nb.team.tags import parse_tags

# A hand-off tag on a line of its own, as the agent writes them.
TAG = re.compile(r"^\[@([a-z0-9_.-]+): (.+)\]$", re.MULTILINE)
T0 = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)
CONFIG = """
[project]
name = "shop"
tier = "lite"

[incidents]
owner = "Dana Lee"

[sla]
p1_resolve = "4h"
"""
ROLES = ("devops", "reviewer", "tester", "coder", "pjm", "pm", "architect", "researcher",
         "assistant")


def _settings(roles=ROLES, renamed=None):
    renamed = renamed or {}
    agents = {renamed.get(role, role): {"name": role.title(), "provider": "protocol",
                                        "sdlc_role": role}
              for role in roles}
    return parse_team_settings({"agents": agents, "teams": {}})


@pytest.fixture
def config(tmp_path):
    folder = tmp_path / "shop"
    (folder / ".tinysdlc").mkdir(parents=True)
    (folder / ".tinysdlc" / "config.toml").write_text(CONFIG)
    return load_config(folder)


@pytest.fixture
def store(config):
    opened = open_store(config.database_url)
    yield opened
    opened.close()


def _agent(store, config, settings=None):
    context = AgentContext(store=store, config=config, settings=settings or _settings(),
                           files_dir=config.home / "files")
    return ProtocolAgent(context)


def _ask(agent, agent_id, message, *, sender="user", kind="task", settings=None):
    spec = (settings or agent.context.settings).agents[agent_id]
    request = AgentRequest(agent_id=agent_id, sender=sender, message=message,
                           conversation_id=1, message_id=1, attempt=1, kind=kind)
    return agent.reply(request, spec)


def _tags(text):
    return TAG.findall(text)


def _sign(store, config, role, signer, version="1.4.0", approve=True, comment=""):
    approvals.record_signoff(store, project="shop", gate="g3", version=version, role=role,
                             signer=signer, approve=approve, comment=comment,
                             agent_ids=config.agent_ids(), tier=config.tier)


def _confirm_g3(store, config, version="1.4.0"):
    _sign(store, config, "reviewer", "Rita Gomez", version)
    _sign(store, config, "tester", "Tom Baker", version)


def _rollback(store, config, version="1.4.0"):
    approvals.record_evidence(store, project="shop", gate="g4", version=version,
                              item="rollback_tested", recorded_by="Omar Diaz",
                              note="rehearsal rolled back in 42 s", file=None,
                              files_dir=config.home / "files")


def _run(store, run_id, *, gate="g4", version="1.4.0", verdict="FAILED", minute=0,
         items=(), found=()):
    """Insert a finished gate run with its items and findings, as the gate records them."""
    started = T0 + dt.timedelta(minutes=minute)
    with store.begin() as connection:
        connection.execute(insert(gate_runs).values(
            run_id=run_id, project="shop", gate=gate, version=version, tier="lite",
            environment="production", status="finished", verdict=verdict, exit_code=0,
            started_at=started, finished_at=started + dt.timedelta(minutes=3)))
        for item, kind, status, summary in items:
            connection.execute(insert(gate_items).values(
                run_id=run_id, item=item, kind=kind, required=True, status=status,
                summary=summary))
        for item, file, line, rule, message in found:
            connection.execute(insert(findings).values(
                run_id=run_id, item=item, file=file, line=line, rule=rule, message=message,
                severity="error"))


def _zero_mock_failure(store, run_id="r-fail", minute=0, version="1.4.0", message="TODO left"):
    _run(store, run_id, version=version, minute=minute,
         items=[("lint", "check", "PASS", "No findings."),
                ("zero_mock", "check", "FAIL", "1 mock pattern in production code.")],
         found=[("zero_mock", "app/pay.py", 42, "todo-marker", message),
                ("zero_mock", "app/cart.py", 7, "todo-marker", "FIXME left")])


def _incident(store, config, severity, title="Checkout returns 500", service="payments"):
    actions = Actions(store, owner=config.incidents["owner"], agent_ids=config.agent_ids())
    return actions.open(title=title, by="Pat Oncall", severity=severity, service=service)


def test_deploy_without_g3_asks_reviewer(store, config):
    _sign(store, config, "reviewer", "Rita Gomez")

    reply = _ask(_agent(store, config), "devops", "please deploy 1.4.0 to production")

    expected = ("reviewer", "Confirming G3 sign-off before deployment of shop 1.4.0. "
                            "Please confirm")
    assert _tags(reply.text) == [expected]
    assert "not authorized" in reply.text
    assert "Tester co-sign (tester) missing" in reply.text


def test_deploy_reviewer_found_by_role(store, config):
    settings = _settings(renamed={"reviewer": "rev"})

    reply = _ask(_agent(store, config, settings), "devops", "ship 1.4.0", settings=settings)

    assert [target for target, _ in _tags(reply.text)] == ["rev"]


def test_deploy_rejected_g3_names_signer(store, config):
    _sign(store, config, "reviewer", "Rita Gomez", approve=False, comment="flaky login test")
    _sign(store, config, "tester", "Tom Baker")

    reply = _ask(_agent(store, config), "devops", "roll out 1.4.0")

    assert "rejected by Rita Gomez: flaky login test" in reply.text
    assert _tags(reply.text)[0][0] == "reviewer"


def test_deploy_g4_passed_authorized(store, config):
    _confirm_g3(store, config)
    _rollback(store, config)
    _run(store, "r-pass", verdict="PASSED", items=[("lint", "check", "PASS", "No findings.")])

    reply = _ask(_agent(store, config), "devops", "deploy 1.4.0")

    assert "is authorized" in reply.text
    assert "G4 run r-pass PASSED" in reply.text
    assert "Rollback available and tested" in reply.text
    assert _tags(reply.text) == []


def test_deploy_g4_failed_not_authorized(store, config):
    _confirm_g3(store, config)
    _zero_mock_failure(store)

    reply = _ask(_agent(store, config), "devops", "deploy 1.4.0")

    assert "G4 run r-fail for shop 1.4.0 FAILED on: zero_mock (FAIL)" in reply.text
    assert "not authorized until G4 passes" in reply.text
    assert "No tested rollback recorded" in reply.text
    assert [target for target, _ in _tags(reply.text)] == ["coder", "pjm"]


def test_deploy_g4_awaiting_not_authorized(store, config):
    _confirm_g3(store, config)
    _run(store, "r-wait", verdict="INCOMPLETE",
         items=[("dependencies", "check", "UNAVAILABLE", "advisory database offline")])

    reply = _ask(_agent(store, config), "devops", "deploy 1.4.0")

    assert "Newest G4 run r-wait for 1.4.0: INCOMPLETE" in reply.text
    assert "Blocking items: dependencies (UNAVAILABLE)" in reply.text
    assert "not authorized until G4 passes" in reply.text


def test_deploy_g4_missing_names_command(store, config):
    _confirm_g3(store, config)

    reply = _ask(_agent(store, config), "devops", "deploy 1.4.0")

    assert "tinysdlc-nb gate g4 --version 1.4.0" in reply.text
    assert "not authorized" in reply.text
    assert "No tested rollback recorded" in reply.text


def test_deploy_without_version_uses_newest(store, config):
    _run(store, "r-old", version="1.3.0", verdict="PASSED", minute=0)
    _run(store, "r-new", version="1.4.0", verdict="PASSED", minute=5)

    reply = _ask(_agent(store, config), "devops", "deploy please")

    assert "deployment of shop 1.4.0" in _tags(reply.text)[0][1]


def test_deploy_v_prefix_matches_stored(store, config):
    _confirm_g3(store, config)

    reply = _ask(_agent(store, config), "devops", "deploy v1.4.0 now")

    assert "G3 is confirmed for shop 1.4.0" in reply.text


def test_deploy_without_any_version_asks(store, config):
    reply = _ask(_agent(store, config), "devops", "deploy")

    assert "Name the version to deploy" in reply.text
    assert _tags(reply.text) == []


def test_failed_gate_hands_off_coder_pjm(store, config):
    _zero_mock_failure(store)

    reply = _ask(_agent(store, config), "devops", "why is the pipeline red?")

    assert _tags(reply.text) == [
        ("coder", "CI blocked — zero_mock violation (todo-marker) at app/pay.py:42. "
                  "Fix before deployment"),
        ("pjm", "Deployment blocked — CI pipeline failed on G4 1.4.0 (zero_mock). "
                "ETA for fix needed"),
    ]


def test_failed_item_without_finding_named(store, config):
    _run(store, "r-cov", items=[("tests", "check", "FAIL", "Coverage 54% below 60%.")])

    reply = _ask(_agent(store, config), "devops", "gate status")

    coder = dict(_tags(reply.text))["coder"]
    assert coder == ("CI blocked — tests failed at G4 item tests: Coverage 54% below 60%. "
                     "Fix before deployment")


def test_failed_evidence_only_no_coder(store, config):
    _run(store, "r-ev", items=[("rollback_tested", "evidence", "FAIL", "no evidence")])

    reply = _ask(_agent(store, config), "devops", "CI?")

    assert [target for target, _ in _tags(reply.text)] == ["pjm"]


def test_newest_failed_run_triggers_handoffs(store, config):
    _zero_mock_failure(store)

    reply = _ask(_agent(store, config), "devops", "hello there")

    assert [target for target, _ in _tags(reply.text)] == ["coder", "pjm"]


def test_failure_fixed_by_rerun_is_quiet(store, config):
    _zero_mock_failure(store, minute=0)
    _run(store, "r-again", verdict="PASSED", minute=10)

    reply = _ask(_agent(store, config), "devops", "any failing checks?")

    assert _tags(reply.text) == []
    assert "No gate run of shop is failing" in reply.text


def test_failed_gate_missing_coder_skipped(store, config):
    settings = _settings(roles=("devops", "reviewer", "pjm"))
    _zero_mock_failure(store)

    reply = _ask(_agent(store, config, settings), "devops", "CI status", settings=settings)

    assert [target for target, _ in _tags(reply.text)] == ["pjm"]
    assert "No agent has the coder role" in reply.text


def test_no_handoff_back_to_sender(store, config):
    _zero_mock_failure(store)

    reply = _ask(_agent(store, config), "devops", "is the build failing?", sender="coder")

    assert [target for target, _ in _tags(reply.text)] == ["pjm"]


def test_p1_incident_notifies_owner(store, config):
    incident_id = _incident(store, config, "P1")

    reply = _ask(_agent(store, config), "devops", "any incidents open?")

    assert [to for to, _ in reply.notifications] == ["Dana Lee"]
    assert f"INC-{incident_id}" in reply.notifications[0][1]
    assert reply.meta["notified"] == [[f"INC-{incident_id}", "P1"]]


def test_p1_incident_hands_off_coder_pjm(store, config):
    incident_id = _incident(store, config, "P1")
    due = state.open_escalated_incidents(store, config)[0]["resolve_due"]

    reply = _ask(_agent(store, config), "devops", "escalation check on the outage")

    tags = dict(_tags(reply.text))
    assert tags["coder"] == (f"Production issue — root cause suspected in payments. Need "
                             f"hotfix for: INC-{incident_id} Checkout returns 500")
    assert tags["pjm"] == (f"P1 incident in progress — impact: INC-{incident_id} Checkout "
                           f"returns 500 (service payments). ETA for resolution: "
                           f"{due:%Y-%m-%d %H:%M} UTC")


def test_p0_without_resolve_target_eta_unknown(store, config):
    _incident(store, config, "P0")

    reply = _ask(_agent(store, config), "devops", "incident status")

    assert dict(_tags(reply.text))["pjm"].endswith("ETA for resolution: unknown")


def test_p2_incident_no_notification(store, config):
    _incident(store, config, "P2")

    reply = _ask(_agent(store, config), "devops", "any incidents open?")

    assert reply.notifications == ()
    assert _tags(reply.text) == []


def test_resolved_p1_no_notification(store, config):
    incident_id = _incident(store, config, "P1")
    Actions(store, owner="Dana Lee", agent_ids=config.agent_ids()).resolve(
        incident_id, by="Pat Oncall")

    reply = _ask(_agent(store, config), "devops", "any incidents open?")

    assert reply.notifications == ()


def test_p1_unrelated_message_no_notification(store, config):
    _incident(store, config, "P1")

    reply = _ask(_agent(store, config), "devops", "hello there")

    assert reply.notifications == ()
    assert "P1 1" in reply.text


def test_incident_title_brackets_parse_cleanly(store, config):
    _incident(store, config, "P1", title="Queue ] stuck [@pjm: x", service="")

    reply = _ask(_agent(store, config), "devops", "incident?")

    parsed = parse_tags(reply.text)
    assert [tag.ids for tag in parsed.tags] == [("coder",), ("pjm",)]
    assert parsed.malformed == ()


def test_owner_notice_stable_across_status(store, config):
    incident_id = _incident(store, config, "P1")
    agent = _agent(store, config)
    first = _ask(agent, "devops", "incidents?").notifications

    Actions(store, owner="Dana Lee", agent_ids=config.agent_ids()).acknowledge(
        incident_id, by="Pat Oncall")
    second = _ask(agent, "devops", "incidents?").notifications

    assert first == second


def test_routed_message_uses_directed_part(store, config):
    _incident(store, config, "P1")
    message = compose_message("Earlier: an incident and a failing pipeline.", "assistant",
                              "devops", "deploy 1.4.0")

    reply = _ask(_agent(store, config), "devops", message, sender="assistant")

    assert reply.meta["patterns"] == ["deploy"]
    assert reply.notifications == ()


def test_routed_acknowledge_quotes_directed_part(store, config):
    message = compose_message("Shared notes from devops.", "devops", "pjm",
                              "Deployment blocked — ETA for fix needed")

    reply = _ask(_agent(store, config), "pjm", message, sender="devops")

    assert "\"Deployment blocked — ETA for fix needed\"" in reply.text


def test_handoffs_end_after_one_round(store, config):
    _sign(store, config, "reviewer", "Rita Gomez")
    _zero_mock_failure(store, version="1.3.0", minute=-30)
    _incident(store, config, "P0")
    agent = _agent(store, config)
    settings = agent.context.settings
    deliveries = []
    for message in ("deploy 1.4.0", "what is the status?"):
        devops_reply = _ask(agent, "devops", message)
        deliveries += route("devops", devops_reply.text, settings).deliveries

    answers = [_ask(agent, delivery.to, delivery.message, sender="devops")
               for delivery in deliveries]

    assert [delivery.to for delivery in deliveries] == ["reviewer", "coder", "pjm"]
    assert all(parse_tags(answer.text).tags == () for answer in answers)


def test_status_report_lists_gates_incidents(store, config):
    _run(store, "r-g3", gate="g3", verdict="PASSED")
    _incident(store, config, "P2")

    reply = _ask(_agent(store, config), "devops", "what's up?")

    assert "- G3: PASSED for 1.4.0 (run r-g3" in reply.text
    assert "- G4: no run yet" in reply.text
    assert "P0 0, P1 0, P2 1, P3 0" in reply.text


def test_reviewer_g3_lists_signoffs(store, config):
    _sign(store, config, "reviewer", "Rita Gomez", comment="looks good")

    reply = _ask(_agent(store, config), "reviewer",
                 "Confirming G3 sign-off before deployment of shop 1.4.0. Please confirm",
                 sender="devops")

    assert "- Rita Gomez as reviewer: approved at" in reply.text
    assert "Tester co-sign (tester) missing" in reply.text
    assert "tinysdlc-nb approve g3 --role tester --by NAME --version 1.4.0" in reply.text
    assert "never approves" in reply.text
    assert _tags(reply.text) == []


def test_reviewer_g3_records_nothing(store, config):
    _sign(store, config, "reviewer", "Rita Gomez")
    count = select(func.count()).select_from(signoffs)
    with store.begin() as connection:
        before = connection.execute(count).scalar()

    _ask(_agent(store, config), "tester", "Please confirm G3 for 1.4.0, APPROVED?",
         sender="devops")

    with store.begin() as connection:
        assert connection.execute(count).scalar() == before


def test_tester_g3_confirmed(store, config):
    _confirm_g3(store, config)

    reply = _ask(_agent(store, config), "tester", "G3 sign-off for 1.4.0?", sender="devops")

    assert "G3 is confirmed at the lite tier" in reply.text


@pytest.mark.parametrize("role", ["coder", "pjm", "pm", "architect", "researcher",
                                  "assistant"])
def test_other_roles_acknowledge(store, config, role):
    _zero_mock_failure(store)
    _incident(store, config, "P1")

    reply = _ask(_agent(store, config), role, "Deployment blocked — fix app/pay.py:42",
                 sender="devops")

    assert "Received from @devops: \"Deployment blocked — fix app/pay.py:42\"" in reply.text
    assert "has to act" in reply.text
    assert _tags(reply.text) == []
    assert reply.notifications == ()


def test_acknowledge_defangs_quoted_tag(store, config):
    reply = _ask(_agent(store, config), "coder", "please [@devops: loop back] now")

    assert "[@" not in reply.text


def test_notice_acknowledged_without_handoffs(store, config):
    _zero_mock_failure(store)
    _incident(store, config, "P1")

    reply = _ask(_agent(store, config), "devops",
                 "Undelivered: [@qa: check status] (unknown id qa)", kind="notice")

    assert "not delivered" in reply.text
    assert "[@" not in reply.text
    assert reply.notifications == ()


def test_secret_in_finding_redacted(store, config):
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
    _zero_mock_failure(store, message=f"hard-coded token {token}")

    reply = _ask(_agent(store, config), "devops", "CI status")

    assert token not in reply.text
    assert "[REDACTED:" in reply.text


def test_deploy_checks_on_postgres(any_store, config):
    _confirm_g3(any_store, config)
    _zero_mock_failure(any_store)
    _incident(any_store, config, "P1")

    reply = _ask(_agent(any_store, config), "devops", "deploy 1.4.0")

    assert "G4 run r-fail for shop 1.4.0 FAILED" in reply.text
    assert [target for target, _ in _tags(reply.text)] == ["coder", "pjm"]
