"""The Zero Mock Policy check, run on small projects built in tmp_path."""

from __future__ import annotations

import io
import json
import textwrap
import tokenize
from pathlib import Path

import pytest

from tinysdlc_nb.gates.checks import zero_mock
from tinysdlc_nb.gates.model import CheckContext, CheckResult, Status, Tier

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zero_mock"


def write(project: Path, relative: str, text: str) -> Path:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def scan(project: Path, **settings) -> CheckResult:
    merged = {setting.key: setting.default for setting in zero_mock.SETTINGS}
    merged.update(settings)
    ctx = CheckContext(project=project, tier=Tier.LITE, settings=merged,
                       work_dir=project.parent / "work")
    return zero_mock.run(ctx)


def locations(result: CheckResult) -> list[tuple[str, int | None, str]]:
    return [(finding.file, finding.line, finding.rule) for finding in result.findings]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


# Markers in comments


def test_todo_comment_is_finding(project):
    write(project, "app/service.py", """
        import os

        value = os.environ.get("RATE")  # todo: validate the rate
    """)

    result = scan(project)

    assert locations(result) == [("app/service.py", 3, "todo-comment")]
    assert result.status is Status.FAIL


def test_todo_in_string_is_not_finding(project):
    write(project, "app/service.py", '''
        def describe():
            """Return the label. TODO in a docstring is text."""
            return "TODO: this is a string, FIXME too"
    ''')

    result = scan(project)

    assert result.findings == []
    assert result.status is Status.PASS


def test_placeholder_keyword_argument_is_not_finding(project):
    write(project, "app/forms.py", """
        def email_field(widget):
            return widget(placeholder="you@example.com", label="Placeholder text")
    """)

    assert scan(project).findings == []


@pytest.mark.parametrize(("comment", "rule"), [
    ("# TODO", "todo-comment"),
    ("# todo: handle retries", "todo-comment"),
    ("# Todo handle retries", "todo-comment"),
    ("# retry here, see TODO(ann) above", "todo-comment"),
    ("# FIXME", "fixme-comment"),
    ("# Fixme, wrong place", "fixme-comment"),
    ("# placeholder", "placeholder-comment"),
    ("# Placeholder: the real client ships later", "placeholder-comment"),
    ("#: placeholder for the JS bundle", "placeholder-comment"),
    ("# keep the PLACEHOLDER until the API exists", "placeholder-comment"),
    ("# placeholders are filled in by the template engine", None),
    ("# fill the placeholder with the user's name", None),
    ("# the todo list is stored per user", None),
    ("# todos are rendered in order", None),
    ("# mastodon", None),
])
def test_marker_case_rules(project, comment, rule):
    write(project, "app/module.py", f"value = 1  {comment}\n")

    result = scan(project)

    assert [finding.rule for finding in result.findings] == ([rule] if rule else [])


def test_markers_setting_replaces_words(project):
    write(project, "app/module.py", """
        a = 1  # XXX: wrong unit
        b = 2  # TODO: not a marker under this setting
    """)

    result = scan(project, markers=["XXX"])

    assert locations(result) == [("app/module.py", 1, "xxx-comment")]


def test_comment_finder_matches_tokenize():
    source = (FIXTURES / "tricky_comments.py").read_bytes()
    for variant in (source, source.replace(b"\n", b"\r\n")):
        expected = [(token.start[0], token.string.rstrip("\r"))
                    for token in tokenize.tokenize(io.BytesIO(variant).readline)
                    if token.type == tokenize.COMMENT]
        found = [(variant.count(b"\n", 0, match.start()) + 1,
                  match.group().decode().rstrip("\r"))
                 for match in zero_mock._COMMENT_OR_STRING.finditer(variant)
                 if variant[match.start()] == ord("#")]

        assert found == expected


def test_comment_finder_decodes_coding_cookie(project):
    # In Shift_JIS the second byte of 表 is a backslash, which would escape the closing quote.
    source = '# -*- coding: shift_jis -*-\ns = "表" + "# TODO inside a string"\n'
    (project / "legacy.py").write_bytes(source.encode("shift_jis"))

    assert scan(project).findings == []


