"""Redaction: provider patterns, URL passwords and secret environment values."""

from __future__ import annotations

import time

import pytest
from fixtures.secrets.secret_samples import (
    ALNUM,
    GITHUB_TOKEN,
    SAMPLES,
    random_text,
    substrings,
)

from tinysdlc_nb.scrub import MIN_ENV_VALUE_LENGTH, looks_secret, scrub, scrub_data


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.rule)
def test_pattern_redacted(sample):
    scrubbed = scrub(f"log line before\n{sample.line}\nlog line after")

    assert "[REDACTED:" in scrubbed
    assert sample.secret not in scrubbed
    assert not [piece for piece in substrings(sample.private_part) if piece in scrubbed]
    assert scrubbed.startswith("log line before\n")
    assert scrubbed.endswith("\nlog line after")


def test_redaction_names_the_kind():
    assert scrub(f"token={GITHUB_TOKEN}") == "token=[REDACTED:GitHub token]"


def test_env_secret_redacted_anywhere(monkeypatch):
    value = random_text(ALNUM, 24)
    monkeypatch.setenv("PAYMENTS_SERVICE_TOKEN", value)

    scrubbed = scrub(f"calling with header Bearer {value} failed; retry with {value}!")

    assert scrubbed == ("calling with header Bearer [REDACTED:$PAYMENTS_SERVICE_TOKEN] failed; "
                        "retry with [REDACTED:$PAYMENTS_SERVICE_TOKEN]!")


@pytest.mark.parametrize("name", ["DB_PASSWORD", "SMTP_PASS", "aws_secret_access_key",
                                  "OPENAI_API_KEY", "SERVICE_CREDENTIALS", "BASIC_AUTH",
                                  "GPG_PASSPHRASE", "DJANGO_SECRET_KEY", "APIKEY"])
def test_secret_names_recognised(name):
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["HOME", "GIT_ASKPASS", "SSH_AUTH_SOCK", "GITHUB_TOKEN_FILE",
                                  "AWS_ACCESS_KEY_ID", "AUTH_URL", "COMPASS_VERSION", "AUTHOR",
                                  "MAX_TOKENS", "TOKEN_COUNT"])
def test_other_names_not_secret(name):
    assert not looks_secret(name)


def test_short_env_value_kept(monkeypatch):
    short = "hunter2"
    assert len(short) < MIN_ENV_VALUE_LENGTH
    monkeypatch.setenv("ADMIN_PASSWORD", short)

    assert scrub(f"the word {short} stays") == f"the word {short} stays"


def test_non_secret_env_value_kept(monkeypatch):
    value = random_text(ALNUM, 24)
    monkeypatch.setenv("BUILD_REVISION", value)

    assert scrub(f"revision {value}") == f"revision {value}"


