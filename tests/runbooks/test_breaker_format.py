"""Hard cases of the runbook format without a kernel: parsing, lint, compile and parameters.

Each test states the behaviour the format contract requires, so a failing test here is a
defect of the runbook code, not of the test.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest
from runbookkit import run_cli, runbook_text, write_runbook

from tinysdlc_nb.config import load_config
from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.runbooks.compile import compile_runbook
from tinysdlc_nb.runbooks.document import parse_runbook, read_runbook, runbook_sha256
from tinysdlc_nb.runbooks.lint import lint_runbook
from tinysdlc_nb.runbooks.model import Phase
from tinysdlc_nb.runbooks.params import parse_cli_parameters
from tinysdlc_nb.runbooks.records import list_runs
from tinysdlc_nb.runbooks.session import _magic_parser
from tinysdlc_nb.store import open_store

BASE = runbook_text(["echo one"])
STEP_BLOCK = "1. Step 1 does its part.\n   ```bash\n   echo one\n   ```\n"


def read(text: str):
    runbook, _ = parse_runbook(text, Path("rb.md"))
    return runbook


def errors_of(text: str) -> list[str]:
    runbook, problems = parse_runbook(text, Path("rb.md"))
    return [problem.render("rb.md") for problem in problems + lint_runbook(runbook)
            if problem.severity == "error"]


def stored_runs(project: Path) -> list[dict]:
    store = open_store(load_config(project).database_url)
    try:
        return list_runs(store)
    finally:
        store.close()


def with_parameter(line: str, command: str = "echo one") -> str:
    return runbook_text([command], parameters=f"  version: {{type: str, required: true}}\n"
                                              f"  {line}")


def magic_arguments(runbook, phase: Phase = Phase.STEP):
    """Parse the first compiled ``%%step`` line the way the kernel's cell magic does."""
    notebook = compile_runbook(runbook)
    magic = f"%%{phase.value} "
    source = next(cell.source for cell in notebook.cells if cell.source.startswith(magic))
    line = source.partition("\n")[0][len(magic):]
    return _magic_parser(phase).parse_args(shlex.split(line))


# Parsing: line endings, encodings, fences and headings.

def test_crlf_steps_read():
    text = BASE.replace("\n", "\r\n")

    assert errors_of(text) == []
    assert [step.command for step in read(text).steps] == ["echo one\n"]


@pytest.mark.parametrize("encode", [
    lambda text: text.encode("utf-8"),
    lambda text: text.replace("\n", "\r\n").encode("utf-8"),
    lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
], ids=["lf", "crlf", "bom"])
def test_sha256_matches_file_bytes(tmp_path, encode):
    # runbook_documented evidence quotes this digest beside the file it keeps.
    path = tmp_path / "sample.md"
    path.write_bytes(encode(BASE))
    runbook, problems = read_runbook(path)

    assert problems == []
    assert runbook_sha256(runbook) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bom_file_reads_clean(tmp_path):
    path = tmp_path / "sample.md"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    runbook, problems = read_runbook(path)

    assert problems == []
    assert runbook.name == "sample"


def test_tab_indented_block_is_command():
    text = BASE.replace(STEP_BLOCK, "1. Step 1 does its part.\n\t```bash\n\techo one\n\t```\n")

    assert errors_of(text) == []
    assert read(text).steps[0].command == "echo one\n"


@pytest.mark.parametrize("opening", ["~~~bash", "```bash title=\"x\"", "```Shell", "```sh"])
def test_fence_forms_are_commands(opening):
    closing = "~~~" if opening.startswith("~") else "```"
    block = f"1. Step 1 does its part.\n   {opening}\n   echo one\n   {closing}\n"
    text = BASE.replace(STEP_BLOCK, block)

    assert errors_of(text) == []
    assert read(text).steps[0].command == "echo one\n"


def test_nested_bullet_block_is_command():
    block = "1. Step 1 does its part.\n   - a note\n\n     ```bash\n     echo one\n     ```\n"
    text = BASE.replace(STEP_BLOCK, block)

    assert errors_of(text) == []
    assert read(text).steps[0].command == "echo one\n"


def test_heading_variants_recognised():
    text = BASE.replace("## Steps\n", "## Steps ##\n").replace("## Rollback", "## ROLLBACK")
    text = text.replace("## Monitoring", "## monitoring")
    runbook = read(text)

    assert errors_of(text) == []
    assert len(runbook.steps) == 1
    assert len(runbook.rollback) == 1


