"""Shared pieces of the channel tests: a scripted HTTP API on 127.0.0.1 and the request
shape checks of each chat API."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tinysdlc_nb.channels.outbox import queue_notification
from tinysdlc_nb.channels.split import text_length
from tinysdlc_nb.config import load_config
from tinysdlc_nb.store.schema import channel_attempts, notification_deliveries, team_notifications

TELEGRAM_TOKEN = "123456:telegram-test-token-value"
DISCORD_PATH = "/api/webhooks/42/discord-hook-token-value"
SLACK_PATH = "/services/T000/B000/slack-hook-token-value"
WHATSAPP_TOKEN = "whatsapp-test-access-token"
WEBHOOK_KEY = "webhook-signing-key-for-tests"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    json: Any = None


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FakeApi:
    """An HTTP server on 127.0.0.1 that checks every request's shape and responds from a
    script of replies (then ``default``)."""

    def __init__(self, check: Callable[[Request], list[str]], default: Reply | None = None):
        self.check = check
        self.default = default or Reply(200, {"ok": True})
        self.script: list[Reply | Callable[[Request], Reply]] = []
        self.requests: list[Request] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the name http.server calls)
                api._handle(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def then(self, *replies: Reply | Callable[[Request], Reply]) -> FakeApi:
        with self.lock:
            self.script.extend(replies)
        return self

    def bodies(self) -> list[Any]:
        return [request.json for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        request = Request(handler.command, handler.path, dict(handler.headers.items()), body,
                          time.monotonic())
        try:
            request.json = json.loads(body) if body else None
        except json.JSONDecodeError:
            request.json = None
        problems = self.check(request)
        with self.lock:
            self.requests.append(request)
            self.problems.extend(problems)
            step = self.script.pop(0) if self.script and not problems else None
        reply = Reply(400, {"problems": problems}) if problems else (step or self.default)
        if callable(reply):
            reply = reply(request)
        if reply.delay_s:
            time.sleep(reply.delay_s)

        payload = reply.body if isinstance(reply.body, bytes | str) else json.dumps(reply.body)
        data = payload.encode() if isinstance(payload, str) else payload
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def refused_url() -> str:
    """Return an address on 127.0.0.1 where nothing listens (the connection is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def write_config(project: Path, text: str, *, load: bool = True):
    home = project / ".tinysdlc"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")
    return load_config(project) if load else None


def _json_post(request: Request, path: str) -> list[str]:
    problems = []
    if request.method != "POST":
        problems.append(f"method {request.method}, expected POST")
    if request.path != path:
        problems.append(f"path {request.path}, expected {path}")
    if not request.headers.get("Content-Type", "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    if not isinstance(request.json, dict):
        problems.append("body is not a JSON object")
    return problems


def check_telegram(request: Request) -> list[str]:
    method = request.path.rsplit("/", 1)[-1]
    problems = _json_post(request, f"/bot{TELEGRAM_TOKEN}/{method}")
    if problems:
        return problems
    body = request.json
    if method == "getUpdates":
        if not isinstance(body.get("timeout"), int):
            problems.append("getUpdates timeout is not an integer")
        if "offset" in body and not isinstance(body["offset"], int):
            problems.append("getUpdates offset is not an integer")
        return problems
    if method != "sendMessage":
        return [f"unexpected method {method}"]
    if not isinstance(body.get("chat_id"), str | int):
        problems.append("chat_id missing")
    text = body.get("text")
    if not isinstance(text, str) or not 1 <= text_length(text) <= 4096:
        problems.append("text missing or longer than 4096")
    return problems


def check_discord(request: Request) -> list[str]:
    problems = _json_post(request, DISCORD_PATH)
    if problems:
        return problems
    body = request.json
    content = body.get("content")
    if not isinstance(content, str) or not 1 <= text_length(content) <= 2000:
        problems.append("content missing or longer than 2000")
    unknown = set(body) - {"content", "username", "allowed_mentions", "avatar_url", "embeds"}
    if unknown:
        problems.append(f"unknown fields {sorted(unknown)}")
    return problems


def check_slack(request: Request) -> list[str]:
    problems = _json_post(request, SLACK_PATH)
    if problems:
        return problems
    text = request.json.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= 4000:
        problems.append("text missing or longer than 4000")
    return problems


def check_whatsapp(phone_number_id: str, recipients: list[str]):
    def check(request: Request) -> list[str]:
        problems = _json_post(request, f"/v21.0/{phone_number_id}/messages")
        if problems:
            return problems
        if request.headers.get("Authorization") != f"Bearer {WHATSAPP_TOKEN}":
            problems.append("Authorization is not the bearer token")
        body = request.json
        if body.get("messaging_product") != "whatsapp":
            problems.append("messaging_product is not whatsapp")
        if body.get("type") != "text":
            problems.append("type is not text")
        if body.get("to") not in recipients:
            problems.append(f"to {body.get('to')!r} is not a configured recipient")
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        if not isinstance(text.get("body"), str) or not 1 <= len(text["body"]) <= 4096:
            problems.append("text.body missing or longer than 4096")
        return problems

    return check


def check_webhook(request: Request) -> list[str]:
    problems = _json_post(request, "/hook")
    if problems:
        return problems
    timestamp = request.headers.get("X-TinySDLC-Timestamp", "")
    signature = request.headers.get("X-TinySDLC-Signature", "")
    expected = hmac.new(WEBHOOK_KEY.encode(), timestamp.encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, f"sha256={expected}"):
        problems.append("signature does not verify with the key")
    if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 300:
        problems.append("timestamp missing or more than 5 minutes off")
    missing = {"key", "notification_id", "recipient", "part", "parts", "text"} - set(
        request.json)
    if missing:
        problems.append(f"fields missing: {sorted(missing)}")
    return problems


def unnumbered(text: str) -> str:
    """Return a part's text without its "(1/3) " number."""
    if text.startswith("(") and ") " in text:
        return text.split(") ", 1)[1]
    return text


def queue(store, text, recipient="oncall"):
    """Queue ``text`` for ``recipient`` and return the notification id."""
    with store.begin() as connection:
        return queue_notification(connection, recipient, text)


def notification(store, notification_id):
    """Return one ``team_notifications`` row as a mapping."""
    with store.engine.connect() as connection:
        return connection.execute(select(team_notifications).where(
            team_notifications.c.id == notification_id)).mappings().one()


def deliveries(store):
    """Return every delivery row, oldest first."""
    with store.engine.connect() as connection:
        return connection.execute(select(notification_deliveries).order_by(
            notification_deliveries.c.id)).mappings().all()


def attempts(store):
    """Return every channel request row, oldest first."""
    with store.engine.connect() as connection:
        return connection.execute(select(channel_attempts).order_by(
            channel_attempts.c.id)).mappings().all()
