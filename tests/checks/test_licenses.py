"""The licenses check against throwaway environments, with the real pip-licenses.

Each test builds a virtual environment without pip and writes ``*.dist-info`` folders into
its site-packages, so the installed distributions and their metadata are exactly the ones
the test names.
"""

from __future__ import annotations

import sys
import venv
from pathlib import Path

import pytest

from tinysdlc_nb.errors import ConfigError
from tinysdlc_nb.gates.checks import licenses, licenses_spdx
from tinysdlc_nb.gates.model import CheckContext, Status, Tier


class FakeEnvironment:
    """A virtual environment whose distributions are metadata folders written by the test."""

    def __init__(self, root: Path):
        venv.create(root, with_pip=False)
        self.python = root / "bin" / "python"
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.site_packages = root / "lib" / version / "site-packages"

    def install(self, name: str, version: str = "1.0", *headers: str) -> None:
        folder = self.site_packages / f"{name.replace('-', '_')}-{version}.dist-info"
        folder.mkdir(parents=True)
        lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", *headers]
        (folder / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def environment(tmp_path) -> FakeEnvironment:
    return FakeEnvironment(tmp_path / "env")


def _project(tmp_path: Path, dependencies: list[str], name: str = "shop") -> Path:
    project = tmp_path / "project"
    project.mkdir()
    listed = "".join(f'    "{dependency}",\n' for dependency in dependencies)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1"\ndependencies = [\n{listed}]\n',
        encoding="utf-8")
    return project


def _context(project: Path, environment: FakeEnvironment, **settings) -> CheckContext:
    merged = {setting.key: setting.default for setting in licenses.SETTINGS}
    merged |= {"python": str(environment.python)} | settings
    return CheckContext(project=project, tier=Tier.LITE, settings=merged,
                        work_dir=project.parent / "work", timeout_s=60)


def _rules(result) -> list[str]:
    return [finding.rule for finding in result.findings]


