"""Tests of the runbook step's command runner against real bash processes."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import string
import time
from pathlib import Path

import pytest

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.runbooks.shell import run_command

BASE_ENV = {"PATH": os.environ["PATH"]}
# Variables bash sets itself in every shell, whatever environment it receives.
BASH_OWN_VARIABLES = {"PWD", "SHLVL", "_", "OLDPWD"}


def run(command: str, tmp_path: Path, env: dict[str, str] | None = None, **options):
    options.setdefault("timeout_s", 10)
    return run_command(command, env=env if env is not None else BASE_ENV, cwd=tmp_path,
                       log_path=tmp_path / "logs" / "step-01.log", **options)


def log_text(result) -> str:
    return result.log_path.read_text(encoding="utf-8")


def is_gone(pid: int, within_s: float = 5.0) -> bool:
    """Return True once ``pid`` has exited (a zombie waiting for init counts as exited)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pid_file(tmp_path):
    """A file the command writes a background pid to; that process is killed afterwards."""
    path = tmp_path / "background.pid"
    yield path
    if path.exists() and path.read_text().strip():
        try:
            os.kill(int(path.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/self/status")


def test_exit_code_zero(tmp_path):
    result = run("echo ready", tmp_path)
    assert result.exit_code == 0
    assert result.timed_out is False
    assert log_text(result) == "ready\n"


def test_exit_code_three(tmp_path):
    result = run("echo before; exit 3", tmp_path)
    assert result.exit_code == 3
    assert result.tail == "before\n"


def test_errexit_stops_at_failing_line(tmp_path):
    result = run("echo one\nfalse\necho two", tmp_path)
    assert result.exit_code == 1
    assert log_text(result) == "one\n"


def test_pipefail_fails_pipeline(tmp_path):
    result = run("false | cat\necho after", tmp_path)
    assert result.exit_code == 1
    assert "after" not in log_text(result)


def test_stderr_merged_in_order(tmp_path):
    result = run("echo out; echo err >&2; echo out2", tmp_path)
    assert log_text(result) == "out\nerr\nout2\n"


def test_stdin_is_empty(tmp_path):
    result = run("cat; echo end", tmp_path, timeout_s=5)
    assert result.exit_code == 0
    assert log_text(result) == "end\n"


def test_cwd_is_used(tmp_path):
    result = run("pwd", tmp_path)
    assert log_text(result) == f"{tmp_path}\n"


def test_cwd_missing_rejected(tmp_path):
    with pytest.raises(UsageError, match="working directory not found"):
        run_command("true", env=BASE_ENV, cwd=tmp_path / "absent", timeout_s=5,
                    log_path=tmp_path / "step.log")


def test_timeout_kills_children(tmp_path, pid_file):
    started = time.monotonic()
    result = run(f'sleep 30 & echo $! > "{pid_file}"; wait', tmp_path, timeout_s=1)
    elapsed = time.monotonic() - started
    assert result.timed_out is True
    assert result.exit_code is None
    assert elapsed < 10
    assert is_gone(int(pid_file.read_text()))


def test_timeout_sigkill_after_grace(tmp_path, pid_file):
    command = f'trap "" TERM; sleep 30 & echo $! > "{pid_file}"; wait; echo survived'
    result = run(command, tmp_path, timeout_s=1, kill_grace_s=1)
    assert result.timed_out is True
    assert result.duration_s >= 2
    assert result.duration_s < 10
    assert "SIGKILL" in result.note
    assert is_gone(int(pid_file.read_text()))


def test_background_process_keeps_pipe(tmp_path, pid_file):
    started = time.monotonic()
    result = run(f'sleep 60 & echo $! > "{pid_file}"; echo started', tmp_path, timeout_s=30)
    elapsed = time.monotonic() - started
    assert elapsed < 3
    assert result.exit_code == 0
    assert result.timed_out is False
    assert "background process" in result.note
    assert log_text(result) == "started\n"


def test_large_output_bounded(tmp_path):
    line = "line %07d ordinary log output of the step, nothing secret here\n"
    line_bytes = len(line % 0)
    count = 50 * 1024 * 1024 // line_bytes
    command = f"awk 'BEGIN {{ for (i = 0; i < {count}; i++) printf \"{line[:-1]}\\n\", i }}'"
    # Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    Path("/proc/self/clear_refs").write_text("5")
    baseline_kib = vm_kib("VmRSS")

    result = run(command, tmp_path, timeout_s=50)

    growth_mib = (vm_kib("VmHWM") - baseline_kib) / 1024
    total = count * line_bytes
    last_lines = "".join(line % i for i in range(count - 40, count))
    assert result.exit_code == 0
    assert result.output_bytes == total
    assert result.log_path.stat().st_size == total
    header = f"\u2026 ({total - len(last_lines)} bytes earlier in the log)\n"
    assert result.tail == header + last_lines
    # Half the output size: a runner that kept the whole decoded output would pass 50 MiB.
    assert growth_mib < 32


def test_tail_chars_cut_at_start(tmp_path):
    command = "for i in $(seq 1 30); do printf 'row %02d %s\\n' $i \"$X50\"; done"
    env = {**BASE_ENV, "X50": "x" * 50}
    result = run(command, tmp_path, env=env, tail_lines=10, tail_chars=300)
    body = result.tail.split("\n", 1)[1]
    assert len(result.tail) <= 300
    assert result.tail.startswith("\u2026 (")
    assert body.endswith("row 30 " + "x" * 50 + "\n")
    assert log_text(result).endswith(body)


def test_tail_header_counts_log_bytes(tmp_path):
    result = run("seq 1 100", tmp_path, tail_lines=3)
    earlier = len("".join(f"{i}\n" for i in range(1, 98)))
    assert result.tail == f"\u2026 ({earlier} bytes earlier in the log)\n98\n99\n100\n"


def test_long_line_without_newline(tmp_path):
    result = run("head -c 3000000 /dev/zero | tr '\\0' 'a'", tmp_path)
    assert result.log_path.stat().st_size == 3_000_000
    assert result.tail.endswith("a" * 1000)


def test_secret_only_in_step_env_redacted(tmp_path):
    token = "deploy-" + secrets.token_hex(16)
    env = {**BASE_ENV, "DEPLOY_TOKEN": token}
    result = run('echo "token is $DEPLOY_TOKEN"', tmp_path, env=env)
    assert token not in log_text(result)
    assert token not in result.tail
    assert "[REDACTED:$DEPLOY_TOKEN]" in result.tail


def test_secret_in_process_env_redacted(tmp_path, monkeypatch):
    token = "deploy-" + secrets.token_hex(16)
    monkeypatch.setenv("DEPLOY_TOKEN", token)
    result = run('echo "token is $DEPLOY_TOKEN"', tmp_path, env={**BASE_ENV, "DEPLOY_TOKEN": token})
    assert token not in log_text(result)
    assert token not in result.tail


def test_github_token_redacted(tmp_path):
    alphabet = string.ascii_letters + string.digits
    token = "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))
    env = {**BASE_ENV, "BUILD_NOTE": token}
    result = run('printf "pushing with %s\\n" "$BUILD_NOTE"', tmp_path, env=env)
    assert token not in log_text(result)
    assert token not in result.tail
    assert "[REDACTED:GitHub token]" in log_text(result)


def test_private_key_in_pieces_redacted(tmp_path):
    body = base64.b64encode(secrets.token_bytes(900)).decode()
    body_lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    block = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body_lines)
             + "\n-----END RSA PRIVATE KEY-----\n")
    # Cut inside body lines, so reads end mid-line as well as between lines.
    cuts = [0, len(block) // 3 + 5, 2 * len(block) // 3 + 7, len(block)]
    for index in range(3):
        (tmp_path / f"part{index}").write_text(block[cuts[index]:cuts[index + 1]])
    command = "echo before; cat part0; sleep 0.3; cat part1; sleep 0.3; cat part2; echo after"

    result = run(command, tmp_path)

    text = log_text(result)
    for body_line in body_lines:
        assert body_line not in text
        assert body_line not in result.tail
    assert text == "before\n[REDACTED:private key]\nafter\n"


def test_unicode_split_across_reads(tmp_path):
    # U+1F600 (4 bytes), U+65E5 U+672C (3 bytes each), e + U+0301 (combining, 2 bytes).
    command = ("printf 'smile \\xf0\\x9f'; sleep 0.3; printf '\\x98\\x80 \\xe6\\x97'; sleep 0.3; "
               "printf '\\xa5\\xe6\\x9c\\xac cafe\\xcc'; sleep 0.3; printf '\\x81\\n'")
    result = run(command, tmp_path)
    expected = "smile \U0001F600 \u65e5\u672c cafe\u0301\n"
    assert log_text(result) == expected
    assert result.tail == expected
    assert result.output_bytes == len(expected.encode("utf-8"))


def test_invalid_utf8_replaced(tmp_path):
    result = run("printf 'bad \\xff byte\\n'", tmp_path)
    assert log_text(result) == "bad \ufffd byte\n"


def test_watch_across_read_boundary(tmp_path):
    command = "printf 'deploy comp'; sleep 0.3; printf 'lete\\n'"
    result = run(command, tmp_path, watch=["deploy complete", "rollback"])
    assert result.found == frozenset({"deploy complete"})


def test_watch_sees_text_before_scrub(tmp_path):
    token = "deploy-" + secrets.token_hex(16)
    env = {**BASE_ENV, "DEPLOY_TOKEN": token}
    result = run('echo "$DEPLOY_TOKEN"', tmp_path, env=env, watch=[token])
    assert result.found == frozenset({token})


def test_env_exactly_passed(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSDLC_NOT_PASSED", "visible")
    result = run("env", tmp_path, env={**BASE_ENV, "ONLY_PASSED": "yes"})
    names = {line.split("=", 1)[0] for line in log_text(result).splitlines()}
    assert "TINYSDLC_NOT_PASSED" not in names
    assert names - BASH_OWN_VARIABLES == {"PATH", "ONLY_PASSED"}


def test_own_process_group(tmp_path):
    result = run("ps -o pgid= -p $$; echo $$", tmp_path)
    pgid, pid = log_text(result).split()
    assert pgid == pid
