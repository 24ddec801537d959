"""High-precision secret patterns, shared by the ``secrets`` check and by ``scrub``.

Each pattern matches a value whose shape belongs to one provider (a fixed prefix, alphabet
and length), a private key block with a body, or a password written into a URL. Documented
examples (AWS's ``...EXAMPLE`` keys), placeholders (``xxxx``, ``<password>``, ``changeme``)
and environment references (``${DB_PASSWORD}``, ``os.environ[...]``) are not matches, so a
match is a value a reviewer agrees is a secret.

This module imports only the standard library: detect-secrets loads ``is_false_positive``
from it as a custom filter in its own worker processes.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

ALLOW_MARKER = "pragma: allowlist secret"

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
# Tokens with a vendor prefix (ghp_, xoxb-, AKIA) are often glued to a name with - or _
# ("deploy-ghp_..."). Only a letter or digit before the prefix makes them part of a word.
_ALNUM = frozenset(string.ascii_letters + string.digits)

# The same comment forms detect-secrets 1.5 accepts before its marker.
_COMMENT = r"(?:#|//|/\*|--|<!--|')"
_ALLOW_SAME_LINE = re.compile(_COMMENT + r"[ \t]*pragma: ?(?:allow|white)list[ -]secret")
_ALLOW_NEXT_LINE = re.compile(
    r"^[ \t]*" + _COMMENT + r"[ \t]*pragma: ?allowlist[ -]nextline[ -]secret")

LOCK_FILE_NAMES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock",
    "poetry.lock", "Pipfile.lock", "uv.lock", "pdm.lock", "Cargo.lock", "composer.lock",
    "Gemfile.lock", "go.sum", "packages.lock.json", "Podfile.lock", "Package.resolved",
    "Brewfile.lock.json", "Cartfile.resolved", "pylock.toml",
})

# Lines that pin a package by its digest: npm/yarn "integrity", pip "--hash=", and the
# "hash"/"sha256" keys of Python lock files when they sit in files not named like a lock file.
# Quotes may come escaped, as in the lines detect-secrets' config parser rebuilds.
_QUOTES = r"""[\\"']*"""
_INTEGRITY_LINE = re.compile(
    rf"(?:{_QUOTES}integrity{_QUOTES}\s*[:=]?\s*{_QUOTES}sha(?:1|256|384|512)-"
    r"|--hash[= ](?:sha\d+|md5):"
    rf"|{_QUOTES}(?:hash|sha256|sha512){_QUOTES}\s*[:=]\s*{_QUOTES}(?:sha\d+:)?[0-9a-fA-F]{{40,}}\b)"
)

_ENV_REFERENCE = re.compile(
    r"""^(?:\$\{[^{}]+\}                  # ${NAME}, ${NAME:-default}
        |\$[A-Za-z_][A-Za-z0-9_]*         # $NAME
        |%\([A-Za-z_]\w*\)s               # %(name)s
        |%[A-Za-z_]\w*%                   # %NAME% on Windows
        |\{\{.*\}\}                       # {{ name }} in templates
        |\{[A-Za-z_][\w.]*\}              # {name} in format strings
        |<[^<>]+>                         # <password> in documentation
        )$""",
    re.VERBOSE,
)
_ENV_CALL = re.compile(r"os\.environ|getenv\s*\(|process\.env\.|\bENV\[|secrets\.[A-Z_]+\b")

_PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "secret", "changeme", "changeit", "token", "apikey",
    "key", "example", "sample", "dummy", "fake", "test", "redacted", "placeholder", "none",
    "null", "foo", "bar", "foobar", "mypassword", "yourpassword", "mysecret", "yoursecret",
    "secretkey", "accesstoken", "yourtoken", "mytoken",
    # Oracle's sample schema login scott/tiger, used across database documentation.
    "tiger",
})
# A value made only of these words ("top secret", "your_password_here") is prose, and a
# value with one of the stand-in words in it ("fake_client_secret") is a fixture.
_FILLER_WORDS = frozenset({
    "a", "an", "the", "my", "your", "our", "some", "top", "super", "very", "here", "goes",
    "this", "is", "default", "demo", "client", "api", "access", "user", "db", "admin",
})
_STAND_IN_WORDS = frozenset({
    "test", "fake", "dummy", "mock", "sample", "example", "placeholder", "changeme",
    "redacted",
})
_PLACEHOLDER_SHAPE = re.compile(
    r"(?i)example|^(?:your|my)[_-]|^[*x.#-]+$|\[REDACTED|(.)\1{5,}|^\*{3}|\*{3}$"
)

