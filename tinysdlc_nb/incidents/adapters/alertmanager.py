"""Adapter for the Prometheus Alertmanager webhook (``webhook_config``, body version 4).

Each alert becomes a FIRING or RESOLVED signal keyed by receiver plus groupKey, with the
alert's fingerprint as ``alert_key``. Alerts without a fingerprint (older senders and
hand-written payloads) get one hashed from their sorted labels.
"""

from __future__ import annotations

from typing import Any

from ..model import AdapterContext, Signal
from ._alertmanager_shape import parse_alerts

NAME = "alertmanager"


def parse(payload: Any, context: AdapterContext) -> list[Signal]:
    """Return one signal per alert of an Alertmanager webhook body."""
    return parse_alerts(payload, context, NAME)
