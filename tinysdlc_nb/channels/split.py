"""Splitting of long texts into numbered parts that fit a chat API's length limit."""

from __future__ import annotations

import unicodedata

# Characters that join the one before them into one visible symbol, besides the combining
# marks that unicodedata reports. A cut just before one of them would break that symbol.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def text_length(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units.

    Telegram and Discord count message lengths this way, and the count is never below the
    number of code points, so a part that fits this count fits a code point limit too.
    """
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 code units.

    A text that fits is returned as it is. Longer texts are cut after a line break where
    possible, else after a space, else between two characters that do not form one symbol,
    and each part starts with its number, such as ``(1/3) ``. Joining the parts after their
    numbers gives the text back unchanged.
    """
    if text_length(text) <= limit:
        return [text]

    digits = 1
    while True:
        label_size = len(f"({'9' * digits}/{'9' * digits}) ")
        if limit - label_size < 1:
            raise ValueError(f"limit {limit} leaves no room for the part numbers")
        pieces = _cut(text, limit - label_size)
        if len(pieces) < 10 ** digits:
            break
        digits += 1
    return [f"({number}/{len(pieces)}) {piece}" for number, piece in enumerate(pieces, 1)]


def _cut(text: str, budget: int) -> list[str]:
    pieces = []
    start = 0
    while start < len(text):
        end = _fitting_end(text, start, budget)
        if end < len(text):
            end = _break_point(text, start, end)
        pieces.append(text[start:end])
        start = end
    return pieces


def _fitting_end(text: str, start: int, budget: int) -> int:
    """Return the largest end index whose slice from ``start`` fits ``budget`` code units."""
    used = 0
    end = start
    while end < len(text):
        size = 2 if ord(text[end]) > 0xFFFF else 1
        if used + size > budget:
            break
        used += size
        end += 1
    return max(end, start + 1)


def _break_point(text: str, start: int, end: int) -> int:
    """Move ``end`` back to the last line break, else the last space, in the second half."""
    floor = start + (end - start) // 2
    for separator in ("\n", " "):
        found = text.rfind(separator, floor, end)
        if found != -1:
            return found + 1

    cut = end
    while cut > start + 1 and (_joins_previous(text[cut]) or text[cut - 1] == "\u200d"
                               or _splits_flag(text, start, cut)):
        cut -= 1
    return cut if cut > start + 1 else end


def _joins_previous(character: str) -> bool:
    return character in _JOINERS or unicodedata.combining(character) != 0


def _splits_flag(text: str, start: int, cut: int) -> bool:
    """Return True when ``cut`` falls between the two regional indicators of one flag.

    Flags are pairs of regional indicator letters, read in pairs from the first of a run.
    """
    if not (_is_regional(text[cut]) and _is_regional(text[cut - 1])):
        return False
    run_start = cut - 1
    while run_start > start and _is_regional(text[run_start - 1]):
        run_start -= 1
    return (cut - run_start) % 2 == 1


def _is_regional(character: str) -> bool:
    return "\U0001F1E6" <= character <= "\U0001F1FF"
