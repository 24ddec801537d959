"""The deployment checklist: sign-offs, gate runs and evidence read back from a real store."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from gate_projects import make_project
from sqlalchemy import insert

from tinysdlc_nb import approvals
from tinysdlc_nb.checklist import (
    COLUMNS,
    STATUS_STYLES,
    checklist_frame,
    checklist_summary,
    deployment_checklist,
    format_age,
    style_checklist,
)
from tinysdlc_nb.config import DEFAULT_AGENT_IDS, load_config
from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.execute import packaged_notebook, run_notebook
from tinysdlc_nb.gates.model import Tier
from tinysdlc_nb.gates.run import run_gate
from tinysdlc_nb.store import as_utc, open_store
from tinysdlc_nb.store.schema import gate_items, gate_runs

PROJECT = "demo"
VERSION = "1.2.0"
NOW = dt.datetime(2031, 5, 6, 12, 0, tzinfo=dt.UTC)
ORDER = ["g3", "ci_gates", "zero_mock", "security_scan", "staging", "rollback_tested",
         "monitoring", "no_secrets", "migrations_reversible", "smoke_test"]
EVIDENCE_ITEMS = ("staging_smoke", "rollback_tested", "monitoring_configured",
                  "post_deploy_plan")
PASSING = {"lint": "PASS", "tests": "PASS", "zero_mock": "PASS", "sast": "PASS",
           "secrets": "PASS", "dependencies": "WAIVED", "licenses": "PASS", "sbom": "SKIPPED",
           "migrations": "PASS"}
GITHUB_TOKEN = "ghp_" + "Wx7" * 12


def add_gate_run(store, run_id: str, finished_at: dt.datetime | None, statuses: dict,
                 *, gate: str = "g4", verdict: str = "PASSED") -> None:
    """Insert a gate run and its check items as ``run_gate`` records them."""
    with store.begin() as connection:
        connection.execute(insert(gate_runs).values(
            run_id=run_id, project=PROJECT, gate=gate, version=VERSION, tier="lite",
            environment="production", status="finished" if finished_at else "running",
            verdict=verdict if finished_at else None,
            started_at=(finished_at or NOW) - dt.timedelta(minutes=4),
            finished_at=finished_at, output_dir=f"/srv/reports/{gate}-{VERSION}-{run_id}"))
        for name, status in statuses.items():
            connection.execute(insert(gate_items).values(
                run_id=run_id, item=name, kind="check", required=True, status=status,
                summary=f"{name} summary ({status})"))


def sign_g3(store, *, tier: Tier = Tier.LITE, tester_approves: bool = True) -> None:
    for role, person, approve in (("reviewer", "rita", True), ("tester", "tom", tester_approves)):
        approvals.record_signoff(store, project=PROJECT, gate="g3", version=VERSION, role=role,
                                 signer=person, approve=approve, comment="checked the diff",
                                 agent_ids=set(DEFAULT_AGENT_IDS), tier=tier)


def add_evidence(store, tmp_path, item: str, note: str = "looked fine") -> dict:
    file = tmp_path / f"{item}.log"
    file.write_text(f"{item}: 14 passed\n")
    return approvals.record_evidence(store, project=PROJECT, gate="g4", version=VERSION,
                                     item=item, recorded_by="dana", note=note, file=file,
                                     files_dir=tmp_path / "files")


def by_item(items) -> dict:
    return {item.item: item for item in items}


def cell_backgrounds(html: str) -> dict[str, str]:
    """Map each styled cell of a Styler's HTML (``row0_col2``) to its background colour."""
    found = {}
    style = html.split("</style>")[0]
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", style):
        colour = re.search(r"background-color: (#[0-9a-f]{6})", body)
        for selector in selectors.split(","):
            found[selector.strip().split("_", 2)[-1]] = colour.group(1)
    return found


def code_cells(execution):
    return [cell for cell in execution.notebook.cells if cell.cell_type == "code"]


def output_texts(cell, kind: str) -> str:
    """Join the outputs of one cell of MIME type ``kind`` (``stream`` for printed text)."""
    texts = []
    for output in cell.get("outputs", []):
        if kind == "stream" and output.get("output_type") == "stream":
            texts.append(output["text"])
        elif kind in output.get("data", {}):
            texts.append(output["data"][kind])
    return "\n".join(texts)


# Empty and complete stores.

def test_checklist_empty_store(sqlite_store):
    items = deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW)

    assert [item.item for item in items] == ORDER
    for item in items:
        assert item.status == "missing", item.item
        assert item.recorded_at is None, item.item
        assert item.age == "", item.item


