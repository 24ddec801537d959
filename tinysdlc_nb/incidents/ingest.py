"""Ingestion of payloads: decode, adapt and apply, shared by ``ingest`` and ``serve``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

from ..config import Config
from ..errors import PayloadError
from ..store import Store
from .adapters import adapter
from .engine import EngineSettings, Outcome, apply_signals
from .model import AdapterContext, Event, Signal

FUTURE_TOLERANCE = dt.timedelta(hours=1)


def adapter_context(config: Config, received_at: dt.datetime | None = None) -> AdapterContext:
    """Build the adapters' view of the config: severity map, labels, default severity."""
    settings = config.incidents
    return AdapterContext(
        severity_map=settings["severity_map"],
        severity_labels=tuple(settings["severity_labels"]),
        default_severity=settings["default_severity"],
        received_at=received_at or dt.datetime.now(dt.UTC),
    )


def decode(body: bytes | str, where: str) -> Any:
    """Parse a payload's JSON; raise PayloadError naming ``where`` when it is not JSON."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PayloadError(f"{where}: invalid JSON ({error}); send the payload as the "
                           f"tool posts it") from None
    except RecursionError:
        raise PayloadError(f"{where}: invalid JSON (nested too deeply); no alerting tool "
                           f"sends such a payload") from None
    except ValueError as error:
        raise PayloadError(f"{where}: invalid JSON ({error})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value; strict JSON has no NaN or Infinity")


def signals_of(fmt: str, payload: Any, context: AdapterContext, where: str) -> list[Signal]:
    """Run the adapter of ``fmt``; a payload of the wrong shape raises PayloadError."""
    module = adapter(fmt)
    if not isinstance(payload, (dict, list)):
        raise PayloadError(f"{where}: {fmt} payload is a JSON {type(payload).__name__}; "
                           f"expected a JSON object (the webhook body as received)")
    try:
        signals = module.parse(payload, context)
    except PayloadError as error:
        raise PayloadError(f"{where}: {error}") from None

    checked = [_checked(signal, context, where) for signal in signals]

    # One payload describes one moment: its firing alerts come first, oldest first, so the
    # incident is detected at the earliest start and no alert counts as a late re-fire.
    return sorted(checked, key=lambda signal: (signal.event is not Event.FIRING,
                                               signal.occurred_at))


def _checked(signal: Signal, context: AdapterContext, where: str) -> Signal:
    """Reject a time in the future, and move an end that precedes its start to the start.

    A clock a little fast on the sender is tolerated (``FUTURE_TOLERANCE``). An end before
    its start would make response times negative, so it is set to the start and flagged.
    """
    latest = context.received_at + FUTURE_TOLERANCE
    for moment in (signal.occurred_at, signal.started_at):
        if moment is not None and moment > latest:
            raise PayloadError(f"{where}: {signal.title or signal.incident_key}: time "
                               f"{moment.isoformat()} is in the future; check the sender's "
                               f"clock")
    if signal.started_at is not None and signal.occurred_at < signal.started_at:
        return replace(signal, occurred_at=signal.started_at,
                       details={**signal.details, "end_before_start": True})
    return signal


def ingest_signals(store: Store, config: Config, signals: list[Signal]) -> list[Outcome]:
    from ..team.escalations import escalation_route

    settings = EngineSettings.from_config(config.incidents, escalation_route(config))
    return apply_signals(store, signals, settings)