def test_level3_steps_reported():
    errors = errors_of(BASE.replace("## Steps", "### Steps"))

    assert any("no '## Steps' section" in error for error in errors)


@pytest.mark.parametrize("front", ["---\n---\n", "---\n- a\n- b\n---\n"], ids=["empty", "list"])
def test_front_matter_not_mapping_reported(front):
    text = front + BASE.split("---\n", 2)[2]

    assert any("front matter must be a YAML mapping" in error for error in errors_of(text))


@pytest.mark.parametrize("item", [
    "- [ ] Someone ran `env` on the host and read it",
    "- [ ] Read the `gate g3` notes with the team",
])
def test_code_span_inside_item_is_manual(item):
    # Only a code span that ends the item is a check. The rest is text for a person.
    runbook = read(runbook_text(["echo one"], prerequisites=item))

    assert runbook.prerequisites[0].check == ""


def test_code_span_at_end_is_check():
    item = "- [ ] `gate g3` was discussed with the team: `command bash`"
    runbook = read(runbook_text(["echo one"], prerequisites=item))

    assert runbook.prerequisites[0].check == "command bash"


# Parameter declarations.

@pytest.mark.parametrize("name", ["runbook_x", "ifs", "bash_env", "ld_audit",
                                  "posixly_correct"])
def test_reserved_parameter_name_rejected(name):
    # LD_AUDIT loads libraries as LD_PRELOAD does. POSIXLY_CORRECT puts bash in POSIX mode.
    text = with_parameter(f"{name}: {{type: str, default: x}}")

    assert any(f"parameter '{name}'" in error for error in errors_of(text))


@pytest.mark.parametrize("name", ["from", "global", "async"])
def test_keyword_parameter_name_rejected(name):
    # The compiled parameters cell assigns each parameter as a Python variable.
    text = with_parameter(f"{name}: {{type: str, required: true}}")

    assert any(f"parameter '{name}'" in error for error in errors_of(text))


def test_keyword_parameter_run_stores_nothing(project, capsys):
    write_runbook(project, with_parameter("from: {type: str, required: true}", "echo $FROM"))

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1", "-p", "from=0.9", "--by", "Dana Reyes")

    assert code == 2
    assert stored_runs(project) == []
    assert "parameter 'from'" in err


@pytest.mark.parametrize("line", [
    "target: {type: str, required: true, choices: [1, 2]}",
    "port: {type: int, required: true, choices: ['80', '443']}",
])
def test_choices_of_wrong_type_rejected(line):
    name = line.partition(":")[0]

    assert any(f"parameter '{name}'" in error for error in errors_of(with_parameter(line)))


# Expect and Timeout lines.

@pytest.mark.parametrize(("line", "exit_code", "contains"), [
    ("Expect: exit code 3", 3, ()),
    ("Expect:exit 4", 4, ()),
    ("expect: Output contains `ready`", 0, ("ready",)),
    ("Expect: contains 'a b'", 0, ("a b",)),
])
def test_expect_forms_understood(line, exit_code, contains):
    text = runbook_text(["echo one"], step_extra=[line])
    expect = read(text).steps[0].expect

    assert errors_of(text) == []
    assert expect.exit_code == exit_code
    assert expect.contains == contains


def test_expect_exit_over_255_rejected():
    # A process exit status is 0 to 255, so the step could never pass.
    errors = errors_of(runbook_text(["echo one"], step_extra=["Expect: exit 256"]))

    assert any("Expect: exit 256" in error for error in errors)


def test_expect_outside_item_reported():
    # Written flush left, the line leaves the list item and the expectation is lost.
    text = BASE.replace(STEP_BLOCK, STEP_BLOCK + "Expect: exit 3\n")
    line = text.splitlines().index("Expect: exit 3") + 1

    assert any(error.startswith(f"rb.md:{line}: error:") for error in errors_of(text))


def test_timeout_zero_rejected():
    errors = errors_of(runbook_text(["echo one"], step_extra=["Timeout: 0s"]))

    assert any("'Timeout: 0s' is invalid" in error for error in errors)


# The compiled %%step line must give the kernel back the title and the expectations.

