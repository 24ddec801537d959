"""HTTP health probes: one GET, retried until the response is healthy or the wait is over.

``probe_http`` has no command-line concerns, so other modules can call it directly. The
CLI's ``probe`` command is a thin layer over it, registered by ``add_probe_command``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass

from .errors import UsageError
from .scrub import scrub, scrub_data

log = logging.getLogger(__name__)

EXCERPT_CHARS = 500
# The body is read up to this size for the `contains` test, so a probe of an endpoint
# that streams without end still finishes.
BODY_CHUNK_BYTES = 65536
MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "tinysdlc-nb-probe"


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of a probe, with its text fields already scrubbed of secrets.

    ``status`` and ``latency_ms`` describe the last attempt and are None when that
    attempt got no HTTP response. ``error`` is empty when the probe is healthy.
    """

    healthy: bool
    url: str
    status: int | None
    latency_ms: float | None
    attempts: int
    error: str
    body_excerpt: str

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """Summarize the result in one line, as the ``probe`` command prints it."""
        if self.healthy:
            return f"healthy {self.status} in {self.latency_ms:.1f} ms: {self.url}"

        tries = f", {self.attempts} attempts" if self.attempts > 1 else ""
        return f"unhealthy: {self.url} ({self.error}{tries})"


@dataclass(frozen=True)
class _Attempt:
    status: int | None
    latency_ms: float | None
    body: str
    error: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the status it is, so a health URL that moved is noticed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def probe_http(url: str, *, expect_status: int = 200, contains: str | None = None,
               timeout_s: float = 2.0, wait_s: float = 0.0,
               interval_s: float = 0.2) -> ProbeResult:
    """Send GET requests to ``url`` until one is healthy or ``wait_s`` seconds have passed.

    A response is healthy when its status equals ``expect_status`` and, if ``contains`` is
    given, its body (up to 1 MiB, decoded as UTF-8) contains that text. Any status is
    a result, never an exception; refused connections, timeouts, DNS and TLS failures
    become the ``error`` text. At least one attempt is made, and one more starts while
    time is left, so the whole probe takes up to ``wait_s + timeout_s`` seconds.
    Redirects are not followed and no proxy is used.

    Raises
    ------
    UsageError
        ``url`` is not an http:// or https:// URL with a host, or a number is out of range.
    """
    _check_arguments(url, expect_status, timeout_s, wait_s, interval_s)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    deadline = time.monotonic() + wait_s
    attempts = 0

    while True:
        attempts += 1
        attempt = _attempt(opener, url, timeout_s)
        problem = attempt.error or _mismatch(attempt, expect_status, contains)
        remaining = deadline - time.monotonic()
        if not problem or remaining <= 0:
            break

        log.debug("probe %s: attempt %d unhealthy (%s); retrying", scrub(url), attempts, problem)
        time.sleep(min(interval_s, remaining))

    result = ProbeResult(healthy=not problem, url=scrub(url), status=attempt.status,
                         latency_ms=attempt.latency_ms, attempts=attempts,
                         error=scrub(problem), body_excerpt=scrub(attempt.body[:EXCERPT_CHARS]))
    log.info("probe %s: %s after %d attempt(s)", result.url,
             "healthy" if result.healthy else f"unhealthy ({result.error})", attempts)
    return result


def _check_arguments(url: str, expect_status: int, timeout_s: float, wait_s: float,
                     interval_s: float) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"probe URL '{scrub(url)}' is invalid; give an http:// or https:// "
                         f"URL with a host, e.g. http://127.0.0.1:8080/health")

    if parts.username is not None or parts.password is not None:
        raise UsageError(f"probe URL '{scrub(url)}' contains credentials (user@ or "
                         f"user:password@), which probe does not send; probe a health URL "
                         f"that needs none")

    if any(character.isspace() or ord(character) < 32 for character in url):
        raise UsageError(f"probe URL '{scrub(url)}' contains whitespace or control "
                         f"characters; percent-encode them (%20)")

    try:
        _ = parts.port  # parsed on access; raises ValueError for a bad or too large port
    except ValueError:
        raise UsageError(f"probe URL '{scrub(url)}' has an invalid port; give a number "
                         f"from 0 to 65535") from None

    if not 100 <= expect_status <= 599:
        raise UsageError(f"expected status {expect_status} is invalid; give an HTTP status "
                         f"from 100 to 599")

    for name, value, minimum in (("timeout", timeout_s, 0.0), ("interval", interval_s, 0.0)):
        if not value > minimum:
            raise UsageError(f"probe {name} {value:g} s is invalid; give a number of seconds "
                             f"above 0")

    if not wait_s >= 0:
        raise UsageError(f"probe wait {wait_s:g} s is invalid; give 0 or more seconds")


