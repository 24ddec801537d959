"""The github adapter on octokit's example webhook bodies and on edited copies of them."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from incidentkit import FIXTURES as SHARED_FIXTURES

from tinysdlc_nb.errors import PayloadError
from tinysdlc_nb.incidents.adapters import github
from tinysdlc_nb.incidents.model import DEFAULT_SEVERITY_MAP, ActorKind, AdapterContext, Event

FIXTURES = SHARED_FIXTURES / "ci" / "github"
RECEIVED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CONTEXT = AdapterContext(severity_map=DEFAULT_SEVERITY_MAP, received_at=RECEIVED_AT)

RUN_PIPELINE = "github:octo-org/octo-repo:test:master"
JOB_PIPELINE = "github:Codertocat/Hello-World:CodeQL:main"

# Per fixture path: (event, occurred_at in UTC, incident key, alert key, dedup key), or
# None for a payload that gives no signals.
EXPECTED = {
    "check_run/completed.payload.json": (
        Event.RESOLVED, "2019-05-15T15:21:12+00:00",
        "github:Codertocat/Hello-World:Octocoders-linter:changes", None,
        "github:check_run:128620228:2019-05-15T15:21:12Z:resolved"),
    "deployment_status/payload.json": (
        Event.RESOLVED, "2019-05-15T15:20:55+00:00",
        "github:Codertocat/Hello-World:deployment:production", None,
        "github:deployment_status:209916254"),
    "workflow_job/completed.failure.with-organization.payload.json": (
        Event.FIRING, "2021-08-05T10:34:58+00:00", JOB_PIPELINE, "linters",
        "github:workflow_job:289782451:1:firing"),
    "workflow_job/completed.success.with-organization.payload.json": (
        Event.RESOLVED, "2021-08-05T10:38:16+00:00", JOB_PIPELINE, "linters",
        "github:workflow_job:289782451:1:resolved"),
    "workflow_job/in_progress.payload.json": None,
    "workflow_job/queued.payload.json": None,
    "workflow_run/completed.payload.json": (
        Event.RESOLVED, "2020-10-05T16:33:49+00:00", RUN_PIPELINE, None,
        "github:workflow_run:289782451:1:resolved"),
    "workflow_run/requested.payload.json": None,
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def failed_run(conclusion: str = "failure") -> dict:
    """The completed workflow_run example turned into a failed run."""
    payload = load("workflow_run/completed.payload.json")
    payload["workflow_run"]["conclusion"] = conclusion
    return payload


def parse_one(payload: dict, context: AdapterContext = CONTEXT):
    signals = github.parse(payload, context)
    assert len(signals) == 1
    return signals[0]


def fixture_names() -> list[str]:
    return sorted(path.relative_to(FIXTURES).as_posix() for path in FIXTURES.glob("*/*.json"))


def test_every_fixture_has_expectations():
    assert fixture_names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_parses(name):
    signals = github.parse(load(name), CONTEXT)

    if EXPECTED[name] is None:
        assert signals == []
        return
    event, occurred_at, incident_key, alert_key, dedup_key = EXPECTED[name]
    assert len(signals) == 1
    assert signals[0].event is event
    assert signals[0].occurred_at.isoformat() == occurred_at
    assert signals[0].incident_key == incident_key
    assert signals[0].alert_key == alert_key
    assert signals[0].dedup_key == dedup_key
    assert signals[0].source == "github"
    assert signals[0].actor == "Codertocat"
    assert signals[0].actor_kind is ActorKind.SYSTEM


def test_requested_run_gives_nothing():
    payload = load("workflow_run/requested.payload.json")

    assert payload["workflow_run"]["status"] == "queued"
    assert github.parse(payload, CONTEXT) == []


@pytest.mark.parametrize("name", ["workflow_job/queued.payload.json",
                                  "workflow_job/in_progress.payload.json"])
def test_unfinished_job_gives_nothing(name):
    assert github.parse(load(name), CONTEXT) == []


def test_failed_run_fires_at_start():
    signal = parse_one(failed_run())

    assert signal.event is Event.FIRING
    assert signal.occurred_at == dt.datetime(2020, 10, 5, 16, 33, 49, tzinfo=dt.UTC)
    assert signal.started_at == signal.occurred_at
    assert signal.incident_key == RUN_PIPELINE
    assert signal.dedup_key == "github:workflow_run:289782451:1:firing"
    assert signal.title == "Workflow 'test' on master: failure"
    assert signal.description == "ci(action): update actions/setup-node digest to 8c91899"


@pytest.mark.parametrize("conclusion", ["failure", "timed_out", "startup_failure"])
def test_failed_conclusions_fire(conclusion):
    assert parse_one(failed_run(conclusion)).event is Event.FIRING


@pytest.mark.parametrize("conclusion", ["cancelled", "skipped", "neutral", "action_required",
                                        None])
def test_other_conclusions_give_nothing(conclusion):
    assert github.parse(failed_run(conclusion), CONTEXT) == []


def test_success_resolves_same_pipeline():
    failure = parse_one(failed_run())
    success = parse_one(load("workflow_run/completed.payload.json"))

    assert success.incident_key == failure.incident_key
    assert success.dedup_key != failure.dedup_key
    assert success.started_at is None
    assert success.severity is None


def test_rerun_attempt_is_new_failure():
    first = failed_run()
    second = copy.deepcopy(first)
    second["workflow_run"]["run_attempt"] = 2
    second["workflow_run"]["run_started_at"] = "2020-10-05T16:41:02Z"

    first_signal = parse_one(first)
    second_signal = parse_one(second)

    assert second_signal.dedup_key == "github:workflow_run:289782451:2:firing"
    assert second_signal.dedup_key != first_signal.dedup_key
    assert second_signal.occurred_at == dt.datetime(2020, 10, 5, 16, 41, 2, tzinfo=dt.UTC)


def test_default_branch_failure_is_p1():
    assert parse_one(failed_run()).severity == "P1"


def test_other_branch_failure_is_p2():
    payload = failed_run()
    payload["workflow_run"]["head_branch"] = "feature/login"

    signal = parse_one(payload)

    assert signal.severity == "P2"
    assert signal.incident_key == "github:octo-org/octo-repo:test:feature/login"


def test_branch_severity_from_map():
    context = AdapterContext(severity_map={**DEFAULT_SEVERITY_MAP, "github:default_branch": "P0",
                                           "github:branch": "P3"}, received_at=RECEIVED_AT)
    other_branch = failed_run()
    other_branch["workflow_run"]["head_branch"] = "develop"

    assert parse_one(failed_run(), context).severity == "P0"
    assert parse_one(other_branch, context).severity == "P3"


def test_workflow_name_preferred_over_path():
    payload = failed_run()
    payload["workflow_run"]["name"] = "CI"

    assert parse_one(payload).incident_key == "github:octo-org/octo-repo:CI:master"


def test_workflow_path_when_no_name():
    payload = failed_run()
    del payload["workflow"]

    signal = parse_one(payload)

    assert signal.incident_key == "github:octo-org/octo-repo:.github/workflows/test.yml:master"


def test_triggering_actor_without_sender():
    payload = failed_run()
    del payload["sender"]

    assert parse_one(payload).actor == "Codertocat"


def test_run_details():
    signal = parse_one(failed_run())

    assert signal.details["run_number"] == 163
    assert signal.details["event"] == "repository_dispatch"
    assert signal.details["branch"] == "master"
    assert signal.details["html_url"] == "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    assert signal.service == "octo-org/octo-repo"


def test_failed_job_names_failed_step():
    signal = parse_one(load("workflow_job/completed.failure.with-organization.payload.json"))

    assert signal.details["failed_steps"] == ["Run yarn run format-check"]
    assert signal.description == "failed steps: Run yarn run format-check"
    assert signal.title == "Job 'linters' of workflow 'CodeQL' on main: failure"


def test_failed_job_on_other_branch_is_p2():
    signal = parse_one(load("workflow_job/completed.failure.with-organization.payload.json"))

    # The job ran on main while the repository's default branch is master.
    assert signal.severity == "P2"


def test_job_success_resolves_its_alert():
    failure = parse_one(load("workflow_job/completed.failure.with-organization.payload.json"))
    success = parse_one(load("workflow_job/completed.success.with-organization.payload.json"))

    assert success.alert_key == failure.alert_key == "linters"
    assert success.incident_key == failure.incident_key
    assert "failed_steps" not in success.details
    assert success.started_at is None


def test_job_without_workflow_name():
    payload = load("workflow_job/completed.failure.with-organization.payload.json")
    del payload["workflow_job"]["workflow_name"]

    signal = parse_one(payload)

    assert signal.incident_key == "github:Codertocat/Hello-World:run-2202229078:main"


def test_failed_check_run_fires():
    payload = load("check_run/completed.payload.json")
    payload["check_run"]["conclusion"] = "failure"

    signal = parse_one(payload)

    assert signal.event is Event.FIRING
    assert signal.occurred_at == dt.datetime(2019, 5, 15, 15, 21, 12, tzinfo=dt.UTC)
    assert signal.severity == "P2"
    assert signal.dedup_key == "github:check_run:128620228:2019-05-15T15:21:12Z:firing"


def test_unfinished_check_run_gives_nothing():
    payload = load("check_run/completed.payload.json")
    payload["check_run"]["status"] = "in_progress"
    payload["check_run"]["conclusion"] = None

    assert github.parse(payload, CONTEXT) == []


@pytest.mark.parametrize("state", ["failure", "error"])
def test_failed_deployment_fires(state):
    payload = load("deployment_status/payload.json")
    payload["deployment_status"]["state"] = state

    signal = parse_one(payload)

    assert signal.event is Event.FIRING
    assert signal.severity == "P1"
    assert signal.title == f"Deployment to production: {state}"
    assert signal.details["deployment_ref"] == "master"


@pytest.mark.parametrize("state", ["inactive", "pending", "queued", "in_progress"])
def test_pending_deployment_gives_nothing(state):
    payload = load("deployment_status/payload.json")
    payload["deployment_status"]["state"] = state

    assert github.parse(payload, CONTEXT) == []


def test_deployment_status_read_before_its_run():
    payload = load("deployment_status/payload.json")
    payload["workflow_run"] = failed_run()["workflow_run"]

    signal = parse_one(payload)

    assert signal.dedup_key == "github:deployment_status:209916254"


def test_same_payload_twice_same_key():
    payload = load("workflow_job/completed.failure.with-organization.payload.json")

    assert parse_one(payload).dedup_key == parse_one(copy.deepcopy(payload)).dedup_key


def test_unknown_event_rejected():
    with pytest.raises(PayloadError, match="github payload: none of deployment_status, "
                                           "check_run, workflow_job, workflow_run is present"):
        github.parse({"action": "opened", "issue": {"id": 1}}, CONTEXT)


def test_missing_repository_rejected():
    payload = failed_run()
    del payload["repository"]

    with pytest.raises(PayloadError, match="github payload: repository is missing; expected "
                                           "the repository object"):
        github.parse(payload, CONTEXT)


def test_unreadable_run_start_rejected():
    payload = failed_run()
    payload["workflow_run"]["run_started_at"] = "5 October 2020"

    with pytest.raises(PayloadError, match="workflow_run.run_started_at '5 October 2020' is "
                                           "not a valid time"):
        github.parse(payload, CONTEXT)


@pytest.mark.parametrize("payload", [
    {"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "Repository"}},
    {"ref": "refs/heads/main", "repository": {"full_name": "o/r"}, "sender": {"login": "a"}},
])
def test_ping_and_other_events_ignored(payload):
    assert github.parse(payload, CONTEXT) == []
