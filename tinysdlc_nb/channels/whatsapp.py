"""WhatsApp through the Cloud API: ``POST {api_url}/{phone_number_id}/messages``.

The request carries the access token as a bearer token and a text message body of at
most 4096 characters. Errors come back as ``{"error": {"message": …, "code": …}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..scrub import scrub
from .base import Channel, Outgoing, SendResult, http_error, json_body, post_json, read_secret

if TYPE_CHECKING:
    import httpx


class WhatsAppChannel(Channel):
    name = "whatsapp"
    limit = 4096

    def targets(self) -> list[str]:
        return list(self.values["to"])

    def prepare(self) -> None:
        if not self.values["phone_number_id"].strip():
            raise ConfigError("channels.whatsapp.phone_number_id is empty; set the sender's "
                              "phone number id")
        self.token = read_secret(self.name, self.values, "token_env", "access token")

    def send(self, client: httpx.Client, message: Outgoing) -> SendResult:
        url = (f"{self.values['api_url'].rstrip('/')}/"
               f"{self.values['phone_number_id'].strip()}/messages")
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": message.target, "type": "text",
                   "text": {"preview_url": False, "body": scrub(message.text)}}
        response = post_json(client, url, payload,
                             headers={"Authorization": f"Bearer {self.token}"},
                             hidden=(self.token,))
        if isinstance(response, SendResult):
            return response
        if response.is_success:
            return SendResult(True, response.status_code)

        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return http_error(response, f"{error.get('message', '')} (code "
                                        f"{error.get('code', '?')})")
        return http_error(response)
