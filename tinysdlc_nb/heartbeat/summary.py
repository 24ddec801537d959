"""The beat's summary: written by the team's DevOps agent, or by code without team settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError, TinySDLCError
from ..scrub import scrub
from ..store import Store
from .findings import Finding

log = logging.getLogger(__name__)

SENDER = "tinysdlc-nb"
MAX_LISTED = 10


@dataclass(frozen=True)
class Summary:
    """A summary text, who wrote it (``agent:<id>`` or ``code``), and whether an agent was
    asked."""

    text: str
    source: str
    model_called: bool


def plain_summary(findings: list[Finding]) -> str:
    """Return a summary written by code: the count, then each finding that needs a person."""
    attention = [finding for finding in findings if finding.needs_person]
    if not attention:
        return f"Heartbeat: nothing needs a person ({len(findings)} finding(s) checked)."

    lines = [f"Heartbeat: {len(attention)} of {len(findings)} finding(s) need a person."]
    lines += [f"- {finding.text}" for finding in attention[:MAX_LISTED]]
    if len(attention) > MAX_LISTED:
        lines.append(f"- and {len(attention) - MAX_LISTED} more")
    return "\n".join(lines)


def agent_prompt(findings: list[Finding], recipient: str) -> str:
    """Return the request sent to the agent: the findings and the summary wanted."""
    lines = [f"Heartbeat status summary for {recipient}. Write at most five short lines: what "
             f"needs a person first, then what changed. Findings:"]
    for finding in findings:
        mark = "NEEDS A PERSON" if finding.needs_person else "ok"
        lines.append(f"- [{mark}] {finding.kind} {finding.subject}: {finding.text}")
    return scrub("\n".join(lines))


def agent_summary(config: Config, store: Store, findings: list[Finding],
                  recipient: str) -> Summary:
    """Ask the ``[heartbeat].agent`` agent of the team settings for a summary.

    Without readable team settings, or when the agent is not in them, the summary is
    written by code and no agent is asked. When the agent fails, the summary is written
    by code with the failure appended, and ``model_called`` stays True.
    """
    from ..team.agents import AgentPool
    from ..team.model import AgentContext, AgentRequest
    from ..team.settings import load_team_settings

    plain = plain_summary(findings)
    try:
        settings = load_team_settings(config.home)
    except ConfigError as error:
        log.info("heartbeat: summary written by code, no team settings: %s", error)
        return Summary(plain, "code", False)

    agent_id = config.heartbeat["agent"]
    spec = settings.agents.get(agent_id)
    if spec is None:
        log.warning("heartbeat: summary written by code, because [heartbeat].agent '%s' is "
                    "not an agent of %s; set it to one of %s", agent_id, settings.source,
                    ", ".join(sorted(settings.agents)))
        return Summary(plain, "code", False)

    if spec.provider == "protocol":
        # The offline agent follows fixed rules rather than reading the findings, so a
        # summary written by code from the findings is more useful than its general report.
        log.info("heartbeat: summary written by code, because agent %s is the offline "
                 "protocol agent", spec.id)
        return Summary(plain, "code", False)

    context = AgentContext(store=store, config=config, settings=settings,
                           files_dir=config.files_dir)
    request = AgentRequest(agent_id=spec.id, sender=SENDER,
                           message=agent_prompt(findings, recipient), conversation_id=0,
                           message_id=0, attempt=1)
    try:
        reply = AgentPool(context).agent_for(spec).reply(request, spec)
    except TinySDLCError as error:  # AgentError, AgentUnusable, AgentRejected
        log.warning("heartbeat: agent %s could not summarize (%s: %s); the summary is "
                    "written by code", spec.id, type(error).__name__, scrub(str(error)))
        note = f"(Agent {spec.id} could not summarize: {scrub(str(error))})"
        return Summary(f"{plain}\n{note}", f"agent:{spec.id} failed", True)

    log.info("heartbeat: agent %s (%s) wrote the summary", spec.id, spec.provider)
    return Summary(scrub(without_handoffs(reply.text).strip()) or plain, f"agent:{spec.id}",
                   True)


def without_handoffs(text: str) -> str:
    """Return ``text`` with each ``[@agent: message]`` hand-off written as ``@agent: message``.

    A person reads the summary, and no worker routes it, so a tag would only look broken.
    """
    from ..team.tags import parse_tags

    parsed = parse_tags(text)
    for tag in sorted(parsed.tags, key=lambda found: found.start, reverse=True):
        plain = f"@{','.join(tag.written or tag.ids)}: {tag.body.strip()}"
        text = text[:tag.start] + plain + text[tag.end:]
    return text
