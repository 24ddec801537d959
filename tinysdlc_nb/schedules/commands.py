"""The CLI of the schedule and scheduler commands."""

from __future__ import annotations


def add_schedule_commands(commands, parser_class) -> None:
    """Register the schedule and scheduler commands on the CLI's subparsers."""
