"""The reviewed baseline of the ``secrets`` check: a detect-secrets baseline file.

A baseline made by ``detect-secrets scan`` (and labelled with ``detect-secrets audit``)
lists results by file and ``hashed_secret``. A result found again is reviewed, unless its
entry is marked ``is_secret: true``, which keeps it counting.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import TinySDLCError
from ...secret_patterns import hash_secret

log = logging.getLogger(__name__)

# detect-secrets 1.5 reports only the prefix of GitHub and GitLab tokens as their value,
# so every such token of a file has one of these hashes. A baseline entry with one of them
# matches only the result on its own line, so it cannot hide every other token in the file.
# NOTE: a different token written on that same line (and a new key body under the same
# PRIVATE KEY header) still matches, because such a baseline contains no hash of the value.
_PREFIX_ONLY_HASHES = frozenset(
    hash_secret(prefix)
    for prefix in ("ghp", "gho", "ghu", "ghs", "ghr", "glpat", "gldt", "glft", "glsoat", "glrt")
)


class BaselineError(TinySDLCError, ValueError):
    """The baseline file exists but is not a detect-secrets baseline."""


@dataclass(frozen=True)
class _Entry:
    line: int
    is_secret: bool | None


@dataclass
class ReviewedSecrets:
    """The entries of one baseline, by file and hashed secret."""

    entries: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, name: str) -> ReviewedSecrets:
        """Read the baseline at ``path``; a missing file is an empty baseline.

        Raises BaselineError naming ``name`` when the file is not valid baseline JSON.
        """
        if not path.is_file():
            log.info("secrets: no baseline at %s; every result counts", name)
            return cls()

        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BaselineError(_invalid(name, f"it cannot be read as JSON ({error})")) from error

        results = document.get("results") if isinstance(document, dict) else None
        if not isinstance(results, dict):
            raise BaselineError(_invalid(name, "it has no 'results' table"))

        entries: dict[tuple[str, str], list[_Entry]] = {}
        for filename, items in results.items():
            if not isinstance(items, list):
                raise BaselineError(_invalid(name, f"results for '{filename}' are not a list"))
            for item in items:
                if not isinstance(item, dict) or "hashed_secret" not in item:
                    raise BaselineError(_invalid(name, f"an entry for '{filename}' has no "
                                                       f"hashed_secret"))
                key = (Path(filename).as_posix(), str(item["hashed_secret"]))
                entries.setdefault(key, []).append(
                    _Entry(int(item.get("line_number") or 0), item.get("is_secret")))
        return cls(entries)

    def lookup(self, file: str, line: int, hashes: list[str]) -> bool | None:
        """Return True if audited as a real secret, False if reviewed, None if not listed."""
        matched: list[_Entry] = []
        for hashed in hashes:
            entries = self.entries.get((file, hashed), [])
            if hashed in _PREFIX_ONLY_HASHES:
                entries = [entry for entry in entries if entry.line == line]
            matched.extend(entries)

        if not matched:
            return None

        return any(entry.is_secret is True for entry in matched)


def _invalid(name: str, reason: str) -> str:
    return (f"baseline {name} is invalid: {reason}; regenerate it with "
            f"'detect-secrets scan --all-files > {name}' or fix [checks.secrets] baseline")
