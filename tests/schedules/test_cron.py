"""Cron expressions: fields, macros, time zones and daylight-saving days."""

from __future__ import annotations

import datetime as dt

import pytest

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.schedules.cron import parse_cron

UTC = dt.UTC


def fires(expression: str, zone: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    schedule = parse_cron(expression, zone)
    found, moment = [], start
    while (moment := schedule.next_after(moment)) <= end:
        found.append(moment)
    return found


def local_times(values: list[dt.datetime], zone: str) -> list[str]:
    schedule = parse_cron("* * * * *", zone)
    return [value.astimezone(schedule.zone).strftime("%m-%d %H:%M %Z") for value in values]


@pytest.mark.parametrize("zone, day", [("America/New_York", dt.date(2026, 3, 8)),
                                       ("Europe/Berlin", dt.date(2026, 3, 29))])
def test_daily_0230_spring_forward_once(zone, day):
    start = dt.datetime.combine(day, dt.time(0), UTC) - dt.timedelta(hours=12)
    end = start + dt.timedelta(hours=36)
    on_day = [fire for fire in fires("30 2 * * *", zone, start, end)
              if fire.astimezone(parse_cron("30 2 * * *", zone).zone).date() == day]
    assert len(on_day) == 1
    assert on_day[0].astimezone(parse_cron("30 2 * * *", zone).zone).strftime("%H:%M") == "03:00"


@pytest.mark.parametrize("zone, day", [("America/New_York", dt.date(2026, 11, 1)),
                                       ("Europe/Berlin", dt.date(2026, 10, 25))])
def test_daily_0230_fall_back_once(zone, day):
    start = dt.datetime.combine(day, dt.time(0), UTC) - dt.timedelta(hours=12)
    end = start + dt.timedelta(hours=36)
    local = parse_cron("30 2 * * *", zone).zone
    on_day = [fire for fire in fires("30 2 * * *", zone, start, end)
              if fire.astimezone(local).date() == day]
    assert len(on_day) == 1
    assert on_day[0].astimezone(local).strftime("%H:%M") == "02:30"


def test_fixed_time_in_repeated_hour_once():
    # 01:30 happens twice in New York on 2026-11-01; Debian cron runs the job once.
    found = fires("30 1 * * *", "America/New_York", dt.datetime(2026, 11, 1, 0, tzinfo=UTC),
                  dt.datetime(2026, 11, 2, 0, tzinfo=UTC))
    assert len(found) == 1


def test_every_20_minutes_both_sides_of_fall_back():
    found = fires("*/20 * * * *", "America/New_York", dt.datetime(2026, 11, 1, 4, 59, tzinfo=UTC),
                  dt.datetime(2026, 11, 1, 6, 59, tzinfo=UTC))
    assert local_times(found, "America/New_York") == [
        "11-01 01:00 EDT", "11-01 01:20 EDT", "11-01 01:40 EDT",
        "11-01 01:00 EST", "11-01 01:20 EST", "11-01 01:40 EST"]


def test_next_after_strictly_after():
    schedule = parse_cron("*/5 * * * *", "UTC")
    moment = dt.datetime(2026, 5, 1, 10, 5, tzinfo=UTC)
    assert schedule.next_after(moment) == dt.datetime(2026, 5, 1, 10, 10, tzinfo=UTC)


def test_next_after_returns_utc():
    fire = parse_cron("0 9 * * *", "Europe/Berlin").next_after(
        dt.datetime(2026, 7, 1, tzinfo=UTC))
    assert fire == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert fire.tzinfo is UTC


@pytest.mark.parametrize("field, seconds", [
    ("*", list(range(60))), ("7", [7]), ("10-12", [10, 11, 12]), ("*/15", [0, 15, 30, 45]),
    ("10-30/10", [10, 20, 30]), ("1,5,50-51", [1, 5, 50, 51])])
def test_seconds_field_forms(field, seconds):
    start = dt.datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC) - dt.timedelta(microseconds=1)
    found = fires(f"{field} 0 10 * * *", "UTC", start,
                  dt.datetime(2026, 5, 1, 10, 0, 59, tzinfo=UTC))
    assert [fire.second for fire in found] == seconds


def test_seconds_only_in_selected_minutes():
    found = fires("30 */2 * * * *", "UTC", dt.datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC),
                  dt.datetime(2026, 5, 1, 10, 5, 0, tzinfo=UTC))
    assert [fire.strftime("%M:%S") for fire in found] == ["00:30", "02:30", "04:30"]


@pytest.mark.parametrize("macro, expected", [
    ("@hourly", dt.datetime(2026, 5, 1, 11, 0, tzinfo=UTC)),
    ("@daily", dt.datetime(2026, 5, 2, 0, 0, tzinfo=UTC)),
    ("@weekly", dt.datetime(2026, 5, 3, 0, 0, tzinfo=UTC)),
    ("@monthly", dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)),
    ("@yearly", dt.datetime(2027, 1, 1, 0, 0, tzinfo=UTC))])
def test_macro_next_fire(macro, expected):
    assert parse_cron(macro, "UTC").next_after(
        dt.datetime(2026, 5, 1, 10, 30, tzinfo=UTC)) == expected


@pytest.mark.parametrize("expression", [
    "* * *", "* * * * * * *", "61 * * * *", "* 25 * * *", "*/0 * * * *", "60 * * * * *",
    "5-1 * * * * *", "5/2 * * * * *", "*/0 * * * * *", "x * * * * *", "0 0 30 2 *",
    "@fortnightly"])
def test_invalid_expression_rejected(expression):
    with pytest.raises(UsageError, match="cron (expression|macro)"):
        parse_cron(expression, "UTC")


def test_unknown_zone_rejected():
    with pytest.raises(UsageError, match="time zone 'Mars/Olympus' is unknown"):
        parse_cron("* * * * *", "Mars/Olympus")


def test_latest_at_or_before_inclusive():
    schedule = parse_cron("*/10 * * * * *", "UTC")
    moment = dt.datetime(2026, 5, 1, 10, 0, 20, tzinfo=UTC)
    assert schedule.latest_at_or_before(moment) == moment
    assert schedule.latest_at_or_before(moment + dt.timedelta(seconds=9)) == moment


def test_count_between_inclusive():
    schedule = parse_cron("* * * * *", "UTC")
    first = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert schedule.count_between(first, first + dt.timedelta(minutes=9)) == (10, False)


def test_parse_cached_by_expression_and_zone():
    assert parse_cron("*/7 * * * *", "UTC") is parse_cron("*/7 * * * *", "UTC")
    assert parse_cron("*/7 * * * *", "UTC") is not parse_cron("*/7 * * * *", "Europe/Berlin")
