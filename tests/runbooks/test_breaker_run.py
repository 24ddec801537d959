"""Hard cases of `tinysdlc-nb runbook run` through real kernels.

Each test states the behaviour the runbook contract requires, so a failing test here is a
defect of the runbook code, not of the test. Each run starts a kernel (about 3 s), so the
odd steps share one run through the module-scoped ``hard_run`` fixture.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runbookkit import (
    run_cli,
    run_json,
    runbook_text,
    steps_by_key,
    stored_runs,
    write_runbook,
)

from tinysdlc_nb import checklist
from tinysdlc_nb.cli import main
from tinysdlc_nb.config import load_config
from tinysdlc_nb.store import open_store

pytestmark = pytest.mark.kernel

CLI = [sys.executable, "-m", "tinysdlc_nb.cli"]
LICENSE = "lic-7Hq2-Zx91-Pw3m"


def evidence_items(run: dict) -> list[str]:
    return [item["item"] for item in run["evidence"]]


def written_text(project: Path, skip_suffixes: tuple[str, ...] = ()) -> str:
    """Return every file under the project's home as Latin-1 text, the store included."""
    home = Path(load_config(project).home)
    return "".join(path.read_bytes().decode("latin-1") for path in sorted(home.rglob("*"))
                   if path.is_file() and path.suffix not in skip_suffixes)


def titled(text: str, title: str) -> str:
    return text.replace("Step 1 does its part.", title, 1)


# One run of odd steps, shared by the tests below it. Nine steps at most, because
# runbookkit indents blocks by three spaces, which is too few under "10. ".
HARD_STEPS = [
    ("cat; echo stdin-done", ""),
    ("exec >&- 2>&-; sleep 1; touch closed-ran", ""),
    ("printf 'bad \\xff\\xfe \\xc3\\x28 end\\n'; printf 'a\\0b\\n'", ""),
    ("head -c 5000000 /dev/zero | tr '\\0' 'y'", ""),
    ("sleep 8 &", ""),
    ("cd /tmp; export LEAK=1; LEAKY=2", ""),
    ('echo "pwd=$PWD leak=${LEAK:-unset} leaky=${LEAKY:-unset}"', ""),
    ("exit 255", "Expect: exit 255"),
    ("kill -9 $$", ""),
]


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hard") / "project"
    folder.mkdir()
    text = runbook_text([command for command, _ in HARD_STEPS],
                        step_extra=[extra for _, extra in HARD_STEPS])
    write_runbook(folder, text)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYSDLC_NB_HOME", str(folder.parent / "home"))
        patch.delenv("TINYSDLC_NB_DATABASE_URL", raising=False)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["runbook", "run", "sample", "--project", str(folder), "--json",
                         "--by", "Dana Reyes", "-p", "version=1"])
    assert out.getvalue(), f"no JSON printed (exit {code}); stderr: {err.getvalue()}"
    return folder, code, json.loads(out.getvalue())


def hard_step(hard_run, number: int) -> dict:
    return steps_by_key(hard_run[2])[("step", number)]


def test_hard_stdin_step_ends(hard_run):
    step = hard_step(hard_run, 1)

    assert step["status"] == "passed"
    assert "stdin-done" in step["output_tail"]


def test_hard_closed_output_step_waits(hard_run):
    step = hard_step(hard_run, 2)

    assert step["status"] == "passed"
    assert step["duration_s"] >= 1
    assert (hard_run[0] / "closed-ran").exists()


def test_hard_invalid_utf8_replaced(hard_run):
    step = hard_step(hard_run, 3)

    assert step["status"] == "passed"
    assert "bad \ufffd\ufffd \ufffd( end" in step["output_tail"]


def test_hard_five_megabyte_line(hard_run):
    step = hard_step(hard_run, 4)

    assert step["status"] == "passed"
    assert step["output_bytes"] == 5_000_000
    assert Path(step["log_path"]).stat().st_size == 5_000_000
    assert len(step["output_tail"]) <= 8000


def test_hard_background_holder_released(hard_run):
    step = hard_step(hard_run, 5)

    assert step["status"] == "passed"
    assert step["duration_s"] < 5


