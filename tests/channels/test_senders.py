"""Request shapes of WhatsApp, Discord and the signed webhook, and text splitting."""

from __future__ import annotations

import hashlib
import hmac

from channelkit import WEBHOOK_KEY, Reply, queue, unnumbered, write_config

from tinysdlc_nb.channels.delivery import deliver_due
from tinysdlc_nb.channels.split import split_text, text_length
from tinysdlc_nb.channels.status import channel_status


def test_whatsapp_each_recipient(sqlite_store, project, whatsapp_api):
    config = write_config(project, f"""
[channels]
notify = ["whatsapp"]
[channels.whatsapp]
api_url = "{whatsapp_api.url}/v21.0"
phone_number_id = "1055"
to = ["+15550001111", "+15550002222"]
""")
    queue(sqlite_store, "z" * 5000)

    summary = deliver_due(sqlite_store, config)

    bodies = whatsapp_api.bodies()
    assert whatsapp_api.problems == []
    assert [body["to"] for body in bodies] == ["+15550001111"] * 2 + ["+15550002222"] * 2
    assert "".join(unnumbered(body["text"]["body"]) for body in bodies[:2]) == \
        "For oncall:\n" + "z" * 5000
    assert summary["delivered"] == 1


def test_whatsapp_error_recorded(sqlite_store, project, whatsapp_api):
    config = write_config(project, f"""
[channels]
notify = ["whatsapp"]
[channels.whatsapp]
api_url = "{whatsapp_api.url}/v21.0"
phone_number_id = "1055"
to = ["+15550001111"]
""")
    whatsapp_api.then(Reply(400, {"error": {"message": "Recipient not in allowed list",
                                            "type": "OAuthException", "code": 131030}}))
    queue(sqlite_store, "hello")

    summary = deliver_due(sqlite_store, config)
    status = channel_status(sqlite_store, config)["channels"][0]

    assert summary["retrying"] == 1
    assert status["last_error"] == "HTTP 400: Recipient not in allowed list (code 131030)"
    assert status["deliveries"]["failing"] == 1


def test_discord_content_limit(sqlite_store, project, discord_api):
    config = write_config(project, """
[channels]
notify = ["discord"]
[channels.discord]
""")
    queue(sqlite_store, "word " * 1000)

    deliver_due(sqlite_store, config)

    contents = [body["content"] for body in discord_api.bodies()]
    assert discord_api.problems == []
    assert len(contents) == 3
    assert all(body["allowed_mentions"] == {"parse": []} for body in discord_api.bodies())


def test_webhook_signature_verifies(sqlite_store, project, webhook_api):
    config = write_config(project, f"""
[channels]
notify = ["webhook"]
[channels.webhook]
url = "{webhook_api.url}/hook"
""")
    notification_id = queue(sqlite_store, "gate G4 passed", recipient="release-manager")

    deliver_due(sqlite_store, config)

    request = webhook_api.requests[0]
    timestamp = request.headers["X-TinySDLC-Timestamp"]
    expected = hmac.new(WEBHOOK_KEY.encode(), f"{timestamp}.".encode() + request.body,
                        hashlib.sha256).hexdigest()
    wrong = hmac.new(b"another key", f"{timestamp}.".encode() + request.body,
                     hashlib.sha256).hexdigest()
    assert webhook_api.problems == []
    assert request.headers["X-TinySDLC-Signature"] == f"sha256={expected}"
    assert request.headers["X-TinySDLC-Signature"] != f"sha256={wrong}"
    assert request.json["notification_id"] == notification_id
    assert request.json["recipient"] == "release-manager"
    assert request.json["text"] == "gate G4 passed"
    assert request.json["key"] == f"n{notification_id}-p1"


def test_split_short_unchanged():
    assert split_text("deploy done", 20) == ["deploy done"]


def test_split_prefers_line_breaks():
    parts = split_text("alpha beta\ngamma delta\nepsilon", 24)

    assert parts == ["(1/3) alpha beta\n", "(2/3) gamma delta\n", "(3/3) epsilon"]


def test_split_keeps_emoji_whole():
    text = "😀" * 50

    parts = split_text(text, 21)

    assert all(text_length(part) <= 21 for part in parts)
    assert "".join(unnumbered(part) for part in parts) == text


def test_split_keeps_accents_attached():
    text = "e\u0301" * 40

    parts = split_text(text, 17)

    assert all(not unnumbered(part).startswith("\u0301") for part in parts)
    assert "".join(unnumbered(part) for part in parts) == text


def test_split_numbers_widen():
    parts = split_text("x" * 300, 30)

    assert parts[0].startswith("(1/")
    assert parts[-1].startswith(f"({len(parts)}/{len(parts)}) ")
    assert all(text_length(part) <= 30 for part in parts)
