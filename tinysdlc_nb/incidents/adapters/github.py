"""Adapter for GitHub webhooks of the deploy pipeline: workflow runs, jobs, checks, deployments.

A failed run opens an incident of the pipeline ``github:{repository}:{workflow}:{branch}``
and the next successful run resolves it. Jobs of that workflow are its member alerts,
keyed by job name. A run, a check run or a deployment has no ``alert_key`` because it is
the whole incident. Runs and checks that have not completed, and conclusions that say
nothing about the code (cancelled, skipped, neutral, action_required), give no signals.
GitHub names the event only in the ``X-GitHub-Event`` header, so the body's top-level
object tells the events apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import PayloadError
from ..model import ActorKind, AdapterContext, Event, Signal
from ._payload import (
    optional_mapping,
    require_field,
    require_mapping,
    require_object,
    require_time,
    text,
)

NAME = "github"

_FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
_FAILED_DEPLOYMENT_STATES = frozenset({"failure", "error"})


def parse(payload: Any, context: AdapterContext) -> list[Signal]:
    """Return the signal of one completed run, job, check run or deployment status, or []."""
    body = require_object(payload, NAME)

    # deployment_status bodies may also hold the workflow_run that deployed, so they go first.
    parsers: tuple[tuple[str, Callable[[dict[str, Any], AdapterContext], list[Signal]]], ...] = (
        ("deployment_status", _deployment_status),
        ("check_run", _check_run),
        ("workflow_job", _workflow_job),
        ("workflow_run", _workflow_run),
    )
    for key, parser in parsers:
        if isinstance(body.get(key), dict):
            return parser(body, context)
    if "zen" in body or "hook_id" in body or ("repository" in body and "sender" in body):
        # GitHub's ping when a webhook is created, or another event (push, issues) the
        # hook was also set up for: nothing to record, and not an error.
        return []
    raise PayloadError(f"{NAME} payload: none of {', '.join(key for key, _ in parsers)} is "
                       f"present; expected the body of one of those webhook events")


def _workflow_run(body: dict[str, Any], context: AdapterContext) -> list[Signal]:
    run = body["workflow_run"]
    event = _conclusion_event(run, _FAILED_CONCLUSIONS)
    if event is None:
        return []

    repository, default_branch = _repository(body)
    workflow = (text(run.get("name")) or text(optional_mapping(body, "workflow", NAME,
                                                               "workflow").get("name"))
                or text(run.get("path")))
    branch = text(run.get("head_branch"))
    run_id = text(require_field(run, "id", NAME, "workflow_run.id", "the run's id"))
    attempt = text(run.get("run_attempt") or 1)
    conclusion = text(run["conclusion"])

    # Each attempt of a re-run has its own run_started_at. The run's updated_at is when
    # the successful attempt finished.
    time_field = "run_started_at" if event is Event.FIRING else "updated_at"
    return [_signal(
        body, context, event, repository, default_branch,
        incident_key=f"{NAME}:{repository}:{workflow}:{branch}",
        alert_key=None,
        occurred_at_path=f"workflow_run.{time_field}",
        occurred_at_value=run.get(time_field),
        dedup_key=f"{NAME}:workflow_run:{run_id}:{attempt}:{event.value}",
        branch=branch,
        title=f"Workflow '{workflow}' on {branch}: {conclusion}",
        description=text(run.get("display_title")),
        details=_fields(run, ("id", "run_number", "run_attempt", "event", "conclusion",
                              "head_sha", "html_url")),
    )]


def _workflow_job(body: dict[str, Any], context: AdapterContext) -> list[Signal]:
    job = body["workflow_job"]
    event = _conclusion_event(job, _FAILED_CONCLUSIONS)
    if event is None:
        return []

    repository, default_branch = _repository(body)
    name = text(require_field(job, "name", NAME, "workflow_job.name", "the job's name"))
    job_id = text(require_field(job, "id", NAME, "workflow_job.id", "the job's id"))
    # NOTE: payloads sent before GitHub added workflow_name (2022) key each run apart, so
    # a later successful run of the same workflow does not resolve their incident.
    workflow = text(job.get("workflow_name")) or f"run-{text(job.get('run_id'))}"
    branch = text(job.get("head_branch"))
    attempt = text(job.get("run_attempt") or 1)
    conclusion = text(job["conclusion"])

    details = _fields(job, ("id", "run_id", "run_attempt", "conclusion", "head_sha",
                            "html_url", "runner_name", "labels"))
    failed_steps = [text(step.get("name")) for step in job.get("steps") or []
                    if isinstance(step, dict) and step.get("conclusion") in _FAILED_CONCLUSIONS]
    if event is Event.FIRING:
        details["failed_steps"] = failed_steps

    time_field = "started_at" if event is Event.FIRING else "completed_at"
    return [_signal(
        body, context, event, repository, default_branch,
        incident_key=f"{NAME}:{repository}:{workflow}:{branch}",
        alert_key=name,
        occurred_at_path=f"workflow_job.{time_field}",
        occurred_at_value=job.get(time_field),
        dedup_key=f"{NAME}:workflow_job:{job_id}:{attempt}:{event.value}",
        branch=branch,
        title=f"Job '{name}' of workflow '{workflow}' on {branch}: {conclusion}",
        description=f"failed steps: {', '.join(failed_steps)}" if failed_steps else "",
        details=details,
    )]


def _check_run(body: dict[str, Any], context: AdapterContext) -> list[Signal]:
    check = body["check_run"]
    event = _conclusion_event(check, _FAILED_CONCLUSIONS)
    if event is None:
        return []

    repository, default_branch = _repository(body)
    name = text(require_field(check, "name", NAME, "check_run.name", "the check's name"))
    check_id = text(require_field(check, "id", NAME, "check_run.id", "the check run's id"))
    suite = optional_mapping(check, "check_suite", NAME, "check_run.check_suite")
    branch = text(suite.get("head_branch"))
    output = optional_mapping(check, "output", NAME, "check_run.output")

    time_field = "started_at" if event is Event.FIRING else "completed_at"
    return [_signal(
        body, context, event, repository, default_branch,
        incident_key=f"{NAME}:{repository}:{name}:{branch}",
        alert_key=None,
        occurred_at_path=f"check_run.{time_field}",
        occurred_at_value=check.get(time_field),
        dedup_key=(f"{NAME}:check_run:{check_id}:{text(check.get('completed_at'))}:"
                   f"{event.value}"),
        branch=branch,
        title=f"Check '{name}' on {branch}: {text(check['conclusion'])}",
        description=text(output.get("title") or output.get("summary")),
        details=_fields(check, ("id", "conclusion", "head_sha", "html_url")),
    )]


def _deployment_status(body: dict[str, Any], context: AdapterContext) -> list[Signal]:
    """Map a deployment's failure or error to FIRING and its success to RESOLVED.

    The states inactive, pending, queued and in_progress give no signals.
    """
    status = body["deployment_status"]
    state = text(status.get("state")).lower()
    if state in _FAILED_DEPLOYMENT_STATES:
        event = Event.FIRING
    elif state == "success":
        event = Event.RESOLVED
    else:
        return []

    repository, default_branch = _repository(body)
    deployment = optional_mapping(body, "deployment", NAME, "deployment")
    environment = text(status.get("environment") or deployment.get("environment"))
    status_id = text(require_field(status, "id", NAME, "deployment_status.id",
                                   "the deployment status's id"))

    return [_signal(
        body, context, event, repository, default_branch,
        incident_key=f"{NAME}:{repository}:deployment:{environment}",
        alert_key=None,
        occurred_at_path="deployment_status.created_at",
        occurred_at_value=status.get("created_at"),
        dedup_key=f"{NAME}:deployment_status:{status_id}",
        branch=text(deployment.get("ref")),
        title=f"Deployment to {environment}: {state}",
        description=text(status.get("description")),
        details={"state": state, "environment": environment,
                 **_fields(deployment, ("id", "ref", "sha", "task"), prefix="deployment_")},
    )]


def _conclusion_event(item: dict[str, Any], failed: frozenset[str]) -> Event | None:
    """FIRING for a failed conclusion, RESOLVED for success, None while running or otherwise."""
    if item.get("status") != "completed":
        return None
    conclusion = text(item.get("conclusion"))
    if conclusion in failed:
        return Event.FIRING
    if conclusion == "success":
        return Event.RESOLVED
    return None


def _repository(body: dict[str, Any]) -> tuple[str, str]:
    """Return the repository's full name and its default branch."""
    repository = require_mapping(body, "repository", NAME, "repository",
                                 "the repository object")
    full_name = text(require_field(repository, "full_name", NAME, "repository.full_name",
                                   "owner/name of the repository"))
    return full_name, text(repository.get("default_branch"))


