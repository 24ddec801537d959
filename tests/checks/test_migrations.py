"""The reversible-migrations check, on Alembic and Django projects built in tmp_path."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from tinysdlc_nb.gates.checks import migrations
from tinysdlc_nb.gates.model import CheckContext, CheckResult, Status, Tier
from tinysdlc_nb.gates.tool import run_tool

FIXTURES = Path(__file__).parent.parent / "fixtures" / "migrations"

REVISION = '''
"""{title}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = {down_revision}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''

ADD_COLUMN = '    op.add_column("users", sa.Column("email", sa.String(200)))'
DROP_COLUMN = '    op.drop_column("users", "email")'


def write(project: Path, relative: str, text: str) -> Path:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def write_revision(project: Path, relative: str, *, revision: str = "a1b2",
                   upgrade: str = ADD_COLUMN, downgrade: str = DROP_COLUMN,
                   down_revision: str = "None") -> Path:
    text = REVISION.format(title=f"Revision {revision}.", revision=revision,
                           down_revision=down_revision, upgrade=upgrade, downgrade=downgrade)
    return write(project, relative, text)


def check(project: Path, **settings) -> CheckResult:
    merged = {setting.key: setting.default for setting in migrations.SETTINGS}
    merged.update(settings)
    ctx = CheckContext(project=project, tier=Tier.LITE, settings=merged,
                       work_dir=project.parent / "work")
    return migrations.run(ctx)


def locations(result: CheckResult) -> list[tuple[str, int | None, str]]:
    return [(finding.file, finding.line, finding.rule) for finding in result.findings]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


# Alembic


def test_pass_only_downgrade_is_finding(project):
    write_revision(project, "alembic/versions/a1b2_add_email.py", downgrade="    pass")

    result = check(project)

    assert locations(result) == [("alembic/versions/a1b2_add_email.py", 14, "empty-downgrade")]
    assert result.status is Status.FAIL


def test_docstring_ellipsis_comment_downgrade_is_finding(project):
    body = ('    """Undo the email column."""\n'
            '    # op.drop_column("users", "email")\n'
            '    ...\n'
            '    return')
    write_revision(project, "alembic/versions/a1b2_add_email.py", downgrade=body)

    assert [finding.rule for finding in check(project).findings] == ["empty-downgrade"]


def test_real_downgrade_is_not_finding(project):
    write_revision(project, "alembic/versions/a1b2_add_email.py")

    result = check(project)

    assert result.findings == []
    assert result.status is Status.PASS


def test_missing_downgrade_is_finding(project):
    write(project, "db/versions/c3d4_seed.py", '''
        """Seed the plans table."""
        from alembic import op

        revision = "c3d4"
        down_revision = "a1b2"


        def upgrade():
            op.execute("INSERT INTO plans (name) VALUES ('free')")
    ''')

    result = check(project)

    assert locations(result) == [("db/versions/c3d4_seed.py", 4, "missing-downgrade")]
    assert "c3d4" in result.findings[0].message


def test_merge_revision_with_empty_bodies_passes(project):
    write_revision(project, "alembic/versions/e5f6_merge.py", revision="e5f6",
                   down_revision='("a1b2", "b2c3")', upgrade="    pass", downgrade="    pass")

    assert check(project).status is Status.PASS


def test_raise_only_downgrade_is_finding(project):
    write_revision(project, "alembic/versions/a1b2_add_email.py",
                   downgrade='    raise RuntimeError("data loss: cannot restore emails")')

    assert [finding.rule for finding in check(project).findings] == ["irreversible-downgrade"]


def test_irreversible_comment_suppresses(project):
    body = "    # irreversible: the purged rows cannot be restored\n    pass"
    write_revision(project, "alembic/versions/a1b2_purge.py", downgrade=body)

    result = check(project)

    assert result.findings[0].suppression == "the purged rows cannot be restored"
    assert result.status is Status.PASS
    assert result.summary == ("Every migration can be rolled back except 1 migration marked "
                              "irreversible on purpose (1 Alembic revision checked).")


def test_unparsable_revision_is_finding(project):
    path = write_revision(project, "alembic/versions/a1b2_add_email.py")
    path.write_text(path.read_text() + "\ndef broken(:\n", encoding="utf-8")

    result = check(project)

    assert [finding.rule for finding in result.findings] == ["unparsable-migration"]
    assert result.status is Status.FAIL


def test_no_migrations_is_skipped(project):
    write(project, "app/main.py", "print('hello')\n")
    write(project, "app/versions/helpers.py", "def upgrade_config():\n    return 1\n")

    result = check(project)

    assert result.status is Status.SKIPPED
    assert "No Alembic revisions or Django migrations" in result.summary


def test_empty_versions_folder_is_skipped(project):
    write(project, "alembic.ini", "[alembic]\nscript_location = migrations\n")
    write(project, "migrations/env.py", "from alembic import context\n")
    (project / "migrations" / "versions").mkdir()

    assert check(project).status is Status.SKIPPED


def test_several_migration_folders_found(project):
    write_revision(project, "services/billing/alembic/versions/b1_add.py", revision="b1")
    write_revision(project, "services/users/db/migrations/versions/u1_add.py", revision="u1",
                   downgrade="    pass")

    result = check(project)
    report = json.loads(result.report)

    assert sorted(entry["revision"] for entry in report["alembic_revisions"]) == ["b1", "u1"]
    assert locations(result) == [
        ("services/users/db/migrations/versions/u1_add.py", 14, "empty-downgrade")]


def test_ini_version_locations_found(project):
    write(project, "alembic.ini", """
        [alembic]
        script_location = %(here)s/alembic
        version_locations = %(here)s/alembic/versions %(here)s/plugins/audit_revisions
    """)
    write_revision(project, "plugins/audit_revisions/p1_audit.py", revision="p1",
                   downgrade="    pass")

    assert locations(check(project)) == [
        ("plugins/audit_revisions/p1_audit.py", 14, "empty-downgrade")]


def test_pyproject_version_locations_found(project):
    write(project, "pyproject.toml", """
        [tool.alembic]
        script_location = "%(here)s/db"
        version_locations = ["%(here)s/db/history"]
    """)
    write_revision(project, "db/history/h1_add.py", revision="h1", downgrade="    pass")

    assert [finding.rule for finding in check(project).findings] == ["empty-downgrade"]


def test_package_script_location_is_ignored(project):
    write(project, "alembic.ini", "[alembic]\nscript_location = myapp:migrations\n")
    write_revision(project, "myapp/migrations/versions/a1_add.py", revision="a1")

    assert check(project).status is Status.PASS


def test_tests_excluded_by_default(project):
    write_revision(project, "tests/fixtures/alembic/versions/t1_bad.py", revision="t1",
                   downgrade="    pass")

    assert check(project).status is Status.SKIPPED


def test_tests_included_when_exclude_emptied(project):
    write_revision(project, "tests/fixtures/alembic/versions/t1_bad.py", revision="t1",
                   downgrade="    pass")

    assert check(project, exclude=[]).status is Status.FAIL


def test_excluded_dirs_not_searched(project):
    write_revision(project, ".venv/lib/pkg/versions/v1_bad.py", revision="v1",
                   downgrade="    pass")

    assert check(project).status is Status.SKIPPED


def test_summary_names_first_finding(project):
    write_revision(project, "alembic/versions/a1b2_add_email.py", downgrade="    pass")

    assert check(project).summary == (
        "1 irreversible migration in 1 Alembic revision; the first is at "
        "alembic/versions/a1b2_add_email.py:14.")


def test_summary_counts_both_kinds(project):
    write_revision(project, "alembic/versions/a1b2_add_email.py")
    write_django(project, "        migrations.RunPython(forwards, backwards),")

    assert check(project).summary == (
        "Every migration can be rolled back (1 Alembic revision and 1 Django migration file "
        "checked).")


def test_report_is_json(project):
    write_revision(project, "alembic/versions/a1b2_add_email.py", downgrade="    pass")

    result = check(project)
    report = json.loads(result.report)

    assert result.report_name == "migrations.json"
    assert report["alembic_revisions"] == [{
        "file": "alembic/versions/a1b2_add_email.py", "revision": "a1b2",
        "down_revision": None, "downgrade": "empty"}]
    assert report["findings"] == [finding.as_dict() for finding in result.findings]


def test_fixture_project_findings():
    result = check(FIXTURES / "alembic_project")

    assert locations(result) == [("migrations/versions/0002_add_email.py", 16, "empty-downgrade")]


def test_fixture_empty_downgrade_leaves_column(tmp_path):
    # The real Alembic run shows what the finding means: after downgrading 0002 the column
    # it added is still there, while 0001's downgrade really drops its table.
    project = tmp_path / "alembic_project"
    shutil.copytree(FIXTURES / "alembic_project", project)
    alembic = [sys.executable, "-m", "alembic", "-c", str(project / "alembic.ini")]

    for step in (["upgrade", "head"], ["downgrade", "0001"]):
        run = run_tool("migrations", [*alembic, *step], cwd=project, timeout_s=60)
        assert run.exit_code == 0, run.stderr.decode()
    with sqlite3.connect(project / "app.db") as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(users)")]
    assert "email" in columns

    run = run_tool("migrations", [*alembic, "downgrade", "base"], cwd=project, timeout_s=60)
    assert run.exit_code == 0, run.stderr.decode()
    with sqlite3.connect(project / "app.db") as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    assert "users" not in tables


# Django


DJANGO_MIGRATION = '''
from django.db import migrations


def forwards(apps, schema_editor):
    pass


def backwards(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
{operations}
    ]
'''


def write_django(project: Path, operations: str) -> None:
    write(project, "shop/migrations/__init__.py", "")
    write(project, "shop/migrations/0002_data.py", DJANGO_MIGRATION.format(operations=operations))


@pytest.mark.parametrize(("operation", "rule"), [
    ("migrations.RunPython(forwards)", "irreversible-runpython"),
    ("migrations.RunPython(forwards, reverse_code=None)", "irreversible-runpython"),
    ("migrations.RunPython(forwards, backwards)", None),
    ("migrations.RunPython(forwards, migrations.RunPython.noop)", None),
    ("migrations.RunPython(code=forwards, reverse_code=backwards)", None),
    ('migrations.RunSQL("UPDATE shop_item SET price = 0")', "irreversible-runsql"),
    ('migrations.RunSQL("UPDATE shop_item SET price = 1", reverse_sql=None)',
     "irreversible-runsql"),
    ('migrations.RunSQL("CREATE INDEX i ON t (c)", "DROP INDEX i")', None),
    ('migrations.RunSQL(sql="SELECT 1", reverse_sql=migrations.RunSQL.noop)', None),
])
def test_django_reversibility(project, operation, rule):
    write_django(project, f"        {operation},")

    result = check(project)

    assert [finding.rule for finding in result.findings] == ([rule] if rule else [])


def test_django_finding_line(project):
    write_django(project, "        migrations.RunSQL(\"SELECT 1\", \"SELECT 1\"),\n"
                          "        migrations.RunPython(forwards),")

    assert locations(check(project)) == [
        ("shop/migrations/0002_data.py", 16, "irreversible-runpython")]


def test_django_comment_suppresses(project):
    write_django(project, "        # irreversible: one-off backfill of historic prices\n"
                          "        migrations.RunPython(forwards),")

    result = check(project)

    assert result.findings[0].suppression == "one-off backfill of historic prices"
    assert result.status is Status.PASS


def test_django_unparsable_is_finding(project):
    write(project, "shop/migrations/0003_broken.py",
          "from django.db import migrations\n\nclass Migration(migrations.Migration:\n    pass\n")

    result = check(project)

    assert locations(result) == [("shop/migrations/0003_broken.py", 3, "unparsable-migration")]
    assert result.status is Status.FAIL


def test_django_setting_off_skips(project):
    write_django(project, "        migrations.RunPython(forwards),")

    assert check(project, django=False).status is Status.SKIPPED


def test_django_file_without_migration_class_ignored(project):
    write(project, "shop/migrations/helpers.py", "def rebuild():\n    return 1\n")

    assert check(project).status is Status.SKIPPED
