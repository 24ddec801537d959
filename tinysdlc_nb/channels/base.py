"""The parts every channel shares: the outgoing message, the result of one request, secrets and
the reading of HTTP responses.

Channel modules take an ``httpx.Client`` from the caller and never import httpx at module
level, so that loading the config (which declares the channels) stays fast.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..scrub import protect, scrub

if TYPE_CHECKING:
    import httpx

# Maximum length of the error body kept in an attempt row.
ERROR_BODY_CHARS = 300


class MissingSecret(ConfigError):
    """A channel's secret environment variable is not set."""

    def __init__(self, channel: str, key: str, variable: str, what: str):
        super().__init__(f"environment variable {variable} (channels.{channel}.{key}) is not "
                         f"set; export the {what} in it")
        self.variable = variable


@dataclass(frozen=True)
class Outgoing:
    """One part of a notification, ready for one recipient of one channel."""

    text: str
    target: str
    part: int
    parts: int
    notification_id: int | None = None
    recipient: str = ""
    conversation_id: int | None = None
    created_at: dt.datetime | None = None
    key: str = ""


class Channel(ABC):
    """A chat service or endpoint that notifications are sent to.

    Subclasses set ``name`` and ``limit`` (the longest text of one message, in UTF-16 code
    units) and implement ``send``. ``values`` is the channel's resolved config table and
    ``settings`` the whole ``[channels]`` section.
    """

    name = ""
    limit = 4096

    def __init__(self, values: dict[str, Any], settings: dict[str, Any]):
        self.values = values
        self.settings = settings

    def targets(self) -> list[str]:
        """Return the recipients of a notification; a webhook has one, the empty string."""
        return [""]

    @abstractmethod
    def prepare(self) -> None:
        """Read the secrets; raise MissingSecret or ConfigError before anything is sent."""

    @abstractmethod
    def send(self, client: httpx.Client, message: Outgoing) -> SendResult:
        """Make one request for ``message`` and return its outcome; HTTP and transport errors
        become a failed result instead of an exception."""


@dataclass(frozen=True)
class SendResult:
    """The outcome of one request: sent, or failed with an error and maybe a Retry-After."""

    ok: bool
    http_status: int | None = None
    retry_after_s: float | None = None
    error: str | None = None


def read_secret(channel: str, values: dict[str, Any], key: str, what: str) -> str:
    """Return the value of the variable named by ``values[key]``; raise MissingSecret if unset.

    The value is also registered with the redaction, so it is removed from every text
    that leaves the process even when the variable's name does not look secret (such as a
    webhook address).
    """
    variable = values[key]
    value = os.environ.get(variable, "").strip() if variable else ""
    if not value:
        raise MissingSecret(channel, key, variable or "(none)", what)
    protect(value, f"channels.{channel}.{key}")
    return value


def secret_variables(values: dict[str, Any]) -> dict[str, bool]:
    """Return each secret variable a channel table names, with whether it is set."""
    return {value: bool(os.environ.get(value, "").strip())
            for key, value in values.items() if key.endswith("_env") and value}


def retry_after_header(response: httpx.Response) -> float | None:
    """Return the seconds a ``Retry-After`` header requests (seconds or an HTTP date)."""
    header = response.headers.get("retry-after")
    if not header:
        return None
    header = header.strip()
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


def json_body(response: httpx.Response) -> Any:
    """Return the decoded JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def http_error(response: httpx.Response, detail: str | None = None) -> SendResult:
    """Build the failed result of a response whose status is not a success."""
    text = detail if detail is not None else response.text
    message = f"HTTP {response.status_code}"
    if text and text.strip():
        message += f": {scrub(text.strip())[:ERROR_BODY_CHARS]}"
    return SendResult(False, response.status_code, retry_after_header(response), message)


def transport_error(error: Exception, *hidden: str) -> SendResult:
    """Build the failed result of a request that got no response (refused, timed out, …).

    ``hidden`` are texts such as a webhook address or a token, removed from the message in
    case the HTTP library put them there.
    """
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    for text in hidden:
        if text:
            message = message.replace(text, "[REDACTED:address]")
    return SendResult(False, None, None, scrub(message)[:ERROR_BODY_CHARS])


def post_json(client: httpx.Client, url: str, payload: dict[str, Any], *,
              headers: dict[str, str] | None = None, hidden: tuple[str, ...] = ()
              ) -> httpx.Response | SendResult:
    """POST ``payload`` as JSON; return the response, or a failed result if none came back."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return post_body(client, url, body, headers=headers, hidden=hidden)


def post_body(client: httpx.Client, url: str, body: bytes, *,
              headers: dict[str, str] | None = None, hidden: tuple[str, ...] = ()
              ) -> httpx.Response | SendResult:
    """POST the JSON ``body`` bytes as they are (a signature may cover them)."""
    import httpx

    try:
        return client.post(url, content=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
    except httpx.HTTPError as error:
        return transport_error(error, url, *hidden)


def new_client(timeout_s: float) -> httpx.Client:
    """Return the HTTP client channels send with; the caller closes it."""
    import httpx

    return httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                        headers={"User-Agent": "tinysdlc-nb"})
