"""Run one runbook step's shell command with a timeout, a scrubbed log and a bounded tail.

The command runs as ``bash --noprofile --norc -euo pipefail -c COMMAND`` in its own
process group, so a timeout stops the command and every process it started. The output is
read in the calling thread, decoded as UTF-8, scrubbed and written to the log as it
arrives. Memory stays bounded: about MAX_HELD_CHARS of text at most wait for the scrubber,
and only the tail stays after that.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import ToolMissing, UsageError
from ..scrub import scrub, secret_values

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
# After the command's own process exits, a background process it started may still hold
# the output pipe open. Reading goes on only while data keeps arriving within this time.
IDLE_AFTER_EXIT_S = 0.2
# How often the loop checks whether the command has exited while it writes nothing.
POLL_INTERVAL_S = 0.05
# The maximum number of decoded characters held back from the scrubber: a private key
# block that waits for its END line, or a line that has no newline yet.
MAX_HELD_CHARS = 1024 * 1024
# Room for the "… (N bytes earlier in the log)" line and some output after it.
MIN_TAIL_CHARS = 100

_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")


@dataclass
class CommandResult:
    """The outcome of one command: exit status, output size, scrubbed tail and log."""

    exit_code: int | None
    timed_out: bool
    duration_s: float
    output_bytes: int
    tail: str
    log_path: Path
    found: frozenset[str]
    note: str = ""


def run_command(command: str, *, env: Mapping[str, str], cwd: Path, timeout_s: float,
                log_path: Path, watch: Sequence[str] = (), tail_lines: int = 40,
                tail_chars: int = 8000, kill_grace_s: float = 3.0,
                on_start: Callable[[int], None] | None = None) -> CommandResult:
    """Run ``command`` with bash in ``cwd`` and return its result.

    Nothing is added to ``env``, the whole environment of the command. Output
    (stdout and stderr merged) goes scrubbed to ``log_path``, with the secret values of
    ``env`` redacted as well as those ``scrub`` finds. ``tail`` contains its last
    ``tail_lines`` lines, at most ``tail_chars`` characters. ``found`` lists the texts of
    ``watch`` that occurred in the output. After ``timeout_s`` seconds the process group
    receives SIGTERM, then SIGKILL when it is still alive ``kill_grace_s`` seconds later.
    ``on_start`` receives the pid of bash, which is also its process group id.
    """
    _check_arguments(cwd, timeout_s, tail_lines, tail_chars, kill_grace_s)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", command]

    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        output = _Output(log_file, watch, env, tail_lines, tail_chars)
        try:
            process = subprocess.Popen(argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        except FileNotFoundError as error:
            raise ToolMissing(f"bash: not found on the PATH given to the step ({error}); "
                              "install bash or add its folder to PATH") from error
        log.info("step command started: pid %d in %s, timeout %g s, log %s",
                 process.pid, cwd, timeout_s, log_path)
        if on_start is not None:
            on_start(process.pid)

        pipe = _Pipe(process, output)
        try:
            timed_out, note = _follow(process, pipe, started, timeout_s, kill_grace_s)
        except BaseException:
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            raise
        finally:
            pipe.close()
            process.stdout.close()

        output.close()

    duration = time.monotonic() - started
    exit_code = None if timed_out else process.returncode
    log.info("step command finished: pid %d, exit %s, %.2f s, %d bytes of output",
             process.pid, exit_code, duration, output.output_bytes)
    return CommandResult(exit_code=exit_code, timed_out=timed_out, duration_s=duration,
                         output_bytes=output.output_bytes, tail=output.tail(),
                         log_path=log_path, found=frozenset(output.found), note=note)


def _check_arguments(cwd: Path, timeout_s: float, tail_lines: int, tail_chars: int,
                     kill_grace_s: float) -> None:
    if not Path(cwd).is_dir():
        raise UsageError(f"{cwd}: working directory not found; create it or pass an existing one")
    if not timeout_s > 0:
        raise UsageError(f"step timeout {timeout_s!r} s is invalid; expected a positive number")
    if kill_grace_s < 0:
        raise UsageError(f"kill grace {kill_grace_s!r} s is invalid; expected 0 or more")
    if tail_lines < 1 or tail_chars < MIN_TAIL_CHARS:
        raise UsageError(f"tail of {tail_lines} lines / {tail_chars} characters is invalid; "
                         f"expected at least 1 line and {MIN_TAIL_CHARS} characters")


def _follow(process: subprocess.Popen[bytes], pipe: _Pipe, started: float, timeout_s: float,
            kill_grace_s: float) -> tuple[bool, str]:
    """Read output until the command ends and return whether it timed out, with a note."""
    deadline = started + timeout_s
    while process.poll() is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            note = _stop_group(process, pipe, timeout_s, kill_grace_s)
            leftover = _drain_after_exit(pipe, time.monotonic() + max(kill_grace_s, 1.0))
            return True, "; ".join(filter(None, (note, leftover)))

        pipe.read(min(POLL_INTERVAL_S, remaining))

    return False, _drain_after_exit(pipe, deadline)


def _stop_group(process: subprocess.Popen[bytes], pipe: _Pipe, timeout_s: float,
                kill_grace_s: float) -> str:
    """Send SIGTERM to the command's process group, then SIGKILL to what is left."""
    log.warning("step command timed out after %g s: pid %d, sending SIGTERM to its group",
                timeout_s, process.pid)
    _signal_group(process.pid, signal.SIGTERM)

    kill_at = time.monotonic() + kill_grace_s
    while True:
        if process.poll() is not None and not _group_exists(process.pid):
            return f"timed out after {timeout_s:g} s; stopped with SIGTERM"
        remaining = kill_at - time.monotonic()
        if remaining <= 0:
            break
        pipe.read(min(POLL_INTERVAL_S, remaining))

    log.warning("step command pid %d: processes left %g s after SIGTERM; sending SIGKILL",
                process.pid, kill_grace_s)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
    return (f"timed out after {timeout_s:g} s; SIGKILL sent because processes were "
            f"still running {kill_grace_s:g} s after SIGTERM")


