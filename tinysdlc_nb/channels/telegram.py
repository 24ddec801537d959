"""Telegram through the Bot API: ``sendMessage`` out, ``getUpdates`` long polling in.

Every call is ``{api_url}/bot{token}/{method}`` with a JSON body, and every response is a
JSON object with ``ok``; a failure carries ``description`` and, on flood control (HTTP
429), ``parameters.retry_after`` in seconds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..scrub import scrub
from .base import Channel, Outgoing, SendResult, http_error, json_body, post_json, read_secret

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# A notification addressed to one chat (the answer to a message from it) has this
# recipient prefix followed by the chat id; it goes out on Telegram only.
CHAT_RECIPIENT = "telegram-chat:"


class UpdatesError(Exception):
    """getUpdates failed; the message names the HTTP status or the transport error."""


class TelegramChannel(Channel):
    name = "telegram"
    limit = 4096  # sendMessage: "1-4096 characters after entities parsing"

    def targets(self) -> list[str]:
        return list(self.values["chat_ids"])

    def prepare(self) -> None:
        self.token = read_secret(self.name, self.values, "token_env", "bot token")

    def method_url(self, method: str) -> str:
        return f"{self.values['api_url'].rstrip('/')}/bot{self.token}/{method}"

    def send(self, client: httpx.Client, message: Outgoing) -> SendResult:
        payload = {"chat_id": message.target, "text": scrub(message.text)}
        response = post_json(client, self.method_url("sendMessage"), payload,
                             hidden=(self.token,))
        if isinstance(response, SendResult):
            return response
        return _result(response)

    def get_updates(self, client: httpx.Client, offset: int | None,
                    timeout_s: int) -> list[dict[str, Any]]:
        """Return the updates after ``offset``, waiting up to ``timeout_s`` for the first one.

        Raise UpdatesError when the call fails; the caller keeps its offset and retries.
        """
        import httpx

        payload: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": ["message"]}
        if offset is not None:
            payload["offset"] = offset
        request_timeout = httpx.Timeout(self.settings["timeout_s"] + timeout_s)
        try:
            response = client.post(self.method_url("getUpdates"), json=payload,
                                    timeout=request_timeout)
        except httpx.HTTPError as error:
            text = str(error).replace(self.token, "[REDACTED:token]")
            raise UpdatesError(scrub(f"{type(error).__name__}: {text}")) from error

        result = _result(response)
        if not result.ok:
            raise UpdatesError(result.error or f"HTTP {response.status_code}")
        body = json_body(response)
        updates = body.get("result") if isinstance(body, dict) else None
        if not isinstance(updates, list):
            raise UpdatesError("getUpdates returned no result list")
        return [update for update in updates if isinstance(update, dict)]


def _result(response: httpx.Response) -> SendResult:
    body = json_body(response)
    if response.is_success and isinstance(body, dict) and body.get("ok") is True:
        return SendResult(True, response.status_code)

    if not isinstance(body, dict):
        return http_error(response)
    failed = http_error(response, str(body.get("description") or ""))
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    retry_after = parameters.get("retry_after")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        return SendResult(False, failed.http_status, float(retry_after), failed.error)
    return failed
