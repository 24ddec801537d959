"""The offline ``protocol`` agent: replies from store state, following each role's patterns.

It needs no network and no key, and the same store state always gives the same reply.
Only the devops role hands off, and only to the reviewer, coder and pjm; every other role
answers without a hand-off, so a conversation with protocol agents always ends. No role
approves anything: sign-offs are records that people make through the CLI or a notebook.
"""

from __future__ import annotations

import logging
import re

from ...scrub import scrub
from ..model import HUMAN, AgentContext, AgentReply, AgentRequest
from ..settings import AgentSpec
from . import devops_patterns, state
from .devops_patterns import Draft, Scene, plain, when

log = logging.getLogger(__name__)

_DEPLOY = re.compile(r"\b(deploy\w*|releas(?:e|es|ing)|ship(?:ping)?(?![ -]?ready)"
                     r"|roll(?:ing)?[ -]?out|rollout)\b", re.IGNORECASE)
_GATE = re.compile(r"\b(gates?|g3|g4|ci|pipelines?|checks?|builds?|lint|scans?|findings?)\b",
                   re.IGNORECASE)
_STATUS = re.compile(r"\b(status|overview|summary|health|report|what'?s up)\b", re.IGNORECASE)
_INCIDENT = re.compile(r"\b(incidents?|outages?|escalat\w*|alerts?|p0|p1|on-?call|inc-\d+"
                       r"|production issue)\b", re.IGNORECASE)
_G3 = re.compile(r"\b(g3|ship[ -]ready|sign[ -]?offs?|co-?sign)\b", re.IGNORECASE)
# 1.4.0, v2.0.0-rc1, 1.4.0rc1, 2.1: at least two dotted numbers, then an optional suffix.
_VERSION = re.compile(r"(?<![\w.])[vV]?\d+(?:\.\d+){1,3}(?:[-+.]?[A-Za-z][A-Za-z0-9.]*)?"
                      r"(?![\w-])")
_QUOTE_CHARS = 240
_INCIDENT_ID = re.compile(r"\bINC-(\d+)\b", re.IGNORECASE)
# The header routing puts before the part of a message directed at its recipient; the
# teammates' shared context comes before it.
_DIRECTED_HEADER = re.compile(r"^For @[a-z0-9_.-]+ from @[a-z0-9_.-]+:\n", re.MULTILINE)

# Per role: the work the offline agent does not do, and who must do it instead.
_OFFLINE_LIMITS = {
    "coder": ("does not write code", "a developer on the team"),
    "pjm": ("does not write plans or estimates", "the project manager"),
    "pm": ("does not write requirements", "the product manager"),
    "architect": ("does not write designs", "the architect"),
    "researcher": ("does not run research", "a researcher on the team"),
    "assistant": ("does not route requests on its own", "the person the request is for"),
    "reviewer": ("does not review code", "the reviewer"),
    "tester": ("does not run tests", "the tester"),
}


class ProtocolAgent:
    """The provider ``protocol``: deterministic replies built from the store, no network.

    The object keeps no state between calls, so the worker's threads can share it.
    """

    # Replies take milliseconds, so the worker may hand over several messages per claim.
    batch_size = 16

    def __init__(self, context: AgentContext):
        self.context = context

    def reply(self, request: AgentRequest, spec: AgentSpec) -> AgentReply:
        """Reply to ``request`` as ``spec.role``; every text returned is scrubbed."""
        role = spec.role.strip().lower()
        scene = Scene(self.context.store, self.context.config, self.context.settings,
                      request.sender)
        draft = Draft(meta={"provider": "protocol", "role": role})

        directed = directed_part(request.message)
        if request.kind == "notice":
            _acknowledge_notice(directed, draft)
        elif role == "devops":
            _devops(scene, directed, draft)
        elif role in ("reviewer", "tester") and _G3.search(directed):
            _g3_report(scene, directed, role, draft)
        else:
            _acknowledge(scene, request.sender, directed, spec, role, draft)

        log.info("protocol agent %s (%s) replied to message %s of conversation %s with %d "
                 "hand-off(s), %d notification(s)", spec.id, role, request.message_id,
                 request.conversation_id, len(draft.handoffs), len(draft.notifications))
        return AgentReply(text=scrub(draft.text()),
                          notifications=tuple((to, scrub(text))
                                              for to, text in draft.notifications),
                          meta=draft.meta)


