"""The sbom check against throwaway environments, with the real cyclonedx-py."""

from __future__ import annotations

import json
import sys
import venv
from pathlib import Path

import pytest

from tinysdlc_nb.gates.checks import sbom
from tinysdlc_nb.gates.model import CheckContext, Status, Tier


@pytest.fixture
def environment(tmp_path) -> Path:
    """Return the interpreter of a virtual environment holding one written distribution."""
    root = tmp_path / "env"
    venv.create(root, with_pip=False)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folder = root / "lib" / version / "site-packages" / "ledger-2.3.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: ledger\nVersion: 2.3\nLicense-Expression: MIT\n",
        encoding="utf-8")
    return root / "bin" / "python"


def _project(tmp_path: Path, dependencies: str = '["ledger"]') -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "shop"\nversion = "0.1"\nlicense = "MIT"\n'
        f'dependencies = {dependencies}\n', encoding="utf-8")
    return project


def _context(project: Path, tier: Tier, python: Path | str, **settings) -> CheckContext:
    merged = {setting.key: setting.default for setting in sbom.SETTINGS}
    merged |= {"python": str(python)} | settings
    return CheckContext(project=project, tier=tier, settings=merged,
                        work_dir=project.parent / "work", timeout_s=120)


@pytest.mark.parametrize("tier", [Tier.LITE, Tier.STANDARD])
def test_sbom_skipped_below_professional(tmp_path, tier):
    project = _project(tmp_path)

    result = sbom.run(_context(project, tier, "no-such-python"))

    assert result.status is Status.SKIPPED
    assert "professional" in result.summary


def test_sbom_passes_with_components(tmp_path, environment):
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.PROFESSIONAL, environment))

    assert result.status is Status.PASS
    assert result.report_name == "sbom.cdx.json"
    bom = json.loads(result.report)
    assert bom["bomFormat"] == "CycloneDX"
    assert [component["name"] for component in bom["components"]] == ["ledger"]
    assert bom["metadata"]["component"]["name"] == "shop"
    assert result.summary == "The SBOM lists 1 component (CycloneDX 1.6)."


def test_sbom_spec_version_setting(tmp_path, environment):
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.ENTERPRISE, environment, spec_version="1.5"))

    assert result.status is Status.PASS
    assert json.loads(result.report)["specVersion"] == "1.5"


def test_sbom_same_environment_same_bytes(tmp_path, environment):
    project = _project(tmp_path)
    context = _context(project, Tier.PROFESSIONAL, environment)

    first = sbom.run(context)
    second = sbom.run(context)

    assert first.report_sha256 == second.report_sha256


def test_sbom_empty_environment_fails(tmp_path):
    venv.create(tmp_path / "empty", with_pip=False)
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.PROFESSIONAL, tmp_path / "empty" / "bin" / "python",
                               scope="environment"))

    assert result.status is Status.FAIL
    assert [finding.rule for finding in result.findings] == ["no-components"]


def test_sbom_tool_failure_is_error(tmp_path):
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho interpreter is broken >&2\nexit 3\n", encoding="utf-8")
    broken.chmod(0o755)
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.PROFESSIONAL, broken))

    assert result.status is Status.ERROR
    assert result.exit_code != 0
    assert "interpreter is broken" in result.summary


def test_sbom_missing_interpreter_is_error(tmp_path):
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.PROFESSIONAL, "no-such/bin/python"))

    assert result.status is Status.ERROR
    assert "no-such/bin/python" in result.summary


def test_sbom_lists_only_the_closure(tmp_path, environment):
    site = environment.parent.parent / "lib"
    extra = next(site.glob("python*/site-packages")) / "unrelated-1.0.dist-info"
    extra.mkdir()
    (extra / "METADATA").write_text("Metadata-Version: 2.4\nName: unrelated\nVersion: 1.0\n")
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.PROFESSIONAL, environment))

    names = [component["name"] for component in json.loads(result.report)["components"]]
    assert names == ["ledger"]


def test_sbom_without_dependencies_passes(tmp_path, environment):
    project = _project(tmp_path, dependencies="[]")

    result = sbom.run(_context(project, Tier.PROFESSIONAL, environment))

    assert result.status is Status.PASS
    assert "lists only the project itself" in result.summary


def test_sbom_missing_dependency_is_error(tmp_path):
    venv.create(tmp_path / "empty", with_pip=False)
    project = _project(tmp_path)

    result = sbom.run(_context(project, Tier.PROFESSIONAL, tmp_path / "empty" / "bin" / "python"))

    assert result.status is Status.ERROR
    assert "not installed" in result.summary
