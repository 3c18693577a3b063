from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ledger.contacts.renewal import (
    BillingPeriod,
    UnknownBillingPeriod,
    allowance_months,
    renewal_period,
)
from ledger.contacts.subscriptions import (
    DuplicateProduct,
    InvalidCount,
    SubscriptionError,
    UnknownProduct,
    allowance,
    apply_floor,
    contacts_price,
    overage,
    quote,
    subscription_price,
    tier_at,
)
from ledger.errors import LedgerError
from ledger.plans import ContactsPlan, ContactTier

D = Decimal

#: up to 1,000 contacts 29.00/month; up to 5,000 59.00; up to 10,000 99.00;
#: above: 99.00 + 8.00 per 1,000 started above 10,000.
GROWTH = ContactsPlan(
    id="contacts-growth",
    name="Contacts Growth",
    currency="EUR",
    tiers=(
        ContactTier(up_to=1000, monthly_price=D("29.00")),
        ContactTier(up_to=5000, monthly_price=D("59.00")),
        ContactTier(up_to=10000, monthly_price=D("99.00")),
        ContactTier(monthly_price=D("99.00"), per_thousand_above=D("8.00")),
    ),
    products={"automation": D("15.00"), "sms": D("9.90"), "chat": D("12.50")},
    period_discounts={"quarter": D("0.05"), "half_year": D("0.10"), "year": D("0.15")},
    overage_unit_price=D("0.0020"),
)


def plan(**changes: object) -> dict[str, object]:
    """GROWTH as catalogue data (strings, as a TOML file gives them), with changes."""
    data: dict[str, object] = {
        "id": "p",
        "name": "P",
        "currency": "EUR",
        "tiers": [{"up_to": 1000, "monthly_price": "29.00"}, {"monthly_price": "59.00"}],
        "overage_unit_price": "0.0020",
    }
    data.update(changes)
    return data


# ------------------------------------------------ plan terms


def test_catalogue_data_validates_into_a_frozen_plan() -> None:
    parsed = ContactsPlan.model_validate(
        plan(products={"sms": "9.90"}, period_discounts={"year": "0.15"})
    )
    assert parsed.kind == "contacts"
    assert parsed.emails_per_contact == 4  # seed 002: emails per month = 4 x contacts
    assert parsed.products == {"sms": D("9.90")}
    assert parsed.period_discounts == {"year": D("0.15")}
    with pytest.raises(ValidationError):
        parsed.name = "other"  # type: ignore[misc]
    # a value: equal terms are equal and hash alike
    again = ContactsPlan.model_validate(
        plan(products={"sms": "9.90"}, period_discounts={"year": "0.15"})
    )
    assert parsed == again
    assert len({parsed, again, GROWTH}) == 2


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"tiers": [{"up_to": 1000, "monthly_price": "29"}]}, "last tier bounded"),
        ({"tiers": [{"monthly_price": "29"}, {"monthly_price": "59"}]}, "open tier not last"),
        (
            {
                "tiers": [
                    {"up_to": 5, "monthly_price": "1"},
                    {"up_to": 5, "monthly_price": "2"},
                    {"monthly_price": "3"},
                ]
            },
            "bounds not increasing",
        ),
        (
            {"tiers": [{"up_to": 1000, "monthly_price": "59"}, {"monthly_price": "29"}]},
            "price falls",
        ),
        (
            {
                "tiers": [
                    {"up_to": 1000, "monthly_price": "29", "per_thousand_above": "1"},
                    {"monthly_price": "59"},
                ]
            },
            "per-1,000 price on a bounded tier",
        ),
        ({"tiers": []}, "no tiers"),
        ({"tiers": [{"up_to": 0, "monthly_price": "1"}, {"monthly_price": "2"}]}, "bound 0"),
        ({"period_discounts": {"month": "0.05"}}, "monthly discount"),
        ({"period_discounts": {"year": "1"}}, "discount of 100%"),
        ({"period_discounts": {"year": "-0.1"}}, "negative discount"),
        ({"period_discounts": {"week": "0.1"}}, "unknown period"),
        ({"products": {"sms": "-1"}}, "negative product price"),
        ({"products": {" ": "1"}}, "blank product id"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"overage_unit_price": "-0.001"}, "negative overage price"),
        ({"emails_per_contact": -1}, "negative allowance factor"),
        ({"surprise": 1}, "unknown field"),
    ],
)
def test_invalid_plan_terms_are_refused(changes: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError):
        ContactsPlan.model_validate(plan(**changes))


def test_a_zero_monthly_discount_is_allowed() -> None:
    assert ContactsPlan.model_validate(plan(period_discounts={"month": "0"})).period_discounts


# ------------------------------------------------ contact tiers


