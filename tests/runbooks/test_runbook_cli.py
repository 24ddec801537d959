"""The runbook commands that start no kernel: new, lint, compile and history."""

from __future__ import annotations

import json

import nbformat
from runbookkit import run_cli, runbook_text, write_runbook


def test_new_writes_skeleton_under_runbooks(project, capsys):
    code, out, _ = run_cli(capsys, "runbook", "new", "deploy-web", "--project", str(project))

    assert code == 0
    assert (project / "runbooks" / "deploy-web.md").is_file()
    assert "Replace each '[fill in' placeholder" in out


def test_new_keeps_existing_file(project, capsys):
    run_cli(capsys, "runbook", "new", "deploy-web", "--project", str(project))

    code, _, err = run_cli(capsys, "runbook", "new", "deploy-web", "--project", str(project))

    assert code == 2
    assert "already exists; pass --force" in err


def test_lint_exit_codes(project, capsys):
    clean = write_runbook(project, runbook_text(["echo hi"]), name="clean")
    broken = write_runbook(project, runbook_text(["echo $UNSET"], rollback=None),
                           name="broken")

    clean_code, _, _ = run_cli(capsys, "runbook", "lint", str(clean))
    broken_code, out, _ = run_cli(capsys, "runbook", "lint", str(broken))

    assert clean_code == 0
    assert broken_code == 1
    assert f"{broken}:" in out
    assert "uses $UNSET, which is not declared" in out


def test_lint_json(project, capsys):
    broken = write_runbook(project, runbook_text(["echo hi"], rollback=None))

    code, out, _ = run_cli(capsys, "runbook", "lint", str(broken), "--json")
    report = json.loads(out)

    assert code == 1
    assert report[0]["ok"] is False
    assert report[0]["problems"][0]["severity"] == "error"


def test_lint_missing_file_exits_2(project, capsys):
    code, _, err = run_cli(capsys, "runbook", "lint", str(project / "nope.md"))

    assert code == 2
    assert "not found" in err


def test_compile_writes_notebook_with_project_path(project, capsys):
    path = write_runbook(project, runbook_text(["echo hi"]))

    code, out, _ = run_cli(capsys, "runbook", "compile", str(path), "--project", str(project))
    notebook = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    parameters = next(cell for cell in notebook.cells
                      if "parameters" in cell.metadata.get("tags", []))

    assert code == 0
    assert "1 step(s), 1 verification(s), 1 rollback step(s)" in out
    assert f"runbook_project_dir = {str(project.resolve())!r}" in parameters.source


def test_compile_refuses_lint_errors(project, capsys):
    path = write_runbook(project, runbook_text(["echo $UNSET"]))

    code, _, err = run_cli(capsys, "runbook", "compile", str(path))

    assert code == 2
    assert "has 1 error(s)" in err
    assert not path.with_suffix(".ipynb").exists()


def test_run_unknown_name_lists_known(project, capsys):
    write_runbook(project, runbook_text(["echo hi"]))

    code, _, err = run_cli(capsys, "runbook", "run", "nope", "--project", str(project))

    assert code == 2
    assert "runbook 'nope' not found" in err
    assert "sample" in err


def test_run_agent_operator_rejected(project, capsys):
    write_runbook(project, runbook_text(["echo hi"]))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1", "--by", "claude-bot")

    assert code == 2
    assert "agents never sign off" in err


def test_rehearsal_needs_verification(project, capsys):
    write_runbook(project, runbook_text(["echo hi"], verification=None))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1", "--rehearse-rollback", "--by", "Dana Reyes")

    assert code == 2
    assert "has no '## Verification' section" in err


def test_history_empty(project, capsys):
    code, out, _ = run_cli(capsys, "runbook", "history", "--project", str(project))

    assert code == 0
    assert out == "No runbook runs recorded.\n"
