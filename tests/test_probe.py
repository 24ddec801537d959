"""HTTP probes against real servers on 127.0.0.1: statuses, body text, retries, refused and
hanging connections, and the `probe` command's output and exit codes."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tinysdlc_nb import cli
from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.probe import EXCERPT_CHARS, probe_http


class _Handler(BaseHTTPRequestHandler):
    """Respond to every GET with the server's ``status`` and ``body``."""

    def do_GET(self):
        body = self.server.body.encode("utf-8")
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class Server:
    """An HTTP server on 127.0.0.1 and a free port, serving from a thread."""

    def __init__(self, status: int = 200, body: str = '{"status": "ok"}', delay_s: float = 0):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self.httpd.status = status
        self.httpd.body = body
        self.httpd.server_bind()
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/health"
        # Until listen() runs, the bound port refuses connections.
        if not delay_s:
            self.httpd.server_activate()
        self.thread = threading.Thread(target=self._serve, args=(delay_s,), daemon=True)
        self.thread.start()

    def _serve(self, delay_s: float) -> None:
        if delay_s:
            time.sleep(delay_s)
            self.httpd.server_activate()
        self.httpd.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(**kwargs) -> Server:
        server = Server(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


@pytest.fixture
def hanging_port():
    """A port that accepts connections and never responds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["probe", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_probe_ok(serve):
    server = serve()

    result = probe_http(server.url)

    assert result.healthy is True
    assert result.status == 200
    assert result.attempts == 1
    assert result.error == ""
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert result.body_excerpt == '{"status": "ok"}'


def test_probe_500_unhealthy(serve):
    server = serve(status=500, body='{"status": "failing"}')

    result = probe_http(server.url)

    assert result.healthy is False
    assert result.status == 500
    assert result.error == "status 500, expected 200"
    assert result.body_excerpt == '{"status": "failing"}'


def test_probe_expects_503(serve):
    server = serve(status=503, body="maintenance")

    result = probe_http(server.url, expect_status=503)

    assert result.healthy is True
    assert result.status == 503


def test_probe_expected_503_got_200(serve):
    server = serve()

    result = probe_http(server.url, expect_status=503)

    assert result.healthy is False
    assert result.error == "status 200, expected 503"


def test_probe_contains_match(serve):
    server = serve(body='{"status": "ok", "version": "1.1.0"}')

    result = probe_http(server.url, contains='"version": "1.1.0"')

    assert result.healthy is True


def test_probe_contains_mismatch(serve):
    server = serve(body='{"status": "ok", "version": "1.0.0"}')

    result = probe_http(server.url, contains='"version": "1.1.0"')

    assert result.healthy is False
    assert result.status == 200
    assert "does not contain" in result.error


def test_probe_excerpt_is_capped(serve):
    server = serve(body="x" * 5000)

    result = probe_http(server.url)

    assert len(result.body_excerpt) == EXCERPT_CHARS


def test_probe_waits_for_late_server(serve):
    server = serve(delay_s=1.0)

    started = time.monotonic()
    result = probe_http(server.url, wait_s=5)
    elapsed = time.monotonic() - started

    assert result.healthy is True
    assert result.attempts > 1
    assert elapsed >= 0.9
    assert elapsed < 5


def test_probe_late_server_without_wait(serve):
    server = serve(delay_s=1.0)

    result = probe_http(server.url)

    assert result.healthy is False
    assert result.attempts == 1
    assert result.error == "connection refused"


def test_probe_closed_port(closed_port):
    started = time.monotonic()
    result = probe_http(f"http://127.0.0.1:{closed_port}/health", wait_s=1.0, interval_s=0.1)
    elapsed = time.monotonic() - started

    assert result.healthy is False
    assert result.status is None
    assert result.latency_ms is None
    assert result.error == "connection refused"
    assert result.attempts > 1
    assert elapsed < 1.0 + 0.5


def test_probe_hanging_server(hanging_port):
    started = time.monotonic()
    result = probe_http(f"http://127.0.0.1:{hanging_port}/", timeout_s=0.5)
    elapsed = time.monotonic() - started

    assert result.healthy is False
    assert result.error == "timed out after 0.5 s"
    assert result.status is None
    assert elapsed >= 0.45
    assert elapsed < 2


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/health", "127.0.0.1:8080/health",
                                 "file:///etc/hostname", "http:///health",
                                 "http://127.0.0.1:99999/", "http://127.0.0.1/a b"])
def test_probe_rejects_url(url):
    with pytest.raises(UsageError) as raised:
        probe_http(url)

    assert url in str(raised.value)


@pytest.mark.parametrize("arguments", [{"timeout_s": 0}, {"wait_s": -1}, {"interval_s": 0},
                                       {"expect_status": 42}])
def test_probe_rejects_numbers(arguments):
    with pytest.raises(UsageError):
        probe_http("http://127.0.0.1:1/", **arguments)


def test_probe_scrubs_secrets(serve):
    token = "ghp_" + "Qm4" * 12
    server = serve(body=f"debug token={token}")

    result = probe_http(server.url)

    assert token not in result.body_excerpt
    assert "[REDACTED:" in result.body_excerpt


def test_cli_healthy_line(serve, capsys):
    server = serve()

    code, out, _ = run_cli(capsys, server.url)

    assert code == 0
    assert out.startswith("healthy 200 in ")
    assert out.rstrip().endswith(f" ms: {server.url}")


def test_cli_unhealthy_line(closed_port, capsys):
    url = f"http://127.0.0.1:{closed_port}/health"

    code, out, _ = run_cli(capsys, url)

    assert code == 1
    assert out.strip() == f"unhealthy: {url} (connection refused)"


def test_cli_status_and_contains(serve, capsys):
    server = serve(status=503, body="down for maintenance")

    code, _, _ = run_cli(capsys, server.url, "--status", "503", "--contains", "maintenance")

    assert code == 0


def test_cli_bad_scheme_exits_2(capsys):
    code, out, err = run_cli(capsys, "ftp://127.0.0.1/health")

    assert code == 2
    assert out == ""
    assert "ftp://127.0.0.1/health" in err


def test_cli_bad_number_exits_2(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["probe", "http://127.0.0.1:1/", "--timeout", "soon"])

    assert raised.value.code == 2
    assert "argument --timeout" in capsys.readouterr().err


def test_cli_json_shape(serve, capsys):
    server = serve(status=500, body="broken")

    code, out, _ = run_cli(capsys, server.url, "--json", "--timeout", "1.5")

    printed = json.loads(out)
    assert code == 1
    assert set(printed) == {"healthy", "url", "status", "latency_ms", "attempts", "error",
                          "body_excerpt"}
    assert printed["healthy"] is False
    assert printed["url"] == server.url
    assert printed["status"] == 500
    assert isinstance(printed["latency_ms"], float)
    assert printed["attempts"] == 1
    assert printed["error"] == "status 500, expected 200"
    assert printed["body_excerpt"] == "broken"
