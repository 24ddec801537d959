"""Hand-off tags ``[@id: message]`` in agent replies, and the ``@id`` address of a person's message.

A tag is ``[@`` followed by one or more comma-separated agent or team ids, a colon and a
body that runs to the matching ``]``. Brackets inside the body must balance, so markdown
links and ``[1]`` footnotes stay in it. Markdown code is opaque: a tag inside a code span
or a fenced block is plain text, and a ``]`` inside code never closes a body.

The parser reads the text in linear passes: fenced blocks and paragraph breaks, code
spans, bracket pairs outside code, the tags themselves, then the shared context. No pass
backtracks, so a reply of a megabyte of ``[`` or backticks costs a few passes over it.

Decisions the markup leaves open:

- ``[@coder]`` (no colon), ``[ @coder: x]`` (space after ``[``) and ``[@co der: x]`` are
  plain text, as are ``a@b.c`` and ``@coder`` in prose.
- ``[@: x]`` and ``[@ , : x]`` have no id. They are reported as EMPTY with mention ``""``
  and removed from the shared context like any other complete tag. Empty entries between
  commas (``[@a,,b: x]``) are skipped.
- A tag nested in another tag's body belongs to that body and is not routed itself.
- An unterminated tag leaves its text in the shared context, and tags later in that text
  are still found.
- Backslash escapes are not interpreted, and indented code blocks (four spaces) are prose.
- Bodies and the shared context use ``\\n`` line ends. Offsets and ``raw`` refer to the
  text as given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import DropReason

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
# A fence may follow any indentation and blockquote markers, so fences in list items count.
# NOTE: CommonMark reads a fence indented four or more spaces outside a list as indented
# code. Here it opens a fence, which hides tags on the lines after it until a closing fence.
_FENCE = re.compile(r"[ \t>]*(`{3,}|~{3,})([^\r\n]*)")
_BACKTICKS = re.compile(r"`+")
_BRACKET = re.compile(r"[\[\]]")
# Every hand-off tag, well formed or not, starts with these two characters.
TAG_OPENING = "[@"
_TAG_OPEN = re.compile(r"\[@")
_HEADER = re.compile(r"[A-Za-z0-9_.,\t -]*:")
# A header with a mistyped id: no space, bracket or '@' before the colon.
# It is matched against at most _LOOSE_SPAN characters, so a long run costs nothing.
_LOOSE_HEADER = re.compile(r"[^\s\[\]@:,]{1,64}(?:,[^\s\[\]@:,]{1,64})*:")
_LOOSE_SPAN = 200
_ADDRESS = re.compile(r"\s*@([A-Za-z0-9][A-Za-z0-9_.-]*)(?::|(?=\s)|\Z)")
_CLOSING_PUNCTUATION = ".,;:!?)"


@dataclass(frozen=True)
class Tag:
    """One hand-off: lowercased ``ids``, the stripped ``body`` and its place in the text.

    ``written`` keeps the ids as the sender spelled them, in the order of ``ids``.
    """

    ids: tuple[str, ...]
    body: str
    start: int
    end: int
    raw: str
    written: tuple[str, ...] = ()


@dataclass(frozen=True)
class Malformed:
    """A tag that cannot be delivered as written; ``mention`` contains its ids as written."""

    mention: str
    reason: DropReason
    offset: int
    detail: str


@dataclass(frozen=True)
class ParsedText:
    """The tags of one text, its malformed tags, and the text left with the tags removed."""

    tags: tuple[Tag, ...]
    malformed: tuple[Malformed, ...]
    shared_context: str


@dataclass(frozen=True)
class UserAddress:
    """A person's message split into the leading ``@id`` (lowercased, or None) and the rest."""

    target: str | None
    body: str


def parse_tags(text: str) -> ParsedText:
    """Find the hand-off tags of ``text``, report malformed ones and build the shared context."""
    fences, paragraphs = _scan_blocks(text)

    code = _merge_intervals(fences, _code_spans(text, paragraphs))

    closers = _match_brackets(text, code)

    tags, malformed, removed = _scan_tags(text, code, closers)

    shared = _shared_context(text, removed, fences)
    return ParsedText(tags=tuple(tags), malformed=tuple(malformed), shared_context=shared)


