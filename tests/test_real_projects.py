"""The G4 gate on a real released project: the requests 2.32.3 source distribution."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from gate_projects import OFFLINE_AUDIT, cli

pytestmark = [pytest.mark.kernel, pytest.mark.network_download]

CACHE = Path(__file__).resolve().parent / ".cache"
REQUESTS = "requests==2.32.3"
# The suites of requests that need no httpbin server and no network.
TEST_COMMAND = ("python -m pytest -q -o pythonpath=src tests/test_structures.py "
                "tests/test_hooks.py tests/test_utils.py")


def download_sdist(requirement: str) -> Path:
    """Return the cached sdist archive of ``requirement``, downloading it from the registry once."""
    CACHE.mkdir(exist_ok=True)
    name, version = requirement.split("==")
    found = sorted(CACHE.glob(f"{name}-{version}.tar.gz"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary",
                        ":all:", "--no-deps", requirement, "-d", str(CACHE)], check=True,
                       timeout=300)
        found = sorted(CACHE.glob(f"{name}-{version}.tar.gz"))
    return found[0]


@pytest.fixture(scope="module")
def requests_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("requests")
    with tarfile.open(download_sdist(REQUESTS)) as archive:
        archive.extractall(root, filter="data")
    project = root / "requests-2.32.3"
    home = root / "home"
    home.mkdir()
    (home / "config.toml").write_text(textwrap.dedent("""\
        [project]
        name = "requests"

        [checks.tests]
        command = "{TEST_COMMAND}"
        cov_source = "src/requests"
        """).replace("{TEST_COMMAND}", TEST_COMMAND) + OFFLINE_AUDIT)
    output = root / "report"
    result = cli("gate", "g4", "--project", str(project), "--output", str(output), "--json",
                 env={"TINYSDLC_NB_HOME": str(home)})
    return result, json.loads(result.stdout), output


def items(summary: dict) -> dict[str, dict]:
    return {item["item"]: item for item in summary["items"]}


def sarif_results(output: Path, tool: str) -> list[dict]:
    sarif = json.loads((output / "results.sarif").read_text())
    return [result for run in sarif["runs"] if run["tool"]["driver"]["name"] == tool
            for result in run["results"]]


def locations(results: list[dict]) -> set[str]:
    return {result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for result in results}


def test_requests_gets_a_verdict(requests_report):
    result, summary, _output = requests_report
    assert result.returncode == 1, result.stderr
    assert summary["verdict"] == "FAILED"
    assert summary["version"] == "2.32.3"


def test_requests_has_no_error_items(requests_report):
    _result, summary, _output = requests_report
    errors = {name: item["summary"] for name, item in items(summary).items()
              if item["status"] == "ERROR"}
    assert errors == {}


def test_requests_tests_pass_with_low_coverage(requests_report):
    _result, summary, _output = requests_report
    tests = items(summary)["tests"]
    assert tests["status"] == "FAIL"
    assert "226 passed" in tests["summary"]
    assert "threshold 60%" in tests["summary"]


def test_requests_zero_mock_findings(requests_report):
    _result, _summary, output = requests_report
    found = sarif_results(output, "tinysdlc-nb")
    assert "src/requests/adapters.py" in locations(found)
    assert {result["ruleId"] for result in found} >= {"not-implemented", "todo-comment"}


def test_requests_test_keys_found_without_values(requests_report):
    _result, _summary, output = requests_report
    found = sarif_results(output, "detect-secrets")
    assert "tests/certs/valid/server/server.key" in locations(found)
    report = (output / "results.sarif").read_text() + (output / "summary.json").read_text()
    assert "PRIVATE KEY-----\nMI" not in report


def test_requests_sast_finds_weak_hash(requests_report):
    _result, _summary, output = requests_report
    rules = {result["ruleId"] for result in sarif_results(output, "bandit")}
    assert "B324" in rules


def test_requests_licenses_from_pkg_info(requests_report):
    _result, summary, _output = requests_report
    licenses = items(summary)["licenses"]
    assert licenses["status"] == "PASS"
    assert "4 distributions" in licenses["summary"]
