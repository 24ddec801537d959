"""A generic webhook: each part of a notification is a signed JSON POST.

Body (UTF-8 JSON object):

- ``key``: ``"n<notification id>-p<part>"``, the same on every retry of that part, so a
  receiver can drop a repeat;
- ``notification_id``, ``conversation_id`` (or null), ``recipient``, ``created_at`` (ISO
  8601, UTC);
- ``part`` and ``parts`` (1 and 1 for a text that was not split), and ``text``, the part's
  text, redacted, with its ``(1/3) `` number when split.

Headers: ``X-TinySDLC-Timestamp`` (Unix seconds) and
``X-TinySDLC-Signature: sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed
with the secret from ``secret_env``. To verify, take the raw body bytes as received,
compute ``hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()``,
compare it with ``hmac.compare_digest`` and reject a timestamp more than a few minutes
away from the receiver's clock (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..scrub import scrub
from .base import Channel, Outgoing, SendResult, http_error, post_body, read_secret

if TYPE_CHECKING:
    import httpx

TIMESTAMP_HEADER = "X-TinySDLC-Timestamp"
SIGNATURE_HEADER = "X-TinySDLC-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                      hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload_of(message: Outgoing) -> dict[str, Any]:
    """Return the JSON object posted for ``message``."""
    created = message.created_at.isoformat() if message.created_at else None
    return {"key": message.key, "notification_id": message.notification_id,
            "conversation_id": message.conversation_id, "recipient": scrub(message.recipient),
            "created_at": created, "part": message.part, "parts": message.parts,
            "text": scrub(message.text)}


class WebhookChannel(Channel):
    name = "webhook"

    @property
    def limit(self) -> int:  # type: ignore[override]
        return self.values["max_chars"]

    def prepare(self) -> None:
        if self.values["url_env"]:
            self.url = read_secret(self.name, self.values, "url_env", "webhook address")
        elif self.values["url"]:
            self.url = self.values["url"]
        else:
            raise ConfigError("channels.webhook has neither url nor url_env; set the address "
                              "the JSON is posted to")
        self.secret = read_secret(self.name, self.values, "secret_env", "signing key")

    def send(self, client: httpx.Client, message: Outgoing) -> SendResult:
        body = json.dumps(payload_of(message), ensure_ascii=False).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.secret, timestamp, body)}
        response = post_body(client, self.url, body, headers=headers)
        if isinstance(response, SendResult):
            return response
        if response.is_success:
            return SendResult(True, response.status_code)
        return http_error(response)
