"""HTTP health checks of the endpoints listed in ``[heartbeat].endpoints``."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..probe import probe_http
from .findings import Finding

log = logging.getLogger(__name__)

UP, SLOW, DOWN = "up", "slow", "down"
MAX_PARALLEL_PROBES = 8


def check_endpoints(endpoints: list[dict[str, Any]]) -> list[Finding]:
    """Probe every endpoint once, in parallel, and return one finding per endpoint.

    An endpoint is ``down`` when the request fails, times out or returns another status
    (or a body without the ``contains`` text), and ``slow`` when it is healthy but took
    longer than its ``max_latency_ms`` (0 means no limit). Either state needs a person.
    """
    if not endpoints:
        return []

    workers = min(MAX_PARALLEL_PROBES, len(endpoints))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="heartbeat-probe") as pool:
        return list(pool.map(check_endpoint, endpoints))


def check_endpoint(endpoint: dict[str, Any]) -> Finding:
    """Probe one endpoint with a single GET request and describe the result."""
    result = probe_http(endpoint["url"], expect_status=endpoint["expect_status"],
                        contains=endpoint["contains"], timeout_s=endpoint["timeout_s"])
    limit = endpoint["max_latency_ms"]
    detail = {"url": result.url, "status": result.status, "latency_ms": result.latency_ms,
              "expect_status": endpoint["expect_status"], "max_latency_ms": limit or None,
              "error": result.error}
    name = endpoint["name"]

    if not result.healthy:
        log.warning("heartbeat: endpoint %s is down: %s", name, result.error)
        return Finding("endpoint", name, DOWN, True,
                       f"Endpoint {name} is down: {result.error} ({result.url}).", detail)

    if limit and result.latency_ms is not None and result.latency_ms > limit:
        log.warning("heartbeat: endpoint %s responded in %.0f ms, over its %.0f ms limit",
                    name, result.latency_ms, limit)
        return Finding("endpoint", name, SLOW, True,
                       f"Endpoint {name} is slow: {result.latency_ms:.0f} ms, over the "
                       f"{limit:g} ms limit ({result.url}).", detail)

    return Finding("endpoint", name, UP, False,
                   f"Endpoint {name} is up: status {result.status} in "
                   f"{result.latency_ms:.0f} ms.", detail)
