"""Hard cases of the heartbeat: slow endpoints and awkward instructions files."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tinysdlc_nb.heartbeat.endpoints import DOWN, check_endpoint
from tinysdlc_nb.heartbeat.status_block import END, START, rewrite_block

LINES = ["Stage: 06-Deploy", "Gate: G3 received (1.4.0)"]


class DripHandler(BaseHTTPRequestHandler):
    """Send a 200 status at once, then the body one byte every 0.25 s for about 6 s."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(200)
        self.send_header("Content-Length", "24")
        self.end_headers()
        for _ in range(24):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.25)

    def log_message(self, *_args):
        pass


@pytest.fixture
def drip_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def test_endpoint_drip_body_timeout(drip_url):
    endpoint = {"name": "api", "url": drip_url, "expect_status": 200, "timeout_s": 1.0,
                "max_latency_ms": 0.0, "contains": None}
    finding = check_endpoint(endpoint)
    assert finding.state == DOWN


def test_block_markers_in_code_fence_crlf(tmp_path):
    # The file documents the markers in a fenced example above the real block.
    path = tmp_path / "AGENTS.md"
    example = f"```\r\n{START}\r\n...\r\n{END}\r\n```\r\n".encode()
    before = b"# DevOps\r\n" + example + b"\r\n"
    after = b"\r\nTail.\r\n"
    path.write_bytes(before + START.encode() + b"\r\nStage: old\r\n" + END.encode() + after)
    result = rewrite_block(path, LINES)
    assert result.outcome == "replaced"
    expected = before + "\r\n".join([START, *LINES, END]).encode() + after
    assert path.read_bytes() == expected


def test_block_through_symlink(tmp_path):
    real = tmp_path / "real.md"
    real.write_bytes(f"Top\n{START}\nold\n{END}\n".encode())
    link = tmp_path / "AGENTS.md"
    link.symlink_to(real)
    rewrite_block(link, LINES)
    assert link.is_symlink()
    assert b"Stage: 06-Deploy" in real.read_bytes()