def test_tricky_fixture_findings(project):
    (project / "tricky.py").write_bytes((FIXTURES / "tricky_comments.py").read_bytes())

    result = scan(project)

    assert locations(result) == [
        ("tricky.py", 5, "fixme-comment"),
        ("tricky.py", 7, "todo-comment"),
        ("tricky.py", 9, "placeholder-comment"),
        ("tricky.py", 20, "todo-comment"),
        ("tricky.py", 26, "placeholder-comment"),
        ("tricky.py", 31, "fixme-comment"),
    ]


# NotImplementedError


def test_not_implemented_in_abstract_method_is_not_finding(project):
    write(project, "app/base.py", """
        import abc
        from abc import ABC, abstractmethod


        class Store(ABC):
            @abstractmethod
            def load(self):
                raise NotImplementedError

            @property
            @abc.abstractmethod
            def name(self):
                raise NotImplementedError("subclasses name themselves")
    """)

    assert scan(project).findings == []


def test_not_implemented_in_protocol_is_not_finding(project):
    write(project, "app/ports.py", """
        import typing
        from typing import Protocol, TypeVar

        T = TypeVar("T")


        class Reader(Protocol):
            def read(self) -> bytes:
                raise NotImplementedError


        class Box(typing.Protocol[T]):
            def get(self) -> T:
                raise NotImplementedError()
    """)

    assert scan(project).findings == []


def test_not_implemented_in_overload_is_not_finding(project):
    write(project, "app/parse.py", """
        import typing
        from typing import overload


        @overload
        def parse(value: int) -> int:
            raise NotImplementedError


        @typing.overload
        def parse(value: str) -> str:
            raise NotImplementedError


        def parse(value):
            return value
    """)

    assert scan(project).findings == []


def test_not_implemented_in_plain_function_is_finding(project):
    write(project, "app/billing.py", """
        def charge(amount):
            if amount > 0:
                raise NotImplementedError("card payments")
            return 0
    """)

    result = scan(project)

    assert locations(result) == [("app/billing.py", 3, "not-implemented")]
    assert "'charge'" in result.findings[0].message


def test_not_implemented_in_plain_method_is_finding(project):
    write(project, "app/base.py", """
        class Exporter:
            def export(self, rows):
                raise NotImplementedError


        raise NotImplementedError
    """)

    assert locations(scan(project)) == [
        ("app/base.py", 3, "not-implemented"),
        ("app/base.py", 6, "not-implemented"),
    ]


def test_not_implemented_not_raised_is_not_finding(project):
    write(project, "app/compat.py", """
        def ordered(a, b):
            try:
                return a < b
            except NotImplementedError:
                return NotImplemented
    """)

    assert scan(project).findings == []


def test_syntax_error_is_own_rule(project):
    write(project, "app/broken.py", """
        def ok():
            return 1

        def broken(:
            pass
    """)

    result = scan(project)

    assert locations(result) == [("app/broken.py", 4, "unparsable-python")]
    assert result.status is Status.FAIL


# Mock switches in config files


def test_yaml_mock_true_at_its_line(project):
    write(project, "config/app.yaml", """
        # mock: true in a comment is not a switch
        database:
          url: sqlite:///app.db
        payments:
          provider: stripe
          mock: true
    """)

    result = scan(project)

    assert locations(result) == [("config/app.yaml", 6, "mock-switch")]
    assert "payments.mock" in result.findings[0].message


@pytest.mark.parametrize(("line", "on"), [
    ("use_mock: yes", True),
    ("useMock: on", True),
    ("USE-MOCKS: 'true'", True),
    ("mock_mode: 1", True),
    ("mock: false", False),
    ("mock: 'off'", False),
    ("mock: 0", False),
    ("mock_server_url: http://localhost:8080", False),
    ("mocked_endpoints: [a, b]", False),
])
def test_yaml_switch_values(project, line, on):
    write(project, "settings.yml", f"service:\n  {line}\n")

    result = scan(project)

    assert [finding.rule for finding in result.findings] == (["mock-switch"] if on else [])


