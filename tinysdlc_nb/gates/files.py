"""Walk a project's files the way every check does: skipping tool and build folders."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


def iter_files(project: Path, exclude_dirs: Iterable[str], suffixes: Iterable[str] | None = None,
               exclude_globs: Iterable[str] = ()) -> Iterator[Path]:
    """Yield files under ``project`` in a stable order.

    Folders named in ``exclude_dirs`` are not entered. ``suffixes`` (such as ``.py``) limits
    the files yielded; ``exclude_globs`` are matched against the path relative to the
    project, with forward slashes (``tests/**``, ``**/conftest.py``).
    """
    skip = set(exclude_dirs)
    suffix_filter = tuple(suffixes) if suffixes is not None else None
    globs = tuple(exclude_globs)
    for root, dirs, names in os.walk(project):
        dirs[:] = sorted(name for name in dirs
                         if name not in skip and not name.endswith(".egg-info"))
        for name in sorted(names):
            if suffix_filter is not None and not name.endswith(suffix_filter):
                continue
            path = Path(root, name)
            relative = path.relative_to(project).as_posix()
            if globs and matches_any(relative, globs):
                continue
            yield path


def matches_any(relative: str, globs: Iterable[str]) -> bool:
    """Return True when ``relative`` matches one of ``globs``.

    ``**/`` at the start of a glob also matches at the project root, so ``**/conftest.py``
    matches ``conftest.py`` as well as ``pkg/conftest.py``.
    """
    for pattern in globs:
        if fnmatch.fnmatchcase(relative, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(relative, pattern[3:]):
            return True
    return False