def test_hard_nul_byte_recorded(hard_run):
    # The store shows NUL as the text \x00, the same on SQLite and PostgreSQL.
    assert "a\\x00b\n" in hard_step(hard_run, 3)["output_tail"]


def test_hard_shell_state_not_leaked(hard_run):
    step = hard_step(hard_run, 7)

    assert f"pwd={hard_run[0].resolve()} leak=unset leaky=unset" in step["output_tail"]


def test_hard_expected_exit_255(hard_run):
    assert hard_step(hard_run, 8)["status"] == "passed"


def test_hard_signal_kill_fails_run(hard_run):
    _, code, run = hard_run

    assert hard_step(hard_run, 9)["status"] == "failed"
    assert run["status"] == "failed"
    assert code == 1
    assert steps_by_key(run)[("rollback", 1)]["status"] == "passed"


def test_hard_notebook_stays_small(hard_run):
    assert Path(hard_run[2]["notebook_path"]).stat().st_size < 200_000


# The compiled %%step line.

def test_expect_dash_text_passes(project, capsys):
    write_runbook(project, runbook_text(["printf -- '-rw-------\\n'"],
                                        step_extra=['Expect: contains "-rw-------"']))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    steps = steps_by_key(run)

    assert ("step", 1) in steps, run["message"]
    assert steps[("step", 1)]["status"] == "passed"
    assert code == 0


def test_braces_in_title_and_expect_kept(project, capsys):
    title = "Print {version} literally"
    text = runbook_text(["echo '{version}'"], step_extra=['Expect: contains "{version}"'])
    write_runbook(project, titled(text, title))

    code, run = run_json(capsys, project, "sample", "-p", "version=1.0")
    step = steps_by_key(run)[("step", 1)]

    assert step["title"] == title
    assert step["status"] == "passed"
    assert code == 0


