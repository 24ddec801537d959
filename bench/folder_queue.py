"""The benchmark's baseline: a message queue kept as a folder of JSON files per state.

It stands for the way TinySDLC queues messages: one folder per state (``incoming/``,
``processing/``, ``outgoing/``), and a consumer that lists the incoming folder once a
second. It is written for this benchmark and shares no code with TinySDLC.

- The producer writes each message to a hidden temporary name in ``incoming/`` and
  renames it, so the consumer never reads half a file. Names sort in enqueue order.
- The consumer lists ``incoming/`` at most once per ``POLL_INTERVAL_S``. It takes the
  files in name order: it moves each to ``processing/``, hands it to the agent, writes
  the reply to ``outgoing/`` (temporary name, then rename) and deletes the processing
  file.
- No file is flushed with fsync, so a crash of the machine can lose messages that
  SQLite, which syncs its write-ahead log on every commit, would keep.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

POLL_INTERVAL_S = 1.0
STATES = ("incoming", "processing", "outgoing")


def prepare(root: Path) -> None:
    for state in STATES:
        (root / state).mkdir(parents=True, exist_ok=True)


def file_name(sequence: int) -> str:
    return f"{sequence:012d}.json"


def enqueue(root: Path, sequence: int, text: str) -> float:
    """Write one message to ``incoming/``; return ``time.time()`` once it is visible there."""
    name = file_name(sequence)
    _write_then_rename(root / "incoming", name, {"sequence": sequence, "sender": "user",
                                                 "recipient": "devops", "message": text})
    return time.time()


def consume(root: Path, agent: Callable[[dict], dict], *, once: bool,
            stop: threading.Event) -> int:
    """Process incoming messages until ``stop`` is set, or until a listing is empty with ``once``.

    Return the number of messages processed.
    """
    incoming, processing, outgoing = (root / state for state in STATES)
    processed = 0
    while not stop.is_set():
        listed_at = time.monotonic()
        names = sorted(name for name in os.listdir(incoming) if not name.startswith("."))
        for name in names:
            taken = processing / name
            os.replace(incoming / name, taken)
            message = json.loads(taken.read_text(encoding="utf-8"))
            _write_then_rename(outgoing, name, agent(message))
            taken.unlink()
            processed += 1

        if once and not names:
            break
        stop.wait(max(0.0, listed_at + POLL_INTERVAL_S - time.monotonic()))
    return processed


def outgoing_count(root: Path) -> int:
    return sum(1 for name in os.listdir(root / "outgoing") if not name.startswith("."))


def last_reply_time(root: Path) -> float:
    """Return the newest modification time among the replies in ``outgoing/``."""
    with os.scandir(root / "outgoing") as entries:
        return max(entry.stat().st_mtime for entry in entries if not entry.name.startswith("."))


def _write_then_rename(folder: Path, name: str, value: dict) -> None:
    temporary = folder / f".{name}.tmp"
    temporary.write_text(json.dumps(value), encoding="utf-8")
    os.replace(temporary, folder / name)
