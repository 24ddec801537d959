"""The webhook server on a real socket: status codes, stored incidents, limits and stopping."""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from tinysdlc_nb.config import load_config
from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.incidents import records
from tinysdlc_nb.incidents.derive import summarize
from tinysdlc_nb.incidents.serve import make_server
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import incidents, timeline

# The module name ``conftest`` belongs to tests/incidents/conftest.py here, which hides
# SHARED of tests/conftest.py; this is the same folder, found the same way.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ALERTS = SHARED / "fixtures" / "alerts" / "alertmanager"
WEBHOOK = "/webhooks/alertmanager"


def fixture(name: str) -> bytes:
    return (ALERTS / name).read_bytes()


def raw_exchange(port: int, request: bytes) -> str:
    """Send ``request`` as is and return everything the server sends until it closes.

    The socket times out after 5 s, so a server that waits for a body never sent fails the
    test instead of hanging it.
    """
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request)
        while chunk := client.recv(65536):
            received += chunk
    return received.decode("utf-8")


class Running:
    """A server on 127.0.0.1 with a free port, served from a thread, and a reader of its store."""

    def __init__(self, project: Path):
        self.config = load_config(project)
        self.server = make_server(self.config, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.store = open_store(self.config.database_url)

    def post(self, body: bytes, path: str = WEBHOOK) -> tuple[int, dict, dict]:
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, dict]:
        """Send one request on a new connection; return status, JSON body and headers."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            data = json.loads(raw) if raw else {}
            return response.status, data, dict(response.getheaders())
        finally:
            connection.close()

    def count(self, table) -> int:
        with self.store.begin() as connection:
            return connection.execute(select(func.count()).select_from(table)).scalar()

    def summary(self, incident_id: int) -> dict:
        with self.store.begin() as connection:
            rows = records.timeline_rows(connection, incident_id)
        return summarize(pd.DataFrame(rows)).iloc[0].to_dict()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        self.store.close()


@pytest.fixture
def running(tmp_path):
    server = Running(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def small_limit(tmp_path):
    """A project whose config caps webhook bodies at 1024 bytes, the smallest allowed."""
    home = tmp_path / ".tinysdlc"
    home.mkdir()
    (home / "config.toml").write_text("[incidents]\nmax_body_bytes = 1024\n", encoding="utf-8")
    server = Running(tmp_path)
    yield server
    server.stop()


def test_healthz_ok(running):
    status, body, headers = running.request("GET", "/healthz")

    assert status == 200
    assert body == {"status": "ok"}
    assert headers["Content-Type"] == "application/json"


def test_head_healthz_without_body(running):
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    connection.request("HEAD", "/healthz")
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == 200
    assert body == b""
    assert int(response.getheader("Content-Length")) == len(b'{"status": "ok"}')


def test_oversized_header_json_431(running):
    response = raw_exchange(running.port, b"GET /healthz HTTP/1.1\r\nX-Long: "
                            + b"a" * 70_000 + b"\r\n\r\n")

    head, _, body = response.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 431 ")
    assert "Content-Type: application/json" in head
    assert json.loads(body) == {"error": "Line too long"}


def test_garbage_request_line_json_error(running):
    """A line that names no HTTP version gets an HTTP/0.9 reply: the JSON body alone."""
    response = raw_exchange(running.port, b"GARBAGE\r\n\r\n")

    assert json.loads(response) == {"error": "Bad request syntax ('GARBAGE')"}


def test_alertmanager_fixture_opens_incident(running):
    status, body, _ = running.post(fixture("zulip-alert.json"))

    assert status == 200
    assert body == {"created": 1, "updated": 1, "reopened": 0, "unchanged": 0, "ignored": 0,
                    "incidents": ["INC-1"]}
    assert running.count(incidents) == 1
    with running.store.begin() as connection:
        kinds = [row["kind"] for row in records.timeline_rows(connection, 1)]
        title = records.incident_row(connection, 1)["title"]
    assert kinds.count("detected") == 1
    assert kinds.count("alert_fired") == 1
    assert title == "High CPU core temperature"


def test_every_alertmanager_fixture_lands(running):
    created = 0
    for path in sorted(ALERTS.glob("*.json")):
        status, body, _ = running.post(path.read_bytes())
        assert status == 200, (path.name, body)
        created += body["created"]

    # Five notification groups: the three zulip files share receiver and groupKey.
    assert created == 5
    assert running.count(incidents) == 5


def test_resolution_of_one_alert_keeps_group_open(running):
    running.post(fixture("zulip-alert.json"))

    status, body, _ = running.post(fixture("zulip-single_alert.json"))

    assert status == 200
    assert body["updated"] == 1
    assert body["incidents"] == ["INC-1"]
    assert running.summary(1)["status"] == "open"


def test_same_payload_twice_adds_nothing(running):
    running.post(fixture("zulip-alert.json"))
    rows_before = running.count(timeline)

    status, body, _ = running.post(fixture("zulip-alert.json"))

    assert status == 200
    assert body == {"created": 0, "updated": 0, "reopened": 0, "unchanged": 2, "ignored": 0,
                    "incidents": []}
    assert running.count(timeline) == rows_before
    assert running.count(incidents) == 1


def test_oversized_body_413(small_limit):
    body = fixture("prometheus_bot-production_example.json")
    assert len(body) > 1024

    status, data, headers = small_limit.post(body)

    assert status == 413
    assert f"{len(body)} bytes exceeds the limit of 1024 bytes" in data["error"]
    assert "max_body_bytes" in data["error"]
    assert headers["Connection"] == "close"
    assert small_limit.count(incidents) == 0
    assert small_limit.count(timeline) == 0


def test_body_within_limit_accepted(small_limit):
    body = fixture("alertmanager-exec-success.json")
    assert len(body) <= 1024

    status, data, _ = small_limit.post(body)

    assert status == 200
    assert data["created"] == 1


def test_oversized_length_answered_unread(running):
    """A client announcing 1 GB gets 413 at once, without sending a byte of the body."""
    response = raw_exchange(running.port, b"POST /webhooks/alertmanager HTTP/1.1\r\n"
                            b"Host: test\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 1000000000\r\n\r\n")

    assert response.startswith("HTTP/1.1 413 ")
    assert "1000000000 bytes exceeds the limit" in response
    assert running.count(incidents) == 0


def test_malformed_json_400(running):
    status, data, _ = running.post(b'{"alerts": [')

    assert status == 400
    assert "invalid JSON" in data["error"]
    assert running.count(incidents) == 0


@pytest.mark.parametrize(("body", "expected"), [
    (b"[]", "alertmanager payload is a list"),
    (b'{"alerts": "none"}', "alerts is"),
    (b'{"alerts": [{"labels": {"alertname": "x"}}]}', "alerts[0].startsAt"),
])
def test_wrong_shape_422(running, body, expected):
    status, data, _ = running.post(body)

    assert status == 422
    assert expected in data["error"]
    assert running.count(incidents) == 0


def test_unknown_format_404(running):
    status, data, _ = running.post(b"{}", path="/webhooks/nagios")

    assert status == 404
    assert "format 'nagios' is unknown" in data["error"]
    assert "alertmanager" in data["error"]
    assert "pagerduty" in data["error"]


def test_unknown_path_404(running):
    for method in ("GET", "POST"):
        status, data, _ = running.request(method, "/alerts", b"{}" if method == "POST" else None)
        assert status == 404
        assert "path '/alerts' not found" in data["error"]


def test_get_on_webhook_405(running):
    status, data, headers = running.request("GET", WEBHOOK)

    assert status == 405
    assert headers["Allow"] == "POST"
    assert "method GET is not allowed" in data["error"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", WEBHOOK, "POST"),
    ("DELETE", WEBHOOK, "POST"),
    ("POST", "/healthz", "GET, HEAD"),
    ("BREW", WEBHOOK, "POST"),
])
def test_other_methods_405(running, method, path, allowed):
    status, data, headers = running.request(method, path, b"{}")

    assert status == 405
    assert headers["Allow"] == allowed
    assert f"method {method} is not allowed" in data["error"]


def test_missing_length_411(running):
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    connection.putrequest("POST", WEBHOOK)
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    response = connection.getresponse()
    data = json.loads(response.read())
    connection.close()

    assert response.status == 411
    assert "Content-Length header is missing" in data["error"]


def test_chunked_body_411(running):
    chunks = iter([fixture("zulip-alert.json")])

    status, data, _ = running.request("POST", WEBHOOK, chunks,
                                      headers={"Transfer-Encoding": "chunked"})

    assert status == 411
    assert "Transfer-Encoding 'chunked' is not supported" in data["error"]
    assert running.count(incidents) == 0


def test_invalid_length_400(running):
    response = raw_exchange(running.port, b"POST /webhooks/alertmanager HTTP/1.1\r\n"
                            b"Host: test\r\nContent-Length: ten\r\n\r\n")

    assert response.startswith("HTTP/1.1 400 ")
    assert "Content-Length 'ten' is invalid" in response


def test_keep_alive_serves_two_requests(running):
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    statuses = []
    for name in ("zulip-alert.json", "msteams-prom_post_request.json"):
        connection.request("POST", WEBHOOK, body=fixture(name))
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    connection.close()

    assert statuses == [200, 200]
    assert running.count(incidents) == 2


def test_concurrent_posts_both_land(running):
    names = ("zulip-alert.json", "prometheus_bot-production_example.json")
    barrier = threading.Barrier(len(names))
    results: dict[str, tuple] = {}

    def post(name: str) -> None:
        body = fixture(name)
        barrier.wait()
        results[name] = running.post(body)

    threads = [threading.Thread(target=post, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [results[name][0] for name in names] == [200, 200]
    assert [results[name][1]["created"] for name in names] == [1, 1]
    assert running.count(incidents) == 2


def test_concurrent_same_payload_stored_once(running):
    barrier = threading.Barrier(4)
    created: list[int] = []

    def post() -> None:
        body = fixture("zulip-alert.json")
        barrier.wait()
        status, data, _ = running.post(body)
        assert status == 200
        created.append(data["created"])

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(created) == [0, 0, 0, 1]
    assert running.count(incidents) == 1


def test_store_failure_500_stores_nothing(running):
    """A database error on the payload's second row rolls back its first row too."""
    with running.store.begin() as connection:
        connection.execute(text(
            "CREATE TRIGGER test_reject_alert_fired BEFORE INSERT ON timeline "
            "WHEN NEW.kind = 'alert_fired' BEGIN SELECT RAISE(ABORT, 'rejected by test'); END"))

    status, data, _ = running.post(fixture("zulip-alert.json"))

    assert status == 500
    assert "no row of this payload was stored" in data["error"]
    assert running.count(incidents) == 0
    assert running.count(timeline) == 0


