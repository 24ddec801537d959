"""The dependencies check, with the real pip-audit talking to a PyPI stand-in on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pypi_mitm
import pytest
import trustme

from tinysdlc_nb.gates.checks import dependencies
from tinysdlc_nb.gates.model import CheckContext, Status, Tier

# The advisory PyPI lists for requests 2.19.0: the Authorization header is sent on after an
# https-to-http redirect.
REQUESTS_ADVISORY = {
    "id": "PYSEC-2018-28",
    "aliases": ["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"],
    "summary": None,
    "details": "Requests before 2.20.0 sends an Authorization header to an http URI "
               "after a redirect from https.",
    "fixed_in": ["2.20.0"],
    "link": "https://osv.dev/vulnerability/PYSEC-2018-28",
    "source": "osv",
    "withdrawn": None,
}

RELEASES = {
    ("requests", "2.19.0"): [REQUESTS_ADVISORY],
    ("requests", "2.32.4"): [],
    ("idna", "3.7"): [],
    ("certifi", "2024.7.4"): [],
    ("urllib3", "2.2.2"): [],
}


@pytest.fixture
def fake_pypi(tmp_path):
    with pypi_mitm.FakePyPI(RELEASES, tmp_path) as fake:
        yield fake


def context(project: Path, env: dict[str, str], **settings) -> CheckContext:
    values = {setting.key: setting.default for setting in dependencies.SETTINGS}
    values.update(settings)
    values["env"] = env
    values["cache_dir"] = str(project.parent / f"{project.name}-cache")
    return CheckContext(project=project, tier=Tier.LITE, settings=values,
                        work_dir=project.parent / f"{project.name}-work", timeout_s=120)


def requirements_project(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.txt").write_text(text)
    return root


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_vulnerable_pin_fails(tmp_path, fake_pypi):
    project = requirements_project(tmp_path / "proj", "# web client\nrequests==2.19.0\n")

    result = dependencies.run(context(project, fake_pypi.environment(),
                                      requirements="requirements.txt"))

    assert result.status is Status.FAIL, result.summary
    assert result.exit_code == 1
    assert result.summary == "1 known vulnerability in 1 of 1 dependency"
    finding = result.findings[0]
    assert finding.rule == "CVE-2018-18074"
    assert finding.file == "requirements.txt"
    assert finding.line == 2
    assert finding.message == ("requests 2.19.0: PYSEC-2018-28 (CVE-2018-18074, "
                               "GHSA-x84v-xcm2-53pg); fixed in 2.20.0")
    assert result.report_name == "pip-audit.json"


def test_clean_pin_passes(tmp_path, fake_pypi):
    project = requirements_project(tmp_path / "proj", "requests==2.32.4\n")

    result = dependencies.run(context(project, fake_pypi.environment(),
                                      requirements="requirements.txt"))

    assert result.status is Status.PASS, result.summary
    assert result.summary == "1 dependency audited against pypi, no known vulnerabilities"
    assert fake_pypi.requested == ["/pypi/requests/2.32.4/json"]


def test_closed_proxy_is_unavailable(tmp_path):
    project = requirements_project(tmp_path / "proj", "requests==2.32.4\n")
    ca_bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_bundle))
    env = pypi_mitm.proxy_environment(f"http://127.0.0.1:{closed_port()}", ca_bundle)

    result = dependencies.run(context(project, env, requirements="requirements.txt"))

    assert result.status is Status.UNAVAILABLE
    assert result.summary == ("pip-audit could not reach the pypi vulnerability service: "
                              "ProxyError for pypi.org: [Errno 111] Connection refused")


def test_closed_proxy_osv_is_unavailable(tmp_path):
    project = requirements_project(tmp_path / "proj", "requests==2.32.4\n")
    ca_bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_bundle))
    env = pypi_mitm.proxy_environment(f"http://127.0.0.1:{closed_port()}", ca_bundle)

    result = dependencies.run(context(project, env, requirements="requirements.txt",
                                      service="osv"))

    assert result.status is Status.UNAVAILABLE
    assert "for api.osv.dev" in result.summary


def test_unknown_releases_are_unavailable(tmp_path, fake_pypi):
    # Behind a registry proxy that does not pass PyPI's JSON API through, every release
    # lookup returns 404 and pip-audit skips each dependency.
    project = requirements_project(tmp_path / "proj", "internal-billing==4.1.0\n"
                                                      "internal-auth==2.0.3\n")

    result = dependencies.run(context(project, fake_pypi.environment(),
                                      requirements="requirements.txt"))

    assert result.status is Status.UNAVAILABLE
    assert result.summary.startswith("2 of 2 dependencies could not be audited against pypi")


def test_few_unknown_releases_are_notes(tmp_path, fake_pypi):
    project = requirements_project(tmp_path / "proj", "requests==2.32.4\nidna==3.7\n"
                                                      "certifi==2024.7.4\nmy-project==0.1.0\n")

    result = dependencies.run(context(project, fake_pypi.environment(),
                                      requirements="requirements.txt"))

    assert result.status is Status.PASS
    assert result.summary == ("3 dependencies audited against pypi, no known "
                              "vulnerabilities; 1 could not be audited")
    assert [(finding.rule, finding.severity, finding.line) for finding in result.findings] == [
        ("not-audited", "note", 4)]


def _venv_with(tmp_path, packages):
    environment = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)],
                   check=True)
    python = environment / "bin" / "python"
    site_packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    for name, version, requires in packages:
        metadata = site_packages / f"{name}-{version}.dist-info"
        metadata.mkdir()
        (metadata / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {item}\n" for item in requires))
    return python


def test_environment_audit_uses_python(tmp_path, fake_pypi):
    python = _venv_with(tmp_path, [("requests", "2.19.0", []), ("urllib3", "2.2.2", [])])
    project = tmp_path / "proj"
    project.mkdir()

    result = dependencies.run(context(project, fake_pypi.environment(), python=str(python),
                                      scope="environment"))

    assert result.status is Status.FAIL, result.summary
    assert result.summary == "1 known vulnerability in 1 of 2 dependencies"
    assert [(finding.file, finding.line) for finding in result.findings] == [
        ("environment", None)]


def test_missing_requirements_is_error(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()

    result = dependencies.run(context(project, {}, requirements="requirements.txt"))

    assert result.status is Status.ERROR
    assert "was not found" in result.summary


def test_non_string_env_is_error(tmp_path):
    project = requirements_project(tmp_path / "proj", "requests==2.32.4\n")

    result = dependencies.run(context(project, {"PIP_AUDIT_TIMEOUT": 5},
                                      requirements="requirements.txt"))

    assert result.status is Status.ERROR
    assert "PIP_AUDIT_TIMEOUT" in result.summary


def test_requirements_pins_and_lines(tmp_path):
    path = tmp_path / "requirements.txt"
    digest = "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760"
    path.write_text("# pinned with hashes\n"
                    "requests==2.32.4 \\\n"
                    f"    --hash=sha256:{digest}\n"
                    "--index-url https://example.invalid/simple\n"
                    "Django[argon2]==5.0.7 ; python_version >= '3.10'  # web framework\n")

    pinned, lines = dependencies.read_requirements(path)

    assert pinned is True
    assert lines == {"requests": 2, "django": 5}


@pytest.mark.parametrize("line", ["requests>=2.31", "requests", "-r base.txt",
                                  "-e ./vendored/lib", "requests==2.*",
                                  "lib @ https://example.invalid/lib-1.0.tar.gz"])
def test_requirements_not_fully_pinned(tmp_path, line):
    path = tmp_path / "requirements.txt"
    path.write_text(f"idna==3.7\n{line}\n")

    pinned, _ = dependencies.read_requirements(path)

    assert pinned is False


def test_default_scope_audits_declared_closure(tmp_path, fake_pypi):
    python = _venv_with(tmp_path, [("requests", "2.19.0", ["urllib3>=1"]),
                                   ("urllib3", "2.2.2", []), ("unrelated", "1.0", [])])
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "1"\ndependencies = ["requests"]\n')

    result = dependencies.run(context(project, fake_pypi.environment(), python=str(python)))

    assert result.status is Status.FAIL, result.summary
    assert result.summary == "1 known vulnerability in 1 of 2 dependencies"
    assert [(finding.file, finding.line) for finding in result.findings] == [
        ("pyproject.toml", 4)]


def test_no_declared_dependencies_skipped(tmp_path, fake_pypi):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "1"\n')

    result = dependencies.run(context(project, fake_pypi.environment()))

    assert result.status is Status.SKIPPED