def test_descriptor_env_value_kept(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN_FILE", "/run/secrets/github_token")

    assert scrub("read /run/secrets/github_token") == "read /run/secrets/github_token"


def test_env_reference_value_kept(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "${VAULT_DB_PASSWORD}")

    assert scrub("password=${VAULT_DB_PASSWORD}") == "password=${VAULT_DB_PASSWORD}"


def test_env_change_noticed(monkeypatch):
    first = random_text(ALNUM, 20)
    second = random_text(ALNUM, 20)
    monkeypatch.setenv("DEPLOY_TOKEN", first)
    assert scrub(first) == "[REDACTED:$DEPLOY_TOKEN]"

    monkeypatch.setenv("DEPLOY_TOKEN", second)

    assert scrub(second) == "[REDACTED:$DEPLOY_TOKEN]"
    assert scrub(first) == first


def test_env_removal_noticed(monkeypatch):
    value = random_text(ALNUM, 20)
    monkeypatch.setenv("DEPLOY_TOKEN", value)
    assert scrub(value) == "[REDACTED:$DEPLOY_TOKEN]"

    monkeypatch.delenv("DEPLOY_TOKEN")

    assert scrub(value) == value


def test_url_password_redacted_user_and_host_kept():
    password = random_text(ALNUM, 16)

    scrubbed = scrub(f"connect redis://cache_user:{password}@cache.internal:6379/0 now")

    assert scrubbed == ("connect redis://cache_user:[REDACTED:password in URL]"
                        "@cache.internal:6379/0 now")


def test_local_url_password_redacted():
    scrubbed = scrub("postgresql://postgres:postgres@localhost:5432/app")

    assert scrubbed == "postgresql://postgres:[REDACTED:password in URL]@localhost:5432/app"


@pytest.mark.parametrize("url", ["postgresql://app:${DB_PASSWORD}@db/app",
                                 "postgresql://app:$DB_PASSWORD@db/app",
                                 "https://user:***@example.org/",
                                 "https://user:<password>@example.org/"])
def test_url_placeholder_kept(url):
    assert scrub(url) == url


def test_database_url_password_redacted_alone(monkeypatch):
    password = random_text(ALNUM, 18)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{password}@db.internal/app")

    scrubbed = scrub(f"authentication failed for password {password}")

    assert scrubbed == "authentication failed for password [REDACTED:password in $DATABASE_URL]"


def test_truncated_private_key_redacted():
    body_lines = [random_text(ALNUM + "+/", 64) for _ in range(3)]
    text = "key:\n-----BEGIN PRIVATE KEY-----\n" + "\n".join(body_lines) + "\n(truncated)"

    scrubbed = scrub(text)

    assert scrubbed == "key:\n[REDACTED:private key]\n(truncated)"


def test_documented_example_kept():
    assert scrub("AKIAIOSFODNN7EXAMPLE") == "AKIAIOSFODNN7EXAMPLE"


def test_scrub_idempotent(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", random_text(ALNUM, 12))
    text = "\n".join(sample.line for sample in SAMPLES)

    once = scrub(text)

    assert scrub(once) == once


def test_scrub_data_copies_and_redacts():
    original = {"message": f"used {GITHUB_TOKEN}", "items": [GITHUB_TOKEN, 3, None],
                "nested": {"tuple": (GITHUB_TOKEN, True)}}

    scrubbed = scrub_data(original)

    assert scrubbed == {"message": "used [REDACTED:GitHub token]",
                        "items": ["[REDACTED:GitHub token]", 3, None],
                        "nested": {"tuple": ("[REDACTED:GitHub token]", True)}}
    assert original["items"][0] == GITHUB_TOKEN


def test_scrub_data_redacts_secret_keys():
    scrubbed = scrub_data({"api_token": "short", "password": "${DB_PASSWORD}", "user": "alice"})

    assert scrubbed == {"api_token": "[REDACTED:api_token]", "password": "${DB_PASSWORD}",
                        "user": "alice"}


def test_scrub_data_redacts_keys():
    assert scrub_data({GITHUB_TOKEN: 1}) == {"[REDACTED:GitHub token]": 1}


def test_ten_megabytes_fast(monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", random_text(ALNUM, 24))
    line = ("2024-06-07T10:00:00Z INFO gate lint PASS in 1.2 s; see https://ci.example.org/"
            "runs/42 for details and the report at /tmp/run/report.html\n")
    text = line * (10_000_000 // len(line)) + "\n".join(sample.line for sample in SAMPLES)

    started = time.perf_counter()
    scrubbed = scrub(text)
    elapsed = time.perf_counter() - started

    assert scrubbed.count("[REDACTED:") == len(SAMPLES)
    assert elapsed < 10.0


def test_working_directory_not_redacted(monkeypatch, tmp_path):
    monkeypatch.setenv("PWD", str(tmp_path / "project-folder"))
    monkeypatch.setenv("OLDPWD", str(tmp_path / "previous-folder"))
    text = f"cwd {tmp_path}/project-folder and {tmp_path}/previous-folder"
    assert scrub(text) == text


@pytest.mark.parametrize("shortened", ["ghp_p14ldGLJ...OTMYQuIzT8JPx",
                                       "b'ghp_IEqHim3...jNv0IvDKxHGUb'",
                                       "AKIAABCD\u2026WXYZ", "xoxb-1234...abcd"])
def test_shortened_token_redacted(shortened):
    text = f"AssertionError: assert '{shortened}' == 'expected'"
    assert "..." not in scrub(text).replace("[REDACTED", "")
    assert "REDACTED:shortened token" in scrub(text)


@pytest.mark.parametrize("prefix", ["svc-", "x_", "deploy-token-"])
def test_prefixed_tokens_glued_to_names(prefix):
    github = "ghp_" + "a1B2" * 9
    aws = "AKIA" + "ABCDEFGHIJKLMNOP"

    text = scrub(f"{prefix}{github} {prefix}{aws}")

    assert github not in text
    assert aws not in text
    assert text.startswith(prefix)
