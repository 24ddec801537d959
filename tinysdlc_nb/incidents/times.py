"""Parsing of the times found in alert payloads and on the command line, always to UTC.

Payloads write times in many ways: RFC 3339 with any UTC offset and up to nine fraction
digits (Go's time format), the Go zero time ``0001-01-01T00:00:00Z`` for "not set", and
Unix epochs in seconds, milliseconds, microseconds or nanoseconds. Python's ``datetime``
keeps microseconds, so nanosecond fractions are truncated to microseconds.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import UsageError

_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?$"
)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
# Epoch values above these bounds are read as the next finer unit (year 5138 in seconds).
_EPOCH_UNITS = ((1e11, 1), (1e14, 1e3), (1e17, 1e6), (float("inf"), 1e9))


def is_zero_time(value: object) -> bool:
    """True for Go's zero time, which Alertmanager writes as endsAt of a firing alert."""
    return isinstance(value, str) and value.startswith("0001-01-01")


def parse_time(value: object) -> dt.datetime | None:
    """Return ``value`` as an aware UTC time, or None when it is empty or the zero time.

    Raise ValueError naming the value when it is present but cannot be read.
    """
    if value is None or value == "" or is_zero_time(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"time {short_repr(value)} is invalid; expected RFC 3339 text or a Unix "
                         f"epoch")
    if isinstance(value, (int, float)):
        return _from_epoch(value)
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        return _from_epoch(int(value) if value.isdigit() else float(value))
    if not isinstance(value, str):
        raise ValueError(f"time {short_repr(value)} is invalid; expected RFC 3339 text or a Unix "
                         f"epoch")

    match = _RFC3339.match(value.strip())
    if not match or match["zone"] is None:
        raise ValueError(f"time {short_repr(value)} is invalid; expected RFC 3339 with a UTC "
                         f"offset, such as 2026-03-01T12:00:00Z")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"].upper().replace("Z", "+00:00")
    if ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    clock = match["time"] if match["time"].count(":") == 2 else f"{match['time']}:00"
    try:
        parsed = dt.datetime.fromisoformat(f"{match['date']}T{clock}.{fraction}{zone}")
    except ValueError:
        raise ValueError(f"time {short_repr(value)} is invalid; expected RFC 3339 with a UTC "
                         f"offset, such as 2026-03-01T12:00:00Z") from None
    return check_range(parsed.astimezone(dt.UTC), value)


def check_range(moment: dt.datetime, value: object) -> dt.datetime:
    """Reject times before the Unix epoch or after 2199: no alert or backfill is dated
    there, and pandas cannot represent times before 1677."""
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"time {short_repr(value)} is out of range; expected a time between "
                         f"1970 and 2199")
    return moment


def short_repr(value: object) -> str:
    """Return ``repr(value)`` cut to 60 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _from_epoch(value: int | float) -> dt.datetime:
    per_second = next(unit for bound, unit in _EPOCH_UNITS if abs(value) < bound)
    try:
        if isinstance(value, int):
            # Integer arithmetic keeps 19-digit nanosecond epochs exact, which floats do not.
            seconds, rest = divmod(value * 1_000_000 // int(per_second), 1_000_000)
            moment = dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(
                microseconds=rest)
        else:
            moment = dt.datetime.fromtimestamp(value / per_second, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"time {short_repr(value)} is out of range; expected a Unix epoch "
                         f"between 1970 and 2199") from None
    return check_range(moment, value)


def parse_cli_time(value: str, zone: str | None = None, option: str = "--at") -> dt.datetime:
    """Parse ``--at``: ISO 8601 with an offset, or a naive time together with ``--tz ZONE``.

    Raise UsageError naming the value and the fix otherwise, so a backfilled row never
    lands in the wrong hour: a local time that a DST change skips or repeats is rejected.
    """
    text = value.strip()
    example = text if "T" in text or " " in text else f"{text}T00:00:00"
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise UsageError(f"{option} {short_repr(value)} is not an ISO 8601 time; write it like "
                         f"2026-03-01T14:05:00+01:00") from None

    if parsed.tzinfo is not None:
        if zone:
            raise UsageError(f"{option} '{value}' already has a UTC offset; drop --tz {zone}")
        return _cli_range(parsed.astimezone(dt.UTC), value, option)
    if not zone:
        raise UsageError(f"{option} '{value}' has no UTC offset; add one (e.g. "
                         f"{example}+00:00) or name its zone with --tz, e.g. "
                         f"--tz Europe/Berlin")

    local = load_zone(zone)
    earlier = parsed.replace(tzinfo=local, fold=0)
    later = parsed.replace(tzinfo=local, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        round_trip = earlier.astimezone(dt.UTC).astimezone(local).replace(tzinfo=None)
        problem = "does not exist" if round_trip != parsed else "happens twice"
        raise UsageError(f"{option} '{value}' {problem} in {zone} because of a daylight "
                         f"saving change; give the UTC offset instead of --tz")
    return _cli_range(earlier.astimezone(dt.UTC), value, option)


def _cli_range(moment: dt.datetime, value: str, option: str) -> dt.datetime:
    try:
        return check_range(moment, value)
    except ValueError:
        raise UsageError(f"{option} '{value}' is out of range; give a time between 1970 "
                         f"and 2199") from None


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"time zone '{name}' is unknown; use an IANA name such as UTC or "
                         f"America/New_York") from None


def iso(value: dt.datetime | None) -> str | None:
    """Format an aware time as ISO 8601 in UTC with a ``Z`` suffix, or None."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text.replace("+00:00", "Z")