def test_checklist_empty_fix_commands(sqlite_store):
    items = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))

    assert "tinysdlc-nb approve g3 --role reviewer --by NAME --version 1.2.0" \
        in items["g3"].evidence
    assert "tinysdlc-nb approve g3 --role tester" in items["g3"].evidence
    for name in ("ci_gates", "zero_mock", "security_scan", "no_secrets",
                 "migrations_reversible"):
        assert "tinysdlc-nb gate g4 --version 1.2.0" in items[name].evidence, name
    assert "tinysdlc-nb runbook run deploy-local-service -p version=1.2.0 " \
           "-p environment=staging" in items["staging"].evidence
    assert "--rehearse-rollback" in items["rollback_tested"].evidence
    assert "tinysdlc-nb evidence add --gate g4 --item monitoring_configured --version 1.2.0" \
        in items["monitoring"].evidence
    assert "--item post_deploy_plan" in items["smoke_test"].evidence


def test_checklist_all_done(any_store, tmp_path):
    sign_g3(any_store)
    records = [add_evidence(any_store, tmp_path, item) for item in EVIDENCE_ITEMS]
    newest = max(as_utc(record["recorded_at"]) for record in records)
    now = newest + dt.timedelta(days=2, hours=1)
    finished_at = now - dt.timedelta(hours=3, minutes=20)
    add_gate_run(any_store, "run-1", finished_at, PASSING)

    items = by_item(deployment_checklist(any_store, PROJECT, VERSION, Tier.LITE, now=now))

    for name in ORDER:
        assert items[name].status == "done", (name, items[name].evidence)
    for name in ("g3", "staging", "rollback_tested", "monitoring", "smoke_test"):
        assert items[name].age == "2 d", name
    for name in ("ci_gates", "zero_mock", "security_scan", "no_secrets",
                 "migrations_reversible"):
        assert items[name].age == "3 h", name
        assert items[name].recorded_at == finished_at, name


def test_checklist_done_evidence_texts(sqlite_store, tmp_path):
    sign_g3(sqlite_store)
    for item in EVIDENCE_ITEMS:
        add_evidence(sqlite_store, tmp_path, item)
    add_gate_run(sqlite_store, "run-1", NOW - dt.timedelta(hours=1), PASSING)

    items = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))

    assert items["g3"].evidence == "approved by rita as reviewer; approved by tom as tester"
    assert "file staging_smoke.log (sha256 " in items["staging"].evidence
    assert "recorded by dana (cli): looked fine" in items["staging"].evidence
    assert "run run-1: verdict PASSED" in items["ci_gates"].evidence
    assert "reports in /srv/reports/g4-1.2.0-run-1" in items["ci_gates"].evidence
    assert "dependencies WAIVED" in items["security_scan"].evidence


def test_frame_columns_and_times(sqlite_store, tmp_path):
    add_gate_run(sqlite_store, "run-1", NOW - dt.timedelta(minutes=7), PASSING)

    frame = checklist_frame(sqlite_store, PROJECT, VERSION, "lite", now=NOW)

    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["item"]) == ORDER
    row = frame.set_index("item").loc["ci_gates"]
    assert row["recorded_at"] == NOW - dt.timedelta(minutes=7)
    assert row["age"] == "7 min"
    assert frame.set_index("item").loc["g3", "age"] == ""


# Gate runs.

def test_zero_mock_failed_real_run(tmp_path):
    project = make_project(tmp_path)
    (project / "demo" / "later.py").write_text(
        "def later():\n    raise NotImplementedError\n")
    run_gate("g4", project, version=None, checks=["zero_mock", "migrations"])
    store = open_store(load_config(project).database_url)

    items = by_item(deployment_checklist(store, PROJECT, VERSION, "lite"))

    assert items["zero_mock"].status == "failed"
    assert "zero_mock FAIL" in items["zero_mock"].evidence
    assert items["ci_gates"].status == "failed"
    assert "not passing: zero_mock FAIL" in items["ci_gates"].evidence
    store.close()


def test_no_migrations_not_applicable(tmp_path):
    project = make_project(tmp_path)
    run_gate("g4", project, version=None, checks=["zero_mock", "migrations"])
    store = open_store(load_config(project).database_url)

    items = by_item(deployment_checklist(store, PROJECT, VERSION, "lite"))

    assert items["migrations_reversible"].status == "not applicable"
    assert "migrations SKIPPED" in items["migrations_reversible"].evidence
    assert items["zero_mock"].status == "done"
    assert items["ci_gates"].status == "done"
    assert items["security_scan"].status == "missing"
    assert "has no sast, secrets, dependencies item" in items["security_scan"].evidence
    store.close()