def _signal(body: dict[str, Any], context: AdapterContext, event: Event, repository: str,
            default_branch: str, *, incident_key: str, alert_key: str | None,
            occurred_at_path: str, occurred_at_value: Any, dedup_key: str, branch: str, title: str,
            description: str, details: dict[str, Any]) -> Signal:
    """Build a signal with what every GitHub event shares: actor, service and severity.

    Only a failure has a ``started_at`` and may open an incident: a success resolves the
    pipeline's open incident, if there is one, and is ignored otherwise.
    """
    occurred_at = require_time(occurred_at_value, NAME, occurred_at_path)
    return Signal(
        source=NAME,
        incident_key=incident_key,
        event=event,
        occurred_at=occurred_at,
        dedup_key=dedup_key,
        alert_key=alert_key,
        started_at=occurred_at if event is Event.FIRING else None,
        title=title,
        service=repository,
        severity=_severity(context, branch, default_branch) if event is Event.FIRING else None,
        actor=_actor(body),
        actor_kind=ActorKind.SYSTEM,
        description=description,
        details={"branch": branch, **details},
        opens_incident=event is Event.FIRING,
    )


def _severity(context: AdapterContext, branch: str, default_branch: str) -> str:
    """P1 for a failure on the default branch and P2 elsewhere, unless the map overrides."""
    if branch and branch == default_branch:
        return context.severity(NAME, "default_branch") or "P1"
    return context.severity(NAME, "branch") or "P2"


def _actor(body: dict[str, Any]) -> str:
    sender = body.get("sender")
    if isinstance(sender, dict) and sender.get("login"):
        return text(sender["login"])

    run = body.get("workflow_run")
    for key in ("triggering_actor", "actor"):
        person = run.get(key) if isinstance(run, dict) else None
        if isinstance(person, dict) and person.get("login"):
            return text(person["login"])
    return ""


def _fields(container: dict[str, Any], keys: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{key}": container[key] for key in keys
            if container.get(key) not in (None, "")}
