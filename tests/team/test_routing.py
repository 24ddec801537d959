"""Routing of hand-offs: resolution, merged deliveries, every drop reason, a person's message."""

import pytest

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.team.model import HUMAN, DropReason, RouteContext
from tinysdlc_nb.team.routing import resolve, route, route_user_message
from tinysdlc_nb.team.settings import parse_team_settings


def _agent(depth=1):
    return {"name": "x", "provider": "protocol", "max_delegation_depth": depth}


@pytest.fixture
def settings():
    return parse_team_settings({
        "agents": {"devops": _agent(), "coder": _agent(depth=3), "reviewer": _agent(),
                   "tester": _agent(), "pm": _agent(depth=0)},
        "teams": {"dev": {"name": "Dev", "agents": ["coder", "reviewer", "tester"],
                          "leader_agent": "coder"},
                  "ops": {"name": "Ops", "agents": ["devops"], "leader_agent": "devops"},
                  "plan": {"name": "Plan", "agents": ["pm"], "leader_agent": "pm"}},
    })


def _targets(decision):
    return [delivery.to for delivery in decision.deliveries]


def _reasons(decision):
    return [(item.mention, item.reason) for item in decision.dropped]


@pytest.mark.parametrize(("sender", "text", "targets"), [
    ("devops", "[@coder: x]", ["coder"]),
    ("devops", "[@Coder , reviewer: x]", ["coder", "reviewer"]),
    ("devops", "[@dev: x]", ["coder"]),
    ("coder", "[@ops: x]", ["devops"]),
    ("devops", "[@tester: a] [@coder: b] [@tester: c]", ["tester", "coder"]),
    ("devops", "[@coder: a] [@dev: b]", ["coder"]),
    (HUMAN, "[@plan, dev: x]", ["pm", "coder"]),
    ("devops", "`[@coder: x]` and\n```\n[@reviewer: y]\n```", []),
])
def test_route_targets(settings, sender, text, targets):
    assert _targets(route(sender, text, settings)) == targets


def test_resolve_order(settings):
    assert resolve("reviewer", "coder", settings) == "reviewer"
    assert resolve("reviewer", "devops", settings) == "reviewer"
    assert resolve("dev", "devops", settings) == "coder"
    assert resolve("nobody", "devops", settings) is None


def test_messages_with_shared_context(settings):
    text = ("Release 1.4 passed G3.\n\n[@coder: fix the flaky test]\n\n"
            "[@reviewer: review PR 12 [diff](https://x/y_(z))]\n\nRollback tested.")
    decision = route("devops", text, settings)
    shared = "Release 1.4 passed G3.\n\nRollback tested."
    assert decision.shared_context == shared
    assert decision.deliveries[0].message == (
        f"{shared}\n\n---\nFor @coder from @devops:\nfix the flaky test")
    assert decision.deliveries[1].message == (
        f"{shared}\n\n---\nFor @reviewer from @devops:\nreview PR 12 [diff](https://x/y_(z))")


def test_message_without_shared_context(settings):
    decision = route("devops", "[@coder: 修复 🚀]", settings)
    assert decision.deliveries[0].message == "For @coder from @devops:\n修复 🚀"
    assert decision.deliveries[0].directed == "修复 🚀"


def test_duplicate_target_merged(settings):
    decision = route("devops", "Intro\n[@Coder: one] [@dev: two] [@coder, dev: three]", settings)
    delivery = decision.deliveries[0]
    assert len(decision.deliveries) == 1
    assert delivery.directed == "one\n\ntwo\n\nthree"
    assert delivery.mentions == ("Coder", "dev", "coder")
    assert delivery.message == "Intro\n\n---\nFor @coder from @devops:\none\n\ntwo\n\nthree"


def test_unknown_id_dropped(settings):
    decision = route("devops", "[@Nobody: x] [@coder: y] [@nobody: z]", settings)
    assert _reasons(decision) == [("Nobody", DropReason.UNKNOWN)]
    assert "'@Nobody'" in decision.dropped[0].detail
    assert "coder, dev, devops, ops, plan, pm, reviewer, tester" in decision.dropped[0].detail
    assert _targets(decision) == ["coder"]


def test_known_ids_listed_up_to_twenty():
    many = parse_team_settings({"agents": {f"a{index:02d}": _agent() for index in range(25)}})
    detail = route("a00", "[@zz: x]", many).dropped[0].detail
    assert "a19" in detail
    assert "a20" not in detail
    assert "and 5 more" in detail


@pytest.mark.parametrize(("sender", "text"), [
    ("devops", "[@devops: x]"),
    ("devops", "[@DevOps: x]"),
    ("devops", "[@ops: x]"),
    ("coder", "[@dev: x]"),
])
def test_self_dropped(settings, sender, text):
    decision = route(sender, text, settings)
    assert [item.reason for item in decision.dropped] == [DropReason.SELF]
    assert decision.deliveries == ()


@pytest.mark.parametrize(("sender", "depth", "delivered"), [
    ("devops", 0, True),
    ("devops", 1, False),
    ("coder", 2, True),
    ("coder", 3, False),
    ("pm", 0, False),
    (HUMAN, 40, True),
])
def test_depth_limit(settings, sender, depth, delivered):
    decision = route(sender, "[@tester: x]", settings, RouteContext(depth=depth))
    assert (_targets(decision) == ["tester"]) is delivered
    assert (_reasons(decision) == [("tester", DropReason.DEPTH)]) is not delivered


