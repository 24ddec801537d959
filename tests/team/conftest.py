"""Fixtures for team messaging: settings, a scripted agent and a project folder."""

from __future__ import annotations

import pytest
from teamkit import ScriptedAgent, team_document

from tinysdlc_nb.config import load_config
from tinysdlc_nb.team.settings import TeamSettings, parse_team_settings


@pytest.fixture
def scripted():
    ScriptedAgent.calls = []
    ScriptedAgent.script = None
    yield ScriptedAgent
    ScriptedAgent.script = None


@pytest.fixture
def team_settings() -> TeamSettings:
    return parse_team_settings(team_document())


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def config(project):
    return load_config(project)
