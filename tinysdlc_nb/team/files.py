"""The file exchange: ``[send_file: PATH]`` tags in agent replies and the files they name.

An agent shares a file by putting it in the team's file exchange folder and writing
``[send_file: PATH]`` with PATH relative to that folder. ``resolve_outgoing`` accepts only
a regular file inside the folder. It rejects every absolute path, even one that points
inside the folder, because the tag's contract is a path relative to the folder, and an
absolute path is a sign that the agent is reaching for a file elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..errors import UsageError
from ..scrub import scrub
from .tags import code_regions

log = logging.getLogger(__name__)

# A tag and the blanks before it, so removing it leaves one space between the words around it.
_TAG = re.compile(r"[ \t]*\[send_file:[ \t]*([^\]\n]*?)[ \t]*\]")
_HASH_CHUNK_BYTES = 1 << 20


class FileRefused(UsageError):
    """A ``[send_file: PATH]`` path that may not leave the file exchange folder."""

    def __init__(self, path_text: str, reason: str):
        super().__init__(f"send_file '{scrub(path_text)}' rejected: {reason}")
        self.path_text = path_text
        self.reason = reason


def extract_files(text: str) -> tuple[str, list[str]]:
    """Remove the ``[send_file: PATH]`` tags from ``text``; return the text and the paths.

    Tags inside fenced code blocks and inline code spans stay as they are, so an agent can
    show the syntax without sending anything. Paths are returned as written, without
    surrounding blanks and without duplicates, in order of first appearance. A line that
    contained only tags is removed, and so are the blanks around the text. A text without
    tags is returned unchanged.
    """
    code = code_regions(text)
    matches = [tag for tag in _TAG.finditer(text)
               if not any(begin <= tag.start() < finish for begin, finish in code)]
    if not matches:
        return text, []

    paths = [tag.group(1) for tag in matches]
    tagged_lines = {text.count("\n", 0, tag.start()) for tag in matches}
    pieces, position = [], 0
    for tag in matches:
        pieces.append(text[position:tag.start()])
        position = tag.end()
    pieces.append(text[position:])

    output_lines = []
    for number, line in enumerate("".join(pieces).split("\n")):
        if number in tagged_lines:
            if not line.strip():
                continue
            indent = line[:len(line) - len(line.lstrip(" \t"))]
            line = indent + line.strip(" \t\r")
        output_lines.append(line)
    return "\n".join(output_lines).strip(), list(dict.fromkeys(paths))


def _collect(tag: re.Match[str], found: list[str]) -> str:
    # An empty path is kept, so that resolving it reports the mistake to the agent.
    found.append(tag.group(1))
    return ""


def _line_end(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


def resolve_outgoing(path_text: str, files_dir: Path) -> Path:
    """Return the resolved file that ``[send_file: path_text]`` names inside ``files_dir``.

    Raise FileRefused for an empty, absolute or home-relative path, a path with a ``..``
    component, a path whose symbolic links lead out of the folder, a missing file, and
    anything that is not a regular file.
    """
    text = path_text.strip()
    folder = f"the file exchange folder {files_dir}"
    if not text:
        raise FileRefused(path_text, f"the path is empty; write a file name relative to "
                                     f"{folder}")

    if _is_absolute(text):
        raise FileRefused(path_text, f"absolute paths are not accepted; write the path "
                                     f"relative to {folder}")
    if text.startswith("~"):
        raise FileRefused(path_text, f"paths starting with '~' are not accepted; write the "
                                     f"path relative to {folder}")
    if ".." in PurePosixPath(text.replace("\\", "/")).parts:
        raise FileRefused(path_text, f"'..' components are not accepted; write the path "
                                     f"relative to {folder} without leaving it")

    try:
        base = files_dir.resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise FileRefused(path_text, f"{folder} does not exist ({type(error).__name__}); "
                                     f"create it and put the file there") from error
    try:
        resolved = (base / text).resolve(strict=True)
    except FileNotFoundError as error:
        raise FileRefused(path_text, f"the file was not found in {folder}; put it there "
                                     f"first") from error
    except (OSError, RuntimeError) as error:
        raise FileRefused(path_text, f"the path could not be resolved "
                                     f"({type(error).__name__}: {error}); fix the path") from error

    if not resolved.is_relative_to(base):
        raise FileRefused(path_text, f"it resolves through a symbolic link to a file outside "
                                     f"{folder}; copy the file into the folder instead")
    if not resolved.is_file():
        raise FileRefused(path_text, f"it is not a regular file; send a file from {folder}")

    log.debug("send_file %s resolved to %s", scrub(text), resolved)
    return resolved


def _is_absolute(text: str) -> bool:
    """Tell whether ``text`` is absolute here or on Windows (``C:\\x``, ``\\\\host\\share``)."""
    windows = PureWindowsPath(text)
    return Path(text).is_absolute() or bool(windows.drive) or windows.root != ""


def file_record(path: Path, files_dir: Path | None = None) -> dict[str, Any]:
    """Return the name, path, size in bytes and SHA-256 of the file at ``path``.

    ``path`` in the record is relative to ``files_dir`` in POSIX form when the file lies
    inside it, and the path as given otherwise. Size and hash count the same bytes read, so
    they agree even when the file changes while it is read.
    """
    relative = Path(path).as_posix()
    if files_dir is not None:
        resolved = Path(path).resolve()
        base = Path(files_dir).resolve()
        if resolved.is_relative_to(base):
            relative = resolved.relative_to(base).as_posix()

    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)

    return {"name": Path(path).name, "path": relative, "size": size,
            "sha256": digest.hexdigest()}
