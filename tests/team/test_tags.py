"""Hand-off tag parsing: brackets, markdown code, malformed tags and the shared context."""

import time

import pytest

from tinysdlc_nb.team.model import DropReason
from tinysdlc_nb.team.tags import parse_tags, parse_user_address

FENCE = "```"


def _found(text):
    return [(tag.ids, tag.body) for tag in parse_tags(text).tags]


@pytest.mark.parametrize(("text", "expected"), [
    ("[@coder: fix it]", [(("coder",), "fix it")]),
    ("[@coder: fix [1] and [2]]", [(("coder",), "fix [1] and [2]")]),
    ("[@pm: see [the spec](https://x/y_(z)) now]",
     [(("pm",), "see [the spec](https://x/y_(z)) now")]),
    ("[@Coder , reviewer: x]", [(("coder", "reviewer"), "x")]),
    ("[@ coder,reviewer ,TESTER : x]", [(("coder", "reviewer", "tester"), "x")]),
    ("[@a,,b: x]", [(("a", "b"), "x")]),
    ("[@qa.lead-2_x: x]", [(("qa.lead-2_x",), "x")]),
    ("[@coder:x]", [(("coder",), "x")]),
    ("[@coder:\n  line one\n\n  line two\n]", [(("coder",), "line one\n\n  line two")]),
    ("[@coder: run `a]b` now]", [(("coder",), "run `a]b` now")]),
    ("[@coder: run ``a ` ]`` now]", [(("coder",), "run ``a ` ]`` now")]),
    ("[@coder: patch:\n```diff\n- x]\n```\n]", [(("coder",), "patch:\n```diff\n- x]\n```")]),
    ("[@coder: ask [@reviewer: x] too]", [(("coder",), "ask [@reviewer: x] too")]),
    ("[@coder: 修复登录 🚀 ✅]", [(("coder",), "修复登录 🚀 ✅")]),
    ("[@coder: a\r\nb]\r\n", [(("coder",), "a\nb")]),
    ("[@a: x] [@b: y]", [(("a",), "x"), (("b",), "y")]),
    ("x ] [@a: y] ]", [(("a",), "y")]),
    ("[ [@a: y]", [(("a",), "y")]),
])
def test_tags_found(text, expected):
    assert _found(text) == expected


@pytest.mark.parametrize("text", [
    "[@coder]",
    "[ @coder: x]",
    "[@co der: x]",
    "mail a@b.c today",
    "ping @coder about it",
    "[@coder,\nreviewer: x]",
    "`[@coder: x]`",
    "``[@coder: x]``",
    "``a ` [@coder: x] ``",
    "```[@coder: x]```",
    f"{FENCE}\n[@coder: x]\n{FENCE}",
    f"{FENCE}python\n[@coder: x]\n{FENCE}",
    "~~~\n[@coder: x]\n~~~",
    f"````\n{FENCE}\n[@coder: x]\n````",
    f"~~~\n{FENCE}\n[@coder: x]\n~~~",
    f"   {FENCE}\n[@coder: x]\n   {FENCE}",
    f"- step:\n  {FENCE}\n  [@coder: x]\n  {FENCE}",
    f"> {FENCE}\n> [@coder: x]\n> {FENCE}",
    f"{FENCE}\nnever closed\n[@coder: x]",
    "~~~~\n[@coder: x]\n~~~\n[@coder: y]",
])
def test_plain_text_not_tag(text):
    parsed = parse_tags(text)
    assert parsed.tags == ()
    assert parsed.malformed == ()


@pytest.mark.parametrize(("text", "mention"), [
    ("[@_coder: x]", "_coder"),
    ("[@coder!: x]", "coder!"),
    ("[@dévops: x]", "dévops"),
])
def test_invalid_id_reported(text, mention):
    parsed = parse_tags(text)

    assert parsed.tags == ()
    assert [item.mention for item in parsed.malformed] == [mention]
    assert parsed.malformed[0].reason == DropReason.UNKNOWN


@pytest.mark.parametrize(("text", "expected"), [
    (f"{FENCE}\n[@x: y]\n{FENCE}\n[@coder: go]", [(("coder",), "go")]),
    ("~~~~\n[@x: y]\n~~~\n~~~~~\n[@coder: go]", [(("coder",), "go")]),
    (f"{FENCE}\n[@x: y]\n{FENCE}   \n[@coder: go]", [(("coder",), "go")]),
    (f"{FENCE}\n[@x: y]\n{FENCE} not closing\n{FENCE}\n[@coder: go]", [(("coder",), "go")]),
    ("```js``` [@coder: go]", [(("coder",), "go")]),
    ("`` [@coder: go] `", [(("coder",), "go")]),
    ("`open\n\n[@coder: go] `", [(("coder",), "go")]),
    ("`a` [@coder: go] `b`", [(("coder",), "go")]),
])
def test_tags_next_to_code(text, expected):
    assert _found(text) == expected


def test_tag_offsets_and_raw():
    text = "Hi [@Coder: x] there"
    tag = parse_tags(text).tags[0]
    assert tag.start == 3
    assert tag.end == 14
    assert tag.raw == "[@Coder: x]"
    assert tag.written == ("Coder",)