def test_step_cell_crash_stops_later_steps(project, capsys):
    # Step 1 puts a folder where step 2's log file goes, so step 2's cell raises.
    later = project / "later-step-ran"
    rolled = project / "rolled-back"
    write_runbook(project, runbook_text(
        ['mkdir "$RUNBOOK_LOG_DIR/step-02.log"', "echo two", f"touch {later}"],
        rollback=[f"touch {rolled}"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")

    assert not later.exists()
    assert rolled.exists()
    assert run["status"] == "failed"
    assert code == 1


# Parameters and timeouts.

def test_huge_value_rejected_before_run(project, capsys):
    write_runbook(project, runbook_text(['echo "${#VERSION}"']))

    code, out, _ = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=" + "x" * 200_000, "--by", "Dana Reyes")

    assert code == 2, out[-600:]
    assert stored_runs(project) == []


def test_very_long_timeout_runs(project, capsys):
    write_runbook(project, runbook_text(["echo ok"], step_extra=["Timeout: 100000000m"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")

    assert code == 0, run["message"]


def test_read_only_rehearsal_without_target(project, capsys):
    # read_only runbooks need no rollback_target_s, yet this one has a rollback to rehearse.
    write_runbook(project, runbook_text(["echo up"], front="read_only: true"))

    code, out, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                             "-p", "version=1", "--rehearse-rollback", "--by", "Dana Reyes")

    assert code in (0, 2), out + err


def test_read_only_failure_message(project, capsys):
    # The run had no --no-rollback option, so its message must not name one.
    write_runbook(project, runbook_text(["exit 3"], rollback=None, front="read_only: true"))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")

    assert code == 1
    assert run["status"] == "failed"
    assert "--no-rollback" not in run["message"]


# Secrets.

def test_short_secret_not_written(project, capsys, monkeypatch):
    monkeypatch.setenv("PIN_CODE", "Q7z")
    write_runbook(project, runbook_text(
        ['echo "pin=$PIN_CODE"'], parameters="  version: {type: str, required: true}\n"
                                             "  pin_code: {type: str, secret: true}"))

    _, out, _ = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                        "-p", "version=1", "--by", "Dana Reyes", "--json")

    assert "pin=Q7z" not in written_text(project)
    assert "pin=Q7z" not in out


def test_secret_in_title_and_expect(project, capsys, monkeypatch):
    monkeypatch.setenv("LICENSE_CODE", LICENSE)
    text = runbook_text(['echo "licence $LICENSE_CODE"'],
                        parameters="  version: {type: str, required: true}\n"
                                   "  license_code: {type: str, secret: true}",
                        step_extra=[f'Expect: contains "{LICENSE}"'])
    write_runbook(project, titled(text, f"Check {LICENSE} is active"))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")

    assert code == 0
    assert LICENSE not in json.dumps(run)
    # The runbook itself names the value, so its evidence copy (.md) is left out.
    assert LICENSE not in written_text(project, skip_suffixes=(".md",))


# Evidence and the G4 checklist.

def test_no_rollback_run_not_documented(project, capsys):
    # A runbook without a Rollback section has a lint error, so it is not lint-clean.
    write_runbook(project, runbook_text(["echo hi"], rollback=None))

    code, run = run_json(capsys, project, "sample", "-p", "version=1", "--no-rollback")

    assert code == 0
    assert "runbook_documented" not in evidence_items(run)


def test_documented_once_and_checklist_done(project, capsys):
    write_runbook(project, runbook_text(
        ["echo \"on $ENVIRONMENT\""], parameters="  version: {type: str, required: true}\n"
                                                 "  environment: {type: str, default: staging}"))

    first_code, first = run_json(capsys, project, "sample", "-p", "version=7.0.0")
    second_code, second = run_json(capsys, project, "sample", "-p", "version=7.0.0")
    config = load_config(project)
    store = open_store(config.database_url)
    try:
        items = {item.item: item for item in
                 checklist.deployment_checklist(store, config.name, "7.0.0", config.tier)}
    finally:
        store.close()

    assert (first_code, second_code) == (0, 0)
    assert evidence_items(first) == ["staging_smoke", "runbook_documented"]
    assert evidence_items(second) == ["staging_smoke"]
    assert items["staging"].status == checklist.DONE
    assert f"run {second['id']}" in items["staging"].evidence


def test_crlf_runbook_evidence_digest(project, capsys):
    path = write_runbook(project, runbook_text(["echo crlf"]))
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))

    code, run = run_json(capsys, project, "sample", "-p", "version=8.0")
    documented = next(item for item in run["evidence"] if item["item"] == "runbook_documented")

    assert code == 0
    assert "crlf" in steps_by_key(run)[("step", 1)]["output_tail"]
    assert documented["file_sha256"][:12] in documented["note"]


# Two runs at once, and a run stopped with SIGTERM.

def test_two_runs_at_once(project):
    write_runbook(project, runbook_text(['sleep 2; echo "run $RUNBOOK_RUN_ID"']))
    argv = [*CLI, "runbook", "run", "sample", "--project", str(project), "-p", "version=1",
            "--by", "Dana Reyes"]

    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    results = [child.communicate(timeout=300) for child in children]
    runs = stored_runs(project)

    assert [child.returncode for child in children] == [0, 0], results
    assert sorted(run["id"] for run in runs) == [1, 2]
    assert [run["status"] for run in runs] == ["passed", "passed"]
    for run in runs:
        assert f"run {run['id']}" in steps_by_key(run)[("step", 1)]["output_tail"]


def test_sigterm_records_error(project):
    pid_file = project / "step.pid"
    write_runbook(project, runbook_text(["echo $$ > step.pid; sleep 30"]))
    child = subprocess.Popen([*CLI, "runbook", "run", "sample", "--project", str(project),
                              "-p", "version=1", "--by", "Dana Reyes"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    runs = stored_runs(project)

    assert child.returncode != 0
    assert runs[0]["status"] == "error"
    assert "interrupted" in runs[0]["message"]


@pytest.mark.postgres
def test_nul_output_on_postgresql(project, capsys, pg_url, monkeypatch):
    # PostgreSQL text columns reject U+0000, which SQLite stores.
    monkeypatch.setenv("TINYSDLC_NB_DATABASE_URL", pg_url)
    write_runbook(project, runbook_text(["printf 'a\\0b\\n'"]))

    code, run = run_json(capsys, project, "sample", "-p", "version=1")
    steps = steps_by_key(run)

    assert ("step", 1) in steps, run["message"]
    assert steps[("step", 1)]["status"] == "passed"
    assert code == 0