@pytest.mark.parametrize("title", [
    "It's \"quoted\" here",
    "Run `make` now",
    "Pass --timeout 5 --expect x",
    "'; import os; '",
    "Deploy {version} to $HOME",
    "--force",
    "-rw-------",
])
def test_magic_line_keeps_title(title):
    text = BASE.replace("Step 1 does its part.", title, 1)
    runbook = read(text)

    assert runbook.steps[0].title == title
    assert magic_arguments(runbook).title == title


@pytest.mark.parametrize("expected", ["-rw-------", "--verbose", "a 'quoted' b", "{version}"])
def test_magic_line_keeps_expect_text(expected):
    runbook = read(runbook_text(["echo one"], step_extra=[f'Expect: contains "{expected}"']))

    assert magic_arguments(runbook).expect == [expected]


def test_command_with_quotes_and_magic_kept():
    command = "cat <<'EOF'\n'''\n\"\"\"\n%%step 9 --title x\nEOF"
    runbook = read(runbook_text([command]))
    cell = next(cell.source for cell in compile_runbook(runbook).cells
                if cell.source.startswith("%%step"))

    assert cell.partition("\n")[2] == command


def test_hundred_steps_compile():
    # An item's block must be indented to its text: five spaces under "100. ".
    items = "".join(f"{number}. Step {number}.\n     ```bash\n     echo {number}\n     ```\n"
                    for number in range(1, 101))
    text = BASE.replace(STEP_BLOCK, items)
    cells = [cell.source for cell in compile_runbook(read(text)).cells
             if cell.source.startswith("%%step")]

    assert errors_of(text) == []
    assert [int(cell.split()[1]) for cell in cells] == list(range(1, 101))


def test_long_command_kept():
    command = "echo " + "x" * 1_000_000
    runbook = read(runbook_text([command]))

    assert runbook.steps[0].command == command + "\n"


# Parameter values from -p.

PARAMETERS = """  version: {type: str, required: true}
  port: {type: int, default: 8080}
  ratio: {type: float, default: 0.5}
  dry_run: {type: bool, default: false}
  hosts: {type: list, default: []}"""


def declared():
    text = runbook_text(["echo one"], parameters=PARAMETERS)
    assert errors_of(text) == []
    return read(text)


def test_required_empty_value_rejected():
    # $VERSION empty would make "releases/$VERSION" name the whole releases folder.
    with pytest.raises(UsageError, match="parameter 'version'"):
        parse_cli_parameters(declared(), ["version="])


@pytest.mark.parametrize("value", ["Grüße ✓ 日本", "a=b=c", "line one\nline two", " padded "])
def test_string_value_kept_exactly(value):
    values = parse_cli_parameters(declared(), [f"version={value}"])

    assert values["version"] == value


@pytest.mark.parametrize(("pair", "expected"), [
    ("port= 42 ", 42), ("dry_run=TRUE", True), ("ratio=2", 2.0), ("hosts=a, b", ["a", "b"]),
])
def test_value_forms_accepted(pair, expected):
    values = parse_cli_parameters(declared(), ["version=1", pair])

    assert values[pair.partition("=")[0]] == expected


@pytest.mark.parametrize("pair", ["port=0x10", "port=1e3", "ratio=1e309", "ratio=-inf",
                                  'hosts=[{"a": 1}]', "hosts=[[1]]", "dry_run=2"])
def test_value_forms_rejected(pair):
    with pytest.raises(UsageError, match=f"parameter '{pair.partition('=')[0]}'"):
        parse_cli_parameters(declared(), ["version=1", pair])


def test_list_item_with_newline_rejected():
    # In $HOSTS the items are joined with newlines, so this item would read as two.
    with pytest.raises(UsageError, match="parameter 'hosts'"):
        parse_cli_parameters(declared(), ["version=1", 'hosts=["a\\nb", "c"]'])


def test_value_too_big_for_environment_rejected():
    # Linux refuses to start a process with one environment string over 128 KiB.
    with pytest.raises(UsageError, match="parameter 'version'"):
        parse_cli_parameters(declared(), ["version=" + "x" * 200_000])


def test_by_control_character_rejected(project, capsys):
    write_runbook(project, BASE)

    code, _, err = run_cli(capsys, "runbook", "run", "sample", "--project", str(project),
                           "-p", "version=1", "--by", "Dana\x1b[2JReyes")

    assert code == 2
    assert "contains control characters" in err
    assert stored_runs(project) == []
