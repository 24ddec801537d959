"""Hard routing cases: odd ids, long branches, the message cap, notice loops, many tags."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tinysdlc_nb.errors import ConfigError, UsageError
from tinysdlc_nb.store.schema import team_events, team_messages
from tinysdlc_nb.team.claims import claim
from tinysdlc_nb.team.conversations import conversation_detail, start_conversation
from tinysdlc_nb.team.delivery import finish_with_reply
from tinysdlc_nb.team.files import extract_files
from tinysdlc_nb.team.model import HUMAN, AgentContext, AgentReply, DropReason
from tinysdlc_nb.team.queue import QueueOptions
from tinysdlc_nb.team.routing import route, route_user_message
from tinysdlc_nb.team.settings import parse_team_settings
from tinysdlc_nb.team.tags import parse_tags
from tinysdlc_nb.team.worker import Worker

OPTIONS = QueueOptions(max_attempts=3, backoff_base_s=10, backoff_max_s=60, lease_s=30)


def send(store, settings, text, max_messages=50):
    decision = route_user_message(text, settings, "devops")
    return start_conversation(store, decision, text=text, started_by="alice", sender=HUMAN,
                              max_messages=max_messages, max_attempts=3)


def message_total(store, conversation_id):
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(team_messages).where(
            team_messages.c.conversation_id == conversation_id)).scalar_one()


def reply_next(store, settings, files_dir, text):
    held = claim(store, "w1", OPTIONS)
    return held, finish_with_reply(store, held, AgentReply(text), settings, files_dir)


@pytest.mark.parametrize("text", ["[@dévops: deploy 1.4]", "[@ops🚀: deploy 1.4]",
                                  "[@ＤＥＶＯＰＳ: deploy 1.4]"],
                         ids=["accent", "emoji", "fullwidth"])
def test_unicode_tag_id_reported(team_settings, text):
    decision = route("coder", text, team_settings)

    assert decision.deliveries == ()
    assert [str(item.reason) for item in decision.dropped] == ["unknown_id"]


@pytest.mark.parametrize("text", ["@dévops deploy 1.4", "@ops🚀 deploy 1.4"],
                         ids=["accent", "emoji"])
def test_user_unicode_address_rejected(team_settings, text):
    with pytest.raises(UsageError):
        route_user_message(text, team_settings, "pjm")


def test_user_fanout_respects_cap(any_store, team_settings):
    text = "[@coder: build] [@tester: test] [@pjm: plan]"
    decision = route_user_message(text, team_settings, "devops")

    try:
        started = start_conversation(any_store, decision, text=text, started_by="alice",
                                     sender=HUMAN, max_messages=2, max_attempts=3)
    except UsageError:
        return
    assert message_total(any_store, started.conversation_id) <= 2


def test_long_branch_depth_limit(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops go")
    chain = [("devops", "[@coder: one]"), ("coder", "[@reviewer: two]"),
             ("reviewer", "[@tester: three]"), ("tester", "[@pjm: four]")]

    outcomes = []
    for agent, text in chain:
        held, outcome = reply_next(any_store, team_settings, tmp_path, text)
        assert held.recipient == agent
        outcomes.append((held, outcome))
    notice = claim(any_store, "w1", OPTIONS)

    assert [held.depth for held, _ in outcomes] == [0, 1, 2, 3]
    assert [str(item.reason) for item in outcomes[-1][1].dropped] == ["over_depth"]
    assert notice.kind == "notice"
    assert notice.recipient == "tester"
    assert "depth 4" in notice.body


def test_long_branch_circular(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops go")
    reply_next(any_store, team_settings, tmp_path, "[@coder: a]")
    reply_next(any_store, team_settings, tmp_path, "[@devops: b]")
    held, outcome = reply_next(any_store, team_settings, tmp_path, "[@coder: c] [@pjm: d]")

    assert held.hops == (("devops", "coder"), ("coder", "devops"))
    assert [str(item.reason) for item in outcome.dropped] == ["circular"]
    assert [item.mention for item in outcome.dropped] == ["coder"]
    assert len(outcome.handoffs) == 1


def test_cap_exact_limit(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops go", max_messages=3)
    _, fan = reply_next(any_store, team_settings, tmp_path, "[@coder: a] [@tester: b]")
    _, over = reply_next(any_store, team_settings, tmp_path, "[@pjm: c]")
    reply_next(any_store, team_settings, tmp_path, "done")

    assert len(fan.handoffs) == 2
    assert [str(item.reason) for item in over.dropped] == ["over_message_cap"]
    assert message_total(any_store, started.conversation_id) == 3
    detail = conversation_detail(any_store, started.conversation_id)
    assert detail["status"] == "answered"
    assert "to @pjm" in detail["answer"]


def test_cap_one_below_sends_notice(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops go", max_messages=3)
    _, outcome = reply_next(any_store, team_settings, tmp_path, "[@coder: a] [@ghost: b]")
    coder = claim(any_store, "w1", OPTIONS)
    notice = claim(any_store, "w2", OPTIONS)

    assert len(outcome.handoffs) == 1
    assert coder.recipient == "coder"
    assert notice.kind == "notice"
    assert message_total(any_store, started.conversation_id) == 3


def test_notice_loop_ends(any_store, team_settings, config, scripted):
    scripted.script = lambda request: "[@ghost: again] [@nobody: and again]"
    started = send(any_store, team_settings, "@devops go")
    context = AgentContext(any_store, config, team_settings, config.files_dir)

    stats = Worker(any_store, context, lambda: team_settings, OPTIONS, concurrency=2,
                   once=True).run()

    assert stats.done == 2
    detail = conversation_detail(any_store, started.conversation_id)
    assert detail["status"] == "answered"
    assert [message["kind"] for message in detail["messages"]] == ["task", "notice"]


def test_notice_reply_handoff_loop_capped(any_store, team_settings, config, scripted):
    order = ["devops", "coder", "reviewer", "tester", "pjm"]

    def script(request):
        following = order[(order.index(request.agent_id) + 1) % len(order)]
        return f"[@ghost: x] [@{following}: keep going]"

    scripted.script = script
    started = send(any_store, team_settings, "@devops go", max_messages=12)
    context = AgentContext(any_store, config, team_settings, config.files_dir)

    Worker(any_store, context, lambda: team_settings, OPTIONS, concurrency=2, once=True).run()

    assert message_total(any_store, started.conversation_id) <= 12
    assert conversation_detail(any_store, started.conversation_id)["status"] == "answered"


def test_reply_500_tags_merged(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops go")
    text = " ".join(f"[@coder: part {index} [see {index}]]" for index in range(500))
    started_at = time.monotonic()

    held, outcome = reply_next(any_store, team_settings, tmp_path, text)
    elapsed = time.monotonic() - started_at
    coder = claim(any_store, "w1", OPTIONS)

    assert elapsed < 5
    assert len(outcome.handoffs) == 1
    assert "part 0 [see 0]" in coder.body
    assert "part 499 [see 499]" in coder.body


def test_reply_500_unknown_tags(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops go")
    text = " ".join(f"[@ghost{index}: x]" for index in range(500))

    _, outcome = reply_next(any_store, team_settings, tmp_path, text)
    notice = claim(any_store, "w1", OPTIONS)

    assert len(outcome.dropped) == 500
    assert notice.kind == "notice"
    assert "ghost499" in notice.body
    with any_store.engine.connect() as connection:
        drops = connection.execute(select(func.count()).select_from(team_events).where(
            team_events.c.conversation_id == started.conversation_id,
            team_events.c.kind == "dropped")).scalar_one()
    assert drops == 500


def test_tag_500_ids_one_tag(team_settings):
    ids = ",".join(["coder", "tester"] * 250)

    decision = route("devops", f"[@{ids}: run it]", team_settings)

    assert [delivery.to for delivery in decision.deliveries] == ["coder", "tester"]
    assert decision.dropped == ()


@pytest.mark.parametrize("text", [
    "> ```\n> [send_file: report.txt]\n> ```\n",
    "1. Example:\n\n    ```\n    [send_file: report.txt]\n    ```\n",
    "Write `a\n[send_file: report.txt]` to share.",
], ids=["blockquote-fence", "list-fence", "two-line-span"])
def test_send_file_in_code_kept(text):
    assert parse_tags(text.replace("send_file", "@coder")).tags == ()
    assert extract_files(text) == (text, [])


def test_self_via_team_reported(team_settings):
    decision = route("coder", "[@dev: review]", team_settings)

    assert decision.deliveries == ()
    assert [item.reason for item in decision.dropped] == [DropReason.SELF]


def test_settings_id_newline_rejected():
    document = {"agents": {"coder\n": {"name": "Cody", "provider": "protocol"}}, "teams": {}}

    with pytest.raises(ConfigError):
        parse_team_settings(document)
