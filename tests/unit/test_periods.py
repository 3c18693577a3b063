from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.periods import (
    IANA_ZONES,
    InvalidTimezone,
    Month,
    NaiveDatetime,
    check_timezone,
    local_date,
    zone,
)

AMS = "Europe/Amsterdam"
MS = timedelta(milliseconds=1)
US = timedelta(microseconds=1)


def z(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- month boundaries


def test_email_at_last_millisecond_of_month_in_utc_belongs_to_that_month() -> None:
    last = z("2026-12-31T23:59:59.999+00:00")
    assert Month.containing(last, "UTC") == Month(2026, 12)
    assert Month.containing(last + MS, "UTC") == Month(2027, 1)


def test_amsterdam_month_ends_at_local_midnight_in_summer_time() -> None:
    # 31 March 2026 is after the 29 March switch to CEST (UTC+2):
    # 23:59:59.999 local = 21:59:59.999Z
    last = z("2026-03-31T21:59:59.999+00:00")
    assert Month.containing(last, AMS) == Month(2026, 3)
    assert Month.containing(last + MS, AMS) == Month(2026, 4)
    # the same instants are both still March in UTC
    assert Month.containing(last + MS, "UTC") == Month(2026, 3)


def test_amsterdam_month_ends_at_local_midnight_in_winter_time() -> None:
    # 31 October 2026 is after the 25 October switch back to CET (UTC+1):
    # 23:59:59.999 local = 22:59:59.999Z
    last = z("2026-10-31T22:59:59.999+00:00")
    assert Month.containing(last, AMS) == Month(2026, 10)
    assert Month.containing(last + MS, AMS) == Month(2026, 11)


def test_leap_february_includes_the_29th() -> None:
    # 2028 is a leap year. UTC: 29 Feb 23:59:59.999Z is February
    assert Month.containing(z("2028-02-29T23:59:59.999+00:00"), "UTC") == Month(2028, 2)
    assert Month.containing(z("2028-03-01T00:00:00+00:00"), "UTC") == Month(2028, 3)
    # Amsterdam (CET, UTC+1): 29 Feb 23:59:59.999 local = 22:59:59.999Z
    assert Month.containing(z("2028-02-29T22:59:59.999+00:00"), AMS) == Month(2028, 2)
    assert Month.containing(z("2028-02-29T23:00:00+00:00"), AMS) == Month(2028, 3)


def test_instant_with_any_offset_is_placed_by_the_account_zone() -> None:
    # 2026-01-31T19:30-05:00 = 2026-02-01T00:30Z = 01:30 CET on 1 Feb
    instant = datetime(2026, 1, 31, 19, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert Month.containing(instant, AMS) == Month(2026, 2)
    assert Month.containing(instant, "America/New_York") == Month(2026, 1)


def test_starts_at_is_local_midnight_as_utc_instant() -> None:
    # 1 March 2026 00:00 CET (UTC+1) = 28 Feb 23:00Z
    assert Month(2026, 3).starts_at(AMS) == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    # 1 April 2026 00:00 CEST (UTC+2) = 31 March 22:00Z
    assert Month(2026, 4).starts_at(AMS) == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert Month(2026, 4).starts_at(AMS).tzinfo == UTC
    assert Month(2026, 4).starts_at("UTC") == datetime(2026, 4, 1, tzinfo=UTC)


def test_ends_at_is_the_start_of_the_next_month() -> None:
    assert Month(2026, 3).ends_at(AMS) == Month(2026, 4).starts_at(AMS)
    assert Month(2026, 12).ends_at("UTC") == datetime(2027, 1, 1, tzinfo=UTC)


def test_dst_months_are_an_hour_short_or_long_in_amsterdam() -> None:
    march = Month(2026, 3)
    october = Month(2026, 10)
    # March loses an hour (31*24 - 1 = 743 h), October gains one (31*24 + 1 = 745 h)
    assert march.ends_at(AMS) - march.starts_at(AMS) == timedelta(hours=743)
    assert october.ends_at(AMS) - october.starts_at(AMS) == timedelta(hours=745)
    assert march.ends_at("UTC") - march.starts_at("UTC") == timedelta(hours=744)


def test_closable_at_is_month_end_plus_grace() -> None:
    # end of Jan 2026 in Amsterdam = 1 Feb 00:00 CET = 31 Jan 23:00Z; + 2 h = 1 Feb 01:00Z
    assert Month(2026, 1).closable_at(AMS, timedelta(hours=2)) == datetime(
        2026, 2, 1, 1, 0, tzinfo=UTC
    )


def test_local_date_uses_the_zone() -> None:
    # 31 Jan 23:30Z = 1 Feb 00:30 CET
    instant = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert local_date(instant, AMS) == date(2026, 2, 1)
    assert local_date(instant, "UTC") == date(2026, 1, 31)


# ---------------------------------------------------------------- refusals


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(NaiveDatetime):
        Month.containing(datetime(2026, 1, 1, 12, 0), AMS)
    with pytest.raises(NaiveDatetime):
        local_date(datetime(2026, 1, 1, 12, 0), AMS)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "Europe/amsterdam/", "../etc/passwd"])
