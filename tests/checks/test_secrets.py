"""The secrets check against small projects, with the real detect-secrets."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.secrets.secret_samples import (
    ALNUM,
    GITHUB_TOKEN,
    KEY_BODY,
    SAMPLES,
    URL_PASSWORD,
    random_text,
    sample,
)

from tinysdlc_nb.errors import CheckTimeout
from tinysdlc_nb.gates.checks import secrets
from tinysdlc_nb.gates.model import CheckContext, Status, Tier
from tinysdlc_nb.secret_patterns import hash_secret


def _context(project: Path, **settings) -> CheckContext:
    merged = {setting.key: setting.default for setting in secrets.SETTINGS} | settings
    return CheckContext(project=project, tier=Tier.LITE, settings=merged,
                        work_dir=project.parent / "work", timeout_s=120)


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    for relative, text in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return project


def _located(result) -> list[tuple[str, int | None, str]]:
    return [(finding.file, finding.line, finding.rule) for finding in result.findings]


def _jwt() -> str:
    def encode(document: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    signature = random_text(ALNUM, 43)
    return f"{encode({'alg': 'HS256', 'typ': 'JWT'})}.{encode({'sub': 'svc-7'})}.{signature}"


def test_github_token_found_at_line(tmp_path):
    project = _project(tmp_path, {"app/settings.py": f'DEBUG = False\nTOKEN = "{GITHUB_TOKEN}"\n'})

    result = secrets.run(_context(project))

    assert result.status is Status.FAIL
    assert _located(result) == [("app/settings.py", 2, "github-token")]
    assert result.findings[0].suppression is None
    assert result.summary == "1 secret in 1 file."


def test_github_token_value_not_shown(tmp_path):
    project = _project(tmp_path, {"app/settings.py": f'TOKEN = "{GITHUB_TOKEN}"\n'})

    result = secrets.run(_context(project))

    [finding] = result.findings
    hidden_part = GITHUB_TOKEN[len("ghp_"):]
    assert finding.message.startswith("GitHub token (hashed_secret ")
    assert hidden_part[:4] not in finding.message
    assert hidden_part[:4].encode() not in result.report
    assert hidden_part[:4] not in result.summary
    assert hash_secret(GITHUB_TOKEN).encode() in result.report
    assert result.report_name == "secrets.json"


def test_every_pattern_found(tmp_path):
    lines = []
    expected = []
    for item in SAMPLES:
        expected.append(("config/values.txt", len(lines) + 1, item.rule))
        lines.extend(item.line.splitlines())
    project = _project(tmp_path, {"config/values.txt": "\n".join(lines) + "\n"})

    result = secrets.run(_context(project))

    assert _located(result) == expected
    report = result.report.decode()
    leaked = [item.rule for item in SAMPLES if item.private_part[:8] in report]
    assert leaked == []


def test_aws_documented_example_not_found(tmp_path):
    project = _project(tmp_path, {
        "docs/aws.md": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                       "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    })

    result = secrets.run(_context(project))

    assert result.status is Status.PASS
    assert result.findings == []


@pytest.mark.parametrize("keyword_plugin", [False, True])
def test_env_reference_not_found(tmp_path, keyword_plugin):
    project = _project(tmp_path, {
        "app/db.py": 'import os\npassword = os.environ["DB_PASSWORD"]\n'
                     'token = os.getenv("API_TOKEN")\n',
        "deploy/app.env": "DB_PASSWORD=${DB_PASSWORD}\nAPI_TOKEN=$API_TOKEN\n"
                          "DATABASE_URL=postgresql://app:${DB_PASSWORD}@db.prod.internal/app\n",
    })

    result = secrets.run(_context(project, keyword_plugin=keyword_plugin))

    assert result.findings == []


def test_uuid_not_found(tmp_path):
    project = _project(tmp_path, {
        "app/ids.py": 'api_key = "123e4567-e89b-12d3-a456-426614174000"\n',
    })

    result = secrets.run(_context(project, keyword_plugin=True, entropy_plugins=True))

    assert result.findings == []


def test_lock_file_integrity_not_found(tmp_path):
    integrity = "sha512-" + base64.b64encode(random_text(ALNUM, 64).encode()).decode()
    lock = {"name": "web", "lockfileVersion": 3, "packages": {"node_modules/left-pad": {
        "version": "1.3.0", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
        "integrity": integrity}}}
    digest = random_text("0123456789abcdef", 64)
    project = _project(tmp_path, {
        "web/package-lock.json": json.dumps(lock, indent=2),
        "requirements.txt": f"left-pad==1.3.0 \\\n    --hash=sha256:{digest}\n",
        "web/package.json": json.dumps({"name": "web", "integrity": integrity}),
    })

    result = secrets.run(_context(project, entropy_plugins=True))

    assert result.findings == []


def test_placeholder_token_not_found(tmp_path):
    project = _project(tmp_path, {
        "README.md": "export GITHUB_TOKEN=ghp_" + "x" * 36 + "\n"
                     "SLACK_WEBHOOK=https://hooks.slack.com/services/T00000000/B00000000/"
                     + "X" * 24 + "\n",
    })

    result = secrets.run(_context(project))

    assert result.findings == []


def test_private_key_found_detector_code_not(tmp_path):
    key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
    project = _project(tmp_path, {
        "deploy/id_ed25519": key,
        "tools/find_keys.py": 'MARKER = "-----BEGIN RSA PRIVATE KEY-----"\n'
                              'if MARKER in text:\n    print("key")\n',
    })

    result = secrets.run(_context(project))

    assert _located(result) == [("deploy/id_ed25519", 1, "private-key")]


def test_url_passwords_judged_by_host(tmp_path):
    project = _project(tmp_path, {
        "config.yaml": f"prod: postgresql://app:{URL_PASSWORD}@db.prod.internal/app\n"
                       f"dev: postgresql://app:{URL_PASSWORD}@localhost/app\n"
                       "docs: https://user:password@example.com/\n"
                       "ci: redis://:***@cache:6379/0\n",
    })

    result = secrets.run(_context(project))

    assert _located(result) == [("config.yaml", 1, "url-password")]


def test_allow_marker_suppresses(tmp_path):
    project = _project(tmp_path, {
        "app/settings.py": f'TOKEN = "{GITHUB_TOKEN}"  # pragma: allowlist secret\n',
    })

    result = secrets.run(_context(project))

    assert result.status is Status.PASS
    [finding] = result.findings
    assert finding.suppression == "allowed inline (pragma: allowlist secret)"
    assert result.summary == "No secrets in 1 file; 1 suppressed."


def test_allow_nextline_marker_suppresses(tmp_path):
    stripe_key = sample("stripe-live-key").secret
    project = _project(tmp_path, {
        "deploy/app.env": f"# pragma: allowlist nextline secret\nSTRIPE_KEY={stripe_key}\n",
    })

    result = secrets.run(_context(project))

    assert result.status is Status.PASS
    assert [finding.suppression for finding in result.findings] == [
        "allowed inline (pragma: allowlist secret)"]


def test_allow_marker_applies_to_detect_secrets(tmp_path):
    project = _project(tmp_path, {"app/auth.py": f'JWT = "{_jwt()}"  # pragma: allowlist secret\n'})

    result = secrets.run(_context(project))

    assert [(finding.rule, finding.suppression is not None) for finding in result.findings] == [
        ("json-web-token", True)]


def test_detect_secrets_only_kind_found(tmp_path):
    project = _project(tmp_path, {"app/auth.py": f'JWT = "{_jwt()}"\n'})

    result = secrets.run(_context(project))

    assert _located(result) == [("app/auth.py", 1, "json-web-token")]
    assert result.findings[0].message.startswith("JSON Web Token (hashed_secret ")


def test_disabled_plugins_setting(tmp_path):
    project = _project(tmp_path, {"app/auth.py": f'JWT = "{_jwt()}"\n'})

    result = secrets.run(_context(project, disabled_plugins=["JwtTokenDetector"]))

    assert result.findings == []


def test_entropy_plugins_setting(tmp_path):
    value = random_text(ALNUM + "+/", 48)
    project = _project(tmp_path, {"app/data.py": f'BLOB = "{value}"\n'})

    default = secrets.run(_context(project))
    with_entropy = secrets.run(_context(project, entropy_plugins=True))

    assert default.findings == []
    assert [finding.rule for finding in with_entropy.findings] == ["base64-high-entropy-string"]


def test_keyword_plugin_setting(tmp_path):
    project = _project(tmp_path, {"app/db.py": f'db_password = "{random_text(ALNUM, 14)}"\n'})

    default = secrets.run(_context(project))
    with_keyword = secrets.run(_context(project, keyword_plugin=True))

    assert default.findings == []
    assert [finding.rule for finding in with_keyword.findings] == ["secret-keyword"]


def test_excluded_dirs_not_scanned(tmp_path):
    line = f'TOKEN = "{GITHUB_TOKEN}"\n'
    project = _project(tmp_path, {".venv/lib/a.py": line, "web/node_modules/pkg/b.js": line,
                                  "pkg.egg-info/PKG-INFO": line, "src/ok.py": "x = 1\n"})

    result = secrets.run(_context(project))

    assert result.findings == []
    assert result.summary == "No secrets in 1 file."


def test_exclude_setting(tmp_path):
    line = f'TOKEN = "{GITHUB_TOKEN}"\n'
    project = _project(tmp_path, {"tests/fixtures/a.py": line, "conftest.py": line,
                                  "src/app.py": line})

    result = secrets.run(_context(project, exclude=["tests/fixtures/**", "**/conftest.py"]))

    assert _located(result) == [("src/app.py", 1, "github-token")]


def _detect_secrets_baseline(project: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--no-verify"],
        cwd=project, capture_output=True, check=True, text=True)
    return json.loads(completed.stdout)


def test_baseline_suppresses(tmp_path):
    project = _project(tmp_path, {"app/settings.py": f'TOKEN = "{GITHUB_TOKEN}"\n'})
    baseline = _detect_secrets_baseline(project)
    (project / ".secrets.baseline").write_text(json.dumps(baseline))

    result = secrets.run(_context(project))

    assert result.status is Status.PASS
    assert [finding.suppression for finding in result.findings] == ["reviewed in baseline"]


def test_baseline_audited_secret_counts(tmp_path):
    project = _project(tmp_path, {"app/settings.py": f'TOKEN = "{GITHUB_TOKEN}"\n'})
    baseline = _detect_secrets_baseline(project)
    for entry in baseline["results"]["app/settings.py"]:
        entry["is_secret"] = True
    (project / ".secrets.baseline").write_text(json.dumps(baseline))

    result = secrets.run(_context(project))

    assert result.status is Status.FAIL
    [finding] = result.findings
    assert finding.suppression is None
    assert finding.message.endswith("; audited as a real secret in the baseline")


def test_baseline_prefix_hash_hides_one_line(tmp_path):
    project = _project(tmp_path, {"app/settings.py": f'TOKEN = "{GITHUB_TOKEN}"\n'})
    (project / ".secrets.baseline").write_text(json.dumps(_detect_secrets_baseline(project)))
    other = "ghp_" + random_text(ALNUM, 36)
    with (project / "app/settings.py").open("a") as handle:
        handle.write(f'OTHER = "{other}"\n')

    result = secrets.run(_context(project))

    assert [(finding.line, finding.suppression) for finding in result.findings] == [
        (1, "reviewed in baseline"), (2, None)]


def test_baseline_by_reported_hash(tmp_path):
    anthropic = sample("anthropic-api-key")
    project = _project(tmp_path, {"keys/anthropic.env": anthropic.line + "\n"})
    entry = {"type": "Anthropic API key", "filename": "keys/anthropic.env",
             "hashed_secret": hash_secret(anthropic.secret), "is_verified": False}
    (project / "reviewed.json").write_text(json.dumps({"results": {"keys/anthropic.env": [entry]}}))

    result = secrets.run(_context(project, baseline="reviewed.json"))

    assert [finding.suppression for finding in result.findings] == ["reviewed in baseline"]


def test_invalid_baseline_is_error(tmp_path):
    project = _project(tmp_path, {"app.py": "x = 1\n", ".secrets.baseline": "{not json"})

    result = secrets.run(_context(project))

    assert result.status is Status.ERROR
    assert result.summary.startswith("baseline .secrets.baseline is invalid: ")


def test_tool_failure_is_error(tmp_path):
    project = _project(tmp_path, {"app.py": "x = 1\n"})

    result = secrets.run(_context(project, disabled_plugins=["NoSuchDetector"]))

    assert result.status is Status.ERROR
    assert result.exit_code != 0
    assert result.summary.startswith("detect-secrets exited with code ")


def test_timeout_raises(tmp_path):
    project = _project(tmp_path, {"app.py": "x = 1\n"})
    context = _context(project)
    context.timeout_s = 0.01

    with pytest.raises(CheckTimeout):
        secrets.run(context)


def test_empty_project_passes(tmp_path):
    project = _project(tmp_path, {})

    result = secrets.run(_context(project))

    assert result.status is Status.PASS
    assert result.summary == "No secrets in 0 files."


def test_cores_setting_runs(tmp_path):
    project = _project(tmp_path, {"a.py": f'T = "{GITHUB_TOKEN}"\n', "b.py": "x = 1\n"})

    result = secrets.run(_context(project, cores=1))

    assert _located(result) == [("a.py", 1, "github-token")]
