"""The DevOps role's replies, built from store state: deploy checks, blocked gates, incidents.

Each ``*_section`` function adds lines, hand-offs and notifications to a ``Draft``; the
protocol agent picks the sections a message calls for and scrubs the result. Hand-off
bodies keep the role's fixed wording, so a person or a parser can recognise them:

- ``[@reviewer: Confirming G3 sign-off before deployment of P V. Please confirm]``
- ``[@coder: CI blocked — TYPE at FILE:LINE. Fix before deployment]``
- ``[@pjm: Deployment blocked — CI pipeline failed on ITEMS. ETA for fix needed]``
- ``[@coder: Production issue — root cause suspected in X. Need hotfix for: ISSUE]``
- ``[@pjm: PN incident in progress — impact: X. ETA for resolution: WHEN]``
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from . import state

# Maximum length of a value copied into a hand-off body; a longer title is shortened.
MAX_VALUE_CHARS = 200
# Incidents that get coder and pjm hand-offs in one reply; the owner hears of every one.
MAX_INCIDENT_HANDOFFS = 3
_SPACES = re.compile(r"\s+")


@dataclass
class Draft:
    """A reply being assembled: text lines, hand-off tags, notifications and metadata."""

    lines: list[str] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)
    notifications: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        parts = ["\n".join(self.lines).strip()]
        if self.handoffs:
            parts.append("\n".join(self.handoffs))
        return "\n\n".join(part for part in parts if part)


@dataclass(frozen=True)
class Scene:
    """Inputs of a section: the store, config, team settings and the request's sender."""

    store: Any
    config: Any
    settings: Any
    sender: str

    @property
    def project(self) -> str:
        return self.config.name


