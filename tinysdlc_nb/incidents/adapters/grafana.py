"""Adapter for Grafana unified alerting webhooks (Grafana 9 to 11).

Grafana posts the Alertmanager webhook body plus fields of its own, so parsing is shared
with the ``alertmanager`` adapter and the Grafana fields are kept in each signal's details.
"""

from __future__ import annotations

from typing import Any

from ..model import AdapterContext, Signal
from ._alertmanager_shape import parse_alerts

NAME = "grafana"

# Per-alert fields Grafana adds to the Alertmanager shape.
ALERT_EXTRAS = ("silenceURL", "dashboardURL", "panelURL", "imageURL", "values", "valueString")
# Top-level fields Grafana adds, kept under ``details["notification"]``.
NOTIFICATION_EXTRAS = ("orgId", "title", "state", "message")


def parse(payload: Any, context: AdapterContext) -> list[Signal]:
    """Return one signal per alert of a Grafana webhook body; per-alert status wins."""
    return parse_alerts(payload, context, NAME, alert_extras=ALERT_EXTRAS,
                        notification_extras=NOTIFICATION_EXTRAS)
