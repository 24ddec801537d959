"""Discord through an incoming webhook: a POST of ``{"content": …}`` to the webhook address.

A message's content is at most 2000 characters. A 429 response carries ``retry_after`` in
seconds in its JSON body and a ``Retry-After`` header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..scrub import scrub
from .base import Channel, Outgoing, SendResult, http_error, json_body, post_json, read_secret

if TYPE_CHECKING:
    import httpx


class DiscordChannel(Channel):
    name = "discord"
    limit = 2000

    def prepare(self) -> None:
        self.url = read_secret(self.name, self.values, "webhook_url_env",
                               "incoming webhook's address")

    def send(self, client: httpx.Client, message: Outgoing) -> SendResult:
        # An empty parse list keeps "@everyone" or a user mention in a text from pinging.
        payload = {"content": scrub(message.text), "username": self.values["username"],
                   "allowed_mentions": {"parse": []}}
        response = post_json(client, self.url, payload)
        if isinstance(response, SendResult):
            return response
        if response.is_success:
            return SendResult(True, response.status_code)

        body = json_body(response)
        failed = http_error(response, str(body.get("message") or "") if isinstance(body, dict)
                            else None)
        retry_after = body.get("retry_after") if isinstance(body, dict) else None
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
            return SendResult(False, failed.http_status, float(retry_after), failed.error)
        return failed
