"""Measure the hand-off parser: ``tags.parse_tags`` and ``routing.route`` against a regex.

The baseline is the one regular expression TinySDLC uses to find tags,
``\\[@(\\S+?):\\s*([\\s\\S]*?)\\]`` with ``re.finditer``. All three run over the same
corpus (``team_corpus.py``) in the same process. Each pass covers the whole corpus,
and the figures are the median pass.

Correctness compares what each finds with the tags the corpus generator wrote. A found
tag that starts where an expected tag starts is exact when its ids and body are the
expected ones, and cut otherwise. A found tag anywhere else is false, such as tag-like
text in code. An expected tag with nothing found at its start is missed.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Iterator

import team_corpus

from tinysdlc_nb.team.routing import route
from tinysdlc_nb.team.settings import parse_team_settings
from tinysdlc_nb.team.tags import parse_tags

BASELINE_PATTERN = re.compile(r"\[@(\S+?):\s*([\s\S]*?)\]")
SENDER = "devops"
# A team with the corpus's agent ids, so route resolves and drops as it would in use.
SETTINGS = parse_team_settings({
    "agents": {name: {"name": name, "provider": "protocol", "max_delegation_depth": 2}
               for name in (SENDER, *team_corpus.AGENTS)},
    "teams": {"dev": {"name": "Dev", "agents": ["coder", "reviewer"], "leader_agent": "coder"}},
})

# (start, end, ids, body) of one tag found.
Found = tuple[int, int, tuple[str, ...], str]
# A header whose ids are separated by a comma and a space, which ``\S+?`` cannot span.
_SPACED_IDS = re.compile(r"\[@[^\s:\]]+,[ \t]")


def baseline_tags(text: str) -> list[Found]:
    """Return every regex match, the ids split on commas."""
    found = []
    for match in BASELINE_PATTERN.finditer(text):
        ids = tuple(part.strip().lower() for part in match[1].split(",") if part.strip())
        found.append((match.start(), match.end(), ids, match[2].strip()))
    return found


def parser_tags(text: str) -> list[Found]:
    return [(tag.start, tag.end, tag.ids, tag.body) for tag in parse_tags(text).tags]


def route_text(text: str) -> object:
    return route(SENDER, text, SETTINGS)


def run(passes: int = 5) -> dict:
    """Time every way over the corpus and compare the tags each finds."""
    corpus = team_corpus.build_corpus()
    texts = [reply.text for reply in corpus]
    total_bytes = sum(reply.size for reply in corpus)

    timings = {}
    for name, function in (("parse_tags", parse_tags), ("route", route_text),
                           ("regex", BASELINE_PATTERN.finditer)):
        timings[name] = _time_passes(function, texts, passes)

    return {
        "corpus": {"replies": len(corpus), "bytes": total_bytes,
                   "min_bytes": min(reply.size for reply in corpus),
                   "max_bytes": max(reply.size for reply in corpus),
                   "median_bytes": statistics.median(reply.size for reply in corpus),
                   "tags": sum(len(reply.tags) for reply in corpus),
                   "seed": team_corpus.SEED},
        "passes": passes,
        "seconds": timings,
        "correctness": {"parse_tags": _score(corpus, parser_tags),
                        "regex": _score(corpus, baseline_tags)},
    }


def _time_passes(function: Callable, texts: list[str], passes: int) -> list[float]:
    """Return the wall time of each pass over ``texts``; a pass consumes every result."""
    seconds = []
    for _ in range(passes):
        started = time.perf_counter()
        for text in texts:
            result = function(text)
            if isinstance(result, Iterator):
                for _match in result:
                    pass
        seconds.append(time.perf_counter() - started)
    return seconds


def _score(corpus: list[team_corpus.Reply], finder: Callable[[str], list[Found]]) -> dict:
    """Count exact, cut, missed and false tags; split the missed ones by their cause."""
    counts = {"exact": 0, "cut": 0, "missed": 0, "false": 0}
    missed = {"spaced_ids": 0, "inside_other_match": 0, "other": 0}
    examples: dict[str, str] = {}
    for reply in corpus:
        spans = finder(reply.text)
        found = {start: (ids, body) for start, _end, ids, body in spans}
        for expected in reply.tags:
            if expected.start not in found:
                counts["missed"] += 1
                missed[_miss_cause(reply.text, expected.start, spans)] += 1
                examples.setdefault("missed", _excerpt(reply.text, expected.start))
                continue
            ids, body = found.pop(expected.start)
            if ids == expected.ids and body == expected.body:
                counts["exact"] += 1
            else:
                counts["cut"] += 1
                examples.setdefault("cut", f"{_excerpt(reply.text, expected.start)} → "
                                           f"body {body!r}")
        counts["false"] += len(found)
        for start in found:
            examples.setdefault("false", _excerpt(reply.text, start))
    return {**counts, "missed_by_cause": missed, "examples": examples}


def _miss_cause(text: str, start: int, spans: list[Found]) -> str:
    if any(found_start < start < end for found_start, end, _ids, _body in spans):
        return "inside_other_match"
    if _SPACED_IDS.match(text, start):
        return "spaced_ids"
    return "other"


def _excerpt(text: str, start: int, width: int = 70) -> str:
    return text[start:start + width].replace("\n", "⏎")