_MASK = re.compile(r"^(?:\*+|x+|X+|\.\.\.|\[REDACTED[^\]]*\]?)$")

_LOCAL_HOSTS = re.compile(
    r"(?i)^(?:localhost|127(?:\.\d{1,3}){3}|0\.0\.0\.0|\[::1?\]|host|hostname"
    r"|(?:[\w-]+\.)*(?:example|localhost|test|invalid|local)"
    r"|(?:[\w-]+\.)*example\.(?:com|org|net))$"
)


@dataclass(frozen=True)
class SecretPattern:
    """One kind of secret: its rule id, its human name and the regex that finds it.

    The regex has a group named ``secret``: the value to report and redact. ``needles`` are
    literal strings of which at least one occurs in any match, so text without any of them
    is skipped without running the regex. A match right after one of the ``not_after``
    characters is part of a longer word and does not count.
    """

    rule: str
    name: str
    regex: re.Pattern[str]
    needles: tuple[str, ...]
    is_valid: Callable[[re.Match[str]], bool] | None = None
    not_after: frozenset[str] = _TOKEN_CHARS


@dataclass(frozen=True)
class SecretMatch:
    """A secret found in a text: which pattern, where the value starts and ends, and the value."""

    pattern: SecretPattern
    start: int
    end: int
    value: str
    match: re.Match[str]


def _mixed_base64(match: re.Match[str]) -> bool:
    # An AWS secret key is 40 random base64 characters; a hex digest of the same length
    # has no upper case letters and is not one.
    value = match["secret"]
    return (any(char.isupper() for char in value) and any(char.islower() for char in value)
            and any(char.isdigit() or char in "/+" for char in value))


def _has_key_body(match: re.Match[str]) -> bool:
    # A BEGIN/END pair around "..." is documentation or a detector's own source. A real
    # key has a long base64 body, even when written as "\n"-joined strings.
    body = re.sub(r"\\[nrt]", "", match["body"])
    base64_chars = re.findall(r"[A-Za-z0-9+/=]", body)
    return len(base64_chars) >= 64 and len(set(base64_chars)) >= 20


def _long_enough(minimum: int) -> Callable[[re.Match[str]], bool]:
    def check(match: re.Match[str]) -> bool:
        return len(match["secret"]) >= minimum

    return check


_END = r"(?![A-Za-z0-9_-])"

URL_PASSWORD = SecretPattern(
    "url-password", "password in URL",
    re.compile(r"://(?P<user>[^\s:/?#@\[\]\"'<>`\\]*):"
               r"(?P<secret>[^\s/?#@\"'<>`\\]+)@"
               r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\"'<>`\\,;)]+)"),
    ("://",),
    not_after=frozenset(),
)