def plain(text: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """Return ``text`` on one line, shortened, with nothing a tag parser would read.

    Backticks become quotes, and brackets become parentheses unless they are balanced,
    so a copied title can neither open a hand-off nor close one early.
    """
    value = _SPACES.sub(" ", str(text or "")).strip().replace("`", "'")
    if len(value) > limit:
        value = value[:limit - 1].rstrip() + "…"
    if "[@" in value or not _balanced(value):
        value = value.replace("[", "(").replace("]", ")")
    return value


def _balanced(value: str) -> bool:
    depth = 0
    for character in value:
        if character == "[":
            depth += 1
        elif character == "]":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "unknown"


def agent_for_role(settings: Any, role: str) -> str | None:
    """Return the id of the first agent in settings whose SDLC role is ``role``."""
    agents = getattr(settings, "agents", None) or {}
    for spec in agents.values():
        if spec.role.lower() == role:
            return spec.id
    return None


def hand_off(scene: Scene, draft: Draft, role: str, body: str,
             fallback_id: str | None = None) -> None:
    """Add ``[@id: body]`` for the agent of ``role``, or a line that explains why not.

    A hand-off never goes back to the request's sender, because this reply reaches it.
    """
    target = agent_for_role(scene.settings, role) or fallback_id
    if target is None:
        draft.lines.append(f"No agent has the {role} role in the team settings, so this "
                           f"message was not handed to a {role}: {body}")
        return
    if target == scene.sender:
        draft.lines.append(f"@{target} sent this request, so this reply carries what it would "
                           f"have been handed.")
        return
    tag = f"[@{target}: {body}]"
    if tag not in draft.handoffs:
        draft.handoffs.append(tag)


def deploy_section(scene: Scene, draft: Draft, version: str | None) -> None:
    """Check G3 before a deployment, then report the G4 verdict and the rollback status."""
    version = version or state.newest_version(scene.store, scene.project)
    if version is None:
        draft.lines.append(f"No version was named, and {scene.project} has no gate run, "
                           f"sign-off or evidence yet. Name the version to deploy, for "
                           f"example: deploy 1.4.0.")
        return
    draft.meta["version"] = version

    g3 = state.g3_status(scene.store, scene.project, version, scene.config.tier)
    if not g3["confirmed"]:
        open_list = "; ".join(describe_requirement(entry) for entry in g3["open"])
        draft.lines.append(f"Deployment of {scene.project} {version} is not authorized: G3 "
                           f"(Ship Ready) is not confirmed at the {g3['tier']} tier. Open "
                           f"sign-offs: {open_list}.")
        draft.lines.append(f"A person records each one with: tinysdlc-nb approve g3 --role "
                           f"ROLE --by NAME --version {version}")
        hand_off(scene, draft, "reviewer", f"Confirming G3 sign-off before deployment of "
                 f"{plain(scene.project)} {plain(version)}. Please confirm",
                 fallback_id="reviewer")
        return

    signers = ", ".join(f"{entry['signer']} ({entry['name']})" for entry in g3["requirements"])
    draft.lines.append(f"G3 is confirmed for {scene.project} {version}: {signers}.")
    _g4_lines(scene, draft, version)
    draft.lines.append(rollback_line(scene, version))


def _g4_lines(scene: Scene, draft: Draft, version: str) -> None:
    run = state.newest_run(scene.store, scene.project, "g4", version)
    if run is None:
        draft.lines.append(f"No G4 run exists for {version}. Run it with: tinysdlc-nb gate g4 "
                           f"--version {version}. Deployment is not authorized until G4 "
                           f"passes.")
        return
    draft.meta["g4_run"] = run["run_id"]
    if run["verdict"] is None:
        draft.lines.append(f"G4 run {run['run_id']} for {version} has not finished (status "
                           f"{run['status']}). Deployment is not authorized until G4 passes.")
        return

    if run["verdict"] == "PASSED":
        draft.lines.append(f"Deployment of {scene.project} {version} is authorized: G3 "
                           f"confirmed and G4 run {run['run_id']} PASSED. A person runs the "
                           f"deployment; this agent does not deploy.")
        return
    draft.lines.append(f"Deployment of {scene.project} {version} is not authorized until G4 "
                       f"passes.")
    if run["verdict"] == "FAILED":
        blocked_run_section(scene, draft, run)
        return

    items = state.failing_items(scene.store, run["run_id"])
    listed = ", ".join(f"{item['item']} ({item['status']})" for item in items) or "none"
    draft.lines.append(f"Newest G4 run {run['run_id']} for {version}: {run['verdict']}. "
                       f"Blocking items: {listed}.")


def rollback_line(scene: Scene, version: str) -> str:
    rollback = state.rollback_evidence(scene.store, scene.project, version)
    if rollback["tested"]:
        return (f"Rollback available and tested (recorded by {rollback['recorded_by']} at "
                f"{when(rollback['recorded_at'])}: {plain(rollback['note'])}).")
    return (f"No tested rollback recorded for {version}. Rehearse it, or record it with: "
            f"tinysdlc-nb evidence add --gate g4 --item rollback_tested --version {version} "
            f"--by NAME --note TEXT")


def describe_requirement(entry: dict[str, Any]) -> str:
    roles = " or ".join(entry["roles"])
    if entry["state"] == "rejected":
        reason = f": {plain(entry['comment'])}" if entry["comment"] else ""
        return f"{entry['label']} ({roles}) rejected by {entry['signer']}{reason}"
    return f"{entry['label']} ({roles}) missing"


def failed_gate_section(scene: Scene, draft: Draft, requested: bool) -> None:
    """Hand the newest failed gate run to the coder and the pjm.

    ``requested`` is True when the message asked about gates, so that a line reports
    that nothing is failing.
    """
    runs = state.failed_runs(scene.store, scene.project)
    if not runs:
        if requested:
            draft.lines.append(f"No gate run of {scene.project} is failing.")
        return
    blocked_run_section(scene, draft, runs[0])


def blocked_run_section(scene: Scene, draft: Draft, run: dict[str, Any]) -> None:
    gate = run["gate"].upper()
    items = state.failing_items(scene.store, run["run_id"])
    found = state.failing_findings(scene.store, run["run_id"])
    draft.meta["failed_run"] = run["run_id"]
    listed = ", ".join(f"{item['item']} ({item['status']})" for item in items) or "no item"
    draft.lines.append(f"{gate} run {run['run_id']} for {scene.project} {run['version']} "
                       f"FAILED on: {listed}.")

    failed_checks = [item for item in items if item["kind"] == "check"
                     and item["status"] == "FAIL"]
    if found:
        first = found[0]
        draft.lines.append(f"First of {len(found)} finding(s): {location(first)} "
                           f"{first['rule']}: {plain(first['message'])}")
        hand_off(scene, draft, "coder", f"CI blocked — {plain(first['item'])} violation "
                 f"({plain(first['rule'])}) at {plain(location(first))}. Fix before deployment")
    elif failed_checks:
        item = failed_checks[0]
        summary = plain(item["summary"]).rstrip(".")
        hand_off(scene, draft, "coder", f"CI blocked — {plain(item['item'])} failed at {gate} "
                 f"item {plain(item['item'])}: {summary}. Fix before deployment")
    else:
        draft.lines.append("No check failed, only evidence or sign-off items, which people "
                           "record; no code fix is requested.")

    names = ", ".join(plain(item["item"]) for item in items) or "no listed item"
    hand_off(scene, draft, "pjm", f"Deployment blocked — CI pipeline failed on {gate} "
             f"{plain(run['version'])} ({names}). ETA for fix needed")


def location(finding: dict[str, Any]) -> str:
    if finding["line"] is None:
        return finding["file"]
    return f"{finding['file']}:{finding['line']}"


def incidents_section(scene: Scene, draft: Draft, mentioned: set[str] = frozenset()) -> None:
    """Notify the owner of open P0/P1 incidents and hand the worst ones to coder and pjm.

    A message that names incidents (an escalation names the one that rose) is about
    those: only they are notified and handed off, so older ones are not repeated.
    """
    incidents = state.open_escalated_incidents(scene.store, scene.config)
    named = [incident for incident in incidents if incident["display_id"] in mentioned]
    if named:
        incidents = named
    if not incidents:
        draft.lines.append("No P0 or P1 incident is open.")
        return

    owner = scene.config.incidents["owner"]
    draft.meta["notified"] = [[incident["display_id"], incident["severity"]]
                              for incident in incidents]
    for incident in incidents:
        draft.lines.append(f"{incident['display_id']} {incident['severity']} "
                           f"{incident['status']}: {plain(incident['title'])}"
                           f"{_service_suffix(incident)}; resolve due "
                           f"{when(incident['resolve_due'])}. Notifying {owner}.")
        draft.notifications.append((owner, owner_notice(scene, incident)))

    for incident in incidents[:MAX_INCIDENT_HANDOFFS]:
        component = plain(incident["service"] or incident["title"])
        issue = f"{incident['display_id']} {plain(incident['title'])}"
        hand_off(scene, draft, "coder", f"Production issue — root cause suspected in "
                 f"{component}. Need hotfix for: {issue}")
        impact = plain(f"{incident['display_id']} {incident['title']}"
                       f"{_service_suffix(incident)}")
        hand_off(scene, draft, "pjm", f"{incident['severity']} incident in progress — impact: "
                 f"{impact}. ETA for resolution: {when(incident['resolve_due'])}")
    if len(incidents) > MAX_INCIDENT_HANDOFFS:
        draft.lines.append(f"Hand-offs cover the {MAX_INCIDENT_HANDOFFS} most severe "
                           f"incidents; the others are listed above.")


def owner_notice(scene: Scene, incident: dict[str, Any]) -> str:
    """Return the owner's notice for one incident.

    The worker drops a text it already sent to the same person. The notice leaves out
    what changes (status, hand-offs), so it goes out once per incident and severity.
    """
    return (f"Open {incident['severity']} incident {incident['display_id']} on "
            f"{scene.project}: {plain(incident['title'])}{_service_suffix(incident)}. "
            f"Detected {when(incident['detected_at'])}; resolve due "
            f"{when(incident['resolve_due'])}.")


def _service_suffix(incident: dict[str, Any]) -> str:
    return f" (service {incident['service']})" if incident["service"] else ""


def status_section(scene: Scene, draft: Draft) -> None:
    """Add the newest verdict of each gate, open incidents by severity and what this
    agent does offline."""
    runs = state.newest_gate_runs(scene.store, scene.project)
    draft.lines.append(f"Status of {scene.project} ({scene.config.tier} tier):")
    for gate in ("g3", "g4"):
        run = runs.get(gate)
        if run is None:
            draft.lines.append(f"- {gate.upper()}: no run yet")
            continue
        verdict = run["verdict"] or f"not finished ({run['status']})"
        draft.lines.append(f"- {gate.upper()}: {verdict} for {run['version']} (run "
                           f"{run['run_id']}, started {when(run['started_at'])})")

    incidents = state.open_incidents(scene.store, scene.config)
    counts = {severity: 0 for severity in ("P0", "P1", "P2", "P3")}
    for incident in incidents:
        counts[incident["severity"]] += 1
    listed = ", ".join(f"{severity} {count}" for severity, count in counts.items())
    draft.lines.append(f"- Open incidents: {listed}")
    draft.lines.append("Offline, this agent checks G3 before a deployment, reports G4 "
                       "verdicts and rollback evidence, hands failed gates to the coder and "
                       "pjm, and escalates P0/P1 incidents to "
                       f"{scene.config.incidents['owner']}. It does not deploy, approve gates "
                       f"or sign off.")