@pytest.mark.parametrize(
    ("contacts", "tier", "price"),
    [
        (0, 1, "29.00"),  # an empty database pays the first tier
        (1, 1, "29.00"),
        (1000, 1, "29.00"),  # up_to is inclusive
        (1001, 2, "59.00"),
        (5000, 2, "59.00"),
        (5001, 3, "99.00"),
        (10000, 3, "99.00"),
        (10001, 4, "107.00"),  # 99 + 1 started block * 8
        (11000, 4, "107.00"),  # 99 + 1 * 8: the block of 10,001..11,000
        (11001, 4, "115.00"),  # 99 + 2 * 8
        (25000, 4, "219.00"),  # 99 + 15 * 8
        (25001, 4, "227.00"),  # 99 + 16 * 8
    ],
)
def test_contacts_tier_prices(contacts: int, tier: int, price: str) -> None:
    assert tier_at(GROWTH, contacts) == tier
    assert contacts_price(GROWTH, contacts) == D(price)


@pytest.mark.parametrize(
    ("contacts", "price"),
    [(0, "5.00"), (1, "15.00"), (1000, "15.00"), (1001, "25.00"), (2500, "35.00")],
)
def test_a_single_open_tier_is_a_base_plus_per_thousand_started(contacts: int, price: str) -> None:
    # 5.00 base + 10.00 per 1,000 contacts started
    flat = ContactsPlan.model_validate(
        plan(tiers=[{"monthly_price": "5.00", "per_thousand_above": "10.00"}])
    )
    assert contacts_price(flat, contacts) == D(price)


def test_a_negative_contact_count_is_refused() -> None:
    with pytest.raises(InvalidCount):
        contacts_price(GROWTH, -1)
    with pytest.raises(InvalidCount):
        allowance(-1, GROWTH)


# ------------------------------------------------ period prices


@pytest.mark.parametrize(
    ("contacts", "products", "period", "price"),
    [
        (800, (), "month", "29.00"),
        (800, ("automation",), "month", "44.00"),  # 29 + 15
        # 59 + 15 + 9.90 = 83.90 a month
        (3200, ("automation", "sms"), "month", "83.90"),
        (3200, ("automation", "sms"), "quarter", "239.115"),  # 83.90 * 3 = 251.70; * 0.95
        (3200, ("automation", "sms"), "half_year", "453.06"),  # 83.90 * 6 = 503.40; * 0.90
        (3200, ("automation", "sms"), "year", "855.78"),  # 83.90 * 12 = 1006.80; * 0.85
        # 12,345 contacts: 99 + 3 blocks * 8 = 123; + chat 12.50 = 135.50; * 12 = 1626; * 0.85
        (12345, ("chat",), "year", "1382.10"),
        # no contacts: tier 1; 29 + 9.90 + 12.50 + 15 = 66.40; * 3 = 199.20; - 5% (9.96)
        (0, ("sms", "chat", "automation"), "quarter", "189.24"),
    ],
)
def test_subscription_price(
    contacts: int, products: tuple[str, ...], period: BillingPeriod, price: str
) -> None:
    # exact: rounding to cents happens on the document line (239.115 -> 239.12)
    assert subscription_price(GROWTH, contacts, products, period) == D(price)


def test_a_quote_shows_each_part_of_the_price() -> None:
    q = quote(GROWTH, 3200, ("automation", "sms"), "quarter")
    assert (q.tier, q.months, q.contacts_monthly) == (2, 3, D("59.00"))
    assert q.products == (("automation", D("15.00")), ("sms", D("9.90")))
    assert q.monthly == D("83.90")
    assert q.gross == D("251.70")  # 83.90 * 3
    assert q.discount == D("12.585")  # 251.70 * 0.05
    assert q.total == D("239.115")  # 251.70 - 12.585


def test_a_period_the_plan_has_no_discount_for_is_priced_in_full() -> None:
    undiscounted = ContactsPlan.model_validate(plan(period_discounts={"year": "0.20"}))
    assert subscription_price(undiscounted, 10, (), "quarter") == D("87.00")  # 29 * 3
    assert subscription_price(undiscounted, 10, (), "year") == D("278.40")  # 29 * 12 = 348; * 0.80


def test_unknown_and_repeated_products_are_refused() -> None:
    with pytest.raises(UnknownProduct, match="webinars"):
        subscription_price(GROWTH, 10, ("sms", "webinars"), "month")
    with pytest.raises(DuplicateProduct, match="sms"):
        subscription_price(GROWTH, 10, ("sms", "chat", "sms"), "month")
    assert issubclass(UnknownProduct, LedgerError)
    assert issubclass(DuplicateProduct, SubscriptionError)