@pytest.mark.parametrize(("text", "expected"), [
    ("Please [@coder: fix it", [("coder", DropReason.UNTERMINATED, 7)]),
    ("[@coder: see [1 for details]", [("coder", DropReason.UNTERMINATED, 0)]),
    (f"[@coder: run\n{FENCE}\nx]\n", [("coder", DropReason.UNTERMINATED, 0)]),
    ("[@coder: `]`", [("coder", DropReason.UNTERMINATED, 0)]),
    ("[@Coder , Reviewer: x", [("Coder, Reviewer", DropReason.UNTERMINATED, 0)]),
    ("[@a: fix [@b: it", [("a", DropReason.UNTERMINATED, 0), ("b", DropReason.UNTERMINATED, 9)]),
    ("[@coder:]", [("coder", DropReason.EMPTY, 0)]),
    ("[@coder:   ]", [("coder", DropReason.EMPTY, 0)]),
    ("[@coder: \r\n ]", [("coder", DropReason.EMPTY, 0)]),
    ("[@: x]", [("", DropReason.EMPTY, 0)]),
    ("[@ , : x]", [("", DropReason.EMPTY, 0)]),
    ("[@:", [("", DropReason.UNTERMINATED, 0)]),
])
def test_malformed_reported(text, expected):
    malformed = parse_tags(text).malformed
    assert [(item.mention, item.reason, item.offset) for item in malformed] == expected


def test_malformed_detail_names_mention():
    detail = parse_tags("[@coder: fix it").malformed[0].detail
    assert "'coder'" in detail
    assert "']'" in detail


def test_unterminated_keeps_later_tag():
    parsed = parse_tags("[@a: fix it\n\n[@b: check]")
    assert [tag.ids for tag in parsed.tags] == [("b",)]
    assert parsed.shared_context == "[@a: fix it"


@pytest.mark.parametrize(("text", "shared"), [
    ("[@coder: x]", ""),
    ("Build is green.\n\n[@coder: fix lint]\n\n[@reviewer: review]\n\nThanks.",
     "Build is green.\n\nThanks."),
    ("Hi [@a: x] there", "Hi there"),
    ("[@a: x] Hi", "Hi"),
    ("Hi [@a: x]\nBye", "Hi\nBye"),
    ("Check [@a: x].", "Check."),
    ("Hi [@a: x] [@b: y] there", "Hi there"),
    ("\n\n  [@a: x]  \n\nText\n\n\n\nMore\n   \n\n", "Text\n\nMore"),
    ("Notes:\r\n\r\n\r\n[@a: x]\r\nEnd\r\n", "Notes:\n\nEnd"),
    ("Please [@coder: fix it", "Please [@coder: fix it"),
    ("A [@coder:] B [@: x] C", "A B C"),
    ("Keep `[@a: x]` here", "Keep `[@a: x]` here"),
    (f"Run:\n{FENCE}sh\nmake\n\n\n\nmake test  \n{FENCE}\n\n\n[@a: x]\nDone",
     f"Run:\n{FENCE}sh\nmake\n\n\n\nmake test  \n{FENCE}\n\nDone"),
    (f"[@a: code:\n{FENCE}\nx\n\n\n{FENCE}\n]\n\n\nRest", "Rest"),
    (f"{FENCE}\nunclosed\n\n\n[@a: x]", f"{FENCE}\nunclosed\n\n\n[@a: x]"),
    ("Résumé 🚀 [@a: 修复] 完成", "Résumé 🚀 完成"),
])
def test_shared_context(text, shared):
    assert parse_tags(text).shared_context == shared


@pytest.mark.parametrize(("text", "target", "body"), [
    ("@devops deploy 1.4", "devops", "deploy 1.4"),
    ("@devops: deploy 1.4", "devops", "deploy 1.4"),
    ("@DevOps:deploy", "devops", "deploy"),
    ("  \n @dev fix the bug  ", "dev", "fix the bug"),
    ("@devops", "devops", ""),
    ("@devops:", "devops", ""),
    ("@devops\ndeploy\nnow", "devops", "deploy\nnow"),
    ("deploy 1.4", None, "deploy 1.4"),
    ("  deploy @devops  ", None, "deploy @devops"),
    ("mail a@b.c", None, "mail a@b.c"),
    ("@devops, deploy", None, "@devops, deploy"),
    ("[@coder: x]", None, "[@coder: x]"),
    ("@ devops deploy", None, "@ devops deploy"),
    ("", None, ""),
])
def test_user_address(text, target, body):
    address = parse_user_address(text)
    assert address.target == target
    assert address.body == body


@pytest.mark.parametrize("text", [
    "[@a: " + "[" * 1_000_000,
    "`" * 100_000,
    "x " + "`" * 100_000,
    "` " * 100_000,
    " ".join("`" * (index % 300 + 1) for index in range(20_000)),
    "[@a: " * 40_000,
    "[@" + "a," * 500_000,
    "```\n" * 100_000,
    "]" * 1_000_000,
    "[@a: `" * 40_000,
])
def test_linear_time_guard(text):
    started = time.perf_counter()
    parse_tags(text)
    assert time.perf_counter() - started < 5.0