# Each regex starts with its literal prefix, so the re module searches for that prefix
# instead of trying the pattern at every position: about 30 times faster on 10 MB of text.
# find_secrets checks the character before the match in place of a lookbehind.
PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "aws-access-key-id", "AWS access key id",
        re.compile(r"(?P<secret>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})(?![A-Za-z0-9])"),
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        not_after=_ALNUM,
    ),
    SecretPattern(
        "aws-secret-access-key", "AWS secret access key",
        re.compile(r"(?i:aws[\w.-]{0,20}?(?:key|secret|token|pass|pwd)|secret_?access_?key)"
                   r"[\w.-]{0,20}?[\"'`\]]?\s*(?::=|=>|[:=])\s*[\"'`]?"
                   r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
        ("aws", "AWS", "Aws", "ecretAccessKey", "ecret_access_key", "ECRET_ACCESS_KEY"),
        _mixed_base64,
        not_after=frozenset(),
    ),
    SecretPattern(
        "github-token", "GitHub token",
        re.compile(r"(?P<secret>gh[pousr]_[A-Za-z0-9]{36,251}"
                   r"|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59,})(?![A-Za-z0-9_])"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        not_after=_ALNUM,
    ),
    SecretPattern(
        "gitlab-token", "GitLab token",
        re.compile(r"(?P<secret>(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent"
                   r"|gloas)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+){0,2}"
                   r"|GR1348941[A-Za-z0-9_-]{20,})" + _END),
        ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glimt-", "glptt-",
         "glagent-", "gloas-", "GR1348941"),
    ),
    SecretPattern(
        "slack-token", "Slack token",
        re.compile(r"(?P<secret>(?:xox[abposr]|xoxe\.xox[bp]|xoxe)-(?:[0-9]+-)+"
                   r"[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*|xapp-[0-9]+-[A-Z0-9]+-[0-9]+-[0-9a-f]+)"
                   r"(?![A-Za-z0-9-])"),
        ("xox", "xapp-"),
        _long_enough(24),
        not_after=_ALNUM,
    ),
    SecretPattern(
        "slack-webhook", "Slack webhook URL",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/"
                   r"(?P<secret>T[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+){2,3})"),
        ("hooks.slack.com",),
        not_after=frozenset(),
    ),
    SecretPattern(
        "stripe-live-key", "Stripe live secret key",
        re.compile(r"(?P<secret>[sr]k_live_[0-9A-Za-z]{24,})(?![0-9A-Za-z])"),
        ("k_live_",),
    ),
    SecretPattern(
        "anthropic-api-key", "Anthropic API key",
        re.compile(r"(?P<secret>sk-ant-[a-z]{2,8}[0-9]{2}-[A-Za-z0-9_-]{32,})" + _END),
        ("sk-ant-",),
    ),
    SecretPattern(
        "openai-api-key", "OpenAI API key",
        re.compile(r"(?P<secret>sk-[A-Za-z0-9_-]*?[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9_-]{20,})"
                   + _END),
        ("T3BlbkFJ",),
    ),
    SecretPattern(
        "private-key", "private key",
        re.compile(r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
                   r"(?P<body>.{0,20000}?)"
                   r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)", re.DOTALL),
        ("PRIVATE KEY",),
        _has_key_body,
        not_after=frozenset(),
    ),
    URL_PASSWORD,
)

# A BEGIN line followed by base64 lines but cut before its END line, as in a truncated log.
# Only the redaction uses it: it is too loose to be a finding on its own.
TRUNCATED_PRIVATE_KEY = SecretPattern(
    "private-key", "private key",
    re.compile(r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
               r"(?:(?:\\[nr]|\s)+[A-Za-z0-9+/=]{40,})+)"),
    ("PRIVATE KEY",),
)


def find_secrets(text: str,
                 patterns: tuple[SecretPattern, ...] = PATTERNS) -> Iterator[SecretMatch]:
    """Yield the secrets in ``text`` in order of position, skipping placeholders and examples.

    Overlapping matches are resolved in favour of the one that starts first (then the
    longer one), so every character belongs to at most one match.
    """
    found: list[SecretMatch] = []
    for pattern in patterns:
        if not any(needle in text for needle in pattern.needles):
            continue
        for match in pattern.regex.finditer(text):
            start = match.start()
            if start and text[start - 1] in pattern.not_after:
                continue
            if _counts(pattern, match):
                found.append(SecretMatch(pattern, match.start("secret"), match.end("secret"),
                                         match["secret"], match))

    found.sort(key=lambda item: (item.start, -item.end))
    covered_until = -1
    for item in found:
        if item.start >= covered_until:
            covered_until = item.end
            yield item


def _counts(pattern: SecretPattern, match: re.Match[str]) -> bool:
    value = match["secret"]
    if pattern.is_valid is not None and not pattern.is_valid(match):
        return False
    if pattern.rule == "private-key":
        # Key bodies contain long runs such as "AAAAAA", so the placeholder test does not
        # apply. The body check above already rejects "..." and "xxxx" bodies.
        return True
    if pattern is URL_PASSWORD:
        # Any other URL password is redacted, and is_reportable decides if it is a finding.
        return not (is_env_reference(value) or _MASK.match(value))
    return not is_placeholder(value)