def test_yaml_enabled_under_mock_key(project):
    write(project, "config.yaml", """
        mock:
          enabled: true
          latency_ms: 20
    """)

    result = scan(project)

    assert locations(result) == [("config.yaml", 2, "mock-switch")]
    assert "mock.enabled" in result.findings[0].message


def test_yaml_second_document_line(project):
    write(project, "deploy/k8s.yaml", """
        kind: ConfigMap
        data:
          mock: "false"
        ---
        kind: ConfigMap
        data:
          MOCK: "true"
    """)

    assert locations(scan(project)) == [("deploy/k8s.yaml", 7, "mock-switch")]


def test_json_nested_mock_at_its_line(project):
    write(project, "config/services.json", """
        {
          "name": "shop",
          "services": {
            "web": {"mock": false},
            "db": {
              "host": "db.internal",
              "mock": true
            }
          }
        }
    """)

    result = scan(project)

    assert locations(result) == [("config/services.json", 7, "mock-switch")]
    assert "services.db.mock" in result.findings[0].message


def test_json_switch_inside_list(project):
    write(project, "clients.json", """
        [
          {"name": "a", "useFake": false},
          {"name": "b",
           "useFake": "yes"}
        ]
    """)

    assert locations(scan(project)) == [("clients.json", 4, "mock-switch")]


def test_toml_table_mock_at_its_line(project):
    write(project, "settings.toml", """
        title = "shop"
        mock = false

        [db]
        host = "localhost"
        mock = true
    """)

    result = scan(project)

    assert locations(result) == [("settings.toml", 6, "mock-switch")]
    assert "db.mock" in result.findings[0].message


def test_toml_array_of_tables_line(project):
    write(project, "services.toml", """
        [[service]]
        name = "web"
        stub = false

        [[service]]
        name = "mail"
        stub = true

        [service.options]
        use_mock = true
    """)

    assert locations(scan(project)) == [
        ("services.toml", 7, "mock-switch"),
        ("services.toml", 10, "mock-switch"),
    ]


def test_toml_dotted_and_inline_keys(project):
    write(project, "app.toml", """
        [clients]
        payments.fake = true
        text = '''
        mock = true inside a string
        '''
        mail = { host = "smtp", mock = true }
    """)

    assert locations(scan(project)) == [
        ("app.toml", 2, "mock-switch"),
        ("app.toml", 6, "mock-switch"),
    ]


def test_mock_keys_setting_replaces_keys(project):
    write(project, "config.yaml", """
        mock: true
        sandbox: true
    """)

    assert locations(scan(project, mock_keys=["sandbox"])) == [("config.yaml", 2, "mock-switch")]


@pytest.mark.parametrize(("relative", "text", "line"), [
    ("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n", 3),
    ("bad.json", '{\n  "a": 1,\n  "b": \n}\n', 4),
    ("bad.toml", "[db]\nhost = 'x'\nport = \n", 3),
    ("empty.json", "", 1),
])
def test_unparsable_config_is_own_rule(project, relative, text, line):
    (project / relative).write_text(text, encoding="utf-8")

    result = scan(project)

    assert locations(result) == [(relative, line, "unparsable-config")]
    assert result.status is Status.FAIL


def test_template_yaml_is_skipped_and_listed(project):
    write(project, "chart/templates/deployment.yaml", """
        spec:
          replicas: {{ .Values.replicas }}
          {{- if .Values.mock }}
          mock: true
          {{- end }}
    """)

    result = scan(project)
    report = json.loads(result.report)

    assert result.findings == []
    assert [entry["file"] for entry in report["files_skipped"]] == [
        "chart/templates/deployment.yaml"]


def test_large_config_is_skipped_and_listed(project, monkeypatch):
    monkeypatch.setattr(zero_mock, "MAX_CONFIG_BYTES", 64)
    write(project, "data/cities.json", '{"mock": true, "rows": "%s"}' % ("x" * 100))

    result = scan(project)
    report = json.loads(result.report)

    assert result.findings == []
    assert [entry["file"] for entry in report["files_skipped"]] == ["data/cities.json"]