def _attempt(opener: urllib.request.OpenerDirector, url: str, timeout_s: float) -> _Attempt:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    started = time.perf_counter()
    deadline = started + timeout_s
    try:
        with opener.open(request, timeout=timeout_s) as response:
            body = _read_body(response, deadline)
            return _responded(response.status, body, started)
    except urllib.error.HTTPError as error_response:
        # A status outside 2xx arrives as an exception that is also the response.
        try:
            body = _read_body(error_response, deadline)
        except TimeoutError:
            raise
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            error_response.close()
        return _responded(error_response.code, body, started)
    except (OSError, http.client.HTTPException) as error:
        return _Attempt(status=None, latency_ms=None, body="",
                        error=_describe_failure(error, timeout_s))


def _read_body(response, deadline: float) -> bytes:
    """Read up to MAX_BODY_BYTES of the body, giving up when ``deadline`` has passed.

    The socket timeout bounds each read, not the whole body, so a server that sends one
    byte at a time would otherwise hold the probe far past its timeout.
    """
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY_BYTES:
        if time.perf_counter() > deadline:
            raise TimeoutError("the body did not arrive within the timeout")
        chunk = response.read1(min(BODY_CHUNK_BYTES, MAX_BODY_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _responded(status: int, body: bytes, started: float) -> _Attempt:
    latency_ms = (time.perf_counter() - started) * 1000
    return _Attempt(status=status, latency_ms=round(latency_ms, 1),
                    body=body.decode("utf-8", errors="replace"), error="")


def _describe_failure(error: Exception, timeout_s: float) -> str:
    """Name a failure to get an HTTP response in the usual words."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout_s:g} s"

    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"

    if isinstance(reason, socket.gaierror):
        return f"host name not resolved: {reason.strerror or reason}"

    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {reason.verify_message or reason}"

    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"

    if isinstance(reason, ConnectionResetError):
        return "connection reset by the server"

    if isinstance(reason, http.client.HTTPException):
        return f"invalid HTTP response: {type(reason).__name__} {reason}".rstrip()

    if isinstance(reason, OSError) and reason.strerror:
        return f"connection failed: {reason.strerror}"

    return f"connection failed: {reason}"


def _mismatch(attempt: _Attempt, expect_status: int, contains: str | None) -> str:
    if attempt.status != expect_status:
        return f"status {attempt.status}, expected {expect_status}"

    if contains is not None and contains not in attempt.body:
        return f"status {attempt.status}, but the body does not contain {contains!r}"

    return ""


def add_probe_command(commands, parser_class) -> None:
    """Register ``probe`` on the CLI's sub-command set.

    ``parser_class`` is accepted so every ``add_*_command(s)`` call has the same shape;
    ``probe`` has no sub-commands of its own that would need it.
    """
    probe = commands.add_parser("probe", help="send HTTP GET requests to a health URL and "
                                "report whether it is healthy")
    probe.add_argument("url", help="http:// or https:// URL to request")
    probe.add_argument("--status", type=int, default=200, help="HTTP status of a healthy "
                       "response (default: 200)")
    probe.add_argument("--contains", help="text that the body of a healthy "
                       "response contains")
    probe.add_argument("--timeout", type=float, default=2.0, help="time limit of one request, "
                       "in seconds (default: 2)")
    probe.add_argument("--wait", type=float, default=0.0, help="keep retrying for up to this "
                       "many seconds until healthy (default: 0, one request)")
    probe.add_argument("--json", action="store_true", help="print the result as JSON")
    probe.set_defaults(handler=_cmd_probe)


def _cmd_probe(args: argparse.Namespace) -> int:
    result = probe_http(args.url, expect_status=args.status, contains=args.contains,
                        timeout_s=args.timeout, wait_s=args.wait)
    if args.json:
        print(json.dumps(scrub_data(result.to_dict()), indent=2))
    else:
        print(result.describe())
    return 0 if result.healthy else 1