def test_depth_detail_numbers(settings):
    detail = route("devops", "[@tester: x]", settings, RouteContext(depth=1)).dropped[0].detail
    assert "depth 2" in detail
    assert "max_delegation_depth 1" in detail


def test_backflow_allowed(settings):
    context = RouteContext(depth=1, hops=(("reviewer", "coder"),))
    assert _targets(route("coder", "[@reviewer: done]", settings, context)) == ["reviewer"]


def test_circular_dropped(settings):
    context = RouteContext(depth=2, hops=(("coder", "reviewer"), ("reviewer", "coder")))
    decision = route("coder", "[@reviewer: again] [@tester: x]", settings, context)
    assert _reasons(decision) == [("reviewer", DropReason.CIRCULAR)]
    assert _targets(decision) == ["tester"]


@pytest.mark.parametrize(("used", "targets"), [
    (47, ["coder", "reviewer", "tester"]),
    (48, ["coder", "reviewer"]),
    (50, []),
])
def test_message_cap(settings, used, targets):
    context = RouteContext(messages_used=used, max_messages=50)
    decision = route("devops", "[@coder, reviewer, tester: x]", settings, context)
    assert _targets(decision) == targets
    assert [item.reason for item in decision.dropped] == [DropReason.CAP] * (3 - len(targets))


def test_malformed_become_dropped(settings):
    decision = route("devops", "[@coder:] [@nobody: x] [@: y] [@reviewer: ok] [@tester: open",
                     settings)
    assert _reasons(decision) == [("coder", DropReason.EMPTY), ("nobody", DropReason.UNKNOWN),
                                  ("", DropReason.EMPTY), ("tester", DropReason.UNTERMINATED)]
    assert _targets(decision) == ["reviewer"]
    assert decision.shared_context == "[@tester: open"


def test_dropped_in_text_order(settings):
    context = RouteContext(hops=(("devops", "tester"),))
    decision = route("devops", "[@tester: a] [@devops: b] [@coder: c", settings, context)
    assert _reasons(decision) == [("tester", DropReason.CIRCULAR), ("devops", DropReason.SELF),
                                  ("coder", DropReason.UNTERMINATED)]


def test_crlf_reply_routed(settings):
    decision = route("devops", "Status:\r\n\r\n[@coder: a\r\nb]\r\nEnd\r\n", settings)
    assert decision.deliveries[0].message == "Status:\n\nEnd\n\n---\nFor @coder from @devops:\na\nb"


def test_decision_json(settings):
    payload = route("devops", "[@nobody: x] [@coder: y]", settings).as_json()
    assert payload["deliveries"][0]["to"] == "coder"
    assert payload["dropped"][0]["reason"] == "unknown_id"


@pytest.mark.parametrize(("text", "target", "body"), [
    ("@devops deploy 1.4", "devops", "deploy 1.4"),
    ("@devops: deploy 1.4", "devops", "deploy 1.4"),
    ("@DevOps:deploy", "devops", "deploy"),
    ("  @dev fix the auth bug", "coder", "fix the auth bug"),
    ("@pm plan [@coder: x] later", "pm", "plan [@coder: x] later"),
    ("deploy 1.4", "devops", "deploy 1.4"),
    ("[@reviewer: check PR 7]", "reviewer", "check PR 7"),
])
def test_user_message_target(settings, text, target, body):
    decision = route_user_message(text, settings, default_agent="devops")
    assert _targets(decision) == [target]
    assert decision.deliveries[0].directed == body


def test_user_message_default_team(settings):
    assert _targets(route_user_message("fix it", settings, default_agent="Dev")) == ["coder"]


def test_user_message_tags_keep_drops(settings):
    decision = route_user_message("[@coder: a] [@nobody: b]", settings, default_agent=None)
    assert _targets(decision) == ["coder"]
    assert _reasons(decision) == [("nobody", DropReason.UNKNOWN)]


def test_user_message_from_human(settings):
    decision = route_user_message("Context\n[@coder: a]", settings, default_agent=None)
    assert decision.deliveries[0].message == "Context\n\n---\nFor @coder from @user:\na"


@pytest.mark.parametrize(("text", "default", "words"), [
    ("@nobody deploy", "devops", ["'@nobody'", "coder, dev, devops"]),
    ("@devops", "devops", ["@devops", "empty"]),
    ("@devops:   ", "devops", ["@devops", "empty"]),
    ("   ", "devops", ["empty"]),
    ("deploy 1.4", None, ["start the message with @agent or @team"]),
    ("deploy 1.4", "ghost", ["'ghost'", "start the message with @agent or @team"]),
    ("[@nobody: x]", "devops", ["'@nobody'"]),
    ("[@coder: fix it", "devops", ["'coder'", "']'"]),
])
def test_user_message_rejected(settings, text, default, words):
    with pytest.raises(UsageError) as raised:
        route_user_message(text, settings, default_agent=default)
    for word in words:
        assert word in str(raised.value)
