"""Adapter for Kubernetes core/v1 Events, as ``kubectl get events -o json`` prints them.

The payload is a ``List`` (or ``EventList``) with ``items``, or a single ``Event``. A
Warning event fires an alert, named by its reason, on the incident of the object it is
about. A Normal event is a note on that incident and never opens one. Kubernetes folds
repeats of an event into one object whose ``count`` grows. The dedup key is the object and
its first time, so polling ``kubectl get events`` again adds nothing. The repeat count is
kept in the details.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...errors import PayloadError
from ..model import AdapterContext, Event, Signal
from ..times import iso
from ._payload import (
    content_hash,
    first_time,
    optional_mapping,
    read_time,
    require_field,
    require_mapping,
    require_object,
    text,
)

NAME = "kubernetes"

# Time fields of an event, in the order they are read. Events written through the newer events API
# leave firstTimestamp and lastTimestamp null and set eventTime (with microseconds).
_TIME_FIELDS = ("firstTimestamp", "eventTime", "lastTimestamp", "metadata.creationTimestamp")


def parse(payload: Any, context: AdapterContext) -> list[Signal]:
    """Return one signal per Warning or Normal event of a list, or of a single event."""
    body = require_object(payload, NAME)
    kind = text(body.get("kind"))

    if "items" not in body and not kind.endswith("List"):
        return [_event_signal(body, "", context)]

    items = body.get("items")
    if not isinstance(items, list):
        raise PayloadError(f"{NAME} payload: items is missing; expected a list of Event "
                           f"objects as kubectl get events -o json prints")
    signals = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"{NAME} payload: items[{index}] is not an object; expected "
                               f"a core/v1 Event")
        signals.append(_event_signal(item, f"items[{index}].", context))
    return signals


def _event_signal(item: dict[str, Any], path: str, context: AdapterContext) -> Signal:
    kind = text(item.get("kind"))
    if kind and kind != "Event":
        raise PayloadError(f"{NAME} payload: {path}kind is {kind!r}; expected an Event or a "
                           f"List of Events")

    involved = require_mapping(item, "involvedObject", NAME, f"{path}involvedObject",
                               "the object the event is about")
    metadata = optional_mapping(item, "metadata", NAME, f"{path}metadata")
    object_kind = text(require_field(involved, "kind", NAME, f"{path}involvedObject.kind",
                                     "the object's kind, such as Pod"))
    object_name = text(require_field(involved, "name", NAME, f"{path}involvedObject.name",
                                     "the object's name"))
    namespace = text(involved.get("namespace") or metadata.get("namespace"))
    reason = text(item.get("reason"))
    warning = text(item.get("type")) == "Warning"

    time_field, occurred_at = _occurred_at(item, metadata, path)
    qualified_name = f"{namespace}/{object_name}" if namespace else object_name
    return Signal(
        source=NAME,
        incident_key=f"{NAME}:{namespace}/{object_kind}/{object_name}",
        event=Event.FIRING if warning else Event.NOTE,
        occurred_at=occurred_at,
        dedup_key=_dedup_key(item, metadata, occurred_at),
        alert_key=reason,
        started_at=occurred_at if warning else None,
        title=f"{object_kind} {qualified_name}: {reason}",
        service=namespace,
        severity=_severity(context, reason) if warning else None,
        actor=_reporter(item),
        description=text(item.get("message")),
        details=_details(item, involved, time_field, path),
        opens_incident=warning,
    )


def _occurred_at(item: dict[str, Any], metadata: dict[str, Any],
                 path: str) -> tuple[str, dt.datetime]:
    """Return the name of the first time field that is set, and its time."""
    values = {field: item.get(field) for field in _TIME_FIELDS[:3]}
    values[_TIME_FIELDS[3]] = metadata.get("creationTimestamp")
    found = first_time([(f"{path}{field}", values[field]) for field in _TIME_FIELDS], NAME)
    if found is None:
        raise PayloadError(f"{NAME} payload: {path}firstTimestamp is missing and so are "
                           f"eventTime, lastTimestamp and metadata.creationTimestamp; "
                           f"expected at least one RFC 3339 time")
    found_path, occurred_at = found
    return found_path.removeprefix(path), occurred_at


def _severity(context: AdapterContext, reason: str) -> str:
    """Map the reason of a Warning (``kubernetes:BackOff = "P1"``), else the default."""
    return context.severity(NAME, reason) or context.default_severity


def _dedup_key(item: dict[str, Any], metadata: dict[str, Any],
               occurred_at: dt.datetime) -> str:
    """Key one event object by its uid (or namespace/name) and its first time."""
    identity = text(metadata.get("uid"))
    if not identity and metadata.get("name"):
        identity = f"{text(metadata.get('namespace'))}/{text(metadata['name'])}"
    if not identity:
        identity = f"sha256-{content_hash(item)}"
    return f"{NAME}:{identity}:{occurred_at.isoformat()}"


def _reporter(item: dict[str, Any]) -> str:
    source = item.get("source") if isinstance(item.get("source"), dict) else {}
    return text(source.get("component") or item.get("reportingComponent"))


def _details(item: dict[str, Any], involved: dict[str, Any], time_field: str,
             path: str) -> dict[str, Any]:
    details: dict[str, Any] = {
        "type": text(item.get("type")),
        "reason": text(item.get("reason")),
        "involved_object": {key: involved[key] for key in
                            ("kind", "namespace", "name", "uid", "fieldPath")
                            if involved.get(key)},
        "time_field": time_field,
    }
    if item.get("count") is not None:
        details["count"] = item["count"]
    last_seen = read_time(item.get("lastTimestamp"), NAME, f"{path}lastTimestamp")
    if last_seen is not None:
        details["last_timestamp"] = iso(last_seen)
    source = item.get("source") if isinstance(item.get("source"), dict) else {}
    if source.get("host"):
        details["host"] = source["host"]
    return details

