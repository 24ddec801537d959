"""The runbook format without a kernel: parsing, lint, parameters and the compiled notebook."""

from __future__ import annotations

from pathlib import Path

import pytest
from runbookkit import runbook_text

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.runbooks.compile import compile_runbook
from tinysdlc_nb.runbooks.document import parse_runbook
from tinysdlc_nb.runbooks.lint import lint_runbook
from tinysdlc_nb.runbooks.model import Phase
from tinysdlc_nb.runbooks.params import (
    environment_values,
    parse_cli_parameters,
    read_secrets,
)
from tinysdlc_nb.runbooks.shellvars import assigned_variables, referenced_variables
from tinysdlc_nb.runbooks.skeleton import skeleton


def problems_of(text: str) -> list[str]:
    runbook, problems = parse_runbook(text, Path("rb.md"))
    return [problem.render("rb.md") for problem in problems + lint_runbook(runbook)]


def errors_of(text: str) -> list[str]:
    return [line for line in problems_of(text) if ": error: " in line]


def test_parse_reads_steps_sections_and_expectations():
    text = runbook_text(["echo one", "echo two"], step_extra=["Expect: contains \"two\"",
                                                              "Expect: exit 3"])
    runbook, problems = parse_runbook(text)

    assert problems == []
    assert [step.command for step in runbook.steps] == ["echo one\n", "echo two\n"]
    assert runbook.steps[0].expect.contains == ("two",)
    assert runbook.steps[1].expect.exit_code == 3
    assert runbook.verification[0].phase is Phase.VERIFY
    assert runbook.rollback[0].command == "echo rolled back\n"
    assert runbook.prerequisites[0].check == "command bash"
    assert runbook.prerequisites[0].text == "bash is installed"
    assert "What to watch" in runbook.monitoring


def test_parse_reads_timeout_in_minutes():
    text = runbook_text(["sleep 1"], step_extra=["Timeout: 2m"])
    runbook, _ = parse_runbook(text)

    assert runbook.steps[0].timeout_s == 120


def test_parse_keeps_step_line_numbers():
    text = runbook_text(["echo a", "echo b"])
    runbook, _ = parse_runbook(text)
    lines = text.splitlines()

    assert lines[runbook.steps[1].line - 1].startswith("2. ")
    assert lines[runbook.steps[1].command_line - 1].strip() == "echo b"


def test_lint_clean_runbook_has_no_problems():
    assert problems_of(runbook_text(["echo \"$VERSION\""])) == []


def test_lint_missing_rollback_section():
    errors = errors_of(runbook_text(["echo hi"], rollback=None))

    assert any("no '## Rollback' section" in error for error in errors)


def test_lint_read_only_needs_no_rollback():
    text = runbook_text(["echo hi"], rollback=None, front="read_only: true")

    assert errors_of(text) == []


def test_lint_step_without_command_names_its_line():
    text = runbook_text(["echo hi"]).replace("## Rollback\n", "## Rollback\n1. Call the on-call "
                                            "engineer.\n2. Undo.\n", 1)
    text = text.replace("2. Undo.\n1. Step 1", "2. Undo.\n3. Step 1")
    runbook, _ = parse_runbook(text)
    errors = errors_of(text)
    line = text.splitlines().index("1. Call the on-call engineer.") + 1

    assert f"rb.md:{line}: error: rollback 1 ('Call the on-call engineer.') has no command; " \
           f"add a ```bash block, or move the text out of the numbered list" in errors
    assert len(runbook.rollback) == 3


def test_lint_undeclared_variable_with_line():
    text = runbook_text(["echo ok\necho \"$TARGET_HOST\""])
    line = text.splitlines().index("   echo \"$TARGET_HOST\"") + 1

    assert any(error.startswith(f"rb.md:{line}: error: step 1 uses $TARGET_HOST")
               for error in errors_of(text))


def test_lint_lower_case_variable_hints_upper_case():
    errors = errors_of(runbook_text(["echo $version"]))

    assert any("parameters reach commands in upper case ($VERSION)" in error for error in errors)


