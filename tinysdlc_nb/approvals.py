"""Sign-offs and evidence: append-only, hash-chained records that only humans make.

The CLI, the notebook's approval panel and runbook runs all record through the functions
here, so the rules (agents never sign, G4 needs G3 confirmed) hold whichever way a record
arrives.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from .errors import SignOffRejected, UsageError
from .gates.model import Tier
from .store import Store, utc_now
from .store.chain import append
from .store.schema import evidence, signoffs

log = logging.getLogger(__name__)

GATES = ("g3", "g4")
ROLES = ("reviewer", "tester", "devops", "ceo", "cpo", "cto")
SE4H_ROLES = frozenset({"ceo", "cpo", "cto"})
GATE_ROLES = {"g3": ("reviewer", "tester", "ceo", "cpo", "cto"),
              "g4": ("devops", "ceo", "cpo", "cto")}
# Words that mark a name as a machine's rather than a person's, whatever agent ids a team has.
MACHINE_WORDS = frozenset({"agent", "bot", "claude", "copilot", "chatgpt", "gpt", "llm"})
_NAME_WORD = re.compile(r"[a-z0-9]+")
EVIDENCE_ITEMS = {
    "staging_smoke": "Staging deployment successful with smoke tests passing",
    "rollback_tested": "Rollback procedure tested within the target time",
    "monitoring_configured": "Monitoring and alerting configured",
    "runbook_documented": "Runbook documented for this deployment",
    "post_deploy_plan": "Post-deploy verification plan defined",
    "infra_changes_notified": "Infrastructure changes documented and SE4H notified",
}


@dataclass(frozen=True)
class Requirement:
    """One sign-off a gate needs: a name and the roles that may give it."""

    name: str
    roles: frozenset[str]
    label: str


@dataclass
class RequirementState:
    requirement: Requirement
    state: str = "missing"  # approved, rejected or missing
    signer: str | None = None
    comment: str = ""


@dataclass
class SignOffStatus:
    gate: str
    version: str
    requirements: list[RequirementState] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return all(entry.state == "approved" for entry in self.requirements)

    @property
    def rejected(self) -> list[RequirementState]:
        return [entry for entry in self.requirements if entry.state == "rejected"]

    @property
    def missing(self) -> list[RequirementState]:
        return [entry for entry in self.requirements if entry.state == "missing"]


def required_signoffs(gate: str, tier: Tier) -> list[Requirement]:
    """Return the sign-offs ``gate`` needs at ``tier``, most specific first.

    G3: reviewer approval and tester co-sign at every tier, a written SE4H sign-off from
    STANDARD, and the CTO from PROFESSIONAL. G4: the DevOps self-assessment at every tier and
    a written SE4H sign-off from STANDARD.
    """
    requirements = []
    if gate == "g3":
        requirements += [Requirement("reviewer", frozenset({"reviewer"}), "Reviewer approval"),
                         Requirement("tester", frozenset({"tester"}), "Tester co-sign")]
        if tier.at_least(Tier.PROFESSIONAL):
            requirements.append(Requirement("cto", frozenset({"cto"}), "CTO sign-off"))
        if tier.at_least(Tier.STANDARD):
            requirements.append(Requirement("se4h", SE4H_ROLES, "SE4H written sign-off"))
    else:
        requirements.append(Requirement("devops", frozenset({"devops"}),
                                        "DevOps production-readiness sign-off"))
        if tier.at_least(Tier.STANDARD):
            requirements.append(Requirement("se4h", SE4H_ROLES, "SE4H written sign-off"))
    return requirements


def signoff_status(store: Store, project: str, gate: str, version: str,
                   tier: Tier) -> SignOffStatus:
    """Match the newest decision of each signer against the gate's requirements.

    One person fills at most one requirement, so a CTO who signs once does not also count
    as the separate SE4H sign-off. A rejection by a signer in a required role marks the
    requirement rejected even when someone else approved it.
    """
    latest = _latest_decisions(store, project, gate, version)
    status = SignOffStatus(gate, version, [RequirementState(req)
                                           for req in required_signoffs(gate, tier)])
    used: set[str] = set()

    for entry in status.requirements:
        for (signer, role), row in latest.items():
            if role in entry.requirement.roles and row["decision"] == "reject":
                entry.state, entry.signer, entry.comment = "rejected", signer, row["comment"]
                break
        if entry.state == "rejected":
            continue
        for (signer, role), row in latest.items():
            if role in entry.requirement.roles and row["decision"] == "approve" \
                    and signer.lower() not in used:
                entry.state, entry.signer, entry.comment = "approved", signer, row["comment"]
                used.add(signer.lower())
                break
    return status


def record_signoff(store: Store, *, project: str, gate: str, version: str, role: str,
                   signer: str, approve: bool, comment: str, agent_ids: set[str], tier: Tier,
                   source: str = "cli") -> dict:
    """Append one sign-off after checking who signs and that the gate allows it."""
    gate = _check_gate(gate)
    role = role.strip().lower()
    if role not in ROLES:
        raise UsageError(f"role '{role}' is invalid; expected one of {', '.join(ROLES)}")
    if role not in GATE_ROLES[gate]:
        raise UsageError(f"role '{role}' does not sign {gate.upper()}; {gate.upper()} is "
                         f"signed by {', '.join(GATE_ROLES[gate])}")
    signer = _check_person(signer, agent_ids)
    if not version.strip():
        raise UsageError("version is empty; pass --version with the release being signed")
    _check_one_role_per_person(store, project, gate, version, role, signer)

    if gate == "g4" and approve:
        g3 = signoff_status(store, project, "g3", version, tier)
        if not g3.confirmed:
            open_items = ", ".join(f"{entry.requirement.name} {entry.state}"
                                   for entry in g3.requirements if entry.state != "approved")
            raise SignOffRejected(f"G4 cannot be approved for version {version}: G3 is not "
                                  f"confirmed ({open_items}); record the G3 sign-offs first")

    values = {"project": project, "gate": gate, "version": version, "role": role,
              "signer": signer, "decision": "approve" if approve else "reject",
              "comment": comment, "recorded_at": utc_now(), "source": source}
    with store.begin() as connection:
        row = append(connection, signoffs, values)
    log.info("sign-off recorded: %s %s %s by %s (%s)", gate, version, role, signer,
             values["decision"])
    return row


def record_evidence(store: Store, *, project: str, gate: str, version: str, item: str,
                    recorded_by: str, note: str, file: Path | None, files_dir: Path,
                    agent_ids: set[str] | None = None, source: str = "cli") -> dict:
    """Append one evidence record; a file is copied under ``files_dir`` by its SHA-256."""
    gate = _check_gate(gate)
    if gate != "g4":
        raise UsageError(f"{gate.upper()} takes no evidence records: its checklist is the "
                         f"checks and sign-offs; evidence items belong to G4 (--gate g4)")
    if item not in EVIDENCE_ITEMS:
        raise UsageError(f"evidence item '{item}' is invalid; expected one of "
                         f"{', '.join(EVIDENCE_ITEMS)}")
    recorded_by = _check_person(recorded_by, agent_ids or set(), allow_agents=agent_ids is None)
    if not note.strip() and file is None:
        raise UsageError("evidence needs --note TEXT, --file PATH or both")

    file_name = file_sha256 = None
    if file is not None:
        file_name, file_sha256 = _keep_file(file, files_dir)

    values = {"project": project, "gate": gate, "version": version, "item": item,
              "recorded_by": recorded_by, "recorded_at": utc_now(), "source": source,
              "note": note, "file_name": file_name, "file_sha256": file_sha256}
    with store.begin() as connection:
        row = append(connection, evidence, values)
    log.info("evidence recorded: %s %s %s by %s", gate, version, item, recorded_by)
    return row


def latest_evidence(store: Store, project: str, gate: str, version: str) -> dict[str, dict]:
    """Return the newest evidence record per item for this release."""
    query = (select(evidence).where(evidence.c.project == project, evidence.c.gate == gate,
                                    evidence.c.version == version)
             .order_by(evidence.c.id))
    with store.begin() as connection:
        return {row["item"]: dict(row) for row in connection.execute(query).mappings()}


def _latest_decisions(store: Store, project: str, gate: str, version: str) -> dict:
    query = (select(signoffs).where(signoffs.c.project == project, signoffs.c.gate == gate,
                                    signoffs.c.version == version)
             .order_by(signoffs.c.id))
    latest: dict[tuple[str, str], dict] = {}
    with store.begin() as connection:
        for row in connection.execute(query).mappings():
            latest[(row["signer"], row["role"])] = dict(row)
    return latest


def _check_gate(gate: str) -> str:
    gate = gate.strip().lower()
    if gate not in GATES:
        raise UsageError(f"gate '{gate}' is invalid; expected one of {', '.join(GATES)}")
    return gate


def check_person(name: str, agent_ids: set[str]) -> str:
    """Return ``name`` stripped, or raise when it is empty, unprintable or an agent's."""
    return _check_person(name, agent_ids)


