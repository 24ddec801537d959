from __future__ import annotations

import pytest

from tinysdlc_nb.config import load_config
from tinysdlc_nb.errors import ConfigError
from tinysdlc_nb.gates.model import Tier


def write_config(tmp_path, text):
    (tmp_path / ".tinysdlc").mkdir(exist_ok=True)
    (tmp_path / ".tinysdlc" / "config.toml").write_text(text)
    return tmp_path


def test_defaults_without_file(tmp_path):
    config = load_config(tmp_path)
    assert config.tier is Tier.LITE
    assert config.name == tmp_path.name
    assert config.database_url == f"sqlite:///{tmp_path / '.tinysdlc' / 'state.db'}"


def test_home_env_moves_everything(tmp_path, monkeypatch):
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("TINYSDLC_NB_HOME", str(home))
    write_config(home.parent, "")
    home.mkdir()
    (home / "config.toml").write_text('[project]\ntier = "standard"\n')
    config = load_config(tmp_path)
    assert config.tier is Tier.STANDARD
    assert config.database_url == f"sqlite:///{home / 'state.db'}"


def test_database_url_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_DATABASE_URL", "postgresql+psycopg://u@db/x")
    assert load_config(tmp_path).database_url == "postgresql+psycopg://u@db/x"


@pytest.mark.parametrize(("text", "message"), [
    ('[project]\ntier = "gold"\n', "tier 'gold' is invalid; expected one of lite, standard"),
    ("[projects]\n", "unknown section 'projects'"),
    ("[gate]\nworkers = 2\n", "unknown setting 'gate.workers'"),
    ("[checks.lintt]\n", "unknown check 'lintt'"),
    ("[checks.tests]\nlite_threshold = \"high\"\n", "lite_threshold = 'high' is invalid"),
    ("[project\n", "invalid TOML"),
    ('[checks.dependencies.env]\nPYPI_TOKEN = "pypi-abc"\n', "looks like a secret"),
    ('[[waivers]]\nitem = "sbom"\nreason = "later"\n', "missing owner, expires"),
    ('[[waivers]]\nitem = "sbom"\nreason = "r"\nowner = "o"\nexpires = "soon"\n',
     "write a TOML date"),
    ('[checks.licenses.allow]\nfoo = ""\n', "package 'foo' has no reason"),
    ('[[waivers]]\nitem = "lnit"\nreason = "r"\nowner = "o"\nexpires = 2099-01-01\n',
     "waiver item 'lnit' is invalid"),
    ('[[waivers]]\nitem = "g3_confirmed"\nreason = "r"\nowner = "o"\nexpires = 2099-01-01\n',
     "g3_confirmed cannot be waived"),
    ('[[waivers]]\nitem = "lint"\nreason = "r"\nowner = "coder"\nexpires = 2099-01-01\n',
     "owned by 'coder', an agent"),
])
def test_invalid_config_named(tmp_path, text, message):
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as raised:
        load_config(tmp_path)
    assert "config.toml" in str(raised.value)


def test_missing_project_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope")


def test_non_utf8_config_is_config_error(tmp_path):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_bytes(b"[project]\nname = \"\xff\"\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path)


def test_name_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "calc"\nversion = "1"\n')
    assert load_config(tmp_path).name == "calc"


@pytest.mark.parametrize("command", ['""', "\"python -m 'pytest\""])
def test_bad_test_command_is_config_error(tmp_path, command):
    write_config(tmp_path, f"[checks.tests]\ncommand = {command}\n")
    with pytest.raises(ConfigError, match=r"\[checks.tests\] command"):
        load_config(tmp_path)
