"""The table of channels by name. Adding a channel touches its module, this table and its
``[channels.<name>]`` declaration in settings.py."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Channel
from .discord import DiscordChannel
from .slack import SlackChannel
from .telegram import CHAT_RECIPIENT, TelegramChannel
from .webhook import WebhookChannel
from .whatsapp import WhatsAppChannel

CHANNELS: dict[str, type[Channel]] = {
    "telegram": TelegramChannel,
    "discord": DiscordChannel,
    "slack": SlackChannel,
    "whatsapp": WhatsAppChannel,
    "webhook": WebhookChannel,
}

# Recipient prefixes of notifications addressed to one chat of one channel.
DIRECT_PREFIXES = {CHAT_RECIPIENT: "telegram"}


def build_channel(name: str, settings: dict[str, Any]) -> Channel:
    """Return channel ``name`` configured from ``settings`` (``config.channels``)."""
    if name not in CHANNELS:
        raise ConfigError(f"channel '{name}' is unknown; known channels: {', '.join(CHANNELS)}")
    configured = settings["configured"]
    if name not in configured:
        raise ConfigError(f"channel '{name}' is not configured; add a [channels.{name}] table "
                          f"to config.toml")
    return CHANNELS[name](configured[name], settings)


def direct_target(recipient: str) -> tuple[str, str] | None:
    """Return (channel, target) for a recipient addressed to one chat, else None."""
    for prefix, channel in DIRECT_PREFIXES.items():
        if recipient.startswith(prefix):
            return channel, recipient[len(prefix):]
    return None
