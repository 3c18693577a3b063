"""The contacts-billed account (seed 002): renewals, allowance, overage, floor, proformas.

Every expected amount below is worked out by hand in a comment from the plans
in ``plans/contacts.toml``:

- contacts-basic: tiers <=500 19.00, <=1,000 29.00, <=2,500 49.00, <=10,000 99.00,
  above 99.00 + 8.00 per 1,000 started; products automation 15.00, chat 10.00,
  web-push 5.00; discounts quarter 5%, half-year 10%, year 15%; 4 emails per
  contact; overage 0.0010 per email.
- contacts-pro: tiers <=1,000 49.00, <=5,000 99.00, above 99.00 + 12.00 per
  1,000 started; products as basic plus sms 20.00; same discounts; overage 0.0008.
- PRO6 (written out below): contacts-pro with 6 emails per contact, so an
  allowance shows which plan priced it.

A renewal instant, once priced, is never counted again: a contact change
reported late counts from just after the latest renewal priced, and only a
plan change dated at or before it replaces the unpaid renewal proforma.

Europe/Amsterdam is UTC+1 in winter and UTC+2 from the last Sunday of March
(2027-03-28, 2028-03-26) to the last Sunday of October (2027-10-31): local
midnight is 23:00Z or 22:00Z the day before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_builders import numbers, utc

from commands.models import ContactChangeItem, Origin, SentEmailItem
from ledger.contacts import ContactState, NegativeBillableCount, billable_as_of
from ledger.contacts_account import (
    ContactsAccount,
    InvalidPayment,
    ProformaNotFound,
    contacts_as_of,
)
from ledger.documents import Document
from ledger.errors import AccountClosed
from ledger.plans import Catalogue, ContactsPlan
from ledger.renewal import BillingPeriod, RenewalPeriod

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = Catalogue.load(ROOT / "plans")
BASIC = CATALOGUE.contacts_plan("contacts-basic")
PRO = CATALOGUE.contacts_plan("contacts-pro")
#: Pro with 6 emails per contact, so an allowance shows which plan priced it.
PRO6 = ContactsPlan.model_validate(
    PRO.model_dump() | {"id": "contacts-pro-6", "name": "Contacts Pro 6", "emails_per_contact": 6}
)
AMS = "Europe/Amsterdam"
GRACE = timedelta(hours=6)
MICRO = timedelta(microseconds=1)
ORIGIN = Origin("test", "event-1")
ACCOUNT = "acc-7"

# Month lengths written out by hand (not from the calendar module).
COMMON = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
LEAP = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
MONTH_DAYS = {2027: COMMON, 2028: LEAP, 2029: COMMON, 2030: COMMON}
MONTHS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


# ---------------------------------------------------------------- builders


def open_account(
    *,
    plan: Any = BASIC,
    products: tuple[str, ...] = (),
    period: BillingPeriod = "month",
    tz: str = "UTC",
    tax_rate: str = "0",
    opened_at: datetime | None = None,
) -> ContactsAccount:
    return ContactsAccount.open(
        account_id=ACCOUNT,
        plan=plan,
        products=products,
        billing_period=period,
        currency="EUR",
        timezone=tz,
        tax_rate=Decimal(tax_rate),
        opened_at=opened_at or utc(2027, 1, 15, 10),
    )


@dataclass
class Counter:
    """``count_contacts`` stand-in: billable contacts per instant, and what was asked.

    An instant that is not in ``counts`` fails the test unless ``default`` is set,
    so an unexpected question is caught too.
    """

    counts: dict[datetime, int] = field(default_factory=dict)
    default: int | None = None
    asked: list[datetime] = field(default_factory=list)

    def __call__(self, at: datetime) -> int:
        self.asked.append(at)
        if at in self.counts:
            return self.counts[at]
        if self.default is None:
            raise AssertionError(f"count_contacts asked for an unexpected instant {at}")
        return self.default


def emails(
    count: int, at: datetime, route: Literal["platform", "custom_smtp"] = "platform"
) -> list[SentEmailItem]:
    return [SentEmailItem(at, route, ORIGIN)] * count


def change(state: ContactState, at: datetime) -> ContactChangeItem:
    return ContactChangeItem(state, at, ORIGIN)


def lines(doc: Document) -> list[tuple[str, int, Decimal | None, Decimal]]:
    return [(line.kind, line.quantity, line.unit_price, line.amount.amount) for line in doc.lines]


def totals(doc: Document) -> tuple[Decimal, Decimal, Decimal]:
    return doc.subtotal.amount, doc.tax.amount, doc.total.amount


def period(start: str, end: str) -> RenewalPeriod:
    return RenewalPeriod(date.fromisoformat(start), date.fromisoformat(end))


def close(account: ContactsAccount, as_of: datetime, counter: Counter) -> list[Document]:
    """``close_periods`` with every document and the aggregate checked afterwards."""
    documents = account.close_periods(as_of, GRACE, counter)
    for document in documents:
        document.check_invariants()
        assert document.kind == "proforma"
        assert document.account_id == ACCOUNT
        assert document.currency == "EUR"
        assert document.due_on == document.issued_on  # payable on receipt
        assert document.accrued.amount == 0
    account.check_invariants()
    return documents


def state(account: ContactsAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "version": account.version,
        "account_id": account.account_id,
        "subscription": account.subscription,
        "pending": account.pending,
        "pending_at": account.pending_at,
        "counted_through": account.counted_through,
        "replaced": account.replaced,
        "currency": account.currency,
        "timezone": account.timezone,
        "tax_rate": account.tax_rate,
        "opened_at": account.opened_at,
        "anchor": account.anchor,
        "billable": account.billable,
        "months": account.months,
        "documented_months": account.documented_months,
        "late_months": account.late_months,
        "proforma_count": account.proforma_count,
        "open_proformas": account.open_proformas,
        "invoices": account.invoices,
        "closed_at": account.closed_at,
    }


def replayed(events: Sequence[Any]) -> ContactsAccount:
    copy: Any = None
    for event in events:
        copy = event.mutate(copy)
    assert isinstance(copy, ContactsAccount)
    return copy


def assert_replays(account: ContactsAccount) -> list[Any]:
    """Every pending event replayed into a fresh aggregate gives the same state."""
    events = list(account.collect_events())
    copy = replayed(events)
    copy.check_invariants()
    assert state(copy) == state(account)
    return events


def late_months(account: ContactsAccount) -> tuple[int, ...]:
    return account.late_months


def days_in(year: int, month: int) -> int:
    return MONTH_DAYS[year][month - 1]


# ---------------------------------------------------------------- 1. opening and first close

# Opened 2027-03-10 10:30 local (09:30Z, CET); renewals on the 10th at local midnight.
AMS_OPENED = utc(2027, 3, 10, 9, 30)
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


# ---------------------------------------------------------------- 3. tiers, products, discounts


@pytest.mark.parametrize(
    ("billing", "end", "expected", "totals_"),
    [
        # 600 contacts: tier 2 29.00 + automation 15.00 = 44.00 a month
        (
            "month",
            "2027-02-28",
            [("subscription", 1, D("29.00"), D("29.00")), ("product", 1, D("15.00"), D("15.00"))],
            # 44.00 x 21% = 9.24
            (D("44.00"), D("9.24"), D("53.24")),
        ),
        (
            "quarter",
            "2027-04-30",
            # 3 x 29.00 + 3 x 15.00 = 132.00; 5% = 6.60 -> 125.40
            [
                ("subscription", 3, D("29.00"), D("87.00")),
                ("product", 3, D("15.00"), D("45.00")),
                ("period_discount", 1, None, D("-6.60")),
            ],
            # 125.40 x 21% = 26.334 -> 26.33
            (D("125.40"), D("26.33"), D("151.73")),
        ),
        (
            "half_year",
            "2027-07-31",
            # 6 x 29.00 + 6 x 15.00 = 264.00; 10% = 26.40 -> 237.60
            [
                ("subscription", 6, D("29.00"), D("174.00")),
                ("product", 6, D("15.00"), D("90.00")),
                ("period_discount", 1, None, D("-26.40")),
            ],
            # 237.60 x 21% = 49.896 -> 49.90
            (D("237.60"), D("49.90"), D("287.50")),
        ),
        (
            "year",
            "2028-01-31",
            # 12 x 29.00 + 12 x 15.00 = 528.00; 15% = 79.20 -> 448.80
            [
                ("subscription", 12, D("29.00"), D("348.00")),
                ("product", 12, D("15.00"), D("180.00")),
                ("period_discount", 1, None, D("-79.20")),
            ],
            # 448.80 x 21% = 94.248 -> 94.25
            (D("448.80"), D("94.25"), D("543.05")),
        ),
    ],
)
def test_a_period_is_tier_plus_products_times_months_less_the_period_discount(
    billing: BillingPeriod,
    end: str,
    expected: list[tuple[str, int, Decimal | None, Decimal]],
    totals_: tuple[Decimal, Decimal, Decimal],
) -> None:
    opened = utc(2027, 1, 31, 10)
    account = open_account(
        products=("automation",), period=billing, tax_rate="0.21", opened_at=opened
    )
    [first] = close(account, opened + GRACE, Counter({opened: 600}))
    assert first.period == period("2027-01-31", end)
    assert first.contacts == 600
    assert lines(first) == expected
    assert totals(first) == totals_


@pytest.mark.parametrize(
    ("contacts", "tier", "monthly"),
    [
        (0, 1, D("19.00")),  # zero contacts pay the first band
        (500, 1, D("19.00")),  # up_to is inclusive
        (501, 2, D("29.00")),
        (1000, 2, D("29.00")),
        (1001, 3, D("49.00")),
        (2501, 4, D("99.00")),
        (10000, 4, D("99.00")),
        (10001, 5, D("107.00")),  # 1 contact above 10,000 starts a block: 99 + 8
        (11000, 5, D("107.00")),
        (11001, 5, D("115.00")),  # two blocks started: 99 + 16
    ],
)
def test_the_contacts_tier_is_chosen_by_the_count_at_the_renewal(
    contacts: int, tier: int, monthly: Decimal
) -> None:
    account = open_account()
    [first] = close(account, utc(2027, 1, 16), Counter({utc(2027, 1, 15, 10): contacts}))
    assert lines(first) == [("subscription", 1, monthly, monthly)]
    assert f"{contacts:,} billable contacts (tier {tier})" in first.lines[0].description


def test_open_ended_pro_tier_with_products_in_the_order_chosen_on_a_yearly_period() -> None:
    account = open_account(plan=PRO, products=("sms", "chat"), period="year")
    [first] = close(account, utc(2027, 1, 16), Counter({utc(2027, 1, 15, 10): 12345}))
    # 12,345 contacts: 7,345 above 5,000 -> 8 blocks started: 99.00 + 8 x 12.00 = 195.00
    # 12 x 195.00 = 2,340.00; sms 12 x 20.00 = 240.00; chat 12 x 10.00 = 120.00
    # gross 2,700.00; 15% = 405.00
    assert lines(first) == [
        ("subscription", 12, D("195.00"), D("2340.00")),
        ("product", 12, D("20.00"), D("240.00")),
        ("product", 12, D("10.00"), D("120.00")),
        ("period_discount", 1, None, D("-405.00")),
    ]
    assert totals(first) == (D("2295.00"), D("0.00"), D("2295.00"))
    assert first.period == period("2027-01-15", "2028-01-15")
    assert "(tier 3)" in first.lines[0].description


# ---------------------------------------------------------------- 4. minimum price

FEB_15 = utc(2027, 2, 15)
MAR_15 = utc(2027, 3, 15)
APR_15 = utc(2027, 4, 15)
MAY_15 = utc(2027, 5, 15)
OPENED = utc(2027, 1, 15, 10)


def test_the_first_period_sets_the_floor_and_cheaper_renewals_are_lifted_to_it() -> None:
    account = open_account(products=("automation",))
    # opening 1,200 -> 49.00 + 15.00 = 64.00: the floor
    counter = Counter({OPENED: 1200, FEB_15: 400, MAR_15: 3000, APR_15: 600})
    docs = close(account, APR_15 + GRACE, counter)
    assert [lines(d) for d in docs] == [
        [("subscription", 1, D("49.00"), D("49.00")), ("product", 1, D("15.00"), D("15.00"))],
        # 400: 19.00 + 15.00 = 34.00 -> lifted by 30.00 to 64.00
        [
            ("subscription", 1, D("19.00"), D("19.00")),
            ("product", 1, D("15.00"), D("15.00")),
            ("minimum_price", 1, None, D("30.00")),
        ],
        # 3,000: tier 4 99.00 + 15.00 = 114.00, above the floor: no line
        [("subscription", 1, D("99.00"), D("99.00")), ("product", 1, D("15.00"), D("15.00"))],
        # 600: 29.00 + 15.00 = 44.00 -> lifted by 20.00; the floor stays the FIRST amount
        [
            ("subscription", 1, D("29.00"), D("29.00")),
            ("product", 1, D("15.00"), D("15.00")),
            ("minimum_price", 1, None, D("20.00")),
        ],
    ]
    assert [d.subtotal.amount for d in docs] == [D("64.00"), D("64.00"), D("114.00"), D("64.00")]
    assert account.subscription.floor == D("64.00")


def test_overage_never_fills_the_floor() -> None:
    account = open_account(products=("automation",))
    counter = Counter({OPENED: 1200, FEB_15: 400})
    close(account, OPENED + GRACE, counter)
    # month 0 allowance 4 x 1,200 = 4,800; 14,800 sent -> 10,000 over x 0.0010 = 10.00
    account.record_emails(emails(14800, utc(2027, 2, 1)))
    [renewal] = close(account, FEB_15 + GRACE, counter)
    # the floor gap is 64.00 - 34.00 = 30.00 whatever the overage
    assert lines(renewal) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("product", 1, D("15.00"), D("15.00")),
        ("minimum_price", 1, None, D("30.00")),
        ("included", 4800, D("0"), D("0.00")),
        ("overage", 10000, D("0.0010"), D("10.00")),
    ]
    assert totals(renewal) == (D("74.00"), D("0.00"), D("74.00"))


def test_the_floor_of_a_discounted_period_is_its_discounted_amount() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 1200, APR_15: 100})
    docs = close(account, APR_15 + GRACE, counter)
    # first quarter: 3 x 49.00 = 147.00 less 5% (7.35) = 139.65: the floor
    # second: 3 x 19.00 = 57.00 less 2.85 = 54.15 -> lifted by 85.50
    assert lines(docs[1]) == [
        ("subscription", 3, D("19.00"), D("57.00")),
        ("period_discount", 1, None, D("-2.85")),
        ("minimum_price", 1, None, D("85.50")),
    ]
    assert [d.subtotal.amount for d in docs] == [D("139.65"), D("139.65")]


# ---------------------------------------------------------------- 5. allowance and overage


def test_emails_before_the_opening_count_in_month_0_and_custom_smtp_never_counts() -> None:
    account = open_account()
    account.record_emails(
        emails(300, utc(2027, 1, 10))  # before the opening (Jan 15 10:00)
        + emails(150, utc(2027, 1, 20))
        + emails(99, utc(2027, 1, 20), "custom_smtp")
    )
    docs = close(account, FEB_15 + GRACE, Counter({OPENED: 100, FEB_15: 100}))
    # 100 contacts: allowance 400 of 450 platform emails; 50 x 0.0010 = 0.05
    assert lines(docs[1]) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 50, D("0.0010"), D("0.05")),
        ("custom_smtp", 99, D("0"), D("0.00")),
    ]
    assert totals(docs[1]) == (D("19.05"), D("0.00"), D("19.05"))


def test_only_custom_smtp_emails_are_never_overage_even_far_beyond_the_allowance() -> None:
    account = open_account()
    account.record_emails(emails(100000, utc(2027, 1, 20), "custom_smtp"))
    docs = close(account, FEB_15 + GRACE, Counter(default=10))
    assert lines(docs[1]) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("custom_smtp", 100000, D("0"), D("0.00")),
    ]


def test_quarterly_allowance_is_monthly_and_overage_is_billed_at_each_month_end() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 250})
    account.record_emails(
        emails(1000, utc(2027, 1, 20))  # month 0: 4 x 100 = 400 allowed, 600 over
        + emails(400, utc(2027, 2, 20))  # month 1: exactly the allowance
        + emails(500, utc(2027, 3, 20))  # month 2: 100 over, rides on the renewal
        + emails(1100, utc(2027, 4, 20))  # month 3: 4 x 250 = 1,000 allowed, 100 over
    )
    docs = close(account, MAY_15 + GRACE, counter)
    assert [(d.number, d.period, d.contacts) for d in docs] == [
        ("PF-acc-7-0001", period("2027-01-15", "2027-04-15"), 100),
        ("PF-acc-7-0002", period("2027-01-15", "2027-02-15"), None),
        ("PF-acc-7-0003", period("2027-04-15", "2027-07-15"), 250),
        ("PF-acc-7-0004", period("2027-04-15", "2027-05-15"), None),
    ]
    assert [lines(d) for d in docs] == [
        # 3 x 19.00 = 57.00 less 5% = 2.85
        [("subscription", 3, D("19.00"), D("57.00")), ("period_discount", 1, None, D("-2.85"))],
        # 600 x 0.0010 = 0.60
        [("included", 400, D("0"), D("0.00")), ("overage", 600, D("0.0010"), D("0.60"))],
        # 250 contacts still tier 1; month 2's 100 x 0.0010 = 0.10 on the renewal
        [
            ("subscription", 3, D("19.00"), D("57.00")),
            ("period_discount", 1, None, D("-2.85")),
            ("included", 400, D("0"), D("0.00")),
            ("overage", 100, D("0.0010"), D("0.10")),
        ],
        # month 3 priced from the Apr 15 count: 1,000 allowed, 100 over = 0.10
        [("included", 1000, D("0"), D("0.00")), ("overage", 100, D("0.0010"), D("0.10"))],
    ]
    assert [d.subtotal.amount for d in docs] == [D("54.15"), D("0.60"), D("54.25"), D("0.10")]
    # only renewals are counted: never Feb 15, Mar 15 or May 15
    assert set(counter.asked) == {OPENED, APR_15}
    assert_replays(account)


def test_yearly_allowance_is_four_per_contact_every_month_at_the_plans_unit_price() -> None:
    account = open_account(plan=PRO, period="year")
    # 2,000 contacts: allowance 8,000 a month; month 5 (Jun 15 - Jul 15) sends 9,000
    account.record_emails(emails(9000, utc(2027, 6, 20)))
    docs = close(account, utc(2027, 7, 15) + GRACE, Counter({OPENED: 2000}))
    assert [d.number for d in docs] == ["PF-acc-7-0001", "PF-acc-7-0002"]
    overage = docs[1]
    assert overage.period == period("2027-06-15", "2027-07-15")
    # 1,000 x 0.0008 = 0.80
    assert lines(overage) == [
        ("included", 8000, D("0"), D("0.00")),
        ("overage", 1000, D("0.0008"), D("0.80")),
    ]
    assert overage.contacts is None


# ---------------------------------------------------------------- 6. late emails


def test_late_emails_are_billed_once_on_the_next_document_for_what_exceeds_the_allowance() -> None:
    account = open_account()
    counter = Counter(default=100)  # allowance 400 every month
    account.record_emails(emails(450, utc(2027, 1, 20)))
    docs = close(account, FEB_15 + GRACE, counter)
    assert lines(docs[1])[-1] == ("overage", 50, D("0.0010"), D("0.05"))
    # month 0 is documented: 30 more for it are late; month 1 sends 100 (within 400)
    account.record_emails(emails(30, utc(2027, 2, 1)) + emails(100, utc(2027, 2, 20)))
    assert late_months(account) == (0,)
    assert close(account, FEB_15 + GRACE + timedelta(days=1), counter) == []  # no boundary yet
    [march] = close(account, MAR_15 + GRACE, counter)
    # 480 sent of 400 allowed: 80 over, 50 already billed -> 30 x 0.0010 = 0.03
    assert lines(march) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("late_overage", 30, D("0.0010"), D("0.03")),
        ("included", 100, D("0"), D("0.00")),
    ]
    assert late_months(account) == ()
    # nothing new late: the next document carries no late line (never twice)
    [april] = close(account, APR_15 + GRACE, counter)
    assert lines(april) == [("subscription", 1, D("19.00"), D("19.00"))]
    # month 1 late but still within its allowance (100 + 250 <= 400): no line;
    # month 0 late again: 20 more, all beyond -> 0.02
    account.record_emails(emails(250, utc(2027, 3, 1)) + emails(20, utc(2027, 2, 2)))
    assert late_months(account) == (0, 1)
    [may] = close(account, MAY_15 + GRACE, counter)
    assert lines(may) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("late_overage", 20, D("0.0010"), D("0.02")),
    ]
    assert account.months["0"].billed == 100  # 50 + 30 + 20, each once
    assert_replays(account)


def test_late_emails_of_a_quarterly_month_get_an_overage_only_proforma_at_the_next_month_end() -> (
    None
):
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100})
    close(account, FEB_15 + GRACE, counter)
    # 500 late for month 0 (400 allowed): 100 x 0.0010 = 0.10 at the end of month 1
    account.record_emails(emails(500, utc(2027, 2, 1)))
    [late] = close(account, MAR_15 + GRACE, counter)
    assert late.period == period("2027-02-15", "2027-03-15")
    assert lines(late) == [("late_overage", 100, D("0.0010"), D("0.10"))]


# ---------------------------------------------------------------- 7. contact changes


def test_stale_and_repeated_versions_are_ignored_and_known_versions_respected() -> None:
    account = open_account()
    t = utc(2027, 1, 15, 11)
    version, applied = account.record_contact_changes(
        [
            change(ContactState("c1", 2, email="a@example.com"), t),
            change(ContactState("c1", 1, phone="+31"), t),  # older than v2 in this batch
            change(ContactState("c1", 2, phone="+31"), t),  # same version: first one wins
            change(ContactState("c2", 1, email=" "), t),  # blank: not billable
            change(ContactState("c3", 5, web_push=True), t),
            change(ContactState("c4", 3, chat_replied=True), t),  # stored v3: a repeat
        ],
        {"c3": (4, False), "c4": (3, True)},
    )
    assert version == 2  # Opened is 1, the batch's one event is 2
    assert [(c.contact_id, c.version, c.reasons, c.deleted) for c in applied] == [
        ("c1", 2, ("email",), False),
        ("c2", 1, (), False),
        ("c3", 5, ("web_push",), False),
    ]
    # c1 and c3 became billable; c2 is not; c4 unchanged
    assert account.billable == 2
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "ContactsChanged"]


def test_a_batch_that_applies_nothing_records_nothing() -> None:
    account = open_account()
    account.collect_events()
    version, applied = account.record_contact_changes(
        [change(ContactState("c1", 2, email="a@x"), utc(2027, 1, 16))], {"c1": (2, True)}
    )
    assert (version, applied) == (1, ())
    assert account.collect_events() == []
    assert account.billable == 0


def test_a_tombstone_removes_a_contact_and_only_a_higher_version_brings_it_back() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    account.record_contact_changes(
        [
            change(ContactState("c1", 1, email="a@x"), t),
            change(ContactState("c2", 1, user_id="u"), t),
        ],
        {},
    )
    assert account.billable == 2
    _, applied = account.record_contact_changes(
        [change(ContactState.tombstone("c1", 2), t)], {"c1": (1, True)}
    )
    assert [(c.version, c.reasons, c.deleted) for c in applied] == [(2, (), True)]
    assert account.billable == 1
    # a stale change arriving after the delete does not revive it
    _, applied = account.record_contact_changes(
        [change(ContactState("c1", 1, email="a@x"), t)], {"c1": (2, False)}
    )
    assert applied == ()
    assert account.billable == 1
    # re-creation with a higher version counts again
    _, applied = account.record_contact_changes(
        [change(ContactState("c1", 3, phone="+31"), t)], {"c1": (2, False)}
    )
    assert [(c.version, c.reasons) for c in applied] == [(3, ("phone",))]
    assert account.billable == 2


def test_a_delete_and_a_re_creation_out_of_order_in_one_batch() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    account.record_contact_changes([change(ContactState("c1", 2, email="a@x"), t)], {})
    # v4 (re-created) arrives before v3 (the delete): v3 is stale and ignored
    _, applied = account.record_contact_changes(
        [
            change(ContactState("c1", 4, user_id="u"), t),
            change(ContactState.tombstone("c1", 3), t),
        ],
        {"c1": (2, True)},
    )
    assert [(c.version, c.deleted) for c in applied] == [(4, False)]
    assert account.billable == 1
    # a contact that loses every identifier stops counting without a delete
    account.record_contact_changes([change(ContactState("c1", 5, email=""), t)], {"c1": (4, True)})
    assert account.billable == 0


def test_a_batch_that_would_drive_the_count_negative_raises_and_changes_nothing() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    account.record_contact_changes([change(ContactState("c1", 1, email="a@x"), t)], {})
    account.collect_events()
    before = state(account)
    # the stored copy claims two billable contacts the running count (1) never had
    with pytest.raises(NegativeBillableCount):
        account.record_contact_changes(
            [
                change(ContactState.tombstone("c1", 2), t),
                change(ContactState.tombstone("c9", 2), t),
            ],
            {"c1": (1, True), "c9": (1, True)},
        )
    assert state(account) == before
    assert account.collect_events() == []
    account.check_invariants()


# ---------------------------------------------------------------- 8. contacts as of


def test_contacts_as_of_rebuilds_the_billable_listing_from_the_history() -> None:
    account = open_account()

    def at(hour: int) -> datetime:
        return utc(2027, 1, 16, hour)

    account.record_contact_changes(
        [
            change(ContactState("c1", 1, email="a@x"), at(9)),
            change(ContactState("c2", 1, phone="+31"), at(10)),
        ],
        {},
    )
    account.record_contact_changes(
        [
            change(ContactState.tombstone("c2", 2), at(12)),
            # c3's v2 happened at 11:00 but its v1 is timed later, at 13:00
            change(ContactState("c3", 2, user_id="u"), at(11)),
            change(ContactState("c1", 2, web_push=True, email=" "), at(14)),
        ],
        {"c1": (1, True), "c2": (1, True)},
    )
    account.record_contact_changes(
        [change(ContactState("c3", 1, chat_replied=True), at(13))],
        {},  # unknown to the store
    )
    events = account.collect_events()

    def listing(hour: int) -> dict[str, tuple[int, tuple[str, ...]]]:
        return {cid: (c.version, c.reasons) for cid, c in contacts_as_of(events, at(hour)).items()}

    assert listing(8) == {}
    assert listing(9) == {"c1": (1, ("email",))}
    assert listing(10) == {"c1": (1, ("email",)), "c2": (1, ("phone",))}
    assert listing(11) == {
        "c1": (1, ("email",)),
        "c2": (1, ("phone",)),
        "c3": (2, ("user_id",)),
    }
    # c2 deleted at 12:00
    assert listing(12) == {"c1": (1, ("email",)), "c3": (2, ("user_id",))}
    # c3's v1 (13:00) is visible now, but v2 is the higher version: still user_id
    assert listing(13) == {"c1": (1, ("email",)), "c3": (2, ("user_id",))}
    assert listing(14) == {"c1": (2, ("web_push",)), "c3": (2, ("user_id",))}
    # the same through ledger.contacts directly, from every recorded change
    changes = [
        c
        for e in events
        if isinstance(e, ContactsAccount.ContactsChanged)
        for c in e.changes  # type: ignore[attr-defined]
    ]
    assert list(billable_as_of(changes, at(14))) == ["c1", "c3"]
    assert list(billable_as_of(changes, at(12) - MICRO)) == ["c1", "c2", "c3"]
    # the replay holds too
    assert state(replayed(events)) == state(account)


def contact_changes(events: Sequence[Any]) -> list[Any]:
    """Every change the ``ContactsChanged`` events recorded, in order."""
    return [
        c
        for e in events
        if isinstance(e, ContactsAccount.ContactsChanged)
        for c in e.changes  # type: ignore[attr-defined]
    ]


def test_a_contact_change_after_the_latest_priced_renewal_counts_from_its_event_time() -> None:
    account = open_account()
    counter = Counter({OPENED: 1})
    # nothing priced yet: even a change dated before the opening counts from its time
    before = utc(2027, 1, 14)
    _, applied = account.record_contact_changes(
        [change(ContactState("c0", 1, email="a@x"), before)], {}
    )
    assert [(c.counted_from, c.counts_from) for c in applied] == [(None, before)]
    close(account, OPENED + GRACE, counter)
    assert account.counted_through == OPENED
    # one microsecond after the opening instant priced: not late
    _, applied = account.record_contact_changes(
        [change(ContactState("c1", 1, phone="+31"), OPENED + MICRO)], {}
    )
    assert [(c.counted_from, c.counts_from) for c in applied] == [(None, OPENED + MICRO)]
    events = account.collect_events()
    assert [c.counted_from for c in contact_changes(events)] == [None, None]
    assert list(contacts_as_of(events, OPENED)) == ["c0"]
    assert list(contacts_as_of(events, OPENED + MICRO)) == ["c0", "c1"]


def test_a_contact_change_at_or_before_the_latest_priced_renewal_counts_from_just_after_it() -> (
    None
):
    account = open_account()
    counter = Counter({OPENED: 0, FEB_15: 3})  # the stand-in: whatever it is given
    close(account, OPENED + GRACE, counter)
    assert account.counted_through == OPENED
    _, applied = account.record_contact_changes(
        [
            change(ContactState("c1", 1, email="a@x"), OPENED - timedelta(hours=1)),
            change(ContactState("c2", 1, phone="+31"), OPENED),  # at the instant: late too
            change(ContactState("c3", 1, user_id="u"), OPENED + MICRO),  # after: on time
        ],
        {},
    )
    # the opening (10:00:00) is priced: the first two count from 10:00:00.000001
    assert [(c.contact_id, c.counted_from, c.counts_from) for c in applied] == [
        ("c1", OPENED + MICRO, OPENED + MICRO),
        ("c2", OPENED + MICRO, OPENED + MICRO),
        ("c3", None, OPENED + MICRO),
    ]
    close(account, FEB_15 + GRACE, counter)
    assert account.counted_through == FEB_15
    # reported after the Feb 15 renewal was priced: dated Jan 20 and Feb 1, they count
    # from Feb 15 00:00:00.000001; one dated Feb 16 counts from its own time
    _, applied = account.record_contact_changes(
        [
            change(ContactState("c4", 1, web_push=True), utc(2027, 1, 20)),
            change(ContactState.tombstone("c1", 2), utc(2027, 2, 1)),
            change(ContactState("c5", 1, chat_replied=True), utc(2027, 2, 16)),
        ],
        {"c1": (1, True)},
    )
    assert [(c.contact_id, c.counted_from) for c in applied] == [
        ("c4", FEB_15 + MICRO),
        ("c1", FEB_15 + MICRO),
        ("c5", None),
    ]
    # c1, c2, c3 then c4 and c5 in, c1 out
    assert account.billable == 4
    events = account.collect_events()
    # what the events hold (what an auditor replays and the store copies)
    assert [(c.contact_id, c.version, c.counted_from) for c in contact_changes(events)] == [
        ("c1", 1, OPENED + MICRO),
        ("c2", 1, OPENED + MICRO),
        ("c3", 1, None),
        ("c4", 1, FEB_15 + MICRO),
        ("c1", 2, FEB_15 + MICRO),
        ("c5", 1, None),
    ]

    def listing(at: datetime) -> list[str]:
        return list(contacts_as_of(events, at))

    # the count rebuilt for each priced instant is the one it was priced with
    assert listing(OPENED) == []
    assert listing(OPENED + MICRO) == ["c1", "c2", "c3"]
    # Feb 15 was priced before c4 and the delete of c1 were known
    assert listing(FEB_15) == ["c1", "c2", "c3"]
    assert listing(FEB_15 + MICRO) == ["c2", "c3", "c4"]
    assert listing(utc(2027, 2, 16)) == ["c2", "c3", "c4", "c5"]
    assert list(billable_as_of(contact_changes(events), FEB_15)) == ["c1", "c2", "c3"]
    assert state(replayed(events)) == state(account)


# ---------------------------------------------------------------- 9. plan change


def test_a_plan_change_starts_a_new_subscription_at_the_next_renewal() -> None:
    account = open_account(tax_rate="0.21")
    counter = Counter({OPENED: 1200, FEB_15: 1200, MAY_15: 800})
    [first] = close(account, OPENED + GRACE, counter)
    account.change_plan(PRO, ("sms",), "quarter", utc(2027, 1, 20))
    assert account.pending is not None
    assert account.subscription.number == 1
    # month 1 under Pro: 4 x 1,200 = 4,800 allowed; 5,800 sent -> 1,000 x 0.0008 = 0.80
    account.record_emails(emails(5800, utc(2027, 2, 20)))
    docs = close(account, MAY_15 + GRACE, counter)
    # the period already priced stands: no replacement of PF-0001
    assert [d.number for d in docs] == ["PF-acc-7-0002", "PF-acc-7-0003", "PF-acc-7-0004"]
    assert account.open_proformas["PF-acc-7-0001"].document == first
    new, overage, second = docs
    assert new.period == period("2027-02-15", "2027-05-15")
    # Pro 1,200: tier 2 99.00; 3 x 99.00 = 297.00; sms 3 x 20.00 = 60.00;
    # 357.00 less 5% = 17.85 -> 339.15; tax 21% = 71.2215 -> 71.22
    assert lines(new) == [
        ("subscription", 3, D("99.00"), D("297.00")),
        ("product", 3, D("20.00"), D("60.00")),
        ("period_discount", 1, None, D("-17.85")),
    ]
    assert totals(new) == (D("339.15"), D("71.22"), D("410.37"))
    assert overage.period == period("2027-02-15", "2027-03-15")
    assert lines(overage) == [
        ("included", 4800, D("0"), D("0.00")),
        ("overage", 1000, D("0.0008"), D("0.80")),
    ]
    # the new floor is 339.15 (not basic's 49.00): Pro 800 = tier 1 49.00;
    # 147.00 + 60.00 = 207.00 less 10.35 = 196.65 -> lifted by 142.50
    assert second.period == period("2027-05-15", "2027-08-15")
    assert lines(second) == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("product", 3, D("20.00"), D("60.00")),
        ("period_discount", 1, None, D("-10.35")),
        ("minimum_price", 1, None, D("142.50")),
    ]
    assert account.subscription.number == 2
    assert account.subscription.floor == D("339.15")
    assert account.pending is None
    # quarterly now: Mar 15 and Apr 15 were not renewals
    assert set(counter.asked) == {OPENED, FEB_15, MAY_15}
    assert_replays(account)


def test_a_plan_change_during_the_opening_grace_waits_for_the_first_renewal() -> None:
    account = open_account()
    account.change_plan(PRO, None, None, OPENED + timedelta(hours=1))
    docs = close(account, FEB_15 + GRACE, Counter(default=600))
    # period 0 on basic (600: 29.00), period 1 on pro (600: tier 1 49.00), products kept ()
    assert [lines(d) for d in docs] == [
        [("subscription", 1, D("29.00"), D("29.00"))],
        [("subscription", 1, D("49.00"), D("49.00"))],
    ]
    assert account.subscription.plan == PRO
    assert account.subscription.number == 2


def test_asking_for_the_current_terms_cancels_a_scheduled_change() -> None:
    account = open_account()
    close(account, OPENED + GRACE, Counter(default=600))
    account.change_plan(BASIC, ("chat",), None, utc(2027, 1, 20))
    assert account.pending is not None
    account.change_plan(BASIC, (), "month", utc(2027, 1, 21))
    assert account.pending is None
    events = [type(e).__name__ for e in account.collect_events()]
    assert events.count("PlanChangeScheduled") == 2
    [renewal] = close(account, FEB_15 + GRACE, Counter(default=600))
    assert lines(renewal) == [("subscription", 1, D("29.00"), D("29.00"))]
    assert account.subscription.number == 1


def test_the_same_terms_or_the_already_scheduled_terms_record_no_event() -> None:
    account = open_account(products=("chat",))
    account.collect_events()
    version = account.version
    assert account.change_plan(BASIC, ("chat",), "month", utc(2027, 1, 20)) == version
    assert account.change_plan(BASIC, None, None, utc(2027, 1, 20)) == version
    assert account.collect_events() == []
    account.change_plan(BASIC, None, "year", utc(2027, 1, 21))
    version = account.version
    assert account.change_plan(BASIC, ("chat",), "year", utc(2027, 1, 22)) == version
    assert len(account.collect_events()) == 1


def test_the_same_products_in_another_order_are_no_plan_change() -> None:
    account = open_account(products=("chat", "automation"))
    account.collect_events()
    version = account.version
    # products are a set: reordered, they are the terms in force
    assert account.change_plan(BASIC, ("automation", "chat"), "month", utc(2027, 1, 20)) == version
    assert account.pending is None
    assert account.collect_events() == []
    # a change is scheduled; asking for it again in another order records nothing
    account.change_plan(PRO, ("sms", "chat"), None, utc(2027, 1, 21))
    version = account.version
    assert account.change_plan(PRO, ("chat", "sms"), "month", utc(2027, 1, 22)) == version
    assert len(account.collect_events()) == 1
    # and the terms in force reordered cancel it
    account.change_plan(BASIC, ("automation", "chat"), None, utc(2027, 1, 23))
    assert account.pending is None
    assert account.pending_at is None
    assert [type(e).__name__ for e in account.collect_events()] == ["PlanChangeScheduled"]


def test_late_emails_of_a_month_before_a_plan_change_keep_that_months_price() -> None:
    account = open_account()
    counter = Counter(default=100)  # allowance 400 a month on either plan
    close(account, OPENED + GRACE, counter)
    account.change_plan(PRO, None, None, utc(2027, 1, 20))
    close(account, FEB_15 + GRACE, counter)  # month 1 on Pro from here
    # 600 late for month 0 (basic, 0.0010): 200 x 0.0010 = 0.20, not Pro's 0.0008
    account.record_emails(emails(600, utc(2027, 2, 1)))
    [march] = close(account, MAR_15 + GRACE, counter)
    # Pro 100 contacts: tier 1 49.00
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("late_overage", 200, D("0.0010"), D("0.20")),
    ]


# ---------------------------------------------------------------- 10. payment


def test_paying_a_proforma_issues_the_numbered_invoice_on_the_local_paid_date() -> None:
    opened = utc(2027, 12, 1, 10)
    account = open_account(tz=AMS, tax_rate="0.21", products=("web-push",), opened_at=opened)
    [proforma] = close(account, opened + GRACE, Counter({opened: 600}))
    years: list[int] = []
    numbering = numbers()

    def next_number(year: int) -> str:
        years.append(year)
        return numbering(year)

    # 23:30Z on Dec 31 is 00:30 on Jan 1 2028 in Amsterdam
    invoice = account.pay("PF-acc-7-0001", utc(2027, 12, 31, 23, 30), next_number)
    invoice.check_invariants()
    assert years == [2028]
    assert invoice.number == "2028-000001"
    assert invoice.kind == "invoice"
    assert invoice.issued_on == date(2028, 1, 1)
    assert invoice.due_on is None
    assert invoice.proforma == "PF-acc-7-0001"
    assert invoice.period == period("2027-12-01", "2028-01-01")
    assert invoice.contacts == 600
    # 29.00 + web-push 5.00 = 34.00; 21% = 7.14
    assert (
        lines(invoice)
        == lines(proforma)
        == [
            ("subscription", 1, D("29.00"), D("29.00")),
            ("product", 1, D("5.00"), D("5.00")),
        ]
    )
    assert totals(invoice) == (D("34.00"), D("7.14"), D("41.14"))
    assert account.invoices == ["2028-000001"]
    assert account.open_proformas == {}
    with pytest.raises(ProformaNotFound):
        account.pay("PF-acc-7-0001", utc(2028, 1, 2), next_number)
    with pytest.raises(ProformaNotFound):
        account.pay("PF-acc-7-0099", utc(2028, 1, 2), next_number)
    assert years == [2028]  # no number spent on a refused payment
    account.check_invariants()
    assert_replays(account)


def test_a_payment_dated_before_the_proformas_local_issue_date_is_refused() -> None:
    account = open_account(tz=AMS, opened_at=AMS_OPENED)
    [proforma] = close(account, AMS_OPENED + GRACE, Counter({AMS_OPENED: 600}))
    assert proforma.issued_on == date(2027, 3, 10)
    account.collect_events()
    years: list[int] = []
    numbering = numbers()

    def next_number(year: int) -> str:
        years.append(year)
        return numbering(year)

    # 22:59Z on Mar 9 is 23:59 on Mar 9 in Amsterdam (CET): the day before the issue
    with pytest.raises(InvalidPayment):
        account.pay("PF-acc-7-0001", utc(2027, 3, 9, 22, 59), next_number)
    assert years == []  # no number spent
    assert list(account.open_proformas) == ["PF-acc-7-0001"]
    assert account.collect_events() == []
    # 23:00Z on Mar 9 is 00:00 on Mar 10 local: the issue date itself is fine,
    # even before the issuing instant (15:30Z)
    invoice = account.pay("PF-acc-7-0001", utc(2027, 3, 9, 23), next_number)
    assert (invoice.number, invoice.issued_on) == ("2027-000001", date(2027, 3, 10))
    assert years == [2027]


# ---------------------------------------------------------------- 11. replacement

JUN_15 = utc(2027, 6, 15)
JUL_15 = utc(2027, 7, 15)


def event_names(events: Sequence[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_priced_renewal_is_never_counted_again_and_a_new_count_replaces_nothing() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 400})
    [first] = close(account, OPENED + GRACE, counter)
    # late contact changes: 1,200 were billable at the opening after all
    counter.counts[OPENED] = 1200
    assert close(account, utc(2027, 1, 20, 9), counter) == []
    [renewal] = close(account, FEB_15 + GRACE, counter)
    # each renewal instant asked once, when it was new
    assert counter.asked == [OPENED, FEB_15]
    assert account.open_proformas["PF-acc-7-0001"].document == first
    # 600: tier 2 29.00, still the floor and month 0's allowance (4 x 600)
    assert lines(first) == [("subscription", 1, D("29.00"), D("29.00"))]
    assert account.subscription.floor == D("29.00")
    assert account.months["0"].allowance == 2400
    # 400: 19.00, lifted by 29.00 - 19.00 = 10.00
    assert renewal.number == "PF-acc-7-0002"
    assert lines(renewal) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("minimum_price", 1, None, D("10.00")),
    ]
    assert account.replaced == {}
    assert "ProformaReplaced" not in event_names(assert_replays(account))


@pytest.mark.parametrize(
    "at",
    [
        pytest.param(utc(2027, 2, 14), id="dated-the-day-before"),
        pytest.param(FEB_15, id="dated-at-the-counting-instant"),
    ],
)
def test_a_late_plan_change_replaces_the_unpaid_renewal_it_predates(at: datetime) -> None:
    account = open_account(tax_rate="0.21")
    counter = Counter({OPENED: 600, FEB_15: 1200, MAR_15: 800})
    first, renewal = close(account, FEB_15 + GRACE, counter)
    # 1,200 on basic: tier 3 49.00
    assert (renewal.number, renewal.contacts, renewal.subtotal.amount) == (
        "PF-acc-7-0002",
        1200,
        D("49.00"),
    )
    # reported after the Feb 15 renewal was priced, dated at or before it
    account.change_plan(PRO, ("sms",), None, at)
    [replacement] = close(account, FEB_15 + timedelta(days=1), counter)
    assert replacement.number == "PF-acc-7-0003"
    assert replacement.period == period("2027-02-15", "2027-03-15")
    assert replacement.issued_on == date(2027, 2, 16)
    # the same 1,200 (never counted again), priced on Pro: tier 2 99.00 + sms 20.00;
    # a new subscription's first price: no minimum line. 119.00 x 21% = 24.99
    assert replacement.contacts == 1200
    assert lines(replacement) == [
        ("subscription", 1, D("99.00"), D("99.00")),
        ("product", 1, D("20.00"), D("20.00")),
    ]
    assert totals(replacement) == (D("119.00"), D("24.99"), D("143.99"))
    assert counter.asked == [OPENED, FEB_15]
    assert account.replaced == {"PF-acc-7-0002": "PF-acc-7-0003"}
    assert list(account.open_proformas) == ["PF-acc-7-0001", "PF-acc-7-0003"]
    assert account.open_proformas["PF-acc-7-0001"].document == first
    # the new subscription starts at that renewal (month 1), its floor this price
    sub = account.subscription
    assert (sub.number, sub.plan, sub.products, sub.period) == (2, PRO, ("sms",), "month")
    assert (sub.start_month, sub.periods_priced, sub.floor) == (1, 1, D("119.00"))
    assert account.pending is None
    # month 1 allows Pro's 4 x 1,200 = 4,800 at 0.0008; month 0 keeps basic's
    assert (account.months["1"].contacts, account.months["1"].allowance) == (1200, 4800)
    assert account.months["1"].unit_price == D("0.0008")
    assert (account.months["0"].allowance, account.months["0"].unit_price) == (2400, D("0.0010"))
    # nothing else to replace in a later run
    assert close(account, FEB_15 + timedelta(days=2), counter) == []
    # Mar 15 at 800: Pro tier 1 49.00 + sms 20.00 = 69.00, lifted by 50.00 to 119.00
    [march] = close(account, MAR_15 + GRACE, counter)
    assert march.number == "PF-acc-7-0004"
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("20.00"), D("20.00")),
        ("minimum_price", 1, None, D("50.00")),
    ]
    events = assert_replays(account)
    [replaced] = [e for e in events if type(e).__name__ == "ProformaReplaced"]
    assert replaced.replaced == "PF-acc-7-0002"
    assert replaced.proforma.document == replacement
    assert (replaced.subscription.number, replaced.subscription.floor) == (2, D("119.00"))
    assert [(m.index, m.contacts, m.allowance, m.unit_price) for m in replaced.months] == [
        (1, 1200, 4800, D("0.0008"))
    ]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("dated-after", id="dated-one-microsecond-after-the-renewal"),
        pytest.param("paid", id="dated-before-but-the-renewal-is-paid"),
    ],
)
def test_a_plan_change_that_cannot_replace_applies_at_the_next_renewal(case: str) -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 1200, MAR_15: 800})
    close(account, FEB_15 + GRACE, counter)
    if case == "paid":
        account.pay("PF-acc-7-0002", utc(2027, 2, 15, 12), numbers())
        account.change_plan(PRO, ("sms",), None, utc(2027, 2, 14))
    else:
        account.change_plan(PRO, ("sms",), None, FEB_15 + MICRO)
    assert close(account, FEB_15 + timedelta(days=1), counter) == []
    assert account.replaced == {}
    assert account.subscription.number == 1
    assert account.pending is not None
    # month 1 stays basic's: 4 x 1,200 at 0.0010
    assert account.months["1"].unit_price == D("0.0010")
    [march] = close(account, MAR_15 + GRACE, counter)
    # Pro 800: tier 1 49.00 + sms 20.00 = 69.00, the new subscription's floor
    assert march.number == "PF-acc-7-0003"
    assert march.period == period("2027-03-15", "2027-04-15")
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("20.00"), D("20.00")),
    ]
    sub = account.subscription
    assert (sub.number, sub.start_month, sub.floor) == (2, 2, D("69.00"))
    assert "ProformaReplaced" not in event_names(assert_replays(account))


def test_a_replacement_carries_the_usage_of_the_replaced_proforma_and_bills_it_once() -> None:
    account = open_account()
    counter = Counter({OPENED: 100, FEB_15: 100, MAR_15: 100})
    account.record_emails(emails(450, utc(2027, 1, 20)))
    _, renewal = close(account, FEB_15 + GRACE, counter)
    # basic 100: tier 1 19.00; month 0: 400 allowed of 450 -> 50 x 0.0010 = 0.05
    assert lines(renewal) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 50, D("0.0010"), D("0.05")),
    ]
    account.change_plan(PRO, None, None, utc(2027, 2, 10))
    [replacement] = close(account, FEB_15 + timedelta(days=2), counter)
    # Pro 100: tier 1 49.00; month 0's lines carried unchanged, at basic's 0.0010
    assert replacement.number == "PF-acc-7-0003"
    assert lines(replacement) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 50, D("0.0010"), D("0.05")),
    ]
    assert totals(replacement) == (D("49.05"), D("0.00"), D("49.05"))
    assert account.months["0"].billed == 50
    assert account.late_months == ()
    # floor 49.00: the subscription lines only, never the overage
    assert account.subscription.floor == D("49.00")
    # month 1 on Pro: 4 x 100 = 400 allowed of 500 -> 100 x 0.0008 = 0.08;
    # month 0's 50 are not billed again
    account.record_emails(emails(500, utc(2027, 2, 20)))
    [march] = close(account, MAR_15 + GRACE, counter)
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 100, D("0.0008"), D("0.08")),
    ]
    assert account.months["0"].billed == 50
    invoice = account.pay("PF-acc-7-0003", utc(2027, 3, 16), numbers())
    assert invoice.proforma == "PF-acc-7-0003"
    assert lines(invoice) == lines(replacement)
    assert_replays(account)


def test_the_replacement_sets_the_new_floor_and_is_not_lifted_to_the_old_one() -> None:
    account = open_account(products=("automation",))
    counter = Counter({OPENED: 3000, FEB_15: 1200, MAR_15: 400})
    first, renewal = close(account, FEB_15 + GRACE, counter)
    # opening 3,000: tier 4 99.00 + 15.00 = 114.00, the floor;
    # Feb 15 1,200: 49.00 + 15.00 = 64.00, lifted by 50.00
    assert first.subtotal.amount == D("114.00")
    assert lines(renewal)[-1] == ("minimum_price", 1, None, D("50.00"))
    account.change_plan(BASIC, ("automation", "chat"), None, utc(2027, 2, 1))
    [replacement] = close(account, utc(2027, 2, 16), counter)
    # 1,200: 49.00 + automation 15.00 + chat 10.00 = 74.00: a new floor, not lifted to 114.00
    assert lines(replacement) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("15.00"), D("15.00")),
        ("product", 1, D("10.00"), D("10.00")),
    ]
    assert (account.subscription.number, account.subscription.floor) == (2, D("74.00"))
    # Mar 15 at 400: 19.00 + 15.00 + 10.00 = 44.00, lifted by 30.00 to the new floor
    [march] = close(account, MAR_15 + GRACE, counter)
    assert lines(march) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("product", 1, D("15.00"), D("15.00")),
        ("product", 1, D("10.00"), D("10.00")),
        ("minimum_price", 1, None, D("30.00")),
    ]
    assert march.subtotal.amount == D("74.00")


def test_a_late_change_from_quarterly_to_monthly_prices_one_month_and_unprices_the_rest() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 300, MAY_15: 250, JUN_15: 250})
    _, renewal = close(account, APR_15 + GRACE, counter)
    # 300: tier 1, 3 x 19.00 = 57.00 less 5% (2.85) = 54.15, equal to the floor
    assert (renewal.number, renewal.period, renewal.subtotal.amount) == (
        "PF-acc-7-0002",
        period("2027-04-15", "2027-07-15"),
        D("54.15"),
    )
    assert [account.months[str(i)].allowance for i in (3, 4, 5)] == [1200, 1200, 1200]
    # month 3 (Apr 15 - May 15): 2,000 sent; month 4 (May 15 - Jun 15): 1,600 sent
    account.record_emails(emails(2000, utc(2027, 4, 20)) + emails(1600, utc(2027, 5, 20)))
    account.change_plan(PRO6, None, "month", utc(2027, 4, 1))
    [replacement] = close(account, utc(2027, 4, 16), counter)
    # one month on Pro 6 at the same 300: tier 1 49.00
    assert (replacement.number, replacement.period, replacement.contacts) == (
        "PF-acc-7-0003",
        period("2027-04-15", "2027-05-15"),
        300,
    )
    assert lines(replacement) == [("subscription", 1, D("49.00"), D("49.00"))]
    sub = account.subscription
    assert (sub.number, sub.period, sub.start_month, sub.floor) == (2, "month", 3, D("49.00"))
    assert sub.next_renewal_month == 4
    # month 3: 6 x 300 = 1,800 at 0.0008; months 4 and 5 wait for their own renewals,
    # keeping the emails already counted in them
    assert [
        (m.contacts, m.allowance, m.unit_price, m.platform)
        for m in (account.months[str(i)] for i in (3, 4, 5))
    ] == [(300, 1800, D("0.0008"), 2000), (None, None, None, 1600), (None, None, None, 0)]
    # May 15 at 250: Pro tier 1 49.00 (the floor); month 3: 200 x 0.0008 = 0.16
    [may] = close(account, MAY_15 + GRACE, counter)
    assert (may.number, may.period, may.contacts) == (
        "PF-acc-7-0004",
        period("2027-05-15", "2027-06-15"),
        250,
    )
    assert lines(may) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 1800, D("0"), D("0.00")),
        ("overage", 200, D("0.0008"), D("0.16")),
    ]
    # month 4 priced at May 15: 6 x 250 = 1,500 of 1,600 -> 100 x 0.0008 = 0.08
    [june] = close(account, JUN_15 + GRACE, counter)
    assert lines(june) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 1500, D("0"), D("0.00")),
        ("overage", 100, D("0.0008"), D("0.08")),
    ]
    assert counter.asked == [OPENED, APR_15, MAY_15, JUN_15]
    events = assert_replays(account)
    [replaced] = [e for e in events if type(e).__name__ == "ProformaReplaced"]
    assert [(m.index, m.allowance) for m in replaced.months] == [(3, 1800), (4, None), (5, None)]


def test_a_late_change_from_monthly_to_quarterly_prices_the_months_ahead() -> None:
    account = open_account()
    counter = Counter({OPENED: 100, FEB_15: 200, MAY_15: 200})
    close(account, FEB_15 + GRACE, counter)
    assert account.months["1"].allowance == 800  # basic: 4 x 200
    assert "2" not in account.months
    account.change_plan(PRO6, None, "quarter", FEB_15)
    [replacement] = close(account, utc(2027, 2, 16), counter)
    # Pro 6 at 200: tier 1, 3 x 49.00 = 147.00 less 5% (7.35) = 139.65
    assert (replacement.number, replacement.period) == (
        "PF-acc-7-0003",
        period("2027-02-15", "2027-05-15"),
    )
    assert lines(replacement) == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("period_discount", 1, None, D("-7.35")),
    ]
    sub = account.subscription
    assert (sub.number, sub.period, sub.start_month, sub.floor) == (2, "quarter", 1, D("139.65"))
    assert sub.next_renewal_month == 4
    # months 1, 2, 3 each allow 6 x 200 = 1,200 at 0.0008
    assert [
        (m.contacts, m.allowance, m.unit_price) for m in (account.months[str(i)] for i in (1, 2, 3))
    ] == [(200, 1200, D("0.0008"))] * 3
    # month 2 (Mar 15 - Apr 15): 1,500 -> 300 x 0.0008 = 0.24; month 3: 1,200, none over
    account.record_emails(emails(1500, utc(2027, 3, 20)) + emails(1200, utc(2027, 4, 20)))
    # Mar 15 and Apr 15 are no renewals now: month 1 closes silently, month 2 on its own
    [april] = close(account, APR_15 + GRACE, counter)
    assert (april.number, april.period, april.contacts) == (
        "PF-acc-7-0004",
        period("2027-03-15", "2027-04-15"),
        None,
    )
    assert lines(april) == [
        ("included", 1200, D("0"), D("0.00")),
        ("overage", 300, D("0.0008"), D("0.24")),
    ]
    # May 15, the next quarter at 200: 139.65 again (the floor, no line)
    [may] = close(account, MAY_15 + GRACE, counter)
    assert (may.number, may.period) == ("PF-acc-7-0005", period("2027-05-15", "2027-08-15"))
    assert lines(may) == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("period_discount", 1, None, D("-7.35")),
        ("included", 1200, D("0"), D("0.00")),
    ]
    assert counter.asked == [OPENED, FEB_15, MAY_15]
    assert_replays(account)


def test_a_late_plan_change_seen_in_the_same_run_prices_the_month_billed_in_it() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 100})
    close(account, APR_15 + GRACE, counter)  # PF-0002: Apr 15 - Jul 15 on basic
    account.record_emails(emails(1000, utc(2027, 4, 20)))
    account.change_plan(PRO, None, None, utc(2027, 4, 10))
    # one run past the end of month 3: first the replacement, then month 3's overage
    replacement, overage = close(account, MAY_15 + GRACE, counter)
    # Pro 100: 3 x 49.00 = 147.00 less 5% (7.35) = 139.65
    assert (replacement.number, replacement.period, replacement.subtotal.amount) == (
        "PF-acc-7-0003",
        period("2027-04-15", "2027-07-15"),
        D("139.65"),
    )
    # month 3: 4 x 100 = 400 of 1,000 -> 600 x Pro's 0.0008 = 0.48 (not basic's 0.60)
    assert (overage.number, overage.period) == ("PF-acc-7-0004", period("2027-04-15", "2027-05-15"))
    assert lines(overage) == [
        ("included", 400, D("0"), D("0.00")),
        ("overage", 600, D("0.0008"), D("0.48")),
    ]


def test_a_late_plan_change_waits_once_a_month_of_the_renewal_is_documented() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 100, JUL_15: 100})
    close(account, MAY_15 + GRACE, counter)  # month 3 (Apr 15 - May 15) documented
    assert account.documented_months == 4
    account.change_plan(PRO, None, None, utc(2027, 4, 10))
    assert close(account, MAY_15 + timedelta(days=1), counter) == []
    assert account.replaced == {}
    assert list(account.open_proformas) == ["PF-acc-7-0001", "PF-acc-7-0002"]
    # applies at the next renewal: Pro 100 quarterly 139.65
    [july] = close(account, JUL_15 + GRACE, counter)
    assert (july.number, july.period, july.subtotal.amount) == (
        "PF-acc-7-0003",
        period("2027-07-15", "2027-10-15"),
        D("139.65"),
    )
    assert (account.subscription.number, account.subscription.start_month) == (2, 6)


def test_a_late_plan_change_can_replace_the_opening_period() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 400})
    [first] = close(account, OPENED + GRACE, counter)  # basic 600: 29.00
    account.change_plan(PRO, None, None, OPENED)  # dated at the opening instant
    [replacement] = close(account, utc(2027, 1, 16), counter)
    # Pro 600: tier 1 49.00, for the opening's period; the new subscription starts at month 0
    assert (replacement.number, replacement.period, replacement.contacts) == (
        "PF-acc-7-0002",
        period("2027-01-15", "2027-02-15"),
        600,
    )
    assert lines(replacement) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert account.replaced == {first.number: "PF-acc-7-0002"}
    sub = account.subscription
    assert (sub.number, sub.start_month, sub.floor) == (2, 0, D("49.00"))
    assert (account.months["0"].allowance, account.months["0"].unit_price) == (2400, D("0.0008"))
    # Feb 15 at 400: Pro tier 1 49.00, the floor: no line
    [renewal] = close(account, FEB_15 + GRACE, counter)
    assert lines(renewal) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert counter.asked == [OPENED, FEB_15]
    assert_replays(account)


def test_a_late_plan_change_replaces_only_the_latest_renewal() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 600})
    first, _ = close(account, FEB_15 + GRACE, counter)
    # dated even before the opening: the opening's proforma stands all the same
    account.change_plan(PRO, None, None, OPENED - timedelta(hours=1))
    [replacement] = close(account, utc(2027, 2, 16), counter)
    # Pro 600: tier 1 49.00, for Feb 15 - Mar 15 only
    assert (replacement.number, replacement.period) == (
        "PF-acc-7-0003",
        period("2027-02-15", "2027-03-15"),
    )
    assert lines(replacement) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert account.replaced == {"PF-acc-7-0002": "PF-acc-7-0003"}
    assert account.open_proformas["PF-acc-7-0001"].document == first
    assert lines(first) == [("subscription", 1, D("29.00"), D("29.00"))]
    assert (account.months["0"].allowance, account.months["0"].unit_price) == (2400, D("0.0010"))


def test_paying_a_replaced_proforma_names_the_proforma_that_replaced_it() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 600})
    close(account, FEB_15 + GRACE, counter)  # both issued on Feb 15
    account.pay("PF-acc-7-0001", utc(2027, 2, 15, 12), numbers())
    account.change_plan(PRO, None, None, utc(2027, 2, 1))
    [second] = close(account, utc(2027, 2, 16), counter)
    # a second late change, dated before the same renewal, replaces the replacement
    account.change_plan(PRO, ("chat",), None, utc(2027, 2, 2))
    [third] = close(account, utc(2027, 2, 17), counter)
    # Pro 600: 49.00; + chat 10.00
    assert (second.number, second.subtotal.amount) == ("PF-acc-7-0003", D("49.00"))
    assert (third.number, third.subtotal.amount) == ("PF-acc-7-0004", D("59.00"))
    assert account.replaced == {
        "PF-acc-7-0002": "PF-acc-7-0003",
        "PF-acc-7-0003": "PF-acc-7-0004",
    }
    assert account.subscription.number == 3
    years: list[int] = []
    numbering = numbers()

    def next_number(year: int) -> str:
        years.append(year)
        return numbering(year)

    # each replaced id leads to the one payable now
    for replaced in ("PF-acc-7-0002", "PF-acc-7-0003"):
        with pytest.raises(ProformaNotFound) as refused:
            account.pay(replaced, utc(2027, 2, 18), next_number)
        assert str(refused.value).endswith("; it was replaced by PF-acc-7-0004")
    # paid or unknown: no such hint
    for gone in ("PF-acc-7-0001", "PF-acc-7-0099"):
        with pytest.raises(ProformaNotFound) as refused:
            account.pay(gone, utc(2027, 2, 18), next_number)
        assert "replaced" not in str(refused.value)
    assert years == []
    invoice = account.pay("PF-acc-7-0004", utc(2027, 2, 18), next_number)
    assert (invoice.proforma, invoice.subtotal.amount) == ("PF-acc-7-0004", D("59.00"))
    assert_replays(account)


def test_a_paid_proforma_is_never_replaced() -> None:
    account = open_account()
    counter = Counter({OPENED: 600})
    close(account, OPENED + GRACE, counter)
    account.pay("PF-acc-7-0001", utc(2027, 1, 16), numbers())
    counter.counts[OPENED] = 1200
    assert close(account, utc(2027, 1, 20), counter) == []
    assert account.proforma_count == 1
    assert account.subscription.floor == D("29.00")
    assert_replays(account)


# ---------------------------------------------------------------- 12. closing


def test_closing_stops_renewals_but_bills_the_closing_months_overage() -> None:
    account = open_account()
    counter = Counter({OPENED: 100, FEB_15: 100})
    close(account, FEB_15 + GRACE, counter)
    # month 1 (Feb 15 - Mar 15) holds the closing; 700 before and 100 after it
    account.record_emails(emails(700, utc(2027, 2, 20)))
    account.close(utc(2027, 2, 25))
    account.record_emails(emails(100, utc(2027, 3, 1)))
    [last] = close(account, MAR_15 + GRACE, counter)
    # no renewal: 800 sent of 400 allowed -> 400 x 0.0010 = 0.40
    assert last.number == "PF-acc-7-0003"
    assert last.period == period("2027-02-15", "2027-03-15")
    assert last.contacts is None
    assert lines(last) == [
        ("included", 400, D("0"), D("0.00")),
        ("overage", 400, D("0.0010"), D("0.40")),
    ]
    assert MAR_15 not in counter.asked
    assert close(account, utc(2027, 6, 16), counter) == []
    # late emails for the closing month still get billed, once
    account.record_emails(emails(50, utc(2027, 2, 21)))
    [late] = close(account, utc(2027, 6, 17), counter)
    assert late.number == "PF-acc-7-0004"
    assert late.period == period("2027-03-15", "2027-04-15")
    assert lines(late) == [("late_overage", 50, D("0.0010"), D("0.05"))]
    assert close(account, utc(2027, 9, 17), counter) == []
    assert_replays(account)


def test_a_closed_accounts_later_month_with_emails_is_billed_with_no_allowance() -> None:
    account = open_account()
    counter = Counter({OPENED: 100})
    close(account, OPENED + GRACE, counter)
    account.close(utc(2027, 1, 20))
    # 1,000 platform emails dated in month 2 (Mar 15 - Apr 15), long after the closing
    account.record_emails(emails(1000, utc(2027, 3, 20)))
    # months 0 and 1 end with nothing to bill; month 2 is not over yet
    assert close(account, APR_15 + GRACE - MICRO, counter) == []
    [look_ahead] = close(account, APR_15 + GRACE, counter)
    assert (look_ahead.number, look_ahead.period, look_ahead.contacts) == (
        "PF-acc-7-0002",
        period("2027-03-15", "2027-04-15"),
        None,
    )
    # no period priced month 2: allowance 0, 1,000 x basic's 0.0010 = 1.00
    assert lines(look_ahead) == [
        ("included", 0, D("0"), D("0.00")),
        ("overage", 1000, D("0.0010"), D("1.00")),
    ]
    assert "no subscription covered this month" in look_ahead.lines[0].description
    assert totals(look_ahead) == (D("1.00"), D("0.00"), D("1.00"))
    assert account.months["2"].allowance is None
    assert account.months["2"].billed == 1000
    # never a renewal after the closing, and nothing more to bill
    assert counter.asked == [OPENED]
    assert close(account, utc(2027, 12, 1), counter) == []
    assert_replays(account)


def test_a_closed_accounts_allowance_lasts_as_long_as_the_period_it_paid_for() -> None:
    # One rule for both models: the allowance ends with the last period paid for; later
    # platform emails pay from the first one, on the document of their own month.
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100})
    [quarter] = close(account, OPENED + GRACE, counter)
    # 100 contacts: tier 1, 19.00 x 3 months = 57.00, less 5% = 2.85 -> 54.15
    assert totals(quarter) == (D("54.15"), D("0.00"), D("54.15"))
    account.close(utc(2027, 1, 20))
    # month 1 (Feb 15 - Mar 15) is inside the paid quarter: 4 x 100 = 400 included
    account.record_emails(emails(500, utc(2027, 2, 20)))
    # month 3 (Apr 15 - May 15) is after it: nothing included
    account.record_emails(emails(300, utc(2027, 4, 20)))
    docs = close(account, utc(2027, 6, 1), counter)
    assert [(d.number, d.period) for d in docs] == [
        ("PF-acc-7-0002", period("2027-02-15", "2027-03-15")),
        ("PF-acc-7-0003", period("2027-04-15", "2027-05-15")),
    ]
    # 500 - 400 = 100 x 0.0010 = 0.10
    assert lines(docs[0]) == [
        ("included", 400, D("0"), D("0.00")),
        ("overage", 100, D("0.0010"), D("0.10")),
    ]
    # 300 x 0.0010 = 0.30, from the first email
    assert lines(docs[1]) == [
        ("included", 0, D("0"), D("0.00")),
        ("overage", 300, D("0.0010"), D("0.30")),
    ]
    assert counter.asked == [OPENED]  # no renewal after the closing
    assert_replays(account)


def test_a_batch_across_an_allowance_month_boundary_is_one_event_per_month() -> None:
    account = open_account(tz=AMS)  # anchor Jan 15: month 1 starts Feb 15 00:00 CET
    account.collect_events()
    last_of_month_0 = SentEmailItem(
        utc(2027, 2, 14, 22, 59) + timedelta(seconds=59), "platform", ORIGIN
    )
    first_of_month_1 = SentEmailItem(
        utc(2027, 2, 14, 23) + timedelta(seconds=1), "platform", ORIGIN
    )
    recorded = account.record_emails([first_of_month_1, last_of_month_0, first_of_month_1])
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["EmailsRecorded", "EmailsRecorded"]
    month_0, month_1 = events
    assert [m.index for m in month_0.months] == [0]
    assert month_0.effective_at == last_of_month_0.sent_at
    assert [m.index for m in month_1.months] == [1]
    assert month_1.effective_at == first_of_month_1.sent_at
    assert recorded == [
        (month_0.originator_version, [last_of_month_0]),
        (month_1.originator_version, [first_of_month_1, first_of_month_1]),
    ]
    assert (account.months["0"].platform, account.months["1"].platform) == (1, 2)


def test_closing_just_before_a_renewal_instant_means_no_renewal() -> None:
    account = open_account()
    counter = Counter({OPENED: 100})
    close(account, OPENED + GRACE, counter)
    account.close(FEB_15 - MICRO)
    assert close(account, utc(2027, 4, 1), counter) == []
    assert FEB_15 not in counter.asked
    assert account.documented_months == 1


def test_a_closed_account_refuses_plan_changes_and_a_second_closing() -> None:
    account = open_account()
    account.close(utc(2027, 1, 20))
    with pytest.raises(AccountClosed):
        account.change_plan(PRO, None, None, utc(2027, 1, 21))
    with pytest.raises(AccountClosed):
        account.close(utc(2027, 1, 21))


# ---------------------------------------------------------------- 13. invariants and replay


def test_a_year_of_everything_keeps_the_invariants_and_replays_to_the_same_state() -> None:
    account = open_account(tz=AMS, period="quarter", products=("automation",), tax_rate="0.21")
    counter = Counter(default=600)
    numbering = numbers()
    issued: list[Document] = []
    t = utc(2027, 1, 15, 10)
    # step s runs at t = Jan 15 10:00Z + 7 (s + 1) days; renewals at local midnight of
    # the 15th (22:00Z or 23:00Z the day before), billed from 04:00Z or 05:00Z on the 15th
    for step in range(60):  # a week at a time, a bit over a year (last: 2028-03-10)
        t += timedelta(days=7)
        account.record_contact_changes(
            [change(ContactState(f"c{step}", 1, email="x@y"), t - timedelta(hours=1))], {}
        )
        account.check_invariants()
        account.record_emails(emails(900, t - timedelta(days=10)) + emails(5, t, "custom_smtp"))
        account.check_invariants()
        if step == 20:  # Jun 11, after the Apr 15 renewal: from the Jul 15 renewal on
            account.change_plan(PRO, ("automation", "chat"), "month", t)
        if step == 30:  # Aug 20: a new count never reopens a priced renewal
            counter.default = 1500
        if step == 31:  # Aug 27, dated Aug 10: replaces the unpaid Aug 15 renewal
            account.change_plan(PRO, ("automation",), None, utc(2027, 8, 10))
        issued += close(account, t, counter)
        # overage-only proformas are paid as they come; renewals stay unpaid (replaceable)
        for number, held in list(account.open_proformas.items()):
            if held.counted_at is None:
                account.pay(number, t, numbering).check_invariants()
        account.check_invariants()
    for number in list(account.open_proformas):
        account.pay(number, t, numbering).check_invariants()
    account.check_invariants()
    assert account.billable == 60
    kinds = {line.kind for d in issued for line in d.lines}
    assert {"overage", "late_overage", "custom_smtp", "period_discount"} <= kinds
    # every renewal instant counted once
    assert len(counter.asked) == len(set(counter.asked))

    def price(doc: Document) -> Decimal:
        kinds = {"subscription", "product", "period_discount", "minimum_price"}
        return sum((line.amount.amount for line in doc.lines if line.kind in kinds), D(0))

    renewals = [(d.period, d.contacts, price(d)) for d in issued if d.contacts is not None]
    # basic 600 quarterly + automation: 3 x (29.00 + 15.00) = 132.00 less 6.60 = 125.40;
    # Pro 600 monthly + automation + chat: 49.00 + 15.00 + 10.00 = 74.00;
    # Pro 1,500 + automation + chat: 99.00 + 25.00 = 124.00, replaced by
    # Pro 1,500 + automation: 99.00 + 15.00 = 114.00, the new floor, every month after
    assert renewals == [
        (period("2027-01-15", "2027-04-15"), 600, D("125.40")),
        (period("2027-04-15", "2027-07-15"), 600, D("125.40")),
        (period("2027-07-15", "2027-08-15"), 600, D("74.00")),
        (period("2027-08-15", "2027-09-15"), 1500, D("124.00")),
        (period("2027-08-15", "2027-09-15"), 1500, D("114.00")),
        (period("2027-09-15", "2027-10-15"), 1500, D("114.00")),
        (period("2027-10-15", "2027-11-15"), 1500, D("114.00")),
        (period("2027-11-15", "2027-12-15"), 1500, D("114.00")),
        (period("2027-12-15", "2028-01-15"), 1500, D("114.00")),
        (period("2028-01-15", "2028-02-15"), 1500, D("114.00")),
        (period("2028-02-15", "2028-03-15"), 1500, D("114.00")),
    ]
    # the Aug 15 renewal, replaced by the next one issued for the same period
    aug = [
        d.number
        for d in issued
        if d.contacts is not None and d.period == period("2027-08-15", "2027-09-15")
    ]
    assert account.replaced == {aug[0]: aug[1]}
    assert account.open_proformas == {}
    assert (account.subscription.number, account.subscription.floor) == (3, D("114.00"))
    assert len({d.number for d in issued}) == len(issued)
    # every proforma paid once, except the one replaced
    assert len(account.invoices) == len(issued) - 1
    events = assert_replays(account)
    assert type(events[0]).__name__ == "Opened"
    assert event_names(events).count("ProformaReplaced") == 1


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


def test_overage_under_a_cent_is_carried_until_it_adds_up_never_dropped() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100})
    # month 0 (Jan 15 - Feb 15): 4 x 100 = 400 allowed; 403 sent: 3 x 0.0010 = 0.003 -> 0.00
    account.record_emails(emails(403, utc(2027, 1, 20)))
    assert [d.number for d in close(account, FEB_15 + GRACE, counter)] == ["PF-acc-7-0001"]
    assert account.late_months == (0,)  # carried, not marked billed
    # month 1 (Feb 15 - Mar 15): 402 sent, 2 over. With month 0's 3: 0.002 + 0.003 = 0.005,
    # each line rounds on its own (0.00 + 0.00): still nothing to invoice, both carried.
    account.record_emails(emails(402, utc(2027, 2, 20)))
    assert close(account, MAR_15 + GRACE, counter) == []
    assert account.late_months == (0, 1)
    # 3 more of month 0 reported late: 6 x 0.0010 = 0.006 -> 0.01 is invoiced at Apr 15
    # (the renewal, counted 100 again), month 1's 0.002 rides along as a 0.00 line.
    account.record_emails(emails(3, utc(2027, 1, 21)))
    counter.counts[APR_15] = 100
    [renewal] = close(account, APR_15 + GRACE, counter)
    assert [line for line in lines(renewal) if line[0] == "late_overage"] == [
        ("late_overage", 6, D("0.0010"), D("0.01")),
        ("late_overage", 2, D("0.0010"), D("0.00")),
    ]
    assert account.late_months == ()
    assert account.months["0"].billed == 6 and account.months["1"].billed == 2


def test_a_plan_change_dated_after_a_renewal_waits_for_the_next_one_even_if_not_yet_priced() -> (
    None
):
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 600, MAR_15: 600})
    close(account, OPENED + GRACE, counter)
    # Feb 15 03:00 is after the Feb 15 renewal instant, which is priced only at 06:00.
    account.change_plan(PRO, (), None, utc(2027, 2, 15, 3))
    [feb] = close(account, FEB_15 + GRACE, counter)
    # still basic: 600 contacts, tier 2, 29.00
    assert lines(feb) == [("subscription", 1, D("29.00"), D("29.00"))]
    [mar] = close(account, MAR_15 + GRACE, counter)
    # Pro from Mar 15: 600 contacts, tier 1 (<=1,000) 49.00
    assert lines(mar) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert (account.subscription.plan, account.subscription.number) == (PRO, 2)
    assert_replays(account)


def test_a_plan_change_dated_at_the_opening_prices_the_first_period_on_the_new_plan() -> None:
    account = open_account()
    account.change_plan(PRO, ("sms",), None, OPENED)
    counter = Counter({OPENED: 600})
    [first] = close(account, OPENED + GRACE, counter)
    # no basic proforma to replace: Pro tier 1 49.00 + sms 20.00 = 69.00, the floor
    assert first.number == "PF-acc-7-0001"
    assert lines(first) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("20.00"), D("20.00")),
    ]
    assert account.subscription.floor == D("69.00") and account.pending is None
    assert not account.replaced
    assert_replays(account)
