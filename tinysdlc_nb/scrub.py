"""Redaction of secrets from every text that leaves the process.

Notebooks, HTML reports, logs and messages pass through ``scrub`` (or ``scrub_data`` for
JSON-like values) before they are written. Three kinds of values are replaced with
``[REDACTED:<what>]``, always as a whole:

- values of environment variables whose name looks secret (``GITHUB_TOKEN``,
  ``DB_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``...), and passwords inside URLs held in any
  environment variable (``DATABASE_URL``);
- every match of the provider patterns in ``secret_patterns`` (GitHub, AWS, Slack...);
- every password written in a URL (``scheme://user:password@host``), whatever the host.

Environment values shorter than ``MIN_ENV_VALUE_LENGTH`` are left alone: values such as
``true``, ``1``, ``admin`` or ``bearer`` are common words, and replacing each of their
occurrences would garble the text while protecting nothing.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from . import secret_patterns

log = logging.getLogger(__name__)

# Eight characters is the shortest length NIST SP 800-63B allows for a chosen password,
# and few common words that also appear as flag values reach it.
MIN_ENV_VALUE_LENGTH = 8
MIN_PROTECTED_LENGTH = 4

_SECRET_NAME_WORDS = frozenset({
    "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASS", "PWD", "APIKEY",
    "CREDENTIAL", "CREDENTIALS", "AUTH", "PASSPHRASE", "PRIVATEKEY", "SECRETKEY",
})
_SECRET_NAME_PAIRS = frozenset({
    ("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"),
    ("SIGNING", "KEY"), ("ENCRYPTION", "KEY"), ("CLIENT", "SECRET"),
})
_SECRET_NAME_SUFFIXES = ("PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY", "PASSPHRASE")
# A name ending in one of these describes a secret without containing it: GITHUB_TOKEN_FILE
# is a path, AUTH_URL an address, AWS_ACCESS_KEY_ID an identifier, MAX_TOKENS a number.
_DESCRIPTOR_WORDS = frozenset({
    "FILE", "PATH", "DIR", "SOCK", "SOCKET", "HOST", "PORT", "USER", "USERNAME", "URL", "URI",
    "ENDPOINT", "ID", "TYPE", "MODE", "METHOD", "NAME", "HEADER", "EXPIRY", "EXPIRES", "TTL",
    "TIMEOUT", "ENABLED", "DISABLED", "REQUIRED", "LENGTH", "VERSION", "PROVIDER", "SCOPE",
    "SCOPES", "REGION", "COUNT", "LIMIT", "USAGE", "TOTAL",
})
_COUNT_PREFIXES = frozenset({"MAX", "MIN", "NUM"})
_NAME_SPLIT = re.compile(r"[^A-Z0-9]+")
_REDACTED = "[REDACTED:{}]"
_protected: dict[str, str] = {}
_protected_regex: re.Pattern[str] | None = None


# A provider token shortened with an ellipsis, as pytest and other reprs print long
# strings ('ghp_p14l...IuzT8'): too short for the full patterns, yet part of a secret.
_SHORTENED_TOKEN = re.compile(
    r"(?:gh[pousr]_|github_pat_|glpat-|xox[abprs]-|sk-ant-|sk-proj-|sk_live_|rk_live_"
    r"|(?:AKIA|ASIA)(?=[A-Z0-9]))[A-Za-z0-9_\-]*(?:\.\.\.|\u2026)[A-Za-z0-9_\-]*")


def scrub(text: str) -> str:
    """Return ``text`` with every secret it contains replaced by ``[REDACTED:<what>]``."""
    if not text:
        return text

    text = _environment_secrets().redact(text)
    if _protected_regex is not None:
        text = _protected_regex.sub(lambda match: _REDACTED.format(_protected[match[0]]), text)
    text = _redact_patterns(text)
    if "..." in text or "\u2026" in text:
        text = _SHORTENED_TOKEN.sub(_REDACTED.format("shortened token"), text)
    return text


def protect(value: str, label: str = "secret parameter") -> None:
    """Redact ``value`` from every later ``scrub`` in this process, whatever it looks like.

    For secrets declared as such (a runbook's ``secret: true`` parameter) whose variable
    name does not look secret. Values shorter than ``MIN_PROTECTED_LENGTH`` are not
    protected, because replacing every occurrence of two or three characters would garble
    the text.
    """
    global _protected_regex

    if len(value) < MIN_PROTECTED_LENGTH or value in _protected:
        if value and len(value) < MIN_PROTECTED_LENGTH:
            log.warning("a %s of %d characters is too short to redact", label, len(value))
        return
    _protected[value] = label
    ordered = sorted(_protected, key=len, reverse=True)
    _protected_regex = re.compile("|".join(re.escape(item) for item in ordered))


def scrub_data(value: Any) -> Any:
    """Return a copy of JSON-like ``value`` with every string scrubbed.

    Dictionary keys are scrubbed too. A string value under a key whose name looks secret
    (``"password"``, ``"api_token"``) is replaced whole, whatever its length, unless it is
    an environment reference such as ``${DB_PASSWORD}``.
    """
    if isinstance(value, str):
        return scrub(value)

    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            name = scrub(key) if isinstance(key, str) else key
            if isinstance(key, str) and isinstance(item, str) and _redacts_whole_value(key, item):
                copy[name] = _REDACTED.format(key)
            else:
                copy[name] = scrub_data(item)
        return copy

    if isinstance(value, list | tuple):
        return type(value)(scrub_data(item) for item in value)

    return value


def looks_secret(name: str) -> bool:
    """Return True when a variable or key ``name`` marks its value as a secret.

    ``GITHUB_TOKEN``, ``DB_PASS``, ``aws_secret_access_key`` and ``api-key`` do; names that
    end in a descriptor (``TOKEN_FILE``, ``AUTH_URL``, ``ACCESS_KEY_ID``) do not.
    """
    return _looks_secret(name.upper())


# The shell's working-directory variables: "PWD" here is not short for password.
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})


@lru_cache(maxsize=4096)
def _looks_secret(upper_name: str) -> bool:
    if upper_name in _NOT_SECRET_NAMES:
        return False
    words = [word for word in _NAME_SPLIT.split(upper_name) if word]
    if not words or words[-1] in _DESCRIPTOR_WORDS or words[0] in _COUNT_PREFIXES:
        return False

    if any(word in _SECRET_NAME_WORDS or word.endswith(_SECRET_NAME_SUFFIXES) for word in words):
        return True

    return any(pair in _SECRET_NAME_PAIRS for pair in zip(words, words[1:], strict=False))


def _redacts_whole_value(key: str, value: str) -> bool:
    if not value or not looks_secret(key):
        return False

    return not secret_patterns.is_env_reference(value)


def _redact_patterns(text: str) -> str:
    patterns = (*secret_patterns.PATTERNS, secret_patterns.TRUNCATED_PRIVATE_KEY)
    pieces: list[str] = []
    position = 0
    for found in secret_patterns.find_secrets(text, patterns):
        pieces.append(text[position:found.start])
        pieces.append(_REDACTED.format(found.pattern.name))
        position = found.end

    if not pieces:
        return text

    pieces.append(text[position:])
    return "".join(pieces)


@dataclass(frozen=True)
class _EnvironmentSecrets:
    """The secret values of one state of the environment, compiled into one regex.

    ``names`` are all variable names at that time and ``watched`` the values of the
    variables that can hold a secret, in the order of ``watched_names``.
    """

    names: tuple[str, ...]
    watched_names: tuple[str, ...]
    watched: tuple[str | None, ...]
    labels: dict[str, str] = field(default_factory=dict)
    regex: re.Pattern[str] | None = None

    def is_current(self, names: tuple[str, ...]) -> bool:
        if names != self.names:
            return False

        return tuple(os.environ.get(name) for name in self.watched_names) == self.watched

    def redact(self, text: str) -> str:
        if self.regex is None:
            return text

        return self.regex.sub(lambda match: _REDACTED.format(self.labels[match[0]]), text)


_cache: _EnvironmentSecrets | None = None


def _environment_secrets() -> _EnvironmentSecrets:
    """Return the compiled environment secrets, rebuilt only when the relevant items change.

    Each call compares the variable names and the values of the watched variables with
    the cached state, which takes about 5 microseconds for 40 variables. The regex is
    compiled again only after a change.
    """
    global _cache

    names = tuple(os.environ)
    cached = _cache
    if cached is not None and cached.is_current(names):
        return cached

    items = [(name, value) for name, value in os.environ.items() if _is_relevant(name, value)]
    # NOTE: a variable without "://" in its value at this point is not watched. If its
    # value later changes to a URL with a password, the change is noticed only when a
    # watched variable or the set of names changes too.
    watched_names = tuple(name for name, _ in items)
    labels = secret_values(items)
    regex = None
    if labels:
        ordered = sorted(labels, key=len, reverse=True)
        regex = re.compile("|".join(re.escape(value) for value in ordered))

    cached = _EnvironmentSecrets(names, watched_names, tuple(value for _, value in items),
                                 labels, regex)
    _cache = cached
    log.debug("redaction: %d secret values from %d environment variables",
              len(labels), len(items))
    return cached


def _is_relevant(name: str, value: str) -> bool:
    return looks_secret(name) or "://" in value


def secret_values(items: list[tuple[str, str]]) -> dict[str, str]:
    """Map each environment value to redact to the label that replaces it."""
    labels: dict[str, str] = {}
    for name, value in items:
        for found in secret_patterns.find_secrets(value, (secret_patterns.URL_PASSWORD,)):
            if len(found.value) >= MIN_ENV_VALUE_LENGTH:
                labels.setdefault(found.value, f"password in ${name}")

        if looks_secret(name) and len(value) >= MIN_ENV_VALUE_LENGTH:
            if not secret_patterns.is_env_reference(value):
                labels[value] = f"${name}"

    return labels


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line passes through ``scrub``."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def quiet_missing_cell_ids() -> None:
    """Hide nbformat's warning about notebooks whose cells have no ids.

    nbformat fills in the ids itself when it reads such a notebook, and the warning would
    otherwise be printed for every command that reads a user's older notebook.
    """
    warnings.filterwarnings("ignore", message="Cell is missing an id field")