def code_regions(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) offsets of the fenced blocks and code spans of ``text``."""
    fences, paragraphs = _scan_blocks(text)
    return _merge_intervals(fences, _code_spans(text, paragraphs))


def parse_user_address(text: str) -> UserAddress:
    """Split a leading ``@agent`` or ``@team`` (colon optional) off a person's message."""
    match = _ADDRESS.match(text)
    if match is None:
        return UserAddress(target=None, body=text.strip())
    return UserAddress(target=match[1].lower(), body=text[match.end():].strip())


def _lines(text: str):
    """Yield ``(start, end_without_break, end_with_break)`` for each line of ``text``."""
    position = 0
    while position < len(text):
        match = _LINE.match(text, position)
        content_end = match.end()
        while content_end > match.start() and text[content_end - 1] in "\r\n":
            content_end -= 1
        yield position, content_end, match.end()
        position = match.end()


def _scan_blocks(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Return the fenced blocks and the paragraphs (prose between blank lines and fences).

    A fenced block covers its opening line through its closing line and line break. A
    closing fence repeats the opening character at least as many times, followed only by
    spaces or tabs. An unclosed fence runs to the end of the text.
    """
    fences: list[tuple[int, int]] = []
    paragraphs: list[tuple[int, int]] = []
    fence_start = fence_char = None
    fence_length = 0
    paragraph_start = None

    for start, content_end, end in _lines(text):
        line = text[start:content_end]
        opening = _FENCE.match(line)
        if fence_start is not None:
            if opening and opening[1][0] == fence_char and len(opening[1]) >= fence_length \
                    and not opening[2].strip(" \t"):
                fences.append((fence_start, end))
                fence_start = None
            continue

        is_fence = opening is not None and not (opening[1][0] == "`" and "`" in opening[2])
        if is_fence or not line.strip():
            if paragraph_start is not None:
                paragraphs.append((paragraph_start, start))
                paragraph_start = None
            if is_fence:
                fence_start, fence_char, fence_length = start, opening[1][0], len(opening[1])
        elif paragraph_start is None:
            paragraph_start = start

    if fence_start is not None:
        fences.append((fence_start, len(text)))
    if paragraph_start is not None:
        paragraphs.append((paragraph_start, len(text)))
    return fences, paragraphs


def _code_spans(text: str, paragraphs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the inline code spans: a backtick run up to the next run of the same length.

    An unmatched run is literal text, and the search goes on after it (CommonMark). The
    next run of each length is found by one backward pass, so the work stays linear.
    """
    spans = []
    for start, end in paragraphs:
        runs = [(match.start(), match.end()) for match in _BACKTICKS.finditer(text, start, end)]
        following: list[int | None] = [None] * len(runs)
        last_of_length: dict[int, int] = {}
        for index in range(len(runs) - 1, -1, -1):
            length = runs[index][1] - runs[index][0]
            following[index] = last_of_length.get(length)
            last_of_length[length] = index

        index = 0
        while index < len(runs):
            closer = following[index]
            if closer is None:
                index += 1
                continue
            spans.append((runs[index][0], runs[closer][1]))
            index = closer + 1
    return spans


def _merge_intervals(*groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the sorted union of disjoint interval lists (fences and spans never overlap)."""
    return sorted(interval for group in groups for interval in group)


def _gaps(text: str, code: list[tuple[int, int]]):
    """Yield the ``(start, end)`` stretches of ``text`` outside the code intervals."""
    position = 0
    for start, end in code:
        if start > position:
            yield position, start
        position = max(position, end)
    if position < len(text):
        yield position, len(text)


def _match_brackets(text: str, code: list[tuple[int, int]]) -> dict[int, int]:
    """Map the offset of each balanced ``[`` outside code to the offset of its ``]``."""
    closers: dict[int, int] = {}
    open_brackets: list[int] = []
    for start, end in _gaps(text, code):
        for match in _BRACKET.finditer(text, start, end):
            if match[0] == "[":
                open_brackets.append(match.start())
            elif open_brackets:
                closers[open_brackets.pop()] = match.start()
    return closers


def _scan_tags(text: str, code: list[tuple[int, int]], closers: dict[int, int]):
    """Return the tags, the malformed tags and the intervals to remove from the shared text."""
    tags: list[Tag] = []
    malformed: list[Malformed] = []
    removed: list[tuple[int, int]] = []
    resume = 0

    for gap_start, gap_end in _gaps(text, code):
        for opening in _TAG_OPEN.finditer(text, gap_start, gap_end):
            start = opening.start()
            if start < resume:
                continue
            header = _HEADER.match(text, opening.end())
            loose = _LOOSE_HEADER.match(text, opening.end(), opening.end() + _LOOSE_SPAN)
            written = [] if header is None else \
                [part.strip(" \t") for part in header[0][:-1].split(",")]
            written = [part for part in written if part]
            if header is None or not all(_ID.fullmatch(part) for part in written):
                if loose is not None:
                    # Looks like a hand-off, but an id has characters no id can have.
                    mention = loose[0][:-1].strip()
                    detail = (f"'@{mention}' is not a valid agent or team id; ids use ASCII "
                              f"letters, digits, '-', '_' and '.'")
                    malformed.append(Malformed(mention, DropReason.UNKNOWN, start, detail))
                continue

            mention = ", ".join(written)
            closer = closers.get(start)
            if closer is None:
                detail = (f"hand-off to '{mention}' has no closing ']'; end the tag with ']' "
                          f"and keep the brackets inside it balanced")
                malformed.append(Malformed(mention, DropReason.UNTERMINATED, start, detail))
                resume = header.end()
                continue

            resume = closer + 1
            removed.append((start, resume))
            body = _normalise_breaks(text[header.end():closer]).strip()
            if not written:
                detail = "hand-off tag has no agent or team id; write [@agent: message]"
                malformed.append(Malformed("", DropReason.EMPTY, start, detail))
            elif not body:
                detail = f"hand-off to '{mention}' has an empty message; write [@{written[0]}: " \
                         f"message]"
                malformed.append(Malformed(mention, DropReason.EMPTY, start, detail))
            else:
                tags.append(Tag(ids=tuple(part.lower() for part in written), body=body,
                                start=start, end=resume, raw=text[start:resume],
                                written=tuple(written)))
    return tags, malformed, removed


def _normalise_breaks(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _shared_context(text: str, removed: list[tuple[int, int]],
                    fences: list[tuple[int, int]]) -> str:
    """Return ``text`` without the removed tags, with blank lines collapsed outside fences.

    A fence lies wholly inside a tag or wholly outside every tag, because a tag cannot
    start in a fence and its closing ``]`` cannot be in one. Fences outside tags are kept
    verbatim, and the prose between them is tidied.
    """
    kept_fences = []
    index = 0
    for fence in fences:
        while index < len(removed) and removed[index][1] <= fence[0]:
            index += 1
        if index == len(removed) or removed[index][0] > fence[0]:
            kept_fences.append(fence)

    parts = []
    prose_start = 0
    index = 0
    for prose_end, fence_end in [*kept_fences, (len(text), len(text))]:
        first = index
        while index < len(removed) and removed[index][0] < prose_end:
            index += 1
        parts.append(_prose(text, prose_start, prose_end, removed[first:index]))
        parts.append(_normalise_breaks(text[prose_end:fence_end]))
        prose_start = fence_end

    joined = "".join(parts)
    return re.sub(r"\A(?:[ \t]*\n)+", "", joined).rstrip()


def _prose(text: str, start: int, end: int, cuts: list[tuple[int, int]]) -> str:
    """Return ``text[start:end]`` without the ``cuts`` (removed tags inside it), tidied.

    Removing a tag leaves one space between the words around it, none before a line break
    or closing punctuation. Lines of whitespace become empty, and a run of empty lines
    shrinks to one.
    """
    pieces: list[str] = []
    cursor = start
    for cut_start, cut_end in cuts:
        pieces.append(text[cursor:cut_start])
        cursor = cut_end
        following = text[cursor] if cursor < end else "\n"
        if following in "\r\n" or following in _CLOSING_PUNCTUATION:
            _trim_trailing_spaces(pieces)
        elif following in " \t" and _last_char(pieces) in ("", " ", "\t", "\n", "\r"):
            while cursor < end and text[cursor] in " \t":
                cursor += 1
    pieces.append(text[cursor:end])

    prose = _normalise_breaks("".join(pieces))
    ends_with_break = prose.endswith("\n")
    lines = (prose[:-1] if ends_with_break else prose).split("\n")
    tidy: list[str] = []
    for line in lines:
        if not line.strip():
            line = ""
        if line or not tidy or tidy[-1]:
            tidy.append(line)
    return "\n".join(tidy) + ("\n" if ends_with_break else "")


def _last_char(pieces: list[str]) -> str:
    for piece in reversed(pieces):
        if piece:
            return piece[-1]
    return ""


def _trim_trailing_spaces(pieces: list[str]) -> None:
    while pieces:
        trimmed = pieces[-1].rstrip(" \t")
        if trimmed:
            pieces[-1] = trimmed
            return
        pieces.pop()
