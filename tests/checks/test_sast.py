"""The sast check against small projects, with the real bandit."""

from __future__ import annotations

from pathlib import Path

from tinysdlc_nb.gates.checks import sast
from tinysdlc_nb.gates.model import CheckContext, Status, Tier

SHELL_CALL = "import subprocess\n\n\ndef run(command):\n    subprocess.call(command, shell=True)\n"
SQL_QUERY = 'def query(key):\n    return "SELECT * FROM t WHERE id = %s" % key\n'
RANDOM_TOKEN = "import random\n\n\ndef token():\n    return random.random()\n"


def _context(project: Path, tier: Tier = Tier.LITE, **settings) -> CheckContext:
    merged = {setting.key: setting.default for setting in sast.SETTINGS} | settings
    return CheckContext(project=project, tier=tier, settings=merged,
                        work_dir=project.parent / "work", timeout_s=60)


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    for relative, text in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return project


def _by_rule(result, rule: str):
    return [finding for finding in result.findings if finding.rule == rule]


def test_sast_shell_true_fails(tmp_path):
    project = _project(tmp_path, {"app/run.py": SHELL_CALL})

    result = sast.run(_context(project))

    assert result.status is Status.FAIL
    [finding] = _by_rule(result, "B602")
    assert (finding.file, finding.line) == ("app/run.py", 5)
    assert finding.severity == "error"
    assert finding.suppression is None
    assert "severity HIGH" in finding.message
    assert result.report_name == "bandit.json"


def test_sast_nosec_listed_as_suppressed(tmp_path):
    source = SHELL_CALL.replace("shell=True)", "shell=True)  # nosec B602 reviewed: fixed argv")
    project = _project(tmp_path, {"app/run.py": source})

    result = sast.run(_context(project))

    assert result.status is Status.PASS
    [finding] = _by_rule(result, "B602")
    assert finding.line == 5
    assert finding.suppression == "# nosec B602 reviewed: fixed argv"
    assert "1 suppressed" in result.summary


def test_sast_nosec_for_other_test_counts(tmp_path):
    source = SHELL_CALL.replace("shell=True)", "shell=True)  # nosec B101")
    project = _project(tmp_path, {"app/run.py": source})

    result = sast.run(_context(project))

    assert result.status is Status.FAIL
    assert _by_rule(result, "B602")[0].suppression is None


def test_sast_nosec_inside_multiline_call(tmp_path):
    source = ("import subprocess\n\n\ndef run(command):\n    subprocess.call(\n"
              "        command,\n        shell=True,  # nosec\n    )\n")
    project = _project(tmp_path, {"app/run.py": source})

    result = sast.run(_context(project))

    assert result.status is Status.PASS
    assert _by_rule(result, "B602")[0].suppression == "# nosec"


def test_sast_low_finding_is_note_at_lite(tmp_path):
    project = _project(tmp_path, {"app/token.py": RANDOM_TOKEN})

    result = sast.run(_context(project, Tier.LITE))

    assert result.status is Status.PASS
    assert _by_rule(result, "B311")[0].severity == "note"


def test_sast_low_finding_counts_at_professional(tmp_path):
    project = _project(tmp_path, {"app/token.py": RANDOM_TOKEN})

    result = sast.run(_context(project, Tier.PROFESSIONAL))

    assert result.status is Status.FAIL
    assert _by_rule(result, "B311")[0].severity == "warning"


def test_sast_tier_threshold_setting(tmp_path):
    project = _project(tmp_path, {"app/token.py": RANDOM_TOKEN})

    result = sast.run(_context(project, Tier.LITE, min_severity_lite="low"))

    assert result.status is Status.FAIL


def test_sast_low_confidence_is_note(tmp_path):
    project = _project(tmp_path, {"app/query.py": SQL_QUERY})

    result = sast.run(_context(project, Tier.STANDARD))

    assert result.status is Status.PASS
    assert _by_rule(result, "B608")[0].severity == "note"


def test_sast_min_confidence_setting(tmp_path):
    project = _project(tmp_path, {"app/query.py": SQL_QUERY})

    result = sast.run(_context(project, Tier.STANDARD, min_confidence="low"))

    assert result.status is Status.FAIL
    assert _by_rule(result, "B608")[0].severity == "warning"


def test_sast_excludes_tests_and_venv(tmp_path):
    project = _project(tmp_path, {
        "app/ok.py": "VALUE = 1\n",
        "tests/test_run.py": SHELL_CALL,
        "app/conftest.py": SHELL_CALL,
        ".venv/lib/site.py": SHELL_CALL,
    })

    result = sast.run(_context(project))

    assert result.status is Status.PASS
    assert result.findings == []


def test_sast_exclude_setting(tmp_path):
    project = _project(tmp_path, {"app/ok.py": "VALUE = 1\n", "scripts/run.py": SHELL_CALL})

    result = sast.run(_context(project, exclude=["scripts/**"]))

    assert result.status is Status.PASS


def test_sast_unparsable_file_is_error(tmp_path):
    project = _project(tmp_path, {"app/run.py": SHELL_CALL, "app/old.py": 'print "py2"\n'})

    result = sast.run(_context(project))

    assert result.status is Status.ERROR
    assert "app/old.py" in result.summary
    assert _by_rule(result, "parse-error")[0].file == "app/old.py"
    assert _by_rule(result, "B602")


def test_sast_dash_file_name_is_scanned(tmp_path):
    project = _project(tmp_path, {"-x.py": SHELL_CALL})

    result = sast.run(_context(project))

    assert result.status is Status.FAIL


def test_sast_without_production_code_skipped(tmp_path):
    project = _project(tmp_path, {"tests/test_run.py": SHELL_CALL, "README.md": "# Notes\n"})

    result = sast.run(_context(project))

    assert result.status is Status.SKIPPED


def test_hardcoded_password_not_repeated(tmp_path):
    secret_value = "hunter2-" + "very-secret-Passw0rd!"
    project = _project(tmp_path, {"app/settings.py": f'DB_PASSWORD = "{secret_value}"\n'})
    result = sast.run(_context(project, Tier.ENTERPRISE))
    assert [finding.rule for finding in result.findings] == ["B105"]
    assert secret_value not in result.findings[0].message
    assert secret_value not in result.report.decode()
