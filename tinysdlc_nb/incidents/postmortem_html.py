"""HTML views of a postmortem for the notebook, every value redacted and escaped.

A written section lists its rows with author and time. A section without rows shows
Claude's draft under a visible "not reviewed" banner when there is one, else a placeholder
that names the command to write it, and the reason drafting failed when it did.
"""

from __future__ import annotations

import pandas as pd

from ..gates.display import escaped, table
from .drafting import DRAFT_LABEL, Draft
from .model import Kind, severity_rank
from .postmortem_facts import SECTION_TITLES, Postmortem
from .report_format import MISSING, format_duration, format_time, frame_html, status_html
from .timeline_svg import timeline_svg

_DRAFT_STYLE = ("border-left: 5px solid #b54708; background: #fff8ed; padding: 0.6em 1em; "
                "margin: 0.6em 0")
_PLACEHOLDER_STYLE = ("border: 1px dashed #98a2b3; padding: 0.6em 1em; margin: 0.6em 0; "
                      "color: #5b6475")
_TEXT_STYLE = "white-space: pre-wrap; margin: 0.3em 0"


def header(report: Postmortem, drafts: dict[str, Draft]) -> str:
    """Return the title and a line saying when the report was made and how drafting went."""
    title = f"Postmortem {report.label}: {report.detail['title']}"
    meta = f"generated {format_time(report.now, report.zone)}"
    return (f"<h1>{escaped(title)}</h1><p class=\"meta\">{escaped(meta)} · "
            f"{escaped(drafting_note(drafts, report))}</p>")


def drafting_note(drafts: dict[str, Draft], report: Postmortem) -> str:
    missing = report.missing_sections()
    if not missing:
        return "every section has a written entry"
    if not drafts:
        return f"{len(missing)} section(s) not written yet; drafting is off (no ANTHROPIC_API_KEY)"
    done = sum(1 for draft in drafts.values() if draft.text)
    failed = len(drafts) - done
    return f"{done} section(s) drafted by Claude, {failed} draft(s) failed"


def summary(report: Postmortem) -> str:
    """Return the summary table: title, service, severity, status, owner, times, duration."""
    detail = report.detail
    detected = report.detection.detected_at
    resolved = detail["resolved_at"]
    duration = MISSING
    if detected and resolved:
        duration = format_duration((pd.Timestamp(resolved) - detected).total_seconds())
    highest = min((row["severity"] for row in report.rows if row["severity"]),
                  key=severity_rank, default=None)
    severity = detail["severity"] or MISSING
    if highest and highest != detail["severity"]:
        severity = f"{severity} (highest {highest})"

    rows = [("Title", detail["title"]), ("Service", detail["service"] or "not named"),
            ("Severity", severity), ("Status", detail["status"]), ("Owner", report.owner),
            ("Detected", format_time(detected, report.zone)),
            ("Resolved", format_time(resolved, report.zone)), ("Duration", duration)]
    return "<h2>Summary</h2>" + table(("Field", "Value"),
                                      [(escaped(name), escaped(value)) for name, value in rows])


def detection(report: Postmortem) -> str:
    """Return how the incident was noticed: source, detection time and first alert."""
    found = report.detection
    rows = [("Source", found.source), ("Opened by", found.opened_by or MISSING),
            ("Detected at", format_time(found.detected_at, report.zone))]
    if found.first_alert_at is not None:
        rows += [("First alert", found.alert_name or found.first_alert.split("\n")[0]),
                 ("First alert at", format_time(found.first_alert_at, report.zone)),
                 ("Alert text", found.first_alert),
                 ("Distinct alerts", str(found.alert_count))]
    else:
        opened = ("none; the incident was opened by hand" if found.source == "cli"
                  else f"none; {found.source} reported the incident without a member alert")
        rows.append(("First alert", opened))
    return "<h2>Detection</h2>" + table(("Field", "Value"),
                                        [(escaped(name), escaped(value)) for name, value in rows])


