"""The ``[channels]`` section of config.toml: which channels exist and which carry notices.

Each channel has its own table (``[channels.telegram]``, ``[channels.slack]``, …). Tokens,
webhook addresses and signing keys are never written here: a ``*_env`` key names the
environment variable that contains them.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import ConfigError
from ..settings import Section, Setting

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

CHANNELS_SECTION = Section("channels", (
    Setting("notify", list, [], "Channels that carry notifications for people (heartbeat "
            "findings, escalations, answers); each must have its own table."),
    Setting("deliver_interval_s", float, 2.0, "Pause between two delivery passes of the "
            "scheduler's channel service.", unit="seconds", minimum=0.1),
    Setting("backoff_base_s", float, 5.0, "Wait after the first failed delivery pass; it "
            "doubles after each further failure. Failed notifications are retried without "
            "limit.", unit="seconds", minimum=0),
    Setting("backoff_max_s", float, 900.0, "Longest wait between two sends of one "
            "notification.", unit="seconds", minimum=0),
    Setting("max_retry_after_s", float, 60.0, "Longest Retry-After a send waits for in place; "
            "a longer one leaves the notification queued until then.", unit="seconds",
            minimum=0),
    Setting("timeout_s", float, 10.0, "Time limit of one request to a channel.",
            unit="seconds", minimum=0.1),
))

CHANNEL_SECTIONS = {
    "telegram": Section("channels.telegram", (
        Setting("api_url", str, "https://api.telegram.org", "Bot API address."),
        Setting("token_env", str, "TINYSDLC_NB_TELEGRAM_TOKEN", "Variable holding the bot "
                "token."),
        Setting("chat_ids", list, [], "Chats that receive notifications."),
        Setting("allowed_chat_ids", list, [], "Chats whose messages are taken as messages "
                "to the team; default: chat_ids."),
        Setting("receive", bool, False, "Take messages from the allowed chats by long "
                "polling getUpdates."),
        Setting("poll_timeout_s", int, 30, "Long-polling timeout of getUpdates.",
                unit="seconds", minimum=0),
    )),
    "discord": Section("channels.discord", (
        Setting("webhook_url_env", str, "TINYSDLC_NB_DISCORD_WEBHOOK_URL", "Variable holding "
                "the incoming webhook's address (it contains the webhook token)."),
        Setting("username", str, "tinysdlc-nb", "Name the messages are posted under."),
    )),
    "slack": Section("channels.slack", (
        Setting("webhook_url_env", str, "TINYSDLC_NB_SLACK_WEBHOOK_URL", "Variable holding "
                "the incoming webhook's address."),
    )),
    "whatsapp": Section("channels.whatsapp", (
        Setting("api_url", str, "https://graph.facebook.com/v21.0", "Graph API address with "
                "its version."),
        Setting("phone_number_id", str, "", "Sender's phone number id."),
        Setting("token_env", str, "TINYSDLC_NB_WHATSAPP_TOKEN", "Variable holding the access "
                "token."),
        Setting("to", list, [], "Recipients' phone numbers in international form."),
    )),
    "webhook": Section("channels.webhook", (
        Setting("url", str, "", "Address the JSON is posted to; use url_env instead when the "
                "address holds a token."),
        Setting("url_env", str, "", "Variable holding the address, instead of url."),
        Setting("secret_env", str, "TINYSDLC_NB_WEBHOOK_SECRET", "Variable holding the "
                "HMAC-SHA256 signing key."),
        Setting("max_chars", int, 20000, "Longest text of one post; longer texts are split.",
                minimum=100),
    )),
}


def resolve_channels(raw: Any, where: str) -> dict[str, Any]:
    """Return ``[channels]`` with defaults filled in; only channels with a table are listed."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [channels] must be a table")
    tables = {key: value for key, value in raw.items() if key in CHANNEL_SECTIONS}
    unknown = [key for key, value in raw.items()
               if key not in CHANNEL_SECTIONS and isinstance(value, dict)]
    if unknown:
        raise ConfigError(f"{where}: unknown channel '{unknown[0]}' under [channels]; known "
                          f"channels: {', '.join(CHANNEL_SECTIONS)}")
    plain = {key: value for key, value in raw.items() if key not in tables}
    values = CHANNELS_SECTION.resolve(plain, where)

    configured = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: channels.{name} must be a table")
        configured[name] = CHANNEL_SECTIONS[name].resolve(table, where)
        _check_env_names(name, configured[name], where)
        _protect_secrets(name, configured[name])
        _normalize_ids(name, configured[name], where)
    values["configured"] = configured

    for name in values["notify"]:
        if name not in configured:
            raise ConfigError(f"{where}: channels.notify names '{name}', which has no "
                              f"[channels.{name}] table; add the table or remove the name")
        _check_recipients(name, configured[name], where)
    if "telegram" in configured:
        _check_receive(configured["telegram"], where)
    return values


def _normalize_ids(channel: str, values: dict[str, Any], where: str) -> None:
    """Turn the chat ids and phone numbers into strings; TOML lets people write either."""
    for key in ("chat_ids", "allowed_chat_ids", "to"):
        if key not in values:
            continue
        items = []
        for item in values[key]:
            if isinstance(item, bool) or not isinstance(item, int | str) or not str(item).strip():
                raise ConfigError(f"{where}: channels.{channel}.{key} contains {item!r}; write "
                                  f"each entry as a number or a non-empty string")
            items.append(str(item).strip())
        values[key] = items
    if channel == "telegram" and not values["allowed_chat_ids"]:
        values["allowed_chat_ids"] = list(values["chat_ids"])


def _check_recipients(channel: str, values: dict[str, Any], where: str) -> None:
    """Reject a channel in ``notify`` that has nowhere to send to."""
    if channel == "telegram" and not values["chat_ids"]:
        raise ConfigError(f"{where}: channels.telegram.chat_ids is empty, but notify names "
                          f"telegram; add the chat ids that receive notifications")
    if channel == "whatsapp":
        if not values["phone_number_id"].strip():
            raise ConfigError(f"{where}: channels.whatsapp.phone_number_id is empty; set the "
                              f"sender's phone number id from the WhatsApp Manager")
        if not values["to"]:
            raise ConfigError(f"{where}: channels.whatsapp.to is empty, but notify names "
                              f"whatsapp; add the recipients' phone numbers")
    if channel == "webhook" and bool(values["url"]) == bool(values["url_env"]):
        raise ConfigError(f"{where}: channels.webhook needs exactly one of url and url_env; "
                          f"set url, or url_env when the address holds a token")


def _check_receive(values: dict[str, Any], where: str) -> None:
    if values["receive"] and not values["allowed_chat_ids"]:
        raise ConfigError(f"{where}: channels.telegram.receive is true, but no chat is "
                          f"allowed; set allowed_chat_ids (or chat_ids)")


def _check_env_names(channel: str, values: dict[str, Any], where: str) -> None:
    for key, value in values.items():
        if key.endswith("_env") and value and not _ENV_NAME.match(value):
            raise ConfigError(f"{where}: channels.{channel}.{key} = {value!r} is not an "
                              f"environment variable name; write the variable's name, and "
                              f"put the secret itself in that variable")


def _protect_secrets(channel: str, values: dict[str, Any]) -> None:
    """Redact the values of the channel's secret variables from every text from now on.

    A webhook address carries its token but its variable name does not look secret, so
    without this it would be redacted only once its own channel had sent something.
    """
    from ..scrub import protect

    for key, variable in values.items():
        value = os.environ.get(variable, "").strip() if key.endswith("_env") and variable \
            else ""
        if value:
            protect(value, f"channels.{channel}.{key}")