def test_migrations_item_absent(sqlite_store):
    statuses = {name: status for name, status in PASSING.items() if name != "migrations"}
    add_gate_run(sqlite_store, "run-1", NOW - dt.timedelta(hours=1), statuses)

    items = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))

    assert items["migrations_reversible"].status == "not applicable"
    assert "did not check migrations" in items["migrations_reversible"].evidence


def test_newest_run_wins(any_store):
    add_gate_run(any_store, "newer", NOW - dt.timedelta(hours=2), PASSING)
    add_gate_run(any_store, "older", NOW - dt.timedelta(days=3),
                 {**PASSING, "zero_mock": "FAIL"}, verdict="FAILED")

    items = by_item(deployment_checklist(any_store, PROJECT, VERSION, "lite", now=NOW))

    assert items["zero_mock"].status == "done"
    assert "G4 run newer" in items["zero_mock"].evidence
    assert items["ci_gates"].age == "2 h"


def test_newest_run_failing(sqlite_store):
    add_gate_run(sqlite_store, "older", NOW - dt.timedelta(days=3), PASSING)
    add_gate_run(sqlite_store, "newer", NOW - dt.timedelta(hours=2),
                 {**PASSING, "secrets": "FAIL", "sast": "ERROR"}, verdict="FAILED")

    items = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))

    assert items["no_secrets"].status == "failed"
    assert items["security_scan"].status == "failed"
    assert "sast ERROR" in items["security_scan"].evidence
    assert "secrets FAIL" in items["security_scan"].evidence
    assert "not passing: sast ERROR, secrets FAIL" in items["ci_gates"].evidence


def test_running_run_ignored(sqlite_store):
    add_gate_run(sqlite_store, "finished", NOW - dt.timedelta(hours=5), PASSING)
    add_gate_run(sqlite_store, "running", None, {**PASSING, "zero_mock": "FAIL"})

    items = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))

    assert items["zero_mock"].status == "done"
    assert "run finished" in items["ci_gates"].evidence


def test_other_version_ignored(sqlite_store):
    add_gate_run(sqlite_store, "run-1", NOW - dt.timedelta(hours=5), PASSING)

    items = by_item(deployment_checklist(sqlite_store, PROJECT, "1.3.0", "lite", now=NOW))

    assert items["ci_gates"].status == "missing"


def test_g3_run_fallback(sqlite_store):
    add_gate_run(sqlite_store, "g3-run", NOW - dt.timedelta(hours=1),
                 {"lint": "PASS", "tests": "PASS", "zero_mock": "PASS"}, gate="g3")

    items = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))

    assert items["ci_gates"].status == "done"
    assert "no G4 run yet, so this is the newest G3 run g3-run" in items["ci_gates"].evidence
    assert "tinysdlc-nb gate g4 --version 1.2.0" in items["ci_gates"].evidence
    assert items["zero_mock"].status == "done"
    assert items["security_scan"].status == "missing"
    assert items["migrations_reversible"].status == "missing"


# Sign-offs.

def test_g3_partly_signed(sqlite_store):
    approvals.record_signoff(sqlite_store, project=PROJECT, gate="g3", version=VERSION,
                             role="reviewer", signer="rita", approve=True, comment="",
                             agent_ids=set(DEFAULT_AGENT_IDS), tier=Tier.STANDARD)

    item = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "standard",
                                        now=NOW))["g3"]

    assert item.status == "missing"
    assert "approved by rita as reviewer" in item.evidence
    assert "missing Tester co-sign: tinysdlc-nb approve g3 --role tester" in item.evidence
    assert "--role ceo --by NAME --version 1.2.0 (or cpo, cto)" in item.evidence


def test_g3_rejected(sqlite_store):
    sign_g3(sqlite_store, tester_approves=False)

    item = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "lite", now=NOW))["g3"]

    assert item.status == "failed"
    assert "rejected by tom as tester (checked the diff)" in item.evidence


def test_g3_se4h_role_shown(sqlite_store):
    sign_g3(sqlite_store, tier=Tier.STANDARD)
    approvals.record_signoff(sqlite_store, project=PROJECT, gate="g3", version=VERSION,
                             role="cpo", signer="paula", approve=True, comment="",
                             agent_ids=set(DEFAULT_AGENT_IDS), tier=Tier.STANDARD)

    item = by_item(deployment_checklist(sqlite_store, PROJECT, VERSION, "standard",
                                        now=NOW))["g3"]

    assert item.status == "done"
    assert "approved by paula as cpo" in item.evidence


# Redaction, styling and the summary.

