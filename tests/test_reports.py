"""Gate runs through the library (no kernel): verdict logic, SARIF, JUnit and summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from gate_projects import make_project

from tinysdlc_nb import approvals
from tinysdlc_nb.config import DEFAULT_AGENT_IDS
from tinysdlc_nb.gates.model import Status, Tier
from tinysdlc_nb.gates.policy import Item, Verdict, decide
from tinysdlc_nb.gates.run import run_gate


@pytest.fixture
def flagged_project(tmp_path):
    project = make_project(tmp_path)
    (project / "demo" / "jobs.py").write_text(
        "def deploy():\n"
        "    # TODO: wire the real deploy call\n"
        "    raise NotImplementedError\n"
        "\n"
        "\n"
        "def legacy():\n"
        "    return None  # FIXME: keep until 2.0  # zero-mock: allow kept for the 1.x API\n"
        "    return None\n")
    return project


def run_zero_mock(project, tmp_path, **options):
    return run_gate("g3", project, version="1.2.0", checks=["zero_mock"],
                    output_dir=tmp_path / "out", **options)


def test_verdict_order():
    def item(status, required=True):
        return Item("x", "check", "x", status, "", required)

    assert decide([item(Status.PASS), item(Status.FAIL), item(Status.ERROR)]) is Verdict.FAILED
    assert decide([item(Status.PASS), item(Status.UNAVAILABLE)]) is Verdict.INCOMPLETE
    assert decide([item(Status.PASS), item(None)]) is Verdict.AWAITING_APPROVAL
    assert decide([item(Status.SKIPPED), item(Status.WAIVED)]) is Verdict.PASSED
    assert decide([item(Status.PASS), item(Status.FAIL, required=False)]) is Verdict.PASSED


def test_sarif_one_run_per_tool(flagged_project, tmp_path):
    run = run_zero_mock(flagged_project, tmp_path)
    sarif = json.loads((run.output_dir / "results.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert [entry["tool"]["driver"]["name"] for entry in sarif["runs"]] == ["tinysdlc-nb"]


def test_sarif_result_location(flagged_project, tmp_path):
    run = run_zero_mock(flagged_project, tmp_path)
    results = json.loads((run.output_dir / "results.sarif").read_text())["runs"][0]["results"]
    todo = [result for result in results if result["ruleId"] == "todo-comment"]
    location = todo[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "demo/jobs.py"
    assert location["region"]["startLine"] == 2


def test_sarif_keeps_suppressed_with_justification(flagged_project, tmp_path):
    run = run_zero_mock(flagged_project, tmp_path)
    results = json.loads((run.output_dir / "results.sarif").read_text())["runs"][0]["results"]
    suppressed = [result for result in results if "suppressions" in result]
    assert len(suppressed) == 1
    assert "kept for the 1.x API" in suppressed[0]["suppressions"][0]["justification"]


def test_junit_case_per_item(flagged_project, tmp_path):
    run = run_zero_mock(flagged_project, tmp_path)
    suite = ET.parse(run.output_dir / "junit.xml").getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"zero_mock", "signoff:reviewer", "signoff:tester"}
    assert cases["zero_mock"].find("failure") is not None
    assert cases["signoff:reviewer"].find("skipped") is not None
    assert suite.get("failures") == "1"


def test_summary_carries_hash_and_handoff(flagged_project, tmp_path):
    run = run_zero_mock(flagged_project, tmp_path)
    summary = json.loads((run.output_dir / "summary.json").read_text())
    item = summary["items"][0]
    assert summary["verdict"] == "FAILED"
    assert len(item["report_sha256"]) == 64
    assert "[@coder: CI blocked — Zero Mock violation detected at demo/jobs.py:2" \
        in item["summary"]


def test_expired_waiver_does_not_apply(flagged_project, tmp_path):
    config = flagged_project / ".tinysdlc" / "config.toml"
    config.write_text(config.read_text() + '\n[[waivers]]\nitem = "zero_mock"\n'
                      'reason = "legacy"\nowner = "dana"\nexpires = 2020-01-01\n')
    run = run_zero_mock(flagged_project, tmp_path)
    assert run.items[0].status is Status.FAIL
    assert "expired on 2020-01-01" in run.items[0].summary


def test_active_waiver_applies(flagged_project, tmp_path):
    config = flagged_project / ".tinysdlc" / "config.toml"
    config.write_text(config.read_text() + '\n[[waivers]]\nitem = "zero_mock"\n'
                      'reason = "legacy"\nowner = "dana"\nexpires = 2099-01-01\n')
    run = run_zero_mock(flagged_project, tmp_path)
    assert run.items[0].status is Status.WAIVED
    assert run.verdict is Verdict.AWAITING_APPROVAL


def test_refresh_sees_new_signoffs(tmp_path):
    project = make_project(tmp_path)
    run = run_gate("g3", project, version="1.2.0", checks=["zero_mock"],
                   output_dir=tmp_path / "out")
    assert run.verdict is Verdict.AWAITING_APPROVAL
    for role, person in (("reviewer", "rita"), ("tester", "tom")):
        approvals.record_signoff(run.store, project="demo", gate="g3", version="1.2.0",
                                 role=role, signer=person, approve=True, comment="",
                                 agent_ids=set(DEFAULT_AGENT_IDS), tier=Tier.LITE)
    assert run.refresh() is Verdict.PASSED
    summary = json.loads((run.output_dir / "summary.json").read_text())
    assert summary["verdict"] == "PASSED"
