"""The ``anthropic`` provider: agents that reply through Claude's Messages API.

The API key comes from ``ANTHROPIC_API_KEY`` only. ``TINYSDLC_NB_ANTHROPIC_TIMEOUT_S`` sets
the timeout of one HTTP request and ``TINYSDLC_NB_AGENT_MAX_TOKENS`` the output limit of one
reply. The SDK itself reads ``ANTHROPIC_BASE_URL``.

Rate limits (429), overload (529), other 5xx replies, 408, 409, timeouts and connection
errors raise AgentError carrying the server's ``retry-after``, and the queue tries the
message again after its backoff, which honours that wait up to ``team.backoff_max_s``. The
SDK's own retries are off (``SDK_RETRIES``): anthropic 2.x sleeps for any ``retry-after``
with no upper bound, which would hold a worker thread past its lease. A rejected key
(401, 402, 403) raises AgentUnusable, and a request the API can never accept (400, 404,
413...) raises AgentRejected.

Everything sent, logged, raised or returned is redacted with ``scrub``, and the key's own
value is replaced as well, so it cannot leak through an error body that echoes it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import anthropic

from ...errors import ConfigError
from ...scrub import scrub
from ...settings import seconds_from_env
from ..model import AgentContext, AgentError, AgentRejected, AgentReply, AgentRequest, AgentUnusable
from ..prompts import system_prompt
from ..settings import AgentSpec

log = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
TIMEOUT_ENV = "TINYSDLC_NB_ANTHROPIC_TIMEOUT_S"
MAX_TOKENS_ENV = "TINYSDLC_NB_AGENT_MAX_TOKENS"
# An agent reply may be nearly three times as long as a postmortem draft, so the unset
# timeout is longer than drafting's 60 s. The worker renews its lease while it waits.
DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 3600.0
DEFAULT_MAX_TOKENS = 2048
SDK_RETRIES = 0
MAX_DETAIL_CHARS = 300
CUT_OFF_NOTE = "[The reply was cut off at the limit of {max_tokens} output tokens.]"
_KEY_LABEL = f"[REDACTED:${API_KEY_ENV}]"
# Statuses that are worth trying again later: the queue retries them after its backoff.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_UNUSABLE_STATUSES = frozenset({401, 402, 403})


class AnthropicSettingInvalid(AgentUnusable, ConfigError):
    """An environment variable of the anthropic provider has an invalid value."""


class AnthropicAgent:
    """Agents of ``provider: "anthropic"``; one object serves every such agent of a worker.

    The ``anthropic.Anthropic`` client is built once and shared by all threads, which the
    SDK supports. Raise AnthropicSettingInvalid when the timeout or the token limit in the
    environment is invalid.
    """

    def __init__(self, context: AgentContext):
        self.context = context
        self.timeout_s = read_timeout_s()
        self.max_tokens = read_max_tokens()

        self._api_key = os.environ.get(API_KEY_ENV, "").strip()
        self._client: anthropic.Anthropic | None = None
        if self._api_key:
            self._client = anthropic.Anthropic(api_key=self._api_key, timeout=self.timeout_s,
                                               max_retries=SDK_RETRIES)

    def reply(self, request: AgentRequest, spec: AgentSpec) -> AgentReply:
        """Send ``request`` to ``spec``'s model and return the model's redacted reply."""
        client = self._require_client(spec)
        model = spec.model_id()
        try:
            system, user_message = self._compose(request, spec)
        except ConfigError as error:
            raise self._logged(request, spec, AgentRejected(self._scrub(str(error)))) from None

        log.debug("agent %s: requesting %s for message %d of conversation %d (attempt %d)",
                  spec.id, model, request.message_id, request.conversation_id, request.attempt)
        try:
            message = client.messages.create(
                model=model, max_tokens=self.max_tokens, system=system,
                messages=[{"role": "user", "content": user_message}])
        except anthropic.APIStatusError as error:
            raise self._logged(request, spec, self._status_failure(error, spec, model)) from None
        except anthropic.APITimeoutError:
            failure = AgentError(f"agent '{spec.id}': the Messages API request for model "
                                 f"'{model}' timed out after {self.timeout_s:g} s; the queue "
                                 f"retries the message later")
            raise self._logged(request, spec, failure) from None
        except anthropic.APIConnectionError as error:
            url = self._scrub(str(client.base_url))
            failure = AgentError(f"agent '{spec.id}': the connection to the Messages API at "
                                 f"{url} failed ({self._detail(str(error))}); the queue retries "
                                 f"the message later")
            raise self._logged(request, spec, failure) from None
        except (anthropic.APIError, json.JSONDecodeError) as error:
            raise self._logged(request, spec, self._invalid_reply(
                spec, model, f"{type(error).__name__}: {error}")) from None

        try:
            return self._answer(message, spec, model)
        except AgentError as failure:
            raise self._logged(request, spec, failure) from None

    def _require_client(self, spec: AgentSpec) -> anthropic.Anthropic:
        if self._client is None:
            raise AgentUnusable(f"{API_KEY_ENV} is not set; export it, or set "
                                f"agents.{spec.id}.provider to \"protocol\"")
        return self._client

    def _compose(self, request: AgentRequest, spec: AgentSpec) -> tuple[str, str]:
        """Return the redacted system prompt and user message of one request."""
        system = system_prompt(spec, self.context.settings)
        header = f"From @{request.sender} (conversation {request.conversation_id}):"
        return self._scrub(system), self._scrub(f"{header}\n{request.message}")

    def _answer(self, message: Any, spec: AgentSpec, model: str) -> AgentReply:
        """Return the reply of a Messages API message; raise AgentError when it has no text."""
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            raise self._invalid_reply(spec, model, f"no content list in a "
                                                   f"{type(message).__name__}")

        text = "".join(block.text for block in content
                       if getattr(block, "type", None) == "text"
                       and isinstance(getattr(block, "text", None), str)).strip()
        stop_reason = getattr(message, "stop_reason", None)
        if not text:
            raise AgentError(f"agent '{spec.id}': the reply of model '{model}' contained no "
                             f"text (stop_reason {stop_reason}); the queue retries the message")
        if stop_reason == "max_tokens":
            text += "\n\n" + CUT_OFF_NOTE.format(max_tokens=self.max_tokens)

        usage = getattr(message, "usage", None)
        meta = {"model": self._scrub(getattr(message, "model", None) or model),
                "input_tokens": getattr(usage, "input_tokens", None),
                "output_tokens": getattr(usage, "output_tokens", None)}
        log.debug("agent %s: %s replied with %s output tokens", spec.id, meta["model"],
                  meta["output_tokens"])
        return AgentReply(text=self._scrub(text), meta=meta)

    def _status_failure(self, error: anthropic.APIStatusError, spec: AgentSpec,
                        model: str) -> Exception:
        """Map an HTTP error of the Messages API to the agent error the queue acts on."""
        status = error.status_code
        kind, message = _error_fields(error.body)
        detail = self._detail(f"{status} {kind}: {message}" if message else f"{status} {kind}")

        if status == 401:
            return AgentUnusable(f"{API_KEY_ENV} was rejected by the Messages API ({status} "
                                 f"{kind}); set a valid key")
        if status in _UNUSABLE_STATUSES:
            return AgentUnusable(f"the Messages API refused the key in {API_KEY_ENV} for "
                                 f"agent '{spec.id}' and model '{model}' ({detail}); use a key "
                                 f"whose organization may call this model, or set "
                                 f"agents.{spec.id}.model to one it may call")

        if status in _TRANSIENT_STATUSES or status >= 500:
            return AgentError(f"agent '{spec.id}': the Messages API returned {detail} for "
                              f"model '{model}'; the queue retries the message later",
                              retry_after_s=retry_after_s(error.response.headers))
        if status == 404:
            return AgentRejected(f"agent '{spec.id}': model '{model}' was not found by the "
                                 f"Messages API ({detail}); set agents.{spec.id}.model to an "
                                 f"available model, such as sonnet, opus or haiku")
        return AgentRejected(f"agent '{spec.id}': the Messages API rejected the request for "
                             f"model '{model}' ({detail}); fix agents.{spec.id}.model or "
                             f"{MAX_TOKENS_ENV}, or shorten the message, as the reason says")

    def _invalid_reply(self, spec: AgentSpec, model: str, reason: str) -> AgentError:
        return AgentError(f"agent '{spec.id}': the reply for model '{model}' is not a Messages "
                          f"API message ({self._detail(reason)}); the queue retries the "
                          f"message")

    def _logged(self, request: AgentRequest, spec: AgentSpec, failure: Exception) -> Exception:
        log.warning("agent %s: message %d of conversation %d failed (%s): %s", spec.id,
                    request.message_id, request.conversation_id, type(failure).__name__,
                    failure)
        return failure

    def _detail(self, text: str) -> str:
        """Return ``text`` redacted, on one line and at most MAX_DETAIL_CHARS long."""
        flat = self._scrub(" ".join(text.split()))
        return flat if len(flat) <= MAX_DETAIL_CHARS else flat[:MAX_DETAIL_CHARS] + "..."

    def _scrub(self, text: str) -> str:
        """Redact ``text`` and the key itself, which scrub misses if the environment changed."""
        text = scrub(text)
        if self._api_key:
            text = text.replace(self._api_key, _KEY_LABEL)
        return text


def _error_fields(body: object) -> tuple[str, str]:
    """Return the ``error.type`` and ``error.message`` of an API error body, or placeholders."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return "error", ""

    kind = error.get("type")
    message = error.get("message")
    return (kind if isinstance(kind, str) and kind else "error",
            message if isinstance(message, str) else "")


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Return the wait in seconds that an error response requests, or None.

    ``retry-after`` (seconds or an HTTP date) comes first, then ``retry-after-ms``.
    """
    value = (headers.get("retry-after") or "").strip()
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)

    milliseconds = (headers.get("retry-after-ms") or "").strip()
    try:
        return max(float(milliseconds) / 1000, 0.0) if milliseconds else None
    except ValueError:
        return None


def read_timeout_s() -> float:
    """Return the request timeout from TIMEOUT_ENV, or DEFAULT_TIMEOUT_S when it is unset."""
    try:
        return seconds_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S)
    except ConfigError as error:
        raise AnthropicSettingInvalid(str(error)) from None


def read_max_tokens() -> int:
    """Return the output token limit from MAX_TOKENS_ENV, or DEFAULT_MAX_TOKENS when unset."""
    text = os.environ.get(MAX_TOKENS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_TOKENS

    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise AnthropicSettingInvalid(f"{MAX_TOKENS_ENV}='{text}' is invalid; set a whole "
                                      f"number of tokens of at least 1, or unset it for "
                                      f"{DEFAULT_MAX_TOKENS}")
    return int(text)
