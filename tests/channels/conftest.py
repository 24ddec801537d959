"""Fixtures of the channel tests: a project folder, fake chat APIs and their secrets."""

from __future__ import annotations

import pytest
from channelkit import (
    DISCORD_PATH,
    SLACK_PATH,
    TELEGRAM_TOKEN,
    WEBHOOK_KEY,
    WHATSAPP_TOKEN,
    FakeApi,
    Reply,
    check_discord,
    check_slack,
    check_telegram,
    check_webhook,
    check_whatsapp,
)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")


@pytest.fixture(autouse=True)
def _direct_connections(monkeypatch):
    """Send every request straight to the fake APIs on 127.0.0.1, never through a proxy."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def telegram_api(monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_TELEGRAM_TOKEN", TELEGRAM_TOKEN)
    api = FakeApi(check_telegram, Reply(200, {"ok": True, "result": {"message_id": 1}}))
    yield api
    api.close()


@pytest.fixture
def discord_api(monkeypatch):
    api = FakeApi(check_discord, Reply(204, b""))
    monkeypatch.setenv("TINYSDLC_NB_DISCORD_WEBHOOK_URL", api.url + DISCORD_PATH)
    yield api
    api.close()


@pytest.fixture
def slack_api(monkeypatch):
    api = FakeApi(check_slack, Reply(200, b"ok"))
    monkeypatch.setenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", api.url + SLACK_PATH)
    yield api
    api.close()


@pytest.fixture
def whatsapp_api(monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_WHATSAPP_TOKEN", WHATSAPP_TOKEN)
    api = FakeApi(check_whatsapp("1055", ["+15550001111", "+15550002222"]),
                  Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.1"}]}))
    yield api
    api.close()


@pytest.fixture
def webhook_api(monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_WEBHOOK_SECRET", WEBHOOK_KEY)
    api = FakeApi(check_webhook, Reply(202, b""))
    yield api
    api.close()