def _drain_after_exit(pipe: _Pipe, deadline: float) -> str:
    """Read what is left after the command's own process exited and return a note."""
    quiet_since = time.monotonic()
    while not pipe.eof:
        now = time.monotonic()
        if now >= deadline:
            note = ("a background process kept writing to the output until the step's "
                    "timeout; stopped reading")
            log.warning("step command pid %d: %s", pipe.pid, note)
            return note

        wait = IDLE_AFTER_EXIT_S - (now - quiet_since)
        if wait <= 0:
            note = "a background process kept the output open; stopped reading"
            log.warning("step command pid %d: %s", pipe.pid, note)
            return note

        if pipe.read(min(wait, deadline - now)):
            quiet_since = time.monotonic()

    return ""


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _group_exists(pgid: int) -> bool:
    # Signal 0 checks for existence only. A member that exited but that its parent has
    # not reaped yet still counts, so the caller may wait up to its grace time for it.
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Pipe:
    """The read end of the command's output pipe, polled with a selector."""

    def __init__(self, process: subprocess.Popen[bytes], output: _Output):
        self.pid = process.pid
        self._process = process
        self.eof = False
        self._fd = process.stdout.fileno()
        self._output = output
        os.set_blocking(self._fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def read(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, pass one read to the output and return True if any."""
        if self.eof:
            # Nothing more to read: wait for the exit itself rather than a whole interval.
            try:
                self._process.wait(max(timeout, 0))
            except subprocess.TimeoutExpired:
                pass
            return False

        if not self._selector.select(max(timeout, 0)):
            return False

        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            self.eof = True
            return False

        self._output.write(data)
        return True

    def close(self) -> None:
        self._selector.close()


class _Output:
    """The command's output on its way to the log: decoded, watched, scrubbed, tailed."""

    def __init__(self, log_file: BinaryIO, watch: Sequence[str], env: Mapping[str, str],
                 tail_lines: int, tail_chars: int):
        self.output_bytes = 0
        self.log_bytes = 0
        self._log_file = log_file
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._unscrubbed = ""
        self._watch = _Watch(watch)
        self._env_secrets = _EnvSecrets(env)
        self._tail = _Tail(tail_lines, tail_chars)

    @property
    def found(self) -> set[str]:
        return self._watch.found

    def write(self, data: bytes) -> None:
        self.output_bytes += len(data)
        self._accept(self._decoder.decode(data))

    def close(self) -> None:
        self._accept(self._decoder.decode(b"", final=True))
        self._flush(len(self._unscrubbed))

    def tail(self) -> str:
        return self._tail.render(self.log_bytes)

    def _accept(self, text: str) -> None:
        if not text:
            return

        self._watch.feed(text)
        self._unscrubbed += text
        self._flush(_scrub_boundary(self._unscrubbed))

    def _flush(self, cut: int) -> None:
        if cut <= 0:
            return

        chunk, self._unscrubbed = self._unscrubbed[:cut], self._unscrubbed[cut:]
        clean = scrub(self._env_secrets.redact(chunk))
        data = clean.encode("utf-8")
        self._log_file.write(data)
        self._log_file.flush()
        self.log_bytes += len(data)
        self._tail.add(clean)


def _scrub_boundary(text: str) -> int:
    """Return how many leading characters of ``text`` can go through the scrubber now.

    A chunk ends at a newline, so every secret pattern except a private key block receives
    its whole value. A key block is held back from its BEGIN line until its END line is
    complete, unless that would hold more than MAX_HELD_CHARS.
    """
    line_end = text.rfind("\n") + 1
    cut = _open_key_block_start(text, line_end)
    if len(text) - cut <= MAX_HELD_CHARS:
        return cut

    if line_end > cut:
        # NOTE: scrub redacts the BEGIN line and the body lines it receives here
        # (TRUNCATED_PRIVATE_KEY), but body lines that arrive later reach the log.
        return line_end

    # NOTE: a line longer than MAX_HELD_CHARS is cut at its last space, or anywhere if it
    # has none, so a secret that spans the cut is not redacted.
    space = max(text.rfind(" "), text.rfind("\t"), text.rfind("\r"))
    return space + 1 if space >= 0 else len(text)


def _open_key_block_start(text: str, end: int) -> int:
    """Return where the line of the first unfinished key block starts, else ``end``."""
    if text.find("PRIVATE KEY", 0, end) < 0:
        return end

    position = 0
    while True:
        begin = _KEY_BEGIN.search(text, position, end)
        if begin is None:
            return end
        finish = _KEY_END.search(text, begin.end(), end)
        if finish is None:
            return text.rfind("\n", 0, begin.start()) + 1
        position = finish.end()


class _EnvSecrets:
    """The secret values of the step's environment that scrub does not already redact.

    scrub redacts the secret values of this process's environment. A step's environment
    may hold more, for example a secret parameter exported under another name.
    ``scrub.secret_values`` picks them by scrub's own rules.
    """

    def __init__(self, env: Mapping[str, str]):
        self._labels = secret_values([(name, value) for name, value in env.items()
                                      if os.environ.get(name) != value])

        self._regex = None
        if self._labels:
            ordered = sorted(self._labels, key=len, reverse=True)
            self._regex = re.compile("|".join(re.escape(value) for value in ordered))

    def redact(self, text: str) -> str:
        if self._regex is None:
            return text

        return self._regex.sub(lambda match: f"[REDACTED:{self._labels[match[0]]}]", text)


class _Watch:
    """Finds given texts in a stream of decoded pieces, also across piece boundaries."""

    def __init__(self, texts: Sequence[str]):
        self.found = {text for text in texts if not text}
        self._pending = {text for text in texts if text}
        self._overlap = ""
        self._keep = max((len(text) for text in self._pending), default=1) - 1

    def feed(self, text: str) -> None:
        if not self._pending:
            return

        window = self._overlap + text
        for pending in [pending for pending in self._pending if pending in window]:
            self.found.add(pending)
            self._pending.discard(pending)
        self._overlap = window[-self._keep:] if self._keep else ""


class _Tail:
    """The last lines of the scrubbed output, each at most ``max_chars`` characters."""

    def __init__(self, max_lines: int, max_chars: int):
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._max_chars = max_chars
        self._line_open = False

    def add(self, text: str) -> None:
        pieces = text.split("\n")
        if self._line_open and self._lines:
            pieces[0] = self._lines.pop() + pieces[0]

        for piece in pieces[:-1][-self._lines.maxlen:]:
            self._lines.append(piece[-(self._max_chars - 1):] + "\n")
        if pieces[-1]:
            self._lines.append(pieces[-1][-self._max_chars:])
        self._line_open = bool(pieces[-1])

    def render(self, log_bytes: int) -> str:
        """Return the tail, prefixed with a line that counts the bytes cut before it."""
        text = "".join(self._lines)
        if len(text) <= self._max_chars and len(text.encode("utf-8")) >= log_bytes:
            return text

        # The count is at most log_bytes, so no header is longer than this one.
        budget = self._max_chars - len(_earlier_line(log_bytes))
        if len(text) > budget:
            text = text[-budget:]
        return _earlier_line(log_bytes - len(text.encode("utf-8"))) + text


def _earlier_line(count: int) -> str:
    return f"\u2026 ({count} bytes earlier in the log)\n"