def _devops(scene: Scene, message: str, draft: Draft) -> None:
    """Pick the DevOps sections the message calls for, in the role's order of concern."""
    if _DEPLOY.search(message):
        draft.meta["patterns"] = ["deploy"]
        devops_patterns.deploy_section(scene, draft, find_version(scene, message))
        return

    asks_gate = bool(_GATE.search(message))
    asks_status = bool(_STATUS.search(message))
    asks_incident = bool(_INCIDENT.search(message))
    runs = state.gate_runs_of(scene.store, scene.project)
    newest_failed = bool(runs) and runs[0]["verdict"] == "FAILED"
    patterns = []

    if asks_gate or asks_status or newest_failed:
        patterns.append("failed_gate")
        devops_patterns.failed_gate_section(scene, draft,
                                            requested=asks_gate or asks_status)
    if asks_incident or asks_status:
        patterns.append("incidents")
        mentioned = {f"INC-{number}" for number in _INCIDENT_ID.findall(message)}
        devops_patterns.incidents_section(scene, draft, mentioned)
    if asks_status or not patterns:
        patterns.append("status")
        devops_patterns.status_section(scene, draft)
    draft.meta["patterns"] = patterns


def _g3_report(scene: Scene, message: str, role: str, draft: Draft) -> None:
    """List the recorded G3 sign-offs of the version and what is missing; approve nothing."""
    draft.meta["patterns"] = ["g3_report"]
    version = find_version(scene, message) or state.newest_version(scene.store,
                                                                           scene.project)
    if version is None:
        draft.lines.append(f"No version was named, and {scene.project} has no gate run, "
                           f"sign-off or evidence yet. Say which version needs G3, for "
                           f"example: confirm G3 for 1.4.0.")
        draft.lines.append(_never_approves(role))
        return
    draft.meta["version"] = version

    records = state.signoff_records(scene.store, scene.project, "g3", version)
    draft.lines.append(f"G3 sign-offs recorded for {scene.project} {version}:")
    for record in records:
        comment = f" ({plain(record['comment'])})" if record["comment"] else ""
        decision = "approved" if record["decision"] == "approve" else "rejected"
        draft.lines.append(f"- {plain(record['signer'])} as {record['role']}: {decision} at "
                           f"{when(record['recorded_at'])}{comment}")
    if not records:
        draft.lines.append("- none")

    g3 = state.g3_status(scene.store, scene.project, version, scene.config.tier)
    if g3["confirmed"]:
        draft.lines.append(f"G3 is confirmed at the {g3['tier']} tier.")
    else:
        listed = "; ".join(devops_patterns.describe_requirement(entry) for entry in g3["open"])
        draft.lines.append(f"G3 is not confirmed at the {g3['tier']} tier. Still needed: "
                           f"{listed}.")
        for entry in g3["open"]:
            draft.lines.append(f"  tinysdlc-nb approve g3 --role {entry['roles'][0]} --by NAME "
                               f"--version {version}")
    draft.lines.append(_never_approves(role))


def _never_approves(role: str) -> str:
    return (f"This {role} agent never approves or signs off, and its reply changes no record: "
            f"a person records a G3 sign-off with `tinysdlc-nb approve g3 --role <role> --by "
            f"NAME`.")


def _acknowledge(scene: Scene, sender: str, message: str, spec: AgentSpec, role: str,
                 draft: Draft) -> None:
    """Restate the request and name who must act; offline agents do not do the work."""
    draft.meta["patterns"] = ["acknowledge"]
    limit, person = _OFFLINE_LIMITS.get(role, ("does not do this work", "a person on the team"))
    source = "a person" if sender == HUMAN else f"@{sender}"
    owner = scene.config.incidents["owner"]
    draft.lines.append(f"Received from {source}: \"{quote(message)}\".")
    draft.lines.append(f"{spec.name} runs offline and {limit}, so {person} has to act on "
                       f"this; escalate to {owner} if it cannot wait.")


def _acknowledge_notice(message: str, draft: Draft) -> None:
    draft.meta["patterns"] = ["notice"]
    draft.lines.append(f"Noted: some hand-offs were not delivered (\"{quote(message)}\"). "
                       f"Nothing is resent; check the team settings if an agent is missing.")


def directed_part(message: str) -> str:
    """Return the part of a routed message meant for its recipient, without the shared
    context that precedes it; a person's message is returned whole."""
    headers = list(_DIRECTED_HEADER.finditer(message))
    if not headers:
        return message
    return message[headers[-1].end():]


def quote(text: str) -> str:
    """Return the start of a message, on one line and with no hand-off tag left in it."""
    return plain(text, _QUOTE_CHARS).replace("[", "(").replace("]", ")")


def find_version(scene: Scene, message: str) -> str | None:
    """Return the version a message names, matched against the versions in the store.

    ``v2.0.0`` matches a stored ``2.0.0`` and the other way round. A version with no
    record is returned as written, so the reply names what the person asked for.
    """
    known = state.known_versions(scene.store, scene.project)
    named = re.search(rf"deployment of {re.escape(scene.project)} (\S+?)[.,;]?(?:\s|$)",
                      message)
    candidates = [named.group(1)] if named else []
    candidates += [match.group(0).rstrip(".") for match in _VERSION.finditer(message)]
    for candidate in candidates:
        for form in (candidate, candidate.lstrip("vV"), f"v{candidate}"):
            if form in known:
                return form
    return candidates[0] if candidates else None
