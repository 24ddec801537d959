"""Heartbeat findings and the fingerprint that shows whether anything changed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Kinds in the order the heartbeat reports them.
KINDS = ("endpoint", "incident", "signoff", "queue", "gate", "status_block")


@dataclass(frozen=True)
class Finding:
    """One thing the heartbeat looked at and what it saw.

    ``state`` is a short text that stays the same while nothing changes, so it feeds the
    fingerprint. Values that move on every beat (latencies, ages, deadlines) go into
    ``detail`` and ``text`` instead.
    """

    kind: str
    subject: str
    state: str
    needs_person: bool
    text: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(data["kind"], data["subject"], data["state"], bool(data["needs_person"]),
                   data["text"], dict(data.get("detail") or {}))


def fingerprint(findings: list[Finding]) -> str:
    """Return the SHA-256 of the canonical JSON of each finding's kind, subject and state.

    The list is sorted first, so the order in which collectors ran does not matter.
    """
    states = sorted([finding.kind, finding.subject, finding.state] for finding in findings)
    canonical = json.dumps(states, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def ordered(findings: list[Finding]) -> list[Finding]:
    """Return ``findings`` with those that need a person first, then by kind and subject."""
    def key(finding: Finding) -> tuple[bool, int, str]:
        rank = KINDS.index(finding.kind) if finding.kind in KINDS else len(KINDS)
        return (not finding.needs_person, rank, finding.subject)

    return sorted(findings, key=key)
