"""The request handler of ``tinysdlc-nb serve``: routing, body limits, status codes.

Each POST to ``/webhooks/FORMAT`` is decoded, adapted and applied in one transaction under
the server's write lock, and every response is JSON. ``serve.py`` contains the server.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import PayloadError
from ..scrub import scrub
from . import ingest
from .adapters import ADAPTERS
from .engine import Outcome
from .records import display_id

if TYPE_CHECKING:
    from .serve import WebhookServer

log = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/webhooks/"
HEALTH_PATH = "/healthz"
OUTCOME_ACTIONS = ("created", "updated", "reopened", "unchanged", "ignored")

# A client that sends nothing for this long loses its connection, so that a stalled or
# idle keep-alive client does not hold a thread forever.
REQUEST_TIMEOUT_S = 30.0
# After rejecting a request whose body stays unread, the server drops what the client
# still sends for at most this long before closing. Closing a socket with unread data
# makes the kernel send a reset, and the client may then never read the error response.
LINGER_S = 2.0


class WebhookHandler(BaseHTTPRequestHandler):
    """Routes one connection's requests; every response body is JSON."""

    server: WebhookServer
    protocol_version = "HTTP/1.1"
    server_version = "tinysdlc-nb"
    timeout = REQUEST_TIMEOUT_S
    # The headers and the body go out in two writes. With Nagle's algorithm the body then
    # waits for the client's delayed ACK of the headers, about 40 ms per response on Linux.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._get(send_body=True)

    def do_HEAD(self) -> None:
        self._get(send_body=False)

    def do_POST(self) -> None:
        path = self._path()
        if path == HEALTH_PATH:
            self._method_not_allowed("GET, HEAD", unread_body=True)
            return
        if not path.startswith(WEBHOOK_PREFIX):
            self._not_found(path, unread_body=True)
            return

        fmt = path[len(WEBHOOK_PREFIX):]
        if fmt not in ADAPTERS:
            self._send_json(404, _error(f"format '{fmt}' is unknown; POST to "
                                        f"{WEBHOOK_PREFIX}FORMAT with one of: "
                                        f"{', '.join(ADAPTERS)}"), unread_body=True)
            return

        body = self._read_body()
        if body is not None:
            self._ingest(fmt, body)

    def do_PUT(self) -> None:
        self._other_method()

    def do_DELETE(self) -> None:
        self._other_method()

    def do_PATCH(self) -> None:
        self._other_method()

    def do_OPTIONS(self) -> None:
        self._other_method()

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Send a JSON error for a request the library rejects, such as a bad request line.

        It replaces the library's HTML error page. The library sends 501 only for a method
        without a ``do_`` handler, and such a method gets the same 405 (or 404) as PUT.
        """
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
            self._other_method()
            return
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send_json(code, _error(message or phrase), close=True)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # _send_json logs each request with its outcome; this hook would log it twice.
        return

    def log_message(self, message_format: str, *args: Any) -> None:
        # The library logs a request that times out or cannot be parsed through this hook.
        log.warning("%s: %s", self.client_address[0], scrub(message_format % args))

    def _get(self, *, send_body: bool) -> None:
        path = self._path()
        if path == HEALTH_PATH:
            self._send_json(200, {"status": "ok"}, send_body=send_body)
        elif path.startswith(WEBHOOK_PREFIX):
            self._method_not_allowed("POST", send_body=send_body)
        else:
            self._not_found(path, send_body=send_body)

    def _other_method(self) -> None:
        path = self._path()
        if path == HEALTH_PATH:
            self._method_not_allowed("GET, HEAD", unread_body=True)
        elif path.startswith(WEBHOOK_PREFIX):
            self._method_not_allowed("POST", unread_body=True)
        else:
            self._not_found(path, unread_body=True)

    def _read_body(self) -> bytes | None:
        """Return the request body, or send the error response and return None.

        The length is checked before a byte of the body is read, so an oversized or
        unannounced body never reaches memory.
        """
        problem = _length_problem(self.headers.get("Transfer-Encoding"),
                                  self.headers.get_all("Content-Length") or [],
                                  self.server.max_body_bytes)
        if problem is not None:
            status, message = problem
            self._send_json(status, _error(message), unread_body=True)
            return None

        length = int(self.headers["Content-Length"])
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self._send_json(408, _error(f"the request body of {length} bytes did not arrive "
                                        f"within {REQUEST_TIMEOUT_S:g} s; send it again"),
                            close=True)
            return None
        if len(body) < length:
            log.warning("%s: POST %s: the client closed the connection after %d of %d "
                        "body bytes; nothing was stored", self.client_address[0],
                        self._path(), len(body), length)
            self.close_connection = True
            return None
        return body

    def _ingest(self, fmt: str, body: bytes) -> None:
        where = f"POST {WEBHOOK_PREFIX}{fmt}"
        try:
            payload = ingest.decode(body, where)
        except PayloadError as error:
            self._send_json(400, _error(str(error)))
            return

        context = ingest.adapter_context(self.server.config)
        try:
            signals = ingest.signals_of(fmt, payload, context, where)
        except PayloadError as error:
            self._send_json(422, _error(str(error)))
            return
        except Exception:
            self._internal_error(where, "reading the payload")
            return

        with self.server.write_lock:
            if self.server.stopping:
                self._send_json(503, _error("the server is stopping; send the payload again "
                                            "once it runs"), close=True)
                return
            try:
                outcomes = ingest.ingest_signals(self.server.store, self.server.config,
                                                 signals)
            except Exception:
                # The engine writes a payload in one transaction, so a failure stores none of it.
                self._internal_error(where, "storing the payload")
                return

        self._send_json(200, outcome_counts(outcomes))

    def _internal_error(self, where: str, step: str) -> None:
        log.exception("%s: %s: %s failed; no row of this payload was stored",
                      self.client_address[0], where, step)
        self._send_json(500, _error(f"{where}: {step} failed with an internal error; no row "
                                    f"of this payload was stored, and the server log has the "
                                    f"details"))

    def _not_found(self, path: str, *, unread_body: bool = False, send_body: bool = True) -> None:
        self._send_json(404, _error(f"path '{path}' not found; POST payloads to "
                                    f"{WEBHOOK_PREFIX}FORMAT or GET {HEALTH_PATH}"),
                        unread_body=unread_body, send_body=send_body)

    def _method_not_allowed(self, allowed: str, *, unread_body: bool = False,
                            send_body: bool = True) -> None:
        self._send_json(405, _error(f"method {self.command} is not allowed on "
                                    f"{self._path()}; use {allowed}"),
                        headers={"Allow": allowed}, unread_body=unread_body,
                        send_body=send_body)

    def _send_json(self, status: int, data: dict[str, Any], *,
                   headers: dict[str, str] | None = None, close: bool = False,
                   unread_body: bool = False, send_body: bool = True) -> None:
        """Log the request in one line, then send ``data`` as the JSON response.

        ``unread_body`` marks a request whose body may still be on its way. The connection
        then closes after the response, once the rest of that body is dropped.
        """
        summary = _log_summary(data)
        log.info("%s %s %s -> %d%s", self.client_address[0], self.command or "-",
                 self._path(), status, f" {summary}" if summary else "")

        payload = json.dumps(data).encode("utf-8")
        close = close or unread_body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(payload)

        if unread_body and self._may_have_body():
            self._drop_unread_body()

    def _drop_unread_body(self) -> None:
        """Read and drop what the client still sends, for at most LINGER_S seconds."""
        deadline = time.monotonic() + LINGER_S
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.connection.recv(65536):
                    break
        except OSError:
            return

    def _may_have_body(self) -> bool:
        headers = getattr(self, "headers", None)
        return (headers is not None and (
            headers.get("Content-Length", "0").strip() not in ("", "0")
            or headers.get("Transfer-Encoding") is not None))

    def _path(self) -> str:
        # The query string is left out: nothing reads it, and tokens often travel in it.
        raw = getattr(self, "path", "") or ""
        return scrub(urlsplit(raw).path)[:300]


def _length_problem(transfer_encoding: str | None, lengths: list[str],
                    limit: int) -> tuple[int, str] | None:
    """Return the status and message rejecting the announced body length, or None if valid."""
    if transfer_encoding is not None:
        return 411, (f"Transfer-Encoding {transfer_encoding!r} is not supported; send the "
                     f"body with a Content-Length header")
    if not lengths:
        return 411, "the Content-Length header is missing; send the body with its length"
    if len(set(lengths)) > 1:
        return 400, (f"the request has {len(lengths)} different Content-Length headers "
                     f"({', '.join(lengths)}); send exactly one")

    text = lengths[0].strip()
    if not (text.isascii() and text.isdigit()):
        return 400, f"Content-Length {text!r} is invalid; expected a number of bytes"
    if int(text) > limit:
        return 413, (f"the request body of {int(text)} bytes exceeds the limit of {limit} "
                     f"bytes; raise [incidents] max_body_bytes in config.toml, or send fewer "
                     f"alerts per payload (Alertmanager: max_alerts in webhook_config)")
    return None


def outcome_counts(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Return how many signals had each outcome, and the incidents they touched in order."""
    outcomes = list(outcomes)
    counts = Counter(outcome.action for outcome in outcomes)
    touched: list[str] = []
    for outcome in outcomes:
        if outcome.incident_id is not None and display_id(outcome.incident_id) not in touched:
            touched.append(display_id(outcome.incident_id))
    return {**{action: counts.get(action, 0) for action in OUTCOME_ACTIONS},
            "incidents": touched}


def _error(message: str) -> dict[str, str]:
    return {"error": scrub(message)}


def _log_summary(data: dict[str, Any]) -> str:
    if "error" in data:
        return data["error"]
    if "incidents" in data:
        counts = " ".join(f"{action}={data[action]}" for action in OUTCOME_ACTIONS)
        return f"{counts} incidents={','.join(data['incidents']) or '-'}"
    return ""
