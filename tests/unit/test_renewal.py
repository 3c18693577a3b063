from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.contacts.renewal import (
    BeforeAnchor,
    BillingPeriod,
    NotAnAnniversaryPeriod,
    RenewalError,
    RenewalPeriod,
    UnknownBillingPeriod,
    allowance_months,
    months_in,
    period_at,
    period_containing,
    period_number,
    period_start,
    periods_between,
    periods_from,
    renewal_period,
)
from ledger.errors import LedgerError
from ledger.periods import InvalidTimezone

AMS = "Europe/Amsterdam"
PERIODS: tuple[BillingPeriod, ...] = ("month", "quarter", "half_year", "year")
MONTHS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}

# Month lengths written out by hand (not from the calendar module): 2028 is the
# only leap year in range.
COMMON = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
LEAP = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
MONTH_DAYS = {2026: COMMON, 2027: COMMON, 2028: LEAP, 2029: COMMON, 2030: COMMON, 2031: COMMON}


def d(text: str) -> date:
    return date.fromisoformat(text)


def z(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ------------------------------------------------ every anchor day, every period


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("year", [2027, 2028])
@pytest.mark.parametrize("day", range(1, 32))
def test_every_anchor_day_renews_on_its_day_or_the_last_day_of_shorter_months(
    period: BillingPeriod, year: int, day: int
) -> None:
    # Anchors in every month of a common year (2027) and a leap year (2028)
    # where that day exists; two years of renewals, checked against the
    # hand-written month lengths: the anchor day, or the month's last day.
    step = MONTHS[period]
    for anchor_month in range(1, 13):
        if day > MONTH_DAYS[year][anchor_month - 1]:
            continue
        anchor = date(year, anchor_month, day)
        for n in range(24 // step + 1):
            y, m0 = divmod(year * 12 + anchor_month - 1 + n * step, 12)
            expected = date(y, m0 + 1, min(day, MONTH_DAYS[y][m0]))
            assert period_start(anchor, period, n) == expected, (anchor, n)


# ------------------------------------------------ hand-checked sequences


def _starts(anchor: str, period: BillingPeriod, count: int) -> list[date]:
    return [period_start(d(anchor), period, n) for n in range(count)]


def test_monthly_from_jan_31_in_a_leap_year_clamps_and_returns_to_the_31st() -> None:
    assert _starts("2028-01-31", "month", 14) == [
        d("2028-01-31"),
        d("2028-02-29"),  # leap February
        d("2028-03-31"),  # back to the anchor day, not Mar 29
        d("2028-04-30"),
        d("2028-05-31"),
        d("2028-06-30"),
        d("2028-07-31"),
        d("2028-08-31"),
        d("2028-09-30"),
        d("2028-10-31"),
        d("2028-11-30"),
        d("2028-12-31"),
        d("2029-01-31"),
        d("2029-02-28"),  # common February
    ]


def test_monthly_from_jan_31_in_a_common_year_renews_on_feb_28() -> None:
    assert _starts("2027-01-31", "month", 3) == [d("2027-01-31"), d("2027-02-28"), d("2027-03-31")]


@pytest.mark.parametrize(
    ("anchor", "feb", "mar"),
    [
        ("2026-01-29", "2026-02-28", "2026-03-29"),
        ("2028-01-29", "2028-02-29", "2028-03-29"),  # leap: no clamping needed
        ("2026-01-30", "2026-02-28", "2026-03-30"),
        ("2028-01-30", "2028-02-29", "2028-03-30"),
        ("2026-01-28", "2026-02-28", "2026-03-28"),  # the 28th never clamps
    ],
)
def test_anchor_29_and_30_clamp_only_in_february(anchor: str, feb: str, mar: str) -> None:
    assert _starts(anchor, "month", 3) == [d(anchor), d(feb), d(mar)]


def test_quarterly_from_aug_31_goes_nov_30_feb_28_may_31() -> None:
    assert _starts("2026-08-31", "quarter", 5) == [
        d("2026-08-31"),
        d("2026-11-30"),
        d("2027-02-28"),
        d("2027-05-31"),
        d("2027-08-31"),
    ]


def test_quarterly_from_aug_31_reaches_leap_february() -> None:
    assert _starts("2027-08-31", "quarter", 4) == [
        d("2027-08-31"),
        d("2027-11-30"),
        d("2028-02-29"),
        d("2028-05-31"),
    ]


def test_half_yearly_from_aug_30_clamps_every_february() -> None:
    assert _starts("2026-08-30", "half_year", 5) == [
        d("2026-08-30"),
        d("2027-02-28"),
        d("2027-08-30"),
        d("2028-02-29"),
        d("2028-08-30"),
    ]


def test_half_yearly_from_mar_31_renews_on_sep_30() -> None:
    assert _starts("2026-03-31", "half_year", 3) == [
        d("2026-03-31"),
        d("2026-09-30"),
        d("2027-03-31"),
    ]


def test_yearly_from_feb_29_renews_on_feb_28_until_the_next_leap_year() -> None:
    assert _starts("2028-02-29", "year", 5) == [
        d("2028-02-29"),
        d("2029-02-28"),
        d("2030-02-28"),
        d("2031-02-28"),
        d("2032-02-29"),
    ]


def test_monthly_from_dec_31_crosses_the_year() -> None:
    assert _starts("2026-12-31", "month", 3) == [d("2026-12-31"), d("2027-01-31"), d("2027-02-28")]


def test_unknown_billing_period_and_negative_period_number_are_refused() -> None:
    with pytest.raises(UnknownBillingPeriod):
        months_in("week")  # type: ignore[arg-type]
    with pytest.raises(RenewalError):
        period_start(d("2026-01-31"), "month", -1)
    assert issubclass(RenewalError, LedgerError)


# ------------------------------------------------ periods and lookup


def test_period_end_is_the_next_start_and_exclusive() -> None:
    feb = renewal_period(d("2028-01-31"), "month", 1)
    assert feb == RenewalPeriod(d("2028-02-29"), d("2028-03-31"))
    assert feb.days == 31  # Feb 29 .. Mar 30
    assert feb.contains(d("2028-02-29"))
    assert feb.contains(d("2028-03-30"))
    assert not feb.contains(d("2028-03-31"))
    assert not feb.contains(d("2028-02-28"))


def test_an_empty_or_reversed_period_is_refused() -> None:
    with pytest.raises(RenewalError):
        RenewalPeriod(d("2026-03-01"), d("2026-03-01"))
    with pytest.raises(RenewalError):
        RenewalPeriod(d("2026-03-02"), d("2026-03-01"))


@pytest.mark.parametrize(
    ("period", "anchor", "day", "start", "end"),
    [
        ("month", "2028-01-31", "2028-01-31", "2028-01-31", "2028-02-29"),  # the anchor day itself
        ("month", "2028-01-31", "2028-02-28", "2028-01-31", "2028-02-29"),
        ("month", "2028-01-31", "2028-02-29", "2028-02-29", "2028-03-31"),
        ("month", "2028-01-31", "2028-03-30", "2028-02-29", "2028-03-31"),
        ("month", "2028-01-31", "2028-03-31", "2028-03-31", "2028-04-30"),
        ("month", "2026-01-15", "2026-03-14", "2026-02-15", "2026-03-15"),  # day before the 15th
        ("quarter", "2026-08-31", "2027-01-15", "2026-11-30", "2027-02-28"),
        ("quarter", "2026-08-31", "2027-02-28", "2027-02-28", "2027-05-31"),
        ("half_year", "2026-08-30", "2027-08-29", "2027-02-28", "2027-08-30"),
        ("year", "2028-02-29", "2030-02-27", "2029-02-28", "2030-02-28"),
        ("year", "2028-02-29", "2030-02-28", "2030-02-28", "2031-02-28"),
    ],
)
def test_period_containing_a_day(
    period: BillingPeriod, anchor: str, day: str, start: str, end: str
) -> None:
    assert period_containing(d(anchor), period, d(day)) == RenewalPeriod(d(start), d(end))


def test_a_day_before_the_anchor_belongs_to_no_period() -> None:
    with pytest.raises(BeforeAnchor):
        period_containing(d("2026-03-31"), "month", d("2026-03-30"))


def test_period_instants_are_local_midnights_in_the_account_zone() -> None:
    # anchor Jan 31, third month: [Mar 31, Apr 30). Amsterdam is on CEST
    # (UTC+2) from 29 March 2026: local midnight Mar 31 = Mar 30 22:00Z.
    march = renewal_period(d("2026-01-31"), "month", 2)
    assert march.starts_at(AMS) == z("2026-03-30T22:00:00+00:00")
    assert march.ends_at(AMS) == z("2026-04-29T22:00:00+00:00")
    assert march.starts_at("UTC") == z("2026-03-31T00:00:00+00:00")
    assert march.starts_at(AMS).tzinfo is UTC
    # CET (UTC+1) in winter: Nov 30 00:00 local = Nov 29 23:00Z.
    assert renewal_period(d("2026-08-31"), "quarter", 1).starts_at(AMS) == z(
        "2026-11-29T23:00:00+00:00"
    )
    with pytest.raises(InvalidTimezone):
        march.starts_at("Mars/Olympus")


def test_an_instant_is_placed_by_its_local_date() -> None:
    # 2026-03-30T22:30Z is 00:30 on Mar 31 in Amsterdam: the new period there,
    # still the old one in UTC.
    instant = z("2026-03-30T22:30:00+00:00")
    anchor = d("2026-01-31")
    assert period_at(anchor, "month", instant, AMS) == RenewalPeriod(
        d("2026-03-31"), d("2026-04-30")
    )
    assert period_at(anchor, "month", instant, "UTC") == RenewalPeriod(
        d("2026-02-28"), d("2026-03-31")
    )


def test_periods_between_yields_the_overlapping_periods_in_order() -> None:
    anchor = d("2026-01-31")
    assert list(periods_between(anchor, "month", d("2026-02-15"), d("2026-04-30"))) == [
        RenewalPeriod(d("2026-01-31"), d("2026-02-28")),
        RenewalPeriod(d("2026-02-28"), d("2026-03-31")),
        RenewalPeriod(d("2026-03-31"), d("2026-04-30")),  # [Apr 30, ...) starts at `until`: out
    ]
    # days before the anchor are skipped; a range ending on the anchor is empty
    assert list(periods_between(anchor, "quarter", d("2025-12-01"), d("2026-05-01"))) == [
        RenewalPeriod(d("2026-01-31"), d("2026-04-30")),
        RenewalPeriod(d("2026-04-30"), d("2026-07-31")),
    ]
    assert list(periods_between(anchor, "month", d("2025-12-01"), anchor)) == []
    assert list(periods_between(anchor, "month", d("2026-05-01"), d("2026-05-01"))) == []


# ------------------------------------------------ allowance months


def test_a_clamped_quarter_splits_at_the_anchor_anniversaries() -> None:
    # anchor Jan 31: the second quarter starts on a clamped Apr 30; its months
    # go back to the 31st wherever the month has one.
    quarter = renewal_period(d("2026-01-31"), "quarter", 1)
    assert quarter == RenewalPeriod(d("2026-04-30"), d("2026-07-31"))
    assert allowance_months(d("2026-01-31"), quarter) == (
        RenewalPeriod(d("2026-04-30"), d("2026-05-31")),
        RenewalPeriod(d("2026-05-31"), d("2026-06-30")),
        RenewalPeriod(d("2026-06-30"), d("2026-07-31")),
    )


def test_a_quarter_over_leap_february_splits_into_three_months() -> None:
    anchor = d("2027-08-31")
    quarter = renewal_period(anchor, "quarter", 1)
    assert allowance_months(anchor, quarter) == (
        RenewalPeriod(d("2027-11-30"), d("2027-12-31")),
        RenewalPeriod(d("2027-12-31"), d("2028-01-31")),
        RenewalPeriod(d("2028-01-31"), d("2028-02-29")),
    )


def test_a_year_has_twelve_allowance_months_and_a_month_has_itself() -> None:
    anchor = d("2028-02-29")
    year = renewal_period(anchor, "year", 0)
    months = allowance_months(anchor, year)
    assert len(months) == 12
    assert months[0] == RenewalPeriod(d("2028-02-29"), d("2028-03-29"))
    assert months[-1] == RenewalPeriod(d("2029-01-29"), d("2029-02-28"))
    one = renewal_period(anchor, "month", 5)
    assert allowance_months(anchor, one) == (one,)


def test_allowance_months_refuse_a_range_that_is_not_a_renewal_period() -> None:
    anchor = d("2026-01-31")
    with pytest.raises(NotAnAnniversaryPeriod):
        allowance_months(anchor, RenewalPeriod(d("2026-04-29"), d("2026-07-31")))
    with pytest.raises(NotAnAnniversaryPeriod):
        allowance_months(anchor, RenewalPeriod(d("2026-04-30"), d("2026-07-30")))
    with pytest.raises(NotAnAnniversaryPeriod):
        allowance_months(anchor, RenewalPeriod(d("2025-12-31"), d("2026-01-31")))


# ------------------------------------------------ properties

anchors = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
periods = st.sampled_from(PERIODS)


def _last_day(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


@given(anchors, periods, st.integers(min_value=0, max_value=500))
def test_renewals_never_drift(anchor: date, period: BillingPeriod, n: int) -> None:
    start = period_start(anchor, period, n)
    elapsed = (start.year - anchor.year) * 12 + start.month - anchor.month
    assert elapsed == n * MONTHS[period]
    assert start.day == min(anchor.day, _last_day(start.year, start.month))


@given(anchors, periods, st.integers(min_value=0, max_value=300))
def test_periods_are_contiguous_and_strictly_increasing(
    anchor: date, period: BillingPeriod, n: int
) -> None:
    stream = periods_from(anchor, period, n)
    previous = next(stream)
    assert previous.start == period_start(anchor, period, n)
    for _ in range(14):
        current = next(stream)
        assert previous.start < previous.end == current.start < current.end
        previous = current


@given(anchors, periods, st.integers(min_value=0, max_value=2000))
def test_every_day_from_the_anchor_is_in_exactly_the_period_found_for_it(
    anchor: date, period: BillingPeriod, offset: int
) -> None:
    day = anchor + timedelta(days=offset)
    found = period_containing(anchor, period, day)
    n = period_number(anchor, period, day)
    assert found.contains(day)
    assert found == renewal_period(anchor, period, n)
    # the neighbours do not hold it
    assert not renewal_period(anchor, period, n + 1).contains(day)
    if n > 0:
        assert not renewal_period(anchor, period, n - 1).contains(day)


@given(anchors, periods, st.integers(min_value=0, max_value=200))
def test_allowance_months_tile_each_period_exactly(
    anchor: date, period: BillingPeriod, n: int
) -> None:
    whole = renewal_period(anchor, period, n)
    months = allowance_months(anchor, whole)
    assert len(months) == MONTHS[period]
    assert months[0].start == whole.start
    assert months[-1].end == whole.end
    assert all(a.end == b.start for a, b in pairwise(months))
    assert sum(m.days for m in months) == whole.days
    for month in months:
        assert month.start.day == min(anchor.day, _last_day(month.start.year, month.start.month))
