"""HTML views of a gate run for the notebooks: escaped, redacted, styled by status class."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..scrub import scrub

if TYPE_CHECKING:
    from .run import GateRun

GATE_TITLES = {"g3": "G3 Ship Ready", "g4": "G4 Production Ready"}
FINDINGS_SHOWN = 200


def header(run: GateRun) -> str:
    title = f"{GATE_TITLES[run.gate]}: {run.project} {run.version}"
    meta = (f"tier {run.tier} · environment {run.environment} · run {run.run_id} · "
            f"started {run.started_at:%Y-%m-%d %H:%M:%S} UTC")
    verdict_line = ""
    if run.verdict is not None:
        verdict_line = (f"<div class=\"verdict verdict-{escaped(run.verdict)}\">"
                        f"{escaped(run.verdict)} <span class=\"meta\">(exit "
                        f"{run.verdict.exit_code})</span></div>")
    return f"<h1>{escaped(title)}</h1><p class=\"meta\">{escaped(meta)}</p>{verdict_line}"


def checklist(run: GateRun) -> str:
    rows = [(item.label, _status(str(item.status or "PENDING")),
             "required" if item.required else "optional", escaped(item.summary))
            for item in run.items]
    return "<h2>Checklist</h2>" + table(("Item", "Status", "", "Details"), rows)


def findings(run: GateRun) -> str:
    parts = ["<h2>Findings</h2>"]
    for name, result in run.results.items():
        counted = len(result.counted_findings)
        notes = len(result.active_findings) - counted
        suppressed = len(result.findings) - len(result.active_findings)
        tool = f"{result.tool} {result.tool_version}".strip()
        parts.append(f"<h3>{escaped(name)} ({escaped(tool)})</h3>")
        item_status = next((str(item.status) for item in run.items if item.item == name),
                           str(result.status))
        shown = item_status if item_status == str(result.status) else \
            f"{item_status} (tool: {result.status})"
        parts.append(f"<p>{_status(item_status, shown)} {escaped(result.summary)} "
                     f"<span class=\"meta\">{counted} counted, {notes} notes, "
                     f"{suppressed} suppressed"
                     f"{', report sha256 ' + result.report_sha256[:12] if result.report else ''}"
                     f"</span></p>")
        if not result.findings:
            continue
        rows = [(escaped(f"{finding.file}:{finding.line}" if finding.line else finding.file),
                 escaped(finding.rule), escaped(finding.severity), escaped(finding.message),
                 escaped(finding.suppression or ""))
                for finding in result.findings[:FINDINGS_SHOWN]]
        parts.append(table(("Location", "Rule", "Severity", "Message", "Suppressed because"),
                           rows))
        if len(result.findings) > FINDINGS_SHOWN:
            parts.append(f"<p class=\"meta\">{len(result.findings) - FINDINGS_SHOWN} more in "
                         f"results.sarif and raw/{escaped(result.report_name)}</p>")
    return "".join(parts)


def evidence(run: GateRun) -> str:
    """Return the evidence records of the release, with who, when and the file's SHA-256."""
    rows = [(escaped(name), escaped(record["recorded_by"]),
             escaped(f"{record['recorded_at']:%Y-%m-%d %H:%M} UTC"), escaped(record["note"]),
             escaped(record["file_name"] or ""), f"<code>{escaped(record['file_sha256'] or '')}"
             f"</code>")
            for name, record in sorted(run.evidence.items())]
    if not rows:
        return "<h2>Evidence</h2><p class=\"meta\">No evidence recorded for this release.</p>"
    return "<h2>Evidence</h2>" + table(("Item", "Recorded by", "When", "Note", "File",
                                        "SHA-256"), rows)


def signoffs(run: GateRun) -> str:
    rows = [(escaped(entry.requirement.label), escaped(", ".join(sorted(entry.requirement.roles))),
             _status({"approved": "PASS", "rejected": "FAIL"}.get(entry.state, "PENDING"),
                     entry.state), escaped(entry.signer or ""), escaped(entry.comment))
            for entry in (run.signoffs.requirements if run.signoffs else [])]
    return "<h2>Sign-offs</h2>" + table(("Requirement", "Roles", "State", "Signer", "Comment"),
                                        rows)


def verdict(run: GateRun) -> str:
    value = str(run.verdict)
    code = run.verdict.exit_code if run.verdict else ""
    return (f"<h2>Verdict</h2><div class=\"verdict verdict-{escaped(value)}\">{escaped(value)} "
            f"<span class=\"meta\">(exit {code})</span></div>")


def table(headings: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return an HTML table; cells must already be escaped HTML, headings are escaped here."""
    head = "".join(f"<th>{escaped(heading)}</th>" for heading in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(status: str, label: str | None = None) -> str:
    return f"<span class=\"status status-{escaped(status)}\">{escaped(label or status)}</span>"


def escaped(value: object) -> str:
    """Return ``value`` as redacted, HTML-escaped text."""
    return html.escape(scrub(str(value)))
