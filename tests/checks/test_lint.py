"""The lint check against small projects, with the real ruff."""

from __future__ import annotations

from pathlib import Path

from tinysdlc_nb.gates.checks import lint
from tinysdlc_nb.gates.model import CheckContext, Status, Tier

CLEAN_MODULE = 'def add(left, right):\n    return left + right\n'


def _context(project: Path, **settings) -> CheckContext:
    merged = {setting.key: setting.default for setting in lint.SETTINGS} | settings
    return CheckContext(project=project, tier=Tier.LITE, settings=merged,
                        work_dir=project.parent / "work", timeout_s=60)


def _write(project: Path, relative: str, text: str) -> Path:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


def test_lint_finding_at_file_and_line(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", '"""Doc."""\n\nimport os\n\n\ndef add(a, b):\n    return a + b\n')

    result = lint.run(_context(project))

    assert result.status is Status.FAIL
    assert [(f.file, f.line, f.rule) for f in result.findings] == [("pkg/mod.py", 3, "F401")]
    assert "os" in result.findings[0].message
    assert result.exit_code == 1
    assert result.summary == "1 finding in 1 file."


def test_lint_clean_project_passes(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", CLEAN_MODULE)

    result = lint.run(_context(project))

    assert result.status is Status.PASS
    assert result.findings == []
    assert result.exit_code == 0
    assert result.report.strip() == b"[]"
    assert result.report_name == "ruff.json"
    assert result.tool_version


def test_lint_broken_config_is_error(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", CLEAN_MODULE)
    _write(project, "ruff.toml", 'line-length = "wide"\n')

    result = lint.run(_context(project))

    assert result.status is Status.ERROR
    assert result.exit_code == 2
    assert "ruff.toml" in result.summary


def test_lint_skips_excluded_dirs(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", CLEAN_MODULE)
    _write(project, ".venv/lib/site.py", "import os\n")
    _write(project, "node_modules/tool/x.py", "import os\n")
    _write(project, "pyproject.toml", "[tool.ruff]\nexclude = []\n")

    result = lint.run(_context(project))

    assert result.status is Status.PASS


def test_lint_noqa_listed_as_suppressed(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", "import os  # noqa: F401 re-exported for plugins\n")

    result = lint.run(_context(project))

    assert result.status is Status.PASS
    assert [(f.file, f.line, f.rule) for f in result.findings] == [("pkg/mod.py", 1, "F401")]
    assert result.findings[0].suppression == "# noqa: F401 re-exported for plugins"
    assert "1 suppressed" in result.summary


def test_lint_file_exemption_listed_as_suppressed(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", "# ruff: noqa: F401\nimport os\n")

    result = lint.run(_context(project))

    assert result.status is Status.PASS
    assert result.findings[0].suppression == "# ruff: noqa: F401"


def test_lint_respects_project_config(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", "import os\n")
    _write(project, "pyproject.toml", '[tool.ruff.lint]\nignore = ["F401"]\n')

    result = lint.run(_context(project))

    assert result.status is Status.PASS
    assert result.findings == []


def test_lint_select_setting_narrows_rules(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", "import os\n")

    result = lint.run(_context(project, select=["E"]))

    assert result.status is Status.PASS


def test_lint_extra_args_cannot_fix_files(tmp_path):
    project = _project(tmp_path)
    module = _write(project, "pkg/mod.py", "import os\n")

    result = lint.run(_context(project, extra_args=["--fix"]))

    assert result.status is Status.FAIL
    assert module.read_text(encoding="utf-8") == "import os\n"


def test_lint_syntax_error_is_finding(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/broken.py", "def broken(:\n    pass\n")

    result = lint.run(_context(project))

    assert result.status is Status.FAIL
    assert result.findings[0].rule == "invalid-syntax"
    assert result.findings[0].line == 1


def test_lint_without_python_files_skipped(tmp_path):
    project = _project(tmp_path)
    _write(project, "README.md", "# Notes\n")
    _write(project, ".venv/lib/site.py", "import os\n")

    result = lint.run(_context(project))

    assert result.status is Status.SKIPPED
    assert "No Python files" in result.summary


def test_lint_leaves_no_cache_in_project(tmp_path):
    project = _project(tmp_path)
    _write(project, "pkg/mod.py", CLEAN_MODULE)

    lint.run(_context(project))

    assert not (project / ".ruff_cache").exists()
