"""Read a runbook's Markdown into a ``Runbook``, collecting problems with their line numbers.

markdown-it-py (CommonMark) finds the headings, lists and fenced blocks, so a runbook reads
the same here as in any Markdown viewer.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..errors import UsageError
from .frontmatter import Problem, read_front_matter, split_front_matter
from .model import DEFAULT_STEP_TIMEOUT_S, Expectation, Phase, Prerequisite, Runbook, Step

SECTIONS = {"prerequisites": None, "steps": Phase.STEP, "verification": Phase.VERIFY,
            "rollback": Phase.ROLLBACK, "monitoring": None}
COMMAND_LANGUAGES = ("bash", "sh", "shell")
CHECK_WORDS = ("gate", "command", "env")

_EXPECT_EXIT = re.compile(r"^exit(?:\s+code)?\s+(\d{1,3})$", re.IGNORECASE)
_EXPECT_TEXT = re.compile(r"^(?:output\s+)?contains\s+(.+)$", re.IGNORECASE)
_TIMEOUT = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?)?$", re.IGNORECASE)
_CHECKBOX = re.compile(r"^\[([ xX])\]\s*")
_MARKDOWN = MarkdownIt("commonmark")


class RunbookInvalid(UsageError):
    """A runbook has lint errors, so it is neither compiled nor run."""

    def __init__(self, path: str, problems: list[Problem]):
        errors = [problem for problem in problems if problem.severity == "error"]
        listed = "\n".join(f"  {problem.render(path)}" for problem in errors)
        super().__init__(f"runbook {path} has {len(errors)} error(s); fix them (tinysdlc-nb "
                         f"runbook lint {path}):\n{listed}")
        self.problems = problems


def read_runbook(path: Path) -> tuple[Runbook, list[Problem]]:
    """Read the runbook at ``path``; raise UsageError when the file cannot be read."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError as error:
        raise UsageError(f"runbook file '{path}' not found; pass the path of a .md runbook "
                         f"or the name of one under runbooks/") from error
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as error:
        raise UsageError(f"runbook file '{path}' cannot be read ({error}); runbooks are UTF-8 "
                         f"Markdown files") from error
    runbook, problems = parse_runbook(text, path)
    runbook.sha256 = hashlib.sha256(raw).hexdigest()
    return runbook, problems


def load_runbook(path: Path, accept: frozenset[str] = frozenset()) -> Runbook:
    """Read the runbook at ``path`` and raise RunbookInvalid when lint finds an error.

    ``accept`` names problem codes the caller handles itself, such as a missing rollback
    that ``runbook run --no-rollback`` allows.
    """
    from .lint import lint_runbook

    runbook, problems = read_runbook(path)
    problems = [problem for problem in problems + lint_runbook(runbook)
                if problem.code not in accept]
    if any(problem.severity == "error" for problem in problems):
        raise RunbookInvalid(str(path), problems)
    return runbook


def parse_runbook(text: str, path: Path | None = None) -> tuple[Runbook, list[Problem]]:
    """Parse runbook ``text``; problems found while reading come back beside the result."""
    problems: list[Problem] = []
    front = read_front_matter(text, problems)
    data = front.data if front else {}
    split = split_front_matter(text)
    body_start = split[1] if split else 1

    runbook = Runbook(
        name=str(data.get("name") or (path.stem if path else "runbook")),
        description=str(data.get("description") or ""),
        path=path, source=text,
        parameters=front.parameters if front else {},
        rollback_target_s=_number(data.get("rollback_target_s")),
        step_timeout_s=_number(data.get("step_timeout_s")) or DEFAULT_STEP_TIMEOUT_S,
        service=data.get("service") if isinstance(data.get("service"), str) else "",
        environment=data.get("environment") if isinstance(data.get("environment"), str) else "",
        read_only=data.get("read_only") is True,
    )
    body = "".join(text.splitlines(keepends=True)[body_start - 1:])
    _read_body(runbook, body, body_start, problems)
    return runbook, problems


def runbook_sha256(runbook: Runbook) -> str:
    """Return the SHA-256 of the runbook file's bytes (of its text when it has no file)."""
    return runbook.sha256 or hashlib.sha256(runbook.source.encode("utf-8")).hexdigest()


