"""Payload adapters, one module per format, registered by the name the CLI and URLs use.

Each module defines ``NAME`` and ``parse(payload, context) -> list[Signal]``. ``parse`` is
a pure function: the same payload always gives the same signals, with the same dedup keys.
It raises ``PayloadError`` naming the missing or invalid field when the payload is not of
its format.
"""

from __future__ import annotations

from types import ModuleType

from ...errors import UsageError
from . import alertmanager, github, grafana, kubernetes, opsgenie, pagerduty

ADAPTERS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (alertmanager, grafana, pagerduty, opsgenie, github, kubernetes)
}


def adapter(name: str) -> ModuleType:
    """Return the adapter registered as ``name``; raise UsageError listing the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UsageError(f"format '{name}' is unknown; known formats: "
                         f"{', '.join(ADAPTERS)}") from None
