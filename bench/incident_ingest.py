"""Benchmark ingestion of Alertmanager webhook bodies, in payloads per second.

Each way in starts on a new empty store:

- ``tinysdlc-nb ingest alertmanager`` with every payload file in one invocation;
- one ``ingest`` invocation per payload, reading it from standard input (``-``);
- ``tinysdlc-nb serve`` on 127.0.0.1, with HTTP POSTs sent one after another over one
  keep-alive connection, and from several clients at once.

Every payload is a distinct Alertmanager group, so each one opens one incident. Afterwards
the store must contain exactly that many incidents.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import measure
import psutil

log = logging.getLogger(__name__)

BIN = Path(sys.executable).parent
CLI = str(BIN / "tinysdlc-nb")
WEBHOOK = "/webhooks/alertmanager"
STARTUP_TIMEOUT_S = 60.0
ALERT_NAMES = ("HighErrorRate", "HighLatencyP99", "DiskFull", "PodCrashLooping",
               "QueueBacklog", "ReplicationLag", "MemoryPressure", "TargetDown")
SEVERITY_LABELS = ("critical", "warning", "warning", "info", "error")


def write_payloads(folder: Path, count: int, seed: int) -> list[Path]:
    """Write ``count`` Alertmanager webhook bodies (version 4), each its own group.

    Each body has one to four firing alerts of one alertname and service, with labels,
    annotations, fingerprints and nanosecond start times as Alertmanager sends them.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        name = rng.choice(ALERT_NAMES)
        service = f"svc-{number:05d}"
        group_labels = {"alertname": name, "service": service}
        started = f"2026-03-{1 + number % 28:02d}T{number % 24:02d}:{rng.randint(0, 59):02d}:" \
                  f"{rng.randint(0, 59):02d}.{rng.getrandbits(29):09d}Z"
        alerts = []
        for pod in range(rng.choice((1, 1, 2, 3, 4))):
            labels = {**group_labels, "severity": rng.choice(SEVERITY_LABELS),
                      "namespace": "prod", "pod": f"{service}-{pod}", "job": service}
            alerts.append({
                "status": "firing", "labels": labels,
                "annotations": {"summary": f"{name} on {service}",
                                "description": f"{name} above threshold on pod {pod}"},
                "startsAt": started, "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus:9090/graph?g0.expr={name}",
                "fingerprint": f"{rng.getrandbits(64):016x}",
            })
        body = {
            "version": "4", "groupKey": f"{{}}:{{alertname=\"{name}\", service=\"{service}\"}}",
            "truncatedAlerts": 0, "status": "firing", "receiver": "tinysdlc",
            "groupLabels": group_labels, "commonLabels": group_labels,
            "commonAnnotations": {"summary": f"{name} on {service}"},
            "externalURL": "http://alertmanager:9093", "alerts": alerts,
        }
        path = folder / f"payload-{number:05d}.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        paths.append(path)
    return paths


def bench_cli_files(work: Path, payloads: list[Path]) -> dict:
    """Ingest every payload file with one ``tinysdlc-nb ingest`` invocation."""
    project = _project(work / "cli-files")
    argv = [CLI, "ingest", "alertmanager", *map(str, payloads), "--project", str(project)]
    measured = _run_timed(argv, project, stdin_files=None)
    measured["command"] = (f"tinysdlc-nb ingest alertmanager $WORK/payloads/payload-*.json "
                           f"--project $WORK/cli-files  # {len(payloads)} files")
    return _finish(measured, project, len(payloads))


def bench_cli_stdin(work: Path, payloads: list[Path]) -> dict:
    """Ingest each payload with its own ``tinysdlc-nb ingest alertmanager -`` process."""
    project = _project(work / "cli-stdin")
    argv = [CLI, "ingest", "alertmanager", "-", "--project", str(project)]
    measured = _run_timed(argv, project, stdin_files=payloads)
    measured["command"] = (f"tinysdlc-nb ingest alertmanager - --project $WORK/cli-stdin "
                           f"< $WORK/payloads/payload-N.json  # once per payload, "
                           f"{len(payloads)} times")
    return _finish(measured, project, len(payloads))