def test_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(InvalidTimezone):
        zone(name)
    with pytest.raises(InvalidTimezone):
        Month.containing(datetime(2026, 1, 1, tzinfo=UTC), name)


@pytest.mark.parametrize(
    "name", ["localtime", "right/UTC", "posix/Europe/Paris", "Factory", "europe/amsterdam", "UTC "]
)
def test_a_host_file_or_placeholder_is_not_an_account_time_zone(name: str) -> None:
    with pytest.raises(InvalidTimezone) as refused:
        check_timezone(name)
    assert str(refused.value) == (
        f"time zone {name!r} is not an IANA zone name"
        " (names are case-sensitive, e.g. Europe/Amsterdam or UTC)"
    )


def test_every_iana_zone_name_of_the_pinned_tzdata_is_an_account_time_zone() -> None:
    assert {"UTC", "Europe/Amsterdam", "America/New_York", "US/Eastern", "Etc/GMT+5"} <= IANA_ZONES
    assert len(IANA_ZONES) > 500
    for name in IANA_ZONES:
        assert check_timezone(name) == name


def test_period_errors_are_ledger_errors() -> None:
    assert issubclass(NaiveDatetime, LedgerError)
    assert issubclass(InvalidTimezone, LedgerError)


# ---------------------------------------------------------------- month arithmetic


def test_next_and_previous_cross_year_boundaries() -> None:
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 11).next() == Month(2026, 12)
    assert Month(2027, 1).previous() == Month(2026, 12)
    assert Month(2026, 2).previous() == Month(2026, 1)


def test_months_order_chronologically() -> None:
    assert Month(2025, 12) < Month(2026, 1) < Month(2026, 2)
    assert max(Month(2026, 3), Month(2025, 11)) == Month(2026, 3)


def test_parse_and_str_round_trip() -> None:
    assert Month.parse("2026-03") == Month(2026, 3)
    assert str(Month(2026, 3)) == "2026-03"
    assert Month(2026, 3).first_day == date(2026, 3, 1)


@pytest.mark.parametrize("text", ["2026", "2026-13", "2026-00", "march", "2026-03-01"])
def test_parse_refuses_non_months(text: str) -> None:
    with pytest.raises(LedgerError):
        Month.parse(text)


@pytest.mark.parametrize("month", [0, 13, -1])
def test_month_out_of_range_is_refused(month: int) -> None:
    with pytest.raises(LedgerError):
        Month(2026, month)


# ---------------------------------------------------------------- properties

months = st.builds(Month, st.integers(min_value=1971, max_value=2099), st.integers(1, 12))
zones = st.sampled_from(
    [
        "UTC",
        AMS,
        "America/New_York",
        "America/Santiago",  # DST changes at local midnight
        "America/Sao_Paulo",
        "Asia/Kolkata",  # +05:30
        "Asia/Kathmandu",  # +05:45
        "Australia/Lord_Howe",  # 30-minute DST
        "Pacific/Apia",  # skipped 30 Dec 2011
        "Pacific/Kiritimati",  # +14
        "Pacific/Pago_Pago",  # -11
    ]
)


@given(months, zones)
def test_month_contains_its_first_and_last_instant(month: Month, tz: str) -> None:
    assert Month.containing(month.starts_at(tz), tz) == month
    assert Month.containing(month.ends_at(tz) - US, tz) == month
    assert Month.containing(month.ends_at(tz), tz) == month.next()


@given(months)
def test_next_and_previous_are_inverse(month: Month) -> None:
    assert month.next().previous() == month
    assert month.previous().next() == month
    assert month < month.next()
    assert Month.parse(str(month)) == month
