"""The CLI of the heartbeat command."""

from __future__ import annotations

import argparse
import json

from ..scrub import scrub

# Exit codes of `heartbeat`: usage errors exit 2 through the CLI's common handler.
NOTHING_NEEDED_EXIT = 0
PERSON_NEEDED_EXIT = 1


def add_heartbeat_commands(commands, parser_class) -> None:
    """Register the heartbeat command on the CLI's subparsers.

    ``parser_class`` is accepted so every ``add_*_commands`` call has the same shape;
    ``heartbeat`` has no sub-commands that would need it.
    """
    heartbeat = commands.add_parser(
        "heartbeat", help="run one heartbeat now: probe endpoints, check incidents, "
        "sign-offs, the queue and gates; exit 1 when something needs a person")
    heartbeat.add_argument("--project", default=".", help="project folder (default: .)")
    heartbeat.add_argument("--json", action="store_true", help="print the beat as JSON")
    heartbeat.set_defaults(handler=_cmd_heartbeat)


def _cmd_heartbeat(args: argparse.Namespace) -> int:
    from .beat import run_heartbeat

    beat = run_heartbeat(args.project)
    if args.json:
        print(json.dumps(beat.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_beat(beat)
    return PERSON_NEEDED_EXIT if beat.attention else NOTHING_NEEDED_EXIT


def _print_beat(beat) -> None:
    changed = "changed since the last beat" if beat.changed else "unchanged since the last beat"
    print(f"Heartbeat {beat.id} at {beat.at:%Y-%m-%d %H:%M:%S} UTC: {len(beat.findings)} "
          f"finding(s), {len(beat.attention)} need a person, {changed}.")
    if beat.findings:
        width = max(len(finding.subject) for finding in beat.findings)
        print(f"{'':2}{'kind':<13} {'subject':<{width}}  state")
        for finding in beat.findings:
            mark = "!" if finding.needs_person else " "
            print(scrub(f"{mark} {finding.kind:<13} {finding.subject:<{width}}  "
                        f"{finding.state}"))
    if beat.attention:
        print("\nNeeds a person:")
        for finding in beat.attention:
            print(scrub(f"- {finding.text}"))
    print(f"\nSummary ({beat.summary_source}):\n{scrub(beat.summary)}")
    if beat.notification_id is not None:
        print(f"\nNotification {beat.notification_id} queued.")