@pytest.mark.parametrize("command", [
    "echo '$NOT_EXPANDED'",
    "echo \"${OPTIONAL_VAR:-none}\"",
    "for HOST in a b; do echo $HOST; done",
    "COUNT=3; echo $COUNT",
    "read -r LINE < /etc/hostname; echo $LINE",
    "echo $HOME $PATH $RUNBOOK_DIR $RUNBOOK_RUN_ID",
    "cat <<'EOF'\n$LITERAL\nEOF",
    "echo \\$ESCAPED",
    "echo ok  # mentions $COMMENTED",
])
def test_lint_accepts_variables_that_are_not_undeclared(command):
    assert errors_of(runbook_text([command])) == []


def test_lint_two_bash_blocks_in_one_step():
    text = runbook_text(["echo one\n```\n   ```bash\necho two"])

    assert any("has 2 bash blocks" in error for error in errors_of(text))


def test_lint_unknown_prerequisite_check():
    errors = errors_of(runbook_text(["echo hi"], prerequisites="- [ ] G5 `gate g5`"))

    assert any("check `gate g5` is invalid" in error for error in errors)


def test_lint_gate_check_needs_version_parameter():
    text = runbook_text(["echo hi"], prerequisites="- [ ] G3 `gate g3`",
                        parameters="  port: {type: int, default: 80}")

    assert any("declare a 'version' parameter" in error for error in errors_of(text))


def test_lint_front_matter_typo_key():
    text = runbook_text(["echo hi"], front="rollback_target_s: 30\nparamters: {}")

    assert any("front matter key 'paramters' is unknown" in error for error in errors_of(text))


def test_lint_invalid_yaml_names_line():
    text = runbook_text(["echo hi"], front="rollback_target_s: [30")

    yaml_errors = [error for error in errors_of(text) if "not valid YAML" in error]

    assert yaml_errors
    assert yaml_errors[0].startswith("rb.md:")


def test_lint_secret_with_default_rejected():
    text = runbook_text(["echo hi"], parameters="  token: {type: str, secret: true, "
                                                "default: abc}")

    assert any("a secret has no default" in error for error in errors_of(text))


def test_lint_parameter_shadowing_path_rejected():
    text = runbook_text(["echo hi"], parameters="  path: {type: str, default: /tmp}")

    assert any("would set $PATH" in error for error in errors_of(text))


def test_lint_default_of_wrong_type():
    text = runbook_text(["echo hi"], parameters="  port: {type: int, default: eighty}")

    assert any("default 'eighty' is not a int" in error for error in errors_of(text))


def test_lint_fence_without_language():
    text = runbook_text(["echo hi"]).replace("```bash\n   echo hi", "```\n   echo hi", 1)

    assert any("code block without a language" in error for error in errors_of(text))


def test_skeleton_placeholders_are_lint_errors():
    errors = errors_of(skeleton("deploy-web"))

    assert errors
    assert all("placeholder" in error for error in errors)


def test_skeleton_filled_in_is_clean():
    text = skeleton("deploy-web").replace("[fill in", "(fill in")

    assert errors_of(text) == []


def test_skeleton_rejects_bad_name():
    with pytest.raises(UsageError, match="runbook name 'Deploy Web' is invalid"):
        skeleton("Deploy Web")


PARAMETERS = """  version: {type: str, required: true}
  port: {type: int, default: 8080}
  ratio: {type: float, default: 0.5}
  dry_run: {type: bool, default: false}
  hosts: {type: list, default: []}
  environment: {type: str, default: staging, choices: [staging, production]}
  api_token: {type: str, secret: true}"""


def parsed(parameters: str = PARAMETERS):
    runbook, problems = parse_runbook(runbook_text(["echo hi"], parameters=parameters))
    assert problems == []
    return runbook


def test_parameters_typed_from_cli():
    values = parse_cli_parameters(parsed(), ["version=1.4.0", "port=9000", "ratio=0.25",
                                             "dry_run=yes", "hosts=a, b"])

    assert values == {"version": "1.4.0", "port": 9000, "ratio": 0.25, "dry_run": True,
                      "hosts": ["a", "b"], "environment": "staging"}


