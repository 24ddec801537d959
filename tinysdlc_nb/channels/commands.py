"""The CLI of the channels commands."""

from __future__ import annotations


def add_channel_commands(commands, parser_class) -> None:
    """Register the channels commands on the CLI's subparsers."""