def test_frame_scrubs_secret(sqlite_store, tmp_path):
    add_evidence(sqlite_store, tmp_path, "staging_smoke", note=f"deployed with {GITHUB_TOKEN}")

    frame = checklist_frame(sqlite_store, PROJECT, VERSION, "lite", now=NOW)
    html = style_checklist(frame).to_html()

    staging = frame.set_index("item").loc["staging", "evidence"]
    assert GITHUB_TOKEN not in staging
    assert "[REDACTED:" in staging
    assert GITHUB_TOKEN not in frame.to_csv()
    assert GITHUB_TOKEN not in html


def test_style_escapes_html(sqlite_store, tmp_path):
    add_evidence(sqlite_store, tmp_path, "monitoring_configured", note="<b>alerts</b> on")

    html = style_checklist(checklist_frame(sqlite_store, PROJECT, VERSION, "lite",
                                           now=NOW)).to_html()

    assert "&lt;b&gt;alerts&lt;/b&gt; on" in html
    assert "<b>alerts</b>" not in html


def test_style_status_colours(sqlite_store, tmp_path):
    add_evidence(sqlite_store, tmp_path, "monitoring_configured")
    add_gate_run(sqlite_store, "run-1", NOW - dt.timedelta(hours=1),
                 {name: status for name, status in PASSING.items() if name != "migrations"})

    html = style_checklist(checklist_frame(sqlite_store, PROJECT, VERSION, "lite",
                                           now=NOW)).to_html()

    backgrounds = cell_backgrounds(html)
    status_column = COLUMNS.index("status")
    for name, status in (("g3", "missing"), ("monitoring", "done"),
                         ("migrations_reversible", "not applicable")):
        cell = f"row{ORDER.index(name)}_col{status_column}"
        assert backgrounds[cell] in STATUS_STYLES[status], name


def test_summary_counts(sqlite_store, tmp_path):
    add_evidence(sqlite_store, tmp_path, "monitoring_configured")
    add_gate_run(sqlite_store, "run-1", NOW - dt.timedelta(hours=1),
                 {name: status for name, status in PASSING.items() if name != "migrations"})

    frame = checklist_frame(sqlite_store, PROJECT, VERSION, "lite", now=NOW)

    assert checklist_summary(frame) == "5 of 9 done (1 not applicable)"


def test_summary_empty_store(sqlite_store):
    frame = checklist_frame(sqlite_store, PROJECT, VERSION, "lite", now=NOW)

    assert checklist_summary(frame) == "0 of 10 done"


# Input checks and ages.

def test_checklist_invalid_tier(sqlite_store):
    with pytest.raises(UsageError, match="tier 'gold' is invalid; expected one of lite"):
        deployment_checklist(sqlite_store, PROJECT, VERSION, "gold")


def test_checklist_empty_version(sqlite_store):
    with pytest.raises(UsageError, match="version is empty"):
        deployment_checklist(sqlite_store, PROJECT, " ", "lite")


@pytest.mark.parametrize(("elapsed", "expected"), [
    (dt.timedelta(seconds=45), "45 s"),
    (dt.timedelta(minutes=5, seconds=59), "5 min"),
    (dt.timedelta(hours=3, minutes=59), "3 h"),
    (dt.timedelta(days=2, hours=23), "2 d"),
    (dt.timedelta(hours=-3), "-3 h"),
])
def test_format_age_units(elapsed, expected):
    assert format_age(NOW - elapsed, NOW) == expected


def test_format_age_naive_time():
    assert format_age(NOW.replace(tzinfo=None) - dt.timedelta(hours=1), NOW) == "1 h"


# The notebook through papermill and a real kernel.

@pytest.mark.kernel
def test_notebook_shows_checklist(tmp_path):
    project = make_project(tmp_path)
    store = open_store(load_config(project).database_url)
    sign_g3(store)
    for item in EVIDENCE_ITEMS:
        add_evidence(store, tmp_path, item)
    store.close()

    execution = run_notebook(packaged_notebook("deployment_checklist"),
                             {"project_dir": str(project)}, cwd=project, cell_timeout_s=120)

    assert execution.completed, execution.message
    _parameters, *_injected, loaded, table, summary = code_cells(execution)
    assert "demo 1.2.0, tier lite" in output_texts(loaded, "stream")
    table_html = output_texts(table, "text/html")
    assert "approved by rita as reviewer" in table_html
    assert "tinysdlc-nb gate g4 --version 1.2.0" in table_html
    backgrounds = cell_backgrounds(table_html)
    status_column = COLUMNS.index("status")
    assert backgrounds[f"row0_col{status_column}"] in STATUS_STYLES["done"]
    assert backgrounds[f"row1_col{status_column}"] in STATUS_STYLES["missing"]
    assert "5 of 10 done" in output_texts(summary, "text/markdown")
