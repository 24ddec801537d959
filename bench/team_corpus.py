"""Generate agent replies for the parser benchmark, each with the hand-off tags it contains.

The replies are Markdown as agents write it: headings, lists, prose with links and
footnotes, code spans and fenced blocks (some with tag-like text that is not a tag),
pasted logs, unicode, and zero to four real tags. Lengths run from 200 bytes to 20 KB.

The expected tags are known by construction: every real tag is written by ``_tag`` and
recorded with its offset, its lowercased ids and its body. Tag-like text inside code,
``[@coder]`` without a colon, ``[ @coder: x]`` and e-mail addresses are never recorded.
Tags do not nest, so each recorded body is the text between the colon and the tag's
own closing bracket, without surrounding spaces.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 20261204
REPLIES = 200
MIN_BYTES = 200
MAX_BYTES = 20_000
AGENTS = ("coder", "reviewer", "tester", "pjm", "architect")
TEAMS = ("dev",)


@dataclass(frozen=True)
class ExpectedTag:
    """A real tag of a generated reply: where it starts, its lowercased ids and its body."""

    start: int
    ids: tuple[str, ...]
    body: str


@dataclass(frozen=True)
class Reply:
    text: str
    tags: tuple[ExpectedTag, ...]

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))


# Bodies of real tags; several contain brackets, code spans or line breaks on purpose.
BODIES = (
    "please fix the flaky test in tests/test_api.py before the release",
    "fix [1] and [2] from the review, then push",
    "see [the runbook](https://docs.example.com/runbooks/deploy#rollback) for the rollback",
    "the check `grep -E '\\[@[a-z]+\\]' app.log` reports `a]b`; fix the pattern",
    "run these before G3:\n- smoke tests on staging\n- load test at 200 rps\n- `make check`",
    "confirm G3 for 1.4.0 [blocking] and sign the checklist",
    "informer l'équipe: déploiement de 1.4.0 demain à 9 h — 部署计划 ✅",
    "the migration `0042_add_index` needs a tested downgrade (see [#311])",
    "bump `requests` to 2.32.3, the audit flags CVE-2024-35195 [high]",
    "review PR #88: the [[double]] brackets in the template are intended",
)

PROSE = (
    "The staging deploy of 1.4.0 finished in 4 m 12 s and the smoke tests passed.",
    "Monitoring shows p95 latency at 180 ms, under the 250 ms target [1].",
    "See [the dashboard](https://grafana.example.com/d/api?from=now-1h) for details.",
    "Ping ops@example.com if the pager fires again; @coder knows the service best.",
    "Two items remain open: the rollback rehearsal and the runbook review.",
    "Les tests de charge sont verts; la fenêtre de déploiement est confirmée.",
    "Der Canary läuft seit 30 Minuten ohne Fehler — 監視は正常です 🚀.",
    "Footnotes: [1] SLO doc, [2] incident INC-7 postmortem, [3] change request.",
    "A note for [@coder] without a colon, and [ @tester: spaced] are not hand-offs.",
    "The array `items[0]` and the link [docs][ref] are plain Markdown.",
)

FAKE_SPANS = (
    "`[@pjm: not a tag, this is code]`",
    "``[@coder: double backticks] still code``",
    "`grep '[@reviewer:' replies.log`",
)

LOG_LEVELS = ("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG")


class _Builder:
    """Text pieces plus the expected tags, with offsets counted in characters."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0
        self.tags: list[ExpectedTag] = []

    def add(self, text: str) -> None:
        self.pieces.append(text)
        self.length += len(text)

    def size(self) -> int:
        return len("".join(self.pieces).encode("utf-8"))

    def reply(self) -> Reply:
        return Reply("".join(self.pieces), tuple(self.tags))


