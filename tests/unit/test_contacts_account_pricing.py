"""Tiers, products, period discounts and the minimum price of a contacts account (seed 002).

Amounts are worked out by hand from the plans described in ``contacts_builders``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from contacts_builders import (
    APR_15,
    FEB_15,
    GRACE,
    MAR_15,
    OPENED,
    PRO,
    Counter,
    D,
    close,
    emails,
    lines,
    open_account,
    period,
    totals,
)
from unit_builders import utc

from ledger.contacts.renewal import BillingPeriod

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
