"""The webhook server of ``tinysdlc-nb serve``: ``POST /webhooks/FORMAT`` ingests one payload.

Point Alertmanager's ``webhook_config`` at ``http://HOST:9095/webhooks/alertmanager``; the
other adapters have their own path (``/webhooks/pagerduty``...). ``GET /healthz`` returns
``{"status": "ok"}``.

The server has no authentication: anyone who can reach its port can open and resolve
incidents. It listens on 127.0.0.1 by default. Before binding it to another address, put
it on a private network or behind a proxy that authenticates.

Status codes:
- 200 with the outcome counts;
- 400 for a body that is not JSON, 404 for an unknown path or format, 405 for a method
  the path does not take, 408 for a body that does not arrive, 411 without
  Content-Length, 413 for a body over ``[incidents] max_body_bytes``, 422 for JSON of the
  wrong shape;
- 500 when storing fails and 503 while the server stops.

Alertmanager's webhook notifier retries after a 5xx
response and gives up after a 4xx one (``notify/webhook/webhook.go`` in
prometheus/alertmanager), so a payload that resending cannot fix gets a 4xx.
"""

from __future__ import annotations

import logging
import signal
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from ..config import Config
from ..errors import UsageError
from ..store import open_store
from .adapters import ADAPTERS
from .webhook_handler import WEBHOOK_PREFIX, WebhookHandler

log = logging.getLogger(__name__)

class WebhookServer(ThreadingHTTPServer):
    """An HTTP server that ingests webhook payloads into one open store.

    Handler threads are daemon threads, so an idle keep-alive connection never delays a
    stop. ``server_close`` waits for the payload being written, if any, before it closes
    the store; a payload that arrives after that gets 503.
    """

    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a few dozen senders post
    # at once (a burst of alerts); the kernel caps this at net.core.somaxconn.
    request_queue_size = 512

    def __init__(self, config: Config, host: str, port: int):
        self.config = config
        self.max_body_bytes = int(config.incidents["max_body_bytes"])
        self.write_lock = threading.Lock()
        self.stopping = False
        if ":" in host:
            self.address_family = socket.AF_INET6

        self.store = open_store(config.database_url)
        try:
            super().__init__((host, port), WebhookHandler)
        except OSError as error:
            self.store.close()
            raise UsageError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                             f"pass another --host or --port") from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN with a DNS query, which can stall
        # the start. Nothing here uses that name, so the plain host is kept.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        display_host = f"[{host}]" if ":" in str(host) else host
        return f"http://{display_host}:{port}"

    def handle_error(self, request: Any, client_address: tuple) -> None:
        """Log an exception a handler did not catch, such as a client that hung up."""
        log.warning("%s: the connection failed", client_address[0], exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        with self.write_lock:
            self.stopping = True
            self.store.close()


def make_server(config: Config, host: str = "127.0.0.1", port: int = 9095) -> WebhookServer:
    """Open the store and bind the server without serving yet; port 0 picks a free port.

    The caller runs ``serve_forever`` (in a thread, for tests), then ``shutdown`` and
    ``server_close``. Raise UsageError when the address cannot be bound.
    """
    return WebhookServer(config, host, port)


def serve(config: Config, host: str = "127.0.0.1", port: int = 9095, *,
          ready: Callable[[str, int], None] | None = None) -> None:
    """Serve webhooks until SIGINT or SIGTERM, then close the store and log "stopped".

    ``ready`` is called with the bound host and port once the socket listens, so a caller
    that passed port 0 learns its port. Signal handlers are installed only when this runs
    in the main thread, because Python allows them nowhere else.
    """
    server = make_server(config, host, port)
    restore_handlers = _stop_on_signals(server)
    try:
        log.info("listening on %s%sFORMAT for formats %s; no authentication, so keep it on "
                 "a private network", server.url, WEBHOOK_PREFIX, ", ".join(ADAPTERS))
        if ready is not None:
            ready(str(server.server_address[0]), int(server.server_address[1]))
        server.serve_forever()
    finally:
        restore_handlers()
        server.server_close()
        log.info("stopped")


def _stop_on_signals(server: WebhookServer) -> Callable[[], None]:
    """Make SIGINT and SIGTERM stop ``server``; return a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, _frame: Any) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        # shutdown() waits for serve_forever to return, and serve_forever runs in this
        # (the main) thread, so it must be called from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {number: signal.signal(number, stop)
                for number in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore
