"""The wheel carries what an installed tinysdlc-nb needs outside a checkout."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(requirement) for requirement in project["dependencies"]}
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            listed |= {_name(item) for item in entry["pip"] if not item.startswith("-e")}
        else:
            listed.add(_name(entry))
    assert declared == listed - {"python", "pip"}


@pytest.mark.kernel
def test_wheel_ships_notebooks_and_migrations(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(tmp_path), str(ROOT)], check=True,
                   timeout=300)
    wheel = next(tmp_path.glob("tinysdlc_nb-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("tinysdlc_nb/notebooks/g4_production_ready.ipynb",
                     "tinysdlc_nb/notebooks/g3_ship_ready.ipynb",
                     "tinysdlc_nb/notebooks/postmortem.ipynb",
                     "tinysdlc_nb/notebooks/incident_review.ipynb",
                     "tinysdlc_nb/notebooks/team_inbox.ipynb",
                     "tinysdlc_nb/store/migrations/versions/0002_incidents.py",
                     "tinysdlc_nb/store/migrations/versions/0003_team.py",
                     "tinysdlc_nb/store/migrations/env.py",
                     "tinysdlc_nb/store/migrations/script.py.mako",
                     "tinysdlc_nb/store/migrations/versions/0001_gates.py",
                     "tinysdlc_nb/report/report.css",
                     "tinysdlc_nb/team/roles/devops.md",
                     "tinysdlc_nb/notebooks/deployment_checklist.ipynb",
                     "tinysdlc_nb/store/migrations/versions/0004_runbooks.py",
                     "tinysdlc_nb/runbooks/library/deploy-local-service.md",
                     "tinysdlc_nb/runbooks/library/rollback-local-service.md",
                     "tinysdlc_nb/runbooks/library/triage-health-check.md",
                     "tinysdlc_nb/runbooks/library/sample-service/VERSION",
                     "tinysdlc_nb/store/migrations/versions/0005_persistent.py",
                     "tinysdlc_nb/notebooks/heartbeat.ipynb",
                     "tinysdlc_nb/notebooks/operations.ipynb"):
        assert expected in names, expected

    # The runbooks run these directly, so an installed copy must keep them executable.
    infos = {info.filename: info for info in zipfile.ZipFile(wheel).infolist()}
    for script in ("tinysdlc_nb/runbooks/library/scripts/service.sh",
                   "tinysdlc_nb/runbooks/library/sample-service/bin/serve"):
        assert (infos[script].external_attr >> 16) & 0o111, script
