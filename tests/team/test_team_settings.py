"""Team settings in TinySDLC's settings.json schema: lookup order, validation, defaults."""

from __future__ import annotations

import json

import pytest

from tinysdlc_nb.errors import ConfigError
from tinysdlc_nb.team.defaults import default_settings, write_default_settings
from tinysdlc_nb.team.routing import route
from tinysdlc_nb.team.settings import SETTINGS_ENV, load_team_settings, parse_team_settings


def agent(provider="protocol", **extra):
    return {"name": "A", "provider": provider, **extra}


def document(**changes):
    base = {"agents": {"devops": agent(), "coder": agent(), "reviewer": agent()},
            "teams": {"dev": {"name": "Dev", "agents": ["coder", "reviewer"],
                              "leader_agent": "coder"}}}
    base.update(changes)
    return base


@pytest.mark.parametrize(("raw", "message"), [
    (document(teams={"dev": {"name": "Dev", "agents": ["coder"], "leader_agent": "reviewer"}}),
     "teams.dev.leader_agent 'reviewer' is not in the team"),
    (document(teams={"coder": {"name": "C", "agents": ["coder"], "leader_agent": "coder"}}),
     "teams.coder: id 'coder' is also an agent id"),
    (document(agents={"devops": agent("gemini")}),
     "agents.devops.provider 'gemini' is unknown"),
    (document(agents={"devops": agent("anthropic")}),
     "agents.devops.model is missing"),
    (document(agents={"devops": {"name": "D"}}), "agents.devops.provider is missing"),
    (document(agents={"devops": agent(max_delegation_depth=-1)}),
     "agents.devops.max_delegation_depth = -1 is invalid"),
    (document(agents={"devops": agent(max_delegation_depth=True)}),
     "agents.devops.max_delegation_depth = True is invalid"),
    (document(teams={"dev": {"name": "Dev", "agents": ["coder", "ghost"],
                             "leader_agent": "coder"}}),
     "teams.dev.agents\\[1\\] 'ghost' is not an agent"),
    (document(teams={"dev": {"name": "Dev", "agents": [], "leader_agent": "coder"}}),
     "teams.dev.agents must be a non-empty list"),
    (document(agents={"user": agent()}), "agents.user: id 'user' is reserved"),
    (document(agents={"bad id": agent()}), "agents.bad id: id 'bad id' is invalid"),
    (document(agents={}), "agents is empty"),
    (document(agents=[]), "agents must be an object"),
    (document(agents={"devops": agent(prompt_file="missing.md")}),
     "agents.devops.prompt_file 'missing.md' not found"),
    (document(agents={"devops": agent(name=7)}), "agents.devops.name = 7 is invalid"),
])
def test_invalid_settings_name_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_team_settings(raw)


def test_tinysdlc_file_loads():
    raw = document()
    raw["workspace"] = {"path": "~/tinysdlc-workspace"}
    raw["agents"]["coder"] = {"name": "Developer", "provider": "anthropic", "model": "opus",
                              "working_directory": "~/w/coder", "sdlc_role": "coder"}
    raw["agents"]["pm"] = {"name": "PM", "provider": "openai", "model": "gpt-5.1"}

    settings = parse_team_settings(raw)

    assert settings.agents["coder"].model_id() == "claude-opus-4-6"
    assert settings.agents["pm"].provider == "openai"
    assert settings.team_of("reviewer").id == "dev"
    assert settings.agents["devops"].max_delegation_depth == 1


def test_ids_lowercased():
    raw = document(agents={"DevOps": agent(), "coder": agent(), "reviewer": agent()})

    settings = parse_team_settings(raw)

    assert "devops" in settings.agents


def test_lookup_order(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps(document()))
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps(document(agents={"only-env": agent()}, teams={})))
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps(document(agents={"only-explicit": agent()}, teams={})))

    assert "devops" in load_team_settings(home).agents
    monkeypatch.setenv(SETTINGS_ENV, str(env_file))
    assert list(load_team_settings(home).agents) == ["only-env"]
    assert list(load_team_settings(home, explicit).agents) == ["only-explicit"]


def test_missing_file_names_fix(tmp_path):
    with pytest.raises(ConfigError, match="run `tinysdlc-nb init`"):
        load_team_settings(tmp_path)


def test_invalid_json_named(tmp_path):
    (tmp_path / "settings.json").write_text("{\"agents\": ")

    with pytest.raises(ConfigError, match="invalid JSON"):
        load_team_settings(tmp_path)


def test_prompt_file_relative_to_settings(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "ops.md").write_text("You run operations.")
    (tmp_path / "settings.json").write_text(json.dumps(
        document(agents={"devops": agent(prompt_file="prompts/ops.md")}, teams={})))

    settings = load_team_settings(tmp_path)

    assert settings.agents["devops"].prompt_file == tmp_path / "prompts" / "ops.md"


def test_default_team_reaches_every_role(tmp_path):
    path = write_default_settings(tmp_path)
    settings = load_team_settings(tmp_path)
    others = [agent_id for agent_id in settings.agents if agent_id != "devops"]

    decision = route("devops", " ".join(f"[@{agent_id}: status?]" for agent_id in others),
                     settings)

    assert path == tmp_path / "settings.json"
    assert settings.team_of("devops").id == "release"
    assert settings.teams["release"].leader_agent == "devops"
    assert sorted(delivery.to for delivery in decision.deliveries) == sorted(others)
    assert decision.dropped == ()
    assert {spec.provider for spec in settings.agents.values()} == {"protocol"}


def test_default_team_anthropic():
    raw = default_settings("anthropic")

    settings = parse_team_settings(raw)

    assert {spec.model_id() for spec in settings.agents.values()} == {"claude-sonnet-4-5"}


def test_case_duplicate_ids_rejected():
    raw = document(agents={"coder": agent(), "Coder": agent()})

    with pytest.raises(ConfigError, match="agents.Coder and agents.coder are the same id"):
        parse_team_settings(raw)


def test_byte_order_mark_accepted(tmp_path):
    (tmp_path / "settings.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(document()).encode())

    assert "devops" in load_team_settings(tmp_path).agents


def test_missing_leader_names_members():
    raw = document(teams={"dev": {"name": "Dev", "agents": ["coder", "reviewer"]}})

    with pytest.raises(ConfigError, match="leader_agent is missing; name the member .* "
                                          "coder, reviewer"):
        parse_team_settings(raw)