def _check_person(name: str, agent_ids: set[str], allow_agents: bool = False) -> str:
    name = name.strip()
    if not name:
        raise UsageError("signer name is empty; pass --by with a person's name")
    if any(not character.isprintable() for character in name):
        raise UsageError(f"signer name {name!r} contains control characters; pass a plain "
                         f"name with --by")
    if not allow_agents and is_agent_name(name, agent_ids):
        raise SignOffRejected(f"'{name}' names an agent (configured agent ids: "
                              f"{', '.join(sorted(agent_ids))}) and agents never sign off; "
                              f"a human must sign with --by THEIR_NAME")
    return name


def is_agent_name(name: str, agent_ids: set[str]) -> bool:
    """Return True when ``name`` or one of its words is an agent id (``agent:coder``).

    Words such as ``bot`` and ``claude`` count too, since no person signs under them.
    """
    lowered = name.lower()
    words = set(_NAME_WORD.findall(lowered))
    return lowered in agent_ids or bool(words & (agent_ids | MACHINE_WORDS))


def _check_one_role_per_person(store: Store, project: str, gate: str, version: str, role: str,
                               signer: str) -> None:
    """Reject a second role for a person who already approved this release in another one."""
    for (other_signer, other_role), row in _latest_decisions(store, project, gate,
                                                             version).items():
        if other_signer.lower() == signer.lower() and other_role != role \
                and row["decision"] == "approve":
            raise SignOffRejected(f"{signer} already approved {gate.upper()} {version} as "
                                  f"{other_role}; one person fills one sign-off, so another "
                                  f"person must sign as {role}")


def _keep_file(file: Path, files_dir: Path) -> tuple[str, str]:
    if not file.is_file():
        raise UsageError(f"evidence file '{file}' not found; pass an existing file with --file")
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    target = files_dir / "evidence" / f"{sha256[:16]}-{file.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(file, target)
    return file.name, sha256
