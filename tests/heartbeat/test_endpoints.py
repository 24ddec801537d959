"""Endpoint checks against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

from beatkit import closed_port

from tinysdlc_nb.heartbeat.endpoints import DOWN, SLOW, UP, check_endpoint, check_endpoints


def endpoint(url: str, **options) -> dict:
    values = {"name": "api", "url": url, "expect_status": 200, "timeout_s": 2.0,
              "max_latency_ms": 0.0, "contains": None}
    values.update(options)
    return values


def test_endpoint_healthy(health):
    finding = check_endpoint(endpoint(health.url("/ok")))
    assert finding.state == UP
    assert finding.needs_person is False
    assert finding.detail["status"] == 200


def test_endpoint_500_is_down(health):
    finding = check_endpoint(endpoint(health.url("/error")))
    assert finding.state == DOWN
    assert finding.needs_person is True
    assert "status 500, expected 200" in finding.text


def test_endpoint_expected_500_is_up(health):
    finding = check_endpoint(endpoint(health.url("/error"), expect_status=500))
    assert finding.state == UP


def test_endpoint_slow_past_limit(health):
    finding = check_endpoint(endpoint(health.url("/slow"), max_latency_ms=100))
    assert finding.state == SLOW
    assert finding.needs_person is True
    assert finding.detail["latency_ms"] >= 300


def test_endpoint_slow_within_limit(health):
    finding = check_endpoint(endpoint(health.url("/slow"), max_latency_ms=5000))
    assert finding.state == UP


def test_endpoint_timeout(health):
    finding = check_endpoint(endpoint(health.url("/hang"), timeout_s=0.5))
    assert finding.state == DOWN
    assert "timed out after 0.5 s" in finding.text


def test_endpoint_refused():
    finding = check_endpoint(endpoint(f"http://127.0.0.1:{closed_port()}/health"))
    assert finding.state == DOWN
    assert "connection refused" in finding.text


def test_endpoint_body_missing_text(health):
    finding = check_endpoint(endpoint(health.url("/ok"), contains="ready"))
    assert finding.state == DOWN


def test_endpoints_run_in_parallel(health):
    import time

    listed = [endpoint(health.url("/slow"), name=f"slow-{index}") for index in range(4)]
    started = time.monotonic()
    findings = check_endpoints(listed)
    elapsed = time.monotonic() - started
    assert [finding.subject for finding in findings] == [item["name"] for item in listed]
    assert elapsed < 4 * 0.3