def _read_body(runbook: Runbook, body: str, first_line: int, problems: list[Problem]) -> None:
    tokens = _MARKDOWN.parse(body)
    section: str | None = None
    section_lines = runbook.sections
    index = 0

    while index < len(tokens):
        token = tokens[index]
        line = first_line + (token.map[0] if token.map else 0)
        if token.type == "heading_open":
            heading = tokens[index + 1].content.strip()
            if token.tag == "h1" and not runbook.title:
                runbook.title = heading
            elif token.tag == "h2":
                section = heading.lower()
                if section in section_lines:
                    problems.append(Problem(line, "error", f"section '{heading}' appears twice; "
                                            f"merge the two"))
                elif section not in SECTIONS:
                    problems.append(_unknown_section(heading, line))
                section_lines.setdefault(section, line)
            index += 3
            continue

        if token.type in ("ordered_list_open", "bullet_list_open") and token.level == 0:
            end = _closing(tokens, index)
            items = _list_items(tokens, index + 1, end)
            if section in ("steps", "verification", "rollback"):
                phase = SECTIONS[section]
                steps = runbook.phase_steps(phase)
                if token.type == "bullet_list_open":
                    problems.append(Problem(line, "error", f"the {section} are a bulleted list; "
                                            f"number them (1., 2., ...)"))
                for item_tokens in items:
                    steps.append(_read_step(runbook, phase, len(steps) + 1, item_tokens,
                                            first_line, problems))
            elif section == "prerequisites":
                runbook.prerequisites += [_read_prerequisite(item, first_line)
                                          for item in items]
            index = end + 1
            continue

        if token.type == "fence" and section in ("steps", "verification", "rollback"):
            problems.append(Problem(line + 1, "error", f"a code block in {section} is outside "
                                    f"any numbered item; indent it under its step"))
        if token.type == "inline" and token.level == 1 and \
                section in ("steps", "verification", "rollback"):
            for offset, text in enumerate(token.content.splitlines()):
                if text.strip().lower().startswith(("expect:", "timeout:")):
                    problems.append(Problem(line + offset, "error", f"'{text.strip()}' is "
                                            f"outside any numbered item, so no step reads it; "
                                            f"indent it under its step"))
        index += 1

    if "monitoring" in section_lines:
        runbook.monitoring = _section_text(body, tokens, "monitoring")


def _unknown_section(heading: str, line: int) -> Problem:
    close = difflib.get_close_matches(heading.lower(), SECTIONS, n=1, cutoff=0.6)
    hint = f"; did you mean '## {close[0].capitalize()}'?" if close else \
        f"; runbook sections are {', '.join(name.capitalize() for name in SECTIONS)}"
    return Problem(line, "warning", f"section '{heading}' is shown but never run{hint}")


def _read_step(runbook: Runbook, phase: Phase, number: int, tokens: list[Token],
               first_line: int, problems: list[Problem]) -> Step:
    start = first_line + (tokens[0].map[0] if tokens[0].map else 0)
    texts: list[str] = []
    title_lines: list[str] = []
    shown: list[str] = []
    commands: list[tuple[str, int]] = []
    expect_exit, contains, timeout_s = 0, [], runbook.step_timeout_s
    where = f"{phase.value} {number}"

    for token in tokens:
        line = first_line + (token.map[0] if token.map else 0)
        if token.type == "fence":
            language = token.info.strip().split(" ")[0].lower()
            if language in COMMAND_LANGUAGES:
                commands.append((token.content, line + 1))
            elif language and language not in ("text", "console", "output", "plain"):
                shown.append(language)
            elif not language:
                problems.append(Problem(line, "error", f"{where} has a code block without a "
                                        f"language; write ```bash to run it or ```text to "
                                        f"show it"))
            continue
        if token.type != "inline":
            continue

        paragraph_start = len(texts)
        for offset, text in enumerate(token.content.splitlines()):
            key, _, value = text.partition(":")
            key, value = key.strip().lower(), value.strip()
            if key == "expect":
                expect_exit, contains = _read_expect(value, line + offset, where, expect_exit,
                                                     contains, problems)
            elif key == "timeout":
                timeout_s = _read_timeout(value, line + offset, where, timeout_s, problems)
            else:
                texts.append(text)
        if not title_lines and len(texts) > paragraph_start:
            title_lines = texts[paragraph_start:]

    if shown and not commands:
        problems.append(Problem(start, "error", f"{where} has a ```{shown[0]} block, which is "
                                f"shown but not run; steps run ```bash blocks"))
    if len(commands) > 1:
        problems.append(Problem(commands[1][1] - 1, "error", f"{where} has {len(commands)} "
                                f"bash blocks; a step runs one, so split it into steps"))
    command, command_line = commands[0] if commands else (None, 0)
    title = " ".join(line.strip() for line in title_lines) or \
        f"{phase.value.capitalize()} {number}"
    rest = texts[len(title_lines):] if title_lines == texts[:len(title_lines)] else texts
    return Step(phase=phase, number=number, title=title, text="\n".join(rest).strip(),
                command=command, expect=Expectation(expect_exit, tuple(contains)),
                timeout_s=timeout_s, line=start, command_line=command_line)