def responses(report: Postmortem) -> str:
    """Return TTA, TTC and TTR against their SLA targets."""
    rows = [(escaped(f"{item.label} ({item.abbreviation})"), escaped(format_duration(item.seconds)),
             escaped(item.target), escaped(format_time(item.due, report.zone)),
             status_html(item.status))
            for item in report.responses]
    return ("<h2>Response times against the SLA</h2>"
            + table(("Response", "Time from detection", "Target", "Due", "SLA"), rows)
            + "<p class=\"meta\">Times count from detection; acknowledgements by agents do not "
              "count. Containment has no SLA target.</p>")


def timeline_table(report: Postmortem) -> str:
    """Return the effective timeline as a table, flapping bursts collapsed to one row."""
    frame = pd.DataFrame({
        "Row": [row["id"] for row in report.rows],
        "Time": [format_time(row["occurred_at"], report.zone) for row in report.rows],
        "Kind": [row["kind"] for row in report.rows],
        "Source": [row["source"] for row in report.rows],
        "Actor": [f"{row['actor']} ({row['actor_kind']})" for row in report.rows],
        "Severity": [row["severity"] or "" for row in report.rows],
        "Description": [row["description"] for row in report.rows],
    })
    return "<h2>Timeline</h2>" + frame_html(frame)


def timeline_chart(report: Postmortem) -> str:
    """Return the SVG chart of the timeline, or a note when nothing can be charted."""
    milestones = {name: report.detail[name]
                  for name in ("detected_at", "acknowledged_at", "contained_at", "resolved_at")}
    svg = timeline_svg(report.rows, milestones, report.zone)
    if not svg:
        return "<p class=\"meta\">No events to chart.</p>"
    return (f"<figure style=\"margin: 0.8em 0\">{svg}<figcaption class=\"meta\">Hover a dot "
            f"for its row. Postmortem entries are listed in their sections, not charted."
            f"</figcaption></figure>")


def section(report: Postmortem, kind: str, drafts: dict[str, Draft]) -> str:
    """Return one written section: its rows, else Claude's draft, else a placeholder."""
    heading = f"<h2>{escaped(SECTION_TITLES[kind])}</h2>"
    entries = report.entries(kind)
    if kind == Kind.ACTION_ITEM and entries:
        return heading + _action_table(report, entries)
    if entries:
        return heading + "".join(
            f"<p style=\"{_TEXT_STYLE}\">{escaped(row['description'])}</p>"
            f"<p class=\"meta\">{escaped(_byline(report, row))}</p>" for row in entries)
    return heading + unwritten(report, kind, drafts.get(kind))


def unwritten(report: Postmortem, kind: str, draft: Draft | None) -> str:
    """Return the draft box for ``draft``, or the placeholder for a person to fill."""
    if draft is not None and draft.text:
        return (f"<div style=\"{_DRAFT_STYLE}\"><p><strong>{escaped(DRAFT_LABEL)}</strong> "
                f"<span class=\"meta\">({escaped(draft.model)})</span></p>"
                f"<p style=\"{_TEXT_STYLE}\">{escaped(draft.text)}</p>"
                f"<p class=\"meta\">Replace it with a reviewed entry: "
                f"<code>{escaped(log_command(report, kind))}</code></p></div>")

    failure = ""
    if draft is not None and draft.failure:
        failure = f"<p>Drafting with Claude failed: {escaped(draft.failure)}</p>"
    return (f"<div style=\"{_PLACEHOLDER_STYLE}\">{failure}<p>Not written yet: add it with "
            f"<code>{escaped(log_command(report, kind))}</code></p></div>")


def log_command(report: Postmortem, kind: str) -> str:
    """Return the command a person runs to write this section."""
    extra = " --owner NAME --due YYYY-MM-DD" if kind == Kind.ACTION_ITEM else ""
    return f"tinysdlc-nb incident log {report.label} --kind {kind}{extra} ..."


def _action_table(report: Postmortem, entries: list[dict]) -> str:
    rows = [(escaped(row["description"]), escaped(row["details"].get("owner") or MISSING),
             escaped(row["details"].get("due") or MISSING), escaped(_byline(report, row)))
            for row in entries]
    return table(("Action", "Owner", "Due", "Logged"), rows)


def _byline(report: Postmortem, row: dict) -> str:
    return f"{row['actor']} ({row['actor_kind']}), {format_time(row['occurred_at'], report.zone)}"
