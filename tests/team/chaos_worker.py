"""A worker process for the SIGKILL test: the real worker with an instant, logging agent.

Usage: python chaos_worker.py PROJECT_DIR LOG_FILE. Each hand-over to the agent appends
``message_id attempt pid`` to LOG_FILE with one O_APPEND write, before the reply exists,
so a kill after the write and before the finish leaves the evidence of a started attempt.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from pathlib import Path

from tinysdlc_nb.config import load_config
from tinysdlc_nb.store import open_store
from tinysdlc_nb.team.agents import register_provider
from tinysdlc_nb.team.commands import build_worker
from tinysdlc_nb.team.model import AgentReply
from tinysdlc_nb.team.settings import load_team_settings


class LoggingAgent:
    batch_size = 8

    def __init__(self, _context):
        self.descriptor = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def reply(self, request, spec):
        line = f"{request.message_id} {request.attempt} {os.getpid()}\n"
        os.write(self.descriptor, line.encode())
        time.sleep(random.uniform(0, 0.02))
        return AgentReply(text=f"{spec.id} handled {request.message_id}")


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    register_provider("instant", LoggingAgent)
    config = load_config(Path(sys.argv[1]))
    settings = load_team_settings(config.home)
    store = open_store(config.database_url)
    try:
        build_worker(store, config, settings).run()
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
