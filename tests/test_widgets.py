"""The approval panel records through the same code as the CLI, without a browser."""

from __future__ import annotations

import pytest
from gate_projects import make_project

from tinysdlc_nb import approvals
from tinysdlc_nb.gates.model import Tier
from tinysdlc_nb.gates.policy import Verdict
from tinysdlc_nb.gates.run import run_gate
from tinysdlc_nb.widgets import approval_panel


@pytest.fixture
def g3_run(tmp_path):
    project = make_project(tmp_path)
    return run_gate("g3", project, version="1.2.0", checks=["zero_mock"],
                    output_dir=tmp_path / "out")


def fill(panel, name, role, comment=""):
    name_box, role_box, comment_box, buttons, _output = panel.children
    name_box.value, role_box.value, comment_box.value = name, role, comment
    return buttons.children


def test_panel_approval_recorded(g3_run):
    panel = approval_panel(g3_run)
    approve, _reject = fill(panel, "rita", "reviewer", "looks good")
    approve.click()
    status = approvals.signoff_status(g3_run.store, "demo", "g3", "1.2.0", Tier.LITE)
    assert status.requirements[0].state == "approved"
    assert status.requirements[0].signer == "rita"


def test_panel_refreshes_verdict(g3_run):
    panel = approval_panel(g3_run)
    approve, _reject = fill(panel, "rita", "reviewer")
    approve.click()
    approve, _reject = fill(panel, "tom", "tester")
    approve.click()
    assert g3_run.verdict is Verdict.PASSED


def test_panel_rejects_agent(g3_run):
    panel = approval_panel(g3_run)
    approve, _reject = fill(panel, "coder", "reviewer")
    approve.click()
    status = approvals.signoff_status(g3_run.store, "demo", "g3", "1.2.0", Tier.LITE)
    assert status.requirements[0].state == "missing"
    assert "agents never sign off" in panel.children[-1].value


def test_panel_reject_button(g3_run):
    panel = approval_panel(g3_run)
    _approve, reject = fill(panel, "rita", "reviewer", "missing rollback plan")
    reject.click()
    assert g3_run.verdict is Verdict.FAILED