@pytest.mark.parametrize("relative", ["tsconfig.json", "web/tsconfig.app.json",
                                      ".vscode/settings.json"])
def test_jsonc_files_are_not_scanned(project, relative):
    write(project, relative, '{\n  // JSON with comments\n  "mock": true\n}\n')

    assert scan(project).status is Status.SKIPPED


def test_lock_files_are_not_scanned(project):
    write(project, "package-lock.json", '{"packages": {"mock": true}}')
    write(project, "poetry.lock", 'mock = true\n')
    write(project, "app.py", "value = 1\n")

    result = scan(project)

    assert result.findings == []
    assert json.loads(result.report)["files_scanned"] == {"python": 1, "config": 0}


# Scope, suppression, summary and report


@pytest.mark.parametrize("relative", [
    "tests/test_api.py", "test/helpers.py", "pkg/tests/unit/test_x.py", "test_cli.py",
    "pkg/client_test.py", "conftest.py", "pkg/conftest.py", "docs/conf.py",
    "pkg/fixtures/data.yaml", "examples/demo.py",
])
def test_default_exclude_covers(project, relative):
    write(project, relative, "mock: true\n" if relative.endswith(".yaml") else "# TODO\n")

    assert scan(project).status is Status.SKIPPED


def test_tests_included_when_exclude_emptied(project):
    write(project, "tests/test_api.py", "def test_api():\n    pass  # TODO: cover errors\n")

    result = scan(project, exclude=[])

    assert locations(result) == [("tests/test_api.py", 2, "todo-comment")]


def test_excluded_dirs_are_not_scanned(project):
    write(project, ".venv/lib/site.py", "# TODO\n")
    write(project, "node_modules/pkg/config.json", '{"mock": true}')
    write(project, "app.py", "value = 1\n")

    assert scan(project).findings == []


def test_allow_comment_suppresses_with_reason(project):
    write(project, "app/spawn.py", """
        def fork_worker():
            raise NotImplementedError  # zero-mock: allow Windows has no fork()
    """)

    result = scan(project)

    assert result.findings[0].suppression == "Windows has no fork()"
    assert result.status is Status.PASS
    assert "1 suppressed" in result.summary


def test_allow_comment_without_reason_counts(project):
    write(project, "config.yaml", "mock: true  # zero-mock: allow\n")

    result = scan(project)

    assert result.findings[0].suppression is None
    assert result.status is Status.FAIL


def test_summary_counts_violations(project):
    write(project, "a.py", "x = 1  # TODO\n")
    write(project, "b.py", "y = 2  # FIXME\nz = 3  # TODO\n")
    write(project, "c.py", "w = 4\n")

    assert scan(project).summary.startswith("3 Zero Mock violations in 2 of 3 Python files and "
                                            "0 config files. [@coder:")


def test_summary_hands_off_first_violation(project):
    write(project, "app/service.py", """
        import os


        # FIXME: the retry count is a guess
        RETRIES = 3
    """)
    write(project, "app/settings.yaml", "mock: true\n")

    result = scan(project)

    assert result.summary.endswith(
        "[@coder: CI blocked — Zero Mock violation detected at app/service.py:4. "
        "Fix before deployment]")


def test_clean_project_passes(project):
    write(project, "app/service.py", "def total(values):\n    return sum(values)\n")
    write(project, "config.yaml", "mock: false\n")

    result = scan(project)

    assert result.status is Status.PASS
    assert result.summary == "No Zero Mock violations in 1 Python file and 1 config file."


def test_empty_project_is_skipped(project):
    assert scan(project).status is Status.SKIPPED


def test_report_is_json_of_findings(project):
    write(project, "app.py", "x = 1  # TODO\n")

    result = scan(project)
    report = json.loads(result.report)

    assert result.report_name == "zero_mock.json"
    assert report["findings"] == [finding.as_dict() for finding in result.findings]
    assert report["files_scanned"] == {"python": 1, "config": 0}


def test_result_names_tool_and_version(project):
    write(project, "app.py", "x = 1\n")

    result = scan(project)

    assert result.tool == "tinysdlc-nb"
    assert result.tool_version != ""