def test_an_unknown_billing_period_is_refused() -> None:
    with pytest.raises(UnknownBillingPeriod):
        subscription_price(GROWTH, 10, (), "fortnight")  # type: ignore[arg-type]


# ------------------------------------------------ emails included and overage


@pytest.mark.parametrize(("contacts", "emails"), [(0, 0), (1, 4), (1000, 4000), (2500, 10000)])
def test_allowance_is_four_emails_per_contact(contacts: int, emails: int) -> None:
    assert allowance(contacts, GROWTH) == emails


def test_the_allowance_factor_is_plan_data() -> None:
    generous = ContactsPlan.model_validate(plan(emails_per_contact=5))
    assert allowance(2500, generous) == 12500  # 5 * 2500


@pytest.mark.parametrize(
    ("sent", "count", "amount"),
    [
        (0, 0, "0"),
        (9999, 0, "0"),
        (10000, 0, "0"),  # exactly the allowance: no extra charge
        (10001, 1, "0.0020"),
        (12345, 2345, "4.6900"),  # 2345 * 0.0020
    ],
)
def test_overage_is_charged_only_beyond_the_allowance(sent: int, count: int, amount: str) -> None:
    assert overage(GROWTH, sent, 10000) == (count, D(amount))


def test_without_contacts_every_email_is_overage() -> None:
    assert overage(GROWTH, 3, allowance(0, GROWTH)) == (3, D("0.0060"))


def test_negative_usage_is_refused() -> None:
    with pytest.raises(InvalidCount):
        overage(GROWTH, -1, 10)
    with pytest.raises(InvalidCount):
        overage(GROWTH, 1, -10)


def test_a_quarterly_allowance_is_per_month_and_does_not_pool() -> None:
    # 1,000 contacts at renewal: 4,000 emails in each of the quarter's 3 months.
    # Month 1 sends 4,500 (500 over), month 2 sends 3,000 (1,000 unused, which
    # does not carry over), month 3 sends 4,000 (exactly the allowance).
    anchor = date(2026, 1, 31)
    months = allowance_months(anchor, renewal_period(anchor, "quarter", 0))
    assert len(months) == 3
    included = allowance(1000, GROWTH)
    sent = [4500, 3000, 4000]
    assert [overage(GROWTH, s, included) for s in sent] == [
        (500, D("1.0000")),  # 500 * 0.0020
        (0, D("0")),
        (0, D("0")),
    ]


# ------------------------------------------------ minimum price


def test_the_first_invoice_sets_the_floor_rather_than_meeting_one() -> None:
    assert apply_floor(D("44.00"), None) == (D("44.00"), D("0"))


@pytest.mark.parametrize(
    ("amount", "floor", "lifted", "adjustment"),
    [
        ("74.00", "74.00", "74.00", "0"),  # equal: nothing to add
        ("44.00", "74.00", "74.00", "30.00"),  # 74.00 - 44.00
        ("114.00", "74.00", "114.00", "0"),  # above the floor: the price rises freely
        ("0.00", "29.00", "29.00", "29.00"),
    ],
)
def test_a_later_subscription_charge_is_lifted_to_the_floor(
    amount: str, floor: str, lifted: str, adjustment: str
) -> None:
    assert apply_floor(D(amount), D(floor)) == (D(lifted), D(adjustment))


def test_a_shrinking_database_pays_the_first_months_price() -> None:
    # month 1: 3,200 contacts + automation = 59 + 15 = 74.00 (the floor)
    # month 2: 800 contacts + automation = 29 + 15 = 44.00 -> lifted by 30.00
    # month 3: 6,000 contacts + automation = 99 + 15 = 114.00 -> no adjustment
    floor = subscription_price(GROWTH, 3200, ("automation",), "month")
    assert floor == D("74.00")
    second = subscription_price(GROWTH, 800, ("automation",), "month")
    assert apply_floor(second, floor) == (D("74.00"), D("30.00"))
    third = subscription_price(GROWTH, 6000, ("automation",), "month")
    assert apply_floor(third, floor) == (D("114.00"), D("0"))


def test_a_negative_floor_is_refused() -> None:
    with pytest.raises(SubscriptionError):
        apply_floor(D("10"), D("-1"))


cents = st.decimals(min_value=0, max_value=100_000, places=2)


@given(cents, cents)
def test_the_floor_never_lowers_and_always_reaches(amount: Decimal, floor: Decimal) -> None:
    lifted, adjustment = apply_floor(amount, floor)
    assert adjustment >= 0
    assert lifted == amount + adjustment
    assert lifted == max(amount, floor)
    # the adjustment of cent amounts is itself in cents
    assert adjustment == adjustment.quantize(D("0.01"))
