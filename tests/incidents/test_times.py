"""Times from payloads and from --at: offsets, fractions, zero time, epochs, zones."""

import datetime as dt

import pytest

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.incidents.times import is_zero_time, iso, parse_cli_time, parse_time

UTC = dt.UTC


@pytest.mark.parametrize(("text", "expected"), [
    ("2018-03-07T06:33:21.873077559-05:00", dt.datetime(2018, 3, 7, 11, 33, 21, 873077, UTC)),
    ("2020-02-06T00:17:58.432911368Z", dt.datetime(2020, 2, 6, 0, 17, 58, 432911, UTC)),
    ("2017-05-09T07:08:37.818Z", dt.datetime(2017, 5, 9, 7, 8, 37, 818000, UTC)),
    ("2017-05-09T07:01:37.80300Z", dt.datetime(2017, 5, 9, 7, 1, 37, 803000, UTC)),
    ("2017-01-26T08:31:54.865-05:00", dt.datetime(2017, 1, 26, 13, 31, 54, 865000, UTC)),
    ("2026-01-02T03:04:05+0530", dt.datetime(2026, 1, 1, 21, 34, 5, tzinfo=UTC)),
    ("1970-01-01T00:00:00Z", dt.datetime(1970, 1, 1, tzinfo=UTC)),
])
def test_rfc3339_variants(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", "",
                                   None])
def test_zero_and_empty_mean_unset(value):
    assert parse_time(value) is None


def test_zero_time_recognised():
    assert is_zero_time("0001-01-01T00:00:00Z")
    assert not is_zero_time("2001-01-01T00:00:00Z")


@pytest.mark.parametrize(("value", "expected"), [
    (1606317355, dt.datetime(2020, 11, 25, 15, 15, 55, tzinfo=UTC)),
    (1606317355226, dt.datetime(2020, 11, 25, 15, 15, 55, 226000, UTC)),
    (1606317355226123, dt.datetime(2020, 11, 25, 15, 15, 55, 226123, UTC)),
    (1606317355226123987, dt.datetime(2020, 11, 25, 15, 15, 55, 226123, UTC)),
    ("1606317355226", dt.datetime(2020, 11, 25, 15, 15, 55, 226000, UTC)),
    (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
])
def test_epochs_by_magnitude(value, expected):
    assert parse_time(value) == expected


def test_ns_epoch_exact_beyond_float():
    # 2^53 < 1606317355226999999: a float would round the microseconds.
    assert parse_time(1606317355226999999).microsecond == 226999


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01T10:00:00", True, [1]])
def test_unreadable_time_raises(value):
    with pytest.raises(ValueError, match="invalid"):
        parse_time(value)


def test_cli_time_with_offset():
    assert parse_cli_time("2026-03-01T14:05:00+01:00") == dt.datetime(2026, 3, 1, 13, 5,
                                                                       tzinfo=UTC)


def test_cli_naive_time_needs_zone():
    with pytest.raises(UsageError, match="no UTC offset.*--tz"):
        parse_cli_time("2026-03-01T14:05:00")


def test_cli_naive_time_with_zone():
    # Berlin is UTC+1 in March before the DST switch.
    assert parse_cli_time("2026-03-01T14:05", "Europe/Berlin") == dt.datetime(
        2026, 3, 1, 13, 5, tzinfo=UTC)


def test_cli_zone_across_dst():
    assert parse_cli_time("2026-07-01T14:05", "Europe/Berlin").hour == 12


def test_cli_offset_and_zone_conflict():
    with pytest.raises(UsageError, match="already has a UTC offset"):
        parse_cli_time("2026-03-01T14:05Z", "Europe/Berlin")


def test_cli_unknown_zone():
    with pytest.raises(UsageError, match="time zone 'Mars/Olympus' is unknown"):
        parse_cli_time("2026-03-01T14:05", "Mars/Olympus")


def test_cli_garbage_time():
    with pytest.raises(UsageError, match="--at 'soon' is not an ISO 8601 time"):
        parse_cli_time("soon")


def test_iso_uses_z_suffix():
    assert iso(dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == \
        "2026-01-01T10:00:00Z"
    assert iso(None) is None


def test_cli_time_in_dst_gap_rejected():
    # Clocks in Berlin jump from 02:00 to 03:00 on 2026-03-29.
    with pytest.raises(UsageError, match="does not exist in Europe/Berlin"):
        parse_cli_time("2026-03-29T02:30", "Europe/Berlin")


def test_cli_time_in_dst_fold_rejected():
    # Clocks in Berlin go back from 03:00 to 02:00 on 2026-10-25.
    with pytest.raises(UsageError, match="happens twice in Europe/Berlin"):
        parse_cli_time("2026-10-25T02:30", "Europe/Berlin")


def test_cli_date_only_hint_is_valid():
    with pytest.raises(UsageError, match=r"e\.g\. 2026-03-01T00:00:00\+00:00"):
        parse_cli_time("2026-03-01")
    assert parse_cli_time("2026-03-01T00:00:00+00:00").day == 1


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                                   "2200-01-01T00:00:00Z"])
def test_cli_time_out_of_range(value):
    with pytest.raises(UsageError, match="out of range"):
        parse_cli_time(value)


@pytest.mark.parametrize("value", [1e30, -5, "1600-01-01T00:00:00Z", 10**40])
def test_payload_time_out_of_range(value):
    with pytest.raises(ValueError, match="out of range"):
        parse_time(value)


def test_long_value_shortened_in_error():
    with pytest.raises(ValueError) as error:
        parse_time("x" * 10_000)
    assert len(str(error.value)) < 200