def bench_serve(work: Path, payloads: list[Path], clients: int) -> dict:
    """POST every payload to a running ``tinysdlc-nb serve`` from ``clients`` threads."""
    project = _project(work / f"serve-{clients}")
    port = _free_port()
    # -v: without it the CLI logs warnings only, and the benchmark checks the "stopped" line.
    argv = [CLI, "-v", "serve", "--port", str(port), "--project", str(project)]
    bodies = [path.read_bytes() for path in payloads]
    server_log = project / "serve.log"
    with server_log.open("w", encoding="utf-8") as log_file:
        server = subprocess.Popen(argv, env=_env(project), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        _wait_until_healthy(port, server, server_log)
        measure.wait_for_quiet_machine()
        process = psutil.Process(server.pid)
        cpu_before = sum(process.cpu_times()[:2])
        busy_before = measure.machine_busy_s()
        client_cpu_before = time.process_time()
        started = time.perf_counter()
        statuses = _post_all(port, bodies, clients)
        wall_s = time.perf_counter() - started
        server_cpu_s = sum(process.cpu_times()[:2]) - cpu_before
        client_cpu_s = time.process_time() - client_cpu_before
        busy_s = measure.machine_busy_s() - busy_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    stderr = server_log.read_text(encoding="utf-8")
    if server.returncode != 0 or not stderr.rstrip().endswith("stopped"):
        raise RuntimeError(f"tinysdlc-nb serve exited with code {server.returncode} and did "
                           f"not log 'stopped' last; its log ends: {stderr[-2000:]}")
    request_lines = stderr.count(f"POST {WEBHOOK} -> 200")
    failed = {status: count for status, count in statuses.items() if status != 200}
    if failed:
        raise RuntimeError(f"serve responded with {failed} (status: count) instead of 200")

    mode = "one keep-alive connection" if clients == 1 else f"{clients} concurrent clients"
    measured = {"wall_s": wall_s, "server_cpu_s": server_cpu_s, "client_cpu_s": client_cpu_s,
                "logged_requests": request_lines,
                "other_cpu_s": max(busy_s - server_cpu_s - client_cpu_s, 0.0),
                "command": f"tinysdlc-nb -v serve --port PORT --project $WORK/serve-{clients} "
                           f"2> serve.log"
                           f"  # then {len(bodies)} POSTs to {WEBHOOK} over {mode}"}
    return _finish(measured, project, len(payloads))


def _post_all(port: int, bodies: list[bytes], clients: int) -> dict[int, int]:
    """POST the bodies, split over ``clients`` threads with one connection each."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def send(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for body in share:
                connection.request("POST", WEBHOOK, body=body,
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] = statuses.get(response.status, 0) + 1
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(bodies[index::clients],))
               for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _run_timed(argv: list[str], project: Path, stdin_files: list[Path] | None) -> dict:
    """Run the command once, or once per file on its standard input; return its costs."""
    env = _env(project)
    measure.wait_for_quiet_machine()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = measure.machine_busy_s()
    started = time.perf_counter()
    for path in stdin_files or [None]:
        stdin = path.open("rb") if path is not None else subprocess.DEVNULL
        try:
            subprocess.run(argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=True)
        finally:
            if path is not None:
                stdin.close()
    wall_s = time.perf_counter() - started
    busy_s = measure.machine_busy_s() - busy_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall_s": wall_s, "cpu_s": cpu_s, "other_cpu_s": max(busy_s - cpu_s, 0.0)}


def _finish(measured: dict, project: Path, payloads: int) -> dict:
    """Check that every payload opened one incident; add the rate to ``measured``."""
    database = project / "home" / "state.db"
    with sqlite3.connect(database) as connection:
        stored = connection.execute("SELECT count(*) FROM incidents").fetchone()[0]
        rows = connection.execute("SELECT count(*) FROM timeline").fetchone()[0]
    if stored != payloads:
        raise RuntimeError(f"{database} contains {stored} incidents after {payloads} "
                           f"payloads, each a distinct group; expected {payloads}")
    return {**measured, "payloads": payloads, "incidents": stored, "timeline_rows": rows,
            "payloads_per_s": payloads / measured["wall_s"]}


def _project(folder: Path) -> Path:
    (folder / "home").mkdir(parents=True)
    return folder


def _env(project: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name != "TINYSDLC_NB_DATABASE_URL"}
    env["TINYSDLC_NB_HOME"] = str(project / "home")
    return env


def _free_port() -> int:
    """Return a port the kernel just handed out as free; `serve` rejects --port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(port: int, server: subprocess.Popen, server_log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server_log.read_text(encoding="utf-8")[-2000:]
            raise RuntimeError(f"tinysdlc-nb serve exited with code {server.returncode} "
                               f"before it responded: {output}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"tinysdlc-nb serve did not respond to GET /healthz on port {port} "
                       f"within {STARTUP_TIMEOUT_S:g} s")
