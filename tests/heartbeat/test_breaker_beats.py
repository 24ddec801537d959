"""Hard cases of whole beats: SLA breaches between beats, redirects, parallel beats, secrets."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from beatkit import write_project
from sqlalchemy import select

from tinysdlc_nb.config import load_config
from tinysdlc_nb.heartbeat.beat import beat, run_heartbeat
from tinysdlc_nb.heartbeat.endpoints import DOWN, check_endpoint
from tinysdlc_nb.incidents.actions import Actions
from tinysdlc_nb.store import open_store, utc_now
from tinysdlc_nb.store.schema import heartbeats, team_notifications

NOW = utc_now().replace(microsecond=0)
SECRET = "shop-deploy-7Kq2pXw9LmZ4"


def open_incident(store, config, title: str, opened: dt.datetime) -> int:
    actions = Actions(store, owner=config.incidents["owner"], agent_ids=config.agent_ids())
    return actions.open(title=title, by="Pat Oncall", severity="P1", at=opened)


def heartbeat_notifications(store) -> list[dict]:
    with store.begin() as connection:
        rows = connection.execute(select(team_notifications)
                                  .order_by(team_notifications.c.id)).mappings().all()
    return [dict(row) for row in rows if row["text"].startswith("tinysdlc-nb heartbeat")]


class RedirectServer:
    """A server whose /health returns 302 to /moved. ``hits`` counts the requests per path."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path == "/health":
                    self.send_response(302)
                    self.send_header("Location", "/moved")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}{path}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def redirect_server():
    server = RedirectServer()
    yield server
    server.close()


# An SLA that breaches between two beats.

def test_sla_breach_between_beats_changed(store, config):
    open_incident(store, config, "Checkout slow", NOW - dt.timedelta(minutes=5))
    first = beat(config, store, run_id=None, now=NOW)
    second = beat(config, store, run_id=None, now=NOW + dt.timedelta(hours=2))
    assert first.attention == []
    assert second.changed is True
    assert second.notification_id is not None


def test_sla_at_risk_to_breached_notifies(store, config):
    open_incident(store, config, "Checkout slow", NOW - dt.timedelta(minutes=50))
    first = beat(config, store, run_id=None, now=NOW)
    second = beat(config, store, run_id=None, now=NOW + dt.timedelta(hours=2))
    texts = [row["text"] for row in heartbeat_notifications(store)]
    assert first.notification_id is not None
    assert second.changed is True
    assert second.notification_id is not None
    assert len(texts) == 2
    assert "breached" in texts[-1]


def test_sla_unchanged_between_beats_quiet(store, config):
    open_incident(store, config, "Checkout slow", NOW - dt.timedelta(hours=2))
    beat(config, store, run_id=None, now=NOW)
    second = beat(config, store, run_id=None, now=NOW + dt.timedelta(minutes=10))
    assert second.changed is False
    assert second.notification_id is None


# An endpoint that redirects.

def test_endpoint_redirect_reported_not_followed(redirect_server):
    endpoint = {"name": "api", "url": redirect_server.url("/health"), "expect_status": 200,
                "timeout_s": 2.0, "max_latency_ms": 0.0, "contains": None}
    finding = check_endpoint(endpoint)
    assert finding.state == DOWN
    assert finding.detail["status"] == 302
    assert "302" in finding.text
    assert redirect_server.hits.get("/moved", 0) == 0


def test_endpoint_redirect_expected_is_up(redirect_server):
    endpoint = {"name": "api", "url": redirect_server.url("/health"), "expect_status": 302,
                "timeout_s": 2.0, "max_latency_ms": 0.0, "contains": None}
    finding = check_endpoint(endpoint)
    assert finding.state == "up"
    assert redirect_server.hits.get("/moved", 0) == 0


# Two beats at once on one store.

def test_parallel_beats_one_notification(health, tmp_path):
    toml = (f'[heartbeat]\nendpoints = [{{name = "api", url = "{health.url("/error")}", '
            f'timeout_s = 2}}]\n')
    project = write_project(tmp_path / "shop", toml)
    results: list = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def one_beat() -> None:
        barrier.wait()
        try:
            results.append(run_heartbeat(project, now=NOW))
        except BaseException as error:  # recorded, so the test names the failure
            errors.append(error)

    threads = [threading.Thread(target=one_beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    store = open_store(load_config(project).database_url)
    try:
        with store.begin() as connection:
            beats = connection.execute(select(heartbeats)).all()
        queued = heartbeat_notifications(store)
    finally:
        store.close()
    assert [repr(error) for error in errors] == []
    assert len(beats) == 2
    assert len(queued) == 1


# Secrets from environment variables.

def test_secret_in_incident_title_not_notified(store, config, monkeypatch):
    monkeypatch.setenv("SHOP_DEPLOY_TOKEN", SECRET)
    open_incident(store, config, f"Deploy failed with token {SECRET}",
                  NOW - dt.timedelta(hours=2))
    result = beat(config, store, run_id=None, now=NOW)
    [queued] = heartbeat_notifications(store)
    with store.begin() as connection:
        row = connection.execute(select(heartbeats)).mappings().one()
    assert result.notification_id is not None
    assert SECRET not in queued["text"]
    assert SECRET not in row["summary"]
    assert SECRET not in row["findings"]
    assert SECRET not in json.dumps(result.to_dict())


def test_secret_in_recipient_not_notified(tmp_path, monkeypatch, health):
    monkeypatch.setenv("SHOP_PAGER_PASSWORD", SECRET)
    toml = (f'[heartbeat]\nrecipient = "oncall {SECRET}"\nendpoints = [{{name = "api", '
            f'url = "{health.url("/error")}", timeout_s = 2}}]\n')
    project = write_project(tmp_path / "shop", toml)
    run_heartbeat(project, now=NOW)
    store = open_store(load_config(project).database_url)
    try:
        [queued] = heartbeat_notifications(store)
    finally:
        store.close()
    assert SECRET not in queued["recipient"]
    assert SECRET not in queued["text"]


def test_secret_in_endpoint_error_not_notified(tmp_path, monkeypatch, health):
    monkeypatch.setenv("SHOP_HEALTH_APIKEY", SECRET)
    toml = (f'[heartbeat]\nendpoints = [{{name = "api", url = '
            f'"{health.url("/error")}?key={SECRET}", timeout_s = 2}}]\n')
    project = write_project(tmp_path / "shop", toml)
    result = run_heartbeat(project, now=NOW)
    store = open_store(load_config(project).database_url)
    try:
        [queued] = heartbeat_notifications(store)
    finally:
        store.close()
    assert result.notification_id is not None
    assert SECRET not in queued["text"]
