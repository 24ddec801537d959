"""The channel service the scheduler runs: a delivery thread and, when configured, the
Telegram receive thread."""

from __future__ import annotations

import logging
import threading

from ..config import Config
from ..errors import ConfigError
from ..store import Store
from .base import new_client
from .delivery import deliver_due
from .telegram import UpdatesError

log = logging.getLogger(__name__)

# Time stop() waits for each thread. A getUpdates long poll still in flight is abandoned:
# its thread writes nothing after the stop, and Telegram sends those updates again because
# the offset that confirms them was never stored.
JOIN_TIMEOUT_S = 2.0
# Pause after a failed getUpdates round, so a wrong token does not spin.
RECEIVE_RETRY_S = 5.0


class ChannelService:
    """Delivers notifications every ``[channels].deliver_interval_s`` and receives Telegram
    messages while started.

    ``kick()`` starts the next delivery pass at once, for example after queueing a
    notification.
    """

    def __init__(self, store: Store, config: Config):
        self.store = store
        self.config = config
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._threads.append(threading.Thread(target=self._deliver_loop,
                                              name="channels-delivery", daemon=True))
        telegram = self.config.channels["configured"].get("telegram")
        if telegram and telegram["receive"]:
            self._threads.append(threading.Thread(target=self._receive_loop,
                                                  name="channels-telegram", daemon=True))
        for thread in self._threads:
            thread.start()
        log.info("channel service started (%s)", ", ".join(t.name for t in self._threads))

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.info("channel service: %s is still in a request; it exits when the "
                         "request ends and writes nothing more", thread.name)
        self._threads = []
        log.info("channel service stopped")

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _deliver_loop(self) -> None:
        interval = self.config.channels["deliver_interval_s"]
        while not self._stop.is_set():
            try:
                summary = deliver_due(self.store, self.config, stop=self._stop)
                if summary["claimed"]:
                    log.info("delivery pass: %s", summary)
            except Exception:  # the thread outlives any single failed pass
                log.exception("delivery pass failed; the next pass retries")
            self._wake.wait(interval)
            self._wake.clear()

    def _receive_loop(self) -> None:
        from .inbound import receive_once

        client = new_client(self.config.channels["timeout_s"])
        try:
            while not self._stop.is_set():
                try:
                    received = receive_once(self.store, self.config, client,
                                            stop=self._stop)
                except (UpdatesError, ConfigError) as error:
                    log.warning("telegram: getUpdates failed (%s); retrying in %.0f s",
                                error, RECEIVE_RETRY_S)
                    self._stop.wait(RECEIVE_RETRY_S)
                    continue
                except Exception:
                    log.exception("telegram: receiving failed; retrying in %.0f s",
                                  RECEIVE_RETRY_S)
                    self._stop.wait(RECEIVE_RETRY_S)
                    continue
                if received.queued:
                    self.kick()
        finally:
            client.close()