def test_licenses_gpl_dependency_fails(tmp_path, environment):
    environment.install("gplthing", "1.0", "License-Expression: GPL-3.0")
    project = _project(tmp_path, ["gplthing>=1"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.FAIL
    [finding] = result.findings
    assert finding.rule == "denied-license"
    assert (finding.file, finding.line) == ("pyproject.toml", 5)
    assert "GPL-3.0-only" in finding.message
    assert result.report_name == "licenses.json"


def test_licenses_allow_list_passes_with_reason(tmp_path, environment):
    environment.install("gplthing", "1.0", "License-Expression: GPL-3.0")
    project = _project(tmp_path, ["gplthing"])
    allow = {"GPLThing": "used only by the internal build script"}

    result = licenses.run(_context(project, environment, allow=allow))

    assert result.status is Status.PASS
    assert result.findings[0].suppression == "allow-listed: used only by the internal build script"
    assert "1 allow-listed" in result.summary


def test_licenses_allow_without_reason_is_config_error(tmp_path, environment):
    project = _project(tmp_path, [])

    with pytest.raises(ConfigError, match="gplthing"):
        licenses.run(_context(project, environment, allow={"gplthing": " "}))


def test_licenses_unknown_license_is_finding(tmp_path, environment):
    environment.install("mystery", "0.3")
    project = _project(tmp_path, ["mystery"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.FAIL
    assert _rules(result) == ["unknown-license"]
    assert "UNKNOWN" in result.findings[0].message


def test_licenses_or_with_permitted_choice_passes(tmp_path, environment):
    environment.install("dual", "2.0", "License-Expression: MIT OR GPL-3.0")
    project = _project(tmp_path, ["dual"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.PASS
    assert result.findings == []


def test_licenses_and_with_denied_part_fails(tmp_path, environment):
    environment.install("both", "2.0", "License-Expression: MIT AND GPL-3.0")
    project = _project(tmp_path, ["both"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.FAIL
    assert _rules(result) == ["denied-license"]


def test_licenses_classifiers_map_to_spdx(tmp_path, environment):
    environment.install("classic", "1.0", "License: BSD",
                        "Classifier: License :: OSI Approved :: BSD License")
    gpl_classifier = "GNU General Public License v2 (GPLv2)"
    environment.install("oldgpl", "1.0", f"Classifier: License :: OSI Approved :: {gpl_classifier}")
    project = _project(tmp_path, ["classic", "oldgpl"])

    result = licenses.run(_context(project, environment))

    [finding] = result.findings
    assert finding.message.startswith("oldgpl 1.0")
    assert "GPL-2.0-only (from classifier)" in finding.message


def test_licenses_transitive_dependency_names_chain(tmp_path, environment):
    environment.install("web", "1.0", "License-Expression: MIT", "Requires-Dist: parser>=2")
    environment.install("parser", "2.1", "License-Expression: AGPL-3.0-or-later")
    project = _project(tmp_path, ["web"])

    result = licenses.run(_context(project, environment))

    [finding] = result.findings
    assert finding.rule == "denied-license"
    assert "required through web" in finding.message
    assert finding.file == "pyproject.toml"


def test_licenses_ignores_what_is_not_required(tmp_path, environment):
    environment.install("web", "1.0", "License-Expression: MIT",
                        'Requires-Dist: winonly; sys_platform == "nonexistent-os"',
                        'Requires-Dist: extraonly; extra == "fast"')
    environment.install("extraonly", "1.0", "License-Expression: GPL-3.0-only")
    environment.install("unrelated", "1.0", "License-Expression: SSPL-1.0")
    project = _project(tmp_path, ["web"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.PASS
    assert result.summary.startswith("1 distribution checked")


def test_licenses_requested_extra_is_followed(tmp_path, environment):
    environment.install("web", "1.0", "License-Expression: MIT",
                        'Requires-Dist: extraonly; extra == "fast"')
    environment.install("extraonly", "1.0", "License-Expression: GPL-3.0-only")
    project = _project(tmp_path, ["web[fast]"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.FAIL
    assert "extraonly" in result.findings[0].message


def test_licenses_missing_dependency_is_finding(tmp_path, environment):
    project = _project(tmp_path, ["absent>=1"])

    result = licenses.run(_context(project, environment))

    assert result.status is Status.FAIL
    assert _rules(result) == ["not-installed"]


def test_licenses_environment_scope_checks_everything(tmp_path, environment):
    environment.install("unrelated", "1.0", "License-Expression: SSPL-1.0")
    project = _project(tmp_path, [])

    result = licenses.run(_context(project, environment, scope="environment"))

    assert result.status is Status.FAIL
    assert result.findings[0].message.startswith("unrelated 1.0")


def test_licenses_lgpl_allowed_by_default(tmp_path, environment):
    environment.install("lesser", "1.0", "License-Expression: LGPL-2.1-or-later")
    project = _project(tmp_path, ["lesser"])

    assert licenses.run(_context(project, environment)).status is Status.PASS


def test_licenses_deny_setting_adds_lgpl(tmp_path, environment):
    environment.install("lesser", "1.0", "License-Expression: LGPL-2.1-or-later")
    project = _project(tmp_path, ["lesser"])

    result = licenses.run(_context(project, environment, deny=["LGPL-*"]))

    assert result.status is Status.FAIL


def test_licenses_installed_project_is_checked(tmp_path, environment):
    environment.install("shop", "0.1", "License-Expression: GPL-3.0-or-later")
    project = _project(tmp_path, [], name="shop")

    result = licenses.run(_context(project, environment))

    [finding] = result.findings
    assert finding.message.startswith("shop 0.1")
    assert (finding.file, finding.line) == ("pyproject.toml", 2)


def test_licenses_requirements_file_with_include(tmp_path, environment):
    environment.install("gplthing", "1.0", "License-Expression: GPL-3.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("# runtime\n-r base.txt\n", encoding="utf-8")
    (project / "base.txt").write_text("-e .\n\ngplthing==1.0  # pinned\n", encoding="utf-8")

    result = licenses.run(_context(project, environment))

    [finding] = result.findings
    assert (finding.file, finding.line) == ("base.txt", 3)


def test_licenses_requirements_setting(tmp_path, environment):
    environment.install("gplthing", "1.0", "License-Expression: GPL-3.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "prod.txt").write_text("gplthing\n", encoding="utf-8")

    result = licenses.run(_context(project, environment, requirements=["prod.txt"]))

    assert result.status is Status.FAIL


def test_licenses_without_declarations_skipped(tmp_path, environment):
    project = tmp_path / "project"
    project.mkdir()

    result = licenses.run(_context(project, environment))

    assert result.status is Status.SKIPPED


def test_licenses_dynamic_dependencies_not_installed(tmp_path, environment):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "shop"\nversion = "0.1"\ndynamic = ["dependencies"]\n',
        encoding="utf-8")

    result = licenses.run(_context(project, environment))

    assert result.status is Status.ERROR
    assert "pip install -e ." in result.summary


def test_licenses_dynamic_dependencies_from_requirements(tmp_path, environment):
    environment.install("gplthing", "1.0", "License-Expression: GPL-3.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "shop"\nversion = "0.1"\ndynamic = ["dependencies"]\n',
        encoding="utf-8")
    (project / "requirements.txt").write_text("gplthing\n", encoding="utf-8")

    result = licenses.run(_context(project, environment))

    assert result.status is Status.FAIL
    assert result.findings[0].file == "requirements.txt"


def test_licenses_setup_cfg_install_requires(tmp_path, environment):
    environment.install("gplthing", "1.0", "License-Expression: GPL-3.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "setup.py").write_text("from setuptools import setup\nsetup()\n",
                                      encoding="utf-8")
    (project / "setup.cfg").write_text(
        "[metadata]\nname = shop\n\n[options]\ninstall_requires =\n    gplthing>=1\n",
        encoding="utf-8")

    result = licenses.run(_context(project, environment))

    [finding] = result.findings
    assert (finding.file, finding.line) == ("setup.cfg", 6)


def test_licenses_missing_interpreter_is_error(tmp_path, environment):
    project = _project(tmp_path, [])

    result = licenses.run(_context(project, environment, python="no-such/bin/python"))

    assert result.status is Status.ERROR
    assert "no-such/bin/python" in result.summary


@pytest.mark.parametrize(("expression", "license_text", "classifiers", "expected"), [
    ("UNKNOWN", "Apache 2.0", "UNKNOWN", "Apache-2.0"),
    ("UNKNOWN", "BSD-3-Clause", "BSD License", "BSD-3-Clause"),
    ("UNKNOWN", "UNKNOWN", "MIT License; Apache Software License", "Apache-2.0 OR MIT"),
    ("UNKNOWN", "UNKNOWN", "Public Domain", "LicenseRef-Public-Domain"),
    ("mit or apache-2.0", "UNKNOWN", "UNKNOWN", "MIT OR Apache-2.0"),
])
def test_spdx_read_license(expression, license_text, classifiers, expected):
    declared = licenses_spdx.read_license(expression, license_text, classifiers)

    assert declared.expression == expected


@pytest.mark.parametrize(("expression", "outcome"), [
    ("MIT OR GPL-3.0-only", licenses_spdx.PERMITTED),
    ("MIT AND GPL-3.0-only", licenses_spdx.DENIED),
    ("GPL-2.0-only WITH Classpath-exception-2.0", licenses_spdx.DENIED),
    ("LicenseRef-Internal OR MIT", licenses_spdx.PERMITTED),
    ("LicenseRef-Internal AND MIT", licenses_spdx.UNRECOGNISED),
    ("AGPL-3.0-only", licenses_spdx.DENIED),
    ("LGPL-3.0-only", licenses_spdx.PERMITTED),
])
def test_spdx_judge(expression, outcome):
    verdict = licenses_spdx.judge(expression, ["AGPL-*", "GPL-*", "SSPL-*"])

    assert verdict.outcome == outcome
