"""`tinysdlc-nb runbook run` through real kernels: the hard cases of running a runbook."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from runbookkit import (
    run_cli,
    run_json,
    runbook_text,
    steps_by_key,
    stored_runs,
    write_runbook,
)

from tinysdlc_nb import approvals
from tinysdlc_nb.config import load_config
from tinysdlc_nb.execute import run_notebook
from tinysdlc_nb.runbooks.compile import write_notebook
from tinysdlc_nb.runbooks.document import load_runbook
from tinysdlc_nb.store import open_store

pytestmark = pytest.mark.kernel


def test_run_passes_and_records_steps(project, capsys):
    write_runbook(project, runbook_text(["echo \"deploying $VERSION\"", "echo second"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1.2.0")
    steps = steps_by_key(run)

    assert code == 0
    assert run["status"] == "passed"
    assert steps[("step", 1)]["status"] == "passed"
    assert "deploying 1.2.0" in steps[("step", 1)]["output_tail"]
    assert steps[("rollback", 1)]["status"] == "not_needed"
    assert Path(run["notebook_path"]).is_file()
    assert Path(steps[("step", 1)]["log_path"]).read_text() == "deploying 1.2.0\n"


def test_run_wrong_type_stores_nothing(project, capsys):
    write_runbook(project, runbook_text(["echo hi"], parameters="  version: {type: str, "
                                        "required: true}\n  port: {type: int, default: 80}"))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1", "-p", "port=eighty")

    assert code == 2
    assert "parameter 'port' = 'eighty' is invalid; expected an integer" in err
    assert stored_runs(project) == []


def test_run_missing_parameter_exits_2(project, capsys):
    write_runbook(project, runbook_text(["echo hi"]))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project))

    assert code == 2
    assert "parameter 'version' is required; pass -p version=VALUE" in err


def test_run_shell_metacharacters_are_inert(project, capsys):
    marker = project / "injected"
    write_runbook(project, runbook_text(["echo \"version=$VERSION\""]))
    value = f'1.0"; touch {marker}; echo "'

    code, run = run_json(capsys, project, "sample", "-p", f"version={value}")

    assert code == 0
    assert not marker.exists()
    assert f"version={value}" in steps_by_key(run)[("step", 1)]["output_tail"]


def test_run_failing_middle_step_rolls_back(project, capsys):
    later = project / "later-step-ran"
    rolled = project / "rolled-back"
    write_runbook(project, runbook_text(
        ["echo first", "echo broken >&2; exit 7", f"touch {later}"],
        rollback=[f"touch {rolled}"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    steps = steps_by_key(run)

    assert code == 1
    assert run["status"] == "failed"
    assert steps[("step", 2)]["status"] == "failed"
    assert steps[("step", 2)]["exit_code"] == 7
    assert steps[("step", 3)]["status"] == "skipped"
    assert not later.exists()
    assert rolled.exists()
    assert steps[("verify_after_rollback", 1)]["status"] == "passed"


def test_run_step_past_timeout_is_killed(project, capsys):
    write_runbook(project, runbook_text(["sleep 30", "echo never"],
                                        step_extra=["Timeout: 1s", ""]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    steps = steps_by_key(run)

    assert code == 1
    assert steps[("step", 1)]["status"] == "timed_out"
    assert steps[("step", 1)]["duration_s"] < 10
    assert steps[("step", 2)]["status"] == "skipped"
    assert steps[("rollback", 1)]["status"] == "passed"


def test_run_failing_rollback_exits_4(project, capsys):
    write_runbook(project, runbook_text(["exit 1"], rollback=["echo cannot undo; exit 2",
                                                              "echo second rollback"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    steps = steps_by_key(run)

    assert code == 4
    assert run["status"] == "rollback_failed"
    assert steps[("rollback", 1)]["status"] == "failed"
    assert steps[("rollback", 2)]["status"] == "skipped"
    assert "the rollback failed" in run["message"]


def test_run_fifty_megabytes_of_output(project, capsys):
    write_runbook(project, runbook_text(
        ["head -c 50000000 /dev/zero | tr '\\0' 'x' | fold -w 99"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    step = steps_by_key(run)[("step", 1)]

    assert code == 0
    # fold ends every full line of 99 with a newline; the last, partial line has none.
    assert step["output_bytes"] == 50_000_000 + 50_000_000 // 99
    assert Path(step["log_path"]).stat().st_size == step["output_bytes"]
    assert len(step["output_tail"]) <= 8000
    assert Path(run["notebook_path"]).stat().st_size < 200_000


def test_run_secret_never_written(project, capsys, monkeypatch):
    secret = "lic-7Hq2-Zx91-Pw3m"
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    monkeypatch.setenv("LICENSE_CODE", secret)
    (project / "token.txt").write_text(token)
    write_runbook(project, runbook_text(
        ["echo \"licence $LICENSE_CODE\"; echo \"token $(cat token.txt)\""],
        parameters="  version: {type: str, required: true}\n"
                   "  license_code: {type: str, secret: true}"))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    step = steps_by_key(run)[("step", 1)]
    home = Path(load_config(project).home)
    written = "".join(path.read_text(errors="replace") for path in home.rglob("*")
                      if path.is_file() and path.suffix in (".ipynb", ".log"))

    assert code == 0
    assert "licence [REDACTED:" in step["output_tail"]
    assert secret not in written
    assert token not in written
    assert secret not in json.dumps(run)
    assert secret not in (home / "state.db").read_bytes().decode("latin-1")


def test_run_secret_given_with_p_rejected(project, capsys):
    write_runbook(project, runbook_text(
        ["echo hi"], parameters="  version: {type: str, required: true}\n"
                                "  license_code: {type: str, secret: true}"))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1", "-p", "license_code=abcd1234")

    assert code == 2
    assert "set the environment variable LICENSE_CODE instead" in err


def test_run_unicode_output(project, capsys):
    text = "Grüße ✓ 日本語 🚀 é"
    write_runbook(project, runbook_text([f"echo '{text}'"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    notebook = Path(run["notebook_path"]).read_text(encoding="utf-8")

    assert code == 0
    assert text in steps_by_key(run)[("step", 1)]["output_tail"]
    assert text in notebook


def test_run_without_rollback_section_refused(project, capsys):
    write_runbook(project, runbook_text(["echo hi"], rollback=None))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1")

    assert code == 2
    assert "has no rollback section; add one, or pass --no-rollback" in err
    assert stored_runs(project) == []


def test_run_without_rollback_section_with_flag(project, capsys):
    write_runbook(project, runbook_text(["echo hi", "exit 1"], rollback=None))

    code, run = run_json(capsys, project, "sample", "-p", "version=1", "--no-rollback")

    assert code == 1
    assert run["no_rollback"] is True
    assert run["status"] == "failed"
    assert "no rollback ran (--no-rollback)" in run["message"]


def test_run_prerequisite_gate_blocks_until_signed(project, capsys):
    write_runbook(project, runbook_text(["echo deployed"],
                                        prerequisites="- [ ] G3 is confirmed: `gate g3`"))

    code, run = run_json(capsys, project, "sample", "-p", "version=2.0.0")

    assert code == 1
    assert run["status"] == "blocked"
    assert "G3 2.0.0 of project 'project' is not confirmed" in run["message"]
    assert "tinysdlc-nb approve g3 --role ROLE" in run["message"]
    assert steps_by_key(run)[("step", 1)]["status"] == "skipped"

    config = load_config(project)
    store = open_store(config.database_url)
    for role, person in (("reviewer", "Ana Lima"), ("tester", "Tom Berg")):
        approvals.record_signoff(store, project=config.name, gate="g3", version="2.0.0",
                                 role=role, signer=person, approve=True, comment="ok",
                                 agent_ids=config.agent_ids(), tier=config.tier)
    store.close()

    code, run = run_json(capsys, project, "sample", "-p", "version=2.0.0")

    assert code == 0
    assert run["status"] == "passed"


def test_rehearsal_records_rollback_tested(project, capsys):
    write_runbook(project, runbook_text(["echo up"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=3.1.0",
                         "--rehearse-rollback")
    steps = steps_by_key(run)
    config = load_config(project)
    store = open_store(config.database_url)
    evidence = approvals.latest_evidence(store, config.name, "g4", "3.1.0")
    store.close()

    assert code == 0
    assert steps[("rollback", 1)]["status"] == "passed"
    assert steps[("verify_after_rollback", 1)]["status"] == "passed"
    assert 0 < run["rollback_healthy_s"] < 30
    assert evidence["rollback_tested"]["file_name"] == "sample.ipynb"
    assert run["notebook_path"] in evidence["rollback_tested"]["note"]
    assert evidence["runbook_documented"]["file_name"] == "sample.md"
    assert [item["item"] for item in run["evidence"]] == ["rollback_tested",
                                                          "runbook_documented"]


def test_rehearsal_slower_than_target_records_nothing(project, capsys):
    write_runbook(project, runbook_text(["echo up"], rollback=["sleep 0.5"],
                                        front="rollback_target_s: 0.1"))

    code, run = run_json(capsys, project, "sample", "-p", "version=3.2.0",
                         "--rehearse-rollback")

    assert code == 1
    assert run["status"] == "slow_rollback"
    assert "over the 0.1 s target" in run["message"]
    assert "rollback_tested" not in [item["item"] for item in run["evidence"]]


def test_staging_run_records_staging_smoke(project, capsys):
    write_runbook(project, runbook_text(
        ["echo \"on $ENVIRONMENT\""],
        parameters="  version: {type: str, required: true}\n"
                   "  environment: {type: str, default: staging}"))

    code, run = run_json(capsys, project, "sample", "-p", "version=4.0.0")

    assert code == 0
    assert run["environment"] == "staging"
    assert "staging_smoke" in [item["item"] for item in run["evidence"]]


def test_kernel_death_is_an_error_not_a_pass(project, capsys):
    write_runbook(project, runbook_text(["kill -9 $PPID; sleep 5"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")

    assert code == 4
    assert run["status"] == "error"
    assert "the rollback may not have run" in run["message"]


def test_history_lists_runs_with_steps(project, capsys):
    write_runbook(project, runbook_text(["echo hi"]))
    run_json(capsys, project, "sample", "-p", "version=1")

    code, out, _ = run_cli(capsys, "runbook", "history", "sample", "--project", str(project),
                           "--json")
    runs = json.loads(out)
    code_text, text, _ = run_cli(capsys, "runbook", "history", "--project", str(project))

    assert code == 0
    assert [step["phase"] for step in runs[0]["steps"]] == ["step", "verify", "rollback",
                                                             "verify_after_rollback"]
    assert code_text == 0
    assert "run 1  sample 1  unspecified  run  passed (exit 0)" in text


def test_compiled_notebook_runs_by_hand(project):
    path = write_runbook(project, runbook_text(["echo by hand"]))
    notebook = write_notebook(load_runbook(path), project / "sample.ipynb")

    execution = run_notebook(notebook, {"version": "5.0", "runbook_project_dir": str(project)},
                             cwd=project, cell_timeout_s=120)
    runs = stored_runs(project)

    assert execution.completed
    assert runs[0]["status"] == "passed"
    assert runs[0]["version"] == "5.0"
    assert "Evidence for the G4 gate is recorded by" in json.dumps(
        nbformat.writes(execution.notebook))


@pytest.mark.postgres
def test_run_on_postgresql(project, capsys, pg_url, monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_DATABASE_URL", pg_url)
    write_runbook(project, runbook_text(["echo shared", "exit 1"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=6.0")

    assert code == 1
    assert [step["status"] for step in run["steps"]] == ["passed", "failed", "skipped",
                                                          "passed", "passed"]


def test_sigterm_to_kernel_stops_run(project, capsys):
    rolled = project / "rolled-back"
    write_runbook(project, runbook_text(["kill -TERM $PPID; sleep 20; echo after", "echo two"],
                                        rollback=[f"touch {rolled}"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    steps = steps_by_key(run)

    assert code == 4
    assert run["status"] == "error"
    assert "stopped by SIGTERM" in run["message"]
    assert steps[("step", 1)]["duration_s"] < 15
    assert steps[("step", 2)]["status"] == "skipped"
    assert steps[("rollback", 1)]["status"] == "skipped"
    assert not rolled.exists()
