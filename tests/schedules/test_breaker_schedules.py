"""Hard cases of cron schedules: seconds fields across daylight-saving days, odd zones."""

from __future__ import annotations

import datetime as dt

import pytest

from tinysdlc_nb.schedules.cron import parse_cron
from tinysdlc_nb.schedules.model import parse_pairs

UTC = dt.UTC


def fires(expression: str, zone: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    schedule = parse_cron(expression, zone)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_seconds_every_minute_spring_forward():
    # Berlin skips 02:00-03:00 local on 2026-03-29 (01:00 UTC), but real time has no gap.
    found = fires("0 * * * * *", "Europe/Berlin", dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC), 3)
    assert found[:2] == [dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
                         dt.datetime(2026, 3, 29, 1, 1, tzinfo=UTC)]


def test_seconds_every_20min_spring_forward():
    found = fires("0 */20 * * * *", "America/New_York",
                  dt.datetime(2026, 3, 8, 6, 50, tzinfo=UTC), 3)
    assert found == [dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
                     dt.datetime(2026, 3, 8, 7, 20, tzinfo=UTC),
                     dt.datetime(2026, 3, 8, 7, 40, tzinfo=UTC)]


def test_seconds_matches_five_field_spring_forward():
    start = dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    five = fires("*/20 * * * *", "America/New_York", start, 8)
    six = fires("0 */20 * * * *", "America/New_York", start, 8)
    assert six == five


def test_sunday_zero_and_seven_same():
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert fires("0 9 * * 7", "UTC", start, 3) == fires("0 9 * * 0", "UTC", start, 3)


def test_last_day_of_february():
    found = fires("0 9 L * *", "UTC", dt.datetime(2026, 2, 1, tzinfo=UTC), 1)
    assert found == [dt.datetime(2026, 2, 28, 9, 0, tzinfo=UTC)]


def test_feb_29_years_away():
    found = fires("0 0 29 2 *", "UTC", dt.datetime(2026, 1, 1, tzinfo=UTC), 1)
    assert found == [dt.datetime(2028, 2, 29, 0, 0, tzinfo=UTC)]


def test_kolkata_half_hour_offset():
    found = fires("0 9 * * *", "Asia/Kolkata", dt.datetime(2026, 1, 1, tzinfo=UTC), 1)
    assert found == [dt.datetime(2026, 1, 1, 3, 30, tzinfo=UTC)]


def test_lord_howe_fall_back_once():
    # Lord Howe moves back 30 minutes at 02:00 local on 2026-04-05, so 01:45 occurs twice.
    schedule = parse_cron("45 1 * * *", "Australia/Lord_Howe")
    found = fires("45 1 * * *", "Australia/Lord_Howe", dt.datetime(2026, 4, 4, tzinfo=UTC), 3)
    days = [fire.astimezone(schedule.zone).date() for fire in found]
    assert days == [dt.date(2026, 4, 5), dt.date(2026, 4, 6), dt.date(2026, 4, 7)]


def test_lord_howe_spring_forward_once():
    # 02:15 local does not exist on 2026-10-04, so the job runs once, at 02:30.
    schedule = parse_cron("15 2 * * *", "Australia/Lord_Howe")
    found = fires("15 2 * * *", "Australia/Lord_Howe", dt.datetime(2026, 10, 3, tzinfo=UTC), 2)
    local = [fire.astimezone(schedule.zone).strftime("%m-%d %H:%M") for fire in found]
    assert local == ["10-04 02:30", "10-05 02:15"]


@pytest.mark.parametrize("pair, value", [("url=a=b", "a=b"), ('port="8080"', "8080"),
                                         ("note='x y'", "'x y'")])
def test_pairs_equals_and_quotes(pair, value):
    key = pair.partition("=")[0]
    assert parse_pairs([pair], "notebook")[key] == value
