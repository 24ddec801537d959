"""A lint scan of the shell variables a step's command reads and the ones it sets itself.

It is not a bash parser. It follows single and double quotes,
backslash escapes and quoted here-documents, and it treats ``${NAME:-default}`` as a
deliberate optional read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Variables bash or the login environment sets in every step.
SHELL_VARIABLES = frozenset({
    "HOME", "PATH", "PWD", "OLDPWD", "USER", "LOGNAME", "SHELL", "TMPDIR", "TERM", "LANG",
    "LC_ALL", "HOSTNAME", "UID", "EUID", "PPID", "RANDOM", "SECONDS", "LINENO", "BASH",
    "BASH_SOURCE", "BASHPID", "BASH_VERSION", "BASH_REMATCH", "FUNCNAME", "PIPESTATUS",
    "IFS", "OSTYPE", "HOSTTYPE", "REPLY", "OPTARG", "OPTIND", "COLUMNS", "EPOCHSECONDS",
    "EPOCHREALTIME", "SRANDOM",
})
# Variables the runbook runner sets in every step.
RUNNER_VARIABLES = frozenset({"RUNBOOK_DIR", "RUNBOOK_NAME", "RUNBOOK_RUN_ID",
                              "RUNBOOK_LOG_DIR"})

_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[#!]?[A-Za-z_][A-Za-z0-9_]*)(?P<op>[^}]*)\}"
                        r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_ASSIGNMENT = re.compile(r"(?:^|[\s;&|(])(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)*)?"
                         r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=")
_LOOP_OR_READ = re.compile(r"\b(?:for|select)\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b"
                           r"|\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s*;"
                           r"|\b(?:read|mapfile|readarray)\s+((?:-\w+\s+(?:\S+\s+)?)*)"
                           r"([A-Za-z_][A-Za-z0-9_]*(?:\s+[A-Za-z_][A-Za-z0-9_]*)*)"
                           r"|\bprintf\s+-v\s+([A-Za-z_][A-Za-z0-9_]*)"
                           r"|\b(?:export|local|readonly|declare|unset)\s+(?:-\w+\s+)*"
                           r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"])([A-Za-z_][A-Za-z0-9_]*)\1")


@dataclass(frozen=True)
class Reference:
    """A ``$NAME`` read in a command; ``offset`` is the line within the command (0-based)."""

    name: str
    offset: int
    optional: bool  # written with a default, such as ${NAME:-x}


def referenced_variables(command: str) -> list[Reference]:
    """Return the variables ``command`` expands, outside single quotes and quoted here-docs."""
    references: list[Reference] = []
    for offset, text in _expanding_text(command):
        for match in _REFERENCE.finditer(text):
            name = match["braced"] or match["plain"]
            optional = False
            if match["braced"]:
                name = name.lstrip("#!")
                optional = match["op"].startswith((":-", "-", ":=", "=", ":+", "+"))
            references.append(Reference(name, offset, optional))
    return references


def assigned_variables(command: str) -> set[str]:
    """Return the variables ``command`` sets itself (assignments, loops, read, printf -v)."""
    names: set[str] = set()
    for line in command.splitlines():
        names.update(match[1] for match in _ASSIGNMENT.finditer(line))
        for match in _LOOP_OR_READ.finditer(line):
            for group in (match[1], match[2], match[4], match[5], match[6]):
                if group:
                    names.update(group.split())
    return names


def _expanding_text(command: str) -> list[tuple[int, str]]:
    """Return each line's text where bash expands variables, with single-quoted parts removed."""
    kept: list[tuple[int, str]] = []
    in_single = in_double = False
    heredoc_end: str | None = None

    for offset, line in enumerate(command.splitlines()):
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue

        pieces: list[str] = []
        index = 0
        while index < len(line):
            char = line[index]
            if char == "\\" and not in_single:
                index += 2
                continue
            if char == "'" and not in_double:
                in_single = not in_single
            elif char == '"' and not in_single:
                in_double = not in_double
            elif char == "#" and not in_single and not in_double and \
                    (index == 0 or line[index - 1].isspace()):
                break
            elif not in_single:
                pieces.append(char)
            index += 1
        kept.append((offset, "".join(pieces)))

        quoted = _HEREDOC.search(line)
        if quoted and not in_single:
            heredoc_end = quoted[2]
    return kept
