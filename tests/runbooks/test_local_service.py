"""The shipped runbooks deploy a real HTTP service on 127.0.0.1, break it and roll it back."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from runbookkit import run_json

from tinysdlc_nb import approvals
from tinysdlc_nb.config import load_config
from tinysdlc_nb.probe import probe_http
from tinysdlc_nb.runbooks.runner import shipped_runbooks_dir
from tinysdlc_nb.store import open_store

pytestmark = pytest.mark.kernel

SERVICE_SCRIPT = shipped_runbooks_dir() / "scripts" / "service.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def service(project, tmp_path):
    """A service root and port, with the service stopped at the end whatever happened."""
    root = tmp_path / "service-root"
    port = free_port()
    yield root, port
    subprocess.run(["bash", str(SERVICE_SCRIPT), "stop", str(root)], check=False,
                   capture_output=True, timeout=30)


def release(tmp_path: Path, version: str, *, marker: str | None = None) -> Path:
    """Build a release folder of the sample service; ``marker`` breaks it on purpose."""
    folder = tmp_path / "artifacts" / version
    shutil.copytree(shipped_runbooks_dir() / "sample-service", folder)
    (folder / "VERSION").write_text(f"{version}\n")
    if marker:
        (folder / marker).write_text("broken on purpose by the test\n")
    return folder


def sign_g3(project: Path, *versions: str) -> None:
    config = load_config(project)
    store = open_store(config.database_url)
    try:
        for version in versions:
            for role, person in (("reviewer", "Ana Lima"), ("tester", "Tom Berg")):
                approvals.record_signoff(store, project=config.name, gate="g3",
                                         version=version, role=role, signer=person,
                                         approve=True, comment="checked",
                                         agent_ids=config.agent_ids(), tier=config.tier)
    finally:
        store.close()


def deploy(capsys, project, service, artifact: Path, version: str, *extra: str):
    root, port = service
    return run_json(capsys, project, "deploy-local-service", "-p", f"version={version}",
                    "-p", f"artifact={artifact}", "-p", f"service_root={root}",
                    "-p", f"port={port}", *extra)


def served_version(port: int) -> str:
    result = probe_http(f"http://127.0.0.1:{port}/health", wait_s=5)
    assert result.healthy, result.error
    return result.body_excerpt


def test_deploy_then_broken_release_rolls_back(project, service, tmp_path, capsys):
    root, port = service
    sign_g3(project, "1.0.0", "1.1.0", "1.2.0")

    first, _ = deploy(capsys, project, service, release(tmp_path, "1.0.0"), "1.0.0")
    second, run = deploy(capsys, project, service, release(tmp_path, "1.1.0"), "1.1.0")

    assert first == 0
    assert second == 0
    assert '"version": "1.1.0"' in served_version(port)
    assert "staging_smoke" in [item["item"] for item in run["evidence"]]

    broken, run = deploy(capsys, project, service,
                         release(tmp_path, "1.2.0", marker="HEALTH_FAIL"), "1.2.0")
    statuses = {(step["phase"], step["number"]): step["status"] for step in run["steps"]}

    assert broken == 1
    assert run["status"] == "failed"
    assert statuses[("step", 5)] == "failed"
    assert statuses[("rollback", 3)] == "passed"
    assert statuses[("verify_after_rollback", 1)] == "passed"
    assert '"version": "1.1.0"' in served_version(port)
    assert (root / "current").resolve() == (root / "releases" / "1.1.0").resolve()


def test_release_that_cannot_start_rolls_back(project, service, tmp_path, capsys):
    _, port = service
    sign_g3(project, "2.0.0", "2.1.0")
    deploy(capsys, project, service, release(tmp_path, "2.0.0"), "2.0.0")

    code, run = deploy(capsys, project, service, release(tmp_path, "2.1.0",
                                                         marker="START_FAIL"), "2.1.0")

    assert code == 1
    assert run["status"] == "failed"
    assert '"version": "2.0.0"' in served_version(port)


def test_rehearsal_records_rollback_tested(project, service, tmp_path, capsys):
    _, port = service
    sign_g3(project, "3.0.0", "3.1.0")
    deploy(capsys, project, service, release(tmp_path, "3.0.0"), "3.0.0")

    code, run = deploy(capsys, project, service, release(tmp_path, "3.1.0"), "3.1.0",
                       "--rehearse-rollback")

    assert code == 0
    assert run["status"] == "passed"
    assert 0 < run["rollback_healthy_s"] <= 60
    assert [item["item"] for item in run["evidence"]][0] == "rollback_tested"
    assert '"version": "3.0.0"' in served_version(port)


def test_deploy_blocked_without_g3(project, service, tmp_path, capsys):
    root, _ = service

    code, run = deploy(capsys, project, service, release(tmp_path, "4.0.0"), "4.0.0")

    assert code == 1
    assert run["status"] == "blocked"
    assert not (root / "releases").exists()


def test_rollback_and_triage_runbooks(project, service, tmp_path, capsys):
    root, port = service
    sign_g3(project, "5.0.0", "5.1.0")
    deploy(capsys, project, service, release(tmp_path, "5.0.0"), "5.0.0")
    deploy(capsys, project, service, release(tmp_path, "5.1.0"), "5.1.0")

    code, run = run_json(capsys, project, "rollback-local-service", "-p",
                         f"service_root={root}", "-p", f"port={port}")

    assert code == 0
    assert '"version": "5.0.0"' in served_version(port)

    code, run = run_json(capsys, project, "triage-health-check", "-p",
                         f"service_root={root}", "-p", f"port={port}")
    output = "\n".join(step["output_tail"] for step in run["steps"])

    assert code == 0
    assert run["no_rollback"] is False
    assert "5.0.0" in output
