"""Parsing of the Alertmanager webhook body, a shape Grafana unified alerting reuses.

One signal is made per alert. An alert occurrence is its fingerprint plus its startsAt, so
a repeat notification of a still-firing alert gives the same dedup key, and its
resolution gives a second key that differs only in the status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ...errors import PayloadError
from ..model import AdapterContext, Event, Signal
from ..times import iso
from ._payload import (
    content_hash,
    json_type,
    optional_mapping,
    read_time,
    require_object,
    require_time,
    text,
)

_STATUSES = {"firing": Event.FIRING, "resolved": Event.RESOLVED}

# Go templates print this for a missing value, so a summary containing it is unfinished.
_GO_NO_VALUE = "<no value>"

_DESCRIPTION_ANNOTATIONS = ("summary", "description", "message")
_SERVICE_LABELS = ("service", "job", "instance")


def parse_alerts(payload: Any, context: AdapterContext, source: str,
                 alert_extras: tuple[str, ...] = (),
                 notification_extras: tuple[str, ...] = ()) -> list[Signal]:
    """Turn an Alertmanager-shaped webhook body into one signal per alert, firing ones first.

    ``alert_extras`` names further per-alert fields and ``notification_extras`` further
    top-level fields to copy into each signal's details (Grafana adds both kinds).
    """
    body = require_object(payload, source)
    alerts = _alert_list(body, source)
    receiver = text(body.get("receiver"))
    notification = {key: body[key] for key in notification_extras
                    if body.get(key) not in (None, "")}

    titles: dict[str, str] = {}
    signals = []
    for index, alert in enumerate(alerts):
        path = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise PayloadError(f"{source} payload: {path} is not an object; expected an alert "
                               f"with labels, annotations and startsAt")
        labels = optional_mapping(alert, "labels", source, f"{path}.labels")
        incident_key = _incident_key(body, receiver, labels)
        title = titles.setdefault(incident_key, _title(body, labels))

        extra_details = _present(alert, alert_extras)
        if notification:
            extra_details["notification"] = notification
        signals.append(_alert_signal(alert, path, labels, body, context, source, incident_key,
                                     title, extra_details))

    # A notification is a snapshot of its group, so its firing alerts are applied first.
    # Otherwise the resolved alerts listed before them would resolve the whole incident.
    signals.sort(key=lambda signal: signal.event is Event.RESOLVED)
    return signals


def _alert_list(body: Mapping[str, Any], source: str) -> list[Any]:
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        found = "missing" if alerts is None else json_type(alerts)
        raise PayloadError(f"{source} payload: alerts is {found}; expected a list of alert "
                           f"objects as Alertmanager's webhook sends")
    return alerts


def _alert_signal(alert: dict[str, Any], path: str, labels: dict[str, Any],
                  body: Mapping[str, Any], context: AdapterContext, source: str,
                  incident_key: str, title: str, extra_details: dict[str, Any]) -> Signal:
    annotations = optional_mapping(alert, "annotations", source, f"{path}.annotations")
    starts_at = require_time(alert.get("startsAt"), source, f"{path}.startsAt")
    ends_at = read_time(alert.get("endsAt"), source, f"{path}.endsAt")
    event = _status(alert, path, body, source, ends_at, context.received_at)
    fingerprint = text(alert.get("fingerprint"))

    details: dict[str, Any] = {"labels": labels, "annotations": annotations,
                               "starts_at": iso(starts_at), "ends_at": iso(ends_at)}
    if not fingerprint:
        fingerprint = content_hash(labels)
        details["fingerprint_computed"] = True
    details["fingerprint"] = fingerprint
    if alert.get("generatorURL"):
        details["generatorURL"] = alert["generatorURL"]

    occurred_at = starts_at
    if event is Event.RESOLVED:
        occurred_at = ends_at or context.received_at
        if ends_at is None:
            details["end_time_estimated"] = True
    details.update(extra_details)

    return Signal(
        source=source,
        incident_key=incident_key,
        event=event,
        occurred_at=occurred_at,
        dedup_key=f"{source}:{incident_key}:{fingerprint}:{iso(starts_at)}:{event.value}",
        alert_key=fingerprint,
        started_at=starts_at,
        title=title,
        service=_first_label(labels, _SERVICE_LABELS),
        severity=context.severity_from_labels(source, labels),
        actor=source,
        description=_description(annotations),
        details=details,
    )


def _status(alert: Mapping[str, Any], path: str, body: Mapping[str, Any], source: str,
            ends_at: dt.datetime | None, received_at: dt.datetime) -> Event:
    """Read the alert's status, else the notification's, else derive it from endsAt.

    Alertmanager sets a firing alert's endsAt to the zero time or to a time in the future
    (its resolve timeout), so only an endsAt already past at receipt means resolved.
    """
    candidates = ((f"{path}.status", alert.get("status")), ("status", body.get("status")))
    for field_path, raw in candidates:
        if raw in (None, ""):
            continue
        event = _STATUSES.get(text(raw).strip().lower())
        if event is None:
            raise PayloadError(f"{source} payload: {field_path} {raw!r} is invalid; expected "
                               f"firing or resolved")
        return event

    if ends_at is not None and ends_at <= received_at:
        return Event.RESOLVED
    return Event.FIRING


def _incident_key(body: Mapping[str, Any], receiver: str, labels: Mapping[str, Any]) -> str:
    """Key the incident by receiver plus groupKey, else by the labels the group shares.

    Without any grouping field each alertname of the notification is its own incident.
    """
    group_key = text(body.get("groupKey"))
    if group_key:
        return f"{receiver}:{group_key}"

    for name in ("groupLabels", "commonLabels"):
        shared = body.get(name)
        if isinstance(shared, dict) and shared:
            return f"{receiver}:{_label_set(shared)}"
    return f"{receiver}:{_label_set({'alertname': labels.get('alertname', '')})}"


def _label_set(labels: Mapping[str, Any]) -> str:
    """Write labels sorted by name in Alertmanager's own notation, ``{a="1", b="2"}``."""
    pairs = ", ".join(f'{name}="{text(labels[name])}"' for name in sorted(labels))
    return "{" + pairs + "}"


def _title(body: Mapping[str, Any], labels: Mapping[str, Any]) -> str:
    """Title the incident by the common summary, else the common or this alert's alertname.

    An alert without an alertname (Alertmanager's own exec test payload has none) is
    titled by its label set.
    """
    common_annotations = body.get("commonAnnotations")
    if isinstance(common_annotations, dict):
        summary = text(common_annotations.get("summary"))
        if summary and _GO_NO_VALUE not in summary:
            return summary

    common_labels = body.get("commonLabels")
    if isinstance(common_labels, dict) and common_labels.get("alertname"):
        return text(common_labels["alertname"])
    return text(labels.get("alertname")) or _label_set(labels)


def _description(annotations: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for name in _DESCRIPTION_ANNOTATIONS:
        value = text(annotations.get(name))
        if value and value not in parts:
            parts.append(value)
    return "\n".join(parts)


def _first_label(labels: Mapping[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        if labels.get(name):
            return text(labels[name])
    return ""


def _present(container: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: container[key] for key in keys if container.get(key) not in (None, "")}