def test_log_line_per_request_without_body(running, caplog):
    caplog.set_level(logging.INFO, logger="tinysdlc_nb.incidents.webhook_handler")

    running.post(fixture("zulip-alert.json"))
    running.post(b"{not json")

    lines = [record.getMessage() for record in caplog.records
             if record.name == "tinysdlc_nb.incidents.webhook_handler"]
    assert len(lines) == 2
    assert "POST /webhooks/alertmanager -> 200 created=1 updated=1" in lines[0]
    assert "incidents=INC-1" in lines[0]
    assert "POST /webhooks/alertmanager -> 400 " in lines[1]
    # Label values of the payload and the malformed text never reach the log.
    assert not any("andromeda" in line or "not json" in line for line in lines)


def test_port_in_use_raises_usage_error(running):
    with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{running.port}"):
        make_server(running.config, "127.0.0.1", running.port)


def test_sigterm_stops_and_logs(tmp_path):
    script = (
        "import logging, sys\n"
        "from tinysdlc_nb.config import load_config\n"
        "from tinysdlc_nb.incidents.serve import serve\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(message)s')\n"
        "serve(load_config(sys.argv[1]), port=0,\n"
        "      ready=lambda host, port: print(port, flush=True))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()

        process.terminate()
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0
    assert "received SIGTERM; stopping" in stderr
    assert stderr.rstrip().endswith("stopped")



@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss from iproute2")
def test_listen_backlog_takes_a_burst(running):
    # The kernel shows a listening socket's backlog as Send-Q. socketserver's default of 5
    # reset connections when a few dozen senders posted at once.
    shown = subprocess.run(["ss", "-ltnH", f"sport = :{running.port}"], capture_output=True,
                           text=True, check=True).stdout.split()

    assert int(shown[2]) >= 128
