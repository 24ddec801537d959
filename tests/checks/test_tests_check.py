"""The tests check against small projects run with the real pytest and pytest-cov."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from tinysdlc_nb.gates.checks import tests as tests_check
from tinysdlc_nb.gates.checks.tests_reports import parse_coverage, parse_junit
from tinysdlc_nb.gates.model import CheckContext, Status, Tier

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tests_check"

CALC = """\
def add(a, b):
    return a + b


def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value


def describe(value):
    if value > 0:
        return "positive"
    return "not positive"
"""

# Leaves clamp's upper bound and describe's negative case untested: 14 of 18 lines and
# branches, 77.7%, between the lite and standard thresholds.
CALC_TESTS = """\
from pkg.calc import add, clamp, describe


def test_add():
    assert add(2, 3) == 5


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_clamp_below():
    assert clamp(-1, 0, 10) == 0


def test_describe_positive():
    assert describe(1) == "positive"
"""


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def context(project: Path, tier: Tier = Tier.LITE, **settings) -> CheckContext:
    values = {setting.key: setting.default for setting in tests_check.SETTINGS}
    values.update(settings)
    return CheckContext(project=project, tier=tier, settings=values,
                        work_dir=project.parent / f"{project.name}-work", timeout_s=120)


def calc_project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "calc", {"pkg/__init__.py": "", "pkg/calc.py": CALC,
                                             "tests/test_calc.py": CALC_TESTS})


def test_passing_suite_passes_with_counts(tmp_path):
    project = write_project(tmp_path / "proj", {
        "tests/test_ok.py": """\
            import os

            import pytest


            def test_gate_variable_is_set():
                assert os.environ.get("TINYSDLC_NB_GATE_RUN") == "1"


            def test_arithmetic():
                assert 2 + 2 == 4


            @pytest.mark.skip(reason="not on this platform")
            def test_skipped():
                pass
            """,
    })

    result = tests_check.run(context(project))

    assert result.status is Status.PASS, result.summary
    assert result.summary == "2 passed, 1 skipped; coverage 88.8% (threshold 60%)"
    assert result.exit_code == 0
    assert result.report_name == "junit.xml"
    assert result.report.startswith(b"<?xml")
    assert result.tool_version != ""


def test_failing_test_is_finding(tmp_path):
    project = write_project(tmp_path / "proj", {
        "tests/test_fail.py": """\
            def test_passes():
                assert True


            def test_refund_limit():
                paid = 100
                assert paid + 20 <= paid, "refund must not exceed the paid amount"
            """,
    })

    result = tests_check.run(context(project))

    assert result.status is Status.FAIL
    assert result.summary.startswith("1 passed, 1 failed")
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.rule == "test-failed"
    assert finding.file == "tests/test_fail.py"
    assert finding.line == 7
    assert finding.message == ("tests.test_fail.test_refund_limit failed: AssertionError: "
                               "refund must not exceed the paid amount")


def test_report_has_no_color_codes(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    project = write_project(tmp_path / "proj", {
        "tests/test_fail.py": "def test_fails():\n    assert [1, 2] == [1, 3]\n",
    })

    result = tests_check.run(context(project))

    assert result.status is Status.FAIL
    # pytest writes the escape character of a color code as "#x1B" in JUnit XML.
    assert b"#x1B" not in result.report


def test_no_tests_collected_fails(tmp_path):
    project = write_project(tmp_path / "proj", {"app.py": "VALUE = 1\n"})

    result = tests_check.run(context(project))

    assert result.status is Status.FAIL
    assert result.exit_code == 5
    assert "no-tests" in [finding.rule for finding in result.findings]
    assert result.summary.startswith("no test ran")


def test_conftest_error_is_error(tmp_path):
    # pytest 9 reports a conftest that raises on import as a usage error, exit 4.
    project = write_project(tmp_path / "proj", {
        "conftest.py": "raise RuntimeError('fixture database is not configured')\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })

    result = tests_check.run(context(project))

    assert result.status is Status.ERROR
    assert result.exit_code == 4
    assert "usage error" in result.summary
    assert "fixture database is not configured" in result.summary


def test_collection_error_lists_module(tmp_path):
    project = write_project(tmp_path / "proj", {
        "tests/test_broken.py": "import module_that_does_not_exist\n",
    })

    result = tests_check.run(context(project))

    assert result.status is Status.ERROR
    assert result.exit_code == 2
    assert [finding.file for finding in result.findings] == ["tests/test_broken.py"]


def test_coverage_under_standard_threshold_fails(tmp_path):
    project = calc_project(tmp_path)

    result = tests_check.run(context(project, Tier.STANDARD, cov_source="pkg"))

    assert result.status is Status.FAIL
    assert result.summary == "4 passed; coverage 77.7% (threshold 80%)"
    assert [finding.rule for finding in result.findings] == ["coverage-threshold"]
    assert result.findings[0].message == ("line+branch coverage 77.7% is under the standard "
                                          "threshold of 80%")


def test_coverage_over_lite_threshold_passes(tmp_path):
    project = calc_project(tmp_path)

    result = tests_check.run(context(project, Tier.LITE, cov_source="pkg"))

    assert result.status is Status.PASS
    assert result.summary == "4 passed; coverage 77.7% (threshold 60%)"


def test_lite_threshold_setting_applies(tmp_path):
    project = calc_project(tmp_path)

    result = tests_check.run(context(project, Tier.LITE, cov_source="pkg", lite_threshold=85.0))

    assert result.status is Status.FAIL
    assert result.summary.endswith("(threshold 85%)")


def test_run_leaves_project_clean(tmp_path):
    project = calc_project(tmp_path)

    tests_check.run(context(project, cov_source="pkg"))

    assert not (project / ".coverage").exists()
    assert not (project / ".pytest_cache").exists()


def test_custom_command_writes_reports(tmp_path):
    project = write_project(tmp_path / "proj", {
        "run_tests.py": """\
            import shutil
            import sys

            shutil.copy("reports/junit.xml", sys.argv[1])
            shutil.copy("reports/coverage.json", sys.argv[2])
            """,
    })
    (project / "reports").mkdir()
    shutil.copy(FIXTURES / "pytest-junit.xml", project / "reports" / "junit.xml")
    shutil.copy(FIXTURES / "coverage-lines-only.json", project / "reports" / "coverage.json")

    result = tests_check.run(context(project, command="python run_tests.py {junit} {coverage}",
                                     pytest_options=False))

    assert result.status is Status.FAIL
    assert result.summary == "2 passed, 1 failed, 1 skipped; coverage 95.0% (threshold 60%)"


def test_custom_command_without_junit_is_error(tmp_path):
    project = write_project(tmp_path / "proj", {"app.py": "VALUE = 1\n"})

    result = tests_check.run(context(project, command="python -c pass", pytest_options=False))

    assert result.status is Status.ERROR
    assert "wrote no JUnit report" in result.summary


def test_missing_interpreter_is_error(tmp_path):
    project = write_project(tmp_path / "proj", {"app.py": "VALUE = 1\n"})

    result = tests_check.run(context(project, python=str(tmp_path / "no-such-python")))

    assert result.status is Status.ERROR
    assert "was not found" in result.summary


def test_ingest_junit_and_cobertura(tmp_path):
    ctx = context(write_project(tmp_path / "proj", {}), Tier.STANDARD)
    ctx.inputs = {"junit": FIXTURES / "pytest-junit.xml", "coverage": FIXTURES / "coverage.xml"}

    result = tests_check.run(ctx)

    assert result.status is Status.FAIL
    assert result.exit_code is None
    assert result.summary == "2 passed, 1 failed, 1 skipped; coverage 81.6% (threshold 80%)"
    assert result.report == (FIXTURES / "pytest-junit.xml").read_bytes()
    finding = result.findings[0]
    assert finding.file == "tests/test_orders.py"
    assert finding.line == 31
    assert finding.message == ("tests.test_orders.TestRefund.test_partial_refund failed: "
                               "AssertionError: refund must not exceed the paid amount")


def test_ingest_bare_testsuite_and_json(tmp_path):
    ctx = context(write_project(tmp_path / "proj", {}), Tier.LITE)
    ctx.inputs = {"junit": FIXTURES / "bare-testsuite.xml",
                  "coverage": FIXTURES / "coverage.json"}

    result = tests_check.run(ctx)

    assert result.status is Status.FAIL
    assert result.summary == "2 passed, 1 error; coverage 76.6% (threshold 60%)"
    finding = result.findings[0]
    assert finding.rule == "test-error"
    assert finding.file == "integration/test_db.py"
    assert finding.line == 20
    assert finding.message == ("integration.test_db.test_migrate errored: OperationalError: "
                               "could not connect to server")


def test_ingest_coverage_only_is_error(tmp_path):
    ctx = context(write_project(tmp_path / "proj", {}), Tier.LITE)
    ctx.inputs = {"coverage": FIXTURES / "coverage.json"}

    result = tests_check.run(ctx)

    assert result.status is Status.ERROR
    assert "no JUnit report" in result.summary


def test_professional_requires_branch_data(tmp_path):
    ctx = context(write_project(tmp_path / "proj", {}), Tier.PROFESSIONAL)
    ctx.inputs = {"junit": FIXTURES / "bare-testsuite.xml",
                  "coverage": FIXTURES / "coverage-lines-only.json"}

    result = tests_check.run(ctx)

    assert "coverage-branch" in [finding.rule for finding in result.findings]


def test_cobertura_without_root_counts():
    totals = parse_coverage(FIXTURES / "cobertura-lines-only.xml")

    assert (totals.lines, totals.covered_lines) == (4, 3)
    assert (totals.branches, totals.covered_branches) == (2, 1)


def test_junit_counts_pytest_report(tmp_path):
    totals = parse_junit(FIXTURES / "pytest-junit.xml", tmp_path)

    assert (totals.tests, totals.failures, totals.errors, totals.skipped) == (4, 1, 0, 1)