def is_reportable(found: SecretMatch) -> bool:
    """Return True when a match is a finding for the secrets check, not only text to redact.

    A URL password that is a placeholder word (``user:password@``) or a local or example
    credential (see ``is_test_credential_url``) is redacted from output but not reported.
    """
    if found.pattern is not URL_PASSWORD:
        return True

    return not (is_placeholder(found.value) or is_test_credential_url(found.match))


def is_placeholder(value: str) -> bool:
    """Return True for a documented example or a stand-in value rather than a real secret.

    Examples: AWS's ``AKIAIOSFODNN7EXAMPLE``, ``ghp_xxxxxxxx...``, ``***``, ``changeme``,
    ``your_api_key``, a value already redacted. A long value needs some variety of
    characters to count as random.
    """
    stripped = value.strip().strip("\"'`")
    if not stripped:
        return True

    if re.sub(r"[\W_]+", "", stripped).lower() in _PLACEHOLDER_WORDS:
        return True

    words = [word for word in re.split(r"[\W_]+", unquote(stripped).lower()) if word]
    if any(word in _STAND_IN_WORDS for word in words):
        return True
    if words and all(word in _PLACEHOLDER_WORDS or word in _FILLER_WORDS for word in words):
        return True

    if _PLACEHOLDER_SHAPE.search(stripped):
        return True

    return len(stripped) >= 16 and len(set(stripped)) < 6


def is_env_reference(value: str) -> bool:
    """Return True when ``value`` names where a secret comes from instead of holding it.

    ``${DB_PASSWORD}``, ``$DB_PASSWORD``, ``%(password)s``, ``{{ password }}``,
    ``<password>``, ``os.environ["X"]``, ``os.getenv("X")``, ``process.env.X``.
    """
    stripped = value.strip().strip("\"'`")
    return bool(_ENV_REFERENCE.match(stripped) or _ENV_CALL.search(stripped))


def is_test_credential_url(match: re.Match[str]) -> bool:
    """Return True for a URL password that is a local or documentation credential.

    The secrets check does not report a password for a loopback or reserved example host
    (RFC 2606, RFC 6761), one equal to its user name (``postgres:postgres``) or one shorter
    than 4 characters (``u:p@dsn``). Such URLs are test fixtures and docs. The redaction
    still removes their passwords.
    """
    password = match["secret"]
    if password.lower() == match["user"].lower() or len(password) < 4:
        return True

    return bool(_LOCAL_HOSTS.match(match["host"]))


def has_allow_marker(line: str, previous_line: str = "") -> bool:
    """Return True when the line carries ``pragma: allowlist secret``.

    The marker counts in a comment on the same line, or as ``pragma: allowlist nextline
    secret`` alone on the line before, as detect-secrets 1.5 reads it.
    """
    return bool(_ALLOW_SAME_LINE.search(line) or _ALLOW_NEXT_LINE.search(previous_line))


def is_lock_file(path: str) -> bool:
    """Return True for a dependency lock file, whose digests are not secrets."""
    return os.path.basename(path) in LOCK_FILE_NAMES


def is_integrity_line(line: str) -> bool:
    """Return True for a line that pins a package by digest (``integrity``, ``--hash=``)."""
    return bool(_INTEGRITY_LINE.search(line))


def hash_secret(value: str) -> str:
    """Return the SHA-1 hex digest of ``value``, as detect-secrets stores in ``hashed_secret``."""
    # SHA-1 matches detect-secrets baselines; it identifies a secret, it protects nothing.
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def is_false_positive(secret: str, line: str, filename: str) -> bool:
    """Apply this module's exclusions to one detect-secrets result.

    detect-secrets calls this as a custom filter (``--filter``) with the value it found,
    the line and the file name; True drops the result.
    """
    if is_lock_file(filename) or is_integrity_line(line):
        return True

    if is_env_reference(secret) or is_placeholder(secret):
        return True

    for match in URL_PASSWORD.regex.finditer(line):
        if match["secret"] == secret and is_test_credential_url(match):
            return True

    return False
