"""Opening, the first close and the anniversary calendar of a contacts account (seed 002).

Amounts are worked out by hand from the plans described in ``contacts_builders``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from contacts_builders import (
    AMS,
    AMS_OPENED,
    GRACE,
    MICRO,
    MONTHS,
    Counter,
    D,
    assert_replays,
    close,
    days_in,
    emails,
    lines,
    open_account,
    period,
    totals,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_builders import utc

from ledger.contacts.renewal import BillingPeriod, RenewalPeriod

# ---------------------------------------------------------------- 1. opening and first close

# Opened 2027-03-10 10:30 local (09:30Z, CET); renewals on the 10th at local midnight.
APR_10 = utc(2027, 4, 9, 22)  # 2027-04-10 00:00 CEST
MAY_10 = utc(2027, 5, 9, 22)
JUN_10 = utc(2027, 6, 9, 22)


def test_nothing_is_issued_or_counted_before_the_opening_is_grace_old() -> None:
    account = open_account(tz=AMS, opened_at=AMS_OPENED)
    counter = Counter({AMS_OPENED: 600})
    assert close(account, AMS_OPENED + GRACE - MICRO, counter) == []
    assert counter.asked == []
    assert [type(e).__name__ for e in account.collect_events()] == ["Opened"]


def test_first_period_is_priced_at_the_opening_with_the_contacts_counted_at_the_opening() -> None:
    account = open_account(products=("chat",), tz=AMS, tax_rate="0.21", opened_at=AMS_OPENED)
    counter = Counter({AMS_OPENED: 600})
    [first] = close(account, AMS_OPENED + GRACE, counter)  # 15:30Z = 16:30 local, Mar 10
    assert first.number == "PF-acc-7-0001"
    assert first.period == period("2027-03-10", "2027-04-10")
    assert first.issued_on == date(2027, 3, 10)
    assert first.contacts == 600
    # 600 contacts: tier 2 (501-1,000) 29.00; chat 10.00; monthly: no discount
    assert lines(first) == [
        ("subscription", 1, D("29.00"), D("29.00")),
        ("product", 1, D("10.00"), D("10.00")),
    ]
    # 39.00 x 21% = 8.19
    assert totals(first) == (D("39.00"), D("8.19"), D("47.19"))
    assert "(tier 2)" in first.lines[0].description
    # asked once, to price it
    assert counter.asked == [AMS_OPENED]
    assert account.subscription.floor == D("39.00")
    assert list(account.open_proformas) == ["PF-acc-7-0001"]


def test_renewals_count_contacts_at_local_midnight_of_each_renewal_date() -> None:
    account = open_account(tz=AMS, opened_at=AMS_OPENED)
    counter = Counter({AMS_OPENED: 600, APR_10: 600, MAY_10: 1200, JUN_10: 600})
    close(account, AMS_OPENED + GRACE, counter)
    counter.asked.clear()
    # Jun 10 renewal is due at 22:00Z + 6h = Jun 10 04:00Z: one microsecond before, not yet
    docs = close(account, utc(2027, 6, 10, 4) - MICRO, counter)
    assert [(d.number, d.period, d.contacts, d.subtotal.amount) for d in docs] == [
        ("PF-acc-7-0002", period("2027-04-10", "2027-05-10"), 600, D("29.00")),
        # 1,200 contacts: tier 3 (1,001-2,500) 49.00
        ("PF-acc-7-0003", period("2027-05-10", "2027-06-10"), 1200, D("49.00")),
    ]
    assert [d.issued_on for d in docs] == [date(2027, 6, 10)] * 2  # 05:59 local
    # only the new renewal instants: the opening, priced already, is never asked again
    assert counter.asked == [APR_10, MAY_10]
    counter.asked.clear()
    [june] = close(account, utc(2027, 6, 10, 4), counter)
    assert (june.number, june.period, june.contacts) == (
        "PF-acc-7-0004",
        period("2027-06-10", "2027-07-10"),
        600,
    )
    assert counter.asked == [JUN_10]
    # a run with no boundary passed asks nothing
    counter.asked.clear()
    assert close(account, utc(2027, 6, 20), counter) == []
    assert counter.asked == []
    assert account.counted_through == JUN_10
    assert_replays(account)


# ---------------------------------------------------------------- 2. anniversary days


@pytest.mark.parametrize(
    ("tz", "opened_at", "billing", "renewals", "periods"),
    [
        pytest.param(
            "UTC",
            utc(2027, 1, 31, 12),
            "month",
            # Jan 31 -> Feb 28 (2027 is common) -> Mar 31 -> Apr 30 -> May 31 -> Jun 30
            [
                utc(2027, 2, 28),
                utc(2027, 3, 31),
                utc(2027, 4, 30),
                utc(2027, 5, 31),
                utc(2027, 6, 30),
            ],
            [
                ("2027-01-31", "2027-02-28"),
                ("2027-02-28", "2027-03-31"),
                ("2027-03-31", "2027-04-30"),
                ("2027-04-30", "2027-05-31"),
                ("2027-05-31", "2027-06-30"),
                ("2027-06-30", "2027-07-31"),
            ],
            id="utc-2027-monthly-31st",
        ),
        pytest.param(
            AMS,
            utc(2028, 1, 31, 8),  # 09:00 local
            "month",
            # local midnights: Feb 29 (leap) CET 23:00Z; Mar 31 onwards CEST 22:00Z
            [
                utc(2028, 2, 28, 23),
                utc(2028, 3, 30, 22),
                utc(2028, 4, 29, 22),
                utc(2028, 5, 30, 22),
                utc(2028, 6, 29, 22),
            ],
            [
                ("2028-01-31", "2028-02-29"),
                ("2028-02-29", "2028-03-31"),
                ("2028-03-31", "2028-04-30"),
                ("2028-04-30", "2028-05-31"),
                ("2028-05-31", "2028-06-30"),
                ("2028-06-30", "2028-07-31"),
            ],
            id="amsterdam-2028-monthly-31st",
        ),
        pytest.param(
            AMS,
            utc(2027, 8, 31, 10),
            "quarter",
            # Aug 31 -> Nov 30 (CET, 23:00Z) -> Feb 29 2028 (CET) -> May 31 (CEST, 22:00Z)
            [utc(2027, 11, 29, 23), utc(2028, 2, 28, 23), utc(2028, 5, 30, 22)],
            [
                ("2027-08-31", "2027-11-30"),
                ("2027-11-30", "2028-02-29"),
                ("2028-02-29", "2028-05-31"),
                ("2028-05-31", "2028-08-31"),
            ],
            id="amsterdam-quarterly-31st",
        ),
    ],
)
def test_renewals_land_on_the_anchor_day_or_the_last_day_of_a_shorter_month(
    tz: str,
    opened_at: datetime,
    billing: BillingPeriod,
    renewals: list[datetime],
    periods: list[tuple[str, str]],
) -> None:
    account = open_account(tz=tz, opened_at=opened_at, period=billing)
    counter = Counter(default=100)
    docs = close(account, renewals[-1] + GRACE, counter)
    assert [d.period for d in docs] == [period(a, b) for a, b in periods]
    assert counter.asked[: len(renewals) + 1] == [opened_at, *renewals]
    assert [d.number for d in docs] == [f"PF-acc-7-{n:04d}" for n in range(1, len(docs) + 1)]


def test_an_email_belongs_to_the_allowance_month_of_its_local_time() -> None:
    # Anchor Jan 31 2028 Amsterdam; month 0 ends at local midnight Feb 29 = Feb 28 23:00Z.
    opened = utc(2028, 1, 31, 8)
    feb_29 = utc(2028, 2, 28, 23)
    account = open_account(tz=AMS, opened_at=opened)
    counter = Counter({opened: 10, feb_29: 10})
    account.record_emails(
        emails(45, feb_29 - timedelta(seconds=1))  # 23:59:59 local Feb 28: month 0
        + emails(7, feb_29)  # 00:00 local Feb 29: month 1
    )
    docs = close(account, feb_29 + GRACE, counter)
    assert [d.number for d in docs] == ["PF-acc-7-0001", "PF-acc-7-0002"]
    renewal = docs[1]
    assert renewal.period == period("2028-02-29", "2028-03-31")
    # 10 contacts: tier 1 19.00; month 0 allowance 4 x 10 = 40 of 45 sent;
    # 5 x 0.0010 = 0.005 -> 0.01 (half up)
    assert lines(renewal) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("included", 40, D("0"), D("0.00")),
        ("overage", 5, D("0.0010"), D("0.01")),
    ]
    assert totals(renewal) == (D("19.01"), D("0.00"), D("19.01"))
    # month 1's 7 emails wait for the end of month 1 (Mar 31 local = Mar 30 22:00Z)
    [march] = close(account, utc(2028, 3, 30, 22) + GRACE, Counter(default=10))
    assert lines(march) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("included", 7, D("0"), D("0.00")),
    ]


# ---------------------------------------------------------------- property: periods tile time

PERIODS: tuple[BillingPeriod, ...] = ("month", "quarter", "half_year", "year")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dates(min_value=date(2027, 1, 1), max_value=date(2028, 12, 31)),
    st.sampled_from(PERIODS),
    st.sampled_from(["UTC", AMS]),
    st.integers(min_value=0, max_value=9 * 60),
)
def test_a_year_of_renewals_tiles_time_and_starts_on_the_clamped_anchor_day(
    anchor: date, billing: BillingPeriod, tz: str, minutes: int
) -> None:
    # opened between 12:00Z and 21:00Z: the anchor date in UTC and in Amsterdam alike
    opened = datetime(anchor.year, anchor.month, anchor.day, 12, tzinfo=UTC) + timedelta(
        minutes=minutes
    )
    account = open_account(tz=tz, period=billing, opened_at=opened)
    # a year later, by hand: same month next year, the day clamped
    year_later = date(
        anchor.year + 1, anchor.month, min(anchor.day, days_in(anchor.year + 1, anchor.month))
    )
    as_of = datetime(year_later.year, year_later.month, year_later.day, tzinfo=UTC) + timedelta(
        days=2
    )
    docs = close(account, as_of, Counter(default=100))
    renewals = [d for d in docs if d.contacts is not None]
    step = MONTHS[billing]
    assert len(renewals) == 12 // step + 1  # the one starting a year later included
    starts = []
    for n, doc in enumerate(renewals):
        assert isinstance(doc.period, RenewalPeriod)
        offset = anchor.month - 1 + n * step
        year, month = anchor.year + offset // 12, offset % 12 + 1
        expected = date(year, month, min(anchor.day, days_in(year, month)))
        assert doc.period.start == expected
        starts.append(doc.period.start)
    assert starts[0] == anchor
    assert starts[-1] == year_later
    for before, after in pairwise(renewals):
        assert isinstance(before.period, RenewalPeriod)
        assert isinstance(after.period, RenewalPeriod)
        assert before.period.end == after.period.start  # no gap, no overlap