def _read_expect(value: str, line: int, where: str, exit_code: int, contains: list[str],
                 problems: list[Problem]) -> tuple[int, list[str]]:
    exit_match = _EXPECT_EXIT.match(value)
    text_match = _EXPECT_TEXT.match(value)
    if exit_match and int(exit_match[1]) <= 255:
        return int(exit_match[1]), contains
    if exit_match:
        problems.append(Problem(line, "error", f"{where}: 'Expect: {value}' is invalid; an exit "
                                f"status is 0 to 255"))
        return exit_code, contains
    if text_match:
        text = text_match[1].strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
            text = text[1:-1]
        if text:
            return exit_code, [*contains, text]
    problems.append(Problem(line, "error", f"{where}: 'Expect: {value}' is not understood; "
                            f"write 'Expect: exit 0' or 'Expect: contains TEXT'"))
    return exit_code, contains


def _read_timeout(value: str, line: int, where: str, current: float,
                  problems: list[Problem]) -> float:
    match = _TIMEOUT.match(value)
    if not match or float(match[1]) <= 0:
        problems.append(Problem(line, "error", f"{where}: 'Timeout: {value}' is invalid; write "
                                f"a duration such as 'Timeout: 30s' or 'Timeout: 5m'"))
        return current
    seconds = float(match[1])
    return seconds * 60 if (match[2] or "s").lower().startswith("m") else seconds


def _read_prerequisite(tokens: list[Token], first_line: int) -> Prerequisite:
    inline = next((token for token in tokens if token.type == "inline"), None)
    line = first_line + (tokens[0].map[0] if tokens[0].map else 0)
    if inline is None:
        return Prerequisite("", "", line)

    text = _CHECKBOX.sub("", inline.content.strip())
    # Only a code span that ends the item is a check; one inside the sentence is text.
    children = [child for child in inline.children or []
                if child.type != "text" or child.content.strip(" .")]
    last = children[-1] if children else None
    words = last.content.split() if last is not None and last.type == "code_inline" else []
    if not words or words[0].lower() not in CHECK_WORDS:
        return Prerequisite(text, "", line)

    check = " ".join(words)
    written = f"`{last.content}`"
    if written in text:
        text = text[:text.rindex(written)].rstrip(" :-—")
    return Prerequisite(text or check, check, line)


def _list_items(tokens: list[Token], start: int, end: int) -> list[list[Token]]:
    items, index = [], start
    while index < end:
        if tokens[index].type == "list_item_open":
            close = _closing(tokens, index)
            items.append(tokens[index:close + 1])
            index = close + 1
        else:
            index += 1
    return items


def _closing(tokens: list[Token], start: int) -> int:
    """Return the index of the token that closes ``tokens[start]``."""
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index
    return len(tokens) - 1


def _section_text(body: str, tokens: list[Token], name: str) -> str:
    lines = body.splitlines()
    headings = [token for token in tokens if token.type == "heading_open" and token.tag == "h2"]
    for position, heading in enumerate(headings):
        index = tokens.index(heading)
        if tokens[index + 1].content.strip().lower() != name:
            continue
        stop = headings[position + 1].map[0] if position + 1 < len(headings) else len(lines)
        return "\n".join(lines[heading.map[1]:stop]).strip()
    return ""


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
