"""The CLI of the heartbeat command."""

from __future__ import annotations


def add_heartbeat_commands(commands, parser_class) -> None:
    """Register the heartbeat command on the CLI's subparsers."""
