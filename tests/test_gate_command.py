"""``tinysdlc-nb gate`` end to end: real kernels, real checks, real store, every report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from gate_projects import CLI, cli, make_project

pytestmark = pytest.mark.kernel

PLANTED_TOKEN = "ghp_" + "Wx7" * 12


def read_summary(output: Path) -> dict:
    return json.loads((output / "summary.json").read_text())


def statuses(summary: dict) -> dict[str, str]:
    return {item["item"]: item["status"] for item in summary["items"]}


def test_gate_flow_to_passed(tmp_path):
    project = make_project(tmp_path, config="""
[[waivers]]
item = "dependencies"
reason = "advisory database not reachable from the test machine"
owner = "dana"
expires = 2099-01-01
""")
    out = tmp_path / "run1"
    first = cli("gate", "g4", "--project", str(project), "--output", str(out))
    assert first.returncode == 1, first.stderr
    summary = read_summary(out)
    assert summary["verdict"] == "FAILED"
    assert summary["version"] == "1.2.0"
    assert statuses(summary)["zero_mock"] == "PASS"
    assert statuses(summary)["tests"] == "PASS"
    assert statuses(summary)["g3_confirmed"] == "FAIL"
    assert statuses(summary)["staging_smoke"] == "FAIL"
    assert statuses(summary)["dependencies"] == "WAIVED"
    assert statuses(summary)["sbom"] == "SKIPPED"
    for name in ("g4-1.2.0.ipynb", "g4-1.2.0.html", "results.sarif", "junit.xml"):
        assert (out / name).is_file(), name
    assert "Verdict: FAILED (exit 1)" in first.stdout

    for role, person in (("reviewer", "rita"), ("tester", "tom")):
        signed = cli("approve", "g3", "--role", role, "--by", person, "--project", str(project))
        assert signed.returncode == 0, signed.stderr
    evidence_file = tmp_path / "smoke.log"
    evidence_file.write_text("smoke: 14 passed\n")
    for item in ("staging_smoke", "rollback_tested", "monitoring_configured",
                 "runbook_documented", "post_deploy_plan", "infra_changes_notified"):
        added = cli("evidence", "add", "--gate", "g4", "--item", item, "--by", "dana",
                    "--note", f"{item} checked", "--file", str(evidence_file),
                    "--project", str(project))
        assert added.returncode == 0, added.stderr

    second = cli("gate", "g4", "--project", str(project), "--output", str(tmp_path / "run2"),
                 "--json")
    assert second.returncode == 3, second.stderr
    assert json.loads(second.stdout)["verdict"] == "AWAITING_APPROVAL"

    approved = cli("approve", "g4", "--role", "devops", "--by", "dana", "--project",
                   str(project), "--comment", "checklist reviewed")
    assert approved.returncode == 0, approved.stderr
    third = cli("gate", "g4", "--project", str(project), "--output", str(tmp_path / "run3"),
                "--json")
    assert third.returncode == 0, third.stderr
    final = json.loads(third.stdout)
    assert final["verdict"] == "PASSED"
    assert {entry["item"] for entry in final["evidence"]} >= {"staging_smoke", "rollback_tested"}
    assert all(len(entry["file_sha256"]) == 64 for entry in final["evidence"])

    audit = cli("audit", "verify", "--project", str(project))
    assert audit.returncode == 0
    assert "Audit OK" in audit.stdout


def test_agent_cannot_approve(tmp_path):
    project = make_project(tmp_path)
    result = cli("approve", "g3", "--role", "reviewer", "--by", "coder", "--project",
                 str(project))
    assert result.returncode == 2
    assert "agents never sign off" in result.stderr
    audit = cli("audit", "verify", "--project", str(project), "--json")
    assert json.loads(audit.stdout) == {"ok": True, "problems": []}


def test_invalid_tier_exits_2_before_running(tmp_path):
    project = make_project(tmp_path)
    result = cli("gate", "g4", "--project", str(project), "--tier", "gold")
    assert result.returncode == 2
    assert "tier 'gold' is invalid" in result.stderr
    assert not (project / ".tinysdlc" / "reports").exists()


def test_invalid_config_exits_2(tmp_path):
    project = make_project(tmp_path, config='\n[gate]\nmax_workers = "many"\n')
    result = cli("gate", "g4", "--project", str(project))
    assert result.returncode == 2
    assert "max_workers = 'many' is invalid" in result.stderr


def test_secret_in_test_output_not_in_reports(tmp_path):
    failing = ("import os\n\n\n"
               "def test_leaks_in_message():\n    token = os.environ['PLANTED_VALUE']\n"
               "    assert token == 'x', token\n\n\n"
               "def test_leaks_in_shortened_repr():\n    token = os.environ['PLANTED_VALUE']\n"
               "    assert token == 'x'\n")
    project = make_project(tmp_path, test_body=failing)
    out = tmp_path / "out"
    result = cli("gate", "g3", "--project", str(project), "--output", str(out),
                 env={"PLANTED_VALUE": PLANTED_TOKEN})
    assert result.returncode == 1, result.stderr
    assert statuses(read_summary(out))["tests"] == "FAIL"
    for path in sorted(out.rglob("*")):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert PLANTED_TOKEN not in text, path.name
            assert PLANTED_TOKEN[4:12] not in text, path.name
    assert PLANTED_TOKEN not in result.stdout + result.stderr


def _kernel_pids(ancestor: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ipykernel_launcher" in cmdline and _descends_from(int(entry.name), ancestor):
            pids.append(int(entry.name))
    return pids


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def test_kernel_killed_mid_run_is_incomplete(tmp_path):
    project = make_project(tmp_path, config="")
    config = project / ".tinysdlc" / "config.toml"
    config.write_text(config.read_text().replace(
        'command = "python -m pytest -q -p no:cacheprovider tests"',
        'command = "python -c \'import time; time.sleep(90)\'"\npytest_options = false'))
    out = tmp_path / "out"
    process = subprocess.Popen([*CLI, "gate", "g4", "--project", str(project), "--output",
                                str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        kernels: list[int] = []
        while time.monotonic() < deadline and not kernels:
            time.sleep(0.5)
            kernels = _kernel_pids(process.pid)
        assert kernels, "no kernel started"
        time.sleep(8)
        for pid in kernels:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        subprocess.run(["pkill", "-f", "time.sleep(90)"], check=False)

    assert process.returncode == 4, stderr
    summary = read_summary(out)
    assert summary["verdict"] == "INCOMPLETE"
    assert statuses(summary)["execution"] == "ERROR"
    assert "Verdict: INCOMPLETE (exit 4)" in stdout
    assert (out / "g4-1.2.0.html").is_file()
    assert "<testsuite" in (out / "junit.xml").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--version", "1.0/../../x"], "version '1.0/../../x' is invalid"),
    (["--cell-timeout", "0"], "--cell-timeout 0 is invalid"),
    (["--junit", "missing.xml", "--coverage", "missing.xml"], "not found"),
])
def test_bad_gate_input_exits_2(tmp_path, args, message):
    project = make_project(tmp_path)
    result = cli("gate", "g3", "--project", str(project), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (project / ".tinysdlc" / "reports").exists()


def test_junit_without_coverage_exits_2(tmp_path):
    project = make_project(tmp_path)
    junit = tmp_path / "junit.xml"
    junit.write_text("<testsuite tests='0'/>")
    result = cli("gate", "g3", "--project", str(project), "--junit", str(junit))
    assert result.returncode == 2
    assert "--junit needs --coverage" in result.stderr


def test_output_is_a_file_exits_2(tmp_path):
    project = make_project(tmp_path)
    existing = tmp_path / "report.xml"
    existing.write_text("x")
    result = cli("gate", "g3", "--project", str(project), "--output", str(existing))
    assert result.returncode == 2
    assert "is a file" in result.stderr


def test_audit_without_store_exits_2(tmp_path):
    result = cli("audit", "verify", "--project", str(tmp_path))
    assert result.returncode == 2
    assert "no store at" in result.stderr
    assert not (tmp_path / ".tinysdlc").exists()


def test_edited_signoff_fails_the_gate(tmp_path):
    project = make_project(tmp_path)
    for role, person in (("reviewer", "rita"), ("tester", "tom")):
        assert cli("approve", "g3", "--role", role, "--by", person, "--project",
                   str(project)).returncode == 0
    database = sqlite3.connect(project / ".tinysdlc" / "state.db")
    database.executescript("DROP TRIGGER signoffs_no_update; "
                           "UPDATE signoffs SET signer = 'mallory' WHERE signer = 'rita';")
    database.close()

    out = tmp_path / "out"
    result = cli("gate", "g3", "--project", str(project), "--output", str(out))
    assert result.returncode == 1, result.stderr
    assert statuses(read_summary(out))["records_intact"] == "FAIL"
