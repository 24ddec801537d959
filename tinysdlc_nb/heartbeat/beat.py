"""One heartbeat: collect findings, compare with the last beat, summarize, notify, record."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from ..config import Config, load_config
from ..errors import UsageError
from ..scrub import scrub, scrub_data
from ..store import Store, as_utc, open_store, utc_now
from ..store.schema import heartbeats, schedule_runs
from . import notify
from .collect import collect_findings
from .findings import Finding, fingerprint, ordered
from .status_block import update_status_block
from .summary import Summary, agent_summary, plain_summary

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class NeedsPerson(Exception):
    """Raised at the end of the heartbeat notebook when a finding needs a person.

    The notebook then ends in an error, so a scheduled beat is recorded as failed (exit 1),
    as ``tinysdlc-nb heartbeat`` exits 1 for the same findings.
    """


@dataclass
class Beat:
    """The result of one heartbeat, as recorded in the ``heartbeats`` table."""

    id: int
    at: dt.datetime
    run_id: int | None
    fingerprint: str
    previous_fingerprint: str | None
    changed: bool
    model_called: bool
    summary: str
    summary_source: str
    findings: list[Finding]
    notification_id: int | None = None
    delivery: dict[str, Any] | None = field(default=None)

    @property
    def attention(self) -> list[Finding]:
        """The findings that need a person."""
        return [finding for finding in self.findings if finding.needs_person]

    def to_dict(self) -> dict[str, Any]:
        return scrub_data({
            "id": self.id, "at": self.at.isoformat(), "run_id": self.run_id,
            "fingerprint": self.fingerprint, "previous_fingerprint": self.previous_fingerprint,
            "changed": self.changed, "model_called": self.model_called,
            "attention": len(self.attention), "notification_id": self.notification_id,
            "summary": self.summary, "summary_source": self.summary_source,
            "findings": [finding.to_dict() for finding in self.findings],
            "delivery": self.delivery,
        })

    def raise_if_attention(self) -> None:
        """Raise NeedsPerson naming the findings that need a person, if there are any."""
        if self.attention:
            listed = "; ".join(finding.text for finding in self.attention)
            raise NeedsPerson(f"{len(self.attention)} finding(s) need a person: {listed}")

    def findings_frame(self) -> pd.DataFrame:
        """Return the findings as a DataFrame with kind, subject, state, needs_person, text."""
        import pandas as pd

        columns = ["kind", "subject", "state", "needs_person", "text"]
        return pd.DataFrame([finding.to_dict() for finding in self.findings], columns=columns)


def run_heartbeat(project_dir: Path | str, *, run_id: int | None = None,
                  now: dt.datetime | None = None) -> Beat:
    """Run one heartbeat of the project in ``project_dir`` and record it.

    ``run_id`` is the ``schedule_runs`` id of the scheduled run this beat belongs to; 0 or
    None means the beat was started by hand. ``now`` sets the time of SLA states,
    sign-off ages and the record (default: the current time). Endpoints are always
    probed at the current time.
    """
    config = load_config(project_dir)
    store = open_store(config.database_url)
    try:
        return beat(config, store, run_id=run_id or None, now=now or utc_now())
    finally:
        store.close()


def beat(config: Config, store: Store, *, run_id: int | None, now: dt.datetime) -> Beat:
    """Run one heartbeat against an open store; see ``run_heartbeat``."""
    _check_run_id(store, run_id)
    log.info("heartbeat of %s started (run %s)", config.name, run_id or "by hand")

    findings = collect_findings(config, store, now)
    block = update_status_block(config, store, now)
    if block is not None:
        findings.append(block)
    findings = ordered(findings)

    previous = _previous_beat(store)
    current = fingerprint(findings)
    changed = previous is None or previous["fingerprint"] != current
    summary = _summary(config, store, findings, changed, previous)

    notification_id = None
    with store.begin() as connection:
        if changed and any(finding.needs_person for finding in findings):
            text = notify.notification_text(config.name, now, summary.text, summary.source,
                                            findings)
            key = notify.dedup_key(previous["id"] if previous else None, current)
            notification_id = notify.queue(connection, config, text, key)
        beat_id = connection.execute(insert(heartbeats).values(
            run_id=run_id, at=now, fingerprint=current, changed=changed,
            model_called=summary.model_called,
            attention=sum(finding.needs_person for finding in findings),
            notified=int(notification_id is not None), summary=scrub(summary.text),
            findings=json.dumps(scrub_data([finding.to_dict() for finding in findings]),
                                ensure_ascii=False, default=str),
        )).inserted_primary_key[0]

    delivery = notify.deliver_now(config, store, now) if notification_id is not None else None
    result = Beat(beat_id, now, run_id, current, previous["fingerprint"] if previous else None,
                  changed, summary.model_called, summary.text, summary.source, findings,
                  notification_id, delivery)
    log.info("heartbeat %d of %s finished: %d finding(s), %d need a person, %s, model %s, "
             "notification %s", beat_id, config.name, len(findings), len(result.attention),
             "changed" if changed else "unchanged",
             "called" if summary.model_called else "not called", notification_id)
    return result


def _summary(config: Config, store: Store, findings: list[Finding], changed: bool,
             previous: dict[str, Any] | None) -> Summary:
    """Ask for a new summary only when the findings changed; else reuse the last one."""
    if not changed and previous is not None:
        return Summary(previous["summary"], "previous", False)
    if config.heartbeat["summarize"]:
        return agent_summary(config, store, findings, notify.recipient_of(config))
    return Summary(plain_summary(findings), "code", False)


def _previous_beat(store: Store) -> dict[str, Any] | None:
    query = (select(heartbeats.c.id, heartbeats.c.fingerprint, heartbeats.c.summary)
             .order_by(heartbeats.c.id.desc()).limit(1))
    with store.begin() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def _check_run_id(store: Store, run_id: int | None) -> None:
    if run_id is None:
        return
    with store.begin() as connection:
        found = connection.execute(select(schedule_runs.c.id)
                                   .where(schedule_runs.c.id == run_id)).first()
    if found is None:
        raise UsageError(f"schedule run {run_id} not found; pass the id of a recorded "
                         f"schedule run, or 0 for a heartbeat started by hand")


def previous_beats(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """Return the newest recorded heartbeats, newest first, with findings decoded."""
    query = select(heartbeats).order_by(heartbeats.c.id.desc()).limit(limit)
    with store.begin() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["at"] = as_utc(row["at"])
        row["findings"] = json.loads(row["findings"])
    return rows
