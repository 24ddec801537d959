"""Slack through an incoming webhook: a POST of ``{"text": …}`` to the webhook address.

Slack responds ``ok`` on success and a short plain-text code on failure (``invalid_payload``,
``no_text``, ``no_service``, …); a 429 response carries a ``Retry-After`` header. Texts are
split at 4000 characters, the length Slack advises for one message's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..scrub import scrub
from .base import Channel, Outgoing, SendResult, http_error, post_json, read_secret

if TYPE_CHECKING:
    import httpx


class SlackChannel(Channel):
    name = "slack"
    limit = 4000

    def prepare(self) -> None:
        self.url = read_secret(self.name, self.values, "webhook_url_env",
                               "incoming webhook's address")

    def send(self, client: httpx.Client, message: Outgoing) -> SendResult:
        response = post_json(client, self.url, {"text": scrub(message.text)})
        if isinstance(response, SendResult):
            return response
        if response.is_success:
            return SendResult(True, response.status_code)
        return http_error(response)