def build_corpus(seed: int = SEED, count: int = REPLIES) -> list[Reply]:
    """Return ``count`` replies, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    replies = []
    for index in range(count):
        # Log-uniform sizes, so short replies and long pasted logs both occur often.
        target = int(MIN_BYTES * (MAX_BYTES / MIN_BYTES) ** rng.random())
        replies.append(_reply(rng, index, target))
    return replies


def _reply(rng: random.Random, index: int, target: int) -> Reply:
    builder = _Builder()
    builder.add(f"## Status of release 1.{index % 9}.{index % 5}\n\n")
    builder.add(rng.choice(PROSE) + "\n\n")
    tags_left = rng.choice((0, 1, 1, 2, 2, 3, 4))

    while builder.size() < target:
        room = target - builder.size()
        choice = rng.random()
        if tags_left and choice < 0.3:
            _tag_block(rng, builder)
            tags_left -= 1
        elif choice < 0.45:
            _list(rng, builder)
        elif choice < 0.55:
            builder.add(f"Do not run {rng.choice(FAKE_SPANS)} by hand. "
                        f"{rng.choice(PROSE)}\n\n")
        elif choice < 0.7 and room > 600:
            _log_fence(rng, builder, min(room - 100, 12_000))
        elif choice < 0.8:
            _code_fence(rng, builder)
        else:
            builder.add(rng.choice(PROSE) + " " + rng.choice(PROSE) + "\n\n")

    while tags_left:
        _tag_block(rng, builder)
        tags_left -= 1
    return builder.reply()


def _tag(rng: random.Random, builder: _Builder) -> None:
    """Write one real tag at the builder's end and record it."""
    shape = rng.random()
    if shape < 0.15:
        written = rng.sample(AGENTS, 2)
        header = rng.choice((",", ", ")).join(written)
    elif shape < 0.22:
        written = [rng.choice(TEAMS)]
        header = written[0]
    elif shape < 0.27:
        written = ["ghost"]
        header = "ghost"
    else:
        written = [rng.choice(AGENTS)]
        header = written[0].capitalize() if rng.random() < 0.1 else written[0]
    body = rng.choice(BODIES)
    builder.tags.append(ExpectedTag(builder.length, tuple(name.lower() for name in written),
                                    body))
    builder.add(f"[@{header}: {body}]")


def _tag_block(rng: random.Random, builder: _Builder) -> None:
    form = rng.random()
    if form < 0.4:
        builder.add("Next steps: ")
        _tag(rng, builder)
        builder.add(" and ")
        _tag(rng, builder)
        builder.add(".\n\n")
    elif form < 0.7:
        builder.add("- ")
        _tag(rng, builder)
        builder.add("\n- keep the release notes in sync\n\n")
    else:
        _tag(rng, builder)
        builder.add("\n\n")


def _list(rng: random.Random, builder: _Builder) -> None:
    for number in range(rng.randint(2, 5)):
        builder.add(f"{number + 1}. {rng.choice(PROSE)}\n")
    builder.add("\n")


def _code_fence(rng: random.Random, builder: _Builder) -> None:
    fence = rng.choice(("```", "~~~", "````"))
    builder.add(f"{fence}python\n# hand-offs look like [@coder: message]\n"
                f"pattern = r\"\\[@(\\w+): (.*)\\]\"\nitems = data[\"items\"][0]\n"
                f"print(\"[@tester: not a tag in code]\")\n{fence}\n\n")


def _log_fence(rng: random.Random, builder: _Builder, size: int) -> None:
    """Write a fenced log of about ``size`` bytes; some lines look like tags."""
    builder.add("Log of the failing job:\n\n```text\n")
    written = 0
    second = 0
    while written < size:
        second += rng.randint(0, 3)
        level = rng.choice(LOG_LEVELS)
        if rng.random() < 0.005:
            line = f"2026-12-04T10:{second // 60 % 60:02d}:{second % 60:02d}Z [{level}] " \
                   f"[@worker-{rng.randint(1, 8)}: heartbeat missed] retrying\n"
        else:
            line = f"2026-12-04T10:{second // 60 % 60:02d}:{second % 60:02d}Z [{level}] " \
                   f"[pid {rng.randint(1000, 9999)}] GET /api/v1/items/{rng.randint(1, 500)} " \
                   f"[{rng.choice((200, 200, 200, 404, 500))}] {rng.randint(2, 900)} ms\n"
        builder.add(line)
        written += len(line)
    builder.add("```\n\n")
