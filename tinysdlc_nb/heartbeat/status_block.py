"""The status block of the DevOps agent's instructions file, between the SDLC context markers.

Only the text between ``<!-- SDLC-CONTEXT-START -->`` and ``<!-- SDLC-CONTEXT-END -->`` is
replaced. Every other byte, including a byte order mark, CRLF line ends and a missing final
newline, is written back as it was read. A file without the markers gets a block appended.
A file whose markers are doubled, out of order or unpaired is left alone. Markers inside
fenced code blocks (``` or ~~~) are examples, not the block, and are ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..gates.policy import Verdict
from ..store import Store
from .findings import Finding

log = logging.getLogger(__name__)

START = "<!-- SDLC-CONTEXT-START -->"
END = "<!-- SDLC-CONTEXT-END -->"
BOM = b"\xef\xbb\xbf"
FIELDS = ("Stage", "Gate", "Deploy Status", "G3 Received", "Updated")


@dataclass(frozen=True)
class BlockResult:
    """Outcome of ``rewrite_block`` (``replaced``, ``appended`` or ``unchanged``) and its reason."""

    outcome: str
    problem: str = ""
    fix: str = ""


def rewrite_block(path: Path, lines: list[str]) -> BlockResult:
    """Write ``lines`` between the markers of ``path``, or append a marked block.

    Returns ``unchanged`` with the problem when the file is missing, is not UTF-8 or has
    markers that are doubled, unpaired or out of order. The new file is written to a
    temporary file in the same folder and renamed over the old one, with the old mode.
    """
    target = path.resolve()
    if not target.is_file():
        return BlockResult("unchanged", "file not found", "create it or correct "
                           "[heartbeat].instructions_file")

    raw = target.read_bytes()
    bom = BOM if raw.startswith(BOM) else b""
    try:
        text = raw[len(bom):].decode("utf-8")
    except UnicodeDecodeError as error:
        return BlockResult("unchanged", f"not UTF-8 ({error.reason} at byte {error.start})",
                           "save the file as UTF-8")

    newline = "\r\n" if "\r\n" in text else "\n"
    fix = f"keep exactly one {START} line before one {END} line, or remove both"
    starts, ends = _marker_offsets(text, START), _marker_offsets(text, END)
    if not starts and not ends:
        new_text, outcome = _appended(text, lines, newline), "appended"
    elif len(starts) != 1 or len(ends) != 1:
        return BlockResult("unchanged", f"markers doubled or unpaired ({len(starts)} start, "
                                        f"{len(ends)} end)", fix)
    elif ends[0] < starts[0]:
        return BlockResult("unchanged", "end marker before start marker", fix)
    else:
        new_text, outcome = _replaced(text, lines, starts[0], ends[0]), "replaced"

    _write_atomically(target, bom + new_text.encode("utf-8"))
    return BlockResult(outcome)


def _marker_offsets(text: str, marker: str) -> list[int]:
    """Return the offsets of ``marker`` outside fenced code blocks."""
    offsets = []
    fence = ""
    position = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" ")
        opener = stripped[:3]
        if opener in ("```", "~~~") and len(line) - len(stripped) < 4:
            if not fence:
                fence = opener
            elif opener == fence:
                fence = ""
        elif not fence:
            found = line.find(marker)
            while found != -1:
                offsets.append(position + found)
                found = line.find(marker, found + len(marker))
        position += len(line)
    return offsets


def _replaced(text: str, lines: list[str], start: int, end: int) -> str:
    """Replace what lies between the markers, using the newline that follows the start."""
    body_start = start + len(START)
    body_end = end
    after_start = text[body_start:body_start + 2]
    newline = "\r\n" if after_start == "\r\n" else "\n"
    body = newline + newline.join(lines) + newline
    return text[:body_start] + body + text[body_end:]


def _appended(text: str, lines: list[str], newline: str) -> str:
    """Append a marked block; keep a final newline only when the file had one."""
    block = newline.join([START, *lines, END])
    if not text:
        return block + newline
    if text.endswith("\n"):
        return text + newline + block + newline
    return text + newline + newline + block


def _write_atomically(target: Path, data: bytes) -> None:
    mode = stat.S_IMODE(target.stat().st_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def status_lines(config: Config, store: Store, now: dt.datetime) -> list[str]:
    """Return the block's lines, decided from the store for the newest version.

    The newest version is the one with the most recent gate run, sign-off or evidence.
    Gate: ``G4 PASSED`` when its last G4 run passed, ``G4 pending`` once G3 is confirmed,
    ``G3 received`` when G3 is confirmed and G4 never ran, else ``G3 pending``. Deploy
    Status follows the role's words: ``not authorized`` before G3, ``authorized`` after,
    ``deployed`` once a deploy runbook run of that version passed, ``monitoring`` when G4
    passed as well. Stage is ``[heartbeat].stage`` when set, else 05-Test, 06-Deploy or
    07-Monitor from the same facts.
    """
    from ..team.agents import state

    project = config.name
    version = state.newest_version(store, project)
    if version is None:
        values = {"Stage": config.heartbeat["stage"] or "unknown (no gate records)",
                  "Gate": "none", "Deploy Status": "not authorized", "G3 Received": "pending"}
    else:
        values = _release_values(config, store, project, version)
    values["Updated"] = f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC by tinysdlc-nb heartbeat"
    return [f"{name}: {values[name]}" for name in FIELDS]


def _release_values(config: Config, store: Store, project: str, version: str) -> dict[str, str]:
    from ..team.agents import state

    g3 = state.g3_status(store, project, version, config.tier)
    g4 = state.newest_run(store, project, "g4", version)
    g4_passed = g4 is not None and g4["verdict"] == str(Verdict.PASSED)
    deploy = _last_deploy(store, project, version)
    deployed = deploy is not None and deploy["status"] == "passed"

    if g4_passed:
        gate = f"G4 PASSED ({version})"
    elif g3["confirmed"]:
        gate = (f"G4 pending ({version}, last G4 run {g4['verdict'] or g4['status']})" if g4
                else f"G3 received ({version})")
    else:
        gate = f"G3 pending ({version})"

    if not g3["confirmed"]:
        deploy_status = "not authorized"
    elif deployed:
        deploy_status = "monitoring" if g4_passed else "deployed"
    else:
        deploy_status = "authorized"
    if deploy is not None and not deployed:
        deploy_status += f" (last deploy run #{deploy['id']} {deploy['status']})"

    if config.heartbeat["stage"]:
        stage = config.heartbeat["stage"]
    elif g4_passed and deployed:
        stage = "07-Monitor"
    elif g3["confirmed"]:
        stage = "06-Deploy"
    else:
        stage = "05-Test"

    return {"Stage": stage, "Gate": gate, "Deploy Status": deploy_status,
            "G3 Received": _g3_received(store, project, version, g3)}


def _g3_received(store: Store, project: str, version: str, g3: dict) -> str:
    """Return the day the last sign-off that completed G3 was recorded, or ``pending``."""
    from ..store import as_utc
    from ..team.agents import state

    if not g3["confirmed"]:
        return "pending"
    signers = {entry["signer"] for entry in g3["requirements"]}
    approved = [record["recorded_at"] for record in state.signoff_records(store, project, "g3",
                                                                          version)
                if record["decision"] == "approve" and record["signer"] in signers]
    return f"{max(as_utc(at) for at in approved):%Y-%m-%d}" if approved else "pending"


def _last_deploy(store: Store, project: str, version: str) -> dict | None:
    """Return the newest finished run (not a rehearsal) of a runbook named ``*deploy*``."""
    from sqlalchemy import select

    from ..store.schema import runbook_runs

    query = (select(runbook_runs.c.id, runbook_runs.c.runbook, runbook_runs.c.status)
             .where(runbook_runs.c.project == project, runbook_runs.c.version == version,
                    runbook_runs.c.mode == "run", runbook_runs.c.status != "running",
                    runbook_runs.c.runbook.contains("deploy"))
             .order_by(runbook_runs.c.id.desc()).limit(1))
    with store.begin() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def update_status_block(config: Config, store: Store, now: dt.datetime) -> Finding | None:
    """Rewrite the configured instructions file's block; None when no file is configured.

    A relative ``[heartbeat].instructions_file`` is taken from the project folder.
    """
    configured = config.heartbeat["instructions_file"]
    if not configured:
        return None

    path = Path(configured).expanduser()
    if not path.is_absolute():
        path = config.project_dir / path
    lines = status_lines(config, store, now)
    result = rewrite_block(path, lines)

    detail = {"path": str(path), "outcome": result.outcome, "lines": lines}
    if result.problem:
        log.warning("heartbeat: status block of %s left unchanged: %s", path, result.problem)
        text = f"Status block of {configured} not written: {result.problem}; {result.fix}."
        return Finding("status_block", configured, f"invalid: {result.problem}", False, text,
                       detail)

    log.info("heartbeat: status block of %s %s", path, result.outcome)
    summary = "; ".join(line for line in lines if not line.startswith("Updated"))
    return Finding("status_block", configured, "written", False,
                   f"Status block of {configured} {result.outcome}: {summary}.", detail)
