"""Cron expressions of schedules: when a job fires next, in its own time zone.

Five fields (minute hour day-of-month month day-of-week) follow cronsim 2.x, which behaves
like Debian cron across daylight-saving changes. A job at a fixed hour and minute whose
local time does not exist on a spring-forward day runs once, at the first valid minute
after it. A job whose local time occurs twice on a fall-back day runs once. A job whose
minute or hour field starts with ``*`` follows real elapsed time instead, so
``*/20 * * * *`` fires in both passes of a repeated hour.

Six fields put a seconds field first: the job fires at each of those seconds within every
minute the other five fields select. The seconds field accepts ``*``, ``N``, ``a-b``,
``*/n``, ``a-b/n`` and comma lists of these.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..errors import UsageError

MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
          "@annually": "0 0 1 1 *"}

# Counting missed fires stops here, so a week of downtime of an every-second job costs a
# bounded amount of work. The count is then reported as "more than" this number.
MAX_COUNTED_FIRES = 10_000

_ONE_SECOND = dt.timedelta(seconds=1)
_EXAMPLES = "for example '*/15 * * * *', '30 2 * * *', '*/5 * * * * *' or '@daily'"


class CronSchedule:
    """A parsed cron expression bound to a time zone."""

    def __init__(self, expression: str, zone: ZoneInfo):
        self.expression = expression
        self.zone = zone
        if expression.strip().startswith("@") and expression.strip().lower() not in MACROS:
            raise UsageError(f"cron macro '{expression.strip()}' is not supported; use one of "
                             f"{', '.join(sorted(MACROS))} or write the fields")
        fields = MACROS.get(expression.strip().lower(), expression).split()
        if len(fields) not in (5, 6):
            raise UsageError(f"cron expression '{expression}' has {len(fields)} field(s); "
                             f"write 5 fields, or 6 with seconds first, {_EXAMPLES}")
        self.seconds = _parse_seconds(fields[0], expression) if len(fields) == 6 else None
        self.minute_fields = " ".join(fields[-5:])
        try:
            next(CronSim(self.minute_fields, dt.datetime(2026, 1, 1)))
        except CronSimError as error:
            raise UsageError(f"cron expression '{expression}' is invalid ({error}); "
                             f"write it as {_EXAMPLES}") from None
        except StopIteration:
            raise UsageError(f"cron expression '{expression}' never fires; check its day "
                             f"and month fields") from None

    def next_after(self, instant: dt.datetime) -> dt.datetime:
        """Return the first fire strictly after ``instant``, as an aware UTC time."""
        instant = instant.astimezone(dt.UTC)
        if self.seconds is None:
            for fire in CronSim(self.minute_fields, instant.astimezone(self.zone)):
                # A fixed-time job in a repeated hour can map back before ``instant``.
                if fire.astimezone(dt.UTC) > instant:
                    return fire.astimezone(dt.UTC)
        else:
            # Step back in UTC, not in wall-clock time: one second before a spring-forward
            # minute is a local time that does not exist, and cronsim would start an hour
            # late from it.
            start_minute = instant.replace(second=0, microsecond=0) - _ONE_SECOND
            for minute in CronSim(self.minute_fields, start_minute.astimezone(self.zone)):
                start = minute.astimezone(dt.UTC)
                for second in self.seconds:
                    fire = start + dt.timedelta(seconds=second)
                    if fire > instant:
                        return fire
        raise UsageError(f"cron expression '{self.expression}' has no fire after {instant}")

    def latest_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        """Return the newest fire at or before ``instant`` in UTC, or None within 50 years."""
        instant = instant.astimezone(dt.UTC)
        probe = instant.replace(microsecond=0) + _ONE_SECOND
        for minute in CronSim(self.minute_fields, probe.astimezone(self.zone), reverse=True):
            start = minute.astimezone(dt.UTC)
            for second in reversed(self.seconds or [0]):
                fire = start + dt.timedelta(seconds=second)
                if fire <= instant:
                    return fire
        return None

    def count_between(self, first: dt.datetime, last: dt.datetime) -> tuple[int, bool]:
        """Return how many fires lie in [first, last] and whether counting stopped early."""
        count = 0
        fire = first - dt.timedelta(microseconds=1)
        while count < MAX_COUNTED_FIRES:
            fire = self.next_after(fire)
            if fire > last:
                return count, False
            count += 1
        return count, True


@functools.lru_cache(maxsize=1024)
def parse_cron(expression: str, zone_name: str) -> CronSchedule:
    """Return the parsed schedule of ``expression`` in ``zone_name``, cached by both."""
    return CronSchedule(expression, load_zone(zone_name))


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``; raise UsageError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"time zone '{name}' is unknown; pass an IANA name such as UTC, "
                         f"Europe/Berlin or America/New_York") from None


def _parse_seconds(field: str, expression: str) -> list[int]:
    seconds: set[int] = set()
    for term in field.split(","):
        seconds.update(_parse_seconds_term(term, expression))
    return sorted(seconds)


def _parse_seconds_term(term: str, expression: str) -> range:
    problem = (f"cron expression '{expression}': seconds field term '{term}' is invalid; "
               f"write *, N, a-b, */n or a-b/n with seconds from 0 to 59")
    span, slash, step_text = term.partition("/")
    step = _number(step_text, problem) if slash else 1
    if step < 1:
        raise UsageError(problem)

    if span == "*":
        return range(0, 60, step)
    start_text, dash, end_text = span.partition("-")
    if slash and not dash:
        raise UsageError(problem)
    start = _number(start_text, problem)
    end = _number(end_text, problem) if dash else start
    if not 0 <= start <= end <= 59:
        raise UsageError(problem)
    return range(start, end + 1, step)


def _number(text: str, problem: str) -> int:
    if not text.isdigit():
        raise UsageError(problem)
    return int(text)
