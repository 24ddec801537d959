"""Reading of payload fields shared by the adapters, with errors that name the field.

Each reader takes the format name and the field's path as written in the payload
(``alerts[2].startsAt``), so a ``PayloadError`` names the format, the field and what
was expected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ...errors import PayloadError
from ..times import is_zero_time, parse_time, short_repr


def require_object(payload: Any, fmt: str) -> dict[str, Any]:
    """Return the payload as a dict, decoding JSON text first when it is given as text."""
    if isinstance(payload, (str, bytes, bytearray)):
        try:
            payload = json.loads(payload)
        except ValueError as error:
            raise PayloadError(f"{fmt} payload is not valid JSON ({error}); "
                               f"pass the webhook body as received") from None

    if not isinstance(payload, dict):
        raise PayloadError(f"{fmt} payload is {json_type(payload)}; expected a JSON object "
                           f"(the webhook body as received)")
    return payload


def require_field(container: Mapping[str, Any], key: str, fmt: str, path: str,
                  expected: str) -> Any:
    """Return ``container[key]``, raising PayloadError when it is missing, null or empty."""
    value = container.get(key)
    if value is None or value == "":
        raise PayloadError(f"{fmt} payload: {path} is missing; expected {expected}")
    return value


def require_mapping(container: Mapping[str, Any], key: str, fmt: str, path: str,
                    expected: str) -> dict[str, Any]:
    value = require_field(container, key, fmt, path, expected)
    if not isinstance(value, dict):
        raise PayloadError(f"{fmt} payload: {path} is {json_type(value)}; expected {expected}")
    return value


def optional_mapping(container: Mapping[str, Any], key: str, fmt: str,
                     path: str) -> dict[str, Any]:
    """Return ``container[key]`` when it is an object, {} when it is missing or null."""
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{fmt} payload: {path} is {json_type(value)}; expected an object")
    return value


def text(value: Any) -> str:
    """Return a scalar field as text: "" for null, numbers in their JSON spelling."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_time(value: Any, fmt: str, path: str) -> dt.datetime | None:
    """Parse a payload time to UTC, or return None when it is empty, null or Go's zero time."""
    try:
        return parse_time(value)
    except ValueError as error:
        shown = short_repr(value)
        if "out of range" in str(error):
            raise PayloadError(f"{fmt} payload: {path} {shown} is out of range; expected a "
                               f"time between 1970 and 2199") from None
        raise PayloadError(f"{fmt} payload: {path} {shown} is not a valid time; expected "
                           f"RFC 3339 with a UTC offset or a Unix epoch") from None


def require_time(value: Any, fmt: str, path: str) -> dt.datetime:
    parsed = read_time(value, fmt, path)
    if parsed is None:
        state = "the zero time 0001-01-01" if is_zero_time(value) else "missing"
        raise PayloadError(f"{fmt} payload: {path} is {state}; expected RFC 3339 with a UTC "
                           f"offset or a Unix epoch")
    return parsed


def first_time(candidates: list[tuple[str, Any]], fmt: str) -> tuple[str, dt.datetime] | None:
    """Return the path and parsed value of the first candidate that contains a time."""
    for path, value in candidates:
        parsed = read_time(value, fmt, path)
        if parsed is not None:
            return path, parsed
    return None


def content_hash(value: Any) -> str:
    """Return the first 16 hex digits of the SHA-256 of ``value`` as canonical JSON.

    Keys are sorted and separators fixed, so equal content gives the same hash whatever
    order its keys arrived in.
    """
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def json_type(value: Any) -> str:
    """Name the JSON type of a decoded value with its article, for error messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
