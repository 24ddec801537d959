"""A stand-in for PyPI's JSON API, served through an HTTPS proxy on 127.0.0.1.

pip-audit's PyPI service always requests ``https://pypi.org/pypi/<name>/<version>/json``.
With ``HTTPS_PROXY`` pointing at this proxy and ``REQUESTS_CA_BUNDLE`` at its CA, pip-audit
talks to it instead: the proxy accepts ``CONNECT pypi.org:443`` and nothing else, terminates
TLS with a certificate issued by trustme, and serves responses from its own table of
releases. It never opens a connection of its own.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme

log = logging.getLogger(__name__)

_RELEASE_PATH = re.compile(r"^/pypi/(?P<name>[^/]+)/(?P<version>[^/]+)/json$")


class FakePyPI:
    """PyPI's release JSON for a fixed table of releases, behind a TLS-terminating proxy.

    ``releases`` maps ``(canonical name, version)`` to the release's ``vulnerabilities``
    list, in the PyPI JSON API's shape. A release missing from the table gets a 404,
    as PyPI does for an unknown release. ``requested`` lists the paths served, in order.
    """

    def __init__(self, releases: dict[tuple[str, str], list[dict]], folder: Path):
        self.releases = releases
        self.requested: list[str] = []
        self._ca = trustme.CA()
        self.ca_bundle = folder / "fake-pypi-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_bundle))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._server.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("pypi.org").configure_cert(self._server.tls)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        """Return the variables that route a requests-based client through this proxy."""
        return proxy_environment(self.url, self.ca_bundle)

    def __enter__(self) -> FakePyPI:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def release_json(self, name: str, version: str) -> dict | None:
        vulnerabilities = self.releases.get((name, version))
        if vulnerabilities is None:
            return None
        return {"info": {"name": name, "version": version}, "urls": [],
                "vulnerabilities": vulnerabilities}


def proxy_environment(proxy_url: str, ca_bundle: Path | str) -> dict[str, str]:
    """Return HTTPS proxy and CA variables in both spellings requests reads.

    ``NO_PROXY`` is set empty, so a value inherited from the machine cannot route
    pypi.org around the proxy.
    """
    return {"HTTPS_PROXY": proxy_url, "https_proxy": proxy_url,
            "REQUESTS_CA_BUNDLE": str(ca_bundle), "NO_PROXY": "", "no_proxy": ""}


class _ProxyHandler(BaseHTTPRequestHandler):
    """Accept ``CONNECT pypi.org:443`` and serve the tunnel's requests from the table."""

    timeout = 10

    def do_CONNECT(self) -> None:
        host, _, port = self.path.partition(":")
        if host != "pypi.org" or port != "443":
            self.send_error(403, f"this proxy only serves pypi.org:443, not {self.path}")
            return

        self.send_response(200, "Connection established")
        self.end_headers()
        try:
            tunnel = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.info("fake PyPI: TLS handshake failed: %s", error)
            self.close_connection = True
            return

        try:
            _ReleaseHandler(tunnel, self.client_address, self.server)
        finally:
            tunnel.close()
        self.close_connection = True

    def do_GET(self) -> None:
        self.send_error(403, "this proxy only accepts CONNECT pypi.org:443")

    def log_message(self, format: str, *args) -> None:
        log.debug("fake PyPI proxy: " + format, *args)


class _ReleaseHandler(BaseHTTPRequestHandler):
    """Serve ``GET /pypi/<name>/<version>/json`` inside the TLS tunnel."""

    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self) -> None:
        fake: FakePyPI = self.server.fake
        fake.requested.append(self.path)
        match = _RELEASE_PATH.match(self.path)
        release = fake.release_json(match["name"], match["version"]) if match else None
        if release is None:
            self._send_json(404, {"message": "Not Found"})
        else:
            self._send_json(200, release)

    def _send_json(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug("fake PyPI: " + format, *args)
