"""Shared helpers of the heartbeat tests: a health server on 127.0.0.1 and store records."""

from __future__ import annotations

import datetime as dt
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import insert

from tinysdlc_nb.store import utc_now
from tinysdlc_nb.store.schema import gate_runs, team_conversations, team_messages

# The Messages API server of the anthropic agent's tests, reused as it is.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "team"))
from test_anthropic_agent import API_KEY, MessagesApi, message_body  # noqa: E402

__all__ = ["API_KEY", "HealthServer", "MessagesApi", "add_dead_message", "add_gate_run",
           "closed_port", "message_body", "write_project"]

SLOW_S = 0.3
HANG_S = 3.0


class HealthServer:
    """Health endpoints on 127.0.0.1: /ok returns 200, /error 500, /slow 200 after 0.3 s
    and /hang 200 after 3 s, whatever the query. ``hits`` counts the requests of each path."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.02,),
                                       daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}{path}"

    def __enter__(self) -> HealthServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.http.shutdown()
        self.http.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                status = 500 if path == "/error" else 200
                if path == "/slow":
                    time.sleep(SLOW_S)
                if path == "/hang":
                    time.sleep(HANG_S)
                body = b'{"status": "ok"}' if status == 200 else b'{"status": "down"}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        return Handler


def closed_port() -> int:
    """Return a loopback port that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_project(folder: Path, config_toml: str = "", settings_json: str | None = None) -> Path:
    """Create a project folder with ``.tinysdlc/config.toml`` and optional team settings."""
    home = folder / ".tinysdlc"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'[project]\nname = "shop"\n{config_toml}',
                                      encoding="utf-8")
    if settings_json is not None:
        (home / "settings.json").write_text(settings_json, encoding="utf-8")
    return folder


def add_gate_run(store, run_id: str, *, gate: str = "g4", version: str = "1.4.0",
                 verdict: str = "PASSED", started: dt.datetime | None = None,
                 project: str = "shop", tier: str = "lite") -> None:
    started = started or utc_now()
    with store.begin() as connection:
        connection.execute(insert(gate_runs).values(
            run_id=run_id, project=project, gate=gate, version=version, tier=tier,
            environment="production", status="finished", verdict=verdict, exit_code=0,
            started_at=started, finished_at=started + dt.timedelta(minutes=3)))


def add_dead_message(store, body: str = "deploy 1.4.0") -> int:
    """Insert a conversation with one message the queue gave up on; return the message id."""
    now = utc_now()
    with store.begin() as connection:
        conversation = connection.execute(insert(team_conversations).values(
            started_by="user", origin="cli", entry_agent="devops", text=body, status="failed",
            max_messages=50, created_at=now)).inserted_primary_key[0]
        return connection.execute(insert(team_messages).values(
            conversation_id=conversation, sender="user", recipient="devops", kind="task",
            depth=0, hops="[]", directed=body, shared_context="", body=body, status="dead",
            attempts=3, max_attempts=3, available_at=now, created_at=now,
            last_error="agent failed")).inserted_primary_key[0]