def test_parameters_json_list():
    values = parse_cli_parameters(parsed(), ["version=1", 'hosts=["a,b", "c"]'])

    assert values["hosts"] == ["a,b", "c"]


@pytest.mark.parametrize(("pair", "message"), [
    ("port=80.5", "parameter 'port' = '80.5' is invalid; expected an integer"),
    ("port=", "parameter 'port' = '' is invalid; expected an integer"),
    ("ratio=nan", "parameter 'ratio' = 'nan' is invalid; expected a number"),
    ("dry_run=maybe", "parameter 'dry_run' = 'maybe' is invalid; expected true or false"),
    ("environment=prod", "expected one of staging, production"),
    ("colour=red", "parameter 'colour' is not declared by runbook 'sample'"),
    ("api_token=abc", "set the environment variable API_TOKEN instead"),
    ("novalue", "parameter 'novalue' is invalid; write -p NAME=VALUE"),
    ("hosts=[1", "parameter 'hosts'"),
])
def test_parameters_rejected_with_reason(pair, message):
    with pytest.raises(UsageError) as raised:
        parse_cli_parameters(parsed(), ["version=1", pair])

    assert message in str(raised.value)


def test_parameters_missing_required():
    with pytest.raises(UsageError, match="parameter 'version' is required; pass -p "
                                         "version=VALUE"):
        parse_cli_parameters(parsed(), [])


def test_parameters_given_twice():
    with pytest.raises(UsageError, match="given twice"):
        parse_cli_parameters(parsed(), ["version=1", "version=2"])


def test_secret_read_from_environment():
    assert read_secrets(parsed(), {"API_TOKEN": "s3cr3t-value"}) == {"api_token": "s3cr3t-value"}


def test_secret_missing_names_variable():
    with pytest.raises(UsageError, match="set the environment variable API_TOKEN"):
        read_secrets(parsed(), {})


def test_environment_values_format_each_type():
    values = parse_cli_parameters(parsed(), ["version=1.0\"; touch /tmp/x; echo \"",
                                             "hosts=a,b", "dry_run=1"])
    environment = environment_values(parsed(), values, {"api_token": "tok-12345"})

    assert environment["VERSION"] == "1.0\"; touch /tmp/x; echo \""
    assert environment["HOSTS"] == "a\nb"
    assert environment["DRY_RUN"] == "true"
    assert environment["PORT"] == "8080"
    assert environment["API_TOKEN"] == "tok-12345"


def test_shellvars_reports_offsets():
    references = referenced_variables("echo a\necho \"$B\" ${C}")

    assert [(reference.name, reference.offset) for reference in references] == [("B", 1),
                                                                                 ("C", 1)]


def test_shellvars_assignments():
    assert assigned_variables("export A=1\nlocal B\nprintf -v C x\nmapfile -t D < f") == \
        {"A", "B", "C", "D"}


def test_compile_cells_and_tags():
    runbook, _ = parse_runbook(runbook_text(["echo \"$VERSION\""]), Path("/tmp/rb.md"))
    notebook = compile_runbook(runbook)
    sources = [cell.source for cell in notebook.cells]
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]

    assert len(tagged) == 1
    assert "version = None  # required" in tagged[0].source
    steps = [source for source in sources if source.startswith("%%step 1 ")]

    assert len(steps) == 1
    assert steps[0].endswith('echo "$VERSION"')
    assert any(source.startswith("%%rollback 1 ") for source in sources)
    assert any(source.startswith("%%verify --after-rollback 1 ") for source in sources)
    assert sources[-1] == "rb.finish()"


def test_compile_never_writes_parameter_values_into_commands():
    runbook, _ = parse_runbook(runbook_text(["echo \"$VERSION\""]))
    notebook = compile_runbook(runbook)
    step = next(cell for cell in notebook.cells if cell.source.startswith("%%step"))

    assert "$VERSION" in step.source


def test_lint_secret_written_in_runbook():
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    errors = errors_of(runbook_text([f"curl -H 'Authorization: token {token}' x"]))

    assert any("is written in the runbook; declare a parameter with 'secret: true'" in error
               for error in errors)
